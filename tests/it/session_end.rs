//! Sessions that end when they should, on both stacks: ending an auth-service session (a
//! password change elsewhere, a reset, "Sign out this session", the account page's own sign-out)
//! ends the gateway sessions built on it at once; `/oauth2/sign_out` needs a POST with the
//! session's token; CSRF tokens die with their session (the studio's, the auth pages'); the
//! forgot-password form is limited per client address; an external issuer's back-channel logout
//! ends the session too; per-user answers are not stored by
//! caches, and HTTPS answers carry `Strict-Transport-Security`.

use crate::gateway::{Browser, field, me, user};
use crate::helpers::PASSWORD;
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::on_both_stacks;
use crate::uploads::{create, signed_in};
use turtlemen_domain::Role;

/// A browser signed in through the gateway as `username` (who exists already).
async fn gateway_browser(app: &TestApp, username: &str) -> Browser {
    let browser = Browser::default();
    browser.navigate(app, "/oauth2/start?rd=/", username).await;
    assert_eq!(me(app, &browser).await.0, 200, "signed in");
    browser
}

/// The account page and its CSRF token, as `browser` sees it.
async fn account(app: &TestApp, browser: &Browser) -> (String, String) {
    let res = browser.get(app, "/auth/account").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let csrf = field(&html, "csrf");
    (html, csrf)
}

/// The sign-out token of the navigation on the home page.
async fn sign_out_token(app: &TestApp, browser: &Browser) -> String {
    let res = browser.get(app, "/").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("action=\"/oauth2/sign_out\""), "{html}");
    field(&html, "token")
}

