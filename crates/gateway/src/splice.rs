//! Large bodies moved from one socket to the other with `splice(2)`, through a pipe, without
//! being copied into the gateway: a proxy that copies reaches about half the throughput of the
//! upstream alone on one machine, one that splices nearly all of it.
//!
//! Taken when both sides are plain HTTP/1.1 connections ([`Tap`]s) and the body's length is
//! known and at least [`MIN_LEN`]: a response body from the upstream to the client, or a
//! request body from the client to the upstream. [`Spliced`] is the body hyper sends:
//! 1. it hands on what hyper had already read of the body on the receiving side (whose reads
//!    are stopped first, so this ends once hyper asks that socket for more);
//! 2. it waits until hyper has written all that on the sending side, the message's head
//!    included: hyper writes a head before it asks for the body, and a response body moves
//!    only once the server has handed its response to hyper (its [`HeadGate`] is open), so a
//!    body that a layer reads or replaces (an error page rendered instead) is never spliced;
//! 3. it splices the rest from socket to socket, each side waiting for its socket at most its
//!    idle time;
//! 4. it gives hyper as many bytes of [`FILLER`] as were spliced, which the sending side's tap
//!    drops (filler only, so nothing else is lost if they never reach it), so hyper counts the
//!    body whole and that connection stays alive.
//!
//! A request body whose upstream closes its end mid-way (it answered early, say 401) is not
//! ended with an error: it waits, so that hyper reads the answer the upstream sent before
//! closing (or fails on that read when there is none) instead of failing on the body.
//!
//! The receiving connection is not read by hyper again: an upstream connection is closed once
//! the response is over, a client connection after its response (hyper says `connection:
//! close`). Any failure ends the body with an error, which closes the connection, as when a
//! copied body breaks off.

use crate::body::{IdleTimedOut, SourceFailed};
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use rustix::pipe::{PipeFlags, SpliceFlags};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::TcpStream;
use turtlemen_http::tap::{FILLER, HeadGate, Tap};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bodies shorter than this are copied: a pipe and the hand-over cost more than they save.
pub const MIN_LEN: u64 = 1024 * 1024;

/// The pipe between the sockets (Linux's default limit for an unprivileged process).
const PIPE_SIZE: usize = 1024 * 1024;

enum State {
    /// Handing on what hyper had already read.
    Draining,
    /// Waiting for hyper to flush what it had queued (the head, and what it was handed) once
    /// it has flushed this many times.
    Flushing(Tap, u64),
    Splicing(Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>),
    /// The upstream closed its end under a request body: waiting, at most the upstream's idle
    /// time, for hyper to read its answer (the connection's end drops the body sooner).
    Refused(Pin<Box<tokio::time::Sleep>>),
    /// Giving hyper this many bytes to drop.
    Filling(u64),
    Done,
}

/// Where a spliced body goes: the client's connection, or the upstream connection a request
/// body is sent on, set when one is picked (found in the request's extensions by
/// [`crate::upstream::Address::send`]).
#[derive(Clone, Default)]
pub struct Destination(Arc<Mutex<Option<Tap>>>);

impl Destination {
    pub fn new(tap: Tap) -> Self {
        Self(Arc::new(Mutex::new(Some(tap))))
    }

    pub fn set(&self, tap: Tap) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(tap);
    }

    fn get(&self) -> Option<Tap> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A body moved past hyper (see the module docs).
pub struct Spliced<B> {
    /// What hyper reads of the body on the receiving side.
    source: Option<B>,
    from: Tap,
    to: Destination,
    len: u64,
    handed: u64,
    /// How long each side may keep its socket waiting.
    idle: (Duration, Duration),
    flow: Flow,
    state: State,
}

/// Which way a spliced body goes.
pub enum Flow {
    /// A request body, from the client to an upstream.
    Request,
    /// A response body, from an upstream to the client; the gate opens once the server has
    /// handed the response to hyper (it travels in the response's extensions).
    Response(HeadGate),
}

