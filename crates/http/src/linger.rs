//! Lingering close, as nginx's `lingering_close` does: when hyper ends a connection while the
//! client is still sending — a body refused by its size before it was read (413), or any answer
//! sent before the request's body was taken — closing the socket with unread bytes in it makes
//! the kernel answer with a reset, and a client still writing its body then fails on the write
//! and never reads the answer already sent. So the server stops writing (FIN after the answer),
//! then reads and drops what the client still sends, bounded in bytes and in time, and closes
//! only once the client has stopped (or the bounds are reached).
//!
//! A connection is lingered on when bytes are waiting when hyper is done with it, or when an
//! error was answered to a request that had a body (the server marks its [`Tap`]); an idle or
//! finished connection is closed at once.

use crate::tap::Tap;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The most bytes read and dropped after the answer.
pub const LINGER_BYTES: u64 = 64 * 1024 * 1024;
/// The longest time spent lingering in all.
pub const LINGER_TIME: Duration = Duration::from_secs(10);
/// The longest wait for the client's next bytes: a pause this long ends the lingering.
pub const LINGER_IDLE: Duration = Duration::from_secs(2);

/// Closes `tap` (which hyper has finished with) lingering if the client is still sending.
/// A connection someone else still holds (one upgraded to a WebSocket, whose bytes are not
/// ours to drop) is left to them.
pub(crate) async fn close(mut tap: Tap) {
    if !tap.is_sole() {
        return;
    }
    // Nothing waiting (or the client closed), and no error answered to a request with a body:
    // nothing to linger for. After such an answer the client's next bytes may still be on
    // their way.
    let mut buf = [0u8; 16 * 1024];
    let mut read = match tap.stream().try_read(&mut buf) {
        Ok(n) if n > 0 => n as u64,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tap.lingers() => 0,
        _ => return,
    };
    let _ = tap.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    while read < LINGER_BYTES {
        let wait = deadline.min(tokio::time::Instant::now() + LINGER_IDLE);
        let step = tokio::time::timeout_at(wait, async {
            tap.stream().readable().await?;
            tap.stream().try_read(&mut buf)
        })
        .await;
        match step {
            Ok(Ok(n)) if n > 0 => read += n as u64,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // The client closed or broke the connection, or the bounds are reached.
            _ => break,
        }
    }
    tracing::debug!(lingered_bytes = read, "lingering close");
}
