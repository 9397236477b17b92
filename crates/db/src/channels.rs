//! The channels table: where videos are published and what viewers follow.
//!
//! Every account has a personal channel whose id is the account's id and whose handle is its
//! username, inserted in the same transaction as the account ([`insert_personal`], used by
//! [`crate::users::create`] and [`crate::identities::create_user_with_identity`]); a user may
//! create more ([`create`]). `handle_key` (lower case) is unique, so handles and usernames share
//! one namespace. `subscriber_count` is written only by [`crate::subscriptions`], in the
//! transaction that inserts or deletes the subscription.

use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::{Handle, UserId};
use uuid::Uuid;

/// A link a channel shows on its page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = ChannelLink)]
pub struct Link {
    /// 1 to 50 characters.
    #[schema(min_length = 1, max_length = 50)]
    pub title: String,
    /// An absolute http or https URL without credentials, at most 300 characters.
    #[schema(max_length = 300)]
    pub url: String,
}

/// A channel with its owner's username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: Uuid,
    pub owner_id: UserId,
    pub owner_username: String,
    pub handle: String,
    pub display_name: String,
    pub description: String,
    pub links: Vec<Link>,
    pub subscriber_count: u64,
    pub created_at: DateTime<Utc>,
    /// The version in the names of the avatar's stored renditions; `None`: no avatar.
    pub avatar_version: Option<i64>,
    /// The same for the banner.
    pub banner_version: Option<i64>,
    /// Its owner is banned: the channel is not found, listed or searched ([`crate::moderation`]).
    pub suspended: bool,
}

/// Which of a channel's pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    Avatar,
    Banner,
}

impl Channel {
    /// The version of `picture`, if the channel has one.
    pub fn picture_version(&self, picture: Picture) -> Option<i64> {
        match picture {
            Picture::Avatar => self.avatar_version,
            Picture::Banner => self.banner_version,
        }
    }
}

/// What an owner may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub display_name: String,
    pub description: String,
    pub links: Vec<Link>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: Uuid,
    owner_id: Uuid,
    owner_username: String,
    handle: String,
    display_name: String,
    description: String,
    links: String,
    subscriber_count: i64,
    created_at: DateTime<Utc>,
    avatar_version: Option<i64>,
    banner_version: Option<i64>,
    suspended: bool,
}

impl From<Row> for Channel {
    fn from(r: Row) -> Channel {
        Channel {
            id: r.id,
            owner_id: UserId(r.owner_id),
            owner_username: r.owner_username,
            handle: r.handle,
            display_name: r.display_name,
            description: r.description,
            links: serde_json::from_str(&r.links).unwrap_or_default(),
            subscriber_count: u64::try_from(r.subscriber_count).unwrap_or(0),
            created_at: r.created_at,
            avatar_version: r.avatar_version,
            banner_version: r.banner_version,
            suspended: r.suspended,
        }
    }
}

macro_rules! select {
    // More columns after the channel's (`, x AS b`), for a row that flattens [`Row`].
    (columns $extra:literal, $rest:literal) => {
        concat!(
            "SELECT c.id, c.owner_id, u.username AS owner_username, c.handle, c.display_name, c.description, c.links, \
             c.subscriber_count, c.created_at, c.avatar_version, c.banner_version, c.suspended",
            $extra,
            " FROM channels c JOIN users u ON u.id = c.owner_id ",
            $rest
        )
    };
    ($rest:literal) => {
        $crate::channels::select!(columns "", $rest)
    };
}
pub(crate) use select;

/// The statement that gives a new account its personal channel: binds `$1` the account id
/// (also the channel's), `$2` the username, `$3` its lower-cased key, `$4` the display name,
/// `$5` the time. Run in the transaction that inserts the account.
pub(crate) const INSERT_PERSONAL: &str = "INSERT INTO channels (id, owner_id, handle, handle_key, display_name, created_at, updated_at) \
     VALUES ($1, $1, $2, $3, $4, $5, $5)";

/// A handle taken by a channel is a username taken for a new account: the names share one
/// namespace, so the conflict is reported as the username's.
pub(crate) fn as_username_conflict(e: DbError) -> DbError {
    match e {
        DbError::Conflict { constraint } if constraint.contains("handle") => {
            DbError::Conflict { constraint: "username_key".into() }
        }
        other => other,
    }
}

/// Creates another channel for `owner`. A taken handle is [`DbError::Conflict`] on `handle_key`.
pub async fn create(db: &Db, owner: UserId, handle: &Handle, display_name: &str) -> Result<Channel, DbError> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO channels (id, owner_id, handle, handle_key, display_name, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(id)
            .bind(owner.0)
            .bind(handle.as_str())
            .bind(handle.key())
            .bind(display_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            crate::search::Indexer::reindex_channel(&mut *tx, id).await?;
            tx.commit().await?
        });
        Ok(())
    })
    .await?;
    get(db, id).await?.ok_or_else(|| DbError::Unavailable("the new channel vanished".into()))
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Channel>, DbError> {
    let row: Option<Row> =
        with_pool!(db, |pool| sqlx::query_as(select!("WHERE c.id = $1")).bind(id).fetch_optional(pool).await?);
    Ok(row.map(Channel::from))
}

