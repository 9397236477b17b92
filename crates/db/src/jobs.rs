//! The durable job queue: long work (transcodes, thumbnails…) recorded in the application
//! database and run by workers, on SQLite, PostgreSQL and CockroachDB alike.
//!
//! A job is `queued` until a worker claims it; the claim takes a *lease* (an owner id and an
//! expiry) and makes it `running`; the worker renews the lease while it works ([`renew`]) and
//! ends with [`complete`] or [`fail`]. A job whose lease expired — its worker was killed or
//! lost the network — is claimable again (at once when a restarted worker knows the old owner is
//! dead and ends its leases: [`release_owner`]), so delivery is **at least once** and handlers must be
//! idempotent. Every settling write checks the lease (owner and attempt), so a worker that lost
//! its lease cannot overwrite the result of the worker that took the job over. A failure with
//! attempts left re-queues the job after an exponential, jittered [`Backoff`]; out of attempts
//! (or a permanent failure) the job is `failed` and keeps its error text for admins ([`list`]).
//!
//! Claiming is one statement per backend: on PostgreSQL/CockroachDB an `UPDATE … RETURNING`
//! whose target rows come from `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent claimers never
//! wait on or share a row; on SQLite the same `UPDATE … RETURNING` inside `BEGIN IMMEDIATE`,
//! which serialises writers on the file.
//!
//! This module must never use LISTEN/NOTIFY, advisory locks, sequences or triggers (DESIGN.md):
//! workers poll. It knows nothing about what a job does; payloads are opaque JSON.

use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;
use uuid::Uuid;

/// Attempts a job gets unless its enqueuer says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The longest error text kept with a job; longer text is cut at a character boundary.
pub const MAX_ERROR_BYTES: usize = 16 * 1024;

/// The name of a kind of job, in snake_case (`transcode_video`). Built only from a literal by
/// [`JobKind::new`], which refuses anything else at compile time when used in a `const`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobKind(&'static str);

impl JobKind {
    /// A job kind; panics (at compile time in a `const`) unless `name` is snake_case ASCII:
    /// a lowercase letter, then lowercase letters, digits and single underscores, at most 64.
    pub const fn new(name: &'static str) -> JobKind {
        assert!(Self::is_valid(name), "a job kind is snake_case: [a-z][a-z0-9_]*, at most 64 bytes");
        JobKind(name)
    }

    /// Whether `name` is a well-formed kind.
    pub const fn is_valid(name: &str) -> bool {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > 64 || !b[0].is_ascii_lowercase() || b[b.len() - 1] == b'_' {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let ok = c.is_ascii_lowercase() || c.is_ascii_digit() || (c == b'_' && b[i - 1] != b'_');
            if !ok {
                return false;
            }
            i += 1;
        }
        true
    }

    pub const fn as_str(&self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    /// A state by name, as admins type it.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::from_stored(s).ok()
    }

