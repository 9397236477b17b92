//! The materialised head of an active viewer's feed: the newest videos of the channels they
//! follow, kept as rows (`feed_entries`) so that opening the feed reads one index range instead
//! of probing every followed channel.
//!
//! - **Built on read.** The first page of a feed that has no head computes the newest
//!   [`HEAD_SIZE`] videos once ([`crate::subscriptions::feed`]'s plan) and keeps them under a
//!   new head's token. Concurrent readers race for the head's row; the others compute their page
//!   as before.
//! - **Kept current by the fan-out.** The job that announces a newly listed video
//!   (`notify_new_video`) adds an entry to the head of each follower it reaches, in the same
//!   bounded batches ([`push_batch`]); a head being built receives them too, so nothing
//!   published while it is computed is missed.
//! - **Exact above its floor.** A head answers for every key `(published_at, id)` at or above
//!   its floor (no floor: the whole feed). Entries are filtered when read exactly as the
//!   computed feed filters videos (public, playable, not hidden, the channel still followed),
//!   so a video made private or an unfollowed channel leaves at once. A page that runs past the
//!   floor continues with the computed feed from there.
//! - **Dropped, never patched.** Subscribing drops the head and its entries in the
//!   subscription's transaction; the next read builds another under a new token. An unban drops
//!   its followers' heads ([`drop_followers`]). Entries under an older token (a builder taken
//!   over) are ignored, and deleted when the user's head is built again or [`expire`]d. A head and its entries are
//!   read in one statement, so an expiry or a rebuild never shows a reader half a head.
//!
//! A new video reaches a head when the fan-out job reaches its follower (seconds on a quiet
//! queue), where the computed feed showed it at once.

use crate::subscriptions::FeedRow;
use crate::videos::video_columns;
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, TimeDelta, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// How many videos a head holds when built: ten pages of the feed's default size.
pub const HEAD_SIZE: u32 = 240;

/// A head left unfinished (its builder died) is taken over after this long.
const BUILD_TIMEOUT: TimeDelta = TimeDelta::seconds(30);

/// A head's read time is written again at most this often (reading stays read-only).
const READ_PRECISION: TimeDelta = TimeDelta::hours(1);

/// A feed key: `(published_at, id)`, ordered newest first.
pub type Key = (DateTime<Utc>, Uuid);

/// What a ready head gave for a page.
pub(crate) struct HeadPage<R> {
    /// The page's videos from the head, newest first, below the cursor.
    pub rows: Vec<R>,
    /// The lowest key the head answers for; `None`: the head holds the whole feed.
    pub floor: Option<Key>,
    /// The user's feed visit as read with the head ([`crate::subscriptions::feed_cards_on_visit`]).
    pub visit: crate::subscriptions::VisitRow,
}

/// The user `$1`'s feed visit (`feed_visits`), as two uncorrelated scalar subqueries beside the
/// head's columns: the feed page records its visit after reading the page, and reads the visit
/// in the same statement ([`HeadRow`]'s `visit_at`, `visit_previous_at`).
macro_rules! visit_columns {
    () => {
        ", (SELECT fv.visited_at FROM feed_visits fv WHERE fv.user_id = $1) AS visit_at, \
         (SELECT fv.previous_at FROM feed_visits fv WHERE fv.user_id = $1) AS visit_previous_at "
    };
}

