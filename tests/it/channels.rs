//! Channels, subscriptions and the feed through the gateway, on both stacks: every account has
//! a channel named by its username and may make more (handles unique case-insensitively across
//! users and channels, reserved words refused); who may change a channel (visitor, another
//! user, the owner); hostile text refused or rendered inert; uploads published in a chosen
//! channel; the migration that gives existing accounts and videos their channel.

use crate::gateway::Browser;
use crate::helpers::PASSWORD;
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
    publish_in(&app.db, id).await;
}

/// [`publish`] in the database `db`.
pub async fn publish_in(db: &turtlemen_db::Db, id: &str) {
    let id = Uuid::parse_str(id).unwrap();
    rows::mark_uploaded(db, id).await.unwrap();
    let p = Processed {
        duration_secs: 65.0,
        width: 640,
        height: 360,
        renditions: vec![Rendition { name: "360p".into(), width: 640, height: 360, bandwidth: 900_000 }],
        has_poster: true,
        has_storyboard: false,
    };
    rows::mark_ready(db, id, &p).await.unwrap();
}

fn account(username: &str) -> AccountForm<'_> {
    AccountForm {
        username,
        email: "someone@example.org",
        display_name: None,
        password: PASSWORD,
        role: Role::User,
        promote_if_first: false,
    }
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
        ] {
            let (status, body) = call(&app, Some(&ann), Method::PATCH, "/api/v1/channels/ann", Some(bad.clone())).await;
            assert_eq!(status, expected, "{body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "a reason: {body}");
        }
        // A 10 MB description is refused from its Content-Length, before the body is read (so
        // the request is written by hand: a client sending the body would meet a closed socket).
        let head = format!(
            "PATCH /api/v1/channels/ann HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{\"description\": \"",
            app.addr, ann.cookie_header(), 10 * 1024 * 1024 + 20
        );
        let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut conn, head.as_bytes()).await.unwrap();
        let mut reply = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut conn, &mut reply).await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
        assert!(reply.contains("payload_too_large") || reply.contains("\"message\""), "{reply}");
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

        // The upload page offers the choice once there are several channels.
        let (status, html) = page(&app, Some(&ann), "/upload").await;
        assert_eq!(status, 200);
        assert!(html.contains("<select id=\"channel\" name=\"channel\"") && html.contains("<option value=\"ann\">") && html.contains("<option value=\"anns-diy\">Ann&#39;s DIY (@anns-diy)</option>"), "{html}");
        let (_, html) = page(&app, Some(&bob), "/upload").await;
        assert!(!html.contains("name=\"channel\""), "one channel: no choice");

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

