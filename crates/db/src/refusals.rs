//! Failing fast while PostgreSQL refuses connections.
//!
//! sqlx's pool takes a refused connection for a server starting up and tries again until the
//! acquire timeout (5 s) has passed, so while PostgreSQL is down every request waited those
//! 5 s before its 503. Here a watcher per pool ([`Db::watch_refusals`], run by each server)
//! answers a sign of trouble — a pooled connection that fails its check before use, or any
//! error sorted as [`crate::DbError::Unavailable`] — with one TCP connect of its own to the server. If
//! that connect is refused, the pool is pointed at a socket that does not exist, so that every
//! acquisition (and every one already waiting, at its next try) fails at once with
//! `Unavailable` (503 + `Retry-After`); meanwhile the watcher tries the server's port every
//! [`PROBE_EVERY`], and once it accepts, the pool is given its own address back. Only a refusal
//! opens it: a server that is slow or unreachable (a timeout) is waited for as before.
//!
//! It never touches a pool that is working, and holds no pool outside [`Db::watch_refusals`],
//! whose caller bounds its life.

use crate::Db;
use sqlx::postgres::PgConnectOptions;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How often a refusing server is tried again.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The longest wait for the probe's connect: past it, the server is not refusing.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Woken on every sign of trouble, in any pool of the process; each watcher then checks its
/// own server (one connect, only when something failed).
static SUSPECT: Notify = Notify::const_new();

/// How many pools are failing fast now (to name the cause in their errors).
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Something failed the way a server that went away makes things fail.
pub(crate) fn suspect() {
    crate::trouble::seen();
    SUSPECT.notify_waiters();
}

/// Whether `e` is the failure of a pool pointed away by this module.
pub(crate) fn is_ours(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound && OPEN.load(Ordering::Relaxed) > 0
}

/// The message of a failure made by this module.
pub(crate) const REFUSED: &str =
    "the database server refuses connections; requests fail at once until it accepts them again";

/// What a probe of the server found.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    Refused,
    /// Accepted, or not known to refuse (a timeout, a name that does not resolve…).
    NotRefused,
}

async fn probe(opts: &PgConnectOptions) -> Probe {
    let refused =
        |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound);
    let socket =
        opts.get_socket().cloned().or_else(|| opts.get_host().starts_with('/').then(|| opts.get_host().into()));
    let attempt = async {
        match socket {
            #[cfg(unix)]
            Some(dir) => {
                let path = dir.join(format!(".s.PGSQL.{}", opts.get_port()));
                tokio::net::UnixStream::connect(path).await.map(drop)
            }
            #[cfg(not(unix))]
            Some(_) => Ok(()),
            None => tokio::net::TcpStream::connect((opts.get_host(), opts.get_port())).await.map(drop),
        }
    };
    match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(Err(e)) if refused(&e) => Probe::Refused,
        _ => Probe::NotRefused,
    }
}

impl Db {
    /// Watches this pool's server until `stop` resolves, making the pool fail at once while
    /// the server refuses connections (see the module docs). Returns at once for SQLite.
    pub async fn watch_refusals(&self, stop: impl Future<Output = ()>) {
        let Db::Postgres(pool) = self else { return };
        let own = (*pool.connect_options()).clone();
        // A directory that does not exist: connecting there fails with `NotFound` at once,
        // an error the pool does not wait out.
        let away = own.clone().socket("/nonexistent/turtlemen-refused");
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = SUSPECT.notified() => {}
            }
            if probe(&own).await == Probe::NotRefused {
                continue;
            }
            let target = format!("{}:{}", own.get_host(), own.get_port());
            tracing::warn!(database.address = %target, "the database refuses connections; failing requests at once until it accepts them");
            pool.set_connect_options(away.clone());
            OPEN.fetch_add(1, Ordering::Relaxed);
            let stopped = loop {
                tokio::select! {
                    () = &mut stop => break true,
                    () = tokio::time::sleep(PROBE_EVERY) => {}
                }
                if probe(&own).await == Probe::NotRefused {
                    break false;
                }
            };
            pool.set_connect_options(own.clone());
            OPEN.fetch_sub(1, Ordering::Relaxed);
            if stopped {
                return;
            }
            tracing::info!(database.address = %target, "the database accepts connections again");
        }
    }
}
