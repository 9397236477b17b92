//! Reports of videos, comments and users, and the moderators' queue of them.
//!
//! A reporter has at most one open report per target (`reports_open_once`, a partial unique
//! index): a repeat is `INSERT … ON CONFLICT DO NOTHING` and answers the open report. The
//! queue lists open reports grouped by target, the most recently reported target first
//! (keyset on the group's newest report time and the target id). Resolving a target closes
//! every open report of it at once, recording who resolved it and how.

use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// What a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReportTarget)]
pub enum TargetKind {
    Video,
    Comment,
    User,
}

impl TargetKind {
    pub const ALL: [TargetKind; 3] = [TargetKind::Video, TargetKind::Comment, TargetKind::User];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Video => "video",
            TargetKind::Comment => "comment",
            TargetKind::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<TargetKind> {
        TargetKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How the reports of a target were resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReportResolution)]
pub enum Resolution {
    Hidden,
    Deleted,
    Dismissed,
    Warned,
    Banned,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Hidden => "hidden",
            Resolution::Deleted => "deleted",
            Resolution::Dismissed => "dismissed",
            Resolution::Warned => "warned",
            Resolution::Banned => "banned",
        }
    }

    pub fn parse(s: &str) -> Option<Resolution> {
        [Resolution::Hidden, Resolution::Deleted, Resolution::Dismissed, Resolution::Warned, Resolution::Banned]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// One report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub id: Uuid,
    pub reporter_id: UserId,
    pub reporter_username: String,
    pub target_kind: TargetKind,
    pub target_id: Uuid,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<UserId>,
    pub resolution: Option<Resolution>,
}

/// The open reports of one target, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetReports {
    pub kind: TargetKind,
    pub id: Uuid,
    /// When it was last reported: the queue's order.
    pub latest: DateTime<Utc>,
    pub reports: Vec<Report>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    reporter_id: Uuid,
    reporter_username: String,
    target_kind: String,
    target_id: Uuid,
    reason: String,
    created_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<Uuid>,
    resolution: Option<String>,
    latest: Option<DateTime<Utc>>,
}

impl Row {
    fn into_report(self) -> Option<(Report, Option<DateTime<Utc>>)> {
        Some((
            Report {
                id: self.id,
                reporter_id: UserId(self.reporter_id),
                reporter_username: self.reporter_username,
                target_kind: TargetKind::parse(&self.target_kind)?,
                target_id: self.target_id,
                reason: self.reason,
                created_at: self.created_at,
                resolved_at: self.resolved_at,
                resolved_by: self.resolved_by.map(UserId),
                resolution: self.resolution.as_deref().and_then(Resolution::parse),
            },
            self.latest,
        ))
    }
}

/// The outcome of filing a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filed {
    /// The open report (the new one, or the reporter's earlier one on this target).
    pub id: Uuid,
    /// `false`: the reporter had this target reported already; nothing was added.
    pub created: bool,
}

/// Files `reporter`'s report of a target, once: a second one while the first is open changes
/// nothing and answers the open one.
pub async fn file(db: &Db, reporter: UserId, kind: TargetKind, target: Uuid, reason: &str) -> Result<Filed, DbError> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO reports (id, reporter_id, target_kind, target_id, reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (reporter_id, target_kind, target_id) WHERE resolved_at IS NULL DO NOTHING",
            )
            .bind(id)
            .bind(reporter.0)
            .bind(kind.as_str())
            .bind(target)
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            let filed = if inserted {
                Filed { id, created: true }
            } else {
                let open: Uuid = sqlx::query_scalar(
                    "SELECT id FROM reports WHERE reporter_id = $1 AND target_kind = $2 AND target_id = $3 \
                     AND resolved_at IS NULL",
                )
                .bind(reporter.0)
                .bind(kind.as_str())
                .bind(target)
                .fetch_one(&mut *tx)
                .await?;
                Filed { id: open, created: false }
            };
            tx.commit().await?;
            Ok(filed)
        })
    })
    .await
}