    fn from_stored(s: &str) -> Result<JobState, DbError> {
        match s {
            "queued" => Ok(JobState::Queued),
            "running" => Ok(JobState::Running),
            "succeeded" => Ok(JobState::Succeeded),
            "failed" => Ok(JobState::Failed),
            other => Err(decode_error(format!("unknown job state {other:?}"))),
        }
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: JobKind,
    pub payload: &'a serde_json::Value,
    /// Names the logical job: a second enqueue with the same key is a no-op for as long as the
    /// first job's row exists (whatever its state). Build it from ids, e.g. `transcode:{video}`.
    pub idempotency_key: Option<&'a str>,
    /// At least 1.
    pub max_attempts: u32,
    /// Not before this time; `None` for now.
    pub run_at: Option<DateTime<Utc>>,
}

impl<'a> NewJob<'a> {
    /// A job due now, with [`DEFAULT_MAX_ATTEMPTS`] and no idempotency key.
    pub fn new(kind: JobKind, payload: &'a serde_json::Value) -> NewJob<'a> {
        NewJob { kind, payload, idempotency_key: None, max_attempts: DEFAULT_MAX_ATTEMPTS, run_at: None }
    }

    pub fn idempotency_key(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
}

/// The result of [`enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: Uuid,
    /// `false` when a job with the same idempotency key already existed (`id` is that job's).
    pub created: bool,
}

/// Records a job inside a caller's transaction, so the job exists exactly when the change that
/// asks for it does. Binds: id, kind, payload (JSON text), max attempts, now, idempotency key,
/// `traceparent` ([`turtlemen_domain::trace::current_header`]). With the key already used
/// nothing is written.
pub const ENQUEUE: &str = "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_at, idempotency_key, created_at, updated_at, traceparent) \
     VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $5, $5, $7) ON CONFLICT (idempotency_key) DO NOTHING";

/// Records a job. With an idempotency key already used, nothing is written and the existing
/// job's id is returned.
pub async fn enqueue(db: &Db, job: &NewJob<'_>) -> Result<Enqueued, DbError> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    let run_at = job.run_at.unwrap_or(now);
    let payload = job.payload.to_string();
    let max_attempts = i64::from(job.max_attempts.max(1));
    let traceparent = turtlemen_domain::trace::current_header();
    retry_serializable(|| async {
        let inserted: Option<Uuid> = with_pool!(db, |pool| {
            sqlx::query_scalar(
                "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_at, idempotency_key, created_at, updated_at, traceparent) \
                 VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7, $7, $8) \
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            )
            .bind(id)
            .bind(job.kind.as_str())
            .bind(&payload)
            .bind(max_attempts)
            .bind(run_at)
            .bind(job.idempotency_key)
            .bind(now)
            .bind(&traceparent)
            .fetch_optional(pool)
            .await?
        });
        if let Some(id) = inserted {
            return Ok(Enqueued { id, created: true });
        }
        let existing: Option<Uuid> = with_pool!(db, |pool| {
            sqlx::query_scalar("SELECT id FROM jobs WHERE idempotency_key = $1")
                .bind(job.idempotency_key)
                .fetch_optional(pool)
                .await?
        });
        match existing {
            Some(id) => Ok(Enqueued { id, created: false }),
            // The conflicting row vanished between the two statements: try again.
            None => Err(DbError::Query(sqlx::Error::Protocol("idempotency key conflict without a row".into()))),
        }
    })
    .await
}

/// Records a job like [`enqueue`], or — when a job with the same idempotency key has already
/// settled (`succeeded` or `failed`) — queues that job again, due now, with its attempts reset
/// and its payload kept (so a job that checkpoints its progress in the payload resumes from
/// it). A queued or running job is left alone: it runs anyway. Returns whether a job is now
/// queued because of this call.
///
/// For work that must happen again when its cause happens again (a video made public after a
/// fan-out that found it private), where [`enqueue`] would be a no-op for as long as the old
/// row lives.
pub async fn enqueue_again(db: &Db, job: &NewJob<'_>) -> Result<bool, DbError> {
    requeue(db, job, false).await
}

/// Like [`enqueue_again`], but the job starts over from `job`'s payload instead of its own: a
/// settled one queued again, and a queued one (waiting for a retry with its checkpoint) too.
/// For work whose earlier progress may no longer cover what the cause now asks for (a video
/// listed again must reach feeds built while it was not). A running job is left alone: what it
/// has done is kept.
pub async fn enqueue_afresh(db: &Db, job: &NewJob<'_>) -> Result<bool, DbError> {
    requeue(db, job, true).await
}

async fn requeue(db: &Db, job: &NewJob<'_>, afresh: bool) -> Result<bool, DbError> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    let payload = job.payload.to_string();
    let max_attempts = i64::from(job.max_attempts.max(1));
    let traceparent = turtlemen_domain::trace::current_header();
    retry_serializable(|| async {
        let queued: Option<Uuid> = with_pool!(db, |pool| {
            sqlx::query_scalar(
                "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_at, idempotency_key, created_at, updated_at, traceparent) \
                 VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $5, $5, $8) \
                 ON CONFLICT (idempotency_key) DO UPDATE SET state = 'queued', attempts = 0, run_at = $5, updated_at = $5, \
                 last_error = NULL, traceparent = $8, payload = CASE WHEN $7 THEN $3 ELSE jobs.payload END \
                 WHERE jobs.state IN ('succeeded', 'failed') OR ($7 AND jobs.state = 'queued') RETURNING id",
            )
            .bind(id)
            .bind(job.kind.as_str())
            .bind(&payload)
            .bind(max_attempts)
            .bind(job.run_at.unwrap_or(now))
            .bind(job.idempotency_key)
            .bind(afresh)
            .bind(&traceparent)
            .fetch_optional(pool)
            .await?
        });
        Ok(queued.is_some())
    })
    .await
}

/// Replaces the payload of a running job, if `lease` still holds it: a long job records how far
/// it got, so the attempt that takes over after a crash resumes there. `false`: the lease is no
/// longer this worker's — stop working on the job.
pub async fn checkpoint(db: &Db, lease: &Lease, payload: &serde_json::Value) -> Result<bool, DbError> {
    let text = payload.to_string();
    let n = retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE jobs SET payload = $1, updated_at = $2 \
                 WHERE id = $3 AND state = 'running' AND lease_owner = $4 AND attempts = $5",
            )
            .bind(&text)
            .bind(Utc::now())
            .bind(lease.job_id)
            .bind(lease.owner)
            .bind(i64::from(lease.attempt))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    })
    .await?;
    Ok(n == 1)
}

