//! Writes the `rtmp` target's seeds into `fuzz/corpus/rtmp/`: what an encoder sends, recorded
//! from `rml_rtmp`'s client session talking to its server session (connect to `live`, publish a
//! key, then an AVC sequence header, a keyframe and AAC audio), after an old-style handshake.
//!
//! `cargo run -p turtlemen-fuzz --example rtmp_seeds`

use bytes::Bytes;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType, ServerSession,
    ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use rml_rtmp::time::RtmpTimestamp;
use std::collections::VecDeque;
use std::path::Path;

/// The AVC sequence header of a 640×360 stream, as ffmpeg's libx264 writes it.
const SEQUENCE_HEADER: &[u8] = &[
    0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9,
    0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d,
    0x96, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00,
];

/// Passes packets both ways until neither side has more; returns what the client sent and the
/// client's events.
fn exchange(
    client: &mut ClientSession,
    server: &mut ServerSession,
    first: Vec<ClientSessionResult>,
) -> (Vec<u8>, Vec<ClientSessionEvent>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    let mut to_server: Vec<u8> = Vec::new();
    let mut pending = first;
    loop {
        for r in pending.drain(..) {
            match r {
                ClientSessionResult::OutboundResponse(p) => to_server.extend_from_slice(&p.bytes),
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        if to_server.is_empty() {
            return (sent, events);
        }
        sent.extend_from_slice(&to_server);
        let mut queue = VecDeque::from(server.handle_input(&to_server).expect("the server reads the client"));
        to_server.clear();
        let mut to_client = Vec::new();
        while let Some(r) = queue.pop_front() {
            match r {
                ServerSessionResult::OutboundResponse(p) => to_client.extend_from_slice(&p.bytes),
                ServerSessionResult::RaisedEvent(
                    ServerSessionEvent::ConnectionRequested { request_id, .. }
                    | ServerSessionEvent::PublishStreamRequested { request_id, .. },
                ) => queue.extend(server.accept_request(request_id).expect("accepted")),
                _ => {}
            }
        }
        if !to_client.is_empty() {
            pending = client.handle_input(&to_client).expect("the client reads the server");
        }
    }
}

fn main() {
    let (mut client, initial) = ClientSession::new(ClientSessionConfig::new()).expect("a client session");
    let (mut server, server_initial) = ServerSession::new(ServerSessionConfig::new()).expect("a server session");
    let mut greeting = Vec::new();
    for r in server_initial {
        if let ServerSessionResult::OutboundResponse(p) = r {
            greeting.extend_from_slice(&p.bytes);
        }
    }
    let mut first = initial;
    first.extend(client.handle_input(&greeting).expect("the client reads the server's greeting"));
    first.push(client.request_connection("live".into()).expect("connect"));
    let (connect, events) = exchange(&mut client, &mut server, first);
    assert!(events.iter().any(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted)), "{events:?}");
    let publish = client.request_publishing("stream-key?obs=1".into(), PublishRequestType::Live).expect("publish");
    let (publish, events) = exchange(&mut client, &mut server, vec![publish]);
    assert!(events.iter().any(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted)), "{events:?}");
    let media = [
        client.publish_video_data(Bytes::from_static(SEQUENCE_HEADER), RtmpTimestamp::new(0), false),
        client.publish_video_data(
            Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]),
            RtmpTimestamp::new(0),
            false,
        ),
        client.publish_audio_data(Bytes::from_static(&[0xaf, 0x00, 0x12, 0x10]), RtmpTimestamp::new(0), false),
        client.publish_audio_data(Bytes::from_static(&[0xaf, 0x01, 0x21, 0x00]), RtmpTimestamp::new(23), false),
    ];
    let (media, _) = exchange(&mut client, &mut server, media.into_iter().map(|r| r.expect("media")).collect());
    // An old-style handshake: C0, then C1 and C2 with no digest.
    let mut handshake = vec![3u8];
    handshake.extend_from_slice(&[0u8; 2 * 1536]);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/rtmp");
    std::fs::create_dir_all(&dir).expect("the corpus folder");
    // The first byte is the target's read size, in 64-byte steps.
    let seed = |cut: u8, parts: &[&[u8]]| {
        let mut out = vec![cut];
        out.extend_from_slice(&handshake);
        for p in parts {
            out.extend_from_slice(p);
        }
        out
    };
    std::fs::write(dir.join("connect"), seed(255, &[&connect])).expect("a seed");
    std::fs::write(dir.join("publish"), seed(255, &[&connect, &publish, &media])).expect("a seed");
    std::fs::write(dir.join("publish-small-reads"), seed(1, &[&connect, &publish, &media])).expect("a seed");
}
