//! One ffmpeg per encoder connection: FLV in on stdin, fragmented MP4 out on stdout, H.264 and
//! AAC copied, never decoded. What comes out is read box by box ([`crate::fmp4`]) into the
//! stream's memory ([`crate::stream`]); every whole segment and init segment is also written to
//! storage by a task of its own, so a slow store never holds the stream up (a write that fails
//! is logged and the stream goes on: viewers are served from memory).

use crate::fmp4::{self, Piece};
use crate::stream::{CutSegment, LiveStream};
use crate::{Directory, StoredSegment};
use bytes::Bytes;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
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

/// The ffmpeg command: FLV from stdin, copied into fMP4 fragments of `fragment_secs` on stdout.
fn command(fragment_secs: f64) -> Command {
    let mut cmd = Command::new("ffmpeg");
    let micros = ((fragment_secs * 1e6) as u64).to_string();
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-fflags", "+nobuffer"])
        .args(["-probesize", "65536", "-analyzeduration", "1000000"])
        .args(["-f", "flv", "-i", "pipe:0", "-map", "0", "-c", "copy"])
        .args(["-f", "mp4", "-movflags", "cmaf+frag_keyframe+empty_moov+default_base_moof+skip_trailer"])
        .args(["-frag_duration", &micros, "-flush_packets", "1", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

impl Packager {
    /// Starts ffmpeg for one run of `stream`; whole segments go to `store` (a channel drained
    /// by [`store_task`]).
    pub fn start(
        stream: Arc<LiveStream>,
        fragment_secs: f64,
        store: mpsc::UnboundedSender<Stored>,
    ) -> Result<Packager, PackagerError> {
        let mut child: Child = command(fragment_secs).spawn().map_err(PackagerError::Spawn)?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
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
        let done = tokio::spawn(async move {
            let mut reader = fmp4::Reader::new(stdout);
            let result = async {
                while let Some(piece) = reader.next().await? {
                    match piece {
                        Piece::Init(init) => {
                            let (run, cut) = stream.begin_run(init.bytes.clone());
                            if let Some(cut) = cut {
                                let _ = store.send(Stored::Segment(cut));
                            }
                            let _ = store.send(Stored::Init { run, bytes: init.bytes });
                        }
                        Piece::Fragment(f) => {
                            if let Some(cut) = stream.push(f.bytes, f.duration, f.independent) {
                                let _ = store.send(Stored::Segment(cut));
                            }
                        }
                    }
                }
                Ok::<_, PackagerError>(())
            }
            .await;
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
