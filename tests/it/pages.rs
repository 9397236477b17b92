//! The video pages through the gateway, on both stacks: who sees a watch page (a private video
//! is a 404 page for anyone but its owner), the signed-in viewer in the navigation, the home
//! page listing public videos, and the studio's forms — edit and delete refused without the
//! right CSRF token (missing, forged, another user's) and applied with it.

use crate::gateway::Browser;
use crate::helpers::TestApp;
use crate::on_both_stacks;
use crate::uploads::{create, metadata, signed_in, tus};
use reqwest::{Method, StatusCode};
use turtlemen_db::videos::{self as rows, Processed, Rendition};
use uuid::Uuid;

/// A page as the browser gets it: status and HTML.
async fn page(app: &TestApp, who: &Browser, path: &str) -> (StatusCode, String) {
    let res = who.get(app, path).await;
    (res.status(), res.text().await.unwrap())
}

async fn post_form(app: &TestApp, who: &Browser, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("cookie", who.cookie_header())
        .header("accept", "text/html")
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn get_json(app: &TestApp, who: &Browser, path: &str) -> (u16, serde_json::Value) {
    let res = app.client.get(app.url(path)).header("cookie", who.cookie_header()).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// The value of the first hidden `csrf` field in a page.
fn csrf(html: &str) -> String {
    let needle = "name=\"csrf\" value=\"";
    let start = html.find(needle).expect("a CSRF field") + needle.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Creates a video with `privacy` (still uploading: no bytes sent).
async fn video(app: &TestApp, who: &Browser, title: &str, privacy: &str) -> String {
    let res = tus(app, who, Method::POST, "/api/v1/uploads")
        .header("upload-length", "1000")
        .header("upload-metadata", metadata(&[("filename", "clip.mp4"), ("title", title), ("privacy", privacy)]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.headers()["video-id"].to_str().unwrap().to_owned()
}

/// Makes a video ready as processing would (the media files themselves are not needed here).
async fn make_ready(app: &TestApp, id: &str) {
    let id = Uuid::parse_str(id).unwrap();
    rows::mark_uploaded(&app.db, id).await.unwrap();
    let p = Processed {
        duration_secs: 125.4,
        width: 640,
        height: 360,
        renditions: vec![Rendition { name: "360p".into(), width: 640, height: 360, bandwidth: 900_000 }],
        has_poster: true,
        has_storyboard: true,
    };
    rows::mark_ready(&app.db, id, &p).await.unwrap();
}

on_both_stacks! {
    async fn a_private_video_page_is_only_for_its_owner(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let id = video(&app, &ann, "Ann's <secret>", "private").await;
        make_ready(&app, &id).await;
        let path = format!("/videos/{id}");

        let (status, html) = page(&app, &ann, &path).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Ann&#39;s &#60;secret&#62;") || html.contains("Ann&#x27;s &lt;secret&gt;"), "{html}");
        assert!(html.contains("<video"), "{html}");
        assert!(html.contains("/hls/master.m3u8\" type=\"application/vnd.apple.mpegurl\""), "{html}");
        assert!(html.contains("href=\"/studio/videos/"), "the owner gets an edit link");
        assert!(html.contains("Sign out"), "the nav shows the signed-in user");

        for (who, name) in [(&bob, "another user"), (&Browser::default(), "a visitor")] {
            let (status, html) = page(&app, who, &path).await;
            assert_eq!(status, 404, "{name}: {html}");
            assert!(!html.contains("secret"), "{name} learns nothing");
            assert!(!html.contains("m3u8"));
        }
        // Not a video id at all: the same 404 page.
        assert_eq!(page(&app, &ann, "/videos/not-an-id").await.0, 404);
    }

    async fn the_home_page_lists_public_ready_videos(app) {
        let ann = signed_in(&app, "ann").await;
        let public = video(&app, &ann, "Turtles at sea", "public").await;
        let unlisted = video(&app, &ann, "Hidden turtles", "unlisted").await;
        let uploading = video(&app, &ann, "Half-uploaded turtles", "public").await;
        make_ready(&app, &public).await;
        make_ready(&app, &unlisted).await;

        let (status, html) = page(&app, &Browser::default(), "/").await;
        assert_eq!(status, 200);
        assert!(html.contains("Turtles at sea"), "{html}");
        assert!(html.contains(&format!("href=\"/videos/{public}\"")));
        assert!(html.contains("datetime=\"PT0H2M5S\">2:05</time>"), "duration: {html}");
        assert!(html.contains("/poster.jpg"), "a thumbnail");
        assert!(html.contains("class=\"channel\" href=\"/@ann\">ann<"), "the channel's name: {html}");
        assert!(!html.contains("Hidden turtles"), "unlisted videos are not listed");
        assert!(!html.contains("Half-uploaded"), "nor unfinished ones");
        assert!(html.contains("href=\"/oauth2/start?rd=/\""), "a visitor is offered to sign in");
        let _ = uploading;

        // The unlisted one plays for anyone with the link.
        assert_eq!(page(&app, &Browser::default(), &format!("/videos/{unlisted}")).await.0, 200);
    }

    async fn studio_forms_need_the_right_csrf_token(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let (_, id) = create(&app, &ann, 1000).await;
        video(&app, &bob, "Bob's own", "private").await;

        let (status, list) = page(&app, &ann, "/studio/videos").await;
        assert_eq!(status, 200);
        assert!(list.contains("My clip"), "{list}");
        assert!(list.contains("Uploading"), "{list}");
        let token = csrf(&list);
        let (_, bobs_page) = page(&app, &bob, "/studio/videos").await;
        assert!(!bobs_page.contains("My clip"), "Bob's list has only his videos");
        let bobs_token = csrf(&bobs_page);
        assert_ne!(token, bobs_token, "tokens are per user");

        let edit = format!("/studio/videos/{id}/edit");
        let (status, form) = page(&app, &ann, &edit).await;
        assert_eq!(status, 200);
        assert!(form.contains("value=\"My clip\""), "{form}");
        assert_eq!(page(&app, &bob, &edit).await.0, 404, "someone else's video cannot be edited");

        // Refused: no token, a forged one, Bob's own token on Ann's session.
        let fields = |t: &'static str| vec![("title", t), ("privacy", "public"), ("tags", "a, b")];
        for bad in ["", "123-forged", bobs_token.as_str()] {
            let mut f = fields("Changed");
            f.push(("csrf", bad));
            let res = post_form(&app, &ann, &edit, &f).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "token {bad:?}");
            assert!(res.text().await.unwrap().contains("did not come from this site"));
            let res = post_form(&app, &ann, &format!("/studio/videos/{id}/delete"), &[("csrf", bad)]).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "token {bad:?}");
        }
        let (_, v) = get_json(&app, &ann, &format!("/api/v1/videos/{id}")).await;
        assert_eq!(v["title"], "My clip", "nothing changed");

        // A refused change shows the form again with the reason, refilled.
        let long = "x".repeat(101);
        let res = post_form(&app, &ann, &edit, &[("csrf", &token), ("title", &long), ("privacy", "public")]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let html = res.text().await.unwrap();
        assert!(html.contains("title: 1 to 100 characters"), "{html}");
        assert!(html.contains(&long), "the form is refilled");

        // With the token: saved.
        let mut f = fields("Changed");
        f.push(("csrf", &token));
        f.push(("licence", "CC BY 4.0"));
        let res = post_form(&app, &ann, &edit, &f).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()["location"], format!("{edit}?saved=1").as_str());
        let (_, v) = get_json(&app, &ann, &format!("/api/v1/videos/{id}")).await;
        assert_eq!(v["title"], "Changed");
        assert_eq!(v["privacy"], "public");
        assert_eq!(v["tags"], serde_json::json!(["a", "b"]));
        assert_eq!(v["licence"], "CC BY 4.0");
        assert_eq!(v["category"], serde_json::Value::Null, "an empty field clears it");

        // Bob cannot delete it, even with his own valid token; Ann can.
        let res = post_form(&app, &bob, &format!("/studio/videos/{id}/delete"), &[("csrf", &bobs_token)]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = post_form(&app, &ann, &format!("/studio/videos/{id}/delete"), &[("csrf", &token)]).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()["location"], "/studio/videos?deleted=1");
        let (status, list) = page(&app, &ann, "/studio/videos?deleted=1").await;
        assert_eq!(status, 200);
        assert!(list.contains("Video deleted."));
        assert!(!list.contains("Changed"), "{list}");
        assert_eq!(get_json(&app, &ann, &format!("/api/v1/videos/{id}")).await.0, 404);
    }

    async fn pages_that_need_an_account_send_visitors_to_sign_in(app) {
        for path in ["/upload", "/studio/videos"] {
            let res = Browser::default().get(&app, path).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
            let to = res.headers()["location"].to_str().unwrap();
            assert!(to.starts_with("/oauth2/start?rd="), "{path} → {to}");
        }
        let ann = signed_in(&app, "ann").await;
        let (status, html) = page(&app, &ann, "/upload").await;
        assert_eq!(status, 200);
        assert!(html.contains("type=\"file\""));
        assert!(html.contains("/static/tus.min."), "the uploader is named");
        assert!(html.contains("/static/upload."), "the upload script is loaded");
        assert!(html.contains("My videos"), "the signed-in nav");
    }
}
