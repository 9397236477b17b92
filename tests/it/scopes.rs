//! Token scopes and token hygiene, on both stacks: what an access token may do at the API
//! depends on the scopes the user consented to (`openid` alone reads `/api/v1/me` and nothing
//! else of theirs; `videos:write` edits and deletes), refused with 403 `insufficient_scope`
//! and an RFC 6750 challenge; a first-party client holds every API scope; introspection tells
//! a client only about its own tokens; a replayed authorization code revokes the refresh
//! tokens issued from it; only `offline_access` earns a refresh token.
//! The same scope matrix against a certified client library is in `web/tests/oidc.test.js`.

use crate::auth::{CALLBACK, VERIFIER, client, sign_in, token, user};
use crate::helpers::PASSWORD;
use crate::helpers::TestApp;
use crate::on_both_stacks;
use reqwest::{Method, StatusCode};
use turtlemen_auth::clients::{self, NewClient};

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Registers a confidential third-party client (consent needed); returns its secret.
pub(crate) async fn third_party(app: &TestApp, id: &str) -> String {
    let new = NewClient {
        client_id: id.into(),
        name: Some(format!("App {id}")),
        redirect_uris: vec![CALLBACK.into()],
        post_logout_redirect_uris: vec![],
        public: false,
        first_party: false,
        id_token_alg: None,
    };
    clients::create(&app.db, new).await.unwrap().expect("a secret")
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The hidden fields of the consent form.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().unwrap().to_string();
            let value = rest.split("value=\"").nth(1).unwrap().split('"').next().unwrap();
            (name, unescape(value))
        })
        .collect()
}

