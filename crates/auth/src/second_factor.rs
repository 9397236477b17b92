//! Two-step verification over HTTP: enrolment and removal on the security page, and the second
//! sign-in step.
//!
//! A correct password for an account with TOTP does not start the SSO session: it stores a
//! pending login (user and `return_to`) in the session store for five minutes under the hash of
//! a random token, and gives the browser that token in an HttpOnly cookie. The code page then
//! finishes the login — a TOTP code within one step of drift, never a step already used, or an
//! unused recovery code. Wrong codes count towards the brute-force protection under the
//! account's second-factor counter (apart from its password's, which a correct password
//! clears) and the IP's.
//!
//! Never: an SSO session before the second factor passed, a code accepted twice, a recovery
//! code stored in clear.

use crate::account::{self, Extras};
use crate::bruteforce::Subject;
use crate::login::{page, report_lockouts, see_other, store_error};
use crate::util::{Requester, hash_token, random_token};
use crate::{AuthState, sso, totp};
use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};
use turtlemen_db::users::{self, User};
use turtlemen_db::{audit, totp as stored};
use turtlemen_domain::{RedirectTarget, UserId};
use turtlemen_http::ApiError;
use turtlemen_web::auth_pages::{self, RecoveryCodesView, SecondStepView, TotpSetupView};

/// How long a half-done login waits for its code.
const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

const WRONG_CODE: &str = "Incorrect code.";

fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Secure-turtlemen_2fa" } else { "turtlemen_2fa" }
}

fn pending_key(token: &str) -> String {
    format!("2fa:{}", hash_token(token))
}

/// A login that passed its password and waits for the second factor.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    user: uuid::Uuid,
    return_to: String,
}

fn local(path: &str) -> RedirectTarget {
    RedirectTarget::parse_local(path).unwrap_or_else(RedirectTarget::home)
}

/// Pages holding secrets are never cached.
fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// After a correct password: parks the login and sends the browser to the code page.
pub(crate) async fn begin(
    state: &AuthState,
    jar: CookieJar,
    user: &User,
    target: &RedirectTarget,
) -> Result<Response, ApiError> {
    let token = random_token(32);
    let pending = Pending { user: user.id.0, return_to: target.as_str().to_owned() };
    let value = serde_json::to_vec(&pending).map_err(|e| ApiError::internal(&e))?;
    state.store.set(&pending_key(&token), &value, PENDING_TTL).await.map_err(store_error)?;
    let cookie = Cookie::build((cookie_name(state.secure_cookies), token))
        .path("/auth")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .build();
    Ok((jar.add(cookie), see_other(&local("/auth/login/code"))).into_response())
}

/// The pending login of this browser, if live.
async fn pending(state: &AuthState, jar: &CookieJar) -> Result<Option<(String, Pending)>, ApiError> {
    let Some(cookie) = jar.get(cookie_name(state.secure_cookies)) else { return Ok(None) };
    if cookie.value().len() != 43 {
        return Ok(None);
    }
    let key = pending_key(cookie.value());
    let Some(value) = state.store.get(&key).await.map_err(store_error)? else { return Ok(None) };
    Ok(serde_json::from_slice(&value).ok().map(|p| (key, p)))
}

fn clear(state: &AuthState, jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(cookie_name(state.secure_cookies)).path("/auth").build())
}

fn second_step(state: &AuthState, jar: CookieJar, status: StatusCode, error: Option<&str>) -> Response {
    let (jar, csrf) = state.csrf.token(jar);
    let html = auth_pages::second_step_page(&SecondStepView { csrf: &csrf, error });
    (jar, page(status, html)).into_response()
}

