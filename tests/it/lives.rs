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
/// `settings(s) { … };` first, the block changes the settings `s` of those tests further;
/// `without_worker;` before that, the test runs the workers itself.
macro_rules! on_both_stacks_live {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        on_both_stacks_live! { settings(_settings) {}; $(async fn $name($app) $body)* }
    };
    (settings($s:ident) $tweak:block; $(async fn $name:ident($app:ident) $body:block)*) => {
        on_both_stacks_live! { spawn(spawn_with) settings($s) $tweak; $(async fn $name($app) $body)* }
    };
    (without_worker; $(async fn $name:ident($app:ident) $body:block)*) => {
        on_both_stacks_live! { spawn(spawn_without_worker) settings(_settings) {}; $(async fn $name($app) $body)* }
    };
    (spawn($spawn:ident) settings($s:ident) $tweak:block; $(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($app: TestApp) $body

            async fn start(stack: Stack) -> Option<TestApp> {
                let (mut $s, dir, schema) = fresh_settings(stack).await?;
                $s.live_grace_secs = Some(3);
                $s.live_read_timeout_secs = Some(3);
                $tweak
                Some(TestApp::$spawn($s, dir, schema).await)
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
    let video = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-tune", "zerolatency"];
    publish_with(rtmp_url, key, seconds, "", &video, true)
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

/// The player's source on a watch page (`data-hls`).
fn data_hls(html: &str) -> String {
    let src = html.split("data-hls=\"").nth(1).expect("a player source").split('"').next().unwrap();
    src.replace("&#38;", "&")
}

/// ffmpeg publishing `seconds` of a test picture (then the filters `then`, if any) with the
/// video options `video` (and AAC audio unless `audio` is false) to `rtmp_url/key`, paced in
/// real time.
fn publish_with(
    rtmp_url: &str,
    key: &str,
    seconds: u32,
    then: &str,
    video: &[&str],
    audio: bool,
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"]).args([
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=640x360:rate=30:duration={seconds}{then}"),
    ]);
    if audio {
        cmd.args(["-f", "lavfi", "-i", &format!("sine=duration={seconds}"), "-c:a", "aac"]);
    } else {
        cmd.arg("-an");
    }
    cmd.args(video)
        .args(["-f", "flv", &format!("{rtmp_url}/{key}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg")
}

/// Sends `signal` (`-STOP`, `-CONT`) to a running child.
fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("still running").to_string();
    assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success());
}

/// What ffprobe decodes from `bytes`: "codec,frames" lines.
async fn probe(bytes: &[u8]) -> String {
    ffprobe(bytes, &["-count_frames", "-show_entries", "stream=codec_name,nb_read_frames"]).await
}

/// What ffprobe reads of `bytes`' streams: "codec,width,height" lines.
async fn probe_size(bytes: &[u8]) -> String {
    ffprobe(bytes, &["-show_entries", "stream=codec_name,width,height"]).await
}

/// ffprobe's CSV answer (no header) for `bytes` with `args`.
async fn ffprobe(bytes: &[u8], args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("media.mp4");
    std::fs::write(&file, bytes).unwrap();
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .args(["-of", "csv=p=0"])
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
        assert!(made.get("rtmps_url").is_none(), "no RTMPS here: {made}");
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

        // The replay holds both runs, and its watch page plays the live's recording at once (a
        // VOD playlist of the stored segments, each run after a discontinuity) while the
        // replay's own ladder is made.
        let v = wait_live(&app, Some(&ann), &id, 30, |v| v["replay_video_id"].is_string()).await;
        let video = v["replay_video_id"].as_str().unwrap().to_owned();
        let (status, html) = page(&app, Some(&ann), &format!("/videos/{video}")).await;
        assert_eq!(status, 200);
        assert!(html.contains("data-recording=\"1\"") && html.contains("playing the live&#39;s recording"), "{html}");
        let recording = data_hls(&html);
        assert!(recording.ends_with(&format!("/{id}/replay.m3u8")), "{recording}");
        let (status, playlist) = get_text(&app, &recording).await;
        assert_eq!(status, 200, "{playlist}");
        assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
        assert!(playlist.contains("#EXT-X-MAP:URI=\"init-0.mp4\""), "{playlist}");
        assert!(playlist.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\""), "{playlist}");
        let recorded: f64 = playlist.lines().filter_map(|l| l.strip_prefix("#EXTINF:")).map(|d| d.trim_end_matches(',').parse::<f64>().unwrap()).sum();
        assert!(recorded > 6.0, "both runs of about 4 s each are recorded: {playlist}");
        // The second run's first segment decodes with its own init, from storage.
        let base = recording.trim_end_matches("replay.m3u8");
        let first_of_second = playlist.split("init-1.mp4\"\n").nth(1).unwrap().lines().nth(1).unwrap().to_owned();
        let (status, init) = get_bytes(&app, &format!("{base}init-1.mp4")).await;
        assert_eq!(status, 200);
        let (status, seg) = get_bytes(&app, &format!("{base}{first_of_second}")).await;
        assert_eq!(status, 200, "{first_of_second}");
        assert!(probe(&[init, seg].concat()).await.contains("h264,"));
        // The replay itself turns ready with both runs in it; then the page plays its ladder.
        let replay = crate::videos::wait_until_processed(&app, &ann, &video, 120).await;
        assert_eq!(replay["state"], "ready", "{replay}");
        let duration = replay["duration_secs"].as_f64().unwrap();
        assert!(duration > 6.0 && duration > recorded - 2.0, "every run is in the replay: {duration} s of {recorded} s recorded");
        let (_, html) = page(&app, Some(&ann), &format!("/videos/{video}")).await;
        assert!(!html.contains("data-recording") && data_hls(&html).ends_with("/hls/master.m3u8"), "{html}");
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
        // The live's first parts (a loaded machine may take a moment to write them).
        let deadline = Instant::now() + Duration::from_secs(30);
        let before = loop {
            let (status, text) = get_text(&app, &format!("{hls}&_HLS_msn=0&_HLS_part=1")).await;
            if status == 200 && text.contains("#EXT-X-PART:") {
                break text;
            }
            assert!(Instant::now() < deadline, "no part was listed: {status} {text}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
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
        assert!(v["replay_video_id"].is_null(), "nothing was recorded, so no replay: {v}");
        let (_, v) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{held_id}"), None).await;
        assert_eq!(v["state"], "live", "{v}");
    }

    async fn a_crashed_packager_s_live_gets_its_replay_from_storage(app) {
        let ann = signed_in(&app, "ann").await;
        // A real recording: ffmpeg publishes to a live that keeps no replay of its own.
        let (status, source) = call(&app, Some(&ann), Method::POST, "/api/v1/lives",
            Some(json!({"title": "Recorded", "privacy": "public", "replays": false}))).await;
        assert_eq!(status, 201, "{source}");
        let source_id = uuid::Uuid::parse_str(source["id"].as_str().unwrap()).unwrap();
        let mut encoder = publish(source["rtmp_url"].as_str().unwrap(), source["stream_key"].as_str().unwrap(), 6);
        encoder.wait().await.unwrap();
        let v = wait_live(&app, Some(&ann), &source_id.to_string(), 30, |v| v["state"] == "ended").await;
        assert!(v["replay_video_id"].is_null(), "{v}");
        // What a packaging process that died mid-live leaves: the stored segments of its
        // recording and their rows, the live on air and connected elsewhere, not heard of for
        // an hour. (The recording above, copied under another live.)
        let made = new_live(&app, &ann, "public").await;
        let id = uuid::Uuid::parse_str(made["id"].as_str().unwrap()).unwrap();
        let lives = app.data_dir.join("media").join("lives");
        std::fs::create_dir_all(lives.join(id.to_string())).unwrap();
        let mut copied = 0;
        for entry in std::fs::read_dir(lives.join(source_id.to_string())).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), lives.join(id.to_string()).join(entry.file_name())).unwrap();
            copied += 1;
        }
        assert!(copied >= 3, "an init and segments were stored");
        let hour_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
        let recorded: i64 = turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query("INSERT INTO live_segments (live_id, msn, run, duration_ms) SELECT $1, msn, run, duration_ms FROM live_segments WHERE live_id = $2")
                .bind(id).bind(source_id).execute(pool).await.unwrap();
            sqlx::query("UPDATE lives SET state = 'live', connected = true, packager_url = 'http://10.9.9.9:1/', started_at = $2, seen_at = $2 WHERE id = $1")
                .bind(id).bind(hour_ago).execute(pool).await.unwrap();
            sqlx::query_scalar("SELECT CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) FROM live_segments WHERE live_id = $1").bind(id).fetch_one(pool).await.unwrap()
        });
        assert!(recorded > 4000, "{recorded} ms recorded");
        // The janitor ends it, and its replay is made from what storage holds.
        let v = wait_live(&app, Some(&ann), &id.to_string(), 20, |v| v["state"] == "ended" && v["replay_video_id"].is_string()).await;
        assert!(v["last_reason"].as_str().unwrap().contains("packaging this live stopped"), "{v}");
        let replay = crate::videos::wait_until_processed(&app, &ann, v["replay_video_id"].as_str().unwrap(), 120).await;
        assert_eq!(replay["state"], "ready", "{replay}");
        let duration = replay["duration_secs"].as_f64().unwrap();
        assert!(duration > recorded as f64 / 1000.0 - 1.5, "{duration} s of {recorded} ms recorded");
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

