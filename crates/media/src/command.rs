//! The one ffmpeg command that makes everything: the whole ladder as HLS (fMP4 segments,
//! H.264 + AAC), plus the poster and the storyboard sprite as extra outputs of the same
//! filter graph, so the source is read and decoded once.
//!
//! Keyframes are aligned across renditions by forcing one at every multiple of the segment
//! length (`-force_key_frames expr:…`) in every encoder, with scene-cut keyframes off and a
//! GOP of two segments at most; the HLS muxer then cuts every rendition at the same instants.
//! Each rendition is its own HLS output (an EVENT playlist ffmpeg rewrites as segments
//! complete), in `{work_dir}/{label}/`. Progress goes to stdout as `-progress` key=value
//! blocks. This module only builds argument lists; [`crate::run`] runs them.

use crate::Tools;
use crate::ladder::Step;
use crate::probe::{ACCEPTED_FORMATS, Probe};
use crate::thumbs::Storyboard;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A rendition's playlist file, as ffmpeg writes it and as we publish it.
pub const PLAYLIST: &str = "playlist.m3u8";
/// A rendition's initialisation segment.
pub const INIT: &str = "init.mp4";
/// The poster file in the work dir.
pub const POSTER: &str = "poster.jpg";
/// The storyboard sprite file in the work dir (and its name in storage, which the track uses).
pub const STORYBOARD: &str = "storyboard.jpg";

/// The highest frame rate we encode; a faster source (a slow-motion phone clip) is resampled
/// to it.
pub const MAX_FRAME_RATE: f64 = 60.0;

/// The frame rate of the renditions, if the source's is known.
pub fn output_frame_rate(probe: &Probe) -> Option<f64> {
    probe.video.as_ref()?.frame_rate.map(|r| r.min(MAX_FRAME_RATE))
}

/// x264 presets, fastest first.
pub const PRESETS: [&str; 10] =
    ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"];

