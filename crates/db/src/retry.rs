//! Retrying write transactions that lose a serialization race (SQLSTATE 40001) or are chosen
//! to break a deadlock (40P01).

use crate::DbError;
use std::future::Future;
use std::time::Duration;

/// How many times a transaction is attempted before its 40001 is returned to the caller.
pub const MAX_ATTEMPTS: u32 = 8;

/// Runs `attempt` — which must open, fill and commit its own transaction — again whenever it
/// fails with a serialization failure, with a short, growing, jittered pause between tries.
/// Any other outcome (success or another error) is returned at once.
pub async fn retry_serializable<T, F, Fut>(mut attempt: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(e) if e.is_serialization_failure() && tries < MAX_ATTEMPTS => {
                let base = 5u64 << tries.min(6);
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % base.max(1);
                tracing::debug!(attempt = tries, "serialization failure, retrying transaction");
                tokio::time::sleep(Duration::from_millis(base + jitter)).await;
            }
            outcome => return outcome,
        }
    }
}
