//! The notifications page (`/notifications`): the signed-in user's notifications, newest first,
//! unread ones marked, each with a "Mark read" form, a "Mark all as read" form, and the
//! per-kind settings as a form of checkboxes.
//!
//! Plain view models in, full HTML out, like [`crate::channel_pages`]. Every text value (video
//! titles, channel and user names) is escaped by askama; URL fields are same-origin paths the
//! handler built from ids, handles or signed cursors. Every form posts with the viewer's CSRF
//! token, so the page works without JavaScript.

use crate::pages::{PageContext, Shell, render};
use askama::Template;

/// One notification as a line of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationItem {
    /// The notification's id (the "Mark read" form posts to `/notifications/{id}/read`).
    pub id: String,
    /// `new_video`, `live_started`, `new_subscriber`, `comment_reply`, `comment_mention`,
    /// `video_comment` or `warning`.
    pub kind: String,
    /// Who did it: the channel (new video, live) or the subscriber.
    pub actor_name: String,
    pub actor_url: String,
    /// What: the video's or the live's title, or your channel's name (new subscriber).
    pub object_name: String,
    pub object_url: String,
    pub unread: bool,
    /// How long ago, in words, and as RFC 3339.
    pub age: String,
    pub at: String,
}

/// The notifications page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationsView {
    pub items: Vec<NotificationItem>,
    pub next_url: Option<String>,
    /// This is a later page (a link back to the first is shown).
    pub paged: bool,
    pub csrf: String,
    pub new_video: bool,
    pub live_started: bool,
    pub new_subscriber: bool,
    pub comment_reply: bool,
    pub comment_mention: bool,
    pub video_comment: bool,
    /// A one-line message after an action ("All marked as read.").
    pub notice: Option<String>,
}

impl NotificationsView {
    pub fn unread_count(&self) -> usize {
        self.items.iter().filter(|i| i.unread).count()
    }
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage<'a> {
    shell: Shell,
    view: &'a NotificationsView,
}

fn fallback() -> String {
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
     <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
        .into()
}

pub fn notifications_page(view: &NotificationsView, ctx: &PageContext) -> String {
    render(&NotificationsPage { shell: Shell::for_page("/notifications", ctx, &[]), view }, "notifications", fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_renders_inert_and_forms_carry_the_token() {
        let item = NotificationItem {
            id: "0193".into(),
            kind: "new_video".into(),
            actor_name: "<script>alert(1)</script>".into(),
            actor_url: "/@ann".into(),
            object_name: "evil\u{202e}gnp.exe <img src=x onerror=alert(1)>".into(),
            object_url: "/videos/0193".into(),
            unread: true,
            age: "just now".into(),
            at: "2026-12-04T00:00:00Z".into(),
        };
        let view = NotificationsView {
            items: vec![item],
            csrf: "tok\"en".into(),
            new_video: true,
            new_subscriber: false,
            comment_reply: true,
            comment_mention: true,
            video_comment: true,
            ..NotificationsView::default()
        };
        let html = notifications_page(&view, &PageContext::default());
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "{html}");
        assert!(html.contains("action=\"/notifications/0193/read\""), "{html}");
        assert!(html.contains("action=\"/notifications/read-all\""), "{html}");
        assert_eq!(html.matches("name=\"csrf\"").count(), 3, "every form carries the token: {html}");
        assert!(!html.contains("tok\"en"), "the token is escaped");
        assert!(html.contains("name=\"new_video\" value=\"on\" checked"), "{html}");
        assert!(!html.contains("name=\"new_subscriber\" value=\"on\" checked"), "{html}");
        assert!(html.len() < 50 * 1024);
    }
}
