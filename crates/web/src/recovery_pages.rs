//! The auth service's account-recovery and audit pages: "forgot password", the new-password
//! form of a reset link, a short message with one way on, and the administrators' audit log.
//!
//! Plain view models in, full HTML out; every value is escaped by askama. Forms carry the CSRF
//! token the auth service gives; nothing here decides who may do what.

use crate::pages::{Shell, render};
use askama::Template;

/// "Forgot password": asks for a username or email; after a submission, the one answer given
/// whether or not an account matched.
pub struct ForgotView<'a> {
    pub csrf: &'a str,
    pub name: &'a str,
    /// An error next to the field.
    pub error: Option<&'a str>,
    /// The request was taken: show the answer instead of the form.
    pub sent: bool,
}

/// The new-password form a reset link opens.
pub struct ResetView<'a> {
    pub csrf: &'a str,
    /// The link's token, carried through the form.
    pub token: &'a str,
    /// An error next to the password field.
    pub error: Option<&'a str>,
    /// An error about the form itself (expired CSRF token).
    pub form_error: Option<&'a str>,
}

/// A short message and one link to go on.
pub struct MessageView<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub link_href: &'a str,
    pub link_text: &'a str,
}

/// One row of the administrators' audit log.
pub struct AuditRow {
    pub when: String,
    pub user: String,
    pub event: String,
    pub detail: String,
    pub ip: String,
    pub user_agent: String,
}

/// The administrators' audit log, optionally for one user.
pub struct AdminAuditView<'a> {
    /// The user filter as typed.
    pub user: &'a str,
    pub rows: Vec<AuditRow>,
    /// The link to older events, if there are more.
    pub older: Option<String>,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "auth/forgot.html")]
struct ForgotPage<'a> {
    shell: Shell,
    view: &'a ForgotView<'a>,
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage<'a> {
    shell: Shell,
    view: &'a ResetView<'a>,
}

#[derive(Template)]
#[template(path = "auth/message.html")]
struct MessagePage<'a> {
    shell: Shell,
    view: &'a MessageView<'a>,
}

#[derive(Template)]
#[template(path = "auth/admin_audit.html")]
struct AdminAuditPage<'a> {
    shell: Shell,
    view: &'a AdminAuditView<'a>,
}

fn fallback() -> String {
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
     <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
        .into()
}

pub fn forgot_page(view: &ForgotView<'_>) -> String {
    render(&ForgotPage { shell: Shell::new(""), view }, "forgot", fallback)
}

pub fn reset_page(view: &ResetView<'_>) -> String {
    render(&ResetPage { shell: Shell::new(""), view }, "reset", fallback)
}

pub fn message_page(view: &MessageView<'_>) -> String {
    render(&MessagePage { shell: Shell::new(""), view }, "message", fallback)
}

pub fn admin_audit_page(view: &AdminAuditView<'_>) -> String {
    render(&AdminAuditPage { shell: Shell::new(""), view }, "admin_audit", fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_carry_csrf_and_errors_sit_next_to_fields() {
        let html = forgot_page(&ForgotView { csrf: "t", name: "<ann>", error: Some("Enter it."), sent: false });
        assert!(html.contains("name=\"csrf\" value=\"t\"") && html.contains("name=\"name\""));
        assert!(html.contains("id=\"name-error\">Enter it.<") && !html.contains("<ann>"));
        let html = forgot_page(&ForgotView { csrf: "t", name: "", error: None, sent: true });
        assert!(html.contains("If an account matches, we sent a link"));
        let html = reset_page(&ResetView { csrf: "t", token: "tok", error: Some("Too short."), form_error: None });
        assert!(html.contains("name=\"token\" value=\"tok\"") && html.contains("name=\"new_password\""));
        assert!(html.contains("id=\"new_password-error\">Too short.<"));
    }
}
