//! The auth service over HTTP, on both stacks: sign-in and registration forms (CSRF, no user
//! enumeration, errors by field), and the OpenID Connect endpoints' refusals — unknown
//! clients and unregistered redirect URIs (a page, never a redirect), PKCE, single-use codes,
//! client authentication, forged and mistyped tokens, refresh reuse, session revocation.
//! The happy path against a certified client library lives in the browser tests.

use crate::helpers::{PASSWORD, TestApp, create_account};
use crate::on_both_stacks;
use base64::Engine;
use reqwest::StatusCode;
use turtlemen_auth::clients::{self, NewClient};
use turtlemen_domain::Role;

pub(crate) const CALLBACK: &str = "http://127.0.0.1:9/cb";

/// Creates the account `username`, a plain user.
pub(crate) async fn user(app: &TestApp, username: &str) {
    create_account(&app.db, username, Role::User).await;
}

pub(crate) async fn client(app: &TestApp, id: &str, public: bool) -> Option<String> {
    let new = NewClient {
        client_id: id.into(),
        name: None,
        redirect_uris: vec![CALLBACK.into()],
        post_logout_redirect_uris: vec![],
        public,
        first_party: true,
        id_token_alg: None,
    };
    clients::create(&app.db, new).await.unwrap()
}

pub(crate) fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

pub(crate) async fn form_token(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    let page = browser.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    csrf_of(&page.text().await.unwrap())
}

pub(crate) async fn sign_in(app: &TestApp, browser: &reqwest::Client, username: &str) {
    let csrf = form_token(app, browser, "/auth/login").await;
    let res = browser
        .post(app.url("/auth/login"))
        .form(&[("csrf", csrf.as_str()), ("username", username), ("password", PASSWORD), ("return_to", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
}

async fn try_sign_in(app: &TestApp, browser: &reqwest::Client, username: &str, password: &str) -> (u16, String) {
    let csrf = form_token(app, browser, "/auth/login").await;
    let res = browser
        .post(app.url("/auth/login"))
        .form(&[("csrf", csrf.as_str()), ("username", username), ("password", password), ("return_to", "/")])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let html = res.text().await.unwrap();
    // The page without what differs by design: the CSRF token and the name typed.
    let normalised = if html.is_empty() { html } else { html.replace(&csrf_of(&html), "T").replace(username, "NAME") };
    (status, normalised)
}

pub(crate) async fn user_id(app: &TestApp, username: &str) -> turtlemen_domain::UserId {
    let name = turtlemen_domain::Username::parse(username).unwrap();
    turtlemen_db::users::find_by_username(&app.db, &name).await.unwrap().unwrap().id
}

pub(crate) async fn events(app: &TestApp, username: &str) -> Vec<turtlemen_db::audit::AuditEvent> {
    turtlemen_db::audit::for_user(&app.db, user_id(app, username).await, 100).await.unwrap()
}

/// RFC 6238 computed here, apart from the service's code: base32 per RFC 4648, HOTP with
/// HMAC-SHA-1 and dynamic truncation (RFC 4226), 30-second steps, 6 digits.
pub(crate) fn totp_code(base32_secret: &str, step: i64) -> String {
    let mut bits = 0u64;
    let mut n = 0;
    let mut key = Vec::new();
    for c in base32_secret.chars().filter(|c| !c.is_whitespace()) {
        let v = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".find(c).expect("base32") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            key.push((bits >> n) as u8);
        }
    }
    let tag =
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key), &step.to_be_bytes());
    let t = tag.as_ref();
    let o = (t[19] & 15) as usize;
    let word = u32::from_be_bytes([t[o] & 0x7f, t[o + 1], t[o + 2], t[o + 3]]);
    format!("{:06}", word % 1_000_000)
}

fn step_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 / 30
}

