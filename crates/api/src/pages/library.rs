//! The library pages: the watch page's rating, watch later, "Save to playlist" and playlist
//! panel; a playlist's page (`/playlists/{id}`, with the owner's forms); the library page
//! (`/playlists`); the history page (`/history`); and the forms they post.
//!
//! They read and write through the same functions as the JSON API ([`crate::ratings`],
//! [`crate::playlists`], [`crate::history`]), so visibility and validation are decided once: a
//! private list is a 404 page exactly where it is a 404 answer. Every form carries the CSRF
//! token ([`super::csrf`]) and comes back to a checked local path.

use super::{context, csrf, private, whole_seconds};
use crate::identity::CurrentUser;
use crate::playlists::{self, Named, PlaylistPatch};
use crate::ratings::{self, RatingChoice};
use crate::{ApiState, history, videos};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use turtlemen_db::playlists::{self as rows, Kind};
use turtlemen_db::videos::{Privacy, Video};
use turtlemen_db::watch_state::WatchState;
use turtlemen_domain::RedirectTarget;
use turtlemen_http::ApiError;
use turtlemen_identity::Scope;
use turtlemen_web::FeedCard;
use turtlemen_web::library_pages::{
    self, HistoryRow, HistoryView, LibraryView, PanelItem, PlaylistChoice, PlaylistPanel, PlaylistRow, PlaylistSummary,
    PlaylistView, RatingBox, WatchLibrary,
};

/// Items per page of a playlist's page and the history page.
const PAGE: u32 = 50;
/// Items the watch page's panel shows around the playing one.
const PANEL: u32 = 20;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/videos/{id}/rating", post(rate_submit))
        .route("/videos/{id}/watch-later", post(watch_later_submit))
        .route("/videos/{id}/playlists", post(save_submit))
        .route("/playlists", get(library_page).post(create_submit))
        .route("/playlists/{id}", get(playlist_page))
        .route("/playlists/{id}/edit", post(edit_submit))
        .route("/playlists/{id}/delete", post(delete_submit))
        .route("/playlists/{id}/items/{item}/move", post(move_submit))
        .route("/playlists/{id}/items/{item}/remove", post(remove_submit))
        .route("/history", get(history_page))
        .route("/history/settings", post(history_settings_submit))
        .route("/history/clear", post(history_clear_submit))
        .route("/history/{video}/remove", post(history_remove_submit))
}

/// The watch page's query: `?list=…&index=n` plays a playlist in order, `?t=` starts there.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct WatchQuery {
    list: Option<String>,
    index: Option<u32>,
    t: Option<String>,
}

/// `?t=90`, `?t=90s` or `?t=1m30s` in seconds.
fn parse_t(t: &str) -> Option<u32> {
    let t = t.trim();
    if let Ok(n) = t.trim_end_matches('s').parse::<u32>() {
        return Some(n);
    }
    let (m, s) = t.split_once('m')?;
    let m: u32 = m.parse().ok()?;
    let s: u32 = if s.is_empty() { 0 } else { s.trim_end_matches('s').parse().ok()? };
    m.checked_mul(60)?.checked_add(s)
}

/// The watch URL of the `index`-th (1-based) video of list `list`.
fn in_list(video: uuid::Uuid, list: &str, index: u32) -> String {
    format!("{}?list={list}&index={index}", videos::watch_url(video))
}

