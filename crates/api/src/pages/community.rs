//! The community pages: a channel's page (`/@{handle}`), its Subscribe form
//! (`POST /@{handle}/subscription`) and the subscriptions feed (`/subscriptions`).
//!
//! They read and write through the same functions as the JSON API ([`crate::channels`],
//! [`crate::subscriptions`], [`crate::feed`]), so visibility, validation and the cursor checks
//! are decided once. The Subscribe form carries the studio's CSRF token ([`super::csrf`]) and
//! comes back to the page it was posted from (a checked local path), so it works without
//! JavaScript.

use super::{context, csrf, private, whole_seconds};
use crate::identity::CurrentUser;
use crate::{ApiState, channel_images, channels, feed, subscriptions, videos};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use turtlemen_db::channels::{Channel, Picture, VideoSort};
use turtlemen_db::videos::{Card, Video};
use turtlemen_domain::{RedirectTarget, UserId};
use turtlemen_http::ApiError;
use turtlemen_web::channel_pages::{
    self, Avatar, ChannelLink, ChannelView, FeedCard, FeedView, LinkItem, SubscribeButton,
};
use uuid::Uuid;

/// Videos per page on a channel's page and in the feed.
const PAGE: u32 = 24;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/@{handle}", get(channel_page))
        .route("/@{handle}/subscription", post(subscription_submit))
        .route("/subscriptions", get(subscriptions_page))
}

/// What a card shows of a video, borrowed from a whole one (home, search, a channel) or from a
/// [`Card`] (the feed).
pub(super) struct Shown<'a> {
    id: Uuid,
    title: &'a str,
    duration_secs: Option<f64>,
    channel_id: Uuid,
    channel_handle: &'a str,
    channel_display_name: &'a str,
    channel_avatar_version: Option<i64>,
    views: u64,
    listed_at: DateTime<Utc>,
    media_version: u32,
    /// A poster to show (playable, and one made or being made).
    poster: bool,
}

impl<'a> From<&'a Video> for Shown<'a> {
    fn from(v: &'a Video) -> Self {
        Shown {
            id: v.id,
            title: &v.title,
            duration_secs: v.duration_secs,
            channel_id: v.channel_id,
            channel_handle: &v.channel_handle,
            channel_display_name: &v.channel_display_name,
            channel_avatar_version: v.channel_avatar_version,
            views: v.views,
            listed_at: v.listed_at(),
            media_version: v.media_version,
            poster: v.playable && videos::shows_poster(v.has_poster, v.state),
        }
    }
}

impl<'a> From<&'a Card> for Shown<'a> {
    fn from(c: &'a Card) -> Self {
        Shown {
            id: c.id,
            title: &c.title,
            duration_secs: c.duration_secs,
            channel_id: c.channel_id,
            channel_handle: &c.channel_handle,
            channel_display_name: &c.channel_display_name,
            channel_avatar_version: c.channel_avatar_version,
            views: c.views,
            listed_at: c.listed_at(),
            media_version: c.media_version,
            poster: c.playable && videos::shows_poster(c.has_poster, c.state),
        }
    }
}

/// A card for `v`; `new_since` marks those published after it. Every list of videos on a page
/// (home, search, a channel, the feed) is made of these.
pub(super) fn card<'a>(st: &ApiState, v: impl Into<Shown<'a>>, new_since: Option<DateTime<Utc>>) -> FeedCard {
    let v = v.into();
    FeedCard {
        title: v.title.to_owned(),
        watch_url: videos::watch_url(v.id),
        thumbnail_url: videos::card_poster(st, v.id, v.media_version, v.poster),
        duration_secs: whole_seconds(v.duration_secs),
        channel_name: v.channel_display_name.to_owned(),
        channel_url: channels::page_url(v.channel_handle),
        channel_avatar_url: channel_images::avatar_url(v.channel_id, v.channel_avatar_version, 48),
        views: v.views,
        age: channel_pages::age_label((Utc::now() - v.listed_at).num_seconds()),
        published: v.listed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        is_new: new_since.is_some_and(|t| v.listed_at > t),
    }
}

