//! Full-text search over videos (title, tags, description) and channels (handle, display name,
//! description), and the index that serves it.
//!
//! SQLite: contentless FTS5 tables `videos_fts` and `channels_fts` (unicode61 tokenizer, prefix
//! indexes of 2 and 3 characters, bm25 ranking with a title worth ten descriptions), keyed by the
//! integer `doc` that `search_docs` gives each video or channel id. PostgreSQL (and CockroachDB):
//! a `search` tsvector column in the row (configuration `simple`, title weight A, tags B,
//! description C), GIN-indexed, ranked with `ts_rank`. No triggers: every write that changes
//! indexed text calls [`Indexer`] in its own transaction (SQLite rewrites the FTS row from the
//! stored columns; PostgreSQL recomputes the column), so the index never lags the row.
//!
//! Queries are built only from [`SearchText`] terms — runs of letters, marks and digits — each
//! quoted as a string (`"term"` for FTS5, `'term'` for tsquery), so nothing a viewer types is
//! ever an operator. Video results are only what anyone may see: public, playable, published
//! (the same predicate as the home lists, so the PostgreSQL partial GIN index serves them).

use crate::channels::{Channel, Row as ChannelRow};
use crate::videos::{Row as VideoRow, Video};
use crate::{Db, DbError, retry_serializable};
use chrono::{DateTime, Utc};
use std::future::Future;
use turtlemen_domain::SearchText;
use uuid::Uuid;

/// Keeps the search index in step with a row, inside the caller's transaction.
pub(crate) trait Indexer: Send {
    /// Rewrites the index entry of video `id` from its stored text.
    fn reindex_video(&mut self, id: Uuid) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Removes the index entry of video `id` (call before deleting the row).
    fn unindex_video(&mut self, id: Uuid) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Rewrites the index entry of channel `id` from its stored text.
    fn reindex_channel(&mut self, id: Uuid) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// The tsvector of a video, from the columns `title`, `tags` and `description` in scope.
macro_rules! pg_video_vector {
    () => {
        "setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', tags), 'B') \
         || setweight(to_tsvector('simple', description), 'C')"
    };
}
/// The tsvector of a channel, from the columns `handle`, `display_name` and `description` in scope.
macro_rules! pg_channel_vector {
    () => {
        "setweight(to_tsvector('simple', handle), 'A') || setweight(to_tsvector('simple', display_name), 'A') \
         || setweight(to_tsvector('simple', description), 'C')"
    };
}
/// [`pg_video_vector`] as an expression, for rows written in bulk with their vector (the seed).
pub(crate) const PG_VIDEO_VECTOR_EXPR: &str = pg_video_vector!();
/// [`pg_channel_vector`] as an expression, for rows written in bulk with their vector (the seed).
pub(crate) const PG_CHANNEL_VECTOR_EXPR: &str = pg_channel_vector!();
/// Rewrites a video row's tsvector from its own columns.
const PG_VIDEO_VECTOR: &str = concat!("UPDATE videos SET search = ", pg_video_vector!(), " WHERE id = $1");
/// Rewrites a channel row's tsvector from its own columns.
const PG_CHANNEL_VECTOR: &str = concat!("UPDATE channels SET search = ", pg_channel_vector!(), " WHERE id = $1");

impl Indexer for sqlx::PgConnection {
    async fn reindex_video(&mut self, id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query(PG_VIDEO_VECTOR).bind(id).execute(&mut *self).await.map(|_| ())
    }

    async fn unindex_video(&mut self, _id: Uuid) -> Result<(), sqlx::Error> {
        // The vector is a column of the row: it goes with it.
        Ok(())
    }