/// What the watch page shows of `viewer`'s library for `v`; `state` is the signed-in viewer's
/// ([`turtlemen_db::watch_state`], read once for the whole page).
pub(super) async fn watch_library(
    st: &ApiState,
    v: &Video,
    viewer: Option<(&CurrentUser, &WatchState)>,
    q: &WatchQuery,
    return_to: &str,
) -> Result<WatchLibrary, ApiError> {
    let mine = viewer
        .filter(|(u, _)| u.require(Scope::LibraryRead).is_ok())
        .map(|(_, state)| RatingChoice::of(state.rating))
        .unwrap_or(RatingChoice::None);
    let rating = RatingBox {
        video_id: v.id.to_string(),
        likes: v.likes,
        dislikes: v.dislikes,
        mine: match mine {
            RatingChoice::Like => "like",
            RatingChoice::Dislike => "dislike",
            RatingChoice::None => "none",
        }
        .into(),
        csrf: viewer.map(|(u, _)| csrf::token(st, u)),
        return_to: return_to.to_owned(),
    };
    let mut lib = WatchLibrary { rating, ..WatchLibrary::default() };
    if let Some((_, state)) = viewer {
        // "Watch later" is offered first even before the list exists (adding makes it).
        if !state.playlists.iter().any(|p| p.kind == Kind::WatchLater) {
            lib.playlists.push(PlaylistChoice {
                id: playlists::WATCH_LATER.to_owned(),
                title: rows::WATCH_LATER_TITLE.to_owned(),
                contains: false,
            });
        }
        for p in &state.playlists {
            let id = if p.kind == Kind::WatchLater {
                lib.in_watch_later = p.contains;
                playlists::WATCH_LATER.to_owned()
            } else {
                p.id.to_string()
            };
            lib.playlists.push(PlaylistChoice { id, title: p.title.clone(), contains: p.contains });
        }
        lib.record_history = !state.history_paused;
        lib.start_at = history::resume_from(state.position_secs, v);
    }
    if let Some(t) = q.t.as_deref().and_then(parse_t) {
        lib.start_at = Some(t);
    }
    if let Some(list) = q.list.as_deref() {
        // A list one may not see, or a broken `list`, only loses the panel.
        if let Ok(named) = playlists::find(st, list, viewer.map(|(u, _)| u)).await {
            lib.panel = panel(st, &named, list, viewer.map(|(u, _)| u), q.index.unwrap_or(1).max(1), v).await?;
        }
    }
    Ok(lib)
}

/// The panel of the list being played, around the `index`-th (1-based) video.
async fn panel(
    st: &ApiState,
    named: &Named,
    list: &str,
    viewer: Option<&CurrentUser>,
    index: u32,
    v: &Video,
) -> Result<Option<PlaylistPanel>, ApiError> {
    let from = index.saturating_sub(PANEL / 2 + 1);
    let (title, url, total, videos) = match named {
        Named::Stored(p) => {
            let items = rows::items_from(&st.db, p.id, viewer.map(|u| u.0.id), from, PANEL).await?;
            (p.title.clone(), playlists::page_url(list), p.item_count, items.into_iter().map(|i| i.video).collect())
        }
        Named::Liked(owner) => {
            // Liked videos are few enough to page from the start.
            let liked = turtlemen_db::ratings::liked(&st.db, owner.0, None, from + PANEL).await?;
            let total = turtlemen_db::ratings::liked_count(&st.db, owner.0).await?;
            let vids: Vec<Video> = liked.into_iter().skip(from as usize).map(|(v, _)| v).collect();
            ("Liked videos".to_owned(), playlists::page_url(list), total, vids)
        }
    };
    let items: Vec<PanelItem> = videos
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let n = from + i as u32 + 1;
            PanelItem {
                index: n,
                title: w.title.clone(),
                url: in_list(w.id, list, n),
                current: n == index && w.id == v.id,
            }
        })
        .collect();
    let at = |n: u32| items.iter().find(|i| i.index == n).map(|i| i.url.clone());
    Ok(Some(PlaylistPanel {
        title,
        url,
        index,
        total,
        next_url: at(index + 1),
        previous_url: index.checked_sub(1).and_then(at),
        items,
    }))
}

/// A card of a video as the API shows it (lists here carry `VideoView`s).
fn card_of(v: &videos::VideoView) -> FeedCard {
    let published = v.published_at.unwrap_or(v.created_at);
    FeedCard {
        title: v.title.clone(),
        watch_url: v.watch_url.clone(),
        thumbnail_url: v.poster_url.clone(),
        duration_secs: whole_seconds(v.duration_secs),
        channel_name: v.channel.display_name.clone(),
        channel_url: v.channel.url.clone(),
        channel_avatar_url: None,
        views: v.views,
        age: turtlemen_web::channel_pages::age_label((chrono::Utc::now() - published).num_seconds()),
        published: published.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        is_new: false,
    }
}

