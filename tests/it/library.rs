//! A viewer's library through the gateway, on both stacks: ratings (idempotent, exact counters
//! under 1,000 concurrent toggles, invisible videos 404), playlists (create / edit / delete,
//! privacy, order after moves, keyset pages with a signed cursor, limits (the 200 lists held
//! under concurrent creates), hostile text, other
//! people's private videos never showing through a list), watch later, liked videos, the watch
//! history with its resume position and pause, the pages and their forms without JavaScript,
//! and an authorization matrix (visitor, another user, owner, admin) for every action.

use crate::channels::{call, csrf, new_user, new_video, page, post_form, publish};
use crate::gateway::Browser;
use crate::helpers::{Stack, TestApp};
use crate::on_both_stacks;
use crate::uploads::{signed_in, signed_in_as};
use reqwest::Method;
use serde_json::{Value, json};
use turtlemen_domain::{Role, UserId};
use uuid::Uuid;

/// A published public video of `who`, titled `title`.
async fn published(app: &TestApp, who: &Browser, title: &str, privacy: &str) -> String {
    let id = new_video(app, who, title, privacy, None).await;
    publish(app, &id).await;
    id
}

fn rating(r: &str) -> Option<Value> {
    Some(json!({ "rating": r }))
}

async fn counts(app: &TestApp, video: &str) -> (u64, u64) {
    let (status, v) = call(app, None, Method::GET, &format!("/api/v1/videos/{video}"), None).await;
    assert_eq!(status, 200, "{v}");
    (v["likes"].as_u64().unwrap(), v["dislikes"].as_u64().unwrap())
}

