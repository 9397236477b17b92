//! The token-signing keys in the application database, shared by every auth replica: their
//! private halves sealed with the instance secret ([`SecretBox::for_signing_keys`], the `kid` as
//! associated data), loaded into a [`Signer`] at start, and reloaded every
//! [`KeyTimings::reload_every`] so that a rotation reaches every replica with no restart.
//!
//! A rotation ([`rotate`]) inserts the next keys with an activation [`KeyTimings::publish_lead`]
//! ahead — longer than a reload plus the JWK set's HTTP cache lifetime — so every replica
//! publishes them before any signs with them, and every replica switches at that moment by its
//! own clock (no reload needed then). The keys they replace retire at the same moment and stay
//! published for [`KeyTimings::retention`], the longest lifetime of a token they signed; then
//! whichever replica reloads first deletes them.
//!
//! Never: a private key in clear in the database or a log; a replica signing with a key the
//! others have not published for a whole reload period.

use crate::secret_box::SecretBox;
use crate::tokens::{self, Damage, KeyRecord, KeyRecordError, Signer};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use turtlemen_db::signing_keys::{self as stored, StoredKey};
use turtlemen_db::{Db, DbError};

/// How long the JWK set may be kept by HTTP caches (`Cache-Control: max-age`), in seconds.
pub const JWKS_MAX_AGE_SECS: u64 = 60;

/// The algorithms every instance has a key of.
pub const ALGORITHMS: [&str; 2] = ["ES256", "RS256"];

/// The timings of key reloads and rotations.
#[derive(Debug, Clone, Copy)]
pub struct KeyTimings {
    /// How often each replica reloads the keys: the staleness of its key set.
    pub reload_every: Duration,
    /// How long a new key is published before it signs.
    pub publish_lead: chrono::Duration,
    /// How long a retired key stays published: the longest token lifetime plus a margin.
    pub retention: chrono::Duration,
}

impl KeyTimings {
    /// The timings for tokens living as `settings` say: reloads every 30 s; a next key published
    /// for a reload, the JWK set's cache lifetime and 30 s of clock skew before it signs (2
    /// minutes); retired keys kept for the token lifetime plus 5 minutes.
    pub fn for_settings(settings: &crate::AuthSettings) -> Self {
        let reload_every = Duration::from_secs(30);
        let lead_secs = reload_every.as_secs() + JWKS_MAX_AGE_SECS + 30;
        Self {
            reload_every,
            publish_lead: chrono::Duration::seconds(lead_secs as i64),
            retention: settings.access_token_ttl.max(settings.id_token_ttl) + chrono::Duration::minutes(5),
        }
    }
}

impl Default for KeyTimings {
    fn default() -> Self {
        Self::for_settings(&crate::AuthSettings::default())
    }
}

