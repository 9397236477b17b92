//! The media worker: runs the API server's long jobs (ffmpeg transcodes, thumbnails) from the
//! job queue in the application database.
//!
//! The queue and its handlers arrive with the videos issue; today the worker opens the
//! database, waits for shutdown and reports that it has nothing to do.

use std::future::Future;
use turtlemen_db::Db;

/// Runs the worker until `shutdown` resolves.
pub async fn run(db: Db, concurrency: usize, shutdown: impl Future<Output = ()>) {
    tracing::info!(worker.concurrency = concurrency, db.backend = ?db.backend(), "worker started; no job kinds are registered yet");
    shutdown.await;
    tracing::info!("worker stopped");
}
