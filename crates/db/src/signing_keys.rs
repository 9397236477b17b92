//! The auth service's token-signing keys, one row per key, shared by every auth replica.
//!
//! A key's state follows from its times: *next* while `activated_at` is ahead (published, not
//! yet signing), *current* once it passed and until `retired_at`, *retired* after that
//! (published until every token it signed expired, then deleted). The private key is stored as
//! the caller sealed it; this module never sees it in clear.
//!
//! Never: two keys of one algorithm with the same `generation` (the unique index settles races
//! between replicas); a row updated in place except to retire it (its `retired_at` set when the
//! key replacing it activates, by [`rotate`] and [`make_current`]) or to bring a known key back
//! as the current one ([`make_current`]).

use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredKey {
    pub kid: String,
    /// `ES256` or `RS256`.
    pub alg: String,
    /// The key's place among its algorithm's keys (the current one is the activated one with
    /// the highest); `None` for a key imported as already retired.
    pub generation: Option<i64>,
    /// Sealed PKCS#8; `None` for a key imported as already retired (its public half only).
    pub private_key: Option<Vec<u8>>,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
    pub activated_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Inserts a key unless its `kid` or generation is taken; evaluates to whether it did.
macro_rules! insert {
    ($executor:expr, $key:expr) => {{
        let key: &StoredKey = $key;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, generation, private_key, public_jwk, created_at, activated_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(key.generation)
        .bind(&key.private_key)
        .bind(&key.public_jwk)
        .bind(key.created_at)
        .bind(key.activated_at)
        .bind(key.retired_at)
        .execute($executor)
        .await
        .map(|done| done.rows_affected() == 1)
    }};
}

/// Retires, when `key` activates, every other key of its algorithm not retired yet.
macro_rules! retire_others {
    ($executor:expr, $key:expr) => {{
        let key: &StoredKey = $key;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE alg = $2 AND kid <> $3 AND retired_at IS NULL")
            .bind(key.activated_at)
            .bind(&key.alg)
            .bind(&key.kid)
            .execute($executor)
            .await
    }};
}

/// Every key, each algorithm's newest first (keys imported as retired last).
pub async fn list(db: &Db) -> Result<Vec<StoredKey>, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT kid, alg, generation, private_key, public_jwk, created_at, activated_at, retired_at \
             FROM signing_keys ORDER BY alg, COALESCE(generation, 0) DESC, activated_at DESC",
        )
        .fetch_all(pool)
        .await?
    }))
}

/// Inserts `key` unless its `kid`, or its algorithm's `generation`, is taken: false then (another
/// replica was first, or the key is known already).
pub async fn insert_if_absent(db: &Db, key: &StoredKey) -> Result<bool, DbError> {
    Ok(with_pool!(db, |pool| insert!(pool, key)?))
}

/// Inserts the next keys and retires the current keys of their algorithms at the moment the new
/// ones activate, in one transaction; false (nothing written) when a key or generation was
/// taken meanwhile — another rotation won.
pub async fn rotate(db: &Db, next: &[StoredKey]) -> Result<bool, DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            for key in next {
                if !insert!(&mut *tx, key)? {
                    tx.rollback().await?;
                    return Ok(false);
                }
                retire_others!(&mut *tx, key)?;
            }
            tx.commit().await?;
            Ok(true)
        })
    })
    .await
}

/// Makes `key` its algorithm's current key from `key.activated_at` (an operator's
/// `signing_key_file`): inserted or brought back with `key.generation`, every other key of the
/// algorithm retired at that moment.
/// [`DbError::Conflict`] when that generation was taken meanwhile.
pub async fn make_current(db: &Db, key: &StoredKey) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            // A key known already (retired, or imported without its private half) comes back.
            if !insert!(&mut *tx, key)? {
                let updated = sqlx::query(
                    "UPDATE signing_keys SET generation = $1, private_key = $2, activated_at = $3, retired_at = NULL \
                     WHERE kid = $4",
                )
                .bind(key.generation)
                .bind(&key.private_key)
                .bind(key.activated_at)
                .bind(&key.kid)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Err(DbError::Conflict { constraint: "signing_keys_generation".into() });
                }
            }
            retire_others!(&mut *tx, key)?;
            tx.commit().await?;
            Ok(())
        })
    })
    .await
}

/// Deletes the keys retired before `cutoff`; returns how many.
pub async fn delete_retired_before(db: &Db, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query("DELETE FROM signing_keys WHERE retired_at < $1").bind(cutoff).execute(pool).await?.rows_affected()
    }))
}
