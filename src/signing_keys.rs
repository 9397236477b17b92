//! The auth service's token-signing keys beyond the ES256 one of [`crate::data_dir::keys`]: the
//! RS256 key (`secrets/signing-rs256.p8`, generated on first start of a role that issues
//! tokens) and the public keys retired by `admin rotate-signing-key`
//! (`secrets/retired-signing-keys.json`), published until every token they signed expired.
//!
//! Rotation writes the new private keys over the old files (temporary file and rename each),
//! after recording the old public keys as retired, so a crash midway leaves the old key current
//! or the new one — never a token without a published key.

use crate::data_dir::{load_or_create, write_secret};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use turtlemen_auth::tokens::{self, RetiredKey, Signer};
use turtlemen_config::Config;

const RS256_FILE: &str = "signing-rs256.p8";
const ES256_FILE: &str = "signing-es256.p8";
const RETIRED_FILE: &str = "retired-signing-keys.json";

/// How long a retired key stays published: the longest lifetime of a token it signed (access
/// and ID tokens, 5 minutes) with a margin for clock skew and cached key sets.
pub fn retention() -> chrono::Duration {
    let settings = turtlemen_auth::AuthSettings::default();
    settings.access_token_ttl.max(settings.id_token_ttl) + chrono::Duration::minutes(5)
}

fn secrets(config: &Config) -> PathBuf {
    config.data_dir.join("secrets")
}

/// The RS256 key, generated if missing.
pub fn rs256(config: &Config) -> anyhow::Result<Vec<u8>> {
    load_or_create(&secrets(config).join(RS256_FILE), || tokens::generate_rs256_pkcs8().map_err(anyhow::Error::msg))
}

fn read_retired(path: &Path) -> anyhow::Result<Vec<RetiredKey>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a list of retired keys; fix or remove it", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The signer of a role that issues tokens: ES256 (from `es256`), RS256, retired keys.
pub fn signer(config: &Config, es256: &[u8]) -> anyhow::Result<Signer> {
    let rs256 = rs256(config)?;
    let retired = read_retired(&secrets(config).join(RETIRED_FILE))?;
    Signer::from_pkcs8(es256)
        .and_then(|s| s.with_rs256_pkcs8(&rs256))
        .and_then(|s| s.with_retired(&retired, retention()))
        .map_err(anyhow::Error::msg)
}

/// Makes new ES256 and RS256 keys current and retires the old ones; returns the new ES256 kid.
pub fn rotate(config: &Config) -> anyhow::Result<String> {
    if config.signing_key_file.is_some() {
        bail!("signing_key_file is set: rotate by replacing that file (or unset it to use generated keys)");
    }
    let dir = secrets(config);
    let now = chrono::Utc::now().timestamp();
    let keep_after = now - retention().num_seconds();
    let mut retired: Vec<RetiredKey> =
        read_retired(&dir.join(RETIRED_FILE))?.into_iter().filter(|r| r.retired_at > keep_after).collect();
    for (file, jwk) in [
        (ES256_FILE, tokens::es256_public_jwk as fn(&[u8]) -> Result<serde_json::Value, String>),
        (RS256_FILE, tokens::rs256_public_jwk),
    ] {
        let path = dir.join(file);
        if path.exists() {
            let der = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let jwk = jwk(&der).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            retired.push(RetiredKey { jwk, retired_at: now });
        }
    }
    let es256 = tokens::generate_es256_pkcs8().map_err(anyhow::Error::msg)?;
    let rs256 = tokens::generate_rs256_pkcs8().map_err(anyhow::Error::msg)?;
    write_secret(&dir.join(RETIRED_FILE), &serde_json::to_vec_pretty(&retired)?)?;
    write_secret(&dir.join(RS256_FILE), &rs256)?;
    write_secret(&dir.join(ES256_FILE), &es256)?;
    let kid = Signer::from_pkcs8(&es256).map_err(anyhow::Error::msg)?.kid().to_string();
    tracing::info!(key.kid = %kid, retired = retired.len(), "rotated the token-signing keys");
    Ok(kid)
}