/// One page of the queue: targets with open reports, the most recently reported first, after
/// the cursor `(latest, target id)` when paging; each with its open reports, newest first.
pub async fn queue(db: &Db, after: Option<(DateTime<Utc>, Uuid)>, limit: u32) -> Result<Vec<TargetReports>, DbError> {
    let (at, id) = after.unwrap_or((Utc::now() + chrono::TimeDelta::days(3650), Uuid::max()));
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT r.id, r.reporter_id, u.username AS reporter_username, r.target_kind, r.target_id, r.reason, \
             r.created_at, r.resolved_at, r.resolved_by, r.resolution, g.latest \
             FROM (SELECT target_kind, target_id, MAX(created_at) AS latest FROM reports WHERE resolved_at IS NULL \
                   GROUP BY target_kind, target_id \
                   HAVING MAX(created_at) < $1 OR (MAX(created_at) = $1 AND target_id < $2) \
                   ORDER BY latest DESC, target_id DESC LIMIT $3) g \
             JOIN reports r ON r.target_kind = g.target_kind AND r.target_id = g.target_id AND r.resolved_at IS NULL \
             JOIN users u ON u.id = r.reporter_id \
             ORDER BY g.latest DESC, r.target_id DESC, r.created_at DESC, r.id DESC",
        )
        .bind(at)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    let mut groups: Vec<TargetReports> = Vec::new();
    for (report, latest) in rows.into_iter().filter_map(Row::into_report) {
        match groups.last_mut() {
            Some(g) if g.kind == report.target_kind && g.id == report.target_id => g.reports.push(report),
            _ => groups.push(TargetReports {
                kind: report.target_kind,
                id: report.target_id,
                latest: latest.unwrap_or(report.created_at),
                reports: vec![report],
            }),
        }
    }
    Ok(groups)
}

/// The open reports of one target, newest first.
pub async fn open_for(db: &Db, kind: TargetKind, target: Uuid) -> Result<Vec<Report>, DbError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT r.id, r.reporter_id, u.username AS reporter_username, r.target_kind, r.target_id, r.reason, \
             r.created_at, r.resolved_at, r.resolved_by, r.resolution, r.created_at AS latest \
             FROM reports r JOIN users u ON u.id = r.reporter_id \
             WHERE r.target_kind = $1 AND r.target_id = $2 AND r.resolved_at IS NULL \
             ORDER BY r.created_at DESC, r.id DESC",
        )
        .bind(kind.as_str())
        .bind(target)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().filter_map(Row::into_report).map(|(r, _)| r).collect())
}

/// Closes every open report of a target as `resolution`, by `moderator`; returns how many.
pub async fn resolve(
    db: &Db,
    kind: TargetKind,
    target: Uuid,
    moderator: UserId,
    resolution: Resolution,
) -> Result<u64, DbError> {
    let now = Utc::now();
    retry_serializable(|| async {
        Ok(with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE reports SET resolved_at = $1, resolved_by = $2, resolution = $3 \
                 WHERE target_kind = $4 AND target_id = $5 AND resolved_at IS NULL",
            )
            .bind(now)
            .bind(moderator.0)
            .bind(resolution.as_str())
            .bind(kind.as_str())
            .bind(target)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    })
    .await
}

/// Every report of a target, open or resolved, newest first (for tests and the audit trail).
pub async fn all_for(db: &Db, kind: TargetKind, target: Uuid) -> Result<Vec<Report>, DbError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT r.id, r.reporter_id, u.username AS reporter_username, r.target_kind, r.target_id, r.reason, \
             r.created_at, r.resolved_at, r.resolved_by, r.resolution, r.created_at AS latest \
             FROM reports r JOIN users u ON u.id = r.reporter_id \
             WHERE r.target_kind = $1 AND r.target_id = $2 ORDER BY r.created_at DESC, r.id DESC",
        )
        .bind(kind.as_str())
        .bind(target)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().filter_map(Row::into_report).map(|(r, _)| r).collect())
}