/// A form that comes back to where it was posted from.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct BackForm {
    csrf: String,
    return_to: String,
    rating: String,
    action: String,
    playlist: String,
}

fn back(return_to: &str, fallback: String) -> Redirect {
    Redirect::to(RedirectTarget::parse_local(return_to).map(|t| t.as_str().to_owned()).as_deref().unwrap_or(&fallback))
}

/// `POST /videos/{id}/rating`: like, dislike or `none`, then back.
async fn rate_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<BackForm>,
) -> Result<Redirect, crate::rate_limit::Refusal> {
    csrf::check(&st, &user, &form.csrf)?;
    let choice = RatingChoice::parse(&form.rating)
        .ok_or_else(|| ApiError::bad_request("invalid_rating", "rating is like, dislike or none."))?;
    ratings::set(&st, &user, &id, choice).await?;
    Ok(back(&form.return_to, format!("/videos/{id}")))
}

/// `POST /videos/{id}/watch-later`: `action=add|remove`, then back.
async fn watch_later_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<BackForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let v = videos::visible(&st, &id, Some(&user)).await?;
    match form.action.as_str() {
        "add" => match playlists::add_for(&st, &user, playlists::WATCH_LATER, &id).await {
            Ok(_) => {}
            Err(e) if e.body.error == "already_in_playlist" => {}
            Err(e) => return Err(e),
        },
        "remove" => {
            // Nothing to take out of a Watch later never used (and nothing made to find so).
            let wl = playlists::watch_later_as_is(&st, &user).await?;
            if let Some(item) = rows::item_of(&st.db, wl.id, v.id).await? {
                rows::remove_item(&st.db, wl.id, item).await?;
            }
        }
        _ => return Err(ApiError::bad_request("invalid_action", "action is add or remove.")),
    }
    Ok(back(&form.return_to, videos::watch_url(v.id)))
}

/// `POST /videos/{id}/playlists`: saves the video to `playlist`, then back.
async fn save_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<BackForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    match playlists::add_for(&st, &user, &form.playlist, &id).await {
        Ok(_) => {}
        Err(e) if e.body.error == "already_in_playlist" => {}
        Err(e) => return Err(e),
    }
    Ok(back(&form.return_to, format!("/videos/{id}")))
}

