//! What kind of failure a store's error is, so the layers above can answer it without knowing
//! the store: the HTTP foundation turns any [`Classify`] error into its status (409, 503, 507 or
//! 500) while the database and session-store crates, which implement it, stay out of HTTP, and
//! HTTP out of them.

/// How a failure should be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The write conflicts with what exists (a unique constraint): the caller's to resolve.
    Conflict,
    /// The store is away or not ready (restarting, refusing connections, schema behind): worth
    /// trying again shortly.
    Unavailable,
    /// The store's disk is full: nothing was written; writes succeed again once there is room.
    StorageFull,
    /// Anything else: a bug or a broken store, logged with its cause.
    Internal,
}

/// An error that says its [`FailureClass`].
pub trait Classify: std::error::Error {
    fn class(&self) -> FailureClass;
}
