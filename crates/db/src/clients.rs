//! OAuth/OIDC clients registered with the auth service.

use crate::{Db, DbError, with_pool};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A registered client. Redirect URIs are matched exactly, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    /// SHA-256 (hex) of the secret; `None` for a public client (PKCE required).
    pub secret_hash: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// First-party clients (the gateway) skip the consent page.
    pub first_party: bool,
    /// `id_token_signed_response_alg`: `ES256` (the default) or `RS256` for older clients.
    pub id_token_alg: String,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    client_id: String,
    secret_hash: Option<String>,
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    first_party: bool,
    id_token_signed_response_alg: String,
    #[allow(dead_code)]
    created_at: DateTime<Utc>,
}

impl From<Row> for Client {
    fn from(r: Row) -> Self {
        Client {
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            name: r.name,
            redirect_uris: serde_json::from_str(&r.redirect_uris).unwrap_or_default(),
            post_logout_redirect_uris: serde_json::from_str(&r.post_logout_redirect_uris).unwrap_or_default(),
            first_party: r.first_party,
            id_token_alg: r.id_token_signed_response_alg,
        }
    }
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

const INSERT: &str = "INSERT INTO oauth_clients (id, client_id, secret_hash, name, redirect_uris, post_logout_redirect_uris, first_party, created_at, id_token_signed_response_alg) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const UPSERT: &str = concat!(
    "INSERT INTO oauth_clients (id, client_id, secret_hash, name, redirect_uris, post_logout_redirect_uris, first_party, created_at, id_token_signed_response_alg) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ",
    "ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash, name = excluded.name, \
     redirect_uris = excluded.redirect_uris, post_logout_redirect_uris = excluded.post_logout_redirect_uris, \
     first_party = excluded.first_party, id_token_signed_response_alg = excluded.id_token_signed_response_alg"
);

async fn write(db: &Db, sql: &'static str, c: &Client) -> Result<(), DbError> {
    with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(Uuid::now_v7())
            .bind(&c.client_id)
            .bind(c.secret_hash.as_deref())
            .bind(&c.name)
            .bind(json(&c.redirect_uris))
            .bind(json(&c.post_logout_redirect_uris))
            .bind(c.first_party)
            .bind(Utc::now())
            .bind(&c.id_token_alg)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Registers a client; a taken `client_id` is [`DbError::Conflict`].
pub async fn create(db: &Db, c: &Client) -> Result<(), DbError> {
    write(db, INSERT, c).await
}

/// Creates the client or brings an existing one with the same id up to date (used for the
/// built-in gateway client, whose redirect URI follows `public_url`).
pub async fn upsert(db: &Db, c: &Client) -> Result<(), DbError> {
    write(db, UPSERT, c).await
}

pub async fn find(db: &Db, client_id: &str) -> Result<Option<Client>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT client_id, secret_hash, name, redirect_uris, post_logout_redirect_uris, first_party, id_token_signed_response_alg, created_at \
             FROM oauth_clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(Client::from))
}
