//! The media front loop's request parsing (`turtlemen_http::files::parse`): the raw bytes a
//! plain HTTP/1.1 client sends before the first answer.
//!
//! Holds: a head the loop takes for itself is a bodiless `GET`/`HEAD` of HTTP/1.1 under the
//! prefix with exactly one `Host`, no longer than the limit, ends where the parser said, and is
//! decided the same from its own bytes alone (what follows it plays no part); a head still
//! partial is within the limit.

use axum::http::{Method, header};
use turtlemen_http::files::{Head, head_ends, parse};

const PREFIX: &str = "/media/";

pub fn run(data: &[u8]) {
    // The first byte picks the head limit, so the fuzzer reaches it with short inputs too.
    let Some((&pick, buf)) = data.split_first() else { return };
    let max_head = [64, 512, 8192][usize::from(pick % 3)];
    match parse(buf, PREFIX, max_head) {
        Head::Mine(req, len) => {
            assert!(len <= buf.len() && len <= max_head, "head length {len} past the input or limit");
            assert!(matches!(*req.method(), Method::GET | Method::HEAD), "method {}", req.method());
            assert!(req.uri().path().starts_with(PREFIX), "path {:?}", req.uri().path());
            assert!(req.uri().authority().is_none(), "an absolute-form target was taken");
            assert_eq!(req.headers().get_all(header::HOST).iter().count(), 1, "not exactly one Host");
            assert!(!req.headers().contains_key(header::TRANSFER_ENCODING), "a chunked body was taken");
            assert!(!req.headers().contains_key(header::UPGRADE) && !req.headers().contains_key(header::EXPECT));
            assert!(
                req.headers().get_all(header::CONTENT_LENGTH).iter().all(|v| v.as_bytes() == b"0"),
                "a body was taken"
            );
            assert!(head_ends(&buf[..len], 0), "a taken head does not end with an empty line");
            match parse(&buf[..len], PREFIX, max_head) {
                Head::Mine(again, again_len) => {
                    assert_eq!(again_len, len);
                    assert_eq!(again.uri(), req.uri());
                    assert_eq!(again.headers(), req.headers());
                }
                other => panic!("the head alone is decided differently: {other:?}"),
            }
        }
        Head::Partial => assert!(buf.len() <= max_head, "a partial head past the limit is kept waiting"),
        Head::NotMine | Head::Unfinished => {}
    }
}
