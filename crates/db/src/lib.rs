//! The application database: one query layer over SQLite and PostgreSQL.
//!
//! [`Db`] is an enum of two sqlx pools. Repository functions write each query once, in the SQL
//! subset both engines (and CockroachDB) accept — `$1` placeholders, UUID keys made by the
//! application, `RETURNING`, no sequences, no advisory locks, no triggers — and the
//! [`with_pool!`] macro runs it against whichever pool is live, so every query is type-checked
//! for both drivers at compile time. Migrations live in `migrations/{sqlite,postgres}`, one file
//! per step in each, embedded in the binary and run without the migrator's advisory lock.
//!
//! Callers get domain types and [`DbError`]; nothing above this crate sees sqlx.

pub mod audit;
pub mod auth_sessions;
pub mod backup;
pub mod channels;
pub mod chat;
pub mod clients;
pub mod comment_notifications;
pub mod comments;
pub mod consents;
pub mod email_tokens;
mod error;
pub mod feed_heads;
pub mod history;
pub mod identities;
pub mod jobs;
pub mod lives;
pub mod moderation;
pub mod notifications;
pub mod playlists;
mod pool;
pub mod ratings;
pub mod refresh_tokens;
pub mod refusals;
pub mod reports;
mod retry;
pub mod search;
pub mod seed;
pub mod signing_keys;
pub mod stats;
pub mod subscriptions;
pub mod totp;
pub mod trending;
mod trouble;
pub mod uploads;
pub mod users;
pub mod videos;
pub mod watch_state;

pub use error::DbError;
pub use pool::{Backend, Db, DbOptions};
pub use retry::retry_serializable;

/// Runs `$body` with `$pool` bound to the live sqlx pool, whichever backend it is.
///
/// The body is compiled once per backend, so a query that binds a type one driver cannot encode
/// fails to build rather than at run time.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