/// The page below `$2, $3` from `user` `$1`'s ready head, at most `$4` videos, each row with its
/// head's floor and read time. One statement, so one snapshot: a head dropped, expired or built
/// again meanwhile is read whole or not at all (its entries are joined by its current token, and
/// a head being built is not ready). The head's entries are put in order first (keys only, at
/// most [`HEAD_SIZE`]) and only then joined to their videos, channels and owners, so the join
/// stops once the page is full: joined first and sorted after, every one of the head's 240
/// entries was looked up four times for a page of 9 (PostgreSQL, about 8 ms a page, most of a
/// signed-in home page's cost).
macro_rules! entries {
    ($columns:expr, $owner_join:literal) => {
        concat!(
            $columns,
            ", e.head_floor_at, e.head_floor_id, e.head_token, e.head_read_at",
            visit_columns!(),
            "FROM (SELECT e.video_id, e.published_at, h.floor_at AS head_floor_at, h.floor_id AS head_floor_id, \
             h.token AS head_token, h.read_at AS head_read_at \
             FROM feed_heads h JOIN feed_entries e ON e.user_id = h.user_id AND e.token = h.token \
             WHERE h.user_id = $1 AND h.ready = TRUE \
             AND e.published_at <= $2 AND (e.published_at < $2 OR e.video_id < $3) \
             AND (h.floor_at IS NULL OR (e.published_at >= h.floor_at AND (e.published_at > h.floor_at OR e.video_id >= h.floor_id))) \
             ORDER BY e.published_at DESC, e.video_id DESC) e \
             JOIN videos v ON v.id = e.video_id ",
            $owner_join,
            "JOIN channels c ON c.id = v.channel_id \
             WHERE v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL AND v.hidden IS NULL \
             AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = $1 AND s.channel_id = v.channel_id) \
             ORDER BY e.published_at DESC, e.video_id DESC LIMIT $4"
        )
    };
}
/// The head's page (`entries!`) as whole videos (the API's feed).
pub(crate) const ENTRIES: &str = entries!(video_columns!(), "JOIN users u ON u.id = v.owner_id ");
/// [`ENTRIES`] as cards ([`crate::videos::CardRow`]).
pub(crate) const CARD_ENTRIES: &str = entries!(crate::videos::card_columns!(), "");

/// A row of [`ENTRIES`] (or [`CARD_ENTRIES`]): the video and what the head says of itself.
struct EntryRow<V> {
    video: V,
    head: HeadRow,
}

impl<'r, Q: sqlx::Row, V: sqlx::FromRow<'r, Q>> sqlx::FromRow<'r, Q> for EntryRow<V>
where
    HeadRow: sqlx::FromRow<'r, Q>,
{
    fn from_row(row: &'r Q) -> Result<Self, sqlx::Error> {
        Ok(EntryRow { video: V::from_row(row)?, head: HeadRow::from_row(row)? })
    }
}

/// What a ready head says of itself.
#[derive(sqlx::FromRow, Clone, Copy)]
struct HeadRow {
    head_floor_at: Option<DateTime<Utc>>,
    head_floor_id: Option<Uuid>,
    head_token: Uuid,
    head_read_at: DateTime<Utc>,
    visit_at: Option<DateTime<Utc>>,
    visit_previous_at: Option<DateTime<Utc>>,
}

impl HeadRow {
    fn visit(&self) -> crate::subscriptions::VisitRow {
        self.visit_at.map(|at| (at, self.visit_previous_at))
    }
}

/// The head alone: asked only when [`ENTRIES`] found nothing, in one snapshot with it again
/// ([`read_in_snapshot`]).
const HEAD: &str = concat!(
    "SELECT floor_at AS head_floor_at, floor_id AS head_floor_id, token AS head_token, read_at AS head_read_at",
    visit_columns!(),
    "FROM feed_heads WHERE user_id = $1 AND ready = TRUE"
);

/// Reads up to `limit` videos below `before` from `user`'s ready head, in one snapshot with the
/// head itself; `None` when the user has no ready head.
pub(crate) async fn read<R: FeedRow>(
    db: &Db,
    user: UserId,
    before: Key,
    limit: i64,
) -> Result<Option<HeadPage<R>>, DbError> {
    // On CockroachDB even a read may be asked to retry.
    let entries: Vec<EntryRow<R>> = retry_serializable(|| async {
        Ok(with_pool!(db, |pool| {
            sqlx::query_as(R::HEAD_ENTRIES)
                .bind(user.0)
                .bind(before.0)
                .bind(before.1)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    })
    .await?;
    let (head, rows) = match entries.first() {
        Some(first) => (first.head, entries.into_iter().map(|e| e.video).collect()),
        // Nothing: no ready head, or none of its entries below the cursor, or a head made ready
        // just after that statement. Asked again with the head in one snapshot, so an empty page
        // is never paired with a head read later (whose floor would skip the page's videos).
        None => match read_in_snapshot(db, user, before, limit).await? {
            Some(found) => found,
            None => return Ok(None),
        },
    };
    let now = Utc::now();
    if now - head.head_read_at > READ_PRECISION {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE feed_heads SET read_at = $3 WHERE user_id = $1 AND token = $2")
                .bind(user.0)
                .bind(head.head_token)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())?
        });
    }
    Ok(Some(HeadPage { rows, floor: head.head_floor_at.zip(head.head_floor_id), visit: head.visit() }))
}

