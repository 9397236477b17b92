//! What a viewer typed into a search box, parsed into plain search terms.
//!
//! [`SearchText::parse`] caps the length, refuses control characters (a NUL cannot even be
//! stored in PostgreSQL text) and splits the text into at most [`MAX_TERMS`] terms on anything
//! that is not a letter, mark or digit: quotes, `*`, `:`, `&`, `!`, `|`, parentheses, `-`,
//! bidirectional controls and the rest are separators, never operators. A term is therefore
//! only word characters, and the database layer may quote it into an FTS5 or tsquery
//! expression without the viewer being able to write one. Terms are NFKC-normalised and
//! lower-cased, as both engines' tokenizers fold case. Words such as `NEAR`, `AND`, `OR` or
//! `NOT` stay plain words: the database layer always quotes them.
//!
//! This module must never hand out the raw text for use in a query.

use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// The longest search text accepted, in characters.
pub const MAX_CHARS: usize = 200;
/// At most this many terms are searched for; more are refused.
pub const MAX_TERMS: usize = 12;
/// The longest single term, in characters (longer ones cannot be words anyone searches for).
pub const MAX_TERM_CHARS: usize = 60;

/// Why a search text was refused; the message is shown as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchTextError {
    #[error("type at most {MAX_CHARS} characters to search for")]
    TooLong,
    #[error("the search text may not hold control characters")]
    Control,
    #[error("type a word to search for (letters or digits)")]
    NoTerms,
    #[error("search for at most {MAX_TERMS} words at once")]
    TooManyTerms,
    #[error("a word to search for may be at most {MAX_TERM_CHARS} characters long")]
    TermTooLong,
}

/// The terms of a search: each a non-empty run of letters, marks and digits, lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    terms: Vec<String>,
}

/// A character that belongs to a word: letters and digits (Unicode's `Alphabetic` includes the
/// vowel signs of Indic scripts), and combining marks such as a virama, which
/// `char::is_alphanumeric` leaves out but no tokenizer splits on.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || unicode_normalization::char::canonical_combining_class(c) != 0
}

impl SearchText {
    /// Parses typed text. Surrounding whitespace is ignored; text with no word at all is
    /// [`SearchTextError::NoTerms`].
    pub fn parse(raw: &str) -> Result<SearchText, SearchTextError> {
        if raw.chars().count() > MAX_CHARS {
            return Err(SearchTextError::TooLong);
        }
        if raw.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
            return Err(SearchTextError::Control);
        }
        let normalized: String = raw.nfkc().collect::<String>().to_lowercase();
        let mut terms: Vec<String> = Vec::new();
        for term in normalized.split(|c: char| !is_word_char(c)).filter(|t| t.chars().any(char::is_alphanumeric)) {
            if term.chars().count() > MAX_TERM_CHARS {
                return Err(SearchTextError::TermTooLong);
            }
            if !terms.iter().any(|t| t == term) {
                terms.push(term.to_owned());
            }
        }
        if terms.is_empty() {
            return Err(SearchTextError::NoTerms);
        }
        if terms.len() > MAX_TERMS {
            return Err(SearchTextError::TooManyTerms);
        }
        Ok(SearchText { terms })
    }

    /// The terms, in the order typed, without repeats.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// The last term: the one a viewer is still typing, matched as a prefix by suggestions.
    pub fn last(&self) -> &str {
        // `parse` never builds an empty list.
        self.terms.last().map_or("", String::as_str)
    }
}

impl fmt::Display for SearchText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.terms.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(s: &str) -> Vec<String> {
        SearchText::parse(s).map(|t| t.terms().to_vec()).unwrap_or_default()
    }

    #[test]
    fn operators_of_either_engine_are_separators() {
        assert_eq!(terms("\"turtle\" AND sh*ll"), ["turtle", "and", "sh", "ll"]);
        assert_eq!(terms("a:b & !c | (d) <-> e'f"), ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(terms("NEAR(x y, 2)"), ["near", "x", "y", "2"]);
        assert_eq!(terms("  Café  CAFÉ café "), ["café"]);
        assert_eq!(terms("evil\u{202e}gnp"), ["evil", "gnp"], "bidirectional controls separate words");
        assert_eq!(terms("हिन्दी ελληνικά"), ["हिन्दी", "ελληνικά"], "marks stay inside words");
        assert_eq!(terms("ｆｕｌｌ"), ["full"], "NFKC");
    }

    #[test]
    fn bad_text_is_refused_with_a_reason() {
        assert_eq!(SearchText::parse(""), Err(SearchTextError::NoTerms));
        assert_eq!(SearchText::parse("\"*:()&!"), Err(SearchTextError::NoTerms));
        assert_eq!(SearchText::parse("a\0b"), Err(SearchTextError::Control));
        assert_eq!(SearchText::parse(&"x".repeat(MAX_CHARS + 1)), Err(SearchTextError::TooLong));
        assert_eq!(SearchText::parse(&"x".repeat(MAX_TERM_CHARS + 1)), Err(SearchTextError::TermTooLong));
        let many: Vec<String> = (0..=MAX_TERMS).map(|i| format!("w{i}")).collect();
        assert_eq!(SearchText::parse(&many.join(" ")), Err(SearchTextError::TooManyTerms));
        assert_eq!(SearchText::parse("turtle shell").map(|t| t.last().to_owned()), Ok("shell".to_owned()));
    }
}
