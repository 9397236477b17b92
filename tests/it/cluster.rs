//! Running the built `turtlemen` as real processes beside real services, for the tests that
//! break things on purpose (scale_out.rs, faults/), move media under them (media_move.rs) or
//! upgrade them (upgrade.rs, beside the previous release's binary): free ports, processes killed
//! when dropped or stopped as an operator would, replicas started and restarted on their own data
//! dirs, HAProxy in front, moto's S3 server, and [`Person`], a browser-like client doing the
//! people's journeys.

use crate::gateway::{Browser, field};
use crate::helpers::PASSWORD;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a process may take to answer `/readyz` after it is started.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(60);

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("bound").port()
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One replica: how to start it, where it answers `/readyz`, and its log (kept across restarts).
pub(crate) struct Replica {
    pub(crate) name: String,
    /// Another build's binary (the previous release, for upgrade.rs); `None`: this build's.
    pub(crate) program: Option<PathBuf>,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) port: u16,
    pub(crate) data_dir: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) child: Option<Killed>,
}

impl Replica {
    pub(crate) fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let program = self.program.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_turtlemen")));
        let mut cmd = Command::new(program);
        cmd.args(&self.args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.env("TURTLEMEN_DATA_DIR", &self.data_dir).envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("log file")).stderr(log);
        self.child = Some(Killed(cmd.spawn().expect("turtlemen starts")));
    }

    /// `kill -9`, and waits until the process is gone.
    pub(crate) fn kill(&mut self) {
        drop(self.child.take());
    }

    /// Stops the process as an operator (or an orchestrator) does — SIGTERM, then waits for it to
    /// finish its requests and exit — and checks that it exited cleanly.
    pub(crate) async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = rustix::process::Pid::from_child(&child.0);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM sent");
        let deadline = Instant::now() + START_DEADLINE;
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("process state") {
                break status;
            }
            assert!(Instant::now() < deadline, "{} did not stop on SIGTERM:\n{}", self.name, tail(&self.log));
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{} exited with {status} on SIGTERM:\n{}", self.name, tail(&self.log));
    }

    pub(crate) async fn ready(&mut self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let child = &mut self.child.as_mut().expect("started").0;
            if let Some(status) = child.try_wait().expect("process state") {
                panic!("{} exited with {status}:\n{}", self.name, tail(&self.log));
            }
            if http.get(&url).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
                // Asked once more, on a new connection. The previous release (`722b6d2`) installs
                // its signal handlers when its accept loop first polls them, which may come just
                // after its first answer; by a second answer the loop has turned again, so a
                // SIGTERM sent next is far less likely to meet no handler (this build installs
                // them before it accepts: `server::shutdown_signal`).
                let again = reqwest::Client::new().get(&url).send().await;
                if again.is_ok_and(|r| r.status() == StatusCode::OK) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{} never became ready:\n{}", self.name, tail(&self.log));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether this replica's log shows a request with `id` answered.
    pub(crate) fn served(&self, id: &str) -> bool {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().any(|l| l.contains(id) && l.contains("served"))
    }

    /// How many requests whose log line holds `part` (a path…) this replica's log shows answered
    /// (at log level `info`).
    pub(crate) fn answered(&self, part: &str) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines().filter(|l| l.contains(part) && l.contains("served")).count()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} (the end of its log)\n{}", self.name, tail(&self.log));
        }
    }
}

