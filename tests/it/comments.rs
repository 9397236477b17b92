//! Comments on both stacks, through the gateway: threads (replies to replies under their root,
//! with "@name"), reply counts and the video's count through edit, delete, remove and pin; the
//! per-video policy and the owner's held queue; newest and top keyset pages with forged cursors
//! refused and each page one index range scan; hostile markdown rendered inert, the 10,000
//! character limit and huge bodies refused; the flood limit (429 with `Retry-After`); clear 4xx
//! for replies to deleted or removed comments and on closed videos; notifications made once, by
//! the job; blocked words holding a comment; an authorization matrix for every action; like
//! counts exact under concurrent toggles; the pages' forms with CSRF.

use crate::channels::{call, csrf, new_user, new_video, page, post_form, post_page, publish};
use crate::gateway::Browser;
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::on_both_stacks;
use crate::uploads::{signed_in, signed_in_as};
use reqwest::Method;
use serde_json::{Value, json};
use turtlemen_db::comments::{self as rows, Sort};
use turtlemen_db::{Db, with_pool};
use turtlemen_domain::Role;
use turtlemen_worker::{Worker, WorkerConfig};
use uuid::Uuid;

/// A public, published video of `who`; its id.
async fn video(app: &TestApp, who: &Browser, title: &str, privacy: &str) -> String {
    let id = new_video(app, who, title, privacy, None).await;
    publish(app, &id).await;
    id
}

/// Writes a comment as `who`; status and body.
async fn comment(app: &TestApp, who: &Browser, video: &str, text: &str, parent: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "text": text });
    if let Some(p) = parent {
        body["parent_id"] = json!(p);
    }
    call(app, Some(who), Method::POST, &format!("/api/v1/videos/{video}/comments"), Some(body)).await
}

/// Writes a comment that must be accepted; its id.
async fn said(app: &TestApp, who: &Browser, video: &str, text: &str, parent: Option<&str>) -> String {
    let (status, body) = comment(app, who, video, text, parent).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn list(app: &TestApp, who: Option<&Browser>, video: &str, query: &str) -> Value {
    let (status, body) = call(app, who, Method::GET, &format!("/api/v1/videos/{video}/comments{query}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn one(app: &TestApp, who: Option<&Browser>, id: &str) -> (u16, Value) {
    call(app, who, Method::GET, &format!("/api/v1/comments/{id}"), None).await
}

/// When `res` is a 429: it says `rate_limited` and when to try again (within the minute).
pub async fn refused_for_now(res: reqwest::Response) {
    if res.status() == 429 {
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "rate_limited", "{body}");
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

/// Runs the queued jobs until none is due (the instance runs no worker).
async fn drain(app: &TestApp) -> usize {
    Worker::new(app.db.clone(), turtlemen_worker::registry(None), WorkerConfig::default())
        .run_until_idle()
        .await
        .unwrap()
}

async fn notifications_about(db: &Db, comment: &str) -> Vec<(String, String)> {
    let id = Uuid::parse_str(comment).unwrap();
    let rows: Vec<(Uuid, String)> = with_pool!(db, |pool| {
        sqlx::query_as("SELECT user_id, kind FROM notifications WHERE subject_id = $1 ORDER BY kind")
            .bind(id)
            .fetch_all(pool)
            .await
            .unwrap()
    });
    let mut out = Vec::new();
    for (user, kind) in rows {
        let name: String = with_pool!(db, |pool| {
            sqlx::query_scalar("SELECT username FROM users WHERE id = $1").bind(user).fetch_one(pool).await.unwrap()
        });
        out.push((name, kind));
    }
    out.sort();
    out
}

on_both_stacks! {
    without_worker;
    async fn threads_counts_edit_delete_remove_and_pin(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let carol = signed_in(&app, "carol").await;
        let v = video(&app, &ann, "Turtles", "public").await;

        let top = said(&app, &bob, &v, "First *turtle* comment", None).await;
        let reply = said(&app, &carol, &v, "a reply", Some(&top)).await;
        let deep = said(&app, &bob, &v, "a reply to the reply", Some(&reply)).await;
        let page1 = list(&app, None, &v, "").await;
        assert_eq!(page1["count"], 3, "{page1}");
        assert_eq!(ids(&page1["comments"]), vec![top.clone()], "only top-level comments are listed");
        assert_eq!(page1["comments"][0]["reply_count"], 2);
        assert_eq!(page1["comments"][0]["html"], "<p>First <em>turtle</em> comment</p>\n");
        assert_eq!(page1["comments"][0]["author"]["username"], "bob");

        let (status, replies) = call(&app, None, Method::GET, &format!("/api/v1/comments/{top}/replies"), None).await;
        assert_eq!(status, 200, "{replies}");
        assert_eq!(ids(&replies["replies"]), vec![reply.clone(), deep.clone()], "oldest first, the reply's reply in the thread");
        assert_eq!(replies["replies"][0]["reply_to"], Value::Null, "a direct reply names nobody");
        assert_eq!(replies["replies"][1]["reply_to"], "carol", "a reply to a reply says whom it answers");
        assert_eq!(replies["replies"][1]["root_id"], top.as_str());
        assert_eq!(replies["replies"][1]["parent_id"], reply.as_str());
        let (status, body) = call(&app, None, Method::GET, &format!("/api/v1/comments/{reply}/replies"), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("not_a_thread")));

        // The author edits: marked edited.
        let (status, edited) = call(&app, Some(&bob), Method::PATCH, &format!("/api/v1/comments/{top}"), Some(json!({"text": "Edited **text**"}))).await;
        assert_eq!(status, 200, "{edited}");
        assert!(edited["edited_at"].is_string(), "{edited}");
        assert_eq!(edited["html"], "<p>Edited <strong>text</strong></p>\n");

        // Carol deletes her reply: bob's answer hangs on it, so it stays as "[deleted]".
        let (status, _) = call(&app, Some(&carol), Method::DELETE, &format!("/api/v1/comments/{reply}"), None).await;
        assert_eq!(status, 204);
        let (_, gone) = one(&app, None, &reply).await;
        assert_eq!(gone["status"], "deleted", "{gone}");
        assert!(gone["author"].is_null() && gone["text"].is_null() && gone["html"].is_null(), "{gone}");
        let (status, body) = comment(&app, &ann, &v, "answer", Some(&reply)).await;
        assert_eq!((status, body["error"].as_str()), (409, Some("parent_deleted")), "{body}");
        let again = call(&app, Some(&carol), Method::DELETE, &format!("/api/v1/comments/{reply}"), None).await;
        assert_eq!(again.0, 204, "deleting twice changes nothing");
        // Bob deletes his reply-to-reply: nothing answers it, so it is gone.
        let (status, _) = call(&app, Some(&bob), Method::DELETE, &format!("/api/v1/comments/{deep}"), None).await;
        assert_eq!(status, 204);
        assert_eq!(one(&app, None, &deep).await.0, 404);
        let page1 = list(&app, None, &v, "").await;
        assert_eq!(page1["count"], 1, "{page1}");
        assert_eq!(page1["comments"][0]["reply_count"], 1, "the [deleted] reply still shows");

        // The video's owner removes bob's comment: "[removed]", and no replies to it.
        let second = said(&app, &carol, &v, "another", None).await;
        let (status, _) = call(&app, Some(&ann), Method::DELETE, &format!("/api/v1/comments/{top}"), None).await;
        assert_eq!(status, 204);
        let (_, removed) = one(&app, None, &top).await;
        assert_eq!(removed["status"], "removed", "{removed}");
        let (status, body) = comment(&app, &carol, &v, "answer", Some(&top)).await;
        assert_eq!((status, body["error"].as_str()), (409, Some("parent_removed")), "{body}");
        let (status, body) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/comments/{top}"), Some(json!({"text": "x"}))).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("not_your_comment")), "only the author edits");
        let (status, body) = call(&app, Some(&bob), Method::PATCH, &format!("/api/v1/comments/{top}"), Some(json!({"text": "x"}))).await;
        assert_eq!((status, body["error"].as_str()), (409, Some("comment_gone")), "{body}");

        // Pinning: one at a time, shown first on the first page and not repeated.
        let third = said(&app, &bob, &v, "third", None).await;
        let (status, _) = call(&app, Some(&ann), Method::PUT, &format!("/api/v1/comments/{second}/pin"), None).await;
        assert_eq!(status, 204);
        let page1 = list(&app, None, &v, "").await;
        assert_eq!(page1["pinned"]["id"], second.as_str(), "{page1}");
        assert!(!ids(&page1["comments"]).contains(&second), "the pinned comment is not repeated");
        let (status, _) = call(&app, Some(&ann), Method::PUT, &format!("/api/v1/comments/{third}/pin"), None).await;
        assert_eq!(status, 204);
        let page1 = list(&app, None, &v, "").await;
        assert_eq!(page1["pinned"]["id"], third.as_str(), "pinning another unpins the first");
        assert!(ids(&page1["comments"]).contains(&second));
        let (status, body) = call(&app, Some(&bob), Method::PUT, &format!("/api/v1/comments/{second}/pin"), None).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("not_your_video")));
        let (status, body) = call(&app, Some(&ann), Method::PUT, &format!("/api/v1/comments/{top}/pin"), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("not_pinnable")), "a removed comment is not pinned");
        let (status, _) = call(&app, Some(&ann), Method::DELETE, &format!("/api/v1/comments/{third}/pin"), None).await;
        assert_eq!(status, 204);
        assert!(list(&app, None, &v, "").await["pinned"].is_null());
        assert!(drain(&app).await > 0, "notifications were queued, to be made by the worker");
    }
}

