//! The community pages: a channel's page (`/@handle`: name, description, links, subscriber
//! count, a Subscribe button, tabs for its videos — newest or most viewed — and about) and the
//! subscriptions page (the feed of followed channels, with "new since your last visit").
//!
//! Plain view models in, full HTML out, like [`crate::video_pages`]. Every text value is escaped
//! by askama; URL fields are same-origin paths the handler built from ids, handles or signed
//! cursors, except a channel's links, which the API checked as absolute `http`/`https` URLs and
//! which are shown with `rel="nofollow noopener ugc"`. The Subscribe button is a form posting
//! with the studio's CSRF token and returning to the page it was on, so it works without
//! JavaScript; a visitor gets a "Sign in to subscribe" link instead.

use crate::pages::{PageContext, Shell, render};
use crate::views::group_thousands;
pub use crate::views::{FeedCard, age_label};
use askama::Template;

/// The Subscribe / Unsubscribe control of a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeButton {
    pub channel_name: String,
    /// Where the form posts: `/@handle/subscription`.
    pub action: String,
    pub subscribed: bool,
    /// The viewer's CSRF token; `None` for a visitor (a sign-in link is shown).
    pub csrf: Option<String>,
    /// The page to come back to (a same-origin path).
    pub return_to: String,
    /// The viewer owns the channel: no button.
    pub own: bool,
}

impl SubscribeButton {
    /// The sign-in link for a visitor, coming back to this page.
    pub fn sign_in_url(&self) -> String {
        format!("/oauth2/start?rd={}", crate::pages::encode_query_value(&self.return_to))
    }
}

/// A link a channel shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkItem {
    pub title: String,
    pub url: String,
}

/// A channel's picture, or what stands in for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Avatar {
    /// The image (a same-origin path), or `None` for the placeholder.
    pub url: Option<String>,
    /// The placeholder's letter: the name's first.
    pub initial: String,
}

impl Avatar {
    /// The avatar at `url`, or a placeholder showing the first letter of `name`.
    pub fn new(url: Option<String>, name: &str) -> Avatar {
        let initial =
            name.chars().find(|c| c.is_alphanumeric()).map(|c| c.to_uppercase().collect()).unwrap_or_default();
        Avatar { url, initial }
    }
}

/// Another channel of the same owner, listed on a channel's page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelLink {
    pub display_name: String,
    pub handle: String,
    pub url: String,
    pub avatar: Avatar,
    /// This is the page being shown.
    pub current: bool,
}

/// A channel's page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelView {
    pub handle: String,
    pub display_name: String,
    pub avatar: Avatar,
    /// The banner, large and small (same-origin paths); `None`: the placeholder strip.
    pub banner: Option<(String, String)>,
    /// The owner's username and their main channel's page.
    pub owner: String,
    pub owner_url: String,
    /// Every channel of the owner (shown when there are several).
    pub owner_channels: Vec<ChannelLink>,
    /// The edit page, for a viewer who may change the channel.
    pub edit_url: Option<String>,
    pub description: String,
    pub links: Vec<LinkItem>,
    pub subscriber_count: u64,
    /// `/@handle`.
    pub url: String,
    /// `videos`, `playlists` or `about`.
    pub tab: String,
    /// `newest` or `views`.
    pub sort: String,
    pub cards: Vec<FeedCard>,
    /// The next page of videos, if any.
    pub next_url: Option<String>,
    pub subscribe: SubscribeButton,
    /// `YYYY-MM-DD`.
    pub joined: String,
    /// A one-line message after an action ("Subscribed.").
    pub notice: Option<String>,
    /// The "Report" form about the channel's owner (not on one's own channel).
    pub report: Option<crate::moderation_pages::ReportForm>,
    /// The playlists tab: the channel's public playlists.
    pub playlists: Vec<crate::library_pages::PlaylistSummary>,
}

impl ChannelView {
    pub fn subscribers_label(&self) -> String {
        let n = group_thousands(self.subscriber_count);
        if self.subscriber_count == 1 { format!("{n} subscriber") } else { format!("{n} subscribers") }
    }
}

/// The subscriptions page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedView {
    pub cards: Vec<FeedCard>,
    pub next_url: Option<String>,
    /// The viewer follows at least one channel.
    pub follows_any: bool,
    /// This is a later page (a link back to the first is shown).
    pub paged: bool,
}

impl FeedView {
    pub fn new_count(&self) -> usize {
        self.cards.iter().filter(|c| c.is_new).count()
    }
}

#[derive(Template)]
#[template(path = "channel.html")]
struct ChannelPage<'a> {
    shell: Shell,
    view: &'a ChannelView,
}

/// A channel's edit page: profile, avatar and banner forms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelEditView {
    pub handle: String,
    pub display_name: String,
    pub description: String,
    pub avatar: Avatar,
    /// The current banner (small rendition), if any.
    pub banner_url: Option<String>,
    /// `/studio/channels/{handle}`: the forms post below it.
    pub action: String,
    /// The channel's page.
    pub url: String,
    pub csrf: String,
    /// The largest file accepted, in MiB, for the help text.
    pub max_mib: usize,
    /// The channel's blocked words.
    pub blocked_words: crate::moderation_pages::BlockedWordsForm,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "channel_edit.html")]
struct ChannelEditPage<'a> {
    shell: Shell,
    view: &'a ChannelEditView,
}

pub fn channel_edit_page(view: &ChannelEditView, ctx: &PageContext) -> String {
    render(&ChannelEditPage { shell: Shell::for_page("", ctx, &[]), view }, "channel_edit", fallback)
}

#[derive(Template)]
#[template(path = "subscriptions.html")]
struct FeedPage<'a> {
    shell: Shell,
    view: &'a FeedView,
}

fn fallback() -> String {
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
     <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
        .into()
}

pub fn channel_page(view: &ChannelView, ctx: &PageContext) -> String {
    render(&ChannelPage { shell: Shell::for_page("", ctx, &[]), view }, "channel", fallback)
}

pub fn subscriptions_page(view: &FeedView, ctx: &PageContext) -> String {
    render(&FeedPage { shell: Shell::for_page("/subscriptions", ctx, &[]), view }, "subscriptions", fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_channel_text_renders_inert() {
        let view = ChannelView {
            handle: "ann".into(),
            display_name: "<script>alert(1)</script>".into(),
            description: "<img src=x onerror=alert(1)>".into(),
            links: vec![LinkItem { title: "\"><b>x</b>".into(), url: "https://example.org/?a=\"<".into() }],
            url: "/@ann".into(),
            tab: "about".into(),
            sort: "newest".into(),
            ..ChannelView::default()
        };
        let html = channel_page(&view, &PageContext::default());
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<b>x</b>"), "{html}");
        assert!(html.len() < 50 * 1024);
    }
}