/// A page as `who` sees it (a visitor when `None`): status and HTML.
pub async fn page(app: &TestApp, who: Option<&Browser>, path: &str) -> (u16, String) {
    let mut req = app.client.get(app.url(path)).header("accept", "text/html");
    if let Some(b) = who {
        req = req.header("cookie", b.cookie_header());
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Posts a form as `who`; returns status and `Location`.
pub(crate) async fn post_form(app: &TestApp, who: &Browser, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let (status, location, _) = post_page(app, who, path, form).await;
    (status, location)
}

/// Posts a form as `who`; returns status, `Location` and the page sent back.
pub(crate) async fn post_page(
    app: &TestApp,
    who: &Browser,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let res = app
        .client
        .post(app.url(path))
        .header("cookie", who.cookie_header())
        .header("accept", "text/html")
        .form(form)
        .send()
        .await
        .unwrap();
    let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (res.status().as_u16(), location, res.text().await.unwrap())
}

/// The value of the first hidden `csrf` field in a page.
pub(crate) fn csrf(html: &str) -> String {
    let needle = "name=\"csrf\" value=\"";
    let start = html.find(needle).expect("a CSRF field") + needle.len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn subscriber_count(app: &TestApp, handle: &str) -> u64 {
    call(app, None, Method::GET, &format!("/api/v1/channels/{handle}"), None).await.1["subscriber_count"]
        .as_u64()
        .unwrap()
}

on_both_stacks! {
    async fn the_channel_page_shows_the_channel_and_subscribes_without_javascript(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let change = json!({"display_name": "<script>alert('ann')</script> Turtles", "description": "<img src=x onerror=alert(1)>", "links": [{"title": "Shop", "url": "https://example.org/shop"}]});
        assert_eq!(call(&app, Some(&ann), Method::PATCH, "/api/v1/channels/ann", Some(change)).await.0, 200);
        let public = new_video(&app, &ann, "Public turtles", "public", None).await;
        let popular = new_video(&app, &ann, "Popular turtles", "public", None).await;
        let unlisted = new_video(&app, &ann, "Unlisted turtles", "unlisted", None).await;
        let private = new_video(&app, &ann, "Private turtles", "private", None).await;
        let _uploading = new_video(&app, &ann, "Uploading turtles", "public", None).await;
        for id in [&public, &popular, &unlisted, &private] {
            publish(&app, id).await;
        }
        rows::add_views(&app.db, &[(Uuid::parse_str(&popular).unwrap(), 50)]).await.unwrap();

        // A visitor: the channel, its public videos, escaped text, a sign-in link; small page.
        let (status, html) = page(&app, None, "/@ann").await;
        assert_eq!(status, 200, "{html}");
        assert!(html.len() < 50 * 1024, "{} bytes", html.len());
        assert!(!html.contains("<script>alert"), "markup is inert: {html}");
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("0 subscribers"));
        assert!(html.contains("Public turtles") && html.contains("Popular turtles"), "{html}");
        for hidden in ["Unlisted turtles", "Private turtles", "Uploading turtles"] {
            assert!(!html.contains(hidden), "{hidden} is not listed");
        }
        assert!(html.contains("href=\"/oauth2/start?rd=%2F%40ann\""), "sign in and come back: {html}");
        let (_, by_views) = page(&app, None, "/@ann?sort=views").await;
        assert!(by_views.find("Popular turtles").unwrap() < by_views.find("Public turtles").unwrap(), "most viewed first");
        let (_, about) = page(&app, None, "/@ANN?tab=about").await;
        assert!(about.contains("href=\"https://example.org/shop\" rel=\"nofollow noopener ugc\""), "{about}");
        assert!(!about.contains("<img src=x"), "{about}");
        assert_eq!(page(&app, None, "/@nobody-here").await.0, 404);
        assert_eq!(page(&app, None, "/@ann?cursor=forged").await.0, 400);

        // The owner sees no button on their own channel.
        let (_, own) = page(&app, Some(&ann), "/@ann").await;
        assert!(own.contains("This is your channel.") && !own.contains("name=\"csrf\""), "{own}");

        // Another user subscribes with the form, and comes back to the page.
        let (_, html) = page(&app, Some(&bob), "/@ann").await;
        let token = csrf(&html);
        assert!(html.contains("action=\"/@ann/subscription\""), "{html}");
        let (status, _) = post_form(&app, &bob, "/@ann/subscription", &[("csrf", "forged"), ("action", "subscribe"), ("return_to", "/@ann")]).await;
        assert_eq!(status, 403, "a forged token changes nothing");
        let (status, _) = post_form(&app, &ann, "/@ann/subscription", &[("csrf", &token), ("action", "subscribe"), ("return_to", "/@ann")]).await;
        assert_eq!(status, 403, "another user's token changes nothing");
        assert_eq!(subscriber_count(&app, "ann").await, 0);
        let (status, location) = post_form(&app, &bob, "/@ann/subscription", &[("csrf", &token), ("action", "subscribe"), ("return_to", "/@ann")]).await;
        assert_eq!((status, location.as_str()), (303, "/@ann?done=subscribed"));
        let (_, html) = page(&app, Some(&bob), &location).await;
        assert!(html.contains("1 subscriber<") && html.contains("Unsubscribe"), "{html}");
        assert_eq!(subscriber_count(&app, "ann").await, 1);

        // The watch page has the same button; it returns to the video; off-site targets are not followed.
        let watch = format!("/videos/{public}");
        let (_, html) = page(&app, Some(&bob), &watch).await;
        assert!(html.contains("href=\"/@ann\"") && html.contains("Unsubscribe"), "{html}");
        let (status, location) = post_form(&app, &bob, "/@ann/subscription", &[("csrf", &token), ("action", "unsubscribe"), ("return_to", &watch)]).await;
        assert_eq!((status, location.as_str()), (303, watch.as_str()));
        assert_eq!(subscriber_count(&app, "ann").await, 0);
        let (status, location) = post_form(&app, &bob, "/@ann/subscription", &[("csrf", &token), ("action", "subscribe"), ("return_to", "//evil.example/")]).await;
        assert_eq!((status, location.as_str()), (303, "/@ann?done=subscribed"));
        let (_, html) = page(&app, None, &watch).await;
        assert!(html.contains("Sign in to subscribe"), "{html}");
    }

    async fn subscriptions_are_idempotent_and_paged_by_a_signed_cursor(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        for handle in ["ann-one", "ann-two"] {
            assert_eq!(call(&app, Some(&ann), Method::POST, "/api/v1/channels", Some(json!({"handle": handle}))).await.0, 201);
        }
        // The matrix: a visitor, the owner, another user.
        assert_eq!(call(&app, None, Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 401);
        assert_eq!(call(&app, None, Method::DELETE, "/api/v1/me/subscriptions/ann", None).await.0, 401);
        assert_eq!(call(&app, None, Method::GET, "/api/v1/me/subscriptions", None).await.0, 401);
        let (status, body) = call(&app, Some(&ann), Method::PUT, "/api/v1/me/subscriptions/ann-one", None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("own_channel")), "decided: no following yourself");
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/nobody-here", None).await.0, 404);
        for _ in 0..2 {
            assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ANN", None).await.0, 204);
        }
        assert_eq!(subscriber_count(&app, "ann").await, 1, "idempotent");
        for _ in 0..2 {
            assert_eq!(call(&app, Some(&bob), Method::DELETE, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        }
        assert_eq!(subscriber_count(&app, "ann").await, 0, "idempotent");
        // A channel's page: its owner's channels oldest first with this one marked, and whether
        // the viewer follows this one (read with the channel, in one statement).
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann-one", None).await.0, 204);
        for (handle, follows) in [("ann", false), ("ann-one", true), ("ann-two", false)] {
            let (status, html) = page(&app, Some(&bob), &format!("/@{handle}")).await;
            assert_eq!(status, 200, "{html}");
            let list = &html[html.find("class=\"owner-channels\"").expect("the owner's channels")..];
            let list = &list[..list.find("</section>").unwrap()];
            let at = |h: &str| list.find(&format!("href=\"/@{h}\"")).unwrap_or_else(|| panic!("{h} listed: {list}"));
            assert!(at("ann") < at("ann-one") && at("ann-one") < at("ann-two"), "oldest first: {list}");
            assert!(list.contains(&format!("href=\"/@{handle}\" aria-current=\"page\"")), "{handle} marked: {list}");
            assert_eq!(list.matches("aria-current").count(), 1, "{list}");
            assert_eq!(html.contains("Unsubscribe"), follows, "{handle}: {html}");
        }
        let (_, visitor) = page(&app, None, "/@ann-one").await;
        assert!(visitor.contains("class=\"owner-channels\"") && !visitor.contains("Unsubscribe"), "{visitor}");
        assert_eq!(call(&app, Some(&bob), Method::DELETE, "/api/v1/me/subscriptions/ann-one", None).await.0, 204);
        for handle in ["ann", "ann-one", "ann-two"] {
            assert_eq!(call(&app, Some(&bob), Method::PUT, &format!("/api/v1/me/subscriptions/{handle}"), None).await.0, 204);
        }

        // Paged one by one, newest first, with the cursor the server gave.
        let mut seen = Vec::new();
        let mut path = "/api/v1/me/subscriptions?limit=1".to_owned();
        loop {
            let (status, body) = call(&app, Some(&bob), Method::GET, &path, None).await;
            assert_eq!(status, 200, "{body}");
            for s in body["subscriptions"].as_array().unwrap() {
                seen.push(s["channel"]["handle"].as_str().unwrap().to_owned());
            }
            match body["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/me/subscriptions?limit=1&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen, vec!["ann-two", "ann-one", "ann"]);
        let (_, first) = call(&app, Some(&bob), Method::GET, "/api/v1/me/subscriptions?limit=1", None).await;
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        // Forged, tampered and foreign cursors are refused.
        let mut tampered = cursor.clone().into_bytes();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in ["forged", "AAAA", tampered.as_str(), &"A".repeat(500), "%00"] {
            let (status, body) = call(&app, Some(&bob), Method::GET, &format!("/api/v1/me/subscriptions?cursor={bad}"), None).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_cursor")), "{bad}: {body}");
            let (status, _) = call(&app, Some(&bob), Method::GET, &format!("/api/v1/me/feed?cursor={bad}"), None).await;
            assert_eq!(status, 400, "{bad}");
        }
        let (status, _) = call(&app, Some(&bob), Method::GET, &format!("/api/v1/me/feed?cursor={cursor}"), None).await;
        assert_eq!(status, 400, "a subscriptions cursor is no feed cursor");
    }

    async fn the_feed_shows_only_public_videos_of_followed_channels_newest_first(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let carl = signed_in(&app, "carl").await;
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        let older = new_video(&app, &ann, "Older public", "public", None).await;
        let unlisted = new_video(&app, &ann, "Unlisted one", "unlisted", None).await;
        let private = new_video(&app, &ann, "Private one", "private", None).await;
        let _uploading = new_video(&app, &ann, "Still uploading", "public", None).await;
        let elsewhere = new_video(&app, &carl, "Not followed", "public", None).await;
        for id in [&older, &unlisted, &private, &elsewhere] {
            publish(&app, id).await;
        }
        let newer = new_video(&app, &ann, "Newer public", "public", None).await;
        publish(&app, &newer).await;
        // A public video that turns private afterwards leaves the feed too.
        let hidden_later = new_video(&app, &ann, "Hidden later", "public", None).await;
        publish(&app, &hidden_later).await;
        assert_eq!(call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/videos/{hidden_later}"), Some(json!({"privacy": "private"}))).await.0, 200);

        assert_eq!(call(&app, None, Method::GET, "/api/v1/me/feed", None).await.0, 401);
        let mut ids = Vec::new();
        let mut path = "/api/v1/me/feed?limit=1".to_owned();
        loop {
            let (status, body) = call(&app, Some(&bob), Method::GET, &path, None).await;
            assert_eq!(status, 200, "{body}");
            for v in body["videos"].as_array().unwrap() {
                assert_eq!(v["privacy"], "public");
                ids.push(v["id"].as_str().unwrap().to_owned());
            }
            match body["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/me/feed?limit=1&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(ids, vec![newer.clone(), older.clone()], "only public, playable videos of followed channels, newest first");
        let (_, empty) = call(&app, Some(&carl), Method::GET, "/api/v1/me/feed", None).await;
        assert_eq!(empty["videos"].as_array().map(Vec::len), Some(0));

        // The page: cards, and "new since your last visit" from the second visit on.
        let (status, html) = page(&app, Some(&bob), "/subscriptions").await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Newer public") && html.contains("Older public") && !html.contains("Private one") && !html.contains("Unlisted one"), "{html}");
        assert!(html.contains("href=\"/@ann\"") && html.contains("1:05") && html.contains("/poster.jpg") && html.contains("0 views"), "{html}");
        assert!(!html.contains("class=\"new-mark\""), "nothing is new on a first visit");
        let bob_id = Uuid::parse_str(call(&app, Some(&bob), Method::GET, "/api/v1/me", None).await.1["id"].as_str().unwrap()).unwrap();
        let two_hours_ago = chrono::Utc::now() - chrono::TimeDelta::hours(2);
        let three_hours_ago = chrono::Utc::now() - chrono::TimeDelta::hours(3);
        turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query("UPDATE feed_visits SET visited_at = $1 WHERE user_id = $2").bind(two_hours_ago).bind(bob_id).execute(pool).await.unwrap();
            sqlx::query("UPDATE videos SET published_at = $1 WHERE id = $2").bind(three_hours_ago).bind(Uuid::parse_str(&older).unwrap()).execute(pool).await.unwrap();
        });
        let (_, html) = page(&app, Some(&bob), "/subscriptions").await;
        assert_eq!(html.matches("class=\"new-mark\"").count(), 1, "only the video published since the last visit: {html}");
        assert!(html.contains("1 new since your last visit."), "{html}");
        let (_, again) = page(&app, Some(&bob), "/subscriptions").await;
        assert_eq!(again.matches("class=\"new-mark\"").count(), 1, "a reload within the visit keeps the mark");
        // The visit is read with the head's page; without a head (this open builds it again) it
        // is read on its own, with the same result.
        turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query("DELETE FROM feed_heads WHERE user_id = $1").bind(bob_id).execute(pool).await.unwrap();
        });
        let (_, rebuilt) = page(&app, Some(&bob), "/subscriptions").await;
        assert_eq!(rebuilt.matches("class=\"new-mark\"").count(), 1, "{rebuilt}");
        let (_, from_head) = page(&app, Some(&bob), "/subscriptions").await;
        assert_eq!(from_head.matches("class=\"new-mark\"").count(), 1, "{from_head}");
        assert_eq!(page(&app, Some(&bob), "/subscriptions?cursor=forged").await.0, 400);
    }
}

/// Many concurrent subscribes and unsubscribes of the same channels, including the same pair at
/// once: the counter ends equal to the rows.
async fn the_subscriber_count_stays_exact_under_concurrent_toggles(stack: Stack) {
    let Some(app) = TestApp::spawn(stack).await else { return };
    let owner = turtlemen_db::users::create(&app.db, &new_user("owner")).await.unwrap();
    let channel = owner.id.0;
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(turtlemen_db::users::create(&app.db, &new_user(&format!("fan{i}"))).await.unwrap().id);
    }
    let mut tasks = Vec::new();
    for round in 0..6u32 {
        for (i, user) in users.iter().enumerate() {
            for copy in 0..2u32 {
                let db = app.db.clone();
                let user = *user;
                // Both copies of a pair race each other with the same or opposite action.
                let on = (round + i as u32 + copy * (i as u32 % 2)).is_multiple_of(2);
                tasks.push(tokio::spawn(async move {
                    if on {
                        turtlemen_db::subscriptions::subscribe(&db, user, channel).await.unwrap();
                    } else {
                        turtlemen_db::subscriptions::unsubscribe(&db, user, channel).await.unwrap();
                    }
                }));
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = turtlemen_db::subscriptions::count_rows(&app.db, channel).await.unwrap();
    let counted = turtlemen_db::channels::get(&app.db, channel).await.unwrap().unwrap().subscriber_count;
    assert_eq!(counted, u64::try_from(rows).unwrap(), "the counter equals COUNT(*)");
}

pub fn new_user(name: &str) -> turtlemen_db::users::NewUser {
    turtlemen_db::users::NewUser {
        username: turtlemen_domain::Username::parse(name).unwrap(),
        email: turtlemen_domain::Email::parse(&format!("{name}@example.org")).unwrap(),
        display_name: name.to_owned(),
        password_hash: None,
        role: Role::User,
        promote_if_first: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_subscriber_count_stays_exact_under_concurrent_toggles_on_sqlite() {
    the_subscriber_count_stays_exact_under_concurrent_toggles(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_subscriber_count_stays_exact_under_concurrent_toggles_on_postgres() {
    the_subscriber_count_stays_exact_under_concurrent_toggles(Stack::External).await;
}

on_both_stacks! {
    async fn the_feed_probes_the_partial_index_per_followed_channel(app) {
        let owner = turtlemen_db::users::create(&app.db, &new_user("maker")).await.unwrap();
        let fan = turtlemen_db::users::create(&app.db, &new_user("fan")).await.unwrap();
        turtlemen_db::subscriptions::subscribe(&app.db, fan.id, owner.id.0).await.unwrap();
        let plan = turtlemen_db::subscriptions::feed_plan(&app.db, fan.id).await.unwrap().join("\n");
        assert!(plan.contains("videos_channel_published"), "the feed reads videos through the partial index:\n{plan}");
        assert!(!plan.contains("SCAN v\n") && !plan.contains("Seq Scan on videos"), "no scan of every video:\n{plan}");
    }
}

// Home lists (recent, trending) hold only videos that can be played: one whose processing
// failed after it became playable keeps its `published_at` but leaves them.
on_both_stacks! {
    async fn a_video_that_failed_after_it_was_playable_leaves_the_home_lists(app) {
        let ann = signed_in(&app, "ann").await;
        let id = new_video(&app, &ann, "Broken turtles", "public", None).await;
        publish(&app, &id).await;
        let listed = |body: Value| body["videos"].as_array().unwrap().iter().any(|v| v["id"] == id.as_str());
        for sort in ["recent", "trending"] {
            let (status, body) = call(&app, None, Method::GET, &format!("/api/v1/videos?sort={sort}"), None).await;
            assert_eq!(status, 200, "{body}");
            assert!(listed(body), "a playable public video is listed ({sort})");
        }
        rows::mark_failed(&app.db, Uuid::parse_str(&id).unwrap(), "the file is damaged").await.unwrap();
        for sort in ["recent", "trending"] {
            let (_, body) = call(&app, None, Method::GET, &format!("/api/v1/videos?sort={sort}"), None).await;
            assert!(!listed(body), "a failed video is not listed ({sort})");
        }
        let (_, home) = page(&app, None, "/").await;
        assert!(!home.contains("Broken turtles"), "{home}");
    }
}