fn privacy_label(p: Privacy) -> &'static str {
    match p {
        Privacy::Public => "Public",
        Privacy::Unlisted => "Unlisted",
        Privacy::Private => "Private",
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PageQuery {
    cursor: Option<String>,
    done: Option<String>,
}

/// `GET /playlists`: the viewer's lists (a visitor is sent to sign in).
async fn library_page(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(user) = viewer else {
        return Ok(Redirect::to("/oauth2/start?rd=%2Fplaylists").into_response());
    };
    render_library(&st, &user, &uri, &headers, None, String::new()).await
}

/// A list as the library and channel pages show it.
pub(super) fn summary(p: playlists::PlaylistJson) -> PlaylistSummary {
    PlaylistSummary {
        title: p.title,
        url: p.url,
        privacy_label: privacy_label(p.privacy).into(),
        item_count: p.item_count,
    }
}

async fn render_library(
    st: &ApiState,
    user: &CurrentUser,
    uri: &Uri,
    headers: &HeaderMap,
    error: Option<String>,
    title: String,
) -> Result<Response, ApiError> {
    let lists = playlists::all_of(st, user).await?;
    let view =
        LibraryView { playlists: lists.into_iter().map(summary).collect(), csrf: csrf::token(st, user), error, title };
    Ok(private(library_pages::library_page(&view, &context(st, Some(user), uri, headers).await)))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PlaylistForm {
    csrf: String,
    title: String,
    description: String,
    privacy: String,
    position: Option<u32>,
}

/// `POST /playlists`: makes a list, then shows it; a refusal shows the form again (400).
async fn create_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<PlaylistForm>,
) -> Result<Response, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let patch = PlaylistPatch {
        title: Some(form.title.clone()),
        description: None,
        privacy: Some(form.privacy.clone()).filter(|p| !p.is_empty()),
        channel: None,
    };
    match playlists::create_for(&st, &user, patch).await {
        Ok(p) => Ok(Redirect::to(&playlists::page_url(&p.id.to_string())).into_response()),
        Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT => {
            let status = e.status;
            let mut res =
                render_library(&st, &user, &uri, &headers, Some(e.body.message.into_owned()), form.title).await?;
            *res.status_mut() = status;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

/// `GET /playlists/{id}`: a list anyone allowed may see, its owner's forms for them.
async fn playlist_page(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let viewer = viewer.as_ref();
    if viewer.is_none() && (id == playlists::WATCH_LATER || id == playlists::LIKED) {
        return Ok(Redirect::to(&format!("/oauth2/start?rd=%2Fplaylists%2F{id}")).into_response());
    }
    let named = playlists::find(&st, &id, viewer).await?;
    let json = playlists::json_of(&st, &named, viewer).await?;
    let page = playlists::item_page(&st, &named, viewer, q.cursor.as_deref(), PAGE).await?;
    // Later pages start where the cursor points: count what came before for the numbers.
    let offset = match (&named, q.cursor.as_deref()) {
        (Named::Stored(p), Some(c)) if !c.is_empty() => {
            let (pos, item) = crate::cursor::decode(&st, crate::cursor::Kind::PlaylistItems, c)?;
            before(&st, p.id, viewer, pos, item).await?
        }
        _ => 0,
    };
    let (editable, reorderable, csrf) = match (&named, viewer) {
        (Named::Stored(p), Some(u)) if playlists::may_manage(p, u) => {
            (p.kind == Kind::User, true, Some(csrf::token(&st, u)))
        }
        _ => (false, false, None),
    };
    let rows: Vec<PlaylistRow> = page
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let n = offset + i as u32;
            let mut card = card_of(&item.video);
            card.watch_url = in_list(item.video.id, &json.id, n + 1);
            PlaylistRow { item_id: item.id.to_string(), card, position: n }
        })
        .collect();
    let view = PlaylistView {
        play_url: page.items.first().filter(|_| offset == 0).map(|i| in_list(i.video.id, &json.id, 1)),
        next_url: page.next_cursor.as_ref().map(|c| format!("{}?cursor={c}", json.url)),
        id: json.id.clone(),
        title: json.title.clone(),
        description: json.description.clone(),
        privacy_label: privacy_label(json.privacy).into(),
        privacy: json.privacy.as_str().into(),
        owner: json.owner.clone(),
        channel_name: json.channel.as_ref().map(|c| c.display_name.clone()),
        channel_url: json.channel.as_ref().map(|c| c.url.clone()),
        item_count: json.item_count,
        rows,
        csrf,
        editable,
        reorderable,
        notice: q.done.as_deref().and_then(|d| match d {
            "saved" => Some("Playlist saved.".to_owned()),
            "moved" => Some("Moved.".to_owned()),
            "removed" => Some("Removed from the playlist.".to_owned()),
            _ => None,
        }),
        error: None,
        offset,
    };
    let html = library_pages::playlist_page(&view, &context(&st, viewer, &uri, &headers).await);
    Ok(if json.privacy == Privacy::Public { axum::response::Html(html).into_response() } else { private(html) })
}

/// How many visible items come before `(pos, item)` (the numbering of a later page).
async fn before(
    st: &ApiState,
    playlist: uuid::Uuid,
    viewer: Option<&CurrentUser>,
    pos: i64,
    item: uuid::Uuid,
) -> Result<u32, ApiError> {
    let mut n = 0u32;
    let mut after = None;
    // At most 5,000 items: a hundred pages of keys at worst.
    loop {
        let page = rows::items(&st.db, playlist, viewer.map(|u| u.0.id), after, 100).await?;
        for i in &page {
            if (i.position, i.id) > (pos, item) {
                return Ok(n);
            }
            n += 1;
        }
        match page.last() {
            Some(last) if page.len() == 100 => after = Some((last.position, last.id)),
            _ => return Ok(n),
        }
    }
}

/// `POST /playlists/{id}/edit`.
async fn edit_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<PlaylistForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let patch = PlaylistPatch {
        title: Some(form.title),
        description: Some(form.description),
        privacy: Some(form.privacy),
        channel: None,
    };
    playlists::update_for(&st, &user, &id, patch).await?;
    Ok(Redirect::to(&format!("{}?done=saved", playlists::page_url(&id))))
}

