//! One trust policy for client addresses, on both stacks: `X-Forwarded-For` is believed only
//! from `trusted_proxies`, by the gateway, the auth service and the API server alike. Under
//! `serve` the services run in-process and get the forwarded headers a proxied call gets, so a
//! client on loopback (or any private address) that sends its own chain is recorded as itself.

use crate::helpers::{Stack, TestApp, fresh_settings};
use reqwest::Method;
use turtlemen_domain::{Role, Username};

/// The addresses recorded for a sign-in (by the auth service) and for a ban (by the API
/// server), both requested with `X-Forwarded-For: 203.0.113.7`.
async fn recorded_addresses(app: &TestApp) -> (String, String) {
    let spoof = [(reqwest::header::HeaderName::from_static("x-forwarded-for"), "203.0.113.7".parse().unwrap())];
    let headers: reqwest::header::HeaderMap = spoof.into_iter().collect();
    crate::auth::user(app, "ann").await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    crate::auth::sign_in(app, &browser, "ann").await;
    let ann = turtlemen_db::users::find_by_username(&app.db, &Username::parse("ann").unwrap()).await.unwrap().unwrap();
    let events = turtlemen_db::audit::for_user(&app.db, ann.id, 50).await.unwrap();
    let login = events.iter().find(|e| e.event == "login").expect("the sign-in is audited");

    let admin = crate::uploads::signed_in_as(app, "chief", Role::Admin).await;
    let res = app
        .client
        .request(Method::PUT, app.url(&format!("/api/v1/admin/users/{}/ban", ann.id.0)))
        .header("cookie", admin.cookie_header())
        .header("x-forwarded-for", "203.0.113.7")
        .json(&serde_json::json!({"reason": "spam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let chief =
        turtlemen_db::users::find_by_username(&app.db, &Username::parse("chief").unwrap()).await.unwrap().unwrap();
    let events = turtlemen_db::audit::for_user(&app.db, chief.id, 50).await.unwrap();
    let ban = events.iter().find(|e| e.event == "user_banned").expect("the ban is audited");
    (login.ip.clone(), ban.ip.clone())
}

/// A spoofed `X-Forwarded-For` from an untrusted peer — loopback, which the API server used
/// to trust by itself — is ignored by every role; from a configured trusted proxy it is
/// believed, by every role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_from_trusted_proxies_only() {
    for stack in [Stack::Embedded, Stack::External] {
        let Some((settings, dir, schema)) = fresh_settings(stack).await else { continue };
        let app = TestApp::spawn_with(settings, dir, schema).await;
        let (login, ban) = recorded_addresses(&app).await;
        assert_eq!((login.as_str(), ban.as_str()), ("127.0.0.1", "127.0.0.1"), "{stack:?}: the peer, not its claim");
        app.stop().await;

        let Some((mut settings, dir, schema)) = fresh_settings(stack).await else { continue };
        settings.trusted_proxies = Some("127.0.0.1/32".into());
        let app = TestApp::spawn_with(settings, dir, schema).await;
        let (login, ban) = recorded_addresses(&app).await;
        assert_eq!(
            (login.as_str(), ban.as_str()),
            ("203.0.113.7", "203.0.113.7"),
            "{stack:?}: a trusted proxy's chain"
        );
        app.stop().await;
    }
}
