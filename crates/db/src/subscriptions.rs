//! Subscriptions (who follows which channel), the feed of followed channels' videos, and the
//! time of each user's last feed visit.
//!
//! A subscription and its channel's `subscriber_count` change together in one short
//! transaction, and the counter moves only when the insert or delete really changed a row
//! (`INSERT … ON CONFLICT DO NOTHING` and `DELETE` row counts), so repeated and concurrent
//! toggles keep it equal to the number of rows: on PostgreSQL a concurrent insert of the same
//! pair waits on the primary key and then does nothing, a delete that does not see an
//! uncommitted insert deletes nothing; SQLite runs writers one at a time; CockroachDB's
//! serialization failures are retried ([`retry_serializable`]).

use crate::feed_heads as heads;
use crate::videos::{Card, CardRow, Row as VideoRow, Video, select};
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// Follows `channel`; `true` if this made a new subscription (`false`: it existed already).
pub async fn subscribe(db: &Db, user: UserId, channel: Uuid) -> Result<bool, DbError> {
    set(db, user, channel, true).await
}

/// Stops following `channel`; `true` if there was a subscription to end.
pub async fn unsubscribe(db: &Db, user: UserId, channel: Uuid) -> Result<bool, DbError> {
    set(db, user, channel, false).await
}

/// Adds (`follow`) or removes the subscription and moves `subscriber_count` by one only when a
/// row really changed (`ON CONFLICT DO NOTHING` / `DELETE` row counts), in one short
/// transaction retried on 40001, so the count stays exact under concurrent toggles.
async fn set(db: &Db, user: UserId, channel: Uuid, follow: bool) -> Result<bool, DbError> {
    let (change, count) = if follow {
        (
            "INSERT INTO subscriptions (user_id, channel_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            "UPDATE channels SET subscriber_count = subscriber_count + 1 WHERE id = $1",
        )
    } else {
        (
            "DELETE FROM subscriptions WHERE user_id = $1 AND channel_id = $2",
            "UPDATE channels SET subscriber_count = subscriber_count - 1 WHERE id = $1",
        )
    };
    retry_serializable(|| async {
        let now = Utc::now();
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let mut query = sqlx::query(change).bind(user.0).bind(channel);
            if follow {
                query = query.bind(now);
            }
            let changed = query.execute(&mut *tx).await?.rows_affected();
            if changed == 1 {
                sqlx::query(count).bind(channel).execute(&mut *tx).await?;
                if follow {
                    // The feed's head lacks the new channel's videos: the next read builds another.
                    for sql in crate::feed_heads::DROP {
                        sqlx::query(sql).bind(user.0).execute(&mut *tx).await?;
                    }
                }
            }
            tx.commit().await?;
            Ok::<_, DbError>(changed == 1)
        })
    })
    .await
}

pub async fn is_subscribed(db: &Db, user: UserId, channel: Uuid) -> Result<bool, DbError> {
    let found: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT channel_id FROM subscriptions WHERE user_id = $1 AND channel_id = $2")
            .bind(user.0)
            .bind(channel)
            .fetch_optional(pool)
            .await?
    });
    Ok(found.is_some())
}

/// How many rows follow `channel` (the truth `subscriber_count` must equal; for checks).
pub async fn count_rows(db: &Db, channel: Uuid) -> Result<i64, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE channel_id = $1")
            .bind(channel)
            .fetch_one(pool)
            .await?
    }))
}

/// One of a user's subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub channel: crate::channels::Channel,
    pub created_at: DateTime<Utc>,
}

