//! `/healthz` (the process answers) and `/readyz` (its database and session store answer), and
//! [`sample`], which takes the operational figures of `/metrics` every few seconds.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Duration;
use turtlemen_db::Db;
use turtlemen_session::Sessions;

/// What `/readyz` checks; a role leaves out what it does not use.
#[derive(Clone, Default)]
pub struct Readiness {
    pub db: Option<Db>,
    pub sessions: Option<Sessions>,
}

/// The health routes and `/metrics`.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(crate::metrics::serve))
        .with_state(readiness)
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn ready(State(r): State<Readiness>) -> Response {
    let db = match &r.db {
        None => "not used",
        Some(db) => match tokio::time::timeout(CHECK_TIMEOUT, db.ping()).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: database check failed");
                "unreachable"
            }
            Err(_) => "timeout",
        },
    };
    let sessions = match &r.sessions {
        None => "not used",
        Some(s) => match tokio::time::timeout(CHECK_TIMEOUT, s.ping()).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: session store check failed");
                "unreachable"
            }
            Err(_) => "timeout",
        },
    };
    let ready = matches!(db, "ok" | "not used") && matches!(sessions, "ok" | "not used");
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    // A JSON body with its own content type: the error layer passes it through unchanged.
    (status, axum::Json(serde_json::json!({ "ready": ready, "database": db, "session_store": sessions })))
        .into_response()
}

/// Every `every`, until `stop` resolves: times a round trip to the database and to the session
/// store and counts the pool, and — when `work` is set (the roles that run or hand out work: the
/// API server and workers) — counts the job queue, uploads and lives, for `/metrics`.
pub async fn sample(readiness: Readiness, work: bool, every: Duration, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        if let Some(db) = &readiness.db {
            let start = std::time::Instant::now();
            let ok = matches!(tokio::time::timeout(CHECK_TIMEOUT, db.ping()).await, Ok(Ok(())));
            crate::metrics::record_database(ok.then(|| start.elapsed()), turtlemen_db::stats::pool_connections(db));
            if work && ok {
                match turtlemen_db::stats::snapshot(db).await {
                    Ok(s) => crate::metrics::record_work(&s),
                    Err(e) => tracing::debug!(error = %e, "cannot count the work in progress"),
                }
            }
        }
        if let Some(sessions) = &readiness.sessions {
            let start = std::time::Instant::now();
            let ok = matches!(tokio::time::timeout(CHECK_TIMEOUT, sessions.ping()).await, Ok(Ok(())));
            crate::metrics::record_session_store(ok.then(|| start.elapsed()));
        }
    }
}
