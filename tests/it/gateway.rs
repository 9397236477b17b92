//! The gateway at the entry, on both stacks (embedded sessions, and Redis): signing in through
//! the OIDC flow and landing on the page asked for, identity handed to the API as a verified
//! JWT, client-supplied identity headers ignored, refresh once per session however many
//! requests arrive together, a refused refresh sending the visitor to sign in again, sign-out
//! ending both sessions, forward auth, and ambiguous paths refused.

use crate::helpers::{PASSWORD, TestApp, create_account};
use crate::on_both_stacks;
use reqwest::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use turtlemen_domain::Role;

/// Somewhere to browse: the whole app, or a gateway in front of roles run alone.
pub trait Site {
    fn http(&self) -> &reqwest::Client;
    fn url(&self, path: &str) -> String;
}

impl Site for TestApp {
    fn http(&self) -> &reqwest::Client {
        &self.client
    }
    fn url(&self, path: &str) -> String {
        TestApp::url(self, path)
    }
}

/// A browser that follows nothing by itself: cookies kept by hand, per name.
#[derive(Clone, Default)]
pub struct Browser {
    cookies: Arc<Mutex<HashMap<String, String>>>,
}

impl Browser {
    pub fn cookie_header(&self) -> String {
        self.cookies.lock().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub fn keep(&self, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let expired = attrs.to_ascii_lowercase().contains("max-age=0") || attrs.contains("1970");
            let mut jar = self.cookies.lock().unwrap();
            if expired || value.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    pub fn session(&self) -> Option<String> {
        self.cookie("turtlemen_session")
    }

    /// The value of the cookie `name`, if the browser holds one.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// Plants a cookie, as another site sharing the domain could.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies.lock().unwrap().insert(name.to_string(), value.to_string());
    }

    pub async fn get(&self, app: &impl Site, url: &str) -> reqwest::Response {
        let url = if url.starts_with("http") { url.to_string() } else { app.url(url) };
        let res = app
            .http()
            .get(url)
            .header("accept", "text/html")
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&res);
        res
    }

    pub async fn post(&self, app: &impl Site, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let res =
            app.http().post(app.url(path)).header("cookie", self.cookie_header()).form(form).send().await.unwrap();
        self.keep(&res);
        res
    }

    /// Follows redirects, filling in the sign-in form once when it appears.
    pub async fn navigate(&self, app: &impl Site, start: &str, username: &str) -> (String, reqwest::Response) {
        let mut url = start.to_string();
        for _ in 0..12 {
            let res = self.get(app, &url).await;
            if res.status().is_redirection() {
                let to = res.headers()["location"].to_str().unwrap().to_string();
                url = if to.starts_with('/') { app.url(&to) } else { to };
                continue;
            }
            if url.contains("/auth/login") && res.status() == 200 {
                let html = res.text().await.unwrap();
                let csrf = field(&html, "csrf");
                let return_to = field(&html, "return_to").replace("&#38;", "&").replace("&amp;", "&");
                let res = self
                    .post(
                        app,
                        "/auth/login",
                        &[("csrf", &csrf), ("username", username), ("password", PASSWORD), ("return_to", &return_to)],
                    )
                    .await;
                assert_eq!(res.status(), 303, "signed in");
                url = app.url(res.headers()["location"].to_str().unwrap());
                continue;
            }
            return (url, res);
        }
        panic!("too many redirects");
    }
}

/// The status of a GET sent byte for byte, path untouched.
async fn raw_status(app: &TestApp, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).await.unwrap();
    reply.split(' ').nth(1).unwrap().parse().unwrap()
}

pub fn field(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).unwrap() + needle.len();
    html[start..].split('"').next().unwrap().to_string()
}

pub async fn user(app: &TestApp, username: &str, role: Role) {
    create_account(&app.db, username, role).await;
}

pub async fn me(app: &TestApp, browser: &Browser) -> (StatusCode, serde_json::Value) {
    let res = app.client.get(app.url("/api/v1/me")).header("cookie", browser.cookie_header()).send().await.unwrap();
    browser.keep(&res);
    let status = res.status();
    (status, res.json().await.unwrap_or_default())
}

