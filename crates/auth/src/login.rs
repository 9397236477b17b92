//! Sign-in and registration pages.
//!
//! Registration answers "check your email" whether the address was free (a new account and a
//! verification link) or taken (a notice to its owner, no account), so it never tells who has
//! an account; a taken username is said, since usernames are public. That needs mail that
//! arrives: without SMTP (the outbox) a new account is signed in at once, its address
//! unconfirmed, and a taken address is said, as PeerTube and Gitea do without mail.
//!
//! A failed sign-in says only "Incorrect username or password." whether or not the account
//! exists, and costs the same Argon2id verification either way. Every POST checks the CSRF
//! token first. After success the visitor continues to `return_to`, a checked local path.
//!
//! Brute-force protection ([`crate::bruteforce`]) counts every attempt per account (or per name
//! typed, when it names no account) and per IP; a locked attempt is answered exactly like a
//! wrong password without the password being checked. A correct password stored with older
//! Argon2 parameters is rehashed with the current ones.

use crate::accounts::{AccountError, AccountForm};
use crate::bruteforce::{Lockout, Subject};
use crate::util::Requester;
use crate::{AuthState, passwords, sso};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use turtlemen_db::users::{self, User};
use turtlemen_db::{DbError, audit};
use turtlemen_domain::{Email, RedirectTarget, Role, UserId, Username};
use turtlemen_http::ApiError;
use turtlemen_session::SessionError;
use turtlemen_web::auth_pages::{self, FieldErrors, LoginView, RegisterView};

/// Where to go after signing in when nothing (or nothing acceptable) was asked for.
const DEFAULT_TARGET: &str = "/auth/account";

/// An HTML page with a status.
pub(crate) fn page(status: StatusCode, html: String) -> Response {
    (status, Html(html)).into_response()
}

/// A 303 to a checked local path (every post-login redirect goes through here).
pub(crate) fn see_other(target: &RedirectTarget) -> Response {
    Redirect::to(target.as_str()).into_response()
}

fn target(return_to: Option<&str>) -> RedirectTarget {
    return_to
        .and_then(RedirectTarget::parse_local)
        .unwrap_or_else(|| RedirectTarget::parse_local(DEFAULT_TARGET).unwrap_or_else(RedirectTarget::home))
}

#[derive(Debug, Deserialize)]
pub struct ReturnTo {
    return_to: Option<String>,
    /// Show the form even to a signed-in visitor (the request asked for a fresh sign-in).
    force: Option<String>,
}

