//! The chat's WebSocket: the upgrade (origin, visibility) and one connection's loop.
//!
//! Before the upgrade: a browser's `Origin` must be this instance's, and the live must be one
//! the caller may see (404 otherwise, as the live itself is). After it: a `hello` event, then
//! the live's events from the bus interleaved with the answers to the client's frames.
//!
//! Bad input ends cleanly: a message over [`MAX_FRAME_BYTES`] closes the socket with 1009, a
//! binary or unparsable frame is answered with an `invalid_message` error event, and a client
//! that sends more than [`FLOOD_FRAMES`] frames within [`FLOOD_WINDOW`] is told `flood` and
//! closed with 1008. A banned account's next post closes the socket, and so does a live made
//! private (at once, for everyone but its owner). A viewer that cannot keep up with the chat
//! loses events, and is told so (`lagged`).

use super::protocol::{ClientFrame, MessageView, ServerEvent, is_private, open_envelope};
use super::{MAX_CHARS, MAX_FRAME_BYTES, actions};
use crate::ApiState;
use crate::identity::{CurrentUser, Scoped, Signed};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_identity::Scope;
use uuid::Uuid;

/// Messages a new viewer is shown.
pub const RECENT: u32 = 50;
/// The flood guard's window.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);
/// Frames a client may send within [`FLOOD_WINDOW`] (posts beyond the rate limit included).
pub const FLOOD_FRAMES: u32 = 30;
/// After the chat closes a socket, how long it reads (and drops) what the client still sends
/// while waiting for the client's Close.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Refuses a browser's upgrade from another site: an `Origin` other than `public_url`'s.
/// Clients that are not browsers send none and authenticate with their token.
fn check_origin(st: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(o) if o.as_bytes() == st.chat.origin.as_bytes() => Ok(()),
        Some(_) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "cross_origin", "The chat only opens from this site's own pages."))
        }
    }
}

/// Opens the live chat's WebSocket.
#[utoipa::path(get, path = "/lives/{id}/chat", tag = "lives",
    summary = "The live's chat as a WebSocket (upgrade); the protocol is in docs/live-chat.md. Anyone who may see the live reads; posting needs `comments:write`.",
    security((), ("oauth2" = ["videos:read", "comments:write"])),
    params(("id" = String, Path, description = "The live.")),
    responses(
        (status = 101, description = "Switched to the chat's WebSocket."),
        (status = 400, description = "Not a WebSocket upgrade.", body = ErrorBody),
        (status = 403, description = "`cross_origin`: a browser's page of another site; `account_banned`.", body = ErrorBody),
        (status = 404, description = "No such live, or not yours to see.", body = ErrorBody),
    ))]
pub(super) async fn upgrade(
    State(st): State<ApiState>,
    caller: Option<Scoped<Signed>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    check_origin(&st, &headers)?;
    let user = caller.map(|c| c.0);
    // Who may see a private live: as `GET /lives/{id}` decides, with `videos:read`.
    let viewer = user.as_ref().filter(|u| u.scopes().grants(Scope::VideosRead));
    let l = crate::lives::visible(&st, &id, viewer).await?;
    let ws = ws.map_err(|e| ApiError::bad_request("not_a_websocket", format!("This is a WebSocket endpoint: {e}.")))?;
    Ok(ws
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| run(st, l.id, user, socket)))
}

fn text(event: &ServerEvent) -> Message {
    Message::Text(Utf8Bytes::from(event.to_json()))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
}

