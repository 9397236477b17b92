//! Live chat in the database: messages with their stream time, their removal, and timeouts.
//!
//! A message is written once ([`post`]) and never edited; a removal ([`remove`]) marks the row
//! and it is never read again. Reads ([`recent`], [`replay_page`]) leave out removed messages
//! and those of banned authors, so a ban hides a user's chat as it hides their comments. The
//! replay is keyset-paged on `(stream_ms, id)` in stream order. A timeout ([`time_out`]) is one
//! row per live and user holding the time it ends; [`timed_out_until`] says whether it still
//! runs. This module checks nothing about who may do what: the API does.

use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// A chat message with its author's names.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Uuid,
    pub live_id: Uuid,
    pub author_id: UserId,
    pub author_username: String,
    pub author_display_name: String,
    pub text: String,
    /// Milliseconds since the live started (0 before it did).
    pub stream_ms: i64,
    pub created_at: DateTime<Utc>,
}

/// A message to keep.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: Uuid,
    pub live_id: Uuid,
    pub author_id: UserId,
    pub text: String,
    pub stream_ms: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    live_id: Uuid,
    author_id: Uuid,
    author_username: String,
    author_display_name: String,
    text: String,
    stream_ms: i64,
    created_at: DateTime<Utc>,
}

impl From<Row> for Message {
    fn from(r: Row) -> Message {
        Message {
            id: r.id,
            live_id: r.live_id,
            author_id: UserId(r.author_id),
            author_username: r.author_username,
            author_display_name: r.author_display_name,
            text: r.text,
            stream_ms: r.stream_ms,
            created_at: r.created_at,
        }
    }
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT m.id, m.live_id, m.author_id, u.username AS author_username, \
             u.display_name AS author_display_name, m.text, m.stream_ms, m.created_at \
             FROM chat_messages m JOIN users u ON u.id = m.author_id AND u.banned_at IS NULL \
             WHERE m.deleted_at IS NULL AND ",
            $rest
        )
    };
}

/// Keeps a message.
pub async fn post(db: &Db, m: &NewMessage) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO chat_messages (id, live_id, author_id, text, stream_ms, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(m.id)
            .bind(m.live_id)
            .bind(m.author_id.0)
            .bind(&m.text)
            .bind(m.stream_ms)
            .bind(m.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    })
    .await
}

/// One shown message of `live`.
pub async fn get(db: &Db, live: Uuid, id: Uuid) -> Result<Option<Message>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!("m.live_id = $1 AND m.id = $2")).bind(live).bind(id).fetch_optional(pool).await?
    });
    Ok(row.map(Message::from))
}

/// The last `limit` shown messages of `live`, oldest first (what a new viewer sees).
pub async fn recent(db: &Db, live: Uuid, limit: u32) -> Result<Vec<Message>, DbError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!("m.live_id = $1 ORDER BY m.created_at DESC, m.id DESC LIMIT $2"))
            .bind(live)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
    });
    let mut out: Vec<Message> = rows.into_iter().map(Message::from).collect();
    out.reverse();
    Ok(out)
}

/// Shown messages of `live` in stream order after the keyset position `after`
/// (`stream_ms`, id), or from stream time `from_ms` when there is no position.
pub async fn replay_page(
    db: &Db,
    live: Uuid,
    after: Option<(i64, Uuid)>,
    from_ms: i64,
    limit: u32,
) -> Result<Vec<Message>, DbError> {
    // The nil id sorts before every other: from `from_ms` inclusive.
    let (ms, id) = after.unwrap_or((from_ms, Uuid::nil()));
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!(
            "m.live_id = $1 AND (m.stream_ms > $2 OR (m.stream_ms = $2 AND m.id > $3)) \
             ORDER BY m.stream_ms, m.id LIMIT $4"
        ))
        .bind(live)
        .bind(ms)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Message::from).collect())
}

/// Removes a message of `live` (by `by`); true if this call removed it.
pub async fn remove(db: &Db, live: Uuid, id: Uuid, by: UserId) -> Result<bool, DbError> {
    let now = Utc::now();
    retry_serializable(|| async {
        let done = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE chat_messages SET deleted_at = $3, deleted_by = $4 \
                 WHERE live_id = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .bind(live)
            .bind(id)
            .bind(now)
            .bind(by.0)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    })
    .await
}

/// Forbids `user` to write in `live` until `until` (replacing any earlier timeout).
pub async fn time_out(db: &Db, live: Uuid, user: UserId, until: DateTime<Utc>, by: UserId) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO chat_timeouts (live_id, user_id, until, by_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (live_id, user_id) DO UPDATE SET until = excluded.until, by_id = excluded.by_id",
            )
            .bind(live)
            .bind(user.0)
            .bind(until)
            .bind(by.0)
            .execute(pool)
            .await?;
        });
        Ok(())
    })
    .await
}

/// When `user`'s timeout in `live` ends, if one runs at `now`.
pub async fn timed_out_until(
    db: &Db,
    live: Uuid,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbError> {
    let until: Option<DateTime<Utc>> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT until FROM chat_timeouts WHERE live_id = $1 AND user_id = $2")
            .bind(live)
            .bind(user.0)
            .fetch_optional(pool)
            .await?
    });
    Ok(until.filter(|u| *u > now))
}
