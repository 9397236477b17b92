//! Search: `GET /api/v1/search?q=&date=&duration=&channel=&sort=&page=` →
//! `{"videos": [...], "channels": [...], "page", "next_page"}`, and suggestions as one types
//! (`GET /api/v1/search/suggestions?q=`). The `/search` page reads through [`run`] too.
//!
//! Anyone may search; results are only what anyone may see (public, playable, published videos;
//! channels are public), so the answer does not depend on who asks and needs no scope. The text
//! is parsed into plain terms ([`SearchText`]): what a viewer types never reaches FTS5 or a
//! tsquery as syntax, and bad text (too long, control characters, no word at all) is a 400 with
//! a reason. Filters: upload date (`hour`, `today` = the last 24 hours, `week`, `month`, `year`),
//! duration (`short` < 4 min, `medium` 4–20 min, `long` > 20 min), channel (a handle), sort
//! (`relevance`, `date`, `views`).
//!
//! Pages are numbered, not cursored: relevance is a float that moves as the index changes, so it
//! makes no stable keyset, and a search is read from its first pages. The number is bounded
//! ([`MAX_PAGE`]), which bounds the work a deep page costs (`OFFSET` at most
//! `(MAX_PAGE − 1) · PAGE_SIZE` rows).

use crate::channels::ChannelJson;
use crate::{ApiState, videos};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use turtlemen_db::channels::Channel;
use turtlemen_db::search::{self as rows, SearchSort, Suggestion, VideoFilter};
use turtlemen_db::videos::Video;
use turtlemen_domain::{Handle, SearchText};
use turtlemen_http::{ApiError, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Videos per page.
pub const PAGE_SIZE: u32 = 20;
/// The deepest page served.
pub const MAX_PAGE: u32 = 20;
/// Channels shown with the first page.
pub const CHANNELS: u32 = 5;
/// Suggestions: at most this many video titles and channels.
pub const SUGGESTED_VIDEOS: u32 = 6;
pub const SUGGESTED_CHANNELS: u32 = 3;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(search)).routes(routes!(suggestions))
}

/// The query string of a search, as sent (the page's form sends the same names).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find in titles, tags, descriptions, channel names and handles (required).
    /// Operators are not interpreted: every character that is not a letter or digit separates
    /// words.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Uploaded within the last `hour`, 24 hours (`today`), `week`, `month` or `year`.
    #[param(pattern = "^(any|hour|today|week|month|year)$")]
    pub date: Option<String>,
    /// `short`: under 4 minutes; `medium`: 4 to 20; `long`: over 20.
    #[param(pattern = "^(any|short|medium|long)$")]
    pub duration: Option<String>,
    /// Only this channel's videos (a handle; an unknown one matches nothing).
    #[param(max_length = 64)]
    pub channel: Option<String>,
    /// `relevance` (default), `date` (newest first) or `views` (most viewed first).
    #[param(pattern = "^(relevance|date|views)$")]
    pub sort: Option<String>,
    /// Page number (20 videos each, 1 to 20); channels come with page 1.
    #[param(minimum = 1, maximum = 20)]
    pub page: Option<u32>,
}

/// The accepted values of each filter, in the order a form offers them (value, label).
pub const DATES: &[(&str, &str)] =
    &[("hour", "Last hour"), ("today", "Today"), ("week", "This week"), ("month", "This month"), ("year", "This year")];
pub const DURATIONS: &[(&str, &str)] =
    &[("short", "Under 4 minutes"), ("medium", "4–20 minutes"), ("long", "Over 20 minutes")];
pub const SORTS: &[(&str, &str)] = &[("relevance", "Relevance"), ("date", "Upload date"), ("views", "View count")];

fn invalid(field: &str, allowed: &[(&str, &str)]) -> ApiError {
    let values: Vec<&str> = allowed.iter().map(|(v, _)| *v).collect();
    ApiError::bad_request("invalid_filter", format!("{field} is one of: {}.", values.join(", ")))
}

/// A search, parsed and checked.
#[derive(Debug, Clone)]
pub struct Search {
    pub text: SearchText,
    pub filter: VideoFilter,
    pub sort: SearchSort,
    pub page: u32,
    /// The channel filter's handle as typed, when it names no channel (nothing can match).
    pub unknown_channel: bool,
}

