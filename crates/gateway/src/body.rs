//! Body wrappers for streams passing through the gateway: [`IdleTimeout`] ends a body that
//! pauses too long (a slow client's upload, a stalled upstream's answer) with an error instead
//! of holding the connection forever, and [`body_error_kind`] tells those endings apart from a
//! body that was too large or that its sender broke (a malformed chunk, a cut-off upload) —
//! the client's fault when the body is a request's, not the upstream's.
//!
//! Frames pass through untouched: nothing is buffered or copied.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a body ends with when it paused longer than allowed.
#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?}")]
pub struct IdleTimedOut(pub Duration);

/// The error a body ends with when the side it is read from failed (for a request body: the
/// client sent a malformed or cut-off body).
#[derive(Debug, thiserror::Error)]
#[error("the body's sender failed: {0}")]
pub struct SourceFailed(#[source] pub BoxError);

/// A body that fails once no frame arrived for `timeout`; its inner body's errors come out as
/// [`SourceFailed`].
pub struct IdleTimeout<B> {
    inner: B,
    timeout: Duration,
    last: Instant,
    /// Made at the first wait, so a body that is ready at once costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> IdleTimeout<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self { inner, timeout, last: Instant::now(), sleep: None }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                // The timer is moved only when it fires, not for every frame.
                this.last = Instant::now();
                Poll::Ready(frame.map(|f| f.map_err(|e| Box::new(SourceFailed(e.into())) as BoxError)))
            }
            Poll::Pending => {
                let deadline = this.last + this.timeout;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                loop {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let deadline = this.last + this.timeout;
                    if deadline <= Instant::now() {
                        return Poll::Ready(Some(Err(Box::new(IdleTimedOut(this.timeout)))));
                    }
                    sleep.as_mut().reset(deadline);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What ended a body early, found anywhere in an error's chain of causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Idle,
    /// The sender broke the body ([`SourceFailed`], and neither of the above).
    Source,
}

pub fn body_error_kind(err: &(dyn std::error::Error + 'static)) -> Option<BodyError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut found = None;
    while let Some(e) = cur {
        if e.is::<http_body_util::LengthLimitError>() {
            return Some(BodyError::TooLarge);
        }
        if e.is::<IdleTimedOut>() {
            return Some(BodyError::Idle);
        }
        if e.is::<SourceFailed>() {
            found = Some(BodyError::Source);
        }
        cur = e.source();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_and_a_flowing_one_does_not() {
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let mut body = IdleTimeout::new(http_body_util::StreamBody::new(rx), Duration::from_secs(5));
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(4)).await;
            tx.try_send(Ok(Frame::data(Bytes::from_static(b"x")))).unwrap();
            assert!(body.frame().await.unwrap().is_ok(), "4 s pauses pass");
        }
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(body_error_kind(err.as_ref()), Some(BodyError::Idle));
    }
}
