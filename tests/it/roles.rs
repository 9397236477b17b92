//! The roles run alone, as a deployment scales them out: an auth service, an API server and a
//! gateway, each its own server, talking over HTTP — on SQLite + embedded sessions and on
//! PostgreSQL + Redis. A browser signs in through the gateway and the API sees who it is.

use crate::gateway::{Browser, Site};
use crate::helpers::{Stack, fresh_settings};
use turtlemen::app::{self, Internals, Role};
use turtlemen_config::Config;

struct Remote {
    client: reqwest::Client,
    base: String,
}

impl Site for Remote {
    fn http(&self) -> &reqwest::Client {
        &self.client
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

pub(crate) async fn start(
    role: Role,
    settings: turtlemen_config::Settings,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, Option<turtlemen_db::Db>) {
    let config = Config::resolve(settings).unwrap();
    let internals = Internals {
        session_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
        session_cache_ttl: std::time::Duration::ZERO,
        ..Internals::default()
    };
    let server = app::prepare(role, &config, &internals).await.unwrap();
    let addr = server.local_addr().unwrap();
    let db = server.db().cloned();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    (addr, tx, db)
}

async fn roles_alone(stack: Stack) {
    let Some((base, dir, _schema)) = fresh_settings(stack).await else { return };
    // As an operator would: `turtlemen migrate` before starting the roles.
    if let Some(url) = &base.database_url {
        let opts = turtlemen_db::DbOptions {
            url: url.clone(),
            max_connections: 1,
            search_path: None,
            create_if_missing: false,
        };
        turtlemen_db::Db::connect(&opts).await.unwrap().migrate().await.unwrap();
    }
    let secret = Some(turtlemen_domain::Secret::new("a shared cookie secret for every role, 32+"));
    let gateway_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let public_url = format!("http://127.0.0.1:{gateway_port}");
    let common =
        turtlemen_config::Settings { public_url: Some(public_url.clone()), cookie_secret: secret, ..base.clone() };

    let (auth_addr, _auth_stop, db) = start(Role::Auth, common.clone()).await;
    let upstream_auth = Some(format!("http://{auth_addr}"));
    let (api_addr, _api_stop, _) =
        start(Role::Api, turtlemen_config::Settings { upstream_auth: upstream_auth.clone(), ..common.clone() }).await;
    let gateway_dir = dir.path().join("gateway");
    let (gw_addr, _gw_stop, _) = start(
        Role::Gateway,
        turtlemen_config::Settings {
            listen: Some(format!("127.0.0.1:{gateway_port}")),
            data_dir: Some(gateway_dir),
            upstream_auth,
            upstream_api: Some(format!("http://{api_addr},http://127.0.0.1:1")),
            ..common.clone()
        },
    )
    .await;
    assert_eq!(gw_addr.port(), gateway_port);

    let db = db.expect("the auth service has the database");
    let form = turtlemen_auth::accounts::AccountForm {
        username: "ann",
        email: "ann@example.org",
        display_name: None,
        password: crate::helpers::PASSWORD,
        role: turtlemen_domain::Role::User,
        promote_if_first: false,
    };
    turtlemen_auth::accounts::create(&db, form).await.unwrap();

    let site = Remote {
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        base: public_url.clone(),
    };
    let browser = Browser::default();
    let (landed, _) = browser.navigate(&site, "/subscriptions", "ann").await;
    assert_eq!(landed, format!("{public_url}/subscriptions"));
    // Through the gateway to the API pool (one address of which is down: it is skipped).
    for _ in 0..4 {
        let res =
            site.client.get(site.url("/api/v1/me")).header("cookie", browser.cookie_header()).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<serde_json::Value>().await.unwrap()["username"], "ann");
    }
    // Straight to the API, without the gateway: no identity, whatever headers say.
    let direct = site
        .client
        .get(format!("http://{api_addr}/api/v1/me"))
        .header("x-auth-request-user", "ann")
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
    // The home page comes from the API server through the gateway.
    let home = site.client.get(site.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("Turtlemen"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_alone_on_sqlite() {
    roles_alone(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_alone_on_postgres_and_redis() {
    roles_alone(Stack::External).await;
}

#[test]
fn roles_alone_say_what_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) =
        crate::helpers::run_cli(&["gateway", "--listen", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()], "", &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--upstream-auth"), "{err}");
    let (code, _, err) =
        crate::helpers::run_cli(&["api", "--listen", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()], "", &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--upstream-auth"), "{err}");
    assert!(!data.exists(), "nothing created");
}
