//! Live video: an RTMP ingest server, one ffmpeg per stream copying H.264/AAC into short fMP4
//! fragments (or transcoding them to a ladder of rungs), and Low-Latency HLS packaged from them
//! in memory.
//!
//! [`Hub`] is the process's set of lives being published or waiting out their grace period.
//! The database side is reached only through [`Directory`], which the API server implements: a
//! stream key is checked there (against its hash) when the encoder asks to publish, before any
//! media is kept, and the hub reports there each whole segment stored (so the recording is known
//! outside this process, even if it dies), when a connection drops and when a live ends. This
//! crate knows nothing of HTTP or SQL; the API server serves [`stream::LiveStream`]'s playlists
//! and parts.
//!
//! Modules: [`rtmp`] (the listener and one task per connection, with the caps), [`flv`] (the
//! FLV re-mux and codec checks), [`packager`] (ffmpeg and storage writes), [`ladder`] (the
//! transcoded rungs and their multivariant playlist), [`fmp4`] (reading ffmpeg's output),
//! [`stream`] (segments and parts in memory, blocking waits), [`playlist`] (the playlist text).

pub mod flv;
pub mod fmp4;
pub mod ladder;
pub mod packager;
pub mod playlist;
pub mod rtmp;
pub mod stream;

use ladder::{Ladder, Rung};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use stream::{LiveStream, Packaging};
use tokio::sync::{mpsc, watch};
use turtlemen_storage::Storage;
use uuid::Uuid;

/// The ingest's limits and timings (from the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    /// Highest average bit rate of audio and video, over [`IngestConfig::bitrate_window`].
    pub max_bitrate_bps: u64,
    pub bitrate_window: Duration,
    /// Longest side of the picture, in pixels.
    pub max_long_side: u32,
    /// Shortest side of the picture, in pixels.
    pub max_short_side: u32,
    /// Longest live, counted from its first accepted connection across reconnects.
    pub max_duration: Duration,
    /// A connection that sends nothing for this long is closed.
    pub read_timeout: Duration,
    /// Time from TCP connect to an accepted publish.
    pub setup_timeout: Duration,
    /// A dropped encoder that reconnects within this continues the same live.
    pub grace: Duration,
    /// Media timestamps moving by more than this between two messages end the connection.
    pub max_timestamp_jump: Duration,
    pub packaging: Packaging,
    /// The transcoded ladder, highest rung first; empty: the codecs are copied.
    pub ladder: Vec<Rung>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_bitrate_bps: 12_000_000,
            bitrate_window: Duration::from_secs(5),
            max_long_side: 1920,
            max_short_side: 1080,
            max_duration: Duration::from_secs(12 * 3600),
            read_timeout: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(30),
            max_timestamp_jump: Duration::from_secs(10),
            packaging: Packaging::default(),
            ladder: Vec::new(),
        }
    }
}

/// Why a publish request is refused (said to the encoder, logged; no media was kept).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no live has this stream key (wrong, regenerated or revoked)")]
    UnknownKey,
    #[error("this live is already being published")]
    AlreadyLive,
    #[error("this live has ended")]
    Ended,
    #[error("the live cannot be checked now: {0}")]
    Unavailable(String),
    #[error("the streamer already has {0} lives on air, the most allowed at once")]
    UserLimit(u64),
    #[error("this instance already carries {0} lives, the most it allows at once")]
    InstanceLimit(u64),
}

/// Why a connection, or a live, ended — the text the owner sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndReason {
    #[error("the encoder stopped the stream")]
    EncoderStopped,
    #[error("the encoder disconnected")]
    Disconnected,
    #[error("the encoder sent nothing for {0} seconds")]
    Stalled(u64),
    #[error("the encoder sent data that is not RTMP")]
    Protocol,
    #[error("{0}")]
    Codec(#[from] flv::CodecError),
    #[error("the picture is {width}×{height}, more than the {long}×{short} allowed")]
    Resolution { width: u32, height: u32, long: u32, short: u32 },
    #[error("the stream sent {measured_kbps} kb/s, more than the {cap_kbps} kb/s allowed")]
    Bitrate { measured_kbps: u64, cap_kbps: u64 },
    #[error("the stream reached the longest duration allowed ({0} seconds)")]
    Duration(u64),
    #[error("the stream's timestamps jumped by {0} ms")]
    TimestampJump(i64),
    #[error("the packager failed: {0}")]
    Packager(String),
    #[error("the owner ended the live")]
    EndedByOwner,
    /// The grace period passed with no reconnect; `cause` is why the last connection ended, so
    /// the owner still reads it once the live is over.
    #[error("the encoder did not come back within {secs} seconds (the last connection ended: {cause})")]
    GraceExpired { secs: u64, cause: Box<EndReason> },
    #[error("the server is shutting down")]
    Shutdown,
    #[error("the server packaging this live stopped")]
    PackagerLost,
}

