//! The data folder (`./turtlemen-data` by default) and the secrets kept in it.
//!
//! Secrets not given in the configuration are generated on first start into `secrets/`
//! (folder 0700, files 0600), written to a temporary file and renamed so a crash never leaves a
//! half-written key. Their contents are never logged.

use anyhow::{Context, bail};
use ring::rand::{SecureRandom, SystemRandom};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use turtlemen_config::Config;

/// Secrets every role may need. (The token-signing keys live in the database, sealed with the
/// cookie key: [`crate::signing_keys`].)
pub struct Keys {
    /// Key material for signing and encrypting cookies (64 bytes, or the configured secret).
    pub cookie: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

/// Creates the data folder if needed and proves it writable. Fails with a one-line message that
/// names the folder and the fix.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    let fix = "choose another with --data-dir, or fix its permissions";
    // New folders are private to the account running Turtlemen: they hold password hashes.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data dir {} ({fix})", dir.display()))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    fs::write(&probe, b"").with_context(|| format!("data dir {} is not writable ({fix})", dir.display()))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Loads the configured secrets, or those generated earlier, or generates them now.
pub fn keys(config: &Config) -> anyhow::Result<Keys> {
    let secrets = config.data_dir.join("secrets");
    let cookie = match &config.cookie_secret {
        Some(s) => s.expose().as_bytes().to_vec(),
        None => load_or_create(&secrets.join("cookie.key"), || {
            let mut key = vec![0u8; 64];
            SystemRandom::new().fill(&mut key).map_err(|_| anyhow::anyhow!("the system random source failed"))?;
            Ok(key)
        })?,
    };
    Ok(Keys { cookie })
}

pub(crate) fn load_or_create(path: &Path, make: impl FnOnce() -> anyhow::Result<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    if path.exists() {
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "secret file was readable by others; restricting it to 0600");
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
        let bytes = fs::read(path).with_context(|| format!("cannot read secret {}", path.display()))?;
        if bytes.is_empty() {
            bail!("secret file {} is empty; remove it to generate a new one", path.display());
        }
        return Ok(bytes);
    }
    let bytes = make()?;
    write_secret(path, &bytes)?;
    tracing::info!(file = %path.display(), "generated a new secret");
    Ok(bytes)
}

/// Writes a secret file (0600, in a 0700 folder) through a temporary file and a rename, so it
/// is replaced whole or not at all.
fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("secret path has no folder")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let tmp: PathBuf = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}
