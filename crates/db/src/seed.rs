//! A synthetic instance for benchmarks: users, their channels, videos, subscriptions and
//! comments in the proportions of a large real one (`turtlemen admin seed`).
//!
//! Everything is generated from a fixed random seed, so two runs build the same instance. Rows
//! go in with multi-row `INSERT`s of [`BATCH`] rows, each its own short transaction (no long
//! transaction on PostgreSQL or CockroachDB; SQLite commits each batch). The shape follows what
//! makes the pages slow in practice: a few channels hold most videos and most subscribers
//! (skewed choices), and one named real user can be made to follow the biggest channels, the
//! worst case for the subscriptions feed.
//!
//! Comments ([`SeedPlan::comments`]): the first [`HOT_VIDEOS`] videos (made public) get up to
//! [`HOT_COMMENTS`] each, the worst case for a comment page; the rest are spread over the other
//! videos, skewed, so most have a handful. A quarter are replies (to the thread's top-level
//! comment or its latest reply), and a few comments have many likes. Every counter goes in with
//! its rows, computed beforehand: `videos.comment_count`, `reply_count`, `like_count` (one
//! `comment_likes` row per like). Comment ids are UUID v7 of their creation time, as the
//! application makes them, with the video's sequence number in the random bits so replies sort
//! after what they answer.
//!
//! Seeded accounts have no password (they cannot sign in); their usernames start with `seed`,
//! their addresses end in `.invalid`, and seeding refuses to run twice on one database.

use crate::{Db, DbError, with_pool};
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use uuid::Uuid;

/// Rows per `INSERT` statement (and transaction): under both engines' bound-parameter limits
/// at the widest row (videos, 17 columns).
const BATCH: usize = 1_000;

/// How big an instance to build.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    pub users: u32,
    /// Every user's own channel counts; the rest are extra channels of random users.
    pub channels: u32,
    pub videos: u32,
    pub subscriptions: u64,
    /// An existing account that follows the [`SeedPlan::follows`] biggest channels.
    pub follower: Option<Uuid>,
    pub follows: u32,
    /// Comments in all (0: none).
    pub comments: u64,
}

/// Videos given the most comments (the first ones, made public).
pub const HOT_VIDEOS: u32 = 5;
/// Comments each of the [`HOT_VIDEOS`] gets at most (a tenth of all comments when fewer).
pub const HOT_COMMENTS: u64 = 100_000;

/// What was written, and how long each part took.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub users: u64,
    pub channels: u64,
    pub videos: u64,
    pub subscriptions: u64,
    pub comments: u64,
    pub comment_likes: u64,
    /// The most commented videos (the [`HOT_VIDEOS`]), when there are comments.
    pub hot_videos: Vec<Uuid>,
    pub timings: Vec<(&'static str, std::time::Duration)>,
}

/// Why seeding refused to run.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("this database is seeded already (seed users exist); seed a fresh database")]
    AlreadySeeded,
    #[error("the plan is impossible: {0}")]
    Plan(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Words titles, descriptions, tags and names are made of: common enough that searches find
/// thousands of rows, varied enough that they rank.
const WORDS: &[&str] = &[
    "river",
    "mountain",
    "guitar",
    "piano",
    "recipe",
    "bread",
    "garden",
    "tomato",
    "bicycle",
    "repair",
    "engine",
    "train",
    "journey",
    "city",
    "night",
    "sunrise",
    "ocean",
    "forest",
    "winter",
    "summer",
    "festival",
    "dance",
    "lesson",
    "rust",
    "python",
    "linux",
    "server",
    "database",
    "kernel",
    "compiler",
    "robot",
    "drone",
    "camera",
    "lens",
    "portrait",
    "street",
    "market",
    "coffee",
    "tea",
    "chess",
    "football",
    "tennis",
    "marathon",
    "yoga",
    "painting",
    "sketch",
    "pottery",
    "knitting",
    "woodwork",
    "origami",
    "volcano",
    "glacier",
    "desert",
    "island",
    "harbour",
    "lighthouse",
    "castle",
    "museum",
    "library",
    "concert",
    "orchestra",
    "choir",
    "jazz",
    "blues",
    "folk",
    "review",
    "unboxing",
    "tutorial",
    "beginner",
    "advanced",
    "history",
    "science",
    "physics",
    "chemistry",
    "biology",
    "astronomy",
    "telescope",
    "planet",
    "comet",
    "galaxy",
    "weather",
    "storm",
    "rain",
    "snow",
    "cat",
    "dog",
    "horse",
    "bird",
    "owl",
    "fox",
    "whale",
    "dolphin",
    "bee",
    "honey",
    "cheese",
    "pasta",
    "curry",
    "noodle",
    "soup",
    "salad",
    "cake",
    "chocolate",
    "vegan",
    "budget",
    "travel",
    "hiking",
    "camping",
    "kayak",
    "sailing",
    "surfing",
    "climbing",
    "skiing",
    "podcast",
    "interview",
    "debate",
    "news",
    "election",
    "climate",
    "energy",
    "solar",
    "wind",
    "battery",
    "electric",
    "car",
    "truck",
    "tractor",
    "farm",
    "village",
    "family",
    "wedding",
    "birthday",
    "holiday",
    "speedrun",
    "retro",
    "arcade",
    "puzzle",
    "strategy",
    "quest",
];

fn words(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| *WORDS.choose(rng).unwrap_or(&"video")).collect::<Vec<_>>().join(" ")
}

