//! The pages: askama templates (under `templates/`, compiled into the binary) and the
//! functions that render them.
//!
//! Every page extends `base.html`, which holds the landmarks (skip link, header with the main
//! navigation, `main#main`, footer) and links the hashed stylesheet and script. Askama escapes
//! every value as HTML; nothing here marks text as safe. Rendering never panics: a failure is
//! logged and a minimal page is returned instead.

use crate::assets::asset_url;
use crate::views::HomeView;
use askama::Template;
use axum::http::StatusCode;
use turtlemen_http::error::ErrorBody;

/// What the layout needs on every page.
pub(crate) struct Shell {
    pub(crate) css_url: &'static str,
    pub(crate) js_url: &'static str,
    pub(crate) icon_url: &'static str,
    /// The path of the navigation entry to mark as the current page, if any.
    pub(crate) current: &'static str,
    /// The signed-in visitor's name, shown with "Sign out"; `None` shows "Sign in".
    pub(crate) viewer: Option<String>,
    /// The token the "Sign out" form posts (bound to the gateway session).
    pub(crate) sign_out_token: String,
    /// This page's path, percent-encoded, for "Sign in" to come back to.
    pub(crate) return_to: String,
    /// The bell's badge ("3", "99+"); `None` when nothing is unread.
    pub(crate) unread_badge: Option<String>,
    /// The bell's accessible name: "Notifications, 3 unread".
    pub(crate) bell_label: String,
    /// Page-specific scripts (hashed URLs), loaded deferred after `app.js`, in this order.
    pub(crate) scripts: Vec<&'static str>,
    /// The text in the header's search box (the search page's own query).
    pub(crate) search_q: String,
}

impl Shell {
    pub(crate) fn new(current: &'static str) -> Self {
        // `build.rs` always puts these three in the table (a unit test pins it), so the empty
        // fallbacks are never used.
        Self {
            css_url: asset_url("app.css").unwrap_or_default(),
            js_url: asset_url("app.js").unwrap_or_default(),
            icon_url: asset_url("favicon.svg").unwrap_or_default(),
            current,
            viewer: None,
            sign_out_token: String::new(),
            return_to: "/".into(),
            unread_badge: None,
            bell_label: "Notifications".into(),
            scripts: Vec::new(),
            search_q: String::new(),
        }
    }

    /// The shell of a page at `path` seen by `viewer`, with extra scripts by logical name.
    pub(crate) fn for_page(current: &'static str, ctx: &PageContext, scripts: &[&str]) -> Self {
        Self {
            viewer: ctx.viewer.clone(),
            sign_out_token: ctx.sign_out_token.clone().unwrap_or_default(),
            return_to: encode_path_value(&ctx.path),
            unread_badge: ctx.unread.filter(|n| *n > 0).map(unread_label),
            bell_label: match ctx.unread {
                Some(n) if n > 0 => format!("Notifications, {} unread", unread_label(n)),
                _ => "Notifications, none unread".into(),
            },
            scripts: scripts.iter().filter_map(|s| asset_url(s)).collect(),
            ..Self::new(current)
        }
    }
}

/// Who is looking at a page, and where: what the layout needs from the handler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageContext {
    /// The signed-in visitor's display name, if any.
    pub viewer: Option<String>,
    /// The page's own path (with its query), a same-origin path the handler took from the
    /// request; "Sign in" returns here.
    pub path: String,
    /// The token of the "Sign out" form: the gateway's, for this visitor's session
    /// (`X-Turtlemen-Sign-Out-Token`). Without one the form is refused, and its page asks.
    pub sign_out_token: Option<String>,
    /// The signed-in visitor's unread notifications, counted up to 100 (the bell shows "99+"
    /// from 100 on); `None` when unknown.
    pub unread: Option<u32>,
}

/// An unread count as the bell shows it: `3`, `99+`.
pub fn unread_label(n: u32) -> String {
    if n > 99 { "99+".into() } else { n.to_string() }
}

/// Percent-encodes a query value (unreserved characters kept).
pub(crate) fn encode_query_value(s: &str) -> String {
    encode(s, false)
}

/// Percent-encodes a path used as a query value, keeping its slashes readable.
pub(crate) fn encode_path_value(s: &str) -> String {
    encode(s, true)
}