/// The channel whose handle has this key ([`Handle::lookup_key`]).
pub async fn find_by_key(db: &Db, key: &str) -> Result<Option<Channel>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!("WHERE c.handle_key = $1")).bind(key).fetch_optional(pool).await?
    });
    Ok(row.map(Channel::from))
}

/// A channel's page as one viewer sees it ([`page_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageState {
    pub channel: Channel,
    /// Its owner's channels, oldest first, the channel among them (a profile is its owner's
    /// channels, so every channel page lists them).
    pub owner_channels: Vec<Channel>,
    /// The viewer follows the channel (`false` for an anonymous one).
    pub subscribed: bool,
}

/// Owner's channels listed at most on a page (an account makes far fewer).
const MAX_LISTED: i64 = 1000;

#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    channel: Row,
    subscribed: i64,
}

/// The channel whose handle has this key ([`Handle::lookup_key`]), its owner's channels and
/// whether `viewer` follows it, in one statement: a page costs its statements' round trips
/// more than their work (ARCHITECTURE.md, "Statements per page" under `crates/api`). The
/// channel's own row comes first (so a limit never drops it); the subscription is an
/// uncorrelated scalar subquery, computed once. `None` when no channel has the key.
pub async fn page_state(db: &Db, key: &str, viewer: Option<UserId>) -> Result<Option<PageState>, DbError> {
    let rows: Vec<PageRow> = with_pool!(db, |pool| {
        sqlx::query_as(select!(
            columns ", CAST(CASE WHEN EXISTS (SELECT 1 FROM subscriptions s JOIN channels k ON k.id = s.channel_id \
                      WHERE s.user_id = $2 AND k.handle_key = $1) THEN 1 ELSE 0 END AS BIGINT) AS subscribed",
            "WHERE c.owner_id = (SELECT owner_id FROM channels WHERE handle_key = $1) \
             ORDER BY CASE WHEN c.handle_key = $1 THEN 0 ELSE 1 END, c.created_at, c.id LIMIT $3"
        ))
        .bind(key)
        .bind(viewer.map(|u| u.0))
        .bind(MAX_LISTED)
        .fetch_all(pool)
        .await?
    });
    let subscribed = rows.first().is_some_and(|r| r.subscribed != 0);
    let mut owner_channels: Vec<Channel> = rows.into_iter().map(|r| Channel::from(r.channel)).collect();
    let Some(channel) = owner_channels.first().cloned() else { return Ok(None) };
    owner_channels.sort_by_key(|c| (c.created_at, c.id));
    Ok(Some(PageState { channel, owner_channels, subscribed }))
}

/// A user's channels, oldest first (the first is the personal one).
pub async fn list_by_owner(db: &Db, owner: UserId) -> Result<Vec<Channel>, DbError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!("WHERE c.owner_id = $1 ORDER BY c.created_at, c.id LIMIT 1000"))
            .bind(owner.0)
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(Channel::from).collect())
}

/// The channel new videos go to unless another is chosen: the owner's first.
pub async fn first_of_owner(db: &Db, owner: UserId) -> Result<Option<Channel>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!("WHERE c.owner_id = $1 ORDER BY c.created_at, c.id LIMIT 1"))
            .bind(owner.0)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(Channel::from))
}

/// Replaces what the owner may change, and its search index entry. `false` when there is no
/// such channel.
pub async fn update_profile(db: &Db, id: Uuid, p: &Profile) -> Result<bool, DbError> {
    let links = serde_json::to_string(&p.links).unwrap_or_else(|_| "[]".into());
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE channels SET display_name = $2, description = $3, links = $4, updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(&p.display_name)
            .bind(&p.description)
            .bind(&links)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                crate::search::Indexer::reindex_channel(&mut *tx, id).await?;
            }
            tx.commit().await?;
            n
        });
        Ok(n > 0)
    })
    .await
}

/// Sets `picture`'s version to `new` if it is still `old` (compare and set: of two uploads at
/// once, one wins and the other learns that it lost, so each knows which stored files are no
/// longer named). `false` when the version had changed or the channel is gone.
pub async fn swap_picture(
    db: &Db,
    id: Uuid,
    picture: Picture,
    old: Option<i64>,
    new: Option<i64>,
) -> Result<bool, DbError> {
    // `IS NOT DISTINCT FROM`: NULL-safe equality, in both engines.
    let sql = match picture {
        Picture::Avatar => {
            "UPDATE channels SET avatar_version = $3, updated_at = $4 WHERE id = $1 AND avatar_version IS NOT DISTINCT FROM $2"
        }
        Picture::Banner => {
            "UPDATE channels SET banner_version = $3, updated_at = $4 WHERE id = $1 AND banner_version IS NOT DISTINCT FROM $2"
        }
    };
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(sql).bind(id).bind(old).bind(new).bind(Utc::now()).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    })
    .await
}