/// The titles of a playlist's items as `who` sees them (all pages).
async fn titles(app: &TestApp, who: Option<&Browser>, playlist: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/playlists/{playlist}/items?limit=2&cursor={cursor}");
        let (status, body) = call(app, who, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        for item in body["items"].as_array().unwrap() {
            out.push(item["video"]["title"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => return out,
        }
    }
}

async fn item_ids(app: &TestApp, who: &Browser, playlist: &str) -> Vec<String> {
    let (_, body) =
        call(app, Some(who), Method::GET, &format!("/api/v1/playlists/{playlist}/items?limit=100"), None).await;
    body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

on_both_stacks! {
    async fn ratings_are_idempotent_and_only_for_visible_videos(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let video = published(&app, &ann, "Shells", "public").await;
        let secret = published(&app, &ann, "Secret", "private").await;
        let path = format!("/api/v1/videos/{video}/rating");

        // The matrix: a visitor, another user on a private video, a user, the owner.
        let (status, body) = call(&app, None, Method::PUT, &path, rating("like")).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")), "{body}");
        let (status, _) = call(&app, Some(&bob), Method::PUT, &format!("/api/v1/videos/{secret}/rating"), rating("like")).await;
        assert_eq!(status, 404, "a video one may not see cannot be rated");
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/videos/not-a-uuid/rating", rating("like")).await.0, 404);
        assert_eq!(call(&app, Some(&ann), Method::PUT, &format!("/api/v1/videos/{secret}/rating"), rating("like")).await.0, 200, "the owner sees it");

        for _ in 0..2 {
            let (status, state) = call(&app, Some(&bob), Method::PUT, &path, rating("like")).await;
            assert_eq!(status, 200, "{state}");
            assert_eq!((state["rating"].as_str(), state["likes"].as_u64(), state["dislikes"].as_u64()), (Some("like"), Some(1), Some(0)), "idempotent");
        }
        let (_, v) = call(&app, Some(&bob), Method::GET, &format!("/api/v1/videos/{video}"), None).await;
        assert_eq!((v["likes"].as_u64(), v["my_rating"].as_str()), (Some(1), Some("like")), "{v}");
        let (_, v) = call(&app, None, Method::GET, &format!("/api/v1/videos/{video}"), None).await;
        assert!(v.get("my_rating").is_none(), "no rating for a visitor: {v}");
        call(&app, Some(&ann), Method::PUT, &path, rating("dislike")).await;
        assert_eq!(counts(&app, &video).await, (1, 1));
        call(&app, Some(&bob), Method::PUT, &path, rating("dislike")).await;
        assert_eq!(counts(&app, &video).await, (0, 2), "a flip moves both counters");
        call(&app, Some(&bob), Method::PUT, &path, rating("none")).await;
        call(&app, Some(&bob), Method::PUT, &path, rating("none")).await;
        assert_eq!(counts(&app, &video).await, (0, 1));

        // Bad input: a clean 4xx with a reason, nothing changed.
        for bad in [json!({"rating": "love"}), json!({"rating": "like", "extra": 1}), json!({}), json!("like")] {
            let (status, body) = call(&app, Some(&bob), Method::PUT, &path, Some(bad.clone())).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_json")), "{bad}: {body}");
        }
        let res = app.client.put(app.url(&path)).header("cookie", bob.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded").body("rating=like").send().await.unwrap();
        assert_eq!(res.status(), 415, "a cross-site form cannot rate");
        assert_eq!(counts(&app, &video).await, (0, 1));
    }

    async fn the_watch_page_rates_and_saves_without_javascript(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let video = published(&app, &ann, "Shells", "public").await;
        let watch = format!("/videos/{video}");

        let (status, html) = page(&app, None, &watch).await;
        assert_eq!(status, 200);
        assert!(html.contains("Sign in to like or save") && !html.contains("id=\"rating-form\""), "a visitor gets a sign-in link");

        let (_, html) = page(&app, Some(&bob), &watch).await;
        assert!(html.contains("action=\"/videos/") && html.contains("aria-pressed=\"false\""), "{html}");
        let token = csrf(&html);
        let (status, location) = post_form(&app, &bob, &format!("{watch}/rating"), &[("csrf", &token), ("rating", "like"), ("return_to", &watch)]).await;
        assert_eq!((status, location.as_str()), (303, watch.as_str()));
        assert_eq!(counts(&app, &video).await, (1, 0));
        let (_, html) = page(&app, Some(&bob), &watch).await;
        assert!(html.contains("data-rating=\"like\" aria-pressed=\"true\"") && html.contains("value=\"none\""), "pressed, and pressing again un-rates");

        // A forged token, or an open redirect: refused / sent home.
        let (status, _) = post_form(&app, &bob, &format!("{watch}/rating"), &[("csrf", "forged"), ("rating", "dislike")]).await;
        assert_eq!(status, 403);
        assert_eq!(counts(&app, &video).await, (1, 0), "nothing changed");
        let (status, location) = post_form(&app, &bob, &format!("{watch}/rating"), &[("csrf", &token), ("rating", "none"), ("return_to", "//evil.example/")]).await;
        assert_eq!((status, location.as_str()), (303, watch.as_str()), "no open redirect");

        // Watch later, one click; and "Save to playlist".
        let (status, _) = post_form(&app, &bob, &format!("{watch}/watch-later"), &[("csrf", &token), ("action", "add"), ("return_to", &watch)]).await;
        assert_eq!(status, 303);
        assert_eq!(titles(&app, Some(&bob), "WL").await, ["Shells"]);
        let (_, html) = page(&app, Some(&bob), &watch).await;
        assert!(html.contains("value=\"remove\" class=\"button secondary\" aria-pressed=\"true\">Watch later"), "{html}");
        post_form(&app, &bob, &format!("{watch}/watch-later"), &[("csrf", &token), ("action", "remove")]).await;
        assert!(titles(&app, Some(&bob), "WL").await.is_empty());

        let (status, list) = call(&app, Some(&bob), Method::POST, "/api/v1/playlists", Some(json!({"title": "Turtle <b>facts</b>"}))).await;
        assert_eq!(status, 201, "{list}");
        let list_id = list["id"].as_str().unwrap().to_owned();
        let (_, html) = page(&app, Some(&bob), &watch).await;
        assert!(html.contains(&format!("<option value=\"{list_id}\">Turtle &#60;b&#62;facts&#60;/b&#62;</option>")) || html.contains(&format!("<option value=\"{list_id}\">Turtle &lt;b&gt;facts&lt;/b&gt;</option>")), "escaped: {html}");
        let (status, _) = post_form(&app, &bob, &format!("{watch}/playlists"), &[("csrf", &token), ("playlist", &list_id), ("return_to", &watch)]).await;
        assert_eq!(status, 303);
        assert_eq!(titles(&app, Some(&bob), &list_id).await, ["Shells"]);
        let (status, _) = post_form(&app, &bob, &format!("{watch}/playlists"), &[("csrf", &token), ("playlist", &list_id)]).await;
        assert_eq!(status, 303, "saving twice is no error");
        // The menu lists every list with whether it holds the video, read with the rest of the
        // viewer's state in one statement (turtlemen_db::watch_state), however many lists.
        let mut more = Vec::new();
        for i in 0..12 {
            let (_, l) = call(&app, Some(&bob), Method::POST, "/api/v1/playlists", Some(json!({"title": format!("List {i}")}))).await;
            more.push(l["id"].as_str().unwrap().to_owned());
        }
        call(&app, Some(&bob), Method::POST, &format!("/api/v1/playlists/{}/items", more[3]), Some(json!({"video_id": video}))).await;
        let (_, html) = page(&app, Some(&bob), &watch).await;
        assert!(html.contains(&format!("<option value=\"{list_id}\" disabled>")), "saved, from the form: {html}");
        assert!(html.contains(&format!("<option value=\"{}\" disabled>List 3 (saved)", more[3])), "{html}");
        for (i, id) in more.iter().enumerate().filter(|(i, _)| *i != 3) {
            assert!(html.contains(&format!("<option value=\"{id}\">List {i}</option>")), "{html}");
        }
        let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle} in {html}"));
        assert!(at(">Watch later</option>") < at(">List 11</option>") && at(">List 11</option>") < at(">List 0</option>"), "Watch later first, then newest first");

        // A viewer who never used "Watch later" is offered it; looking writes nothing.
        let cat = signed_in(&app, "cat").await;
        let (_, html) = page(&app, Some(&cat), &watch).await;
        assert!(html.contains("<option value=\"WL\">Watch later</option>") && html.contains("aria-pressed=\"false\">Watch later"), "{html}");
        let cat_id = turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse("cat").unwrap()).await.unwrap().unwrap().id;
        assert!(turtlemen_db::playlists::list_by_owner(&app.db, cat_id).await.unwrap().is_empty(), "no list made by a GET");
        let (status, _) = post_form(&app, &cat, &format!("{watch}/playlists"), &[("csrf", &csrf(&html)), ("playlist", "WL"), ("return_to", &watch)]).await;
        assert_eq!(status, 303);
        assert_eq!(titles(&app, Some(&cat), "WL").await, ["Shells"]);

        // Someone else's list cannot be filled from a form.
        let (_, html) = page(&app, Some(&ann), &watch).await;
        let (status, _) = post_form(&app, &ann, &format!("{watch}/playlists"), &[("csrf", &csrf(&html)), ("playlist", &list_id)]).await;
        assert_eq!(status, 404, "bob's private list does not exist for ann");
    }

    async fn playlists_keep_their_order_privacy_and_limits(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let a = published(&app, &ann, "A", "public").await;
        let b = published(&app, &ann, "B", "unlisted").await;
        let c = published(&app, &ann, "C", "public").await;
        let d = published(&app, &ann, "D", "public").await;
        let secret = published(&app, &bob, "Bob's secret", "private").await;

        let (status, p) = call(&app, Some(&bob), Method::POST, "/api/v1/playlists", Some(json!({"title": "Mix", "privacy": "public", "description": "Four turtles"}))).await;
        assert_eq!(status, 201, "{p}");
        assert_eq!((p["privacy"].as_str(), p["owner"].as_str(), p["channel"]["handle"].as_str()), (Some("public"), Some("bob"), Some("bob")), "{p}");
        let id = p["id"].as_str().unwrap().to_owned();
        for v in [&a, &b, &c, &d, &secret] {
            let (status, body) = call(&app, Some(&bob), Method::POST, &format!("/api/v1/playlists/{id}/items"), Some(json!({"video_id": v}))).await;
            assert_eq!(status, 201, "{body}");
        }
        let (status, body) = call(&app, Some(&bob), Method::POST, &format!("/api/v1/playlists/{id}/items"), Some(json!({"video_id": a}))).await;
        assert_eq!((status, body["error"].as_str()), (409, Some("already_in_playlist")));
        let hidden = published(&app, &ann, "Ann's secret", "private").await;
        let (status, _) = call(&app, Some(&bob), Method::POST, &format!("/api/v1/playlists/{id}/items"), Some(json!({"video_id": hidden}))).await;
        assert_eq!(status, 404, "a video one may not see cannot be added");

        // The owner sees their own private video; anyone else never does. Unlisted ones show.
        assert_eq!(titles(&app, Some(&bob), &id).await, ["A", "B", "C", "D", "Bob's secret"]);
        assert_eq!(titles(&app, None, &id).await, ["A", "B", "C", "D"]);
        assert_eq!(titles(&app, Some(&ann), &id).await, ["A", "B", "C", "D"]);
        let (_, one) = call(&app, None, Method::GET, &format!("/api/v1/playlists/{id}"), None).await;
        assert_eq!(one["playlist"]["item_count"], 4, "{one}");

        // Moves: one row each, the order as asked.
        let ids = item_ids(&app, &bob, &id).await;
        let mv = |item: &str, position: u32| (format!("/api/v1/playlists/{id}/items/{item}"), json!({"position": position}));
        for (item, position) in [(&ids[3], 0), (&ids[0], 4), (&ids[2], 1), (&ids[4], 2)] {
            let (path, body) = mv(item, position);
            let (status, res) = call(&app, Some(&bob), Method::PATCH, &path, Some(body)).await;
            assert_eq!(status, 204, "{res}");
        }
        assert_eq!(titles(&app, Some(&bob), &id).await, ["D", "C", "Bob's secret", "B", "A"]);
        // Forty moves into the same gap: the keys run out and are spread again, order kept.
        let now = item_ids(&app, &bob, &id).await;
        for i in 0..40 {
            let (path, body) = mv(&now[if i % 2 == 0 { 4 } else { 3 }], 1);
            assert_eq!(call(&app, Some(&bob), Method::PATCH, &path, Some(body)).await.0, 204);
        }
        assert_eq!(titles(&app, Some(&bob), &id).await, ["D", "B", "A", "C", "Bob's secret"]);
        let (path, body) = mv(&now[0], 99);
        assert_eq!(call(&app, Some(&bob), Method::PATCH, &path, Some(body)).await.0, 204);
        assert_eq!(titles(&app, Some(&bob), &id).await, ["B", "A", "C", "Bob's secret", "D"], "past the end is the end");
        let (path, _) = mv(&Uuid::now_v7().to_string(), 0);
        assert_eq!(call(&app, Some(&bob), Method::PATCH, &path, Some(json!({"position": 0}))).await.0, 404);
        let (status, body) = call(&app, Some(&bob), Method::PATCH, &path, Some(json!({"position": -1}))).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_json")));

        // A tampered cursor is refused.
        let (_, first) = call(&app, None, Method::GET, &format!("/api/v1/playlists/{id}/items?limit=1"), None).await;
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        let mut forged = cursor.clone().into_bytes();
        forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        for bad in [forged.as_str(), "nonsense", &"x".repeat(500)] {
            let (status, body) = call(&app, None, Method::GET, &format!("/api/v1/playlists/{id}/items?cursor={bad}"), None).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_cursor")), "{bad}");
        }
        let (_, history_cursor) = call(&app, Some(&bob), Method::GET, "/api/v1/me/history?limit=1", None).await;
        assert!(history_cursor["next_cursor"].is_null());

        // Privacy: private → 404 to others; unlisted → visible by id, never listed.
        let (_, listed) = call(&app, None, Method::GET, "/api/v1/channels/bob/playlists", None).await;
        assert_eq!(listed["playlists"].as_array().unwrap().len(), 1, "{listed}");
        let (status, html) = page(&app, None, "/@bob?tab=playlists").await;
        assert!(status == 200 && html.contains(&format!("href=\"/playlists/{id}\">Mix</a>")), "the channel's playlists tab: {html}");
        call(&app, Some(&bob), Method::PATCH, &format!("/api/v1/playlists/{id}"), Some(json!({"privacy": "unlisted"}))).await;
        assert_eq!(call(&app, None, Method::GET, &format!("/api/v1/playlists/{id}"), None).await.0, 200);
        let (_, listed) = call(&app, None, Method::GET, "/api/v1/channels/bob/playlists", None).await;
        assert!(listed["playlists"].as_array().unwrap().is_empty(), "{listed}");
        call(&app, Some(&bob), Method::PATCH, &format!("/api/v1/playlists/{id}"), Some(json!({"privacy": "private"}))).await;
        for who in [None, Some(&ann)] {
            assert_eq!(call(&app, who, Method::GET, &format!("/api/v1/playlists/{id}"), None).await.0, 404);
            assert_eq!(page(&app, who, &format!("/playlists/{id}")).await.0, 404);
        }
        assert_eq!(call(&app, Some(&bob), Method::GET, &format!("/api/v1/playlists/{id}"), None).await.0, 200);

        // Hostile text: refused with a reason, or stored as typed and escaped.
        for bad in [
            json!({"title": ""}), json!({"title": "t".repeat(151)}), json!({"title": "two\nlines"}),
            json!({"title": "evil\u{202e}gnp.exe"}), json!({"description": "d".repeat(5001)}),
            json!({"description": "isolate \u{2067}x"}), json!({"privacy": "secret"}), json!({"nope": 1}),
            json!({"channel": "ann"}), json!({"channel": "no-such-channel"}),
        ] {
            let (status, body) = call(&app, Some(&bob), Method::PATCH, &format!("/api/v1/playlists/{id}"), Some(bad.clone())).await;
            assert!(status == 400 || status == 403, "{bad}: {status} {body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        }
        let (status, p) = call(&app, Some(&bob), Method::PATCH, &format!("/api/v1/playlists/{id}"), Some(json!({"title": "<script>alert(1)</script>", "privacy": "public"}))).await;
        assert_eq!(status, 200, "{p}");
        let (_, html) = page(&app, None, &format!("/playlists/{id}")).await;
        assert!(!html.contains("<script>alert(1)") && html.contains("alert(1)"), "inert: {html}");
        assert!(html.contains("Play all") && !html.contains("Bob&#39;s secret") && !html.contains("Bob's secret"), "{html}");

        // Limits: 200 lists per user.
        for i in 0..199 {
            let (status, _) = call(&app, Some(&ann), Method::POST, "/api/v1/playlists", Some(json!({"title": format!("L{i}")}))).await;
            assert_eq!(status, 201);
        }
        let (status, body) = call(&app, Some(&ann), Method::POST, "/api/v1/playlists", Some(json!({"title": "one more"}))).await;
        assert_eq!((status, body["error"].as_str()), (201, None), "{body}");
        let (status, body) = call(&app, Some(&ann), Method::POST, "/api/v1/playlists", Some(json!({"title": "too many"}))).await;
        assert_eq!((status, body["error"].as_str()), (409, Some("too_many_playlists")), "{body}");
    }

    async fn a_playlist_holds_at_most_5000_videos(app) {
        let ann = signed_in(&app, "ann").await;
        let video = published(&app, &ann, "Last", "public").await;
        let (_, p) = call(&app, Some(&ann), Method::POST, "/api/v1/playlists", Some(json!({"title": "Huge"}))).await;
        let id = Uuid::parse_str(p["id"].as_str().unwrap()).unwrap();
        // Fill it to the limit directly (5,000 video rows of ann's).
        let owner: Uuid = turtlemen_db::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT owner_id FROM videos WHERE id = $1").bind(Uuid::parse_str(&video).unwrap()).fetch_one(pool).await.unwrap());
        for chunk in 0..50 {
            let mut ids = Vec::new();
            for _ in 0..100 {
                let v = Uuid::now_v7();
                ids.push(v);
                turtlemen_db::videos::create(&app.db, &turtlemen_db::videos::NewVideo {
                    id: v, owner_id: UserId(owner), channel_id: owner,
                    metadata: turtlemen_db::videos::Metadata { title: format!("v{chunk}"), description: String::new(), tags: vec![], category: None, language: None, licence: None, privacy: turtlemen_db::videos::Privacy::Public },
                    original_name: "x.mp4".into(), original_bytes: 1,
                }).await.unwrap();
            }
            for v in ids {
                turtlemen_db::playlists::add_item(&app.db, id, v).await.unwrap();
            }
        }
        let (status, body) = call(&app, Some(&ann), Method::POST, &format!("/api/v1/playlists/{id}/items"), Some(json!({"video_id": video}))).await;
        assert_eq!((status, body["error"].as_str()), (409, Some("playlist_full")), "{body}");
    }

    async fn every_playlist_action_is_authorized(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let admin = signed_in_as(&app, "boss", Role::Admin).await;
        let video = published(&app, &ann, "V", "public").await;
        let (_, p) = call(&app, Some(&ann), Method::POST, "/api/v1/playlists", Some(json!({"title": "Mine", "privacy": "public"}))).await;
        let public = p["id"].as_str().unwrap().to_owned();
        let (_, p) = call(&app, Some(&ann), Method::POST, "/api/v1/playlists", Some(json!({"title": "Hidden"}))).await;
        let hidden = p["id"].as_str().unwrap().to_owned();
        let (_, added) = call(&app, Some(&ann), Method::POST, &format!("/api/v1/playlists/{public}/items"), Some(json!({"video_id": video}))).await;
        let item = added["id"].as_str().unwrap().to_owned();

        // (who, playlist, expected status of: edit, add, move, remove item, delete)
        let edit = json!({"title": "Changed"});
        for (who, name, list, expected) in [
            (None, "visitor", &public, [401, 401, 401, 401, 401]),
            (Some(&bob), "another user", &public, [403, 403, 403, 403, 403]),
            (Some(&bob), "another user, private list", &hidden, [404, 404, 404, 404, 404]),
        ] {
            let got = [
                call(&app, who, Method::PATCH, &format!("/api/v1/playlists/{list}"), Some(edit.clone())).await.0,
                call(&app, who, Method::POST, &format!("/api/v1/playlists/{list}/items"), Some(json!({"video_id": video}))).await.0,
                call(&app, who, Method::PATCH, &format!("/api/v1/playlists/{list}/items/{item}"), Some(json!({"position": 0}))).await.0,
                call(&app, who, Method::DELETE, &format!("/api/v1/playlists/{list}/items/{item}"), None).await.0,
                call(&app, who, Method::DELETE, &format!("/api/v1/playlists/{list}"), None).await.0,
            ];
            assert_eq!(got, expected, "{name}");
        }
        assert_eq!(titles(&app, None, &public).await, ["V"], "nothing changed");
        // Reading: the visitor and another user see the public list only.
        assert_eq!(call(&app, Some(&bob), Method::GET, &format!("/api/v1/playlists/{public}"), None).await.0, 200);
        assert_eq!(call(&app, None, Method::GET, "/api/v1/playlists/WL", None).await.0, 404, "a visitor has no watch later");
        assert_eq!(call(&app, None, Method::GET, "/api/v1/playlists/LL", None).await.0, 404);
        assert_eq!(call(&app, None, Method::GET, "/api/v1/me/playlists", None).await.0, 401);
        // The admin: sees and changes anyone's list.
        assert_eq!(call(&app, Some(&admin), Method::GET, &format!("/api/v1/playlists/{hidden}"), None).await.0, 200);
        assert_eq!(call(&app, Some(&admin), Method::PATCH, &format!("/api/v1/playlists/{public}"), Some(edit.clone())).await.0, 200);
        assert_eq!(call(&app, Some(&admin), Method::DELETE, &format!("/api/v1/playlists/{public}/items/{item}"), None).await.0, 204);
        assert_eq!(call(&app, Some(&admin), Method::DELETE, &format!("/api/v1/playlists/{hidden}"), None).await.0, 204);
        // The owner: everything; the system lists stay.
        assert_eq!(call(&app, Some(&ann), Method::DELETE, "/api/v1/playlists/WL", None).await.1["error"], "system_playlist");
        assert_eq!(call(&app, Some(&ann), Method::PATCH, "/api/v1/playlists/LL", Some(edit)).await.1["error"], "system_playlist");
        assert_eq!(call(&app, Some(&ann), Method::DELETE, &format!("/api/v1/playlists/{public}"), None).await.0, 204);
        assert_eq!(call(&app, Some(&ann), Method::GET, &format!("/api/v1/playlists/{public}"), None).await.0, 404);
        // Forms: the page's forms for the owner only.
        let (_, html) = page(&app, Some(&bob), "/playlists").await;
        let (status, location) = post_form(&app, &bob, "/playlists", &[("csrf", &csrf(&html)), ("title", "From a form"), ("privacy", "public")]).await;
        assert_eq!(status, 303);
        let (_, html) = page(&app, Some(&ann), &location).await;
        assert!(!html.contains("Edit playlist") && !html.contains("/delete"), "no owner forms for another user");
        let (status, _) = post_form(&app, &ann, &format!("{location}/delete"), &[("csrf", &csrf(&page(&app, Some(&ann), "/playlists").await.1))]).await;
        assert_eq!(status, 403);
        let (status, html) = page(&app, Some(&bob), &location).await;
        assert!(status == 200 && html.contains("Edit playlist"));
        let (status, _) = post_form(&app, &bob, &format!("{location}/edit"), &[("csrf", "forged"), ("title", "x"), ("privacy", "public")]).await;
        assert_eq!(status, 403, "a forged token changes nothing");
        let (status, back) = post_form(&app, &bob, &format!("{location}/delete"), &[("csrf", &csrf(&html))]).await;
        assert_eq!((status, back.as_str()), (303, "/playlists"));
    }

    async fn liked_videos_is_a_private_playlist_newest_first(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let first = published(&app, &ann, "First", "public").await;
        let second = published(&app, &ann, "Second", "public").await;
        let gone_private = published(&app, &ann, "Later private", "public").await;
        for v in [&first, &gone_private, &second] {
            call(&app, Some(&bob), Method::PUT, &format!("/api/v1/videos/{v}/rating"), rating("like")).await;
        }
        call(&app, Some(&bob), Method::PUT, &format!("/api/v1/videos/{first}/rating"), rating("dislike")).await;
        call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/videos/{gone_private}"), Some(json!({"privacy": "private"}))).await;
        let (status, mine) = call(&app, Some(&bob), Method::GET, "/api/v1/me/playlists", None).await;
        assert_eq!(status, 200, "{mine}");
        let lists = mine["playlists"].as_array().unwrap();
        assert_eq!((lists[0]["id"].as_str(), lists[1]["id"].as_str()), (Some("WL"), Some("LL")), "{mine}");
        assert_eq!(lists[1]["item_count"], 1, "{mine}");
        // Bob never used Watch later: it is shown empty and undated, and reading it makes nothing.
        assert_eq!((lists[0]["item_count"].as_u64(), lists[0]["created_at"].is_null()), (Some(0), true), "{mine}");
        let (status, wl) = call(&app, Some(&bob), Method::GET, "/api/v1/playlists/WL", None).await;
        assert_eq!((status, wl["playlist"]["title"].as_str(), wl["items"].as_array().map(Vec::len)), (200, Some("Watch later"), Some(0)), "{wl}");
        let bob_id = turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse("bob").unwrap()).await.unwrap().unwrap().id;
        assert!(turtlemen_db::playlists::list_by_owner(&app.db, bob_id).await.unwrap().is_empty(), "no list made by a GET");
        assert_eq!(titles(&app, Some(&bob), "LL").await, ["Second"], "a video gone private leaves the list");
        call(&app, Some(&bob), Method::PUT, &format!("/api/v1/videos/{first}/rating"), rating("like")).await;
        assert_eq!(titles(&app, Some(&bob), "LL").await, ["First", "Second"], "newest like first");
        assert_eq!(titles(&app, Some(&ann), "LL").await, Vec::<String>::new(), "LL is always the caller's own");
        let (status, html) = page(&app, Some(&bob), "/playlists/LL").await;
        assert!(status == 200 && html.contains("Liked videos") && html.contains("First"), "{html}");
        assert_eq!(call(&app, Some(&bob), Method::POST, "/api/v1/playlists/LL/items", Some(json!({"video_id": second}))).await.1["error"], "system_playlist");
    }

    async fn a_playlist_plays_in_order_on_the_watch_page(app) {
        let ann = signed_in(&app, "ann").await;
        let ids = [published(&app, &ann, "One", "public").await, published(&app, &ann, "Two", "public").await, published(&app, &ann, "Three", "public").await];
        let (_, p) = call(&app, Some(&ann), Method::POST, "/api/v1/playlists", Some(json!({"title": "Trio", "privacy": "public"}))).await;
        let list = p["id"].as_str().unwrap().to_owned();
        for v in &ids {
            call(&app, Some(&ann), Method::POST, &format!("/api/v1/playlists/{list}/items"), Some(json!({"video_id": v}))).await;
        }
        let (status, html) = page(&app, None, &format!("/playlists/{list}")).await;
        assert_eq!(status, 200);
        let html = html.replace("&#38;", "&amp;");
        let play_all = format!("/videos/{}?list={list}&amp;index=1", ids[0]);
        assert!(html.contains(&play_all), "Play all starts at the first: {html}");
        let (_, html) = page(&app, None, &format!("/videos/{}?list={list}&index=2", ids[1])).await;
        let html = html.replace("&#38;", "&amp;");
        let next = format!("/videos/{}?list={list}&amp;index=3", ids[2]);
        assert!(html.contains(&format!("data-next=\"{next}\"")) && html.contains(&format!("href=\"{next}\" rel=\"next\"")), "the next link: {html}");
        assert!(html.contains("aria-current=\"true\">Two</a>") && html.contains("2 / 3"), "{html}");
        let (_, html) = page(&app, None, &format!("/videos/{}?list={list}&index=3", ids[2])).await;
        assert!(!html.contains("rel=\"next\""), "the last has no next");
        // A list one may not see only loses the panel.
        let (status, html) = page(&app, None, &format!("/videos/{}?list=WL&index=1", ids[0])).await;
        assert!(status == 200 && !html.contains("playlist-panel"));

        // Up / down forms without JavaScript.
        let (_, html) = page(&app, Some(&ann), &format!("/playlists/{list}")).await;
        let items = item_ids(&app, &ann, &list).await;
        let (status, _) = post_form(&app, &ann, &format!("/playlists/{list}/items/{}/move", items[2]), &[("csrf", &csrf(&html)), ("position", "1")]).await;
        assert_eq!(status, 303);
        assert_eq!(titles(&app, None, &list).await, ["One", "Three", "Two"]);
        let (status, _) = post_form(&app, &ann, &format!("/playlists/{list}/items/{}/remove", items[0]), &[("csrf", &csrf(&html))]).await;
        assert_eq!(status, 303);
        assert_eq!(titles(&app, None, &list).await, ["Three", "Two"]);
    }

    async fn the_history_resumes_pauses_and_clears(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let video = published(&app, &ann, "Long", "public").await;
        let other = published(&app, &ann, "Other", "public").await;
        let secret = published(&app, &ann, "Secret", "private").await;
        let report = |v: &str| format!("/api/v1/me/history/{v}");

        assert_eq!(call(&app, None, Method::PUT, &report(&video), Some(json!({"position_secs": 5}))).await.0, 401);
        assert_eq!(call(&app, Some(&bob), Method::PUT, &report(&secret), Some(json!({"position_secs": 5}))).await.0, 404);
        assert_eq!(call(&app, Some(&bob), Method::PUT, &report(&video), Some(json!({"position_secs": -5}))).await.0, 400);
        for at in [10, 20, 42] {
            assert_eq!(call(&app, Some(&bob), Method::PUT, &report(&video), Some(json!({"position_secs": at}))).await.0, 204);
        }
        call(&app, Some(&bob), Method::PUT, &report(&other), Some(json!({"position_secs": 3}))).await;
        let (_, h) = call(&app, Some(&bob), Method::GET, "/api/v1/me/history", None).await;
        let entries = h["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "one entry per video: {h}");
        assert_eq!((entries[0]["video"]["title"].as_str(), entries[1]["position_secs"].as_u64()), (Some("Other"), Some(42)), "{h}");
        assert_eq!(call(&app, Some(&ann), Method::GET, "/api/v1/me/history", None).await.1["entries"].as_array().unwrap().len(), 0, "each user their own");

        // The watch page resumes there; `?t=` overrides it.
        let (_, html) = page(&app, Some(&bob), &format!("/videos/{video}")).await;
        assert!(html.contains("data-start=\"42\"") && html.contains("data-history=\"1\""), "{html}");
        let (_, html) = page(&app, Some(&bob), &format!("/videos/{video}?t=1m5s")).await;
        assert!(html.contains("data-start=\"65\""), "{html}");
        let (_, html) = page(&app, None, &format!("/videos/{video}")).await;
        assert!(!html.contains("data-start") && !html.contains("data-history"), "a visitor has no history");

        // Paging with the signed cursor; a forged one is refused.
        let (_, h) = call(&app, Some(&bob), Method::GET, "/api/v1/me/history?limit=1", None).await;
        let cursor = h["next_cursor"].as_str().unwrap().to_owned();
        let (_, h2) = call(&app, Some(&bob), Method::GET, &format!("/api/v1/me/history?limit=1&cursor={cursor}"), None).await;
        assert_eq!(h2["entries"][0]["video"]["title"], "Long", "{h2}");
        assert_eq!(call(&app, Some(&bob), Method::GET, "/api/v1/me/history?cursor=AAAA", None).await.1["error"], "invalid_cursor");
        assert_eq!(page(&app, Some(&bob), "/history?cursor=forged").await.0, 400);

        // Pause: nothing is written; resume; remove one; clear.
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/history/settings", Some(json!({"paused": true}))).await.0, 200);
        call(&app, Some(&bob), Method::PUT, &report(&video), Some(json!({"position_secs": 50}))).await;
        let (_, h) = call(&app, Some(&bob), Method::GET, "/api/v1/me/history", None).await;
        assert_eq!((h["paused"].as_bool(), h["entries"][1]["position_secs"].as_u64()), (Some(true), Some(42)), "nothing written while paused: {h}");
        let (_, html) = page(&app, Some(&bob), &format!("/videos/{video}")).await;
        assert!(!html.contains("data-history"), "the page stops reporting");
        let (status, html) = page(&app, Some(&bob), "/history").await;
        assert!(status == 200 && html.contains("Resume history") && html.contains("Resume at 0:42"), "{html}");
        let token = csrf(&html);
        assert_eq!(post_form(&app, &bob, "/history/settings", &[("csrf", &token), ("paused", "0")]).await.0, 303);
        assert_eq!(call(&app, Some(&bob), Method::GET, "/api/v1/me/history/settings", None).await.1["paused"], false);
        assert_eq!(post_form(&app, &bob, &format!("/history/{other}/remove"), &[("csrf", &token)]).await.0, 303);
        assert_eq!(call(&app, Some(&bob), Method::GET, "/api/v1/me/history", None).await.1["entries"].as_array().unwrap().len(), 1);
        assert_eq!(post_form(&app, &bob, "/history/clear", &[("csrf", "forged")]).await.0, 403);
        assert_eq!(post_form(&app, &bob, "/history/clear", &[("csrf", &token)]).await.0, 303);
        assert_eq!(call(&app, Some(&bob), Method::GET, "/api/v1/me/history", None).await.1["entries"].as_array().unwrap().len(), 0);
        assert_eq!(call(&app, None, Method::DELETE, "/api/v1/me/history", None).await.0, 401);
        // A visitor is sent to sign in.
        let res = app.client.get(app.url("/history")).header("accept", "text/html").send().await.unwrap();
        assert_eq!(res.status(), 303);
    }

    async fn the_playlist_limit_holds_under_concurrent_creates(app) {
        let ann = signed_in(&app, "ann").await;
        let (_, me) = call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await;
        let owner = UserId(me["id"].as_str().unwrap().parse().unwrap());
        let fields = turtlemen_db::playlists::Fields {
            title: "Filler".into(),
            description: String::new(),
            privacy: turtlemen_db::videos::Privacy::Private,
            channel_id: owner.0,
        };
        for _ in 0..190 {
            turtlemen_db::playlists::create(&app.db, Uuid::now_v7(), owner, &fields).await.unwrap();
        }
        // Thirty at once for the last ten places: ten are made, twenty refused, none beyond.
        let tries = (0..30).map(|i| {
            let (app, ann) = (&app, ann.clone());
            async move { call(app, Some(&ann), Method::POST, "/api/v1/playlists", Some(json!({"title": format!("Race {i}")}))).await }
        });
        let answers = futures::future::join_all(tries).await;
        let made = answers.iter().filter(|(status, _)| *status == 201).count();
        let refused = answers.iter().filter(|(status, body)| *status == 409 && body["error"] == "too_many_playlists").count();
        assert_eq!((made, refused), (10, 20), "{answers:?}");
        let rows: i64 = turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM playlists WHERE owner_id = $1 AND kind = 'user'")
                .bind(owner.0)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert_eq!(rows, 200);
        // Creating a playlist that exists is no error (a retried request).
        let first: Uuid = turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query_scalar("SELECT id FROM playlists WHERE owner_id = $1 AND kind = 'user' LIMIT 1")
                .bind(owner.0)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        turtlemen_db::playlists::create(&app.db, first, owner, &fields).await.unwrap();
    }
}

/// 1,000 concurrent like / dislike / none toggles by 25 users on one video: both counters end
/// equal to `COUNT(*)` of the rating rows.
async fn the_rating_counters_stay_exact_under_concurrent_toggles(stack: Stack) {
    let Some(app) = TestApp::spawn(stack).await else { return };
    let owner = turtlemen_db::users::create(&app.db, &new_user("owner")).await.unwrap();
    let video = Uuid::now_v7();
    turtlemen_db::videos::create(
        &app.db,
        &turtlemen_db::videos::NewVideo {
            id: video,
            owner_id: owner.id,
            channel_id: owner.id.0,
            metadata: turtlemen_db::videos::Metadata {
                title: "Hot".into(),
                description: String::new(),
                tags: vec![],
                category: None,
                language: None,
                licence: None,
                privacy: turtlemen_db::videos::Privacy::Public,
            },
            original_name: "x.mp4".into(),
            original_bytes: 1,
        },
    )
    .await
    .unwrap();
    let mut users = Vec::new();
    for i in 0..25 {
        users.push(turtlemen_db::users::create(&app.db, &new_user(&format!("fan{i}"))).await.unwrap().id);
    }
    use turtlemen_db::ratings::Rating;
    let mut tasks = Vec::new();
    for n in 0..1000u32 {
        let db = app.db.clone();
        let user = users[(n as usize * 7) % users.len()];
        let choice = match (n / 3 + n % 5) % 3 {
            0 => Some(Rating::Like),
            1 => Some(Rating::Dislike),
            _ => None,
        };
        tasks.push(tokio::spawn(async move { turtlemen_db::ratings::set(&db, user, video, choice).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (likes, dislikes) = turtlemen_db::ratings::count_rows(&app.db, video).await.unwrap();
    let v = turtlemen_db::videos::get(&app.db, video).await.unwrap().unwrap();
    assert_eq!(
        (v.likes, v.dislikes),
        (u64::try_from(likes).unwrap(), u64::try_from(dislikes).unwrap()),
        "the counters equal COUNT(*)"
    );
    assert!(likes + dislikes <= 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rating_counters_stay_exact_under_concurrent_toggles_on_sqlite() {
    the_rating_counters_stay_exact_under_concurrent_toggles(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rating_counters_stay_exact_under_concurrent_toggles_on_postgres() {
    the_rating_counters_stay_exact_under_concurrent_toggles(Stack::External).await;
}

/// Rating changes are limited per user (`ratings_per_minute`, here 5): video ratings and comment
/// likes count together; past the limit a 429 `rate_limited` says when to try again, and other
/// users are not held back.
async fn rating_changes_are_rate_limited(stack: Stack) {
    let Some((mut settings, dir, schema)) = crate::helpers::fresh_settings(stack).await else { return };
    settings.ratings_per_minute = Some(5);
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let ann = signed_in(&app, "ann").await;
    let bob = signed_in(&app, "bob").await;
    let video = published(&app, &ann, "Liked a lot", "public").await;
    let (status, made) =
        call(&app, Some(&ann), Method::POST, &format!("/api/v1/videos/{video}/comments"), Some(json!({"text": "hi"})))
            .await;
    assert_eq!(status, 201, "{made}");
    let comment = made["id"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let rating = if i % 2 == 0 { "like" } else { "none" };
        let path = format!("/api/v1/videos/{video}/rating");
        statuses.push(call(&app, Some(&bob), Method::PUT, &path, Some(json!({"rating": rating}))).await.0);
        let path = format!("/api/v1/comments/{comment}/rating");
        statuses.push(call(&app, Some(&bob), Method::PUT, &path, Some(json!({"rating": rating}))).await.0);
    }
    // A minute may turn over mid-way: at most two windows' worth get through.
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    assert!((5..=10).contains(&accepted) && statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    let res = app
        .client
        .put(app.url(&format!("/api/v1/videos/{video}/rating")))
        .header("cookie", bob.cookie_header())
        .json(&json!({"rating": "like"}))
        .send()
        .await
        .unwrap();
    crate::comments::refused_for_now(res).await;
    // Ann is not held back by bob's changes.
    let (status, _) =
        call(&app, Some(&ann), Method::PUT, &format!("/api/v1/videos/{video}/rating"), Some(json!({"rating": "like"})))
            .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rating_changes_are_rate_limited_on_sqlite() {
    rating_changes_are_rate_limited(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rating_changes_are_rate_limited_on_postgres() {
    rating_changes_are_rate_limited(Stack::External).await;
}
