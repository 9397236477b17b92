//! Where the auth service's token-signing keys come from at start: the application database
//! ([`turtlemen_auth::signing_keys`]), into which the keys of older versions' data dirs are
//! imported once and an operator's `signing_key_file` is made current.
//!
//! Precedence, per algorithm: `signing_key_file` (ES256 only) is made the current key at every
//! start of a role that issues tokens (at once on a first start, else after the publish lead, as
//! a rotation's key is: every replica publishes it before any signs with it); otherwise the
//! database's keys are used as they are; a database without a key of an algorithm takes the data
//! dir's file (`secrets/signing-es256.p8`, `secrets/signing-rs256.p8`, with
//! `secrets/retired-signing-keys.json`), else a new key. Of two replicas importing or generating
//! at once, the first insert wins and both use it.
//!
//! Never: a key file written (the database holds the keys now), nor a key file deleted.

use crate::data_dir::Keys;
use anyhow::Context;
use std::path::{Path, PathBuf};
use turtlemen_auth::secret_box::SecretBox;
use turtlemen_auth::signing_keys::{self as keys, KeyTimings, Rotation};
use turtlemen_auth::tokens::{RetiredKey, Signer};
use turtlemen_config::Config;
use turtlemen_db::Db;

const FILES: [(&str, &str); 2] = [("ES256", "signing-es256.p8"), ("RS256", "signing-rs256.p8")];
const RETIRED_FILE: &str = "retired-signing-keys.json";

fn secrets(config: &Config) -> PathBuf {
    config.data_dir.join("secrets")
}

fn read_retired(path: &Path) -> anyhow::Result<Vec<RetiredKey>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a list of retired keys; fix or remove it", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn read_key(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Makes sure the database holds a key of every algorithm (importing, taking the configured
/// file, or generating), then loads them: the signer of a role that issues tokens.
pub async fn prepare(db: &Db, config: &Config, secrets_in_use: &Keys, timings: &KeyTimings) -> anyhow::Result<Signer> {
    let sealer = SecretBox::for_signing_keys(&secrets_in_use.cookie);
    let present = turtlemen_db::signing_keys::list(db).await?;
    if let Some(path) = &config.signing_key_file {
        let der = std::fs::read(path).with_context(|| format!("cannot read signing_key_file {}", path.display()))?;
        turtlemen_auth::tokens::es256_public_jwk(&der)
            .map_err(|e| anyhow::anyhow!("signing_key_file {}: {e}", path.display()))?;
        keys::make_current(db, &sealer, "ES256", &der, timings).await?;
    }
    for (alg, file) in FILES {
        if present.iter().any(|k| k.alg == alg) || (alg == "ES256" && config.signing_key_file.is_some()) {
            continue;
        }
        let path = secrets(config).join(file);
        let (der, imported) = match read_key(&path)? {
            Some(der) => (der, true),
            None => (keys::generate(alg)?, false),
        };
        let inserted =
            keys::insert_first(db, &sealer, alg, &der).await.with_context(|| format!("{}", path.display()))?;
        if let Some(kid) = &inserted {
            match imported {
                true => {
                    tracing::info!(key.kid = %kid, file = %path.display(), "imported the signing key into the database; the file is no longer read")
                }
                false => tracing::info!(key.kid = %kid, "generated a {alg} signing key"),
            }
        }
        if inserted.is_some() && imported && alg == "ES256" {
            import_retired(db, &secrets(config).join(RETIRED_FILE)).await?;
        }
    }
    Ok(keys::load(db, &sealer, timings.retention).await?)
}

/// The public keys an older version retired, kept published while tokens they signed live.
async fn import_retired(db: &Db, path: &Path) -> anyhow::Result<()> {
    for retired in read_retired(path)? {
        let Some(at) = chrono::DateTime::from_timestamp(retired.retired_at, 0) else { continue };
        if let Some(row) = keys::retired_row(&retired.jwk, at) {
            turtlemen_db::signing_keys::insert_if_absent(db, &row).await?;
        }
    }
    Ok(())
}

/// Publishes new ES256 and RS256 keys that sign `timings.publish_lead` from now.
pub async fn rotate(db: &Db, secrets_in_use: &Keys, timings: &KeyTimings) -> anyhow::Result<Rotation> {
    let sealer = SecretBox::for_signing_keys(&secrets_in_use.cookie);
    Ok(keys::rotate(db, &sealer, timings).await?)
}