/// A user's subscriptions, newest first, after `(created_at, channel id)` when paging
/// (index `subscriptions_user_created`).
pub async fn list(
    db: &Db,
    user: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<Subscription>, DbError> {
    let (at, id) = after.unwrap_or((Utc::now() + chrono::TimeDelta::days(3650), Uuid::max()));
    let rows: Vec<(Uuid, DateTime<Utc>)> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT channel_id, created_at FROM subscriptions WHERE user_id = $1 \
             AND created_at <= $2 AND (created_at < $2 OR channel_id < $3) \
             ORDER BY created_at DESC, channel_id DESC LIMIT $4",
        )
        .bind(user.0)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    let mut out = Vec::with_capacity(rows.len());
    for (channel_id, created_at) in rows {
        if let Some(channel) = crate::channels::get(db, channel_id).await? {
            out.push(Subscription { channel, created_at });
        }
    }
    Ok(out)
}

/// The feed on PostgreSQL / CockroachDB; binds user, cursor time, cursor id, limit, floor.
/// (`cards` before the text: the columns of a card.)
macro_rules! feed_postgres {
    ($($cards:ident)?) => {
        select!($($cards)?
            "WHERE v.id IN (SELECT f.id FROM subscriptions s CROSS JOIN LATERAL ( \
                             SELECT w.id, w.published_at FROM videos w WHERE w.channel_id = s.channel_id \
                             AND w.privacy = 'public' AND w.playable = TRUE AND w.published_at IS NOT NULL AND w.hidden IS NULL \
                             AND w.published_at <= $2 AND (w.published_at < $2 OR w.id < $3) AND w.published_at >= $5 \
                             ORDER BY w.published_at DESC, w.id DESC LIMIT $4) f \
                           WHERE s.user_id = $1 ORDER BY f.published_at DESC, f.id DESC LIMIT $4) \
                         ORDER BY v.published_at DESC, v.id DESC"
        )
    };
}
const FEED_POSTGRES: &str = feed_postgres!();

/// The feed's floor: the `$4 + 1`-th newest among the followed channels' newest listable
/// videos before the cursor (binds user, cursor time, cursor id, `limit - 1`). No video older
/// than it can be on the page, since the channels at or above it hold `limit` videos at least
/// as new; none when fewer than `limit` followed channels have such a video. One seek of
/// `videos_channel_published` per followed channel.
macro_rules! feed_floor {
    ($with:literal, $indexed:literal) => {
        concat!(
            "WITH t AS ",
            $with,
            " (SELECT (SELECT w.published_at FROM videos w ",
            $indexed,
            " WHERE w.channel_id = s.channel_id \
             AND w.privacy = 'public' AND w.playable = TRUE AND w.published_at IS NOT NULL AND w.hidden IS NULL \
             AND w.published_at <= $2 AND (w.published_at < $2 OR w.id < $3) \
             ORDER BY w.published_at DESC, w.id DESC LIMIT 1) AS newest \
             FROM subscriptions s WHERE s.user_id = $1) \
             SELECT newest FROM t WHERE newest IS NOT NULL ORDER BY newest DESC LIMIT 1 OFFSET $4"
        )
    };
}
const FEED_FLOOR_POSTGRES: &str = feed_floor!("", "");
/// SQLite would otherwise flatten `t` and run each channel's seek twice (once for the filter,
/// once for the sort): materialized, once.
const FEED_FLOOR_SQLITE: &str = feed_floor!("MATERIALIZED", "INDEXED BY videos_channel_published");

/// The SQLite feed's time windows before the cursor, in days, tried in turn (`None`: all),
/// when there is no floor.
const FEED_WINDOWS_DAYS: [Option<i64>; 4] = [Some(7), Some(31), Some(366), None];

/// The feed on SQLite; same binds, the floor or the start of a time window as `$5`.
macro_rules! feed_sqlite {
    ($($cards:ident)?) => {
        select!(
            $($cards)? indexed "videos_channel_published",
            "WHERE v.channel_id IN (SELECT channel_id FROM subscriptions WHERE user_id = $1) \
             AND v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL AND v.hidden IS NULL \
             AND v.published_at <= $2 AND (v.published_at < $2 OR v.id < $3) AND v.published_at >= $5 \
             ORDER BY v.published_at DESC, v.id DESC LIMIT $4"
        )
    };
}
const FEED_SQLITE: &str = feed_sqlite!();

