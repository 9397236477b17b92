//! The search page, `/search?q=…&date=&duration=&sort=&channel=&page=`: the same parsing and
//! query as the API ([`crate::search`]), rendered as HTML. Without `q` it shows the form; a
//! search the API would refuse is the form again with the reason, answered 400.

use super::{community, context};
use crate::identity::CurrentUser;
use crate::search::{self, DATES, DURATIONS, SORTS, Search, SearchQuery};
use crate::{ApiState, channels};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use turtlemen_http::ApiError;
use turtlemen_web::search_pages::{self, ChannelResult, Choice, SearchView};

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/search", get(search_page))
}

/// `value` if it is one of `options`, else empty (so a bad value is not echoed into links).
fn known(value: Option<&str>, options: &[(&str, &str)]) -> String {
    value.filter(|v| options.iter().any(|(o, _)| o == v)).unwrap_or("").to_owned()
}

/// At most `n` characters of `s`, for showing back what was typed.
fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

async fn search_page(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Query(q): Query<SearchQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = context(&st, viewer.as_ref(), &uri, &headers).await;
    let (date, duration, sort) =
        (known(q.date.as_deref(), DATES), known(q.duration.as_deref(), DURATIONS), known(q.sort.as_deref(), SORTS));
    let mut view = SearchView {
        q: clip(q.q.as_deref().unwrap_or("").trim(), turtlemen_domain::search::MAX_CHARS),
        dates: Choice::list(DATES, &date),
        durations: Choice::list(DURATIONS, &duration),
        sorts: Choice::list(SORTS, if sort.is_empty() { "relevance" } else { &sort }),
        date,
        duration,
        sort,
        channel: clip(q.channel.as_deref().unwrap_or("").trim(), 64),
        ..SearchView::default()
    };
    if view.q.is_empty() && q.q.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return Ok(super::public_page(&st, viewer.as_ref(), StatusCode::OK, search_pages::search_page(&view, &ctx)));
    }
    let parsed = match Search::parse(&st, &q).await {
        Ok(s) => s,
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            view.error = Some(e.body.message.into_owned());
            return Ok((StatusCode::BAD_REQUEST, Html(search_pages::search_page(&view, &ctx))).into_response());
        }
        Err(e) => return Err(e),
    };
    let results = search::run(&st, &parsed).await?;
    view.searched = true;
    view.channels = results
        .channels
        .iter()
        .map(|c| ChannelResult {
            display_name: c.display_name.clone(),
            handle: c.handle.clone(),
            url: channels::page_url(&c.handle),
            subscriber_count: c.subscriber_count,
        })
        .collect();
    view.cards = results.videos.iter().map(|v| community::card(&st, v, None)).collect();
    view.prev_url = (parsed.page > 1).then(|| view.page_url(parsed.page - 1));
    view.next_url = results.next_page.map(|p| view.page_url(p));
    Ok(super::public_page(&st, viewer.as_ref(), StatusCode::OK, search_pages::search_page(&view, &ctx)))
}