/// A skewed index in `0..n`: low indexes are chosen far more often (`u^power`), as a few
/// channels hold most videos and subscribers.
fn skewed(rng: &mut StdRng, n: u32, power: i32) -> u32 {
    let u: f64 = rng.r#gen();
    ((u.powi(power) * f64::from(n)) as u32).min(n.saturating_sub(1))
}

/// Deterministic ids, distinct per kind and index, so later rows can name earlier ones.
fn id(kind: u64, i: u64) -> Uuid {
    Uuid::from_u64_pair(0x5eed_0000_0000_0000 | kind, i)
}

/// Builds the instance `plan` describes.
pub async fn seed(db: &Db, plan: &SeedPlan) -> Result<SeedReport, SeedError> {
    if plan.users == 0 || plan.channels < plan.users {
        return Err(SeedError::Plan("at least one user, and at least as many channels as users"));
    }
    if plan.follower.is_some() && plan.follows > plan.channels {
        return Err(SeedError::Plan("the follower cannot follow more channels than there are"));
    }
    let seeded: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
            .bind(id(1, 0))
            .fetch_optional(pool)
            .await
            .map_err(DbError::from)?
    });
    if seeded.is_some() {
        return Err(SeedError::AlreadySeeded);
    }
    if plan.comments > 0 && plan.videos == 0 {
        return Err(SeedError::Plan("comments need videos"));
    }
    if plan.comments > 10_000_000 {
        return Err(SeedError::Plan("at most 10,000,000 comments"));
    }
    let mut rng = StdRng::seed_from_u64(0x7475_7274_6c65);
    let mut report = SeedReport::default();
    let now = Utc::now();
    let user_id = |u: u32| id(1, u64::from(u));
    // Channel c < users is user c's own (its id is the user's, as for real accounts).
    let channel_id = |c: u32| if c < plan.users { user_id(c) } else { id(2, u64::from(c)) };
    let channel_owner: Vec<u32> =
        (0..plan.channels).map(|c| if c < plan.users { c } else { rng.gen_range(0..plan.users) }).collect();

    // Subscriptions first, in memory, so each channel's count goes in with it.
    let started = std::time::Instant::now();
    let mut counts = vec![0i64; plan.channels as usize];
    let per_user = plan.subscriptions / u64::from(plan.users);
    let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(plan.subscriptions as usize);
    let mut mine = HashSet::new();
    for u in 0..plan.users {
        let want = if u64::from(u) < plan.subscriptions % u64::from(plan.users) { per_user + 1 } else { per_user };
        let want = want.min(u64::from(plan.channels)) as usize;
        mine.clear();
        while mine.len() < want {
            // Mostly popular channels, some of the long tail.
            let c =
                if rng.gen_bool(0.8) { skewed(&mut rng, plan.channels, 2) } else { rng.gen_range(0..plan.channels) };
            if mine.insert(c) {
                pairs.push((u, c));
                counts[c as usize] += 1;
            }
        }
    }
    let follower: Vec<u32> = if plan.follower.is_some() { (0..plan.follows).collect() } else { Vec::new() };
    for &c in &follower {
        counts[c as usize] += 1;
    }

    insert_rows(
        db,
        &Table::new(
            "users",
            "id, username, username_key, email, email_key, display_name, role, email_verified, created_at, updated_at",
        ),
        0..plan.users,
        |u| {
            let name = format!("seed{u}");
            let email = format!("{name}@seed.invalid");
            let at = now - Duration::days(730) + Duration::seconds(i64::from(u));
            vec![
                user_id(u).into(),
                name.clone().into(),
                name.into(),
                email.clone().into(),
                email.into(),
                format!("Seed user {u}").into(),
                "user".into(),
                true.into(),
                at.into(),
                at.into(),
            ]
        },
    )
    .await?;
    report.users = u64::from(plan.users);
    report.timings.push(("users", started.elapsed()));

    let started = std::time::Instant::now();
    let names: Vec<String> = (0..plan.channels).map(|_| words(&mut rng, 2)).collect();
    insert_rows(
        db,
        &Table::new(
            "channels",
            "id, owner_id, handle, handle_key, display_name, description, subscriber_count, created_at, updated_at",
        )
        .searchable(crate::search::PG_CHANNEL_VECTOR_EXPR),
        0..plan.channels,
        |c| {
            let handle = if c < plan.users { format!("seed{c}") } else { format!("seedch{c}") };
            let at = now - Duration::days(700) + Duration::seconds(i64::from(c));
            let name = &names[c as usize];
            vec![
                channel_id(c).into(),
                user_id(channel_owner[c as usize]).into(),
                handle.clone().into(),
                handle.into(),
                name.clone().into(),
                format!("The channel of {name}.").into(),
                counts[c as usize].into(),
                at.into(),
                at.into(),
            ]
        },
    )
    .await?;
    let ids: Vec<Uuid> = (0..plan.channels).map(channel_id).collect();
    for chunk in ids.chunks(BATCH) {
        crate::search::index_many(db, &[], chunk).await?;
    }
    report.channels = u64::from(plan.channels);
    report.timings.push(("channels", started.elapsed()));

    let started = std::time::Instant::now();
    // Each video's comment count, drawn from a random stream of its own (so the rest of the
    // instance is the same with or without comments), goes in with the video.
    let comment_counts = comment_counts(plan);
    let hot = if plan.comments > 0 { HOT_VIDEOS.min(plan.videos) } else { 0 };
    let mut published = Vec::with_capacity(if plan.comments > 0 { plan.videos as usize } else { 0 });
    let mut done = 0u32;
    while done < plan.videos {
        let end = (done + BATCH as u32).min(plan.videos);
        let mut rows: Vec<SeedVideo> = (done..end).map(|v| SeedVideo::random(&mut rng, v, plan, now)).collect();
        for v in &mut rows {
            if v.index < hot {
                v.privacy = "public";
            }
            if plan.comments > 0 {
                published.push(v.published);
            }
        }
        insert_rows(
            db,
            &Table::new(
                "videos",
                "id, owner_id, channel_id, title, description, tags, category, privacy, state, progress, playable, \
                 duration_secs, width, height, original_name, original_bytes, views, comment_count, created_at, \
                 updated_at, published_at",
            )
            .searchable(crate::search::PG_VIDEO_VECTOR_EXPR),
            0..rows.len() as u32,
            |i| {
                let v = &rows[i as usize];
                vec![
                    id(3, u64::from(v.index)).into(),
                    user_id(channel_owner[v.channel as usize]).into(),
                    channel_id(v.channel).into(),
                    v.title.clone().into(),
                    v.description.clone().into(),
                    v.tags.clone().into(),
                    v.category.into(),
                    v.privacy.into(),
                    "ready".into(),
                    100i64.into(),
                    true.into(),
                    v.duration.into(),
                    1280i64.into(),
                    720i64.into(),
                    format!("{}.mp4", v.index).into(),
                    10_000_000i64.into(),
                    v.views.into(),
                    i64::from(comment_counts.get(v.index as usize).copied().unwrap_or(0)).into(),
                    v.published.into(),
                    v.published.into(),
                    v.published.into(),
                ]
            },
        )
        .await?;
        let ids: Vec<Uuid> = rows.iter().map(|v| id(3, u64::from(v.index))).collect();
        crate::search::index_many(db, &ids, &[]).await?;
        // The last week's public videos were watched lately: an hourly bucket each, from which
        // the trending scores are computed at the end.
        let recent: Vec<&SeedVideo> = rows
            .iter()
            .filter(|v| v.privacy == "public" && now - v.published < Duration::hours(crate::trending::WINDOW_HOURS))
            .collect();
        if !recent.is_empty() {
            insert_rows(db, &Table::new("video_view_hours", "video_id, hour, views"), 0..recent.len() as u32, |i| {
                let v = recent[i as usize];
                vec![id(3, u64::from(v.index)).into(), crate::trending::hour_of(v.published).into(), v.views.into()]
            })
            .await?;
        }
        done = end;
    }
    crate::trending::refresh(db, now).await?;
    report.videos = u64::from(plan.videos);
    report.timings.push(("videos", started.elapsed()));

    let started = std::time::Instant::now();
    let follower_rows: Vec<(Uuid, u32)> =
        plan.follower.map(|f| follower.iter().map(|&c| (f, c)).collect()).unwrap_or_default();
    for chunk in pairs
        .chunks(BATCH)
        .map(|c| c.iter().map(|&(u, c)| (user_id(u), c)).collect::<Vec<_>>())
        .chain(follower_rows.chunks(BATCH).map(<[(Uuid, u32)]>::to_vec))
    {
        insert_rows(db, &Table::new("subscriptions", "user_id, channel_id, created_at"), 0..chunk.len() as u32, |i| {
            let (user, c) = chunk[i as usize];
            vec![user.into(), channel_id(c).into(), (now - Duration::seconds(i64::from(c))).into()]
        })
        .await?;
    }
    report.subscriptions = pairs.len() as u64 + follower_rows.len() as u64;
    report.timings.push(("subscriptions", started.elapsed()));

    if plan.comments > 0 {
        let started = std::time::Instant::now();
        let (comments, likes) = seed_comments(db, plan, &comment_counts, &published, now).await?;
        report.comments = comments;
        report.comment_likes = likes;
        report.hot_videos = (0..hot).map(|v| id(3, u64::from(v))).collect();
        report.timings.push(("comments", started.elapsed()));
    }
    let started = std::time::Instant::now();
    crate::search::settle(db).await?;
    report.timings.push(("search index merged, statistics gathered", started.elapsed()));
    Ok(report)
}

