//! Playlists and their items, including each user's system "Watch later" list.
//!
//! A playlist belongs to a user and is shown on one of their channels. Items are ordered by a
//! sparse integer key (`position`, then the item id): appending takes the playlist's
//! `last_position` plus [`GAP`], a move writes the midpoint of the item's new neighbours — one
//! row, no renumbering — and only when two neighbours have no free key left between them (after
//! some 32 moves into the same gap) are that list's keys spread out again, in the same
//! transaction. Every write to a playlist's items first updates the playlist row (`updated_at`,
//! `last_position`), so on PostgreSQL the writes of one list run one after the other, and the
//! item limit ([`MAX_ITEMS`]) is counted under that lock; retried on 40001 like every write.
//!
//! Items list what the viewer may see: someone else's private video, or one that cannot be
//! played, is left out for anyone but the video's owner (unlisted videos show to whoever may
//! see the playlist, as on YouTube). Deleting a video deletes its items.

use crate::videos::{Privacy, Row as VideoRow, Video, select};
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// The distance between the keys of appended items.
pub const GAP: i64 = 1 << 32;
/// Items a playlist holds at most.
pub const MAX_ITEMS: i64 = 5_000;
/// Playlists a user may make (the system lists not counted).
pub const MAX_PLAYLISTS: i64 = 200;
/// The title of every user's "Watch later".
pub const WATCH_LATER_TITLE: &str = "Watch later";

/// A user's own list or their system "Watch later".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    WatchLater,
}

impl Kind {
    pub(crate) fn from_stored(s: &str) -> Kind {
        if s == "watch_later" { Kind::WatchLater } else { Kind::User }
    }
}

/// A playlist with its owner's and channel's names.
#[derive(Debug, Clone, PartialEq)]
pub struct Playlist {
    pub id: Uuid,
    pub owner_id: UserId,
    pub owner_username: String,
    pub channel_id: Uuid,
    pub channel_handle: String,
    pub channel_display_name: String,
    pub kind: Kind,
    pub title: String,
    pub description: String,
    pub privacy: Privacy,
    /// Items the viewer of the query may see.
    pub item_count: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    owner_id: Uuid,
    owner_username: String,
    channel_id: Uuid,
    channel_handle: String,
    channel_display_name: String,
    kind: String,
    title: String,
    description: String,
    privacy: String,
    item_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Playlist {
    fn from(r: Row) -> Playlist {
        Playlist {
            id: r.id,
            owner_id: UserId(r.owner_id),
            owner_username: r.owner_username,
            channel_id: r.channel_id,
            channel_handle: r.channel_handle,
            channel_display_name: r.channel_display_name,
            kind: Kind::from_stored(&r.kind),
            title: r.title,
            description: r.description,
            privacy: Privacy::parse(&r.privacy).unwrap_or(Privacy::Private),
            item_count: u64::try_from(r.item_count).unwrap_or(0),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The playlist columns; `$1` is the viewer whose visible items are counted.
macro_rules! select_playlist {
    ($($rest:tt)+) => {
        concat!(
            "SELECT p.id, p.owner_id, u.username AS owner_username, p.channel_id, c.handle AS channel_handle, \
             c.display_name AS channel_display_name, p.kind, p.title, p.description, p.privacy, \
             (SELECT COUNT(*) FROM playlist_items i JOIN videos w ON w.id = i.video_id WHERE i.playlist_id = p.id \
              AND (w.owner_id = $1 OR (w.privacy <> 'private' AND w.playable = TRUE AND w.hidden IS NULL))) AS item_count, \
             p.created_at, p.updated_at \
             FROM playlists p JOIN users u ON u.id = p.owner_id JOIN channels c ON c.id = p.channel_id ",
            $($rest)+
        )
    };
}

/// The user-set fields of a playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub title: String,
    pub description: String,
    pub privacy: Privacy,
    /// One of the owner's channels.
    pub channel_id: Uuid,
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlaylistError {
    #[error("the user has {MAX_PLAYLISTS} playlists already")]
    TooManyPlaylists,
    #[error("the playlist holds {MAX_ITEMS} videos already")]
    Full,
    #[error("the video is in the playlist already")]
    AlreadyThere,
    #[error("no such playlist")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbError),
}

fn viewer_key(viewer: Option<UserId>) -> Uuid {
    viewer.map_or(Uuid::nil(), |u| u.0)
}

/// Creates a user's playlist, at most [`MAX_PLAYLISTS`] of them: the count and the insert are
/// one statement (`INSERT … SELECT … WHERE (count) < limit`) in a transaction that first locks
/// the owner's account row on PostgreSQL, so concurrent creations queue and the last ones
/// are refused (SQLite runs one write transaction at a time). Creating an id that exists already
/// succeeds (a retried request).
pub async fn create(db: &Db, id: Uuid, owner: UserId, f: &Fields) -> Result<(), PlaylistError> {
    // On SQLite the insert is the transaction's first statement: it takes the write lock before
    // reading anything (a read first would let another writer in between).
    let lock = matches!(db, Db::Postgres(_)).then_some("SELECT id FROM users WHERE id = $1 FOR UPDATE");
    let made = retry_serializable(|| async {
        let now = Utc::now();
        let n = with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(owner.0).execute(&mut *tx).await?;
            }
            let n = sqlx::query(
                "INSERT INTO playlists (id, owner_id, channel_id, kind, title, description, privacy, created_at, updated_at) \
                 SELECT $1, $2, $3, 'user', $4, $5, $6, $7, $7 \
                 WHERE (SELECT COUNT(*) FROM playlists WHERE owner_id = $2 AND kind = 'user') < $8 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(owner.0)
            .bind(f.channel_id)
            .bind(&f.title)
            .bind(&f.description)
            .bind(f.privacy.as_str())
            .bind(now)
            .bind(MAX_PLAYLISTS)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    })
    .await?;
    if made {
        return Ok(());
    }
    let exists: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT id FROM playlists WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(owner.0)
            .fetch_optional(pool)
            .await
            .map_err(DbError::from)?
    });
    if exists.is_some() { Ok(()) } else { Err(PlaylistError::TooManyPlaylists) }
}

async fn insert(db: &Db, id: Uuid, owner: UserId, kind: &str, f: &Fields) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let now = Utc::now();
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO playlists (id, owner_id, channel_id, kind, title, description, privacy, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(owner.0)
            .bind(f.channel_id)
            .bind(kind)
            .bind(&f.title)
            .bind(&f.description)
            .bind(f.privacy.as_str())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    })
    .await
}

