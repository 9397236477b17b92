//! What the pages show: plain view models that handlers fill in and templates read.
//!
//! These types know nothing about the database or HTTP; a handler builds them from domain
//! types. The small formatting helpers (durations, view counts) live here so every page words
//! them the same way.

/// One video as a card in a list: thumbnail, duration, title, channel and view count.
///
/// Text is escaped when rendered, but escaping does not make a URL safe: the three URL fields
/// are same-origin paths the handler builds from ids, never text a user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoCard {
    /// The video's title, as its creator wrote it (escaped when rendered).
    pub title: String,
    /// Where the video is watched, e.g. `/watch/…` (a same-origin path).
    pub watch_url: String,
    /// The thumbnail's URL; `None` while none has been made yet (a placeholder is shown).
    pub thumbnail_url: Option<String>,
    /// The length in seconds; `None` while it is unknown (a live stream, or still processing).
    pub duration_secs: Option<u32>,
    /// The channel's display name.
    pub channel_name: String,
    /// The channel's page (a same-origin path), once channels have pages.
    pub channel_url: Option<String>,
    /// How many times the video was watched.
    pub views: u64,
}

/// The home page's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HomeView {
    /// The newest public videos, newest first.
    pub recent: Vec<VideoCard>,
    /// The public videos watched most lately, most watched first.
    pub trending: Vec<VideoCard>,
}

impl VideoCard {
    /// The duration as a clock reading: `0:42`, `4:05`, `1:02:03`.
    pub fn duration_label(&self) -> Option<String> {
        duration_label(self.duration_secs)
    }

    /// The duration as an ISO 8601 duration for `<time datetime>`: `PT4M5S`.
    pub fn duration_iso(&self) -> Option<String> {
        duration_iso(self.duration_secs)
    }

    /// The view count in words: `1 view`, `12,345 views`.
    pub fn views_label(&self) -> String {
        views_label(self.views)
    }
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

    fn card(duration_secs: Option<u32>, views: u64) -> VideoCard {
        VideoCard {
            title: "t".into(),
            watch_url: "/watch/x".into(),
            thumbnail_url: None,
            duration_secs,
            channel_name: "c".into(),
            channel_url: Some("/c/c".into()),
            views,
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
}
