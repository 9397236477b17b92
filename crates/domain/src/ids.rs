//! Identifiers. Every primary key is a UUID made by the application (v7: time-ordered, so
//! B-tree inserts stay local on PostgreSQL and spread well enough on CockroachDB).

use std::fmt;
use uuid::Uuid;

/// The id of a user account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