/// One playlist, its item count as `viewer` sees it.
pub async fn get(db: &Db, id: Uuid, viewer: Option<UserId>) -> Result<Option<Playlist>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select_playlist!("WHERE p.id = $2"))
            .bind(viewer_key(viewer))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(Playlist::from))
}

/// `owner`'s "Watch later", made on first use (one per user: a unique partial index).
pub async fn watch_later(db: &Db, owner: UserId, channel_id: Uuid) -> Result<Playlist, DbError> {
    if let Some(p) = find_watch_later(db, owner).await? {
        return Ok(p);
    }
    let fields =
        Fields { title: WATCH_LATER_TITLE.into(), description: String::new(), privacy: Privacy::Private, channel_id };
    insert(db, Uuid::now_v7(), owner, "watch_later", &fields).await?;
    find_watch_later(db, owner).await?.ok_or_else(|| DbError::Conflict { constraint: "playlists_watch_later".into() })
}

/// `owner`'s "Watch later", if they have used it; nothing is made.
pub async fn find_watch_later(db: &Db, owner: UserId) -> Result<Option<Playlist>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select_playlist!("WHERE p.owner_id = $1 AND p.kind = 'watch_later'"))
            .bind(owner.0)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(Playlist::from))
}

/// `owner`'s playlists (their "Watch later" first, then newest first); counts as they see them.
pub async fn list_by_owner(db: &Db, owner: UserId) -> Result<Vec<Playlist>, DbError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select_playlist!(
            "WHERE p.owner_id = $1 ORDER BY CASE WHEN p.kind = 'watch_later' THEN 0 ELSE 1 END, p.created_at DESC, p.id DESC LIMIT 1000"
        ))
        .bind(owner.0)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Playlist::from).collect())
}

/// A channel's public playlists, most recently changed first, after `(updated_at, id)` when
/// paging (index `playlists_channel_public`); counts as `viewer` sees them.
pub async fn list_public_by_channel(
    db: &Db,
    channel: Uuid,
    viewer: Option<UserId>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<Playlist>, DbError> {
    let (at, id) = after.unwrap_or((Utc::now() + chrono::TimeDelta::days(3650), Uuid::max()));
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select_playlist!(
            "WHERE p.channel_id = $2 AND p.privacy = 'public' AND p.kind = 'user' \
             AND p.updated_at <= $3 AND (p.updated_at < $3 OR p.id < $4) \
             ORDER BY p.updated_at DESC, p.id DESC LIMIT $5"
        ))
        .bind(viewer_key(viewer))
        .bind(channel)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Playlist::from).collect())
}