on_both_stacks! {
    async fn policy_held_queue_and_closed_videos(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let v = video(&app, &ann, "Held turtles", "public").await;
        let (status, body) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/videos/{v}"), Some(json!({"comment_policy": "sometimes"}))).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_comment_policy")));
        let (status, _) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/videos/{v}"), Some(json!({"comment_policy": "held"}))).await;
        assert_eq!(status, 200);

        let (status, held) = comment(&app, &bob, &v, "please approve", None).await;
        assert_eq!(status, 201, "{held}");
        assert_eq!(held["status"], "held");
        assert!(held["held_reason"].as_str().unwrap().contains("reviews comments"), "the answer says it is held: {held}");
        let id = held["id"].as_str().unwrap().to_owned();
        let visitor = list(&app, None, &v, "").await;
        assert_eq!((visitor["count"].as_u64(), visitor["held"].as_array().unwrap().len()), (Some(0), 0), "{visitor}");
        assert!(visitor["comments"].as_array().unwrap().is_empty());
        assert_eq!(one(&app, None, &id).await.0, 404, "a held comment does not exist for a visitor");
        let carol = signed_in(&app, "carol").await;
        assert_eq!(one(&app, Some(&carol), &id).await.0, 404, "nor for another user");
        assert_eq!(ids(&list(&app, Some(&bob), &v, "").await["held"]), vec![id.clone()], "its author sees it");
        assert_eq!(ids(&list(&app, Some(&ann), &v, "").await["held"]), vec![id.clone()], "the owner sees it");
        let (status, body) = comment(&app, &carol, &v, "answer", Some(&id)).await;
        assert_eq!(status, 400, "a held comment cannot be answered by others: {body}");
        // The owner's own comments are not held.
        let (_, own) = comment(&app, &ann, &v, "owner speaking", None).await;
        assert_eq!(own["status"], "visible");

        let (status, queue) = call(&app, Some(&ann), Method::GET, "/api/v1/me/comments/held", None).await;
        assert_eq!(status, 200);
        assert_eq!(ids(&queue["comments"]), vec![id.clone()]);
        let (status, queue) = call(&app, Some(&bob), Method::GET, "/api/v1/me/comments/held", None).await;
        assert_eq!((status, queue["comments"].as_array().unwrap().len()), (200, 0), "bob's videos hold nothing");
        let (status, body) = call(&app, Some(&bob), Method::POST, &format!("/api/v1/comments/{id}/approve"), None).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("not_your_video")), "the author cannot approve");
        let (status, approved) = call(&app, Some(&ann), Method::POST, &format!("/api/v1/comments/{id}/approve"), None).await;
        assert_eq!((status, approved["status"].as_str()), (200, Some("visible")), "{approved}");
        assert_eq!(list(&app, None, &v, "").await["count"], 2);

        // A rejected held comment is gone.
        let (_, held) = comment(&app, &bob, &v, "another", None).await;
        let other = held["id"].as_str().unwrap().to_owned();
        let (status, _) = call(&app, Some(&ann), Method::DELETE, &format!("/api/v1/comments/{other}"), None).await;
        assert_eq!(status, 204);
        assert_eq!(one(&app, Some(&ann), &other).await.0, 404);

        // Closed: nobody comments or replies; what was said stays.
        let (status, _) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/videos/{v}"), Some(json!({"comment_policy": "closed"}))).await;
        assert_eq!(status, 200);
        for (who, parent) in [(&bob, None), (&bob, Some(id.as_str())), (&ann, None)] {
            let (status, body) = comment(&app, who, &v, "hello?", parent).await;
            assert_eq!((status, body["error"].as_str()), (403, Some("comments_closed")), "{body}");
        }
        let closed = list(&app, None, &v, "").await;
        assert_eq!((closed["policy"].as_str(), closed["count"].as_u64()), (Some("closed"), Some(2)));
    }
}

