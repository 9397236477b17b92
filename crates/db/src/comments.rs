//! Comments on videos: threads, their counters and likes, each video's comment policy and
//! pinned comment, and the blocked words that hold a comment for approval.
//!
//! A thread is a top-level comment (`root_id` NULL) and every reply under it, however deep the
//! conversation: a reply stores the comment it answers (`parent_id`) and the thread's root
//! (`root_id`), so the replies of a thread are one range of the index `comments_thread`. Ids are
//! UUID v7, made here: they sort by creation time, so "newest" is `id DESC` and every list pages
//! by `(key, id)` with one index range scan from the cursor (`comments_video_newest`,
//! `comments_video_top`; pinned with `INDEXED BY` on SQLite, which has no statistics to choose
//! by).
//!
//! Counters (`like_count`, `reply_count`, `videos.comment_count`) change in the same short
//! transaction as the row, and only when a conditional write really changed a row (an `INSERT …
//! ON CONFLICT DO NOTHING`, a `DELETE`, an `UPDATE … WHERE status = …` whose row count is one),
//! as [`crate::subscriptions`] does, so repeated and concurrent toggles keep each equal to the
//! rows it counts. Every write is retried on 40001 ([`retry_serializable`]).
//!
//! A banned author's comments do not count (they are hidden): a ban takes them out of the
//! counters in its transaction and an unban puts them back ([`crate::moderation`]), and every
//! write here that moves a counter reads whether its author is banned first — with a share lock
//! on the account's row on PostgreSQL (a ban updates that row first, so the two wait for each
//! other; SQLite has one writer at a time) — and moves it only for an author who is not.
//!
//! This module never renders or checks text: the caller stores the markdown source and its
//! sanitised HTML, made once on write.

use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// Where a comment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = CommentStatus)]
pub enum Status {
    /// Shown to everyone who may see the video.
    Visible,
    /// Waiting for the video owner's approval: shown only to its author and the owner.
    Held,
    /// Deleted by its author; kept as "[deleted]" because replies hang on it.
    Deleted,
    /// Removed by the video's owner or a moderator; shown as "[removed]".
    Removed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Visible => "visible",
            Status::Held => "held",
            Status::Deleted => "deleted",
            Status::Removed => "removed",
        }
    }

    fn from_stored(s: &str) -> Status {
        match s {
            "visible" => Status::Visible,
            "held" => Status::Held,
            "deleted" => Status::Deleted,
            _ => Status::Removed,
        }
    }
}

/// Who may comment on a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = CommentPolicy)]
pub enum Policy {
    /// Anyone signed in who may see the video (the default).
    Open,
    /// Nobody; existing comments stay.
    Closed,
    /// Every new comment waits for the owner's approval.
    Held,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Open => "open",
            Policy::Closed => "closed",
            Policy::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "open" => Some(Policy::Open),
            "closed" => Some(Policy::Closed),
            "held" => Some(Policy::Held),
            _ => None,
        }
    }
}

/// One comment with its author's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: Uuid,
    pub video_id: Uuid,
    pub author_id: UserId,
    pub author_username: String,
    pub author_display_name: String,
    /// The comment it answers (`None`: top-level).
    pub parent_id: Option<Uuid>,
    /// The thread's top-level comment (`None`: this is one).
    pub root_id: Option<Uuid>,
    /// The username of the parent's author when the parent is itself a reply (the "@name"
    /// shown before a reply to a reply).
    pub reply_to_username: Option<String>,
    /// The markdown source (empty once deleted or removed).
    pub body: String,
    /// The sanitised HTML made from it on write.
    pub html: String,
    pub status: Status,
    pub like_count: u64,
    /// Replies in the thread that are not held (top-level comments only).
    pub reply_count: u64,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    video_id: Uuid,
    author_id: Uuid,
    author_username: String,
    author_display_name: String,
    parent_id: Option<Uuid>,
    root_id: Option<Uuid>,
    reply_to_username: Option<String>,
    body: String,
    html: String,
    status: String,
    like_count: i64,
    reply_count: i64,
    created_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
}

