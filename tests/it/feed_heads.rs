//! The feed's materialised head on both stacks, with the fan-out run by the real worker: the
//! first read builds the head and later reads come from it; a new video reaches it through the
//! fan-out job; a video made private leaves at once and comes back when made public again;
//! subscribing drops the head, unfollowing hides at once; an expired head is built again; a
//! fan-out waiting for a retry restarts when its video is listed again; an unban drops the heads
//! built during the ban; and concurrent first reads build one head and agree. (Paging across a head's floor into the
//! computed feed is `seed::the_feed_pages_through_every_followed_video_in_order`.)

use crate::channels::{call, new_user, new_video, publish};
use crate::gateway::Browser;
use crate::helpers::TestApp;
use crate::notifications::{drain, privacy};
use crate::on_both_stacks;
use crate::uploads::signed_in;
use reqwest::Method;
use turtlemen_db::seed::{SeedPlan, seed};
use turtlemen_db::{Db, with_pool};
use uuid::Uuid;

/// The titles of `who`'s feed, first page.
async fn feed(app: &TestApp, who: &Browser) -> Vec<String> {
    let (status, body) = call(app, Some(who), Method::GET, "/api/v1/me/feed?limit=50", None).await;
    assert_eq!(status, 200, "{body}");
    body["videos"].as_array().unwrap().iter().map(|v| v["title"].as_str().unwrap().to_owned()).collect()
}

async fn id_of(app: &TestApp, who: &Browser) -> Uuid {
    let (_, me) = call(app, Some(who), Method::GET, "/api/v1/me", None).await;
    Uuid::parse_str(me["id"].as_str().unwrap()).unwrap()
}

/// `user`'s head: (ready, holds the whole feed), if any.
async fn head(db: &Db, user: Uuid) -> Option<(bool, bool)> {
    with_pool!(db, |pool| {
        sqlx::query_as("SELECT ready, floor_at IS NULL FROM feed_heads WHERE user_id = $1")
            .bind(user)
            .fetch_optional(pool)
            .await
            .unwrap()
    })
}

