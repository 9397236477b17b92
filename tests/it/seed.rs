//! The benchmark instance generator (`turtlemen admin seed`): a small instance on both stacks
//! is consistent (counters equal rows, every video in a channel of its owner) and serves the
//! community pages, and seeding twice is refused; seeded comments keep every counter equal to
//! its rows, replies sort after what they answer, and a hot video's comments page to the end
//! in order, through the API, in both sorts.

use crate::channels::call;
use crate::on_both_stacks;
use crate::uploads::signed_in;
use reqwest::Method;
use turtlemen_db::seed::{SeedError, SeedPlan, seed};

on_both_stacks! {
    async fn a_seeded_instance_is_consistent_and_served(app) {
        let ann = signed_in(&app, "ann").await;
        let (_, me) = call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await;
        let follower = me["id"].as_str().unwrap().parse().unwrap();
        let plan = SeedPlan { users: 40, channels: 60, videos: 600, subscriptions: 800, follower: Some(follower), follows: 30, comments: 0 };
        let report = seed(&app.db, &plan).await.unwrap();
        assert_eq!((report.users, report.channels, report.videos, report.subscriptions), (40, 60, 600, 830));
        assert!(matches!(seed(&app.db, &plan).await, Err(SeedError::AlreadySeeded)));

        // Every channel's counter is its number of rows; the follower follows 30 channels.
        for c in 0..60u64 {
            let handle = if c < 40 { format!("seed{c}") } else { format!("seedch{c}") };
            let (status, channel) = app.get_json(&format!("/api/v1/channels/{handle}")).await;
            assert_eq!(status, 200, "{handle}: {channel}");
            let id = channel["id"].as_str().unwrap().parse().unwrap();
            let rows = turtlemen_db::subscriptions::count_rows(&app.db, id).await.unwrap();
            assert_eq!(channel["subscriber_count"], rows, "{handle}");
        }
        let (status, feed) = call(&app, Some(&ann), Method::GET, "/api/v1/me/feed", None).await;
        assert_eq!(status, 200, "{feed}");
        let videos = feed["videos"].as_array().unwrap();
        assert!(!videos.is_empty(), "{feed}");
        assert!(videos.iter().all(|v| v["privacy"] == "public"), "{feed}");
        for path in ["/", "/@seed0", "/subscriptions"] {
            let res = app.client.get(app.url(path)).header("cookie", ann.cookie_header()).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
        }

        // A channel's page reads cards, the API whole videos: the same videos in both orders,
        // paged to the end.
        use turtlemen_db::channels::{VideoAfter, VideoSort, video_cards, videos as whole};
        let seed0 = turtlemen_db::channels::find_by_key(&app.db, "seed0").await.unwrap().unwrap().id;
        for sort in [VideoSort::Newest, VideoSort::MostViewed] {
            let (mut after, mut seen) = (None, 0);
            loop {
                let cards = video_cards(&app.db, seed0, sort, after, 9).await.unwrap();
                let page = whole(&app.db, seed0, sort, after, 9).await.unwrap();
                let carded: Vec<_> = cards.iter().map(|c| (c.id, c.title.clone(), c.views, c.listed_at())).collect();
                assert_eq!(carded, page.iter().map(|v| (v.id, v.title.clone(), v.views, v.listed_at())).collect::<Vec<_>>());
                let Some(last) = page.last() else { break };
                seen += page.len();
                after = Some(match sort {
                    VideoSort::Newest => VideoAfter::Published(last.listed_at(), last.id),
                    VideoSort::MostViewed => VideoAfter::Views(last.views as i64, last.id),
                });
            }
            assert!(seen > 9, "more than a page ({seen})");
        }
    }
}

