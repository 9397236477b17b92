//! The pipeline end to end with the real ffmpeg and ffprobe on clips made here with lavfi,
//! publishing to a local store in a temporary folder.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use turtlemen_media::{Event, Limits, ProcessError, ProcessOptions, Processed, Timeout, Tools, process};
use turtlemen_storage::{Storage, StorageKey, StorageLocation};
use uuid::Uuid;

struct Fixture {
    dir: tempfile::TempDir,
    storage: Storage,
    root: PathBuf,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    let storage = Storage::open_location(StorageLocation::Local { root: root.clone() }).await.unwrap();
    Fixture { dir, storage, root }
}

impl Fixture {
    /// Makes a clip with ffmpeg's test sources and stores it as the video's original.
    async fn original(&self, id: Uuid, inputs: &[&str], out_args: &[&str]) -> PathBuf {
        let made = self.dir.path().join(format!("{id}.mp4"));
        ffmpeg(inputs, out_args, &made);
        let key = StorageKey::video_original(id);
        self.storage.put_stream(&key, tokio::fs::File::open(&made).await.unwrap()).await.unwrap();
        self.storage.local_path(&key).unwrap()
    }

    fn work_dir(&self, id: Uuid) -> PathBuf {
        self.dir.path().join("work").join(id.to_string())
    }

    async fn run(
        &self,
        id: Uuid,
        input: &Path,
        opts: &ProcessOptions,
    ) -> (Result<Processed, ProcessError>, Vec<Event>) {
        let mut events = Vec::new();
        let result = process(input, &self.work_dir(id), &self.storage, id, opts, |e| events.push(e)).await;
        (result, events)
    }

    /// Every stored key of the video, relative to `videos/{id}/`.
    async fn keys(&self, id: Uuid) -> BTreeSet<String> {
        let prefix = format!("{}/", StorageKey::video(id));
        let listed = self.storage.list(&StorageKey::video(id)).await.unwrap();
        listed.into_iter().map(|o| o.key.strip_prefix(&prefix).unwrap().to_owned()).collect()
    }

    fn file(&self, id: Uuid, rel: &str) -> PathBuf {
        self.root.join(StorageKey::video(id).as_str()).join(rel)
    }