/// The head and its entries below `before` in one snapshot (PostgreSQL: a REPEATABLE READ, READ
/// ONLY transaction; SQLite: a deferred transaction reads one snapshot from its first statement).
async fn read_in_snapshot<R: FeedRow>(
    db: &Db,
    user: UserId,
    before: Key,
    limit: i64,
) -> Result<Option<(HeadRow, Vec<R>)>, DbError> {
    let postgres = matches!(db, Db::Postgres(_));
    retry_serializable(|| async {
        Ok(with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
            }
            let head: Option<HeadRow> = sqlx::query_as(HEAD).bind(user.0).fetch_optional(&mut *tx).await?;
            let found = match head {
                Some(head) => {
                    let entries: Vec<EntryRow<R>> = sqlx::query_as(R::HEAD_ENTRIES)
                        .bind(user.0)
                        .bind(before.0)
                        .bind(before.1)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?;
                    Some((head, entries.into_iter().map(|e| e.video).collect()))
                }
                None => None,
            };
            tx.commit().await?;
            found
        }))
    })
    .await
}

/// Takes the right to build `user`'s head: a new head row (or one whose builder stopped
/// [`BUILD_TIMEOUT`] ago) under a new token, and the user's entries under any other token
/// removed. `None` when a head is ready or being built by someone else.
pub(crate) async fn claim(db: &Db, user: UserId) -> Result<Option<Uuid>, DbError> {
    let token = Uuid::now_v7();
    let now = Utc::now();
    let claimed: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar(
            "INSERT INTO feed_heads (user_id, token, ready, built_at, read_at) VALUES ($1, $2, FALSE, $3, $3) \
             ON CONFLICT (user_id) DO UPDATE SET token = $2, ready = FALSE, floor_at = NULL, floor_id = NULL, \
             built_at = $3, read_at = $3 WHERE feed_heads.ready = FALSE AND feed_heads.built_at < $4 RETURNING token",
        )
        .bind(user.0)
        .bind(token)
        .bind(now)
        .bind(now - BUILD_TIMEOUT)
        .fetch_optional(pool)
        .await?
    });
    if claimed.is_none() {
        return Ok(None);
    }
    with_pool!(db, |pool| {
        sqlx::query("DELETE FROM feed_entries WHERE user_id = $1 AND token <> $2")
            .bind(user.0)
            .bind(token)
            .execute(pool)
            .await
            .map(|_| ())?
    });
    Ok(Some(token))
}

/// Keeps `keys` (the newest videos of the feed, newest first, as computed after [`claim`]) as
/// the entries of head `token` and makes it ready. `complete`: `keys` is the whole feed (no
/// floor). Does nothing if the head was dropped or taken over meanwhile.
pub(crate) async fn fill(db: &Db, user: UserId, token: Uuid, keys: &[Key], complete: bool) -> Result<bool, DbError> {
    for chunk in keys.chunks(200) {
        with_pool!(db, |pool| {
            let mut insert =
                sqlx::QueryBuilder::new("INSERT INTO feed_entries (user_id, token, published_at, video_id) ");
            insert.push_values(chunk, |mut row, (at, id)| {
                row.push_bind(user.0).push_bind(token).push_bind(*at).push_bind(*id);
            });
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(pool).await.map(|_| ())?
        });
    }
    let floor = if complete { None } else { keys.last().copied() };
    let made = retry_serializable(|| async {
        Ok(with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE feed_heads SET ready = TRUE, floor_at = $3, floor_id = $4 WHERE user_id = $1 AND token = $2",
            )
            .bind(user.0)
            .bind(token)
            .bind(floor.map(|f| f.0))
            .bind(floor.map(|f| f.1))
            .execute(pool)
            .await?
            .rows_affected()
        }))
    })
    .await?;
    Ok(made == 1)
}

