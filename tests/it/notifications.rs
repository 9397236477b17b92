//! Notifications on both stacks, produced through the real job queue and worker: a new public
//! video reaches every subscriber once (private and unlisted ones reach nobody; one made public
//! later, once), a new subscriber reaches the channel's owner once however often they toggle,
//! each recipient's settings are honoured; the fan-out resumes after a worker dies mid-way with
//! no duplicate and nobody missed; who may read and mark what (visitor, another user, the owner,
//! token scopes); tampered cursors; the bell and the notifications page with their CSRF forms.

use crate::channels::{call, new_video, publish};
use crate::gateway::{Browser, field};
use crate::helpers::TestApp;
use crate::on_both_stacks;
use crate::uploads::signed_in;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};
use turtlemen_db::jobs::{self, JobState};
use turtlemen_db::notifications::{NOTIFY_NEW_SUBSCRIBER, NOTIFY_NEW_VIDEO};
use turtlemen_db::{Db, with_pool};
use turtlemen_worker::notify::{self, Outcome, Progress};
use turtlemen_worker::{Worker, WorkerConfig};
use uuid::Uuid;

/// Runs this build's notification jobs until none is due (the instance runs no worker).
pub async fn drain(app: &TestApp) -> usize {
    Worker::new(app.db.clone(), turtlemen_worker::registry(None), WorkerConfig::default())
        .run_until_idle()
        .await
        .unwrap()
}

/// `who`'s notifications through the API.
async fn inbox(app: &TestApp, who: &Browser) -> Vec<Value> {
    let (status, body) = call(app, Some(who), Method::GET, "/api/v1/me/notifications?limit=100", None).await;
    assert_eq!(status, 200, "{body}");
    body["notifications"].as_array().unwrap().clone()
}

async fn unread(app: &TestApp, who: &Browser) -> u64 {
    let (status, body) = call(app, Some(who), Method::GET, "/api/v1/me/notifications/unread", None).await;
    assert_eq!(status, 200, "{body}");
    body["unread"].as_u64().unwrap()
}

/// Rows of `kind` about `subject` in the table, whoever they are for (duplicates would show).
async fn rows_about(db: &Db, kind: &str, subject: Uuid) -> i64 {
    with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE kind = $1 AND subject_id = $2")
            .bind(kind)
            .bind(subject)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// `n` users `fan1…fanN` following `channel`, inserted in bulk.
async fn seed_fans(db: &Db, channel: Uuid, n: i64) {
    let now = chrono::Utc::now();
    match db {
        Db::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO users (id, username, username_key, email, email_key, display_name, created_at, updated_at) \
                 SELECT gen_random_uuid(), 'fan' || i, 'fan' || i, 'fan' || i || '@example.org', 'fan' || i || '@example.org', \
                 'Fan ' || i, $2, $2 FROM generate_series(1, $1) AS i",
            )
            .bind(n)
            .bind(now)
            .execute(pool)
            .await
            .unwrap();
        }
        Db::Sqlite(pool) => {
            sqlx::query(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) \
                 INSERT INTO users (id, username, username_key, email, email_key, display_name, created_at, updated_at) \
                 SELECT randomblob(16), 'fan' || i, 'fan' || i, 'fan' || i || '@example.org', 'fan' || i || '@example.org', \
                 'Fan ' || i, $2, $2 FROM s",
            )
            .bind(n)
            .bind(now)
            .execute(pool)
            .await
            .unwrap();
        }
    }
    with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO subscriptions (user_id, channel_id, created_at) \
             SELECT id, $1, $2 FROM users WHERE username_key LIKE 'fan%'",
        )
        .bind(channel)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap()
    });
}

fn user_id(me: &Value) -> Uuid {
    Uuid::parse_str(me["id"].as_str().unwrap()).unwrap()
}

/// Sets a video's privacy through the API as its owner.
pub async fn privacy(app: &TestApp, who: &Browser, video: &str, privacy: &str) {
    let (status, body) =
        call(app, Some(who), Method::PATCH, &format!("/api/v1/videos/{video}"), Some(json!({"privacy": privacy})))
            .await;
    assert_eq!(status, 200, "{body}");
}

