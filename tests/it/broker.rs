//! Brokered logins through external providers, on both stacks: linking rules, the callback's
//! refusals (state, replay, provider errors, ID tokens with a wrong iss/aud/nonce/signature,
//! unknown providers), the second factor after an external login, unlink rules, and GitHub and
//! Facebook.
//!
//! The providers here are small servers written for these tests, so that they can misbehave
//! on purpose (wrong issuer, foreign signature…). They speak the documented request and response
//! shapes of an OpenID Connect provider, GitHub's OAuth web flow and REST API, and Facebook's
//! login flow and Graph API — GitHub and Facebook themselves cannot be reached from here. The
//! happy path against a certified OpenID Connect provider (`oidc-provider`) is the browser test
//! `web/tests/broker.test.js`.

use crate::helpers::{Stack, TestApp, fresh_settings};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use turtlemen_config::providers::IdentityProviderSettings;
use turtlemen_domain::Secret;

const CLIENT_ID: &str = "turtlemen-test";
const CLIENT_SECRET: &str = "s3cret with spaces&";

/// How the test provider misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Good,
    WrongIss,
    WrongAud,
    WrongNonce,
    ForeignKey,
    TokenError,
}

/// The person the provider signs in.
#[derive(Debug, Clone)]
struct Person {
    sub: String,
    email: Option<String>,
    verified: bool,
    name: String,
    login: String,
}

struct ProviderState {
    base: String,
    mode: Mode,
    person: Person,
    /// code → (nonce, code_challenge, redirect_uri)
    codes: HashMap<String, (String, String, String)>,
    key: EcdsaKeyPair,
    foreign: EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

type Shared = Arc<Mutex<ProviderState>>;

fn new_key(rng: &ring::rand::SystemRandom) -> EcdsaKeyPair {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng).unwrap()
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A compact JWS (ES256) by `key`, with `kid` "k1".
fn sign(key: &EcdsaKeyPair, rng: &ring::rand::SystemRandom, claims: &serde_json::Value) -> String {
    let header = b64(br#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#);
    let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let sig = key.sign(rng, input.as_bytes()).unwrap();
    format!("{input}.{}", b64(sig.as_ref()))
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A test provider on a loopback port: OIDC at `/op`, GitHub's shapes at `/gh`, Facebook's at `/fb`.
struct Provider {
    base: String,
    state: Shared,
}

impl Provider {
    async fn start() -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let rng = ring::rand::SystemRandom::new();
        let state = Arc::new(Mutex::new(ProviderState {
            base: base.clone(),
            mode: Mode::Good,
            person: Person {
                sub: "u-1".into(),
                email: Some("pat@example.org".into()),
                verified: true,
                name: "Pat Example".into(),
                login: "pat".into(),
            },
            codes: HashMap::new(),
            key: new_key(&rng),
            foreign: new_key(&rng),
            rng,
        }));
        let app = Router::new()
            .route("/op/.well-known/openid-configuration", get(discovery))
            .route("/op/jwks", get(jwks))
            .route("/op/authorize", get(authorize))
            .route("/op/token", post(oidc_token))
            .route("/gh/login/oauth/authorize", get(authorize))
            .route("/gh/login/oauth/access_token", post(github_token))
            .route("/gh/api/user", get(github_user))
            .route("/gh/api/user/emails", get(github_emails))
            .route("/fb/dialog/oauth", get(authorize))
            .route("/fb/oauth/access_token", get(facebook_token))
            .route("/fb/me", get(facebook_me))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Provider { base, state }
    }

    fn set(&self, f: impl FnOnce(&mut ProviderState)) {
        f(&mut self.state.lock().unwrap());
    }

    fn oidc(&self, id: &str, link_by_verified_email: bool) -> IdentityProviderSettings {
        IdentityProviderSettings {
            id: id.into(),
            kind: "oidc".into(),
            display_name: Some(format!("Test {id}")),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            issuer: Some(format!("{}/op", self.base)),
            discovery_url: None,
            scopes: None,
            link_by_verified_email,
            auth_url: None,
            token_url: None,
            api_base_url: None,
        }
    }

    fn oauth(&self, kind: &str, prefix: &str) -> IdentityProviderSettings {
        let (auth, token, api) = match kind {
            "github" => ("login/oauth/authorize", "login/oauth/access_token", "api"),
            _ => ("dialog/oauth", "oauth/access_token", ""),
        };
        IdentityProviderSettings {
            id: kind.into(),
            kind: kind.into(),
            display_name: None,
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            issuer: None,
            discovery_url: None,
            scopes: None,
            link_by_verified_email: true,
            auth_url: Some(format!("{}/{prefix}/{auth}", self.base)),
            token_url: Some(format!("{}/{prefix}/{token}", self.base)),
            api_base_url: Some(format!("{}/{prefix}/{api}", self.base).trim_end_matches('/').to_string()),
        }
    }
}

async fn discovery(State(s): State<Shared>) -> Json<serde_json::Value> {
    let base = s.lock().unwrap().base.clone();
    Json(serde_json::json!({
        "issuer": format!("{base}/op"),
        "authorization_endpoint": format!("{base}/op/authorize"),
        "token_endpoint": format!("{base}/op/token"),
        "jwks_uri": format!("{base}/op/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"]
    }))
}

async fn jwks(State(s): State<Shared>) -> Json<serde_json::Value> {
    let s = s.lock().unwrap();
    let public = s.key.public_key().as_ref();
    Json(serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
        "x": b64(&public[1..33]), "y": b64(&public[33..65])
    }]}))
}

