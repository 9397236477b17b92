//! Live video end to end on both stacks, with ffmpeg as the RTMP publisher (an encoder nobody
//! here wrote): a live is made with a stream key shown once; ffmpeg publishes and the live turns
//! `live` with a Low-Latency HLS playlist whose parts decode and whose blocking reload answers
//! when the next part exists (and refuses a request far ahead at once); a wrong key and a second
//! publisher are refused; garbage on another connection leaves the stream alone; an encoder
//! that drops and comes back within the grace period continues the same live; past the grace
//! the live ends and its recording becomes an ordinary video that turns ready. A second API
//! server, which does not package the live, serves its playlists (blocking reloads included)
//! and parts from the server that does, and both show the viewers the packager counted. A
//! publish beyond the limits of lives on air (per user, per instance) is refused, the owner told
//! why; a live left on air by a crashed packaging process is ended by the janitor. Who may see and change a live: owner, another user, a visitor, an admin.

use crate::channels::{call, csrf, page, post_form};
use crate::gateway::Browser;
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::uploads::{signed_in, signed_in_as};
use reqwest::Method;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use turtlemen_domain::Role;

/// Runs a test body on both stacks with a short grace period and read timeout; written
/// `settings(s) { … };` first, the block changes the settings `s` of those tests further.
macro_rules! on_both_stacks_live {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        on_both_stacks_live! { settings(_settings) {}; $(async fn $name($app) $body)* }
    };
    (settings($s:ident) $tweak:block; $(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($app: TestApp) $body

            async fn start(stack: Stack) -> Option<TestApp> {
                let (mut $s, dir, schema) = fresh_settings(stack).await?;
                $s.live_grace_secs = Some(3);
                $s.live_read_timeout_secs = Some(3);
                $tweak
                Some(TestApp::spawn_with($s, dir, schema).await)
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                body(start(Stack::Embedded).await.expect("embedded stack")).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn external() {
                if let Some(app) = start(Stack::External).await {
                    body(app).await
                }
            }
        }
    )*};
}

