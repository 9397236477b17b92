//! Idle and slow connections against a server, for `benches/idle_conns.sh`: opens N
//! connections of one kind, keeps N open (a connection the server closes is opened again, as a
//! patient attacker would), and reports what they cost the server and how long it kept them.
//!
//! Kinds:
//! - `silent`: connects and never sends a byte;
//! - `slow`: sends a request head one byte every `INTERVAL_MS` (slowloris);
//! - `keepalive`: sends one whole request, reads the answer, then sits idle on the connection;
//! - `tls`: starts a TLS handshake (the first bytes of a ClientHello) and stops.
//!
//! Given the server's process id, it reads the server's resident memory (`VmRSS`) before the
//! connections and once they are all open, and prints the difference per connection. At the end
//! it prints how long the server kept the connections it closed (median and largest) and how
//! many were still open, so a server with no limit shows as "kept ≥ HOLD".
//!
//! ```text
//! idle_conns ADDR KIND N HOLD_SECS [SERVER_PID] [INTERVAL_MS]
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Silent,
    Slow,
    KeepAlive,
    Tls,
}

/// What every connection task shares.
struct Shared {
    addr: SocketAddr,
    kind: Kind,
    interval: Duration,
    /// Open now.
    open: AtomicUsize,
    /// Connections that could not be made.
    failed: AtomicUsize,
    /// Connections still open when the hold ended.
    held: AtomicUsize,
    /// How long the server kept each connection it closed.
    kept: Mutex<Vec<Duration>>,
    /// Bounds the connects in flight, so the listen backlog is not flooded.
    connecting: Semaphore,
}

/// The server's resident memory in bytes, from `/proc/PID/status`.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The opening of a TLS 1.2+ ClientHello record: a handshake record header announcing 512
/// bytes, and the start of the handshake message. The rest never comes.
const TLS_START: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];

/// One connection, then the next when the server closes it, until `until`.
async fn keep_one(shared: Arc<Shared>, until: Instant) {
    while Instant::now() < until {
        let permit = shared.connecting.acquire().await;
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(shared.addr)).await;
        drop(permit);
        let Ok(Ok(mut stream)) = stream else {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        shared.open.fetch_add(1, Ordering::Relaxed);
        let closed = tokio::time::timeout_at(until.into(), hold(&mut stream, &shared)).await;
        shared.open.fetch_sub(1, Ordering::Relaxed);
        match closed {
            Ok(since) => shared.kept.lock().await.push(since.elapsed()),
            Err(_) => {
                shared.held.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Plays the connection's kind until the server closes it; when the idle wait began.
async fn hold(stream: &mut TcpStream, shared: &Shared) -> Instant {
    let mut buf = vec![0u8; 4096];
    match shared.kind {
        Kind::Silent => {}
        Kind::Tls => {
            if stream.write_all(TLS_START).await.is_err() {
                return Instant::now();
            }
        }
        Kind::KeepAlive => {
            let req = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", shared.addr);
            if stream.write_all(req.as_bytes()).await.is_err() {
                return Instant::now();
            }
            // The answer: a head and a short body, read until a pause.
            let mut got = Vec::new();
            loop {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {
                        got.extend_from_slice(&buf[..n]);
                        if got.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    _ => return Instant::now(),
                }
            }
        }
        Kind::Slow => {
            let since = Instant::now();
            let head = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Slow: ", shared.addr);
            let mut bytes = head.bytes().chain(std::iter::repeat(b'a'));
            loop {
                let Some(b) = bytes.next() else { return since };
                if stream.write_all(&[b]).await.is_err() {
                    return since;
                }
                // The server may answer (408) or close between bytes.
                match tokio::time::timeout(shared.interval, stream.read(&mut buf)).await {
                    Err(_) => {}
                    Ok(_) => return since,
                }
            }
        }
    }
    let since = Instant::now();
    // Idle: whatever the server sends, until it closes.
    loop {
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => {}
            _ => return since,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: idle_conns ADDR silent|slow|keepalive|tls N HOLD_SECS [SERVER_PID] [INTERVAL_MS]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[0].parse()?;
    let kind = match args[1].as_str() {
        "silent" => Kind::Silent,
        "slow" => Kind::Slow,
        "keepalive" => Kind::KeepAlive,
        "tls" => Kind::Tls,
        other => return Err(format!("unknown kind {other}").into()),
    };
    let n: usize = args[2].parse()?;
    let hold_for = Duration::from_secs(args[3].parse()?);
    let pid: Option<u32> = args.get(4).map(|p| p.parse()).transpose()?;
    let interval = Duration::from_millis(args.get(5).map(|p| p.parse()).transpose()?.unwrap_or(2000));

    let shared = Arc::new(Shared {
        addr,
        kind,
        interval,
        open: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        held: AtomicUsize::new(0),
        kept: Mutex::new(Vec::new()),
        connecting: Semaphore::new(128),
    });
    let before = pid.and_then(rss);
    let started = Instant::now();
    let until = started + hold_for;
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(keep_one(shared.clone(), until))).collect();
    // Wait until all are open (or the hold is half over), then let the server settle.
    while shared.open.load(Ordering::Relaxed) < n && started.elapsed() < hold_for / 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opened = shared.open.load(Ordering::Relaxed);
    println!("open {opened} of {n} after {} ms", started.elapsed().as_millis());
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let (Some(before), Some(after)) = (before, pid.and_then(rss)) {
        let open = shared.open.load(Ordering::Relaxed).max(1);
        let per = (after as i64 - before as i64) / open as i64;
        println!("rss before {before} after {after} open {open} bytes_per_conn {per}");
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut kept = shared.kept.lock().await.clone();
    kept.sort();
    println!(
        "closed by the server {} (kept median {} ms, max {} ms), still open at {} s: {}, connects failed {}",
        kept.len(),
        percentile(&kept, 0.5).as_millis(),
        kept.last().copied().unwrap_or_default().as_millis(),
        hold_for.as_secs(),
        shared.held.load(Ordering::Relaxed),
        shared.failed.load(Ordering::Relaxed),
    );
    Ok(())
}
