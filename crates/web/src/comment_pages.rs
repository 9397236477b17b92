//! Comments on the pages: the watch page's comments section, a thread's page
//! (`/videos/{id}/comments/{comment}`, the no-JavaScript way to unfold replies) and the studio's
//! queue of held comments.
//!
//! Plain view models in, HTML out, like [`crate::video_pages`]. Every form posts with the
//! viewer's CSRF token and works without JavaScript; `comments.js` posts without a reload,
//! unfolds replies in place and loads more. A visitor gets "Sign in to comment", a link that
//! comes back to the same video with the comment box focused.
//!
//! The one value these templates do not escape is a comment's HTML ([`CommentItem::html`]): it is
//! the output of the API's markdown renderer, cleaned by ammonia's allow-list when the comment
//! was written, and nothing else may be put in that field.

use crate::pages::{PageContext, Shell, encode_query_value, render};
use askama::Template;

/// One comment as shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommentItem {
    pub id: String,
    /// The video's id (forms post under it).
    pub video_id: String,
    /// `visible`, `held`, `deleted` or `removed`.
    pub status: String,
    /// The author's name and channel page; `None` once deleted or removed.
    pub author_name: Option<String>,
    pub author_url: Option<String>,
    /// The user a reply to a reply answers ("@name").
    pub reply_to: Option<String>,
    /// Sanitised HTML made from the markdown when the comment was written (see the module doc).
    pub html: String,
    /// The markdown source, to refill the edit form (the author only).
    pub text: String,
    /// How long ago, in words, and as RFC 3339.
    pub age: String,
    pub at: String,
    pub edited: bool,
    pub likes: u64,
    pub liked: bool,
    pub pinned: bool,
    /// Replies in its thread (top-level comments) and the thread's page.
    pub reply_count: u64,
    pub thread_url: Option<String>,
    /// What the viewer may do.
    pub can_reply: bool,
    pub can_like: bool,
    pub can_edit: bool,
    pub can_delete: bool,
    pub can_remove: bool,
    pub can_pin: bool,
    pub can_approve: bool,
}

impl CommentItem {
    pub fn replies_label(&self) -> String {
        if self.reply_count == 1 { "Show 1 reply".into() } else { format!("Show {} replies", self.reply_count) }
    }

    pub fn likes_label(&self) -> String {
        if self.likes == 1 { "1 like".into() } else { format!("{} likes", self.likes) }
    }

    pub fn shown(&self) -> bool {
        self.status == "visible" || self.status == "held"
    }

    /// The parent a reply form names: the comment itself (a reply's replies join its thread).
    pub fn reply_parent(&self) -> &str {
        &self.id
    }
}

/// The comments section of the watch page (and what a thread's page shares with it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommentsSection {
    pub video_id: String,
    /// Visible comments, replies included.
    pub count: u64,
    /// `open`, `closed` or `held`.
    pub policy: String,
    /// `newest` or `top`.
    pub sort: String,
    /// Pinned first, then the viewer's held ones, then the page.
    pub items: Vec<CommentItem>,
    /// The next page (same sort), if any.
    pub next_url: Option<String>,
    /// The viewer's CSRF token; `None` for a visitor (who gets "Sign in to comment").
    pub csrf: Option<String>,
    /// Where "Sign in to comment" comes back to: this video, the box focused.
    pub return_to: String,
    /// Put the focus in the comment box (back from signing in).
    pub focus: bool,
    /// A one-line message after an action ("Your comment is held for review.").
    pub notice: Option<String>,
    /// The page forms come back to (a local path).
    pub here: String,
}

impl CommentsSection {
    pub fn count_label(&self) -> String {
        let g = crate::views::group_thousands(self.count);
        if self.count == 1 { format!("{g} comment") } else { format!("{g} comments") }
    }

    pub fn sign_in_url(&self) -> String {
        format!("/oauth2/start?rd={}", encode_query_value(&self.return_to))
    }

    pub fn sort_url(&self, sort: &str) -> String {
        format!("/videos/{}?sort={sort}#comments", self.video_id)
    }

    pub fn open(&self) -> bool {
        self.policy != "closed"
    }
}

/// A thread's page: the top-level comment and its replies, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadView {
    pub video_title: String,
    pub watch_url: String,
    pub root: CommentItem,
    pub replies: Vec<CommentItem>,
    pub next_url: Option<String>,
    pub section: CommentsSection,
}

/// One held comment in the owner's queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldItem {
    pub comment: CommentItem,
    pub video_title: String,
    pub watch_url: String,
}

/// The studio's queue of held comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldView {
    pub items: Vec<HeldItem>,
    pub csrf: String,
    pub next_url: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "comment_thread.html")]
struct ThreadPage<'a> {
    shell: Shell,
    view: &'a ThreadView,
    c: &'a CommentsSection,
}

#[derive(Template)]
#[template(path = "held_comments.html")]
struct HeldPage<'a> {
    shell: Shell,
    view: &'a HeldView,
}

fn fallback() -> String {
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
     <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
        .into()
}

/// A thread's page.
pub fn thread_page(view: &ThreadView, ctx: &PageContext) -> String {
    let shell = Shell::for_page("", ctx, &["comments.js"]);
    render(&ThreadPage { shell, view, c: &view.section }, "comment thread", fallback)
}

/// The owner's held comments.
pub fn held_page(view: &HeldView, ctx: &PageContext) -> String {
    let shell = Shell::for_page("/studio/comments", ctx, &[]);
    render(&HeldPage { shell, view }, "held comments", fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_comes_back_to_the_box() {
        let s = CommentsSection {
            video_id: "v1".into(),
            return_to: "/videos/v1?comment=1#comment-box".into(),
            ..Default::default()
        };
        assert_eq!(s.sign_in_url(), "/oauth2/start?rd=%2Fvideos%2Fv1%3Fcomment%3D1%23comment-box");
    }

    #[test]
    fn thread_page_escapes_all_but_the_sanitised_html() {
        let root = CommentItem {
            id: "c1".into(),
            video_id: "v1".into(),
            status: "visible".into(),
            author_name: Some("<b>Ann</b>".into()),
            author_url: Some("/@ann".into()),
            html: "<p><em>hi</em></p>".into(),
            text: "<script>alert(1)</script>".into(),
            can_edit: true,
            ..Default::default()
        };
        let view = ThreadView {
            video_title: "<i>T</i>".into(),
            watch_url: "/videos/v1".into(),
            root,
            section: CommentsSection {
                video_id: "v1".into(),
                csrf: Some("tok".into()),
                policy: "open".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let html = thread_page(&view, &PageContext::default());
        assert!(html.contains("<p><em>hi</em></p>"), "{html}");
        assert!(!html.contains("<script>alert") && !html.contains("<b>Ann") && !html.contains("<i>T"), "{html}");
    }
}