pub(crate) fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// HAProxy on `port`, round-robin over the servers on `ports` (gateways, or `serve`
/// processes), checking each every 300 ms; a connection refused is tried again on another server.
pub(crate) async fn start_haproxy(dir: &Path, port: u16, ports: &[u16]) -> Killed {
    let servers: String =
        ports.iter().enumerate().map(|(i, p)| format!("    server gateway-{} 127.0.0.1:{p}\n", i + 1)).collect();
    let config = format!(
        "global\n    maxconn 512\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 120s\n    timeout server 120s\n\
         \x20   retries 2\n    option redispatch 1\n    option forwardfor\n\
         frontend entry\n    bind 127.0.0.1:{port}\n    default_backend gateways\n\
         backend gateways\n    balance roundrobin\n    option httpchk\n\
         \x20   http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host 127.0.0.1:{port}\n\
         \x20   default-server check inter 300ms fall 1 rise 1\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).expect("HAProxy configuration");
    // Debian installs it in /usr/sbin, which is not on every account's PATH.
    let child = ["haproxy", "/usr/sbin/haproxy"]
        .iter()
        .find_map(|bin| {
            Command::new(bin).arg("-db").arg("-f").arg(&path).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()
        })
        .expect("HAProxy is required (scripts/install-deps.sh installs it)");
    let mut haproxy = Killed(child);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        assert!(haproxy.0.try_wait().expect("process state").is_none(), "HAProxy exited");
        let url = format!("http://127.0.0.1:{port}/healthz");
        if http.get(url).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            return haproxy;
        }
        assert!(Instant::now() < deadline, "HAProxy never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until background journeys have done `n` more rounds (so requests met the processes as
/// they are now).
pub(crate) async fn rounds_go_on(rounds: &AtomicUsize, n: usize, while_: &str) {
    let start = rounds.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while rounds.load(Ordering::SeqCst) < start + n {
        assert!(Instant::now() < deadline, "the background journeys stalled {while_}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// moto's S3 server on a free port, with the bucket `media`.
pub(crate) async fn start_moto() -> (Killed, String) {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server is required (scripts/install-deps.sh installs it)");
    let moto = Killed(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + START_DEADLINE;
    let http = reqwest::Client::new();
    while !http.put(format!("{endpoint}/media")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "moto_server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (moto, endpoint)
}

/// A person's client: a browser's cookies, each request retried at most once (after a
/// connection failure, a cut-off answer, 502 or 504: a request caught in flight by a kill), as a
/// browser's reload or an app's retry would; a second failure fails the test. A 503 fails it at
/// once: while one replica of each role is up, a request that could not be handed over to the
/// dead one is sent to the other, never refused. Retries are written down for the report.
#[derive(Clone)]
pub(crate) struct Person {
    pub(crate) name: String,
    base: String,
    http: reqwest::Client,
    pub(crate) browser: Browser,
    retries: Arc<Mutex<Vec<String>>>,
    /// The address this person's requests come from, as a proxy in front would tell
    /// (`X-Forwarded-For`; the program trusts it only from its `trusted_proxies`).
    address: Option<String>,
    /// Whether a failure fails the test (see [`Person::send`]); otherwise requests are sent once
    /// and every answer or failure is returned ([`Person::try_send`]).
    strict: bool,
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: bytes::Bytes,
}

impl Answer {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    pub(crate) fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
}

impl Person {
    pub(crate) fn new(name: &str, base: &str, retries: &Arc<Mutex<Vec<String>>>) -> Person {
        Person {
            name: name.into(),
            base: base.into(),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
            browser: Browser::default(),
            retries: retries.clone(),
            address: None,
            strict: true,
        }
    }

    /// A person whose requests are sent once, each bounded by `timeout`, their failures
    /// returned rather than failing the test: for a test that breaks a service on purpose.
    pub(crate) fn lenient(name: &str, base: &str, timeout: Duration) -> Person {
        Person {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .build()
                .expect("client"),
            strict: false,
            ..Person::new(name, base, &Arc::default())
        }
    }

    /// This person (the same cookies, the same record of retries) sending to `base` instead: one
    /// process straight, past the load balancer.
    pub(crate) fn at(&self, base: &str) -> Person {
        Person { base: base.into(), ..self.clone() }
    }

    /// This person, their requests coming from `address` (per-address limits count them apart).
    pub(crate) fn with_address(self, address: &str) -> Person {
        Person { address: Some(address.to_string()), ..self }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) }
    }

    /// Sends the request `make` builds once, with this person's cookies (and keeps the cookies
    /// it sets): the answer, or why there is none.
    pub(crate) async fn try_send(
        &self,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, Unanswered> {
        let mut req = make(&self.http).header("cookie", self.browser.cookie_header());
        if let Some(address) = &self.address {
            req = req.header("x-forwarded-for", address);
        }
        let res =
            req.send().await.map_err(|e| if e.is_timeout() { Unanswered::TimedOut(e) } else { Unanswered::Send(e) })?;
        self.browser.keep(&res);
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.bytes().await.map_err(|source| Unanswered::BodyBroke { status, source })?;
        Ok(Answer { status, headers, body })
    }

    /// A strict person's [`Person::send`], a lenient one's [`Person::try_send`].
    async fn request(
        &self,
        what: &str,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, Unanswered> {
        if self.strict { Ok(self.send(what, make).await) } else { self.try_send(make).await }
    }

    /// Sends the request `make` builds (with this person's cookies); `what` names it.
    pub(crate) async fn send(&self, what: &str, make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder) -> Answer {
        let mut failure = String::new();
        for attempt in 0..2 {
            match self.try_send(&make).await {
                Ok(res) if res.status == StatusCode::SERVICE_UNAVAILABLE => {
                    panic!("{}: {what} was refused (503) though a replica of each role is up", self.name);
                }
                Ok(res) if !matches!(res.status.as_u16(), 502 | 504) => return res,
                Ok(res) => failure = res.status.to_string(),
                Err(e) => failure = e.to_string(),
            }
            if attempt == 0 {
                self.retries.lock().expect("retries").push(format!("{}: {what}: {failure}", self.name));
                // A client's pause before it tries again.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        panic!("{}: {what} failed beyond one client retry: {failure}", self.name);
    }

    pub(crate) async fn get(&self, what: &str, path: &str) -> Answer {
        let url = self.url(path);
        self.send(what, |c| c.get(&url).header("accept", "application/json")).await
    }

    /// Signs in through the OIDC flow from `/studio/videos`, as a browser follows the redirects.
    pub(crate) async fn sign_in(&self) {
        if let Err(e) = self.try_sign_in().await {
            panic!("{}: {e}", self.name);
        }
    }

    /// [`Person::sign_in`], saying what went wrong instead of failing the test.
    pub(crate) async fn try_sign_in(&self) -> Result<(), Unanswered> {
        let mut url = self.url("/studio/videos");
        for _ in 0..12 {
            let res = self.request(&format!("sign-in at {url}"), |c| c.get(&url).header("accept", "text/html")).await?;
            if res.status.is_redirection() {
                url = self.url(&res.header("location"));
                continue;
            }
            if url.contains("/auth/login") && res.status == StatusCode::OK {
                let html = String::from_utf8_lossy(&res.body);
                let csrf = field(&html, "csrf");
                let return_to = field(&html, "return_to").replace("&#38;", "&").replace("&amp;", "&");
                let form = [
                    ("csrf", csrf.as_str()),
                    ("username", self.name.as_str()),
                    ("password", PASSWORD),
                    ("return_to", return_to.as_str()),
                ];
                let login = self.url("/auth/login");
                let res = self.request("sign-in form", |c| c.post(&login).form(&form)).await?;
                if res.status != StatusCode::SEE_OTHER {
                    return Err(Unanswered::SignInForm(res.status));
                }
                url = self.url(&res.header("location"));
                continue;
            }
            if (res.status, url.ends_with("/studio/videos")) != (StatusCode::OK, true) {
                return Err(Unanswered::SignInEnded { url, status: res.status });
            }
            return Ok(());
        }
        Err(Unanswered::TooManyRedirects)
    }

    /// Comments on `video`; the new comment's id.
    pub(crate) async fn comment(&self, video: &str, text: &str) -> String {
        let url = self.url(&format!("/api/v1/videos/{video}/comments"));
        let body = serde_json::json!({ "text": text });
        let res = self.send(&format!("comment {text:?}"), |c| c.post(&url).json(&body)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}: {}", self.name, String::from_utf8_lossy(&res.body));
        res.json()["id"].as_str().expect("the comment's id").to_string()
    }

    /// Watches `video`: its JSON, its page, and — with `play`, once it is ready — its HLS master
    /// playlist, a rendition's playlist and a segment of it.
    pub(crate) async fn watch(&self, video: &str, play: bool) -> serde_json::Value {
        let v = self.get("the video", &format!("/api/v1/videos/{video}")).await;
        assert_eq!(v.status, StatusCode::OK);
        let v = v.json();
        let url = self.url(v["watch_url"].as_str().expect("a watch URL"));
        let page = self.send("the watch page", |c| c.get(&url).header("accept", "text/html")).await;
        assert_eq!(page.status, StatusCode::OK);
        if play
            && v["state"] == "ready"
            && let Some(hls) = v["hls_url"].as_str()
        {
            let master = self.get("the master playlist", hls).await;
            assert_eq!(master.status, StatusCode::OK);
            let master = String::from_utf8_lossy(&master.body).into_owned();
            let base = hls.trim_end_matches("master.m3u8");
            let variant = master.lines().find(|l| l.ends_with(".m3u8")).expect("a rendition");
            let playlist = self.get("a rendition's playlist", &format!("{base}{variant}")).await;
            assert_eq!(playlist.status, StatusCode::OK);
            let playlist = String::from_utf8_lossy(&playlist.body).into_owned();
            let folder = format!("{base}{}", variant.rsplit_once('/').map_or("", |(d, _)| d));
            let segment = playlist.lines().find(|l| l.ends_with(".m4s")).expect("a segment");
            let res = self.get("a segment", &format!("{folder}/{segment}")).await;
            assert_eq!(res.status, StatusCode::OK);
            assert!(!res.body.is_empty());
        }
        v
    }
}

/// The keys of the bucket under `prefix` (moto answers unsigned requests).
pub(crate) async fn list_keys(s3: &str, prefix: &str) -> Vec<String> {
    let url = format!("{s3}/media?list-type=2&prefix={prefix}");
    let xml = reqwest::get(url).await.expect("moto answers").text().await.expect("a listing");
    assert!(!xml.contains("<IsTruncated>true</IsTruncated>"), "one page of keys");
    xml.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(str::to_string).collect()
}

/// The environment that points a `turtlemen` process at the bucket `media` of moto's S3 at
/// `endpoint`.
pub(crate) fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TURTLEMEN_STORAGE_URL", "s3://media".into()),
        ("AWS_ENDPOINT", endpoint.into()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// Why a person's request or sign-in got no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unanswered {
    #[error("timed out: {0}")]
    TimedOut(reqwest::Error),
    #[error("{0}")]
    Send(reqwest::Error),
    #[error("{status}, then the body broke off: {source}")]
    BodyBroke { status: StatusCode, source: reqwest::Error },
    #[error("the sign-in form was answered {0}")]
    SignInForm(StatusCode),
    #[error("signing in ended at {url} with {status}")]
    SignInEnded { url: String, status: StatusCode },
    #[error("too many redirects signing in")]
    TooManyRedirects,
}
