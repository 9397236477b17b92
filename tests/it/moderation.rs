//! Moderation on both stacks: reports (validation, one open report per reporter and target,
//! visibility, the rate limit), the queue's actions (hide: the video invisible everywhere but to
//! its owner and moderators; dismiss, warn, delete; resolved reports record who and how, and the
//! audit log has them), bans (the gateway session of a signed-in browser ends on its next
//! request, Bearer tokens are refused, sign-in is refused only after a correct password, the
//! address cannot register again, the content is hidden and the comments leave the counters;
//! an unban restores), an authorization
//! matrix over every moderation operation (anonymous, user, moderator, admin, banned), a sweep
//! that a banned account's token gets no 2xx from any operation of the API document that needs
//! a token, the first account as admin under concurrent sign-ups, roles, bans and quotas from
//! the command line, and per-account upload quotas.

use crate::auth::{client, form_token, sign_in};
use crate::channels::{call, new_video, publish};
use crate::gateway::Browser;
use crate::helpers::PASSWORD;
use crate::helpers::{TestApp, run_cli};
use crate::on_both_stacks;
use crate::scopes::{access, tokens_for};
use crate::uploads::{metadata, signed_in, signed_in_as, tus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use turtlemen_db::reports::{self, Resolution, TargetKind};
use turtlemen_domain::{Role, Username};
use uuid::Uuid;

async fn user_id(app: &TestApp, name: &str) -> Uuid {
    turtlemen_db::users::find_by_username(&app.db, &Username::parse(name).unwrap()).await.unwrap().unwrap().id.0
}

async fn report(app: &TestApp, who: &Browser, target: &str, id: &str, reason: &str) -> (u16, Value) {
    call(app, Some(who), Method::POST, "/api/v1/reports", Some(json!({"target": target, "id": id, "reason": reason})))
        .await
}

/// A bearer token with every API scope for `username`, from a first-party client of its own.
pub(crate) async fn bearer(app: &TestApp, username: &str) -> String {
    let id = format!("first-{username}");
    let secret = client(app, &id, false).await.expect("a secret");
    let browser = app.browser();
    sign_in(app, &browser, username).await;
    access(&tokens_for(app, &browser, &id, &secret, "openid").await)
}

on_both_stacks! {
    async fn reports_are_checked_filed_once_and_rate_limited(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let public = new_video(&app, &ann, "Public", "public", None).await;
        publish(&app, &public).await;
        let private = new_video(&app, &ann, "Secret", "private", None).await;

        // Bad reasons.
        for reason in ["", "   ", &"x".repeat(1001), "evil \u{202e}txt.exe", "bell\u{7}"] {
            let (status, body) = report(&app, &bob, "video", &public, reason).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_reason")), "{reason:?}: {body}");
        }
        // Filed once: a repeat answers the open report.
        let (status, first) = report(&app, &bob, "video", &public, "<script>alert(1)</script> spam").await;
        assert_eq!(status, 201, "{first}");
        let (status, again) = report(&app, &bob, "video", &public, "still spam").await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["created"], false);
        let open = reports::open_for(&app.db, TargetKind::Video, Uuid::parse_str(&public).unwrap()).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].reason, "<script>alert(1)</script> spam", "kept as typed, rendered escaped");
        // Someone else's private video does not exist for the reporter; nor does a random id.
        assert_eq!(report(&app, &bob, "video", &private, "hidden").await.0, 404);
        assert_eq!(report(&app, &bob, "video", &Uuid::now_v7().to_string(), "gone").await.0, 404);
        // Its owner may report it (and nobody else's report is affected).
        assert_eq!(report(&app, &ann, "video", &private, "mine").await.0, 201);
        // Users; a comment that does not exist.
        let ann_id = user_id(&app, "ann").await.to_string();
        assert_eq!(report(&app, &bob, "user", &ann_id, "harasses people").await.0, 201);
        let (status, body) = report(&app, &bob, "comment", &Uuid::now_v7().to_string(), "rude").await;
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");
        // Not JSON, not a target kind, not signed in.
        let res = app.client.post(app.url("/api/v1/reports")).header("cookie", bob.cookie_header())
            .header("content-type", "text/plain").body("target=video").send().await.unwrap();
        assert_eq!(res.status(), 415);
        let (status, _) = call(&app, Some(&bob), Method::POST, "/api/v1/reports", Some(json!({"target": "channel", "id": public, "reason": "x"}))).await;
        assert_eq!(status, 400);
        let (status, _) = call(&app, None, Method::POST, "/api/v1/reports", Some(json!({"target": "video", "id": public, "reason": "x"}))).await;
        assert_eq!(status, 401);

        // The rate limit: 20 reports an hour per account, counted in the session store.
        let carl = signed_in(&app, "carl").await;
        for n in 0..20 {
            let (status, body) = report(&app, &carl, "video", &public, &format!("report {n}")).await;
            assert!(status == 201 || status == 200, "{n}: {body}");
        }
        let (status, body) = report(&app, &carl, "video", &public, "one more").await;
        assert_eq!((status, body["error"].as_str()), (429, Some("rate_limited")), "{body}");
        // Others are not limited by carl.
        assert_eq!(report(&app, &bob, "user", &user_id(&app, "carl").await.to_string(), "floods").await.0, 201);
    }

    async fn the_report_form_works_without_javascript(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let video = new_video(&app, &ann, "Clip", "public", None).await;
        publish(&app, &video).await;
        // The owner sees no form; another user sees one with their token; a visitor a sign-in link.
        let own = ann.get(&app, &format!("/videos/{video}")).await.text().await.unwrap();
        assert!(!own.contains(&format!("action=\"/videos/{video}/report\"")), "no report form for the owner");
        let page = bob.get(&app, &format!("/videos/{video}")).await.text().await.unwrap();
        assert!(page.contains(&format!("action=\"/videos/{video}/report\"")), "{page}");
        let token = crate::gateway::field(&page, "csrf");
        let visitor = app.get_page(&format!("/videos/{video}")).await.text().await.unwrap();
        assert!(visitor.contains("Sign in to report"), "{visitor}");
        // A forged token changes nothing; the real one files the report.
        let res = bob.post(&app, &format!("/videos/{video}/report"), &[("csrf", "forged"), ("reason", "spam")]).await;
        assert_eq!(res.status(), 403);
        assert!(reports::open_for(&app.db, TargetKind::Video, Uuid::parse_str(&video).unwrap()).await.unwrap().is_empty());
        let res = bob.post(&app, &format!("/videos/{video}/report"), &[("csrf", &token), ("reason", "spam")]).await;
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("Your report is with the moderators"));
        // The channel page reports its owner.
        let page = bob.get(&app, "/@ann").await.text().await.unwrap();
        assert!(page.contains("action=\"/@ann/report\""), "{page}");
        let res = bob.post(&app, "/@ann/report", &[("csrf", &token), ("reason", "impersonation")]).await;
        assert_eq!(res.status(), 200);
        let ann_id = user_id(&app, "ann").await;
        assert_eq!(reports::open_for(&app.db, TargetKind::User, ann_id).await.unwrap().len(), 1);
    }

    async fn a_reported_comment_is_removed_and_a_banned_author_s_comments_hidden(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let carl = signed_in(&app, "carl").await;
        let moderator = signed_in_as(&app, "moira", Role::Moderator).await;
        let video = new_video(&app, &ann, "Talked about", "public", None).await;
        publish(&app, &video).await;
        let comments = format!("/api/v1/videos/{video}/comments");
        let (status, rude) = call(&app, Some(&bob), Method::POST, &comments, Some(json!({"text": "a rude remark"}))).await;
        assert_eq!(status, 201, "{rude}");
        let rude = rude["id"].as_str().unwrap().to_owned();
        let (_, kind) = call(&app, Some(&carl), Method::POST, &comments, Some(json!({"text": "a kind remark"}))).await;
        let kind = kind["id"].as_str().unwrap().to_owned();
        assert_eq!(report(&app, &ann, "comment", &rude, "rude").await.0, 201);

        let (_, queue) = call(&app, Some(&moderator), Method::GET, "/api/v1/admin/reports", None).await;
        assert_eq!(queue["targets"][0]["id"], rude.as_str(), "{queue}");
        assert_eq!(queue["targets"][0]["label"], "a rude remark");
        assert_eq!(queue["targets"][0]["owner"], "bob");
        let path = format!("/api/v1/admin/reports/comment/{rude}");
        let (status, body) = call(&app, Some(&moderator), Method::POST, &path, Some(json!({"action": "hide"}))).await;
        assert_eq!((status, body["resolved"].as_u64()), (200, Some(1)), "{body}");
        let (_, list) = call(&app, None, Method::GET, &comments, None).await;
        assert!(!list.to_string().contains("a rude remark") && list.to_string().contains("a kind remark"), "{list}");

        // Carl is banned: his comment is no longer shown, by list or by id.
        let path = format!("/api/v1/admin/users/{}/ban", user_id(&app, "carl").await);
        let (status, body) = call(&app, Some(&moderator), Method::PUT, &path, Some(json!({"reason": "spam"}))).await;
        assert!((200..300).contains(&status), "{status} {body}");
        let (_, list) = call(&app, None, Method::GET, &comments, None).await;
        assert!(!list.to_string().contains("a kind remark"), "{list}");
        assert_eq!(call(&app, None, Method::GET, &format!("/api/v1/comments/{kind}"), None).await.0, 404);
    }

    async fn a_banned_author_s_comments_leave_the_counts_and_an_unban_restores_them(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let carl = signed_in(&app, "carl").await;
        let moderator = signed_in_as(&app, "moira", Role::Moderator).await;
        let video = new_video(&app, &ann, "Counted", "public", None).await;
        publish(&app, &video).await;
        let comments = format!("/api/v1/videos/{video}/comments");
        let say = |who: &crate::gateway::Browser, body: Value| {
            let (app, comments, who) = (&app, comments.clone(), who.clone());
            async move {
                let (status, made) = call(app, Some(&who), Method::POST, &comments, Some(body)).await;
                assert_eq!(status, 201, "{made}");
                made["id"].as_str().unwrap().to_owned()
            }
        };
        let bobs = say(&bob, json!({"text": "first"})).await;
        let carls = say(&carl, json!({"text": "second"})).await;
        say(&carl, json!({"text": "a reply", "parent_id": bobs})).await;
        say(&ann, json!({"text": "another reply", "parent_id": bobs})).await;
        // The count and bob's thread's replies, as the list shows them.
        let counts = || async {
            let (_, list) = call(&app, None, Method::GET, &comments, None).await;
            let bob_thread = list["comments"].as_array().unwrap().iter().find(|c| c["id"] == bobs.as_str()).unwrap().clone();
            (list["count"].as_u64().unwrap(), bob_thread["reply_count"].as_u64().unwrap())
        };
        assert_eq!(counts().await, (4, 2));

        let carl_id = user_id(&app, "carl").await;
        let path = format!("/api/v1/admin/users/{carl_id}/ban");
        let (status, body) = call(&app, Some(&moderator), Method::PUT, &path, Some(json!({"reason": "spam"}))).await;
        assert!((200..300).contains(&status), "{status} {body}");
        assert_eq!(counts().await, (2, 1), "carl's comment and reply no longer count");
        // Removing a banned author's comment (the API no longer finds it; the storage can) moves
        // no counter: it counts as gone already.
        let removed = turtlemen_db::comments::take_down(&app.db, Uuid::parse_str(&carls).unwrap(), turtlemen_db::comments::Status::Removed);
        assert_eq!(removed.await.unwrap(), turtlemen_db::comments::Gone::Marked);
        assert_eq!(counts().await, (2, 1));
        // A second ban changes nothing.
        call(&app, Some(&moderator), Method::PUT, &path, Some(json!({"reason": "spam"}))).await;
        assert_eq!(counts().await, (2, 1));

        let res = app.client.delete(app.url(&path)).header("cookie", moderator.cookie_header()).send().await.unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(counts().await, (3, 2), "the reply counts again; the removed comment does not");
        let rows: i64 = turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE video_id = $1 AND status = 'visible'")
                .bind(Uuid::parse_str(&video).unwrap())
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert_eq!(rows, 3);
    }

    async fn hiding_a_reported_video_leaves_it_to_its_owner_and_moderators(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let moderator = signed_in_as(&app, "moira", Role::Moderator).await;
        let video = new_video(&app, &ann, "Findable title", "public", None).await;
        publish(&app, &video).await;
        turtlemen_db::videos::set_progress(&app.db, Uuid::parse_str(&video).unwrap(), 100).await.unwrap();
        assert_eq!(report(&app, &bob, "video", &video, "spam").await.0, 201);

        // The queue shows it, grouped, with the reason.
        let (status, queue) = call(&app, Some(&moderator), Method::GET, "/api/v1/admin/reports", None).await;
        assert_eq!(status, 200, "{queue}");
        assert_eq!(queue["targets"][0]["id"], video.as_str());
        assert_eq!(queue["targets"][0]["label"], "Findable title");
        assert_eq!(queue["targets"][0]["reports"][0]["reason"], "spam");
        assert_eq!(queue["targets"][0]["reports"][0]["reporter"], "bob");
        // A forged cursor.
        let (status, body) = call(&app, Some(&moderator), Method::GET, "/api/v1/admin/reports?cursor=AAAA", None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_cursor")));

        let path = format!("/api/v1/admin/reports/video/{video}");
        let (status, body) = call(&app, Some(&moderator), Method::POST, &path, Some(json!({"action": "hide", "message": "Spam links"}))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["resolved"], 1);

        // Invisible to visitors and other users, everywhere.
        let one = format!("/api/v1/videos/{video}");
        assert_eq!(call(&app, None, Method::GET, &one, None).await.0, 404);
        assert_eq!(call(&app, Some(&bob), Method::GET, &one, None).await.0, 404);
        assert_eq!(app.get_page(&format!("/videos/{video}")).await.status(), 404);
        for list in ["/api/v1/videos?sort=recent", "/api/v1/videos?sort=trending", "/api/v1/channels/ann/videos", "/api/v1/search?q=findable"] {
            let (status, body) = call(&app, None, Method::GET, list, None).await;
            assert_eq!(status, 200, "{list}: {body}");
            assert!(!body.to_string().contains(&video), "{list} lists a hidden video: {body}");
        }
        let home = app.get_page("/").await.text().await.unwrap();
        assert!(!home.contains(&video), "the home page lists a hidden video");
        // Its owner sees it, and why; a moderator sees it.
        assert_eq!(call(&app, Some(&ann), Method::GET, &one, None).await.0, 200);
        let page = ann.get(&app, &format!("/videos/{video}")).await.text().await.unwrap();
        assert!(page.contains("hidden by the moderators: Spam links"), "{page}");
        assert_eq!(call(&app, Some(&moderator), Method::GET, &one, None).await.0, 200);

        // Resolved, recorded, audited; the queue is empty.
        let all = reports::all_for(&app.db, TargetKind::Video, Uuid::parse_str(&video).unwrap()).await.unwrap();
        assert_eq!(all[0].resolution, Some(Resolution::Hidden));
        assert_eq!(all[0].resolved_by.map(|u| u.0), Some(user_id(&app, "moira").await));
        let (_, queue) = call(&app, Some(&moderator), Method::GET, "/api/v1/admin/reports", None).await;
        assert_eq!(queue["targets"].as_array().unwrap().len(), 0, "{queue}");
        let events = turtlemen_db::audit::page(&app.db, None, None, 50).await.unwrap();
        assert!(events.iter().any(|e| e.event == "report_resolved" && e.detail.contains(&video) && e.detail.contains("hidden")), "{events:?}");

        // Warn, dismiss and delete through the page's forms.
        assert_eq!(report(&app, &bob, "user", &user_id(&app, "ann").await.to_string(), "rude").await.0, 201);
        let page = moderator.get(&app, "/admin/reports").await.text().await.unwrap();
        let token = crate::gateway::field(&page, "csrf");
        let ann_id = user_id(&app, "ann").await;
        let res = moderator.post(&app, &format!("/admin/reports/user/{ann_id}"), &[("csrf", &token), ("action", "warn"), ("message", "Be kind")]).await;
        assert_eq!(res.status(), 303);
        let warned: i64 = turtlemen_db::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE kind = 'warning' AND user_id = $1 AND text = 'Be kind'").bind(ann_id).fetch_one(pool).await.unwrap());
        assert_eq!(warned, 1);
        let (_, inbox) = call(&app, Some(&ann), Method::GET, "/api/v1/me/notifications", None).await;
        assert_eq!(inbox["notifications"][0]["kind"], "warning", "{inbox}");
        assert_eq!(inbox["notifications"][0]["warning"], "Be kind", "{inbox}");
        let page = ann.get(&app, "/notifications").await.text().await.unwrap();
        assert!(page.contains("A warning from the moderators:") && page.contains("Be kind"), "{page}");
        assert_eq!(report(&app, &bob, "video", &video, "again").await.0, 404, "hidden: not visible to bob any more");
        let other = new_video(&app, &ann, "Other", "public", None).await;
        publish(&app, &other).await;
        assert_eq!(report(&app, &bob, "video", &other, "meh").await.0, 201);
        let res = moderator.post(&app, &format!("/admin/reports/video/{other}"), &[("csrf", &token), ("action", "dismiss")]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(call(&app, None, Method::GET, &format!("/api/v1/videos/{other}"), None).await.0, 200, "dismissed: still shown");
        assert_eq!(report(&app, &bob, "video", &other, "really").await.0, 201, "a new report after the dismissal");
        let res = moderator.post(&app, &format!("/admin/reports/video/{other}"), &[("csrf", &token), ("action", "delete")]).await;
        assert_eq!(res.status(), 303);
        assert!(turtlemen_db::videos::get(&app.db, Uuid::parse_str(&other).unwrap()).await.unwrap().is_none());
        // A forged token changes nothing.
        assert_eq!(report(&app, &bob, "user", &ann_id.to_string(), "x").await.0, 201);
        let res = moderator.post(&app, &format!("/admin/reports/user/{ann_id}"), &[("csrf", "forged"), ("action", "dismiss")]).await;
        assert_eq!(res.status(), 403);
        assert_eq!(reports::open_for(&app.db, TargetKind::User, ann_id).await.unwrap().len(), 1);
    }

    async fn a_ban_ends_sessions_refuses_tokens_and_sign_in_and_hides_content(app) {
        let ann = signed_in(&app, "ann").await;
        let admin = signed_in_as(&app, "ada", Role::Admin).await;
        let video = new_video(&app, &ann, "Banned clip", "public", None).await;
        publish(&app, &video).await;
        let token = bearer(&app, "ann").await;
        assert_eq!(app.client.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().status(), 200);
        let (status, _) = call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await;
        assert_eq!(status, 200);

        let ann_id = user_id(&app, "ann").await;
        let res = app.client.put(app.url(&format!("/api/v1/admin/users/{ann_id}/ban"))).header("cookie", admin.cookie_header())
            .json(&json!({"reason": "spam ring"})).send().await.unwrap();
        assert_eq!(res.status(), 204);

        // The open browser session is signed out on its next request.
        let (status, _) = call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await;
        assert_eq!(status, 401, "the gateway session ended");
        let res = ann.get(&app, "/studio/videos").await;
        assert_eq!(res.status(), 303, "sent to sign in");
        // The token is refused.
        let res = app.client.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "account_banned");
        // Sign-in: a wrong password is answered as always; the right one says suspended.
        let browser = app.browser();
        let csrf = form_token(&app, &browser, "/auth/login").await;
        let res = browser.post(app.url("/auth/login")).form(&[("csrf", csrf.as_str()), ("username", "ann"), ("password", "wrong password!"), ("return_to", "/")]).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(!res.text().await.unwrap().contains("suspended"));
        let csrf = form_token(&app, &browser, "/auth/login").await;
        let res = browser.post(app.url("/auth/login")).form(&[("csrf", csrf.as_str()), ("username", "ann"), ("password", PASSWORD), ("return_to", "/")]).send().await.unwrap();
        assert_eq!(res.status(), 403);
        assert!(res.text().await.unwrap().contains("suspended"));
        // Registering again with the address: answered as a taken one (without SMTP, said as
        // taken), and no account made.
        let csrf = form_token(&app, &browser, "/auth/register").await;
        let res = browser.post(app.url("/auth/register")).form(&[("csrf", csrf.as_str()), ("username", "ann2"), ("email", "ANN@example.org"), ("display_name", "Ann"), ("password", PASSWORD), ("return_to", "/")]).send().await.unwrap();
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("An account already uses this address."));
        assert!(turtlemen_db::users::find_by_username(&app.db, &Username::parse("ann2").unwrap()).await.unwrap().is_none());
        // The content is hidden: channel, video, lists, search.
        assert_eq!(call(&app, None, Method::GET, "/api/v1/channels/ann", None).await.0, 404);
        assert_eq!(app.get_page("/@ann").await.status(), 404);
        assert_eq!(call(&app, None, Method::GET, &format!("/api/v1/videos/{video}"), None).await.0, 404);
        let (_, found) = call(&app, None, Method::GET, "/api/v1/search?q=ann", None).await;
        assert!(found["channels"].as_array().unwrap().is_empty(), "{found}");
        let (_, recent) = call(&app, None, Method::GET, "/api/v1/videos?sort=recent", None).await;
        assert!(!recent.to_string().contains(&video), "{recent}");
        let events = turtlemen_db::audit::page(&app.db, None, None, 50).await.unwrap();
        assert!(events.iter().any(|e| e.event == "user_banned" && e.detail.contains(&ann_id.to_string())));

        // The unban restores: sign-in, channel, video.
        let res = app.client.delete(app.url(&format!("/api/v1/admin/users/{ann_id}/ban"))).header("cookie", admin.cookie_header()).send().await.unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(call(&app, None, Method::GET, "/api/v1/channels/ann", None).await.0, 200);
        assert_eq!(call(&app, None, Method::GET, &format!("/api/v1/videos/{video}"), None).await.0, 200);
        let again = Browser::default();
        let (landed, _) = again.navigate(&app, "/studio", "ann").await;
        assert!(landed.ends_with("/studio"), "{landed}");
    }

    async fn who_may_moderate(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let moderator = signed_in_as(&app, "moira", Role::Moderator).await;
        let admin = signed_in_as(&app, "ada", Role::Admin).await;
        let carl = signed_in(&app, "carl").await;
        let video = new_video(&app, &ann, "Clip", "public", None).await;
        publish(&app, &video).await;
        assert_eq!(report(&app, &bob, "video", &video, "spam").await.0, 201);
        let ann_id = user_id(&app, "ann").await;
        let carl_id = user_id(&app, "carl").await;
        let mo_id = user_id(&app, "moira").await;
        let ada_id = user_id(&app, "ada").await;
        let carl_token = bearer(&app, "carl").await;
        turtlemen_db::moderation::ban(&app.db, turtlemen_domain::UserId(carl_id), "test").await.unwrap();
        let _ = carl;

        // (method, path, body, status for: anonymous, user, moderator, admin)
        let dismiss = format!("/api/v1/admin/reports/video/{video}");
        let cases: Vec<(Method, String, Option<Value>, [u16; 4])> = vec![
            (Method::GET, "/api/v1/admin/reports".into(), None, [404, 404, 200, 200]),
            (Method::POST, dismiss.clone(), Some(json!({"action": "dismiss"})), [404, 404, 200, 200]),
            (Method::GET, "/api/v1/admin/users?q=a".into(), None, [404, 404, 200, 200]),
            (Method::PUT, format!("/api/v1/admin/users/{ann_id}/ban"), Some(json!({})), [404, 404, 204, 204]),
            (Method::DELETE, format!("/api/v1/admin/users/{ann_id}/ban"), None, [404, 404, 204, 204]),
            (Method::PUT, format!("/api/v1/admin/users/{ann_id}/role"), Some(json!({"role": "user"})), [404, 404, 404, 204]),
            (Method::PUT, format!("/api/v1/admin/users/{ann_id}/quota"), Some(json!({"total_bytes": null})), [404, 404, 404, 204]),
            (Method::GET, "/api/v1/admin/blocked-words".into(), None, [404, 404, 404, 200]),
            (Method::PUT, "/api/v1/admin/blocked-words".into(), Some(json!({"words": ["spam"]})), [404, 404, 404, 200]),
            // Nobody bans an equal or a higher role, nor themselves; the moderator banned by the
            // admin is signed out at once (404 from then on: no identity).
            (Method::PUT, format!("/api/v1/admin/users/{ada_id}/ban"), Some(json!({})), [404, 404, 403, 403]),
            (Method::PUT, format!("/api/v1/admin/users/{mo_id}/ban"), Some(json!({})), [404, 404, 403, 204]),
            (Method::DELETE, format!("/api/v1/admin/users/{mo_id}/ban"), None, [404, 404, 404, 204]),
        ];
        for (method, path, body, expected) in cases {
            let people = [("anonymous", None), ("user", Some(&bob)), ("moderator", Some(&moderator)), ("admin", Some(&admin))];
            for ((name, who), want) in people.into_iter().zip(expected) {
                let (status, answer) = call(&app, who, method.clone(), &path, body.clone()).await;
                assert_eq!(status, want, "{method} {path} as {name}: {answer}");
            }
            // The banned account's token: refused.
            let mut req = app.client.request(method.clone(), app.url(&path)).bearer_auth(&carl_token);
            if let Some(b) = &body {
                req = req.json(b);
            }
            assert_eq!(req.send().await.unwrap().status(), 403, "{method} {path} as a banned account");
        }
        // The admin pages: 404 to anyone but moderators and admins (the moderator signs in again).
        let moderator = Browser::default();
        let (landed, _) = moderator.navigate(&app, "/studio", "moira").await;
        assert!(landed.ends_with("/studio"), "{landed}");
        for path in ["/admin/reports", "/admin/users"] {
            assert_eq!(app.get_page(path).await.status(), 404);
            assert_eq!(bob.get(&app, path).await.status(), 404);
            assert_eq!(moderator.get(&app, path).await.status(), 200);
            assert_eq!(admin.get(&app, path).await.status(), 200);
        }
        // The instance's blocked words: admins only, as through the API; a banned account's
        // token is refused.
        assert_eq!(app.get_page("/admin/blocked-words").await.status(), 404);
        assert_eq!(bob.get(&app, "/admin/blocked-words").await.status(), 404);
        assert_eq!(moderator.get(&app, "/admin/blocked-words").await.status(), 404);
        assert_eq!(admin.get(&app, "/admin/blocked-words").await.status(), 200);
        let res = app.client.get(app.url("/admin/blocked-words")).header("accept", "text/html").bearer_auth(&carl_token).send().await.unwrap();
        assert_eq!(res.status(), 403, "a banned account");
        let res = app.client.post(app.url("/studio/channels/ann/blocked-words")).header("accept", "text/html").bearer_auth(&carl_token).form(&[("csrf", "x"), ("words", "")]).send().await.unwrap();
        assert_eq!(res.status(), 403, "a banned account");
        let link = "href=\"/admin/blocked-words\"";
        assert!(!moderator.get(&app, "/admin/reports").await.text().await.unwrap().contains(link), "not linked for moderators");
        assert!(admin.get(&app, "/admin/users").await.text().await.unwrap().contains(link), "linked for admins");
        // A moderator's page has no role or quota forms; an admin's has them.
        let page = moderator.get(&app, "/admin/users?q=ann").await.text().await.unwrap();
        assert!(page.contains(&format!("/admin/users/{ann_id}/ban")) && !page.contains("/role\""), "{page}");
        let page = admin.get(&app, "/admin/users?q=ann").await.text().await.unwrap();
        assert!(page.contains(&format!("/admin/users/{ann_id}/role")), "{page}");
        // The moderator posting a role change through the page: 404, nothing changed.
        let token = crate::gateway::field(&moderator.get(&app, "/admin/users").await.text().await.unwrap(), "csrf");
        let res = moderator.post(&app, &format!("/admin/users/{ann_id}/role"), &[("csrf", &token), ("role", "admin")]).await;
        assert_eq!(res.status(), 404);
        let ann_now = turtlemen_db::users::find_by_id(&app.db, turtlemen_domain::UserId(ann_id)).await.unwrap().unwrap();
        assert_eq!(ann_now.role, Role::User);
    }

    async fn a_banned_token_gets_nothing_from_any_operation(app) {
        let _ann = signed_in(&app, "ann").await;
        let token = bearer(&app, "ann").await;
        let ann_id = user_id(&app, "ann").await;
        turtlemen_db::moderation::ban(&app.db, turtlemen_domain::UserId(ann_id), "sweep").await.unwrap();
        let (status, doc) = app.get_json("/api/v1/openapi.json").await;
        assert_eq!(status, 200);
        let mut swept = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
                let needs_token = op["security"].as_array().is_some_and(|s| !s.is_empty());
                if !needs_token {
                    continue;
                }
                let concrete = path.replace("{id}", &Uuid::now_v7().to_string()).replace("{handle}", "ann").replace("{target}", "video");
                let res = app.client.request(method.clone(), app.url(&format!("/api/v1{concrete}"))).bearer_auth(&token)
                    .header("tus-resumable", "1.0.0").json(&json!({})).send().await.unwrap();
                assert!(!res.status().is_success(), "{method} {path} answered {} to a banned token", res.status());
                swept += 1;
            }
        }
        assert!(swept > 20, "only {swept} operations swept");
    }

    async fn per_account_quotas_override_the_instance(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let admin = signed_in_as(&app, "ada", Role::Admin).await;
        let ann_id = user_id(&app, "ann").await;
        let (status, body) = call(&app, Some(&admin), Method::PUT, &format!("/api/v1/admin/users/{ann_id}/quota"), Some(json!({"total_bytes": 1500, "daily_bytes": null}))).await;
        assert_eq!(status, 204, "{body}");
        let create = |who: &Browser, length: &str| tus(&app, who, Method::POST, "/api/v1/uploads")
            .header("upload-length", length.to_owned())
            .header("upload-metadata", metadata(&[("filename", "a.mp4"), ("title", "t")]));
        assert_eq!(create(&ann, "1000").send().await.unwrap().status(), StatusCode::CREATED);
        let res = create(&ann, "1000").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "quota_exceeded");
        // Bob keeps the instance's setting (none).
        assert_eq!(create(&bob, "1000").send().await.unwrap().status(), StatusCode::CREATED);
        assert_eq!(create(&bob, "1000").send().await.unwrap().status(), StatusCode::CREATED);
        // Back to the instance's setting.
        let (status, _) = call(&app, Some(&admin), Method::PUT, &format!("/api/v1/admin/users/{ann_id}/quota"), Some(json!({}))).await;
        assert_eq!(status, 204);
        assert_eq!(create(&ann, "1000").send().await.unwrap().status(), StatusCode::CREATED);
        let events = turtlemen_db::audit::page(&app.db, None, None, 50).await.unwrap();
        assert!(events.iter().any(|e| e.event == "quota_changed" && e.detail.contains("total=1500")), "{events:?}");
    }
}