impl From<Row> for Comment {
    fn from(r: Row) -> Comment {
        Comment {
            id: r.id,
            video_id: r.video_id,
            author_id: UserId(r.author_id),
            author_username: r.author_username,
            author_display_name: r.author_display_name,
            parent_id: r.parent_id,
            root_id: r.root_id,
            reply_to_username: r.reply_to_username,
            body: r.body,
            html: r.html,
            status: Status::from_stored(&r.status),
            like_count: u64::try_from(r.like_count).unwrap_or(0),
            reply_count: u64::try_from(r.reply_count).unwrap_or(0),
            created_at: r.created_at,
            edited_at: r.edited_at,
        }
    }
}

/// `SELECT … FROM comments c JOIN …` then the rest; `@names` and `@joins` are its parts, for
/// statements that add columns or name an index (`page_statement!`).
macro_rules! select {
    (@names) => {
        "SELECT c.id, c.video_id, c.author_id, u.username AS author_username, u.display_name AS author_display_name, \
         c.parent_id, c.root_id, pu.username AS reply_to_username, c.body, c.html, c.status, c.like_count, \
         c.reply_count, c.created_at, c.edited_at"
    };
    (@joins) => {
        " JOIN users u ON u.id = c.author_id AND u.banned_at IS NULL \
         LEFT JOIN comments p ON p.id = c.parent_id AND c.parent_id <> c.root_id \
         LEFT JOIN users pu ON pu.id = p.author_id "
    };
    ($($rest:tt)+) => {
        concat!(select!(@names), " FROM comments c ", select!(@joins), $($rest)+)
    };
}

/// A video's comment settings and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoComments {
    pub policy: Policy,
    /// Visible comments (top-level and replies).
    pub count: u64,
    /// The comment its owner pinned, if any (it may since have been deleted: check its status).
    pub pinned: Option<Uuid>,
}

/// `video`'s comment settings; `None` when there is no such video.
pub async fn video_settings(db: &Db, video: Uuid) -> Result<Option<VideoComments>, DbError> {
    let row: Option<(String, i64, Option<Uuid>)> = with_pool!(db, |pool| {
        sqlx::query_as("SELECT comment_policy, comment_count, pinned_comment_id FROM videos WHERE id = $1")
            .bind(video)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|(policy, count, pinned)| VideoComments::of_columns(&policy, count, pinned)))
}

impl VideoComments {
    /// The settings from the video row's `comment_policy`, `comment_count` and
    /// `pinned_comment_id`.
    pub(crate) fn of_columns(policy: &str, count: i64, pinned: Option<Uuid>) -> VideoComments {
        VideoComments {
            policy: Policy::parse(policy).unwrap_or(Policy::Open),
            count: u64::try_from(count).unwrap_or(0),
            pinned,
        }
    }
}

/// Sets who may comment on `video`.
pub async fn set_policy(db: &Db, video: Uuid, policy: Policy) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE videos SET comment_policy = $2 WHERE id = $1")
                .bind(video)
                .bind(policy.as_str())
                .execute(pool)
                .await
                .map(|_| ())?
        });
        Ok(())
    })
    .await
}

/// Pins `comment` on `video` (replacing the pinned one), or unpins with `None`.
pub async fn set_pinned(db: &Db, video: Uuid, comment: Option<Uuid>) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE videos SET pinned_comment_id = $2 WHERE id = $1")
                .bind(video)
                .bind(comment)
                .execute(pool)
                .await
                .map(|_| ())?
        });
        Ok(())
    })
    .await
}

/// Whether the author `$1` is not banned (so their comments count), read under a share lock on
/// PostgreSQL: a ban, which updates the row first, then waits for this transaction, or this
/// one for the ban. Read before any counter moves.
fn author_counts_sql(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => "SELECT banned_at IS NULL FROM users WHERE id = $1 FOR SHARE",
        Db::Sqlite(_) => "SELECT banned_at IS NULL FROM users WHERE id = $1",
    }
}

/// A comment about to be written.
#[derive(Debug, Clone)]
pub struct NewComment<'a> {
    pub id: Uuid,
    pub video_id: Uuid,
    pub author: UserId,
    pub parent_id: Option<Uuid>,
    pub root_id: Option<Uuid>,
    pub body: &'a str,
    pub html: &'a str,
    /// Held for the owner's approval rather than shown.
    pub held: bool,
}

/// What [`create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Done,
    /// The comment it answers (or its video) was erased meanwhile: nothing was written.
    ParentGone,
}

