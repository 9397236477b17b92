//! The end of a registration: the one "check your email" answer, and the notice mailed to the
//! owner of an address someone tried to register again (instead of telling the visitor).

use crate::AuthState;
use crate::email_links;
use crate::mail::Mail;
use crate::util::Requester;
use crate::verify_email::message;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use turtlemen_db::users::User;
use turtlemen_db::{DbError, audit};

/// The answer to every accepted registration form.
pub fn check_your_email(_state: &AuthState, jar: CookieJar) -> Response {
    let page = message(
        StatusCode::OK,
        "Check your email",
        "We sent a message to the address you gave. Open the link in it to confirm your address, then sign in.",
        "/auth/login",
        "Sign in",
    );
    (jar, page).into_response()
}

/// Tells the owner of `owner.email` that someone tried to register with it.
pub async fn notify_email_taken(state: &AuthState, owner: &User, who: &Requester) -> Result<(), DbError> {
    let login = format!("{}auth/login", state.public_url.as_str());
    let reset = format!("{}auth/forgot-password", state.public_url.as_str());
    let body = format!(
        "Hello {},\n\nSomeone tried to create a Turtlemen account with this email address, which already has \
         one (username: {}).\n\nIf it was you, sign in instead: {login}\nForgot your password? {reset}\n\n\
         If it was not you, you can ignore this message.\n",
        owner.username, owner.username
    );
    let mail = Mail { to: owner.email.clone(), subject: "You already have an account".into(), body };
    email_links::send(state, Some(owner), mail).await;
    audit::record(&state.db, Some(owner.id), "register_email_taken", &who.ip, &who.user_agent, "").await
}
