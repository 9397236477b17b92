//! Account recovery and the auth service's APIs, on both stacks: registration that never tells
//! whether an email is taken, email verification (and the `email_verified` claim), password
//! reset (same answer either way, single-use links, every session ended, lockout lifted), mail
//! through a real SMTP server (aiosmtpd), the sessions and audit APIs with Bearer tokens, the
//! administrators' audit view, configured brute-force thresholds, and signing-key rotation
//! without signing anyone out.

use crate::auth::{
    CALLBACK, VERIFIER, client, code, csrf_of, enrol, form_token, password_step, second_step, sign_in, token,
    totp_code, user, user_id,
};
use crate::helpers::{PASSWORD, Stack, TestApp, fresh_settings};
use crate::on_both_stacks;
use std::path::Path;
use std::time::Duration;
use turtlemen_domain::Secret;

/// The messages in the outbox, oldest first, as text.
pub(crate) fn outbox(app: &TestApp) -> Vec<String> {
    let dir = app.data_dir.join("outbox");
    let Ok(entries) = std::fs::read_dir(&dir) else { return vec![] };
    let mut files: Vec<_> =
        entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "eml")).collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

/// Waits (bounded) until `dir` holds `n` messages that `read` finds; for mail sent after the
/// answer, by a task.
pub(crate) async fn wait_for_mail(read: impl Fn() -> Vec<String>, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let mails = read();
        if mails.len() >= n {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} messages, found {}", read().len());
}

/// The first link to `path` in a message (quoted-printable soft breaks undone).
pub(crate) fn link_in(mail: &str, path: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let at = text.find(path).unwrap_or_else(|| panic!("a {path} link in {text}"));
    let start = text[..at].rfind(char::is_whitespace).map_or(0, |i| i + 1);
    text[start..].split(char::is_whitespace).next().unwrap().to_string()
}

pub(crate) fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_string()
}

