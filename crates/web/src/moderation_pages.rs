//! Moderation pages: the "Report" form (on the watch page and a channel page), the page after a
//! report, the moderators' queue (`/admin/reports`), the accounts page (`/admin/users`) and the
//! instance's blocked words (`/admin/blocked-words`; a channel's are on its edit page, with the
//! same [`BlockedWordsForm`]).
//!
//! Plain view models in, full HTML out, like [`crate::notification_pages`]. Every text value
//! (reasons, titles, names) is escaped by askama; URL fields are same-origin paths the handler
//! built from ids, handles or signed cursors. Every form posts with the viewer's CSRF token, so
//! everything works without JavaScript.

use crate::pages::{PageContext, Shell, render};
use askama::Template;

/// The "Report" form under a video or on a channel page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportForm {
    /// Where it posts (`/videos/{id}/report`, `/@{handle}/report`).
    pub action: String,
    /// What is reported, in words ("this video", "this channel's owner").
    pub what: String,
    /// The viewer's CSRF token; `None` for a visitor (a "Sign in to report" link instead).
    pub csrf: Option<String>,
    /// The page to sign in from and come back to.
    pub return_to: String,
}

impl ReportForm {
    /// The sign-in link for a visitor, coming back to this page.
    pub fn sign_in_url(&self) -> String {
        format!("/oauth2/start?rd={}", crate::pages::encode_query_value(&self.return_to))
    }
}

/// A report in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedReport {
    pub reporter: String,
    pub reason: String,
    pub age: String,
    pub at: String,
}

/// A reported target with its open reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTarget {
    /// `video`, `comment` or `user`.
    pub kind: String,
    pub id: String,
    pub label: String,
    pub url: Option<String>,
    pub owner: Option<String>,
    /// Hidden already (a video) or banned (a user).
    pub hidden: bool,
    pub reports: Vec<QueuedReport>,
}

impl QueuedTarget {
    /// Whether hide and delete apply (content, not an account).
    pub fn is_content(&self) -> bool {
        self.kind != "user"
    }
}

/// The queue page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueView {
    pub targets: Vec<QueuedTarget>,
    pub next_url: Option<String>,
    pub paged: bool,
    pub csrf: String,
    pub notice: Option<String>,
    /// The viewer is an admin: the blocked-words page is linked.
    pub admin: bool,
}

/// One account on the accounts page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    /// `user`, `moderator` or `admin`.
    pub role: String,
    pub banned: bool,
    /// The quota overrides in bytes as typed into the form (empty: the instance's setting).
    pub total_quota: String,
    pub daily_quota: String,
}

/// The accounts page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsersView {
    pub query: String,
    pub accounts: Vec<AccountRow>,
    pub next_url: Option<String>,
    pub csrf: String,
    /// The viewer is an admin: role and quota forms are shown.
    pub admin: bool,
    pub notice: Option<String>,
}

/// The blocked-words form: a list of words or phrases, one a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockedWordsForm {
    /// Where it posts.
    pub action: String,
    pub csrf: String,
    /// The list as the textarea shows it: one entry a line (or what was typed, when refused).
    pub words: String,
    pub max_words: usize,
    pub max_chars: usize,
    /// What the list applies to, in a sentence.
    pub applies: String,
}

/// The instance's blocked-words page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockedWordsView {
    pub form: BlockedWordsForm,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_blocked_words.html")]
struct BlockedWordsPage<'a> {
    shell: Shell,
    view: &'a BlockedWordsView,
}

#[derive(Template)]
#[template(path = "admin_reports.html")]
struct QueuePage<'a> {
    shell: Shell,
    view: &'a QueueView,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    shell: Shell,
    view: &'a UsersView,
}

#[derive(Template)]
#[template(path = "reported.html")]
struct ReportedPage<'a> {
    shell: Shell,
    back_url: &'a str,
    repeated: bool,
}

fn fallback() -> String {
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
     <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
        .into()
}

pub fn queue_page(view: &QueueView, ctx: &PageContext) -> String {
    render(&QueuePage { shell: Shell::for_page("/admin/reports", ctx, &[]), view }, "admin_reports", fallback)
}

pub fn users_page(view: &UsersView, ctx: &PageContext) -> String {
    render(&UsersPage { shell: Shell::for_page("/admin/users", ctx, &[]), view }, "admin_users", fallback)
}

pub fn blocked_words_page(view: &BlockedWordsView, ctx: &PageContext) -> String {
    let shell = Shell::for_page("/admin/blocked-words", ctx, &[]);
    render(&BlockedWordsPage { shell, view }, "admin_blocked_words", fallback)
}

/// The page after a report: thanks, and a way back.
pub fn reported_page(back_url: &str, repeated: bool, ctx: &PageContext) -> String {
    render(&ReportedPage { shell: Shell::for_page("", ctx, &[]), back_url, repeated }, "reported", fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_renders_inert_and_every_form_carries_the_token() {
        let target = QueuedTarget {
            kind: "video".into(),
            id: "0193".into(),
            label: "<script>alert(1)</script>".into(),
            url: Some("/videos/0193".into()),
            owner: Some("ann".into()),
            hidden: false,
            reports: vec![QueuedReport {
                reporter: "bob".into(),
                reason: "evil\u{202e}gnp.exe <img src=x onerror=alert(1)>".into(),
                age: "just now".into(),
                at: "2026-12-04T00:00:00Z".into(),
            }],
        };
        let view = QueueView { targets: vec![target], csrf: "tok\"en".into(), ..QueueView::default() };
        let html = queue_page(&view, &PageContext::default());
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "{html}");
        assert!(html.contains("action=\"/admin/reports/video/0193\""), "{html}");
        assert_eq!(html.matches("name=\"csrf\"").count(), 5, "hide, delete, dismiss, warn, ban: {html}");
        assert!(!html.contains("tok\"en"), "the token is escaped");
    }
}
