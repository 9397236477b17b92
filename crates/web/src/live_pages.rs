//! The live pages: a live's page (`/lives/{id}`: hls.js in low-latency mode, the state followed
//! by polling the API, the chat by `chat.js`) and the studio's "Go live" page (`/studio/lives`: make a live, the RTMP
//! URL and the stream key — shown once — with copy buttons and OBS settings, a new key, end).
//!
//! Plain view models in, full HTML out. Text is escaped by askama; URL fields are same-origin
//! paths built from ids or signed media URLs, and the RTMP URL from the instance's own host.
//! Every form posts with the viewer's CSRF token, so the studio works without JavaScript.

use crate::pages::{PageContext, Shell, render};
use askama::Template;

/// A live's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveWatchView {
    pub id: String,
    pub title: String,
    pub description: String,
    /// `waiting`, `live` or `ended`.
    pub state: String,
    /// The LL-HLS playlist while live.
    pub hls_url: Option<String>,
    /// About how many watch, while live.
    pub viewers: Option<u64>,
    pub channel_name: String,
    pub channel_url: String,
    /// The replay's watch page, once it exists.
    pub replay_url: Option<String>,
    /// The viewer may end it (the studio's page has the form).
    pub can_manage: bool,
}

impl LiveWatchView {
    /// "1 watching", "12 watching" — empty when not live.
    pub fn viewers_label(&self) -> String {
        self.viewers.map(|n| format!("{n} watching")).unwrap_or_default()
    }

    pub fn state_label(&self) -> &'static str {
        match self.state.as_str() {
            "live" => "Live now",
            "ended" => "This live has ended.",
            _ => "Waiting for the streamer to start…",
        }
    }
}

/// One of the streamer's lives in the studio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudioLiveItem {
    pub id: String,
    pub title: String,
    pub state: String,
    pub privacy: String,
    pub last_reason: Option<String>,
}

/// A stream key to show once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownKey {
    pub live_id: String,
    pub title: String,
    pub stream_key: String,
}

/// The studio's "Go live" page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StudioLivesView {
    pub rtmp_url: String,
    /// The same over TLS, when the instance takes RTMPS.
    pub rtmps_url: Option<String>,
    pub csrf: String,
    pub lives: Vec<StudioLiveItem>,
    /// A key just made (after creating a live or asking for a new key).
    pub shown: Option<ShownKey>,
    /// Why the last form was refused.
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "live.html")]
struct LivePage<'a> {
    shell: Shell,
    view: &'a LiveWatchView,
}

#[derive(Template)]
#[template(path = "studio_lives.html")]
struct StudioLivesPage<'a> {
    shell: Shell,
    view: &'a StudioLivesView,
}

fn fallback() -> String {
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
     <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
        .into()
}

/// A live's page (hls.js and `live.js` drive the player and follow the state).
pub fn live_page(view: &LiveWatchView, ctx: &PageContext) -> String {
    let scripts: &[&str] =
        if view.state == "ended" { &["live.js", "chat.js"] } else { &["hls.min.js", "live.js", "chat.js"] };
    render(&LivePage { shell: Shell::for_page("", ctx, scripts), view }, "live", fallback)
}

/// The studio's "Go live" page (`live.js` adds copy buttons).
pub fn studio_lives_page(view: &StudioLivesView, ctx: &PageContext) -> String {
    render(
        &StudioLivesPage { shell: Shell::for_page("/studio/lives", ctx, &["live.js"]), view },
        "studio_lives",
        fallback,
    )
}
