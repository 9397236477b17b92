//! One ffmpeg per encoder connection: FLV in on stdin, fragmented MP4 out on stdout, H.264 and
//! AAC copied, never decoded — or, with a transcoded ladder ([`crate::ladder`]), the video decoded
//! once and encoded once per rung, each rung's fMP4 on a pipe of its own (file descriptors 3, 4…
//! of the child, set up when it is spawned; no files). What comes out is read box by box ([`crate::fmp4`]) into the
//! stream's memory ([`crate::stream`]); every whole segment and init segment is also written to
//! storage by a task of its own, so a slow store never holds the stream up (a write that fails
//! is logged and the stream goes on: viewers are served from memory).

use crate::fmp4::{self, Piece};
use crate::ladder::{Ladder, Rung};
use crate::stream::{CutSegment, LiveStream};
use crate::{Directory, Live, StoredSegment};
use bytes::Bytes;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use turtlemen_storage::{Segment, Storage, StorageKey};
use uuid::Uuid;

/// `lives/{id}`: everything stored for one live.
pub fn live_key(live: Uuid) -> StorageKey {
    StorageKey::root(Segment::fixed("lives")).join(Segment::id(live))
}

/// `lives/{id}/seg-{msn}.m4s`.
pub fn segment_key(live: Uuid, msn: u64) -> StorageKey {
    live_key(live).join(Segment::numbered("seg", u32::try_from(msn).unwrap_or(u32::MAX), "m4s"))
}

/// `lives/{id}/init-{run}.mp4`.
pub fn init_key(live: Uuid, run: u32) -> StorageKey {
    live_key(live).join(Segment::numbered("init", run, "mp4"))
}