/// An API server alone (no ingest) beside `app`, on its database, storage and secrets.
struct ApiAlone {
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiAlone {
    async fn start(app: &TestApp) -> ApiAlone {
        let settings = turtlemen_config::Settings {
            listen: Some("127.0.0.1:0".into()),
            rtmp_listen: Some("off".into()),
            public_url: Some(app.url("/")),
            upstream_auth: Some(app.url("")),
            ..app.settings.clone()
        };
        let config = turtlemen_config::Config::resolve(settings).unwrap();
        let internals = turtlemen::app::Internals {
            session_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
            session_cache_ttl: Duration::ZERO,
            ..turtlemen::app::Internals::default()
        };
        let server = turtlemen::app::prepare(turtlemen::app::Role::Api, &config, &internals).await.unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        ApiAlone { addr, client: reqwest::Client::new(), stop, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let res = self.client.get(self.url(path)).send().await.unwrap();
        (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
    }

    async fn get_text(&self, path: &str) -> (u16, String) {
        let (status, bytes) = self.get_bytes(path).await;
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Makes a live as `who`; returns the answer (id, stream_key, rtmp_url…).
async fn new_live(app: &TestApp, who: &Browser, privacy: &str) -> Value {
    let (status, made) =
        call(app, Some(who), Method::POST, "/api/v1/lives", Some(json!({"title": "Turtles live", "privacy": privacy})))
            .await;
    assert_eq!(status, 201, "{made}");
    made
}

/// ffmpeg publishing a test picture and tone for `seconds` to `rtmp_url/key`.
fn publish(rtmp_url: &str, key: &str, seconds: u32) -> tokio::process::Child {
    tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size=640x360:rate=30:duration={seconds}")])
        .args(["-f", "lavfi", "-i", &format!("sine=duration={seconds}")])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-tune", "zerolatency", "-c:a", "aac"])
        .args(["-f", "flv", &format!("{rtmp_url}/{key}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg")
}

/// Polls the live (as `who`) until `pred` holds, at most `secs`.
async fn wait_live(app: &TestApp, who: Option<&Browser>, id: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, v) = call(app, who, Method::GET, &format!("/api/v1/lives/{id}"), None).await;
        assert_eq!(status, 200, "{v}");
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out; the live is {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get_bytes(app: &TestApp, path: &str) -> (u16, Vec<u8>) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
}

async fn get_text(app: &TestApp, path: &str) -> (u16, String) {
    let (status, bytes) = get_bytes(app, path).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The last part named by an LL-HLS playlist: (msn, part).
fn last_part(playlist: &str) -> (u64, u64) {
    let uri = playlist.lines().rev().find_map(|l| l.strip_prefix("#EXT-X-PART:")).expect("a part");
    let name = uri.split("URI=\"part-").nth(1).unwrap().split(".m4s").next().unwrap();
    let (msn, part) = name.split_once('.').unwrap();
    (msn.parse().unwrap(), part.parse().unwrap())
}

/// What ffprobe decodes from `bytes`: "codec,frames" lines.
async fn probe(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("media.mp4");
    std::fs::write(&file, bytes).unwrap();
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

on_both_stacks_live! {
    async fn ffmpeg_goes_live_with_low_latency_hls_and_the_replay_becomes_a_video(app) {
        let ann = signed_in(&app, "ann").await;
        let made = new_live(&app, &ann, "public").await;
        let id = made["id"].as_str().unwrap().to_owned();
        let key = made["stream_key"].as_str().unwrap();
        let rtmp = made["rtmp_url"].as_str().unwrap();
        assert!(rtmp.starts_with("rtmp://127.0.0.1:") && rtmp.ends_with("/live"), "{rtmp}");
        assert_eq!(made["watch_url"], format!("/lives/{id}"));
        assert_eq!(made["live"]["state"], "waiting");
        // The key is never shown again, nor stored in clear.
        let (_, again) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{id}"), None).await;
        assert!(!again.to_string().contains(key));

        // A wrong key is refused during the publish handshake: ffmpeg fails, nothing goes live.
        let mut wrong = publish(rtmp, "not-the-key", 3);
        assert!(!tokio::time::timeout(Duration::from_secs(20), wrong.wait()).await.unwrap().unwrap().success());
        let (_, v) = call(&app, None, Method::GET, &format!("/api/v1/lives/{id}"), None).await;
        assert_eq!(v["state"], "waiting");

        let mut encoder = publish(rtmp, key, 12);
        let v = wait_live(&app, None, &id, 30, |v| v["state"] == "live" && v["hls_url"].is_string()).await;
        let hls = v["hls_url"].as_str().unwrap().to_owned();
        let base = hls.split("live.m3u8").next().unwrap().to_owned();
        // The first parts of the second segment: blocking reload waits for them.
        let started = Instant::now();
        let (status, playlist) = get_text(&app, &format!("{hls}&_HLS_msn=1&_HLS_part=0")).await;
        assert_eq!(status, 200, "{playlist}");
        assert!(started.elapsed() < Duration::from_secs(13));
        assert!(playlist.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK="), "{playlist}");
        assert!(playlist.contains("#EXT-X-PART-INF:PART-TARGET="), "{playlist}");
        assert!(playlist.contains("URI=\"part-1.0.m4s\",INDEPENDENT=YES"), "{playlist}");
        assert!(playlist.contains("#EXT-X-PRELOAD-HINT:TYPE=PART"), "{playlist}");
        // The next part: asked for before it exists, answered once it does.
        let (msn, part) = last_part(&playlist);
        let (status, next) = get_text(&app, &format!("{hls}&_HLS_msn={msn}&_HLS_part={}", part + 1)).await;
        assert_eq!(status, 200);
        let (nmsn, npart) = last_part(&next);
        assert!((nmsn, npart) > (msn, part), "{next}");
        // Far in the future: 400 at once, not a hang.
        let started = Instant::now();
        let (status, body) = get_text(&app, &format!("{hls}&_HLS_msn={}", msn + 50)).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("hls_msn_too_far") || body.contains("400"), "{body}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(get_text(&app, &format!("{hls}&_HLS_part=1")).await.0, 400);
        // The parts and the first whole segment decode.
        let (status, init) = get_bytes(&app, &format!("{base}init-0.mp4")).await;
        assert_eq!(status, 200);
        let (status, part_bytes) = get_bytes(&app, &format!("{base}part-1.0.m4s")).await;
        assert_eq!(status, 200);
        let probed = probe(&[init.clone(), part_bytes].concat()).await;
        assert!(probed.contains("h264,") && probed.contains("aac,"), "{probed}");
        let (status, seg) = get_bytes(&app, &format!("{base}seg-0.m4s")).await;
        assert_eq!(status, 200);
        assert!(probe(&[init, seg].concat()).await.contains("h264,"));
        let (status, plain) = get_text(&app, &format!("{base}index.m3u8")).await;
        assert_eq!(status, 200);
        assert!(plain.contains("seg-0.m4s") && !plain.contains("EXT-X-PART"), "{plain}");
        // A forged signature names nothing.
        let forged = hls.replacen("/media/live/", "/media/live/1-", 1);
        assert_eq!(get_text(&app, &forged).await.0, 404);

        // A second publisher on the same key is refused while the first publishes.
        let mut second = publish(rtmp, key, 3);
        assert!(!tokio::time::timeout(Duration::from_secs(20), second.wait()).await.unwrap().unwrap().success());
        assert_eq!(wait_live(&app, Some(&ann), &id, 5, |_| true).await["connected"], true);

        // The encoder stops; after the grace period the live ends and the replay is a video.
        encoder.wait().await.unwrap();
        let v = wait_live(&app, Some(&ann), &id, 40, |v| v["state"] == "ended" && v["replay_video_id"].is_string()).await;
        assert!(v["hls_url"].is_null());
        assert!(v["last_reason"].as_str().unwrap().contains("did not come back"), "{v}");
        let video = v["replay_video_id"].as_str().unwrap();
        let replay = crate::videos::wait_until_processed(&app, &ann, video, 120).await;
        assert_eq!(replay["state"], "ready", "{replay}");
        assert_eq!(replay["title"], "Turtles live");
        assert!(replay["duration_secs"].as_f64().unwrap() > 8.0, "{replay}");
    }

    async fn a_second_api_server_serves_a_live_packaged_by_the_first(app) {
        let ann = signed_in(&app, "ann").await;
        let made = new_live(&app, &ann, "public").await;
        let id = made["id"].as_str().unwrap().to_owned();
        let (key, rtmp) = (made["stream_key"].as_str().unwrap(), made["rtmp_url"].as_str().unwrap());
        // A second API server on the same database, storage and secrets, with no ingest.
        let other = ApiAlone::start(&app).await;
        let mut encoder = publish(rtmp, key, 15);
        let v = wait_live(&app, None, &id, 30, |v| v["state"] == "live" && v["hls_url"].is_string()).await;
        let hls = v["hls_url"].as_str().unwrap().to_owned();
        let base = hls.split("live.m3u8").next().unwrap().to_owned();

        // The playlist, through the server that does not package the live.
        let (status, playlist) = other.get_text(&format!("{hls}&_HLS_msn=1&_HLS_part=0")).await;
        assert_eq!(status, 200, "{playlist}");
        assert!(playlist.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"), "{playlist}");
        assert!(playlist.contains("URI=\"part-1.0.m4s\",INDEPENDENT=YES"), "{playlist}");
        // A blocking reload for a part that does not exist yet is held there and answered once
        // it does.
        let (msn, part) = last_part(&playlist);
        let (status, next) = other.get_text(&format!("{hls}&_HLS_msn={msn}&_HLS_part={}", part + 1)).await;
        assert_eq!(status, 200, "{next}");
        assert!(last_part(&next) > (msn, part), "{next}");
        // Parts and the init are the packager's bytes.
        let (status, relayed) = other.get_bytes(&format!("{base}part-1.0.m4s")).await;
        assert_eq!(status, 200);
        assert_eq!(relayed, get_bytes(&app, &format!("{base}part-1.0.m4s")).await.1);
        let (status, init) = other.get_bytes(&format!("{base}init-0.mp4")).await;
        assert_eq!(status, 200);
        assert!(probe(&[init, relayed].concat()).await.contains("h264,"));
        // The packager's refusals come through as they are: far ahead is 400 at once.
        let started = Instant::now();
        let (status, body) = other.get_text(&format!("{hls}&_HLS_msn={}", msn + 50)).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("hls_msn_too_far") || body.contains("400"), "{body}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // A forged signature names nothing here either; a request already relayed is not
        // relayed again (no loops).
        assert_eq!(other.get_text(&hls.replacen("/media/live/", "/media/live/1-", 1)).await.0, 404);
        let res = other.client.get(other.url(&hls)).header("x-turtlemen-live-relayed", "1").send().await.unwrap();
        assert_eq!(res.status().as_u16(), 404);

        // Each answer hands out a playlist URL of its own: a second player. The players the
        // packager counted show in the live on both servers.
        let second = wait_live(&app, None, &id, 5, |_| true).await["hls_url"].as_str().unwrap().to_owned();
        assert_ne!(second, hls);
        let (_, seen) = other.get_text(&second).await;
        assert!(seen.contains("#EXTM3U"), "{seen}");
        let v = wait_live(&app, None, &id, 10, |v| v["viewers"].as_u64() >= Some(2)).await;
        assert_eq!(v["viewers"], 2, "{v}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, v) = other.get_text(&format!("/api/v1/lives/{id}")).await;
            assert_eq!(status, 200, "{v}");
            let v: Value = serde_json::from_str(&v).unwrap();
            if v["viewers"].as_u64() >= Some(2) {
                break;
            }
            assert!(Instant::now() < deadline, "the count never reached the other server: {v}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        encoder.kill().await.unwrap();
        other.stop().await;
    }

    async fn an_encoder_that_reconnects_within_the_grace_continues_the_same_live(app) {
        let ann = signed_in(&app, "ann").await;
        let made = new_live(&app, &ann, "unlisted").await;
        let id = made["id"].as_str().unwrap().to_owned();
        let (key, rtmp) = (made["stream_key"].as_str().unwrap(), made["rtmp_url"].as_str().unwrap());
        let mut first = publish(rtmp, key, 4);
        wait_live(&app, None, &id, 30, |v| v["state"] == "live").await;
        first.wait().await.unwrap();
        let v = wait_live(&app, Some(&ann), &id, 10, |v| v["connected"] == false).await;
        assert_eq!(v["state"], "live", "still live within the grace period: {v}");
        assert!(v["last_reason"].as_str().unwrap().contains("stopped"), "{v}");
        let mut second = publish(rtmp, key, 4);
        let v = wait_live(&app, Some(&ann), &id, 20, |v| v["connected"] == true).await;
        let hls = v["hls_url"].as_str().unwrap().to_owned();
        // The second connection is a new run of the same playlist.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, playlist) = get_text(&app, &hls).await;
            if playlist.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"") {
                break;
            }
            assert!(Instant::now() < deadline, "no second run: {playlist}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        second.wait().await.unwrap();
        // Dropped past the grace period: ended.
        let v = wait_live(&app, Some(&ann), &id, 30, |v| v["state"] == "ended").await;
        assert!(v["last_reason"].as_str().unwrap().contains("did not come back"), "{v}");
        // An ended live's key publishes nothing.
        let mut late = publish(rtmp, key, 2);
        assert!(!tokio::time::timeout(Duration::from_secs(20), late.wait()).await.unwrap().unwrap().success());
    }

    async fn garbage_on_one_connection_leaves_another_stream_alone(app) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ann = signed_in(&app, "ann").await;
        let made = new_live(&app, &ann, "public").await;
        let id = made["id"].as_str().unwrap().to_owned();
        let (key, rtmp) = (made["stream_key"].as_str().unwrap(), made["rtmp_url"].as_str().unwrap());
        let mut encoder = publish(rtmp, key, 8);
        let v = wait_live(&app, None, &id, 30, |v| v["state"] == "live").await;
        let hls = v["hls_url"].as_str().unwrap().to_owned();
        let (_, before) = get_text(&app, &format!("{hls}&_HLS_msn=0&_HLS_part=1")).await;
        let port: u16 = rtmp.trim_start_matches("rtmp://127.0.0.1:").trim_end_matches("/live").parse().unwrap();
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut c0c1 = vec![3u8];
        c0c1.extend(std::iter::repeat_n(9u8, 1536));
        socket.write_all(&c0c1).await.unwrap();
        let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
        socket.read_exact(&mut s0s1s2).await.unwrap();
        socket.write_all(&s0s1s2[1..1537]).await.unwrap();
        socket.write_all(&[0xc7; 8192]).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(15), socket.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the garbage connection is closed");
        // The real stream goes on.
        let (msn, part) = last_part(&before);
        let (status, after) = get_text(&app, &format!("{hls}&_HLS_msn={}&_HLS_part=0", msn + 1)).await;
        assert_eq!(status, 200);
        assert!(last_part(&after) > (msn, part), "{after}");
        let (_, v) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{id}"), None).await;
        assert_eq!(v["connected"], true);
        encoder.kill().await.unwrap();
    }

    async fn a_live_left_on_air_by_a_crashed_packager_is_ended_by_the_janitor(app) {
        let ann = signed_in(&app, "ann").await;
        let made = new_live(&app, &ann, "public").await;
        let id = uuid::Uuid::parse_str(made["id"].as_str().unwrap()).unwrap();
        let held = new_live(&app, &ann, "public").await;
        let held_id = uuid::Uuid::parse_str(held["id"].as_str().unwrap()).unwrap();
        // As a process that claimed the lives would have left them: on air, an encoder
        // connected elsewhere; one process last said it held the first an hour ago, the second
        // just now.
        let (hour_ago, now) = (chrono::Utc::now() - chrono::TimeDelta::hours(1), chrono::Utc::now());
        turtlemen_db::with_pool!(&app.db, |pool| {
            for (live, seen) in [(id, hour_ago), (held_id, now)] {
                sqlx::query("UPDATE lives SET state = 'live', connected = true, packager_url = 'http://10.9.9.9:1/', started_at = $2, seen_at = $2 WHERE id = $1")
                    .bind(live).bind(seen).execute(pool).await.unwrap();
            }
        });
        let v = wait_live(&app, Some(&ann), &id.to_string(), 10, |v| v["state"] == "ended").await;
        assert!(v["last_reason"].as_str().unwrap().contains("packaging this live stopped"), "{v}");
        let (_, v) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{held_id}"), None).await;
        assert_eq!(v["state"], "live", "{v}");
    }

    async fn who_may_see_and_change_a_live(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let boss = signed_in_as(&app, "boss", Role::Admin).await;
        let private = new_live(&app, &ann, "private").await;
        let public = new_live(&app, &ann, "public").await;
        let (pid, uid) = (private["id"].as_str().unwrap(), public["id"].as_str().unwrap());
        let path = |id: &str, rest: &str| format!("/api/v1/lives/{id}{rest}");
        // Seeing: a private live exists only for its owner.
        assert_eq!(call(&app, Some(&ann), Method::GET, &path(pid, ""), None).await.0, 200);
        assert_eq!(call(&app, Some(&bob), Method::GET, &path(pid, ""), None).await.0, 404);
        assert_eq!(call(&app, None, Method::GET, &path(pid, ""), None).await.0, 404);
        let (status, seen) = call(&app, None, Method::GET, &path(uid, ""), None).await;
        assert_eq!(status, 200);
        for owner_only in ["rtmp_url", "connected", "last_reason", "replays"] {
            assert!(seen.get(owner_only).is_none(), "{owner_only} shown to a visitor: {seen}");
        }
        assert_eq!(call(&app, None, Method::GET, &path("not-a-uuid", ""), None).await.0, 404);
        // Changing: the owner, or an admin; another user is refused, a visitor must sign in.
        assert_eq!(call(&app, Some(&bob), Method::POST, &path(uid, "/key"), None).await.0, 403);
        assert_eq!(call(&app, Some(&bob), Method::POST, &path(pid, "/key"), None).await.0, 404);
        assert_eq!(call(&app, None, Method::POST, &path(uid, "/key"), None).await.0, 401);
        assert_eq!(call(&app, Some(&bob), Method::POST, &path(uid, "/end"), None).await.0, 403);
        let (status, fresh) = call(&app, Some(&ann), Method::POST, &path(uid, "/key"), None).await;
        assert_eq!(status, 200);
        assert_ne!(fresh["stream_key"], public["stream_key"]);
        // The old key no longer publishes.
        let mut old = publish(public["rtmp_url"].as_str().unwrap(), public["stream_key"].as_str().unwrap(), 2);
        assert!(!tokio::time::timeout(Duration::from_secs(20), old.wait()).await.unwrap().unwrap().success());
        let (status, ended) = call(&app, Some(&boss), Method::POST, &path(pid, "/end"), None).await;
        assert_eq!(status, 200, "{ended}");
        assert_eq!(ended["state"], "ended");
        assert_eq!(call(&app, Some(&ann), Method::POST, &path(pid, "/key"), None).await.0, 409);
        // My lives: newest first, mine only.
        let (status, mine) = call(&app, Some(&ann), Method::GET, "/api/v1/me/lives", None).await;
        assert_eq!(status, 200);
        let ids: Vec<&str> = mine["lives"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [uid, pid]);
        let (_, bobs) = call(&app, Some(&bob), Method::GET, "/api/v1/me/lives", None).await;
        assert_eq!(bobs["lives"].as_array().unwrap().len(), 0);
        assert_eq!(call(&app, Some(&ann), Method::GET, "/api/v1/me/lives?cursor=forged", None).await.0, 400);
        // Bad input: clean 4xx.
        for (body, code) in [
            (json!({"title": ""}), 400),
            (json!({"title": "x", "privacy": "secret"}), 400),
            (json!({"title": "a\u{202e}b"}), 400),
            (json!({"title": "x".repeat(101)}), 400),
            (json!({"title": "x", "channel": "nobody-here"}), 400),
            (json!({"title": "x", "unknown": 1}), 400),
        ] {
            let (status, err) = call(&app, Some(&ann), Method::POST, "/api/v1/lives", Some(body.clone())).await;
            assert_eq!(status, code, "{body} → {err}");
            assert!(err["error"].is_string(), "{err}");
        }
        let res = app.client.post(app.url("/api/v1/lives")).header("cookie", ann.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded").body("title=x").send().await.unwrap();
        assert_eq!(res.status().as_u16(), 415);
    }

    async fn the_live_pages_work_without_javascript_and_keep_private_lives_private(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let private = new_live(&app, &ann, "private").await;
        let pid = private["id"].as_str().unwrap();
        let (status, html) = page(&app, Some(&ann), &format!("/lives/{pid}")).await;
        assert_eq!(status, 200);
        assert!(html.contains("Waiting for the streamer") && html.contains("Turtles live"), "{html}");
        assert!(html.len() < 50 * 1024);
        assert_eq!(page(&app, Some(&bob), &format!("/lives/{pid}")).await.0, 404);
        assert_eq!(page(&app, None, &format!("/lives/{pid}")).await.0, 404);
        // The studio: a forged token changes nothing; a real one makes a live and shows its key once.
        let (status, studio) = page(&app, Some(&ann), "/studio/lives").await;
        assert_eq!(status, 200);
        assert!(studio.contains(&format!("/lives/{pid}")), "{studio}");
        assert!(!studio.contains(private["stream_key"].as_str().unwrap()), "a key is never shown again");
        let token = csrf(&studio);
        let form = |t: &'static str| [("title", t), ("privacy", "public"), ("description", "")];
        let (status, _) = post_form(&app, &ann, "/studio/lives", &[&form("<script>alert(1)</script>")[..], &[("csrf", "forged")]].concat()).await;
        assert_eq!(status, 403);
        let (status, _) = post_form(&app, &bob, "/studio/lives", &[&form("x")[..], &[("csrf", token.as_str())]].concat()).await;
        assert_eq!(status, 403, "another user's token");
        let (_, mine) = call(&app, Some(&ann), Method::GET, "/api/v1/me/lives", None).await;
        assert_eq!(mine["lives"].as_array().unwrap().len(), 1);
        let res = app.client.post(app.url("/studio/lives")).header("cookie", ann.cookie_header())
            .form(&[("title", "<script>alert(1)</script>"), ("privacy", "public"), ("csrf", token.as_str())])
            .send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let shown = res.text().await.unwrap();
        assert!(shown.contains("id=\"stream-key\"") && shown.contains("&#60;script&#62;"), "{shown}");
        assert!(!shown.contains("<script>alert"));
        let (_, mine) = call(&app, Some(&ann), Method::GET, "/api/v1/me/lives", None).await;
        assert_eq!(mine["lives"].as_array().unwrap().len(), 2);
        // A refused form says why, under the API's status.
        let res = app.client.post(app.url("/studio/lives")).header("cookie", ann.cookie_header())
            .form(&[("title", ""), ("privacy", "public"), ("csrf", token.as_str())]).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 400);
        assert!(res.text().await.unwrap().contains("role=\"alert\""));
        // Ending from the studio.
        let (status, location) = post_form(&app, &ann, &format!("/studio/lives/{pid}/end"), &[("csrf", token.as_str())]).await;
        assert_eq!((status, location.as_str()), (303, "/studio/lives"));
        let (_, v) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{pid}"), None).await;
        assert_eq!(v["state"], "ended");
        assert_eq!(post_form(&app, &bob, &format!("/studio/lives/{pid}/key"), &[("csrf", token.as_str())]).await.0, 403);
    }
}

on_both_stacks_live! {
    settings(s) {
        s.live_max_per_user = Some(1);
        s.live_max_per_instance = Some(1);
    };

    // A publish beyond the per-user or per-instance limit of lives on air is refused during
    // the handshake, the owner sees why, and the live on air goes on.
    async fn a_publish_beyond_the_limits_of_lives_on_air_is_refused(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let first = new_live(&app, &ann, "public").await;
        let second = new_live(&app, &ann, "public").await;
        let bobs = new_live(&app, &bob, "public").await;
        let rtmp = first["rtmp_url"].as_str().unwrap();
        let id = first["id"].as_str().unwrap().to_owned();
        let mut encoder = publish(rtmp, first["stream_key"].as_str().unwrap(), 30);
        wait_live(&app, None, &id, 30, |v| v["state"] == "live").await;
        for (who, made, says) in [(&ann, &second, "lives on air"), (&bob, &bobs, "this instance already carries 1")] {
            let mut refused = publish(rtmp, made["stream_key"].as_str().unwrap(), 3);
            assert!(!tokio::time::timeout(Duration::from_secs(20), refused.wait()).await.unwrap().unwrap().success());
            let other = made["id"].as_str().unwrap();
            let (_, v) = call(&app, Some(who), Method::GET, &format!("/api/v1/lives/{other}"), None).await;
            assert_eq!(v["state"], "waiting", "{v}");
            let reason = v["last_reason"].as_str().unwrap_or_default();
            assert!(reason.starts_with("refused: ") && reason.contains(says), "{v}");
        }
        let (_, v) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{id}"), None).await;
        assert_eq!((v["state"].as_str(), v["connected"].as_bool()), (Some("live"), Some(true)), "{v}");
        // Once the first live ends, the second may go on air.
        let (status, _) = call(&app, Some(&ann), Method::POST, &format!("/api/v1/lives/{id}/end"), None).await;
        assert_eq!(status, 200);
        encoder.kill().await.unwrap();
        let mut now = publish(rtmp, second["stream_key"].as_str().unwrap(), 6);
        wait_live(&app, None, second["id"].as_str().unwrap(), 30, |v| v["state"] == "live").await;
        now.kill().await.unwrap();
    }
}
