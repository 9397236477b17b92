//! Private copies of the services a fault case breaks, so the shared PostgreSQL and Redis other
//! tests use are never touched: a PostgreSQL cluster of its own (initdb + pg_ctl on a free port
//! in a temporary folder), a `redis-server` on a free port, and a TCP relay in front of moto that
//! can cut S3 off and let it back.

use crate::cluster::{Killed, START_DEADLINE, free_port};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// PostgreSQL's programs, from the newest version installed under Debian's layout, else PATH.
fn pg_bin(program: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).filter(|p| p.join(program).exists()).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|d| d.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0));
    dirs.pop().map_or_else(|| PathBuf::from(program), |d| d.join(program))
}

/// Whether this process runs as root (PostgreSQL refuses to run as root).
fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program` run as the `postgres` account when this process is root, else as it is.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL cluster of its own, stopped and removed when dropped.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    /// initdb and start (as the `postgres` account when this process is root).
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let pg = PrivatePostgres { dir, port };
        if is_root() {
            let status = Command::new("chown").arg("-R").arg("postgres:postgres").arg(pg.dir.path()).status();
            assert!(status.is_ok_and(|s| s.success()), "chown the cluster's folder to postgres");
        }
        pg.run(&pg_bin("initdb"), &["-D", &pg.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        pg.start_again();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn run(&self, program: &Path, args: &[&str]) {
        let out =
            as_postgres(program).args(args).stdin(Stdio::null()).output().expect("PostgreSQL's programs are installed");
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again) on its port, waiting until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").to_string_lossy().into_owned();
        self.run(&pg_bin("pg_ctl"), &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
    }

    /// `pg_ctl stop -m fast`: every session is ended, the server shuts down cleanly.
    pub fn stop_fast(&self) {
        self.run(&pg_bin("pg_ctl"), &["-D", &self.data(), "-m", "fast", "-w", "-t", "60", "stop"]);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `redis-server` of its own on a free port, without persistence (a restart loses every key,
/// as a restarted cache node or a lost volume would).
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Killed>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let mut redis = PrivateRedis { port: free_port(), child: None };
        redis.start_again().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL: a crash) and waits until it is gone.
    pub fn stop(&mut self) {
        drop(self.child.take());
    }

    /// Starts it on the same port and waits until it answers PING.
    pub async fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required (scripts/install-deps.sh installs it)");
        self.child = Some(Killed(child));
        let deadline = Instant::now() + START_DEADLINE;
        while self.cli(&["PING"]) != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs one command with `redis-cli`; its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

/// A TCP relay on a port of its own to `target`: [`Relay::cut`] closes the port and every
/// connection through it (the service is unreachable: connections are refused), and
/// [`Relay::restore`] opens the same port again.
pub struct Relay {
    pub port: u16,
    target: SocketAddr,
    state: Arc<Mutex<RelayState>>,
}

/// The relay's tasks (its accept loop, one per connection) and whether it is cut: one lock, so a
/// connection accepted as the relay is cut is either dropped at once or aborted with the rest.
#[derive(Default)]
struct RelayState {
    cut: bool,
    tasks: Vec<AbortHandle>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let relay = Relay { port: free_port(), target, state: Arc::default() };
        relay.restore().await;
        relay
    }

    pub async fn restore(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) => assert!(Instant::now() < deadline, "the relay cannot listen again: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (target, state) = (self.target, self.state.clone());
        let mut relay = self.state.lock().expect("relay state");
        relay.cut = false;
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut state = state.lock().expect("relay state");
                if state.cut {
                    break; // drops the connection and the port
                }
                let relayed = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                state.tasks.push(relayed.abort_handle());
            }
        });
        relay.tasks.push(accept.abort_handle());
    }

    /// Closes the port and drops every connection through it.
    pub fn cut(&self) {
        let mut state = self.state.lock().expect("relay state");
        state.cut = true;
        for task in state.tasks.drain(..) {
            task.abort();
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}