// The feed, paged to its end on an instance whose videos span two years (so every time window
// of the SQLite plan is used), is exactly the followed channels' public playable videos, newest
// first, each once: read from the head the first page built, then computed past its floor.
on_both_stacks! {
    async fn the_feed_pages_through_every_followed_video_in_order(app) {
        let fan = turtlemen_db::users::create(&app.db, &crate::channels::new_user("fan")).await.unwrap();
        let plan = SeedPlan { users: 20, channels: 40, videos: 600, subscriptions: 100, follower: Some(fan.id.0), follows: 25, comments: 0 };
        seed(&app.db, &plan).await.unwrap();
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            // The pages' cards first (the first page builds the head from them), then the
            // API's whole videos: the same videos, shown alike, at every page.
            let cards = turtlemen_db::subscriptions::feed_cards(&app.db, fan.id, after, 7).await.unwrap();
            let page = turtlemen_db::subscriptions::feed(&app.db, fan.id, after, 7).await.unwrap();
            let shown = |v: &turtlemen_db::videos::Video| {
                (v.id, v.title.clone(), v.channel_handle.clone(), v.channel_display_name.clone(), v.views, v.listed_at(), v.duration_secs, v.has_poster, v.media_version)
            };
            let carded: Vec<_> = cards.iter().map(|c| (c.id, c.title.clone(), c.channel_handle.clone(), c.channel_display_name.clone(), c.views, c.listed_at(), c.duration_secs, c.has_poster, c.media_version)).collect();
            assert_eq!(carded, page.iter().map(shown).collect::<Vec<_>>());
            let Some(last) = page.last() else { break };
            after = Some((last.published_at.unwrap(), last.id));
            paged.extend(page.iter().map(|v| (v.published_at.unwrap(), v.id)));
        }
        let mut expected: Vec<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> = turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query_as(
                "SELECT v.published_at, v.id FROM videos v JOIN subscriptions s ON s.channel_id = v.channel_id \
                 WHERE s.user_id = $1 AND v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL",
            )
            .bind(fan.id.0)
            .fetch_all(pool)
            .await
            .unwrap()
        });
        expected.sort_by(|a, b| b.cmp(a));
        assert!(expected.len() > 50, "the follower sees a long feed ({})", expected.len());
        let oldest = expected.last().unwrap().0;
        assert!(chrono::Utc::now() - oldest > chrono::TimeDelta::days(400), "it spans more than a year");
        assert_eq!(paged, expected);
        // The first page built the follower's head; the pages went through it and on past its
        // floor into the computed feed.
        let floored: Option<bool> = turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query_scalar("SELECT floor_at IS NOT NULL FROM feed_heads WHERE user_id = $1 AND ready = TRUE")
                .bind(fan.id.0)
                .fetch_optional(pool)
                .await
                .unwrap()
        });
        assert_eq!(floored, Some(true), "a head holding part of the feed");
        assert!(expected.len() > turtlemen_db::feed_heads::HEAD_SIZE as usize, "the feed is longer than a head");
    }
}

/// Rows of `sql` (a count of mismatches) on either database.
async fn count(db: &turtlemen_db::Db, sql: &'static str) -> i64 {
    turtlemen_db::with_pool!(db, |pool| sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap())
}

/// Every `id` of a paged comment list, following `next_cursor` to the end.
async fn paged(app: &crate::helpers::TestApp, path: &str, key: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=37&cursor={c}"),
            None => format!("{path}{sep}limit=37"),
        };
        let (status, page) = app.get_json(&url).await;
        assert_eq!(status, 200, "{url}: {page}");
        all.extend(page[key].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    all
}

