//! The media worker: runs the API server's long jobs (ffmpeg transcodes, thumbnails, live
//! replays, notification fan-outs) from the durable job queue in the application database
//! (`turtlemen_db::jobs`).
//!
//! A [`Registry`] maps job kinds to [`Handler`]s; a [`Worker`] claims jobs of those kinds, runs
//! up to `concurrency` at once, renews each job's lease while its handler runs (a heartbeat at a
//! third of the lease), and settles it: success, a retry after backoff, or failure with the
//! error kept for admins. A worker that holds a [`slot::Slot`] ends, as it starts, the leases of
//! the dead worker that held the slot before it, so a restarted process takes up its own
//! abandoned jobs at once; other workers take them up when the leases lapse (15 s by default). Idle, it polls with a growing pause (200 ms doubling to 2 s); busy, it
//! claims again as soon as a slot frees. On shutdown it stops claiming and lets running jobs
//! finish. Tests call [`Worker::run_until_idle`] instead of waiting on the poll loop. Each job
//! runs as a span of the trace that enqueued it (`traceparent`, recorded with the job), so its
//! log lines carry that trace id and the jobs it enqueues carry the trace on.
//!
//! **Handlers must be idempotent.** Delivery is at least once: a worker that dies mid-job (or
//! stalls past its lease) has its job run again from the start by another worker, possibly
//! while the first one is still writing. A handler writes its output under keys derived from
//! the job's ids, overwriting rather than appending, and publishes last.
//!
//! This crate must never hold a database transaction open while a handler runs, nor decide
//! anything by HTTP: it knows the queue, not the web.

pub mod notify;
pub mod replay;
pub mod retranscode;
pub mod slot;
pub mod transcode;

use futures::FutureExt;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tracing::Instrument;
use turtlemen_db::jobs::{self, ClaimedJob, Settled};
use turtlemen_db::{Db, DbError};
use turtlemen_domain::trace::{self, Attribute, FinishedSpan, SpanKind, SpanSink, TraceContext};
use uuid::Uuid;

pub use turtlemen_db::jobs::{Backoff, JobKind};

/// What a handler knows about the job it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub db: Db,
    pub job_id: Uuid,
    pub kind: String,
    /// The worker holding the job's lease.
    pub owner: Uuid,
    /// 1 for the first run.
    pub attempt: u32,
    pub max_attempts: u32,
}

impl JobContext {
    /// The lease this attempt holds (for writes that must stop once it is lost, such as
    /// [`jobs::checkpoint`]).
    pub fn lease(&self) -> jobs::Lease {
        jobs::Lease { job_id: self.job_id, owner: self.owner, attempt: self.attempt, max_attempts: self.max_attempts }
    }

    /// Whether a retryable failure now would still end the job as `failed`.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// Why a handler gave up on this attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Worth trying again later (a network blip, a full disk, a crashed tool).
    Retry(String),
    /// Trying again cannot help (the input is not a video): the job fails now.
    Permanent(String),
}

impl JobError {
    pub fn retry(e: impl std::fmt::Display) -> JobError {
        JobError::Retry(e.to_string())
    }

    pub fn permanent(e: impl std::fmt::Display) -> JobError {
        JobError::Permanent(e.to_string())
    }

    fn message(&self) -> &str {
        match self {
            JobError::Retry(m) | JobError::Permanent(m) => m,
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Any error converts into a retryable one, with its whole cause chain.
impl<E: std::error::Error> From<E> for JobError {
    fn from(e: E) -> Self {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        JobError::Retry(text)
    }
}

/// Runs one kind of job. Must be idempotent (see the crate docs): running it twice for the same
/// job, even concurrently, leaves the same result as running it once.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> Result<(), JobError>;
}

/// An async function `(payload, context) -> Result<(), JobError>` is a handler.
#[async_trait::async_trait]
impl<F, Fut> Handler for F
where
    F: Fn(serde_json::Value, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        (self)(payload, ctx).await
    }
}

/// The handlers a worker runs, by job kind. A worker claims only kinds it has a handler for,
/// so workers of different builds can share one queue.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds (or replaces) the handler of `kind`.
    pub fn register(mut self, kind: JobKind, handler: impl Handler) -> Registry {
        self.handlers.insert(kind.as_str(), Arc::new(handler));
        self
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self.handlers.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("kinds", &self.kinds()).finish()
    }
}