/// A whole segment written to storage at [`packager::segment_key`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredSegment {
    pub msn: u64,
    /// The encoder connection it came from; its init is at [`packager::init_key`].
    pub run: u32,
    pub duration: f64,
}

/// The database side of lives, implemented by the API server.
#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// The live `stream_key` publishes to, marked live and connected — if the key names a live
    /// that has not ended and no other encoder publishes to it.
    async fn claim(&self, stream_key: &str) -> Result<Uuid, Refusal>;
    /// The encoder's connection ended (`reason`); the live waits out its grace period.
    async fn dropped(&self, live: Uuid, reason: &EndReason);
    /// A whole segment of `live` is in storage now (called in segment order, right after each
    /// write): the recording, every run of it, is what these calls named.
    async fn stored(&self, live: Uuid, segment: StoredSegment);
    /// The live is over; every segment stored was reported by [`Directory::stored`] before.
    async fn ended(&self, live: Uuid, reason: &EndReason);
    /// The live's approximate viewer count changed (reported every [`VIEWERS_EVERY`] at most).
    async fn viewers(&self, live: Uuid, count: u64);
    /// This process still holds `live` (said every [`HELD_EVERY`]), so no janitor takes it for
    /// the live of a crashed process.
    async fn held(&self, live: Uuid);
}

/// How often the hub reports changed viewer counts to the [`Directory`].
pub const VIEWERS_EVERY: Duration = Duration::from_secs(2);
/// How often the hub says which lives it holds.
pub const HELD_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connection `conn` publishes.
    Publishing {
        conn: u64,
    },
    /// No encoder; waiting for one until the grace timer of this generation fires.
    Dropped {
        generation: u64,
    },
    Ended,
}

/// One live known to this process.
pub struct Live {
    pub id: Uuid,
    /// The stream recorded to storage: the passthrough one, or the ladder's highest rung.
    pub stream: Arc<LiveStream>,
    /// With a ladder: its rungs, decided from the first connection's picture.
    ladder: OnceLock<Arc<Ladder>>,
    /// The ladder once every rung's init was read (its multivariant playlist can be written).
    described: watch::Sender<Option<Arc<Ladder>>>,
    phase: Mutex<Phase>,
    /// Set to ask the publishing connection to stop (the owner ended the live).
    stop: watch::Sender<bool>,
    store: Mutex<Option<mpsc::UnboundedSender<packager::Stored>>>,
    stored: Mutex<Option<tokio::task::JoinHandle<usize>>>,
    generation: std::sync::atomic::AtomicU64,
    /// When its first connection here was accepted: the duration cap counts from it, across
    /// reconnects.
    started: std::time::Instant,
}

impl Live {
    /// How long the live has been on air in this process (all its connections and the gaps).
    pub fn on_air_for(&self) -> Duration {
        self.started.elapsed()
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the packager sends what storage should keep.
    pub fn store_sender(&self) -> Option<mpsc::UnboundedSender<packager::Stored>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Resolves when the live should stop being published.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// The live's ladder: decided now from `rungs` for a picture `source_height` pixels high
    /// ([`ladder::pick`]) on the first call, the same one on every later call (reconnects).
    pub fn ladder(&self, rungs: &[Rung], source_height: u32) -> Arc<Ladder> {
        self.ladder
            .get_or_init(|| {
                Arc::new(Ladder::new(&ladder::pick(rungs, source_height), self.stream.clone(), self.stream.packaging))
            })
            .clone()
    }

    /// The live's ladder if it was decided (a transcoded live whose picture was seen).
    pub fn ladder_now(&self) -> Option<Arc<Ladder>> {
        self.ladder.get().cloned()
    }

    /// Every rung's init of `ladder` was read.
    pub(crate) fn ladder_described(&self, ladder: Arc<Ladder>) {
        self.described.send_if_modified(|d| {
            let new = d.is_none();
            d.get_or_insert(ladder);
            new
        });
    }

    /// The live's ladder once it can be listed in a multivariant playlist, waiting for that at
    /// most `bound` (`None`: not in time, or the live has no ladder).
    pub async fn described_ladder(&self, bound: Duration) -> Option<Arc<Ladder>> {
        let mut rx = self.described.subscribe();
        let ready = tokio::time::timeout(bound, rx.wait_for(Option::is_some)).await;
        match ready {
            Ok(Ok(found)) => found.clone(),
            _ => None,
        }
    }
}

/// The lives this process ingests and packages.
pub struct Hub {
    pub config: IngestConfig,
    storage: Storage,
    directory: Arc<dyn Directory>,
    lives: Mutex<HashMap<Uuid, Arc<Live>>>,
    /// Publishes being claimed now: the directory has marked each live on air (or is about to)
    /// before this hub lists it.
    claiming: watch::Sender<usize>,
}

/// Counts one claim in flight in [`Hub::claiming`] until dropped (also when the publish is
/// abandoned midway).
struct Claiming<'a>(&'a watch::Sender<usize>);

