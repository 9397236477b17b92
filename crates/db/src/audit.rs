//! The security audit log: logins, failures, lockouts, password and second-factor changes,
//! session revocations — with time, IP and user agent.

use crate::{Db, DbError, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Time-ordered (UUID v7): the cursor of a page.
    pub id: Uuid,
    pub user_id: Option<UserId>,
    pub event: String,
    pub ip: String,
    pub user_agent: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    user_id: Option<Uuid>,
    event: String,
    ip: String,
    user_agent: String,
    detail: String,
    created_at: DateTime<Utc>,
}

/// Records an event. `event` is a stable snake_case name (`login`, `login_failed`, …).
pub async fn record(
    db: &Db,
    user_id: Option<UserId>,
    event: &str,
    ip: &str,
    user_agent: &str,
    detail: &str,
) -> Result<(), DbError> {
    with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO audit_events (id, user_id, event, ip, user_agent, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(user_id.map(|u| u.0))
        .bind(event)
        .bind(ip)
        .bind(user_agent)
        .bind(detail)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// A user's own events, newest first.
pub async fn for_user(db: &Db, user_id: UserId, limit: i64) -> Result<Vec<AuditEvent>, DbError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT id, user_id, event, ip, user_agent, detail, created_at FROM audit_events \
             WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
        )
        .bind(user_id.0)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(AuditEvent::from).collect())
}

impl From<Row> for AuditEvent {
    fn from(r: Row) -> Self {
        AuditEvent {
            id: r.id,
            user_id: r.user_id.map(UserId),
            event: r.event,
            ip: r.ip,
            user_agent: r.user_agent,
            detail: r.detail,
            created_at: r.created_at,
        }
    }
}

/// One page of events, newest first: those of `user_id` (every user's when `None`) older than
/// the event `before` (from the start when `None`), at most `limit`.
pub async fn page(
    db: &Db,
    user_id: Option<UserId>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AuditEvent>, DbError> {
    // The max UUID sorts after every v7 id: no cursor means from the newest.
    let before = before.unwrap_or(Uuid::max());
    let rows: Vec<Row> = match user_id {
        Some(user) => with_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT id, user_id, event, ip, user_agent, detail, created_at FROM audit_events \
                 WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(user.0)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }),
        None => with_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT id, user_id, event, ip, user_agent, detail, created_at FROM audit_events \
                 WHERE id < $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }),
    };
    Ok(rows.into_iter().map(AuditEvent::from).collect())
}
