//! Consents a user gave to third-party clients, remembered per client.

use crate::{Db, DbError, with_pool};
use chrono::Utc;
use turtlemen_domain::UserId;

/// The scopes the user granted `client_id`, if any.
pub async fn find(db: &Db, user_id: UserId, client_id: &str) -> Result<Option<String>, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id.0)
            .bind(client_id)
            .fetch_optional(pool)
            .await?
    }))
}

/// Remembers (or replaces) the user's consent to `client_id` for `scope`.
pub async fn grant(db: &Db, user_id: UserId, client_id: &str, scope: &str) -> Result<(), DbError> {
    with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at",
        )
        .bind(user_id.0)
        .bind(client_id)
        .bind(scope)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}