/// What a feed page is read as: whole videos (the API's feed) or cards (the feed's pages and
/// the home page's "From your subscriptions"), each with its statements.
pub(crate) trait FeedRow:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin
{
    const FEED_POSTGRES: &'static str;
    const FEED_SQLITE: &'static str;
    /// The page from the viewer's head ([`heads`]).
    const HEAD_ENTRIES: &'static str;
    fn list_key(&self) -> heads::Key;
}

impl FeedRow for VideoRow {
    const FEED_POSTGRES: &'static str = FEED_POSTGRES;
    const FEED_SQLITE: &'static str = FEED_SQLITE;
    const HEAD_ENTRIES: &'static str = heads::ENTRIES;
    fn list_key(&self) -> heads::Key {
        VideoRow::list_key(self)
    }
}

impl FeedRow for CardRow {
    const FEED_POSTGRES: &'static str = feed_postgres!(cards);
    const FEED_SQLITE: &'static str = feed_sqlite!(cards);
    const HEAD_ENTRIES: &'static str = heads::CARD_ENTRIES;
    fn list_key(&self) -> heads::Key {
        CardRow::list_key(self)
    }
}

/// The newest public, playable videos of the channels `user` follows, newest first, after
/// `(published_at, id)` when paging. Private and unlisted videos never appear.
///
/// The plan never scans the instance's videos, only the followed channels', and of those only
/// what can be on the page:
/// - First the floor (`FEED_FLOOR_*`): one seek per followed channel of the partial index
///   `videos_channel_published` (channel, published_at DESC, id DESC — only public playable
///   rows) for its newest video before the cursor; the `limit`-th newest of those is a time no
///   video of the page is older than.
/// - PostgreSQL / CockroachDB: for each followed channel (primary key prefix `user_id`), a
///   `LATERAL` probe of the same index from the cursor down to the floor, at most `limit` rows;
///   the candidates are top-N sorted and only the `limit` winners are joined to their users and
///   channels by primary key.
/// - SQLite (no `LATERAL`): `channel_id IN (followed)` drives the same index (named with
///   `INDEXED BY`), one range scan per channel from the cursor down to the floor, and a top-N
///   sorter keeps `limit` rows. Without a floor (fewer than `limit` followed channels have a
///   video) the lower bound is a time window that widens (a week, a month, a year, all) until
///   it holds `limit` rows. Either way the answer is exact: a range holding `limit` rows holds
///   the newest `limit`.
///
/// An active viewer's feed is read from its materialised head ([`crate::feed_heads`]) as far
/// as the head reaches; the first page of a feed without one builds it.
pub async fn feed(
    db: &Db,
    user: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<Video>, DbError> {
    Ok(feed_rows::<VideoRow>(db, user, after, limit).await?.0.into_iter().map(Video::from).collect())
}

/// The same page as [`feed`], as cards.
pub async fn feed_cards(
    db: &Db,
    user: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<Card>, DbError> {
    Ok(feed_rows::<CardRow>(db, user, after, limit).await?.0.into_iter().map(Card::from).collect())
}

/// [`feed_cards`] for the feed's page, which records the visit at `now` and returns the end of
/// the previous one with the page ([`record_visit`]). When the page comes from the head,
/// the visit is read in the head's statement (ARCHITECTURE.md, "Statements per page" under
/// `crates/api`).
pub async fn feed_cards_on_visit(
    db: &Db,
    user: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<(Vec<Card>, Option<DateTime<Utc>>), DbError> {
    let (rows, visit) = feed_rows::<CardRow>(db, user, after, limit).await?;
    let visit = match visit {
        Some(visit) => visit,
        None => read_visit(db, user).await?,
    };
    let new_since = record_visit(db, user, now, visit).await?;
    Ok((rows.into_iter().map(Card::from).collect(), new_since))
}

/// A page of the feed, and the user's feed visit when it was read with it (from the head).
async fn feed_rows<R: FeedRow>(
    db: &Db,
    user: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<(Vec<R>, Option<VisitRow>), DbError> {
    let limit = limit.max(1);
    let top = (Utc::now() + chrono::TimeDelta::days(3650), Uuid::max());
    let before = after.unwrap_or(top);
    let mut visit = None;
    let rows = match heads::read::<R>(db, user, before, i64::from(limit)).await? {
        Some(page) if page.rows.len() as u32 >= limit || page.floor.is_none() => {
            visit = Some(page.visit);
            page.rows
        }
        Some(mut page) => {
            // The head ends above the page's end: the computed feed goes on below its floor.
            visit = Some(page.visit);
            let below = page.floor.map_or(before, |floor| floor.min(before));
            let more = computed::<R>(db, user, Some(below), limit - page.rows.len() as u32).await?;
            page.rows.extend(more);
            page.rows
        }
        None if after.is_none() => match heads::claim(db, user).await? {
            Some(token) => {
                let mut rows = computed::<R>(db, user, None, heads::HEAD_SIZE.max(limit)).await?;
                let keys: Vec<heads::Key> = rows.iter().map(R::list_key).collect();
                heads::fill(db, user, token, &keys, keys.len() < heads::HEAD_SIZE as usize).await?;
                rows.truncate(limit as usize);
                rows
            }
            None => computed::<R>(db, user, None, limit).await?,
        },
        None => computed::<R>(db, user, after, limit).await?,
    };
    Ok((rows, visit))
}

/// The feed computed from the followed channels' videos (the plan described at [`feed`]).
async fn computed<R: FeedRow>(
    db: &Db,
    user: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<R>, DbError> {
    let (at, id) = after.unwrap_or((Utc::now() + chrono::TimeDelta::days(3650), Uuid::max()));
    let limit = i64::from(limit.max(1));
    let floor: Option<DateTime<Utc>> = match db {
        Db::Postgres(pool) => {
            sqlx::query_scalar(FEED_FLOOR_POSTGRES)
                .bind(user.0)
                .bind(at)
                .bind(id)
                .bind(limit - 1)
                .fetch_optional(pool)
                .await?
        }
        Db::Sqlite(pool) => {
            sqlx::query_scalar(FEED_FLOOR_SQLITE)
                .bind(user.0)
                .bind(at)
                .bind(id)
                .bind(limit - 1)
                .fetch_optional(pool)
                .await?
        }
    };
    let rows: Vec<R> = match db {
        Db::Postgres(pool) => {
            // Published times are the server's clock: none is before 1970.
            let floor = floor.unwrap_or(DateTime::UNIX_EPOCH);
            sqlx::query_as(R::FEED_POSTGRES)
                .bind(user.0)
                .bind(at)
                .bind(id)
                .bind(limit)
                .bind(floor)
                .fetch_all(pool)
                .await?
        }
        Db::Sqlite(pool) => {
            let mut rows = Vec::new();
            let windows: Vec<Option<DateTime<Utc>>> = match floor {
                Some(floor) => vec![Some(floor)],
                None => FEED_WINDOWS_DAYS.iter().map(|d| d.map(|d| at - chrono::TimeDelta::days(d))).collect(),
            };
            for since in windows {
                let since = since.unwrap_or(DateTime::<Utc>::MIN_UTC);
                rows = sqlx::query_as(R::FEED_SQLITE)
                    .bind(user.0)
                    .bind(at)
                    .bind(id)
                    .bind(limit)
                    .bind(since)
                    .fetch_all(pool)
                    .await?;
                if rows.len() as i64 >= limit {
                    break;
                }
            }
            rows
        }
    };
    Ok(rows)
}

/// A visit lasts while the feed is opened again within this time.
pub const VISIT_GAP: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

/// How stale the recorded end of a visit may be: the feed opened again sooner writes nothing,
/// so a viewer paging or reloading costs reads only (on SQLite every write waits for the one
/// writer). A visit then ends up to this much earlier than its last opening.
pub const VISIT_PRECISION: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// A user's `feed_visits` row: when their visit was last recorded, and the end of the one
/// before (`None`: no row, a first visit).
pub(crate) type VisitRow = Option<(DateTime<Utc>, Option<DateTime<Utc>>)>;

async fn read_visit(db: &Db, user: UserId) -> Result<VisitRow, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_as("SELECT visited_at, previous_at FROM feed_visits WHERE user_id = $1")
            .bind(user.0)
            .fetch_optional(pool)
            .await?
    }))
}

/// Records that `user` opens the feed at `now`, their `feed_visits` row read as `row`, and
/// returns the end of their previous visit: videos published after it are new to them (`None`
/// on a first visit). Opening the feed again within [`VISIT_GAP`] continues the same visit, so
/// reloading or paging keeps the marks.
async fn record_visit(
    db: &Db,
    user: UserId,
    now: DateTime<Utc>,
    row: VisitRow,
) -> Result<Option<DateTime<Utc>>, DbError> {
    match row {
        None => {
            retry_serializable(|| async {
                with_pool!(db, |pool| {
                    sqlx::query("INSERT INTO feed_visits (user_id, visited_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(user.0)
                        .bind(now)
                        .execute(pool)
                        .await
                        .map(|_| ())?
                });
                Ok(())
            })
            .await?;
            Ok(None)
        }
        Some((visited_at, previous_at)) if now - visited_at < VISIT_PRECISION => Ok(previous_at),
        Some((visited_at, previous_at)) if now - visited_at < VISIT_GAP => {
            retry_serializable(|| async {
                with_pool!(db, |pool| {
                    sqlx::query("UPDATE feed_visits SET visited_at = $2 WHERE user_id = $1")
                        .bind(user.0)
                        .bind(now)
                        .execute(pool)
                        .await
                        .map(|_| ())?
                });
                Ok(())
            })
            .await?;
            Ok(previous_at)
        }
        Some((visited_at, _)) => {
            retry_serializable(|| async {
                with_pool!(db, |pool| {
                    sqlx::query("UPDATE feed_visits SET previous_at = $2, visited_at = $3 WHERE user_id = $1")
                        .bind(user.0)
                        .bind(visited_at)
                        .bind(now)
                        .execute(pool)
                        .await
                        .map(|_| ())?
                });
                Ok(())
            })
            .await?;
            Ok(Some(visited_at))
        }
    }
}

/// The query plan of the feed for `user` on the live database, one line per step (what
/// `EXPLAIN` says), so tests and operators can check that it probes the partial index
/// `videos_channel_published` instead of scanning videos. On PostgreSQL sequential scans are
/// discouraged for the explanation only, so a tiny test table shows the plan a large one gets.
pub async fn feed_plan(db: &Db, user: UserId) -> Result<Vec<String>, DbError> {
    let at = Utc::now();
    let id = Uuid::max();
    match db {
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await?;
            let sql = format!("EXPLAIN {FEED_POSTGRES}");
            let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(user.0)
                .bind(at)
                .bind(id)
                .bind(24i64)
                .bind(at - chrono::TimeDelta::days(7))
                .fetch_all(&mut *tx)
                .await?;
            tx.rollback().await?;
            Ok(lines)
        }
        Db::Sqlite(pool) => {
            let sql = format!("EXPLAIN QUERY PLAN {FEED_SQLITE}");
            let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(user.0)
                .bind(at)
                .bind(id)
                .bind(24i64)
                .bind(at - chrono::TimeDelta::days(7))
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(|r| r.3).collect())
        }
    }
}