/// One fan-out batch's entries: `video` (of `channel`, published at `published_at`) added to
/// the head of each follower with id in `(after, last]` that has one, ready or being built.
/// Running it twice adds nothing twice.
pub(crate) async fn push_batch(
    db: &Db,
    video: Uuid,
    channel: Uuid,
    published_at: DateTime<Utc>,
    after: Uuid,
    last: Uuid,
) -> Result<u64, DbError> {
    retry_serializable(|| async {
        Ok(with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO feed_entries (user_id, token, published_at, video_id) \
                 SELECT h.user_id, h.token, $3, $1 FROM subscriptions s JOIN feed_heads h ON h.user_id = s.user_id \
                 WHERE s.channel_id = $2 AND s.user_id > $4 AND s.user_id <= $5 ON CONFLICT DO NOTHING",
            )
            .bind(video)
            .bind(channel)
            .bind(published_at)
            .bind(after)
            .bind(last)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    })
    .await
}

/// Drops `user` `$1`'s head and its entries (part of the transaction that makes a
/// subscription): the next read builds another.
pub(crate) const DROP: [&str; 2] =
    ["DELETE FROM feed_heads WHERE user_id = $1", "DELETE FROM feed_entries WHERE user_id = $1"];

/// Heads dropped per short transaction by [`drop_followers`].
const DROP_BATCH: i64 = 500;

/// Drops, with their entries, the heads of everyone following a channel of `owner`, a short
/// transaction per [`DROP_BATCH`] heads (after an unban: heads built during the ban lack the
/// videos shown again). Heads are a cache: one missed here (the process stopped half-way) lacks
/// those videos until it is built again ([`MAX_AGE`] at most).
pub async fn drop_followers(db: &Db, owner: UserId) -> Result<u64, DbError> {
    let mut dropped = 0;
    loop {
        let users: Vec<Uuid> = with_pool!(db, |pool| {
            sqlx::query_scalar(
                "SELECT h.user_id FROM feed_heads h WHERE EXISTS (SELECT 1 FROM subscriptions s \
                 JOIN channels c ON c.id = s.channel_id WHERE s.user_id = h.user_id AND c.owner_id = $1) LIMIT $2",
            )
            .bind(owner.0)
            .bind(DROP_BATCH)
            .fetch_all(pool)
            .await?
        });
        if users.is_empty() {
            return Ok(dropped);
        }
        for user in &users {
            retry_serializable(|| async {
                with_pool!(db, |pool| {
                    let mut tx = pool.begin().await?;
                    for sql in DROP {
                        sqlx::query(sql).bind(user).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                });
                Ok(())
            })
            .await?;
        }
        dropped += users.len() as u64;
    }
}

/// A head not read for this long is deleted ([`expire`]): an active viewer's head is kept, one
/// coming back after a while has it built again (one computed page).
pub const IDLE: TimeDelta = TimeDelta::days(2);
/// A head built this long ago is deleted even if read since: rebuilding it bounds what the
/// fan-out added to it.
pub const MAX_AGE: TimeDelta = TimeDelta::days(7);

/// Deletes, with their entries, at most `batch` heads that were not read for [`IDLE`] or were
/// built [`MAX_AGE`] before `now`; returns how many went. Each head goes in its own short
/// transaction. Each condition is one index range (`feed_heads_read`, `feed_heads_built`).
pub async fn expire(db: &Db, now: DateTime<Utc>, batch: u32) -> Result<u64, DbError> {
    let mut heads: Vec<(Uuid, Uuid)> = Vec::new();
    for (sql, before) in [
        ("SELECT user_id, token FROM feed_heads WHERE read_at < $1 LIMIT $2", now - IDLE),
        ("SELECT user_id, token FROM feed_heads WHERE built_at < $1 LIMIT $2", now - MAX_AGE),
    ] {
        let found: Vec<(Uuid, Uuid)> =
            with_pool!(db, |pool| { sqlx::query_as(sql).bind(before).bind(i64::from(batch)).fetch_all(pool).await? });
        for head in found {
            if heads.len() < batch as usize && !heads.contains(&head) {
                heads.push(head);
            }
        }
    }
    let mut gone = 0;
    for (user, token) in heads {
        gone += retry_serializable(|| async {
            Ok(with_pool!(db, |pool| {
                let mut tx = pool.begin().await?;
                let n = sqlx::query("DELETE FROM feed_heads WHERE user_id = $1 AND token = $2")
                    .bind(user)
                    .bind(token)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 1 {
                    // Every entry of the user: the head's, and any left by an older token. (A
                    // head built again meanwhile has another token and keeps its entries.)
                    sqlx::query("DELETE FROM feed_entries WHERE user_id = $1").bind(user).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                n
            }))
        })
        .await?;
    }
    Ok(gone)
}