/// How many comments each video gets: up to [`HOT_COMMENTS`] for each of the first
/// [`HOT_VIDEOS`], the rest over the others (skewed: a few have thousands, most a handful).
fn comment_counts(plan: &SeedPlan) -> Vec<u32> {
    if plan.comments == 0 {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(0x636f_6d6d_656e_7473);
    let mut counts = vec![0u32; plan.videos as usize];
    let hot = HOT_VIDEOS.min(plan.videos);
    let each = HOT_COMMENTS.min(plan.comments / 10);
    let others = plan.videos - hot;
    let mut left = plan.comments;
    for c in counts.iter_mut().take(hot as usize) {
        // At most 100,000 (`each` fits in u32).
        *c = u32::try_from(each).unwrap_or(u32::MAX);
        left -= each;
    }
    for _ in 0..left {
        let v = if others == 0 { skewed(&mut rng, hot, 1) } else { hot + skewed(&mut rng, others, 2) };
        counts[v as usize] += 1;
    }
    counts
}

/// A comment id: UUID v7 of `at_ms`, then the comment's sequence number in its video (so two
/// comments made in one millisecond still sort in order) and the video's index (so ids never
/// collide across videos).
fn comment_id(at_ms: i64, seq: u32, video: u32) -> Uuid {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&at_ms.to_be_bytes()[2..]);
    b[6] = 0x70 | ((seq >> 20) & 0x0f) as u8;
    b[7] = (seq >> 12) as u8;
    b[8] = 0x80 | ((seq >> 6) & 0x3f) as u8;
    b[9] = ((seq & 0x3f) << 2) as u8;
    b[12..].copy_from_slice(&video.to_be_bytes());
    Uuid::from_bytes(b)
}

