//! The tus 1.0.0 protocol's headers: parsing and checking what a client sends, with no I/O.
//!
//! Supported: core, `creation`, `creation-with-upload`, `termination`, `expiration` and
//! `checksum` (sha1, sha256, md5 is refused as too weak). Not supported: `creation-defer-length`
//! (an upload must declare its length, so quotas are checked before any byte arrives) and
//! `concatenation`. Every parse error carries a sentence a client developer can act on.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use base64::Engine;
use std::collections::BTreeMap;
use turtlemen_http::ApiError;

pub const VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
pub const TUS_VERSION: HeaderName = HeaderName::from_static("tus-version");
pub const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
pub const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
pub const TUS_CHECKSUM_ALGORITHM: HeaderName = HeaderName::from_static("tus-checksum-algorithm");
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
pub const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
pub const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
pub const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
pub const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
pub const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
/// Ours: the id of the video an upload creates, on the creation response.
pub const VIDEO_ID: HeaderName = HeaderName::from_static("video-id");

/// The status tus gives a chunk whose checksum does not match.
pub const CHECKSUM_MISMATCH: u16 = 460;

/// The largest `Upload-Metadata` header accepted.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Refuses a request that does not speak tus 1.0.0 (412 with the versions we do speak).
pub fn check_resumable(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(TUS_RESUMABLE).map(HeaderValue::as_bytes) {
        Some(b"1.0.0") => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "unsupported_tus_version",
            "This server speaks tus 1.0.0 only (Tus-Resumable: 1.0.0).",
        )),
        None => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "tus_resumable_missing",
            "Send Tus-Resumable: 1.0.0 with every tus request.",
        )),
    }
}

fn bad(code: &'static str, message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::bad_request(code, message)
}

/// A non-negative decimal header (`Upload-Length`, `Upload-Offset`): digits only, no sign, no
/// spaces, at most 19 digits.
pub fn parse_u64_header(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    let b = value.as_bytes();
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return Err(bad("invalid_header", format!("{name} must be a non-negative whole number of bytes.")));
    }
    let text = std::str::from_utf8(b).map_err(|_| bad("invalid_header", format!("{name} is not ASCII.")))?;
    text.parse::<u64>().map(Some).map_err(|_| bad("invalid_header", format!("{name} is too large.")))
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs (a key alone means an empty
/// value). Keys are unique, printable ASCII without spaces or commas; values must be UTF-8.
pub fn parse_metadata(headers: &HeaderMap) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    let Some(value) = headers.get(UPLOAD_METADATA) else { return Ok(out) };
    if value.len() > MAX_METADATA_BYTES {
        return Err(bad("invalid_metadata", format!("Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes.")));
    }
    let text = value.to_str().map_err(|_| bad("invalid_metadata", "Upload-Metadata must be ASCII."))?;
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut parts = pair.split(' ');
        let key = parts.next().unwrap_or_default();
        let encoded = parts.next().unwrap_or_default();
        if parts.next().is_some() {
            return Err(bad("invalid_metadata", format!("Upload-Metadata pair {key:?} has more than one value.")));
        }
        if key.is_empty() || key.len() > 64 || !key.bytes().all(|c| c.is_ascii_graphic() && c != b',') {
            return Err(bad("invalid_metadata", "Upload-Metadata keys are printable ASCII, 1 to 64 characters."));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| bad("invalid_metadata", format!("Upload-Metadata value of {key:?} is not base64.")))?;
        let value = String::from_utf8(bytes)
            .map_err(|_| bad("invalid_metadata", format!("Upload-Metadata value of {key:?} is not UTF-8 text.")))?;
        if out.insert(key.to_owned(), value).is_some() {
            return Err(bad("invalid_metadata", format!("Upload-Metadata names {key:?} twice.")));
        }
    }
    Ok(out)
}

/// A checksum algorithm of the `checksum` extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub fn digest_algorithm(self) -> &'static ring::digest::Algorithm {
        match self {
            // SHA-1 is what tus clients send most; it guards against corruption, not attackers.
            ChecksumAlgorithm::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            ChecksumAlgorithm::Sha256 => &ring::digest::SHA256,
        }
    }
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub digest: Vec<u8>,
}