    async fn reindex_channel(&mut self, id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query(PG_CHANNEL_VECTOR).bind(id).execute(&mut *self).await.map(|_| ())
    }
}

/// Gives `id` its FTS row number (once) and deletes its current FTS row in `table`.
async fn sqlite_doc(conn: &mut sqlx::SqliteConnection, id: Uuid, delete: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO search_docs (id) VALUES ($1) ON CONFLICT (id) DO NOTHING")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(delete).bind(id).execute(&mut *conn).await?;
    Ok(())
}

impl Indexer for sqlx::SqliteConnection {
    async fn reindex_video(&mut self, id: Uuid) -> Result<(), sqlx::Error> {
        sqlite_doc(self, id, "DELETE FROM videos_fts WHERE rowid = (SELECT doc FROM search_docs WHERE id = $1)")
            .await?;
        sqlx::query(
            "INSERT INTO videos_fts (rowid, title, tags, description) \
             SELECT d.doc, v.title, v.tags, v.description FROM videos v JOIN search_docs d ON d.id = v.id WHERE v.id = $1",
        )
        .bind(id)
        .execute(&mut *self)
        .await
        .map(|_| ())
    }

    async fn unindex_video(&mut self, id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM videos_fts WHERE rowid = (SELECT doc FROM search_docs WHERE id = $1)")
            .bind(id)
            .execute(&mut *self)
            .await?;
        sqlx::query("DELETE FROM search_docs WHERE id = $1").bind(id).execute(&mut *self).await.map(|_| ())
    }

    async fn reindex_channel(&mut self, id: Uuid) -> Result<(), sqlx::Error> {
        sqlite_doc(self, id, "DELETE FROM channels_fts WHERE rowid = (SELECT doc FROM search_docs WHERE id = $1)")
            .await?;
        sqlx::query(
            "INSERT INTO channels_fts (rowid, handle, display_name, description) \
             SELECT d.doc, c.handle, c.display_name, c.description FROM channels c JOIN search_docs d ON d.id = c.id \
             WHERE c.id = $1",
        )
        .bind(id)
        .execute(&mut *self)
        .await
        .map(|_| ())
    }
}

/// An FTS5 query: every term as a quoted string (implicit AND); the last one a prefix when
/// `prefix`; restricted to `columns` when given (`{title}`).
fn fts5_query(text: &SearchText, prefix: bool, columns: Option<&str>) -> String {
    let n = text.terms().len();
    let terms: Vec<String> = text
        .terms()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let star = if prefix && i + 1 == n { "*" } else { "" };
            format!("\"{}\"{star}", t.replace('"', "\"\""))
        })
        .collect();
    match columns {
        Some(cols) => format!("{cols} : ({})", terms.join(" AND ")),
        None => terms.join(" AND "),
    }
}

/// A tsquery for `to_tsquery('simple', …)`: every term a quoted lexeme joined by `&`; the last
/// one a prefix (`:*`) when `prefix`; restricted to weight `weight` when given (`A`).
fn tsquery(text: &SearchText, prefix: bool, weight: Option<char>) -> String {
    let n = text.terms().len();
    let w = weight.map(String::from).unwrap_or_default();
    text.terms()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let quoted = t.replace('\\', "\\\\").replace('\'', "''");
            let star = if prefix && i + 1 == n { "*" } else { "" };
            if star.is_empty() && w.is_empty() { format!("'{quoted}'") } else { format!("'{quoted}':{star}{w}") }
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// Which videos a search keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VideoFilter {
    /// Published at or after.
    pub since: Option<DateTime<Utc>>,
    /// Duration in seconds: at least `min_secs`, less than `max_secs`.
    pub min_secs: Option<f64>,
    pub max_secs: Option<f64>,
    /// Only this channel's videos.
    pub channel: Option<Uuid>,
}

/// The order of video results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchSort {
    /// Best match first (bm25 / ts_rank), then newest.
    Relevance,
    /// Newest published first.
    Newest,
    /// Most viewed first.
    MostViewed,
}

/// How many matches a video search ranks and sorts at most: the newest this many that pass the
/// filters. Ranking every match of a common word (tens of thousands on a large instance) would
/// cost a second of CPU per search; a viewer pages through far fewer, and a narrower query
/// (more words, a filter) reaches older videos.
pub const CANDIDATES: u32 = 1000;

