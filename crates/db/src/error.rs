//! Database errors, classified once here so the HTTP edge can map them to statuses without
//! knowing the driver.

/// What went wrong talking to the application database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached or opened; the message says which and how to fix it.
    #[error("{0}")]
    Unavailable(String),
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

impl DbError {
    /// SQLSTATE 40001: the transaction lost a serialization race and may simply be retried
    /// (CockroachDB's default isolation makes this routine).
    pub fn is_serialization_failure(&self) -> bool {
        match self {
            DbError::Query(sqlx::Error::Database(e)) => e.code().as_deref() == Some("40001"),
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
        if matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed) {
            return DbError::Unavailable(format!("database unreachable: {e}"));
        }
        DbError::Query(e)
    }
}
