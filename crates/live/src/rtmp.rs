//! The RTMP listener: one task per connection, the protocol done by `rml_rtmp`'s sans-IO
//! handshake and server session, everything else here — the stream key checked through the
//! [`crate::Hub`] when the encoder asks to publish (before any media is kept), the codec and
//! picture-size checks, the bit-rate, duration and timestamp caps, read and setup timeouts —
//! and the accepted media re-muxed as FLV into the connection's [`Packager`].
//!
//! A connection that breaks a rule is closed with the reason logged and, once it publishes,
//! reported for the owner; other connections never notice.
//!
//! RTMPS ([`serve_tls`]) is the same connection behind a TLS handshake (rustls), done within the
//! setup timeout; a client that does not speak TLS there (plain RTMP) fails that handshake and is
//! closed before any RTMP is read.

use crate::packager::Packager;
use crate::{EndReason, Hub, Live, flv};
use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// The RTMP application encoders publish to: `rtmp://HOST/live/KEY`.
pub const APP: &str = "live";

static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

/// Bytes the RTMP reader cannot take: the connection is closed as a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the RTMP handshake is malformed")]
    Handshake,
    #[error("an RTMP chunk or message is malformed")]
    Chunk,
    #[error("the RTMP reader gave up on malformed input")]
    ReaderPanicked,
}

/// Runs one of `rml_rtmp`'s readers on bytes from the encoder. Some malformed input makes it
/// panic instead of returning an error (a chunk whose message length is shorter than what its
/// message already holds; an AMF0 command with fewer than three values — both found by the
/// `rtmp` fuzz target); caught here, it closes the connection like any other protocol error,
/// with the connection's clean-up (the live let go), instead of ending its task half-way.
fn guarded<T, E>(refusal: Malformed, read: impl FnOnce() -> Result<T, E>) -> Result<T, Malformed> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(_)) => Err(refusal),
        Err(_) => Err(Malformed::ReaderPanicked),
    }
}

/// Feeds handshake bytes from the encoder to `handshake`.
pub fn read_handshake(handshake: &mut Handshake, bytes: &[u8]) -> Result<HandshakeProcessResult, Malformed> {
    guarded(Malformed::Handshake, || handshake.process_bytes(bytes))
}

/// Feeds chunk-stream bytes from the encoder to `session`.
pub fn read_chunks(session: &mut ServerSession, bytes: &[u8]) -> Result<Vec<ServerSessionResult>, Malformed> {
    guarded(Malformed::Chunk, || session.handle_input(bytes))
}

/// Accepts encoders on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, hub: Arc<Hub>, shutdown: impl std::future::Future<Output = ()>) {
    accept(listener, hub, None, shutdown).await;
}

/// The TLS configuration for a new RTMPS connection (the caller may load its files again when
/// they change).
pub type TlsConfigs = Arc<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>;

/// Accepts encoders over TLS (`rtmps://`) on `listener` until `shutdown` resolves.
pub async fn serve_tls(
    listener: TcpListener,
    tls: TlsConfigs,
    hub: Arc<Hub>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    accept(listener, hub, Some(tls), shutdown).await;
}

