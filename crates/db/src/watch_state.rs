//! What one signed-in viewer has done with one video, as the watch page shows it — whether they
//! follow its channel, their rating, their history switch and position, and their playlists
//! with whether each holds the video — read in one statement.
//!
//! Each of these is one indexed lookup, but on PostgreSQL a statement costs more in its round
//! trip than in its execution (ARCHITECTURE.md, "Statements per page" under `crates/api`), so
//! the watch page asks them together: the per-viewer values are uncorrelated scalar subqueries
//! (computed once by both engines), beside one row per playlist (`LEFT JOIN` from a one-row
//! table, so a viewer with no playlist still gets one row). Nothing is written: a viewer's "Watch later" that does
//! not exist yet is made when they first add to it, not when they first watch.

use crate::playlists::Kind;
use crate::ratings::Rating;
use crate::{Db, DbError, with_pool};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// Playlists listed at most (a user makes at most [`crate::playlists::MAX_PLAYLISTS`]).
const MAX_LISTS: i64 = 1000;

/// One of the viewer's playlists, as the watch page's "Save" menu shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListChoice {
    pub id: Uuid,
    pub kind: Kind,
    pub title: String,
    /// The list holds the video.
    pub contains: bool,
}

/// A viewer's state on a video.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchState {
    /// They follow the video's channel.
    pub subscribed: bool,
    pub rating: Option<Rating>,
    pub history_paused: bool,
    /// Where their history says they stopped, if anywhere.
    pub position_secs: Option<u32>,
    /// Their "Watch later" first (when it exists), then their lists, newest first.
    pub playlists: Vec<ListChoice>,
}

const WATCH_STATE: &str = "SELECT \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM subscriptions WHERE user_id = $1 AND channel_id = $3) \
          THEN 1 ELSE 0 END AS BIGINT) AS subscribed, \
     (SELECT rating FROM video_ratings WHERE user_id = $1 AND video_id = $2) AS rating, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM library_settings WHERE user_id = $1 AND history_paused = TRUE) \
          THEN 1 ELSE 0 END AS BIGINT) AS history_paused, \
     (SELECT position_secs FROM watch_history WHERE user_id = $1 AND video_id = $2) AS position_secs, \
     p.id, p.kind, p.title, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM playlist_items i WHERE i.playlist_id = p.id AND i.video_id = $2) \
          THEN 1 ELSE 0 END AS BIGINT) AS holds \
     FROM (SELECT 1 AS one) AS viewer LEFT JOIN playlists p ON p.owner_id = $1 \
     ORDER BY CASE WHEN p.kind = 'watch_later' THEN 0 ELSE 1 END, p.created_at DESC, p.id DESC LIMIT $4";

type Row = (i64, Option<String>, i64, Option<i64>, Option<Uuid>, Option<String>, Option<String>, i64);

/// `user`'s state on `video` (of the channel `channel`).
pub async fn get(db: &Db, user: UserId, video: Uuid, channel: Uuid) -> Result<WatchState, DbError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(WATCH_STATE).bind(user.0).bind(video).bind(channel).bind(MAX_LISTS).fetch_all(pool).await?
    });
    let mut state = WatchState::default();
    if let Some((subscribed, rating, paused, position, ..)) = rows.first() {
        state.subscribed = *subscribed != 0;
        state.rating = rating.as_deref().and_then(Rating::parse);
        state.history_paused = *paused != 0;
        state.position_secs = position.map(|p| u32::try_from(p).unwrap_or(u32::MAX));
    }
    state.playlists = rows
        .into_iter()
        .filter_map(|(.., id, kind, title, holds)| {
            Some(ListChoice { id: id?, kind: Kind::from_stored(kind.as_deref()?), title: title?, contains: holds != 0 })
        })
        .collect();
    Ok(state)
}
