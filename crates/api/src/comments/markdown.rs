//! A comment's markdown subset rendered to HTML that is safe to put in any page.
//!
//! Two steps, each by a well-kept crate: `pulldown-cmark` parses CommonMark (no extensions) and
//! the events are narrowed to the subset comments allow — emphasis, strong, inline code and code
//! blocks, links, block quotes, lists and paragraphs; a heading becomes a paragraph, an image its
//! alt text, raw HTML plain text, and containers (quotes and lists) nested deeper than
//! [`MAX_NESTING`] are flattened — then `ammonia` cleans the HTML with an allow-list of exactly
//! those tags, `href` on links only with `http`, `https` or `mailto` (relative URLs are refused),
//! and `rel="nofollow ugc noopener"` on every link. The sanitizer does not trust the first step:
//! whatever the parser let through, only the allow-list reaches a page.
//!
//! The text is checked ([`turtlemen_domain::CommentText`]: at most 10,000 characters) before it
//! gets here, so a 10 MB body or a quote nested a thousand times never reaches the parser whole;
//! the nesting cap keeps the HTML tree shallow whatever the input.
//!
//! Rendered once, when a comment is written, and stored beside its source: a comment is read far
//! more often than written (the first page of a popular video), and the hot read then costs no
//! parsing. A change to these rules applies to comments written after it (a re-render of stored
//! comments would be a job over the table).

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::collections::{HashMap, HashSet};
use turtlemen_domain::CommentText;

/// Quotes and lists nested deeper than this are flattened.
pub const MAX_NESTING: usize = 8;

/// The only tags a comment's HTML may hold.
const TAGS: [&str; 11] = ["p", "br", "em", "strong", "code", "pre", "blockquote", "a", "ul", "ol", "li"];

/// `text` as sanitised HTML.
pub fn render(text: &CommentText) -> String {
    let mut html = String::with_capacity(text.as_str().len() + text.as_str().len() / 4);
    pulldown_cmark::html::push_html(&mut html, Subset::new(Parser::new_ext(text.as_str(), Options::empty())));
    sanitize(&html)
}

/// Cleans `html` with the allow-list.
fn sanitize(html: &str) -> String {
    ammonia::Builder::empty()
        .add_tags(TAGS)
        // `empty` empties the tags only: ammonia's default attributes (`title` and `lang` on every
        // tag, `hreflang`, `cite`…) are replaced by exactly ours.
        .generic_attributes(HashSet::new())
        .tag_attributes(HashMap::from([("a", HashSet::from(["href"])), ("ol", HashSet::from(["start"]))]))
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("nofollow ugc noopener"))
        .clean_content_tags(HashSet::from(["script", "style"]))
        .strip_comments(true)
        .clean(html)
        .to_string()
}

/// The parser's events narrowed to what comments allow.
struct Subset<'a, I: Iterator<Item = Event<'a>>> {
    inner: I,
    /// Open quotes and lists, and how many of them were dropped for depth.
    depth: usize,
    /// For each open container: whether it was kept (its end is then kept too).
    kept: Vec<bool>,
    /// Inside an image: its alt text is kept as text.
    in_image: usize,
}