/// One viewer's connection, until either side closes it.
async fn run(st: ApiState, live: Uuid, user: Option<CurrentUser>, socket: WebSocket) {
    // Subscribed before the recent messages are read: nothing falls between the two.
    let mut events = st.chat.bus.subscribe();
    let (mut tx, mut rx) = socket.split();
    let (hello, owner) = match hello(&st, live, user.as_ref()).await {
        Ok(h) => h,
        Err(e) => {
            let _ = tx.send(text(&ServerEvent::error(&e, None))).await;
            let _ = tx.send(close(close_code::ERROR, "unavailable")).await;
            return closing_handshake(rx).await;
        }
    };
    if tx.send(text(&hello)).await.is_err() {
        return;
    }
    let mut window = (Instant::now(), 0u32);
    loop {
        let out = tokio::select! {
            event = events.recv() => match event {
                Ok(payload) => match open_envelope(live, &payload) {
                    // Made private: nobody but its owner may follow it any more.
                    Some(json) if is_private(json) && user.as_ref().is_none_or(|u| u.id() != owner) => {
                        let _ = tx.send(Message::Text(Utf8Bytes::from(json))).await;
                        close(close_code::POLICY, "the live is private")
                    }
                    Some(json) => Message::Text(Utf8Bytes::from(json)),
                    None => continue,
                },
                Err(RecvError::Lagged(n)) => text(&ServerEvent::Error {
                    error: "lagged".into(),
                    message: format!("{n} chat events were missed; reload to see them all."),
                    retry_after: None,
                }),
                Err(RecvError::Closed) => close(close_code::AWAY, "shutting down"),
            },
            frame = rx.next() => match frame {
                // The client closed (tungstenite answers its Close): nothing more to read.
                None | Some(Ok(Message::Close(_))) => return,
                Some(Err(e)) => {
                    // tungstenite refuses an oversized message before buffering it.
                    let too_big = e
                        .into_inner()
                        .downcast_ref::<tungstenite::Error>()
                        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
                    let reason = if too_big {
                        close(close_code::SIZE, "message too big")
                    } else {
                        close(close_code::PROTOCOL, "protocol error")
                    };
                    let _ = tx.send(reason).await;
                    break;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(frame)) => {
                    if window.0.elapsed() > FLOOD_WINDOW {
                        window = (Instant::now(), 0);
                    }
                    window.1 += 1;
                    if window.1 > FLOOD_FRAMES {
                        let e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "flood", "Too many frames; the chat closes this connection.");
                        let _ = tx.send(text(&ServerEvent::error(&e, None))).await;
                        let _ = tx.send(close(close_code::POLICY, "flood")).await;
                        break;
                    }
                    match answer(&st, live, user.as_ref(), frame).await {
                        None => continue,
                        Some((event, end)) => {
                            if tx.send(text(&event)).await.is_err() || end {
                                if end {
                                    let _ = tx.send(close(close_code::POLICY, "account banned")).await;
                                }
                                break;
                            }
                            continue;
                        }
                    }
                }
            },
        };
        let closing = matches!(out, Message::Close(_));
        if tx.send(out).await.is_err() || closing {
            break;
        }
    }
    closing_handshake(rx).await;
}

/// After the chat's Close: reads and drops what the client still sends until its Close or the
/// end, for at most [`CLOSE_WAIT`]. A socket closed with frames unread is reset, and a reset can
/// lose the client the Close frame that says why (a flood's 1008).
async fn closing_handshake(mut rx: futures::stream::SplitStream<WebSocket>) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(frame)) = rx.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// The first event: what the viewer may do and the latest messages; and the live's owner.
async fn hello(
    st: &ApiState,
    live: Uuid,
    user: Option<&CurrentUser>,
) -> Result<(ServerEvent, turtlemen_domain::UserId), ApiError> {
    let l = turtlemen_db::lives::get(&st.db, live).await?.ok_or_else(ApiError::not_found)?;
    let messages = turtlemen_db::chat::recent(&st.db, live, RECENT).await?;
    let hello = ServerEvent::Hello {
        live_id: live,
        can_post: actions::may_post(user) && l.state != turtlemen_db::lives::LiveState::Ended,
        can_moderate: actions::may_moderate(&l, user),
        max_chars: MAX_CHARS,
        messages: messages.iter().map(MessageView::from).collect(),
    };
    Ok((hello, l.owner_id))
}

/// The error event answering a client frame, if any, and whether the socket must close.
async fn answer(st: &ApiState, live: Uuid, user: Option<&CurrentUser>, frame: Message) -> Option<(ServerEvent, bool)> {
    let Message::Text(body) = frame else {
        let e = ApiError::bad_request("invalid_message", "Frames are JSON text.");
        return Some((ServerEvent::error(&e, None), false));
    };
    let parsed: ClientFrame = match serde_json::from_str(body.as_str()) {
        Ok(f) => f,
        Err(e) => {
            let e = ApiError::bad_request("invalid_message", format!("Not a chat frame: {e}."));
            return Some((ServerEvent::error(&e, None), false));
        }
    };
    let done = match parsed {
        ClientFrame::Post { text } => actions::post(st, live, user, &text).await,
        ClientFrame::Delete { id } => actions::delete(st, live, user, id).await,
        ClientFrame::Timeout { user_id, seconds } => actions::time_out(st, live, user, user_id, seconds).await,
    };
    match done {
        Ok(()) => None,
        Err(r) => {
            if r.error.status.is_server_error() {
                tracing::warn!(live.id = %live, error = %r.error.body.message, "a chat frame failed");
            }
            Some((ServerEvent::error(&r.error, r.retry_after), actions::is_ban(&r)))
        }
    }
}