pub async fn get_code(State(state): State<AuthState>, jar: CookieJar) -> Result<Response, ApiError> {
    if pending(&state, &jar).await?.is_none() {
        return Ok((clear(&state, jar), see_other(&local("/auth/login"))).into_response());
    }
    Ok(second_step(&state, jar, StatusCode::OK, None))
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// How a second factor passed.
enum Passed {
    Totp,
    RecoveryCode,
}

/// Checks a TOTP code (recording its step) or, if it is not one, a recovery code.
async fn check_code(
    state: &AuthState,
    user_id: UserId,
    code: &str,
    allow_recovery: bool,
) -> Result<Option<Passed>, ApiError> {
    let code = code.trim();
    let Some(record) = crate::secret_box::load(state, user_id).await? else { return Ok(None) };
    if !record.enabled || code.len() > 32 {
        return Ok(None);
    }
    let now = chrono::Utc::now().timestamp();
    if let Some(step) = totp::matching_step(&record.secret, code, now, record.last_step) {
        return Ok(stored::use_step(&state.db, user_id, step).await?.then_some(Passed::Totp));
    }
    if allow_recovery && !code.bytes().all(|b| b.is_ascii_digit()) {
        let used = stored::use_recovery_code(&state.db, user_id, &totp::recovery_code_hash(code)).await?;
        return Ok(used.then_some(Passed::RecoveryCode));
    }
    Ok(None)
}

pub async fn post_code(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<CodeForm>,
) -> Result<Response, ApiError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return Ok(second_step(&state, jar, StatusCode::FORBIDDEN, Some("Your form expired. Please try again.")));
    }
    let Some((key, parked)) = pending(&state, &jar).await? else {
        return Ok((clear(&state, jar), see_other(&local("/auth/login"))).into_response());
    };
    let user_id = UserId(parked.user);
    let Some(user) = users::find_by_id(&state.db, user_id).await? else {
        return Ok((clear(&state, jar), see_other(&local("/auth/login"))).into_response());
    };
    let attempt = match state.throttle().begin(&Subject::SecondFactor(user_id), &who.ip).await.map_err(store_error)? {
        Ok(attempt) => attempt,
        Err(_) => {
            audit::record(&state.db, Some(user_id), "login_failed", &who.ip, &who.user_agent, "locked").await?;
            return Ok(second_step(&state, jar, StatusCode::UNAUTHORIZED, Some(WRONG_CODE)));
        }
    };
    let Some(passed) = check_code(&state, user_id, &form.code, true).await? else {
        let lockouts = state.throttle().failed(attempt).await.map_err(store_error)?;
        audit::record(&state.db, Some(user_id), "login_failed", &who.ip, &who.user_agent, "second factor").await?;
        report_lockouts(&state, Some(user_id), &lockouts, &who).await?;
        return Ok(second_step(&state, jar, StatusCode::UNAUTHORIZED, Some(WRONG_CODE)));
    };
    state.throttle().succeeded(attempt).await.map_err(store_error)?;
    if matches!(passed, Passed::RecoveryCode) {
        audit::record(&state.db, Some(user_id), "recovery_code_used", &who.ip, &who.user_agent, "").await?;
        tracing::info!(security.event = "recovery_code_used", user.id = %user_id, "recovery code used");
    }
    // Single use: of two concurrent completions only the one that takes the record signs in.
    if state.store.take(&key).await.map_err(store_error)?.is_none() {
        return Ok((clear(&state, jar), see_other(&local("/auth/login"))).into_response());
    }
    let jar = clear(&state, jar);
    let (jar, _) = sso::start(&state, jar, &user, &who).await?;
    tracing::info!(user.id = %user.id, "signed in with a second factor");
    Ok((jar, see_other(&local(&parked.return_to))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

fn csrf_failed() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", "The form expired; please try again.")
}

/// Starts enrolment: a fresh pending secret, then the setup page.
pub async fn start_enrolment(
    State(state): State<AuthState>,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ApiError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return Err(csrf_failed());
    }
    let Some((_, user)) = sso::current(&state, &jar).await? else { return Ok(account::to_login()) };
    crate::secret_box::put_pending(&state, user.id, &totp::new_secret()).await?;
    Ok(see_other(&local("/auth/account/totp")))
}

fn setup_page(state: &AuthState, jar: CookieJar, user: &User, secret: &[u8], error: Option<&str>) -> Response {
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (jar, csrf) = state.csrf.token(jar);
    let text = totp::base32(secret);
    let grouped: Vec<&str> = text.as_bytes().chunks(4).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    let html = auth_pages::totp_setup_page(&TotpSetupView {
        csrf: &csrf,
        secret: &grouped.join(" "),
        uri: &totp::otpauth_uri("Turtlemen", &user.username, secret),
        error,
    });
    no_store((jar, page(status, html)).into_response())
}