pub async fn get_login(
    State(state): State<AuthState>,
    jar: CookieJar,
    Query(q): Query<ReturnTo>,
) -> Result<Response, ApiError> {
    let target = target(q.return_to.as_deref());
    if q.force.is_none() && sso::current(&state, &jar).await?.is_some() {
        return Ok(see_other(&target));
    }
    let (jar, csrf) = state.csrf.token(jar);
    let providers = crate::broker::buttons(&state);
    let html = auth_pages::login_page(&LoginView {
        csrf: &csrf,
        return_to: target.as_str(),
        username: "",
        error: None,
        providers: &providers,
    });
    Ok((jar, page(StatusCode::OK, html)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    return_to: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// The account a sign-in names, by username or email.
pub(crate) async fn find_account(state: &AuthState, name: &str) -> Result<Option<User>, DbError> {
    if let Ok(username) = Username::parse(name)
        && let Some(user) = users::find_by_username(&state.db, &username).await?
    {
        return Ok(Some(user));
    }
    match Email::parse(name) {
        Ok(email) => users::find_by_email(&state.db, &email).await,
        Err(_) => Ok(None),
    }
}

/// Verifies off the async workers ([`passwords::run`]): Argon2id takes tens of milliseconds of CPU.
pub(crate) async fn verify_password(password: String, hash: String) -> bool {
    passwords::run(move || passwords::verify(&password, &hash)).await.unwrap_or(false)
}

/// Records the lockouts a failure started, in the audit log and as security events.
pub(crate) async fn report_lockouts(
    state: &AuthState,
    user_id: Option<UserId>,
    lockouts: &[Lockout],
    who: &Requester,
) -> Result<(), DbError> {
    for lockout in lockouts {
        let detail = lockout.detail();
        let user = user_id.map(|u| u.to_string()).unwrap_or_else(|| "unknown".into());
        tracing::warn!(security.event = "lockout", user.id = %user, client.ip = %who.ip, lockout = %detail, "brute-force lockout");
        audit::record(&state.db, user_id, "lockout", &who.ip, &who.user_agent, &detail).await?;
    }
    Ok(())
}

/// The password is right: stores a fresh hash when the stored one was made with other
/// parameters. A failure here is logged, never a failed sign-in.
async fn rehash_if_needed(state: &AuthState, user: &User, stored: &str, password: String) {
    if !passwords::needs_rehash(stored) {
        return;
    }
    let fresh = passwords::run(move || passwords::hash(&password)).await;
    let outcome = match fresh {
        Ok(Ok(hash)) => users::set_password_hash(&state.db, user.id, &hash).await.map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(()) => tracing::info!(user.id = %user.id, "password rehashed with the current parameters"),
        Err(e) => tracing::warn!(user.id = %user.id, error = %e, "rehashing a password failed"),
    }
}

/// What a banned account is told once it has proved who it is.
pub(crate) const SUSPENDED: &str = "This account is suspended by the moderators of this instance.";

pub async fn post_login(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let target = target(form.return_to.as_deref());
    let retry = |jar: CookieJar, status: StatusCode, message: &str, username: &str| {
        let (jar, csrf) = state.csrf.token(jar);
        let html = auth_pages::login_page(&LoginView {
            csrf: &csrf,
            return_to: target.as_str(),
            username,
            error: Some(message),
            providers: &crate::broker::buttons(&state),
        });
        (jar, page(status, html)).into_response()
    };
    if !state.csrf.verify(&jar, &form.csrf) {
        return Ok(retry(jar, StatusCode::FORBIDDEN, "Your form expired. Please sign in again.", ""));
    }
    let name = form.username.trim();
    let shown_name: String = name.chars().take(254).collect();
    let oversized = name.len() > 254 || form.password.len() > 1024;
    let account = if oversized || name.is_empty() { None } else { find_account(&state, name).await? };
    let user_id = account.as_ref().map(|u| u.id);
    let refuse = |jar: CookieJar| retry(jar, StatusCode::UNAUTHORIZED, "Incorrect username or password.", &shown_name);

    let subject = match user_id {
        Some(id) => Subject::Account(id),
        None => Subject::Unknown(&shown_name),
    };
    let attempt = match state.throttle().begin(&subject, &who.ip).await.map_err(store_error)? {
        Ok(attempt) => attempt,
        Err(locked) => {
            // Refused unchecked, answered exactly like a wrong password.
            audit::record(&state.db, user_id, "login_failed", &who.ip, &who.user_agent, "locked").await?;
            tracing::info!(security.event = "login_locked", user.known = user_id.is_some(), client.ip = %who.ip, locked = ?locked, "sign-in refused while locked");
            return Ok(refuse(jar));
        }
    };

    let stored = match &account {
        Some(user) => users::password_hash(&state.db, user.id).await?,
        None => None,
    };
    let password = form.password;
    let matches = verify_password(password.clone(), stored.clone().unwrap_or_else(|| state.dummy_hash.clone())).await;
    match (account, stored) {
        (Some(user), Some(stored)) if matches => {
            state.throttle().succeeded(attempt).await.map_err(store_error)?;
            if user.is_banned() {
                // Said only after a correct password: no one learns whether an account exists.
                audit::record(&state.db, Some(user.id), "login_failed", &who.ip, &who.user_agent, "banned").await?;
                tracing::info!(security.event = "login_banned", user.id = %user.id, "sign-in refused: account banned");
                return Ok(retry(jar, StatusCode::FORBIDDEN, SUSPENDED, &shown_name));
            }
            rehash_if_needed(&state, &user, &stored, password).await;
            if turtlemen_db::totp::is_enabled(&state.db, user.id).await? {
                // No session yet: the second factor finishes the login.
                return crate::second_factor::begin(&state, jar, &user, &target).await;
            }
            let (jar, _) = sso::start(&state, jar, &user, &who).await?;
            tracing::info!(user.id = %user.id, "signed in");
            Ok((jar, see_other(&target)).into_response())
        }
        _ => {
            let lockouts = state.throttle().failed(attempt).await.map_err(store_error)?;
            audit::record(&state.db, user_id, "login_failed", &who.ip, &who.user_agent, "password").await?;
            report_lockouts(&state, user_id, &lockouts, &who).await?;
            tracing::info!(user.known = user_id.is_some(), client.ip = %who.ip, "sign-in failed");
            Ok(refuse(jar))
        }
    }
}

/// The session store failed during a brute-force check: refuse rather than let the attempt
/// through unchecked.
pub(crate) fn store_error(e: SessionError) -> ApiError {
    tracing::error!(error = %e, "session store error during a brute-force check");
    ApiError::unavailable("Signing in is unavailable for a moment. Please try again.")
}

pub async fn get_register(
    State(state): State<AuthState>,
    jar: CookieJar,
    Query(q): Query<ReturnTo>,
) -> Result<Response, ApiError> {
    let target = target(q.return_to.as_deref());
    if sso::current(&state, &jar).await?.is_some() {
        return Ok(see_other(&target));
    }
    let (jar, csrf) = state.csrf.token(jar);
    let html = auth_pages::register_page(&RegisterView {
        csrf: &csrf,
        return_to: target.as_str(),
        username: "",
        email: "",
        display_name: "",
        errors: FieldErrors::default(),
    });
    Ok((jar, page(StatusCode::OK, html)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    return_to: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

pub async fn post_register(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<RegisterForm>,
) -> Result<Response, ApiError> {
    let target = target(form.return_to.as_deref());
    let clip = |s: &str| s.chars().take(254).collect::<String>();
    let again = |jar: CookieJar, status: StatusCode, errors: FieldErrors| {
        let (jar, csrf) = state.csrf.token(jar);
        let html = auth_pages::register_page(&RegisterView {
            csrf: &csrf,
            return_to: target.as_str(),
            username: &clip(&form.username),
            email: &clip(&form.email),
            display_name: &clip(&form.display_name),
            errors,
        });
        (jar, page(status, html)).into_response()
    };
    if !state.csrf.verify(&jar, &form.csrf) {
        let errors = FieldErrors { form: Some("Your form expired. Please try again.".into()), ..Default::default() };
        return Ok(again(jar, StatusCode::FORBIDDEN, errors));
    }
    if form.password.len() > 1024 {
        let errors =
            FieldErrors { password: Some(passwords::PasswordError::TooLong.to_string()), ..Default::default() };
        return Ok(again(jar, StatusCode::UNPROCESSABLE_ENTITY, errors));
    }
    let account = AccountForm {
        username: &form.username,
        email: &form.email,
        display_name: Some(&form.display_name),
        password: &form.password,
        role: Role::User,
        promote_if_first: state.settings.first_user_admin,
    };
    let mut problems = crate::accounts::problems(&account);
    // A taken username may be said (usernames are public); a taken email may not.
    if let Ok(name) = Username::parse(&form.username)
        && users::find_by_username(&state.db, &name).await?.is_some()
    {
        problems.push(AccountError::UsernameTaken);
    }
    let outcome = if problems.is_empty() {
        crate::accounts::create(&state.db, account).await.map_err(|e| vec![e])
    } else {
        Err(problems)
    };
    let user = match outcome {
        Ok(user) => user,
        Err(problems) if matches!(problems.as_slice(), [AccountError::EmailTaken]) && !state.mailer.delivers() => {
            // No mail leaves this instance, so no notice could reach the owner: say it.
            let errors = FieldErrors {
                email: Some("An account already uses this address. Sign in instead.".into()),
                ..Default::default()
            };
            return Ok(again(jar, StatusCode::UNPROCESSABLE_ENTITY, errors));
        }
        Err(problems) if matches!(problems.as_slice(), [AccountError::EmailTaken]) => {
            // Answered exactly like a new account; the address's owner is told by mail.
            if let Ok(email) = Email::parse(&form.email)
                && let Some(owner) = users::find_by_email(&state.db, &email).await?
            {
                crate::registration::notify_email_taken(&state, &owner, &who).await?;
            }
            return Ok(crate::registration::check_your_email(&state, jar));
        }
        Err(problems) => {
            let mut errors = FieldErrors::default();
            for e in problems {
                match e {
                    AccountError::Username(e) => errors.username = Some(e.to_string()),
                    AccountError::UsernameTaken => errors.username = Some("This username is taken.".into()),
                    AccountError::Email(e) => errors.email = Some(e.to_string()),
                    // Never said: handled above when it is the only problem, left out otherwise.
                    AccountError::EmailTaken => {}
                    AccountError::DisplayName => {
                        errors.display_name = Some("A display name is at most 64 characters.".into())
                    }
                    AccountError::Password(e) => errors.password = Some(e.to_string()),
                    AccountError::Db(e) => return Err(e.into()),
                }
            }
            return Ok(again(jar, StatusCode::UNPROCESSABLE_ENTITY, errors));
        }
    };
    audit::record(&state.db, Some(user.id), "register", &who.ip, &who.user_agent, "").await?;
    crate::email_links::send_verification(&state, &user, target.as_str()).await?;
    if !state.mailer.delivers() {
        // The link went to the outbox, which nobody but the operator reads: waiting for it
        // would leave the new account stuck, so it is signed in now (its address unconfirmed).
        let (jar, _) = sso::start_with(&state, jar, &user, &who, "registration").await?;
        tracing::info!(user.id = %user.id, "registered and signed in (no mail delivery configured)");
        return Ok((jar, see_other(&target)).into_response());
    }
    Ok(crate::registration::check_your_email(&state, jar))
}