impl<'a, I: Iterator<Item = Event<'a>>> Subset<'a, I> {
    fn new(inner: I) -> Self {
        Subset { inner, depth: 0, kept: Vec::new(), in_image: 0 }
    }

    /// A container opens: kept while shallow enough.
    fn open(&mut self) -> bool {
        self.depth += 1;
        let keep = self.depth <= MAX_NESTING;
        self.kept.push(keep);
        keep
    }

    fn close(&mut self) -> bool {
        self.depth = self.depth.saturating_sub(1);
        self.kept.pop().unwrap_or(false)
    }

    /// Whether list items belong to a kept list.
    fn in_kept_list(&self) -> bool {
        self.kept.last().copied().unwrap_or(true)
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for Subset<'a, I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        loop {
            let event = self.inner.next()?;
            let out = match event {
                Event::Start(Tag::Image { .. }) => {
                    self.in_image += 1;
                    None
                }
                Event::End(TagEnd::Image) => {
                    self.in_image = self.in_image.saturating_sub(1);
                    None
                }
                Event::Start(Tag::Heading { .. }) => Some(Event::Start(Tag::Paragraph)),
                Event::End(TagEnd::Heading(_)) => Some(Event::End(TagEnd::Paragraph)),
                Event::Start(tag @ (Tag::BlockQuote(_) | Tag::List(_))) => self.open().then_some(Event::Start(tag)),
                Event::End(end @ (TagEnd::BlockQuote(_) | TagEnd::List(_))) => self.close().then_some(Event::End(end)),
                Event::Start(Tag::Item) => self.in_kept_list().then_some(Event::Start(Tag::Item)),
                Event::End(TagEnd::Item) => self.in_kept_list().then_some(Event::End(TagEnd::Item)),
                // Raw HTML is shown as the text it is.
                Event::Html(t) | Event::InlineHtml(t) => Some(Event::Text(t)),
                Event::Start(Tag::HtmlBlock) | Event::End(TagEnd::HtmlBlock) => None,
                Event::Rule => None,
                e @ (Event::Text(_)
                | Event::Code(_)
                | Event::SoftBreak
                | Event::HardBreak
                | Event::Start(
                    Tag::Paragraph | Tag::Emphasis | Tag::Strong | Tag::CodeBlock(_) | Tag::Link { .. },
                )
                | Event::End(
                    TagEnd::Paragraph | TagEnd::Emphasis | TagEnd::Strong | TagEnd::CodeBlock | TagEnd::Link,
                )) => Some(e),
                // Anything else (extensions are off; this is a fence) becomes nothing.
                _ => None,
            };
            if let Some(e) = out {
                return Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(s: &str) -> String {
        render(&CommentText::parse(s).unwrap())
    }

    #[test]
    fn the_subset() {
        assert_eq!(html("*a* **b** `c`"), "<p><em>a</em> <strong>b</strong> <code>c</code></p>\n");
        assert_eq!(html("> quoted"), "<blockquote>\n<p>quoted</p>\n</blockquote>\n");
        assert_eq!(
            html("[site](https://example.org/x?y=1)"),
            "<p><a href=\"https://example.org/x?y=1\" rel=\"nofollow ugc noopener\">site</a></p>\n"
        );
        assert_eq!(html("# Title"), "<p>Title</p>\n");
        assert_eq!(html("![alt text](https://example.org/i.png)"), "<p>alt text</p>\n");
        assert!(html("```\nlet x = 1;\n```").contains("<pre><code>let x = 1;\n</code></pre>"));
        assert!(html("- a\n- b").contains("<ul>\n<li>a</li>"));
    }

    /// Filter-evasion inputs in the manner of OWASP's cheat sheet: none leaves an element,
    /// attribute or URL that could run script.
    #[test]
    fn hostile_input_is_inert() {
        let cases = [
            "<script>alert(1)</script>",
            "<SCRIPT SRC=http://xss.example/xss.js></SCRIPT>",
            "<IMG SRC=\"javascript:alert('XSS');\">",
            "<IMG SRC=javascript:alert('XSS')>",
            "<IMG SRC=JaVaScRiPt:alert('XSS')>",
            "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert('XSS')>",
            "<svg><script>alert(1)</script></svg>",
            "<BODY ONLOAD=alert('XSS')>",
            "<iframe src=\"javascript:alert(1)\"></iframe>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "[click](javascript&#58;alert(1))",
            "[click](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))",
            "[click](&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1))",
            "[click](java%0ascript:alert(1))",
            "[click](  javascript:alert(1))",
            "[click](<javascript:alert(1)>)",
            "[click](vbscript:msgbox(1))",
            "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
            "![x\" onerror=\"alert(1)](https://example.org/x.png)",
            "[x](https://example.org/\" onmouseover=\"alert(1))",
            "<<SCRIPT>alert(\"XSS\");//<</SCRIPT>",
            "<STYLE>@import'http://xss.example/xss.css';</STYLE>",
            "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">",
            "<TABLE BACKGROUND=\"javascript:alert('XSS')\">",
            "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
            "<object data=\"javascript:alert(1)\"></object>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "[a](/relative) [b](//evil.example/x)",
            "<!--<img src=x onerror=alert(1)>-->",
            "`<script>` and ```\n<script>alert(1)</script>\n```",
        ];
        for case in cases {
            let out = html(case).to_ascii_lowercase();
            for bad in
                ["<script", "<img", "<svg", "<iframe", "<style", "<meta", "<table", "<div", "<object", "<math", "<body"]
            {
                assert!(!out.contains(bad), "{case:?} gave {out}");
            }
            for bad in ["javascript:", "vbscript:", "data:", " on", "style=", "src="] {
                // Inside text, escaped markup is harmless: only attributes count.
                let in_tag = out.split('<').skip(1).any(|tag| tag.split('>').next().unwrap_or("").contains(bad));
                assert!(!in_tag, "{case:?} gave {out}");
            }
            for tag in out.split('<').skip(1) {
                let name: String =
                    tag.trim_start_matches('/').chars().take_while(char::is_ascii_alphanumeric).collect();
                assert!(TAGS.contains(&name.as_str()), "{case:?} gave a <{name}>: {out}");
                if name == "a" && tag.contains("href=") {
                    assert!(
                        tag.contains("href=\"https://")
                            || tag.contains("href=\"http://")
                            || tag.contains("href=\"mailto:"),
                        "{case:?} gave {out}"
                    );
                }
            }
        }
    }

    /// Found by the `comment` fuzz target: a link's title (and any other of ammonia's default
    /// attributes) got through the allow-list.
    #[test]
    fn only_the_allowed_attributes_are_kept() {
        assert_eq!(
            html("[y](https://example.org/ \"hover text\")"),
            "<p><a href=\"https://example.org/\" rel=\"nofollow ugc noopener\">y</a></p>\n"
        );
        let found = "<script@alert(1)</script><a href=\"javascript:alert(1)\">x<6a> [y](javascript:alerte\n (2)) \
                     ![alt](http://img.test/a.png) <!-- c -->";
        assert!(!html(found).contains("title="), "{}", html(found));
        assert!(html("3. x").contains("<ol start=\"3\">"));
        assert_eq!(
            sanitize("<p lang=\"en\" title=\"t\"><a hreflang=\"en\">a</a></p>"),
            "<p><a rel=\"nofollow ugc noopener\">a</a></p>"
        );
    }

    #[test]
    fn deep_nesting_is_flattened_without_recursion_trouble() {
        let quotes = ">".repeat(9_990) + " deep";
        let out = html(&quotes);
        assert_eq!(out.matches("<blockquote>").count(), MAX_NESTING, "{}", &out[..200.min(out.len())]);
        assert!(out.contains("deep"));
        let lists: String = (0..2_000).map(|i| format!("{}- x\n", "  ".repeat(i))).collect::<String>();
        let lists: String = lists.chars().take(10_000).collect();
        let out = html(&lists);
        assert!(out.matches("<ul>").count() <= MAX_NESTING);
        for s in ["*".repeat(10_000), "[".repeat(10_000), "`".repeat(10_000), "<".repeat(10_000), "_a".repeat(5_000)] {
            let _ = html(&s);
        }
    }
}
