//! The auth service's pages: sign-in, registration, consent, sign-out and account security.
//!
//! Plain view models in, full HTML out; every value is escaped by askama. Forms carry the CSRF
//! token the auth service gives; nothing here decides who may do what.

use crate::pages::{Shell, encode_query_value, render};
use askama::Template;

/// The sign-in form.
pub struct LoginView<'a> {
    pub csrf: &'a str,
    /// A checked, same-origin path to continue to after signing in.
    pub return_to: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// "Sign in with …" buttons, one per configured provider.
    pub providers: &'a [ProviderButton],
}

/// A configured external identity provider, as a button.
#[derive(Debug, Clone)]
pub struct ProviderButton {
    /// The provider's id, in URLs.
    pub id: String,
    /// "Google", "GitHub"…
    pub name: String,
}

/// A provider account linked to this one, on the security page.
#[derive(Debug, Clone)]
pub struct IdentityRow {
    /// The link's id, for the unlink form.
    pub id: String,
    pub provider: String,
    pub email: String,
    pub linked: String,
}

/// Errors shown next to each registration field.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors {
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub form: Option<String>,
}

/// The registration form, refilled after an error (never the password).
pub struct RegisterView<'a> {
    pub csrf: &'a str,
    pub return_to: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub errors: FieldErrors,
}

/// The consent page for a third-party client.
pub struct ConsentView<'a> {
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    /// What each requested scope allows, in words.
    pub scopes: Vec<&'static str>,
    /// The authorization request, carried through the form.
    pub hidden: Vec<(String, String)>,
}

/// The sign-out confirmation.
pub struct LogoutView<'a> {
    pub csrf: &'a str,
    pub hidden: Vec<(String, String)>,
}

/// A short message page.
pub struct NoticeView<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// One signed-in session on the security page.
pub struct SessionRow {
    pub id: String,
    pub ip: String,
    pub user_agent: String,
    pub started: String,
    pub current: bool,
}

/// One security event on the security page.
pub struct EventRow {
    pub when: String,
    pub event: String,
    pub ip: String,
    pub user_agent: String,
}

/// Errors shown next to the password-change fields.
#[derive(Debug, Default, Clone)]
pub struct PasswordChangeErrors {
    pub current_password: Option<String>,
    pub new_password: Option<String>,
    pub form: Option<String>,
}

/// The account security page.
pub struct AccountView<'a> {
    pub csrf: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    /// Whether the email address was confirmed through a link sent to it.
    pub email_verified: bool,
    /// A confirmation of what was just done, shown at the top.
    pub notice: Option<&'a str>,
    /// Whether the account has a password to change (provider-only accounts do not).
    pub has_password: bool,
    pub password_errors: PasswordChangeErrors,
    /// Whether sign-in asks for a one-time code.
    pub totp_enabled: bool,
    pub recovery_codes_left: i64,
    /// An error next to the code field of the "turn off" form.
    pub totp_error: Option<String>,
    pub sessions: Vec<SessionRow>,
    pub events: Vec<EventRow>,
    /// Linked provider accounts (each with an Unlink button).
    pub identities: Vec<IdentityRow>,
    /// Configured providers, each with a Link button.
    pub providers: Vec<ProviderButton>,
}

/// Enrolment in two-step verification: the secret and the code that confirms it.
pub struct TotpSetupView<'a> {
    pub csrf: &'a str,
    /// The secret in base32, for typing into an app.
    pub secret: &'a str,
    /// The same as an `otpauth://` URI, for apps that open it.
    pub uri: &'a str,
    pub error: Option<&'a str>,
}

/// The recovery codes, shown once after enrolment.
pub struct RecoveryCodesView<'a> {
    pub codes: &'a [String],
}

/// The second sign-in step: a code from the app or a recovery code.
pub struct SecondStepView<'a> {
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "auth/totp_setup.html")]
struct TotpSetupPage<'a> {
    shell: Shell,
    view: &'a TotpSetupView<'a>,
}

#[derive(Template)]
#[template(path = "auth/recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    shell: Shell,
    view: &'a RecoveryCodesView<'a>,
}

#[derive(Template)]
#[template(path = "auth/second_step.html")]
struct SecondStepPage<'a> {
    shell: Shell,
    view: &'a SecondStepView<'a>,
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage<'a> {
    shell: Shell,
    view: &'a LoginView<'a>,
    return_to_encoded: String,
}

