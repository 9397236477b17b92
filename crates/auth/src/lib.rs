//! The auth service (the Keycloak role): local accounts, the login session (SSO) and an
//! OpenID Connect provider at `{public_url}/auth`.
//!
//! - [`broker`]: signing in through external providers (OpenID Connect, GitHub, Facebook) and
//!   linking them to accounts;
//! - [`accounts`], [`passwords`]: creating accounts, Argon2id hashing, the password policy;
//! - [`login`]: the sign-in and registration pages (CSRF-protected forms);
//! - [`bruteforce`]: per-account and per-IP failure counters and temporary lockouts;
//! - [`sso`]: the auth service's own session cookie, and every way a session ends (marked in
//!   the session store so that the gateway sessions built on it end at once);
//! - [`oidc`]: discovery, JWKS, authorization (code + PKCE), token (code, refresh with
//!   rotation and reuse detection), userinfo, revocation, introspection, RP-initiated logout;
//! - [`account`]: the security page (sessions, recent events);
//! - [`clients`]: registering OAuth clients (the `admin create-client` command, the gateway);
//! - [`tokens`]: signing and verifying ID and access tokens; [`signing_keys`]: their keys in the
//!   database, reloaded by every replica, rotated with no restart;
//! - [`totp`]: one-time codes (RFC 6238) and recovery codes; [`second_factor`]: enrolment and
//!   the second sign-in step; [`secret_box`]: the TOTP secret encrypted at rest;
//! - [`mail`]: SMTP or the outbox folder; [`email_links`]: single-use links by mail;
//!   [`verify_email`]: confirming the address; [`reset`]: "forgot password";
//! - [`api`]: the JSON API (sessions, audit) and the administrators' audit page.
//!
//! Never: a redirect to a URI that is not registered for the client, a token or password in a
//! log line, an answer that tells whether an account exists.

pub mod account;
pub mod accounts;
pub mod api;
pub mod broker;
pub mod bruteforce;
pub mod clients;
pub mod csrf;
pub mod email_links;
pub mod login;
pub mod mail;
pub mod oidc;
pub mod passwords;
pub mod registration;
pub mod reset;
pub mod second_factor;
pub mod secret_box;
pub mod signing_keys;
pub mod sso;
pub mod tokens;
pub mod totp;
pub mod util;
pub mod verify_email;

use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;
use turtlemen_db::Db;
use turtlemen_session::Sessions;
use url::Url;

/// Lifetimes and policies of the auth service.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub access_token_ttl: chrono::Duration,
    pub id_token_ttl: chrono::Duration,
    pub refresh_token_ttl: chrono::Duration,
    pub code_ttl: std::time::Duration,
    /// A login session ends after this long unused…
    pub sso_idle: chrono::Duration,
    /// …and after this long in any case.
    pub sso_max: chrono::Duration,
    /// Failure counters and lockouts for passwords and second factors.
    pub brute_force: bruteforce::BruteForceSettings,
    /// Whether the instance's first account becomes admin (`first_user_admin`).
    pub first_user_admin: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_token_ttl: chrono::Duration::minutes(5),
            id_token_ttl: chrono::Duration::minutes(5),
            refresh_token_ttl: chrono::Duration::days(30),
            code_ttl: std::time::Duration::from_secs(60),
            sso_idle: chrono::Duration::days(7),
            sso_max: chrono::Duration::days(30),
            brute_force: bruteforce::BruteForceSettings::default(),
            first_user_admin: true,
        }
    }
}

/// Everything the auth service's handlers share.
pub struct AuthInner {
    pub db: Db,
    /// Short-lived records: authorization codes, brute-force counters.
    pub store: Sessions,
    /// The signing keys, reloaded from the database ([`signing_keys::follow`]).
    pub keys: Arc<signing_keys::KeyRing>,
    /// `{public_url}/auth`, without a trailing slash.
    pub issuer: String,
    pub public_url: Url,
    pub secure_cookies: bool,
    pub csrf: csrf::Csrf,
    pub settings: AuthSettings,
    /// A valid Argon2id hash of nothing in particular, verified against when an account does
    /// not exist so that a failed login takes as long either way.
    pub dummy_hash: String,
    /// External identity providers (none unless configured).
    pub broker: broker::Broker,
    /// Where verification and reset links are sent.
    pub mailer: mail::Mailer,
    /// Encrypts TOTP secrets at rest (a key derived from the cookie key).
    pub secret_box: secret_box::SecretBox,
}

/// Why the auth service's state cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot build the identity providers' HTTP client")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot make the stand-in password hash (for unknown accounts)")]
    DummyHash(#[source] passwords::PasswordError),
}

/// A cheap handle to [`AuthInner`].
pub type AuthState = Arc<AuthInner>;

