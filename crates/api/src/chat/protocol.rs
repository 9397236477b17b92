//! The chat's messages on the wire: what a client sends ([`ClientFrame`]), what the server sends
//! ([`ServerEvent`]), and the envelope an event travels in on the bus ([`envelope`]).
//!
//! Every frame is one JSON object with a `type`. The shapes are documented for clients in
//! `docs/live-chat.md`; a change here is a change of that contract.

use chrono::{DateTime, Utc};
use turtlemen_db::chat::Message;
use turtlemen_http::ApiError;
use uuid::Uuid;

/// A message's author as shown.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ChatAuthor)]
pub struct AuthorView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
}

/// A chat message as clients see it. `text` is plain text, to be shown as text (never markup).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ChatMessage)]
pub struct MessageView {
    pub id: Uuid,
    pub text: String,
    /// Milliseconds since the live started (0 for messages written before it did): where the
    /// message belongs on the replay's timeline.
    pub stream_ms: i64,
    pub created_at: DateTime<Utc>,
    pub author: AuthorView,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> MessageView {
        MessageView {
            id: m.id,
            text: m.text.clone(),
            stream_ms: m.stream_ms,
            created_at: m.created_at,
            author: AuthorView {
                id: m.author_id.0,
                username: m.author_username.clone(),
                display_name: m.author_display_name.clone(),
            },
        }
    }
}

/// What the server sends.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// First, once: what the viewer may do, and the latest messages (oldest first).
    Hello { live_id: Uuid, can_post: bool, can_moderate: bool, max_chars: usize, messages: Vec<MessageView> },
    /// A new message.
    Message { message: MessageView },
    /// A message was removed: clients drop it.
    Deleted { id: Uuid },
    /// A user may not write until `until`.
    Timeout { user_id: Uuid, until: DateTime<Utc> },
    /// The live was made private: every socket but its owner's closes (1008) after this.
    Private,
    /// A frame of this client was refused; `error` is a stable code.
    Error {
        error: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
}

impl ServerEvent {
    /// The refusal `e` as an error event.
    pub fn error(e: &ApiError, retry_after: Option<u64>) -> ServerEvent {
        ServerEvent::Error { error: e.body.error.to_string(), message: e.body.message.to_string(), retry_after }
    }

    /// The event as a text frame.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail (no maps with non-string keys, no
        // failing `Serialize` impls); an empty object is never sent in practice.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// What a client sends.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Writes a message.
    Post { text: String },
    /// Removes a message (the streamer, a moderator).
    Delete { id: Uuid },
    /// Forbids a user to write for `seconds` (the streamer, a moderator).
    Timeout { user_id: Uuid, seconds: u64 },
}

/// Whether the event's JSON (as [`open_envelope`] gives it) is [`ServerEvent::Private`].
pub fn is_private(json: &str) -> bool {
    json == r#"{"type":"private"}"#
}

/// An event for the bus: the live's id (16 bytes), then the event's JSON — so a socket skips
/// other lives' events without parsing them.
pub fn envelope(live: Uuid, event: &ServerEvent) -> Vec<u8> {
    let json = event.to_json();
    let mut out = Vec::with_capacity(16 + json.len());
    out.extend_from_slice(live.as_bytes());
    out.extend_from_slice(json.as_bytes());
    out
}

/// The event's JSON if `payload` is an envelope for `live`.
pub fn open_envelope(live: Uuid, payload: &[u8]) -> Option<&str> {
    let (id, json) = payload.split_at_checked(16)?;
    (id == live.as_bytes()).then(|| std::str::from_utf8(json).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_carry_their_live() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let e = ServerEvent::Deleted { id: b };
        let bytes = envelope(a, &e);
        assert_eq!(open_envelope(a, &bytes), Some(format!(r#"{{"type":"deleted","id":"{b}"}}"#).as_str()));
        assert_eq!(open_envelope(b, &bytes), None);
        assert_eq!(open_envelope(a, &bytes[..10]), None);
        let private = envelope(a, &ServerEvent::Private);
        assert!(is_private(open_envelope(a, &private).unwrap()));
        assert!(!is_private(open_envelope(a, &bytes).unwrap()));
    }

    #[test]
    fn client_frames_parse_strictly() {
        assert!(matches!(
            serde_json::from_str::<ClientFrame>(r#"{"type":"post","text":"hi"}"#),
            Ok(ClientFrame::Post { .. })
        ));
        for bad in
            [r#"{"type":"post"}"#, r#"{"type":"shout","text":"x"}"#, r#"{"type":"post","text":"x","as":"admin"}"#, "[]"]
        {
            assert!(serde_json::from_str::<ClientFrame>(bad).is_err(), "{bad}");
        }
    }
}