/// `POST /playlists/{id}/delete`.
async fn delete_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<PlaylistForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    playlists::delete_for(&st, &user, &id).await?;
    Ok(Redirect::to("/playlists"))
}

/// `POST /playlists/{id}/items/{item}/move` with `position` (0-based).
async fn move_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path((id, item)): Path<(String, String)>,
    axum::Form(form): axum::Form<PlaylistForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let position = form.position.ok_or_else(|| ApiError::bad_request("invalid_field", "position: a number from 0"))?;
    playlists::move_for(&st, &user, &id, &item, position.min(rows::MAX_ITEMS as u32)).await?;
    Ok(Redirect::to(&format!("{}?done=moved", playlists::page_url(&id))))
}

/// `POST /playlists/{id}/items/{item}/remove`.
async fn remove_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path((id, item)): Path<(String, String)>,
    axum::Form(form): axum::Form<PlaylistForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    playlists::remove_for(&st, &user, &id, &item).await?;
    Ok(Redirect::to(&format!("{}?done=removed", playlists::page_url(&id))))
}

/// `GET /history` (a `required` route).
async fn history_page(
    State(st): State<ApiState>,
    user: CurrentUser,
    Query(q): Query<PageQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let page = history::page(&st, &user, q.cursor.as_deref(), PAGE).await?;
    let view = HistoryView {
        rows: page
            .entries
            .iter()
            .map(|e| {
                let mut card = card_of(&e.video);
                card.watch_url = format!("{}?t={}", e.video.watch_url, e.position_secs);
                HistoryRow {
                    video_id: e.video.id.to_string(),
                    card,
                    resume_label: library_pages::resume_label(e.position_secs),
                }
            })
            .collect(),
        paused: page.paused,
        csrf: csrf::token(&st, &user),
        next_url: page.next_cursor.map(|c| format!("/history?cursor={c}")),
        notice: q.done.as_deref().and_then(|d| match d {
            "cleared" => Some("History cleared.".to_owned()),
            "removed" => Some("Removed from your history.".to_owned()),
            "paused" => Some("History paused.".to_owned()),
            "resumed" => Some("History resumed.".to_owned()),
            _ => None,
        }),
    };
    Ok(private(library_pages::history_page(&view, &context(&st, Some(&user), &uri, &headers).await)))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct HistoryForm {
    csrf: String,
    paused: String,
}

/// `POST /history/settings` with `paused=1|0`.
async fn history_settings_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    axum::Form(form): axum::Form<HistoryForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let paused = form.paused == "1";
    turtlemen_db::history::set_paused(&st.db, user.0.id, paused).await?;
    Ok(Redirect::to(if paused { "/history?done=paused" } else { "/history?done=resumed" }))
}

/// `POST /history/clear`.
async fn history_clear_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    axum::Form(form): axum::Form<HistoryForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    turtlemen_db::history::clear(&st.db, user.0.id).await?;
    Ok(Redirect::to("/history?done=cleared"))
}

/// `POST /history/{video}/remove`.
async fn history_remove_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(video): Path<String>,
    axum::Form(form): axum::Form<HistoryForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let id = uuid::Uuid::parse_str(&video).map_err(|_| ApiError::not_found())?;
    turtlemen_db::history::remove(&st.db, user.0.id, id).await?;
    Ok(Redirect::to("/history?done=removed"))
}
