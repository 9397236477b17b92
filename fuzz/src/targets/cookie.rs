//! The gateway's session cookie: finding it in `Cookie` headers
//! (`turtlemen_gateway::session::cookie_value`) and the HMAC'd id check (`CookieSigner::made`),
//! with the sign-out token beside it.
//!
//! Holds: a value found is a part of the header; no value the fuzzer makes passes the HMAC
//! check, nor does any change to a real value; a real value and its sign-out token pass.

use axum::http::{HeaderMap, HeaderValue, header};
use turtlemen_gateway::session::{CookieSigner, cookie_value, key};

const NAME: &str = "turtlemen_session";

pub fn run(data: &[u8]) {
    let signer = CookieSigner::new("fuzzing secret");
    // The first line is a `Cookie` header, the rest edits to a real value: (position, xor).
    let (line, edits) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(value) = HeaderValue::from_bytes(line) {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, value);
        if let Some(found) = cookie_value(&headers, NAME) {
            assert!(line.windows(found.len().max(1)).any(|w| w == found.as_bytes()) || found.is_empty());
            assert!(!signer.made(found), "a made-up cookie passed the HMAC check: {found:?}");
            let _ = key(found);
        }
    }
    let real = signer.new_value();
    assert!(signer.made(&real));
    let token = signer.sign_out_token(&real);
    assert!(signer.is_sign_out_token(&real, &token));
    let mut forged = real.clone().into_bytes();
    for pair in edits.chunks_exact(2) {
        let at = usize::from(pair[0]) % forged.len();
        forged[at] ^= pair[1];
    }
    if let Ok(forged) = String::from_utf8(forged) {
        assert_eq!(signer.made(&forged), forged == real, "an edited cookie passed: {forged:?}");
        assert_eq!(signer.is_sign_out_token(&forged, &token), forged == real);
        if let Ok(text) = std::str::from_utf8(line) {
            assert_eq!(signer.is_sign_out_token(&real, text), text == token, "a made-up sign-out token passed");
        }
    }
}
