//! Outgoing mail: verification links, password-reset links, notices.
//!
//! [`Mailer::Smtp`] sends through an SMTP server named by `smtp_url` (`smtp://` with optional
//! `?tls=required` for STARTTLS, or `smtps://` for implicit TLS; rustls), with lettre.
//! [`Mailer::Outbox`] — the embedded default when `smtp_url` is unset — writes each message as
//! an `.eml` file into `{data_dir}/outbox/` (folder 0700, files 0600, written to a temporary
//! file and renamed, so a reader never sees half a message) and logs where.
//!
//! Never: a message body, link or token in a log line; the SMTP URL (it may hold a password)
//! in a log line or an error shown to a visitor.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Duration;

/// One message to send: plain text.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the address is not valid for mail")]
    Address,
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("the SMTP server refused or failed: {0}")]
    Smtp(String),
    #[error("cannot write to the outbox: {0}")]
    Outbox(#[from] std::io::Error),
    #[error("mail is not configured")]
    Unconfigured,
}

/// Where mail goes.
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox {
        dir: PathBuf,
        from: Mailbox,
    },
    /// Refuses to send (the state of an [`crate::AuthInner`] nobody gave a mailer).
    Unconfigured,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Mailer::Outbox { dir, .. } => write!(f, "Mailer::Outbox({})", dir.display()),
            Mailer::Unconfigured => f.write_str("Mailer::Unconfigured"),
        }
    }
}

/// Why the mail settings cannot be used. Never repeats `smtp_url` (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("smtp_url: not a usable SMTP URL; use smtp://HOST:PORT or smtps://HOST")]
    SmtpUrl,
    #[error("mail_from: {0:?} is not an address like Turtlemen <noreply@example.org>")]
    From(String),
}

fn mailbox(from: &str) -> Result<Mailbox, MailConfigError> {
    from.parse::<Mailbox>().map_err(|_| MailConfigError::From(from.to_string()))
}

impl Mailer {
    /// Sends through the SMTP server at `url` (`smtp://[USER:PASSWORD@]HOST[:PORT]`, `smtps://…`).
    /// The error never repeats the URL.
    pub fn smtp(url: &str, from: &str) -> Result<Self, MailConfigError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| MailConfigError::SmtpUrl)?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Ok(Mailer::Smtp { transport, from: mailbox(from)? })
    }

    /// Writes messages into `dir` (created 0700 on first use).
    pub fn outbox(dir: PathBuf, from: &str) -> Result<Self, MailConfigError> {
        Ok(Mailer::Outbox { dir, from: mailbox(from)? })
    }

    /// Whether a message sent reaches its addressee: only through SMTP. The outbox keeps mail
    /// on this machine, where only the operator reads it, so a flow must not wait on it (see
    /// `login::post_register`).
    pub fn delivers(&self) -> bool {
        matches!(self, Mailer::Smtp { .. })
    }

    /// Sends one message.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => from.clone(),
            Mailer::Unconfigured => return Err(MailError::Unconfigured),
        };
        let to: Mailbox = mail.to.parse().map_err(|_| MailError::Address)?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self {
            Mailer::Smtp { transport, .. } => {
                transport.send(message).await.map_err(|e| MailError::Smtp(e.to_string()))?;
                tracing::info!(mail.subject = %mail.subject, "mail sent");
                Ok(())
            }
            Mailer::Outbox { dir, .. } => {
                let dir = dir.clone();
                let bytes = message.formatted();
                let path = tokio::task::spawn_blocking(move || write_eml(&dir, &bytes))
                    .await
                    .map_err(|e| MailError::Outbox(std::io::Error::other(e.to_string())))??;
                tracing::info!(mail.file = %path.display(), mail.subject = %mail.subject, "mail written to the outbox (no smtp_url set)");
                Ok(())
            }
            Mailer::Unconfigured => Err(MailError::Unconfigured),
        }
    }
}

/// Writes one message into the outbox: temporary file (0600), then rename.
fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let name = uuid::Uuid::now_v7().simple().to_string();
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(format!("{name}.eml"));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn the_outbox_holds_private_whole_messages() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let mailer = Mailer::outbox(outbox.clone(), "Turtlemen <noreply@example.org>").unwrap();
        let mail = Mail { to: "ann@example.org".into(), subject: "Hello".into(), body: "a link".into() };
        mailer.send(&mail).await.unwrap();
        assert_eq!(std::fs::metadata(&outbox).unwrap().permissions().mode() & 0o777, 0o700);
        let files: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "no temporary file left: {files:?}");
        assert_eq!(files[0].extension().unwrap(), "eml");
        assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("To: ann@example.org") && text.contains("Subject: Hello"), "{text}");
        let bad = Mail { to: "not an address".into(), ..mail };
        assert!(matches!(mailer.send(&bad).await, Err(MailError::Address)));
    }

    // A runtime: building an SMTP transport starts its connection pool.
    #[tokio::test]
    async fn bad_settings_are_refused_without_echoing_the_url() {
        let err = Mailer::smtp("http://user:hunter2@x", "a@b.org").unwrap_err().to_string();
        assert!(err.starts_with("smtp_url") && !err.contains("hunter2"), "{err}");
        let err = Mailer::outbox(PathBuf::from("/tmp"), "not an address").unwrap_err().to_string();
        assert!(err.starts_with("mail_from"), "{err}");
        assert!(!Mailer::outbox(PathBuf::from("/tmp"), "a@b.org").unwrap().delivers());
        assert!(Mailer::smtp("smtp://127.0.0.1:25", "a@b.org").unwrap().delivers());
    }
}