/// Why the packager stopped.
#[derive(Debug, thiserror::Error)]
pub enum PackagerError {
    #[error("ffmpeg could not be started: {0}")]
    Spawn(std::io::Error),
    #[error(transparent)]
    Output(#[from] fmp4::Fmp4Error),
    #[error("the packager's pipes could not be set up: {0}")]
    Pipes(std::io::Error),
}

/// What is written to storage, in order.
#[derive(Debug)]
pub enum Stored {
    Init { run: u32, bytes: Bytes },
    Segment(CutSegment),
}

/// A running packager: feed it FLV with [`Packager::feed`], then [`Packager::finish`].
pub struct Packager {
    input: mpsc::Sender<Bytes>,
    done: tokio::task::JoinHandle<Result<(), PackagerError>>,
}

/// ffmpeg reading FLV from stdin, its outputs to add.
fn base_command() -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-fflags", "+nobuffer"])
        .args(["-probesize", "65536", "-analyzeduration", "1000000"])
        .args(["-f", "flv", "-i", "pipe:0"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// The passthrough command: FLV from stdin, copied into fMP4 fragments of `fragment_secs` on
/// stdout.
fn command(fragment_secs: f64) -> Command {
    let mut cmd = base_command();
    let micros = ((fragment_secs * 1e6) as u64).to_string();
    cmd.args(["-map", "0", "-c", "copy"])
        .args(["-f", "mp4", "-movflags", "cmaf+frag_keyframe+empty_moov+default_base_moof+skip_trailer"])
        .args(["-frag_duration", &micros, "-flush_packets", "1", "pipe:1"])
        .stdout(Stdio::piped());
    cmd
}

/// Reads one fMP4 output into its stream until it ends.
async fn package(
    reader: Box<dyn AsyncRead + Send + Unpin>,
    output: Output,
    live: Option<Arc<Live>>,
) -> Result<(), PackagerError> {
    let mut reader = fmp4::Reader::new(reader);
    while let Some(piece) = reader.next().await? {
        match piece {
            Piece::Init(init) => {
                let (run, cut) = output.stream.begin_run(init.bytes.clone());
                if let Some(store) = &output.store {
                    if let Some(cut) = cut {
                        let _ = store.send(Stored::Segment(cut));
                    }
                    let _ = store.send(Stored::Init { run, bytes: init.bytes });
                }
                if let Some((ladder, i)) = &output.rung
                    && ladder.learn(*i, init.facts)
                    && let Some(live) = &live
                {
                    live.ladder_described(ladder.clone());
                }
            }
            Piece::Fragment(f) => {
                if let Some(cut) = output.stream.push(f.bytes, f.duration, f.independent)
                    && let Some(store) = &output.store
                {
                    let _ = store.send(Stored::Segment(cut));
                }
            }
        }
    }
    Ok(())
}

/// The first file descriptor of the child a ladder's rungs are written to (`pipe:3`…).
const FIRST_RUNG_FD: i32 = 3;

/// Where one of ffmpeg's fMP4 outputs goes.
struct Output {
    stream: Arc<LiveStream>,
    /// Whole segments and inits to store (the recorded output only).
    store: Option<mpsc::UnboundedSender<Stored>>,
    /// The ladder and this output's rung in it, told the init's facts.
    rung: Option<(Arc<Ladder>, usize)>,
}

impl Packager {
    /// Starts ffmpeg for one run of `stream`, copying the codecs; whole segments go to `store`
    /// (a channel drained by [`store_task`]).
    pub fn start(
        stream: Arc<LiveStream>,
        fragment_secs: f64,
        store: mpsc::UnboundedSender<Stored>,
    ) -> Result<Packager, PackagerError> {
        let mut child: Child = command(fragment_secs).spawn().map_err(PackagerError::Spawn)?;
        let Some(stdout) = child.stdout.take() else {
            return Err(PackagerError::Spawn(std::io::Error::other("ffmpeg's pipes are missing")));
        };
        let output = Output { stream, store: Some(store), rung: None };
        let reader: Box<dyn AsyncRead + Send + Unpin> = Box::new(stdout);
        Self::run(child, vec![(reader, output)], None)
    }

    /// Starts ffmpeg for one run of `live`'s `ladder`: every rung transcoded from the one
    /// decode, rung `i` read from the child's file descriptor 3 + `i`; the first rung's whole
    /// segments go to `store`. Once every rung's init was read, the live's multivariant
    /// playlist can be written ([`crate::Live::described_ladder`]).
    pub fn start_ladder(
        live: &Arc<Live>,
        ladder: Arc<Ladder>,
        fragment_secs: f64,
        keyframe_secs: f64,
        store: mpsc::UnboundedSender<Stored>,
    ) -> Result<Packager, PackagerError> {
        use command_fds::{CommandFdExt, FdMapping};
        let rungs: Vec<Rung> = ladder.renditions.iter().map(|r| r.rung).collect();
        let mut readers = Vec::new();
        let mut mappings = Vec::new();
        for i in 0..rungs.len() {
            let (reader, writer) = std::io::pipe().map_err(PackagerError::Pipes)?;
            let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))
                .map_err(PackagerError::Pipes)?;
            readers.push(reader);
            mappings.push(FdMapping { parent_fd: writer.into(), child_fd: FIRST_RUNG_FD + i as i32 });
        }
        // The command holds the write ends: it is dropped right after the spawn, so that
        // ffmpeg's exit is the end of every pipe.
        let child = {
            let mut cmd = base_command();
            cmd.args(crate::ladder::ffmpeg_outputs(&rungs, fragment_secs, keyframe_secs, FIRST_RUNG_FD))
                .stdout(Stdio::null())
                .fd_mappings(mappings)
                .map_err(|e| PackagerError::Pipes(std::io::Error::other(e)))?;
            cmd.spawn().map_err(PackagerError::Spawn)?
        };
        let mut store = Some(store);
        let outputs = readers
            .into_iter()
            .enumerate()
            .map(|(i, reader)| {
                let output = Output {
                    stream: ladder.renditions[i].stream.clone(),
                    store: store.take(),
                    rung: Some((ladder.clone(), i)),
                };
                (Box::new(reader) as Box<dyn AsyncRead + Send + Unpin>, output)
            })
            .collect();
        Self::run(child, outputs, Some(live.clone()))
    }

    /// Feeds stdin from a channel, logs stderr, and packages every output until ffmpeg ends.
    fn run(
        mut child: Child,
        outputs: Vec<(Box<dyn AsyncRead + Send + Unpin>, Output)>,
        live: Option<Arc<Live>>,
    ) -> Result<Packager, PackagerError> {
        let (Some(mut stdin), Some(stderr)) = (child.stdin.take(), child.stderr.take()) else {
            return Err(PackagerError::Spawn(std::io::Error::other("ffmpeg's pipes are missing")));
        };
        let (input, mut rx) = mpsc::channel::<Bytes>(256);
        tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                if stdin.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            // Dropping stdin closes it: ffmpeg flushes its last fragment and exits.
        });
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut tail = Vec::new();
            let _ = stderr.take(16 * 1024).read_to_end(&mut tail).await;
            if !tail.is_empty() {
                tracing::warn!(ffmpeg.stderr = %String::from_utf8_lossy(&tail), "live packager's ffmpeg said");
            }
        });
        let readers: Vec<_> =
            outputs.into_iter().map(|(reader, output)| tokio::spawn(package(reader, output, live.clone()))).collect();
        let done = tokio::spawn(async move {
            let mut result = Ok(());
            for reader in readers {
                let r =
                    reader.await.unwrap_or_else(|e| Err(PackagerError::Spawn(std::io::Error::other(e.to_string()))));
                if result.is_ok() {
                    result = r;
                }
            }
            let _ = child.wait().await;
            result
        });
        Ok(Packager { input, done })
    }

    /// Hands FLV bytes to ffmpeg (waits while ffmpeg is behind); false once it has stopped.
    pub async fn feed(&self, bytes: Bytes) -> bool {
        self.input.send(bytes).await.is_ok()
    }

    /// Closes ffmpeg's input and waits until everything it wrote has been packaged.
    pub async fn finish(self) -> Result<(), PackagerError> {
        drop(self.input);
        match self.done.await {
            Ok(r) => r,
            Err(e) => Err(PackagerError::Spawn(std::io::Error::other(e.to_string()))),
        }
    }
}

/// Writes what the packagers of `live` cut to storage, in order, until the channel closes,
/// telling `directory` of each whole segment once it is written; returns how many were.
pub async fn store_task(
    storage: Storage,
    directory: Arc<dyn Directory>,
    live: Uuid,
    mut rx: mpsc::UnboundedReceiver<Stored>,
) -> usize {
    let mut written = 0;
    while let Some(item) = rx.recv().await {
        let (key, bytes, segment) = match item {
            Stored::Init { run, bytes } => (init_key(live, run), bytes, None),
            Stored::Segment(s) => {
                let segment = StoredSegment { msn: s.msn, run: s.run, duration: s.duration };
                (segment_key(live, s.msn), s.bytes, Some(segment))
            }
        };
        match storage.put_bytes(&key, bytes).await {
            Err(e) => {
                tracing::warn!(live.id = %live, storage.key = %key, error = %e, "a live segment could not be stored");
            }
            Ok(()) => {
                if let Some(segment) = segment {
                    written += 1;
                    directory.stored(live, segment).await;
                }
            }
        }
    }
    written
}