/// Replaces the user-set fields; `false` when there is no such playlist.
pub async fn update(db: &Db, id: Uuid, f: &Fields) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE playlists SET title = $2, description = $3, privacy = $4, channel_id = $5, updated_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(&f.title)
            .bind(&f.description)
            .bind(f.privacy.as_str())
            .bind(f.channel_id)
            .bind(Utc::now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    })
    .await
}

/// Deletes a playlist and its items; `false` when there was none.
pub async fn delete(db: &Db, id: Uuid) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query("DELETE FROM playlists WHERE id = $1").bind(id).execute(pool).await?.rows_affected()
        });
        Ok(n > 0)
    })
    .await
}

/// One item of a playlist, with its video.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: Uuid,
    pub position: i64,
    pub added_at: DateTime<Utc>,
    pub video: Video,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    #[sqlx(flatten)]
    video: VideoRow,
    item_id: Uuid,
    item_position: i64,
    item_added_at: DateTime<Utc>,
}

impl From<ItemRow> for Item {
    fn from(r: ItemRow) -> Item {
        Item { id: r.item_id, position: r.item_position, added_at: r.item_added_at, video: Video::from(r.video) }
    }
}

/// Appends `video` to `playlist`; the new item's id. Refused when the video is there already or
/// the list is full.
pub async fn add_item(db: &Db, playlist: Uuid, video: Uuid) -> Result<Uuid, PlaylistError> {
    let id = Uuid::now_v7();
    retry_serializable(|| async {
        let now = Utc::now();
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            // The playlist row first: it serializes this list's writers.
            let position: Option<i64> = sqlx::query_scalar(
                "UPDATE playlists SET last_position = last_position + $2, updated_at = $3 WHERE id = $1 RETURNING last_position",
            )
            .bind(playlist)
            .bind(GAP)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(position) = position else {
                return Ok::<_, DbError>(Err(PlaylistError::NotFound));
            };
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM playlist_items WHERE playlist_id = $1")
                .bind(playlist)
                .fetch_one(&mut *tx)
                .await?;
            if count >= MAX_ITEMS {
                tx.rollback().await?;
                return Ok(Err(PlaylistError::Full));
            }
            let n = sqlx::query(
                "INSERT INTO playlist_items (id, playlist_id, video_id, position, added_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(playlist)
            .bind(video)
            .bind(position)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                return Ok(Err(PlaylistError::AlreadyThere));
            }
            tx.commit().await?;
            Ok(Ok(id))
        })
    })
    .await?
}

/// The item holding `video` in `playlist`, if any.
pub async fn item_of(db: &Db, playlist: Uuid, video: Uuid) -> Result<Option<Uuid>, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT id FROM playlist_items WHERE playlist_id = $1 AND video_id = $2")
            .bind(playlist)
            .bind(video)
            .fetch_optional(pool)
            .await?
    }))
}

/// Removes an item; `false` when `playlist` has no such item.
pub async fn remove_item(db: &Db, playlist: Uuid, item: Uuid) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE playlists SET updated_at = $2 WHERE id = $1")
                .bind(playlist)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM playlist_items WHERE id = $1 AND playlist_id = $2")
                .bind(item)
                .bind(playlist)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n > 0)
    })
    .await
}

