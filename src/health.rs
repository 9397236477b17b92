//! The stores a role depends on, as `/readyz` probes ([`turtlemen_http::health`]), and the
//! sampler that takes the operational figures of `/metrics` every few seconds: round trips to
//! the database and the session store, the pool, and — for the roles that run or hand out work
//! (the API server and workers) — the job queue, uploads and lives in progress.

use std::time::Duration;
use turtlemen_db::Db;
use turtlemen_http::health::{Probe, Readiness};
use turtlemen_http::metrics;
use turtlemen_session::Sessions;

/// `/readyz`'s probes: the database and the session store, each only when the role uses it.
pub fn readiness(db: Option<&Db>, sessions: Option<&Sessions>) -> Readiness {
    let mut probes = Vec::new();
    if let Some(db) = db.cloned() {
        probes.push(Probe::new("database", move || {
            let db = db.clone();
            async move { db.ping().await }
        }));
    }
    if let Some(sessions) = sessions.cloned() {
        probes.push(Probe::new("session_store", move || {
            let sessions = sessions.clone();
            async move { sessions.ping().await }
        }));
    }
    Readiness { probes }
}

/// Every `every`, until `stop` resolves: checks each probe and records its round trip (the
/// database's with its pool), and — when `work` is set — counts the work in progress.
pub async fn sample(
    readiness: Readiness,
    db: Option<Db>,
    work: bool,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        for probe in &readiness.probes {
            let round_trip = probe.check().await.round_trip();
            match (probe.name(), &db) {
                ("database", Some(db)) => {
                    metrics::record_database(round_trip, turtlemen_db::stats::pool_connections(db));
                    if work && round_trip.is_some() {
                        count_work(db).await;
                    }
                }
                ("session_store", _) => metrics::record_session_store(round_trip),
                _ => {}
            }
        }
    }
}

async fn count_work(db: &Db) {
    match turtlemen_db::stats::snapshot(db).await {
        Ok(s) => metrics::record_work(&metrics::WorkCounts {
            jobs_queued: s.jobs_queued,
            jobs_running: s.jobs_running,
            oldest_due_job_secs: s.oldest_due_job_secs,
            uploads_active: s.uploads_active,
            lives_active: s.lives_active,
        }),
        Err(e) => tracing::debug!(error = %e, "cannot count the work in progress"),
    }
}