/// Of ten accounts created at once on a fresh instance, exactly one is admin.
async fn first_account_is_the_one_admin(stack: crate::helpers::Stack) {
    let Some((mut settings, dir, schema)) = crate::helpers::fresh_settings(stack).await else { return };
    settings.first_user_admin = Some(true);
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let db = app.db.clone();
            tokio::spawn(async move {
                let name = format!("early{n}");
                let form = turtlemen_auth::accounts::AccountForm {
                    username: &name,
                    email: &format!("{name}@example.org"),
                    display_name: None,
                    password: PASSWORD,
                    role: Role::User,
                    promote_if_first: true,
                };
                turtlemen_auth::accounts::create(&db, form).await.unwrap().role
            })
        })
        .collect();
    let mut admins = 0;
    for t in tasks {
        if t.await.unwrap() == Role::Admin {
            admins += 1;
        }
    }
    assert_eq!(admins, 1, "exactly one first account");
    assert!(turtlemen_db::moderation::has_admin(&app.db).await.unwrap());
    // Later sign-ups are users, through the form too.
    let browser = app.browser();
    let csrf = form_token(&app, &browser, "/auth/register").await;
    let res = browser
        .post(app.url("/auth/register"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "later"),
            ("email", "later@example.org"),
            ("display_name", "Later"),
            ("password", PASSWORD),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "without SMTP the new account is signed in at once");
    let later =
        turtlemen_db::users::find_by_username(&app.db, &Username::parse("later").unwrap()).await.unwrap().unwrap();
    assert_eq!(later.role, Role::User);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_account_becomes_the_one_admin_on_sqlite() {
    first_account_is_the_one_admin(crate::helpers::Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_account_becomes_the_one_admin_on_postgres() {
    first_account_is_the_one_admin(crate::helpers::Stack::External).await;
}

on_both_stacks! {
    async fn with_first_user_admin_off_nobody_is_promoted(app) {
        // The test instances run with first_user_admin off (helpers::fresh_settings).
        let browser = app.browser();
        let csrf = form_token(&app, &browser, "/auth/register").await;
        let res = browser.post(app.url("/auth/register")).form(&[("csrf", csrf.as_str()), ("username", "first"), ("email", "first@example.org"), ("display_name", "First"), ("password", PASSWORD), ("return_to", "/")]).send().await.unwrap();
        assert_eq!(res.status(), 303, "signed in at once (no SMTP)");
        assert!(!turtlemen_db::moderation::has_admin(&app.db).await.unwrap());
    }
}

/// Roles, bans and quotas from the command line, against a stopped SQLite instance's folder;
/// then the instance started on it sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_bans_and_quotas_from_the_command_line() {
    let app = TestApp::spawn(crate::helpers::Stack::Embedded).await.unwrap();
    let ann = signed_in(&app, "ann").await;
    let data = app.data_dir.to_str().unwrap().to_owned();
    let env = [("TURTLEMEN_DATA_DIR", data.as_str())];
    let (code, out, err) = run_cli(&["admin", "set-role", "--username", "ann", "--role", "moderator"], "", &env);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run_cli(&["admin", "set-role", "--username", "nobody", "--role", "admin"], "", &env);
    assert_ne!(code, 0);
    assert!(err.contains("nobody"), "{err}");
    let (code, _, _) = run_cli(&["admin", "set-role", "--username", "ann", "--role", "root"], "", &env);
    assert_eq!(code, 2);
    let ann_id = user_id(&app, "ann").await;
    let user = turtlemen_db::users::find_by_id(&app.db, turtlemen_domain::UserId(ann_id)).await.unwrap().unwrap();
    assert_eq!(user.role, Role::Moderator);
    let (code, out, err) = run_cli(&["admin", "set-quota", "--username", "ann", "--total", "5000"], "", &env);
    assert_eq!(code, 0, "{out}{err}");
    let user = turtlemen_db::users::find_by_id(&app.db, turtlemen_domain::UserId(ann_id)).await.unwrap().unwrap();
    assert_eq!(user.quota.total_bytes, Some(5000));
    // A ban from the command line ends the running instance's session of ann at once.
    assert_eq!(call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await.0, 200);
    let (code, out, err) = run_cli(&["admin", "ban", "--username", "ann", "--reason", "spam"], "", &env);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await.0, 401);
    let events = turtlemen_db::audit::page(&app.db, None, None, 50).await.unwrap();
    assert!(
        events.iter().any(|e| e.event == "user_banned" && e.ip == "command-line" && e.user_id.is_none()),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e.event == "role_changed" && e.detail.contains("to=moderator")), "{events:?}");
    let (code, out, err) = run_cli(&["admin", "unban", "--username", "ann"], "", &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !turtlemen_db::users::find_by_id(&app.db, turtlemen_domain::UserId(ann_id)).await.unwrap().unwrap().is_banned()
    );
    app.stop().await;
}

