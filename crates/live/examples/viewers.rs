//! Simulated Low-Latency HLS players for `benches/live.sh`: `N` players on one live, each doing
//! what hls.js does in low-latency mode — a blocking playlist reload for the part named by the
//! preload hint, then that part — for `SECS` seconds, started over the first second.
//!
//! Each player plays as hls.js does in low-latency mode: `PART-HOLD-BACK` (from the playlist's
//! `EXT-X-SERVER-CONTROL`) behind the live edge. Its first part is due that long after the part
//! existed, and every later part one part's duration after the one before. A player falls behind
//! when:
//! - a part arrives after it is due (the player would stall);
//! - a playlist answer shows more than [`BEHIND_PARTS`] part after the one it asked for (a player
//!   that keeps up is answered the moment its part exists, so the part it asked for is the
//!   newest; an answer with more after it came over a part target late);
//! - a request fails.
//!
//! Also counted, as a stricter sign of load: parts whose fetch took longer than the part lasts
//! (`slow_parts`). A player absorbs those in its hold-back unless they add up.
//!
//! Prints one line: `players=N behind=B stalled=S late_playlists=L slow_parts=P failed=F
//! requests=R parts_mb=M playlist_p50_ms=… playlist_p99_ms=… part_p50_ms=… part_p99_ms=…`.
//!
//!   cargo run --release -p turtlemen-live --example viewers -- URL N SECS
//!
//! URL is the live's `hls_url` made absolute (its `?v=` nonce is replaced per player).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Parts past the one asked for in a playlist answer that count as falling behind: the answer
/// came more than about a part target after the part existed.
const BEHIND_PARTS: usize = 1;

#[derive(Default)]
struct Tally {
    behind: AtomicU64,
    stalled: AtomicU64,
    late_playlists: AtomicU64,
    slow_parts: AtomicU64,
    failed: AtomicU64,
    requests: AtomicU64,
    part_bytes: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    playlist_ms: std::sync::Mutex<Vec<u64>>,
    part_ms: std::sync::Mutex<Vec<u64>>,
    /// The first few slow parts: how long each lasts and how long its fetch took, in ms.
    slow_examples: std::sync::Mutex<Vec<(u64, u64)>>,
}

/// A part by its media sequence number and its index in the segment.
type PartName = (u64, u64);

fn part_name(line: &str) -> Option<PartName> {
    let rest = line.split("URI=\"part-").nth(1)?.split(".m4s").next()?;
    let (msn, part) = rest.split_once('.')?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}