/// Every provider's authorization endpoint: signs the person in at once and sends the browser
/// back with a code.
async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let code = random();
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    s.lock().unwrap().codes.insert(
        code.clone(),
        (
            q.get("nonce").cloned().unwrap_or_default(),
            q.get("code_challenge").cloned().unwrap_or_default(),
            redirect.clone(),
        ),
    );
    let mut url = url::Url::parse(&redirect).unwrap();
    url.query_pairs_mut().append_pair("code", &code).append_pair("state", q.get("state").map_or("", |s| s));
    Redirect::to(url.as_str()).into_response()
}

fn pkce_ok(challenge: &str, verifier: &str) -> bool {
    challenge.is_empty() || challenge == b64(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

async fn oidc_token(State(s): State<Shared>, headers: HeaderMap, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{CLIENT_ID}:{}",
            url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect::<String>()
        ))
    );
    let Some((nonce, challenge, redirect)) = f.get("code").and_then(|c| s.codes.remove(c)) else {
        return (AxStatus::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"}))).into_response();
    };
    let verifier = f.get("code_verifier").map_or("", |v| v);
    if s.mode == Mode::TokenError
        || basic != expected
        || !pkce_ok(&challenge, verifier)
        || f.get("redirect_uri") != Some(&redirect)
    {
        return (AxStatus::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"}))).into_response();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let p = s.person.clone();
    let claims = serde_json::json!({
        "iss": if s.mode == Mode::WrongIss { "http://evil.example/op".to_string() } else { format!("{}/op", s.base) },
        "aud": if s.mode == Mode::WrongAud { "someone-else" } else { CLIENT_ID },
        "sub": p.sub, "iat": now, "exp": now + 300,
        "nonce": if s.mode == Mode::WrongNonce { "another-nonce".to_string() } else { nonce },
        "email": p.email, "email_verified": p.verified, "name": p.name, "preferred_username": p.login,
    });
    let key = if s.mode == Mode::ForeignKey { &s.foreign } else { &s.key };
    let id_token = sign(key, &s.rng, &claims);
    Json(serde_json::json!({"access_token": random(), "token_type": "Bearer", "id_token": id_token})).into_response()
}

async fn github_token(State(s): State<Shared>, headers: HeaderMap, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    assert_eq!(headers.get("accept").and_then(|v| v.to_str().ok()), Some("application/json"));
    let known = f.get("code").and_then(|c| s.codes.remove(c));
    let good = known.is_some_and(|(_, challenge, redirect)| {
        pkce_ok(&challenge, f.get("code_verifier").map_or("", |v| v)) && f.get("redirect_uri") == Some(&redirect)
    }) && f.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && f.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    if !good {
        // GitHub answers a bad code with a 200 and an error field.
        return Json(serde_json::json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})).into_response();
    }
    Json(serde_json::json!({"access_token": "gho_test", "scope": "read:user,user:email", "token_type": "bearer"}))
        .into_response()
}