macro_rules! video_search {
    // SQLite: the matches walked newest-indexed first (descending `doc`), each joined to its row
    // by primary key in that order (CROSS JOIN pins it: without statistics the planner would
    // start from the videos), bm25 computed for the candidates only, then sorted.
    (sqlite, $order:literal) => {
        concat!(
            "SELECT * FROM (",
            $crate::videos::video_columns!(),
            ", f.rank AS search_rank FROM videos_fts f CROSS JOIN search_docs d ON d.doc = f.rowid \
             CROSS JOIN videos v ON v.id = d.id CROSS JOIN users u ON u.id = v.owner_id \
             CROSS JOIN channels c ON c.id = v.channel_id WHERE f.videos_fts MATCH $1 AND ",
            video_search!(filters),
            " ORDER BY f.rowid DESC LIMIT 1000) ORDER BY ",
            $order,
            " LIMIT $6 OFFSET $7"
        )
    };
    // PostgreSQL: the newest matches, then ranked. The planner chooses by the words' frequency
    // (the column's statistics): a rare word from the partial GIN index, every match then
    // sorted; a common one by walking `videos_published` newest first, stopping at the
    // candidates' count (a few thousand rows read instead of every match). That index's
    // always-true `trending_score >= 0` term is repeated here so the planner may use it.
    (pg, $order:literal) => {
        concat!(
            "SELECT * FROM (",
            $crate::videos::video_columns!(),
            ", ts_rank(v.search, to_tsquery('simple', $1)) AS search_rank \
             FROM videos v JOIN users u ON u.id = v.owner_id JOIN channels c ON c.id = v.channel_id \
             WHERE v.search @@ to_tsquery('simple', $1) AND v.trending_score >= 0 AND ",
            video_search!(filters),
            " ORDER BY v.published_at DESC, v.id DESC LIMIT 1000) t ORDER BY ",
            $order,
            " LIMIT $6 OFFSET $7"
        )
    };
    (filters) => {
        "v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL AND v.hidden IS NULL \
         AND v.published_at >= $2 AND COALESCE(v.duration_secs, 0) >= $3 AND COALESCE(v.duration_secs, 0) < $4 \
         AND ($5 IS NULL OR v.channel_id = $5)"
    };
}

/// Videos matching every term of `text` that pass `filter`, in `sort` order, from `offset`: of
/// the [`CANDIDATES`] newest such videos.
pub async fn videos(
    db: &Db,
    text: &SearchText,
    filter: &VideoFilter,
    sort: SearchSort,
    offset: u32,
    limit: u32,
) -> Result<Vec<Video>, DbError> {
    const SQLITE_RELEVANCE: &str = video_search!(sqlite, "search_rank, published_at DESC, id DESC");
    const SQLITE_NEWEST: &str = video_search!(sqlite, "published_at DESC, id DESC");
    const SQLITE_VIEWS: &str = video_search!(sqlite, "views DESC, published_at DESC, id DESC");
    const PG_RELEVANCE: &str = video_search!(pg, "search_rank DESC, published_at DESC, id DESC");
    const PG_NEWEST: &str = video_search!(pg, "published_at DESC, id DESC");
    const PG_VIEWS: &str = video_search!(pg, "views DESC, published_at DESC, id DESC");
    let since = filter.since.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let min = filter.min_secs.unwrap_or(-1.0);
    let max = filter.max_secs.unwrap_or(f64::MAX);
    let rows: Vec<VideoRow> = match db {
        Db::Sqlite(pool) => {
            let sql = match sort {
                SearchSort::Relevance => SQLITE_RELEVANCE,
                SearchSort::Newest => SQLITE_NEWEST,
                SearchSort::MostViewed => SQLITE_VIEWS,
            };
            sqlx::query_as(sql)
                .bind(fts5_query(text, false, None))
                .bind(since)
                .bind(min)
                .bind(max)
                .bind(filter.channel)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(pool)
                .await?
        }
        Db::Postgres(pool) => {
            let sql = match sort {
                SearchSort::Relevance => PG_RELEVANCE,
                SearchSort::Newest => PG_NEWEST,
                SearchSort::MostViewed => PG_VIEWS,
            };
            sqlx::query_as(sql)
                .bind(tsquery(text, false, None))
                .bind(since)
                .bind(min)
                .bind(max)
                .bind(filter.channel)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows.into_iter().map(Video::from).collect())
}

/// Channels matching every term of `text` in handle, name or description, best match first
/// (then most followed).
pub async fn channels(db: &Db, text: &SearchText, limit: u32) -> Result<Vec<Channel>, DbError> {
    use crate::channels::select as select_channels;
    const SQLITE: &str = select_channels!(
        "JOIN search_docs d ON d.id = c.id JOIN channels_fts ON channels_fts.rowid = d.doc \
         WHERE channels_fts MATCH $1 AND c.suspended = FALSE ORDER BY channels_fts.rank, c.subscriber_count DESC, c.id LIMIT $2"
    );
    const PG: &str = select_channels!(
        "WHERE c.search @@ to_tsquery('simple', $1) AND c.suspended = FALSE \
         ORDER BY ts_rank(c.search, to_tsquery('simple', $1)) DESC, c.subscriber_count DESC, c.id LIMIT $2"
    );
    let rows: Vec<ChannelRow> = match db {
        Db::Sqlite(pool) => {
            sqlx::query_as(SQLITE).bind(fts5_query(text, false, None)).bind(i64::from(limit)).fetch_all(pool).await?
        }
        Db::Postgres(pool) => {
            sqlx::query_as(PG).bind(tsquery(text, false, None)).bind(i64::from(limit)).fetch_all(pool).await?
        }
    };
    Ok(rows.into_iter().map(Channel::from).collect())
}

/// Something to offer while a viewer types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suggestion {
    Video { id: Uuid, title: String },
    Channel { handle: String, display_name: String },
}