/// Inserts a comment; a visible one counts at once (the video's count, and its thread's replies)
/// unless its author is banned. The insert comes first (on SQLite it takes the write lock before
/// anything is read). A parent erased since the caller checked it fails the insert's foreign key:
/// [`Created::ParentGone`] (on PostgreSQL [`take_down`] locks the row first, so an erasure and a
/// reply are ordered: the reply waits and finds it gone, or the erasure sees the reply and marks
/// the parent instead).
pub async fn create(db: &Db, new: &NewComment<'_>) -> Result<Created, DbError> {
    let status = if new.held { Status::Held } else { Status::Visible };
    let author_counts = author_counts_sql(db);
    let outcome = retry_serializable(|| async {
        let now = Utc::now();
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO comments (id, video_id, author_id, parent_id, root_id, body, html, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(new.id)
            .bind(new.video_id)
            .bind(new.author.0)
            .bind(new.parent_id)
            .bind(new.root_id)
            .bind(new.body)
            .bind(new.html)
            .bind(status.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let counts: bool =
                sqlx::query_scalar(author_counts).bind(new.author.0).fetch_optional(&mut *tx).await?.unwrap_or(false);
            if !new.held && counts {
                // The thread's row before the video's, the order `take_down` locks them in, so
                // a reply and its parent's erasure never wait on each other in a cycle.
                if let Some(root) = new.root_id {
                    sqlx::query("UPDATE comments SET reply_count = reply_count + 1 WHERE id = $1")
                        .bind(root)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("UPDATE videos SET comment_count = comment_count + 1 WHERE id = $1")
                    .bind(new.video_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?
        });
        Ok(())
    })
    .await;
    match outcome {
        Ok(()) => Ok(Created::Done),
        Err(DbError::Query(sqlx::Error::Database(e))) if e.is_foreign_key_violation() => Ok(Created::ParentGone),
        Err(e) => Err(e),
    }
}

/// One comment, whatever its status.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<Comment>, DbError> {
    let row: Option<Row> =
        with_pool!(db, |pool| sqlx::query_as(select!("WHERE c.id = $1")).bind(id).fetch_optional(pool).await?);
    Ok(row.map(Comment::from))
}

/// The order of a video's top-level comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest first.
    Newest,
    /// Most liked first, then newest.
    Top,
}

/// The position after which a page starts: the last row's sort key (its like count for
/// [`Sort::Top`]; unused for [`Sort::Newest`]) and id.
pub type After = (i64, Uuid);

macro_rules! top_level {
    (newest) => {
        "WHERE c.video_id = $1 AND c.root_id IS NULL AND c.status <> 'held' AND c.id < $2 \
         ORDER BY c.id DESC LIMIT $3"
    };
    (top) => {
        "WHERE c.video_id = $1 AND c.root_id IS NULL AND c.status <> 'held' \
         AND (c.like_count, c.id) < ($2, $3) ORDER BY c.like_count DESC, c.id DESC LIMIT $4"
    };
}

/// A page's rows ([`page`]): the comment, which part of the page it is, and whether the reader
/// likes it.
#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    comment: Row,
    part: i64,
    liked: i64,
}

/// Whether user `$u` (NULL: nobody) likes the row's comment, as a column.
macro_rules! liked {
    ($u:literal) => {
        concat!(
            ", CAST(CASE WHEN EXISTS (SELECT 1 FROM comment_likes l WHERE l.user_id = ",
            $u,
            " AND l.comment_id = c.id) THEN 1 ELSE 0 END AS BIGINT) AS liked"
        )
    };
}