/// The payload of a job (for tests and admins).
pub async fn payload(db: &Db, id: Uuid) -> Result<Option<serde_json::Value>, DbError> {
    let text: Option<String> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT payload FROM jobs WHERE id = $1").bind(id).fetch_optional(pool).await?
    });
    text.map(|t| serde_json::from_str(&t).map_err(|e| decode_error(format!("job payload: {e}")))).transpose()
}

/// Proof of a claim: which job, which owner, which attempt. Settling writes match all three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: Uuid,
    pub owner: Uuid,
    /// 1 for the first run.
    pub attempt: u32,
    pub max_attempts: u32,
}

/// A job a worker now holds.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub lease: Lease,
    pub kind: String,
    pub payload: serde_json::Value,
    pub lease_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The W3C `traceparent` of the work that enqueued the job (a request, or another job), as
    /// recorded; `None` for work outside any trace. Continued by the worker that runs it.
    pub traceparent: Option<String>,
}

/// What [`claim`] asks for.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    /// The claiming worker (one id per worker process or per [`claim`] caller).
    pub owner: Uuid,
    /// Only jobs of these kinds (the ones the worker has handlers for).
    pub kinds: &'a [&'a str],
    /// At most this many jobs.
    pub limit: u32,
    /// How long the lease lasts before it must be renewed.
    pub lease: Duration,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: Uuid,
    kind: String,
    payload: String,
    attempts: i64,
    max_attempts: i64,
    lease_expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    traceparent: Option<String>,
}

/// Marks `failed` the running jobs whose lease expired on their last attempt.
const REAP_SQL: &str = "UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_expires_at = NULL, updated_at = $1, \
     last_error = 'the worker stopped renewing its lease during the last attempt' \
     WHERE state = 'running' AND lease_expires_at <= $1 AND attempts >= max_attempts";

/// Due queued jobs and jobs whose lease expired (with attempts left) are claimable.
const CLAIMABLE: &str = "((state = 'queued' AND run_at <= $3) \
     OR (state = 'running' AND lease_expires_at <= $3 AND attempts < max_attempts))";

const CLAIM_SET: &str = "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, lease_expires_at = $2, updated_at = $3";

const CLAIM_RETURNING: &str =
    "RETURNING id, kind, payload, attempts, max_attempts, lease_expires_at, created_at, traceparent";

