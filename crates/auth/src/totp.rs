//! Time-based one-time passwords (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits — what every
//! authenticator app reads from an `otpauth://` URI) and recovery codes.
//!
//! Built on `ring::hmac`, already the service's MAC: the algorithm is a dozen lines and a crate
//! would bring its own base32, QR and clock code we do not need. The secret is 160 random bits
//! (RFC 4226's recommendation), shown to the user in base32.
//!
//! Never: accept a code from a step already used (callers record the step; see
//! `turtlemen_db::totp::use_step`), or accept more than one step of clock drift either way.

use crate::util::hash_token;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Seconds per step.
pub const STEP: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn random(bytes: usize) -> Vec<u8> {
    let mut buf = vec![0u8; bytes];
    // SystemRandom only fails when the OS cannot provide randomness at all (see util).
    #[allow(clippy::expect_used)]
    SystemRandom::new().fill(&mut buf).expect("system random source");
    buf
}

/// A fresh 160-bit secret.
pub fn new_secret() -> Vec<u8> {
    random(20)
}

/// RFC 4648 base32, upper case, without padding.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The code for step `counter` (HOTP, RFC 4226, with dynamic truncation).
pub fn code_at(secret: &[u8], counter: i64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let word = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    word % 10u32.pow(DIGITS)
}

/// The step a Unix time falls in.
pub fn step_of(unix: i64) -> i64 {
    unix.div_euclid(STEP)
}

/// The step of the current step or a neighbour whose code is `code`, if any, skipping steps at or
/// before `last_used` (replay).
pub fn matching_step(secret: &[u8], code: &str, unix: i64, last_used: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u32 = code.parse().ok()?;
    let now = step_of(unix);
    // Every candidate is computed, so the time taken does not depend on which one matched.
    let matches: Vec<i64> = [now - 1, now, now + 1].into_iter().filter(|&s| code_at(secret, s) == code).collect();
    matches.into_iter().find(|&s| s > last_used)
}

/// The `otpauth://` URI authenticator apps import (Google Authenticator's Key URI Format).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        encode(issuer),
        encode(account),
        base32(secret),
        encode(issuer)
    )
}

/// Percent-encodes all but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Ten fresh recovery codes, `xxxxx-xxxxx` in lower-case base32 (50 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let text = base32(&random(7)).to_lowercase();
            format!("{}-{}", &text[..5], &text[5..10])
        })
        .collect()
}

/// What the database keeps of a recovery code: the SHA-256 of its normal form (lower case,
/// without dashes or spaces). 50 random bits need no slow hash.
pub fn recovery_code_hash(code: &str) -> String {
    let normal: String =
        code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    hash_token(&format!("recovery:{normal}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vectors() {
        // RFC 6238 appendix B, SHA-1, truncated to our 6 digits.
        let secret = b"12345678901234567890";
        for (time, code) in [(59, 287_082), (1_111_111_109, 81_804), (1_234_567_890, 5_924), (2_000_000_000, 279_037)] {
            assert_eq!(code_at(secret, step_of(time)), code, "t={time}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (input, out) in [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foobar", "MZXW6YTBOI")] {
            assert_eq!(base32(input.as_bytes()), out);
        }
        assert_eq!(base32(&new_secret()).len(), 32);
    }

    #[test]
    fn one_step_of_drift_and_no_replay() {
        let secret = b"12345678901234567890";
        let t = 1_234_567_890;
        let now = step_of(t);
        let code = |s: i64| format!("{:06}", code_at(secret, s));
        assert_eq!(matching_step(secret, &code(now), t, 0), Some(now));
        assert_eq!(matching_step(secret, &code(now - 1), t, 0), Some(now - 1));
        assert_eq!(matching_step(secret, &code(now + 1), t, 0), Some(now + 1));
        assert_eq!(matching_step(secret, &code(now - 2), t, 0), None);
        assert_eq!(matching_step(secret, &code(now + 2), t, 0), None);
        assert_eq!(matching_step(secret, &code(now), t, now), None, "a used step is refused");
        assert_eq!(matching_step(secret, &code(now + 1), t, now), Some(now + 1));
        assert_eq!(matching_step(secret, "12345", t, 0), None);
        assert_eq!(matching_step(secret, "abcdef", t, 0), None);
    }

    #[test]
    fn otpauth_uri_shape() {
        let uri = otpauth_uri("Turtlemen", "ann", b"foo");
        assert_eq!(uri, "otpauth://totp/Turtlemen:ann?secret=MZXW6&issuer=Turtlemen&algorithm=SHA1&digits=6&period=30");
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert!(codes.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
        assert_eq!(recovery_code_hash("ABCDE-fghij"), recovery_code_hash(" abcde fghij "));
    }
}