on_both_stacks! {
    without_worker;

    async fn a_new_public_video_notifies_each_subscriber_once_and_private_ones_nobody(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let cat = signed_in(&app, "cat").await;
        for who in [&bob, &cat] {
            assert_eq!(call(&app, Some(who), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        }
        // Cat wants no new-video notifications.
        let (status, s) = call(&app, Some(&cat), Method::PUT, "/api/v1/me/notifications/settings", Some(json!({"new_video": false}))).await;
        assert_eq!((status, s["new_video"].as_bool(), s["new_subscriber"].as_bool()), (200, Some(false), Some(true)), "{s}");

        // Private and unlisted videos, even playable, produce nothing.
        let private = new_video(&app, &ann, "Secret", "private", None).await;
        let unlisted = new_video(&app, &ann, "Hidden", "unlisted", None).await;
        for id in [&private, &unlisted] {
            publish(&app, id).await;
            assert!(!turtlemen_db::notifications::announce_video(&app.db, id.parse().unwrap()).await.unwrap());
        }
        drain(&app).await;
        assert!(inbox(&app, &bob).await.iter().all(|n| n["kind"] != "new_video"), "nothing about private or unlisted videos");

        // Made public later (through the API), it notifies once; the fan-out is a queued job.
        privacy(&app, &ann, &private, "public").await;
        assert!(inbox(&app, &bob).await.iter().all(|n| n["kind"] != "new_video"), "never inline in the request");
        assert_eq!(drain(&app).await, 1);
        let got = inbox(&app, &bob).await;
        let news: Vec<&Value> = got.iter().filter(|n| n["kind"] == "new_video").collect();
        assert_eq!(news.len(), 1, "{got:?}");
        assert_eq!(news[0]["read"], false);
        assert_eq!(news[0]["video"]["title"], "Secret");
        assert_eq!(news[0]["video"]["watch_url"], format!("/videos/{private}"));
        assert_eq!((news[0]["channel"]["handle"].as_str(), news[0]["channel"]["url"].as_str()), (Some("ann"), Some("/@ann")));
        assert!(inbox(&app, &cat).await.iter().all(|n| n["kind"] != "new_video"), "cat turned them off");
        assert_eq!(unread(&app, &bob).await, 1);

        // Private again: the notification is hidden (no leak), not duplicated when public again.
        privacy(&app, &ann, &private, "private").await;
        assert!(inbox(&app, &bob).await.is_empty());
        assert_eq!(unread(&app, &bob).await, 0);
        privacy(&app, &ann, &private, "public").await;
        drain(&app).await;
        assert_eq!(inbox(&app, &bob).await.len(), 1);
        assert_eq!(rows_about(&app.db, "new_video", private.parse().unwrap()).await, 1, "one row ever");
        // Deleted: gone from the list and the count.
        assert_eq!(call(&app, Some(&ann), Method::DELETE, &format!("/api/v1/videos/{private}"), None).await.0, 204);
        assert!(inbox(&app, &bob).await.is_empty());
        assert_eq!(unread(&app, &bob).await, 0);
    }

    async fn a_new_subscriber_notifies_the_owner_once_however_often_they_toggle(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let cat = signed_in(&app, "cat").await;
        for _ in 0..5 {
            assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
            assert_eq!(call(&app, Some(&bob), Method::DELETE, "/api/v1/me/subscriptions/ann", None).await.0, 204);
            drain(&app).await;
        }
        assert!(inbox(&app, &ann).await.is_empty(), "unsubscribed before the job ran: nothing");
        for _ in 0..5 {
            assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
            drain(&app).await;
            assert_eq!(call(&app, Some(&bob), Method::DELETE, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        }
        let got = inbox(&app, &ann).await;
        assert_eq!(got.len(), 1, "no storm: {got:?}");
        assert_eq!(got[0]["kind"], "new_subscriber");
        assert_eq!((got[0]["subscriber"]["username"].as_str(), got[0]["subscriber"]["url"].as_str()), (Some("bob"), Some("/@bob")));
        assert_eq!(got[0]["channel"]["handle"], "ann");
        let jobs = jobs::list(&app.db, &jobs::JobFilter { kind: Some(NOTIFY_NEW_SUBSCRIBER.as_str()), ..Default::default() }).await.unwrap();
        assert_eq!(jobs.len(), 1, "one job per follower and channel, queued again, never a second");

        // The owner's settings are honoured.
        let (status, _) = call(&app, Some(&ann), Method::PUT, "/api/v1/me/notifications/settings", Some(json!({"new_subscriber": false}))).await;
        assert_eq!(status, 200);
        assert_eq!(call(&app, Some(&cat), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        drain(&app).await;
        assert_eq!(inbox(&app, &ann).await.len(), 1, "turned off: nothing about cat");
        let (_, s) = call(&app, Some(&ann), Method::GET, "/api/v1/me/notifications/settings", None).await;
        assert_eq!(s, json!({"new_video": true, "live_started": true, "new_subscriber": false, "comment_reply": true, "comment_mention": true, "video_comment": true}));
    }

    async fn the_fan_out_resumes_after_a_crash_without_duplicates_or_misses(app) {
        let ann = signed_in(&app, "ann").await;
        let (_, me) = call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await;
        let channel = user_id(&me);
        seed_fans(&app.db, channel, 2500).await;
        // One fan turned new-video notifications off.
        let quiet: Uuid = with_pool!(&app.db, |pool| {
            sqlx::query_scalar("SELECT id FROM users WHERE username_key = 'fan1234'").fetch_one(pool).await.unwrap()
        });
        turtlemen_db::notifications::set_enabled(&app.db, turtlemen_domain::UserId(quiet), turtlemen_db::notifications::Kind::NewVideo, false).await.unwrap();
        let video = new_video(&app, &ann, "For everyone", "private", None).await;
        publish(&app, &video).await;
        privacy(&app, &ann, &video, "public").await;
        let video: Uuid = video.parse().unwrap();

        // Worker A claims the fan-out, writes one batch, checkpoints, and dies.
        let lease_for = Duration::from_secs(1);
        let claimed = jobs::claim(&app.db, &jobs::Claim { owner: Uuid::now_v7(), kinds: &[NOTIFY_NEW_VIDEO.as_str()], limit: 1, lease: lease_for }).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let job = &claimed[0];
        let start: Progress = serde_json::from_value(job.payload.clone()).unwrap();
        assert_eq!((start.subject, start.after, start.done), (notify::Announced::Video(video), None, false));
        let outcome = notify::fan_out(&app.db, &job.lease, start, notify::FAN_OUT_BATCH, Some(1)).await.unwrap();
        assert_eq!(outcome, Outcome::Paused);
        let saved: Progress = serde_json::from_value(jobs::payload(&app.db, job.lease.job_id).await.unwrap().unwrap()).unwrap();
        let cursor = saved.after.expect("the checkpoint names the last subscriber done");
        assert!(!saved.done);
        let skipped = i64::from(quiet <= cursor);
        assert_eq!(rows_about(&app.db, "new_video", video).await, 1000 - skipped, "one batch of 1,000 (the quiet fan skipped)");

        // A subscriber whose id sorts before the checkpoint arrives after the crash: a fan-out
        // that started over would reach them; the resumed one starts after the checkpoint.
        let early = Uuid::from_u128(1);
        let now = chrono::Utc::now();
        with_pool!(&app.db, |pool| {
            sqlx::query("INSERT INTO users (id, username, username_key, email, email_key, display_name, created_at, updated_at) VALUES ($1, 'late', 'late', 'l@example.org', 'l@example.org', 'Late', $2, $2)")
                .bind(early).bind(now).execute(pool).await.unwrap();
            sqlx::query("INSERT INTO subscriptions (user_id, channel_id, created_at) VALUES ($1, $2, $3)")
                .bind(early).bind(channel).bind(now).execute(pool).await.unwrap();
        });
        assert!(early < cursor);

        // Nobody renews A's lease: once it expires, a real worker takes the job over.
        let config = WorkerConfig { lease: lease_for, ..WorkerConfig::default() };
        let worker = Worker::new(app.db.clone(), turtlemen_worker::registry(None), config);
        assert_eq!(worker.run_until_idle().await.unwrap(), 0, "A's lease still holds");
        let wait = SystemTime::from(job.lease_expires_at).duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::sleep(wait + Duration::from_millis(20)).await;
        assert_eq!(worker.run_until_idle().await.unwrap(), 1);

        let done = jobs::get(&app.db, job.lease.job_id).await.unwrap().unwrap();
        assert_eq!((done.state, done.attempts), (JobState::Succeeded, 2));
        let end: Progress = serde_json::from_value(jobs::payload(&app.db, job.lease.job_id).await.unwrap().unwrap()).unwrap();
        assert!(end.done);
        // Everyone once (minus the fan who turned it off), nobody twice, the late one not at all.
        assert_eq!(rows_about(&app.db, "new_video", video).await, 2499);
        let (twice, missing): (i64, i64) = with_pool!(&app.db, |pool| {
            let twice = sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT user_id FROM notifications WHERE subject_id = $1 GROUP BY user_id HAVING COUNT(*) > 1) d")
                .bind(video).fetch_one(pool).await.unwrap();
            let missing = sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions s WHERE s.channel_id = $1 AND s.user_id <> $2 AND s.user_id <> $3 \
                 AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.user_id = s.user_id AND n.subject_id = $4)")
                .bind(channel).bind(quiet).bind(early).bind(video).fetch_one(pool).await.unwrap();
            (twice, missing)
        });
        assert_eq!((twice, missing), (0, 0));
        let quiet_has: i64 = with_pool!(&app.db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1").bind(quiet).fetch_one(pool).await.unwrap()
        });
        assert_eq!(quiet_has, 0, "settings honoured");

        // Made public again, the fan-out starts over (feed heads built meanwhile need the video):
        // nobody hears of it twice, and the late follower the resumed run passed over hears now.
        assert_eq!(call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/videos/{video}"), Some(json!({"privacy": "unlisted"}))).await.0, 200);
        privacy(&app, &ann, &video.to_string(), "public").await;
        assert_eq!(drain(&app).await, 1);
        assert_eq!(rows_about(&app.db, "new_video", video).await, 2500);
        let late: i64 = with_pool!(&app.db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND subject_id = $2").bind(early).bind(video).fetch_one(pool).await.unwrap()
        });
        assert_eq!(late, 1);
    }

    async fn who_may_read_and_mark_what_and_bad_input(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        for i in 0..3 {
            let v = new_video(&app, &ann, &format!("Clip {i}"), "private", None).await;
            publish(&app, &v).await;
            privacy(&app, &ann, &v, "public").await;
        }
        drain(&app).await;
        let bobs = inbox(&app, &bob).await;
        assert_eq!(bobs.len(), 3);
        let anns = inbox(&app, &ann).await;
        assert_eq!(anns.len(), 1, "ann's new subscriber");
        let anns_id = anns[0]["id"].as_str().unwrap().to_owned();

        // A visitor: 401 everywhere.
        for (method, path, body) in [
            (Method::GET, "/api/v1/me/notifications", None),
            (Method::GET, "/api/v1/me/notifications/unread", None),
            (Method::POST, "/api/v1/me/notifications/read", Some(json!({"all": true}))),
            (Method::GET, "/api/v1/me/notifications/settings", None),
            (Method::PUT, "/api/v1/me/notifications/settings", Some(json!({"new_video": false}))),
        ] {
            let (status, body) = call(&app, None, method.clone(), path, body).await;
            assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")), "{method} {path}");
        }
        // Another user's id marks nothing; the owner's does.
        let (status, r) = call(&app, Some(&bob), Method::POST, "/api/v1/me/notifications/read", Some(json!({"ids": [anns_id]}))).await;
        assert_eq!((status, r["marked"].as_u64()), (200, Some(0)), "{r}");
        assert_eq!(inbox(&app, &ann).await[0]["read"], false);
        let (status, r) = call(&app, Some(&ann), Method::POST, "/api/v1/me/notifications/read", Some(json!({"ids": [anns_id]}))).await;
        assert_eq!((status, r["marked"].as_u64(), r["unread"].as_u64()), (200, Some(1), Some(0)), "{r}");
        assert_eq!(inbox(&app, &ann).await[0]["read"], true);

        // Paging with the signed cursor; a tampered or foreign one is 400.
        let (status, first) = call(&app, Some(&bob), Method::GET, "/api/v1/me/notifications?limit=2", None).await;
        assert_eq!(status, 200);
        assert_eq!(first["notifications"].as_array().unwrap().len(), 2);
        let next = first["next_cursor"].as_str().unwrap().to_owned();
        let (status, second) = call(&app, Some(&bob), Method::GET, &format!("/api/v1/me/notifications?limit=2&cursor={next}"), None).await;
        assert_eq!((status, second["notifications"].as_array().unwrap().len(), second["next_cursor"].is_null()), (200, 1, true));
        let titles: Vec<&str> = first["notifications"].as_array().unwrap().iter().chain(second["notifications"].as_array().unwrap())
            .map(|n| n["video"]["title"].as_str().unwrap()).collect();
        assert_eq!(titles, ["Clip 2", "Clip 1", "Clip 0"], "newest first");
        let mut tampered = next.clone().into_bytes();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let (_, feed) = call(&app, Some(&bob), Method::GET, "/api/v1/me/feed?limit=1", None).await;
        let foreign = feed["next_cursor"].as_str().unwrap().to_owned();
        for bad in [tampered.as_str(), foreign.as_str(), "not-a-cursor", &"A".repeat(5000)] {
            let (status, body) = call(&app, Some(&bob), Method::GET, &format!("/api/v1/me/notifications?cursor={bad}"), None).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_cursor")), "{bad}");
        }

        // Bad bodies: a reason, nothing changed.
        for (body, code) in [
            (json!({}), "invalid_marking"),
            (json!({"all": false}), "invalid_marking"),
            (json!({"ids": [], "all": true}), "invalid_marking"),
            (json!({"ids": ["nope"]}), "invalid_json"),
            (json!({"ids": vec![Uuid::nil(); 101]}), "too_many_ids"),
            (json!({"all": true, "evil": "<script>"}), "invalid_json"),
        ] {
            let (status, r) = call(&app, Some(&bob), Method::POST, "/api/v1/me/notifications/read", Some(body.clone())).await;
            assert_eq!((status, r["error"].as_str()), (400, Some(code)), "{body}: {r}");
            assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        let (status, r) = call(&app, Some(&bob), Method::PUT, "/api/v1/me/notifications/settings", Some(json!({"new_video": "yes"}))).await;
        assert_eq!((status, r["error"].as_str()), (400, Some("invalid_json")));
        let res = app.client.post(app.url("/api/v1/me/notifications/read")).header("cookie", bob.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded").body("all=true").send().await.unwrap();
        assert_eq!(res.status(), 415, "a cross-site form cannot mark anything");
        assert_eq!(unread(&app, &bob).await, 3);
        let (_, r) = call(&app, Some(&bob), Method::POST, "/api/v1/me/notifications/read", Some(json!({"all": true}))).await;
        assert_eq!((r["marked"].as_u64(), r["unread"].as_u64()), (Some(3), Some(0)));

        // Token scopes: notifications:read reads but cannot mark.
        let secret = crate::scopes::third_party(&app, "app").await;
        let browser = app.browser();
        crate::auth::sign_in(&app, &browser, "bob").await;
        let reader = crate::scopes::access(&crate::scopes::tokens_for(&app, &browser, "app", &secret, "openid notifications:read").await);
        let res = app.client.get(app.url("/api/v1/me/notifications")).bearer_auth(&reader).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let res = app.client.post(app.url("/api/v1/me/notifications/read")).bearer_auth(&reader).json(&json!({"all": true})).send().await.unwrap();
        crate::scopes::refused_for_scope(res, "notifications:write").await;
        let res = app.client.put(app.url("/api/v1/me/notifications/settings")).bearer_auth(&reader).json(&json!({"new_video": false})).send().await.unwrap();
        crate::scopes::refused_for_scope(res, "notifications:write").await;
        let writer = crate::scopes::access(&crate::scopes::tokens_for(&app, &browser, "app", &secret, "openid notifications:write").await);
        let res = app.client.put(app.url("/api/v1/me/notifications/settings")).bearer_auth(&writer).json(&json!({"new_video": false})).send().await.unwrap();
        assert_eq!(res.status(), 200, "write includes read: {:?}", res.text().await);
    }

    async fn the_bell_and_the_notifications_page(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        let v = new_video(&app, &ann, "x", "private", None).await;
        publish(&app, &v).await;
        let (status, _) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/videos/{v}"), Some(json!({"privacy": "public", "title": "<b>bold</b> move"}))).await;
        assert_eq!(status, 200);
        drain(&app).await;

        // The bell, with its accessible name, on every page of a signed-in viewer.
        let home = bob.get(&app, &app.url("/")).await.text().await.unwrap();
        assert!(home.contains("aria-label=\"Notifications, 1 unread\""), "{home}");
        let visitor = app.get_page("/").await.text().await.unwrap();
        assert!(!visitor.contains("href=\"/notifications\""), "no bell for a visitor");
        let res = app.get_page("/notifications").await;
        assert!(res.status().is_redirection(), "a visitor is sent to sign in");

        let res = bob.get(&app, &app.url("/notifications")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        assert!(html.contains("&#60;b&#62;bold&#60;/b&#62; move") || html.contains("&lt;b&gt;bold"), "escaped: {html}");
        assert!(!html.contains("<b>bold</b>"));
        assert!(html.contains(&format!("href=\"/videos/{v}\"")), "{html}");
        let csrf = field(&html, "csrf");

        // Forms need the token; with it, marking all read clears the bell.
        let res = bob.post(&app, "/notifications/read-all", &[("csrf", "forged")]).await;
        assert_eq!(res.status(), 403);
        assert_eq!(unread(&app, &bob).await, 1);
        let res = bob.post(&app, "/notifications/read-all", &[("csrf", &csrf)]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/notifications?done=all");
        let home = bob.get(&app, &app.url("/")).await.text().await.unwrap();
        assert!(home.contains("aria-label=\"Notifications, none unread\""), "{home}");

        // Settings by form: an unchecked box turns a kind off.
        let res = bob.post(&app, "/notifications/settings", &[("csrf", &csrf), ("new_subscriber", "on")]).await;
        assert_eq!(res.status(), 303);
        let (_, s) = call(&app, Some(&bob), Method::GET, "/api/v1/me/notifications/settings", None).await;
        assert_eq!(s, json!({"new_video": false, "live_started": false, "new_subscriber": true, "comment_reply": false, "comment_mention": false, "video_comment": false}));
        // Ann marks her one notification read with its own form; another's token fails.
        let html = ann.get(&app, &app.url("/notifications")).await.text().await.unwrap();
        let id = inbox(&app, &ann).await[0]["id"].as_str().unwrap().to_owned();
        assert!(html.contains(&format!("action=\"/notifications/{id}/read\"")), "{html}");
        let res = ann.post(&app, &format!("/notifications/{id}/read"), &[("csrf", &csrf)]).await;
        assert_eq!(res.status(), 403, "bob's token is not ann's");
        let res = ann.post(&app, &format!("/notifications/{id}/read"), &[("csrf", &field(&html, "csrf"))]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(unread(&app, &ann).await, 0);
    }
}
