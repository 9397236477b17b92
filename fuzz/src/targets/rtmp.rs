//! The live ingest's RTMP reader, as `turtlemen_live::rtmp` drives it: the handshake, then the
//! chunk stream through `rml_rtmp`'s server session (`read_handshake`, `read_chunks`), with
//! connect and publish accepted and every audio and video message checked by
//! `turtlemen_live::flv`.
//!
//! Holds: no input makes the reader panic past those two (a panic would end the connection's
//! task without its clean-up: the live would stay held); a refusal is a typed error. `rml_rtmp`
//! itself panics on some inputs, which `read_*` catch: the driver runs this target without
//! AFL++'s abort-on-panic hook, so only a panic that escapes counts.

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use std::collections::VecDeque;
use turtlemen_live::flv;
use turtlemen_live::rtmp::{read_chunks, read_handshake};

pub fn run(data: &[u8]) {
    let mut handshake = Handshake::new(PeerType::Server);
    // The reader gets bytes in reads of any size; the first byte says how this input is cut.
    let Some((&cut, data)) = data.split_first() else { return };
    let step = usize::from(cut).max(1) * 64;
    let mut chunks = data.chunks(step);
    let mut leftover = loop {
        let Some(chunk) = chunks.next() else { return };
        match read_handshake(&mut handshake, chunk) {
            Err(_) => return,
            Ok(HandshakeProcessResult::InProgress { .. }) => {}
            Ok(HandshakeProcessResult::Completed { remaining_bytes, .. }) => break remaining_bytes,
        }
    };
    let Ok((mut session, _)) = ServerSession::new(ServerSessionConfig::new()) else { return };
    loop {
        if !leftover.is_empty() {
            let Ok(results) = read_chunks(&mut session, &leftover) else { return };
            if !events(&mut session, results) {
                return;
            }
        }
        let Some(chunk) = chunks.next() else { return };
        leftover = chunk.to_vec();
    }
}

/// Handles a batch of results as the live ingest does; false when it would close.
fn events(session: &mut ServerSession, results: Vec<ServerSessionResult>) -> bool {
    let mut queue = VecDeque::from(results);
    while let Some(result) = queue.pop_front() {
        let ServerSessionResult::RaisedEvent(event) = result else { continue };
        let more = match event {
            ServerSessionEvent::ConnectionRequested { request_id, app_name } => {
                if app_name.trim_end_matches('/') != turtlemen_live::rtmp::APP {
                    return false;
                }
                session.accept_request(request_id)
            }
            ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => {
                let _key = stream_key.split('?').next().unwrap_or_default();
                session.accept_request(request_id)
            }
            ServerSessionEvent::PublishStreamFinished { .. } => return false,
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                if flv::video(&data).is_err() || flv::tag(flv::TagKind::Video, timestamp.value, &data).is_none() {
                    return false;
                }
                Ok(Vec::new())
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                if flv::audio(&data).is_err() || flv::tag(flv::TagKind::Audio, timestamp.value, &data).is_none() {
                    return false;
                }
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        };
        match more {
            Ok(more) => queue.extend(more),
            Err(_) => return false,
        }
    }
    true
}