fn bearer_ok(headers: &HeaderMap, token: &str) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {token}"))
}

async fn github_user(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !bearer_ok(&headers, "gho_test") || headers.get("user-agent").is_none() {
        return (AxStatus::UNAUTHORIZED, Json(serde_json::json!({"message": "Bad credentials"}))).into_response();
    }
    let p = s.lock().unwrap().person.clone();
    Json(serde_json::json!({"login": p.login, "id": p.sub.parse::<u64>().unwrap_or(7), "name": p.name, "email": null}))
        .into_response()
}

async fn github_emails(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !bearer_ok(&headers, "gho_test") {
        return (AxStatus::UNAUTHORIZED, Json(serde_json::json!({"message": "Bad credentials"}))).into_response();
    }
    let p = s.lock().unwrap().person.clone();
    Json(serde_json::json!([
        {"email": "noreply@users.example", "verified": true, "primary": false, "visibility": null},
        {"email": p.email, "verified": p.verified, "primary": true, "visibility": "private"}
    ]))
    .into_response()
}

async fn facebook_token(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    let known = q.get("code").and_then(|c| s.codes.remove(c));
    let good = known.is_some_and(|(_, _, redirect)| q.get("redirect_uri") == Some(&redirect))
        && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    if !good {
        let error = serde_json::json!({"error": {"message": "Invalid verification code format.", "type": "OAuthException", "code": 100, "fbtrace_id": "x"}});
        return (AxStatus::BAD_REQUEST, Json(error)).into_response();
    }
    Json(serde_json::json!({"access_token": "EAAtest", "token_type": "bearer", "expires_in": 5183944})).into_response()
}

async fn facebook_me(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, CLIENT_SECRET.as_bytes());
    let proof: String = ring::hmac::sign(&key, b"EAAtest").as_ref().iter().map(|b| format!("{b:02x}")).collect();
    if !bearer_ok(&headers, "EAAtest") || q.get("appsecret_proof") != Some(&proof) {
        return (AxStatus::BAD_REQUEST, Json(serde_json::json!({"error": {"type": "OAuthException", "code": 190}})))
            .into_response();
    }
    assert_eq!(q.get("fields").map(String::as_str), Some("id,name,email"));
    let p = s.lock().unwrap().person.clone();
    Json(serde_json::json!({"id": p.sub, "name": p.name, "email": p.email})).into_response()
}

/// An instance with `providers` configured, on `stack`.
async fn spawn(stack: Stack, providers: Vec<IdentityProviderSettings>) -> Option<TestApp> {
    let (mut settings, dir, schema) = fresh_settings(stack).await?;
    settings.identity_providers = providers;
    Some(TestApp::spawn_with(settings, dir, schema).await)
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").expect("a redirect").to_str().unwrap().to_string()
}