/// A gateway that reuses a session it read for a minute: only the ban's announcement can end
/// the session in time.
const LONG_CACHE: std::time::Duration = std::time::Duration::from_secs(60);

/// Two instances (gateway, auth and API each) on one PostgreSQL and one Redis, each gateway
/// reusing what it read for a minute: a ban through one signs the user out on the very next
/// request through either, and for every session of theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ban_signs_the_user_out_at_once_on_two_gateways_on_redis() {
    let Some((settings, dir, schema)) = crate::helpers::fresh_settings(crate::helpers::Stack::External).await else {
        return;
    };
    let one = TestApp::spawn_with_session_cache(settings, dir, schema, LONG_CACHE).await;
    let two = one.replica().await;
    let ann = signed_in(&one, "ann").await;
    let admin = signed_in_as(&one, "ada", Role::Admin).await;
    let elsewhere = Browser::default();
    let (landed, _) = elsewhere.navigate(&two, "/studio", "ann").await;
    assert!(landed.ends_with("/studio"), "{landed}");
    // Both gateways hold both sessions of ann in their caches now.
    for app in [&one, &two] {
        for browser in [&ann, &elsewhere] {
            assert_eq!(call(app, Some(browser), Method::GET, "/api/v1/me", None).await.0, 200);
        }
    }
    let ann_id = user_id(&one, "ann").await;
    let res = one
        .client
        .put(one.url(&format!("/api/v1/admin/users/{ann_id}/ban")))
        .header("cookie", admin.cookie_header())
        .json(&json!({"reason": "spam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // The very next request of each session, on the other gateway first: signed out.
    let res = ann.get(&two, "/studio/videos").await;
    assert_eq!(res.status(), 303, "sent to sign in, not refused as suspended");
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/oauth2/start"));
    assert_eq!(call(&one, Some(&elsewhere), Method::GET, "/api/v1/me", None).await.0, 401);
    // The admin's own session, cached on both gateways, is untouched.
    for app in [&one, &two] {
        assert_eq!(call(app, Some(&admin), Method::GET, "/api/v1/me", None).await.0, 200);
    }
    two.stop().await;
    one.stop().await;
}

/// `turtlemen admin ban` beside roles whose Redis keys are under a prefix of their own (the
/// test instance's, never the default): the signed-in session ends at once, on a gateway that
/// reuses what it read for a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_from_the_command_line_ends_sessions_under_the_configured_prefix_on_redis() {
    let Some((settings, dir, schema)) = crate::helpers::fresh_settings(crate::helpers::Stack::External).await else {
        return;
    };
    let app = TestApp::spawn_with_session_cache(settings, dir, schema, LONG_CACHE).await;
    assert_ne!(app.internals().session_prefix, turtlemen::app::Internals::default().session_prefix);
    let ann = signed_in(&app, "ann").await;
    assert_eq!(call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await.0, 200);
    let config = turtlemen_config::Config::resolve(app.settings.clone()).expect("valid test config");
    let ban = turtlemen::cli::AdminCommand::Ban { username: "ann".into(), reason: "spam".into() };
    turtlemen::cli::run_admin(ban, &config, app.internals()).await.expect("banned");
    assert_eq!(call(&app, Some(&ann), Method::GET, "/api/v1/me", None).await.0, 401, "signed out at once");
    let res = ann.get(&app, "/studio/videos").await;
    assert_eq!(res.status(), 303, "sent to sign in");
    app.stop().await;
}
