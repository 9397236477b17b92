//! The multi-replica test: every role twice, each its own `turtlemen` process (the built
//! binary), on loopback behind HAProxy (round-robin over the two gateways), on PostgreSQL, Redis
//! and moto's S3 server. People sign in, comment and watch while one replica of each role in
//! turn — gateway, auth, API, worker — is killed with SIGKILL (`kill -9`) and started again; a
//! clip is uploaded with a break and resumed on the other API replica (the one that took the
//! first part is the API replica killed). Every request may be retried once by its client, as a
//! browser or app would, when a kill caught it in flight; a second failure fails the test, and so
//! does any 503 (a request refused for a dead replica while the other is up). Afterwards nothing
//! written is missing and the transcode finished exactly once (one job, taken up again once after
//! the kill, its renditions stored once).
//!
//! Runs on the external stack only (it is the scaled-out deployment): skipped without
//! `TURTLEMEN_TEST_POSTGRES_URL` / `TURTLEMEN_TEST_REDIS_URL`, unless the run requires them.

use crate::channels::publish_in;
use crate::gateway::{Browser, PASSWORD, field};
use crate::helpers::{PgSchema, external_urls};
use crate::uploads::metadata;
use crate::videos::clip;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A cookie secret every role shares (at least 32 characters).
const COOKIE_SECRET: &str = "one cookie secret for every replica of the scale-out test";
/// How long a process may take to answer `/readyz` after it is started.
const START_DEADLINE: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("bound").port()
}

/// A child process killed (SIGKILL) and reaped when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One replica: how to start it, where it answers `/readyz`, and its log (kept across restarts).
struct Replica {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Killed>,
}