/// Makes the session's access token look expired, as time would.
async fn expire_access_token(app: &TestApp, browser: &Browser) {
    let key = turtlemen_gateway::session::key(&browser.session().expect("a session"));
    let bytes = app.sessions.get(&key).await.unwrap().expect("stored session");
    let mut record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    record["access_expires_at"] = 0.into();
    app.sessions.set(&key, &serde_json::to_vec(&record).unwrap(), std::time::Duration::from_secs(600)).await.unwrap();
}

on_both_stacks! {
    async fn sign_in_through_the_gateway_and_back(app) {
        user(&app, "ann", Role::Admin).await;
        let browser = Browser::default();

        // A required page sends a browser to sign in, an API client gets 401.
        let res = browser.get(&app, "/upload?draft=1").await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/oauth2/start?rd=%2Fupload%3Fdraft%3D1");
        let res = app.client.get(app.url("/upload")).header("accept", "application/json").send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(me(&app, &browser).await.0, 401);

        let (landed, _) = browser.navigate(&app, "/upload?draft=1", "ann").await;
        assert_eq!(landed, app.url("/upload?draft=1"), "back on the page asked for");
        let (status, body) = me(&app, &browser).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["username"], "ann");
        assert_eq!(body["role"], "admin");

        // /oauth2/userinfo and forward auth.
        let info: serde_json::Value = app.client.get(app.url("/oauth2/userinfo")).header("cookie", browser.cookie_header()).send().await.unwrap().json().await.unwrap();
        assert_eq!(info["preferred_username"], "ann");
        assert_eq!(info["groups"], serde_json::json!(["admin"]));
        let res = app.client.get(app.url("/oauth2/auth")).header("cookie", browser.cookie_header()).send().await.unwrap();
        assert_eq!(res.status(), 202);
        assert_eq!(res.headers()["x-auth-request-preferred-username"], "ann");
        assert!(res.headers()["authorization"].to_str().unwrap().starts_with("Bearer "));
        assert_eq!(app.client.get(app.url("/oauth2/auth")).send().await.unwrap().status(), 401);

        // The access token the gateway forwards works as a Bearer token on its own.
        let bearer = res.headers()["authorization"].to_str().unwrap().to_string();
        let res = app.client.get(app.url("/api/v1/me")).header("authorization", &bearer).send().await.unwrap();
        assert_eq!(res.status(), 200);

        // Sign-out ends the gateway session and the auth service's, and comes home.
        let res = browser.get(&app, "/oauth2/sign_out").await;
        assert_eq!(res.status(), 200, "a GET only asks");
        let token = field(&res.text().await.unwrap(), "token");
        let res = browser.post(&app, "/oauth2/sign_out", &[("token", &token)]).await;
        assert_eq!(res.status(), 303);
        let to = res.headers()["location"].to_str().unwrap().to_string();
        assert!(to.contains("/auth/logout?id_token_hint="), "{to}");
        let res = browser.get(&app, &to).await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"].to_str().unwrap(), app.url("/"));
        assert_eq!(me(&app, &browser).await.0, 401);
        let res = browser.get(&app, "/oauth2/start?rd=/").await;
        let res = browser.get(&app, res.headers()["location"].to_str().unwrap()).await;
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/auth/login"), "the auth service's session ended too");
    }

    async fn identity_headers_from_clients_are_ignored(app) {
        user(&app, "ann", Role::User).await;
        for (name, value) in [("x-auth-request-user", "admin"), ("X_Auth_Request_Preferred_Username", "admin"), ("x-forwarded-user", "admin"), ("remote-user", "admin")] {
            let res = app.client.get(app.url("/api/v1/me")).header(name, value).send().await.unwrap();
            assert_eq!(res.status(), 401, "{name}");
        }
        for bad in ["Bearer garbage", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.", "Basic YWRtaW46YWRtaW4="] {
            let res = app.client.get(app.url("/api/v1/me")).header("authorization", bad).send().await.unwrap();
            assert_eq!(res.status(), 401, "{bad}");
        }
        let res = app.client.get(app.url("/upload")).header("accept", "text/html").header("x-forwarded-uri", "/healthz").send().await.unwrap();
        assert_eq!(res.status(), 303, "routing uses the real path");
        // HTTP clients normalise such paths; a raw request keeps them as sent.
        for path in ["/api/../upload", "/%2e%2e/upload", "/api%2fv1/me", "/./upload"] {
            assert_eq!(raw_status(&app, path).await, 400, "{path}");
        }
        // The old 43-character shape, and one of the right shape without the gateway's HMAC.
        for forged in ["x".repeat(43), "x".repeat(86)] {
            let res = app.client.get(app.url("/api/v1/me")).header("cookie", format!("turtlemen_session={forged}")).send().await.unwrap();
            assert_eq!(res.status(), 401);
            assert!(res.headers().get("set-cookie").is_some_and(|c| c.to_str().unwrap().starts_with("turtlemen_session=;")), "a dead cookie is cleared");
        }
    }

    async fn refresh_happens_once_for_concurrent_requests(app) {
        user(&app, "ann", Role::User).await;
        let browser = Browser::default();
        browser.navigate(&app, "/oauth2/start?rd=/", "ann").await;
        assert_eq!(me(&app, &browser).await.0, 200);
        let key = turtlemen_gateway::session::key(&browser.session().unwrap());
        let before: serde_json::Value = serde_json::from_slice(&app.sessions.get(&key).await.unwrap().unwrap()).unwrap();

        expire_access_token(&app, &browser).await;
        let calls = (0..12).map(|_| {
            let (client, url, cookie) = (app.client.clone(), app.url("/api/v1/me"), browser.cookie_header());
            tokio::spawn(async move { client.get(url).header("cookie", cookie).send().await.unwrap().status() })
        });
        for call in calls.collect::<Vec<_>>() {
            assert_eq!(call.await.unwrap(), 200);
        }
        let after: serde_json::Value = serde_json::from_slice(&app.sessions.get(&key).await.unwrap().unwrap()).unwrap();
        assert_ne!(before["refresh_token"], after["refresh_token"], "refreshed");
        // Had two requests refreshed, the issuer would have seen a used token again and revoked
        // the family: the next refresh would fail. It succeeds.
        expire_access_token(&app, &browser).await;
        assert_eq!(me(&app, &browser).await.0, 200);
    }

    async fn a_refused_refresh_sends_the_visitor_to_sign_in(app) {
        user(&app, "ann", Role::User).await;
        let browser = Browser::default();
        browser.navigate(&app, "/oauth2/start?rd=/", "ann").await;
        // The user signs this session out elsewhere (the security page): its refresh tokens end.
        let ann = turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse("ann").unwrap()).await.unwrap().unwrap();
        for s in turtlemen_db::auth_sessions::list_for_user(&app.db, ann.id).await.unwrap() {
            turtlemen_db::auth_sessions::revoke(&app.db, ann.id, s.id).await.unwrap();
        }
        expire_access_token(&app, &browser).await;
        let res = browser.get(&app, "/subscriptions").await;
        assert_eq!(res.status(), 303);
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/oauth2/start?rd="));
        assert!(browser.session().is_none(), "the session cookie is cleared");
    }

    async fn sign_in_attempts_are_rate_limited(app) {
        let mut last = None;
        for _ in 0..31 {
            let res = app.client.post(app.url("/auth/login")).header("accept", "application/json").form(&[("username", "x"), ("password", "y")]).send().await.unwrap();
            last = Some(res);
        }
        let res = last.unwrap();
        assert_eq!(res.status(), 429);
        let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "too_many_requests");
        // Other endpoints still answer.
        assert_eq!(app.get("/healthz").await.status(), 200);
    }

    async fn open_redirects_are_refused(app) {
        for rd in ["//evil.example", "https://evil.example", "/\\evil.example", "/%09/evil.example", "\\\\evil.example"] {
            let res = app.client.get(app.url("/oauth2/start")).query(&[("rd", rd)]).send().await.unwrap();
            assert_eq!(res.status(), 303);
            let state = res.headers()["location"].to_str().unwrap().to_string();
            assert!(state.starts_with(&app.url("/auth/authorize?")), "{state}");
        }
        // The callback refuses a state that this browser did not start.
        let res = app.client.get(app.url("/oauth2/callback")).query(&[("code", "x"), ("state", &"a".repeat(43))]).send().await.unwrap();
        assert_eq!(res.status(), 400);
    }
}
