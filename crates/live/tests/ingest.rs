//! The ingest against a real encoder: ffmpeg publishes over RTMP, the hub packages it, and what
//! comes out decodes with ffprobe. The database side is a small in-memory [`Directory`] here;
//! the API server's own one is tested end to end in the binary's integration tests.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use turtlemen_live::{Directory, EndReason, Hub, IngestConfig, Refusal, StoredSegment};
use uuid::Uuid;

#[derive(Default)]
struct Keys {
    lives: Mutex<HashMap<String, (Uuid, bool)>>,
    events: Mutex<Vec<String>>,
    stored: Mutex<Vec<StoredSegment>>,
    /// Held by a test to hold a claim after the live was marked on air, before it returns.
    claim_gate: tokio::sync::Mutex<()>,
}

#[async_trait::async_trait]
impl Directory for Keys {
    async fn claim(&self, key: &str) -> Result<Uuid, Refusal> {
        let id = {
            let mut lives = self.lives.lock().unwrap();
            let (id, connected) = lives.get_mut(key).ok_or(Refusal::UnknownKey)?;
            if *connected {
                return Err(Refusal::AlreadyLive);
            }
            *connected = true;
            *id
        };
        let _gate = self.claim_gate.lock().await;
        Ok(id)
    }
    async fn dropped(&self, live: Uuid, reason: &EndReason) {
        for (id, connected) in self.lives.lock().unwrap().values_mut() {
            if *id == live {
                *connected = false;
            }
        }
        self.events.lock().unwrap().push(format!("dropped: {reason}"));
    }
    async fn stored(&self, _live: Uuid, segment: StoredSegment) {
        self.stored.lock().unwrap().push(segment);
    }
    async fn ended(&self, _live: Uuid, reason: &EndReason) {
        let segments = self.stored.lock().unwrap().len();
        self.events.lock().unwrap().push(format!("ended: {reason} ({segments} segments)"));
    }
    async fn viewers(&self, _live: Uuid, count: u64) {
        self.events.lock().unwrap().push(format!("viewers: {count}"));
    }
    async fn held(&self, _live: Uuid) {}
}

struct Setup {
    hub: Arc<Hub>,
    keys: Arc<Keys>,
    port: u16,
    _dir: tempfile::TempDir,
}

async fn setup(config: IngestConfig) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(dir.path());
    let storage = turtlemen_storage::Storage::open(&url).await.unwrap();
    let keys = Arc::new(Keys::default());
    let hub = Hub::new(config, storage, keys.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(turtlemen_live::rtmp::serve(listener, hub.clone(), std::future::pending()));
    Setup { hub, keys, port, _dir: dir }
}

fn url_of(path: &std::path::Path) -> url::Url {
    url::Url::from_directory_path(path).unwrap()
}