#[derive(Template)]
#[template(path = "auth/register.html")]
struct RegisterPage<'a> {
    shell: Shell,
    view: &'a RegisterView<'a>,
    return_to_encoded: String,
}

#[derive(Template)]
#[template(path = "auth/consent.html")]
struct ConsentPage<'a> {
    shell: Shell,
    view: &'a ConsentView<'a>,
}

#[derive(Template)]
#[template(path = "auth/logout.html")]
struct LogoutPage<'a> {
    shell: Shell,
    view: &'a LogoutView<'a>,
}

#[derive(Template)]
#[template(path = "auth/notice.html")]
struct NoticePage<'a> {
    shell: Shell,
    view: &'a NoticeView<'a>,
}

#[derive(Template)]
#[template(path = "auth/account.html")]
struct AccountPage<'a> {
    shell: Shell,
    view: &'a AccountView<'a>,
}

fn fallback() -> String {
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
     <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
        .into()
}

pub fn login_page(view: &LoginView<'_>) -> String {
    let page = LoginPage { shell: Shell::new(""), view, return_to_encoded: encode_query_value(view.return_to) };
    render(&page, "login", fallback)
}

pub fn register_page(view: &RegisterView<'_>) -> String {
    let page = RegisterPage { shell: Shell::new(""), view, return_to_encoded: encode_query_value(view.return_to) };
    render(&page, "register", fallback)
}

pub fn consent_page(view: &ConsentView<'_>) -> String {
    render(&ConsentPage { shell: Shell::new(""), view }, "consent", fallback)
}

pub fn logout_page(view: &LogoutView<'_>) -> String {
    render(&LogoutPage { shell: Shell::new(""), view }, "logout", fallback)
}

pub fn notice_page(view: &NoticeView<'_>) -> String {
    render(&NoticePage { shell: Shell::new(""), view }, "notice", fallback)
}

pub fn account_page(view: &AccountView<'_>) -> String {
    render(&AccountPage { shell: Shell::new(""), view }, "account", fallback)
}

pub fn totp_setup_page(view: &TotpSetupView<'_>) -> String {
    render(&TotpSetupPage { shell: Shell::new(""), view }, "totp_setup", fallback)
}

pub fn recovery_codes_page(view: &RecoveryCodesView<'_>) -> String {
    render(&RecoveryCodesPage { shell: Shell::new(""), view }, "recovery_codes", fallback)
}

pub fn second_step_page(view: &SecondStepView<'_>) -> String {
    render(&SecondStepPage { shell: Shell::new(""), view }, "second_step", fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_form_has_the_contract_fields_and_escapes() {
        let html = login_page(&LoginView {
            csrf: "tok",
            return_to: "/auth/authorize?a=1&b=\"x\"",
            username: "<b>ann</b>",
            error: Some("Incorrect username or password."),
            providers: &[ProviderButton { id: "gh".into(), name: "Git<Hub>".into() }],
        });
        assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
        assert!(html.contains("name=\"csrf\" value=\"tok\""));
        assert!(!html.contains("<b>ann</b>"));
        assert!(html.contains("return_to=%2Fauth%2Fauthorize%3Fa%3D1%26b%3D%22x%22"));
        assert!(html.contains("role=\"alert\""));
        // Provider buttons are forms with the CSRF token and the page to return to.
        assert!(html.contains("action=\"/auth/broker/gh/start\""));
        assert!(html.contains("Sign in with Git&#60;Hub&#62;") || html.contains("Sign in with Git&lt;Hub&gt;"));
        assert_eq!(html.matches("name=\"csrf\" value=\"tok\"").count(), 2);
    }

    #[test]
    fn second_step_error_sits_next_to_the_code_field() {
        let html = second_step_page(&SecondStepView { csrf: "t", error: Some("Incorrect code.") });
        assert!(html.contains("name=\"code\"") && html.contains("autocomplete=\"one-time-code\""));
        assert!(html.contains("id=\"code-error\">Incorrect code.<"));
        assert!(html.contains("name=\"csrf\" value=\"t\""));
    }

    #[test]
    fn register_errors_sit_next_to_their_fields() {
        let html = register_page(&RegisterView {
            csrf: "t",
            return_to: "/",
            username: "a",
            email: "",
            display_name: "",
            errors: FieldErrors { username: Some("too short".into()), ..Default::default() },
        });
        assert!(html.contains("id=\"username-error\">too short<"));
        assert!(!html.contains("id=\"email-error\""));
    }
}
