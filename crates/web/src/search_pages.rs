//! The search page (`/search?q=…`): the form with its filters as plain GET controls (so it
//! works without JavaScript), the matching channels, the matching videos as cards, and links to
//! the previous and next pages that keep every filter.
//!
//! Plain view model in, full HTML out, like [`crate::channel_pages`]. What the viewer typed is
//! shown escaped (and isolated with `<bdi>`, so a right-to-left or override character cannot
//! reorder the page around it); page links are built here from the checked filter values and a
//! percent-encoded query.

use crate::pages::{PageContext, Shell, encode_query_value, render};
use crate::views::{FeedCard, group_thousands};
use askama::Template;

/// One option of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    /// The options `(value, label)` with `current` selected.
    pub fn list(options: &[(&str, &str)], current: &str) -> Vec<Choice> {
        options
            .iter()
            .map(|(value, label)| Choice {
                value: (*value).to_owned(),
                label: (*label).to_owned(),
                selected: *value == current,
            })
            .collect()
    }
}

/// A channel among the results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelResult {
    pub display_name: String,
    pub handle: String,
    /// `/@handle`.
    pub url: String,
    pub subscriber_count: u64,
}

impl ChannelResult {
    fn subscribers(&self) -> String {
        let n = group_thousands(self.subscriber_count);
        if self.subscriber_count == 1 { format!("{n} subscriber") } else { format!("{n} subscribers") }
    }
}

/// The search page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchView {
    /// The text as typed (shown in the box).
    pub q: String,
    /// The filter values as accepted (`""` when unset): date, duration, sort, channel handle.
    pub date: String,
    pub duration: String,
    pub sort: String,
    pub channel: String,
    pub dates: Vec<Choice>,
    pub durations: Vec<Choice>,
    pub sorts: Vec<Choice>,
    /// Why the search could not run, in words.
    pub error: Option<String>,
    /// A search ran (results, possibly none, are shown).
    pub searched: bool,
    pub channels: Vec<ChannelResult>,
    pub cards: Vec<FeedCard>,
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
}

impl SearchView {
    /// The URL of page `page` of this search, every filter kept.
    pub fn page_url(&self, page: u32) -> String {
        let mut url = format!("/search?q={}", encode_query_value(&self.q));
        for (name, value) in
            [("date", &self.date), ("duration", &self.duration), ("sort", &self.sort), ("channel", &self.channel)]
        {
            if !value.is_empty() {
                url.push_str(&format!("&{name}={}", encode_query_value(value)));
            }
        }
        if page > 1 {
            url.push_str(&format!("&page={page}"));
        }
        url
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage<'a> {
    shell: Shell,
    view: &'a SearchView,
}

/// The search page, as `ctx` sees it.
pub fn search_page(view: &SearchView, ctx: &PageContext) -> String {
    let mut shell = Shell::for_page("/search", ctx, &[]);
    shell.search_q = view.q.clone();
    render(&SearchPage { shell, view }, "search", || {
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
         <main><h1>Search</h1><p>This page could not be shown; please try again.</p></main></html>"
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_renders_inert_and_page_links_keep_the_filters() {
        let view = SearchView {
            q: "<script>alert(1)</script> \u{202e}evil & \"more\"".into(),
            sort: "date".into(),
            channel: "ann".into(),
            searched: true,
            channels: vec![ChannelResult {
                display_name: "<b>Ann</b>".into(),
                handle: "ann".into(),
                url: "/@ann".into(),
                subscriber_count: 1,
            }],
            ..SearchView::default()
        };
        let html = search_page(&view, &PageContext::default());
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>Ann</b>"), "{html}");
        assert!(html.contains("1 subscriber<"), "{html}");
        assert!(html.contains("role=\"search\""));
        assert_eq!(
            view.page_url(2),
            "/search?q=%3Cscript%3Ealert%281%29%3C%2Fscript%3E%20%E2%80%AEevil%20%26%20%22more%22&sort=date&channel=ann&page=2"
        );
    }
}
