//! What a viewer wrote in a comment, checked before anything parses it, and the words a
//! blocked-words list holds.
//!
//! [`CommentText::parse`] caps the length at [`MAX_CHARS`] characters (checked on the raw
//! text, before any markdown parser sees it), refuses control characters other than line breaks
//! and tabs, and Unicode bidirectional embeddings, overrides and isolates (they reorder the text
//! after them, so a comment could show something else than it says), and text with nothing but
//! white space. [`CommentText::mentions`] finds the `@handle`s it names; [`CommentText::holds`]
//! matches blocked words as whole words after NFKC normalisation and lower-casing, so
//! `ＳＰＡＭ`, `Spam` and `spam` are one word and `spammer` is another.
//!
//! This module never renders text: see the API's markdown module for that.

use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// The longest comment, in characters.
pub const MAX_CHARS: usize = 10_000;
/// At most this many `@handle`s of one comment are notified.
pub const MAX_MENTIONS: usize = 10;
/// The longest blocked word (or phrase), in characters.
pub const MAX_WORD_CHARS: usize = 60;

/// Why a comment's text was refused; the message is shown as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommentTextError {
    #[error("a comment is at most {MAX_CHARS} characters long")]
    TooLong,
    #[error("write something: the comment is empty")]
    Empty,
    #[error("a comment may not hold control characters or bidirectional text controls")]
    Control,
}

/// Checked comment text: the markdown source as written (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentText(String);

/// Unicode bidirectional embeddings, overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A character of a word: letters, digits and combining marks (as search splits words).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || unicode_normalization::char::canonical_combining_class(c) != 0
}

/// The words of `text`, NFKC-normalised and lower case.
fn words(text: &str) -> Vec<String> {
    let normalized: String = text.nfkc().collect::<String>().to_lowercase();
    normalized.split(|c: char| !is_word_char(c)).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

impl CommentText {
    /// Checks `raw`: at most [`MAX_CHARS`] characters (counted before trimming, so a huge body
    /// is refused without more work), no control or bidi characters, not blank.
    pub fn parse(raw: &str) -> Result<CommentText, CommentTextError> {
        // A char is at least one byte: a body this long in bytes may still be short enough.
        if raw.len() > MAX_CHARS && raw.chars().nth(MAX_CHARS).is_some() {
            return Err(CommentTextError::TooLong);
        }
        if raw.chars().any(|c| (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || is_bidi_control(c)) {
            return Err(CommentTextError::Control);
        }
        let text = raw.trim();
        if text.is_empty() {
            return Err(CommentTextError::Empty);
        }
        Ok(CommentText(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The handles this text mentions (`@ann`, `@Ann.B`), each once, in order, at most
    /// [`MAX_MENTIONS`]; lower case, for a lookup by handle key. An `@` inside a word (an email
    /// address) is no mention.
    pub fn mentions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut prev: Option<char> = None;
        let mut chars = self.0.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let starts = c == '@' && !prev.is_some_and(|p| p.is_alphanumeric() || matches!(p, '_' | '.' | '-' | '@'));
            prev = Some(c);
            if !starts {
                continue;
            }
            let rest = &self.0[i + 1..];
            let len = rest
                .char_indices()
                .find(|(_, ch)| !(ch.is_alphanumeric() || matches!(ch, '_' | '.' | '-')))
                .map_or(rest.len(), |(j, _)| j);
            // A handle ends with a letter or digit: "@ann." mentions "ann".
            let handle = rest[..len].trim_end_matches(['.', '-', '_']);
            let n = handle.chars().count();
            if (3..=32).contains(&n) {
                let key = handle.nfkc().collect::<String>().to_lowercase();
                if !out.contains(&key) {
                    out.push(key);
                }
                if out.len() == MAX_MENTIONS {
                    break;
                }
            }
            while chars.peek().is_some_and(|(j, _)| *j <= i + len) {
                prev = chars.next().map(|(_, ch)| ch);
            }
        }
        out
    }

    /// The first of `blocked` this text holds as whole words (each blocked entry is one word or
    /// a phrase of words, as [`BlockedWord`] keeps it).
    pub fn holds<'a>(&self, blocked: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let mine = words(&self.0);
        blocked.into_iter().find(|entry| {
            let theirs: Vec<&str> = entry.split(' ').filter(|w| !w.is_empty()).collect();
            !theirs.is_empty() && mine.windows(theirs.len()).any(|w| w.iter().zip(&theirs).all(|(a, b)| a == b))
        })
    }
}

impl fmt::Display for CommentText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a blocked word was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockedWordError {
    #[error("a blocked word holds letters or digits")]
    NoWord,
    #[error("a blocked word or phrase is at most {MAX_WORD_CHARS} characters long")]
    TooLong,
}

/// A blocked word or phrase, normalised: its words (NFKC, lower case) joined by one space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockedWord(String);

impl BlockedWord {
    pub fn parse(raw: &str) -> Result<BlockedWord, BlockedWordError> {
        if raw.chars().count() > MAX_WORD_CHARS {
            return Err(BlockedWordError::TooLong);
        }
        let w = words(raw);
        if w.is_empty() {
            return Err(BlockedWordError::NoWord);
        }
        Ok(BlockedWord(w.join(" ")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_controls() {
        assert_eq!(CommentText::parse(&"a".repeat(MAX_CHARS)).map(|t| t.as_str().len()), Ok(MAX_CHARS));
        assert_eq!(CommentText::parse(&"a".repeat(MAX_CHARS + 1)), Err(CommentTextError::TooLong));
        // 10,000 characters of four bytes each are fine; one more is not.
        assert!(CommentText::parse(&"😀".repeat(MAX_CHARS)).is_ok());
        assert_eq!(CommentText::parse(&"😀".repeat(MAX_CHARS + 1)), Err(CommentTextError::TooLong));
        assert_eq!(CommentText::parse(" \n\t "), Err(CommentTextError::Empty));
        assert_eq!(CommentText::parse("a\u{202E}b"), Err(CommentTextError::Control));
        assert_eq!(CommentText::parse("a\0b"), Err(CommentTextError::Control));
        assert_eq!(CommentText::parse("  two\nlines\r\n ").unwrap().as_str(), "two\nlines");
    }

    #[test]
    fn mentions() {
        let t = CommentText::parse("hi @Ann and @bob.smith. mail me@example.org, @ann again, @x, @carol_").unwrap();
        assert_eq!(t.mentions(), vec!["ann", "bob.smith", "carol"]);
        let many: String = (0..20).map(|i| format!("@user{i} ")).collect();
        assert_eq!(CommentText::parse(&many).unwrap().mentions().len(), MAX_MENTIONS);
    }

    #[test]
    fn blocked_words_are_whole_words_after_normalisation() {
        let spam = BlockedWord::parse(" SPAM ").unwrap();
        let phrase = BlockedWord::parse("Buy  NOW").unwrap();
        assert_eq!(phrase.as_str(), "buy now");
        let list = [spam.as_str(), phrase.as_str()];
        let holds = |s: &str| CommentText::parse(s).unwrap().holds(list).map(str::to_owned);
        assert_eq!(holds("this is ＳＰＡＭ!").as_deref(), Some("spam"));
        assert_eq!(holds("Spam."), Some("spam".into()));
        assert_eq!(holds("a spammer"), None);
        assert_eq!(holds("please buy, now"), Some("buy now".into()));
        assert_eq!(holds("buy it now"), None);
        assert_eq!(BlockedWord::parse("!!"), Err(BlockedWordError::NoWord));
    }
}