async fn entries(db: &Db, user: Uuid) -> i64 {
    with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM feed_entries WHERE user_id = $1")
            .bind(user)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// A public video of `who`, published and announced as processing does.
async fn published(app: &TestApp, who: &Browser, title: &str) -> String {
    let id = new_video(app, who, title, "public", None).await;
    publish(app, &id).await;
    turtlemen_db::notifications::announce_video(&app.db, id.parse().unwrap()).await.unwrap();
    id
}

on_both_stacks! {
    without_worker;

    async fn an_active_feed_is_read_from_its_head_and_kept_current(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let carl = signed_in(&app, "carl").await;
        let bob_id = id_of(&app, &bob).await;
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        published(&app, &ann, "First").await;
        drain(&app).await;
        assert_eq!(head(&app.db, bob_id).await, None, "no head before the first read");

        // The first read builds the head: the whole feed, so no floor.
        assert_eq!(feed(&app, &bob).await, ["First"]);
        assert_eq!(head(&app.db, bob_id).await, Some((true, true)));
        assert_eq!(entries(&app.db, bob_id).await, 1);

        // A new video reaches the head through the fan-out job, not before: reads come from it.
        let second = published(&app, &ann, "Second").await;
        assert_eq!(feed(&app, &bob).await, ["First"], "not in the head until the fan-out reaches bob");
        assert_eq!(drain(&app).await, 1);
        assert_eq!(feed(&app, &bob).await, ["Second", "First"]);
        assert_eq!(entries(&app.db, bob_id).await, 2);

        // Made private it leaves at once; made public again, the fan-out starts over and brings
        // it back to a head built while it was private.
        privacy(&app, &ann, &second, "private").await;
        assert_eq!(feed(&app, &bob).await, ["First"]);
        with_pool!(&app.db, |pool| sqlx::query("DELETE FROM feed_heads").execute(pool).await.unwrap().rows_affected());
        assert_eq!(feed(&app, &bob).await, ["First"], "a head built while it is private");
        privacy(&app, &ann, &second, "public").await;
        assert_eq!(drain(&app).await, 1);
        assert_eq!(feed(&app, &bob).await, ["Second", "First"]);

        // Subscribing drops the head: the new channel's videos are there at once.
        published(&app, &carl, "Carl's").await;
        drain(&app).await;
        assert_eq!(feed(&app, &bob).await, ["Second", "First"]);
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/carl", None).await.0, 204);
        assert_eq!(head(&app.db, bob_id).await, None);
        assert_eq!(feed(&app, &bob).await, ["Carl's", "Second", "First"]);
        assert_eq!(entries(&app.db, bob_id).await, 3, "the old head's entries went with the new build");

        // Unfollowing hides the channel at once, head or not.
        assert_eq!(call(&app, Some(&bob), Method::DELETE, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        assert_eq!(feed(&app, &bob).await, ["Carl's"]);

        // An idle head expires with its entries; the next read builds another.
        let expire = || turtlemen_db::feed_heads::expire(&app.db, chrono::Utc::now(), 100);
        aged(&app.db, 3, 3).await;
        assert_eq!(expire().await.unwrap(), 1);
        assert_eq!((head(&app.db, bob_id).await, entries(&app.db, bob_id).await), (None, 0));
        assert_eq!(feed(&app, &bob).await, ["Carl's"]);
        assert_eq!(head(&app.db, bob_id).await, Some((true, true)));
        // One read lately stays; one built over a week ago goes however lately it was read.
        aged(&app.db, 0, 1).await;
        assert_eq!(expire().await.unwrap(), 0);
        aged(&app.db, 0, 8).await;
        assert_eq!(expire().await.unwrap(), 1);
        assert_eq!((head(&app.db, bob_id).await, entries(&app.db, bob_id).await), (None, 0));
    }
}

/// Makes every head last read `read` days ago and built `built` days ago.
async fn aged(db: &Db, read: i64, built: i64) {
    let ago = |days| chrono::Utc::now() - chrono::TimeDelta::days(days);
    with_pool!(db, |pool| {
        sqlx::query("UPDATE feed_heads SET read_at = $1, built_at = $2")
            .bind(ago(read))
            .bind(ago(built))
            .execute(pool)
            .await
            .unwrap()
            .rows_affected()
    });
}

on_both_stacks! {
    without_worker;

    async fn heads_missing_a_video_are_mended_by_a_restarted_fan_out_or_dropped(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let ann_id = id_of(&app, &ann).await;
        let bob_id = id_of(&app, &bob).await;
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        assert!(feed(&app, &bob).await.is_empty());
        assert_eq!(head(&app.db, bob_id).await, Some((true, true)), "a head of the whole (empty) feed");

        // A fan-out waiting for a retry past bob (its checkpoint), when the video is listed
        // again: it starts over, so bob's head gets the video.
        let id = published(&app, &ann, "Relisted").await;
        let checkpoint = serde_json::json!({ "video_id": id, "after": Uuid::max(), "done": false }).to_string();
        let key = format!("notify_new_video:{id}");
        with_pool!(&app.db, |pool| {
            sqlx::query("UPDATE jobs SET payload = $1 WHERE idempotency_key = $2")
                .bind(&checkpoint)
                .bind(&key)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected()
        });
        assert!(turtlemen_db::notifications::announce_relisted_video(&app.db, id.parse().unwrap()).await.unwrap());
        drain(&app).await;
        assert_eq!(feed(&app, &bob).await, ["Relisted"]);

        // A head built while ann was banned lacks her videos: the unban drops it with its entries.
        turtlemen_db::moderation::ban(&app.db, turtlemen_domain::UserId(ann_id), "spam").await.unwrap();
        with_pool!(&app.db, |pool| sqlx::query("DELETE FROM feed_heads").execute(pool).await.unwrap().rows_affected());
        assert!(feed(&app, &bob).await.is_empty(), "hidden while she is banned");
        assert_eq!(head(&app.db, bob_id).await, Some((true, true)));
        turtlemen_db::moderation::unban(&app.db, turtlemen_domain::UserId(ann_id)).await.unwrap();
        assert_eq!((head(&app.db, bob_id).await, entries(&app.db, bob_id).await), (None, 0));
        assert_eq!(feed(&app, &bob).await, ["Relisted"]);
    }
}

on_both_stacks! {
    async fn concurrent_first_reads_build_one_head_and_agree(app) {
        let fan = turtlemen_db::users::create(&app.db, &new_user("fan")).await.unwrap();
        let plan = SeedPlan { users: 20, channels: 40, videos: 600, subscriptions: 100, follower: Some(fan.id.0), follows: 25, comments: 0 };
        seed(&app.db, &plan).await.unwrap();
        let reads: Vec<_> = (0..8)
            .map(|_| {
                let db = app.db.clone();
                tokio::spawn(async move { turtlemen_db::subscriptions::feed(&db, fan.id, None, 20).await.unwrap() })
            })
            .collect();
        let mut pages = Vec::new();
        for r in reads {
            pages.push(r.await.unwrap().iter().map(|v| v.id).collect::<Vec<_>>());
        }
        assert_eq!(pages[0].len(), 20);
        assert!(pages.iter().all(|p| *p == pages[0]), "every reader saw the same page");
        let heads: i64 = with_pool!(&app.db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM feed_heads WHERE ready = TRUE").fetch_one(pool).await.unwrap()
        });
        assert_eq!(heads, 1);
        let tokens: i64 = with_pool!(&app.db, |pool| {
            sqlx::query_scalar("SELECT COUNT(DISTINCT token) FROM feed_entries WHERE user_id = $1")
                .bind(fan.id.0)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert_eq!(tokens, 1, "one builder's entries");
        assert_eq!(head(&app.db, fan.id.0).await, Some((true, false)), "the follower's feed is longer than a head");
        assert_eq!(entries(&app.db, fan.id.0).await, i64::from(turtlemen_db::feed_heads::HEAD_SIZE));
        let again = turtlemen_db::subscriptions::feed(&app.db, fan.id, None, 20).await.unwrap();
        assert_eq!(again.iter().map(|v| v.id).collect::<Vec<_>>(), pages[0], "the head answers the same page");
    }
}
