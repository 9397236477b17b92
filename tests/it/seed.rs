//! The benchmark instance generator (`turtlemen admin seed`): a small instance on both stacks
//! is consistent (counters equal rows, every video in a channel of its owner) and serves the
//! community pages, and seeding twice is refused.

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
        let plan = SeedPlan { users: 40, channels: 60, videos: 600, subscriptions: 800, follower: Some(follower), follows: 30 };
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
    }
}

// The feed, paged to its end on an instance whose videos span two years (so every time window
// of the SQLite plan is used), is exactly the followed channels' public playable videos, newest
// first, each once.
on_both_stacks! {
    async fn the_feed_pages_through_every_followed_video_in_order(app) {
        let fan = turtlemen_db::users::create(&app.db, &crate::channels::new_user("fan")).await.unwrap();
        let plan = SeedPlan { users: 20, channels: 40, videos: 400, subscriptions: 100, follower: Some(fan.id.0), follows: 25 };
        seed(&app.db, &plan).await.unwrap();
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = turtlemen_db::subscriptions::feed(&app.db, fan.id, after, 7).await.unwrap();
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
    }
}