/// [`page`]'s statement after `$prefix`: the page's rows (`part` 0: `top_level!` over `FROM comments c`
/// [`$from`]), the held comments (`part` 1) when `$h` is 1 — all of them when `$a` is NULL, else
/// author `$a`'s, oldest first, at most `$hl` — and the pinned comment `$p` (`part` 2) when it is
/// a visible top-level comment of the video. Each row says whether reader `$u` likes it.
macro_rules! page_statement {
    ($prefix:literal, $from:literal, $order:tt, $u:literal, $h:literal, $a:literal, $hl:literal, $p:literal) => {
        concat!(
            $prefix,
            "SELECT * FROM (",
            select!(@names),
            ", CAST(0 AS BIGINT) AS part",
            liked!($u),
            " FROM comments c ",
            $from,
            select!(@joins),
            top_level!($order),
            ") AS page_rows UNION ALL SELECT * FROM (",
            select!(@names),
            ", CAST(1 AS BIGINT) AS part",
            liked!($u),
            " FROM comments c ",
            select!(@joins),
            "WHERE c.video_id = $1 AND c.status = 'held' AND ",
            $h,
            " = 1 AND (",
            $a,
            " IS NULL OR c.author_id = ",
            $a,
            ") ORDER BY c.id LIMIT ",
            $hl,
            ") AS held_rows UNION ALL ",
            select!(@names),
            ", CAST(2 AS BIGINT) AS part",
            liked!($u),
            " FROM comments c ",
            select!(@joins),
            "WHERE c.id = ",
            $p,
            " AND c.video_id = $1 AND c.status = 'visible' AND c.root_id IS NULL"
        )
    };
}

/// Who reads a page of comments ([`page`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    pub user: UserId,
    /// On the first page, the held comments they see: every one (`None`, for the video's
    /// moderators) or only those of this author (themselves).
    pub held_of: Option<UserId>,
}

/// A page of a video's comments ([`page`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Top-level comments that are not held, in the page's order.
    pub comments: Vec<Comment>,
    /// First page, for a reader: the held comments they may see, oldest first.
    pub held: Vec<Comment>,
    /// First page: the pinned comment, when it is visible.
    pub pinned: Option<Comment>,
    /// The reader's likes among all of these (empty without a reader).
    pub liked: Vec<Uuid>,
}

/// [`page`]'s statement for an engine and order, after `$prefix` (`EXPLAIN …` for [`plan`]).
macro_rules! page_sql {
    ($db:expr, $sort:expr, $prefix:literal) => {
        match ($db, $sort) {
            (Db::Sqlite(_), Sort::Newest) => {
                page_statement!($prefix, "INDEXED BY comments_video_newest", newest, "$4", "$5", "$6", "$7", "$8")
            }
            (Db::Postgres(_), Sort::Newest) => page_statement!($prefix, "", newest, "$4", "$5", "$6", "$7", "$8"),
            (Db::Sqlite(_), Sort::Top) => {
                page_statement!($prefix, "INDEXED BY comments_video_top", top, "$5", "$6", "$7", "$8", "$9")
            }
            (Db::Postgres(_), Sort::Top) => page_statement!($prefix, "", top, "$5", "$6", "$7", "$8", "$9"),
        }
    };
}

/// What `page_sql!`'s statements bind, in order.
struct PageArgs {
    video: Uuid,
    /// The cursor's like count (for [`Sort::Top`] only), then its id.
    likes: Option<i64>,
    id: Uuid,
    limit: i64,
    user: Option<Uuid>,
    held: i64,
    held_of: Option<Uuid>,
    held_limit: i64,
    pinned: Option<Uuid>,
}

impl PageArgs {
    fn of(q: &PageQuery) -> PageArgs {
        let first = q.after.is_none();
        let (likes, id) = match q.sort {
            Sort::Newest => (None, q.after.map_or(Uuid::max(), |a| a.1)),
            Sort::Top => {
                let (likes, id) = q.after.unwrap_or((i64::MAX, Uuid::max()));
                (Some(likes), id)
            }
        };
        PageArgs {
            video: q.video,
            likes,
            id,
            limit: i64::from(q.limit),
            user: q.reader.map(|r| r.user.0),
            held: i64::from(first && q.reader.is_some()),
            held_of: q.reader.and_then(|r| r.held_of).map(|a| a.0),
            held_limit: i64::from(q.held_limit),
            pinned: q.pinned.filter(|_| first),
        }
    }
}

/// Binds [`PageArgs`] to a query of `page_sql!` (either engine's, either kind of query).
macro_rules! bind_page {
    ($query:expr, $a:expr) => {{
        let a = &$a;
        let q = $query.bind(a.video);
        let q = match a.likes {
            Some(likes) => q.bind(likes),
            None => q,
        };
        q.bind(a.id).bind(a.limit).bind(a.user).bind(a.held).bind(a.held_of).bind(a.held_limit).bind(a.pinned)
    }};
}