on_both_stacks! {
    async fn a_password_change_elsewhere_ends_the_other_gateway_sessions(app) {
        user(&app, "ann", Role::User).await;
        let here = gateway_browser(&app, "ann").await;
        let there = gateway_browser(&app, "ann").await;
        let (_, csrf) = account(&app, &here).await;
        let res = here
            .post(&app, "/auth/account/password", &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", "a brand new passphrase")])
            .await;
        assert_eq!(res.status(), 303);
        let (status, _) = me(&app, &there).await;
        assert_eq!(status, 401, "the other browser's gateway session ended with its auth session");
        assert!(there.session().is_none(), "its cookie is cleared");
        let res = there.get(&app, "/upload").await;
        assert_eq!(res.status(), 303, "a required page asks to sign in again");
        assert_eq!(me(&app, &here).await.0, 200, "the browser that changed it stays signed in");
    }

    async fn signing_out_on_the_account_page_ends_the_gateway_session(app) {
        user(&app, "ann", Role::User).await;
        let here = gateway_browser(&app, "ann").await;
        let there = gateway_browser(&app, "ann").await;
        // "Sign out this session" for the other browser.
        let (html, csrf) = account(&app, &here).await;
        let marker = "/auth/account/sessions/";
        let ids: Vec<&str> = html.match_indices(marker).map(|(at, _)| html[at + marker.len()..].split('/').next().unwrap()).collect();
        assert_eq!(ids.len(), 2, "{html}");
        let current_at = html.find("(this browser)").unwrap();
        let other = ids.iter().find(|id| {
            let at = html.find(&format!("{marker}{id}/revoke")).unwrap();
            // The current session's row is the one whose form follows the "(this browser)" mark.
            !(at > current_at && html[current_at..at].matches(marker).count() == 0)
        }).unwrap();
        let res = here.post(&app, &format!("{marker}{other}/revoke"), &[("csrf", &csrf)]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(me(&app, &there).await.0, 401, "the revoked session's gateway session ended");
        assert_eq!(me(&app, &here).await.0, 200);

        // The account page's own "Sign out".
        let (_, csrf) = account(&app, &here).await;
        let res = here.post(&app, "/auth/logout", &[("csrf", &csrf)]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(me(&app, &here).await.0, 401, "signing out of the auth service signs out of the gateway");
    }

    async fn a_password_reset_ends_every_gateway_session(app) {
        user(&app, "ann", Role::User).await;
        let signed_in = gateway_browser(&app, "ann").await;
        let stranger = Browser::default();
        let res = stranger.get(&app, "/auth/forgot-password").await;
        let csrf = field(&res.text().await.unwrap(), "csrf");
        let res = stranger.post(&app, "/auth/forgot-password", &[("csrf", &csrf), ("name", "ann")]).await;
        assert_eq!(res.status(), 200);
        let mails = crate::recovery::wait_for_mail(|| crate::recovery::outbox(&app), 1).await;
        let token = crate::recovery::token_of(&crate::recovery::link_in(&mails[0], "/auth/reset-password?token="));
        let res = stranger.get(&app, &format!("/auth/reset-password?token={token}")).await;
        let csrf = field(&res.text().await.unwrap(), "csrf");
        let res = stranger.post(&app, "/auth/reset-password", &[("csrf", &csrf), ("token", &token), ("new_password", "a brand new passphrase")]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(me(&app, &signed_in).await.0, 401, "every gateway session ended");
    }

    async fn ending_every_session_of_a_user_ends_their_gateway_sessions(app) {
        user(&app, "ann", Role::User).await;
        user(&app, "bob", Role::User).await;
        let ann = gateway_browser(&app, "ann").await;
        let bob = gateway_browser(&app, "bob").await;
        let ann_id = crate::auth::user_id(&app, "ann").await;
        let ended = turtlemen_auth::sso::end_all_sessions(&app.db, &app.sessions, ann_id).await.unwrap();
        assert_eq!(ended, 1);
        assert_eq!(me(&app, &ann).await.0, 401);
        assert_eq!(me(&app, &bob).await.0, 200, "another user is not affected");
        // A new sign-in after that works.
        let again = gateway_browser(&app, "ann").await;
        assert_eq!(me(&app, &again).await.0, 200);
    }

    async fn an_issuers_back_channel_logout_ends_the_gateway_session(app) {
        user(&app, "ann", Role::User).await;
        let ann = gateway_browser(&app, "ann").await;
        let key = turtlemen_gateway::session::key(&ann.session().unwrap());
        let record: serde_json::Value = serde_json::from_slice(&app.sessions.get(&key).await.unwrap().unwrap()).unwrap();
        let (sid, sub) = (record["sid"].as_str().unwrap().to_string(), record["sub"].as_str().unwrap().to_string());
        // Logout tokens signed with the issuer's key, as an external issuer (Keycloak) sends them.
        let jwks: serde_json::Value = app.client.get(app.url("/auth/jwks")).send().await.unwrap().json().await.unwrap();
        let kid = jwks["keys"].as_array().unwrap().iter().find(|k| k["kty"] == "EC").unwrap()["kid"].as_str().unwrap().to_string();
        let signing = jsonwebtoken::EncodingKey::from_ec_der(&crate::helpers::signing_key(&app, &kid).await);
        let sign = |typ: &str, claims: &serde_json::Value| {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.kid = Some(kid.clone());
            header.typ = Some(typ.to_string());
            jsonwebtoken::encode(&header, claims, &signing).unwrap()
        };
        let now = chrono::Utc::now().timestamp();
        let good = serde_json::json!({
            "iss": app.url("/auth"), "aud": "turtlemen-gateway", "iat": now, "exp": now + 120, "jti": "one",
            "sub": sub, "sid": sid, "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        let with = |key: &str, value: serde_json::Value| {
            let mut c = good.clone();
            c[key] = value;
            c
        };
        let mut no_event = good.clone();
        no_event.as_object_mut().unwrap().remove("events");
        let post = |token: String| app.client.post(app.url("/oauth2/backchannel_logout")).form(&[("logout_token", token)]).send();
        for (what, token) in [
            ("no logout event", sign("logout+jwt", &no_event)),
            ("a plain JWT's type", sign("JWT", &good)),
            ("a nonce", sign("logout+jwt", &with("nonce", "n".into()))),
            ("another audience", sign("logout+jwt", &with("aud", "someone-else".into()))),
            ("expired", sign("logout+jwt", &with("exp", (now - 600).into()))),
            ("an access token's type", sign("at+jwt", &good)),
            ("garbage", "garbage".to_string()),
        ] {
            let res = post(token).await.unwrap();
            assert_eq!(res.status(), 400, "{what}");
            assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
            assert_eq!(me(&app, &ann).await.0, 200, "{what}: the session lives on");
        }
        let res = post(sign("logout+jwt", &good)).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(me(&app, &ann).await.0, 401, "the session built on the ended login session ended");
    }

    async fn sign_out_needs_a_post_with_the_sessions_token(app) {
        user(&app, "ann", Role::User).await;
        let ann = gateway_browser(&app, "ann").await;
        let other = gateway_browser(&app, "ann").await;

        // A top-level GET (a link on another site) only asks.
        let res = ann.get(&app, "/oauth2/sign_out").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        assert!(html.contains("method=\"post\""), "{html}");
        assert_eq!(me(&app, &ann).await.0, 200, "a GET signs nobody out");
        let token = field(&html, "token");
        assert_eq!(token, sign_out_token(&app, &ann).await, "the navigation carries the same token");

        // A POST without the token, with a forged one, or with another session's: refused.
        let others = sign_out_token(&app, &other).await;
        assert_ne!(token, others, "tokens are per session");
        for bad in ["", "forged", others.as_str()] {
            let res = ann.post(&app, "/oauth2/sign_out", &[("token", bad)]).await;
            assert_eq!(res.status(), 403, "{bad:?}");
            assert_eq!(me(&app, &ann).await.0, 200);
        }
        // The right one signs out and goes home (or to a local `rd`, never elsewhere).
        let res = ann.post(&app, "/oauth2/sign_out", &[("token", &token)]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(me(&app, &ann).await.0, 401);
        assert_eq!(me(&app, &other).await.0, 200, "the other session lives on");
    }

    async fn studio_tokens_end_with_the_session(app) {
        let ann = signed_in(&app, "ann").await;
        let (_, id) = create(&app, &ann, 1000).await;
        let edit = format!("/studio/videos/{id}/edit");
        let res = ann.get(&app, &edit).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        let old = field(&html, "csrf");

        // Sign out (through the auth service as well), then in again.
        let token = sign_out_token(&app, &ann).await;
        let res = ann.post(&app, "/oauth2/sign_out", &[("token", &token)]).await;
        let end_session = res.headers()["location"].to_str().unwrap().to_string();
        ann.get(&app, &end_session).await;
        ann.navigate(&app, "/oauth2/start?rd=/", "ann").await;
        assert_eq!(me(&app, &ann).await.0, 200);
        let form = [("csrf", old.as_str()), ("title", "Renamed"), ("description", ""), ("privacy", "public")];
        let res = app.client.post(app.url(&edit)).header("cookie", ann.cookie_header()).header("accept", "text/html").form(&form).send().await.unwrap();
        assert_eq!(res.status(), 403, "the token of an ended session is refused");
        let res = ann.get(&app, &edit).await;
        assert_eq!(res.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "per-user pages are not stored");
        let fresh = field(&res.text().await.unwrap(), "csrf");
        assert_ne!(fresh, old);
    }

    async fn auth_form_tokens_are_bound_to_the_sso_session(app) {
        user(&app, "ann", Role::User).await;
        user(&app, "mallory", Role::User).await;
        // The pre-login token changes at sign-in.
        let ann = Browser::default();
        ann.get(&app, "/auth/login").await;
        let before = ann.cookie("turtlemen_csrf").expect("a CSRF cookie before signing in");
        ann.navigate(&app, "/oauth2/start?rd=/", "ann").await;
        assert_ne!(ann.cookie("turtlemen_csrf"), Some(before), "rotated at sign-in");

        // A cookie and token pair made in another account's browser does not pass in Ann's.
        let mallory = gateway_browser(&app, "mallory").await;
        let (_, planted_token) = account(&app, &mallory).await;
        let planted_cookie = mallory.cookie("turtlemen_csrf").unwrap();
        ann.set_cookie("turtlemen_csrf", &planted_cookie);
        let res = ann
            .post(&app, "/auth/account/password", &[("csrf", &planted_token), ("current_password", "x"), ("new_password", "a brand new passphrase")])
            .await;
        assert_eq!(res.status(), 403, "another session's pair is refused");
        let (_, own) = account(&app, &ann).await;
        let res = ann.post(&app, "/auth/account/password", &[("csrf", &own), ("current_password", "wrong password"), ("new_password", "a brand new passphrase")]).await;
        assert_eq!(res.status(), 422, "its own token passes the CSRF check");
    }

    async fn forgot_password_is_limited_per_client_address(app) {
        let browser = Browser::default();
        let res = browser.get(&app, "/auth/forgot-password").await;
        let csrf = field(&res.text().await.unwrap(), "csrf");
        let mut statuses = Vec::new();
        for i in 0..6 {
            let res = browser.post(&app, "/auth/forgot-password", &[("csrf", &csrf), ("name", &format!("someone{i}"))]).await;
            statuses.push(res.status().as_u16());
            if res.status() == 429 {
                let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=900).contains(&wait), "{wait}");
            }
        }
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
        // Signing in is another bucket.
        assert_eq!(browser.get(&app, "/auth/login").await.status(), 200);
    }

    async fn per_user_answers_are_not_stored(app) {
        let ann = signed_in(&app, "ann").await;
        for path in ["/api/v1/me", "/oauth2/userinfo", "/studio/videos", "/auth/account", "/auth/forgot-password", "/"] {
            let res = ann.get(&app, path).await;
            assert!(res.status().is_success(), "{path}: {}", res.status());
            assert_eq!(res.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{path}");
        }
        // Plain http: no Strict-Transport-Security.
        assert!(app.get("/healthz").await.headers().get("strict-transport-security").is_none());
    }
}

/// Over https every answer carries `Strict-Transport-Security`, unless it is turned off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_transport_security_over_https() {
    for (max_age, expected) in [(None, Some("max-age=31536000")), (Some(0), None)] {
        let (mut settings, dir, schema) = fresh_settings(Stack::Embedded).await.unwrap();
        settings.public_url = Some("https://videos.example/".into());
        settings.hsts_max_age_secs = max_age;
        let app = TestApp::spawn_with(settings, dir, schema).await;
        let res = app.get("/healthz").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("strict-transport-security").map(|v| v.to_str().unwrap()), expected);
        app.stop().await;
    }
}
