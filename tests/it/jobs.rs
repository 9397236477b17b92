//! The durable job queue and the worker runtime, on SQLite and on PostgreSQL: claiming,
//! idempotent enqueueing, concurrent claimers, leases that expire after a worker is killed,
//! retries with backoff, and lease checks on settling; a job runs in the trace that queued it.

use crate::on_both_stacks;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use turtlemen_db::Db;
use turtlemen_db::jobs::{self, Claim, JobFilter, JobKind, JobState, Lease, NewJob, Settled};
use turtlemen_worker::{JobContext, JobError, Registry, Worker, WorkerConfig};
use uuid::Uuid;

const ECHO: JobKind = JobKind::new("test_echo");
const OTHER: JobKind = JobKind::new("test_other");

fn claim_req(owner: Uuid, limit: u32, lease: Duration) -> Claim<'static> {
    Claim { owner, kinds: &["test_echo"], limit, lease }
}

async fn job(db: &Db, id: Uuid) -> jobs::JobSummary {
    jobs::get(db, id).await.unwrap().expect("job exists")
}

/// Counts runs per job id.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<HashMap<Uuid, u32>>>);

impl Runs {
    fn record(&self, id: Uuid) {
        *self.0.lock().unwrap().entry(id).or_default() += 1;
    }
    fn snapshot(&self) -> HashMap<Uuid, u32> {
        self.0.lock().unwrap().clone()
    }
}