on_both_stacks_live! {
    async fn followers_hear_once_that_a_public_live_started(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let cat = signed_in(&app, "cat").await;
        for who in [&bob, &cat] {
            let (status, body) = call(&app, Some(who), Method::PUT, "/api/v1/me/subscriptions/ann", None).await;
            assert!(status == 200 || status == 204, "{status} {body}");
        }
        // Cat turned the kind off (the settings list it, on by default).
        let (_, s) = call(&app, Some(&cat), Method::GET, "/api/v1/me/notifications/settings", None).await;
        assert_eq!(s["live_started"], true, "{s}");
        let (status, s) = call(&app, Some(&cat), Method::PUT, "/api/v1/me/notifications/settings", Some(json!({"live_started": false}))).await;
        assert_eq!((status, &s["live_started"]), (200, &json!(false)), "{s}");

        // An unlisted live on air tells nobody.
        let unlisted = new_live(&app, &ann, "unlisted").await;
        let uid = unlisted["id"].as_str().unwrap().to_owned();
        let rtmp = unlisted["rtmp_url"].as_str().unwrap().to_owned();
        let mut encoder = publish(&rtmp, unlisted["stream_key"].as_str().unwrap(), 30);
        wait_live(&app, None, &uid, 30, |v| v["state"] == "live").await;
        // A public one does, once, through the job queue — also after a reconnect.
        let public = new_live(&app, &ann, "public").await;
        let id = public["id"].as_str().unwrap().to_owned();
        let key = public["stream_key"].as_str().unwrap().to_owned();
        let mut first = publish(&rtmp, &key, 4);
        wait_live(&app, None, &id, 30, |v| v["state"] == "live").await;
        let seen = live_notifications(&app, &bob, 30, |n| !n.is_empty()).await;
        assert_eq!(seen.len(), 1, "{seen:?}");
        let n = &seen[0];
        assert_eq!((n["kind"].as_str(), n["read"].as_bool()), (Some("live_started"), Some(false)), "{n}");
        assert_eq!(n["live"]["watch_url"], format!("/lives/{id}"));
        assert_eq!(n["live"]["title"], "Turtles live");
        assert_eq!(n["channel"]["handle"], "ann");
        first.wait().await.unwrap();
        wait_live(&app, Some(&ann), &id, 10, |v| v["connected"] == false).await;
        let mut again = publish(&rtmp, &key, 30);
        wait_live(&app, Some(&ann), &id, 20, |v| v["connected"] == true).await;
        let jobs = turtlemen_db::jobs::list(&app.db, &turtlemen_db::jobs::JobFilter::default()).await.unwrap();
        let fan_outs: Vec<_> = jobs.iter().filter(|j| j.kind == "notify_live_started").collect();
        assert_eq!(fan_outs.len(), 1, "one fan-out for the public live, none for the unlisted one: {fan_outs:?}");
        wait_jobs_settled(&app).await;
        for (kind, subject, expected) in [("live_started", &id, 1), ("live_started", &uid, 0)] {
            let n: i64 = turtlemen_db::with_pool!(&app.db, |pool| {
                sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE kind = $1 AND subject_id = $2")
                    .bind(kind).bind(uuid::Uuid::parse_str(subject).unwrap()).fetch_one(pool).await.unwrap()
            });
            assert_eq!(n, expected, "{subject}: one for bob, none for cat (turned off)");
        }
        assert!(live_notifications(&app, &cat, 0, |_| true).await.is_empty());
        // The bell counts it; the page links the live and lists the setting.
        let (status, html) = page(&app, Some(&bob), "/notifications").await;
        assert_eq!(status, 200);
        assert!(html.contains(&format!("is live: <a href=\"/lives/{id}\">Turtles live</a>")), "{html}");
        assert!(html.contains("name=\"live_started\" value=\"on\" checked"), "{html}");
        // Made private, the live is no longer shown to its followers.
        let (status, changed) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/lives/{id}"), Some(json!({"privacy": "private"}))).await;
        assert_eq!((status, changed["privacy"].as_str()), (200, Some("private")), "{changed}");
        assert!(live_notifications(&app, &bob, 0, |_| true).await.is_empty());
        assert_eq!(call(&app, Some(&bob), Method::GET, &format!("/api/v1/lives/{id}"), None).await.0, 404);
        encoder.kill().await.unwrap();
        again.kill().await.unwrap();
    }
}

