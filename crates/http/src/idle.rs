//! An idle limit for connections hyper has no timer for: an HTTP/2 connection with no request
//! in progress, or any connection on which no request has come yet, is shut down gracefully
//! (HTTP/2: `GOAWAY`) once it has been so for the header read time. HTTP/1.1 connections that
//! have had a request are left to hyper's own header read timer, which runs between requests.
//!
//! [`Activity`] counts one connection's requests in progress: [`Activity::begin`] when the
//! service is called, and the returned [`Busy`] rides in the response body ([`Tracked`]), over
//! HTTP/1.1 as over HTTP/2, until the body is done or dropped. So "no request in progress" is
//! exact: no handler runs and no response is being sent. [`Watched`] drives the connection and
//! calls its graceful shutdown once the limit is reached, when the server stops, or when the
//! server asks it to make room.
//!
//! At the connection cap the server makes room as nginx does when it runs out of connections:
//! [`Open::close_longest_idle`] asks the connection with no request in progress that has been
//! so the longest (a kept-alive one between requests, one that has sent nothing yet, or one
//! still sending a request head) to close, so a new visitor is served at once instead of
//! waiting for an idle limit, and a flood of idle connections only ever displaces itself.
//! hyper's graceful shutdown waits for a request head that is partway in (a slowloris would
//! keep its slot until the header read time), so a connection asked to make room that has
//! still had no request in progress for [`ROOM_GRACE`] is dropped outright ([`Watched`] then
//! ends with `None`). The grace lets a response that has just ended leave hyper's buffer.

use futures::task::AtomicWaker;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// One connection's requests in progress.
pub struct Activity {
    /// When the connection was opened: the clock of `idle_since`.
    opened: Instant,
    in_progress: AtomicUsize,
    /// Microseconds from `opened` to when the last request in progress ended (fine enough to
    /// tell which of two connections turned idle first).
    idle_since_us: AtomicU64,
    /// Whether a request has come, and whether the first was HTTP/2.
    requested: AtomicBool,
    http2: AtomicBool,
    /// Whether the server asked this connection to close to make room.
    close_asked: AtomicBool,
    close_waker: AtomicWaker,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_progress: AtomicUsize::new(0),
            idle_since_us: AtomicU64::new(0),
            requested: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            close_asked: AtomicBool::new(false),
            close_waker: AtomicWaker::new(),
        })
    }

    /// Since when the connection has had no request in progress; `None` while one is.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_progress.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.opened + Duration::from_micros(self.idle_since_us.load(Ordering::Acquire)))
    }

    /// Asks the connection to close gracefully (see [`Open::close_longest_idle`]).
    fn ask_to_close(&self) {
        self.close_asked.store(true, Ordering::Release);
        self.close_waker.wake();
    }

    /// Ready once the server has asked this connection to close.
    pub fn poll_close_asked(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.close_asked.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.close_waker.register(cx.waker());
        if self.close_asked.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Resolves once the server has asked this connection to close.
    pub async fn close_asked(&self) {
        std::future::poll_fn(|cx| self.poll_close_asked(cx)).await;
    }

    /// A request of `version` begins; it is in progress until the [`Busy`] is dropped.
    pub fn begin(self: &Arc<Self>, version: http::Version) -> Busy {
        if !self.requested.swap(true, Ordering::Relaxed) {
            self.http2.store(version == http::Version::HTTP_2, Ordering::Relaxed);
        }
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// When the limit is reached if nothing begins meanwhile; `None` while a request is in
    /// progress or when hyper's own timer looks after the connection.
    fn deadline(&self, limit: Duration) -> Option<Instant> {
        let watched = !self.requested.load(Ordering::Relaxed) || self.http2.load(Ordering::Relaxed);
        if !watched || self.in_progress.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.opened + Duration::from_micros(self.idle_since_us.load(Ordering::Acquire)) + limit)
    }
}

/// The server's open connections, for making room at the cap.
#[derive(Default)]
pub struct Open {
    connections: Mutex<HashMap<u64, Weak<Activity>>>,
    next: AtomicU64,
}

