//! The gateway's page cache on both stacks: a public page an anonymous visitor gets is kept for
//! `public_page_max_age_secs` and then fetched again (never later than twice that), a client's
//! `Cache-Control: no-cache` does not get past it, a signed-in viewer's page is never kept nor
//! served to anyone else, and what is not a `200` (a private video's 404) is never kept.

use crate::gateway::Browser;
use crate::helpers::TestApp;
use crate::on_both_stacks;
use crate::uploads::{metadata, signed_in, tus};
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};
use turtlemen_db::videos::{self as rows, Metadata, Privacy, Processed, Rendition};
use uuid::Uuid;

/// A ready video of `who`'s titled `title`, with `privacy`.
async fn ready_video(app: &TestApp, who: &Browser, title: &str, privacy: &str) -> Uuid {
    let res = tus(app, who, Method::POST, "/api/v1/uploads")
        .header("upload-length", "1000")
        .header("upload-metadata", metadata(&[("filename", "clip.mp4"), ("title", title), ("privacy", privacy)]))
        .send()
        .await
        .expect("upload created");
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = Uuid::parse_str(res.headers()["video-id"].to_str().expect("ascii")).expect("a video id");
    rows::mark_uploaded(&app.db, id).await.expect("uploaded");
    let p = Processed {
        duration_secs: 12.0,
        width: 640,
        height: 360,
        renditions: vec![Rendition { name: "360p".into(), width: 640, height: 360, bandwidth: 900_000 }],
        has_poster: true,
        has_storyboard: false,
    };
    rows::mark_ready(&app.db, id, &p).await.expect("ready");
    id
}

async fn retitle(app: &TestApp, id: Uuid, title: &str, privacy: Privacy) {
    let m = Metadata {
        title: title.into(),
        description: String::new(),
        tags: vec![],
        category: None,
        language: None,
        licence: None,
        privacy,
    };
    assert!(rows::update_metadata(&app.db, id, &m).await.expect("updated"));
}

/// An anonymous GET of `path` (with `no-cache` asked, which must not matter): status, its
/// `Cache-Control`, and the page.
async fn anonymous(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let res = app
        .client
        .get(app.url(path))
        .header("accept", "text/html")
        .header("cache-control", "no-cache")
        .send()
        .await
        .expect("answered");
    let cc = res.headers().get("cache-control").map(|v| v.to_str().expect("ascii").to_owned()).unwrap_or_default();
    (res.status(), cc, res.text().await.expect("a page"))
}

on_both_stacks! {
    without_worker;
    async fn anonymous_public_pages_are_kept_a_moment_and_signed_in_pages_never(app) {
        let app = app.restart_with(|s| s.public_page_max_age_secs = Some(1)).await;
        let ann = signed_in(&app, "ann").await;
        let id = ready_video(&app, &ann, "Turtles at dawn", "public").await;
        let watch = format!("/videos/{id}");

        // Rendered once, marked for shared caches, and kept.
        let (status, cc, html) = anonymous(&app, &watch).await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(cc, "public, max-age=0, s-maxage=1");
        assert!(html.contains("Turtles at dawn"));
        assert_eq!(anonymous(&app, "/").await.0, 200);
        let changed = Instant::now();
        retitle(&app, id, "Turtles at dusk", Privacy::Public).await;

        // The owner, signed in, sees the change at once, on a page no cache may keep.
        let res = ann.get(&app, &watch).await;
        assert_eq!(res.headers()["cache-control"], "no-store");
        let own = res.text().await.expect("a page");
        assert!(own.contains("Turtles at dusk") && own.contains("Sign out"), "{own}");

        // A visitor still gets the kept page (no-cache or not): the old title, nobody's name.
        let (_, _, kept) = anonymous(&app, &watch).await;
        if changed.elapsed() < Duration::from_millis(900) {
            assert!(kept.contains("Turtles at dawn"), "kept for a second");
        }
        assert!(!kept.contains("Sign out") && !kept.contains("ann@example.org"), "{kept}");
        let (_, _, home) = anonymous(&app, "/").await;
        assert!(!home.contains("Sign out"), "the signed-in home was not kept for visitors");

        // …and the new title within twice the page's age.
        let deadline = changed + Duration::from_secs(5);
        loop {
            let (_, _, html) = anonymous(&app, &watch).await;
            if html.contains("Turtles at dusk") {
                assert!(changed.elapsed() <= Duration::from_millis(2500), "stale for {:?}", changed.elapsed());
                break;
            }
            assert!(Instant::now() < deadline, "the visitor never saw the new title");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // What is not a 200 is never kept: a private video's 404, then public, is seen at once.
        let hidden = ready_video(&app, &ann, "Not yet", "private").await;
        let path = format!("/videos/{hidden}");
        let (status, cc, _) = anonymous(&app, &path).await;
        assert_eq!(status, 404);
        assert!(!cc.contains("public"), "{cc}");
        retitle(&app, hidden, "Now out", Privacy::Public).await;
        let (status, _, html) = anonymous(&app, &path).await;
        assert_eq!(status, 200);
        assert!(html.contains("Now out"));
    }

    async fn pages_are_not_kept_when_the_age_is_zero(app) {
        let ann = signed_in(&app, "ann").await;
        let id = ready_video(&app, &ann, "Fresh every time", "public").await;
        let watch = format!("/videos/{id}");
        let (status, cc, _) = anonymous(&app, &watch).await;
        assert_eq!(status, 200);
        assert!(!cc.contains("public"), "{cc}");
        retitle(&app, id, "Changed at once", Privacy::Public).await;
        assert!(anonymous(&app, &watch).await.2.contains("Changed at once"));
    }
}