impl Replica {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_turtlemen"));
        cmd.args(&self.args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.env("TURTLEMEN_DATA_DIR", &self.data_dir).envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("log file")).stderr(log);
        self.child = Some(Killed(cmd.spawn().expect("turtlemen starts")));
    }

    /// `kill -9`, and waits until the process is gone.
    fn kill(&mut self) {
        drop(self.child.take());
    }

    async fn ready(&mut self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let child = &mut self.child.as_mut().expect("started").0;
            if let Some(status) = child.try_wait().expect("process state") {
                panic!("{} exited with {status}:\n{}", self.name, tail(&self.log));
            }
            if http.get(&url).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            assert!(Instant::now() < deadline, "{} never became ready:\n{}", self.name, tail(&self.log));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether this replica's log shows a request with `id` answered.
    fn served(&self, id: &str) -> bool {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().any(|l| l.contains(id) && l.contains("served"))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} (the end of its log)\n{}", self.name, tail(&self.log));
        }
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// moto's S3 server on a free port, with the bucket `media`.
async fn start_moto() -> (Killed, String) {
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

/// HAProxy on `port`, round-robin over `gateways`, checking each every 300 ms.
async fn start_haproxy(dir: &Path, port: u16, gateways: &[u16]) -> Killed {
    let servers: String =
        gateways.iter().enumerate().map(|(i, p)| format!("    server gateway-{} 127.0.0.1:{p}\n", i + 1)).collect();
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

/// A person's client: a browser's cookies, each request retried at most once (after a
/// connection failure, a cut-off answer, 502 or 504: a request caught in flight by a kill), as a
/// browser's reload or an app's retry would; a second failure fails the test. A 503 fails it at
/// once: while one replica of each role is up, a request that could not be handed over to the
/// dead one is sent to the other, never refused. Retries are written down for the report.
#[derive(Clone)]
struct Person {
    name: String,
    base: String,
    http: reqwest::Client,
    browser: Browser,
    retries: Arc<Mutex<Vec<String>>>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
}

impl Person {
    fn new(name: &str, base: &str, retries: &Arc<Mutex<Vec<String>>>) -> Person {
        Person {
            name: name.into(),
            base: base.into(),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
            browser: Browser::default(),
            retries: retries.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) }
    }

    /// Sends the request `make` builds (with this person's cookies); `what` names it.
    async fn send(&self, what: &str, make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder) -> Answer {
        let mut failure = String::new();
        for attempt in 0..2 {
            let req = make(&self.http).header("cookie", self.browser.cookie_header());
            match req.send().await {
                Ok(res) if res.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    panic!("{}: {what} was refused (503) though a replica of each role is up", self.name);
                }
                Ok(res) if !matches!(res.status().as_u16(), 502 | 504) => {
                    self.browser.keep(&res);
                    let (status, headers) = (res.status(), res.headers().clone());
                    match res.bytes().await {
                        Ok(body) => return Answer { status, headers, body },
                        Err(e) => failure = format!("{status}, then the body broke off: {e}"),
                    }
                }
                Ok(res) => failure = res.status().to_string(),
                Err(e) => failure = format!("{e}"),
            }
            if attempt == 0 {
                self.retries.lock().expect("retries").push(format!("{}: {what}: {failure}", self.name));
                // A client's pause before it tries again.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        panic!("{}: {what} failed beyond one client retry: {failure}", self.name);
    }

    async fn get(&self, what: &str, path: &str) -> Answer {
        let url = self.url(path);
        self.send(what, |c| c.get(&url).header("accept", "application/json")).await
    }

    /// Signs in through the OIDC flow from `/studio/videos`, as a browser follows the redirects.
    async fn sign_in(&self) {
        let mut url = self.url("/studio/videos");
        for _ in 0..12 {
            let res = self.send(&format!("sign-in at {url}"), |c| c.get(&url).header("accept", "text/html")).await;
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
                let res = self.send("sign-in form", |c| c.post(&login).form(&form)).await;
                assert_eq!(res.status, StatusCode::SEE_OTHER, "{}: signed in", self.name);
                url = self.url(&res.header("location"));
                continue;
            }
            assert_eq!(
                (res.status, url.ends_with("/studio/videos")),
                (StatusCode::OK, true),
                "{}: at {url}",
                self.name
            );
            return;
        }
        panic!("{}: too many redirects signing in", self.name);
    }

    /// Comments on `video`; the new comment's id.
    async fn comment(&self, video: &str, text: &str) -> String {
        let url = self.url(&format!("/api/v1/videos/{video}/comments"));
        let body = serde_json::json!({ "text": text });
        let res = self.send(&format!("comment {text:?}"), |c| c.post(&url).json(&body)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}: {}", self.name, String::from_utf8_lossy(&res.body));
        res.json()["id"].as_str().expect("the comment's id").to_string()
    }

    /// Watches `video`: its JSON, its page, and — with `play`, once it is ready — its HLS master
    /// playlist, a rendition's playlist and a segment of it.
    async fn watch(&self, video: &str, play: bool) -> serde_json::Value {
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

/// The comments answered 201: (id, text).
type Written = Arc<Mutex<Vec<(String, String)>>>;

/// Two people watching and commenting on `video` until `stop`, each round counted in `rounds`.
fn background(
    people: Vec<Person>,
    video: String,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    written: Written,
) -> Vec<tokio::task::JoinHandle<()>> {
    people
        .into_iter()
        .map(|p| {
            let (video, stop, rounds, written) = (video.clone(), stop.clone(), rounds.clone(), written.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    p.watch(&video, false).await;
                    let text = format!("{} says {n}", p.name);
                    let id = p.comment(&video, &text).await;
                    written.lock().expect("written").push((id, text));
                    let list = p.get("the comments", &format!("/api/v1/videos/{video}/comments")).await;
                    assert_eq!(list.status, StatusCode::OK);
                    rounds.fetch_add(1, Ordering::SeqCst);
                    // A person's pace between rounds.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            })
        })
        .collect()
}

/// Waits until the background people have done `n` more rounds (so requests met the cluster as
/// it is now, through both gateways).
async fn rounds_go_on(rounds: &AtomicUsize, n: usize, while_: &str) {
    let start = rounds.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while rounds.load(Ordering::SeqCst) < start + n {
        assert!(Instant::now() < deadline, "the background journeys stalled {while_}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Several people commenting at once right after a kill: several requests with bodies meet
/// the dead replica before any gateway has marked it down.
async fn burst(people: &[Person], video: &str, label: &str, written: &Written) {
    let sends = people.iter().flat_map(|p| (0..3).map(move |i| (p, i))).map(|(p, i)| {
        let text = format!("{} during {label} {i}", p.name);
        async move { (p.comment(video, &text).await, text) }
    });
    let done = futures::future::join_all(sends).await;
    written.lock().expect("written").extend(done);
}

/// Kills `replica` and starts it again once, meanwhile, people have commented all at once,
/// `newcomer` has signed in and the background journeys have gone on.
async fn while_down(
    replica: &mut Replica,
    newcomer: &Person,
    (people, talk, written, rounds): (&[Person], &str, &Written, &AtomicUsize),
) {
    replica.kill();
    burst(people, talk, &format!("the {} kill", replica.name), written).await;
    newcomer.sign_in().await;
    rounds_go_on(rounds, 4, &format!("with {} down", replica.name)).await;
    replica.start();
    replica.ready().await;
    rounds_go_on(rounds, 4, &format!("after {} came back", replica.name)).await;
}

/// The keys of the bucket under `prefix` (moto answers unsigned requests).
async fn list_keys(s3: &str, prefix: &str) -> Vec<String> {
    let url = format!("{s3}/media?list-type=2&prefix={prefix}");
    let xml = reqwest::get(url).await.expect("moto answers").text().await.expect("a listing");
    assert!(!xml.contains("<IsTruncated>true</IsTruncated>"), "one page of keys");
    xml.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_twice_survives_a_kill_of_each() {
    let Some((pg, redis)) = external_urls() else { return };
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let schema = PgSchema::create(&pg).await;
    // A Redis database of its own, away from the default one other tests and servers use (the
    // roles' key prefix is fixed).
    let redis = format!("{}/{}", redis.trim_end_matches('/'), 1 + uuid::Uuid::new_v4().as_bytes()[0] % 15);
    let (_moto, s3) = start_moto().await;
    let clip_file = clip(tmp.path(), "clip.mp4", "640x360", 12);
    let (lb, gateway_ports, auth_ports, api_ports, worker_ports) = (
        free_port(),
        [free_port(), free_port()],
        [free_port(), free_port()],
        [free_port(), free_port()],
        [free_port(), free_port()],
    );
    let urls = |ports: &[u16; 2]| ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
    let public_url = format!("http://127.0.0.1:{lb}");
    let common: Vec<(String, String)> = [
        ("TURTLEMEN_DATABASE_URL", schema.url()),
        ("TURTLEMEN_DATABASE_MAX_CONNECTIONS", "4".into()),
        ("TURTLEMEN_SESSION_URL", redis),
        ("TURTLEMEN_STORAGE_URL", "s3://media".into()),
        ("AWS_ENDPOINT", s3.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("TURTLEMEN_PUBLIC_URL", public_url.clone()),
        ("TURTLEMEN_COOKIE_SECRET", COOKIE_SECRET.into()),
        // HAProxy in front of the gateways, the gateways in front of auth and API: all loopback.
        ("TURTLEMEN_TRUSTED_PROXIES", "127.0.0.1".into()),
        ("TURTLEMEN_UPSTREAM_AUTH", urls(&auth_ports)),
        ("TURTLEMEN_UPSTREAM_API", urls(&api_ports)),
        ("TURTLEMEN_FIRST_USER_ADMIN", "false".into()),
        // The people here comment several times a minute; the limit has its own tests.
        ("TURTLEMEN_COMMENTS_PER_MINUTE", "0".into()),
        // `served` lines name each request's id: which replica took a request is read there.
        ("TURTLEMEN_LOG_LEVEL", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let replica = |name: &str, role: &str, port: u16| {
        let mut args = vec![role.to_string()];
        let mut env = common.clone();
        if role == "worker" {
            args.extend(["--health-listen".into(), format!("127.0.0.1:{port}"), "--lease-secs".into(), "15".into()]);
        } else {
            env.push(("TURTLEMEN_LISTEN".into(), format!("127.0.0.1:{port}")));
        }
        Replica {
            name: name.into(),
            args,
            env,
            port,
            data_dir: tmp.path().join(name),
            log: tmp.path().join(format!("{name}.log")),
            child: None,
        }
    };

    // As an operator would: migrate once, then start the roles, both auth replicas at once on a
    // database without signing keys (one replica's first key wins; both sign with it).
    let (code, _, err) = crate::helpers::run_cli(
        &["migrate"],
        "",
        &common.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "migrate: {err}");
    let mut auth = [replica("auth-1", "auth", auth_ports[0]), replica("auth-2", "auth", auth_ports[1])];
    auth[0].start();
    let mut api = [replica("api-1", "api", api_ports[0]), replica("api-2", "api", api_ports[1])];
    let mut workers = [replica("worker-1", "worker", worker_ports[0]), replica("worker-2", "worker", worker_ports[1])];
    let mut gateways =
        [replica("gateway-1", "gateway", gateway_ports[0]), replica("gateway-2", "gateway", gateway_ports[1])];
    for r in auth[1..].iter_mut().chain(api.iter_mut()).chain(workers.iter_mut()).chain(gateways.iter_mut()) {
        r.start();
    }
    for r in auth[1..].iter_mut().chain(api.iter_mut()).chain(workers.iter_mut()).chain(gateways.iter_mut()) {
        r.ready().await;
    }
    let _haproxy = start_haproxy(tmp.path(), lb, &gateway_ports).await;
    let db = turtlemen_db::Db::connect(&turtlemen_db::DbOptions {
        url: schema.url(),
        max_connections: 2,
        search_path: None,
        create_if_missing: false,
    })
    .await
    .expect("the test database");
    let names = ["ann", "bob", "cat", "dan", "eve"];
    for username in names {
        let form = turtlemen_auth::accounts::AccountForm {
            username,
            email: &format!("{username}@example.org"),
            display_name: None,
            password: PASSWORD,
            role: turtlemen_domain::Role::User,
            promote_if_first: false,
        };
        turtlemen_auth::accounts::create(&db, form).await.expect("an account");
    }
    eprintln!("scale-out: {} processes ready in {:.1} s", 9, started.elapsed().as_secs_f64());

    let retries = Arc::new(Mutex::new(Vec::new()));
    let [ann, bob, cat, dan, eve] = names.map(|n| Person::new(n, &public_url, &retries));
    for p in [&ann, &bob, &cat] {
        p.sign_in().await;
    }
    // A published video to talk about from the start (no media: the uploaded clip is the one
    // that is transcoded and played).
    let res = ann
        .send("create a video", |c| {
            c.post(ann.url("/api/v1/uploads"))
                .header("tus-resumable", "1.0.0")
                .header("upload-length", "1000")
                .header("upload-metadata", metadata(&[("filename", "a.mp4"), ("title", "Talk"), ("privacy", "public")]))
        })
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let talk = res.header("video-id");
    publish_in(&db, &talk).await;

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let written: Written = Arc::new(Mutex::new(Vec::new()));
    let people = vec![bob.clone(), cat.clone()];
    let traffic = background(people.clone(), talk.clone(), stop.clone(), rounds.clone(), written.clone());
    rounds_go_on(&rounds, 4, "before any kill").await;

    // 1. A gateway: HAProxy sends everyone to the other. 2. An auth replica: sign-in forms and
    // code exchanges go to the other. A new person signs in while each is down.
    let talking = (&people[..], talk.as_str(), &written, &*rounds);
    while_down(&mut gateways[0], &dan, talking).await;
    while_down(&mut auth[0], &eve, talking).await;

    // 3. An API replica: the clip's first half is sent, then the upload breaks off (a client
    // put to sleep); the replica that took the first half is killed, and the upload resumes on
    // the other one.
    let bytes = std::fs::read(&clip_file).expect("the clip");
    let res = ann
        .send("create the upload", |c| {
            c.post(ann.url("/api/v1/uploads"))
                .header("tus-resumable", "1.0.0")
                .header("upload-length", bytes.len().to_string())
                .header(
                    "upload-metadata",
                    metadata(&[("filename", "clip.mp4"), ("title", "Scaled out"), ("privacy", "public")]),
                )
        })
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&res.body));
    let (upload, video) = (ann.url(&res.header("location")), res.header("video-id"));
    let half = bytes.len() / 2;
    let first_part = format!("first-part-{}", uuid::Uuid::new_v4().simple());
    let patch = |c: &reqwest::Client, offset: usize, id: &str| {
        c.patch(&upload)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .header("x-request-id", id)
    };
    let res = ann.send("the first half", |c| patch(c, 0, &first_part).body(bytes[..half].to_vec())).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&res.body));
    let deadline = Instant::now() + Duration::from_secs(20);
    let took = loop {
        if let Some(i) = (0..2).find(|&i| api[i].served(&first_part)) {
            break i;
        }
        assert!(Instant::now() < deadline, "no API replica answered the first part");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let other = 1 - took;
    api[took].kill();
    burst(&people, &talk, "the API kill", &written).await;
    let tus_head = |c: &reqwest::Client| c.head(&upload).header("tus-resumable", "1.0.0");
    let offset: usize =
        ann.send("the upload's offset", tus_head).await.header("upload-offset").parse().expect("an offset");
    assert_eq!(offset, half, "the first half is kept");
    let second_part = format!("second-part-{}", uuid::Uuid::new_v4().simple());
    let res = ann.send("the second half", |c| patch(c, half, &second_part).body(bytes[half..].to_vec())).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.header("upload-offset"), bytes.len().to_string());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !api[other].served(&second_part) {
        assert!(Instant::now() < deadline, "the resumed part was not answered by the other API replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pool = pool(&schema).await;
    // 4. A worker: the transcode of the clip starts now, as the killed API replica comes back.
    // The worker running it is killed mid-transcode and started again on its own data dir,
    // where it finds its dead predecessor's lease and takes the job up at once.
    let api_back = async {
        rounds_go_on(&rounds, 4, "with an API replica down").await;
        api[took].start();
        api[took].ready().await;
    };
    let transcoding = async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let running: Option<(Option<uuid::Uuid>,)> = sqlx::query_as(
                "SELECT lease_owner FROM jobs WHERE kind = 'transcode' AND state = 'running' AND payload LIKE $1",
            )
            .bind(format!("%{video}%"))
            .fetch_optional(&pool)
            .await
            .expect("jobs");
            let v = ann.get("the video's progress", &format!("/api/v1/videos/{video}")).await.json();
            assert_eq!(v["state"], "processing", "the transcode ended before the worker kill: {v}");
            if let (Some((Some(owner),)), true) = (running, v["progress"].as_u64().unwrap_or(0) >= 1) {
                let holder = (0..2)
                    .find(|&i| {
                        std::fs::read_to_string(workers[i].data_dir.join("workers/slot-0"))
                            .is_ok_and(|id| id.trim() == owner.hyphenated().to_string())
                    })
                    .expect("the worker holding the lease");
                workers[holder].kill();
                break holder;
            }
            assert!(Instant::now() < deadline, "no worker started the transcode: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let ((), holder) = tokio::join!(api_back, transcoding);
    workers[holder].start();
    workers[holder].ready().await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let v = loop {
        let v = ann.watch(&video, true).await;
        if v["state"] != "processing" {
            break v;
        }
        assert!(Instant::now() < deadline, "the transcode never finished: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(v["state"], "ready", "{v}");
    stop.store(true, Ordering::SeqCst);
    for t in traffic {
        t.await.expect("a background journey failed");
    }
    // Everyone watches the clip through the load balancer, all replicas up again.
    for p in [&bob, &cat, &dan, &eve] {
        let v = p.watch(&video, true).await;
        assert_eq!(v["state"], "ready");
    }

    // Nothing written was lost: every comment answered 201 is there with its text, and a
    // comment is there twice only if its request was retried (its first answer lost).
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT id::text, body FROM comments WHERE video_id = $1::uuid AND status = 'visible'")
            .bind(&talk)
            .fetch_all(&pool)
            .await
            .expect("comments");
    let written = written.lock().expect("written").clone();
    let retried = retries.lock().expect("retries").clone();
    for (id, text) in &written {
        assert!(stored.iter().any(|(i, t)| i == id && t == text), "comment {id} {text:?} is kept");
        let copies = stored.iter().filter(|(_, t)| t == text).count();
        assert!(copies == 1 || retried.iter().any(|r| r.contains(&format!("{text:?}"))), "{text:?} {copies} times");
    }
    // The original is the clip, byte for byte; its staging is gone.
    let original = reqwest::get(format!("{s3}/media/videos/{video}/original")).await.expect("moto answers");
    assert_eq!(original.status(), StatusCode::OK);
    assert!(original.bytes().await.expect("the original") == bytes, "the original is the clip sent");
    let upload_id = upload.rsplit('/').next().expect("an upload id");
    assert!(list_keys(&s3, &format!("uploads/{upload_id}")).await.is_empty(), "the staged parts are gone");
    // Exactly once: one transcode job for the video, which succeeded on its second attempt
    // (the first died with its worker); each rendition once, its segments as its playlist lists.
    let jobs: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, attempts FROM jobs WHERE kind = 'transcode' AND payload LIKE $1")
            .bind(format!("%{video}%"))
            .fetch_all(&pool)
            .await
            .expect("jobs");
    assert_eq!(jobs, vec![("succeeded".to_string(), 2)], "one transcode, finished once");
    let renditions: Vec<String> = v["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!renditions.is_empty());
    let mut unique = renditions.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), renditions.len(), "each rendition once: {renditions:?}");
    let keys = list_keys(&s3, &format!("videos/{video}/hls/")).await;
    let hls_base = v["hls_url"].as_str().expect("an HLS URL").trim_end_matches("master.m3u8");
    for name in &renditions {
        let res = bob.get("a rendition's playlist", &format!("{hls_base}{name}/playlist.m3u8")).await;
        assert_eq!(res.status, StatusCode::OK);
        let playlist = String::from_utf8_lossy(&res.body);
        let listed = playlist.lines().filter(|l| l.ends_with(".m4s")).count();
        let stored = keys.iter().filter(|k| k.contains(&format!("/hls/{name}/")) && k.ends_with(".m4s")).count();
        assert!(listed > 0 && listed == stored, "{name}: {listed} listed, {stored} stored: {keys:?}");
        assert!(playlist.contains("#EXT-X-ENDLIST"));
    }
    eprintln!(
        "scale-out: {} comments kept, {} client retries ({:?}), {:.1} s in all",
        written.len(),
        retried.len(),
        retried,
        started.elapsed().as_secs_f64()
    );
}

async fn pool(schema: &PgSchema) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&schema.url()).await.expect("the test database")
}