impl AuthInner {
    /// Builds the shared state with the default [`AuthSettings`]; `signer` holds the signing
    /// keys ([`signing_keys::load`]), `cookie_key` is the instance's cookie secret.
    pub fn new(
        db: Db,
        store: Sessions,
        public_url: &Url,
        signer: tokens::Signer,
        cookie_key: &[u8],
    ) -> Result<AuthState, SetupError> {
        Self::build(db, store, public_url, signer, cookie_key).map(Arc::new)
    }

    /// The same as [`AuthInner::new`], unshared, for callers that adjust it first
    /// (`AuthInner::build(…)?.with_settings(…)`, then `Arc::new`).
    pub fn build(
        db: Db,
        store: Sessions,
        public_url: &Url,
        signer: tokens::Signer,
        cookie_key: &[u8],
    ) -> Result<AuthInner, SetupError> {
        let issuer = format!("{}auth", public_url.as_str());
        let secure = public_url.scheme() == "https";
        Ok(Self {
            db,
            store,
            keys: Arc::new(signing_keys::KeyRing::new(signer)),
            issuer,
            public_url: public_url.clone(),
            secure_cookies: secure,
            csrf: csrf::Csrf::new(cookie_key, secure),
            settings: AuthSettings::default(),
            dummy_hash: passwords::hash(&util::random_token(16)).map_err(SetupError::DummyHash)?,
            broker: broker::Broker::new(Vec::new())?,
            mailer: mail::Mailer::Unconfigured,
            secret_box: secret_box::SecretBox::new(cookie_key),
        })
    }

    /// Sets the external identity providers logins may be brokered through.
    pub fn with_identity_providers(
        mut self,
        providers: Vec<turtlemen_config::IdentityProvider>,
    ) -> Result<Self, SetupError> {
        self.broker = broker::Broker::new(providers)?;
        Ok(self)
    }

    /// Replaces the lifetimes and policies (brute-force thresholds among them).
    pub fn with_settings(mut self, settings: AuthSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Replaces the mailer (unconfigured by default: sending fails).
    pub fn with_mailer(mut self, mailer: mail::Mailer) -> Self {
        self.mailer = mailer;
        self
    }

    /// The signing keys as last loaded.
    pub fn signer(&self) -> Arc<tokens::Signer> {
        self.keys.signer()
    }
}

impl AuthInner {
    /// The brute-force checks with this instance's settings.
    pub fn throttle(&self) -> bruteforce::Throttle<'_> {
        bruteforce::Throttle { store: &self.store, settings: &self.settings.brute_force }
    }
}

/// Every answer of the auth service is about one visitor (forms with their CSRF token, the
/// account page, tokens, userinfo): no cache may keep it, unless a handler said otherwise
/// (discovery and the key set are public and cacheable).
async fn no_store_by_default(mut res: axum::response::Response) -> axum::response::Response {
    let headers = res.headers_mut();
    if !headers.contains_key(axum::http::header::CACHE_CONTROL) {
        headers.insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    }
    res
}

/// The auth service's routes, mounted under `/auth`.
pub fn router(state: AuthState) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery::configuration))
        .route("/jwks", get(oidc::discovery::jwks))
        .route("/authorize", get(oidc::authorize::get_authorize))
        .route("/consent", post(oidc::authorize::post_consent))
        .route("/token", post(oidc::token::token))
        .route("/userinfo", get(oidc::userinfo::userinfo).post(oidc::userinfo::userinfo))
        .route("/revoke", post(oidc::token::revoke))
        .route("/introspect", post(oidc::token::introspect))
        .route("/logout", get(oidc::logout::get_logout).post(oidc::logout::post_logout))
        .route("/login", get(login::get_login).post(login::post_login))
        .route("/register", get(login::get_register).post(login::post_register))
        .route("/account", get(account::get_account))
        .route("/account/sessions/{id}/revoke", post(account::revoke_session))
        .route("/account/password", post(account::change_password))
        .route("/account/totp", get(second_factor::get_setup).post(second_factor::start_enrolment))
        .route("/account/totp/confirm", post(second_factor::confirm_enrolment))
        .route("/account/totp/disable", post(second_factor::disable))
        .route("/login/code", get(second_factor::get_code).post(second_factor::post_code))
        .route("/broker/{provider}/start", post(broker::flow::post_start))
        .route("/broker/{provider}/callback", get(broker::flow::get_callback))
        .route("/account/providers/{provider}/link", post(broker::flow::post_link))
        .route("/account/identities/{id}/unlink", post(broker::flow::post_unlink))
        .route("/verify-email", get(verify_email::get_verify_email))
        .route("/account/verify-email", post(verify_email::resend))
        .route("/forgot-password", get(reset::get_forgot).post(reset::post_forgot))
        .route("/reset-password", get(reset::get_reset).post(reset::post_reset))
        .route("/api/sessions", get(api::list_sessions))
        .route("/api/sessions/{id}", axum::routing::delete(api::delete_session))
        .route("/api/audit", get(api::own_audit))
        .route("/api/admin/audit", get(api::admin_audit))
        .route("/admin/audit", get(api::admin_audit_page))
        .layer(axum::middleware::map_response(no_store_by_default))
        .with_state(state)
}
