//! Channels, subscriptions and the feed through the gateway, on both stacks: every account has
//! a channel named by its username and may make more (handles unique case-insensitively across
//! users and channels, reserved words refused); who may change a channel (visitor, another
//! user, the owner); hostile text refused or rendered inert; uploads published in a chosen
//! channel; the migration that gives existing accounts and videos their channel.

use crate::gateway::{Browser, PASSWORD};
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::on_both_stacks;
use crate::uploads::{metadata, signed_in, tus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use turtlemen_auth::accounts::{self, AccountError, AccountForm};
use turtlemen_db::videos::{self as rows, Processed, Rendition};
use turtlemen_domain::Role;
use uuid::Uuid;

/// An API call as `who` (a visitor when `None`): status and JSON body (`Null` when none).
pub async fn call(
    app: &TestApp,
    who: Option<&Browser>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).header("accept", "application/json");
    if let Some(b) = who {
        req = req.header("cookie", b.cookie_header());
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Creates a video (no bytes sent) with `privacy`, in `channel` when given; returns its id.
pub async fn new_video(app: &TestApp, who: &Browser, title: &str, privacy: &str, channel: Option<&str>) -> String {
    let mut pairs = vec![("filename", "clip.mp4"), ("title", title), ("privacy", privacy)];
    if let Some(c) = channel {
        pairs.push(("channel", c));
    }
    let res = tus(app, who, Method::POST, "/api/v1/uploads")
        .header("upload-length", "1000")
        .header("upload-metadata", metadata(&pairs))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
    res.headers()["video-id"].to_str().unwrap().to_owned()
}

/// Makes a video ready and published as processing would (no media files needed).
pub async fn publish(app: &TestApp, id: &str) {
    let id = Uuid::parse_str(id).unwrap();
    rows::mark_uploaded(&app.db, id).await.unwrap();
    let p = Processed {
        duration_secs: 65.0,
        width: 640,
        height: 360,
        renditions: vec![Rendition { name: "360p".into(), width: 640, height: 360, bandwidth: 900_000 }],
        has_poster: true,
        has_storyboard: false,
    };
    rows::mark_ready(&app.db, id, &p).await.unwrap();
}

fn account(username: &str) -> AccountForm<'_> {
    AccountForm { username, email: "someone@example.org", display_name: None, password: PASSWORD, role: Role::User }
}

on_both_stacks! {
    async fn every_account_has_a_channel_and_may_make_more(app) {
        let ann = signed_in(&app, "ann").await;
        let _bob = signed_in(&app, "bob").await;
        let (status, me) = call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await;
        assert_eq!(status, 200);

        // The personal channel: the username as handle, found in any case, by anyone.
        for path in ["/api/v1/channels/ann", "/api/v1/channels/ANN"] {
            let (status, c) = call(&app, None, Method::GET, path, None).await;
            assert_eq!(status, 200, "{path}: {c}");
            assert_eq!(c["handle"], "ann");
            assert_eq!(c["id"], me["id"], "the personal channel shares the account's id");
            assert_eq!(c["owner"], "ann");
            assert_eq!(c["display_name"], "ann");
            assert_eq!(c["subscriber_count"], 0);
            assert_eq!(c["url"], "/@ann");
        }
        assert_eq!(call(&app, None, Method::GET, "/api/v1/channels/nobody-here", None).await.0, 404);

        // Another channel.
        let (status, c) = call(&app, Some(&ann), Method::POST, "/api/v1/channels",
            Some(json!({"handle": "TurtleTalks", "display_name": "Turtle Talks", "description": "Shells."}))).await;
        assert_eq!(status, 201, "{c}");
        assert_eq!((c["handle"].as_str(), c["display_name"].as_str(), c["description"].as_str()), (Some("TurtleTalks"), Some("Turtle Talks"), Some("Shells.")));
        let (status, c) = call(&app, None, Method::GET, "/api/v1/channels/turtletalks", None).await;
        assert_eq!((status, c["owner"].as_str()), (200, Some("ann")));

        // One namespace for handles and usernames, case-insensitive.
        for taken in ["turtletalks", "BOB", "Ann"] {
            let (status, body) = call(&app, Some(&ann), Method::POST, "/api/v1/channels", Some(json!({"handle": taken}))).await;
            assert_eq!((status, body["error"].as_str()), (409, Some("handle_taken")), "{taken}: {body}");
        }
        let refused = accounts::create(&app.db, account("TURTLETALKS")).await;
        assert!(matches!(refused, Err(AccountError::UsernameTaken)), "a channel's handle is no free username: {refused:?}");
        // Reserved words and bad characters, with a reason.
        for (bad, reason) in [("studio", "reserved"), ("subscriptions", "reserved"), ("admin", "reserved"), ("a b", "letters"), ("<script>", "letters"), ("x", "3 to 32")] {
            let (status, body) = call(&app, Some(&ann), Method::POST, "/api/v1/channels", Some(json!({"handle": bad}))).await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body["message"].as_str().unwrap().contains(reason), "{bad}: {body}");
        }
        let refused = accounts::create(&app.db, account("search")).await;
        assert!(matches!(refused, Err(AccountError::Username(_))), "a reserved handle is no username either: {refused:?}");
        // A visitor cannot create one.
        assert_eq!(call(&app, None, Method::POST, "/api/v1/channels", Some(json!({"handle": "sneaky"}))).await.0, 401);
    }

    async fn only_the_owner_changes_a_channel_and_hostile_text_is_refused(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let change = json!({"display_name": "Ann's <b>Turtles</b>", "description": "<script>alert(1)</script>\nSecond line", "links": [{"title": "Site", "url": "https://example.org/turtles"}]});

        // The authorization matrix: a visitor, another user, the owner.
        let (status, body) = call(&app, None, Method::PATCH, "/api/v1/channels/ann", Some(change.clone())).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")), "{body}");
        let (status, body) = call(&app, Some(&bob), Method::PATCH, "/api/v1/channels/ann", Some(change.clone())).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("not_your_channel")), "{body}");
        assert_eq!(call(&app, None, Method::GET, "/api/v1/channels/ann", None).await.1["display_name"], "ann", "unchanged");
        let (status, c) = call(&app, Some(&ann), Method::PATCH, "/api/v1/channels/ann", Some(change.clone())).await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["display_name"], "Ann's <b>Turtles</b>", "stored as typed, escaped when shown");
        assert_eq!(c["links"][0]["url"], "https://example.org/turtles");
        assert_eq!(call(&app, Some(&ann), Method::PATCH, "/api/v1/channels/nobody-here", Some(json!({}))).await.0, 404);

        // Hostile or oversized input: refused with a reason, nothing changed.
        let big = "x".repeat(10 * 1024 * 1024);
        for (bad, expected) in [
            (json!({"display_name": "evil\u{202e}gnp.exe"}), 400),
            (json!({"display_name": "two\nlines"}), 400),
            (json!({"display_name": "   "}), 400),
            (json!({"display_name": "n".repeat(65)}), 400),
            (json!({"description": "d".repeat(5001)}), 400),
            (json!({"description": "isolate \u{2067}here"}), 400),
            (json!({"links": [{"title": "x", "url": "javascript:alert(1)"}]}), 400),
            (json!({"links": [{"title": "x", "url": "https://user:pw@example.org/"}]}), 400),
            (json!({"links": [{"title": "x", "url": "/relative"}]}), 400),
            (json!({"unknown": 1}), 400),
            (json!({"description": big}), 413),
        ] {
            let (status, body) = call(&app, Some(&ann), Method::PATCH, "/api/v1/channels/ann", Some(bad.clone())).await;
            assert_eq!(status, expected, "{body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "a reason: {body}");
        }
        let res = app.client.patch(app.url("/api/v1/channels/ann")).header("cookie", ann.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded").body("display_name=x").send().await.unwrap();
        assert_eq!(res.status(), 415, "a cross-site form cannot change a channel");
        let (_, c) = call(&app, None, Method::GET, "/api/v1/channels/ann", None).await;
        assert_eq!(c["display_name"], "Ann's <b>Turtles</b>", "nothing changed: {c}");
    }

    async fn uploads_are_published_in_the_chosen_channel(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let (status, _) = call(&app, Some(&ann), Method::POST, "/api/v1/channels", Some(json!({"handle": "anns-diy", "display_name": "Ann's DIY"}))).await;
        assert_eq!(status, 201);

        let default = new_video(&app, &ann, "First", "public", None).await;
        let chosen = new_video(&app, &ann, "Second", "public", Some("Anns-DIY")).await;
        let (_, v) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/videos/{default}"), None).await;
        assert_eq!((v["channel"]["handle"].as_str(), v["channel"]["url"].as_str()), (Some("ann"), Some("/@ann")), "{v}");
        let (_, v) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/videos/{chosen}"), None).await;
        assert_eq!((v["channel"]["handle"].as_str(), v["channel"]["display_name"].as_str()), (Some("anns-diy"), Some("Ann's DIY")), "{v}");
        assert_eq!(v["channel"]["username"], "ann");

        for (channel, status, error) in [("bob", 403, "not_your_channel"), ("no-such-channel", 400, "unknown_channel")] {
            let res = tus(&app, &ann, Method::POST, "/api/v1/uploads")
                .header("upload-length", "1000")
                .header("upload-metadata", metadata(&[("filename", "clip.mp4"), ("channel", channel)]))
                .send().await.unwrap();
            assert_eq!(res.status().as_u16(), status, "{channel}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], error, "{body}");
        }
        let _ = bob;

        // The channel's own list: public, playable videos only.
        publish(&app, &chosen).await;
        let (status, list) = call(&app, None, Method::GET, "/api/v1/channels/anns-diy/videos", None).await;
        assert_eq!(status, 200, "{list}");
        let ids: Vec<&str> = list["videos"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec![chosen.as_str()]);
        let (status, list) = call(&app, None, Method::GET, "/api/v1/channels/ann/videos?sort=views", None).await;
        assert_eq!((status, list["videos"].as_array().map(Vec::len)), (200, Some(0)), "not published yet: {list}");
        assert_eq!(call(&app, None, Method::GET, "/api/v1/channels/ann/videos?sort=best", None).await.0, 400);
    }
}

/// The migration gives every existing account its channel (handle = username, same id) and
/// every existing video its owner's channel, on both engines.
async fn the_migration_gives_existing_accounts_and_videos_a_channel(stack: Stack) {
    let Some((settings, _dir, _schema)) = fresh_settings(stack).await else { return };
    let config = turtlemen_config::Config::resolve(settings).unwrap();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let db = turtlemen::app::open_db(&config, true).await.unwrap();
    let folder = match db.backend() {
        turtlemen_db::Backend::Sqlite => "crates/db/migrations/sqlite",
        turtlemen_db::Backend::Postgres => "crates/db/migrations/postgres",
    };
    let mut before =
        sqlx::migrate::Migrator::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder)).await.unwrap();
    before.migrations =
        before.migrations.iter().filter(|m| m.version < 20261204000008).cloned().collect::<Vec<_>>().into();
    before.set_locking(false);
    let user = Uuid::now_v7();
    let video = Uuid::now_v7();
    let now = chrono::Utc::now();
    turtlemen_db::with_pool!(&db, |pool| {
        before.run(pool).await.unwrap();
        sqlx::query("INSERT INTO users (id, username, username_key, email, email_key, display_name, created_at, updated_at) VALUES ($1, 'Old.Timer', 'old.timer', 'o@example.org', 'o@example.org', 'Old Timer', $2, $2)")
            .bind(user).bind(now).execute(pool).await.unwrap();
        sqlx::query("INSERT INTO videos (id, owner_id, title, privacy, state, original_name, original_bytes, created_at, updated_at) VALUES ($1, $2, 'Old video', 'public', 'ready', 'a.mp4', 1, $3, $3)")
            .bind(video).bind(user).bind(now).execute(pool).await.unwrap();
    });
    db.migrate().await.unwrap();
    let channel = turtlemen_db::channels::find_by_key(&db, "old.timer").await.unwrap().expect("a channel");
    assert_eq!((channel.id, channel.handle.as_str(), channel.display_name.as_str()), (user, "Old.Timer", "Old Timer"));
    let v = rows::get(&db, video).await.unwrap().unwrap();
    assert_eq!((v.channel_id, v.channel_handle.as_str()), (user, "Old.Timer"));
}

#[tokio::test]
async fn the_migration_gives_existing_accounts_and_videos_a_channel_on_sqlite() {
    the_migration_gives_existing_accounts_and_videos_a_channel(Stack::Embedded).await;
}

#[tokio::test]
async fn the_migration_gives_existing_accounts_and_videos_a_channel_on_postgres() {
    the_migration_gives_existing_accounts_and_videos_a_channel(Stack::External).await;
}