/// `PART-HOLD-BACK` of a playlist's `EXT-X-SERVER-CONTROL`.
fn part_hold_back(playlist: &str) -> Option<Duration> {
    let line = playlist.lines().find(|l| l.starts_with("#EXT-X-SERVER-CONTROL:"))?;
    let secs: f64 = line.split("PART-HOLD-BACK=").nth(1)?.split(',').next()?.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// The parts a playlist lists, in order, with their durations, and its preload hint.
fn parse(playlist: &str) -> (Vec<(PartName, Duration)>, Option<PartName>) {
    let part = |line: &str| -> Option<(PartName, Duration)> {
        let secs: f64 = line.split("DURATION=").nth(1)?.split(',').next()?.parse().ok()?;
        Some((part_name(line)?, Duration::from_secs_f64(secs)))
    };
    let parts = playlist.lines().filter(|l| l.starts_with("#EXT-X-PART:")).filter_map(part).collect();
    let hint = playlist.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:")).and_then(part_name);
    (parts, hint)
}

async fn player(
    client: reqwest::Client,
    url: String,
    base: String,
    until: Instant,
    tally: Arc<Tally>,
) -> Result<(), reqwest::Error> {
    let text = client.get(&url).send().await?.error_for_status()?.text().await?;
    tally.requests.fetch_add(1, Ordering::Relaxed);
    let (_, mut hint) = parse(&text);
    let hold_back = part_hold_back(&text).unwrap_or(Duration::from_secs(1));
    let mut behind = false;
    // When the next part must have arrived for the player not to stall.
    let mut due: Option<Instant> = None;
    while Instant::now() < until {
        let Some((msn, part)) = hint else { break };
        let started = Instant::now();
        let text = client
            .get(format!("{url}&_HLS_msn={msn}&_HLS_part={part}"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let playlist_ms = started.elapsed().as_millis() as u64;
        let (parts, next) = parse(&text);
        // The part asked for, or the first after it (a segment can close before that part
        // existed: the next one is then the first of the following segment).
        let Some(at) = parts.iter().position(|(p, _)| *p >= (msn, part)) else {
            hint = next;
            continue;
        };
        let ((msn, part), lasts) = parts[at];
        // The first part is played PART-HOLD-BACK after it existed (now, as the blocking reload
        // answered when it did).
        let deadline = *due.get_or_insert_with(|| Instant::now() + hold_back);
        if parts.len() - 1 - at > BEHIND_PARTS {
            behind = true;
            tally.late_playlists.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let bytes =
            client.get(format!("{base}part-{msn}.{part}.m4s")).send().await?.error_for_status()?.bytes().await?;
        if started.elapsed() > lasts {
            tally.slow_parts.fetch_add(1, Ordering::Relaxed);
            let mut examples = tally.slow_examples.lock().unwrap_or_else(|e| e.into_inner());
            if examples.len() < 8 {
                examples.push((lasts.as_millis() as u64, started.elapsed().as_millis() as u64));
            }
        }
        if Instant::now() > deadline {
            behind = true;
            tally.stalled.fetch_add(1, Ordering::Relaxed);
            // A stalled player waits for the part, then plays on from now.
            due = Some(Instant::now() + lasts);
        } else {
            due = Some(deadline + lasts);
        }
        let part_ms = started.elapsed().as_millis() as u64;
        tally.requests.fetch_add(2, Ordering::Relaxed);
        tally.part_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        tally.playlist_ms.lock().unwrap_or_else(|e| e.into_inner()).push(playlist_ms);
        tally.part_ms.lock().unwrap_or_else(|e| e.into_inner()).push(part_ms);
        // The part after the one just fetched (the playlist's own hint is further on when behind).
        hint = parts.get(at + 1).map(|(p, _)| *p).or(next);
    }
    if behind {
        tally.behind.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn percentile(values: &mut [u64], p: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let at = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[at.min(values.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, n, secs] = &args[..] else {
        return Err("usage: viewers URL N SECS".into());
    };
    let n: usize = n.parse()?;
    let secs: u64 = secs.parse()?;
    let (path, _) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let base = path.trim_end_matches("live.m3u8").to_owned();
    let client = reqwest::Client::builder().pool_max_idle_per_host(2 * n).timeout(Duration::from_secs(20)).build()?;
    let tally = Arc::new(Tally::default());
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let url = format!("{path}?v={:032x}", (i as u128) + 1);
        let (client, base, tally) = (client.clone(), base.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = player(client, url, base, until, tally.clone()).await {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                // The whole chain: reqwest's own text names the URL, its sources the cause.
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                tally.first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(text);
            }
        }));
        // Players arrive over the first second, not all in one instant.
        if n > 1 {
            tokio::time::sleep(Duration::from_micros(1_000_000 / n as u64)).await;
        }
    }
    for t in tasks {
        t.await?;
    }
    let mut playlist = std::mem::take(&mut *tally.playlist_ms.lock().unwrap_or_else(|e| e.into_inner()));
    let mut part = std::mem::take(&mut *tally.part_ms.lock().unwrap_or_else(|e| e.into_inner()));
    println!(
        "players={n} behind={} stalled={} late_playlists={} slow_parts={} failed={} requests={} parts_mb={:.1} playlist_p50_ms={} \
         playlist_p99_ms={} part_p50_ms={} part_p99_ms={}",
        tally.behind.load(Ordering::Relaxed),
        tally.stalled.load(Ordering::Relaxed),
        tally.late_playlists.load(Ordering::Relaxed),
        tally.slow_parts.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        tally.requests.load(Ordering::Relaxed),
        tally.part_bytes.load(Ordering::Relaxed) as f64 / 1e6,
        percentile(&mut playlist, 0.5),
        percentile(&mut playlist, 0.99),
        percentile(&mut part, 0.5),
        percentile(&mut part, 0.99),
    );
    let examples = tally.slow_examples.lock().unwrap_or_else(|e| e.into_inner());
    if !examples.is_empty() {
        let list: Vec<String> = examples.iter().map(|(lasts, took)| format!("{took}/{lasts}")).collect();
        eprintln!("slow parts (fetch ms / part ms): {}", list.join(" "));
    }
    if let Some(e) = tally.first_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        eprintln!("first error: {e}");
    }
    Ok(())
}