/// Turns on TOTP for the signed-in `browser`: returns the secret (as shown), the step its
/// confirming code used, and the recovery codes.
pub(crate) async fn enrol(app: &TestApp, browser: &reqwest::Client) -> (String, i64, Vec<String>) {
    let csrf = form_token(app, browser, "/auth/account").await;
    let res = browser.post(app.url("/auth/account/totp")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = browser.get(app.url("/auth/account/totp")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let start = html.find("<code id=\"totp-secret\">").expect("the secret as text") + 23;
    let secret = html[start..].split('<').next().unwrap().to_string();
    let compact: String = secret.split_whitespace().collect();
    assert!(html.contains(&format!("otpauth://totp/Turtlemen:ann?secret={compact}&#38;issuer=Turtlemen")), "{html}");

    let (status, html) = post_code(app, browser, "/auth/account/totp/confirm", "12345x").await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"code-error\">Incorrect code.<"), "{html}");
    assert!(!turtlemen_db::totp::is_enabled(&app.db, user_id(app, "ann").await).await.unwrap(), "not before a code");
    let step = step_now();
    let (status, html) = post_code(app, browser, "/auth/account/totp/confirm", &totp_code(&secret, step)).await;
    assert_eq!(status, 200, "{html}");
    let codes: Vec<String> =
        html.split("<li><code>").skip(1).map(|s| s.split('<').next().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 10);
    (secret, step, codes)
}