/// Clicks "Sign in with {id}" and lets the provider answer: the callback URL the provider sends
/// the browser back to (not followed yet).
async fn start(app: &TestApp, browser: &reqwest::Client, id: &str, return_to: &str) -> String {
    let page = browser.get(app.url("/auth/login")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("action=\"/auth/broker/{id}/start\"")), "a Sign in with {id} button");
    let res = browser
        .post(app.url(&format!("/auth/broker/{id}/start")))
        .form(&[("csrf", csrf_of(&page).as_str()), ("return_to", return_to)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to_provider = location(&res);
    assert!(to_provider.contains("state=") && to_provider.contains("client_id=turtlemen-test"));
    let at_provider = app.client.get(&to_provider).send().await.unwrap();
    assert_eq!(at_provider.status(), 303);
    location(&at_provider)
}

/// The whole external login: the callback's response.
async fn external_login(app: &TestApp, browser: &reqwest::Client, id: &str, return_to: &str) -> reqwest::Response {
    let callback = start(app, browser, id, return_to).await;
    browser.get(&callback).header("accept", "text/html").send().await.unwrap()
}

async fn me(app: &TestApp, browser: &reqwest::Client) -> Option<turtlemen_db::users::User> {
    let page = browser.get(app.url("/auth/account")).send().await.unwrap();
    if page.status() != 200 {
        return None;
    }
    let html = page.text().await.unwrap();
    let name = html.split("Signed in as <strong>").nth(1)?.split('<').next()?.to_string();
    turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse(&name).ok()?).await.unwrap()
}

async fn user_count(app: &TestApp) -> i64 {
    turtlemen_db::users::count(&app.db).await.unwrap()
}

async fn local_user(app: &TestApp, username: &str, email: &str) -> turtlemen_db::users::User {
    turtlemen_auth::accounts::create(
        &app.db,
        turtlemen_auth::accounts::AccountForm {
            username,
            email,
            display_name: None,
            password: "correct horse battery",
            role: turtlemen_domain::Role::User,
            promote_if_first: false,
        },
    )
    .await
    .unwrap()
}

async fn events(app: &TestApp, user: turtlemen_domain::UserId) -> Vec<String> {
    turtlemen_db::audit::for_user(&app.db, user, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.event, e.detail))
        .collect()
}

/// Declares `name::embedded` and `name::external` running `body(stack)`.
macro_rules! both_stacks {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(crate::helpers::Stack::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn external() {
                super::$name(crate::helpers::Stack::External).await
            }
        }
    )*};
}

both_stacks!(
    first_login_creates_an_account_and_later_ones_reuse_it,
    linking_by_email_needs_a_verified_email_and_the_operators_consent,
    callback_refusals_store_nothing,
    a_second_factor_still_applies,
    link_and_unlink_from_the_security_page,
    github_and_facebook_shapes
);