fn encode(s: &str, keep_slash: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b'/' if keep_slash => "/".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    shell: Shell,
    view: &'a HomeView,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    shell: Shell,
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// The home page, for an anonymous visitor.
pub fn home_page(view: &HomeView) -> String {
    home_page_for(view, &PageContext { path: "/".into(), ..PageContext::default() })
}

/// The home page (from your subscriptions, a chosen category, recent, trending, categories), as
/// `ctx` sees it.
pub fn home_page_for(view: &HomeView, ctx: &PageContext) -> String {
    let page = HomePage { shell: Shell::for_page("/", ctx, &[]), view };
    render(&page, "home", || {
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
         <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
            .into()
    })
}

/// A full HTML error page: the status, the message and a way home.
pub fn error_page(status: StatusCode, body: &ErrorBody) -> String {
    let page = ErrorPage {
        shell: Shell::new(""),
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message: &body.message,
    };
    render(&page, "error", || turtlemen_http::layers::plain_error_page(status, body))
}

/// Renders a page, or logs why not and returns `fallback()`.
pub(crate) fn render(page: &impl Template, name: &'static str, fallback: impl FnOnce() -> String) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(page.template = name, error = %e, "cannot render page");
        fallback()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn card(title: &str) -> crate::FeedCard {
        crate::FeedCard {
            title: title.into(),
            watch_url: "/watch/abc".into(),
            thumbnail_url: Some("/media/abc/thumb.jpg".into()),
            duration_secs: Some(245),
            channel_name: "Turtle & Co".into(),
            channel_url: "/c/turtle".into(),
            channel_avatar_url: None,
            views: 1234,
            age: "3 days ago".into(),
            published: "2026-01-01T00:00:00Z".into(),
            is_new: false,
        }
    }

    #[test]
    fn the_error_page_escapes_the_message() {
        let body = ErrorBody {
            error: Cow::Borrowed("not_found"),
            message: Cow::Borrowed("<script>alert(1)</script> & \"quotes\""),
        };
        let html = error_page(StatusCode::NOT_FOUND, &body);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;") || html.contains("&lt;script&gt;"),
            "{html}"
        );
        assert!(html.contains("404"));
        assert!(html.contains("Not Found"));
        assert!(html.contains("href=\"/\""), "a link home");
        assert!(html.contains("<main id=\"main\""));
    }

    #[test]
    fn the_home_page_renders_cards() {
        let view = HomeView {
            recent: vec![card("First <b>video</b>"), card("Second")],
            trending: vec![card("Hot")],
            ..HomeView::default()
        };
        let html = home_page(&view);
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<html lang=\"en\">"));
        assert_eq!(html.matches("class=\"card\"").count(), 3, "{html}");
        assert!(!html.contains("<b>video</b>"), "titles are escaped");
        assert!(html.contains("href=\"/watch/abc\""));
        assert!(html.contains("src=\"/media/abc/thumb.jpg\""));
        assert!(html.contains("width=\"320\" height=\"180\""));
        assert!(html.contains("datetime=\"PT0H4M5S\">4:05</time>"), "{html}");
        assert!(html.contains("href=\"/c/turtle\""));
        assert!(html.contains("Turtle &#38;") || html.contains("Turtle &amp;"), "{html}");
        assert!(html.contains("1,234 views"));
        assert!(html.contains("3 days ago"), "every card says its age");
        assert!(!html.contains("subscriptions-heading"), "no subscriptions section for a visitor");
        assert!(!html.contains("class=\"empty\""), "no empty state when there are videos");
        for url in [asset_url("app.css"), asset_url("app.js")] {
            assert!(html.contains(url.expect("in the table")), "the layout links the hashed assets");
        }
        assert!(!html.contains("hls."), "the player is not loaded on the home page");
        assert!(!html.contains("tus."), "the uploader is not loaded on the home page");
    }

    #[test]
    fn the_home_page_has_an_empty_state() {
        let html = home_page(&HomeView::default());
        assert_eq!(html.matches("class=\"empty\"").count(), 2, "{html}");
        assert!(!html.contains("class=\"card\""));
        assert!(html.contains("<h2 id=\"recent-heading\">Recent</h2>"));
        assert!(html.contains("<h2 id=\"trending-heading\">Trending</h2>"));
    }

    #[test]
    fn the_bell_shows_the_unread_count_to_signed_in_viewers_only() {
        let signed_in = |unread| PageContext {
            viewer: Some("Ann".into()),
            path: "/".into(),
            sign_out_token: None,
            unread: Some(unread),
        };
        let html = home_page_for(&HomeView::default(), &signed_in(3));
        assert!(html.contains("aria-label=\"Notifications, 3 unread\""), "{html}");
        assert!(html.contains(">3</span>"), "{html}");
        let html = home_page_for(&HomeView::default(), &signed_in(100));
        assert!(html.contains("aria-label=\"Notifications, 99+ unread\"") && html.contains(">99+</span>"), "{html}");
        let html = home_page_for(&HomeView::default(), &signed_in(0));
        assert!(
            html.contains("aria-label=\"Notifications, none unread\"") && !html.contains("class=\"badge\""),
            "{html}"
        );
        assert!(!home_page(&HomeView::default()).contains("href=\"/notifications\""), "no bell for a visitor");
    }

    #[test]
    fn a_card_without_thumbnail_or_duration_still_renders() {
        let mut c = card("Live");
        c.thumbnail_url = None;
        c.duration_secs = None;
        let html = home_page(&HomeView { recent: vec![c], ..HomeView::default() });
        assert!(html.contains("class=\"thumb-placeholder\""));
        assert!(!html.contains("class=\"duration\""), "{html}");
    }
}
