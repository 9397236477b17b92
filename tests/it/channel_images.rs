//! Channel avatars and banners through the gateway, on both stacks: uploaded by the API and by
//! the edit page's multipart forms (CSRF-checked), re-encoded at fixed sizes with no EXIF left,
//! served immutable under versioned names that a new upload replaces; hostile files (not an
//! image, truncated, a 30,000 × 30,000 PNG bomb, animated GIF/APNG/WebP, an oversized body)
//! refused with a reason and nothing written; who may change a channel's pictures (visitor,
//! another user, the owner, an admin with and without the admin scope, a token without
//! `channels:write`); the channel page shows the pictures and every channel of its owner.

use crate::auth;
use crate::channels::{call, csrf, page};
use crate::gateway::Browser;
use crate::helpers::PASSWORD;
use crate::helpers::TestApp;
use crate::on_both_stacks;
use crate::scopes::{access, third_party, tokens_for};
use crate::uploads::signed_in;
use image::ImageDecoder;
use reqwest::Method;
use serde_json::{Value, json};
use turtlemen_images::fixtures;

/// A raw image upload: `PUT path` with `content_type`, as `who` (a cookie session) or a token.
async fn put_image(app: &TestApp, who: Auth<'_>, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let req = app.client.put(app.url(path)).header("content-type", content_type).header("accept", "application/json");
    let res = who.apply(req).body(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null))
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Visitor,
    Session(&'a Browser),
    Bearer(&'a str),
}

impl Auth<'_> {
    fn apply(self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Visitor => req,
            Auth::Session(b) => req.header("cookie", b.cookie_header()),
            Auth::Bearer(t) => req.bearer_auth(t),
        }
    }
}

/// GETs a stored rendition: status, headers and bytes.
async fn fetch(app: &TestApp, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let res = app.client.get(app.url(url)).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

/// The dimensions and EXIF of a JPEG.
fn jpeg_facts(bytes: &[u8]) -> ((u32, u32), Option<Vec<u8>>) {
    let mut d = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(bytes)).expect("a JPEG");
    let exif = d.exif_metadata().unwrap();
    (d.dimensions(), exif)
}

/// A `multipart/form-data` body of `fields` (name, optional file name, bytes), in order.
fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----turtlemen-test-boundary-7d1c";
    let mut body = Vec::new();
    for (name, filename, bytes) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts a multipart form as `who`: status, `Location` and body.
async fn post_multipart(
    app: &TestApp,
    who: &Browser,
    path: &str,
    fields: &[(&str, Option<&str>, &[u8])],
) -> (u16, String, String) {
    let (content_type, body) = multipart(fields);
    let res = app
        .client
        .post(app.url(path))
        .header("cookie", who.cookie_header())
        .header("accept", "text/html")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, location, res.text().await.unwrap())
}

async fn channel(app: &TestApp, handle: &str) -> Value {
    call(app, None, Method::GET, &format!("/api/v1/channels/{handle}"), None).await.1
}