on_both_stacks! {
    async fn enqueue_claim_complete(app) {
        let db = &app.db;
        let payload = serde_json::json!({"video": "abc", "n": 1});
        let enqueued = jobs::enqueue(db, &NewJob::new(ECHO, &payload)).await.unwrap();
        assert!(enqueued.created);
        assert_eq!(enqueued.id.get_version_num(), 7, "ids are UUID v7");
        let queued = job(db, enqueued.id).await;
        assert_eq!((queued.state, queued.attempts, queued.max_attempts), (JobState::Queued, 0, jobs::DEFAULT_MAX_ATTEMPTS));
        jobs::enqueue(db, &NewJob::new(OTHER, &payload)).await.unwrap();

        let owner = Uuid::now_v7();
        let claimed = jobs::claim(db, &claim_req(owner, 10, Duration::from_secs(60))).await.unwrap();
        assert_eq!(claimed.len(), 1, "only the kinds asked for are claimed");
        let c = &claimed[0];
        assert_eq!((c.lease.job_id, c.lease.owner, c.lease.attempt, c.kind.as_str()), (enqueued.id, owner, 1, "test_echo"));
        assert_eq!(c.payload, payload);
        let running = job(db, enqueued.id).await;
        assert_eq!((running.state, running.lease_owner), (JobState::Running, Some(owner)));
        assert!(jobs::claim(db, &claim_req(Uuid::now_v7(), 10, Duration::from_secs(60))).await.unwrap().is_empty(), "a live lease is not claimable");

        assert!(jobs::renew(db, &c.lease, Duration::from_secs(120)).await.unwrap().is_some());
        assert_eq!(jobs::complete(db, &c.lease).await.unwrap(), Settled::Succeeded);
        let done = job(db, enqueued.id).await;
        assert_eq!((done.state, done.lease_owner, done.lease_expires_at), (JobState::Succeeded, None, None));
        assert_eq!(jobs::complete(db, &c.lease).await.unwrap(), Settled::LeaseLost, "settling twice writes nothing");

        let listed = jobs::list(db, &JobFilter { state: Some(JobState::Succeeded), ..JobFilter::default() }).await.unwrap();
        assert_eq!(listed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![enqueued.id]);
        let all = jobs::list(db, &JobFilter::default()).await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].created_at >= all[1].created_at, "newest first");
        // Purging: succeeded jobs older than the cut-off go, others stay.
        assert_eq!(jobs::purge_succeeded(db, chrono::Utc::now() - chrono::TimeDelta::days(1)).await.unwrap(), 0);
        assert_eq!(jobs::purge_succeeded(db, chrono::Utc::now() + chrono::TimeDelta::seconds(1)).await.unwrap(), 1);
        assert!(jobs::get(db, enqueued.id).await.unwrap().is_none());
        assert_eq!(jobs::list(db, &JobFilter::default()).await.unwrap().len(), 1);
        let others = jobs::list(db, &JobFilter { kind: Some("test_other"), ..JobFilter::default() }).await.unwrap();
        assert_eq!((others.len(), others[0].state), (1, JobState::Queued));

        // The worker runtime drives the same cycle through a handler.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let registry = Registry::new().register(OTHER, move |payload: serde_json::Value, ctx: JobContext| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push((payload, ctx.attempt));
                Ok::<(), JobError>(())
            }
        });
        let worker = Worker::new(db.clone(), registry, WorkerConfig::default());
        assert_eq!(worker.run_until_idle().await.unwrap(), 1);
        assert_eq!(*seen.lock().unwrap(), vec![(payload, 1)]);
        assert_eq!(job(db, others[0].id).await.state, JobState::Succeeded);
        assert_eq!(worker.run_until_idle().await.unwrap(), 0);
    }

    async fn idempotency_key_makes_a_second_enqueue_a_no_op(app) {
        let db = &app.db;
        let video = Uuid::now_v7();
        let key = format!("transcode:{video}");
        let first = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({"v": 1})).idempotency_key(&key)).await.unwrap();
        let second = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({"v": 2})).idempotency_key(&key)).await.unwrap();
        assert!(first.created && !second.created);
        assert_eq!(first.id, second.id);

        // Still a no-op once the first has run.
        let claimed = jobs::claim(db, &claim_req(Uuid::now_v7(), 5, Duration::from_secs(60))).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].payload, serde_json::json!({"v": 1}), "the first payload stands");
        jobs::complete(db, &claimed[0].lease).await.unwrap();
        let third = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({"v": 3})).idempotency_key(&key)).await.unwrap();
        assert_eq!((third.id, third.created), (first.id, false));
        assert_eq!(job(db, first.id).await.idempotency_key.as_deref(), Some(key.as_str()));

        // Concurrent enqueues of one logical job make one job.
        let other_key = format!("thumbnail:{video}");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (db, key) = (db.clone(), other_key.clone());
                tokio::spawn(async move {
                    jobs::enqueue(&db, &NewJob::new(ECHO, &serde_json::json!({})).idempotency_key(&key)).await.unwrap()
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(results.iter().filter(|r| r.created).count(), 1);
        assert!(results.iter().all(|r| r.id == results[0].id));

        // Without a key, every enqueue is a job.
        let a = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({}))).await.unwrap();
        let b = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({}))).await.unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(jobs::list(db, &JobFilter::default()).await.unwrap().len(), 4);
    }

    async fn concurrent_claimers_never_share_a_job(app) {
        let db = &app.db;
        let mut ids = Vec::new();
        for n in 0..60 {
            ids.push(jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({"n": n}))).await.unwrap().id);
        }
        // Twelve claimers race, each taking up to three at a time until nothing is left.
        let claimers: Vec<_> = (0..12)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    let owner = Uuid::now_v7();
                    let mut mine = Vec::new();
                    loop {
                        let got = jobs::claim(&db, &claim_req(owner, 3, Duration::from_secs(60))).await.unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.into_iter().map(|j| j.lease));
                    }
                })
            })
            .collect();
        let mut leases: Vec<Lease> = Vec::new();
        for c in claimers {
            leases.extend(c.await.unwrap());
        }
        let mut claimed: Vec<Uuid> = leases.iter().map(|l| l.job_id).collect();
        claimed.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(claimed, expected, "every job claimed exactly once");
        for lease in &leases {
            assert_eq!(jobs::complete(db, lease).await.unwrap(), Settled::Succeeded);
        }

        // The same through workers: four workers, three jobs at once each.
        let mut ids = Vec::new();
        for n in 0..40 {
            ids.push(jobs::enqueue(db, &NewJob::new(OTHER, &serde_json::json!({"n": n}))).await.unwrap().id);
        }
        let runs = Runs::default();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let runs = runs.clone();
                let registry = Registry::new().register(OTHER, move |_payload: serde_json::Value, ctx: JobContext| {
                    let runs = runs.clone();
                    async move {
                        runs.record(ctx.job_id);
                        tokio::task::yield_now().await;
                        Ok::<(), JobError>(())
                    }
                });
                let worker = Worker::new(db.clone(), registry, WorkerConfig::with_concurrency(3));
                tokio::spawn(async move { worker.run_until_idle().await.unwrap() })
            })
            .collect();
        let mut total = 0;
        for w in workers {
            total += w.await.unwrap();
        }
        assert_eq!(total, 40);
        let runs = runs.snapshot();
        assert_eq!(runs.len(), 40);
        assert!(runs.values().all(|&n| n == 1), "each job ran exactly once: {runs:?}");
        for id in ids {
            assert_eq!(job(db, id).await.state, JobState::Succeeded);
        }
    }

    async fn a_killed_workers_job_is_taken_up_once_its_lease_expires(app) {
        let db = &app.db;
        let id = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({"video": 1}))).await.unwrap().id;
        // Output the handlers write, by job id: an idempotent handler overwrites, never appends.
        let outputs: Arc<Mutex<HashMap<Uuid, String>>> = Arc::default();
        let runs: Arc<Mutex<Vec<(Uuid, u32)>>> = Arc::default();
        let config = WorkerConfig { lease: Duration::from_secs(1), ..WorkerConfig::default() };

        // Worker A starts the job and hangs in it until it is killed.
        let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
        let (hang_runs, a_owner) = (runs.clone(), Arc::new(Mutex::new(Uuid::nil())));
        let a_owner_seen = a_owner.clone();
        let hanging = Registry::new().register(ECHO, move |_payload: serde_json::Value, ctx: JobContext| {
            let (runs, started, owner) = (hang_runs.clone(), started_tx.clone(), a_owner_seen.clone());
            async move {
                runs.lock().unwrap().push((*owner.lock().unwrap(), ctx.attempt));
                let _ = started.send(());
                std::future::pending::<()>().await;
                Ok::<(), JobError>(())
            }
        });
        let a = Worker::new(db.clone(), hanging, config);
        *a_owner.lock().unwrap() = a.owner();
        let a_for_task = a.clone();
        let task = tokio::spawn(async move { a_for_task.run(std::future::pending()).await });
        started_rx.recv().await.expect("worker A started the job");
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());

        let held = job(db, id).await;
        assert_eq!((held.state, held.lease_owner, held.attempts), (JobState::Running, Some(a.owner()), 1));

        // Worker B finishes jobs properly.
        let (b_runs, b_outputs) = (runs.clone(), outputs.clone());
        let b_owner = Arc::new(Mutex::new(Uuid::nil()));
        let b_owner_seen = b_owner.clone();
        let finishing = Registry::new().register(ECHO, move |payload: serde_json::Value, ctx: JobContext| {
            let (runs, outputs, owner) = (b_runs.clone(), b_outputs.clone(), b_owner_seen.clone());
            async move {
                runs.lock().unwrap().push((*owner.lock().unwrap(), ctx.attempt));
                outputs.lock().unwrap().insert(ctx.job_id, format!("done {payload}"));
                Ok::<(), JobError>(())
            }
        });
        let b = Worker::new(db.clone(), finishing, config);
        *b_owner.lock().unwrap() = b.owner();
        assert_eq!(b.run_until_idle().await.unwrap(), 0, "the lease of the killed worker still holds");

        // Nothing renews it any more: wait for the moment it expires, then B takes the job.
        let expires = SystemTime::from(held.lease_expires_at.expect("a running job has a lease"));
        let wait = expires.duration_since(SystemTime::now()).unwrap_or_default();
        assert!(wait <= Duration::from_secs(1), "the lease is at most one lease long: {wait:?}");
        tokio::time::sleep(wait + Duration::from_millis(20)).await;
        assert_eq!(b.run_until_idle().await.unwrap(), 1);

        let done = job(db, id).await;
        assert_eq!((done.state, done.attempts, done.lease_owner), (JobState::Succeeded, 2, None));
        assert_eq!(*runs.lock().unwrap(), vec![(a.owner(), 1), (b.owner(), 2)]);
        assert_eq!(outputs.lock().unwrap().len(), 1, "one output, written once");
        let stale = Lease { job_id: id, owner: a.owner(), attempt: 1, max_attempts: jobs::DEFAULT_MAX_ATTEMPTS };
        assert_eq!(jobs::complete(db, &stale).await.unwrap(), Settled::LeaseLost, "the killed worker cannot settle it");
        assert_eq!(b.run_until_idle().await.unwrap(), 0, "and it never runs again");
    }

    async fn failures_retry_with_backoff_then_fail_with_the_error(app) {
        let db = &app.db;
        let id = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({})).max_attempts(3)).await.unwrap().id;
        let permanent = jobs::enqueue(db, &NewJob::new(OTHER, &serde_json::json!({"bad": true}))).await.unwrap().id;
        let registry = Registry::new()
            .register(ECHO, |_payload: serde_json::Value, ctx: JobContext| async move {
                if ctx.attempt == 2 {
                    panic!("handler bug on attempt 2");
                }
                Err::<(), JobError>(JobError::retry(format!("ffmpeg crashed on attempt {}", ctx.attempt)))
            })
            .register(OTHER, |_payload: serde_json::Value, _ctx: JobContext| async move {
                Err::<(), JobError>(JobError::permanent("not a video"))
            });
        let worker = Worker::new(db.clone(), registry, WorkerConfig::default());
        let base = WorkerConfig::default().backoff.base;

        assert_eq!(worker.run_until_idle().await.unwrap(), 2);
        let failed_now = job(db, permanent).await;
        assert_eq!((failed_now.state, failed_now.attempts), (JobState::Failed, 1), "a permanent failure does not retry");
        assert_eq!(failed_now.last_error.as_deref(), Some("not a video"));

        for attempt in 1..=2u32 {
            let j = job(db, id).await;
            assert_eq!((j.state, j.attempts), (JobState::Queued, attempt));
            let expected = if attempt == 1 { "ffmpeg crashed on attempt 1" } else { "the handler panicked: handler bug on attempt 2" };
            assert_eq!(j.last_error.as_deref(), Some(expected));
            let delay = (j.run_at - j.updated_at).to_std().unwrap();
            let nominal = base * 2u32.pow(attempt - 1);
            assert!(delay >= nominal && delay <= nominal.mul_f64(1.25), "attempt {attempt}: {delay:?}");
            assert_eq!(worker.run_until_idle().await.unwrap(), 0, "not due before its backoff");
            // An admin's "run again now" skips the wait.
            assert!(jobs::retry_now(db, id).await.unwrap());
            assert_eq!(worker.run_until_idle().await.unwrap(), 1);
        }
        let j = job(db, id).await;
        assert_eq!((j.state, j.attempts, j.lease_owner), (JobState::Failed, 3, None));
        assert_eq!(j.last_error.as_deref(), Some("ffmpeg crashed on attempt 3"));
        assert_eq!(worker.run_until_idle().await.unwrap(), 0);

        let failed = jobs::list(db, &JobFilter { state: Some(JobState::Failed), ..JobFilter::default() }).await.unwrap();
        assert_eq!(failed.len(), 2);

        // Retrying a failed job by hand starts its attempts afresh.
        assert!(jobs::retry_now(db, id).await.unwrap());
        let j = job(db, id).await;
        assert_eq!((j.state, j.attempts), (JobState::Queued, 0));
    }

    async fn settling_checks_the_lease_owner(app) {
        let db = &app.db;
        let id = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({}))).await.unwrap().id;
        // A zero-length lease is expired the moment it is taken: X stands for a stalled worker.
        let x = jobs::claim(db, &claim_req(Uuid::now_v7(), 1, Duration::ZERO)).await.unwrap().remove(0).lease;
        let y = jobs::claim(db, &claim_req(Uuid::now_v7(), 1, Duration::from_secs(60))).await.unwrap().remove(0).lease;
        assert_eq!((y.job_id, y.attempt), (id, 2));

        assert_eq!(jobs::renew(db, &x, Duration::from_secs(60)).await.unwrap(), None);
        assert_eq!(jobs::complete(db, &x).await.unwrap(), Settled::LeaseLost);
        assert_eq!(jobs::fail(db, &x, "stale", false, &jobs::Backoff::default()).await.unwrap(), Settled::LeaseLost);
        let j = job(db, id).await;
        assert_eq!((j.state, j.lease_owner, j.last_error), (JobState::Running, Some(y.owner), None));
        assert_eq!(jobs::complete(db, &y).await.unwrap(), Settled::Succeeded);

        // A lease that expires on the last attempt fails the job instead of running it again.
        let last = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({})).max_attempts(1)).await.unwrap().id;
        let claimed = jobs::claim(db, &claim_req(Uuid::now_v7(), 1, Duration::ZERO)).await.unwrap();
        assert_eq!(claimed[0].lease.job_id, last);
        assert!(jobs::claim(db, &claim_req(Uuid::now_v7(), 1, Duration::from_secs(60))).await.unwrap().is_empty());
        let j = job(db, last).await;
        assert_eq!(j.state, JobState::Failed);
        assert!(j.last_error.unwrap().contains("lease"));
    }

    async fn a_job_runs_in_the_trace_that_queued_it_and_passes_it_on(app) {
        use turtlemen_domain::trace::{self, TraceContext};
        let db = &app.db;
        let request = TraceContext::continuing_header(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        let payload = serde_json::json!({});
        let queued = trace::scope(request, jobs::enqueue(db, &NewJob::new(ECHO, &payload))).await.unwrap();
        assert_eq!(job(db, queued.id).await.traceparent, Some(request.header()), "recorded with the request's span as parent");
        let outside = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({"outside": true}))).await.unwrap();
        assert_eq!(job(db, outside.id).await.traceparent, None);

        // Each run records the span it ran in; the first job queues another from inside.
        type Runs = Vec<(serde_json::Value, Option<TraceContext>)>;
        let seen: Arc<Mutex<Runs>> = Arc::default();
        let (log, log_other) = (seen.clone(), seen.clone());
        let registry = Registry::new()
            .register(ECHO, move |payload: serde_json::Value, ctx: JobContext| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push((payload.clone(), trace::current()));
                    if payload.get("outside").is_none() {
                        jobs::enqueue(&ctx.db, &NewJob::new(OTHER, &serde_json::json!({"from": "echo"}))).await.map_err(JobError::retry)?;
                    }
                    Ok::<(), JobError>(())
                }
            })
            .register(OTHER, move |payload: serde_json::Value, _ctx: JobContext| {
                let log = log_other.clone();
                async move {
                    log.lock().unwrap().push((payload, trace::current()));
                    Ok::<(), JobError>(())
                }
            });
        let worker = Worker::new(db.clone(), registry, WorkerConfig::default());
        while worker.run_until_idle().await.unwrap() > 0 {}
        let seen = seen.lock().unwrap().clone();
        let span_of = |p: serde_json::Value| seen.iter().find(|(q, _)| *q == p).and_then(|(_, t)| *t).expect("ran in a span");
        let echo = span_of(serde_json::json!({}));
        assert_eq!((echo.trace_id, echo.flags), (request.trace_id, 1), "the job continues the request's trace");
        assert_ne!(echo.span_id, request.span_id, "as a span of its own");
        let other = span_of(serde_json::json!({"from": "echo"}));
        assert_eq!(other.trace_id, request.trace_id, "and the job it queued continues it too");
        assert_ne!(other.span_id, echo.span_id);
        let queued_by_job = jobs::list(db, &JobFilter { kind: Some("test_other"), ..JobFilter::default() }).await.unwrap();
        assert_eq!(queued_by_job[0].traceparent, Some(echo.header()), "recorded with the job's span as parent");
        let fresh = span_of(serde_json::json!({"outside": true}));
        assert_ne!(fresh.trace_id, request.trace_id, "a job queued outside any trace starts its own");

        // A job queued again records the trace of what queued it this time.
        let key = serde_json::json!({"again": true});
        let again = NewJob::new(OTHER, &key).idempotency_key("trace-again");
        let first = jobs::enqueue(db, &again).await.unwrap();
        while worker.run_until_idle().await.unwrap() > 0 {}
        let later = TraceContext::continuing(None);
        assert!(trace::scope(later, jobs::enqueue_again(db, &again)).await.unwrap());
        assert_eq!(job(db, first.id).await.traceparent, Some(later.header()));
    }

    async fn a_worker_finishes_running_jobs_on_shutdown(app) {
        let db = &app.db;
        let id = jobs::enqueue(db, &NewJob::new(ECHO, &serde_json::json!({}))).await.unwrap().id;
        let later = jobs::enqueue(db, &NewJob::new(OTHER, &serde_json::json!({}))).await.unwrap().id;
        let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let gate = release.clone();
        let registry = Registry::new()
            .register(ECHO, move |_payload: serde_json::Value, _ctx: JobContext| {
                let (started, gate) = (started_tx.clone(), gate.clone());
                async move {
                    let _ = started.send(());
                    gate.notified().await;
                    Ok::<(), JobError>(())
                }
            })
            .register(OTHER, |_payload: serde_json::Value, _ctx: JobContext| async { Ok::<(), JobError>(()) });
        // One slot: the second job waits behind the first.
        let worker = Worker::new(db.clone(), registry, WorkerConfig::with_concurrency(1));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            worker
                .run(async {
                    let _ = stop_rx.await;
                })
                .await
        });
        started_rx.recv().await.expect("the first job started");
        stop_tx.send(()).unwrap();
        release.notify_one();
        task.await.unwrap();
        assert_eq!(job(db, id).await.state, JobState::Succeeded, "the running job finished");
        assert_eq!(job(db, later).await.state, JobState::Queued, "nothing new was claimed after shutdown");
    }
}