fn publish(port: u16, key: &str, seconds: u32) -> tokio::process::Child {
    tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size=640x360:rate=30:duration={seconds}")])
        .args(["-f", "lavfi", "-i", &format!("sine=duration={seconds}")])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-tune", "zerolatency", "-c:a", "aac"])
        .args(["-f", "flv", &format!("rtmp://127.0.0.1:{port}/live/{key}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn ffprobe_frames(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("part.mp4");
    std::fs::write(&file, bytes).unwrap();
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn ffmpeg_publishes_and_parts_decode() {
    let s = setup(IngestConfig { grace: Duration::from_millis(300), ..Default::default() }).await;
    let id = Uuid::now_v7();
    s.keys.lives.lock().unwrap().insert("good-key".into(), (id, false));
    let mut encoder = publish(s.port, "good-key", 8);
    let stream = eventually("the stream", || s.hub.stream(id)).await;
    stream.wait_for(1, Some(1), Duration::from_secs(15)).await.expect("parts of the second segment");
    let playlist = String::from_utf8(stream.low_latency_playlist().to_vec()).expect("UTF-8");
    assert!(playlist.contains("#EXT-X-PART:") && playlist.contains(",INDEPENDENT=YES"), "{playlist}");
    assert!(playlist.contains("#EXT-X-PRELOAD-HINT:TYPE=PART"), "{playlist}");
    let init = stream.init(0).unwrap();
    let part = stream.part(1, 0).unwrap();
    let probed = ffprobe_frames(&[init.as_ref(), part.as_ref()].concat()).await;
    assert!(probed.contains("h264,") && probed.contains("aac,"), "{probed}");
    let segment = stream.segment(0).unwrap();
    let probed = ffprobe_frames(&[init.as_ref(), segment.as_ref()].concat()).await;
    let frames: u32 = probed.lines().find(|l| l.starts_with("h264,")).unwrap()[5..].trim().parse().unwrap();
    assert!(frames >= 30, "a segment of about two seconds: {probed}");
    // A second publisher on the same key is refused while the first publishes.
    let mut second = publish(s.port, "good-key", 2);
    let status = tokio::time::timeout(Duration::from_secs(15), second.wait()).await.unwrap().unwrap();
    assert!(!status.success());
    // A wrong key is refused before any media is kept.
    let mut wrong = publish(s.port, "wrong-key", 2);
    let status = tokio::time::timeout(Duration::from_secs(15), wrong.wait()).await.unwrap().unwrap();
    assert!(!status.success());
    assert!(s.hub.is_publishing(id));
    encoder.wait().await.unwrap();
    let events = eventually("the end", || {
        let e = s.keys.events.lock().unwrap().clone();
        e.iter().any(|e| e.starts_with("ended")).then_some(e)
    })
    .await;
    assert!(events[0].starts_with("dropped: the encoder stopped the stream"), "{events:?}");
    assert!(events[1].starts_with("ended: the encoder did not come back"), "{events:?}");
    assert!(stream.low_latency_playlist().ends_with(b"#EXT-X-ENDLIST\n"));
}

#[tokio::test]
async fn a_live_marked_on_air_is_found_while_its_claim_finishes() {
    let s = setup(IngestConfig::default()).await;
    let id = Uuid::new_v4();
    s.keys.lives.lock().unwrap().insert("key".into(), (id, false));
    let gate = s.keys.claim_gate.lock().await;
    let hub = s.hub.clone();
    let publishing = tokio::spawn(async move { hub.begin_publish("key", 1).await.map(|l| l.id) });
    // The directory says the live is on air; the claim has not returned to the hub.
    eventually("the claim", || s.keys.lives.lock().unwrap()["key"].1.then_some(())).await;
    assert!(s.hub.live(id).is_none());
    let soon = s.hub.live_soon(id, Duration::from_secs(30));
    tokio::pin!(soon);
    // Polled here, so it has looked (and not found the live) before the claim is let go.
    let early = tokio::time::timeout(Duration::from_millis(100), &mut soon).await;
    assert!(early.is_err(), "a player asking now waits for the claim, not {:?}", early.map(|l| l.map(|l| l.id)));
    drop(gate);
    assert_eq!(soon.await.map(|l| l.id), Some(id));
    assert_eq!(publishing.await.unwrap(), Ok(id));
    // A live this process does not have, with no claim under way: nothing, at once.
    let started = std::time::Instant::now();
    assert!(s.hub.live_soon(Uuid::new_v4(), Duration::from_secs(30)).await.is_none());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn garbage_after_the_handshake_closes_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup(IngestConfig::default()).await;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    // A valid C0+C1, then C2, then garbage.
    let mut c1 = vec![3u8];
    c1.extend(std::iter::repeat_n(7u8, 1536));
    socket.write_all(&c1).await.unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    socket.read_exact(&mut s0s1s2).await.unwrap();
    socket.write_all(&s0s1s2[1..1537]).await.unwrap();
    socket.write_all(&[0xff; 4096]).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), socket.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server closed the connection");
}

/// Publishes with `config`'s caps and returns the first thing the directory heard.
async fn first_event(config: IngestConfig) -> String {
    let s = setup(config).await;
    let id = Uuid::now_v7();
    s.keys.lives.lock().unwrap().insert("key".into(), (id, false));
    let mut encoder = publish(s.port, "key", 10);
    let status = tokio::time::timeout(Duration::from_secs(20), encoder.wait()).await.unwrap().unwrap();
    assert!(!status.success(), "the encoder was disconnected");
    eventually("the drop", || s.keys.events.lock().unwrap().first().cloned()).await
}

#[tokio::test]
async fn a_publisher_over_the_bitrate_cap_is_disconnected_with_the_reason() {
    // testsrc2 at 640×360 is well over ten times 50 kb/s.
    let event = first_event(IngestConfig { max_bitrate_bps: 50_000, ..Default::default() }).await;
    assert!(
        event.starts_with("dropped: the stream sent") && event.ends_with("more than the 50 kb/s allowed"),
        "{event}"
    );
}

#[tokio::test]
async fn a_picture_over_the_size_cap_is_refused_from_the_sequence_header() {
    let event = first_event(IngestConfig { max_long_side: 426, max_short_side: 240, ..Default::default() }).await;
    assert_eq!(event, "dropped: the picture is 640×360, more than the 426×240 allowed");
}