/// Video titles and channel names (or handles) holding every term, the last as a prefix:
/// at most `videos` videos (public, playable) and `channels` channels, best match first.
pub async fn suggestions(db: &Db, text: &SearchText, videos: u32, channels: u32) -> Result<Vec<Suggestion>, DbError> {
    const SQLITE_VIDEOS: &str = "SELECT v.id, v.title FROM videos_fts JOIN search_docs d ON d.doc = videos_fts.rowid \
         JOIN videos v ON v.id = d.id WHERE videos_fts MATCH $1 \
         AND v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL AND v.hidden IS NULL \
         ORDER BY videos_fts.rank, v.views DESC LIMIT $2";
    const PG_VIDEOS: &str = "SELECT v.id, v.title FROM videos v WHERE v.search @@ to_tsquery('simple', $1) \
         AND v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL AND v.hidden IS NULL \
         ORDER BY ts_rank(v.search, to_tsquery('simple', $1)) DESC, v.views DESC LIMIT $2";
    const SQLITE_CHANNELS: &str = "SELECT c.handle, c.display_name FROM channels_fts \
         JOIN search_docs d ON d.doc = channels_fts.rowid JOIN channels c ON c.id = d.id WHERE channels_fts MATCH $1 AND c.suspended = FALSE \
         ORDER BY channels_fts.rank, c.subscriber_count DESC LIMIT $2";
    const PG_CHANNELS: &str = "SELECT c.handle, c.display_name FROM channels c \
         WHERE c.search @@ to_tsquery('simple', $1) AND c.suspended = FALSE \
         ORDER BY ts_rank(c.search, to_tsquery('simple', $1)) DESC, c.subscriber_count DESC LIMIT $2";
    type Found = (Vec<(Uuid, String)>, Vec<(String, String)>);
    let (found_videos, found_channels): Found = match db {
        Db::Sqlite(pool) => (
            sqlx::query_as(SQLITE_VIDEOS)
                .bind(fts5_query(text, true, Some("{title}")))
                .bind(i64::from(videos))
                .fetch_all(pool)
                .await?,
            sqlx::query_as(SQLITE_CHANNELS)
                .bind(fts5_query(text, true, Some("{handle display_name}")))
                .bind(i64::from(channels))
                .fetch_all(pool)
                .await?,
        ),
        Db::Postgres(pool) => (
            sqlx::query_as(PG_VIDEOS)
                .bind(tsquery(text, true, Some('A')))
                .bind(i64::from(videos))
                .fetch_all(pool)
                .await?,
            sqlx::query_as(PG_CHANNELS)
                .bind(tsquery(text, true, Some('A')))
                .bind(i64::from(channels))
                .fetch_all(pool)
                .await?,
        ),
    };
    Ok(found_channels
        .into_iter()
        .map(|(handle, display_name)| Suggestion::Channel { handle, display_name })
        .chain(found_videos.into_iter().map(|(id, title)| Suggestion::Video { id, title }))
        .collect())
}