async fn accept(
    listener: TcpListener,
    hub: Arc<Hub>,
    tls: Option<TlsConfigs>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let (hub, tls) = (hub.clone(), tls.clone());
                    tokio::spawn(async move {
                        let conn = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
                        let _ = socket.set_nodelay(true);
                        let reason = match tls {
                            None => Connection::new(hub, conn).run(socket).await,
                            Some(tls) => {
                                let acceptor = tokio_rustls::TlsAcceptor::from(tls());
                                let setup = hub.config.setup_timeout;
                                match tokio::time::timeout(setup, acceptor.accept(socket)).await {
                                    Ok(Ok(stream)) => Connection::new(hub, conn).run(stream).await,
                                    Ok(Err(e)) => {
                                        tracing::info!(rtmp.connection = conn, peer = %peer, error = %e, "rtmps handshake refused");
                                        EndReason::Protocol
                                    }
                                    Err(_) => EndReason::Stalled(setup.as_secs()),
                                }
                            }
                        };
                        tracing::info!(rtmp.connection = conn, peer = %peer, reason = %reason, "rtmp connection closed");
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rtmp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// What a connection publishes, once its key was accepted.
struct Publishing {
    live: Arc<Live>,
    key: String,
    /// `None` until the picture's size is known when the live is transcoded (the ladder
    /// depends on it); the tags before are kept in `pending`.
    packager: Option<Packager>,
    pending: Vec<Bytes>,
    pending_bytes: usize,
    caps: Caps,
}

/// The most bytes kept while waiting for the H.264 sequence header of a transcoded stream.
const PENDING_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The running checks on a publishing connection.
struct Caps {
    window_start: Instant,
    window_bytes: u64,
    first_ts: Option<u32>,
    last_audio: Option<u32>,
    last_video: Option<u32>,
}

impl Caps {
    fn new() -> Caps {
        Caps { window_start: Instant::now(), window_bytes: 0, first_ts: None, last_audio: None, last_video: None }
    }
}

struct Connection {
    hub: Arc<Hub>,
    id: u64,
    publishing: Option<Publishing>,
    /// Replies to write to the socket.
    out: Vec<u8>,
}

enum Step {
    Go,
    Stop(EndReason),
}

impl Connection {
    fn new(hub: Arc<Hub>, id: u64) -> Connection {
        Connection { hub, id, publishing: None, out: Vec::new() }
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut self, mut socket: S) -> EndReason {
        let reason = self.serve(&mut socket).await;
        let _ = socket.shutdown().await;
        drop(socket);
        if let Some(p) = self.publishing.take() {
            let finished = match p.packager {
                Some(packager) => packager.finish().await,
                None => Ok(()),
            };
            let reason = match finished {
                Err(e) if reason == EndReason::EncoderStopped || reason == EndReason::Disconnected => {
                    EndReason::Packager(e.to_string())
                }
                _ => reason.clone(),
            };
            self.hub.end_publish(&p.live, self.id, reason).await;
        }
        reason
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&mut self, socket: &mut S) -> EndReason {
        let hub = self.hub.clone();
        let config = &hub.config;
        let setup_deadline = tokio::time::Instant::now() + config.setup_timeout;
        let mut buf = vec![0u8; 64 * 1024];
        // The handshake.
        let mut handshake = Handshake::new(PeerType::Server);
        let leftover = loop {
            let n = match tokio::time::timeout_at(setup_deadline, socket.read(&mut buf)).await {
                Err(_) => return EndReason::Stalled(config.setup_timeout.as_secs()),
                Ok(Ok(0)) | Ok(Err(_)) => return EndReason::Disconnected,
                Ok(Ok(n)) => n,
            };
            match read_handshake(&mut handshake, &buf[..n]) {
                Err(_) => return EndReason::Protocol,
                Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                    if socket.write_all(&response_bytes).await.is_err() {
                        return EndReason::Disconnected;
                    }
                }
                Ok(HandshakeProcessResult::Completed { response_bytes, remaining_bytes }) => {
                    if socket.write_all(&response_bytes).await.is_err() {
                        return EndReason::Disconnected;
                    }
                    break remaining_bytes;
                }
            }
        };
        let Ok((mut session, initial)) = ServerSession::new(ServerSessionConfig::new()) else {
            return EndReason::Protocol;
        };
        if let Step::Stop(r) = self.results(&mut session, initial).await {
            return r;
        }
        let mut input = leftover;
        let mut stop = None;
        loop {
            if !input.is_empty() {
                let results = match read_chunks(&mut session, &input) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::info!(rtmp.connection = self.id, error = %e, "rtmp input refused");
                        return EndReason::Protocol;
                    }
                };
                if let Step::Stop(r) = self.results(&mut session, results).await {
                    let _ = socket.write_all(&self.out).await;
                    return r;
                }
            }
            if !self.out.is_empty() {
                if socket.write_all(&self.out).await.is_err() {
                    return EndReason::Disconnected;
                }
                self.out.clear();
            }
            if stop.is_none() {
                stop = self.publishing.as_ref().map(|p| p.live.stop_signal());
            }
            let deadline = match &self.publishing {
                Some(_) => tokio::time::Instant::now() + config.read_timeout,
                None => setup_deadline,
            };
            let stopped = async {
                match &mut stop {
                    Some(rx) => {
                        let _ = rx.wait_for(|s| *s).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let n = tokio::select! {
                _ = stopped => return EndReason::EndedByOwner,
                read = tokio::time::timeout_at(deadline, socket.read(&mut buf)) => match read {
                    Err(_) if self.publishing.is_some() => return EndReason::Stalled(config.read_timeout.as_secs()),
                    Err(_) => return EndReason::Stalled(config.setup_timeout.as_secs()),
                    Ok(Ok(0)) | Ok(Err(_)) => return EndReason::Disconnected,
                    Ok(Ok(n)) => n,
                },
            };
            input = buf[..n].to_vec();
        }
    }

    /// Handles a batch of session results (replies are queued in `self.out`).
    async fn results(&mut self, session: &mut ServerSession, results: Vec<ServerSessionResult>) -> Step {
        let mut queue = std::collections::VecDeque::from(results);
        while let Some(r) = queue.pop_front() {
            match r {
                ServerSessionResult::OutboundResponse(packet) => self.out.extend_from_slice(&packet.bytes),
                ServerSessionResult::RaisedEvent(event) => match self.event(session, event).await {
                    Ok(more) => queue.extend(more),
                    Err(reason) => return Step::Stop(reason),
                },
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Step::Go
    }

    async fn event(
        &mut self,
        session: &mut ServerSession,
        event: ServerSessionEvent,
    ) -> Result<Vec<ServerSessionResult>, EndReason> {
        match event {
            ServerSessionEvent::ConnectionRequested { request_id, app_name } => {
                if app_name.trim_end_matches('/') != APP {
                    let _ = session
                        .reject_request(request_id, "NetConnection.Connect.Rejected", "publish to rtmp://HOST/live/KEY")
                        .map(|r| self.queue_packets(r));
                    return Err(EndReason::Protocol);
                }
                session.accept_request(request_id).map_err(|_| EndReason::Protocol)
            }
            ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => {
                if self.publishing.is_some() {
                    return Err(EndReason::Protocol);
                }
                // Only the key itself: OBS and others may append `?query`.
                let key = stream_key.split('?').next().unwrap_or_default().to_owned();
                match self.hub.begin_publish(&key, self.id).await {
                    Err(refusal) => {
                        tracing::info!(rtmp.connection = self.id, reason = %refusal, "rtmp publish refused");
                        let _ = session
                            .reject_request(request_id, "NetStream.Publish.BadName", &refusal.to_string())
                            .map(|r| self.queue_packets(r));
                        Err(EndReason::Protocol)
                    }
                    Ok(live) => {
                        // A transcoded live's packager starts once the picture's size is known.
                        let started = match self.hub.transcodes() {
                            true => Ok(None),
                            false => live.store_sender().ok_or(EndReason::Shutdown).and_then(|store| {
                                Packager::start(live.stream.clone(), fragment_secs(&self.hub), store)
                                    .map(Some)
                                    .map_err(|e| EndReason::Packager(e.to_string()))
                            }),
                        };
                        let packager = match started {
                            Ok(p) => p,
                            Err(reason) => {
                                // Nothing was published: let the live wait for another try.
                                let hub = self.hub.clone();
                                hub.end_publish(&live, self.id, reason.clone()).await;
                                return Err(reason);
                            }
                        };
                        tracing::info!(rtmp.connection = self.id, live.id = %live.id, "rtmp publish accepted");
                        if let Some(packager) = &packager {
                            packager.feed(flv::header()).await;
                        }
                        self.publishing = Some(Publishing {
                            live,
                            key,
                            packager,
                            pending: Vec::new(),
                            pending_bytes: 0,
                            caps: Caps::new(),
                        });
                        session.accept_request(request_id).map_err(|_| EndReason::Protocol)
                    }
                }
            }
            ServerSessionEvent::PublishStreamFinished { .. } => Err(EndReason::EncoderStopped),
            ServerSessionEvent::VideoDataReceived { stream_key, data, timestamp, .. } => {
                self.media(flv::TagKind::Video, &stream_key, data, timestamp.value).await.map(|_| Vec::new())
            }
            ServerSessionEvent::AudioDataReceived { stream_key, data, timestamp, .. } => {
                self.media(flv::TagKind::Audio, &stream_key, data, timestamp.value).await.map(|_| Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    fn queue_packets(&mut self, results: Vec<ServerSessionResult>) {
        for r in results {
            if let ServerSessionResult::OutboundResponse(p) = r {
                self.out.extend_from_slice(&p.bytes);
            }
        }
    }

    /// One audio or video message of the published stream: checked, then fed to ffmpeg.
    async fn media(&mut self, kind: flv::TagKind, stream_key: &str, data: Bytes, ts: u32) -> Result<(), EndReason> {
        let hub = self.hub.clone();
        let config = &hub.config;
        let Some(p) = self.publishing.as_mut() else { return Ok(()) };
        if stream_key.split('?').next() != Some(p.key.as_str()) {
            return Ok(());
        }
        let mut picture_height = None;
        match kind {
            flv::TagKind::Video => {
                if let flv::Video::SequenceHeader { width, height } = flv::video(&data)? {
                    picture_height = Some(height);
                    let (long, short) = (width.max(height), width.min(height));
                    if long > config.max_long_side || short > config.max_short_side {
                        return Err(EndReason::Resolution {
                            width,
                            height,
                            long: config.max_long_side,
                            short: config.max_short_side,
                        });
                    }
                }
            }
            flv::TagKind::Audio => flv::audio(&data)?,
        }
        let caps = &mut p.caps;
        // Bit rate over a window.
        caps.window_bytes += data.len() as u64;
        let elapsed = caps.window_start.elapsed();
        let budget = config.max_bitrate_bps / 8 * config.bitrate_window.as_secs().max(1);
        if caps.window_bytes > budget {
            let secs = elapsed.as_secs_f64().max(0.5);
            let measured_kbps = (caps.window_bytes as f64 * 8.0 / secs / 1000.0) as u64;
            return Err(EndReason::Bitrate { measured_kbps, cap_kbps: config.max_bitrate_bps / 1000 });
        }
        if elapsed >= config.bitrate_window {
            caps.window_start = Instant::now();
            caps.window_bytes = 0;
        }
        // Timestamps: no jumps, and no longer than allowed.
        let jump = config.max_timestamp_jump.as_millis() as i64;
        let last = match kind {
            flv::TagKind::Audio => &mut caps.last_audio,
            flv::TagKind::Video => &mut caps.last_video,
        };
        if let Some(prev) = *last {
            let delta = i64::from(ts) - i64::from(prev);
            if delta.abs() > jump {
                return Err(EndReason::TimestampJump(delta));
            }
        }
        *last = Some(ts);
        let first = *caps.first_ts.get_or_insert(ts);
        let max_ms = config.max_duration.as_millis() as i64;
        // The live's whole time on air, across reconnects, not only this connection's.
        if i64::from(ts) - i64::from(first) > max_ms || p.live.on_air_for() > config.max_duration {
            return Err(EndReason::Duration(config.max_duration.as_secs()));
        }
        let Some(tag) = flv::tag(kind, ts, &data) else { return Err(EndReason::Protocol) };
        let stopped = || EndReason::Packager("ffmpeg stopped reading".into());
        if let Some(packager) = &p.packager {
            return if packager.feed(tag).await { Ok(()) } else { Err(stopped()) };
        }
        // Transcoded: the tags wait for the picture's size, which decides the ladder.
        p.pending_bytes += tag.len();
        p.pending.push(tag);
        let Some(height) = picture_height else {
            if p.pending_bytes > PENDING_MAX_BYTES {
                return Err(EndReason::Packager("the stream sent no H.264 sequence header to transcode".into()));
            }
            return Ok(());
        };
        let ladder = p.live.ladder(&config.ladder, height);
        let store = p.live.store_sender().ok_or(EndReason::Shutdown)?;
        let packager =
            Packager::start_ladder(&p.live, ladder, fragment_secs(&hub), config.packaging.segment_target, store)
                .map_err(|e| EndReason::Packager(e.to_string()))?;
        let mut fed = packager.feed(flv::header()).await;
        for tag in p.pending.drain(..) {
            fed = fed && packager.feed(tag).await;
        }
        p.pending_bytes = 0;
        p.packager = Some(packager);
        if fed { Ok(()) } else { Err(stopped()) }
    }
}

/// How long ffmpeg's fMP4 fragments (the parts) are asked to be: under the part target, since
/// a fragment also ends at every keyframe.
fn fragment_secs(hub: &Hub) -> f64 {
    hub.config.packaging.params.part_target * 0.6
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `chunks` after an old-style handshake (no digest), as the connection does.
    fn after_handshake(chunks: &[u8]) -> Result<Vec<ServerSessionResult>, Malformed> {
        let mut handshake = Handshake::new(PeerType::Server);
        let mut input = vec![3u8];
        input.extend_from_slice(&[b'0'; 2 * 1536]);
        input.extend_from_slice(chunks);
        let Ok(HandshakeProcessResult::Completed { remaining_bytes, .. }) = read_handshake(&mut handshake, &input)
        else {
            panic!("the handshake completes")
        };
        let (mut session, _) = ServerSession::new(ServerSessionConfig::new()).expect("a session");
        read_chunks(&mut session, &remaining_bytes)
    }

    /// Inputs the `rtmp` fuzz target found to panic `rml_rtmp` (0.8): refused, not a panic.
    #[test]
    fn malformed_chunks_are_refused() {
        // A chunk continuing a message with a shorter message length than already read
        // (an overflowing subtraction in the chunk reader).
        let shorter = [&[b'0'; 144][..], b"\x00\x00000000"].concat();
        // An AMF0 command message holding fewer than three values (a slice past its end).
        let short_command = b"0000\x00\x000\x140000\x0200000000000000000000000000000000000000000000000";
        for (name, chunks) in [("shorter", &shorter[..]), ("short command", &short_command[..])] {
            assert!(after_handshake(chunks).is_err(), "{name}");
        }
        assert!(after_handshake(b"").is_ok_and(|r| r.is_empty()));
    }
}
