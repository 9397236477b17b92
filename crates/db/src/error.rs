//! Database errors, classified once here so the HTTP edge can map them to statuses without
//! knowing the driver.

/// What went wrong talking to the application database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached or opened, or ended the connection (it is shutting
    /// down, starting up, or refusing more connections); the message says which and how to fix it.
    #[error("{0}")]
    Unavailable(String),
    /// The database's disk is full (SQLite's `SQLITE_FULL`, PostgreSQL's `53100`): nothing was
    /// written; writes succeed again once there is room.
    #[error("the database's disk is full: {0}")]
    StorageFull(String),
    /// A unique constraint refused the write; `constraint` names the column or index.
    #[error("already exists ({constraint})")]
    Conflict { constraint: String },
    /// The schema is older than this binary.
    #[error("the database schema is not up to date ({0}); run `turtlemen migrate`")]
    SchemaOutdated(String),
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(sqlx::Error),
}

impl turtlemen_domain::Classify for DbError {
    fn class(&self) -> turtlemen_domain::FailureClass {
        use turtlemen_domain::FailureClass;
        match self {
            DbError::Conflict { .. } => FailureClass::Conflict,
            DbError::Unavailable(_) | DbError::SchemaOutdated(_) => FailureClass::Unavailable,
            DbError::StorageFull(_) => FailureClass::StorageFull,
            DbError::Migrate(_) | DbError::Query(_) => FailureClass::Internal,
        }
    }
}

impl DbError {
    /// SQLSTATE 40001: the transaction lost a serialization race and may simply be retried
    /// (CockroachDB's default isolation makes this routine); or 40P01: PostgreSQL rolled it back
    /// to break a cycle of lock waits (CockroachDB reports those as 40001 too).
    pub fn is_serialization_failure(&self) -> bool {
        match self {
            DbError::Query(sqlx::Error::Database(e)) => matches!(e.code().as_deref(), Some("40001" | "40P01")),
            _ => false,
        }
    }
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        DbError::Migrate(e)
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            let constraint = db.constraint().map(str::to_owned).unwrap_or_else(|| {
                // SQLite names the column in the message: "UNIQUE constraint failed: users.email_key".
                db.message().rsplit(": ").next().unwrap_or("unique").to_owned()
            });
            return DbError::Conflict { constraint };
        }
        // A conflict (above) or no row is the query's answer; anything else is trouble.
        if !matches!(e, sqlx::Error::RowNotFound) {
            crate::trouble::seen();
        }
        if let sqlx::Error::Database(db) = &e
            && let Some(code) = db.code()
        {
            match classify(&code) {
                Some(Transient::Unavailable) => {
                    crate::refusals::suspect();
                    return DbError::Unavailable(format!("database unavailable: {e}"));
                }
                Some(Transient::Full) => return DbError::StorageFull(e.to_string()),
                None => {}
            }
        }
        if let sqlx::Error::Io(io) = &e
            && crate::refusals::is_ours(io)
        {
            return DbError::Unavailable(crate::refusals::REFUSED.to_owned());
        }
        if matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed) {
            crate::refusals::suspect();
            return DbError::Unavailable(format!("database unreachable: {e}"));
        }
        DbError::Query(e)
    }
}

/// An error code that says the database, not the query, is in the way.
#[derive(Debug, PartialEq, Eq)]
enum Transient {
    /// The server ended or refused the connection: it is shutting down or starting up (a
    /// restart, a failover), or has no connection to spare.
    Unavailable,
    /// Its disk is full.
    Full,
}

/// Sorts a driver's error code: PostgreSQL's SQLSTATE (class 08 connection exception, 57P01–
/// 57P03 shut down or starting up, 53300 too many connections, 53100 disk full) or SQLite's
/// result code (13 `SQLITE_FULL`).
fn classify(code: &str) -> Option<Transient> {
    match code {
        "53100" | "13" => Some(Transient::Full),
        "57P01" | "57P02" | "57P03" | "53300" => Some(Transient::Unavailable),
        c if c.len() == 5 && c.starts_with("08") => Some(Transient::Unavailable),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Transient, classify};

    #[test]
    fn codes_that_mean_the_database_is_away_or_full() {
        assert_eq!(classify("57P01"), Some(Transient::Unavailable), "admin shutdown: a restart");
        assert_eq!(classify("57P03"), Some(Transient::Unavailable), "starting up");
        assert_eq!(classify("08006"), Some(Transient::Unavailable), "connection failure");
        assert_eq!(classify("53300"), Some(Transient::Unavailable), "too many connections");
        assert_eq!(classify("53100"), Some(Transient::Full), "PostgreSQL: disk full");
        assert_eq!(classify("13"), Some(Transient::Full), "SQLite: SQLITE_FULL");
        assert_eq!(classify("23505"), None, "a unique violation is the query's");
        assert_eq!(classify("42P01"), None, "an undefined table is a bug");
        assert_eq!(classify("1299"), None, "SQLite: NOT NULL constraint");
    }
}