/// What [`page`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    pub video: Uuid,
    pub sort: Sort,
    /// The cursor's position; `None`: the first page.
    pub after: Option<After>,
    pub limit: u32,
    pub reader: Option<Reader>,
    /// The video's pinned comment (shown on the first page).
    pub pinned: Option<Uuid>,
    /// Held comments shown at most (first page).
    pub held_limit: u32,
}

/// A page of the video's top-level comments that are not held, in `sort` order, after `after`
/// when paging — one range scan of `comments_video_newest` or `comments_video_top` from the
/// cursor, however deep the page — in one statement with what goes with it: on the first page
/// the pinned comment and, for a reader, the held comments they may see, and the reader's
/// likes. A page costs its statements' round trips more than their work (ARCHITECTURE.md,
/// "Statements per page" under `crates/api`).
pub async fn page(db: &Db, q: &PageQuery) -> Result<Page, DbError> {
    let (args, sort) = (PageArgs::of(q), q.sort);
    let sql = page_sql!(db, sort, "");
    let rows: Vec<PageRow> = with_pool!(db, |pool| bind_page!(sqlx::query_as(sql), args).fetch_all(pool).await?);
    let mut out = Page::default();
    for r in rows {
        let c = Comment::from(r.comment);
        if r.liked != 0 {
            out.liked.push(c.id);
        }
        match r.part {
            0 => out.comments.push(c),
            1 => out.held.push(c),
            _ => out.pinned = Some(c),
        }
    }
    // Each part is in its order as read; sorted again so the result never rests on how an
    // engine runs a UNION ALL.
    match sort {
        Sort::Newest => out.comments.sort_by_key(|c| std::cmp::Reverse(c.id)),
        Sort::Top => out.comments.sort_by_key(|c| std::cmp::Reverse((c.like_count, c.id))),
    }
    out.held.sort_by_key(|c| c.id);
    out.liked.sort();
    out.liked.dedup();
    Ok(out)
}

/// The query plan of [`page`] for `q` (a page after a cursor) with the first page's parts —
/// the held comments and the pinned one — asked for too (for tests and benchmarks: each part
/// must be an index lookup or range scan, with no sort, whatever the depth). On PostgreSQL
/// sequential scans are priced out, so a small table shows the plan a large one gets.
pub async fn plan(db: &Db, q: &PageQuery) -> Result<String, DbError> {
    let (mut args, sort) = (PageArgs::of(q), q.sort);
    args.held = 1;
    args.pinned = q.pinned;
    let rows: Vec<String> = match db {
        Db::Sqlite(pool) => {
            let sql = page_sql!(db, sort, "EXPLAIN QUERY PLAN ");
            let rows: Vec<(i64, i64, i64, String)> = bind_page!(sqlx::query_as(sql), args).fetch_all(pool).await?;
            rows.into_iter().map(|r| r.3).collect()
        }
        Db::Postgres(pool) => {
            // A small table is read whole more cheaply than through an index; price that out, as
            // a video with many comments does, to see the plan that matters.
            let sql = page_sql!(db, sort, "EXPLAIN ");
            let mut tx = pool.begin().await?;
            sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await?;
            let rows = bind_page!(sqlx::query_scalar(sql), args).fetch_all(&mut *tx).await?;
            tx.rollback().await?;
            rows
        }
    };
    Ok(rows.join("\n"))
}

/// A thread's replies that are not held, oldest first, after reply `after` when paging (one
/// range of `comments_thread`).
pub async fn replies(db: &Db, root: Uuid, after: Option<Uuid>, limit: u32) -> Result<Vec<Comment>, DbError> {
    let after = after.unwrap_or(Uuid::nil());
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!("WHERE c.root_id = $1 AND c.status <> 'held' AND c.id > $2 ORDER BY c.id LIMIT $3"))
            .bind(root)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(Comment::from).collect())
}

/// The held comments on every video of `owner`, oldest first, after `after` (the owner's queue).
pub async fn held_for_owner(db: &Db, owner: UserId, after: Option<Uuid>, limit: u32) -> Result<Vec<Comment>, DbError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!(
            "WHERE c.status = 'held' AND c.video_id IN (SELECT id FROM videos WHERE owner_id = $1) AND c.id > $2 \
             ORDER BY c.id LIMIT $3"
        ))
        .bind(owner.0)
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Comment::from).collect())
}