/// The query plan of a relevance search (`EXPLAIN QUERY PLAN` / `EXPLAIN`), one line per row:
/// for checks that it starts from the index.
pub async fn plan(db: &Db, text: &SearchText) -> Result<Vec<String>, DbError> {
    const SQLITE: &str = video_search!(sqlite, "search_rank, published_at DESC, id DESC");
    const PG: &str = video_search!(pg, "search_rank DESC, published_at DESC, id DESC");
    let far_past = DateTime::<Utc>::UNIX_EPOCH;
    let lines: Vec<String> = match db {
        Db::Sqlite(pool) => {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {SQLITE}")))
                    .bind(fts5_query(text, false, None))
                    .bind(far_past)
                    .bind(-1.0)
                    .bind(f64::MAX)
                    .bind(None::<Uuid>)
                    .bind(20i64)
                    .bind(0i64)
                    .fetch_all(pool)
                    .await?;
            rows.into_iter().map(|r| r.3).collect()
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {PG}")))
                .bind(tsquery(text, false, None))
                .bind(far_past)
                .bind(-1.0)
                .bind(f64::MAX)
                .bind(None::<Uuid>)
                .bind(20i64)
                .bind(0i64)
                .fetch_all(pool)
                .await?
        }
    };
    Ok(lines)
}

/// Indexes `videos` and `channels` written without the [`Indexer`] (the benchmark seed's bulk
/// inserts). Only SQLite's full-text tables need it, filled row by row in one transaction: on
/// PostgreSQL the seed writes each row with its vector ([`PG_VIDEO_VECTOR_EXPR`],
/// [`PG_CHANNEL_VECTOR_EXPR`]), so every row is written once, not inserted then rewritten.
pub(crate) async fn index_many(db: &Db, videos: &[Uuid], channels: &[Uuid]) -> Result<(), DbError> {
    let Db::Sqlite(pool) = db else { return Ok(()) };
    retry_serializable(|| async {
        let mut tx = pool.begin().await?;
        for &id in videos {
            Indexer::reindex_video(&mut *tx, id).await?;
        }
        for &id in channels {
            Indexer::reindex_channel(&mut *tx, id).await?;
        }
        tx.commit().await?;
        Ok(())
    })
    .await
}

/// After a bulk load: SQLite merges each full-text index into one segment (rows written one by
/// one leave hundreds of small ones, and every query walks them all; a live instance merges as
/// it writes); PostgreSQL gathers the planner's statistics of the loaded tables (autovacuum would,
/// later).
pub async fn settle(db: &Db) -> Result<(), DbError> {
    match db {
        Db::Sqlite(pool) => {
            sqlx::query("INSERT INTO videos_fts (videos_fts) VALUES ('optimize')").execute(pool).await?;
            sqlx::query("INSERT INTO channels_fts (channels_fts) VALUES ('optimize')").execute(pool).await?;
        }
        Db::Postgres(pool) => {
            for table in ["videos", "channels", "subscriptions", "users"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}"))).execute(pool).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_operators_end_up_inside_quotes() {
        let t = SearchText::parse("turtle\" OR * NEAR(shell) sh").unwrap();
        assert_eq!(fts5_query(&t, false, None), "\"turtle\" AND \"or\" AND \"near\" AND \"shell\" AND \"sh\"");
        assert_eq!(
            fts5_query(&t, true, Some("{title}")),
            "{title} : (\"turtle\" AND \"or\" AND \"near\" AND \"shell\" AND \"sh\"*)"
        );
        let t = SearchText::parse("it's a:b & !c").unwrap();
        assert_eq!(tsquery(&t, false, None), "'it' & 's' & 'a' & 'b' & 'c'");
        assert_eq!(tsquery(&t, true, Some('A')), "'it':A & 's':A & 'a':A & 'b':A & 'c':*A");
    }
}