/// The error [`splice`] ends with when the receiving side closed its end.
#[derive(Debug, thiserror::Error)]
#[error("the receiving side closed its end: {0}")]
struct Refused(#[source] io::Error);

impl<B> Spliced<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// `source`, a body of `len` bytes (its `Content-Length`) read by hyper from `from`, to be
    /// sent on `to`; `idle` is how long `from` and `to` may each keep the transfer waiting.
    pub fn new(source: B, from: Tap, to: Destination, len: u64, idle: (Duration, Duration), flow: Flow) -> Self {
        from.stop_reads();
        Self { source: Some(source), from, to, len, handed: 0, idle, flow, state: State::Draining }
    }

    /// Ends the body with `error`.
    fn fail(&mut self, error: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = State::Done;
        Poll::Ready(Some(Err(error)))
    }

    /// A frame hyper had read, passed on and counted.
    fn hand_on(
        &mut self,
        frame: Option<Result<Frame<Bytes>, B::Error>>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match frame {
            Some(Ok(frame)) => {
                self.handed += frame.data_ref().map_or(0, |d| d.len() as u64);
                if self.handed > self.len {
                    self.state = State::Done;
                    return Poll::Ready(Some(Err("more bytes than the Content-Length arrived".into())));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => self.fail(Box::new(SourceFailed(e.into()))),
            None => {
                self.state = State::Done;
                Poll::Ready(None)
            }
        }
    }
}

impl<B> Body for Spliced<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Draining => {
                    let Some(source) = this.source.as_mut() else { return Poll::Ready(None) };
                    if let Poll::Ready(frame) = Pin::new(&mut *source).poll_frame(cx) {
                        return this.hand_on(frame);
                    }
                    ready!(this.from.poll_read_blocked(cx));
                    // hyper asked for more than it had: a frame sent just before is in the
                    // channel now, and none comes after.
                    if let Poll::Ready(frame) = Pin::new(source).poll_frame(cx) {
                        return this.hand_on(frame);
                    }
                    if matches!(&this.flow, Flow::Response(gate) if !gate.is_open()) {
                        // Read by something before hyper had the response: nothing may go out.
                        return this.fail("the body was read before its response was sent".into());
                    }
                    let Some(to) = this.to.get() else { return this.fail("no connection to splice to".into()) };
                    // hyper is asking for the body, so it has queued the head: the next flush
                    // puts it on the socket.
                    let seen = to.flushes();
                    this.state = State::Flushing(to, seen);
                }
                State::Flushing(to, seen) => {
                    ready!(to.poll_flushed_since(*seen, cx));
                    let (from, to, left, idle) = (this.from.clone(), to.clone(), this.len - this.handed, this.idle);
                    this.state =
                        State::Splicing(Box::pin(async move { splice(from.stream(), to.stream(), left, idle).await }));
                }
                State::Splicing(moving) => {
                    match ready!(moving.as_mut().poll(cx)) {
                        Err(e) if matches!(this.flow, Flow::Request) && e.is::<Refused>() => {
                            tracing::debug!(error = %e, "the upstream closed its end under a request body");
                            this.state = State::Refused(Box::pin(tokio::time::sleep(this.idle.1)));
                            continue;
                        }
                        Err(e) => return this.fail(e),
                        Ok(()) => {}
                    }
                    let left = this.len - this.handed;
                    turtlemen_http::metrics::spliced(left);
                    if let Some(to) = this.to.get() {
                        to.discard(left);
                    }
                    // hyper still waits for the rest of it on the receiving side, which is
                    // therefore not used again.
                    this.source = None;
                    this.state = State::Filling(left);
                }
                State::Filling(left) => {
                    if *left == 0 {
                        this.state = State::Done;
                        continue;
                    }
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(FILLER.len());
                    *left -= n as u64;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILLER[..n])))));
                }
                // The connection's read side ends this: hyper drops the body with it.
                State::Refused(wait) => {
                    ready!(wait.as_mut().poll(cx));
                    return this.fail("the upstream closed its end under the body".into());
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len - self.handed)
    }
}

/// Moves `len` bytes from `from` to `to` through a pipe, each side keeping the other waiting at
/// most its idle time (then the error is [`IdleTimedOut`]).
async fn splice(from: &TcpStream, to: &TcpStream, mut len: u64, idle: (Duration, Duration)) -> Result<(), BoxError> {
    let (pipe_out, pipe_in) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    // A smaller pipe still works; only the number of system calls grows.
    let capacity = rustix::pipe::fcntl_setpipe_size(&pipe_in, PIPE_SIZE).unwrap_or(64 * 1024);
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    while len > 0 {
        // The pipe is empty here, so only an empty socket makes this wait.
        let want = usize::try_from(len).unwrap_or(usize::MAX).min(capacity);
        let fill = from.async_io(Interest::READABLE, || {
            rustix::pipe::splice(from, None, &pipe_in, None, want, flags).map_err(io::Error::from)
        });
        let mut in_pipe = tokio::time::timeout(idle.0, fill)
            .await
            .map_err(|_| IdleTimedOut(idle.0))?
            .map_err(|e| SourceFailed(e.into()))?;
        if in_pipe == 0 {
            let early = io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended early");
            return Err(SourceFailed(early.into()).into());
        }
        len -= in_pipe as u64;
        while in_pipe > 0 {
            let drain = to.async_io(Interest::WRITABLE, || {
                rustix::pipe::splice(&pipe_out, None, to, None, in_pipe, flags).map_err(io::Error::from)
            });
            match tokio::time::timeout(idle.1, drain).await.map_err(|_| IdleTimedOut(idle.1))? {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(sent) => in_pipe -= sent,
                Err(e) if turtlemen_http::tap::is_refusal(&e) => return Err(Refused(e).into()),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};
    use std::future::poll_fn;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

    async fn pair() -> (Tap, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (Tap::new(accepted.unwrap().0), client.unwrap())
    }

    /// A response body read by something before the server handed its response to hyper (a
    /// layer rendering an error page) ends with an error and sends nothing to the client.
    #[tokio::test]
    async fn a_response_body_read_before_hyper_has_the_response_is_not_spliced() {
        let (from, mut upstream) = pair().await;
        let (to, mut client) = pair().await;
        upstream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nPWNED").await.unwrap();
        let (_more, frames) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, io::Error>>(1);
        let gate = HeadGate::default();
        let idle = (Duration::from_secs(5), Duration::from_secs(5));
        let flow = Flow::Response(gate.clone());
        let mut body =
            Spliced::new(StreamBody::new(frames), from.clone(), Destination::new(to.clone()), 4096, idle, flow);
        // The upstream connection's reader asks for more: everything it had is handed on.
        let mut reader = from.clone();
        let mut storage = [0u8; 16];
        let asked = poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut storage);
            Poll::Ready(Pin::new(&mut reader).poll_read(cx, &mut buf).is_pending())
        });
        assert!(asked.await);
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame()).await;
        let err = frame.expect("the body ends at once").unwrap().unwrap_err();
        assert!(err.to_string().contains("before its response was sent"), "{err}");
        assert!(!gate.is_open());
        drop((body, to, reader, from));
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty(), "nothing went to the client: {got:?}");
    }
}