/// Replaces the text of a visible or held comment and marks it edited. `false` when there is
/// no such comment in either state.
pub async fn edit(db: &Db, id: Uuid, body: &str, html: &str) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE comments SET body = $2, html = $3, edited_at = $4 WHERE id = $1 AND status IN ('visible', 'held')",
            )
            .bind(id)
            .bind(body)
            .bind(html)
            .bind(Utc::now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    })
    .await
}

/// What became of a comment its author deleted, or a moderator removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// Nothing answered it: the row is gone.
    Erased,
    /// Replies hang on it: it stays, marked, without its text.
    Marked,
    /// It was already deleted or removed (or does not exist): nothing changed.
    Unchanged,
}

/// Deletes (`mark` = `deleted`, by its author) or removes (`mark` = `removed`, by the video's
/// owner or a moderator) a comment. A held comment or one nothing answers is erased; one with
/// replies keeps its place without its text. The counters follow only the row that changed (and
/// only for an author who is not banned).
pub async fn take_down(db: &Db, id: Uuid, mark: Status) -> Result<Gone, DbError> {
    let author_counts = author_counts_sql(db);
    // The row is locked first. On PostgreSQL a reply being written holds a key-share lock on it
    // (its foreign key) until it commits, so the two are ordered (see [`create`]); on SQLite the
    // first statement writes (a no-op update), so the transaction holds the write lock before it
    // reads anything and no other write can slip in between its reads and its writes.
    let author_of = match db {
        Db::Postgres(_) => "SELECT author_id FROM comments WHERE id = $1 FOR UPDATE",
        Db::Sqlite(_) => "UPDATE comments SET status = status WHERE id = $1 RETURNING author_id",
    };
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let author: Option<Uuid> = sqlx::query_scalar(author_of).bind(id).fetch_optional(&mut *tx).await?;
            let Some(author) = author else { return Ok(Gone::Unchanged) };
            let counts: bool =
                sqlx::query_scalar(author_counts).bind(author).fetch_optional(&mut *tx).await?.unwrap_or(false);
            let row: Option<(String, Uuid, Option<Uuid>)> =
                sqlx::query_as("SELECT status, video_id, root_id FROM comments WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((status, video, root)) = row else { return Ok(Gone::Unchanged) };
            let was = Status::from_stored(&status);
            if was == mark || (mark == Status::Deleted && was == Status::Removed) {
                return Ok(Gone::Unchanged);
            }
            let answered: Option<Uuid> =
                sqlx::query_scalar("SELECT id FROM comments WHERE parent_id = $1 OR root_id = $1 LIMIT 1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let outcome = if answered.is_none() && (was == Status::Held || mark == Status::Deleted) {
                let n = sqlx::query("DELETE FROM comments WHERE id = $1 AND status = $2")
                    .bind(id)
                    .bind(was.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 1
                    && was != Status::Held
                    && counts
                    && let Some(root) = root
                {
                    sqlx::query("UPDATE comments SET reply_count = reply_count - 1 WHERE id = $1 AND reply_count > 0")
                        .bind(root)
                        .execute(&mut *tx)
                        .await?;
                }
                (n == 1).then_some(Gone::Erased)
            } else {
                let n =
                    sqlx::query("UPDATE comments SET status = $2, body = '', html = '' WHERE id = $1 AND status = $3")
                        .bind(id)
                        .bind(mark.as_str())
                        .bind(was.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                (n == 1).then_some(Gone::Marked)
            };
            let Some(outcome) = outcome else { return Ok(Gone::Unchanged) };
            if was == Status::Visible && counts {
                sqlx::query("UPDATE videos SET comment_count = comment_count - 1 WHERE id = $1 AND comment_count > 0")
                    .bind(video)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, DbError>(outcome)
        })
    })
    .await
}