/// The job kinds this build runs: the notifications always; transcodes (first ones, again, and
/// the removal of replaced media versions) and live replays (which queue a transcode) when
/// given a [`transcode::Transcoder`], whose storage and scratch space the others share.
pub fn registry(transcoder: Option<transcode::Transcoder>) -> Registry {
    let registry = Registry::new()
        .register(notify::NOTIFY_NEW_VIDEO, notify::SubscriberFanOut::default())
        .register(notify::NOTIFY_LIVE_STARTED, notify::SubscriberFanOut::default())
        .register(notify::NOTIFY_NEW_SUBSCRIBER, notify::new_subscriber)
        .register(notify::NOTIFY_COMMENT, notify::comment);
    match transcoder {
        Some(t) => registry
            .register(
                replay::LIVE_REPLAY,
                replay::Replayer { storage: t.storage.clone(), work_root: t.work_root.clone() },
            )
            .register(retranscode::RETIRE_MEDIA, retranscode::MediaRetirer { storage: t.storage.clone() })
            .register(retranscode::RETRANSCODE, retranscode::Retranscoder(t.clone()))
            .register(transcode::TRANSCODE, t),
        None => registry,
    }
}

/// The lease of a claim unless configured: renewed every 5 s, so a job whose worker died is
/// taken up again within 15 s (plus a poll) by any other worker.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// How a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Jobs run at once (at least 1).
    pub concurrency: usize,
    /// How long a claim lasts unless renewed; renewed every third of it while the job runs. A
    /// killed worker's jobs are taken up again this long after its last renewal (or at once by
    /// the worker that restarts in its slot).
    pub lease: Duration,
    /// Pause between polls while jobs keep coming.
    pub poll_min: Duration,
    /// Longest pause between polls when the queue stays empty.
    pub poll_max: Duration,
    /// Delay before a failed job's next attempt.
    pub backoff: Backoff,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 1,
            lease: DEFAULT_LEASE,
            poll_min: Duration::from_millis(200),
            poll_max: Duration::from_secs(2),
            backoff: Backoff::default(),
        }
    }
}

impl WorkerConfig {
    pub fn with_concurrency(concurrency: usize) -> WorkerConfig {
        WorkerConfig { concurrency, ..WorkerConfig::default() }
    }
}

/// Runs this build's [`registry`] until `shutdown` resolves (`turtlemen worker` and `serve`),
/// in a slot of `slots` (see [`Worker::in_slot`]).
pub async fn run(
    db: Db,
    config: WorkerConfig,
    transcoder: transcode::Transcoder,
    slots: &Path,
    spans: Option<Arc<dyn SpanSink>>,
    shutdown: impl Future<Output = ()>,
) {
    Worker::new(db, registry(Some(transcoder)), config).in_slot(slots).exporting(spans).run(shutdown).await;
}

/// A worker: one lease owner, its handlers and its settings.
#[derive(Debug, Clone)]
pub struct Worker {
    db: Db,
    registry: Arc<Registry>,
    config: WorkerConfig,
    owner: Uuid,
    slot: Option<Arc<slot::Slot>>,
    /// Where each job's span goes when it is done, if this process exports its spans.
    spans: Option<Arc<dyn SpanSink>>,
}

impl Worker {
    pub fn new(db: Db, registry: Registry, config: WorkerConfig) -> Worker {
        let config = WorkerConfig { concurrency: config.concurrency.max(1), ..config };
        Worker { db, registry: Arc::new(registry), config, owner: Uuid::now_v7(), slot: None, spans: None }
    }

    /// This worker handing each job's span to `spans` when the job is done.
    pub fn exporting(mut self, spans: Option<Arc<dyn SpanSink>>) -> Worker {
        self.spans = spans;
        self
    }