on_both_stacks! {
    async fn newest_and_top_pages_by_keyset_with_forged_cursors_refused(app) {
        let ann = signed_in(&app, "ann").await;
        let v = video(&app, &ann, "Many comments", "public").await;
        let vid = Uuid::parse_str(&v).unwrap();
        let author = turtlemen_db::users::create(&app.db, &new_user("writer")).await.unwrap();
        // 45 comments written straight to the database (the rate limit is per minute).
        let mut written = Vec::new();
        for i in 0..45 {
            let id = Uuid::now_v7();
            let text = format!("comment {i}");
            let new = rows::NewComment { id, video_id: vid, author: author.id, parent_id: None, root_id: None, body: &text, html: &text, held: false };
            rows::create(&app.db, &new).await.unwrap();
            written.push(id.to_string());
        }
        // Likes: comment i gets i % 4 likes from four users.
        let mut likers = Vec::new();
        for k in 0..4 {
            likers.push(turtlemen_db::users::create(&app.db, &new_user(&format!("liker{k}"))).await.unwrap().id);
        }
        for (i, id) in written.iter().enumerate() {
            for liker in likers.iter().take(i % 4) {
                rows::rate(&app.db, Uuid::parse_str(id).unwrap(), *liker, true).await.unwrap();
            }
        }
        let mut newest_first = written.clone();
        newest_first.reverse();
        for (sort, expected) in [("newest", newest_first.clone()), ("top", {
            let mut by_likes: Vec<(usize, String)> = written.iter().enumerate().map(|(i, id)| (i % 4, id.clone())).collect();
            by_likes.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
            by_likes.into_iter().map(|(_, id)| id).collect()
        })] {
            let mut seen = Vec::new();
            let mut query = format!("?sort={sort}&limit=20");
            loop {
                let page = list(&app, None, &v, &query).await;
                seen.extend(ids(&page["comments"]));
                match page["next_cursor"].as_str() {
                    Some(c) => query = format!("?sort={sort}&limit=20&cursor={c}"),
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{sort}: every comment once, in order");
        }
        let first = list(&app, None, &v, "?limit=5").await;
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        let mut forged = cursor.clone().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        for bad in [forged.as_str(), "nonsense", &"A".repeat(300)] {
            let (status, body) = call(&app, None, Method::GET, &format!("/api/v1/videos/{v}/comments?cursor={bad}"), None).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_cursor")), "{bad}");
        }
        let (status, body) = call(&app, None, Method::GET, &format!("/api/v1/videos/{v}/comments?sort=top&cursor={cursor}"), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_cursor")), "a newest cursor is no top cursor");
        let (status, body) = call(&app, None, Method::GET, &format!("/api/v1/videos/{v}/comments?sort=best"), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_sort")));

        // A signed-in reader's likes come with each page (read in the page's statement), on
        // every page of both orders and on the pinned comment; a visitor's say nothing.
        let fan = signed_in(&app, "fan").await;
        let fan_id = turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse("fan").unwrap()).await.unwrap().unwrap().id;
        for id in written.iter().step_by(3) {
            rows::rate(&app.db, Uuid::parse_str(id).unwrap(), fan_id, true).await.unwrap();
        }
        let pinned = Uuid::parse_str(&written[30]).unwrap();
        rows::set_pinned(&app.db, vid, Some(pinned)).await.unwrap();
        for sort in ["newest", "top"] {
            let (mut query, mut pages) = (format!("?sort={sort}&limit=20"), 0);
            loop {
                let page = list(&app, Some(&fan), &v, &query).await;
                let shown = page["comments"].as_array().unwrap().iter().chain(page["pinned"].as_object().map(|_| &page["pinned"]));
                for c in shown {
                    let i = written.iter().position(|w| c["id"] == w.as_str()).unwrap();
                    assert_eq!(c["liked"].as_bool(), Some(i % 3 == 0), "{sort} page {pages}: comment {i}");
                }
                assert_eq!(page["pinned"]["id"].as_str().is_some(), pages == 0, "the pinned comment leads the first page only");
                pages += 1;
                match page["next_cursor"].as_str() {
                    Some(c) => query = format!("?sort={sort}&limit=20&cursor={c}"),
                    None => break,
                }
            }
            assert_eq!(pages, 3, "{sort}");
        }
        let anonymous = list(&app, None, &v, "").await;
        assert!(anonymous["comments"][0]["liked"].is_null(), "{anonymous}");

        // Each page is one statement of index range scans and lookups, with no sort, however
        // deep: the page, the held comments, the pinned one and the likes.
        let reader = rows::Reader { user: fan_id, held_of: None };
        for sort in [Sort::Newest, Sort::Top] {
            let after = Some((1, Uuid::parse_str(&written[20]).unwrap()));
            let query = rows::PageQuery { video: vid, sort, after, limit: 20, reader: Some(reader), pinned: Some(pinned), held_limit: 20 };
            let plan = rows::plan(&app.db, &query).await.unwrap();
            let index = if sort == Sort::Newest { "comments_video_newest" } else { "comments_video_top" };
            assert!(plan.contains(index) && plan.contains("comments_held"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE") && !plan.contains("Sort") && !plan.contains("Seq Scan"), "{plan}");
        }
    }
}

on_both_stacks! {
    async fn hostile_text_is_inert_and_limits_hold(app) {
        let ann = signed_in(&app, "ann").await;
        let v = video(&app, &ann, "Hostile", "public").await;
        let hostile = "[x](javascript:alert(1)) <img src=x onerror=alert(1)> [ok](https://example.org)\n\n<script>alert(1)</script>";
        let (_, body) = comment(&app, &ann, &v, hostile, None).await;
        let html = body["html"].as_str().unwrap();
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("href=\"javascript"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "raw HTML shows as the text it is: {html}");
        assert!(html.contains("<a href=\"https://example.org\" rel=\"nofollow ugc noopener\">ok</a>"), "{html}");
        assert_eq!(body["text"], hostile, "the source is kept as written");
        let (status, body) = comment(&app, &ann, &v, &"x".repeat(10_001), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("text_too_long")), "{body}");
        let (status, body) = comment(&app, &ann, &v, "   ", None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("text_empty")));
        let (status, body) = comment(&app, &ann, &v, "evil\u{202E}txt", None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_text")));
        let quotes = ">".repeat(9_000) + " deep";
        let (status, body) = comment(&app, &ann, &v, &quotes, None).await;
        assert_eq!(status, 201, "{body}");
        assert!(body["html"].as_str().unwrap().matches("<blockquote>").count() <= 8);
        // A 10 MB body is refused before it is parsed: 413 — or, when the server has answered and
        // closed while the client was still writing, a failed body write — and nothing is kept.
        let list = format!("/api/v1/videos/{v}/comments");
        let before = call(&app, None, Method::GET, &list, None).await.1["comments"].as_array().map(Vec::len);
        let huge = json!({ "text": "a".repeat(10 << 20) }).to_string();
        let res = app
            .client
            .post(app.url(&format!("/api/v1/videos/{v}/comments")))
            .header("cookie", ann.cookie_header())
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await;
        match res {
            Ok(res) => assert_eq!(res.status(), 413),
            Err(e) => assert!(e.is_request(), "only the body write may fail: {e}"),
        }
        let after = call(&app, None, Method::GET, &list, None).await.1["comments"].as_array().map(Vec::len);
        assert_eq!(after, before, "nothing of the 10 MB body was kept");
        let (status, body) = call(&app, Some(&ann), Method::POST, &format!("/api/v1/videos/{v}/comments"), Some(json!({"text": "x", "extra": 1}))).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_json")));
        let (status, body) = call(&app, Some(&ann), Method::POST, &format!("/api/v1/videos/{v}/comments"), Some(json!({"text": "x", "parent_id": Uuid::now_v7()}))).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_parent")));
    }
}

on_both_stacks! {
    async fn a_flood_is_throttled_per_user(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let v = video(&app, &ann, "Flood", "public").await;
        let mut statuses = Vec::new();
        // 25 in a row: whether or not a minute turns over on the way, one window gets more than 10.
        for i in 0..25 {
            statuses.push(comment(&app, &bob, &v, &format!("spam {i}"), None).await.0);
        }
        // A minute may turn over mid-way: at most one window's limit, then 429s.
        let accepted = statuses.iter().filter(|s| **s == 201).count();
        assert!(statuses.contains(&429), "{statuses:?}");
        assert!((10..=20).contains(&accepted), "{statuses:?}");
        let res = app
            .client
            .post(app.url(&format!("/api/v1/videos/{v}/comments")))
            .header("cookie", bob.cookie_header())
            .json(&json!({"text": "more"}))
            .send()
            .await
            .unwrap();
        refused_for_now(res).await;
        assert_eq!(comment(&app, &ann, &v, "someone else may still speak", None).await.0, 201);
    }
}

on_both_stacks! {
    without_worker;
    async fn notifications_are_made_once_by_the_job(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let carol = signed_in(&app, "carol").await;
        let v = video(&app, &ann, "Notify", "public").await;
        let first = said(&app, &bob, &v, "hi @carol and @bob and @nobody_here", None).await;
        let answer = said(&app, &carol, &v, "@bob thanks, and @ann too", Some(&first)).await;
        let own = said(&app, &ann, &v, "my own video", None).await;
        assert!(notifications_about(&app.db, &first).await.is_empty(), "nothing is made inline");
        drain(&app).await;
        assert_eq!(
            notifications_about(&app.db, &first).await,
            vec![("ann".into(), "video_comment".into()), ("carol".into(), "comment_mention".into())],
            "no self-notification for @bob"
        );
        assert_eq!(
            notifications_about(&app.db, &answer).await,
            vec![("ann".into(), "comment_mention".into()), ("bob".into(), "comment_reply".into())],
            "one notification each, the reply before the mention"
        );
        assert!(notifications_about(&app.db, &own).await.is_empty(), "the owner is not told of their own comment");
        // The job run again makes nothing twice.
        turtlemen_db::jobs::enqueue(&app.db, &turtlemen_db::jobs::NewJob::new(
            turtlemen_db::comment_notifications::NOTIFY_COMMENT,
            &json!({"comment_id": answer}),
        )).await.unwrap();
        drain(&app).await;
        assert_eq!(notifications_about(&app.db, &answer).await.len(), 2);
        let (status, inbox) = call(&app, Some(&bob), Method::GET, "/api/v1/me/notifications", None).await;
        assert_eq!(status, 200);
        let n = &inbox["notifications"][0];
        assert_eq!((n["kind"].as_str(), n["comment"]["author"].as_str()), (Some("comment_reply"), Some("carol")), "{inbox}");
        assert!(n["comment"]["url"].as_str().unwrap().ends_with(&format!("/comments/{first}#comment-{answer}")), "{n}");
        // A comment deleted leaves the notifications' lists.
        call(&app, Some(&carol), Method::DELETE, &format!("/api/v1/comments/{answer}"), None).await;
        let (_, inbox) = call(&app, Some(&bob), Method::GET, "/api/v1/me/notifications", None).await;
        assert!(inbox["notifications"].as_array().unwrap().is_empty(), "{inbox}");
        // Turned off, a kind is not made.
        let (status, _) = call(&app, Some(&ann), Method::PUT, "/api/v1/me/notifications/settings", Some(json!({"video_comment": false}))).await;
        assert_eq!(status, 200);
        let quiet = said(&app, &bob, &v, "quietly", None).await;
        drain(&app).await;
        assert!(notifications_about(&app.db, &quiet).await.is_empty());
    }
}

on_both_stacks! {
    async fn blocked_words_hold_a_comment(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let v = video(&app, &ann, "Words", "public").await;
        let (status, _) = call(&app, Some(&ann), Method::PUT, "/api/v1/channels/ann/blocked-words", Some(json!({"words": ["Turnip", "buy now"]}))).await;
        assert_eq!(status, 200);
        let root = signed_in_as(&app, "margot", Role::Admin).await;
        let (status, words) = call(&app, Some(&root), Method::PUT, "/api/v1/admin/blocked-words", Some(json!({"words": ["ＳＰＡＭ"]}))).await;
        assert_eq!((status, &words["words"]), (200, &json!(["spam"])), "{words}");
        let (status, body) = call(&app, Some(&bob), Method::PUT, "/api/v1/admin/blocked-words", Some(json!({"words": ["x"]}))).await;
        assert_eq!(status, 404, "{body}");
        let (status, _) = call(&app, Some(&bob), Method::PUT, "/api/v1/channels/ann/blocked-words", Some(json!({"words": []}))).await;
        assert_eq!(status, 403);
        for (text, held) in [("I love turnips", false), ("TURNIP!", true), ("spam spam", true), ("please buy... now", true), ("buy it now", false)] {
            let (status, body) = comment(&app, &bob, &v, text, None).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["status"], if held { "held" } else { "visible" }, "{text}: {body}");
            assert_eq!(body["held_reason"].is_string(), held, "the answer says it is held: {body}");
        }
    }
}

on_both_stacks! {
    async fn who_may_do_what(app) {
        let ann = signed_in(&app, "ann").await; // the video's owner
        let bob = signed_in(&app, "bob").await; // the comment's author
        let eve = signed_in(&app, "eve").await; // another user
        let root = signed_in_as(&app, "margot", Role::Admin).await; // a moderator
        let v = video(&app, &ann, "Matrix", "public").await;
        let private = video(&app, &ann, "Private", "private").await;
        let secret = said(&app, &ann, &private, "only me", None).await;
        // A private video's comments are the owner's alone.
        for who in [None, Some(&eve), Some(&bob)] {
            assert_eq!(call(&app, who, Method::GET, &format!("/api/v1/videos/{private}/comments"), None).await.0, 404);
            assert_eq!(one(&app, who, &secret).await.0, 404);
        }
        assert_eq!(comment(&app, &eve, &private, "let me in", None).await.0, 404);
        assert_eq!(call(&app, Some(&ann), Method::GET, &format!("/api/v1/videos/{private}/comments"), None).await.0, 200);

        let c = said(&app, &bob, &v, "bob's", None).await;
        let path = format!("/api/v1/comments/{c}");
        let patch = Some(json!({"text": "changed"}));
        let like = Some(json!({"rating": "like"}));
        // (action, anonymous, eve, bob the author, ann the owner, root the moderator)
        let matrix: [(Method, String, Option<Value>, [u16; 5]); 5] = [
            (Method::PATCH, path.clone(), patch, [401, 403, 200, 403, 403]),
            (Method::PUT, format!("{path}/rating"), like, [401, 200, 200, 200, 200]),
            (Method::PUT, format!("{path}/pin"), None, [401, 403, 403, 204, 204]),
            (Method::POST, format!("{path}/approve"), None, [401, 403, 403, 200, 200]),
            (Method::GET, path.clone(), None, [200, 200, 200, 200, 200]),
        ];
        for (method, p, body, expected) in matrix {
            let who = [None, Some(&eve), Some(&bob), Some(&ann), Some(&root)];
            for (w, want) in who.into_iter().zip(expected) {
                let (status, answer) = call(&app, w, method.clone(), &p, body.clone()).await;
                assert_eq!(status, want, "{method} {p} as {}: {answer}", w.map_or("anonymous", |_| "a user"));
            }
        }
        // Deleting: a visitor and another user may not; the author deletes, the owner and a
        // moderator remove.
        assert_eq!(call(&app, None, Method::DELETE, &path, None).await.0, 401);
        assert_eq!(call(&app, Some(&eve), Method::DELETE, &path, None).await.0, 403);
        let by_owner = said(&app, &bob, &v, "owner removes", None).await;
        let by_root = said(&app, &bob, &v, "moderator removes", None).await;
        for (who, id, status) in [(&bob, &c, "deleted"), (&ann, &by_owner, "removed"), (&root, &by_root, "removed")] {
            let _reply = said(&app, &eve, &v, "keep it", Some(id)).await;
            assert_eq!(call(&app, Some(who), Method::DELETE, &format!("/api/v1/comments/{id}"), None).await.0, 204);
            assert_eq!(one(&app, None, id).await.1["status"], status);
        }
        assert_eq!(call(&app, None, Method::GET, "/api/v1/me/comments/held", None).await.0, 401);
        assert_eq!(call(&app, None, Method::POST, &format!("/api/v1/videos/{v}/comments"), Some(json!({"text": "anon"}))).await.0, 401);
    }
}

async fn likes_stay_exact(stack: Stack) {
    let Some((settings, dir, schema)) = fresh_settings(stack).await else { return };
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let owner = turtlemen_db::users::create(&app.db, &new_user("maker")).await.unwrap();
    let vid = Uuid::now_v7();
    let channel = owner.id.0;
    with_pool!(&app.db, |pool| {
        sqlx::query(
            "INSERT INTO videos (id, owner_id, channel_id, title, privacy, state, original_name, original_bytes, created_at, updated_at) \
             VALUES ($1, $2, $3, 'v', 'public', 'ready', 'v.mp4', 1, $4, $4)",
        )
        .bind(vid)
        .bind(owner.id.0)
        .bind(channel)
        .bind(chrono::Utc::now())
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap()
    });
    let c = Uuid::now_v7();
    let new = rows::NewComment {
        id: c,
        video_id: vid,
        author: owner.id,
        parent_id: None,
        root_id: None,
        body: "x",
        html: "x",
        held: false,
    };
    rows::create(&app.db, &new).await.unwrap();
    let mut users = Vec::new();
    for i in 0..25 {
        users.push(turtlemen_db::users::create(&app.db, &new_user(&format!("fan{i}"))).await.unwrap().id);
    }
    // 25 users × 40 toggles each = 1,000 concurrent like/unlike toggles.
    let tasks = users.iter().enumerate().map(|(i, u)| {
        let db = app.db.clone();
        let u = *u;
        tokio::spawn(async move {
            for k in 0..40 {
                rows::rate(&db, c, u, (k + i) % 3 != 0).await.unwrap();
            }
        })
    });
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    let counted = rows::get(&app.db, c).await.unwrap().unwrap().like_count;
    let rows_now = rows::count_likes(&app.db, c).await.unwrap();
    assert_eq!(counted as i64, rows_now, "the counter equals the rows");
    let expected = (0..25).filter(|i| (39 + i) % 3 != 0).count() as i64;
    assert_eq!(rows_now, expected, "each user's last toggle decides");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comment_likes_stay_exact_under_concurrent_toggles_on_sqlite() {
    likes_stay_exact(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comment_likes_stay_exact_under_concurrent_toggles_on_postgres() {
    likes_stay_exact(Stack::External).await;
}

on_both_stacks! {
    async fn the_pages_comment_without_javascript(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let v = video(&app, &ann, "Page turtles", "public").await;
        // A visitor gets a sign-in link that comes back to the box.
        let (status, html) = page(&app, None, &format!("/videos/{v}")).await;
        assert_eq!(status, 200);
        assert!(html.contains(&format!("/oauth2/start?rd=%2Fvideos%2F{v}%3Fcomment%3D1%23comment-box")), "{html}");
        assert!(html.contains("Sign in to comment"));
        let (_, html) = page(&app, Some(&bob), &format!("/videos/{v}?comment=1")).await;
        assert!(html.contains("autofocus"), "back from signing in, the box is ready");
        let token = csrf(&html);
        let (status, _) = post_form(&app, &bob, &format!("/videos/{v}/comments"), &[("csrf", "forged"), ("text", "hi")]).await;
        assert_eq!(status, 403, "a forged CSRF token changes nothing");
        let (status, to) = post_form(&app, &bob, &format!("/videos/{v}/comments"), &[("csrf", &token), ("text", "Hello **page**")]).await;
        assert_eq!(status, 303);
        let id = to.split("#comment-").nth(1).unwrap().to_owned();
        assert_eq!(to, format!("/videos/{v}#comment-{id}"));
        let (_, html) = page(&app, None, &format!("/videos/{v}")).await;
        assert!(html.contains("<p>Hello <strong>page</strong></p>") && html.contains("1 comment"), "{html}");
        // A reply through the form goes to the thread's page, which lists it.
        let (_, to) = post_form(&app, &ann, &format!("/videos/{v}/comments"), &[("csrf", &csrf(&page(&app, Some(&ann), &format!("/videos/{v}")).await.1)), ("text", "welcome"), ("parent_id", &id)]).await;
        assert!(to.starts_with(&format!("/videos/{v}/comments/{id}#comment-")), "{to}");
        let (_, watch) = page(&app, None, &format!("/videos/{v}")).await;
        assert!(watch.contains("Show 1 reply") && !watch.contains("welcome"), "replies are folded");
        let (status, thread) = page(&app, None, &format!("/videos/{v}/comments/{id}")).await;
        assert_eq!(status, 200);
        assert!(thread.contains("welcome"), "{thread}");
        // Like, edit and delete by form.
        let (status, _) = post_form(&app, &ann, &format!("/comments/{id}/like"), &[("csrf", &csrf(&thread_as(&app, &ann, &v, &id).await)), ("action", "like"), ("return_to", &format!("/videos/{v}"))]).await;
        assert_eq!(status, 303);
        assert_eq!(one(&app, None, &id).await.1["likes"], 1);
        let (status, to) = post_form(&app, &bob, &format!("/comments/{id}/edit"), &[("csrf", &token), ("text", "Edited")]).await;
        assert_eq!((status, to.as_str()), (303, format!("/videos/{v}#comment-{id}").as_str()));
        let (status, to) = post_form(&app, &bob, &format!("/comments/{id}/delete"), &[("csrf", &token), ("return_to", "//evil.example/")]).await;
        assert_eq!(status, 303);
        assert!(to.starts_with('/') && !to.starts_with("//"), "no open redirect: {to}");
        let (_, html) = page(&app, None, &format!("/videos/{v}")).await;
        assert!(html.contains("[deleted]"), "the reply keeps it as [deleted]");
        // The held queue page.
        call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/videos/{v}"), Some(json!({"comment_policy": "held"}))).await;
        let (status, to) = post_form(&app, &bob, &format!("/videos/{v}/comments"), &[("csrf", &token), ("text", "wait for me")]).await;
        assert_eq!((status, to.as_str()), (303, format!("/videos/{v}?done=held#comments").as_str()));
        let (_, html) = page(&app, Some(&bob), &to).await;
        assert!(html.contains("held for review") && html.contains("wait for me"), "{html}");
        let (status, queue) = page(&app, Some(&ann), "/studio/comments").await;
        assert_eq!(status, 200);
        assert!(queue.contains("wait for me"), "{queue}");
    }
}

async fn thread_as(app: &TestApp, who: &Browser, video: &str, id: &str) -> String {
    page(app, Some(who), &format!("/videos/{video}/comments/{id}")).await.1
}

/// Replies racing their parent's erasure: each reply is written (and the parent then stays as
/// "[deleted]") or refused with a 4xx that says why, never a 5xx, and the counters still equal
/// their rows. The storage refuses a reply whose parent is gone without an error.
async fn replies_racing_their_parent_s_erasure(stack: Stack) {
    let Some((mut settings, dir, schema)) = fresh_settings(stack).await else { return };
    settings.comments_per_minute = Some(0);
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let ann = signed_in(&app, "ann").await;
    let bob = signed_in(&app, "bob").await;
    let carl = signed_in(&app, "carl").await;
    let v = video(&app, &ann, "Racing", "public").await;
    let vid = Uuid::parse_str(&v).unwrap();
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..8 {
        let parent = said(&app, &bob, &v, &format!("soon gone {round}"), None).await;
        let path = format!("/api/v1/comments/{parent}");
        let texts: Vec<String> = (0..6).map(|i| format!("reply {round}.{i}")).collect();
        let erase = call(&app, Some(&bob), Method::DELETE, &path, None);
        let replies = texts.iter().map(|t| comment(&app, &carl, &v, t, Some(&parent)));
        let (erased, answers) = tokio::join!(erase, futures::future::join_all(replies));
        assert_eq!(erased.0, 204, "{}", erased.1);
        for (status, body) in answers {
            assert!(status == 201 || (400..500).contains(&status), "{status} {body}");
            if status != 201 {
                let code = body["error"].as_str().unwrap().to_owned();
                assert!(["invalid_parent", "parent_deleted", "parent_gone"].contains(&code.as_str()), "{body}");
            }
            *outcomes.entry(status).or_insert(0) += 1;
        }
    }
    assert!(outcomes.keys().any(|s| *s != 201), "some replies came too late: {outcomes:?}");
    let (count, rows_now, bad_threads): (i64, i64, i64) = with_pool!(&app.db, |pool| {
        sqlx::query_as(
            "SELECT (SELECT comment_count FROM videos WHERE id = $1), \
             (SELECT COUNT(*) FROM comments WHERE video_id = $1 AND status = 'visible'), \
             (SELECT COUNT(*) FROM comments r WHERE r.video_id = $1 AND r.root_id IS NULL AND r.reply_count <> \
              (SELECT COUNT(*) FROM comments c WHERE c.root_id = r.id AND c.status <> 'held'))",
        )
        .bind(vid)
        .fetch_one(pool)
        .await
        .unwrap()
    });
    assert_eq!((count, bad_threads), (rows_now, 0), "{outcomes:?}");

    // The storage itself: a parent erased after the caller's check.
    let author = turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse("carl").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let gone = Uuid::now_v7();
    let new = rows::NewComment {
        id: Uuid::now_v7(),
        video_id: vid,
        author,
        parent_id: Some(gone),
        root_id: Some(gone),
        body: "late",
        html: "<p>late</p>",
        held: false,
    };
    assert_eq!(rows::create(&app.db, &new).await.unwrap(), rows::Created::ParentGone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replies_racing_their_parent_s_erasure_on_sqlite() {
    replies_racing_their_parent_s_erasure(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replies_racing_their_parent_s_erasure_on_postgres() {
    replies_racing_their_parent_s_erasure(Stack::External).await;
}

on_both_stacks! {
    async fn an_edit_is_checked_against_the_blocked_words(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let root = signed_in_as(&app, "margot", Role::Admin).await;
        let v = video(&app, &ann, "Edits", "public").await;
        call(&app, Some(&ann), Method::PUT, "/api/v1/channels/ann/blocked-words", Some(json!({"words": ["turnip"]}))).await;
        call(&app, Some(&root), Method::PUT, "/api/v1/admin/blocked-words", Some(json!({"words": ["spam"]}))).await;
        let shown = said(&app, &bob, &v, "fine words", None).await;
        let path = format!("/api/v1/comments/{shown}");
        // The channel's word and the instance's: refused with the posting's reason, nothing changed.
        for text in ["a TURNIP here", "ｓｐａｍ"] {
            let (status, body) = call(&app, Some(&bob), Method::PATCH, &path, Some(json!({"text": text}))).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("blocked_word")), "{text}: {body}");
            assert!(body["message"].as_str().unwrap().contains("reviews before it is shown"), "{body}");
        }
        let (_, now) = one(&app, None, &shown).await;
        assert_eq!((now["text"].as_str(), now["edited_at"].is_null(), now["status"].as_str()), (Some("fine words"), true, Some("visible")), "{now}");
        // A clean edit goes through.
        let (status, body) = call(&app, Some(&bob), Method::PATCH, &path, Some(json!({"text": "turnips are fine"}))).await;
        assert_eq!((status, body["text"].as_str()), (200, Some("turnips are fine")), "{body}");
        // A held comment stays held whatever it says; the owner is not checked, as when posting.
        let (status, held) = comment(&app, &bob, &v, "TURNIP!", None).await;
        assert_eq!((status, held["status"].as_str()), (201, Some("held")), "{held}");
        let (status, body) = call(&app, Some(&bob), Method::PATCH, &format!("/api/v1/comments/{}", held["id"].as_str().unwrap()), Some(json!({"text": "turnip, spam"}))).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("held")), "{body}");
        let mine = said(&app, &ann, &v, "my own", None).await;
        let (status, body) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/comments/{mine}"), Some(json!({"text": "turnip sale"}))).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("visible")), "{body}");
        // The form without JavaScript: the same refusal, shown on the page; nothing changed.
        let (_, html) = page(&app, Some(&bob), &format!("/videos/{v}")).await;
        let token = csrf(&html);
        let (status, _, html) = post_page(&app, &bob, &format!("/comments/{shown}/edit"), &[("csrf", &token), ("text", "buy spam")]).await;
        assert_eq!(status, 400);
        assert!(html.contains("reviews before it is shown") && html.contains("spam"), "{html}");
        assert_eq!(one(&app, None, &shown).await.1["text"], "turnips are fine");
    }

    async fn the_blocked_words_pages_work_without_javascript(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let root = signed_in_as(&app, "margot", Role::Admin).await;
        let v = video(&app, &ann, "Pages", "public").await;
        let other = video(&app, &bob, "Elsewhere", "public").await;

        // The owner's edit page has the field; a list saved there is the channel's.
        let (status, html) = page(&app, Some(&ann), "/studio/channels/ann").await;
        assert_eq!(status, 200);
        assert!(html.contains("action=\"/studio/channels/ann/blocked-words\"") && html.contains("name=\"words\""), "{html}");
        let token = csrf(&html);
        let form = "/studio/channels/ann/blocked-words";
        let (status, to, _) = post_page(&app, &ann, form, &[("csrf", &token), ("words", "Turnip\r\n\r\n  buy   now \n")]).await;
        assert_eq!((status, to.as_str()), (303, "/studio/channels/ann?done=words"));
        let (_, words) = call(&app, Some(&ann), Method::GET, "/api/v1/channels/ann/blocked-words", None).await;
        assert_eq!(words["words"], json!(["buy now", "turnip"]));
        let (_, html) = page(&app, Some(&ann), &to).await;
        assert!(html.contains("Blocked words saved.") && html.contains("buy now\nturnip</textarea>"), "{html}");
        // Limits refused with the reason, what was typed shown inert, nothing changed.
        let hostile = format!("<script>alert(1)</script>{}", "x".repeat(60));
        let too_many: String = (0..501).map(|i| format!("w{i}\n")).collect();
        for (words, reason) in [(hostile.as_str(), "at most 60 characters"), (too_many.as_str(), "at most 500 words")] {
            let (status, _, html) = post_page(&app, &ann, form, &[("csrf", &token), ("words", words)]).await;
            assert_eq!(status, 400, "{html}");
            assert!(html.contains(reason) && html.contains("role=\"alert\""), "{reason}: {html}");
            assert!(!html.contains("<script>alert(1)"), "escaped");
        }
        let (_, words) = call(&app, Some(&ann), Method::GET, "/api/v1/channels/ann/blocked-words", None).await;
        assert_eq!(words["words"], json!(["buy now", "turnip"]));
        // Another user, a forged token, an anonymous visitor: refused, nothing changed.
        let bob_token = csrf(&page(&app, Some(&bob), "/studio/channels/bob").await.1);
        assert_eq!(post_page(&app, &bob, form, &[("csrf", &bob_token), ("words", "")]).await.0, 403);
        assert_eq!(page(&app, Some(&bob), "/studio/channels/ann").await.0, 403);
        assert_eq!(post_page(&app, &ann, form, &[("csrf", "forged"), ("words", "")]).await.0, 403);
        let res = app.client.post(app.url(form)).header("accept", "text/html").form(&[("csrf", token.as_str()), ("words", "")]).send().await.unwrap();
        assert_eq!(res.status(), 303, "sent to sign in");
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/oauth2/start"));
        // An admin may manage the channel's list too.
        let (status, _, _) = post_page(&app, &root, form, &[("csrf", &csrf(&page(&app, Some(&root), "/studio/channels/ann").await.1)), ("words", "turnip\nbuy now\nradish")]).await;
        assert_eq!(status, 303);
        // A viewer's comment holding a word waits, and the watch page says why.
        let (_, html) = page(&app, Some(&bob), &format!("/videos/{v}")).await;
        let (status, to, _) = post_page(&app, &bob, &format!("/videos/{v}/comments"), &[("csrf", &csrf(&html)), ("text", "cheap RADISH")]).await;
        assert_eq!((status, to.as_str()), (303, format!("/videos/{v}?done=held_word#comments").as_str()));
        let (_, html) = page(&app, Some(&bob), &to).await;
        assert!(html.contains("it holds a word this channel or site reviews"), "{html}");
        assert!(!page(&app, None, &format!("/videos/{v}")).await.1.contains("cheap RADISH"), "not shown to others");

        // The instance's page: admins only, linked from the admin pages.
        let (status, html) = page(&app, Some(&root), "/admin/reports").await;
        assert!(status == 200 && html.contains("href=\"/admin/blocked-words\""), "{html}");
        let (status, html) = page(&app, Some(&root), "/admin/blocked-words").await;
        assert_eq!(status, 200);
        let token = csrf(&html);
        let (status, to, _) = post_page(&app, &root, "/admin/blocked-words", &[("csrf", &token), ("words", "ＳＰＡＭ\nmoney fast")]).await;
        assert_eq!((status, to.as_str()), (303, "/admin/blocked-words?done=saved"));
        let (_, words) = call(&app, Some(&root), Method::GET, "/api/v1/admin/blocked-words", None).await;
        assert_eq!(words["words"], json!(["money fast", "spam"]));
        let (status, _, html) = post_page(&app, &root, "/admin/blocked-words", &[("csrf", &token), ("words", &too_many)]).await;
        assert!(status == 400 && html.contains("at most 500"), "{html}");
        assert_eq!(post_page(&app, &root, "/admin/blocked-words", &[("csrf", "forged"), ("words", "")]).await.0, 403);
        // It applies on any channel's video.
        let (status, body) = comment(&app, &ann, &other, "spam here", None).await;
        assert_eq!((status, body["status"].as_str()), (201, Some("held")), "{body}");
        for who in [None, Some(&ann), Some(&bob)] {
            assert_eq!(page(&app, who, "/admin/blocked-words").await.0, 404);
        }
        assert_eq!(post_page(&app, &bob, "/admin/blocked-words", &[("csrf", &bob_token), ("words", "")]).await.0, 404);
        assert_eq!(call(&app, Some(&root), Method::GET, "/api/v1/admin/blocked-words", None).await.1["words"], json!(["money fast", "spam"]));
    }
}
