//! The fault suite: the program under steady load of the real journeys (sign in, list, watch,
//! comment, upload) while one of the services it depends on fails, then comes back —
//! PostgreSQL restarted, Redis restarted or flushed, S3 unreachable, the disk full. Each case
//! measures how long the program took to recover and counts the failed and lost user
//! operations, prints one `fault |` line on stderr (`cargo test --test it faults -- --nocapture`,
//! or `benches/faults.sh`), and asserts that no committed write is lost, no request hangs past
//! the request timeout and nothing answers 5xx but 503 (a service away) and 507 (a disk full).
//!
//! The cases that stop a server start their own ([`services`]): a PostgreSQL cluster, a
//! `redis-server` and a relay in front of moto's S3, on free ports; the shared PostgreSQL and
//! Redis of the other tests are never touched. The program runs as `turtlemen serve`, the built
//! binary, in a process of its own; the disk cases (SQLite and local storage: the embedded
//! deployment) run it in the test's process over a small tmpfs. `kill -9` of each role is
//! scale_out.rs's case.

mod disk;
mod load;
mod postgres;
mod redis;
mod s3;
mod services;

use crate::cluster::{Person, Replica, free_port};
use load::{CLIENT_TIMEOUT, Committed};
use std::time::Duration;

/// The people of the load, each with an account.
const PEOPLE: [&str; 3] = ["ann", "bob", "cat"];

/// `turtlemen serve` as a process of its own on a free port, with its own data dir.
pub struct Serve {
    /// Killed when dropped.
    _process: Replica,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// Starts it with `env` (the database, session store and storage) and waits until ready.
    pub async fn start(env: &[(&str, String)]) -> Serve {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut all: Vec<(String, String)> = [
            ("TURTLEMEN_LISTEN", format!("127.0.0.1:{port}")),
            ("TURTLEMEN_RTMP_LISTEN", "127.0.0.1:0".into()),
            ("TURTLEMEN_PUBLIC_URL", base.clone()),
            ("TURTLEMEN_FIRST_USER_ADMIN", "false".into()),
            // The people comment several times a minute; the limit has its own tests.
            ("TURTLEMEN_COMMENTS_PER_MINUTE", "0".into()),
            ("TURTLEMEN_LOG_LEVEL", "warn".into()),
            // Each person comes from an address of their own (see [`people`]).
            ("TURTLEMEN_TRUSTED_PROXIES", "127.0.0.1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut replica = Replica {
            name: "serve".into(),
            program: None,
            args: vec!["serve".into()],
            env: all,
            port,
            data_dir: dir.path().join("data"),
            log: dir.path().join("serve.log"),
            child: None,
        };
        replica.start();
        replica.ready().await;
        Serve { _process: replica, base, _dir: dir }
    }

    /// Creates the people's accounts and a published video to talk about; the people (lenient
    /// clients) and the video's id.
    pub async fn people(&self, db: &turtlemen_db::Db) -> (Vec<Person>, String) {
        people_and_talk(db, &self.base).await
    }
}

/// Creates the people's accounts on `db` and a published video to talk about, through the
/// program at `base`; the people (lenient clients) and the video's id.
pub async fn people_and_talk(db: &turtlemen_db::Db, base: &str) -> (Vec<Person>, String) {
    for name in PEOPLE {
        crate::helpers::create_account(db, name, turtlemen_domain::Role::User).await;
    }
    let people = people(base);
    let ann = &people[0];
    ann.try_sign_in().await.expect("ann signs in");
    let talk = Upload::create(ann, 1000, "Talk").await.video;
    crate::channels::publish_in(db, &talk).await;
    (people, talk)
}

/// The people as lenient clients of `base`, each from an address of their own (the program
/// must trust 127.0.0.1 as a proxy).
pub fn people(base: &str) -> Vec<Person> {
    PEOPLE
        .iter()
        .enumerate()
        .map(|(i, n)| Person::lenient(n, base, CLIENT_TIMEOUT).with_address(&format!("10.0.0.{}", i + 1)))
        .collect()
}

/// Opens the program's database from the test (a small pool of its own).
pub async fn open_db(url: &str) -> turtlemen_db::Db {
    turtlemen_db::Db::connect(&turtlemen_db::DbOptions {
        url: url.to_string(),
        max_connections: 2,
        search_path: None,
        create_if_missing: false,
    })
    .await
    .expect("the program's database")
}

/// How many committed writes are missing from `db`: comments answered 201 not there with their
/// text, videos whose upload was answered 201 not there.
pub async fn lost(db: &turtlemen_db::Db, committed: &Committed) -> usize {
    let mut lost = 0;
    for (id, text) in &committed.comments {
        let kept = turtlemen_db::comments::get(db, *id).await.expect("read a comment");
        if kept.is_none_or(|c| c.body != *text) {
            eprintln!("lost: comment {id} {text:?}");
            lost += 1;
        }
    }
    for id in &committed.videos {
        if turtlemen_db::videos::get(db, *id).await.expect("read a video").is_none() {
            eprintln!("lost: video {id}");
            lost += 1;
        }
    }
    lost
}

/// How long the fault lasts in each case that takes a service away.
pub const OUTAGE: Duration = Duration::from_secs(5);

/// A tus upload by `who`: its address and its video's id.
pub struct Upload<'a> {
    who: &'a Person,
    pub url: String,
    pub video: String,
}

impl<'a> Upload<'a> {
    /// Creates an upload of `length` bytes (public, titled `title`).
    pub async fn create(who: &'a Person, length: usize, title: &str) -> Upload<'a> {
        let res = who
            .try_send(|c| {
                c.post(who.url("/api/v1/uploads"))
                    .header("tus-resumable", "1.0.0")
                    .header("upload-length", length.to_string())
                    .header(
                        "upload-metadata",
                        crate::uploads::metadata(&[("filename", "clip.mp4"), ("title", title), ("privacy", "public")]),
                    )
            })
            .await
            .expect("the upload is created");
        assert_eq!(res.status, reqwest::StatusCode::CREATED, "{}", String::from_utf8_lossy(&res.body));
        Upload { who, url: who.url(&res.header("location")), video: res.header("video-id") }
    }

    /// Sends `bytes` at `offset`.
    pub async fn patch(
        &self,
        offset: usize,
        bytes: &[u8],
    ) -> Result<crate::cluster::Answer, crate::cluster::Unanswered> {
        self.who
            .try_send(|c| {
                c.patch(&self.url)
                    .header("tus-resumable", "1.0.0")
                    .header("upload-offset", offset.to_string())
                    .header("content-type", "application/offset+octet-stream")
                    .body(bytes.to_vec())
            })
            .await
    }

    /// The committed offset.
    pub async fn offset(&self) -> usize {
        let res = self.who.try_send(|c| c.head(&self.url).header("tus-resumable", "1.0.0")).await.expect("HEAD");
        assert_eq!(res.status, reqwest::StatusCode::OK, "the upload's offset");
        res.header("upload-offset").parse().expect("an offset")
    }

    /// Waits (bounded by `within`) until the video is ready or failed; its JSON.
    pub async fn settled(&self, within: Duration) -> serde_json::Value {
        let url = self.who.url(&format!("/api/v1/videos/{}", self.video));
        crate::videos::until_settled(within, async || {
            let res = self.who.try_send(|c| c.get(&url)).await.ok()?;
            (res.status == reqwest::StatusCode::OK).then(|| res.json())
        })
        .await
    }
}