async fn first_login_creates_an_account_and_later_ones_reuse_it(stack: Stack) {
    let provider = Provider::start().await;
    let Some(app) = spawn(stack, vec![provider.oidc("test", false)]).await else { return };
    let browser = app.browser();
    let res = external_login(&app, &browser, "test", "/watch/v1?t=5").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/watch/v1?t=5", "back where the sign-in started");
    let user = me(&app, &browser).await.expect("signed in");
    assert_eq!((user.username.as_str(), user.email.as_str()), ("pat", "pat@example.org"));
    assert_eq!(user.display_name, "Pat Example");
    assert!(user.email_verified, "the provider said it is verified");
    assert!(turtlemen_db::users::password_hash(&app.db, user.id).await.unwrap().is_none());
    let links = turtlemen_db::identities::list_for_user(&app.db, user.id).await.unwrap();
    assert_eq!((links.len(), links[0].subject.as_str()), (1, "u-1"));
    let page = browser.get(app.url("/auth/account")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Unlink Test test"), "the security page lists the link");

    // Another browser, the same provider account: the same user, no second account.
    let other = app.browser();
    let res = external_login(&app, &other, "test", "/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(me(&app, &other).await.map(|u| u.id), Some(user.id));
    assert_eq!(user_count(&app).await, 1);
    let log = events(&app, user.id).await;
    assert!(log.iter().any(|e| e == "register test (created)"), "{log:?}");
    assert!(log.iter().any(|e| e == "external_login test (known)"), "{log:?}");
    assert!(log.iter().filter(|e| e.as_str() == "login external:test").count() == 2, "{log:?}");

    // A second person whose preferred username is taken gets a unique one.
    provider
        .set(|s| s.person = Person { sub: "u-2".into(), email: Some("pat2@example.org".into()), ..s.person.clone() });
    let third = app.browser();
    assert_eq!(external_login(&app, &third, "test", "/").await.status(), 303);
    assert_eq!(me(&app, &third).await.map(|u| u.username), Some("pat2".into()));
}

async fn linking_by_email_needs_a_verified_email_and_the_operators_consent(stack: Stack) {
    let provider = Provider::start().await;
    let Some(app) = spawn(stack, vec![provider.oidc("strict", false), provider.oidc("trusting", true)]).await else {
        return;
    };
    let ann = local_user(&app, "ann", "Pat@Example.org").await;
    // The operator did not allow linking by email: a page, nothing linked, no account made.
    let browser = app.browser();
    let res = external_login(&app, &browser, "strict", "/").await;
    assert_eq!(res.status(), 409);
    assert!(res.headers().get("location").is_none());
    let html = res.text().await.unwrap();
    assert!(html.contains("link Test strict from your account security page"), "{html}");
    assert!(me(&app, &browser).await.is_none());
    assert_eq!(user_count(&app).await, 1);
    // Allowed, but the provider does not vouch for the email: refused the same way.
    provider.set(|s| s.person.verified = false);
    assert_eq!(external_login(&app, &browser, "trusting", "/").await.status(), 409);
    assert!(turtlemen_db::identities::list_for_user(&app.db, ann.id).await.unwrap().is_empty());
    // Allowed and verified: linked to ann and signed in as ann.
    provider.set(|s| s.person.verified = true);
    let res = external_login(&app, &browser, "trusting", "/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(me(&app, &browser).await.map(|u| u.id), Some(ann.id));
    assert_eq!(user_count(&app).await, 1);
    let log = events(&app, ann.id).await;
    assert!(log.iter().any(|e| e == "identity_linked trusting (linked_by_email)"), "{log:?}");
}

async fn callback_refusals_store_nothing(stack: Stack) {
    let provider = Provider::start().await;
    let Some(app) = spawn(stack, vec![provider.oidc("test", false)]).await else { return };
    let browser = app.browser();
    let check = |res: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(res.status(), status);
        assert!(res.headers().get("location").is_none(), "an error page, never a redirect");
        let body = res.text().await.unwrap();
        assert!(body.contains(code) || !code.contains('_'), "{code} in {body}");
    };
    let json = |b: &reqwest::Client, url: &str| b.get(url.to_string()).header("accept", "application/json").send();

    // Unknown provider, at every entry.
    check(
        json(&browser, &app.url("/auth/broker/nope/callback?state=x&code=y")).await.unwrap(),
        404,
        "unknown_provider",
    )
    .await;
    let res = browser.post(app.url("/auth/broker/nope/start")).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(res.status(), 404);
    // Starting without a CSRF token.
    let res = browser.post(app.url("/auth/broker/test/start")).form(&[("return_to", "/")]).send().await.unwrap();
    assert_eq!(res.status(), 403);

    // A callback in a browser that did not start the flow (no cookie, or another state).
    let callback = start(&app, &browser, "test", "/").await;
    let stranger = app.browser();
    check(json(&stranger, &callback).await.unwrap(), 400, "state_mismatch").await;
    let mut tampered = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = tampered.query_pairs().into_owned().collect();
    tampered.query_pairs_mut().clear();
    for (k, v) in pairs {
        // Change the first character (to one it is not: a random state may start with `x`).
        let v = if k == "state" { format!("{}{}", if v.starts_with('x') { 'y' } else { 'x' }, &v[1..]) } else { v };
        tampered.query_pairs_mut().append_pair(&k, &v);
    }
    check(json(&browser, tampered.as_str()).await.unwrap(), 400, "state_mismatch").await;

    // Replayed callback: the first use signs in; the same request again, cookie and all, finds
    // the flow gone.
    let callback = start(&app, &browser, "test", "/").await;
    let state = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    assert_eq!(browser.get(&callback).send().await.unwrap().status(), 303);
    let replay = app
        .client
        .get(&callback)
        .header("accept", "application/json")
        .header("cookie", format!("turtlemen_broker={state}"))
        .send()
        .await
        .unwrap();
    check(replay, 400, "flow_expired").await;
    assert_eq!(user_count(&app).await, 1);

    // From here on every refusal must leave the database as it is.
    let fresh = app.browser();
    provider
        .set(|s| s.person = Person { sub: "u-9".into(), email: Some("nine@example.org".into()), ..s.person.clone() });
    // The provider's error response.
    let callback = start(&app, &fresh, "test", "/").await;
    let state = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let error_url = app.url(&format!(
        "/auth/broker/test/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state={state}"
    ));
    let res = json(&fresh, &error_url).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "provider_error");
    assert!(!body["message"].as_str().unwrap().contains("<b>"));
    // An `iss` naming another issuer (RFC 9207).
    let callback = start(&app, &fresh, "test", "/").await;
    check(json(&fresh, &format!("{callback}&iss=http%3A%2F%2Fevil.example")).await.unwrap(), 400, "invalid_id_token")
        .await;
    // ID tokens with a wrong iss, aud, nonce or signature, and a refused code.
    for (mode, code) in [
        (Mode::WrongIss, "invalid_id_token"),
        (Mode::WrongAud, "invalid_id_token"),
        (Mode::WrongNonce, "invalid_id_token"),
        (Mode::ForeignKey, "invalid_id_token"),
        (Mode::TokenError, "provider_error"),
    ] {
        provider.set(|s| s.mode = mode);
        let callback = start(&app, &fresh, "test", "/").await;
        check(json(&fresh, &callback).await.unwrap(), 400, code).await;
    }
    // A browser page, not JSON, for the same refusal.
    let callback = start(&app, &fresh, "test", "/").await;
    let res = fresh.get(&callback).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(me(&app, &fresh).await.is_none());
    assert_eq!(user_count(&app).await, 1, "no account made by a refused callback");
    assert!(turtlemen_db::identities::find(&app.db, "test", "u-9").await.unwrap().is_none());
}

async fn a_second_factor_still_applies(stack: Stack) {
    let provider = Provider::start().await;
    let Some(app) = spawn(stack, vec![provider.oidc("test", false)]).await else { return };
    let browser = app.browser();
    assert_eq!(external_login(&app, &browser, "test", "/").await.status(), 303);
    let user = me(&app, &browser).await.unwrap();
    turtlemen_db::totp::put_pending(&app.db, user.id, &[7u8; 20]).await.unwrap();
    assert!(turtlemen_db::totp::enable(&app.db, user.id, 1, &[]).await.unwrap());
    let other = app.browser();
    let res = external_login(&app, &other, "test", "/watch/x").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/auth/login/code", "the code is still asked for");
    assert!(me(&app, &other).await.is_none(), "no session before the code");
}

async fn link_and_unlink_from_the_security_page(stack: Stack) {
    let provider = Provider::start().await;
    let Some(app) = spawn(stack, vec![provider.oidc("one", false), provider.oidc("two", false)]).await else {
        return;
    };
    // An account made through "one" has no password: its only link cannot go.
    let browser = app.browser();
    assert_eq!(external_login(&app, &browser, "one", "/").await.status(), 303);
    let user = me(&app, &browser).await.unwrap();
    let links = turtlemen_db::identities::list_for_user(&app.db, user.id).await.unwrap();
    let page = browser.get(app.url("/auth/account")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&page);
    let unlink_one = app.url(&format!("/auth/account/identities/{}/unlink", links[0].id));
    let res = browser.post(&unlink_one).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(turtlemen_db::identities::list_for_user(&app.db, user.id).await.unwrap().len(), 1);
    // Without the CSRF token nothing happens.
    let res = browser.post(&unlink_one).form(&[("x", "y")]).send().await.unwrap();
    assert_eq!(res.status(), 403);

    // Link "two" (another subject at the provider), then "one" may go.
    provider.set(|s| s.person.sub = "u-two".into());
    let res = browser
        .post(app.url("/auth/account/providers/two/link"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let back = app.client.get(location(&res)).send().await.unwrap();
    let res = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(location(&res), "/auth/account?done=linked");
    assert_eq!(turtlemen_db::identities::list_for_user(&app.db, user.id).await.unwrap().len(), 2);
    let res = browser.post(&unlink_one).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let left = turtlemen_db::identities::list_for_user(&app.db, user.id).await.unwrap();
    assert_eq!((left.len(), left[0].provider.as_str()), (1, "two"));
    let log = events(&app, user.id).await;
    assert!(
        log.iter().any(|e| e == "identity_linked two") && log.iter().any(|e| e == "identity_unlinked one"),
        "{log:?}"
    );
    // Another user cannot unlink it, nor link the same provider account.
    let mallory = app.browser();
    provider.set(|s| s.person = Person { sub: "u-m".into(), email: Some("m@example.org".into()), ..s.person.clone() });
    assert_eq!(external_login(&app, &mallory, "one", "/").await.status(), 303);
    let m_csrf = csrf_of(&mallory.get(app.url("/auth/account")).send().await.unwrap().text().await.unwrap());
    let res = mallory
        .post(app.url(&format!("/auth/account/identities/{}/unlink", left[0].id)))
        .form(&[("csrf", m_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    provider.set(|s| s.person.sub = "u-two".into());
    let res = mallory
        .post(app.url("/auth/account/providers/two/link"))
        .form(&[("csrf", m_csrf.as_str())])
        .send()
        .await
        .unwrap();
    let back = app.client.get(location(&res)).send().await.unwrap();
    let res = mallory.get(location(&back)).send().await.unwrap();
    assert_eq!(res.status(), 409, "linked to someone else already");
}

async fn github_and_facebook_shapes(stack: Stack) {
    let provider = Provider::start().await;
    let Some(app) = spawn(stack, vec![provider.oauth("github", "gh"), provider.oauth("facebook", "fb")]).await else {
        return;
    };
    provider.set(|s| s.person = Person { sub: "583231".into(), login: "octocat".into(), ..s.person.clone() });
    let browser = app.browser();
    let res = external_login(&app, &browser, "github", "/").await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    let user = me(&app, &browser).await.unwrap();
    assert_eq!(
        (user.username.as_str(), user.email.as_str(), user.email_verified),
        ("octocat", "pat@example.org", true)
    );
    let link = turtlemen_db::identities::find(&app.db, "github", "583231").await.unwrap().unwrap();
    assert_eq!(link.user_id, user.id);

    // Facebook: the same email, but Facebook never vouches for it, so no link by email.
    let other = app.browser();
    provider.set(|s| s.person.sub = "10150000000000001".into());
    let res = external_login(&app, &other, "facebook", "/").await;
    assert_eq!(res.status(), 409);
    // Another email: a new account.
    provider.set(|s| s.person.email = Some("fb.person@example.org".into()));
    let res = external_login(&app, &other, "facebook", "/").await;
    assert_eq!(res.status(), 303);
    let fb_user = me(&app, &other).await.unwrap();
    assert_eq!(fb_user.username, "fb.person");
    assert!(!fb_user.email_verified);
    // A code the provider refuses: GitHub's 200-with-error and Facebook's Graph error.
    for id in ["github", "facebook"] {
        let browser = app.browser();
        let callback = start(&app, &browser, id, "/").await;
        let mut url = url::Url::parse(&callback).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        url.query_pairs_mut().clear();
        for (k, v) in pairs {
            url.query_pairs_mut().append_pair(&k, if k == "code" { "bogus" } else { &v });
        }
        let res = browser.get(url.as_str()).header("accept", "application/json").send().await.unwrap();
        assert_eq!(res.status(), 400, "{id}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "provider_error", "{id}");
    }
}