/// Shows a held comment (approved by the video's owner). `false` when it was not held.
pub async fn approve(db: &Db, id: Uuid) -> Result<bool, DbError> {
    let author_counts = author_counts_sql(db);
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let row: Option<(Uuid, Option<Uuid>, Uuid)> = sqlx::query_as(
                "UPDATE comments SET status = 'visible' WHERE id = $1 AND status = 'held' \
                 RETURNING video_id, root_id, author_id",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((video, root, author)) = row else { return Ok(false) };
            let counts: bool =
                sqlx::query_scalar(author_counts).bind(author).fetch_optional(&mut *tx).await?.unwrap_or(false);
            if counts {
                sqlx::query("UPDATE videos SET comment_count = comment_count + 1 WHERE id = $1")
                    .bind(video)
                    .execute(&mut *tx)
                    .await?;
                if let Some(root) = root {
                    sqlx::query("UPDATE comments SET reply_count = reply_count + 1 WHERE id = $1")
                        .bind(root)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok::<_, DbError>(true)
        })
    })
    .await
}

/// Likes (`like`) or stops liking a comment; `true` when this changed anything. The count moves
/// only with a row really inserted or deleted, so it stays equal to the likes under concurrent
/// toggles.
pub async fn rate(db: &Db, comment: Uuid, user: UserId, like: bool) -> Result<bool, DbError> {
    let (change, count) = if like {
        (
            "INSERT INTO comment_likes (comment_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            "UPDATE comments SET like_count = like_count + 1 WHERE id = $1",
        )
    } else {
        (
            "DELETE FROM comment_likes WHERE comment_id = $1 AND user_id = $2",
            "UPDATE comments SET like_count = like_count - 1 WHERE id = $1",
        )
    };
    retry_serializable(|| async {
        let now = Utc::now();
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let mut query = sqlx::query(change).bind(comment).bind(user.0);
            if like {
                query = query.bind(now);
            }
            let changed = query.execute(&mut *tx).await?.rows_affected();
            if changed == 1 {
                sqlx::query(count).bind(comment).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, DbError>(changed == 1)
        })
    })
    .await
}

/// Which of `comments` `user` likes.
pub async fn liked_by(db: &Db, user: UserId, comments: &[Uuid]) -> Result<Vec<Uuid>, DbError> {
    let mut out = Vec::new();
    for chunk in comments.chunks(50) {
        let list = serde_json::to_string(&chunk.iter().map(|id| id.to_string()).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        let found: Vec<Uuid> = match db {
            Db::Postgres(pool) => {
                sqlx::query_scalar("SELECT comment_id FROM comment_likes WHERE user_id = $1 AND comment_id = ANY($2)")
                    .bind(user.0)
                    .bind(chunk)
                    .fetch_all(pool)
                    .await?
            }
            Db::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT comment_id FROM comment_likes WHERE user_id = $1 \
                     AND comment_id IN (SELECT unhex(replace(value, '-', '')) FROM json_each($2))",
                )
                .bind(user.0)
                .bind(list)
                .fetch_all(pool)
                .await?
            }
        };
        out.extend(found);
    }
    Ok(out)
}

/// How many like rows `comment` has (the truth `like_count` must equal; for checks).
pub async fn count_likes(db: &Db, comment: Uuid) -> Result<i64, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM comment_likes WHERE comment_id = $1")
            .bind(comment)
            .fetch_one(pool)
            .await?
    }))
}

/// The scope of the instance-wide blocked words.
pub const INSTANCE: Uuid = Uuid::nil();

/// The blocked words of `scope` (a channel's id, or [`INSTANCE`]), alphabetically.
pub async fn blocked_words(db: &Db, scope: Uuid) -> Result<Vec<String>, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT word FROM blocked_words WHERE scope_id = $1 ORDER BY word")
            .bind(scope)
            .fetch_all(pool)
            .await?
    }))
}

/// The blocked words that apply to a comment in `channel`: the instance's and the channel's.
pub async fn blocked_words_for(db: &Db, channel: Uuid) -> Result<Vec<String>, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT word FROM blocked_words WHERE scope_id = $1 OR scope_id = $2")
            .bind(INSTANCE)
            .bind(channel)
            .fetch_all(pool)
            .await?
    }))
}

/// Replaces the blocked words of `scope` with `words` (already normalised), in one transaction.
pub async fn set_blocked_words(db: &Db, scope: Uuid, words: &[String]) -> Result<(), DbError> {
    retry_serializable(|| async {
        let now = Utc::now();
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM blocked_words WHERE scope_id = $1").bind(scope).execute(&mut *tx).await?;
            for w in words {
                sqlx::query(
                    "INSERT INTO blocked_words (scope_id, word, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(scope)
                .bind(w)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?
        });
        Ok(())
    })
    .await
}
