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