/// Takes up to `limit` claimable jobs of the given kinds, oldest due first, and leases them to
/// `owner`. Never returns a job another claimer holds a live lease on.
pub async fn claim(db: &Db, req: &Claim<'_>) -> Result<Vec<ClaimedJob>, DbError> {
    if req.kinds.is_empty() || req.limit == 0 {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let expires = now + to_delta(req.lease);
    let limit = i64::from(req.limit);
    let rows: Vec<ClaimRow> = retry_serializable(|| async {
        let rows = match db {
            Db::Postgres(pool) => {
                sqlx::query(REAP_SQL).bind(now).execute(pool).await?;
                // `= ANY(ARRAY(…))` makes the locking subquery run exactly once (an InitPlan),
                // so the LIMIT holds; SKIP LOCKED passes over rows other claimers are taking.
                let sql = const_format(&[
                    CLAIM_SET,
                    " WHERE id = ANY(ARRAY(SELECT id FROM jobs WHERE kind = ANY($4) AND ",
                    CLAIMABLE,
                    " ORDER BY run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)) ",
                    CLAIM_RETURNING,
                ]);
                let kinds: Vec<String> = req.kinds.iter().map(|k| (*k).to_owned()).collect();
                sqlx::query_as::<_, ClaimRow>(sqlx::AssertSqlSafe(sql))
                    .bind(req.owner)
                    .bind(expires)
                    .bind(now)
                    .bind(kinds)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Db::Sqlite(pool) => {
                // BEGIN IMMEDIATE takes the write lock up front: claimers queue on the file
                // (busy timeout) instead of failing to upgrade a read transaction.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(REAP_SQL).bind(now).execute(&mut *tx).await?;
                let sql = const_format(&[
                    CLAIM_SET,
                    " WHERE id IN (SELECT id FROM jobs WHERE kind IN (SELECT value FROM json_each($4)) AND ",
                    CLAIMABLE,
                    " ORDER BY run_at, id LIMIT $5) ",
                    CLAIM_RETURNING,
                ]);
                let kinds = serde_json::to_string(req.kinds).map_err(|e| decode_error(e.to_string()))?;
                let rows = sqlx::query_as::<_, ClaimRow>(sqlx::AssertSqlSafe(sql))
                    .bind(req.owner)
                    .bind(expires)
                    .bind(now)
                    .bind(kinds)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            }
        };
        Ok(rows)
    })
    .await?;
    rows.into_iter()
        .map(|r| {
            let payload = serde_json::from_str(&r.payload).map_err(|e| decode_error(format!("job payload: {e}")))?;
            Ok(ClaimedJob {
                lease: Lease {
                    job_id: r.id,
                    owner: req.owner,
                    attempt: to_u32(r.attempts),
                    max_attempts: to_u32(r.max_attempts),
                },
                kind: r.kind,
                payload,
                lease_expires_at: r.lease_expires_at,
                created_at: r.created_at,
                traceparent: r.traceparent,
            })
        })
        .collect()
}

/// Extends a lease to `lease` from now (the heartbeat of a long job). `None`: the lease is no
/// longer this worker's — stop working on the job.
pub async fn renew(db: &Db, lease: &Lease, duration: Duration) -> Result<Option<DateTime<Utc>>, DbError> {
    let now = Utc::now();
    let expires = now + to_delta(duration);
    let done = retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE jobs SET lease_expires_at = $1, updated_at = $2 \
                 WHERE id = $3 AND state = 'running' AND lease_owner = $4 AND attempts = $5",
            )
            .bind(expires)
            .bind(now)
            .bind(lease.job_id)
            .bind(lease.owner)
            .bind(i64::from(lease.attempt))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    })
    .await?;
    Ok((done == 1).then_some(expires))
}

/// Ends now every lease `owner` holds on a running job, so the jobs are claimable at once
/// instead of when their leases lapse. For a worker that knows `owner` is dead (the process
/// that held its slot before it: `turtlemen_worker::slot`); never call it for a live owner, whose
/// settling writes would then be refused. Returns how many leases ended.
pub async fn release_owner(db: &Db, owner: Uuid) -> Result<u64, DbError> {
    let now = Utc::now();
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE jobs SET lease_expires_at = $1, updated_at = $1 \
                 WHERE state = 'running' AND lease_owner = $2 AND lease_expires_at > $1",
            )
            .bind(now)
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    })
    .await
}