/// What the Subscribe control needs of a channel: from the channel's own row, or from a video
/// row (which carries its channel), so the watch page asks nothing more of the database for a
/// visitor.
pub(super) struct ButtonChannel<'a> {
    pub owner_id: UserId,
    pub handle: &'a str,
    pub display_name: &'a str,
}

impl<'a> From<&'a Channel> for ButtonChannel<'a> {
    fn from(c: &'a Channel) -> Self {
        ButtonChannel { owner_id: c.owner_id, handle: &c.handle, display_name: &c.display_name }
    }
}

impl<'a> From<&'a Video> for ButtonChannel<'a> {
    fn from(v: &'a Video) -> Self {
        ButtonChannel { owner_id: v.owner_id, handle: &v.channel_handle, display_name: &v.channel_display_name }
    }
}

/// The Subscribe control of `c` for a viewer whose subscription is already known.
pub(super) fn subscribe_button_of(
    st: &ApiState,
    c: ButtonChannel<'_>,
    viewer: Option<(&CurrentUser, bool)>,
    return_to: &str,
) -> SubscribeButton {
    SubscribeButton {
        channel_name: c.display_name.to_owned(),
        action: format!("{}/subscription", channels::page_url(c.handle)),
        subscribed: viewer.is_some_and(|(_, subscribed)| subscribed),
        csrf: viewer.map(|(u, _)| csrf::token(st, u)),
        return_to: return_to.to_owned(),
        own: viewer.is_some_and(|(u, _)| c.owner_id == u.0.id),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ChannelQuery {
    tab: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

/// `GET /@{handle}`: anyone may see a channel; its public, playable videos only.
async fn channel_page(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Path(handle): Path<String>,
    Query(q): Query<ChannelQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let turtlemen_db::channels::PageState { channel: c, owner_channels, subscribed } =
        channels::find_for_page(&st, &handle, viewer.as_ref()).await?;
    let url = channels::page_url(&c.handle);
    let about = q.tab.as_deref() == Some("about");
    let listing_playlists = q.tab.as_deref() == Some("playlists");
    let query = channels::VideosQuery { sort: q.sort.clone(), cursor: q.cursor.clone(), limit: None };
    let mut playlists = Vec::new();
    let (cards, next_url, sort) = if about {
        (Vec::new(), None, "newest")
    } else if listing_playlists {
        let (lists, next) =
            crate::playlists::public_page(&st, c.id, viewer.as_ref(), q.cursor.as_deref(), PAGE).await?;
        playlists = lists.into_iter().map(super::library::summary).collect();
        (Vec::new(), next.map(|cur| format!("{url}?tab=playlists&cursor={cur}")), "newest")
    } else {
        let page = channels::card_page(&st, &c, &query, PAGE).await?;
        let sort = if page.sort == VideoSort::MostViewed { "views" } else { "newest" };
        let cards = page.videos.iter().map(|v| card(&st, v, None)).collect();
        let next = page.next_cursor.map(|cur| format!("{url}?sort={sort}&cursor={cur}"));
        (cards, next, sort)
    };
    let ctx = context(&st, viewer.as_ref(), &uri, &headers).await;
    let view = ChannelView {
        handle: c.handle.clone(),
        display_name: c.display_name.clone(),
        avatar: avatar_of(&c, 96),
        banner: channel_images::largest_url(&c, Picture::Banner).zip(
            c.banner_version
                .map(|v| channel_images::url(c.id, Picture::Banner, v, turtlemen_images::BANNER_SIZES[1].0)),
        ),
        owner: c.owner_username.clone(),
        owner_url: channels::page_url(&c.owner_username),
        owner_channels: owner_channels
            .iter()
            .map(|o| ChannelLink {
                display_name: o.display_name.clone(),
                handle: o.handle.clone(),
                url: channels::page_url(&o.handle),
                avatar: avatar_of(o, 48),
                current: o.id == c.id,
            })
            .collect(),
        edit_url: viewer.as_ref().filter(|u| channels::may_manage(&c, u)).map(|_| edit_url(&c)),
        description: c.description.clone(),
        links: c.links.iter().map(|l| LinkItem { title: l.title.clone(), url: l.url.clone() }).collect(),
        subscriber_count: c.subscriber_count,
        url: url.clone(),
        tab: if about {
            "about"
        } else if listing_playlists {
            "playlists"
        } else {
            "videos"
        }
        .into(),
        sort: sort.into(),
        cards,
        next_url,
        subscribe: subscribe_button_of(&st, (&c).into(), viewer.as_ref().map(|u| (u, subscribed)), &ctx.path),
        joined: c.created_at.format("%Y-%m-%d").to_string(),
        notice: match q.done.as_deref() {
            Some("subscribed") => Some("Subscribed.".into()),
            Some("unsubscribed") => Some("Unsubscribed.".into()),
            _ => None,
        },
        report: super::moderation::report_form(
            &st,
            viewer.as_ref(),
            c.owner_id,
            format!("{url}/report"),
            "this channel's owner",
            &ctx.path,
        ),
        playlists,
    };
    Ok(super::public_page(&st, viewer.as_ref(), StatusCode::OK, channel_pages::channel_page(&view, &ctx)))
}

/// `c`'s avatar at least `width` wide, or its placeholder.
pub(super) fn avatar_of(c: &Channel, width: u32) -> Avatar {
    Avatar::new(channel_images::avatar_url(c.id, c.avatar_version, width), &c.display_name)
}

/// The edit page of `c`.
pub(super) fn edit_url(c: &Channel) -> String {
    format!("/studio/channels/{}", channels::page_url(&c.handle).trim_start_matches("/@"))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct SubscriptionForm {
    csrf: String,
    action: String,
    return_to: String,
}

/// `POST /@{handle}/subscription`: subscribes or unsubscribes, then returns to the page.
async fn subscription_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(handle): Path<String>,
    axum::Form(form): axum::Form<SubscriptionForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let c = channels::find(&st, &handle).await?;
    let done = match form.action.as_str() {
        "subscribe" => {
            subscriptions::follow(&st, &user, &c).await?;
            "subscribed"
        }
        "unsubscribe" => {
            subscriptions::unfollow(&st, &user, &c).await?;
            "unsubscribed"
        }
        _ => return Err(ApiError::bad_request("invalid_action", "action is subscribe or unsubscribe.")),
    };
    let back = RedirectTarget::parse_local(&form.return_to)
        .map(|t| t.as_str().to_owned())
        .unwrap_or_else(|| channels::page_url(&c.handle));
    // On the channel's own page, say what happened.
    let channel_url = channels::page_url(&c.handle);
    let back = if back == channel_url || back.starts_with(&format!("{channel_url}?")) {
        format!("{channel_url}?done={done}")
    } else {
        back
    };
    Ok(Redirect::to(&back))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct FeedQuery {
    cursor: Option<String>,
}

/// `GET /subscriptions`: the feed, marking what is new since the previous visit.
async fn subscriptions_page(
    State(st): State<ApiState>,
    user: CurrentUser,
    Query(q): Query<FeedQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (page, new_since) = feed::cards_on_visit(&st, &user, q.cursor.as_deref(), PAGE).await?;
    // Only an empty feed needs to know whether the viewer follows anyone (to say why).
    let follows_any =
        !page.videos.is_empty() || !turtlemen_db::subscriptions::list(&st.db, user.0.id, None, 1).await?.is_empty();
    let view = FeedView {
        cards: page.videos.iter().map(|v| card(&st, v, new_since)).collect(),
        next_url: page.next_cursor.map(|c| format!("/subscriptions?cursor={c}")),
        follows_any,
        paged: q.cursor.as_deref().is_some_and(|c| !c.is_empty()),
    };
    Ok(private(channel_pages::subscriptions_page(&view, &context(&st, Some(&user), &uri, &headers).await)))
}
