//! The test harness: [`TestApp`] starts the real app the way `turtlemen serve` does, on a free
//! port, with its own data dir and database, and gives typed helpers to talk to it.

use reqwest::StatusCode;
use std::net::SocketAddr;
use tokio::sync::oneshot;
use turtlemen::app::{self, Internals, Role};
use turtlemen_config::{Config, Settings};

/// Which stores a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// SQLite and the embedded session store (the default deployment).
    Embedded,
    /// PostgreSQL and Redis (the scaled-out deployment).
    External,
}

/// The PostgreSQL and Redis URLs for external-stack tests, or `None` to skip them. When
/// `TURTLEMEN_TEST_REQUIRE_EXTERNAL=1` (set by the test script and CI), missing URLs fail the
/// test instead, so CI can never pass by skipping.
pub fn external_urls() -> Option<(String, String)> {
    let pg = std::env::var("TURTLEMEN_TEST_POSTGRES_URL").ok().filter(|s| !s.is_empty());
    let redis = std::env::var("TURTLEMEN_TEST_REDIS_URL").ok().filter(|s| !s.is_empty());
    match (pg, redis) {
        (Some(pg), Some(redis)) => Some((pg, redis)),
        _ => {
            assert!(
                std::env::var("TURTLEMEN_TEST_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
                "TURTLEMEN_TEST_POSTGRES_URL and TURTLEMEN_TEST_REDIS_URL must be set"
            );
            eprintln!(
                "skipped: set TURTLEMEN_TEST_POSTGRES_URL and TURTLEMEN_TEST_REDIS_URL to run on PostgreSQL + Redis"
            );
            None
        }
    }
}

/// A fresh, empty PostgreSQL schema, dropped when this value is dropped.
pub struct PgSchema {
    pub base_url: String,
    pub name: String,
}

impl PgSchema {
    pub async fn create(base_url: &str) -> PgSchema {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn =
            <sqlx::PgConnection as sqlx::Connection>::connect(base_url).await.expect("connect to test PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .expect("create schema");
        PgSchema { base_url: base_url.to_string(), name }
    }

    /// The URL of the test database, working inside this schema. With
    /// `TURTLEMEN_TEST_POSTGRES_SERIALIZABLE=1` every transaction runs at SERIALIZABLE, CockroachDB's
    /// only isolation, so the suite meets the serialization failures (40001) CockroachDB would
    /// raise (docs/cockroachdb.md lists what that run still finds).
    pub fn url(&self) -> String {
        let sep = if self.base_url.contains('?') { '&' } else { '?' };
        let isolation = if std::env::var_os("TURTLEMEN_TEST_POSTGRES_SERIALIZABLE").is_some_and(|v| v == "1") {
            "&options[default_transaction_isolation]=serializable"
        } else {
            ""
        };
        format!("{}{sep}options[search_path]={}{isolation}", self.base_url, self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.base_url.clone();
        let name = self.name.clone();
        // Drop is synchronous: clean up on a thread with its own small runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Settings for a fresh instance on `stack`, with its own data dir; `None` when the external
/// stack is not configured.
pub async fn fresh_settings(stack: Stack) -> Option<(Settings, tempfile::TempDir, Option<PgSchema>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".into()),
        rtmp_listen: Some("127.0.0.1:0".into()),
        log_level: Some("warn".into()),
        // Tests name their admins; the first-account rule has its own tests (moderation.rs).
        first_user_admin: Some(false),
        // Every answer fresh, so a test sees its own changes at once; the gateway's page cache
        // has its own tests (page_cache.rs).
        public_page_max_age_secs: Some(0),
        ..Settings::default()
    };
    let mut schema = None;
    if stack == Stack::External {
        let (pg, redis) = external_urls()?;
        let s = PgSchema::create(&pg).await;
        settings.database_url = Some(s.url());
        settings.session_url = Some(redis);
        schema = Some(s);
    }
    Some((settings, dir, schema))
}

/// A test instance's internals: a session key prefix of its own (never the default), no session
/// cache, a quick upload sweep, signing keys reloaded often, and a rotation's keys published
/// just longer than the verifiers' least time between two fetches of the key set before they
/// sign, retired ones kept seconds (only the rotation tests rotate).
fn test_internals(worker: bool) -> Internals {
    let reload_every = std::time::Duration::from_millis(250);
    let lead = turtlemen_identity::jwks::REFETCH_INTERVAL + reload_every * 4;
    Internals {
        embedded_worker: worker,
        session_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
        session_cache_ttl: std::time::Duration::ZERO,
        upload_sweep_every: std::time::Duration::from_millis(300),
        signing_keys: turtlemen_auth::signing_keys::KeyTimings {
            reload_every,
            publish_lead: chrono::Duration::from_std(lead).expect("seconds"),
            retention: chrono::Duration::seconds(4),
        },
    }
}

/// A running instance of the whole program.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `metrics_listen`'s address, when the settings set one.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub db: turtlemen_db::Db,
    pub sessions: turtlemen_session::Sessions,
    /// The instance's data folder (its `outbox/`, `secrets/`…).
    pub data_dir: std::path::PathBuf,
    /// What it was started with, to start it again ([`TestApp::restart`]).
    pub settings: Settings,
    internals: Internals,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<PgSchema>,
}

impl TestApp {
    /// Starts every role in one process on `stack`; `None` if that stack is not configured.
    pub async fn spawn(stack: Stack) -> Option<TestApp> {
        let (settings, dir, schema) = fresh_settings(stack).await?;
        Some(Self::spawn_with(settings, dir, schema).await)
    }

    pub async fn spawn_with(settings: Settings, dir: tempfile::TempDir, schema: Option<PgSchema>) -> TestApp {
        Self::start_fresh(settings, dir, schema, true).await
    }

    /// `serve` without its embedded worker: the test runs workers itself.
    pub async fn spawn_without_worker(settings: Settings, dir: tempfile::TempDir, schema: Option<PgSchema>) -> TestApp {
        Self::start_fresh(settings, dir, schema, false).await
    }

    /// `serve` whose gateway reuses a session it read for `ttl` (the other instances read the
    /// store for every request), as a deployment's does.
    pub async fn spawn_with_session_cache(
        settings: Settings,
        dir: tempfile::TempDir,
        schema: Option<PgSchema>,
        ttl: std::time::Duration,
    ) -> TestApp {
        let internals = Internals { session_cache_ttl: ttl, ..test_internals(true) };
        Self::start(settings, internals, Some(dir), schema).await
    }

    async fn start_fresh(
        settings: Settings,
        dir: tempfile::TempDir,
        schema: Option<PgSchema>,
        worker: bool,
    ) -> TestApp {
        Self::start(settings, test_internals(worker), Some(dir), schema).await
    }

    /// What the instance was started with beyond its settings (its session key prefix…).
    pub fn internals(&self) -> &Internals {
        &self.internals
    }

    /// Stops the instance and starts it again on the same address, data, database and session
    /// store (the same address keeps the public URL, so the issuer, the same).
    /// Starts it again with `change` made to its settings.
    pub async fn restart_with(mut self, change: impl FnOnce(&mut Settings)) -> TestApp {
        change(&mut self.settings);
        self.restart().await
    }

    pub async fn restart(mut self) -> TestApp {
        let mut settings = self.settings.clone();
        settings.listen = Some(self.addr.to_string());
        let internals = self.internals.clone();
        let (dir, schema) = (self._dir.take(), self._schema.take());
        self.stop().await;
        Self::start(settings, internals, dir, schema).await
    }

    async fn start(
        settings: Settings,
        internals: Internals,
        dir: Option<tempfile::TempDir>,
        schema: Option<PgSchema>,
    ) -> TestApp {
        let config = Config::resolve(settings.clone()).expect("valid test config");
        let data_dir = config.data_dir.clone();
        let server = app::prepare(Role::All, &config, &internals).await.expect("app starts");
        let addr = server.local_addr().expect("bound");
        let metrics_addr = server.metrics_addr();
        let db = server.db().expect("serve uses a database").clone();
        let sessions = server.sessions().expect("serve uses a session store").clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestApp {
            addr,
            metrics_addr,
            client,
            db,
            sessions,
            data_dir,
            settings,
            internals,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
            _schema: schema,
        }
    }

    /// A second instance of every role on this one's database, data folder (so its keys) and
    /// session store — a replica behind a load balancer — on its own address. It answers as
    /// this instance's public URL, so the tokens and cookies of one are good on the other.
    pub async fn replica(&self) -> TestApp {
        let mut settings = self.settings.clone();
        settings.listen = Some("127.0.0.1:0".into());
        settings.public_url = Some(self.url(""));
        Self::start(settings, self.internals.clone(), None, None).await
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    /// GET as a browser would ask for a page.
    pub async fn get_page(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, serde_json::Value) {
        let res = self.get(path).await;
        let status = res.status();
        (status, res.json().await.expect("JSON body"))
    }

    /// Stops the server the way SIGTERM does and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task ends cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The password of every account the tests create.
pub const PASSWORD: &str = "correct horse battery";

/// Creates the account `username` (`{username}@example.org`, password [`PASSWORD`]) with `role`.
pub async fn create_account(db: &turtlemen_db::Db, username: &str, role: turtlemen_domain::Role) {
    let form = turtlemen_auth::accounts::AccountForm {
        username,
        email: &format!("{username}@example.org"),
        display_name: None,
        password: PASSWORD,
        role,
        promote_if_first: false,
    };
    turtlemen_auth::accounts::create(db, form).await.expect("an account");
}

/// The private key (PKCS#8) of the instance's signing key `kid`, opened from the database.
pub async fn signing_key(app: &TestApp, kid: &str) -> Vec<u8> {
    let config = Config::resolve(app.settings.clone()).expect("valid test config");
    let cookie = turtlemen::data_dir::keys(&config).expect("the instance's secrets").cookie;
    let rows = turtlemen_db::signing_keys::list(&app.db).await.expect("the keys");
    let sealed = rows.iter().find(|r| r.kid == kid).and_then(|r| r.private_key.as_ref()).expect("a private key");
    turtlemen_auth::secret_box::SecretBox::for_signing_keys(&cookie).open_for(kid.as_bytes(), sealed).expect("opens")
}

/// Waits until a key activating at `signs_from` signs: the signer switches at the whole second at
/// or after it. Panics past `limit` from now.
pub async fn until_signing(signs_from: chrono::DateTime<chrono::Utc>, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    let switch = signs_from.timestamp() + i64::from(signs_from.timestamp_subsec_nanos() > 0);
    while chrono::Utc::now().timestamp() < switch {
        assert!(std::time::Instant::now() < deadline, "the key never signed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether an answer got now can show a key activating at `signs_from` not signing yet: answered a
/// second or more before (closer, the clocks' rounding could go either way). Prints the
/// figure either way.
pub fn well_before(signs_from: chrono::DateTime<chrono::Utc>) -> bool {
    let ahead = signs_from - chrono::Utc::now();
    println!("answered {:.1} s before the key signs", ahead.as_seconds_f64());
    ahead >= chrono::Duration::seconds(1)
}

/// Declares one async test body and runs it on both stacks: `name::embedded` (SQLite +
/// embedded sessions) and `name::external` (PostgreSQL + Redis). Written `without_worker;`
/// first, the instances run no worker of their own: the tests drive the job queue themselves.
#[macro_export]
macro_rules! on_both_stacks {
    (without_worker; $(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let (settings, dir, schema) = $crate::helpers::fresh_settings($crate::helpers::Stack::Embedded).await.expect("embedded stack");
                body($crate::helpers::TestApp::spawn_without_worker(settings, dir, schema).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn external() {
                if let Some((settings, dir, schema)) = $crate::helpers::fresh_settings($crate::helpers::Stack::External).await {
                    body($crate::helpers::TestApp::spawn_without_worker(settings, dir, schema).await).await
                }
            }
        }
    )*};
    ($(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Stack::Embedded).await.expect("embedded stack");
                body(app).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn external() {
                if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Stack::External).await {
                    body(app).await
                }
            }
        }
    )*};
}

/// Runs the built `turtlemen` binary with `args`, `stdin`, extra environment and a clean
/// `TURTLEMEN_*` environment; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    run_program(std::path::Path::new(env!("CARGO_BIN_EXE_turtlemen")), args, stdin, env)
}

/// [`run_cli`] with another `turtlemen` binary (the previous release's, for upgrade.rs).
pub fn run_program(
    program: &std::path::Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("TURTLEMEN_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("TURTLEMEN_LOG_LEVEL", "warn");
    // Not the default RTMP port, which another test's or program's server may hold (its warning
    // would be a second line on stderr).
    cmd.env("TURTLEMEN_RTMP_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run turtlemen");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("turtlemen finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
