//! Steady load for the fault cases: a few people each doing the real journeys in a loop — sign
//! in, list the videos, watch one, comment, list the comments, now and then start an upload —
//! through the public HTTP entry, every request timed and its outcome kept; and [`Tally`], which sorts those
//! outcomes around a fault and prints the case's line.

use crate::cluster::Person;
use crate::uploads::metadata;
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A client gives up on a request after this long: past the server's request timeout (30 s), so
/// a request that reaches it hung.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(35);
/// The server's request timeout; no answer may take longer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The answer the journey expects.
    Ok,
    /// Another status.
    Status(u16),
    /// No answer: refused, cut off or timed out.
    Failed(String),
}

/// One request of a journey.
#[derive(Debug, Clone)]
pub struct Op {
    pub who: String,
    pub what: &'static str,
    pub started: Instant,
    pub took: Duration,
    pub outcome: Outcome,
}

impl Op {
    pub fn ended(&self) -> Instant {
        self.started + self.took
    }

    pub fn is_write(&self) -> bool {
        matches!(self.what, "comment" | "upload")
    }
}

/// What the load wrote and was told was written: comments (id, text) answered 201 and videos
/// whose upload was answered 201.
#[derive(Default)]
pub struct Committed {
    pub comments: Vec<(uuid::Uuid, String)>,
    pub videos: Vec<uuid::Uuid>,
}

/// People doing journeys until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ops: Arc<Mutex<Vec<Op>>>,
    committed: Arc<Mutex<Committed>>,
}

impl Load {
    /// Starts `people` (lenient [`Person`]s, with accounts) on `video` (public).
    pub fn start(people: Vec<Person>, video: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(Mutex::new(Vec::new()));
        let committed = Arc::new(Mutex::new(Committed::default()));
        let tasks = people
            .into_iter()
            .map(|p| {
                let journey = Journey {
                    p,
                    last_upload: Mutex::new(None),
                    video: video.to_string(),
                    ops: ops.clone(),
                    committed: committed.clone(),
                };
                let stop = stop.clone();
                tokio::spawn(async move { journey.run(&stop).await })
            })
            .collect();
        Load { stop, tasks, ops, committed }
    }

    /// The requests answered so far.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().expect("ops").clone()
    }

    /// Waits (bounded) until `n` more writes succeeded after now: the load goes on.
    pub async fn writes_go_on(&self, n: usize, while_: &str) -> Instant {
        let since = Instant::now();
        let deadline = since + Duration::from_secs(60);
        loop {
            let ops = self.ops();
            let mut ok = ops.iter().filter(|o| o.started >= since && o.is_write() && o.outcome == Outcome::Ok);
            if let Some(op) = ok.nth(n.saturating_sub(1)) {
                return op.ended();
            }
            assert!(Instant::now() < deadline, "the journeys made no progress {while_}: {:?}", ops.last());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until each of `people` has signed in successfully after `since`.
    pub async fn signed_in_again(&self, people: &[&str], since: Instant, while_: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ops = self.ops();
            let again = |who: &&str| {
                ops.iter()
                    .any(|o| o.who == *who && o.what == "sign in" && o.started >= since && o.outcome == Outcome::Ok)
            };
            if people.iter().all(again) {
                return;
            }
            assert!(Instant::now() < deadline, "not everyone signed in again {while_}: {:?}", ops.last());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the people and returns every request and what was committed.
    pub async fn stop(self) -> (Vec<Op>, Committed) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.expect("a journey panicked");
        }
        let ops = self.ops.lock().expect("ops").clone();
        let committed = std::mem::take(&mut *self.committed.lock().expect("committed"));
        (ops, committed)
    }
}

/// How often a person starts an upload.
const UPLOAD_EVERY: Duration = Duration::from_secs(4);

struct Journey {
    p: Person,
    last_upload: Mutex<Option<Instant>>,
    video: String,
    ops: Arc<Mutex<Vec<Op>>>,
    committed: Arc<Mutex<Committed>>,
}