    /// This worker in the first free slot of the folder `slots` ([`slot::Slot`]): when it
    /// runs, it first ends the leases of the dead worker that held the slot before. Without a
    /// slot (the folder unusable, every slot held) it runs as before, and says why.
    pub fn in_slot(mut self, slots: &Path) -> Worker {
        match slot::Slot::take(slots, self.owner) {
            Ok(slot) => self.slot = Some(Arc::new(slot)),
            Err(e) => tracing::warn!(error = %e, "no worker slot; a restart waits for this worker's leases to lapse"),
        }
        self
    }

    /// Ends the leases of the worker that held this worker's slot before it (dead: its slot was
    /// free), so its jobs are claimable now. Failures are logged: the leases then lapse.
    async fn release_predecessor(&self) {
        let Some(previous) = self.slot.as_ref().and_then(|s| s.previous()) else { return };
        match jobs::release_owner(&self.db, previous).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(worker.previous = %previous, jobs.released = n, "took up the jobs of this slot's dead worker")
            }
            Err(e) => {
                tracing::warn!(worker.previous = %previous, error = %e, "cannot release the dead worker's leases; they will lapse")
            }
        }
    }

    /// The id this worker's leases carry.
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    async fn claim(&self, limit: usize) -> Result<Vec<ClaimedJob>, DbError> {
        let kinds = self.registry.kinds();
        jobs::claim(
            &self.db,
            &jobs::Claim {
                owner: self.owner,
                kinds: &kinds,
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
                lease: self.config.lease,
            },
        )
        .await
    }

    fn execute(&self, job: ClaimedJob) -> impl Future<Output = ()> + Send + 'static {
        // The job continues the trace of the work that enqueued it, as a span of this process:
        // its log lines carry that trace id, and what it enqueues carries the trace on.
        let trace = TraceContext::continuing_sampled(
            job.traceparent.as_deref().and_then(|t| trace::parse(t.as_bytes())),
            self.spans.is_some(),
        );
        let span = tracing::info_span!(
            "job",
            job.id = %job.lease.job_id,
            job.kind = %job.kind,
            job.attempt = job.lease.attempt,
            trace.id = %format_args!("{:032x}", trace.trace_id),
        );
        let spans = self.spans.clone();
        let described = spans.as_ref().map(|_| {
            let attributes = vec![
                ("job.id", Attribute::Text(job.lease.job_id.to_string())),
                ("job.kind", Attribute::Text(job.kind.clone())),
                ("job.attempt", Attribute::Int(i64::from(job.lease.attempt))),
            ];
            (format!("job {}", job.kind), attributes, std::time::SystemTime::now())
        });
        let work = execute(self.db.clone(), self.registry.clone(), self.config, job).instrument(span);
        trace::scope(trace, async move {
            let succeeded = work.await;
            if let (Some(spans), Some((name, attributes, start))) = (spans, described) {
                let end = std::time::SystemTime::now();
                let kind = SpanKind::Consumer;
                spans.finished(FinishedSpan { context: trace, name, kind, start, end, attributes, failed: !succeeded });
            }
        })
    }

    /// Polls and runs jobs until `shutdown` resolves, then stops claiming and waits for the
    /// running jobs to finish. Dropping the returned future instead aborts the running jobs
    /// (their leases then expire and other workers take them up).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tracing::info!(
            worker.id = %self.owner,
            worker.concurrency = self.config.concurrency,
            worker.kinds = ?self.registry.kinds(),
            db.backend = ?self.db.backend(),
            "worker started"
        );
        self.release_predecessor().await;
        let mut running = JoinSet::new();
        let mut pause = self.config.poll_min;
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            while running.try_join_next().is_some() {}
            let free = self.config.concurrency.saturating_sub(running.len());
            if free > 0 && !self.registry.is_empty() {
                match self.claim(free).await {
                    Ok(claimed) if claimed.is_empty() => pause = (pause * 2).min(self.config.poll_max),
                    Ok(claimed) => {
                        pause = self.config.poll_min;
                        for job in claimed {
                            running.spawn(self.execute(job));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim jobs");
                        pause = (pause * 2).min(self.config.poll_max);
                    }
                }
            }
            let full = running.len() >= self.config.concurrency;
            tokio::select! {
                // Shutdown first: once asked to stop, no further claim is made.
                biased;
                () = &mut shutdown => break,
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = tokio::time::sleep(pause), if !full => {}
            }
        }
        tracing::info!(worker.id = %self.owner, jobs.running = running.len(), "worker stopping; finishing running jobs");
        while running.join_next().await.is_some() {}
        tracing::info!(worker.id = %self.owner, "worker stopped");
    }

    /// Claims and runs jobs, up to `concurrency` at once, until none is claimable right now;
    /// returns how many attempts ran. Jobs re-queued with a backoff are not waited for.
    pub async fn run_until_idle(&self) -> Result<usize, DbError> {
        let mut ran = 0;
        if self.registry.is_empty() {
            return Ok(0);
        }
        self.release_predecessor().await;
        loop {
            let claimed = self.claim(self.config.concurrency).await?;
            if claimed.is_empty() {
                return Ok(ran);
            }
            ran += claimed.len();
            futures::future::join_all(claimed.into_iter().map(|job| self.execute(job))).await;
        }
    }
}