async fn post_code(app: &TestApp, browser: &reqwest::Client, path: &str, code: &str) -> (u16, String) {
    let csrf = form_token(app, browser, "/auth/account").await;
    let res = browser.post(app.url(path)).form(&[("csrf", csrf.as_str()), ("code", code)]).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Signs in with the password; returns a browser on the code page.
pub(crate) async fn password_step(app: &TestApp) -> reqwest::Client {
    let browser = app.browser();
    let csrf = form_token(app, &browser, "/auth/login").await;
    let res = browser
        .post(app.url("/auth/login"))
        .form(&[("csrf", csrf.as_str()), ("username", "ann"), ("password", PASSWORD), ("return_to", "/watch/v")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/auth/login/code");
    browser
}

pub(crate) async fn second_step(app: &TestApp, browser: &reqwest::Client, code: &str) -> reqwest::Response {
    let page = browser.get(app.url("/auth/login/code")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.unwrap());
    browser.post(app.url("/auth/login/code")).form(&[("csrf", csrf.as_str()), ("code", code)]).send().await.unwrap()
}

fn location(res: &reqwest::Response) -> url::Url {
    url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Signs in and runs the authorization request; returns the code.
pub(crate) async fn code(app: &TestApp, browser: &reqwest::Client, client_id: &str) -> String {
    let res = browser
        .get(app.url("/auth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("scope", "openid profile email offline_access"),
            ("state", "st"),
            ("nonce", "nn"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.as_str().starts_with(CALLBACK), "{to}");
    assert_eq!(param(&to, "state").as_deref(), Some("st"));
    param(&to, "code").expect("a code")
}

pub(crate) async fn token(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, serde_json::Value) {
    let mut req = app.client.post(app.url("/auth/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    assert_eq!(res.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
    (status, res.json().await.unwrap())
}

on_both_stacks! {
    async fn sign_in_refuses_without_telling_who_exists(app) {
        user(&app, "ann").await;
        let browser = app.browser();
        let csrf = form_token(&app, &browser, "/auth/login").await;

        let no_csrf = browser.post(app.url("/auth/login")).form(&[("username", "ann"), ("password", PASSWORD)]).send().await.unwrap();
        assert_eq!(no_csrf.status(), 403);
        let forged = browser.post(app.url("/auth/login")).form(&[("csrf", "forged"), ("username", "ann"), ("password", PASSWORD)]).send().await.unwrap();
        assert_eq!(forged.status(), 403);

        let mut bodies = Vec::new();
        for (name, password) in [("ann", "wrong password"), ("nobody", "wrong password"), ("nobody@example.org", PASSWORD)] {
            let res = browser.post(app.url("/auth/login")).form(&[("csrf", csrf.as_str()), ("username", name), ("password", password)]).send().await.unwrap();
            assert_eq!(res.status(), 401, "{name}");
            let html = res.text().await.unwrap();
            assert!(html.contains("Incorrect username or password."));
            bodies.push(html.replace(name, "NAME").replace(&csrf_of(&html), "T"));
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the same answer whether or not the account exists");

        let huge = "x".repeat(100_000);
        let res = browser.post(app.url("/auth/login")).form(&[("csrf", csrf.as_str()), ("username", huge.as_str()), ("password", huge.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 401, "oversized fields are a failed sign-in, not an error");
        // Refused before it is read (so on a connection of its own: it cannot be reused).
        // The server may close before the client has finished sending, in which case the client
        // sees its write fail instead of the 413 — refused either way, never read.
        match app.client.post(app.url("/auth/login")).form(&[("csrf", csrf.as_str()), ("username", &"x".repeat(3 << 20))]).send().await {
            Ok(res) => {
                assert_eq!(res.status(), 413);
                assert_eq!(res.headers()["connection"], "close");
            }
            Err(e) => {
                let chain = format!("{e:?}");
                assert!(chain.contains("BrokenPipe") || chain.contains("ConnectionReset"), "{chain}");
            }
        }

        // An open redirect through return_to is refused: the visitor lands on a local page.
        let res = browser.post(app.url("/auth/login"))
            .form(&[("csrf", csrf.as_str()), ("username", "ANN"), ("password", PASSWORD), ("return_to", "//evil.example/x")])
            .send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/auth/account");
        let events = turtlemen_db::audit::for_user(&app.db, turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse("ann").unwrap()).await.unwrap().unwrap().id, 10).await.unwrap();
        assert_eq!(events.iter().filter(|e| e.event == "login_failed").count(), 1);
        assert_eq!(events.iter().filter(|e| e.event == "login").count(), 1);
    }

    async fn registration_shows_errors_by_field(app) {
        user(&app, "taken").await;
        let browser = app.browser();
        let csrf = form_token(&app, &browser, "/auth/register").await;
        let res = browser.post(app.url("/auth/register"))
            .form(&[("csrf", csrf.as_str()), ("username", "Taken"), ("email", "not-an-email"), ("password", "short")])
            .send().await.unwrap();
        assert_eq!(res.status(), 422);
        let html = res.text().await.unwrap();
        assert!(html.contains("id=\"email-error\""), "{html}");
        assert!(html.contains("id=\"password-error\""), "every field's problem at once: {html}");
        // A taken username is a problem like the others (usernames are public).
        assert!(html.contains("id=\"username-error\">This username is taken."), "{html}");
        let res = browser.post(app.url("/auth/register"))
            .form(&[("csrf", csrf.as_str()), ("username", "Taken"), ("email", "t2@example.org"), ("password", PASSWORD)])
            .send().await.unwrap();
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("id=\"username-error\">This username is taken."));
        let res = browser.post(app.url("/auth/register"))
            .form(&[("csrf", csrf.as_str()), ("username", "newbie"), ("email", "newbie@example.org"), ("password", PASSWORD), ("return_to", "/watch/x")])
            .send().await.unwrap();
        // No SMTP here (the outbox): nobody would get the link, so the account is signed in at
        // once and continues where registration began (recovery.rs has the case with mail).
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/watch/x");
        let account = browser.get(app.url("/auth/account")).send().await.unwrap();
        assert_eq!(account.status(), 200);
        assert!(account.text().await.unwrap().contains("not confirmed yet"), "the address is unconfirmed");
    }

    async fn authorization_refusals(app) {
        client(&app, "pub", true).await;
        let browser = app.browser();
        let authorize = |pairs: Vec<(&'static str, &'static str)>| {
            let browser = browser.clone();
            let url = app.url("/auth/authorize");
            async move { browser.get(url).query(&pairs).send().await.unwrap() }
        };
        // Unknown client, missing or unregistered redirect_uri: a page, never a redirect.
        for pairs in [
            vec![("response_type", "code"), ("client_id", "nope"), ("redirect_uri", CALLBACK), ("scope", "openid")],
            vec![("response_type", "code"), ("client_id", "pub"), ("scope", "openid")],
            vec![("response_type", "code"), ("client_id", "pub"), ("redirect_uri", "https://evil.example/cb"), ("scope", "openid")],
            vec![("response_type", "code"), ("client_id", "pub"), ("redirect_uri", "http://127.0.0.1:9/cb/"), ("scope", "openid")],
        ] {
            let res = authorize(pairs.clone()).await;
            assert_eq!(res.status(), 400, "{pairs:?}");
            assert!(res.headers().get("location").is_none());
        }
        // Known client and redirect: errors go back to the client, with state and iss.
        for (pairs, error) in [
            (vec![("response_type", "token"), ("scope", "openid")], "unsupported_response_type"),
            (vec![("response_type", "code"), ("scope", "profile")], "invalid_scope"),
            (vec![("response_type", "code"), ("scope", "openid")], "invalid_request"),
            (vec![("response_type", "code"), ("scope", "openid"), ("code_challenge", CHALLENGE), ("code_challenge_method", "plain")], "invalid_request"),
            (vec![("response_type", "code"), ("scope", "openid"), ("code_challenge", "short"), ("code_challenge_method", "S256")], "invalid_request"),
            (vec![("response_type", "code"), ("scope", "openid"), ("code_challenge", CHALLENGE), ("code_challenge_method", "S256"), ("prompt", "none")], "login_required"),
        ] {
            let mut all = vec![("client_id", "pub"), ("redirect_uri", CALLBACK), ("state", "s1")];
            all.extend(pairs);
            let res = authorize(all).await;
            assert_eq!(res.status(), 303);
            let to = location(&res);
            assert!(to.as_str().starts_with(CALLBACK));
            assert_eq!(param(&to, "error").as_deref(), Some(error));
            assert_eq!(param(&to, "state").as_deref(), Some("s1"));
            assert!(param(&to, "iss").is_some_and(|i| i.ends_with("/auth")));
        }
    }

    async fn token_endpoint_refusals(app) {
        user(&app, "ann").await;
        let secret = client(&app, "conf", false).await.expect("confidential");
        client(&app, "other", true).await;
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;

        // Wrong PKCE verifier; the code is then spent.
        let c = code(&app, &browser, "conf").await;
        let bad_verifier = "x".repeat(43);
        let (status, body) = token(&app, &[("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", CALLBACK), ("code_verifier", &bad_verifier)], Some(("conf", &secret))).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));

        let c = code(&app, &browser, "conf").await;
        let good = [("grant_type", "authorization_code"), ("code", c.as_str()), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)];
        let (status, body) = token(&app, &good, Some(("conf", "wrong secret"))).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (401, Some("invalid_client")));
        let (status, body) = token(&app, &good, None).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (401, Some("invalid_client")), "a confidential client must authenticate");
        for (content_type, body) in [("application/json", "{}"), ("application/x-www-form-urlencoded", "grant_type=a&grant_type=b")] {
            let res = app.client.post(app.url("/auth/token")).header("content-type", content_type).body(body).send().await.unwrap();
            assert_eq!(res.status(), 400, "{content_type}");
            assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request", "an OAuth error, not a generic one");
        }
        let (status, body) = token(&app, &[("grant_type", "password"), ("username", "ann")], Some(("conf", &secret))).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("unsupported_grant_type")));
        let (status, body) = token(&app, &[("grant_type", "authorization_code"), ("code", c.as_str()), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER), ("client_id", "other")], None).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")), "another client cannot redeem it");
        // That attempt spent the code too; a fresh one succeeds once.
        let c = code(&app, &browser, "conf").await;
        let good = [("grant_type", "authorization_code"), ("code", c.as_str()), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)];
        let (status, tokens) = token(&app, &good, Some(("conf", &secret))).await;
        assert_eq!(status, 200, "{tokens}");
        let (status, body) = token(&app, &good, Some(("conf", &secret))).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")), "codes are single-use");
        // The replay revoked the refresh token that code gave (see `scopes`); sign in again.
        let c = code(&app, &browser, "conf").await;
        let good = [("grant_type", "authorization_code"), ("code", c.as_str()), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)];
        let (status, tokens) = token(&app, &good, Some(("conf", &secret))).await;
        assert_eq!(status, 200, "{tokens}");

        // client_secret_post works too, for refresh.
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let (status, refreshed) = token(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "conf"), ("client_secret", &secret)], None).await;
        assert_eq!(status, 200, "{refreshed}");

        // Userinfo: the access token works; forged, ID and alg:none tokens do not.
        let access = refreshed["access_token"].as_str().unwrap();
        let info = app.client.get(app.url("/auth/userinfo")).bearer_auth(access).send().await.unwrap();
        assert_eq!(info.status(), 200);
        assert_eq!(info.json::<serde_json::Value>().await.unwrap()["preferred_username"], "ann");
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let parts: Vec<&str> = access.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], b64(r#"{"sub":"someone-else","iss":"x","aud":"turtlemen-api","exp":9999999999}"#), parts[2]);
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"at+jwt"}"#), parts[1]);
        for bad in [tampered.as_str(), none.as_str(), refreshed["id_token"].as_str().unwrap(), "garbage"] {
            let res = app.client.get(app.url("/auth/userinfo")).bearer_auth(bad).send().await.unwrap();
            assert_eq!(res.status(), 401);
            assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
        }

        // Revoking the sign-in session on the security page ends its refresh tokens.
        let page = browser.get(app.url("/auth/account")).send().await.unwrap().text().await.unwrap();
        let csrf = csrf_of(&page);
        let id_start = page.find("/auth/account/sessions/").unwrap() + 23;
        let session_id = page[id_start..].split('/').next().unwrap().to_string();
        let other_browser = app.browser();
        user(&app, "bob").await;
        sign_in(&app, &other_browser, "bob").await;
        let other_csrf = csrf_of(&other_browser.get(app.url("/auth/account")).send().await.unwrap().text().await.unwrap());
        let res = other_browser.post(app.url(&format!("/auth/account/sessions/{session_id}/revoke"))).form(&[("csrf", other_csrf.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 404, "another user's session is not theirs to revoke");
        let res = browser.post(app.url(&format!("/auth/account/sessions/{session_id}/revoke"))).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let next_refresh = refreshed["refresh_token"].as_str().unwrap();
        let (status, body) = token(&app, &[("grant_type", "refresh_token"), ("refresh_token", next_refresh)], Some(("conf", &secret))).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
    }

    async fn repeated_failures_lock_the_account_without_telling(app) {
        user(&app, "ann").await;
        user(&app, "bob").await;
        let browser = app.browser();
        let (status, wrong) = try_sign_in(&app, &browser, "ann", "wrong password").await;
        assert_eq!(status, 401);
        for _ in 1..5 {
            assert_eq!(try_sign_in(&app, &browser, "ann", "wrong password").await, (401, wrong.clone()));
        }
        // Locked: the right password gets the very same answer as a wrong one.
        assert_eq!(try_sign_in(&app, &browser, "ann", PASSWORD).await, (401, wrong.clone()));
        assert_eq!(try_sign_in(&app, &browser, "ann@example.org", PASSWORD).await.0, 401, "by email too");
        let log = events(&app, "ann").await;
        assert_eq!(log.iter().filter(|e| e.event == "lockout").count(), 1, "{log:?}");
        assert_eq!(log.iter().find(|e| e.event == "lockout").unwrap().detail, "account for 60s");
        assert_eq!(log.iter().filter(|e| e.event == "login_failed" && e.detail == "locked").count(), 2);
        assert!(!log.iter().any(|e| e.event == "login"));

        // Another account from the same browser is not affected.
        assert_eq!(try_sign_in(&app, &browser, "bob", PASSWORD).await.0, 303);

        // A name that matches no account locks the same way, so a lockout reveals nothing.
        let (_, ghost) = try_sign_in(&app, &app.browser(), "ghost", "wrong password").await;
        assert_eq!(ghost, wrong);
        for _ in 1..6 {
            assert_eq!(try_sign_in(&app, &app.browser(), "ghost", "wrong password").await, (401, wrong.clone()));
        }
    }

    async fn a_success_resets_the_account_counter(app) {
        user(&app, "ann").await;
        let browser = app.browser();
        for _ in 0..2 {
            for _ in 0..4 {
                assert_eq!(try_sign_in(&app, &browser, "ann", "wrong password").await.0, 401);
            }
            assert_eq!(try_sign_in(&app, &app.browser(), "ann", PASSWORD).await.0, 303, "four failures do not lock");
        }
        assert!(!events(&app, "ann").await.iter().any(|e| e.event == "lockout"));
    }

    async fn too_many_failures_from_one_ip_lock_it_out(app) {
        user(&app, "ann").await;
        let browser = app.browser();
        // 20 failures spread over names, none reaching an account's limit.
        for name in ["n1", "n2", "n3", "n4", "n5"] {
            for _ in 0..4 {
                assert_eq!(try_sign_in(&app, &browser, name, "wrong password").await.0, 401);
            }
        }
        let (status, _) = try_sign_in(&app, &app.browser(), "ann", PASSWORD).await;
        assert_eq!(status, 401, "the IP is locked out of every account");
        let log = events(&app, "ann").await;
        assert!(log.iter().any(|e| e.event == "login_failed" && e.detail == "locked"), "{log:?}");
    }

    async fn sign_in_rehashes_old_parameters(app) {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        user(&app, "ann").await;
        let id = user_id(&app, "ann").await;
        let old = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2::Params::new(8192, 1, 1, None).unwrap())
            .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        turtlemen_db::users::set_password_hash(&app.db, id, &old).await.unwrap();
        assert_eq!(try_sign_in(&app, &app.browser(), "ann", "wrong password").await.0, 401);
        assert_eq!(turtlemen_db::users::password_hash(&app.db, id).await.unwrap().as_deref(), Some(old.as_str()), "only a correct password rehashes");
        assert_eq!(try_sign_in(&app, &app.browser(), "ann", PASSWORD).await.0, 303);
        let now = turtlemen_db::users::password_hash(&app.db, id).await.unwrap().unwrap();
        assert!(now.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{now}");
        assert_eq!(try_sign_in(&app, &app.browser(), "ann", PASSWORD).await.0, 303, "the new hash verifies");
    }

    async fn password_change_ends_every_other_session(app) {
        user(&app, "ann").await;
        let secret = client(&app, "conf", false).await.expect("confidential");
        let here = app.browser();
        sign_in(&app, &here, "ann").await;
        let elsewhere = app.browser();
        sign_in(&app, &elsewhere, "ann").await;
        let c = code(&app, &elsewhere, "conf").await;
        let (status, tokens) = token(&app, &[("grant_type", "authorization_code"), ("code", c.as_str()), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)], Some(("conf", &secret))).await;
        assert_eq!(status, 200);

        let csrf = form_token(&app, &here, "/auth/account").await;
        let change = |fields: Vec<(&'static str, String)>| {
            let here = here.clone();
            let url = app.url("/auth/account/password");
            async move {
                let res = here.post(url).form(&fields).send().await.unwrap();
                (res.status().as_u16(), res.text().await.unwrap())
            }
        };
        let new = "a brand new passphrase";
        let (status, _) = change(vec![("current_password", PASSWORD.into()), ("new_password", new.into())]).await;
        assert_eq!(status, 403, "no CSRF token");
        let (status, html) = change(vec![("csrf", csrf.clone()), ("current_password", "wrong password".into()), ("new_password", "short".into())]).await;
        assert_eq!(status, 422);
        assert!(html.contains("id=\"current_password-error\">Incorrect password.<"), "{html}");
        assert!(html.contains("id=\"new_password-error\""), "both fields' problems at once");
        let (status, html) = change(vec![("csrf", csrf.clone()), ("current_password", PASSWORD.into()), ("new_password", "short".into())]).await;
        assert_eq!(status, 422);
        assert!(!html.contains("id=\"current_password-error\"") && html.contains("id=\"new_password-error\""));

        let res = here.post(app.url("/auth/account/password"))
            .form(&[("csrf", csrf.as_str()), ("current_password", PASSWORD), ("new_password", new)])
            .send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/auth/account?done=password");
        let page = here.get(app.url("/auth/account?done=password")).send().await.unwrap();
        assert_eq!(page.status(), 200, "this session lives on");
        assert!(page.text().await.unwrap().contains("Your password was changed."));
        assert_eq!(elsewhere.get(app.url("/auth/account")).send().await.unwrap().status(), 303, "the other session ended");
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let (status, body) = token(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some(("conf", &secret))).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")), "and its refresh tokens");

        assert_eq!(try_sign_in(&app, &app.browser(), "ann", PASSWORD).await.0, 401);
        assert_eq!(try_sign_in(&app, &app.browser(), "ann", new).await.0, 303);
        let log = events(&app, "ann").await;
        assert_eq!(log.iter().filter(|e| e.event == "password_changed").count(), 1);
        assert_eq!(log.iter().filter(|e| e.event == "password_change_failed").count(), 1);
    }

    async fn totp_second_step_with_replay_and_recovery_codes(app) {
        user(&app, "ann").await;
        let first = app.browser();
        sign_in(&app, &first, "ann").await;
        let (secret, used, recovery) = enrol(&app, &first).await;
        let page = first.get(app.url("/auth/account")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Recovery codes left: 10"), "{page}");

        // The password alone starts no session.
        let browser = password_step(&app).await;
        assert_eq!(browser.get(app.url("/auth/account")).send().await.unwrap().status(), 303);
        let res = second_step(&app, &browser, &totp_code(&secret, used)).await;
        assert_eq!(res.status(), 401, "the enrolment's code cannot be replayed");
        assert!(res.text().await.unwrap().contains("id=\"code-error\">Incorrect code.<"));
        let res = second_step(&app, &browser, &totp_code(&secret, used + 1)).await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/watch/v");
        assert_eq!(browser.get(app.url("/auth/account")).send().await.unwrap().status(), 200);
        assert_eq!(browser.get(app.url("/auth/login/code")).send().await.unwrap().status(), 303, "the half-done login is spent");

        let other = password_step(&app).await;
        assert_eq!(second_step(&app, &other, &totp_code(&secret, used + 1)).await.status(), 401, "each code once");
        let res = second_step(&app, &other, &recovery[3].to_uppercase()).await;
        assert_eq!(res.status(), 303, "a recovery code, in any case");
        let again = password_step(&app).await;
        assert_eq!(second_step(&app, &again, &recovery[3]).await.status(), 401, "each recovery code once");

        // Wrong codes count towards the lockout (the fifth failure since the last success: one
        // above, four here); then even a good recovery code is refused.
        let valid: Vec<String> = (-1..=1).map(|d| totp_code(&secret, step_now() + d)).collect();
        let wrong = ["000000", "111111", "222222", "333333"].into_iter().find(|c| !valid.contains(&c.to_string())).unwrap();
        for _ in 0..4 {
            assert_eq!(second_step(&app, &again, wrong).await.status(), 401);
        }
        assert_eq!(second_step(&app, &again, &recovery[5]).await.status(), 401);
        let log = events(&app, "ann").await;
        assert_eq!(log.iter().filter(|e| e.event == "totp_enabled").count(), 1);
        assert_eq!(log.iter().filter(|e| e.event == "recovery_code_used").count(), 1);
        assert_eq!(log.iter().filter(|e| e.event == "lockout").count(), 1, "{log:?}");
        assert_eq!(log.iter().filter(|e| e.event == "login").count(), 3, "enrolment browser, TOTP, recovery code");
        // The locked-out code step does not lock the password: it still leads to the code page.
        password_step(&app).await;
    }

    async fn totp_is_turned_off_with_a_current_code(app) {
        user(&app, "ann").await;
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;
        let (secret, used, _) = enrol(&app, &browser).await;
        let (status, html) = post_code(&app, &browser, "/auth/account/totp/disable", &totp_code(&secret, used)).await;
        assert_eq!(status, 422, "not with a spent code");
        assert!(html.contains("id=\"disable-code-error\">Incorrect code.<"), "{html}");
        let csrf = form_token(&app, &browser, "/auth/account").await;
        let res = browser.post(app.url("/auth/account/totp/disable")).form(&[("csrf", csrf.as_str()), ("code", &totp_code(&secret, used + 1))]).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/auth/account?done=totp_off");
        assert!(!turtlemen_db::totp::is_enabled(&app.db, user_id(&app, "ann").await).await.unwrap());
        assert_eq!(try_sign_in(&app, &app.browser(), "ann", PASSWORD).await.0, 303, "the password suffices again");
        assert!(events(&app, "ann").await.iter().any(|e| e.event == "totp_disabled"));
    }

    async fn discovery_and_jwks(app) {
        let (status, doc) = app.get_json("/auth/.well-known/openid-configuration").await;
        assert_eq!(status, 200);
        let issuer = doc["issuer"].as_str().unwrap();
        assert_eq!(issuer, app.url("/auth"));
        assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        let jwks: serde_json::Value = app.get("/auth/jwks").await.json().await.unwrap();
        assert_eq!(jwks["keys"][0]["alg"], "ES256");
        assert!(jwks["keys"][0].get("d").is_none(), "never the private part");
    }
}