/// What the text of `q` is, or a 400 naming the fault (`missing_query`, `invalid_query`).
pub fn parse_text(q: Option<&str>) -> Result<SearchText, ApiError> {
    let raw = q.map(str::trim).filter(|q| !q.is_empty()).ok_or_else(|| {
        ApiError::bad_request("missing_query", "Say what to search for in q (for example ?q=turtles).")
    })?;
    SearchText::parse(raw).map_err(|e| ApiError::bad_request("invalid_query", format!("q: {e}.")))
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl Search {
    /// Parses `q`; the channel filter is looked up (an unknown handle matches nothing).
    pub async fn parse(st: &ApiState, q: &SearchQuery) -> Result<Search, ApiError> {
        let text = parse_text(q.q.as_deref())?;
        let now = Utc::now();
        let since = match non_empty(&q.date) {
            None | Some("any") => None,
            Some("hour") => Some(now - TimeDelta::hours(1)),
            Some("today") => Some(now - TimeDelta::days(1)),
            Some("week") => Some(now - TimeDelta::weeks(1)),
            Some("month") => Some(now - TimeDelta::days(31)),
            Some("year") => Some(now - TimeDelta::days(366)),
            Some(_) => return Err(invalid("date", DATES)),
        };
        let (min_secs, max_secs) = match non_empty(&q.duration) {
            None | Some("any") => (None, None),
            Some("short") => (None, Some(240.0)),
            Some("medium") => (Some(240.0), Some(1200.0)),
            Some("long") => (Some(1200.0), None),
            Some(_) => return Err(invalid("duration", DURATIONS)),
        };
        let sort = match non_empty(&q.sort) {
            None | Some("relevance") => SearchSort::Relevance,
            Some("date") => SearchSort::Newest,
            Some("views") => SearchSort::MostViewed,
            Some(_) => return Err(invalid("sort", SORTS)),
        };
        let page = q.page.unwrap_or(1);
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(ApiError::bad_request("invalid_page", format!("page is 1 to {MAX_PAGE}.")));
        }
        let (channel, unknown_channel) = match non_empty(&q.channel) {
            None => (None, false),
            Some(h) => match Handle::lookup_key(h) {
                Some(key) => match turtlemen_db::channels::find_by_key(&st.db, &key).await? {
                    Some(c) => (Some(c.id), false),
                    None => (None, true),
                },
                None => (None, true),
            },
        };
        Ok(Search { text, filter: VideoFilter { since, min_secs, max_secs, channel }, sort, page, unknown_channel })
    }
}

/// One page of results.
pub struct Results {
    pub videos: Vec<Video>,
    /// Matching channels, on the first page only.
    pub channels: Vec<Channel>,
    pub next_page: Option<u32>,
}

/// Runs `s`.
pub async fn run(st: &ApiState, s: &Search) -> Result<Results, ApiError> {
    if s.unknown_channel {
        return Ok(Results { videos: Vec::new(), channels: Vec::new(), next_page: None });
    }
    // The same for every viewer: kept a moment for all ([`crate::shared_lists`]).
    let found = st
        .lists
        .search
        .get_or_load(format!("{s:?}"), || async {
            let offset = (s.page - 1) * PAGE_SIZE;
            let mut videos = rows::videos(&st.db, &s.text, &s.filter, s.sort, offset, PAGE_SIZE + 1).await?;
            let more = videos.len() > PAGE_SIZE as usize;
            videos.truncate(PAGE_SIZE as usize);
            let channels = if s.page == 1 && s.filter.channel.is_none() {
                rows::channels(&st.db, &s.text, CHANNELS).await?
            } else {
                Vec::new()
            };
            Ok::<_, ApiError>((videos, channels, (more && s.page < MAX_PAGE).then_some(s.page + 1)))
        })
        .await?;
    let (videos, channels, next_page) = found.as_ref().clone();
    Ok(Results { videos, channels, next_page })
}

/// Search results.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = SearchResults)]
struct SearchJson {
    videos: Vec<videos::VideoView>,
    channels: Vec<ChannelJson>,
    page: u32,
    /// The next page's number; null on the last.
    next_page: Option<u32>,
}