    fn text(&self, id: Uuid, rel: &str) -> String {
        std::fs::read_to_string(self.file(id, rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

fn ffmpeg(inputs: &[&str], out_args: &[&str], out: &Path) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-v", "error", "-y"]);
    for input in inputs {
        cmd.args(["-f", "lavfi", "-i", input]);
    }
    let status = cmd.args(out_args).arg(out).status().unwrap();
    assert!(status.success(), "making a test clip failed");
}

fn opts(segment_secs: u32) -> ProcessOptions {
    ProcessOptions {
        segment_secs,
        stall_timeout: Duration::from_secs(60),
        total_timeout: Duration::from_secs(300),
        ..ProcessOptions::default()
    }
}

const X264: [&str; 6] = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"];

fn with_audio() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = X264.to_vec();
    v.extend(["-c:a", "aac", "-shortest"]);
    v
}

/// `(uri, attributes)` of each variant of a master playlist.
fn variants(master: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = master.lines().collect();
    lines
        .windows(2)
        .filter_map(|w| w[0].strip_prefix("#EXT-X-STREAM-INF:").map(|attrs| (w[1].to_owned(), attrs.to_owned())))
        .collect()
}

/// `(uri, duration)` of each segment of a media playlist.
fn segments(playlist: &str) -> Vec<(String, f64)> {
    let lines: Vec<&str> = playlist.lines().collect();
    lines
        .windows(2)
        .filter_map(|w| {
            let d = w[0].strip_prefix("#EXTINF:")?.trim_end_matches(',').parse().ok()?;
            Some((w[1].to_owned(), d))
        })
        .collect()
}

/// What ffprobe says about a stored file (or an init segment followed by a media segment).
fn ffprobe(files: &[PathBuf], entries: &str, scratch: &Path) -> String {
    let joined = scratch.join("probe.mp4");
    let bytes: Vec<u8> = files.iter().flat_map(|f| std::fs::read(f).unwrap()).collect();
    std::fs::write(&joined, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_entries", entries])
        .args(["-of", "default=noprint_wrappers=1:nokey=1"])
        .arg(&joined)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn progress(events: &[Event]) -> Vec<u8> {
    events.iter().filter_map(|e| if let Event::Progress { percent } = e { Some(*percent) } else { None }).collect()
}

/// Checks one finished video: master playlist, VOD renditions with identical segment
/// timings, every segment starting on a keyframe at the advertised size. Returns the
/// variants' names and attributes.
fn check_ladder(f: &Fixture, id: Uuid, expect: &[(&str, Option<(u32, u32)>)]) -> Vec<(String, String)> {
    let master = f.text(id, "hls/master.m3u8");
    let variants = variants(&master);
    let names: Vec<String> = variants.iter().map(|(uri, _)| uri.clone()).collect();
    let want: Vec<String> = expect.iter().map(|(n, _)| format!("{n}/playlist.m3u8")).collect();
    assert_eq!(names, want, "{master}");
    let mut timings = None;
    for ((uri, attrs), (name, size)) in variants.iter().zip(expect) {
        assert!(attrs.contains("BANDWIDTH=") && attrs.contains("CODECS=\""), "{attrs}");
        match size {
            Some((w, h)) => assert!(attrs.contains(&format!("RESOLUTION={w}x{h}")), "{attrs}"),
            None => assert!(!attrs.contains("RESOLUTION"), "{attrs}"),
        }
        let playlist = f.text(id, &format!("hls/{uri}"));
        assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.trim_end().ends_with("#EXT-X-ENDLIST"));
        assert!(playlist.contains("#EXT-X-MAP:URI=\"init.mp4\""));
        let segs = segments(&playlist);
        assert!(!segs.is_empty());
        let durations: Vec<String> = segs.iter().map(|(_, d)| format!("{d:.3}")).collect();
        match &timings {
            None => timings = Some(durations),
            Some(t) => assert_eq!(t, &durations, "segment boundaries differ in {name}"),
        }
        for (i, (seg, _)) in segs.iter().enumerate() {
            assert_eq!(seg, &format!("seg-{:05}.m4s", i + 1));
            let files = [f.file(id, &format!("hls/{name}/init.mp4")), f.file(id, &format!("hls/{name}/{seg}"))];
            if let Some((w, h)) = size {
                let probed = ffprobe(&files, "frame=key_frame,width,height", f.dir.path());
                assert_eq!(probed, format!("1 {w} {h}"), "{name}/{seg} must start with a keyframe");
            }
        }
    }
    variants
}

#[tokio::test]
async fn a_landscape_video_gets_the_ladder_a_poster_and_a_storyboard() {
    let f = fixture().await;
    let id = Uuid::now_v7();
    let input = f
        .original(id, &["testsrc2=size=640x360:rate=30:duration=4.5", "sine=frequency=440:duration=4.5"], &with_audio())
        .await;
    let (result, events) = f.run(id, &input, &opts(2)).await;
    let done = result.unwrap();
    assert_eq!((done.width, done.height), (640, 360));
    assert!((done.duration_secs - 4.5).abs() < 0.1, "{}", done.duration_secs);
    let variants =
        check_ladder(&f, id, &[("360p", Some((640, 360))), ("240p", Some((426, 240))), ("144p", Some((256, 144)))]);
    assert!(variants.iter().all(|(_, a)| a.contains("CODECS=\"avc1.64") && a.contains(",mp4a.40.2\"")), "{variants:?}");
    let segs = segments(&f.text(id, "hls/360p/playlist.m3u8"));
    assert_eq!(segs.len(), 3);
    assert!((segs.iter().map(|(_, d)| d).sum::<f64>() - 4.5).abs() < 0.1);
    assert_eq!(done.renditions.len(), 3);
    assert!(done.renditions.iter().all(|r| r.segments == 3 && r.bandwidth >= r.average_bandwidth));

    // Poster and storyboard.
    assert!(done.has_poster && done.has_storyboard);
    let poster = f.file(id, "poster.jpg");
    assert_eq!(ffprobe(&[poster], "stream=codec_name,width,height", f.dir.path()), "mjpeg 640 360");
    let sprite = f.file(id, "storyboard.jpg");
    assert_eq!(ffprobe(&[sprite], "stream=codec_name,width,height", f.dir.path()), "mjpeg 800 90");
    let vtt = f.text(id, "storyboard.vtt");
    assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nstoryboard.jpg#xywh=0,0,160,90\n"), "{vtt}");
    assert!(vtt.ends_with("00:00:04.000 --> 00:00:04.500\nstoryboard.jpg#xywh=640,0,160,90\n"), "{vtt}");

    // Progress rises to 100; playable came before the end.
    let p = progress(&events);
    assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
    assert_eq!(p.last(), Some(&100));
    let playable = events.iter().position(|e| *e == Event::Playable).expect("a Playable event");
    assert!(playable < events.len() - 1);
    assert!(!f.work_dir(id).exists(), "the work dir is removed");
}

#[tokio::test]
async fn portrait_rotated_and_odd_sizes_are_never_upscaled() {
    let f = fixture().await;
    let portrait = Uuid::now_v7();
    let input = f.original(portrait, &["testsrc2=size=360x640:rate=25:duration=2"], &X264).await;
    f.run(portrait, &input, &opts(1)).await.0.unwrap();
    check_ladder(&f, portrait, &[("360p", Some((360, 640))), ("240p", Some((240, 426))), ("144p", Some((144, 256)))]);

    // A phone video: stored landscape, displayed portrait through its display matrix.
    let rotated = Uuid::now_v7();
    let stored = f.original(rotated, &["testsrc2=size=320x240:rate=30:duration=2"], &X264).await;
    let input = f.dir.path().join("rotated.mp4");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(&stored)
        .args(["-c", "copy", "-metadata:s:v", "rotate=90"])
        .arg(&input)
        .status()
        .unwrap();
    assert!(status.success());
    let done = f.run(rotated, &input, &opts(1)).await.0.unwrap();
    assert_eq!((done.width, done.height), (240, 320));
    check_ladder(&f, rotated, &[("240p", Some((240, 320))), ("144p", Some((144, 192)))]);

    let odd = Uuid::now_v7();
    let input = f
        .original(
            odd,
            &["testsrc2=size=321x241:rate=30:duration=2"],
            &["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"],
        )
        .await;
    f.run(odd, &input, &opts(1)).await.0.unwrap();
    check_ladder(&f, odd, &[("240p", Some((320, 240))), ("144p", Some((192, 144)))]);

    let tiny = Uuid::now_v7();
    let input = f.original(tiny, &["testsrc2=size=100x80:rate=30:duration=2"], &X264).await;
    let done = f.run(tiny, &input, &opts(1)).await.0.unwrap();
    let variants = check_ladder(&f, tiny, &[("80p", Some((100, 80)))]);
    assert!(!variants[0].1.contains("mp4a"), "a silent video has no audio codec: {variants:?}");
    assert!(done.has_poster && done.has_storyboard);
}

#[tokio::test]
async fn an_audio_only_file_gets_one_audio_rendition() {
    let f = fixture().await;
    let id = Uuid::now_v7();
    let input = f.original(id, &["sine=frequency=330:duration=3"], &["-c:a", "aac", "-f", "mp4"]).await;
    let (result, events) = f.run(id, &input, &opts(1)).await;
    let done = result.unwrap();
    assert_eq!((done.width, done.height, done.has_poster, done.has_storyboard), (0, 0, false, false));
    let variants = check_ladder(&f, id, &[("audio", None)]);
    assert!(variants[0].1.contains("CODECS=\"mp4a.40.2\""), "{variants:?}");
    assert_eq!(progress(&events).last(), Some(&100));
    let keys = f.keys(id).await;
    assert!(!keys.iter().any(|k| k.contains("poster") || k.contains("storyboard")), "{keys:?}");
}

#[tokio::test]
async fn a_video_is_playable_while_it_is_still_processing() {
    let f = fixture().await;
    let id = Uuid::now_v7();
    let input = f
        .original(id, &["testsrc2=size=640x360:rate=30:duration=30", "sine=frequency=440:duration=30"], &with_audio())
        .await;
    let root = f.root.join(StorageKey::video_hls(id).as_str());
    let mut at_playable = None;
    let mut last_percent = 0;
    let opts = ProcessOptions { threads: 1, ..opts(1) };
    let result = process(&input, &f.work_dir(id), &f.storage, id, &opts, |e| match e {
        Event::Progress { percent } => last_percent = percent,
        Event::Playable => {
            // What a viewer would find at this moment: every named segment is there.
            let master = std::fs::read_to_string(root.join("master.m3u8")).unwrap();
            let mut named = 0;
            let mut ended = false;
            for (uri, _) in variants(&master) {
                let playlist = std::fs::read_to_string(root.join(&uri)).unwrap();
                ended |= playlist.contains("#EXT-X-ENDLIST");
                let dir = root.join(&uri).parent().unwrap().to_owned();
                assert!(dir.join("init.mp4").is_file());
                for (seg, _) in segments(&playlist) {
                    assert!(dir.join(&seg).is_file(), "{uri} names {seg} before it is stored");
                    named += 1;
                }
            }
            at_playable = Some((last_percent, named, ended));
        }
    })
    .await;
    let done = result.unwrap();
    let (percent, named, ended) = at_playable.expect("a Playable event");
    assert!(named >= 3, "every rendition had a segment");
    assert!(!ended, "the playlists were still EVENT playlists");
    assert!(percent < 50, "playable at {percent} %");
    assert_eq!(last_percent, 100);
    assert_eq!(done.renditions[0].segments, 30);
}

#[tokio::test]
async fn unusable_files_are_rejected_with_a_reason_and_leave_nothing() {
    let f = fixture().await;
    let reject_after_playing = async |id: Uuid, input: &Path, opts: &ProcessOptions| -> (String, Vec<Event>) {
        let (result, events) = f.run(id, input, opts).await;
        let keys = f.keys(id).await;
        assert!(keys.iter().all(|k| k == "original"), "left behind: {keys:?}");
        match result {
            Err(ProcessError::Rejected(reason)) => (reason, events),
            other => panic!("expected a rejection, got {other:?}"),
        }
    };
    let reject = async |id: Uuid, input: &Path, opts: &ProcessOptions| -> String {
        let (reason, events) = reject_after_playing(id, input, opts).await;
        assert!(events.is_empty(), "refused before processing: {events:?}");
        reason
    };
    let plain = |id: Uuid, bytes: &[u8]| {
        let path = f.dir.path().join(id.to_string());
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let unreadable = "This file is not a video or audio file we can read";

    let text = Uuid::now_v7();
    assert!(reject(text, &plain(text, b"hello, this is not a video\n"), &opts(2)).await.starts_with(unreadable));
    let empty = Uuid::now_v7();
    assert!(reject(empty, &plain(empty, b""), &opts(2)).await.starts_with(unreadable));
    // A playlist pointing at other files is not a container we open.
    let playlist = Uuid::now_v7();
    let m3u8 = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n/etc/passwd\n#EXT-X-ENDLIST\n";
    assert!(reject(playlist, &plain(playlist, m3u8), &opts(2)).await.starts_with(unreadable));

    let silent = Uuid::now_v7();
    let zero = f.dir.path().join("zero.wav");
    ffmpeg(&["anullsrc=r=44100"], &["-t", "0"], &zero);
    assert_eq!(reject(silent, &zero, &opts(2)).await, "This video is empty: it has no length.");

    // The first half of a real file, with its index at the end (unreadable) or at the start
    // (readable, but the pictures stop half-way: found out while processing, so the part
    // read may have been playable for a moment, and is removed).
    for faststart in [false, true] {
        let id = Uuid::now_v7();
        let mut args = with_audio();
        if faststart {
            args.extend(["-movflags", "+faststart"]);
        }
        let input = f.original(id, &["testsrc2=size=320x240:rate=30:duration=8", "sine=duration=8"], &args).await;
        let bytes = std::fs::read(&input).unwrap();
        let half = f.dir.path().join(format!("half-{faststart}.mp4"));
        std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
        let (reason, _) = reject_after_playing(id, &half, &opts(1)).await;
        assert!(
            reason.starts_with(unreadable) || reason.starts_with("This file seems damaged or incomplete"),
            "{reason}"
        );
    }

    let long = Uuid::now_v7();
    let input = f.original(long, &["testsrc2=size=320x240:rate=30:duration=3"], &X264).await;
    let short_limit = ProcessOptions { limits: Limits { max_duration_secs: 2, ..Limits::default() }, ..opts(1) };
    assert_eq!(reject(long, &input, &short_limit).await, "This video is 0:03 long; the longest we accept is 0:02.");
    let small_limit =
        ProcessOptions { limits: Limits { max_width: 300, max_height: 200, ..Limits::default() }, ..opts(1) };
    assert_eq!(
        reject(long, &input, &small_limit).await,
        "This video is 320×240 pixels; the largest we accept is 300×200."
    );
}

/// A stand-in for ffmpeg (this tests our watchdog, not ffmpeg).
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn a_hung_a_runaway_and_a_crashing_ffmpeg_are_reported() {
    let f = fixture().await;
    let id = Uuid::now_v7();
    let input = f.original(id, &["testsrc2=size=320x240:rate=30:duration=2"], &X264).await;
    let with = |ffmpeg: PathBuf| ProcessOptions {
        tools: Tools { ffmpeg, ffprobe: "ffprobe".into() },
        stall_timeout: Duration::from_secs(1),
        total_timeout: Duration::from_secs(3),
        ..opts(1)
    };

    let hung = script(f.dir.path(), "hung.sh", "echo 'starting up' >&2\nexec sleep 60");
    let started = Instant::now();
    let (result, _) = f.run(id, &input, &with(hung)).await;
    assert!(started.elapsed() < Duration::from_secs(3), "killed after the stall time: {:?}", started.elapsed());
    match result {
        Err(ProcessError::TimedOut { reason: Timeout::Stalled(d), stderr_tail }) => {
            assert_eq!(d, Duration::from_secs(1));
            assert!(stderr_tail.contains("starting up"), "{stderr_tail}");
        }
        other => panic!("expected a stall, got {other:?}"),
    }

    // Progress keeps coming, but the run outlives the overall limit.
    let runaway = script(
        f.dir.path(),
        "runaway.sh",
        "i=0\nwhile :; do i=$((i+100000)); echo \"out_time_us=$i\"; echo progress=continue; sleep 0.2; done",
    );
    let started = Instant::now();
    let (result, events) = f.run(id, &input, &with(runaway)).await;
    assert!(matches!(result, Err(ProcessError::TimedOut { reason: Timeout::Total(_), .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    assert!(!progress(&events).is_empty(), "progress was reported meanwhile");

    let crash = script(f.dir.path(), "crash.sh", "echo 'Conversion failed: something broke' >&2\nexit 3");
    match f.run(id, &input, &with(crash)).await.0 {
        Err(e @ ProcessError::Failed { .. }) => {
            assert!(e.stderr_tail().unwrap().contains("something broke"), "{e:?}");
            assert!(e.to_string().contains("exit status: 3"), "{e}");
            assert!(!e.is_permanent());
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(f.keys(id).await, BTreeSet::from(["original".to_owned()]));
}

#[tokio::test]
async fn a_rerun_writes_the_same_keys_and_removes_leftovers() {
    let f = fixture().await;
    let id = Uuid::now_v7();
    let input = f.original(id, &["testsrc2=size=320x240:rate=30:duration=3", "sine=duration=3"], &with_audio()).await;
    f.run(id, &input, &opts(1)).await.0.unwrap();
    let first = f.keys(id).await;
    assert!(first.contains("hls/240p/seg-00003.m4s") && first.contains("hls/master.m3u8"), "{first:?}");

    // A worker died mid-run: debris in the work dir and a stray segment in storage.
    let work = f.work_dir(id);
    std::fs::create_dir_all(work.join("240p")).unwrap();
    std::fs::write(work.join("240p/seg-00009.m4s"), b"half a segment").unwrap();
    let stray = StorageKey::video_rendition(id, 240).join(turtlemen_storage::Segment::numbered("seg", 9, "m4s"));
    f.storage.put_bytes(&stray, bytes::Bytes::from_static(b"stale")).await.unwrap();

    f.run(id, &input, &opts(1)).await.0.unwrap();
    assert_eq!(f.keys(id).await, first);
}

#[tokio::test]
async fn dropping_the_future_kills_ffmpeg() {
    let f = fixture().await;
    let id = Uuid::now_v7();
    let input = f.original(id, &["testsrc2=size=320x240:rate=30:duration=2"], &X264).await;
    let pid_file = f.dir.path().join("ffmpeg.pid");
    let body = format!("echo $$ > '{}'\nexec sleep 60", pid_file.display());
    let opts = ProcessOptions {
        tools: Tools { ffmpeg: script(f.dir.path(), "slow.sh", &body), ffprobe: "ffprobe".into() },
        nice: 0,
        ..opts(1)
    };
    let work = f.work_dir(id);
    let run = process(&input, &work, &f.storage, id, &opts, |_| {});
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let mut run = Box::pin(assert_send(run));
    // Drive the run until the stand-in has started, then drop it.
    let pid = loop {
        tokio::select! {
            r = &mut run => panic!("finished early: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        if let Ok(pid) = std::fs::read_to_string(&pid_file)
            && !pid.trim().is_empty()
        {
            break pid.trim().to_owned();
        }
    };
    drop(run);
    // Killed on drop; it may linger as a zombie until the runtime reaps it, and SIGKILL takes
    // a moment to land.
    let state = |pid: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).unwrap_or("gone").to_owned()
    };
    let dead = |s: &str| ["gone", "Z", "X"].contains(&s);
    if !dead(&state(&pid)) {
        std::thread::sleep(Duration::from_millis(200));
        assert!(dead(&state(&pid)), "ffmpeg {pid} still running ({})", state(&pid));
    }
}