pub async fn get_setup(State(state): State<AuthState>, jar: CookieJar) -> Result<Response, ApiError> {
    let Some((_, user)) = sso::current(&state, &jar).await? else { return Ok(account::to_login()) };
    match crate::secret_box::load(&state, user.id).await? {
        Some(record) if !record.enabled => Ok(setup_page(&state, jar, &user, &record.secret, None)),
        _ => Ok(see_other(&local("/auth/account"))),
    }
}

/// Confirms enrolment with a first code; answers with the recovery codes, shown this once.
pub async fn confirm_enrolment(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<CodeForm>,
) -> Result<Response, ApiError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return Err(csrf_failed());
    }
    let Some((_, user)) = sso::current(&state, &jar).await? else { return Ok(account::to_login()) };
    let Some(record) = crate::secret_box::load(&state, user.id).await?.filter(|r| !r.enabled) else {
        return Ok(see_other(&local("/auth/account")));
    };
    let attempt = match state.throttle().begin(&Subject::SecondFactor(user.id), &who.ip).await.map_err(store_error)? {
        Ok(attempt) => attempt,
        Err(_) => return Ok(setup_page(&state, jar, &user, &record.secret, Some(WRONG_CODE))),
    };
    let now = chrono::Utc::now().timestamp();
    let Some(step) = totp::matching_step(&record.secret, &form.code, now, record.last_step) else {
        let lockouts = state.throttle().failed(attempt).await.map_err(store_error)?;
        report_lockouts(&state, Some(user.id), &lockouts, &who).await?;
        return Ok(setup_page(&state, jar, &user, &record.secret, Some(WRONG_CODE)));
    };
    state.throttle().succeeded(attempt).await.map_err(store_error)?;
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
    if !stored::enable(&state.db, user.id, step, &hashes).await? {
        return Ok(see_other(&local("/auth/account")));
    }
    audit::record(&state.db, Some(user.id), "totp_enabled", &who.ip, &who.user_agent, "").await?;
    tracing::info!(security.event = "totp_enabled", user.id = %user.id, "two-step verification turned on");
    let html = auth_pages::recovery_codes_page(&RecoveryCodesView { codes: &codes });
    Ok(no_store(page(StatusCode::OK, html)))
}

/// Turns the second factor off, given a current code.
pub async fn disable(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<CodeForm>,
) -> Result<Response, ApiError> {
    let Some((current, user)) = sso::current(&state, &jar).await? else { return Ok(account::to_login()) };
    let refuse = |jar: CookieJar, status: StatusCode, error: &str| {
        let extras = Extras { totp_error: Some(error.to_owned()), ..Extras::default() };
        let (state, current, user) = (&state, &current, &user);
        async move { account::render(state, jar, current, user, extras, status).await }
    };
    if !state.csrf.verify(&jar, &form.csrf) {
        return refuse(jar, StatusCode::FORBIDDEN, "The form expired. Please try again.").await;
    }
    let attempt = match state.throttle().begin(&Subject::SecondFactor(user.id), &who.ip).await.map_err(store_error)? {
        Ok(attempt) => attempt,
        Err(_) => return refuse(jar, StatusCode::UNPROCESSABLE_ENTITY, WRONG_CODE).await,
    };
    if check_code(&state, user.id, &form.code, false).await?.is_none() {
        let lockouts = state.throttle().failed(attempt).await.map_err(store_error)?;
        report_lockouts(&state, Some(user.id), &lockouts, &who).await?;
        return refuse(jar, StatusCode::UNPROCESSABLE_ENTITY, WRONG_CODE).await;
    }
    state.throttle().succeeded(attempt).await.map_err(store_error)?;
    stored::disable(&state.db, user.id).await?;
    audit::record(&state.db, Some(user.id), "totp_disabled", &who.ip, &who.user_agent, "").await?;
    tracing::info!(security.event = "totp_disabled", user.id = %user.id, "two-step verification turned off");
    Ok(see_other(&local("/auth/account?done=totp_off")))
}
