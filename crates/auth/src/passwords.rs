//! Password hashing (Argon2id at OWASP's minimum: 19 MiB, t=2, p=1) and the password policy
//! (NIST SP 800-63B: length only, no composition rules).
//!
//! Hashes and verifications run through [`run`]: on the blocking pool, at most one per CPU at a
//! time. Each holds a 19 MiB block while it runs, so a flood of sign-ins would otherwise hold one
//! per blocking thread (up to 512, near 10 GiB) for work the CPUs cannot do faster anyway.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

/// Why a password was refused; shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password must be at least {MIN_LEN} characters long")]
    TooShort,
    #[error("a password must be at most {MAX_LEN} characters long")]
    TooLong,
}

/// Why a hash could not be computed: its task panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashTaskError;

/// Runs `work` (a hash or a verification) on the blocking pool once one of the per-CPU slots is
/// free (see the module's documentation).
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashTaskError> {
    static SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
    });
    let _slot = SLOTS.acquire().await.map_err(|_| HashTaskError)?;
    tokio::task::spawn_blocking(work).await.map_err(|_| HashTaskError)
}

/// The hasher with our parameters.
pub fn hasher() -> Argon2<'static> {
    // Params::new only fails for out-of-range values; these are constants within range.
    #[allow(clippy::unwrap_used)]
    let params = Params::new(19 * 1024, 2, 1, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The policy: length only.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if len > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// Checks the policy and hashes; returns a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_policy(password)?;
    let salt = SaltString::generate(&mut OsRng);
    // Hashing with valid parameters and a fresh salt cannot fail.
    #[allow(clippy::unwrap_used)]
    Ok(hasher().hash_password(password.as_bytes(), &salt).unwrap().to_string())
}

/// Whether `password` matches the stored PHC string; a malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
}

/// Whether a stored PHC string was made with other parameters than [`hasher`]'s (another
/// algorithm, version, memory, time or parallelism), so the next successful sign-in should
/// rehash the password. A malformed string needs nothing: it never verifies anyway.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let current = hasher();
    let same_params = Params::try_from(&hash).is_ok_and(|p| {
        p.m_cost() == current.params().m_cost()
            && p.t_cost() == current.params().t_cost()
            && p.p_cost() == current.params().p_cost()
    });
    hash.algorithm != Algorithm::Argon2id.ident() || hash.version != Some(Version::V0x13.into()) || !same_params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_runs_at_most_one_per_cpu() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let (active, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..cpus * 3)
            .map(|_| {
                let (active, most) = (active.clone(), most.clone());
                tokio::spawn(run(move || {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let ok = verify("correct horse battery staple", &hash("correct horse battery staple").unwrap());
                    active.fetch_sub(1, Ordering::SeqCst);
                    ok
                }))
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap());
        }
        assert!(most.load(Ordering::SeqCst) <= cpus, "{} hashes at once on {cpus} CPUs", most.load(Ordering::SeqCst));
    }

    #[test]
    fn hashes_and_verifies() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn rehash_when_parameters_differ() {
        let current = hash("correct horse battery").unwrap();
        assert!(!needs_rehash(&current));
        let salt = SaltString::generate(&mut OsRng);
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, None).unwrap())
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(needs_rehash(&weak));
        assert!(verify("correct horse battery", &weak), "old hashes still verify");
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(19 * 1024, 2, 1, None).unwrap())
            .hash_password(b"x", &salt)
            .unwrap()
            .to_string();
        assert!(needs_rehash(&argon2i));
        assert!(!needs_rehash("not a hash"));
    }

    #[test]
    fn policy_is_length_only() {
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
        assert_eq!(hash(&"x".repeat(257)), Err(PasswordError::TooLong));
    }
}
