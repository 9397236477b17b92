//! What the pages show: plain view models that handlers fill in and templates read.
//!
//! These types know nothing about the database or HTTP; a handler builds them from domain
//! types. The small formatting helpers (durations, view counts) live here so every page words
//! them the same way.

/// One video as a card in a list (home, search, a channel, the feed): thumbnail, duration,
/// title, channel, view count and age.
///
/// Text is escaped when rendered, but escaping does not make a URL safe: the URL fields are
/// same-origin paths the handler builds from ids and handles, never text a user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedCard {
    pub title: String,
    pub watch_url: String,
    pub thumbnail_url: Option<String>,
    pub duration_secs: Option<u32>,
    pub channel_name: String,
    pub channel_url: String,
    /// The channel's small avatar, if it has one.
    pub channel_avatar_url: Option<String>,
    pub views: u64,
    /// How long ago it was published, in words: `3 hours ago`.
    pub age: String,
    /// The publication time, RFC 3339, for `<time datetime>`.
    pub published: String,
    /// Published since the viewer's last visit of the feed.
    pub is_new: bool,
}

impl FeedCard {
    pub fn duration_label(&self) -> Option<String> {
        duration_label(self.duration_secs)
    }

    pub fn duration_iso(&self) -> Option<String> {
        duration_iso(self.duration_secs)
    }

    pub fn views_label(&self) -> String {
        views_label(self.views)
    }
}

/// `seconds` ago in words: `just now`, `5 minutes ago`, `1 day ago`, `3 years ago`.
pub fn age_label(seconds: i64) -> String {
    let s = seconds.max(0);
    let (n, unit) = match s {
        0..60 => return "just now".into(),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        86_400..2_592_000 => (s / 86_400, "day"),
        2_592_000..31_536_000 => (s / 2_592_000, "month"),
        _ => (s / 31_536_000, "year"),
    };
    if n == 1 { format!("1 {unit} ago") } else { format!("{n} {unit}s ago") }
}

/// A category to browse, as the home page lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryLink {
    pub label: String,
    /// `/?category=slug`.
    pub url: String,
    /// This is the category shown.
    pub current: bool,
}

/// The home page's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HomeView {
    /// Newest videos of the channels the viewer follows; `None` for a visitor (or nobody
    /// followed), so the section is left out.
    pub subscriptions: Option<Vec<FeedCard>>,
    /// The newest public videos, newest first.
    pub recent: Vec<FeedCard>,
    /// The public videos watched most lately (time-decayed), then newest.
    pub trending: Vec<FeedCard>,
    /// Every category, as links.
    pub categories: Vec<CategoryLink>,
    /// The category chosen (`?category=`): its label and newest videos.
    pub category: Option<(String, Vec<FeedCard>)>,
}

/// A length in seconds as a clock reading: `0:42`, `4:05`, `1:02:03`.
pub(crate) fn duration_label(secs: Option<u32>) -> Option<String> {
    secs.map(|s| {
        let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
        if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
    })
}

/// A length in seconds as an ISO 8601 duration for `<time datetime>`: `PT4M5S`.
pub(crate) fn duration_iso(secs: Option<u32>) -> Option<String> {
    secs.map(|s| format!("PT{}H{}M{}S", s / 3600, s / 60 % 60, s % 60))
}

/// A view count in words: `1 view`, `12,345 views`.
pub(crate) fn views_label(views: u64) -> String {
    let n = group_thousands(views);
    if views == 1 { format!("{n} view") } else { format!("{n} views") }
}

/// `1234567` → `1,234,567`.
pub(crate) fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(duration_secs: Option<u32>, views: u64) -> FeedCard {
        FeedCard {
            title: "t".into(),
            watch_url: "/videos/x".into(),
            thumbnail_url: None,
            duration_secs,
            channel_name: "c".into(),
            channel_url: "/@c".into(),
            channel_avatar_url: None,
            views,
            age: "just now".into(),
            published: "2026-01-01T00:00:00Z".into(),
            is_new: false,
        }
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(card(Some(42), 0).duration_label().as_deref(), Some("0:42"));
        assert_eq!(card(Some(245), 0).duration_label().as_deref(), Some("4:05"));
        assert_eq!(card(Some(3723), 0).duration_label().as_deref(), Some("1:02:03"));
        assert_eq!(card(Some(3723), 0).duration_iso().as_deref(), Some("PT1H2M3S"));
        assert_eq!(card(None, 0).duration_label(), None);
    }

    #[test]
    fn view_counts_are_grouped_and_pluralised() {
        assert_eq!(card(None, 0).views_label(), "0 views");
        assert_eq!(card(None, 1).views_label(), "1 view");
        assert_eq!(card(None, 999).views_label(), "999 views");
        assert_eq!(card(None, 1000).views_label(), "1,000 views");
        assert_eq!(card(None, 1_234_567).views_label(), "1,234,567 views");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age_label(5), "just now");
        assert_eq!(age_label(60), "1 minute ago");
        assert_eq!(age_label(7200), "2 hours ago");
        assert_eq!(age_label(86_400 * 3), "3 days ago");
        assert_eq!(age_label(31_536_000 * 2), "2 years ago");
        assert_eq!(age_label(-5), "just now");
    }
}
