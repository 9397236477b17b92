//! Single-use links sent by mail: a 256-bit token in the link, its SHA-256 in `email_tokens`
//! with the purpose, the address and an expiry; and sending the message that carries it.
//!
//! Never: the token or link in a log line; a failed send shown to the visitor as anything that
//! tells whether an account exists.

use crate::AuthState;
use crate::mail::Mail;
use crate::util::{hash_token, random_token};
use turtlemen_db::DbError;
use turtlemen_db::email_tokens::{self, NewEmailToken, Purpose};
use turtlemen_db::users::User;

/// How long a verification link works.
pub const VERIFY_TTL: chrono::Duration = chrono::Duration::hours(24);
/// How long a password-reset link works.
pub const RESET_TTL: chrono::Duration = chrono::Duration::minutes(30);

/// Whether a token from a link has the shape we issue (43 base64url characters).
pub fn well_formed(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Stores a new link for `user` and returns its URL (`{public_url}auth/{path}?token=…`).
pub async fn issue(
    state: &AuthState,
    user: &User,
    purpose: Purpose,
    return_to: &str,
    path: &str,
) -> Result<String, DbError> {
    let token = random_token(32);
    let ttl = match purpose {
        Purpose::VerifyEmail => VERIFY_TTL,
        Purpose::ResetPassword => RESET_TTL,
    };
    email_tokens::create(
        &state.db,
        &NewEmailToken {
            token_hash: &hash_token(&token),
            user_id: user.id,
            purpose,
            email: &user.email,
            return_to,
            expires_at: chrono::Utc::now() + ttl,
        },
    )
    .await?;
    Ok(format!("{}auth/{path}?token={token}", state.public_url.as_str()))
}

/// Sends `mail`; a failure is logged (never the body) and reported as `false`.
pub async fn send(state: &AuthState, user: Option<&User>, mail: Mail) -> bool {
    match state.mailer.send(&mail).await {
        Ok(()) => true,
        Err(e) => {
            let user = user.map(|u| u.id.to_string()).unwrap_or_default();
            tracing::warn!(user.id = %user, mail.subject = %mail.subject, error = %e, "sending mail failed");
            false
        }
    }
}

/// Sends `user` a link confirming their email address.
pub async fn send_verification(state: &AuthState, user: &User, return_to: &str) -> Result<bool, DbError> {
    let link = issue(state, user, Purpose::VerifyEmail, return_to, "verify-email").await?;
    let body = format!(
        "Hello {},\n\nTo confirm that this address is yours, open this link within 24 hours:\n\n{link}\n\n\
         If you did not create an account on Turtlemen, you can ignore this message.\n",
        user.username
    );
    let mail = Mail { to: user.email.clone(), subject: "Confirm your email address".into(), body };
    Ok(send(state, Some(user), mail).await)
}