/// The poster and storyboard to take from the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Extras {
    /// Seconds into the video.
    pub poster_time: f64,
    pub poster_size: (u32, u32),
    pub storyboard: Storyboard,
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    pub input: &'a Path,
    pub work_dir: &'a Path,
    pub probe: &'a Probe,
    pub ladder: &'a [Step],
    pub segment_secs: u32,
    pub preset: &'a str,
    /// Encoder and decoder threads; 0 lets ffmpeg choose.
    pub threads: u32,
    /// `None` makes the bare ladder (the benchmark's baseline).
    pub extras: Option<Extras>,
}

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl CommandLine {
    /// The command as one line for logs and the benchmark (arguments with spaces or quotes
    /// are single-quoted).
    pub fn shell_words(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(|a| {
                let a = a.to_string_lossy();
                if a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+%".contains(c)) {
                    a.into_owned()
                } else {
                    format!("'{}'", a.replace('\'', r"'\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The folder of one rendition's output in the work dir.
pub fn rendition_dir(work_dir: &Path, step: &Step) -> PathBuf {
    work_dir.join(step.label.name())
}

/// The ffmpeg command for `job`, run through `nice -n {nice}` when `nice` is not 0.
pub fn ffmpeg(tools: &Tools, nice: i32, job: &Job) -> CommandLine {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |list: &[&str]| args.extend(list.iter().map(OsString::from));
    push(&["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y"]);
    let threads = job.threads.to_string();
    if job.threads > 0 {
        push(&["-threads", &threads]);
    }
    push(&["-protocol_whitelist", "file", "-format_whitelist", ACCEPTED_FORMATS, "-i"]);
    args.push(file_url(job.input));

    if let Some(graph) = filter_graph(job) {
        args.extend(["-filter_complex".into(), graph.into()]);
    }
    let segment = job.segment_secs.to_string();
    let force_keys = format!("expr:gte(t,n_forced*{})", job.segment_secs);
    let gop =
        (2.0 * job.segment_secs as f64 * output_frame_rate(job.probe).unwrap_or(30.0)).ceil().max(1.0).to_string();
    for (i, step) in job.ladder.iter().enumerate() {
        let mut push = |list: &[&str]| args.extend(list.iter().map(OsString::from));
        if step.size.is_some() {
            let (rate, buf) = (format!("{}k", step.video_kbps), format!("{}k", step.video_kbps * 2));
            push(&["-map", &format!("[v{i}]"), "-c:v", "libx264", "-preset", job.preset, "-profile:v", "high"]);
            push(&["-crf", "23", "-maxrate", &rate, "-bufsize", &buf, "-g", &gop, "-sc_threshold", "0"]);
            push(&["-force_key_frames", &force_keys]);
        }
        if let (Some(kbps), Some(audio)) = (step.audio_kbps, &job.probe.audio) {
            let rate = if audio.sample_rate == 44_100 { "44100" } else { "48000" };
            let channels = audio.channels.clamp(1, 2).to_string();
            push(&["-map", &format!("0:{}", audio.index), "-c:a", "aac", "-b:a", &format!("{kbps}k")]);
            push(&["-ac", &channels, "-ar", rate]);
        }
        if job.threads > 0 {
            push(&["-threads", &threads]);
        }
        push(&["-f", "hls", "-hls_time", &segment, "-hls_playlist_type", "event", "-hls_list_size", "0"]);
        push(&["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", INIT, "-start_number", "1"]);
        push(&["-hls_flags", "independent_segments+temp_file", "-hls_segment_filename"]);
        let dir = rendition_dir(job.work_dir, step);
        args.push(file_url(&dir.join("seg-%05d.m4s")));
        args.push(file_url(&dir.join(PLAYLIST)));
    }
    if job.extras.is_some() && job.probe.video.is_some() {
        for (label, quality, file) in [("[poster]", "3", POSTER), ("[storyboard]", "5", STORYBOARD)] {
            args.extend(
                ["-map", label, "-frames:v", "1", "-q:v", quality, "-f", "image2", "-update", "1"].map(OsString::from),
            );
            args.push(file_url(&job.work_dir.join(file)));
        }
    }
    if nice == 0 {
        return CommandLine { program: tools.ffmpeg.clone(), args };
    }
    let mut wrapped: Vec<OsString> = vec!["-n".into(), nice.to_string().into(), tools.ffmpeg.clone().into()];
    wrapped.extend(args);
    CommandLine { program: PathBuf::from("nice"), args: wrapped }
}

/// One split of the picture per video rendition (scaled, square pixels, 4:2:0), plus the
/// poster and storyboard branches, which pick their frames before scaling them.
fn filter_graph(job: &Job) -> Option<String> {
    let video = job.probe.video.as_ref()?;
    let sizes: Vec<(u32, u32)> = job.ladder.iter().filter_map(|s| s.size).collect();
    let mut branches: Vec<(String, String)> = sizes
        .iter()
        .enumerate()
        .map(|(i, (w, h))| (format!("scale={w}:{h},setsar=1,format=yuv420p"), format!("v{i}")))
        .collect();
    if let Some(x) = &job.extras {
        let (pw, ph) = x.poster_size;
        branches.push((format!("select='gte(t,{:.3})',scale={pw}:{ph},setsar=1", x.poster_time), "poster".into()));
        let s = &x.storyboard;
        branches.push((
            format!(
                "select='gte(t,selected_n*{})',scale={}:{},setsar=1,tile={}x{}",
                s.interval, s.tile_width, s.tile_height, s.columns, s.rows
            ),
            "storyboard".into(),
        ));
    }
    if branches.is_empty() {
        return None;
    }
    let mut input = format!("[0:{}]", video.index);
    if video.frame_rate.is_some_and(|r| r > MAX_FRAME_RATE + 0.5) {
        input.push_str(&format!("fps={MAX_FRAME_RATE},"));
    }
    if branches.len() == 1 {
        let (chain, out) = &branches[0];
        return Some(format!("{input}{chain}[{out}]"));
    }
    let splits: String = (0..branches.len()).map(|i| format!("[s{i}]")).collect();
    let mut graph = format!("{input}split={}{splits}", branches.len());
    for (i, (chain, out)) in branches.iter().enumerate() {
        graph.push_str(&format!(";[s{i}]{chain}[{out}]"));
    }
    Some(graph)
}

/// `file:PATH`, so a path is never taken for another protocol or an option.
fn file_url(path: &Path) -> OsString {
    let mut url = OsString::from("file:");
    url.push(path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::plan;
    use crate::probe::tests::probe_json;

    fn args(cmd: &CommandLine) -> Vec<String> {
        cmd.args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn one_command_makes_the_ladder_poster_and_storyboard() {
        let probe = Probe::from_json(&probe_json(640, 360, "")).unwrap();
        let ladder = plan(&probe);
        let extras = Extras {
            poster_time: 2.5,
            poster_size: (640, 360),
            storyboard: Storyboard::plan(640, 360, probe.media_duration()),
        };
        let job = Job {
            input: Path::new("/in/original"),
            work_dir: Path::new("/work"),
            probe: &probe,
            ladder: &ladder,
            segment_secs: 4,
            preset: "veryfast",
            threads: 2,
            extras: Some(extras),
        };
        let tools = Tools { ffmpeg: "/usr/bin/ffmpeg".into(), ffprobe: "/usr/bin/ffprobe".into() };
        let cmd = ffmpeg(&tools, 0, &job);
        assert_eq!(cmd.program, PathBuf::from("/usr/bin/ffmpeg"));
        let expected = [
            "-hide_banner -nostdin -nostats -loglevel error -progress pipe:1 -y -threads 2",
            "-protocol_whitelist file -format_whitelist",
            ACCEPTED_FORMATS,
            "-i file:/in/original -filter_complex",
            "[0:0]split=5[s0][s1][s2][s3][s4];\
             [s0]scale=640:360,setsar=1,format=yuv420p[v0];\
             [s1]scale=426:240,setsar=1,format=yuv420p[v1];\
             [s2]scale=256:144,setsar=1,format=yuv420p[v2];\
             [s3]select='gte(t,2.500)',scale=640:360,setsar=1[poster];\
             [s4]select='gte(t,selected_n*1)',scale=160:90,setsar=1,tile=10x1[storyboard]",
        ];
        let mut want: Vec<String> = Vec::new();
        for (i, part) in expected.iter().enumerate() {
            if i == 2 || i == 4 { want.push(part.to_string()) } else { want.extend(part.split(' ').map(String::from)) }
        }
        for (i, (label, kbps, akbps)) in [("360p", 800, 96), ("240p", 400, 64), ("144p", 200, 64)].iter().enumerate() {
            let line = format!(
                "-map [v{i}] -c:v libx264 -preset veryfast -profile:v high -crf 23 -maxrate {kbps}k -bufsize {}k \
                 -g 240 -sc_threshold 0 -force_key_frames expr:gte(t,n_forced*4) \
                 -map 0:1 -c:a aac -b:a {akbps}k -ac 2 -ar 44100 -threads 2 \
                 -f hls -hls_time 4 -hls_playlist_type event -hls_list_size 0 \
                 -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 -start_number 1 \
                 -hls_flags independent_segments+temp_file \
                 -hls_segment_filename file:/work/{label}/seg-%05d.m4s file:/work/{label}/playlist.m3u8",
                kbps * 2
            );
            want.extend(line.split_whitespace().map(String::from));
        }
        want.extend(
            "-map [poster] -frames:v 1 -q:v 3 -f image2 -update 1 file:/work/poster.jpg \
             -map [storyboard] -frames:v 1 -q:v 5 -f image2 -update 1 file:/work/storyboard.jpg"
                .split_whitespace()
                .map(String::from),
        );
        assert_eq!(args(&cmd), want);

        let niced = ffmpeg(&tools, 10, &Job { extras: None, threads: 0, ..job });
        assert_eq!(niced.program, PathBuf::from("nice"));
        let a = args(&niced);
        assert_eq!(&a[..3], ["-n", "10", "/usr/bin/ffmpeg"]);
        assert!(!a.contains(&"-threads".to_string()));
        assert!(!a.iter().any(|x| x.contains("poster") || x.contains("storyboard")));
        assert!(a.contains(&"[0:0]split=3[s0][s1][s2];[s0]scale=640:360,setsar=1,format=yuv420p[v0];[s1]scale=426:240,setsar=1,format=yuv420p[v1];[s2]scale=256:144,setsar=1,format=yuv420p[v2]".to_string()));
    }

    #[test]
    fn fast_sources_are_resampled_to_sixty_frames_per_second() {
        let json = r#"{"format": {"format_name": "mov", "duration": "3"}, "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 320, "height": 240,
             "avg_frame_rate": "240/1"}]}"#;
        let probe = Probe::from_json(json.as_bytes()).unwrap();
        let ladder = plan(&probe);
        let job = Job {
            input: Path::new("/in/original"),
            work_dir: Path::new("/work"),
            probe: &probe,
            ladder: &ladder,
            segment_secs: 2,
            preset: "veryfast",
            threads: 0,
            extras: None,
        };
        let a = args(&ffmpeg(&Tools::default(), 0, &job)).join(" ");
        assert!(a.contains("-filter_complex [0:0]fps=60,split=2[s0][s1];"), "{a}");
        assert!(a.contains(" -g 240 "), "{a}");
        assert_eq!(output_frame_rate(&probe), Some(60.0));
    }

    #[test]
    fn audio_only_has_no_filter_graph_and_one_audio_output() {
        let json = br#"{"format": {"format_name": "mp3", "duration": "3.5"},
            "streams": [{"index": 0, "codec_type": "audio", "codec_name": "mp3", "channels": 6, "sample_rate": "32000"}]}"#;
        let probe = Probe::from_json(json).unwrap();
        let ladder = plan(&probe);
        let job = Job {
            input: Path::new("/in/original"),
            work_dir: Path::new("/work"),
            probe: &probe,
            ladder: &ladder,
            segment_secs: 4,
            preset: "veryfast",
            threads: 0,
            extras: None,
        };
        let a = args(&ffmpeg(&Tools::default(), 0, &job)).join(" ");
        assert!(!a.contains("-filter_complex") && !a.contains("libx264"), "{a}");
        assert!(a.contains("-map 0:0 -c:a aac -b:a 128k -ac 2 -ar 48000 -f hls"), "{a}");
        assert!(a.ends_with("file:/work/audio/seg-%05d.m4s file:/work/audio/playlist.m3u8"), "{a}");
    }
}