/// The throttle itself over each session store, with waits short enough to watch them pass
/// (waiting is the behaviour under test here, not synchronisation).
async fn throttle_waits_grow_and_expire(store: turtlemen_session::Sessions) {
    use std::time::Duration;
    use turtlemen_auth::bruteforce::{BruteForceSettings, Locked, Lockout, Subject, Throttle};
    let settings = BruteForceSettings {
        max_failures: 2,
        wait_increment: Duration::from_millis(300),
        max_wait: Duration::from_secs(1),
        failure_reset: Duration::from_secs(60),
        ip_max_failures: 100,
        ip_window: Duration::from_secs(60),
    };
    let throttle = Throttle { store: &store, settings: &settings };
    let ann = Subject::Account(turtlemen_domain::UserId::new());
    let fail = |expect: Vec<Lockout>| {
        let (throttle, ann) = (&throttle, &ann);
        async move {
            let attempt = throttle.begin(ann, "192.0.2.1").await.unwrap().expect("open");
            assert_eq!(throttle.failed(attempt).await.unwrap(), expect);
        }
    };
    fail(vec![]).await;
    fail(vec![Lockout::Account { wait: Duration::from_millis(300) }]).await;
    assert_eq!(throttle.begin(&ann, "192.0.2.1").await.unwrap().unwrap_err(), Locked::Account);
    tokio::time::sleep(Duration::from_millis(450)).await;
    fail(vec![]).await;
    fail(vec![Lockout::Account { wait: Duration::from_millis(600) }]).await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        throttle.begin(&ann, "192.0.2.1").await.unwrap().unwrap_err(),
        Locked::Account,
        "the second wait is longer"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attempt = throttle.begin(&ann, "192.0.2.1").await.unwrap().expect("open again");
    throttle.succeeded(attempt).await.unwrap();
    fail(vec![]).await;
    let attempt = throttle.begin(&ann, "192.0.2.1").await.unwrap().expect("a success reset the count");
    throttle.succeeded(attempt).await.unwrap();

    // The IP limit: the failure that reaches it is reported once; then every account is refused.
    let ip_settings = BruteForceSettings { ip_max_failures: 3, ..settings.clone() };
    let throttle = Throttle { store: &store, settings: &ip_settings };
    let mut reported = Vec::new();
    for name in ["a", "b", "c"] {
        let attempt = throttle.begin(&Subject::Unknown(name), "192.0.2.9").await.unwrap().expect("open");
        reported.extend(throttle.failed(attempt).await.unwrap());
    }
    assert_eq!(reported, vec![Lockout::Ip { window: Duration::from_secs(60) }]);
    assert_eq!(throttle.begin(&ann, "192.0.2.9").await.unwrap().unwrap_err(), Locked::Ip);
    assert!(throttle.begin(&ann, "192.0.2.10").await.unwrap().is_ok(), "other addresses are not");
}

#[tokio::test]
async fn throttle_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let opts = turtlemen_session::StoreOptions::Embedded { path: dir.path().join("s.db") };
    throttle_waits_grow_and_expire(turtlemen_session::open(&opts).await.unwrap()).await;
}

#[tokio::test]
async fn throttle_on_redis() {
    let Some((_, redis)) = crate::helpers::external_urls() else { return };
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let opts = turtlemen_session::StoreOptions::Redis { url: redis, prefix };
    throttle_waits_grow_and_expire(turtlemen_session::open(&opts).await.unwrap()).await;
}