fn param(to: &url::Url, name: &str) -> Option<String> {
    to.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Runs the authorization request for `scope` in the signed-in `browser`, allowing on the
/// consent page when one is shown; returns the code and the consent page (if any).
async fn authorize(app: &TestApp, browser: &reqwest::Client, client_id: &str, scope: &str) -> (String, Option<String>) {
    let res = browser
        .get(app.url("/auth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("scope", scope),
            ("state", "st"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let (res, consent) = if res.status() == 200 {
        let html = res.text().await.unwrap();
        let mut form = hidden_fields(&html);
        form.push(("decision".into(), "allow".into()));
        let res = browser.post(app.url("/auth/consent")).form(&form).send().await.unwrap();
        (res, Some(html))
    } else {
        (res, None)
    };
    assert_eq!(res.status(), 303);
    let to = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(CALLBACK), "{to}");
    (param(&to, "code").expect("a code"), consent)
}

/// Exchanges a code; returns the token response.
async fn exchange(app: &TestApp, client_id: &str, secret: &str, code: &str) -> (StatusCode, serde_json::Value) {
    let form =
        [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)];
    token(app, &form, Some((client_id, secret))).await
}

/// Signs `username` in and gets tokens for `scope` from `client_id`.
pub(crate) async fn tokens_for(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> serde_json::Value {
    let (code, _) = authorize(app, browser, client_id, scope).await;
    let (status, tokens) = exchange(app, client_id, secret, &code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

pub(crate) fn access(tokens: &serde_json::Value) -> String {
    tokens["access_token"].as_str().unwrap().to_string()
}

async fn api(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: &str,
    json: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(bearer);
    if let Some(body) = json {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// Asserts a 403 `insufficient_scope` naming `scope` in its challenge.
pub(crate) async fn refused_for_scope(res: reqwest::Response, scope: &str) {
    assert_eq!(res.status(), 403, "{}", res.url());
    let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(challenge.as_deref(), Some(format!(r#"Bearer error="insufficient_scope", scope="{scope}""#).as_str()));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope", "{body}");
}

/// A private video of `bearer`'s user, created by a tus creation request.
async fn new_video(app: &TestApp, bearer: &str) -> String {
    let res = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(bearer)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "1000")
        .header("upload-metadata", crate::uploads::metadata(&[("filename", "secret.mp4"), ("privacy", "private")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    res.headers()["video-id"].to_str().unwrap().to_string()
}

on_both_stacks! {
    async fn an_openid_token_reads_who_you_are_and_nothing_else(app) {
        user(&app, "ann").await;
        let secret = third_party(&app, "app").await;
        let first = client(&app, "first", false).await.unwrap();
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;

        // A first-party client (no consent) starts a private video.
        let full = tokens_for(&app, &browser, "first", &first, "openid").await;
        let full_scopes = full["scope"].as_str().unwrap().to_owned();
        let full = access(&full);
        let video = new_video(&app, &full).await;

        // A third-party app the user allowed only `openid`.
        let (code, consent) = authorize(&app, &browser, "app", "openid").await;
        let consent = consent.expect("a consent page");
        assert!(consent.contains("Know who you are on Turtlemen"), "{consent}");
        assert!(!consent.contains("your videos"), "{consent}");
        let (status, limited) = exchange(&app, "app", &secret, &code).await;
        assert_eq!(status, 200, "{limited}");
        assert_eq!(limited["scope"], "openid");
        let limited = access(&limited);

        let res = api(&app, Method::GET, "/api/v1/me", &limited, None).await;
        assert_eq!(res.status(), 200);
        let me: serde_json::Value = res.json().await.unwrap();
        assert_eq!(me["username"], "ann");
        assert!(me["email"].is_null(), "no email without the email scope: {me}");

        let path = format!("/api/v1/videos/{video}");
        refused_for_scope(api(&app, Method::GET, "/api/v1/me/videos", &limited, None).await, "videos:read").await;
        refused_for_scope(api(&app, Method::PATCH, &path, &limited, Some(serde_json::json!({"title": "pwned"}))).await, "videos:write").await;
        refused_for_scope(api(&app, Method::PATCH, &path, &limited, Some(serde_json::json!({"privacy": "public"}))).await, "videos:write").await;
        refused_for_scope(api(&app, Method::DELETE, &path, &limited, None).await, "videos:write").await;
        let upload = app.client.post(app.url("/api/v1/uploads")).bearer_auth(&limited)
            .header("tus-resumable", "1.0.0").header("upload-length", "10")
            .header("upload-metadata", crate::uploads::metadata(&[("filename", "x.mp4")]))
            .send().await.unwrap();
        assert_eq!(upload.headers()["tus-resumable"], "1.0.0");
        refused_for_scope(upload, "videos:write").await;
        // Channels and subscriptions need their own scopes.
        user(&app, "bob").await;
        refused_for_scope(api(&app, Method::GET, "/api/v1/me/subscriptions", &limited, None).await, "subscriptions:read").await;
        refused_for_scope(api(&app, Method::GET, "/api/v1/me/feed", &limited, None).await, "subscriptions:read").await;
        refused_for_scope(api(&app, Method::PUT, "/api/v1/me/subscriptions/bob", &limited, None).await, "subscriptions:write").await;
        refused_for_scope(api(&app, Method::DELETE, "/api/v1/me/subscriptions/bob", &limited, None).await, "subscriptions:write").await;
        refused_for_scope(api(&app, Method::POST, "/api/v1/channels", &limited, Some(serde_json::json!({"handle": "ann-too"}))).await, "channels:write").await;
        refused_for_scope(api(&app, Method::PATCH, "/api/v1/channels/ann", &limited, Some(serde_json::json!({"display_name": "pwned"}))).await, "channels:write").await;
        refused_for_scope(api(&app, Method::GET, "/api/v1/me/notifications", &limited, None).await, "notifications:read").await;
        refused_for_scope(api(&app, Method::POST, "/api/v1/me/notifications/read", &limited, Some(serde_json::json!({"all": true}))).await, "notifications:write").await;
        // The library: playlists, ratings, history.
        refused_for_scope(api(&app, Method::GET, "/api/v1/me/playlists", &limited, None).await, "library:read").await;
        refused_for_scope(api(&app, Method::GET, "/api/v1/me/history", &limited, None).await, "library:read").await;
        refused_for_scope(api(&app, Method::POST, "/api/v1/playlists", &limited, Some(serde_json::json!({"title": "x"}))).await, "library:write").await;
        refused_for_scope(api(&app, Method::PUT, &format!("{path}/rating"), &limited, Some(serde_json::json!({"rating": "like"}))).await, "library:write").await;
        refused_for_scope(api(&app, Method::PUT, &format!("/api/v1/me/history/{video}"), &limited, Some(serde_json::json!({"position_secs": 1}))).await, "library:write").await;
        assert_eq!(api(&app, Method::GET, "/api/v1/playlists/WL", &limited, None).await.status(), 404, "without library:read the caller is a visitor");
        // The auth service's account API: the sessions and the security log need `account`.
        refused_for_scope(api(&app, Method::GET, "/auth/api/sessions", &limited, None).await, "account").await;
        refused_for_scope(api(&app, Method::GET, "/auth/api/audit", &limited, None).await, "account").await;
        assert_eq!(api(&app, Method::GET, "/auth/api/sessions", &full, None).await.status(), 200);
        let bob: serde_json::Value = app.client.get(app.url("/api/v1/channels/bob")).send().await.unwrap().json().await.unwrap();
        assert_eq!(bob["subscriber_count"], 0, "{bob}");
        // Without videos:read the caller is a visitor: the private video does not exist.
        assert_eq!(api(&app, Method::GET, &path, &limited, None).await.status(), 404);
        // The studio pages act with full access only.
        assert_eq!(api(&app, Method::GET, "/studio/videos", &limited, None).await.status(), 403);

        // Nothing changed.
        let v: serde_json::Value = api(&app, Method::GET, &path, &full, None).await.json().await.unwrap();
        assert_eq!((v["title"].as_str(), v["privacy"].as_str()), (Some("secret"), Some("private")), "{v}");
        // The first-party client holds every API scope, asked for or not.
        for s in ["videos:read", "videos:write", "channels:write", "subscriptions:read", "subscriptions:write", "notifications:read", "notifications:write", "comments:write", "library:read", "library:write", "account", "admin"] {
            assert!(full_scopes.split(' ').any(|x| x == s), "{full_scopes}");
        }

        // The user allows videos:write: asked again, the consent page says so.
        let (code, consent) = authorize(&app, &browser, "app", "openid videos:write").await;
        assert!(consent.expect("consent for the wider scope").contains("Upload, edit and delete your videos"));
        let (status, writer) = exchange(&app, "app", &secret, &code).await;
        assert_eq!(status, 200, "{writer}");
        let writer = access(&writer);
        let res = api(&app, Method::GET, "/api/v1/me/videos", &writer, None).await;
        assert_eq!(res.status(), 200, "videos:write includes videos:read");
        let res = api(&app, Method::PATCH, &path, &writer, Some(serde_json::json!({"title": "renamed"}))).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<serde_json::Value>().await.unwrap()["title"], "renamed");
        // The remembered consent covers both requests now: no page for either.
        assert!(authorize(&app, &browser, "app", "openid").await.1.is_none());
        assert!(authorize(&app, &browser, "app", "openid videos:write").await.1.is_none());
        assert_eq!(api(&app, Method::DELETE, &path, &writer, None).await.status(), 204);
        assert_eq!(api(&app, Method::GET, &path, &full, None).await.status(), 404);
    }

    async fn admin_endpoints_need_the_admin_role_and_scope(app) {
        turtlemen_auth::accounts::create(&app.db, turtlemen_auth::accounts::AccountForm {
            username: "boss", email: "boss@example.org", display_name: None, password: PASSWORD, role: turtlemen_domain::Role::Admin,
        promote_if_first: false,
        }).await.unwrap();
        user(&app, "ann").await;
        let secret = third_party(&app, "app").await;
        let root = app.browser();
        sign_in(&app, &root, "boss").await;
        let limited = access(&tokens_for(&app, &root, "app", &secret, "openid videos:write").await);
        refused_for_scope(api(&app, Method::GET, "/api/v1/admin/jobs", &limited, None).await, "admin").await;
        let admin = access(&tokens_for(&app, &root, "app", &secret, "openid admin").await);
        assert_eq!(api(&app, Method::GET, "/api/v1/admin/jobs", &admin, None).await.status(), 200);

        // An admin's power over other people's things needs the admin scope too: an app the
        // admin allowed videos:write or channels:write acts on the admin's own things only.
        let ann_browser = app.browser();
        sign_in(&app, &ann_browser, "ann").await;
        let first = client(&app, "first", false).await.unwrap();
        let ann_full = access(&tokens_for(&app, &ann_browser, "first", &first, "openid").await);
        let video = new_video(&app, &ann_full).await;
        let path = format!("/api/v1/videos/{video}");
        let retitle = serde_json::json!({"title": "by the admin"});
        assert_eq!(api(&app, Method::PATCH, &path, &limited, Some(retitle.clone())).await.status(), 404);
        let rename = serde_json::json!({"display_name": "by the admin"});
        let channel_writer = access(&tokens_for(&app, &root, "app", &secret, "openid channels:write").await);
        assert_eq!(api(&app, Method::PATCH, "/api/v1/channels/ann", &channel_writer, Some(rename.clone())).await.status(), 403);
        let both = access(&tokens_for(&app, &root, "app", &secret, "openid videos:write channels:write admin").await);
        assert_eq!(api(&app, Method::PATCH, &path, &both, Some(retitle)).await.status(), 200);
        assert_eq!(api(&app, Method::PATCH, "/api/v1/channels/ann", &both, Some(rename)).await.status(), 200);

        // Not an admin: the route does not exist, whatever the token grants.
        let ann = app.browser();
        sign_in(&app, &ann, "ann").await;
        let ann_admin = access(&tokens_for(&app, &ann, "app", &secret, "openid admin").await);
        assert_eq!(api(&app, Method::GET, "/api/v1/admin/jobs", &ann_admin, None).await.status(), 404);
    }

    async fn only_offline_access_earns_a_refresh_token(app) {
        user(&app, "ann").await;
        let secret = third_party(&app, "app").await;
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;
        let online = tokens_for(&app, &browser, "app", &secret, "openid profile").await;
        assert!(online.get("refresh_token").is_none(), "{online}");
        let offline = tokens_for(&app, &browser, "app", &secret, "openid offline_access").await;
        let refresh = offline["refresh_token"].as_str().expect("a refresh token");
        let (status, again) = token(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some(("app", &secret))).await;
        assert_eq!(status, 200, "{again}");
        assert!(again["refresh_token"].is_string());

        // The gateway asks for offline_access and keeps its session alive with it.
        let first = client(&app, "first", false).await.unwrap();
        let gateway = tokens_for(&app, &browser, "first", &first, "openid profile email offline_access videos:read videos:write admin").await;
        assert!(gateway["refresh_token"].is_string(), "{gateway}");
    }

    async fn a_replayed_code_revokes_the_tokens_issued_from_it(app) {
        user(&app, "ann").await;
        let secret = third_party(&app, "app").await;
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;
        let (code, _) = authorize(&app, &browser, "app", "openid offline_access").await;
        let (status, tokens) = exchange(&app, "app", &secret, &code).await;
        assert_eq!(status, 200, "{tokens}");
        let refresh = tokens["refresh_token"].as_str().unwrap();

        let (status, body) = exchange(&app, "app", &secret, &code).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")), "codes are single-use");
        let (status, body) = token(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some(("app", &secret))).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")), "the first redemption's refresh token is revoked: {body}");
        let events = crate::auth::events(&app, "ann").await;
        assert!(events.iter().any(|e| e.event == "authorization_code_reuse"), "{events:?}");

        // A code nobody issued is just refused, and leaves nothing behind that a later real
        // code could trip on.
        let (status, body) = exchange(&app, "app", &secret, "never-issued").await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
        let fresh = tokens_for(&app, &browser, "app", &secret, "openid offline_access").await;
        let (status, _) = token(&app, &[("grant_type", "refresh_token"), ("refresh_token", fresh["refresh_token"].as_str().unwrap())], Some(("app", &secret))).await;
        assert_eq!(status, 200);
    }

    async fn introspection_tells_a_client_only_about_its_own_tokens(app) {
        user(&app, "ann").await;
        let mine = third_party(&app, "mine").await;
        let other = third_party(&app, "other").await;
        let first = client(&app, "first", false).await.unwrap();
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;
        let tokens = tokens_for(&app, &browser, "mine", &mine, "openid offline_access").await;
        let introspect = |token: String, id: &'static str, secret: String| {
            let req = app.client.post(app.url("/auth/introspect")).basic_auth(id, Some(secret)).form(&[("token", token)]);
            async move {
                let res = req.send().await.unwrap();
                assert_eq!(res.status(), 200);
                res.json::<serde_json::Value>().await.unwrap()
            }
        };
        for kind in ["access_token", "refresh_token"] {
            let t = tokens[kind].as_str().unwrap().to_string();
            let own = introspect(t.clone(), "mine", mine.clone()).await;
            assert_eq!((own["active"].as_bool(), own["client_id"].as_str()), (Some(true), Some("mine")), "{kind}: {own}");
            let theirs = introspect(t.clone(), "other", other.clone()).await;
            assert_eq!(theirs, serde_json::json!({"active": false}), "{kind}: another client learns nothing");
            let resource_server = introspect(t, "first", first.clone()).await;
            assert_eq!(resource_server["active"], true, "{kind}: a first-party client may introspect any token");
        }
    }
}
