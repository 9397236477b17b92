//! Large bodies moved from one socket to the other with `splice(2)`, through a pipe, without
//! being copied into the gateway: a proxy that copies reaches about half the throughput of the
//! upstream alone on one machine, one that splices nearly all of it.
//!
//! Taken when both sides are plain HTTP/1.1 connections ([`Tap`]s) and the body's length is
//! known and at least [`MIN_LEN`]: a response body from the upstream to the client, or a
//! request body from the client to the upstream. [`Spliced`] is the body hyper sends:
//! 1. it hands on what hyper had already read of the body on the receiving side (whose reads
//!    are stopped first, so this ends once hyper asks that socket for more);
//! 2. it waits until hyper has written all that on the sending side;
//! 3. it splices the rest from socket to socket, each side waiting for its socket at most its
//!    idle time;
//! 4. it gives hyper as many zero bytes as were spliced, which the sending side's tap drops, so
//!    hyper counts the body whole and that connection stays alive.
//!
//! The receiving connection is not read by hyper again: an upstream connection is closed once
//! the response is over, a client connection after its response (hyper says `connection:
//! close`). Any failure ends the body with an error, which closes the connection, as when a
//! copied body breaks off.

use crate::body::IdleTimedOut;
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
use turtlemen_http::tap::Tap;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bodies shorter than this are copied: a pipe and the hand-over cost more than they save.
pub const MIN_LEN: u64 = 1024 * 1024;

/// The pipe between the sockets (Linux's default limit for an unprivileged process).
const PIPE_SIZE: usize = 1024 * 1024;

/// What hyper is given to count for spliced bytes (the client's tap drops them).
static ZEROS: [u8; 256 * 1024] = [0; 256 * 1024];

enum State {
    /// Handing on what hyper had already read.
    Draining,
    /// Waiting for hyper to write out what it was handed.
    Flushing,
    Splicing(Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>),
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
    state: State,
}

impl<B> Spliced<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// `source`, a body of `len` bytes (its `Content-Length`) read by hyper from `from`, to be
    /// sent on `to`; `idle` is how long `from` and `to` may each keep the transfer waiting.
    pub fn new(source: B, from: Tap, to: Destination, len: u64, idle: (Duration, Duration)) -> Self {
        from.stop_reads();
        Self { source: Some(source), from, to, len, handed: 0, idle, state: State::Draining }
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
            Some(Err(e)) => {
                self.state = State::Done;
                Poll::Ready(Some(Err(e.into())))
            }
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
                    this.state = State::Flushing;
                }
                State::Flushing => {
                    let Some(to) = this.to.get() else {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err("no connection to splice to".into())));
                    };
                    ready!(to.poll_flushed(cx));
                    let (from, left, idle) = (this.from.clone(), this.len - this.handed, this.idle);
                    this.state =
                        State::Splicing(Box::pin(async move { splice(from.stream(), to.stream(), left, idle).await }));
                }
                State::Splicing(moving) => {
                    if let Err(e) = ready!(moving.as_mut().poll(cx)) {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(e)));
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
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(ZEROS.len());
                    *left -= n as u64;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))));
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
        let mut in_pipe = tokio::time::timeout(idle.0, fill).await.map_err(|_| IdleTimedOut(idle.0))??;
        if in_pipe == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended early").into());
        }
        len -= in_pipe as u64;
        while in_pipe > 0 {
            let drain = to.async_io(Interest::WRITABLE, || {
                rustix::pipe::splice(&pipe_out, None, to, None, in_pipe, flags).map_err(io::Error::from)
            });
            match tokio::time::timeout(idle.1, drain).await.map_err(|_| IdleTimedOut(idle.1))?? {
                0 => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                sent => in_pipe -= sent,
            }
        }
    }
    Ok(())
}
