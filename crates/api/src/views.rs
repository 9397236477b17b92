//! View counting: once per viewer per window, written to the database in batches.
//!
//! A view is reported by the player (`POST /api/v1/videos/{id}/views`), never inferred from
//! segment requests, so serving media costs no write. Whether this viewer was already counted
//! for this video in the current window is decided in the session store (`set_if_absent` on a
//! key built from the hash of video and viewer, expiring with the window), which every API
//! instance shares. Counted views gather in memory and [`ViewCounter::flush`] writes them, one
//! `UPDATE` per video, every few seconds and at shutdown.

use ring::digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use turtlemen_db::Db;
use turtlemen_session::SessionStore;
use uuid::Uuid;

/// A viewer counts once per video in this window.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// Views waiting to be written.
pub struct ViewCounter {
    sessions: Arc<dyn SessionStore>,
    pending: Mutex<HashMap<Uuid, u64>>,
}

impl ViewCounter {
    pub fn new(sessions: Arc<dyn SessionStore>) -> ViewCounter {
        ViewCounter { sessions, pending: Mutex::new(HashMap::new()) }
    }

    /// Counts a view of `video` by `viewer` unless already counted in this window.
    pub async fn record(&self, video: Uuid, viewer: &str) {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(video.as_bytes());
        ctx.update(viewer.as_bytes());
        let key = format!("view:{}", hex::encode(&ctx.finish().as_ref()[..16]));
        match self.sessions.set_if_absent(&key, b"1", WINDOW).await {
            Ok(true) => {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                *pending.entry(video).or_default() += 1;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot check a view; not counted"),
        }
    }

    /// Writes the counted views; on failure they are kept for the next flush.
    pub async fn flush(&self, db: &Db) {
        let batch: Vec<(Uuid, u64)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(e) = turtlemen_db::videos::add_views(db, &batch).await {
            tracing::warn!(error = %e, videos = batch.len(), "cannot write view counts; will retry");
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (id, n) in batch {
                *pending.entry(id).or_default() += n;
            }
        }
    }
}