impl Journey {
    async fn run(&self, stop: &AtomicBool) {
        let mut signed_in = false;
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            if !signed_in {
                let started = Instant::now();
                let outcome = match self.p.try_sign_in().await {
                    Ok(()) => Outcome::Ok,
                    Err(e) => Outcome::Failed(e.to_string()),
                };
                signed_in = outcome == Outcome::Ok;
                self.record("sign in", started, outcome);
            }
            if signed_in {
                signed_in = self.round(n).await;
            }
            // A person's pace between rounds (and after a failure, before trying again).
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One round; false when the person was asked to sign in again.
    async fn round(&self, n: usize) -> bool {
        let p = &self.p;
        let list = p.url("/api/v1/videos");
        if self.step("list", StatusCode::OK, |c| c.get(&list)).await.is_none() {
            return true;
        }
        let watch = p.url(&format!("/api/v1/videos/{}", self.video));
        if self.step("watch", StatusCode::OK, |c| c.get(&watch)).await.is_none() {
            return true;
        }
        let comments = p.url(&format!("/api/v1/videos/{}/comments", self.video));
        let text = format!("{} says {n} at {}", p.name, uuid::Uuid::new_v4().simple());
        let body = serde_json::json!({ "text": text });
        match self.step("comment", StatusCode::CREATED, |c| c.post(&comments).json(&body)).await {
            Some(res) => {
                let id = res.json()["id"].as_str().and_then(|id| id.parse().ok()).expect("the comment's id");
                self.committed.lock().expect("committed").comments.push((id, text));
            }
            None => return !self.asked_to_sign_in(),
        }
        if self.step("comments", StatusCode::OK, |c| c.get(&comments)).await.is_none() {
            return true;
        }
        // Starting an upload is limited (30 an hour per address and per session): one every
        // few seconds.
        {
            let mut last = self.last_upload.lock().expect("last upload");
            if last.is_some_and(|at| at.elapsed() < UPLOAD_EVERY) {
                return true;
            }
            *last = Some(Instant::now());
        }
        let uploads = p.url("/api/v1/uploads");
        let upload = |c: &reqwest::Client| {
            c.post(&uploads)
                .header("tus-resumable", "1.0.0")
                .header("upload-length", "1000")
                .header("upload-metadata", metadata(&[("filename", "a.mp4"), ("title", "Round")]))
        };
        match self.step("upload", StatusCode::CREATED, upload).await {
            Some(res) => {
                let id = res.header("video-id").parse().expect("the video's id");
                self.committed.lock().expect("committed").videos.push(id);
                true
            }
            None => !self.asked_to_sign_in(),
        }
    }

    /// Whether this person's last request was answered 401 (the session is gone).
    fn asked_to_sign_in(&self) -> bool {
        let ops = self.ops.lock().expect("ops");
        ops.iter().rev().find(|o| o.who == self.p.name).is_some_and(|o| o.outcome == Outcome::Status(401))
    }

    /// Sends one request; the answer when it is `expected`.
    async fn step(
        &self,
        what: &'static str,
        expected: StatusCode,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Option<crate::cluster::Answer> {
        let started = Instant::now();
        let res = self.p.try_send(|c| make(c).header("accept", "application/json")).await;
        let (outcome, answer) = match res {
            Ok(a) if a.status == expected => (Outcome::Ok, Some(a)),
            Ok(a) => (Outcome::Status(a.status.as_u16()), None),
            Err(e) => (Outcome::Failed(e.to_string()), None),
        };
        self.record(what, started, outcome);
        answer
    }

    fn record(&self, what: &'static str, started: Instant, outcome: Outcome) {
        let op = Op { who: self.p.name.clone(), what, started, took: started.elapsed(), outcome };
        self.ops.lock().expect("ops").push(op);
    }
}

/// The outcomes of one case around its fault: `fault` (when it began), `back` (when the service
/// was back) and `recovered` (when the program answered normally again: `/readyz` 200 or the
/// first successful write).
pub struct Tally<'a> {
    pub case: &'a str,
    pub ops: &'a [Op],
    pub fault: Instant,
    pub back: Instant,
    pub recovered: Instant,
}

impl Tally<'_> {
    /// Requests that ended after the fault began and started before recovery.
    pub fn during(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(|o| o.ended() >= self.fault && o.started < self.recovered)
    }

    /// Requests started once the program had recovered.
    pub fn after(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(|o| o.started >= self.recovered)
    }

    /// The first write started after the service came back that succeeded: how long after.
    pub fn first_write(&self) -> Option<Duration> {
        self.ops
            .iter()
            .filter(|o| o.is_write() && o.outcome == Outcome::Ok && o.started >= self.back)
            .map(|o| o.ended() - self.back)
            .min()
    }

