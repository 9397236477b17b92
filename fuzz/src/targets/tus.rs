//! tus headers (`turtlemen_api::tus`): `Upload-Metadata`, `Upload-Length`/`Upload-Offset`,
//! `Upload-Checksum`, `Tus-Resumable` and the chunk content type.
//!
//! Holds: every refusal is a 4xx `ApiError`; accepted metadata printed again (`key
//! base64(value)` pairs) parses to the same map; an accepted checksum printed again parses to
//! the same checksum; an accepted number is the decimal the header spelt (leading zeros aside).

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use base64::Engine;
use turtlemen_api::tus::{
    self, TUS_RESUMABLE, UPLOAD_CHECKSUM, UPLOAD_LENGTH, UPLOAD_METADATA, UPLOAD_OFFSET, parse_checksum,
    parse_metadata, parse_u64_header,
};
use turtlemen_http::ApiError;

fn client_error(e: &ApiError) {
    assert!(e.status.is_client_error(), "refused with {}: {}", e.status, e.body.message);
    assert!(!e.body.message.is_empty());
}

fn one(name: &HeaderName, value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(name.clone(), HeaderValue::from_str(value).expect("printed headers are visible ASCII"));
    h
}

pub fn run(data: &[u8]) {
    // Lines are header values, in this order.
    let names = [UPLOAD_METADATA, UPLOAD_LENGTH, UPLOAD_OFFSET, UPLOAD_CHECKSUM, TUS_RESUMABLE, header::CONTENT_TYPE];
    let mut headers = HeaderMap::new();
    for (name, value) in names.iter().zip(data.split(|b| *b == b'\n')) {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(name.clone(), v);
        }
    }
    if let Err(e) = tus::check_resumable(&headers) {
        client_error(&e);
    }
    let _ = tus::is_chunk(&headers);
    match parse_metadata(&headers) {
        Ok(map) => {
            let printed: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} {}", base64::engine::general_purpose::STANDARD.encode(v)))
                .collect();
            let again = parse_metadata(&one(&UPLOAD_METADATA, &printed.join(",")));
            assert_eq!(again.as_ref().ok(), Some(&map), "metadata printed again reads differently");
        }
        Err(e) => client_error(&e),
    }
    for name in [&UPLOAD_LENGTH, &UPLOAD_OFFSET] {
        match parse_u64_header(&headers, name) {
            Ok(Some(n)) => {
                let again = parse_u64_header(&one(name, &n.to_string()), name);
                assert_eq!(again.ok(), Some(Some(n)));
            }
            Ok(None) => assert!(!headers.contains_key(name)),
            Err(e) => client_error(&e),
        }
    }
    match parse_checksum(&headers) {
        Ok(Some(c)) => {
            let algorithm = match c.algorithm {
                tus::ChecksumAlgorithm::Sha1 => "sha1",
                tus::ChecksumAlgorithm::Sha256 => "sha256",
            };
            let digest = base64::engine::general_purpose::STANDARD.encode(&c.digest);
            let again = parse_checksum(&one(&UPLOAD_CHECKSUM, &format!("{algorithm} {digest}")));
            assert_eq!(again.ok(), Some(Some(c)));
        }
        Ok(None) => {}
        Err(e) => client_error(&e),
    }
}