on_both_stacks! {
    async fn avatars_and_banners_are_reencoded_served_and_replaced(app) {
        let ann = signed_in(&app, "ann").await;
        let before = channel(&app, "ann").await;
        assert_eq!((before["avatar_url"].clone(), before["banner_url"].clone()), (Value::Null, Value::Null), "{before}");
        let (_, html) = page(&app, None, "/@ann").await;
        assert!(html.contains("avatar placeholder") && html.contains("banner placeholder"), "placeholders: {html}");

        // A JPEG carrying a GPS position: the stored avatar has no EXIF and its fixed size.
        let original = fixtures::jpeg(640, 480, Some(fixtures::exif_with_gps(1)));
        assert!(jpeg_facts(&original).1.is_some());
        let (status, body) = put_image(&app, Auth::Session(&ann), "/api/v1/channels/ann/avatar", "image/jpeg", original).await;
        assert_eq!(status, 200, "{body}");
        let avatar = body["avatar_url"].as_str().expect("an avatar URL").to_owned();
        assert!(avatar.starts_with("/media/channels/") && avatar.ends_with("-256.jpg"), "{avatar}");
        let (status, headers, bytes) = fetch(&app, &avatar).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "image/jpeg");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["cache-control"].to_str().unwrap().contains("immutable"), "{headers:?}");
        let (size, exif) = jpeg_facts(&bytes);
        assert_eq!((size, exif), ((256, 256), None));
        assert!(!bytes.windows(4).any(|w| w == b"Exif"));
        // The smaller renditions exist under the same version.
        let (status, _, small) = fetch(&app, &avatar.replace("-256.jpg", "-48.jpg")).await;
        assert_eq!((status, jpeg_facts(&small).0), (200, (48, 48)));

        // A PNG banner: 1920 × 320 and 960 × 160.
        let (status, body) = put_image(&app, Auth::Session(&ann), "/api/v1/channels/ann/banner", "image/png", fixtures::png(1200, 300)).await;
        assert_eq!(status, 200, "{body}");
        let banner = body["banner_url"].as_str().unwrap().to_owned();
        let (_, _, bytes) = fetch(&app, &banner).await;
        assert_eq!(jpeg_facts(&bytes).0, (1920, 320));
        let (_, _, bytes) = fetch(&app, &banner.replace("-1920.jpg", "-960.jpg")).await;
        assert_eq!(jpeg_facts(&bytes).0, (960, 160));

        // The channel page, the channel JSON and the cards show them.
        let (_, html) = page(&app, None, "/@ann").await;
        assert!(html.contains(&avatar.replace("-256.jpg", "-96.jpg")) && html.contains(&banner), "{html}");
        assert!(!html.contains("avatar placeholder"));

        // A new upload takes a new name; the old files are gone.
        let (status, body) = put_image(&app, Auth::Session(&ann), "/api/v1/channels/ann/avatar", "image/webp", fixtures::webp(300, 300)).await;
        assert_eq!(status, 200, "{body}");
        let replaced = body["avatar_url"].as_str().unwrap().to_owned();
        assert_ne!(replaced, avatar);
        assert_eq!(fetch(&app, &avatar).await.0, 404);
        assert_eq!(fetch(&app, &replaced).await.0, 200);

        // Removing goes back to the placeholder and deletes the files.
        let (status, body) = call(&app, Some(&ann), Method::DELETE, "/api/v1/channels/ann/avatar", None).await;
        assert_eq!((status, body["avatar_url"].clone()), (200, Value::Null), "{body}");
        assert_eq!(fetch(&app, &replaced).await.0, 404);
        assert_eq!(fetch(&app, &replaced.replace("-256.jpg", "-48.jpg")).await.0, 404);
        // Names that no upload makes are not found, whatever they hold.
        for bad in ["/media/channels/nope/avatar-1-256.jpg", &replaced.replace("-256.jpg", "-255.jpg"), &replaced.replace(".jpg", ".png")] {
            assert_eq!(fetch(&app, bad).await.0, 404, "{bad}");
        }
    }

    async fn hostile_images_are_refused_with_a_reason_and_nothing_is_written(app) {
        let ann = signed_in(&app, "ann").await;
        let path = "/api/v1/channels/ann/avatar";
        let png = fixtures::png(300, 200);
        let bomb = fixtures::png_bomb(30_000);
        assert!(bomb.len() < 200 * 1024, "{} bytes", bomb.len());
        let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
            ("text", "image/png", b"<svg onload=alert(1)>".to_vec(), 422, "not_an_image"),
            ("truncated png", "image/png", png[..png.len() / 2].to_vec(), 422, "image_truncated"),
            ("truncated jpeg", "image/jpeg", { let j = fixtures::jpeg(300, 200, None); j[..j.len() * 2 / 3].to_vec() }, 422, "image_truncated"),
            ("bomb", "image/png", bomb, 413, "image_too_large"),
            ("animated gif", "image/gif", fixtures::animated_gif(), 422, "animated_image"),
            ("apng", "image/png", fixtures::apng(), 422, "animated_image"),
            ("animated webp", "image/webp", fixtures::animated_webp(), 422, "animated_image"),
            ("oversized", "image/png", vec![0u8; turtlemen_images::MAX_BYTES + 1], 413, "payload_too_large"),
            ("not declared an image", "application/x-www-form-urlencoded", png.clone(), 415, "unsupported_media_type"),
            ("empty", "image/png", Vec::new(), 400, "empty_body"),
        ];
        for (name, content_type, body, status, code) in cases {
            let (got, answer) = put_image(&app, Auth::Session(&ann), path, content_type, body).await;
            assert_eq!((got, answer["error"].as_str()), (status, Some(code)), "{name}: {answer}");
            assert!(answer["message"].as_str().is_some_and(|m| m.len() > 10), "{name}: a reason: {answer}");
        }
        // The bomb's refusal names the dimensions its header claimed.
        let (_, answer) = put_image(&app, Auth::Session(&ann), path, "image/png", fixtures::png_bomb(30_000)).await;
        assert!(answer["message"].as_str().unwrap().contains("30000 × 30000"), "{answer}");
        // Nothing changed, and nothing was stored.
        assert_eq!(channel(&app, "ann").await["avatar_url"], Value::Null);
        let folder = app.data_dir.join("media").join("channels");
        let stored = std::fs::read_dir(&folder).map(|d| d.count()).unwrap_or(0);
        assert_eq!(stored, 0, "nothing under {}", folder.display());
        // And the server is fine: a good image still goes through.
        assert_eq!(put_image(&app, Auth::Session(&ann), path, "image/png", png).await.0, 200);
    }

    async fn only_the_owner_or_an_acting_admin_changes_a_channels_pictures(app) {
        turtlemen_auth::accounts::create(&app.db, turtlemen_auth::accounts::AccountForm {
            username: "boss", email: "boss@example.org", display_name: None, password: PASSWORD, role: turtlemen_domain::Role::Admin,
        promote_if_first: false,
        }).await.unwrap();
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let avatar = "/api/v1/channels/ann/avatar";
        let banner = "/api/v1/channels/ann/banner";
        let png = || fixtures::png(64, 64);

        let (status, body) = put_image(&app, Auth::Visitor, avatar, "image/png", png()).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")), "{body}");
        let (status, body) = put_image(&app, Auth::Session(&bob), avatar, "image/png", png()).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("not_your_channel")), "{body}");
        assert_eq!(call(&app, None, Method::DELETE, banner, None).await.0, 401);
        assert_eq!(call(&app, Some(&bob), Method::DELETE, banner, None).await.1["error"], "not_your_channel");
        // Another user's bomb is refused before its body is looked at.
        let (status, body) = put_image(&app, Auth::Session(&bob), avatar, "image/png", fixtures::png_bomb(30_000)).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("not_your_channel")), "{body}");
        assert_eq!(channel(&app, "ann").await["avatar_url"], Value::Null);

        // Tokens of a third-party app: the scope decides.
        let secret = third_party(&app, "app").await;
        let ann_browser = app.browser();
        auth::sign_in(&app, &ann_browser, "ann").await;
        let no_write = access(&tokens_for(&app, &ann_browser, "app", &secret, "openid videos:write").await);
        let res = app.client.put(app.url(avatar)).bearer_auth(&no_write).header("content-type", "image/png").body(png()).send().await.unwrap();
        assert_eq!(res.status(), 403);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("channels:write"));
        let ann_writer = access(&tokens_for(&app, &ann_browser, "app", &secret, "openid channels:write").await);
        assert_eq!(put_image(&app, Auth::Bearer(&ann_writer), banner, "image/png", png()).await.0, 200);

        // An admin: only with the admin scope.
        let root = app.browser();
        auth::sign_in(&app, &root, "boss").await;
        let admin_without = access(&tokens_for(&app, &root, "app", &secret, "openid channels:write").await);
        let (status, body) = put_image(&app, Auth::Bearer(&admin_without), avatar, "image/png", png()).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("not_your_channel")), "{body}");
        let admin_with = access(&tokens_for(&app, &root, "app", &secret, "openid channels:write admin").await);
        assert_eq!(put_image(&app, Auth::Bearer(&admin_with), avatar, "image/png", png()).await.0, 200);
        let res = app.client.delete(app.url(banner)).bearer_auth(&admin_with).send().await.unwrap();
        assert_eq!(res.status(), 200);

        // The owner's own session.
        let (status, body) = put_image(&app, Auth::Session(&ann), banner, "image/gif", fixtures::still_gif()).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["banner_url"].is_string() && body["avatar_url"].is_string(), "{body}");
    }

    async fn the_edit_page_uploads_pictures_with_csrf_and_the_channel_page_lists_the_owners_channels(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let (status, _) = call(&app, Some(&ann), Method::POST, "/api/v1/channels", Some(json!({"handle": "anns-diy", "display_name": "Ann's <DIY>"}))).await;
        assert_eq!(status, 201);

        // Only the owner gets the edit page and its link.
        let (status, html) = page(&app, Some(&ann), "/studio/channels/ann").await;
        assert_eq!(status, 200);
        assert!(html.contains("enctype=\"multipart/form-data\"") && html.contains("action=\"/studio/channels/ann/avatar\""), "{html}");
        let token = csrf(&html);
        assert_eq!(page(&app, Some(&bob), "/studio/channels/ann").await.0, 403);
        assert!(page(&app, Some(&ann), "/@ann").await.1.contains("href=\"/studio/channels/ann\""));
        assert!(!page(&app, Some(&bob), "/@ann").await.1.contains("/studio/channels/ann"));

        // A forged or missing token changes nothing, even from the owner.
        let file = fixtures::png(120, 120);
        for fields in [vec![("csrf", None, &b"forged"[..]), ("file", Some("a.png"), &file[..])], vec![("file", Some("a.png"), &file[..])]] {
            let (status, _, _) = post_multipart(&app, &ann, "/studio/channels/ann/avatar", &fields).await;
            assert_eq!(status, 403);
        }
        // Another user's valid token is not the owner's.
        let (_, bob_html) = page(&app, Some(&bob), "/studio/channels/bob").await;
        let (status, _, _) = post_multipart(&app, &bob, "/studio/channels/ann/avatar", &[("csrf", None, csrf(&bob_html).as_bytes()), ("file", Some("a.png"), &file)]).await;
        assert_eq!(status, 403);
        assert_eq!(channel(&app, "ann").await["avatar_url"], Value::Null);

        // A hostile file shows the page again with the reason.
        let bomb = fixtures::png_bomb(30_000);
        let (status, _, html) = post_multipart(&app, &ann, "/studio/channels/ann/avatar", &[("csrf", None, token.as_bytes()), ("file", Some("bomb.png"), &bomb)]).await;
        assert_eq!(status, 413);
        assert!(html.contains("30000 × 30000") && html.contains("role=\"alert\""), "{html}");

        // The owner's upload, then the page shows it.
        let (status, location, _) = post_multipart(&app, &ann, "/studio/channels/ann/avatar", &[("csrf", None, token.as_bytes()), ("file", Some("me.png"), &file)]).await;
        assert_eq!((status, location.as_str()), (303, "/studio/channels/ann?done=avatar"));
        let avatar = channel(&app, "ann").await["avatar_url"].as_str().unwrap().to_owned();
        let (_, html) = page(&app, None, "/@ann").await;
        assert!(html.contains(&avatar.replace("-256.jpg", "-96.jpg")), "{html}");

        // Removing by the form.
        let (status, location) = crate::channels::post_form(&app, &ann, "/studio/channels/ann/avatar/remove", &[("csrf", &token)]).await;
        assert_eq!((status, location.as_str()), (303, "/studio/channels/ann?done=removed"));
        assert_eq!(channel(&app, "ann").await["avatar_url"], Value::Null);

        // The profile form, refused text shown with its reason.
        let (status, _) = crate::channels::post_form(&app, &ann, "/studio/channels/ann", &[("csrf", &token), ("display_name", "Ann \u{202E}reversed"), ("description", "")]).await;
        assert_eq!(status, 400);
        let (status, _) = crate::channels::post_form(&app, &ann, "/studio/channels/ann", &[("csrf", &token), ("display_name", "Ann <Turtles>"), ("description", "Hello")]).await;
        assert_eq!(status, 303);
        assert_eq!(channel(&app, "ann").await["display_name"], "Ann <Turtles>");

        // A user's profile shows their channels: each of Ann's pages links both, escaped.
        for path in ["/@ann", "/@anns-diy"] {
            let (_, html) = page(&app, None, path).await;
            assert!(html.contains("Channels of @<bdi>ann</bdi>") && html.contains("href=\"/@anns-diy\"") && html.contains("href=\"/@ann\""), "{path}: {html}");
            assert!(html.contains("Ann&#39;s &#60;DIY&#62;") || html.contains("Ann&#39;s &lt;DIY&gt;"), "{path}: escaped");
        }
        // One channel: no list.
        assert!(!page(&app, None, "/@bob").await.1.contains("Channels of"));
    }
}
