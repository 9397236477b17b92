//! Runs one ffmpeg command to its end under watch: progress from its `-progress pipe:1`
//! blocks, the last [`TAIL_BYTES`] of its stderr kept for the failure report, and a kill when
//! it stops making progress for the stall time or outlives the overall limit. The child is
//! spawned with `kill_on_drop`, so dropping the future kills it too.

use crate::command::CommandLine;
use crate::error::{ProcessError, Timeout};
use std::collections::VecDeque;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::time::{Instant, sleep_until};

/// How much of ffmpeg's stderr a failure keeps.
pub const TAIL_BYTES: usize = 16 * 1024;

/// The stall and overall limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    pub stall: Duration,
    pub total: Duration,
}

/// Runs `cmd`, calling `on_percent` with 0..=99 as the output advances through
/// `duration_secs` (100 is for the caller to report once everything is published).
pub async fn run(
    cmd: &CommandLine,
    duration_secs: f64,
    watch: Watch,
    mut on_percent: impl FnMut(u8),
) -> Result<(), ProcessError> {
    let mut child = tokio::process::Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ProcessError::Failed {
            message: format!("cannot start {}: {e}", cmd.program.display()),
            stderr_tail: String::new(),
        })?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ProcessError::Failed {
            message: "ffmpeg's output pipes are missing".into(),
            stderr_tail: String::new(),
        });
    };
    let mut lines = BufReader::new(stdout).lines();
    let mut tail = Tail::default();
    let mut buf = vec![0u8; 4096];
    let mut progress = Progress::default();
    let mut percent = None;
    let deadline = Instant::now() + watch.total;
    let mut stall_at = Instant::now() + watch.stall;
    let (mut stdout_open, mut stderr_open) = (true, true);
    let status = loop {
        tokio::select! {
            line = lines.next_line(), if stdout_open => match line {
                Ok(Some(line)) => {
                    if progress.feed(&line) {
                        stall_at = Instant::now() + watch.stall;
                        let p = progress.percent(duration_secs);
                        if percent.is_none_or(|old| p > old) {
                            percent = Some(p);
                            on_percent(p);
                        }
                    }
                }
                Ok(None) | Err(_) => stdout_open = false,
            },
            n = stderr.read(&mut buf), if stderr_open => match n {
                Ok(0) | Err(_) => stderr_open = false,
                Ok(n) => tail.push(&buf[..n]),
            },
            status = child.wait() => break status.map_err(ProcessError::io("waiting for ffmpeg"))?,
            () = sleep_until(stall_at) => {
                kill(&mut child).await;
                return Err(ProcessError::TimedOut { reason: Timeout::Stalled(watch.stall), stderr_tail: tail.text() });
            }
            () = sleep_until(deadline) => {
                kill(&mut child).await;
                return Err(ProcessError::TimedOut { reason: Timeout::Total(watch.total), stderr_tail: tail.text() });
            }
        }
    };
    // What ffmpeg wrote just before exiting; bounded, in case a grandchild holds the pipe.
    let drain = async {
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tail.push(&buf[..n]);
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    if status.success() {
        return Ok(());
    }
    Err(ProcessError::Failed { message: format!("ffmpeg failed ({status})"), stderr_tail: tail.text() })
}

async fn kill(child: &mut tokio::process::Child) {
    if let Err(e) = child.start_kill() {
        tracing::warn!(error = %e, "cannot kill ffmpeg");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

/// The state of ffmpeg's `-progress` output.
#[derive(Debug, Default)]
struct Progress {
    out_time_us: i64,
    frame: u64,
}

impl Progress {
    /// Takes one `key=value` line; true if it shows the output advancing.
    fn feed(&mut self, line: &str) -> bool {
        let Some((key, value)) = line.trim().split_once('=') else { return false };
        match key {
            "out_time_us" => match value.parse::<i64>() {
                Ok(t) if t > self.out_time_us => {
                    self.out_time_us = t;
                    true
                }
                _ => false,
            },
            "frame" => match value.parse::<u64>() {
                Ok(f) if f > self.frame => {
                    self.frame = f;
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// 0..=99: the share of `duration_secs` written so far.
    fn percent(&self, duration_secs: f64) -> u8 {
        if duration_secs <= 0.0 {
            return 0;
        }
        (self.out_time_us as f64 / 1e6 / duration_secs * 100.0).clamp(0.0, 99.0) as u8
    }
}

/// The last [`TAIL_BYTES`] of a byte stream.
#[derive(Debug, Default)]
struct Tail(VecDeque<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend(bytes);
        let excess = self.0.len().saturating_sub(TAIL_BYTES);
        self.0.drain(..excess);
    }

    fn text(&self) -> String {
        let (a, b) = self.0.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_advances_on_time_or_frames_only() {
        let mut p = Progress::default();
        assert!(!p.feed("out_time_us=N/A"));
        assert!(p.feed("frame=3"));
        assert!(!p.feed("frame=3"));
        assert!(p.feed("out_time_us=2500000"));
        assert!(!p.feed("out_time_us=2500000"));
        assert!(!p.feed("progress=continue"));
        assert_eq!(p.percent(10.0), 25);
        assert!(p.feed("out_time_us=11000000"));
        assert_eq!(p.percent(10.0), 99, "100 is kept for the end");
        assert_eq!(p.percent(0.0), 0);
    }

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let mut t = Tail::default();
        t.push(&vec![b'a'; TAIL_BYTES]);
        t.push(b"the end");
        let text = t.text();
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("aathe end"));
    }
}