/// Moves an item so that it ends at `index` (0-based) of the whole list, clamped to its end;
/// `false` when `playlist` has no such item. One item row is written (moved to the end, the
/// playlist's `last_position` too), unless its new neighbours have no free key between them:
/// then the list's keys are spread out first.
pub async fn move_item(db: &Db, playlist: Uuid, item: Uuid, index: u32) -> Result<bool, DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let last: Option<i64> =
                sqlx::query_scalar("UPDATE playlists SET updated_at = $2 WHERE id = $1 RETURNING last_position")
                    .bind(playlist)
                    .bind(Utc::now())
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(mut last) = last else { return Ok::<_, DbError>(false) };
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT position FROM playlist_items WHERE id = $1 AND playlist_id = $2")
                    .bind(item)
                    .bind(playlist)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                return Ok(false);
            }
            for _ in 0..2 {
                // The neighbours at `index` in the list without the item: the one before
                // (offset index − 1) and the one after (offset index).
                let near: Vec<(i64, Uuid)> = sqlx::query_as(
                    "SELECT position, id FROM playlist_items WHERE playlist_id = $1 AND id <> $2 \
                     ORDER BY position, id LIMIT $3 OFFSET $4",
                )
                .bind(playlist)
                .bind(item)
                .bind(if index == 0 { 1i64 } else { 2 })
                .bind(i64::from(index.saturating_sub(1)))
                .fetch_all(&mut *tx)
                .await?;
                let (before, after) = if index == 0 {
                    (None, near.first().map(|n| n.0))
                } else {
                    (near.first().map(|n| n.0), near.get(1).map(|n| n.0))
                };
                let target = match (before, after) {
                    (_, None) => {
                        // To the end: a new key after every other, as an append takes.
                        last = last.max(before.unwrap_or(0)) + GAP;
                        sqlx::query("UPDATE playlists SET last_position = $2 WHERE id = $1")
                            .bind(playlist)
                            .bind(last)
                            .execute(&mut *tx)
                            .await?;
                        Some(last)
                    }
                    (None, Some(a)) => a.checked_sub(GAP),
                    (Some(b), Some(a)) if a - b >= 2 => Some(b + (a - b) / 2),
                    (Some(_), Some(_)) => None,
                };
                if let Some(position) = target {
                    sqlx::query("UPDATE playlist_items SET position = $2 WHERE id = $1")
                        .bind(item)
                        .bind(position)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Ok(true);
                }
                // No free key: spread the list out (in order, GAP apart), then place it again.
                let ids: Vec<Uuid> =
                    sqlx::query_scalar("SELECT id FROM playlist_items WHERE playlist_id = $1 ORDER BY position, id")
                        .bind(playlist)
                        .fetch_all(&mut *tx)
                        .await?;
                for (i, id) in ids.iter().enumerate() {
                    sqlx::query("UPDATE playlist_items SET position = $2 WHERE id = $1")
                        .bind(id)
                        .bind(GAP * (i as i64 + 1))
                        .execute(&mut *tx)
                        .await?;
                }
                last = GAP * ids.len() as i64;
                sqlx::query("UPDATE playlists SET last_position = $2 WHERE id = $1")
                    .bind(playlist)
                    .bind(last)
                    .execute(&mut *tx)
                    .await?;
            }
            // Unreachable in practice: after spreading, every gap holds a free key.
            tx.rollback().await?;
            Err(DbError::Conflict { constraint: "playlist_items_order".into() })
        })
    })
    .await
}

/// The items of `playlist` that `viewer` may see, in order, after `(position, item id)` when
/// paging (index `playlist_items_order`).
pub async fn items(
    db: &Db,
    playlist: Uuid,
    viewer: Option<UserId>,
    after: Option<(i64, Uuid)>,
    limit: u32,
) -> Result<Vec<Item>, DbError> {
    let (pos, id) = after.unwrap_or((i64::MIN, Uuid::nil()));
    let rows: Vec<ItemRow> = with_pool!(db, |pool| {
        sqlx::query_as(select!(
            columns ", pi.id AS item_id, pi.position AS item_position, pi.added_at AS item_added_at",
            "JOIN playlist_items pi ON pi.video_id = v.id \
             WHERE pi.playlist_id = $1 AND (v.owner_id = $2 OR (v.privacy <> 'private' AND v.playable = TRUE AND v.hidden IS NULL)) \
             AND pi.position >= $3 AND (pi.position > $3 OR pi.id > $4) \
             ORDER BY pi.position, pi.id LIMIT $5"
        ))
        .bind(playlist)
        .bind(viewer_key(viewer))
        .bind(pos)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Item::from).collect())
}

/// The visible items of `playlist` from the `offset`-th (0-based), at most `limit`: the watch
/// page's window around the playing item.
pub async fn items_from(
    db: &Db,
    playlist: Uuid,
    viewer: Option<UserId>,
    offset: u32,
    limit: u32,
) -> Result<Vec<Item>, DbError> {
    let rows: Vec<ItemRow> = with_pool!(db, |pool| {
        sqlx::query_as(select!(
            columns ", pi.id AS item_id, pi.position AS item_position, pi.added_at AS item_added_at",
            "JOIN playlist_items pi ON pi.video_id = v.id \
             WHERE pi.playlist_id = $1 AND (v.owner_id = $2 OR (v.privacy <> 'private' AND v.playable = TRUE AND v.hidden IS NULL)) \
             ORDER BY pi.position, pi.id LIMIT $3 OFFSET $4"
        ))
        .bind(playlist)
        .bind(viewer_key(viewer))
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Item::from).collect())
}
