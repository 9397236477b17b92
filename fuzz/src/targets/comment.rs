//! Comment text and markup: the checks on what a viewer types (`CommentText::parse`) and the
//! markdown subset rendered to HTML (`turtlemen_api::comments::markdown::render`).
//!
//! Holds: the HTML holds only the allowed tags, with only the allowed attributes, every link an
//! absolute `http`, `https` or `mailto` URL with `rel="nofollow ugc noopener"`; every `<` of the text
//! reaches the page escaped; rendering is the same each time.

use turtlemen_api::comments::markdown::render;
use turtlemen_domain::CommentText;

const TAGS: [&str; 11] = ["p", "br", "em", "strong", "code", "pre", "blockquote", "a", "ul", "ol", "li"];

pub fn run(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let Ok(text) = CommentText::parse(raw) else { return };
    let _ = text.mentions();
    let html = render(&text);
    assert_eq!(render(&text), html, "rendering is not deterministic");
    check_html(&html);
}

/// Walks the tags of `html` (every `<` starts one: text is escaped) and checks each.
fn check_html(html: &str) {
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>').unwrap_or_else(|| panic!("an unclosed tag in {html:?}"));
        let inside = &after[..close];
        assert!(!inside.contains('<'), "a tag inside a tag in {html:?}");
        check_tag(inside.strip_prefix('/').unwrap_or(inside), html);
        rest = &after[close + 1..];
    }
}

fn check_tag(tag: &str, html: &str) {
    let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
    assert!(TAGS.contains(&name), "tag <{name}> in {html:?}");
    while let Some((attr, value, next)) = attribute(attrs) {
        match (name, attr) {
            ("a", "href") => {
                // As a browser reads it: an absolute URL (`http:/x` is `http://x/`) of an allowed scheme.
                let href = unescape(value);
                let url = url::Url::parse(&href).unwrap_or_else(|e| panic!("link {href:?} ({e}) in {html:?}"));
                assert!(matches!(url.scheme(), "http" | "https" | "mailto"), "link {href:?} in {html:?}");
            }
            ("a", "rel") => assert_eq!(value, "nofollow ugc noopener"),
            ("ol", "start") => {}
            _ => panic!("attribute {attr} on <{name}> in {html:?}"),
        }
        attrs = next;
    }
    assert!(attrs.trim().is_empty(), "unreadable attributes {attrs:?} in {html:?}");
}

/// An attribute value as the browser reads it (html5ever's serializer escapes only these).
fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The first `name="value"` of `text`, and what follows it.
fn attribute(text: &str) -> Option<(&str, &str, &str)> {
    let text = text.trim_start();
    let (name, rest) = text.split_once("=\"")?;
    let (value, next) = rest.split_once('"')?;
    Some((name, value, next))
}
