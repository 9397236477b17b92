//! Secrets at rest — TOTP secrets, and the token-signing keys ([`crate::signing_keys`]):
//! AES-256-GCM (`ring::aead`) under a key derived from the instance's cookie key with
//! HKDF-SHA256 (a salt per purpose, so one kind of secret never opens as another), a random
//! 96-bit nonce per encryption, the owner as associated data (the user id; the key's `kid`: a
//! sealed secret copied to another row does not open), and a versioned format:
//! `"TMv1" ‖ nonce ‖ ciphertext ‖ tag`.
//!
//! A secret stored in clear by an older version (20 bytes, shorter than any sealed value) is
//! read as it is and sealed in place on that read.
//!
//! Never: a clear secret written to the database, or the key in a log.

use crate::AuthState;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use turtlemen_db::DbError;
use turtlemen_db::totp::{self as stored, Totp};
use turtlemen_domain::UserId;

const MAGIC: &[u8] = b"TMv1";

/// Seals and opens secrets of one purpose.
pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

/// Why a stored secret did not open.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret does not open with this instance's key (was cookie_secret changed?)")]
pub struct OpenError;

impl SecretBox {
    /// The box of TOTP secrets.
    pub fn new(cookie_key: &[u8]) -> Self {
        Self::for_purpose(cookie_key, b"turtlemen totp secret v1")
    }

    /// The box of the token-signing keys.
    pub fn for_signing_keys(cookie_key: &[u8]) -> Self {
        Self::for_purpose(cookie_key, b"turtlemen signing key v1")
    }

    fn for_purpose(cookie_key: &[u8], salt: &[u8]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(cookie_key);
        let mut bytes = [0u8; 32];
        // Expanding 32 bytes from HKDF-SHA256 is within its limit (255 × 32): cannot fail.
        #[allow(clippy::expect_used)]
        prk.expand(&[b"aes-256-gcm"], &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut bytes))
            .expect("HKDF expand of 32 bytes");
        #[allow(clippy::expect_used)]
        let key = UnboundKey::new(&AES_256_GCM, &bytes).expect("a 32-byte AES-256 key");
        Self { key: LessSafeKey::new(key) }
    }

    /// Whether `stored` is in the sealed format (else it is a clear legacy secret).
    pub fn is_sealed(stored: &[u8]) -> bool {
        stored.len() >= MAGIC.len() + NONCE_LEN + AES_256_GCM.tag_len() && stored.starts_with(MAGIC)
    }

    pub fn seal(&self, user: UserId, secret: &[u8]) -> Vec<u8> {
        self.seal_for(user.0.as_bytes(), secret)
    }

    /// Seals `secret` for `owner` (the associated data: it opens for that owner only).
    pub fn seal_for(&self, owner: &[u8], secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // SystemRandom only fails when the OS cannot provide randomness at all (see util).
        #[allow(clippy::expect_used)]
        SystemRandom::new().fill(&mut nonce).expect("system random source");
        let mut in_out = secret.to_vec();
        // Sealing fails only for inputs over ~64 GiB.
        #[allow(clippy::expect_used)]
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(owner), &mut in_out)
            .expect("sealing a short secret");
        [MAGIC, &nonce, &in_out].concat()
    }

    /// The clear secret; a legacy clear value is returned as it is.
    pub fn open(&self, user: UserId, stored: &[u8]) -> Result<Vec<u8>, OpenError> {
        if !Self::is_sealed(stored) {
            return Ok(stored.to_vec());
        }
        self.open_for(user.0.as_bytes(), stored)
    }

    /// The clear secret sealed for `owner`; anything not sealed by this box for that owner fails.
    pub fn open_for(&self, owner: &[u8], stored: &[u8]) -> Result<Vec<u8>, OpenError> {
        if !Self::is_sealed(stored) {
            return Err(OpenError);
        }
        let (nonce, sealed) = stored[MAGIC.len()..].split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut in_out = sealed.to_vec();
        let clear = self.key.open_in_place(nonce, Aad::from(owner), &mut in_out).map_err(|_| OpenError)?;
        Ok(clear.to_vec())
    }
}

/// The user's TOTP record with the secret opened; a clear legacy secret is sealed in place.
pub async fn load(state: &AuthState, user: UserId) -> Result<Option<Totp>, DbError> {
    let Some(mut record) = stored::get(&state.db, user).await? else { return Ok(None) };
    if !SecretBox::is_sealed(&record.secret) {
        let sealed = state.secret_box.seal(user, &record.secret);
        stored::replace_secret(&state.db, user, &record.secret, &sealed).await?;
        tracing::info!(user.id = %user, "sealed a TOTP secret stored in clear");
        return Ok(Some(record));
    }
    match state.secret_box.open(user, &record.secret) {
        Ok(clear) => {
            record.secret = clear;
            Ok(Some(record))
        }
        Err(e) => {
            // Treated as no usable second factor would let a wrong key switch it off: refuse.
            tracing::error!(user.id = %user, error = %e, "cannot open a TOTP secret");
            Err(DbError::Unavailable(e.to_string()))
        }
    }
}

/// Stores a pending secret, sealed.
pub async fn put_pending(state: &AuthState, user: UserId, secret: &[u8]) -> Result<bool, DbError> {
    stored::put_pending(&state.db, user, &state.secret_box.seal(user, secret)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_binds_to_the_user() {
        let b = SecretBox::new(&[7u8; 64]);
        let (ann, bob) = (UserId(uuid::Uuid::now_v7()), UserId(uuid::Uuid::now_v7()));
        let secret = [42u8; 20];
        let sealed = b.seal(ann, &secret);
        assert!(SecretBox::is_sealed(&sealed) && !SecretBox::is_sealed(&secret));
        assert_ne!(&sealed[4..], &secret[..], "not in clear");
        assert_eq!(b.open(ann, &sealed).unwrap(), secret);
        assert!(b.open(bob, &sealed).is_err(), "another user's record");
        assert!(SecretBox::new(&[8u8; 64]).open(ann, &sealed).is_err(), "another key");
        assert_ne!(b.seal(ann, &secret), sealed, "a fresh nonce each time");
        assert_eq!(b.open(ann, &secret).unwrap(), secret, "legacy clear values read as they are");
        let keys = SecretBox::for_signing_keys(&[7u8; 64]);
        assert!(keys.open_for(ann.0.as_bytes(), &sealed).is_err(), "another purpose");
        assert!(keys.open_for(b"kid", &secret).is_err(), "nothing clear opens");
        assert_eq!(keys.open_for(b"kid", &keys.seal_for(b"kid", &secret)).unwrap(), secret);
    }
}