/// How a channel's videos are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoSort {
    /// Newest published first; pages continue after `(published_at, id)`.
    Newest,
    /// Most viewed first; pages continue after `(views, id)`. Views move while someone pages,
    /// so a video may show twice or not at all across pages: fine for browsing.
    MostViewed,
}

/// Where the next page of a channel's videos starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoAfter {
    Published(DateTime<Utc>, Uuid),
    Views(i64, Uuid),
}

macro_rules! channel_videos_where {
    (newest) => {
        "WHERE v.channel_id = $1 AND v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL \
         AND v.hidden IS NULL AND v.published_at <= $2 AND (v.published_at < $2 OR v.id < $3) \
         ORDER BY v.published_at DESC, v.id DESC LIMIT $4"
    };
    (views) => {
        "WHERE v.channel_id = $1 AND v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL \
         AND v.hidden IS NULL AND v.views <= $2 AND (v.views < $2 OR v.id < $3) \
         ORDER BY v.views DESC, v.id DESC LIMIT $4"
    };
}

/// A channel's listed videos — public and playable only (unlisted and private ones, and those
/// still uploading or failed, never) — through the partial index `videos_channel_published`
/// or `videos_channel_views` (named with `INDEXED BY` on SQLite): an index range scan from the
/// cursor that stops after `limit` rows.
pub async fn videos(
    db: &Db,
    channel: Uuid,
    sort: VideoSort,
    after: Option<VideoAfter>,
    limit: u32,
) -> Result<Vec<crate::videos::Video>, DbError> {
    let rows = listed::<crate::videos::Row>(db, channel, sort, after, limit).await?;
    Ok(rows.into_iter().map(crate::videos::Video::from).collect())
}

/// The same page as [`videos`], as cards (what the channel's page shows).
pub async fn video_cards(
    db: &Db,
    channel: Uuid,
    sort: VideoSort,
    after: Option<VideoAfter>,
    limit: u32,
) -> Result<Vec<crate::videos::Card>, DbError> {
    let rows = listed::<crate::videos::CardRow>(db, channel, sort, after, limit).await?;
    Ok(rows.into_iter().map(crate::videos::Card::from).collect())
}

/// What a channel's videos are read as (whole videos or cards), each with its statements.
trait ListedRow:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin
{
    const NEWEST_PG: &'static str;
    const VIEWS_PG: &'static str;
    const NEWEST_SQLITE: &'static str;
    const VIEWS_SQLITE: &'static str;
}

macro_rules! listed_statements {
    ($($cards:ident)?) => {
        const NEWEST_PG: &'static str = crate::videos::select!($($cards)? channel_videos_where!(newest));
        const VIEWS_PG: &'static str = crate::videos::select!($($cards)? channel_videos_where!(views));
        const NEWEST_SQLITE: &'static str =
            crate::videos::select!($($cards)? indexed "videos_channel_published", channel_videos_where!(newest));
        const VIEWS_SQLITE: &'static str =
            crate::videos::select!($($cards)? indexed "videos_channel_views", channel_videos_where!(views));
    };
}

impl ListedRow for crate::videos::Row {
    listed_statements!();
}

impl ListedRow for crate::videos::CardRow {
    listed_statements!(cards);
}

async fn listed<R: ListedRow>(
    db: &Db,
    channel: Uuid,
    sort: VideoSort,
    after: Option<VideoAfter>,
    limit: u32,
) -> Result<Vec<R>, DbError> {
    let limit = i64::from(limit);
    let far = Utc::now() + chrono::TimeDelta::days(3650);
    let rows: Vec<R> = match sort {
        VideoSort::Newest => {
            let (at, id) = match after {
                Some(VideoAfter::Published(at, id)) => (at, id),
                _ => (far, Uuid::max()),
            };
            match db {
                Db::Postgres(pool) => {
                    sqlx::query_as(R::NEWEST_PG).bind(channel).bind(at).bind(id).bind(limit).fetch_all(pool).await?
                }
                Db::Sqlite(pool) => {
                    sqlx::query_as(R::NEWEST_SQLITE).bind(channel).bind(at).bind(id).bind(limit).fetch_all(pool).await?
                }
            }
        }
        VideoSort::MostViewed => {
            let (views, id) = match after {
                Some(VideoAfter::Views(views, id)) => (views, id),
                _ => (i64::MAX, Uuid::max()),
            };
            match db {
                Db::Postgres(pool) => {
                    sqlx::query_as(R::VIEWS_PG).bind(channel).bind(views).bind(id).bind(limit).fetch_all(pool).await?
                }
                Db::Sqlite(pool) => {
                    sqlx::query_as(R::VIEWS_SQLITE)
                        .bind(channel)
                        .bind(views)
                        .bind(id)
                        .bind(limit)
                        .fetch_all(pool)
                        .await?
                }
            }
        }
    };
    Ok(rows)
}