/// `who`'s `live_started` notifications, polled until `pred` holds (at most `secs`).
async fn live_notifications(app: &TestApp, who: &Browser, secs: u64, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = call(app, Some(who), Method::GET, "/api/v1/me/notifications?limit=100", None).await;
        assert_eq!(status, 200, "{body}");
        let lives: Vec<Value> =
            body["notifications"].as_array().unwrap().iter().filter(|n| n["kind"] == "live_started").cloned().collect();
        if pred(&lives) || Instant::now() >= deadline {
            return lives;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until no job is queued or running (the instance's own worker drains them).
async fn wait_jobs_settled(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = turtlemen_db::jobs::list(&app.db, &turtlemen_db::jobs::JobFilter::default()).await.unwrap();
        if jobs
            .iter()
            .all(|j| j.kind != "notify_live_started" || matches!(j.state, turtlemen_db::jobs::JobState::Succeeded))
        {
            return;
        }
        assert!(Instant::now() < deadline, "jobs never settled: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A healthy stream well under a 1,000 kb/s cap.
const MODEST: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "30",
    "-tune",
    "zerolatency",
    "-b:v",
    "300k",
    "-maxrate",
    "300k",
    "-bufsize",
    "300k",
];

on_both_stacks_live! {
    settings(s) {
        s.live_max_bitrate_kbps = Some(1000);
        s.live_max_per_user = Some(10);
    };

    // Encoders that break the rules: each refused or ended with its reason shown to the owner
    // alone (the lives are private), while a healthy stream on another live goes on.
    async fn bad_encoders_end_with_a_reason_and_other_streams_go_on(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let healthy = new_live(&app, &ann, "public").await;
        let hid = healthy["id"].as_str().unwrap().to_owned();
        let rtmp = healthy["rtmp_url"].as_str().unwrap().to_owned();
        let picture = "";
        let mut good = publish_with(&rtmp, healthy["stream_key"].as_str().unwrap(), 120, picture, MODEST, true);
        let v = wait_live(&app, None, &hid, 30, |v| v["state"] == "live" && v["hls_url"].is_string()).await;
        let hls = v["hls_url"].as_str().unwrap().to_owned();
        // Its playlist once it holds parts (a loaded machine may take a while to make the first).
        let deadline = Instant::now() + Duration::from_secs(30);
        let before = loop {
            let (status, playlist) = get_text(&app, &hls).await;
            if status == 200 && playlist.contains("#EXT-X-PART:") {
                break playlist;
            }
            assert!(Instant::now() < deadline, "no parts: {status} {playlist}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };

        let noisy = ",noise=alls=100:allf=t+u";
        let cbr = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-b:v", "10000k", "-minrate", "10000k", "-maxrate", "10000k", "-bufsize", "2000k", "-x264-params", "nal-hrd=cbr"];
        // Under the cap (else that would end it first), its video timestamps 30 s ahead after 3 s.
        let jump = [MODEST, &["-vf", "setpts=PTS+if(gte(T\\,3)\\,30/TB\\,0)"][..]].concat();
        // (what ffmpeg sends, whether audio goes along, what the owner is told)
        let cases: [(&str, &[&str], bool, &str); 3] = [
            // Debian's ffmpeg 5.1 cannot put HEVC in FLV; Sorenson H.263 is another codec the
            // ingest does not transcode, refused the same way (HEVC's FLV codec id is covered
            // by the FLV reader's unit tests).
            (picture, &["-c:v", "flv1"], true, "send H.264"),
            (noisy, &cbr, true, "more than the 1000 kb/s allowed"),
            (picture, &jump[..], false, "timestamps jumped"),
        ];
        for (source, video, audio, says) in cases {
            let bad = new_live(&app, &bob, "private").await;
            let id = bad["id"].as_str().unwrap().to_owned();
            let mut encoder = publish_with(&rtmp, bad["stream_key"].as_str().unwrap(), 20, source, video, audio);
            // Closed at once; once the grace period passes the live ends, the owner told why.
            let v = wait_live(&app, Some(&bob), &id, 40, |v| v["state"] == "ended").await;
            let reason = v["last_reason"].as_str().unwrap();
            assert!(reason.contains("did not come back") && reason.contains(says), "{v}");
            // Nothing of it leaks to others.
            assert_eq!(call(&app, None, Method::GET, &format!("/api/v1/lives/{id}"), None).await.0, 404);
            assert_eq!(call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{id}"), None).await.0, 404);
            let _ = encoder.kill().await;
        }

        // A publisher that stops sending (frozen): closed after the read timeout, then ended
        // after the grace period.
        let stalled = new_live(&app, &bob, "private").await;
        let sid = stalled["id"].as_str().unwrap().to_owned();
        let mut frozen = publish_with(&rtmp, stalled["stream_key"].as_str().unwrap(), 120, picture, MODEST, true);
        wait_live(&app, Some(&bob), &sid, 30, |v| v["connected"] == true).await;
        signal(&frozen, "-STOP");
        let v = wait_live(&app, Some(&bob), &sid, 20, |v| v["state"] == "ended").await;
        let reason = v["last_reason"].as_str().unwrap();
        assert!(reason.contains("did not come back") && reason.contains("sent nothing for 3 seconds"), "{v}");
        signal(&frozen, "-CONT");
        let _ = frozen.kill().await;
        let (_, studio) = page(&app, Some(&bob), "/studio/lives").await;
        assert!(studio.contains("Last: the encoder did not come back within 3 seconds (the last connection ended: the encoder sent nothing for 3 seconds)"), "{studio}");

        // The healthy stream went on all along, its playlist well formed.
        let (_, v) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{hid}"), None).await;
        assert_eq!((v["state"].as_str(), v["connected"].as_bool()), (Some("live"), Some(true)), "{v}");
        let (msn, _) = last_part(&before);
        let (status, after) = get_text(&app, &format!("{hls}&_HLS_msn={}&_HLS_part=0", msn + 3)).await;
        assert_eq!(status, 200, "{after}");
        assert!(after.starts_with("#EXTM3U\n") && after.contains("#EXT-X-PRELOAD-HINT:TYPE=PART"), "{after}");
        good.kill().await.unwrap();
    }
}

on_both_stacks_live! {
    settings(s) {
        // The 640×360 source gets the two rungs not above it.
        s.live_ladder = Some("720:2000,360:600,240:300".into());
    };
    async fn a_transcoded_ladder_serves_every_rung_from_one_ffmpeg_and_records_the_top_one(app) {
        let ann = signed_in(&app, "ann").await;
        let made = new_live(&app, &ann, "public").await;
        let id = made["id"].as_str().unwrap().to_owned();
        let (key, rtmp) = (made["stream_key"].as_str().unwrap(), made["rtmp_url"].as_str().unwrap());
        let mut encoder = publish(rtmp, key, 12);
        let v = wait_live(&app, None, &id, 30, |v| v["state"] == "live" && v["hls_url"].is_string()).await;
        let hls = v["hls_url"].as_str().unwrap().to_owned();
        let base = hls.split("live.m3u8").next().unwrap().to_owned();
        let nonce = hls.split("?v=").nth(1).unwrap().to_owned();

        // The player's URL is a multivariant playlist over the rungs not above the source.
        let (status, master) = get_text(&app, &hls).await;
        assert_eq!(status, 200, "{master}");
        assert_eq!(master.matches("#EXT-X-STREAM-INF:").count(), 2, "{master}");
        assert!(!master.contains("720p/"), "no rung above the source: {master}");
        assert!(master.contains("BANDWIDTH=792000,RESOLUTION=640x360,CODECS=\"avc1."), "{master}");
        assert!(master.contains("BANDWIDTH=492000,RESOLUTION=426x240,CODECS=\"avc1."), "{master}");
        assert!(master.contains(",mp4a.40.2\"\n360p/live.m3u8?v=") && master.contains("240p/live.m3u8?v="), "{master}");
        // The plain fallback is a multivariant playlist too, over the plain rung playlists.
        let (status, plain) = get_text(&app, &format!("{base}index.m3u8")).await;
        assert_eq!(status, 200);
        assert!(plain.contains("360p/index.m3u8") && plain.contains("240p/index.m3u8"), "{plain}");

        let other = ApiAlone::start(&app).await;
        for (rung, height) in [("360p", "360"), ("240p", "240")] {
            let playlist_url = format!("{base}{rung}/live.m3u8?v={nonce}");
            // Each rung's playlist advances: a blocking reload for its next part is answered
            // once that part exists.
            let (status, playlist) = get_text(&app, &format!("{playlist_url}&_HLS_msn=1&_HLS_part=0")).await;
            assert_eq!(status, 200, "{rung}: {playlist}");
            assert!(playlist.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"), "{playlist}");
            // (Under load the live may be well past segment 1 by now: its parts are no longer
            // listed, but still served.)
            assert!(playlist.contains(".m4s\",INDEPENDENT=YES"), "{rung}: {playlist}");
            let (msn, part) = last_part(&playlist);
            let (status, next) = get_text(&app, &format!("{playlist_url}&_HLS_msn={msn}&_HLS_part={}", part + 1)).await;
            assert_eq!(status, 200, "{next}");
            assert!(last_part(&next) > (msn, part), "{rung}: {next}");
            // Its parts are fMP4 at the rung's size, the audio copied beside the video.
            let (status, init) = get_bytes(&app, &format!("{base}{rung}/init-0.mp4")).await;
            assert_eq!(status, 200);
            let (status, part_bytes) = get_bytes(&app, &format!("{base}{rung}/part-1.0.m4s")).await;
            assert_eq!(status, 200);
            let probed = probe(&[init.clone(), part_bytes.clone()].concat()).await;
            assert!(probed.contains("h264,") && probed.contains("aac,"), "{rung}: {probed}");
            let size = probe_size(&[init.clone(), part_bytes.clone()].concat()).await;
            assert!(size.contains(&format!("h264,{},{height}", if height == "360" { 640 } else { 426 })), "{rung}: {size}");
            // A server that does not package the live serves the rung from the one that does.
            let (status, relayed) = other.get_text(&format!("{playlist_url}&_HLS_msn=1&_HLS_part=0")).await;
            assert_eq!(status, 200, "{relayed}");
            assert!(relayed.contains("#EXT-X-PART:DURATION="), "{relayed}");
            assert_eq!(other.get_bytes(&format!("{base}{rung}/part-1.0.m4s")).await, (200, part_bytes));
            assert_eq!(other.get_bytes(&format!("{base}{rung}/init-0.mp4")).await, (200, init));
        }
        let (status, relayed_master) = other.get_text(&hls).await;
        assert_eq!(status, 200);
        assert_eq!(relayed_master.matches("#EXT-X-STREAM-INF:").count(), 2, "{relayed_master}");
        // Rungs that are not there, and names that are no rung, are 404s.
        assert_eq!(get_text(&app, &format!("{base}720p/live.m3u8")).await.0, 404);
        assert_eq!(get_text(&app, &format!("{base}x/live.m3u8")).await.0, 404);
        assert_eq!(get_text(&app, &format!("{base}360p/replay.m3u8")).await.0, 404);
        // The player is counted, as with a single playlist.
        wait_live(&app, None, &id, 10, |v| v["viewers"].as_u64() >= Some(1)).await;
        other.stop().await;

        // The top rung is the one recorded: the replay's segments are 360p.
        encoder.wait().await.unwrap();
        let v = wait_live(&app, Some(&ann), &id, 40, |v| v["state"] == "ended" && v["replay_video_id"].is_string()).await;
        assert!(v["hls_url"].is_null());
        let (status, recording) = get_text(&app, &format!("{base}replay.m3u8")).await;
        assert_eq!(status, 200, "{recording}");
        let first = recording.lines().find(|l| l.starts_with("seg-")).expect("a recorded segment").to_owned();
        let (_, init) = get_bytes(&app, &format!("{base}init-0.mp4")).await;
        let (status, seg) = get_bytes(&app, &format!("{base}{first}")).await;
        assert_eq!(status, 200);
        assert!(probe_size(&[init, seg].concat()).await.contains("h264,640,360"));
    }
}

on_both_stacks_live! {
    settings(s) {
        // A self-signed certificate beside the data directory (the test's own temporary one).
        let dir = s.data_dir.as_ref().unwrap().parent().unwrap().to_owned();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(dir.join("rtmps-cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("rtmps-key.pem"), made.signing_key.serialize_pem()).unwrap();
        s.live_rtmps_listen = Some(format!("127.0.0.1:{}", crate::cluster::free_port()));
        s.live_rtmps_cert_file = Some(dir.join("rtmps-cert.pem"));
        s.live_rtmps_key_file = Some(dir.join("rtmps-key.pem"));
    };
    async fn ffmpeg_publishes_over_rtmps_and_plain_rtmp_on_its_port_is_refused(app) {
        let rtmps = app.settings.live_rtmps_listen.clone().unwrap();
        let ann = signed_in(&app, "ann").await;
        let made = new_live(&app, &ann, "public").await;
        let id = made["id"].as_str().unwrap().to_owned();
        let key = made["stream_key"].as_str().unwrap();
        // The owner is told the RTMPS address beside the RTMP one; nobody else is told either.
        let port = rtmps.rsplit(':').next().unwrap();
        let rtmps_url = made["rtmps_url"].as_str().unwrap().to_owned();
        assert!(rtmps_url.starts_with("rtmps://") && rtmps_url.ends_with(&format!(":{port}/live")), "{made}");
        assert_eq!(made["live"]["rtmps_url"], rtmps_url.as_str());
        let bob = signed_in(&app, "bob").await;
        for who in [Some(&bob), None] {
            let (_, v) = call(&app, who, Method::GET, &format!("/api/v1/lives/{id}"), None).await;
            assert!(v.get("rtmps_url").is_none() && v.get("rtmp_url").is_none(), "{v}");
        }

        // Plain RTMP on the TLS port fails the TLS handshake: ffmpeg gives up, nothing is live.
        let mut plain = publish(&rtmps_url.replacen("rtmps://", "rtmp://", 1), key, 3);
        assert!(!tokio::time::timeout(Duration::from_secs(20), plain.wait()).await.unwrap().unwrap().success());
        let (_, v) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{id}"), None).await;
        assert_eq!(v["state"], "waiting", "{v}");
        assert_eq!(v["connected"], false, "{v}");

        // ffmpeg over TLS (it does not verify the self-signed certificate): the live goes on air
        // and its playlist has parts.
        // The encoder runs well past the checks (a loaded machine is slow to go live) and is
        // stopped at the end.
        let mut encoder = publish(&rtmps_url, key, 60);
        let v = wait_live(&app, None, &id, 30, |v| v["state"] == "live" && v["hls_url"].is_string()).await;
        assert_eq!(wait_live(&app, Some(&ann), &id, 5, |_| true).await["connected"], true);
        let hls = v["hls_url"].as_str().unwrap().to_owned();
        let (status, playlist) = get_text(&app, &format!("{hls}&_HLS_msn=1&_HLS_part=0")).await;
        assert_eq!(status, 200, "{playlist}");
        assert!(playlist.contains("URI=\"part-1.0.m4s\",INDEPENDENT=YES"), "{playlist}");
        encoder.kill().await.unwrap();
    }
}

/// The replay job's (state, attempts, payload) of the live `id`.
async fn replay_job(app: &TestApp, id: &str) -> (String, i64, Value) {
    let key = turtlemen_db::lives::replay_job_key(uuid_of(id));
    let (state, attempts, payload): (String, i64, String) = turtlemen_db::with_pool!(&app.db, |pool| {
        sqlx::query_as("SELECT state, attempts, payload FROM jobs WHERE idempotency_key = $1")
            .bind(&key)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    (state, attempts, serde_json::from_str(&payload).unwrap())
}

fn uuid_of(id: &str) -> uuid::Uuid {
    id.parse().unwrap()
}

on_both_stacks_live! {
    without_worker;

    // A replay whose first attempt died half-way — its video made, its original not stored — is
    // made by the queue's next attempt: the one video the job named, the live pointing at it,
    // and it turns ready. The test runs the workers itself.
    async fn a_replay_that_dies_half_way_is_made_by_the_next_attempt(app) {
        use turtlemen_worker::replay::{LIVE_REPLAY, Replayer};
        use turtlemen_worker::{Registry, Worker, WorkerConfig};
        let config = turtlemen_config::Config::resolve(app.settings.clone()).unwrap();
        let storage = turtlemen_storage::Storage::open(&config.storage_url).await.unwrap();
        let work_root = app.data_dir.join("work");
        let ann = signed_in(&app, "ann").await;
        let made = new_live(&app, &ann, "public").await;
        let id = made["id"].as_str().unwrap().to_owned();
        let mut encoder = publish(made["rtmp_url"].as_str().unwrap(), made["stream_key"].as_str().unwrap(), 6);
        wait_live(&app, None, &id, 30, |v| v["state"] == "live").await;
        assert!(encoder.wait().await.unwrap().success());
        // Past the grace the live ends, and its replay job is queued with the end.
        let v = wait_live(&app, Some(&ann), &id, 30, |v| v["state"] == "ended").await;
        assert!(v["replay_video_id"].is_null(), "no worker ran yet: {v}");
        let (state, attempts, payload) = replay_job(&app, &id).await;
        assert_eq!((state.as_str(), attempts), ("queued", 0));
        let video: uuid::Uuid = payload["video_id"].as_str().unwrap().parse().unwrap();

        // Something in the way of the original: the first attempt makes the video, then fails.
        let original = storage.local_path(&turtlemen_storage::StorageKey::video_original(video)).unwrap();
        std::fs::create_dir_all(original.join("in-the-way")).unwrap();
        let replays =
            Registry::new().register(LIVE_REPLAY, Replayer { storage: storage.clone(), work_root: work_root.clone() });
        let worker = Worker::new(app.db.clone(), replays, WorkerConfig::default());
        assert_eq!(worker.run_until_idle().await.unwrap(), 1);
        let (state, attempts, _) = replay_job(&app, &id).await;
        assert_eq!((state.as_str(), attempts), ("queued", 1), "to be tried again");
        let half = turtlemen_db::videos::get(&app.db, video).await.unwrap().expect("the first attempt made the video");
        assert_eq!(half.state, turtlemen_db::videos::VideoState::Uploading);
        assert!(turtlemen_db::lives::get(&app.db, uuid_of(&id)).await.unwrap().unwrap().replay_video_id.is_none());

        // Out of the way, and the backoff skipped: the next attempt finishes the same video.
        std::fs::remove_dir_all(&original).unwrap();
        let key = turtlemen_db::lives::replay_job_key(uuid_of(&id));
        turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query("UPDATE jobs SET run_at = $1 WHERE idempotency_key = $2")
                .bind(chrono::Utc::now())
                .bind(&key)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected()
        });
        assert_eq!(worker.run_until_idle().await.unwrap(), 1);
        assert_eq!(replay_job(&app, &id).await, ("succeeded".to_owned(), 2, payload));
        let v = wait_live(&app, Some(&ann), &id, 5, |_| true).await;
        assert_eq!(v["replay_video_id"], video.to_string());
        let owner = turtlemen_db::lives::get(&app.db, uuid_of(&id)).await.unwrap().unwrap().owner_id;
        let theirs = turtlemen_db::videos::list_by_owner(&app.db, owner, None, 10).await.unwrap();
        assert_eq!(theirs.iter().map(|v| v.id).collect::<Vec<_>>(), [video], "one video, the one the job named");

        // A worker with every handler transcodes it.
        let transcoder = turtlemen_worker::transcode::Transcoder { storage, work_root, options: Default::default() };
        let all = Worker::new(app.db.clone(), turtlemen_worker::registry(Some(transcoder)), WorkerConfig::default());
        all.run_until_idle().await.unwrap();
        let v = crate::videos::wait_until_processed(&app, &ann, &video.to_string(), 120).await;
        assert_eq!(v["state"], "ready", "{v}");
        assert!(v["duration_secs"].as_f64().unwrap() > 4.0, "{v}");
    }
}