/// Runs one claimed job with its heartbeat, then settles it (failures are logged here, once);
/// whether its handler succeeded.
async fn execute(db: Db, registry: Arc<Registry>, config: WorkerConfig, job: ClaimedJob) -> bool {
    let started = Instant::now();
    let lease = job.lease.clone();
    let Some(handler) = registry.handlers.get(job.kind.as_str()).cloned() else {
        // Unreachable in practice: claims ask only for registered kinds.
        let error = format!("no handler for job kind {:?} in this worker", job.kind);
        settle(&db, &lease, Err(JobError::Retry(error)), &config, started).await;
        return false;
    };
    let ctx = JobContext {
        db: db.clone(),
        job_id: lease.job_id,
        kind: job.kind.clone(),
        owner: lease.owner,
        attempt: lease.attempt,
        max_attempts: lease.max_attempts,
    };
    let work = AssertUnwindSafe(handler.run(job.payload, ctx)).catch_unwind();
    let heartbeat = async {
        let every = (config.lease / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(every).await;
            match jobs::renew(&db, &lease, config.lease).await {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => tracing::warn!(error = %e, "cannot renew the job's lease; retrying"),
            }
        }
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = heartbeat => {
            tracing::warn!("lease lost to another worker; abandoning this attempt");
            return false;
        }
    };
    let result = outcome.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(JobError::Retry(format!("the handler panicked: {what}")))
    });
    let succeeded = result.is_ok();
    settle(&db, &lease, result, &config, started).await;
    succeeded
}

async fn settle(db: &Db, lease: &jobs::Lease, result: Result<(), JobError>, config: &WorkerConfig, started: Instant) {
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let settled = match &result {
        Ok(()) => jobs::complete(db, lease).await,
        Err(e) => jobs::fail(db, lease, e.message(), matches!(e, JobError::Retry(_)), &config.backoff).await,
    };
    match (settled, result) {
        (Ok(Settled::Succeeded), _) => tracing::info!(duration_ms, "job succeeded"),
        (Ok(Settled::Retrying { run_at }), Err(e)) => {
            tracing::warn!(duration_ms, error = %e, job.retry_at = %run_at, "job attempt failed; will retry")
        }
        (Ok(Settled::Failed), Err(e)) => tracing::error!(duration_ms, error = %e, "job failed"),
        (Ok(Settled::LeaseLost), _) => {
            tracing::warn!(duration_ms, "job finished after its lease passed to another worker; result dropped")
        }
        (Ok(other), _) => tracing::error!(duration_ms, outcome = ?other, "unexpected job outcome"),
        (Err(e), _) => {
            tracing::error!(duration_ms, error = %e, "cannot record the job's outcome; it runs again once the lease expires")
        }
    }
}