on_both_stacks! {
    async fn seeded_comments_keep_their_counters_and_page_in_order(app) {
        let plan = SeedPlan { users: 30, channels: 40, videos: 60, subscriptions: 0, follower: None, follows: 0, comments: 3_000 };
        let report = seed(&app.db, &plan).await.unwrap();
        assert_eq!(report.comments, 3_000);
        assert_eq!(report.hot_videos.len(), 5);
        let db = &app.db;
        assert_eq!(count(db, "SELECT COUNT(*) FROM comments").await, 3_000);
        assert_eq!(count(db, "SELECT COUNT(*) FROM comment_likes").await, report.comment_likes as i64);
        assert!(report.comment_likes > 0, "some comments are liked");
        // Counters equal their rows: the video's visible comments, a thread's replies, a
        // comment's likes; and every reply sorts after what it answers, in the same video.
        let checks = [
            "SELECT COUNT(*) FROM videos v WHERE v.comment_count <> \
             (SELECT COUNT(*) FROM comments c WHERE c.video_id = v.id AND c.status = 'visible')",
            "SELECT COUNT(*) FROM comments r WHERE r.root_id IS NULL AND r.reply_count <> \
             (SELECT COUNT(*) FROM comments c WHERE c.root_id = r.id AND c.status <> 'held')",
            "SELECT COUNT(*) FROM comments c WHERE c.like_count <> \
             (SELECT COUNT(*) FROM comment_likes l WHERE l.comment_id = c.id)",
            "SELECT COUNT(*) FROM comments c JOIN comments p ON p.id = c.parent_id \
             WHERE c.id <= p.id OR c.video_id <> p.video_id OR c.created_at < p.created_at",
            "SELECT COUNT(*) FROM comments c JOIN comments r ON r.id = c.root_id WHERE r.root_id IS NOT NULL",
        ];
        for sql in checks {
            assert_eq!(count(db, sql).await, 0, "{sql}");
        }
        assert!(count(db, "SELECT COUNT(*) FROM comments WHERE root_id IS NOT NULL").await > 300, "threads have replies");
        assert!(count(db, "SELECT COUNT(*) FROM comments WHERE parent_id <> root_id").await > 0, "replies to replies");

        let hot = report.hot_videos[0];
        let (status, video) = app.get_json(&format!("/api/v1/videos/{hot}")).await;
        assert_eq!(status, 200, "{video}");
        let (_, first) = app.get_json(&format!("/api/v1/videos/{hot}/comments")).await;
        assert_eq!(first["count"], 300, "{first}");

        // Newest: all top-level comments, id descending; top: likes, then id, descending.
        let top_level: Vec<(uuid::Uuid, i64)> = turtlemen_db::with_pool!(db, |pool| {
            sqlx::query_as("SELECT id, like_count FROM comments WHERE video_id = $1 AND root_id IS NULL")
                .bind(hot)
                .fetch_all(pool)
                .await
                .unwrap()
        });
        let mut newest = top_level.clone();
        newest.sort_by_key(|c| std::cmp::Reverse(c.0));
        let mut top = top_level.clone();
        top.sort_by_key(|c| std::cmp::Reverse((c.1, c.0)));
        let strings = |v: &[(uuid::Uuid, i64)]| v.iter().map(|c| c.0.to_string()).collect::<Vec<_>>();
        assert!(newest.len() > 100, "{}", newest.len());
        assert_eq!(paged(&app, &format!("/api/v1/videos/{hot}/comments"), "comments").await, strings(&newest));
        assert_eq!(paged(&app, &format!("/api/v1/videos/{hot}/comments?sort=top"), "comments").await, strings(&top));

        // The biggest thread's replies, oldest first.
        let (root, replies): (uuid::Uuid, i64) = turtlemen_db::with_pool!(db, |pool| {
            sqlx::query_as("SELECT id, reply_count FROM comments WHERE video_id = $1 AND root_id IS NULL ORDER BY reply_count DESC, id LIMIT 1")
                .bind(hot)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert!(replies > 1, "{replies}");
        let got = paged(&app, &format!("/api/v1/comments/{root}/replies"), "replies").await;
        assert_eq!(got.len() as i64, replies);
        let mut sorted = got.clone();
        sorted.sort_by_key(|id| id.parse::<uuid::Uuid>().unwrap());
        assert_eq!(got, sorted);

        // A comment written now is the newest, and counts.
        let ann = signed_in(&app, "ann").await;
        let (status, made) = call(&app, Some(&ann), Method::POST, &format!("/api/v1/videos/{hot}/comments"),
            Some(serde_json::json!({ "text": "first from a person" }))).await;
        assert_eq!(status, 201, "{made}");
        let (_, first) = app.get_json(&format!("/api/v1/videos/{hot}/comments")).await;
        assert_eq!(first["comments"][0]["id"], made["id"]);
        assert_eq!(first["count"], 301);
    }
}