    /// Requests that took longer than the server's request timeout.
    pub fn hangs(&self) -> Vec<&Op> {
        self.ops.iter().filter(|o| o.took > REQUEST_TIMEOUT + Duration::from_secs(2)).collect()
    }

    /// Answers 5xx other than 503 (unavailable) and 507 (no room) anywhere in the run.
    pub fn server_errors(&self) -> Vec<&Op> {
        self.ops
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Status(s) if s >= 500 && s != 503 && s != 507))
            .collect()
    }

    /// Prints the case's line (stderr, seen with `--nocapture`).
    pub fn print(&self, lost: usize, note: &str) {
        let failed: Vec<&Op> = self.ops.iter().filter(|o| o.outcome != Outcome::Ok).collect();
        let count = |pred: &dyn Fn(&Outcome) -> bool| failed.iter().filter(|o| pred(&o.outcome)).count();
        let slowest_failure = failed.iter().map(|o| o.took).max().unwrap_or_default();
        eprintln!(
            "fault | {:<34} | back→recovered {:>6} ms | back→first write {:>6} ms | ops {:>4} | failed {:>3} \
             (503 {:>3}, 401 {:>3}, 507 {:>3}, other {:>3}, no answer {:>3}) | slowest failure {:>5} ms | lost {lost} \
             | hangs {} | {note}",
            self.case,
            (self.recovered.saturating_duration_since(self.back)).as_millis(),
            self.first_write().map_or("-".into(), |d| d.as_millis().to_string()),
            self.ops.len(),
            failed.len(),
            count(&|o: &Outcome| *o == Outcome::Status(503)),
            count(&|o: &Outcome| *o == Outcome::Status(401)),
            count(&|o: &Outcome| *o == Outcome::Status(507)),
            count(&|o: &Outcome| matches!(o, Outcome::Status(s) if ![401, 503, 507].contains(s))),
            count(&|o: &Outcome| matches!(o, Outcome::Failed(_))),
            slowest_failure.as_millis(),
            self.hangs().len(),
        );
    }

    /// The common assertions: no hang, no 5xx but 503 and 507, every request after recovery answered as
    /// the journey expects (save `allowed_after`, e.g. 401 once for a person whose session is
    /// gone).
    pub fn check(&self, allowed_after: &[Outcome]) {
        assert!(self.hangs().is_empty(), "{}: requests hung: {:?}", self.case, self.hangs());
        assert!(
            self.server_errors().is_empty(),
            "{}: 5xx other than 503 and 507: {:?}",
            self.case,
            self.server_errors()
        );
        let bad: Vec<&Op> =
            self.after().filter(|o| o.outcome != Outcome::Ok && !allowed_after.contains(&o.outcome)).collect();
        assert!(bad.is_empty(), "{}: requests failed after recovery: {bad:?}", self.case);
    }
}

/// Polls `/readyz` every 50 ms until dropped, keeping each answer's status with its time.
pub struct ReadyWatch {
    seen: Arc<Mutex<Vec<(Instant, u16)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    pub fn start(base: &str) -> ReadyWatch {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (url, log) = (format!("{base}/readyz"), seen.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build().expect("client");
            loop {
                let at = Instant::now();
                let status = http.get(&url).send().await.map_or(0, |r| r.status().as_u16());
                log.lock().expect("readyz").push((at, status));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        ReadyWatch { seen, task }
    }

    /// Whether `/readyz` answered 503 at some time after `since`.
    pub fn went_unready_after(&self, since: Instant) -> bool {
        self.seen.lock().expect("readyz").iter().any(|(at, s)| *at >= since && *s == 503)
    }

    /// Waits (bounded) for the first 200 asked after `since`; when it was asked.
    pub async fn ready_after(&self, since: Instant, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        loop {
            if let Some((at, _)) = self.seen.lock().expect("readyz").iter().find(|(at, s)| *at >= since && *s == 200) {
                return *at;
            }
            assert!(Instant::now() < deadline, "/readyz did not turn 200 again");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The slowest `/readyz` answer (a probe must answer within its own timeout).
    pub fn slowest(&self) -> Duration {
        let seen = self.seen.lock().expect("readyz");
        seen.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or_default()
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