/// A connection counted in [`Open`] until this is dropped.
pub struct Registered {
    open: Arc<Open>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.connections.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

impl Open {
    /// Counts `activity`'s connection as open until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, activity: &Arc<Activity>) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).insert(id, Arc::downgrade(activity));
        Registered { open: self.clone(), id }
    }

    /// Asks the connection that has had no request in progress the longest, and has not been
    /// asked already, to close (none when every one is busy).
    pub fn close_longest_idle(&self) {
        let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let longest = connections
            .values()
            .filter_map(Weak::upgrade)
            .filter(|a| !a.close_asked.load(Ordering::Acquire))
            .filter_map(|a| Some((a.idle_since()?, a)))
            .min_by_key(|(since, _)| *since);
        drop(connections);
        if let Some((_, activity)) = longest {
            activity.ask_to_close();
            crate::metrics::closed_at_cap();
        }
    }
}

/// A request in progress (see [`Activity::begin`]).
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let now = u64::try_from(self.0.opened.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.0.idle_since_us.fetch_max(now, Ordering::AcqRel);
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body carrying a [`Busy`] until it is done.
pub struct Tracked<B> {
    inner: B,
    busy: Option<Busy>,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, busy: Busy) -> Self {
        Self { inner, busy: Some(busy) }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// How long a connection asked to make room may go on with no request in progress before it
/// is dropped outright (see the module docs).
pub const ROOM_GRACE: Duration = Duration::from_secs(1);

/// A connection shut down gracefully once idle past `limit` (see the module docs), or once
/// the server stops; dropped once asked to make room and idle for [`ROOM_GRACE`].
pub struct Watched<C> {
    conn: Pin<Box<C>>,
    shutdown: fn(Pin<&mut C>),
    activity: Arc<Activity>,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    shutting_down: bool,
    /// Asked to make room: the timer now watches for [`ROOM_GRACE`].
    making_room: bool,
}

impl<C> Watched<C> {
    /// Drives `conn` (shut down gracefully by `shutdown`) until it ends; `stop` resolving
    /// shuts it down too.
    pub fn new(
        conn: C,
        shutdown: fn(Pin<&mut C>),
        activity: Arc<Activity>,
        limit: Duration,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        let timer = Box::pin(tokio::time::sleep(limit));
        Self {
            conn: Box::pin(conn),
            shutdown,
            activity,
            limit,
            timer,
            stop: Box::pin(stop),
            shutting_down: false,
            making_room: false,
        }
    }

    fn shut_down(&mut self, cx: &mut Context<'_>) {
        self.shutting_down = true;
        (self.shutdown)(self.conn.as_mut());
        // The shutdown is carried out by polling the connection again.
        cx.waker().wake_by_ref();
    }
}

impl<C: Future> Future for Watched<C> {
    /// The connection's own end, or `None` when it was dropped to make room.
    type Output = Option<C::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.conn.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if !self.shutting_down && self.stop.as_mut().poll(cx).is_ready() {
            self.shut_down(cx);
        }
        if !self.making_room && self.activity.poll_close_asked(cx).is_ready() {
            self.making_room = true;
            if !self.shutting_down {
                self.shut_down(cx);
            }
            let now = Instant::now();
            self.timer.as_mut().reset(now);
        }
        while (self.making_room || !self.shutting_down) && self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let next = if self.making_room {
                match self.activity.idle_since() {
                    Some(since) if since + ROOM_GRACE <= now => return Poll::Ready(None),
                    Some(since) => since + ROOM_GRACE,
                    // A request in progress ends as it would; the shutdown closes after it.
                    None => now + ROOM_GRACE,
                }
            } else {
                match self.activity.deadline(self.limit) {
                    Some(at) if at <= now => {
                        self.shut_down(cx);
                        continue;
                    }
                    Some(at) => at,
                    // Busy, or hyper's: look again after another limit.
                    None => now + self.limit,
                }
            };
            self.timer.as_mut().reset(next);
        }
        Poll::Pending
    }
}