/// Results are the same for everyone: any cache (the browser's, the gateway's page cache, a CDN)
/// may keep them for `public_page_max_age`, as the public pages.
fn shared_briefly(st: &ApiState, mut res: Response) -> Response {
    let max_age = st.videos.public_page_max_age.as_secs();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

/// Searches videos and channels.
#[utoipa::path(get, path = "/search", tag = "search",
    summary = "Public, playable videos and channels matching every word of q. Anyone may search; the answer is the same for everyone.",
    params(SearchQuery),
    responses(
        (status = 200, description = "Results.", body = SearchJson),
        (status = 400, description = "`missing_query`, `invalid_query` (too long, control characters, no word), `invalid_filter`, `invalid_page`, or a malformed query string.", body = ErrorBody),
    ))]
async fn search(State(st): State<ApiState>, Query(q): Query<SearchQuery>) -> Result<Response, ApiError> {
    let s = Search::parse(&st, &q).await?;
    let r = run(&st, &s).await?;
    let body = SearchJson {
        videos: r.videos.iter().map(|v| videos::VideoView::build(&st, v, None)).collect(),
        channels: r.channels.iter().map(|c| ChannelJson::build(c, None)).collect(),
        page: s.page,
        next_page: r.next_page,
    };
    Ok(shared_briefly(&st, Json(body).into_response()))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
struct SuggestQuery {
    /// The text typed so far (no word yet: an empty list).
    #[param(max_length = 200)]
    q: Option<String>,
}

/// A suggestion: a video title or a channel.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Suggestion)]
struct SuggestionJson {
    /// `video` or `channel`.
    #[schema(pattern = "^(video|channel)$")]
    kind: &'static str,
    /// The video's title or the channel's display name.
    text: String,
    /// The channel's handle (channels only).
    #[serde(skip_serializing_if = "Option::is_none")]
    handle: Option<String>,
    /// Where it leads: the watch page or the channel page.
    url: String,
}

/// Suggestions, channels first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Suggestions)]
struct SuggestionsJson {
    suggestions: Vec<SuggestionJson>,
}

/// `GET /api/v1/search/suggestions?q=`: channels and video titles holding every typed word, the
/// last one as a prefix of at least two letters (`tur` → "Turtle Talks"). Text that holds no
/// word yet gives an empty list rather than an error (the box asks on every key); too long or
/// control characters: 400.
#[utoipa::path(get, path = "/search/suggestions", tag = "search",
    summary = "Channels and video titles holding every typed word, the last as a prefix (two letters or more): for a search box as one types.",
    params(SuggestQuery),
    responses(
        (status = 200, description = "Suggestions, channels first.", body = SuggestionsJson),
        (status = 400, description = "`invalid_query`: too long, or control characters.", body = ErrorBody),
    ))]
async fn suggestions(State(st): State<ApiState>, Query(q): Query<SuggestQuery>) -> Result<Response, ApiError> {
    let raw = q.q.as_deref().map(str::trim).unwrap_or("");
    let text = match SearchText::parse(raw) {
        // One letter matches too much to be worth offering anything.
        Ok(t) if t.last().chars().count() < 2 => None,
        Ok(t) => Some(t),
        Err(turtlemen_domain::SearchTextError::NoTerms) => None,
        Err(e) => return Err(ApiError::bad_request("invalid_query", format!("q: {e}."))),
    };
    let found = match &text {
        Some(t) => rows::suggestions(&st.db, t, SUGGESTED_VIDEOS, SUGGESTED_CHANNELS).await?,
        None => Vec::new(),
    };
    let suggestions = found
        .into_iter()
        .map(|s| match s {
            Suggestion::Video { id, title } => {
                SuggestionJson { kind: "video", text: title, handle: None, url: videos::watch_url(id) }
            }
            Suggestion::Channel { handle, display_name } => SuggestionJson {
                kind: "channel",
                text: display_name,
                url: crate::channels::page_url(&handle),
                handle: Some(handle),
            },
        })
        .collect();
    Ok(shared_briefly(&st, Json(SuggestionsJson { suggestions }).into_response()))
}