/// How a settling write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Succeeded,
    /// Queued again, due at `run_at`.
    Retrying {
        run_at: DateTime<Utc>,
    },
    /// Out of attempts, or a permanent failure; the error is kept.
    Failed,
    /// The lease had passed to another worker (or the job was settled): nothing was written.
    LeaseLost,
}

/// Marks the job `succeeded`, if `lease` still holds it.
pub async fn complete(db: &Db, lease: &Lease) -> Result<Settled, DbError> {
    let now = Utc::now();
    let n = retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
                 WHERE id = $2 AND state = 'running' AND lease_owner = $3 AND attempts = $4",
            )
            .bind(now)
            .bind(lease.job_id)
            .bind(lease.owner)
            .bind(i64::from(lease.attempt))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    })
    .await?;
    Ok(if n == 1 { Settled::Succeeded } else { Settled::LeaseLost })
}

/// How long to wait before the next attempt: `base · 2^(attempt−1)`, capped at `max`, plus up
/// to a quarter more at random so that jobs failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 10 s, 20 s, 40 s… up to one hour.
    fn default() -> Self {
        Backoff { base: Duration::from_secs(10), max: Duration::from_secs(3600) }
    }
}

impl Backoff {
    /// The delay without jitter after failed attempt `attempt` (1-based).
    pub fn nominal(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay with jitter: in `[nominal, nominal · 1.25]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let nominal = self.nominal(attempt);
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&Uuid::new_v4().as_bytes()[..8]);
        let unit = f64::from(u32::try_from(u64::from_le_bytes(bytes) >> 40).unwrap_or(0)) / f64::from(1u32 << 24);
        nominal + nominal.mul_f64(0.25 * unit)
    }
}

/// Records a failed attempt, if `lease` still holds the job: re-queued after `backoff` when
/// `retryable` and attempts are left, otherwise `failed`. `error` is kept either way.
pub async fn fail(db: &Db, lease: &Lease, error: &str, retryable: bool, backoff: &Backoff) -> Result<Settled, DbError> {
    let now = Utc::now();
    let error = truncate(error, MAX_ERROR_BYTES);
    let retry = retryable && lease.attempt < lease.max_attempts;
    let run_at = now + to_delta(backoff.delay(lease.attempt));
    let state = if retry { JobState::Queued } else { JobState::Failed };
    let n = retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = $1, run_at = $2, last_error = $3, lease_owner = NULL, lease_expires_at = NULL, updated_at = $4 \
                 WHERE id = $5 AND state = 'running' AND lease_owner = $6 AND attempts = $7",
            )
            .bind(state.as_str())
            .bind(if retry { run_at } else { now })
            .bind(error)
            .bind(now)
            .bind(lease.job_id)
            .bind(lease.owner)
            .bind(i64::from(lease.attempt))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    })
    .await?;
    Ok(match (n, retry) {
        (1, true) => Settled::Retrying { run_at },
        (1, false) => Settled::Failed,
        _ => Settled::LeaseLost,
    })
}

/// Admin action "run again now": a queued job becomes due now; a failed job is queued afresh
/// with its attempts reset. Returns whether a job was changed (running and succeeded jobs are
/// left alone).
pub async fn retry_now(db: &Db, id: Uuid) -> Result<bool, DbError> {
    let now = Utc::now();
    let n = retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE jobs SET run_at = $1, updated_at = $1, state = 'queued', \
                 attempts = CASE WHEN state = 'failed' THEN 0 ELSE attempts END \
                 WHERE id = $2 AND state IN ('queued', 'failed')",
            )
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    })
    .await?;
    Ok(n == 1)
}

/// A job as admins see it (without its payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub id: Uuid,
    pub kind: String,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub lease_owner: Option<Uuid>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The `traceparent` recorded when the job was (last) queued: see [`ClaimedJob::traceparent`].
    pub traceparent: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    kind: String,
    state: String,
    attempts: i64,
    max_attempts: i64,
    run_at: DateTime<Utc>,
    lease_owner: Option<Uuid>,
    lease_expires_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    idempotency_key: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    traceparent: Option<String>,
}

impl TryFrom<SummaryRow> for JobSummary {
    type Error = DbError;
    fn try_from(r: SummaryRow) -> Result<Self, DbError> {
        Ok(JobSummary {
            id: r.id,
            kind: r.kind,
            state: JobState::from_stored(&r.state)?,
            attempts: to_u32(r.attempts),
            max_attempts: to_u32(r.max_attempts),
            run_at: r.run_at,
            lease_owner: r.lease_owner,
            lease_expires_at: r.lease_expires_at,
            last_error: r.last_error,
            idempotency_key: r.idempotency_key,
            created_at: r.created_at,
            updated_at: r.updated_at,
            traceparent: r.traceparent,
        })
    }
}

const SUMMARY_COLUMNS: &str = "SELECT id, kind, state, attempts, max_attempts, run_at, lease_owner, lease_expires_at, \
     last_error, idempotency_key, created_at, updated_at, traceparent FROM jobs";

/// One job, for admins and tests.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<JobSummary>, DbError> {
    let sql = const_format(&[SUMMARY_COLUMNS, " WHERE id = $1"]);
    let row: Option<SummaryRow> =
        with_pool!(db, |pool| { sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await? });
    row.map(JobSummary::try_from).transpose()
}

/// Which jobs [`list`] returns.
#[derive(Debug, Clone, Default)]
pub struct JobFilter<'a> {
    pub state: Option<JobState>,
    pub kind: Option<&'a str>,
    /// At most this many (0 means 100).
    pub limit: u32,
}

/// Deletes succeeded jobs last updated before `before` (failed ones stay for admins to read).
/// Returns how many went.
pub async fn purge_succeeded(db: &Db, before: DateTime<Utc>) -> Result<u64, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query("DELETE FROM jobs WHERE state = 'succeeded' AND updated_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    })
    .await
}

/// Jobs for the admin view, newest first.
pub async fn list(db: &Db, filter: &JobFilter<'_>) -> Result<Vec<JobSummary>, DbError> {
    let limit = i64::from(if filter.limit == 0 { 100 } else { filter.limit });
    let sql = const_format(&[
        SUMMARY_COLUMNS,
        " WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR kind = $2) ORDER BY created_at DESC, id DESC LIMIT $3",
    ]);
    let rows: Vec<SummaryRow> = with_pool!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(filter.state.map(JobState::as_str))
            .bind(filter.kind)
            .bind(limit)
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(JobSummary::try_from).collect()
}

/// Joins fixed SQL fragments (all are constants of this module; no input reaches them).
fn const_format(parts: &[&'static str]) -> String {
    parts.concat()
}

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn decode_error(message: String) -> DbError {
    DbError::Query(sqlx::Error::Decode(message.into()))
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_snake_case() {
        for good in ["transcode", "transcode_video", "a1", "thumbnail_v2"] {
            assert!(JobKind::is_valid(good), "{good}");
        }
        for bad in ["", "Transcode", "1a", "_a", "a_", "a__b", "a-b", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(!JobKind::is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_caps_and_jitters_upwards() {
        let b = Backoff { base: Duration::from_secs(10), max: Duration::from_secs(60) };
        assert_eq!(b.nominal(1), Duration::from_secs(10));
        assert_eq!(b.nominal(2), Duration::from_secs(20));
        assert_eq!(b.nominal(3), Duration::from_secs(40));
        assert_eq!(b.nominal(4), Duration::from_secs(60));
        assert_eq!(b.nominal(200), Duration::from_secs(60));
        for attempt in 1..8 {
            let d = b.delay(attempt);
            assert!(d >= b.nominal(attempt) && d <= b.nominal(attempt).mul_f64(1.25), "{d:?}");
        }
    }

    #[test]
    fn errors_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