impl<'a> Claiming<'a> {
    fn new(count: &'a watch::Sender<usize>) -> Self {
        count.send_modify(|n| *n += 1);
        Claiming(count)
    }
}

impl Drop for Claiming<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Hub {
    /// A hub, and its task reporting viewer counts (it ends with the hub); call within a Tokio
    /// runtime.
    pub fn new(config: IngestConfig, storage: Storage, directory: Arc<dyn Directory>) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            config,
            storage,
            directory,
            lives: Mutex::new(HashMap::new()),
            claiming: watch::channel(0).0,
        });
        tokio::spawn(report_viewers(Arc::downgrade(&hub)));
        hub
    }

    fn lives(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<Live>>> {
        self.lives.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The packaged stream of `live`, if this process has it.
    pub fn stream(&self, live: Uuid) -> Option<Arc<LiveStream>> {
        self.lives().get(&live).map(|l| l.stream.clone())
    }

    /// `live`, if this process has it.
    pub fn live(&self, live: Uuid) -> Option<Arc<Live>> {
        self.lives().get(&live).cloned()
    }

    /// `live`, if this process has it, or gets it within `bound` from a publish being claimed
    /// here now. The directory marks a live on air before the hub lists it, so a player that read
    /// the new state in between waits for the hub here rather than finding nothing.
    pub async fn live_soon(&self, live: Uuid, bound: Duration) -> Option<Arc<Live>> {
        // The common case (every part a player fetches) takes no timer and no subscription.
        if let Some(l) = self.live(live) {
            return Some(l);
        }
        let mut claiming = self.claiming.subscribe();
        let found = tokio::time::timeout(bound, async {
            loop {
                if let Some(l) = self.live(live) {
                    return Some(l);
                }
                if *claiming.borrow_and_update() == 0 {
                    // A claim lists its live before it stops counting: look once more.
                    return self.live(live);
                }
                if claiming.changed().await.is_err() {
                    return None;
                }
            }
        });
        found.await.ok().flatten()
    }

    /// Whether this process transcodes its lives to a ladder (else it copies the codecs).
    pub fn transcodes(&self) -> bool {
        !self.config.ladder.is_empty()
    }

    /// Whether an encoder publishes to `live` in this process now.
    pub fn is_publishing(&self, live: Uuid) -> bool {
        self.lives().get(&live).is_some_and(|l| matches!(*l.phase(), Phase::Publishing { .. }))
    }

    /// Connection `conn` asks to publish with `key`: the live it may publish to, continuing
    /// one waiting out its grace period in this process.
    pub async fn begin_publish(&self, key: &str, conn: u64) -> Result<Arc<Live>, Refusal> {
        let _claiming = Claiming::new(&self.claiming);
        let id = self.directory.claim(key).await?;
        let mut lives = self.lives();
        if let Some(live) = lives.get(&id) {
            let mut phase = live.phase();
            return match *phase {
                Phase::Publishing { .. } => Err(Refusal::AlreadyLive),
                Phase::Ended => Err(Refusal::Ended),
                Phase::Dropped { .. } => {
                    *phase = Phase::Publishing { conn };
                    live.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(live.clone())
                }
            };
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let stored = tokio::spawn(packager::store_task(self.storage.clone(), self.directory.clone(), id, rx));
        let live = Arc::new(Live {
            id,
            stream: Arc::new(LiveStream::new(self.config.packaging)),
            ladder: OnceLock::new(),
            described: watch::channel(None).0,
            phase: Mutex::new(Phase::Publishing { conn }),
            stop: watch::channel(false).0,
            store: Mutex::new(Some(tx)),
            stored: Mutex::new(Some(stored)),
            generation: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
        });
        lives.insert(id, live.clone());
        Ok(live)
    }

    /// Connection `conn` stopped publishing `live` (its packager already finished): the live
    /// waits for a reconnect for the grace period, or ends now if its end was asked for or it
    /// reached the longest duration (a reconnect would not give it more time).
    pub async fn end_publish(self: &Arc<Self>, live: &Arc<Live>, conn: u64, reason: EndReason) {
        let generation = {
            let mut phase = live.phase();
            if *phase != (Phase::Publishing { conn }) {
                return;
            }
            let generation = live.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            *phase = Phase::Dropped { generation };
            generation
        };
        if *live.stop.borrow() || matches!(reason, EndReason::Duration(_)) {
            self.finish(live, reason).await;
            return;
        }
        tracing::info!(live.id = %live.id, reason = %reason, "live encoder dropped; waiting for a reconnect");
        self.directory.dropped(live.id, &reason).await;
        let hub = self.clone();
        let live = live.clone();
        let grace = self.config.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let still = *live.phase() == Phase::Dropped { generation };
            if still {
                let reason = EndReason::GraceExpired { secs: grace.as_secs(), cause: Box::new(reason) };
                hub.finish(&live, reason).await;
            }
        });
    }

    /// Ends `live` (the owner asked): a publishing encoder is disconnected, a waiting live
    /// ends at once. False when this process does not have it.
    pub async fn end(self: &Arc<Self>, live: Uuid) -> bool {
        let Some(live) = self.lives().get(&live).cloned() else { return false };
        let _ = live.stop.send(true);
        let waiting = matches!(*live.phase(), Phase::Dropped { .. });
        if waiting {
            self.finish(&live, EndReason::EndedByOwner).await;
        }
        true
    }

    /// The live is over: the last segment is cut and stored, the directory told, and the
    /// stream kept for a minute so players see the end of the playlist.
    async fn finish(self: &Arc<Self>, live: &Arc<Live>, reason: EndReason) {
        {
            let mut phase = live.phase();
            if *phase == Phase::Ended {
                return;
            }
            *phase = Phase::Ended;
        }
        let _ = live.stop.send(true);
        // The other rungs end with it (only the recorded stream's last segment is stored).
        if let Some(ladder) = live.ladder.get() {
            for r in ladder.renditions.iter().skip(1) {
                let _ = r.stream.end();
            }
        }
        if let Some(cut) = live.stream.end()
            && let Some(tx) = live.store_sender()
        {
            let _ = tx.send(packager::Stored::Segment(cut));
        }
        live.store.lock().unwrap_or_else(|e| e.into_inner()).take();
        let task = live.stored.lock().unwrap_or_else(|e| e.into_inner()).take();
        let segments = match task {
            Some(t) => t.await.unwrap_or_default(),
            None => 0,
        };
        tracing::info!(live.id = %live.id, reason = %reason, segments, "live ended");
        self.directory.ended(live.id, &reason).await;
        let hub = self.clone();
        let id = live.id;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            hub.lives().remove(&id);
        });
    }
}

/// Every [`VIEWERS_EVERY`], tells the directory the viewer counts that changed, and every
/// [`HELD_EVERY`] the lives held, until the hub is gone.
async fn report_viewers(hub: std::sync::Weak<Hub>) {
    let mut reported: HashMap<Uuid, u64> = HashMap::new();
    let mut tick = tokio::time::interval(VIEWERS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_held = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        if last_held.elapsed() >= HELD_EVERY {
            last_held = tokio::time::Instant::now();
            let held: Vec<Uuid> = hub.lives().values().filter(|l| *l.phase() != Phase::Ended).map(|l| l.id).collect();
            for id in held {
                hub.directory.held(id).await;
            }
        }
        let counts: Vec<(Uuid, u64)> = hub
            .lives()
            .values()
            .filter(|l| *l.phase() != Phase::Ended)
            .map(|l| (l.id, l.stream.viewers(stream::VIEWER_WINDOW)))
            .collect();
        reported.retain(|id, _| counts.iter().any(|(live, _)| live == id));
        for (id, count) in counts {
            // A live starts at 0 in the directory: only changes from there are told.
            if reported.insert(id, count).unwrap_or(0) != count {
                hub.directory.viewers(id, count).await;
            }
        }
    }
}