/// One generated comment.
struct SeedComment {
    id: Uuid,
    video: u32,
    author: u32,
    parent: Option<Uuid>,
    root: Option<Uuid>,
    body: String,
    likers: Vec<u32>,
    replies: i64,
    at: DateTime<Utc>,
}

/// `count` comments on `video` (published at `published`), oldest first, their counters set.
fn thread(
    rng: &mut StdRng,
    video: u32,
    count: u32,
    published: DateTime<Utc>,
    now: DateTime<Utc>,
    users: u32,
) -> Vec<SeedComment> {
    let start = published.timestamp_millis() + 1_000;
    let span = (now.timestamp_millis() - 1_000 - start).max(1);
    let mut times: Vec<i64> = (0..count).map(|_| start + rng.gen_range(0..span)).collect();
    times.sort_unstable();
    let mut out: Vec<SeedComment> = Vec::with_capacity(count as usize);
    // Top-level comments (their index in `out`) and each one's latest reply.
    let mut tops: Vec<(usize, Option<Uuid>)> = Vec::new();
    for (seq, at_ms) in (0u32..).zip(times) {
        let id = comment_id(at_ms, seq, video);
        let (parent, root) = if !tops.is_empty() && rng.gen_bool(0.25) {
            // Recent threads draw most replies.
            let t = tops.len() - 1 - skewed(rng, tops.len() as u32, 3) as usize;
            let (root_at, last) = tops[t];
            let root = out[root_at].id;
            out[root_at].replies += 1;
            tops[t].1 = Some(id);
            let parent = match last {
                Some(reply) if rng.gen_bool(0.3) => reply,
                _ => root,
            };
            (Some(parent), Some(root))
        } else {
            tops.push((out.len(), None));
            (None, None)
        };
        let likes = ((rng.r#gen::<f64>().powi(40) * f64::from(users.min(30))) as u32).min(users);
        let likers =
            rand::seq::index::sample(rng, users as usize, likes as usize).into_iter().map(|u| u as u32).collect();
        let n = rng.gen_range(3..20);
        out.push(SeedComment {
            id,
            video,
            author: skewed(rng, users, 2),
            parent,
            root,
            body: words(rng, n),
            likers,
            replies: 0,
            at: DateTime::from_timestamp_millis(at_ms).unwrap_or(now),
        });
    }
    out
}

/// Writes every video's comments and their likes; returns how many of each.
async fn seed_comments(
    db: &Db,
    plan: &SeedPlan,
    counts: &[u32],
    published: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Result<(u64, u64), DbError> {
    let mut rng = StdRng::seed_from_u64(0x7468_7265_6164);
    let (mut comments, mut likes) = (0u64, 0u64);
    let mut pending: Vec<SeedComment> = Vec::new();
    let last = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
    for (v, &count) in counts.iter().enumerate() {
        if count > 0 {
            pending.extend(thread(&mut rng, v as u32, count, published[v], now, plan.users));
        }
        if pending.len() < 10 * BATCH && v < last {
            continue;
        }
        if pending.is_empty() {
            break;
        }
        insert_rows(
            db,
            &Table::new(
                "comments",
                "id, video_id, author_id, parent_id, root_id, body, html, status, like_count, reply_count, created_at",
            ),
            0..pending.len() as u32,
            |i| {
                let c = &pending[i as usize];
                vec![
                    c.id.into(),
                    id(3, u64::from(c.video)).into(),
                    id(1, u64::from(c.author)).into(),
                    c.parent.into(),
                    c.root.into(),
                    c.body.clone().into(),
                    format!("<p>{}</p>\n", c.body).into(),
                    "visible".into(),
                    (c.likers.len() as i64).into(),
                    c.replies.into(),
                    c.at.into(),
                ]
            },
        )
        .await?;
        let liked: Vec<(Uuid, u32, DateTime<Utc>)> =
            pending.iter().flat_map(|c| c.likers.iter().map(move |&u| (c.id, u, c.at))).collect();
        insert_rows(db, &Table::new("comment_likes", "comment_id, user_id, created_at"), 0..liked.len() as u32, |i| {
            let (comment, user, at) = liked[i as usize];
            vec![comment.into(), id(1, u64::from(user)).into(), at.into()]
        })
        .await?;
        comments += pending.len() as u64;
        likes += liked.len() as u64;
        pending.clear();
    }
    Ok((comments, likes))
}

/// One generated video.
struct SeedVideo {
    index: u32,
    channel: u32,
    title: String,
    description: String,
    tags: String,
    category: &'static str,
    privacy: &'static str,
    duration: f64,
    views: i64,
    published: DateTime<Utc>,
}

impl SeedVideo {
    fn random(rng: &mut StdRng, index: u32, plan: &SeedPlan, now: DateTime<Utc>) -> SeedVideo {
        let n_title = rng.gen_range(3..7);
        let n_description = rng.gen_range(10..40);
        let tags: Vec<String> = (0..rng.gen_range(0..4)).map(|_| words(rng, 1)).collect();
        let privacy = match rng.gen_range(0..20) {
            0 => "private",
            1 => "unlisted",
            _ => "public",
        };
        SeedVideo {
            index,
            channel: skewed(rng, plan.channels, 3),
            title: words(rng, n_title),
            description: words(rng, n_description),
            tags: serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()),
            category: turtlemen_domain::Category::all().choose(rng).map_or("people", |c| c.slug()),
            privacy,
            duration: rng.gen_range(20.0..3600.0),
            // Most videos are seen a little, a few a lot.
            views: (rng.r#gen::<f64>().powi(6) * 2_000_000.0) as i64,
            published: now - Duration::seconds(rng.gen_range(60..730 * 86_400)),
        }
    }
}

/// A value of a generated row.
enum Value {
    Id(Uuid),
    MaybeId(Option<Uuid>),
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl From<Uuid> for Value {
    fn from(v: Uuid) -> Self {
        Value::Id(v)
    }
}
impl From<Option<Uuid>> for Value {
    fn from(v: Option<Uuid>) -> Self {
        Value::MaybeId(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Time(v)
    }
}

/// Where generated rows go: a table, its columns, and on PostgreSQL the search vector computed
/// from them in the same statement (`INSERT … SELECT t.*, vector FROM (VALUES …) AS t (…)`), so
/// no row is written twice.
struct Table<'a> {
    name: &'a str,
    columns: &'a str,
    pg_search: Option<&'a str>,
}

impl<'a> Table<'a> {
    const fn new(name: &'a str, columns: &'a str) -> Self {
        Table { name, columns, pg_search: None }
    }

    const fn searchable(self, vector: &'a str) -> Self {
        Table { pg_search: Some(vector), ..self }
    }
}

/// Inserts one row per index of `range`, made by `row`, [`BATCH`] rows per statement.
async fn insert_rows<F>(db: &Db, table: &Table<'_>, range: std::ops::Range<u32>, mut row: F) -> Result<(), DbError>
where
    F: FnMut(u32) -> Vec<Value>,
{
    let Table { name, columns, pg_search } = *table;
    let (head, tail) = match (db, pg_search) {
        (Db::Postgres(_), Some(vector)) => (
            format!("INSERT INTO {name} ({columns}, search) SELECT t.*, {vector} FROM ("),
            format!(") AS t ({columns})"),
        ),
        _ => (format!("INSERT INTO {name} ({columns}) "), String::new()),
    };
    let all: Vec<u32> = range.collect();
    for chunk in all.chunks(BATCH) {
        let rows: Vec<Vec<Value>> = chunk.iter().map(|&i| row(i)).collect();
        with_pool!(db, |pool| {
            let mut builder = sqlx::QueryBuilder::new(head.as_str());
            builder.push_values(rows, |mut b, values| {
                for value in values {
                    match value {
                        Value::Id(v) => b.push_bind(v),
                        Value::MaybeId(v) => b.push_bind(v),
                        Value::Text(v) => b.push_bind(v),
                        Value::Int(v) => b.push_bind(v),
                        Value::Float(v) => b.push_bind(v),
                        Value::Bool(v) => b.push_bind(v),
                        Value::Time(v) => b.push_bind(v),
                    };
                }
            });
            builder.push(tail.as_str());
            builder.build().execute(pool).await?;
        });
    }
    Ok(())
}