async fn register(app: &TestApp, browser: &reqwest::Client, username: &str, email: &str) -> (u16, String) {
    let csrf = form_token(app, browser, "/auth/register").await;
    let res = browser
        .post(app.url("/auth/register"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", username),
            ("email", email),
            ("password", PASSWORD),
            ("return_to", "/watch/x"),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn forgot(app: &TestApp, browser: &reqwest::Client, name: &str) -> (u16, String) {
    let csrf = form_token(app, browser, "/auth/forgot-password").await;
    let res = browser
        .post(app.url("/auth/forgot-password"))
        .form(&[("csrf", csrf.as_str()), ("name", name)])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let html = res.text().await.unwrap();
    // A page with the form again carries a fresh CSRF token: the only part that may differ.
    let html = if html.contains("name=\"csrf\"") { html.replace(&csrf_of(&html), "T") } else { html };
    (status, html)
}

/// An access token (and ID token) for `username` through the code flow of a public client.
async fn tokens(app: &TestApp, browser: &reqwest::Client, client_id: &str) -> serde_json::Value {
    let code = code(app, browser, client_id).await;
    let (status, body) = token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// RFC 4648 base32 decoding, for the secret the setup page shows.
fn base32_decode(text: &str) -> Vec<u8> {
    let (mut bits, mut n, mut out) = (0u64, 0, Vec::new());
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        bits = (bits << 5) | "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".find(c).unwrap() as u64;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

on_both_stacks! {
    async fn totp_secrets_are_sealed_at_rest(app) {
        user(&app, "ann").await;
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;
        let (secret, used, _) = enrol(&app, &browser).await;
        let clear = base32_decode(&secret);
        assert_eq!(clear.len(), 20);
        let ann = user_id(&app, "ann").await;
        let stored = turtlemen_db::totp::get(&app.db, ann).await.unwrap().unwrap().secret;
        assert!(stored.starts_with(b"TMv1"), "versioned format");
        assert!(!stored.windows(clear.len()).any(|w| w == clear.as_slice()), "not in clear");

        // A secret an older version stored in clear still works, and is sealed on that read.
        turtlemen_db::totp::replace_secret(&app.db, ann, &stored, &clear).await.unwrap();
        let browser = password_step(&app).await;
        assert_eq!(second_step(&app, &browser, &totp_code(&secret, used + 1)).await.status(), 303);
        let resealed = turtlemen_db::totp::get(&app.db, ann).await.unwrap().unwrap().secret;
        assert!(resealed.starts_with(b"TMv1") && resealed != stored, "sealed again, with a fresh nonce");
    }

    async fn registration_without_mail_says_a_taken_address(app) {
        // The outbox (no smtp_url): no notice could reach the owner, so the visitor is told.
        user(&app, "ann").await;
        let browser = app.browser();
        let (status, html) = register(&app, &browser, "bob", "ann@example.org").await;
        assert_eq!(status, 422);
        assert!(html.contains("id=\"email-error\">An account already uses this address."), "{html}");
        assert!(turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse("bob").unwrap()).await.unwrap().is_none());
        assert!(outbox(&app).is_empty(), "no notice written where nobody reads it");
    }

    async fn resending_the_verification_link_is_limited(app) {
        user(&app, "ann").await;
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;
        let page = browser.get(app.url("/auth/account")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("not confirmed yet") && page.contains("action=\"/auth/account/verify-email\""));
        let csrf = csrf_of(&page);
        let forged = browser.post(app.url("/auth/account/verify-email")).form(&[("csrf", "x")]).send().await.unwrap();
        assert_eq!(forged.status(), 403);
        let mut places = vec![];
        for _ in 0..4 {
            let res = browser.post(app.url("/auth/account/verify-email")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
            assert_eq!(res.status(), 303);
            places.push(res.headers()["location"].to_str().unwrap().to_string());
        }
        assert_eq!(places, ["/auth/account?done=verify_sent", "/auth/account?done=verify_sent", "/auth/account?done=verify_sent", "/auth/account?done=verify_limit"]);
        assert_eq!(outbox(&app).len(), 3);
    }

    async fn password_reset_ends_sessions_and_lifts_the_lockout(app) {
        user(&app, "ann").await;
        let signed_in = app.browser();
        sign_in(&app, &signed_in, "ann").await;
        // Lock the account.
        let attacker = app.browser();
        for _ in 0..5 {
            let csrf = form_token(&app, &attacker, "/auth/login").await;
            let res = attacker.post(app.url("/auth/login")).form(&[("csrf", csrf.as_str()), ("username", "ann"), ("password", "wrong guess!")]).send().await.unwrap();
            assert_eq!(res.status(), 401);
        }

        let browser = app.browser();
        let (s1, known) = forgot(&app, &browser, "ann").await;
        let (s2, unknown) = forgot(&app, &browser, "nobody@example.org").await;
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(known, unknown, "the same answer whether or not an account matches");
        assert!(known.contains("If an account matches, we sent a link"));
        let (status, html) = forgot(&app, &browser, "").await;
        assert_eq!(status, 422);
        assert!(html.contains("id=\"name-error\""));
        let forged = browser.post(app.url("/auth/forgot-password")).form(&[("csrf", "x"), ("name", "ann")]).send().await.unwrap();
        assert_eq!(forged.status(), 403);

        let mails = wait_for_mail(|| outbox(&app), 1).await;
        assert_eq!(mails.len(), 1, "no mail for a name that matches nothing");
        let link = link_in(&mails[0], "/auth/reset-password?token=");
        let token = token_of(&link);

        let form = browser.get(app.url(&format!("/auth/reset-password?token={token}"))).send().await.unwrap();
        assert_eq!(form.status(), 200);
        assert_eq!(form.headers()["cache-control"], "no-store");
        let csrf = csrf_of(&form.text().await.unwrap());
        let short = browser.post(app.url("/auth/reset-password")).form(&[("csrf", csrf.as_str()), ("token", token.as_str()), ("new_password", "short")]).send().await.unwrap();
        assert_eq!(short.status(), 422);
        assert!(short.text().await.unwrap().contains("id=\"new_password-error\""));
        let done = browser.post(app.url("/auth/reset-password")).form(&[("csrf", csrf.as_str()), ("token", token.as_str()), ("new_password", "a brand new passphrase")]).send().await.unwrap();
        assert_eq!(done.status(), 200);
        let reused = browser.post(app.url("/auth/reset-password")).form(&[("csrf", csrf.as_str()), ("token", token.as_str()), ("new_password", "another new passphrase")]).send().await.unwrap();
        assert_eq!(reused.status(), 400, "single use");

        // Every session ended; the lockout lifted; the new password works.
        assert_eq!(signed_in.get(app.url("/auth/account")).send().await.unwrap().status(), 303);
        let csrf = form_token(&app, &attacker, "/auth/login").await;
        let res = attacker.post(app.url("/auth/login")).form(&[("csrf", csrf.as_str()), ("username", "ann"), ("password", "a brand new passphrase"), ("return_to", "/")]).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let events: Vec<String> = turtlemen_db::audit::for_user(&app.db, user_id(&app, "ann").await, 50).await.unwrap().into_iter().map(|e| e.event).collect();
        assert!(events.contains(&"password_reset_requested".to_string()) && events.contains(&"password_reset".to_string()), "{events:?}");
        assert!(turtlemen_db::users::find_by_id(&app.db, user_id(&app, "ann").await).await.unwrap().unwrap().email_verified, "the link reached the address");
    }

    async fn sessions_api_lists_and_revokes_only_your_own(app) {
        user(&app, "ann").await;
        user(&app, "bob").await;
        client(&app, "pub", true).await;
        let (one, two, bobs) = (app.browser(), app.browser(), app.browser());
        sign_in(&app, &one, "ann").await;
        sign_in(&app, &two, "ann").await;
        sign_in(&app, &bobs, "bob").await;
        let t = tokens(&app, &one, "pub").await;
        let access = t["access_token"].as_str().unwrap();

        let res = app.client.get(app.url("/auth/api/sessions")).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "unauthorized");
        let list: serde_json::Value = app.client.get(app.url("/auth/api/sessions")).bearer_auth(access).send().await.unwrap().json().await.unwrap();
        let sessions = list["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
        let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_string();
        for key in ["created", "last_seen", "ip", "user_agent"] {
            assert!(sessions[0].get(key).is_some(), "{key}");
        }

        // Bob's session is not found for ann; a malformed id neither.
        let bob_token = tokens(&app, &bobs, "pub").await;
        let bob_list: serde_json::Value = app.client.get(app.url("/auth/api/sessions")).bearer_auth(bob_token["access_token"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
        let bob_session = bob_list["sessions"][0]["id"].as_str().unwrap().to_string();
        let res = app.client.delete(app.url(&format!("/auth/api/sessions/{bob_session}"))).bearer_auth(access).send().await.unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "not_found");
        assert_eq!(app.client.delete(app.url("/auth/api/sessions/nope")).bearer_auth(access).send().await.unwrap().status(), 404);
        assert_eq!(bobs.get(app.url("/auth/account")).send().await.unwrap().status(), 200, "bob still signed in");

        let res = app.client.delete(app.url(&format!("/auth/api/sessions/{other}"))).bearer_auth(access).send().await.unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(two.get(app.url("/auth/account")).send().await.unwrap().status(), 303, "revoked");
        let list: serde_json::Value = app.client.get(app.url("/auth/api/sessions")).bearer_auth(access).send().await.unwrap().json().await.unwrap();
        assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    }

    async fn audit_api_pages_and_admin_view(app) {
        user(&app, "ann").await;
        let admin = turtlemen_auth::accounts::AccountForm { username: "chief", email: "chief@example.org", display_name: None, password: PASSWORD, role: turtlemen_domain::Role::Admin, promote_if_first: false };
        turtlemen_auth::accounts::create(&app.db, admin).await.unwrap();
        client(&app, "pub", true).await;
        // A sign-in (and a token), then five failures and a lockout.
        let ann_browser = app.browser();
        sign_in(&app, &ann_browser, "ann").await;
        let t = tokens(&app, &ann_browser, "pub").await;
        let browser = app.browser();
        for _ in 0..5 {
            let csrf = form_token(&app, &browser, "/auth/login").await;
            browser.post(app.url("/auth/login")).form(&[("csrf", csrf.as_str()), ("username", "ann"), ("password", "wrong guess!")]).send().await.unwrap();
        }
        let access = t["access_token"].as_str().unwrap();
        let page1: serde_json::Value = app.client.get(app.url("/auth/api/audit?limit=3")).bearer_auth(access).send().await.unwrap().json().await.unwrap();
        let events = page1["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        let next = page1["next"].as_str().unwrap();
        let page2: serde_json::Value = app.client.get(app.url(&format!("/auth/api/audit?limit=50&before={next}"))).bearer_auth(access).send().await.unwrap().json().await.unwrap();
        let all: Vec<serde_json::Value> = events.iter().chain(page2["events"].as_array().unwrap()).cloned().collect();
        let names: Vec<&str> = all.iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(names.iter().filter(|n| **n == "login_failed").count(), 5, "{names:?}");
        assert!(names.contains(&"lockout") && names.contains(&"login"), "{names:?}");
        assert!(page2["next"].is_null());
        let ids: std::collections::HashSet<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), all.len(), "pages do not overlap");
        assert!(all.iter().all(|e| e["time"].is_string() && e["ip"].is_string() && e["user_agent"].is_string()));
        let bad = app.client.get(app.url("/auth/api/audit?before=zzz")).bearer_auth(access).send().await.unwrap();
        assert_eq!(bad.status(), 400);

        // Administrators only.
        let res = app.client.get(app.url("/auth/api/admin/audit")).bearer_auth(access).send().await.unwrap();
        assert_eq!(res.status(), 403);
        let root_browser = app.browser();
        sign_in(&app, &root_browser, "chief").await;
        let root_token = tokens(&app, &root_browser, "pub").await;
        let root_access = root_token["access_token"].as_str().unwrap();
        let res: serde_json::Value = app.client.get(app.url("/auth/api/admin/audit?user=ann")).bearer_auth(root_access).send().await.unwrap().json().await.unwrap();
        let ann_id = user_id(&app, "ann").await.to_string();
        assert!(res["events"].as_array().unwrap().iter().all(|e| e["user_id"] == ann_id.as_str()));
        assert_eq!(res["events"].as_array().unwrap().len(), all.len());
        assert_eq!(app.client.get(app.url("/auth/api/admin/audit?user=nobody")).bearer_auth(root_access).send().await.unwrap().status(), 404);
        let page = root_browser.get(app.url("/auth/admin/audit?user=ann")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("lockout"));
        assert_eq!(ann_browser.get(app.url("/auth/admin/audit")).send().await.unwrap().status(), 404);
        assert_eq!(app.browser().get(app.url("/auth/admin/audit")).send().await.unwrap().status(), 303);
    }

    async fn rs256_id_tokens_for_clients_that_ask(app) {
        user(&app, "ann").await;
        let new = turtlemen_auth::clients::NewClient {
            client_id: "old-rp".into(),
            name: None,
            redirect_uris: vec![CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            public: true,
            first_party: true,
            id_token_alg: Some("RS256".into()),
        };
        turtlemen_auth::clients::create(&app.db, new).await.unwrap();
        client(&app, "pub", true).await;
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;
        let t = tokens(&app, &browser, "old-rp").await;
        let id = t["id_token"].as_str().unwrap();
        assert_eq!(header(id)["alg"], "RS256");
        assert_eq!(header(t["access_token"].as_str().unwrap())["alg"], "ES256", "access tokens stay ES256");
        let (_, jwks) = app.get_json("/auth/jwks").await;
        let kid = header(id)["kid"].as_str().unwrap().to_string();
        let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).expect("the RS256 key is published");
        assert_eq!(key["kty"], "RSA");
        // Verified with the published key by jsonwebtoken, apart from our signer.
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap()).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&["old-rp"]);
        assert!(jsonwebtoken::decode::<serde_json::Value>(id, &decoding, &v).is_ok());
        assert_eq!(header(tokens(&app, &browser, "pub").await["id_token"].as_str().unwrap())["alg"], "ES256");
    }
}

/// A running aiosmtpd, stopped when dropped (even when the test fails).
struct SmtpServer(std::process::Child);

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts aiosmtpd (a real SMTP server, from PyPI) on a free port, delivering into a Maildir.
fn smtp_server(maildir: &Path) -> (SmtpServer, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = std::process::Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(SmtpServer)
        .expect("python3 -m aiosmtpd (pip install aiosmtpd; scripts/install-deps.sh does)");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (server, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("aiosmtpd did not start");
}

fn maildir_messages(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else { return vec![] };
    entries.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
}

async fn mail_goes_through_smtp(stack: Stack) {
    let Some((mut settings, dir, schema)) = fresh_settings(stack).await else { return };
    let maildir = dir.path().join("maildir");
    let (_server, port) = smtp_server(&maildir);
    settings.smtp_url = Some(Secret::new(format!("smtp://127.0.0.1:{port}")));
    settings.mail_from = Some("Turtlemen <noreply@example.org>".into());
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let browser = app.browser();
    let (status, _) = register(&app, &browser, "dora", "dora@example.org").await;
    assert_eq!(status, 200);
    let mails = wait_for_mail(|| maildir_messages(&maildir), 1).await;
    assert!(mails[0].contains("dora@example.org") && mails[0].contains("noreply@example.org"), "{}", mails[0]);
    let link = link_in(&mails[0], "/auth/verify-email?token=");
    assert_eq!(app.get_page(&format!("/auth/verify-email?token={}", token_of(&link))).await.status(), 200);
    assert!(outbox(&app).is_empty(), "nothing in the outbox when SMTP is set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_smtp_embedded() {
    mail_goes_through_smtp(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_smtp_external() {
    mail_goes_through_smtp(Stack::External).await;
}

/// With mail that arrives (SMTP), registration gives one answer whether or not the address is
/// taken; the address's owner is told by mail instead.
async fn registration_never_tells_an_email_is_taken(stack: Stack) {
    let Some((mut settings, dir, schema)) = fresh_settings(stack).await else { return };
    let maildir = dir.path().join("maildir");
    let (_server, port) = smtp_server(&maildir);
    settings.smtp_url = Some(Secret::new(format!("smtp://127.0.0.1:{port}")));
    let app = TestApp::spawn_with(settings, dir, schema).await;
    user(&app, "ann").await;
    let browser = app.browser();
    let (taken_status, taken_page) = register(&app, &browser, "bob", "ann@example.org").await;
    let (new_status, new_page) = register(&app, &browser, "carl", "carl@example.org").await;
    assert_eq!((taken_status, new_status), (200, 200));
    assert_eq!(taken_page, new_page, "the same answer either way");
    assert!(new_page.contains("Check your email"));
    assert!(
        turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse("bob").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // A taken username may be said.
    let (status, html) = register(&app, &browser, "Carl", "c2@example.org").await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"username-error\">This username is taken."), "{html}");

    let mails = wait_for_mail(|| maildir_messages(&maildir), 2).await;
    assert_eq!(mails.len(), 2, "a notice to ann, a link to carl");
    let to =
        |who: &str| mails.iter().find(|m| m.contains(&format!("To: {who}"))).unwrap_or_else(|| panic!("mail to {who}"));
    assert!(to("ann@example.org").contains("already has"), "{}", to("ann@example.org"));
    assert!(!to("ann@example.org").contains("verify-email"));
    let link = link_in(to("carl@example.org"), "/auth/verify-email?token=");
    assert!(link.starts_with(&app.url("/auth/verify-email?token=")), "{link}");
    let ann = user_id(&app, "ann").await;
    let ann_events = turtlemen_db::audit::for_user(&app.db, ann, 10).await.unwrap();
    assert!(ann_events.iter().any(|e| e.event == "register_email_taken"));

    // Not yet verified: the ID token says so.
    let carl = user_id(&app, "carl").await;
    client(&app, "pub", true).await;
    sign_in(&app, &browser, "carl").await;
    let t = tokens(&app, &browser, "pub").await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["email_verified"], false);

    let res = app.get_page(&format!("/auth/verify-email?token={}", token_of(&link))).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("return_to=%2Fwatch%2Fx"), "continues where registration began");
    assert!(turtlemen_db::users::find_by_id(&app.db, carl).await.unwrap().unwrap().email_verified);
    let again = app.get_page(&format!("/auth/verify-email?token={}", token_of(&link))).await;
    assert_eq!(again.status(), 400, "single use");
    assert_eq!(app.get_page("/auth/verify-email?token=x").await.status(), 400);

    let t = tokens(&app, &browser, "pub").await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["email_verified"], true);
    let info = app
        .client
        .get(app.url("/auth/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.json::<serde_json::Value>().await.unwrap()["email_verified"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_never_tells_an_email_is_taken_embedded() {
    registration_never_tells_an_email_is_taken(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_never_tells_an_email_is_taken_external() {
    registration_never_tells_an_email_is_taken(Stack::External).await;
}

async fn configured_thresholds(stack: Stack) {
    let Some((mut settings, dir, schema)) = fresh_settings(stack).await else { return };
    settings.bruteforce_account_failures = Some(2);
    let app = TestApp::spawn_with(settings, dir, schema).await;
    user(&app, "ann").await;
    let browser = app.browser();
    for _ in 0..2 {
        let csrf = form_token(&app, &browser, "/auth/login").await;
        browser
            .post(app.url("/auth/login"))
            .form(&[("csrf", csrf.as_str()), ("username", "ann"), ("password", "wrong guess!")])
            .send()
            .await
            .unwrap();
    }
    // Locked after two: the right password is refused unchecked.
    let csrf = form_token(&app, &browser, "/auth/login").await;
    let res = browser
        .post(app.url("/auth/login"))
        .form(&[("csrf", csrf.as_str()), ("username", "ann"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let events = turtlemen_db::audit::for_user(&app.db, user_id(&app, "ann").await, 10).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.event == "lockout").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_brute_force_thresholds_embedded() {
    configured_thresholds(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_brute_force_thresholds_external() {
    configured_thresholds(Stack::External).await;
}

/// Rotation keeps a gateway session working, with no restart: the access token it holds was
/// signed by the old key, which stays published; once the new key signs, new tokens carry it.
/// (Two replicas, and the old key's retirement: `signing_keys.rs`.)
async fn rotation_keeps_sessions(stack: Stack) {
    let Some(app) = TestApp::spawn(stack).await else { return };
    user(&app, "ann").await;
    let browser = crate::gateway::Browser::default();
    browser.navigate(&app, "/oauth2/start?rd=/", "ann").await;
    assert_eq!(browser.get(&app, "/api/v1/me").await.status(), 200);
    let (_, before) = app.get_json("/auth/jwks").await;
    let old_kid = before["keys"][0]["kid"].as_str().unwrap().to_string();

    let config = turtlemen_config::Config::resolve(app.settings.clone()).unwrap();
    let rotate = turtlemen::cli::AdminCommand::RotateSigningKey;
    turtlemen::cli::run_admin(rotate, &config, app.internals()).await.unwrap();
    let rows = turtlemen_db::signing_keys::list(&app.db).await.unwrap();
    let next = rows.iter().find(|r| r.alg == "ES256" && r.generation == Some(2)).unwrap();
    let (new_kid, signs_from) = (next.kid.clone(), next.activated_at);
    assert_ne!(new_kid, old_kid);

    // Published by the running instance within a reload.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let kids = loop {
        let (_, after) = app.get_json("/auth/jwks").await;
        let kids: Vec<String> =
            after["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect();
        if kids.contains(&new_kid) {
            break kids;
        }
        assert!(std::time::Instant::now() < deadline, "the new key was never published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(kids.contains(&old_kid), "{kids:?}");
    assert_eq!(kids.len(), 4, "new and current ES256 and RS256 keys: {kids:?}");
    // Still signed in, on the token signed before the rotation.
    let me = browser.get(&app, "/api/v1/me").await;
    assert_eq!(me.status(), 200);
    // New sign-ins get tokens under the new key once it signs.
    user(&app, "bob").await;
    client(&app, "pub", true).await;
    let b = app.browser();
    sign_in(&app, &b, "bob").await;
    let kid = |t: serde_json::Value| header(t["access_token"].as_str().unwrap())["kid"].as_str().unwrap().to_string();
    let before = kid(tokens(&app, &b, "pub").await);
    if crate::helpers::well_before(signs_from) {
        assert_eq!(before, old_kid, "not before its activation");
    }
    crate::helpers::until_signing(signs_from, app.internals().signing_keys.publish_lead.to_std().unwrap() * 2).await;
    assert_eq!(kid(tokens(&app, &b, "pub").await), new_kid);
    assert_eq!(browser.get(&app, "/api/v1/me").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_key_rotation_keeps_sessions_embedded() {
    rotation_keeps_sessions(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_key_rotation_keeps_sessions_external() {
    rotation_keeps_sessions(Stack::External).await;
}