/// Why the keys cannot be loaded or rotated.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "signing key {kid} in the database does not open with this instance's secret (was cookie_secret changed, or is it another instance's database?)"
    )]
    Sealed { kid: String },
    #[error("{0} in the database; restore it from a backup, or delete that row to drop the key")]
    Damaged(#[source] KeyRecordError),
    #[error("a rotation is under way: key {kid} signs from {at}; rotate again after that")]
    Pending { kid: String, at: DateTime<Utc> },
    #[error("another rotation was made at the same moment; look at the keys and rotate again if needed")]
    Raced,
    #[error("cannot make a signing key: {0}")]
    Generate(#[source] tokens::KeyMaterialError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The signer in use, replaced whole when the keys are reloaded.
pub struct KeyRing {
    current: RwLock<Arc<Signer>>,
}

impl KeyRing {
    pub fn new(signer: Signer) -> Self {
        Self { current: RwLock::new(Arc::new(signer)) }
    }

    /// The signer as last loaded.
    pub fn signer(&self) -> Arc<Signer> {
        // A poisoned lock still holds a whole signer: replacing it is a single assignment.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, signer: Signer) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(signer);
    }
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyRing").field(&self.signer()).finish()
    }
}

/// A new key of `alg` (`ES256` or `RS256`), PKCS#8 DER.
pub fn generate(alg: &str) -> Result<Vec<u8>, KeyError> {
    match alg {
        "RS256" => tokens::generate_rs256_pkcs8(),
        _ => tokens::generate_es256_pkcs8(),
    }
    .map_err(KeyError::Generate)
}

/// A row for the private key `pkcs8` of `alg`, sealed, signing from `activated_at`.
pub fn sealed_row(
    sealer: &SecretBox,
    alg: &str,
    pkcs8: &[u8],
    generation: i64,
    activated_at: DateTime<Utc>,
) -> Result<StoredKey, KeyError> {
    let jwk = match alg {
        "RS256" => tokens::rs256_public_jwk(pkcs8),
        _ => tokens::es256_public_jwk(pkcs8),
    }
    .map_err(KeyError::Generate)?;
    let kid = jwk["kid"].as_str().unwrap_or_default().to_string();
    Ok(StoredKey {
        private_key: Some(sealer.seal_for(kid.as_bytes(), pkcs8)),
        kid,
        alg: alg.to_string(),
        generation: Some(generation),
        public_jwk: jwk.to_string(),
        created_at: Utc::now(),
        activated_at,
        retired_at: None,
    })
}

/// A row for a retired key's public half.
pub fn retired_row(jwk: &serde_json::Value, retired_at: DateTime<Utc>) -> Option<StoredKey> {
    Some(StoredKey {
        kid: jwk.get("kid")?.as_str()?.to_string(),
        alg: jwk.get("alg")?.as_str()?.to_string(),
        generation: None,
        private_key: None,
        public_jwk: jwk.to_string(),
        created_at: Utc::now(),
        activated_at: retired_at,
        retired_at: Some(retired_at),
    })
}

/// Inserts `pkcs8` as the first key of `alg`, signing at once, unless the database has one (of
/// two replicas at once, the first wins); returns its `kid` if it did.
pub async fn insert_first(db: &Db, sealer: &SecretBox, alg: &str, pkcs8: &[u8]) -> Result<Option<String>, KeyError> {
    let row = sealed_row(sealer, alg, pkcs8, 1, this_second())?;
    Ok(stored::insert_if_absent(db, &row).await?.then_some(row.kid))
}

/// Makes `pkcs8` the current key of `alg` (an operator's key file), unless it is, or is
/// published and waiting to sign: at once when `alg` has no current key (a first start), else
/// [`KeyTimings::publish_lead`] from now, as a rotation does, so that every replica publishes
/// it before any signs with it; the current key retires at that moment.
pub async fn make_current(
    db: &Db,
    sealer: &SecretBox,
    alg: &str,
    pkcs8: &[u8],
    timings: &KeyTimings,
) -> Result<(), KeyError> {
    for _ in 0..3 {
        let rows = stored::list(db).await?;
        let now = Utc::now();
        let row = sealed_row(sealer, alg, pkcs8, 0, now)?;
        let current = rows
            .iter()
            .filter(|r| r.alg == alg && r.activated_at <= now && r.retired_at.is_none_or(|t| t > now))
            .max_by_key(|r| r.generation);
        if current.is_some_and(|c| c.kid == row.kid) {
            return Ok(());
        }
        // Made current by an earlier start that is still within its lead: its time stands.
        let waiting = |r: &StoredKey| r.kid == row.kid && r.private_key.is_some() && r.activated_at > now;
        if rows.iter().any(|r| waiting(r) && r.retired_at.is_none()) {
            return Ok(());
        }
        let activated_at = if current.is_some() { now + timings.publish_lead } else { this_second() };
        let top = rows.iter().filter(|r| r.alg == alg).filter_map(|r| r.generation).max().unwrap_or(0);
        let next = StoredKey { generation: Some(top + 1), activated_at, ..row };
        match stored::make_current(db, &next).await {
            Err(DbError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
            Ok(()) => {
                tracing::info!(key.kid = %next.kid, signs_from = %activated_at, "made the signing key file's key current");
                return Ok(());
            }
        }
    }
    Err(KeyError::Raced)
}

/// The start of the current second: a first key's activation, so that it signs at once (stored
/// times switch at the whole second at or after them).
fn this_second() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}

/// A stored time as the whole Unix second a key switches at, rounded up: a key never signs
/// (nor a retired one stops) before the moment stored.
fn switch_second(at: DateTime<Utc>) -> i64 {
    at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0)
}

/// Opens the stored rows into a signer, or says which row is damaged or sealed otherwise.
pub fn open(rows: &[StoredKey], sealer: &SecretBox, retention: chrono::Duration) -> Result<Signer, KeyError> {
    let records = rows
        .iter()
        .map(|row| {
            let damaged = |reason| KeyError::Damaged(KeyRecordError::Damaged { kid: row.kid.clone(), reason });
            let jwk = serde_json::from_str(&row.public_jwk).map_err(|e| damaged(Damage::NotJson(e)))?;
            let pkcs8 = match &row.private_key {
                Some(sealed) => Some(
                    sealer
                        .open_for(row.kid.as_bytes(), sealed)
                        .map_err(|_| KeyError::Sealed { kid: row.kid.clone() })?,
                ),
                None => None,
            };
            Ok(KeyRecord {
                kid: row.kid.clone(),
                pkcs8,
                jwk,
                generation: row.generation.unwrap_or(i64::MIN),
                activated_at: switch_second(row.activated_at),
                retired_at: row.retired_at.map(switch_second),
            })
        })
        .collect::<Result<Vec<_>, KeyError>>()?;
    Signer::from_records(&records, retention).map_err(KeyError::Damaged)
}