pub fn parse_checksum(headers: &HeaderMap) -> Result<Option<Checksum>, ApiError> {
    let Some(value) = headers.get(UPLOAD_CHECKSUM) else { return Ok(None) };
    let text = value.to_str().map_err(|_| bad("invalid_checksum", "Upload-Checksum must be ASCII."))?;
    let (name, encoded) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("invalid_checksum", "Upload-Checksum is \"<algorithm> <base64 digest>\"."))?;
    let algorithm = match name.to_ascii_lowercase().as_str() {
        "sha1" => ChecksumAlgorithm::Sha1,
        "sha256" => ChecksumAlgorithm::Sha256,
        other => {
            return Err(bad(
                "unsupported_checksum",
                format!("Checksum algorithm {other:?} is not supported; use one of {CHECKSUM_ALGORITHMS}."),
            ));
        }
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad("invalid_checksum", "The Upload-Checksum digest is not base64."))?;
    if digest.len() != algorithm.digest_algorithm().output_len() {
        return Err(bad("invalid_checksum", "The Upload-Checksum digest has the wrong length for its algorithm."));
    }
    Ok(Some(Checksum { algorithm, digest }))
}

/// Whether the request body is tus chunk bytes (`Content-Type: application/offset+octet-stream`).
pub fn is_chunk(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

/// An HTTP date (`Upload-Expires`).
pub fn http_date(t: chrono::DateTime<chrono::Utc>) -> HeaderValue {
    HeaderValue::from_str(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert((*k).clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn metadata_is_decoded_and_checked() {
        let h = headers(&[(&UPLOAD_METADATA, "filename Y2xpcC5tcDQ=,title w6kgdMOpIQ==,is_confidential")]);
        let m = parse_metadata(&h).unwrap();
        assert_eq!(m["filename"], "clip.mp4");
        assert_eq!(m["title"], "é té!");
        assert_eq!(m["is_confidential"], "");
        for bad in ["filename !!!", "a YQ== YQ==", "filename YQ==,filename YQ==", "file\tname YQ==", "title /w=="] {
            assert!(parse_metadata(&headers(&[(&UPLOAD_METADATA, bad)])).is_err(), "{bad}");
        }
        let long = format!("title {}", "A".repeat(MAX_METADATA_BYTES));
        assert!(parse_metadata(&headers(&[(&UPLOAD_METADATA, &long)])).is_err());
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_u64_header(&headers(&[(&UPLOAD_LENGTH, "1024")]), &UPLOAD_LENGTH).unwrap(), Some(1024));
        assert_eq!(parse_u64_header(&HeaderMap::new(), &UPLOAD_LENGTH).unwrap(), None);
        for bad in ["-1", "+5", " 5", "5 ", "1e3", "0x10", "99999999999999999999", ""] {
            assert!(parse_u64_header(&headers(&[(&UPLOAD_OFFSET, bad)]), &UPLOAD_OFFSET).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checksums_name_a_supported_algorithm_and_a_digest_of_its_length() {
        let sha1 = "sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=";
        let c = parse_checksum(&headers(&[(&UPLOAD_CHECKSUM, sha1)])).unwrap().unwrap();
        assert_eq!(c.algorithm, ChecksumAlgorithm::Sha1);
        assert_eq!(c.digest.len(), 20);
        for bad in
            ["md5 1B2M2Y8AsgTpgAmY7PhCfg==", "sha1", "sha1 !!", "sha256 2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "crc32 AAAA"]
        {
            assert!(parse_checksum(&headers(&[(&UPLOAD_CHECKSUM, bad)])).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_is_required() {
        assert!(check_resumable(&headers(&[(&TUS_RESUMABLE, "1.0.0")])).is_ok());
        assert_eq!(check_resumable(&headers(&[(&TUS_RESUMABLE, "0.2.2")])).unwrap_err().status.as_u16(), 412);
        assert_eq!(check_resumable(&HeaderMap::new()).unwrap_err().status.as_u16(), 412);
    }
}
