//! Video categories: a fixed list, PeerTube's eighteen, each with a stable slug (stored, used in
//! URLs and the API) and an English label (shown).
//!
//! A fixed list makes "videos by category" a real grouping (one indexed list per category)
//! rather than free text where "Music", "music" and "Musik" are three groups. Parsing accepts
//! the slug or the label in any case, and the labels of the free-text suggestions the upload
//! form offered before the list existed ("Film & Animation", "People & Blogs", "Travel",
//! "News"), so clients written against the old field keep working.

use std::fmt;

/// One category of the fixed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Category {
    slug: &'static str,
    label: &'static str,
}

const fn c(slug: &'static str, label: &'static str) -> Category {
    Category { slug, label }
}

/// Every category, in PeerTube's order.
pub const ALL: &[Category] = &[
    c("music", "Music"),
    c("films", "Films"),
    c("vehicles", "Vehicles"),
    c("art", "Art"),
    c("sports", "Sports"),
    c("travels", "Travels"),
    c("gaming", "Gaming"),
    c("people", "People"),
    c("comedy", "Comedy"),
    c("entertainment", "Entertainment"),
    c("news-politics", "News & Politics"),
    c("how-to", "How To"),
    c("education", "Education"),
    c("activism", "Activism"),
    c("science-technology", "Science & Technology"),
    c("animals", "Animals"),
    c("kids", "Kids"),
    c("food", "Food"),
];

/// Names the upload form suggested before the list, and the list entry each means.
const FORMER: &[(&str, &str)] =
    &[("film & animation", "films"), ("people & blogs", "people"), ("travel", "travels"), ("news", "news-politics")];

impl Category {
    /// Every category, in order.
    pub fn all() -> &'static [Category] {
        ALL
    }

    /// The category named by `s`: a slug or a label (any case, surrounding space ignored), or
    /// one of the former suggestions. `None` for anything else.
    pub fn parse(s: &str) -> Option<Category> {
        let s = s.trim();
        ALL.iter()
            .find(|c| c.slug.eq_ignore_ascii_case(s) || c.label.eq_ignore_ascii_case(s))
            .or_else(|| {
                let slug = FORMER.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)).map(|(_, slug)| *slug)?;
                ALL.iter().find(|c| c.slug == slug)
            })
            .copied()
    }

    /// The stable name: stored, and used in URLs and the API (`science-technology`).
    pub fn slug(self) -> &'static str {
        self.slug
    }

    /// The English name shown on pages (`Science & Technology`).
    pub fn label(self) -> &'static str {
        self.label
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_labels_and_former_names_parse() {
        assert_eq!(Category::parse("music").map(Category::slug), Some("music"));
        assert_eq!(Category::parse(" SCIENCE & technology ").map(Category::slug), Some("science-technology"));
        assert_eq!(Category::parse("Film & Animation").map(Category::slug), Some("films"));
        assert_eq!(Category::parse("Travel").map(Category::slug), Some("travels"));
        assert_eq!(Category::parse("Musik"), None);
        assert_eq!(Category::parse(""), None);
        assert_eq!(ALL.len(), 18);
        assert!(ALL.iter().all(|c| c.slug.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')));
    }

    #[test]
    fn the_documented_list_is_this_list() {
        let doc = include_str!("../../../docs/search.md");
        let rows: Vec<String> = ALL.iter().map(|c| format!("| `{}` | {} |", c.slug, c.label)).collect();
        for row in &rows {
            assert!(doc.contains(row.as_str()), "docs/search.md lacks {row}");
        }
        assert_eq!(doc.matches("\n| `").count(), ALL.len(), "docs/search.md lists another category");
    }
}