/// Loads every key from the database.
pub async fn load(db: &Db, sealer: &SecretBox, retention: chrono::Duration) -> Result<Signer, KeyError> {
    open(&stored::list(db).await?, sealer, retention)
}

/// What a rotation did: the next keys and when they sign.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new keys' ids, ES256 first.
    pub kids: Vec<String>,
    pub signs_from: DateTime<Utc>,
}

/// Publishes a new key of every algorithm, signing [`KeyTimings::publish_lead`] from now, when the
/// current keys retire. Refused while an earlier rotation waits, and when this instance's
/// secret does not open the stored keys (new keys sealed with another would open nowhere).
pub async fn rotate(db: &Db, sealer: &SecretBox, timings: &KeyTimings) -> Result<Rotation, KeyError> {
    let rows = stored::list(db).await?;
    open(&rows, sealer, timings.retention)?;
    let now = Utc::now();
    if let Some(next) =
        rows.iter().filter(|r| r.activated_at > now && r.retired_at.is_none()).min_by_key(|r| r.activated_at)
    {
        return Err(KeyError::Pending { kid: next.kid.clone(), at: next.activated_at });
    }
    let signs_from = now + timings.publish_lead;
    let mut next = Vec::new();
    for alg in ALGORITHMS {
        let top = rows.iter().filter(|r| r.alg == alg).filter_map(|r| r.generation).max().unwrap_or(0);
        next.push(sealed_row(sealer, alg, &generate(alg)?, top + 1, signs_from)?);
    }
    if !stored::rotate(db, &next).await? {
        return Err(KeyError::Raced);
    }
    let kids: Vec<String> = next.into_iter().map(|k| k.kid).collect();
    tracing::info!(key.kids = ?kids, signs_from = %signs_from, "published the next token-signing keys");
    Ok(Rotation { kids, signs_from })
}

/// Reloads the keys every [`KeyTimings::reload_every`] until `stop`, deleting the keys retired
/// longer than the retention; a failed reload keeps the keys in use and is retried next time.
pub async fn follow(
    ring: Arc<KeyRing>,
    db: Db,
    sealer: Arc<SecretBox>,
    timings: KeyTimings,
    stop: impl Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(timings.reload_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    let mut seen: Option<Vec<StoredKey>> = None;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let cutoff = Utc::now() - timings.retention;
        match stored::delete_retired_before(&db, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(keys.deleted = n, "deleted retired token-signing keys"),
            Err(e) => tracing::warn!(error = %e, "cannot delete retired token-signing keys; will retry"),
        }
        let rows = match stored::list(&db).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload the token-signing keys; keeping those in use");
                continue;
            }
        };
        // Unchanged rows make the same signer (the times in them say when keys switch).
        if seen.as_ref() == Some(&rows) {
            continue;
        }
        match open(&rows, &sealer, timings.retention) {
            Ok(signer) => {
                tracing::debug!(keys.count = rows.len(), key.kid = signer.kid(), "reloaded the token-signing keys");
                ring.replace(signer);
                seen = Some(rows);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot use the token-signing keys in the database; keeping those in use")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_time_switches_at_the_whole_second_at_or_after_it() {
        let at = |millis| DateTime::from_timestamp_millis(millis).unwrap();
        assert_eq!(switch_second(at(100_000)), 100);
        assert_eq!(switch_second(at(100_001)), 101);
        assert_eq!(switch_second(at(100_999)), 101);
        assert_eq!(switch_second(at(-1)), 0);
    }

    #[test]
    fn a_key_activating_later_in_this_second_does_not_sign_before_then() {
        let sealer = SecretBox::for_signing_keys(&[7; 64]);
        let es256 = || generate("ES256").unwrap();
        // Looked at early in a second, before an activation 900 ms into it (tried again if the
        // machine stalled past it).
        for _ in 0..5 {
            while Utc::now().timestamp_subsec_millis() > 400 {
                std::thread::sleep(Duration::from_millis(10));
            }
            let second = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
            let switch = second + chrono::Duration::milliseconds(900);
            let old = sealed_row(&sealer, "ES256", &es256(), 1, second - chrono::Duration::minutes(1)).unwrap();
            let old = StoredKey { retired_at: Some(switch), ..old };
            let next = sealed_row(&sealer, "ES256", &es256(), 2, switch).unwrap();
            let signer = open(&[next, old.clone()], &sealer, chrono::Duration::minutes(5)).unwrap();
            let kid = signer.kid().to_string();
            if Utc::now() < switch {
                assert_eq!(kid, old.kid, "the next key does not sign before its activation");
                return;
            }
        }
        panic!("never looked before the switch");
    }
}
