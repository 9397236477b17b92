//! The blocked-words pages: `/admin/blocked-words` (the instance's list, admins only; 404 to
//! anyone else, as `/admin/reports` is to anyone but moderators) and the form both it and the
//! channel edit page show ([`form`]).
//!
//! The list is a textarea, one word or phrase a line, posted with the CSRF token
//! ([`super::csrf`]) and replaced through [`crate::blocked_words::replace`], so the limits and the
//! normalisation are the API's. A refused list shows the page again with the reason and what was
//! typed (escaped, as every value a template shows). Never here: matching comments against a
//! list ([`crate::comments`] does).

use super::{context, csrf, private};
use crate::identity::CurrentUser;
use crate::{ApiState, blocked_words};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use turtlemen_db::comments as rows;
use turtlemen_domain::Role;
use turtlemen_domain::comment_text::MAX_WORD_CHARS;
use turtlemen_http::ApiError;
use turtlemen_identity::Scope;
use turtlemen_web::moderation_pages::{self, BlockedWordsForm, BlockedWordsView};
use uuid::Uuid;

const PAGE: &str = "/admin/blocked-words";

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route(PAGE, get(instance_page).post(instance_submit))
}

/// The list of `scope` as the form's field shows it: one entry a line.
pub(super) async fn shown(st: &ApiState, scope: Uuid) -> Result<String, ApiError> {
    Ok(rows::blocked_words(&st.db, scope).await?.join("\n"))
}

/// The form posting to `action`, showing `words`; `applies` says what the list applies to.
pub(super) fn form(
    st: &ApiState,
    user: &CurrentUser,
    action: String,
    words: String,
    applies: &str,
) -> BlockedWordsForm {
    BlockedWordsForm {
        action,
        csrf: csrf::token(st, user),
        words,
        max_words: blocked_words::MAX_WORDS,
        max_chars: MAX_WORD_CHARS,
        applies: applies.to_owned(),
    }
}

/// The viewer, if an admin with the page's full access (as the API's admin routes ask); 404
/// for anyone else.
fn admin(viewer: Option<CurrentUser>) -> Result<CurrentUser, ApiError> {
    viewer.filter(|u| u.0.role == Role::Admin && u.require(Scope::Admin).is_ok()).ok_or_else(ApiError::not_found)
}

const APPLIES: &str =
    "Every comment on the site is checked against them; one holding a word waits for the video owner's approval.";

async fn show(
    st: &ApiState,
    user: &CurrentUser,
    uri: &Uri,
    headers: &HeaderMap,
    words: String,
    error: Option<String>,
    notice: Option<String>,
) -> String {
    let view = BlockedWordsView { form: form(st, user, PAGE.to_owned(), words, APPLIES), error, notice };
    moderation_pages::blocked_words_page(&view, &context(st, Some(user), uri, headers).await)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PageQuery {
    done: Option<String>,
}

/// `GET /admin/blocked-words`.
async fn instance_page(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Query(q): Query<PageQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = admin(viewer)?;
    let words = shown(&st, rows::INSTANCE).await?;
    let notice = (q.done.as_deref() == Some("saved")).then(|| "Blocked words saved.".to_owned());
    Ok(private(show(&st, &user, &uri, &headers, words, None, notice).await))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WordsForm {
    csrf: String,
    words: String,
}

/// `POST /admin/blocked-words`: replaces the instance's list.
async fn instance_submit(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<WordsForm>,
) -> Result<Response, ApiError> {
    let user = admin(viewer)?;
    csrf::check(&st, &user, &form.csrf)?;
    match blocked_words::replace(&st, rows::INSTANCE, &blocked_words::from_lines(&form.words)).await {
        Ok(_) => Ok(Redirect::to(&format!("{PAGE}?done=saved")).into_response()),
        Err(e) if e.status.is_client_error() => {
            let html = show(&st, &user, &uri, &headers, form.words, Some(e.body.message.into_owned()), None).await;
            let mut res = private(html);
            *res.status_mut() = e.status;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}
