//! A viewer's library on the pages: the watch page's like / dislike buttons, "Watch later",
//! "Save to playlist" and playlist panel (with its "Next" link), a playlist's page (play all,
//! reorder with up/down forms, edit, delete), the library page (`/playlists`) and the history
//! page (`/history`).
//!
//! Plain view models in, full HTML out, like [`crate::video_pages`]. Every control is a form
//! posting with the CSRF token (no JavaScript needed); `library.js` enhances them: rating and
//! watch later by `fetch` (with `aria-pressed`), dragging items to reorder, the next video on
//! `ended`, and the resume-position reports. URL fields are same-origin paths built from ids.

use crate::pages::{PageContext, Shell, render};
use crate::views::{FeedCard, duration_label};
use askama::Template;

/// The like / dislike control of a video.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RatingBox {
    pub video_id: String,
    pub likes: u64,
    pub dislikes: u64,
    /// `like`, `dislike` or `none`.
    pub mine: String,
    /// The viewer's CSRF token; `None` for a visitor (a sign-in link is shown).
    pub csrf: Option<String>,
    /// The page to come back to (a same-origin path).
    pub return_to: String,
}

impl RatingBox {
    pub fn sign_in_url(&self) -> String {
        format!("/oauth2/start?rd={}", crate::pages::encode_query_value(&self.return_to))
    }

    pub fn liked(&self) -> bool {
        self.mine == "like"
    }

    pub fn disliked(&self) -> bool {
        self.mine == "dislike"
    }

    pub fn likes_label(&self) -> String {
        crate::views::group_thousands(self.likes)
    }

    pub fn dislikes_label(&self) -> String {
        crate::views::group_thousands(self.dislikes)
    }
}

/// One of the viewer's playlists, offered by "Save to playlist".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaylistChoice {
    /// A UUID, or `WL`.
    pub id: String,
    pub title: String,
    /// The video is in it already.
    pub contains: bool,
}

/// One row of the watch page's playlist panel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PanelItem {
    /// 1-based.
    pub index: u32,
    pub title: String,
    /// `/videos/{id}?list=…&index=n`.
    pub url: String,
    pub current: bool,
}

/// The playlist being played on the watch page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaylistPanel {
    pub title: String,
    /// The playlist's page.
    pub url: String,
    /// 1-based place of the video being watched.
    pub index: u32,
    pub total: u64,
    pub items: Vec<PanelItem>,
    /// The next video in the list (`watch.js` goes there on `ended`).
    pub next_url: Option<String>,
    pub previous_url: Option<String>,
}

/// What the watch page shows of the viewer's library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchLibrary {
    pub rating: RatingBox,
    /// The viewer's lists, Watch later first (empty for a visitor).
    pub playlists: Vec<PlaylistChoice>,
    pub in_watch_later: bool,
    /// Where the player starts (the stored position or `?t=`).
    pub start_at: Option<u32>,
    /// Report positions to the history (a signed-in viewer, recording not paused).
    pub record_history: bool,
    pub panel: Option<PlaylistPanel>,
}

/// One item on a playlist's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistRow {
    pub item_id: String,
    pub card: FeedCard,
    /// 0-based place in the whole list (the move forms post it ± 1).
    pub position: u32,
}

/// A playlist's page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaylistView {
    /// A UUID, `WL` or `LL`.
    pub id: String,
    pub title: String,
    pub description: String,
    /// `Public`, `Unlisted`, `Private`.
    pub privacy_label: String,
    pub privacy: String,
    pub owner: String,
    pub channel_name: Option<String>,
    pub channel_url: Option<String>,
    pub item_count: u64,
    pub rows: Vec<PlaylistRow>,
    /// "Play all": the first item in the list.
    pub play_url: Option<String>,
    pub next_url: Option<String>,
    /// The viewer may change it: the CSRF token for its forms.
    pub csrf: Option<String>,
    /// Title, description and privacy can be edited (not a system list).
    pub editable: bool,
    /// Items can be moved and removed (not "Liked videos").
    pub reorderable: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// The 0-based place of the first row (later pages).
    pub offset: u32,
}

impl PlaylistView {
    pub fn count_label(&self) -> String {
        if self.item_count == 1 { "1 video".into() } else { format!("{} videos", self.item_count) }
    }

    /// The privacy choices: value, label.
    pub fn privacy_choices(&self) -> [(&'static str, &'static str); 3] {
        [("public", "Public"), ("unlisted", "Unlisted"), ("private", "Private")]
    }
}

/// One list on the library page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaylistSummary {
    pub title: String,
    pub url: String,
    pub privacy_label: String,
    pub item_count: u64,
}

impl PlaylistSummary {
    pub fn count_label(&self) -> String {
        if self.item_count == 1 { "1 video".into() } else { format!("{} videos", self.item_count) }
    }
}

/// The library page: the viewer's lists and a form to make one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibraryView {
    pub playlists: Vec<PlaylistSummary>,
    pub csrf: String,
    pub error: Option<String>,
    /// The refused form's title, to refill it.
    pub title: String,
}

/// One entry of the history page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub video_id: String,
    pub card: FeedCard,
    /// "Resume at 1:23", or none.
    pub resume_label: Option<String>,
}

/// The history page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryView {
    pub rows: Vec<HistoryRow>,
    pub paused: bool,
    pub csrf: String,
    pub next_url: Option<String>,
    pub notice: Option<String>,
}

/// The label of a resume position: `Resume at 1:23`.
pub fn resume_label(secs: u32) -> Option<String> {
    (secs > 0).then(|| format!("Resume at {}", duration_label(Some(secs)).unwrap_or_default()))
}

#[derive(Template)]
#[template(path = "playlist.html")]
struct PlaylistPage<'a> {
    shell: Shell,
    view: &'a PlaylistView,
}

#[derive(Template)]
#[template(path = "library.html")]
struct LibraryPage<'a> {
    shell: Shell,
    view: &'a LibraryView,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage<'a> {
    shell: Shell,
    view: &'a HistoryView,
}

fn fallback() -> String {
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
     <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
        .into()
}

/// A playlist's page.
pub fn playlist_page(view: &PlaylistView, ctx: &PageContext) -> String {
    render(&PlaylistPage { shell: Shell::for_page("", ctx, &["library.js"]), view }, "playlist", fallback)
}

/// The library page (`/playlists`).
pub fn library_page(view: &LibraryView, ctx: &PageContext) -> String {
    render(&LibraryPage { shell: Shell::for_page("/playlists", ctx, &[]), view }, "library", fallback)
}

/// The history page (`/history`).
pub fn history_page(view: &HistoryView, ctx: &PageContext) -> String {
    render(&HistoryPage { shell: Shell::for_page("/history", ctx, &[]), view }, "history", fallback)
}
