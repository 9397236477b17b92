//! Creating accounts: parse every field, apply the password policy, hash, insert (with the
//! account's personal channel, whose handle is the username).

use crate::passwords::{self, PasswordError};
use turtlemen_db::users::{self, NewUser, User};
use turtlemen_db::{Db, DbError};
use turtlemen_domain::{Email, EmailError, Handle, Role, Username, UsernameError};

/// The raw fields of a new account, as typed by a person.
#[derive(Debug, Clone)]
pub struct AccountForm<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    pub password: &'a str,
    pub role: Role,
    /// Whether the account becomes admin if it is the instance's first (`first_user_admin`).
    pub promote_if_first: bool,
}

/// Why an account was not created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("username: {0}")]
    Username(#[from] UsernameError),
    #[error("email: {0}")]
    Email(#[from] EmailError),
    #[error("display name: must be 1 to 64 characters")]
    DisplayName,
    #[error("password: {0}")]
    Password(#[from] PasswordError),
    #[error("username: this username is taken")]
    UsernameTaken,
    #[error("email: an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Db(DbError),
}

/// Every problem with the fields that can be seen without the database, one per field.
pub fn problems(form: &AccountForm<'_>) -> Vec<AccountError> {
    let mut out = Vec::new();
    match Username::parse(form.username) {
        Err(e) => out.push(e.into()),
        Ok(_) if Handle::parse(form.username).is_err() => out.push(UsernameError::Reserved.into()),
        Ok(_) => {}
    }
    if let Err(e) = Email::parse(form.email) {
        out.push(e.into());
    }
    let display = form.display_name.map(str::trim).unwrap_or("");
    if display.chars().count() > 64 || display.chars().any(char::is_control) {
        out.push(AccountError::DisplayName);
    }
    if let Err(e) = passwords::check_policy(form.password) {
        out.push(e.into());
    }
    out
}

/// Creates an account. An address of a banned account is [`AccountError::EmailTaken`], as if
/// the account still held it.
pub async fn create(db: &Db, form: AccountForm<'_>) -> Result<User, AccountError> {
    let username = Username::parse(form.username)?;
    // The username becomes the handle of the account's first channel: a word reserved for
    // handles (`studio`, `search`…) is refused here too.
    Handle::parse(username.as_str()).map_err(|_| UsernameError::Reserved)?;
    let email = Email::parse(form.email)?;
    let display_name =
        form.display_name.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(username.as_str()).to_string();
    if display_name.chars().count() > 64 || display_name.chars().any(char::is_control) {
        return Err(AccountError::DisplayName);
    }
    if turtlemen_db::moderation::is_email_banned(db, &email).await.map_err(AccountError::Db)? {
        return Err(AccountError::EmailTaken);
    }
    // Argon2id takes tens of milliseconds of CPU: off the async workers.
    let password = form.password.to_owned();
    let password_hash = passwords::run(move || passwords::hash(&password))
        .await
        .map_err(|_| AccountError::Password(PasswordError::TooLong))??;
    let new = NewUser {
        username,
        email,
        display_name,
        password_hash: Some(password_hash),
        role: form.role,
        promote_if_first: form.promote_if_first,
    };
    users::create(db, &new).await.map_err(|e| match e {
        DbError::Conflict { constraint } if constraint.contains("username") => AccountError::UsernameTaken,
        DbError::Conflict { constraint } if constraint.contains("email") => AccountError::EmailTaken,
        other => AccountError::Db(other),
    })
}
