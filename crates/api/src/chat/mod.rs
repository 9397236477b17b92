//! The live chat: a WebSocket per viewer on a live's page, messages kept with their stream
//! time and replayed beside the replay.
//!
//! - `GET /api/v1/lives/{id}/chat` upgrades to a WebSocket ([`socket`]); the protocol — JSON
//!   text frames, every shape in [`protocol`] — is written up in `docs/live-chat.md`.
//! - `GET /api/v1/lives/{id}/chat/messages?from_ms=&cursor=` lists the kept messages in stream
//!   order, keyset-paged ([`replay`]), for the replay's watch page.
//! - `DELETE /api/v1/lives/{id}/chat/messages/{message}` and `POST …/chat/timeouts` are the
//!   socket's moderation frames over plain HTTP ([`moderation`]).
//! - [`actions`] are what a frame asks for — post, delete, time out — with every check: who the
//!   caller is (the verified access token the gateway hands on, never a client header), the
//!   ban, the timeout, the per-user rate limit (`chat_per_minute`, counted in the session store
//!   so it holds across replicas), the length cap ([`MAX_CHARS`]), the blocked words (the
//!   instance's and the live's channel's lists; a message holding one is refused, not held).
//!
//! Who may read is who may see the live ([`crate::lives::may_view`]): a private live's chat is
//! a 404 to anyone else, before any upgrade; a live made private closes every socket but its
//! owner's (the `private` event on the bus, and the live read again before each post).
//! Anonymous viewers read; posting needs a token granting `comments:write`; deleting and timing out are the streamer's and the moderators'.
//! A browser's upgrade must come from this instance's origin (`public_url`), which refuses
//! cross-site WebSocket hijacking with the visitor's cookies.
//!
//! Every replica sees every event through the session store's [`Bus`] (Redis pub/sub, or
//! in-process under the embedded store): an event is published once and each socket forwards
//! those of its live. Text goes out as data in JSON and is shown with `textContent`: never markup.

pub mod actions;
pub mod moderation;
pub mod protocol;
pub mod replay;
pub mod socket;

use crate::ApiState;
use turtlemen_session::bus::Bus;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The longest message, in characters.
pub const MAX_CHARS: usize = 500;
/// The largest WebSocket message a client may send, in bytes: larger ones close the socket
/// (1009). A frame of [`MAX_CHARS`] characters of four bytes each, and its JSON, fits.
pub const MAX_FRAME_BYTES: usize = 4096;
/// The bus topic of the chat.
pub const TOPIC: &str = "chat";

/// The chat's share of the API state.
#[derive(Clone)]
pub struct Chat {
    /// Where events are published and received, across replicas.
    pub bus: Bus,
    /// `scheme://host[:port]` of `public_url`: the only `Origin` a browser's upgrade may carry.
    pub origin: String,
}

impl Chat {
    /// The chat of an instance at `public_url`, over `bus`.
    pub fn new(bus: Bus, public_url: &url::Url) -> Chat {
        Chat { bus, origin: public_url.origin().ascii_serialization() }
    }

    /// Publishes `event` to every socket of `live` on every replica.
    pub async fn publish(
        &self,
        live: Uuid,
        event: &protocol::ServerEvent,
    ) -> Result<(), turtlemen_session::SessionError> {
        self.bus.publish(&protocol::envelope(live, event)).await
    }
}

/// The chat routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(socket::upgrade))
        .routes(routes!(replay::list))
        .routes(routes!(moderation::delete_message))
        .routes(routes!(moderation::time_out))
}
