//! The live chat on both stacks, with tokio-tungstenite as the WebSocket client (a peer nobody
//! here wrote), through the gateway as a browser would come: messages reach every viewer and
//! are kept with their stream time; anonymous viewers read but cannot post; a banned account
//! cannot post (its open socket is closed) nor open one; the rate limit, the length cap, the
//! frame size, the flood guard and the blocked words refuse with an error event or a close
//! code; the streamer and moderators delete messages (gone for everyone) and time users out;
//! a private live's chat is nobody else's; a cross-site `Origin` is refused; the replay's chat
//! is paged by stream time. On Redis, two API instances share one chat.

use crate::channels::call;
use crate::gateway::Browser;
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::uploads::{signed_in, signed_in_as};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use turtlemen_domain::{Role, UserId, Username};
use uuid::Uuid;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Makes a live as `who`; returns its id.
async fn new_live(app: &TestApp, who: &Browser, privacy: &str) -> String {
    let (status, made) =
        call(app, Some(who), Method::POST, "/api/v1/lives", Some(json!({"title": "Chatty live", "privacy": privacy})))
            .await;
    assert_eq!(status, 201, "{made}");
    made["id"].as_str().unwrap().to_owned()
}

/// The upgrade request for `live`'s chat, as `who` (their cookies), with `origin`.
fn request(
    app: &TestApp,
    live: &str,
    who: Option<&Browser>,
    origin: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = format!("ws://{}/api/v1/lives/{live}/chat", app.addr).into_client_request().unwrap();
    if let Some(b) = who {
        req.headers_mut().insert("cookie", b.cookie_header().parse().unwrap());
    }
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    req
}

/// Opens `live`'s chat as `who` and reads its `hello`.
async fn open(app: &TestApp, live: &str, who: Option<&Browser>) -> (Socket, Value) {
    let (mut ws, res) = tokio_tungstenite::connect_async(request(app, live, who, Some(&app.url("")))).await.unwrap();
    assert_eq!(res.status(), 101);
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    (ws, hello)
}

/// The status an upgrade is refused with.
async fn refused(req: tokio_tungstenite::tungstenite::handshake::client::Request) -> (u16, Value) {
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body = res.body().as_deref().map(|b| serde_json::from_slice(b).unwrap_or(Value::Null));
            (res.status().as_u16(), body.unwrap_or(Value::Null))
        }
        other => panic!("expected a refusal, got {:?}", other.map(|(_, r)| r.status())),
    }
}

/// The next event (at most 10 s away).
async fn next(ws: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an event within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        match frame {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

/// The close code the server ends with (at most 10 s away), skipping events before it.
async fn closed_with(ws: &mut Socket) -> CloseCode {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a close within 10 s") {
            Some(Ok(Message::Close(Some(f)))) => return f.code,
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error before a close: {e}"),
        }
    }
}

async fn send(ws: &mut Socket, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

async fn post(ws: &mut Socket, text: &str) {
    send(ws, json!({"type": "post", "text": text})).await;
}

async fn user_id(app: &TestApp, name: &str) -> Uuid {
    turtlemen_db::users::find_by_username(&app.db, &Username::parse(name).unwrap()).await.unwrap().unwrap().id.0
}

async fn replay(app: &TestApp, who: Option<&Browser>, live: &str, query: &str) -> (u16, Value) {
    call(app, who, Method::GET, &format!("/api/v1/lives/{live}/chat/messages{query}"), None).await
}

crate::on_both_stacks! {
    async fn messages_reach_every_viewer_and_are_kept_with_their_stream_time(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let live = new_live(&app, &ann, "public").await;

        let (mut streamer, hello) = open(&app, &live, Some(&ann)).await;
        assert_eq!((hello["can_post"].as_bool(), hello["can_moderate"].as_bool()), (Some(true), Some(true)));
        assert_eq!(hello["max_chars"], 500);
        let (mut viewer, hello) = open(&app, &live, Some(&bob)).await;
        assert_eq!((hello["can_post"].as_bool(), hello["can_moderate"].as_bool()), (Some(true), Some(false)));
        let (mut visitor, hello) = open(&app, &live, None).await;
        assert_eq!((hello["can_post"].as_bool(), hello["can_moderate"].as_bool()), (Some(false), Some(false)));

        // Markup is text: kept and sent as written, for the page to show inert.
        let text = "hello <b>turtles</b> <script>alert(1)</script> & ünïcode";
        post(&mut viewer, text).await;
        for ws in [&mut streamer, &mut viewer, &mut visitor] {
            let e = next(ws).await;
            assert_eq!(e["type"], "message", "{e}");
            assert_eq!(e["message"]["text"], text);
            assert_eq!(e["message"]["author"]["username"], "bob");
            assert_eq!(e["message"]["stream_ms"], 0, "before the live starts, stream time 0");
        }

        // Anonymous viewers read but cannot post.
        post(&mut visitor, "let me in").await;
        let e = next(&mut visitor).await;
        assert_eq!((e["type"].as_str(), e["error"].as_str()), (Some("error"), Some("sign_in_required")), "{e}");

        // Once live, messages carry the time since the start.
        let (_, key_made) = call(&app, Some(&ann), Method::POST, &format!("/api/v1/lives/{live}/key"), None).await;
        let key = key_made["stream_key"].as_str().unwrap();
        let before = std::time::Instant::now();
        let claimed = turtlemen_db::lives::claim(&app.db, &turtlemen_api::lives::hash_key(key), "", turtlemen_db::lives::LiveLimits { per_user: 10, per_instance: 100 }).await.unwrap();
        assert!(claimed.is_ok());
        post(&mut streamer, "we are live").await;
        let e = next(&mut viewer).await;
        let ms = e["message"]["stream_ms"].as_i64().unwrap();
        assert!(ms >= 0 && ms <= before.elapsed().as_millis() as i64 + 1000, "{e}");

        // A new viewer sees the latest messages at once, oldest first.
        let (_, hello) = open(&app, &live, None).await;
        let texts: Vec<&str> = hello["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert_eq!(texts, [text, "we are live"]);

        // The replay's list, in stream order.
        let (status, page) = replay(&app, None, &live, "").await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["messages"].as_array().unwrap().len(), 2);
        assert_eq!(page["next_cursor"], Value::Null);

        // Frames that are not chat frames are refused with a reason, and the socket stays.
        send(&mut viewer, json!({"type": "post", "text": "x", "as": "admin"})).await;
        assert_eq!(next(&mut viewer).await["error"], "invalid_message");
        viewer.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
        assert_eq!(next(&mut viewer).await["error"], "invalid_message");
        post(&mut viewer, &"x".repeat(501)).await;
        assert_eq!(next(&mut viewer).await["error"], "text_too_long");
        post(&mut viewer, " \t ").await;
        assert_eq!(next(&mut viewer).await["error"], "text_empty");

        // The live's channel's blocked words apply.
        let (status, _) = call(&app, Some(&ann), Method::PUT, "/api/v1/channels/ann/blocked-words", Some(json!({"words": ["spam"]}))).await;
        assert_eq!(status, 200);
        post(&mut viewer, "buy SPAM now").await;
        assert_eq!(next(&mut viewer).await["error"], "blocked_word");

        // An ended live's chat is read-only.
        let (status, _) = call(&app, Some(&ann), Method::POST, &format!("/api/v1/lives/{live}/end"), None).await;
        assert_eq!(status, 200);
        post(&mut viewer, "still here?").await;
        assert_eq!(next(&mut viewer).await["error"], "live_ended");
    }

    async fn the_streamer_and_moderators_delete_and_time_out(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let mo = signed_in_as(&app, "mona", Role::Moderator).await;
        let live = new_live(&app, &ann, "public").await;
        let (mut streamer, _) = open(&app, &live, Some(&ann)).await;
        let (mut viewer, _) = open(&app, &live, Some(&bob)).await;
        let (mut moderator, hello) = open(&app, &live, Some(&mo)).await;
        assert_eq!(hello["can_moderate"], true);

        post(&mut viewer, "first").await;
        let first = next(&mut streamer).await["message"]["id"].as_str().unwrap().to_owned();
        post(&mut viewer, "second").await;
        let second = next(&mut streamer).await["message"]["id"].as_str().unwrap().to_owned();
        next(&mut viewer).await;
        next(&mut viewer).await;
        next(&mut moderator).await;
        next(&mut moderator).await;

        // A viewer deletes nothing and times nobody out.
        send(&mut viewer, json!({"type": "delete", "id": first})).await;
        assert_eq!(next(&mut viewer).await["error"], "not_a_moderator");
        send(&mut viewer, json!({"type": "timeout", "user_id": user_id(&app, "ann").await, "seconds": 60})).await;
        assert_eq!(next(&mut viewer).await["error"], "not_a_moderator");

        // The streamer deletes: gone for everyone, and from the replay.
        send(&mut streamer, json!({"type": "delete", "id": first})).await;
        for ws in [&mut streamer, &mut viewer, &mut moderator] {
            assert_eq!(next(ws).await, json!({"type": "deleted", "id": first}));
        }
        send(&mut streamer, json!({"type": "delete", "id": first})).await;
        assert_eq!(next(&mut streamer).await["error"], "message_not_found");
        // A moderator deletes too.
        send(&mut moderator, json!({"type": "delete", "id": second})).await;
        for ws in [&mut streamer, &mut viewer, &mut moderator] {
            assert_eq!(next(ws).await, json!({"type": "deleted", "id": second}));
        }
        let (_, page) = replay(&app, None, &live, "").await;
        assert_eq!(page["messages"], json!([]));
        let (_, hello) = open(&app, &live, None).await;
        assert_eq!(hello["messages"], json!([]));

        // A timeout: a duration, announced, and the user cannot post until it ends.
        let bob_id = user_id(&app, "bob").await;
        send(&mut moderator, json!({"type": "timeout", "user_id": bob_id, "seconds": 0})).await;
        assert_eq!(next(&mut moderator).await["error"], "invalid_duration");
        send(&mut moderator, json!({"type": "timeout", "user_id": user_id(&app, "ann").await, "seconds": 60})).await;
        assert_eq!(next(&mut moderator).await["error"], "cannot_time_out");
        send(&mut streamer, json!({"type": "timeout", "user_id": bob_id, "seconds": 600})).await;
        let e = next(&mut viewer).await;
        assert_eq!((e["type"].as_str(), e["user_id"].as_str()), (Some("timeout"), Some(bob_id.to_string().as_str())), "{e}");
        post(&mut viewer, "am I muted?").await;
        let e = next(&mut viewer).await;
        assert_eq!(e["error"], "timed_out", "{e}");
        assert!(e["retry_after"].as_u64().unwrap() > 500, "{e}");
        // Others still post.
        post(&mut moderator, "order restored").await;
        assert_eq!(next(&mut viewer).await["message"]["text"], "order restored");
    }

    async fn a_banned_account_cannot_post_or_open(app) {
        let ann = signed_in(&app, "ann").await;
        let carl = signed_in(&app, "carl").await;
        let live = new_live(&app, &ann, "public").await;
        let (mut ws, _) = open(&app, &live, Some(&carl)).await;
        turtlemen_db::moderation::ban(&app.db, UserId(user_id(&app, "carl").await), "test").await.unwrap();
        post(&mut ws, "I was here").await;
        assert_eq!(next(&mut ws).await["error"], "account_banned");
        assert_eq!(closed_with(&mut ws).await, CloseCode::Policy);
        let (status, body) = refused(request(&app, &live, Some(&carl), None)).await;
        assert_eq!(status, 403, "{body}");
        let (_, page) = replay(&app, None, &live, "").await;
        assert_eq!(page["messages"], json!([]), "nothing was kept");
    }

    async fn a_private_live_s_chat_is_its_owner_s_alone(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let live = new_live(&app, &ann, "private").await;
        let (mut ws, _) = open(&app, &live, Some(&ann)).await;
        post(&mut ws, "a private word").await;
        next(&mut ws).await;
        for who in [Some(&bob), None] {
            let (status, body) = refused(request(&app, &live, who, None)).await;
            assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
            let (status, _) = replay(&app, who, &live, "").await;
            assert_eq!(status, 404);
        }
        let (status, page) = replay(&app, Some(&ann), &live, "").await;
        assert_eq!((status, page["messages"][0]["text"].as_str()), (200, Some("a private word")));
        // Unknown lives and ids that are no UUID alike.
        for id in [Uuid::now_v7().to_string(), "nope".into()] {
            assert_eq!(refused(request(&app, &id, Some(&ann), None)).await.0, 404);
        }
        // Not a WebSocket: a clean 400.
        let (status, body) = call(&app, Some(&ann), Method::GET, &format!("/api/v1/lives/{live}/chat"), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("not_a_websocket")));
    }

    async fn a_cross_site_page_cannot_open_the_chat(app) {
        let ann = signed_in(&app, "ann").await;
        let live = new_live(&app, &ann, "public").await;
        for evil in ["http://evil.example", "null", &app.url("").replace("127.0.0.1", "localhost")] {
            let (status, body) = refused(request(&app, &live, Some(&ann), Some(evil))).await;
            assert_eq!((status, body["error"].as_str()), (403, Some("cross_origin")), "{evil}");
        }
        open(&app, &live, Some(&ann)).await;
    }

    async fn floods_oversized_frames_and_the_rate_limit(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let live = new_live(&app, &ann, "public").await;

        // The rate limit: 20 a minute by default, counted per user across sockets, in fixed
        // one-minute windows: the 21 posts must not straddle two.
        let into = chrono::Utc::now().timestamp().rem_euclid(60);
        if into > 40 {
            tokio::time::sleep(Duration::from_secs(u64::try_from(61 - into).unwrap_or(0))).await;
        }
        let (mut a, _) = open(&app, &live, Some(&bob)).await;
        let (mut b, _) = open(&app, &live, Some(&bob)).await;
        for i in 0..20 {
            post(if i % 2 == 0 { &mut a } else { &mut b }, &format!("message {i}")).await;
            assert_eq!(next(&mut a).await["type"], "message");
        }
        post(&mut b, "one too many").await;
        let e = loop {
            let e = next(&mut b).await;
            if e["type"] == "error" {
                break e;
            }
        };
        assert_eq!(e["error"], "rate_limited", "{e}");
        assert!((1..=60).contains(&e["retry_after"].as_u64().unwrap()), "{e}");

        // A message larger than a frame may be closes the socket with 1009.
        let (mut big, _) = open(&app, &live, Some(&ann)).await;
        post(&mut big, &"x".repeat(10_000)).await;
        assert_eq!(closed_with(&mut big).await, CloseCode::Size);

        // A flood of frames closes with 1008 after an error event.
        let (mut flood, _) = open(&app, &live, None).await;
        for _ in 0..40 {
            if flood.send(Message::text(r#"{"type":"post","text":"x"}"#)).await.is_err() {
                break;
            }
        }
        let mut saw_flood = false;
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(10), flood.next()).await.expect("closed within 10 s") {
                Some(Ok(Message::Text(t))) => saw_flood |= t.as_str().contains("\"flood\""),
                Some(Ok(Message::Close(Some(f)))) => break f.code,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert!(saw_flood);
        assert_eq!(code, CloseCode::Policy);

        // The chat still serves everyone else.
        let (mut ok, _) = open(&app, &live, Some(&ann)).await;
        post(&mut ok, "still fine").await;
        assert_eq!(next(&mut ok).await["message"]["text"], "still fine");
    }

    async fn the_replay_s_chat_is_paged_by_stream_time(app) {
        let ann = signed_in(&app, "ann").await;
        let live = new_live(&app, &ann, "public").await;
        let live_id = Uuid::parse_str(&live).unwrap();
        let ann_id = UserId(user_id(&app, "ann").await);
        // 150 messages at stream times out of order; kept as the chat would keep them.
        for i in 0..150i64 {
            let m = turtlemen_db::chat::NewMessage {
                id: Uuid::now_v7(),
                live_id,
                author_id: ann_id,
                text: format!("at {}", (i * 7919) % 150 * 1000),
                stream_ms: (i * 7919) % 150 * 1000,
                created_at: chrono::Utc::now(),
            };
            turtlemen_db::chat::post(&app.db, &m).await.unwrap();
        }
        let (status, first) = replay(&app, None, &live, "").await;
        assert_eq!(status, 200);
        let times = |p: &Value| p["messages"].as_array().unwrap().iter().map(|m| m["stream_ms"].as_i64().unwrap()).collect::<Vec<_>>();
        assert_eq!(times(&first), (0..100).map(|i| i * 1000).collect::<Vec<_>>());
        let cursor = first["next_cursor"].as_str().unwrap();
        let (_, second) = replay(&app, None, &live, &format!("?cursor={cursor}")).await;
        assert_eq!(times(&second), (100..150).map(|i| i * 1000).collect::<Vec<_>>());
        assert_eq!(second["next_cursor"], Value::Null);
        let (_, from) = replay(&app, None, &live, "?from_ms=140500").await;
        assert_eq!(times(&from), (141..150).map(|i| i * 1000).collect::<Vec<_>>());
        // Bad input: a clean 400.
        assert_eq!(replay(&app, None, &live, "?cursor=forged").await.0, 400);
        assert_eq!(replay(&app, None, &live, "?from_ms=-1").await.0, 400);
        assert_eq!(replay(&app, None, &live, "?from_ms=soon").await.0, 400);
    }
}

/// Two API instances on one PostgreSQL and one Redis: a message posted on one reaches a viewer
/// on the other (Redis pub/sub), and a delete too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_chat_through_redis() {
    let Some((settings, dir, schema)) = fresh_settings(Stack::External).await else { return };
    let one = TestApp::spawn_with(settings, dir, schema).await;
    let two = one.replica().await;
    let ann = signed_in(&one, "ann").await;
    let bob = signed_in(&one, "bob").await;
    let live = new_live(&one, &ann, "public").await;

    let (mut on_one, _) = open(&one, &live, Some(&ann)).await;
    // Bob's session, made on the first instance, is good on the second (one session store).
    let mut req = request(&two, &live, Some(&bob), None);
    req.headers_mut().insert("origin", one.url("").parse().unwrap());
    let (mut on_two, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let hello = next(&mut on_two).await;
    assert_eq!((hello["type"].as_str(), hello["can_post"].as_bool()), (Some("hello"), Some(true)), "{hello}");

    post(&mut on_two, "from the second replica").await;
    let e = next(&mut on_one).await;
    assert_eq!(e["message"]["text"], "from the second replica", "{e}");
    let id = e["message"]["id"].as_str().unwrap().to_owned();
    assert_eq!(next(&mut on_two).await["message"]["id"], id.as_str(), "once, through Redis, on its own replica too");

    send(&mut on_one, json!({"type": "delete", "id": id})).await;
    assert_eq!(next(&mut on_two).await, json!({"type": "deleted", "id": id}));
    two.stop().await;
    one.stop().await;
}

crate::on_both_stacks! {
    // The REST side of moderation runs the socket's own checks: the streamer and a moderator
    // may, another user may not, a visitor must sign in, a banned account is refused; and every
    // viewer's socket hears of it.
    async fn moderation_over_http_has_the_socket_s_rules(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let mo = signed_in_as(&app, "mona", Role::Moderator).await;
        let carl = signed_in(&app, "carl").await;
        let live = new_live(&app, &ann, "public").await;
        let (mut viewer, _) = open(&app, &live, Some(&bob)).await;
        let mut said = Vec::new();
        for text in ["one", "two", "three"] {
            post(&mut viewer, text).await;
            said.push(next(&mut viewer).await["message"]["id"].as_str().unwrap().to_owned());
        }
        let bob_id = user_id(&app, "bob").await;
        let delete = |id: &str| format!("/api/v1/lives/{live}/chat/messages/{id}");
        let timeouts = format!("/api/v1/lives/{live}/chat/timeouts");
        turtlemen_db::moderation::ban(&app.db, UserId(user_id(&app, "carl").await), "test").await.unwrap();
        // Refused: a visitor, another user, a banned account — nothing changes.
        for (who, status, code) in [(None, 401, None), (Some(&bob), 403, Some("not_a_moderator")), (Some(&carl), 403, Some("account_banned"))] {
            let (got, body) = call(&app, who, Method::DELETE, &delete(&said[0]), None).await;
            assert_eq!(got, status, "{body}");
            if let Some(code) = code {
                assert_eq!(body["error"], code, "{body}");
            }
            let (got, body) = call(&app, who, Method::POST, &timeouts, Some(json!({"user_id": bob_id, "seconds": 60}))).await;
            assert_eq!(got, status, "{body}");
        }
        let (_, page) = replay(&app, None, &live, "").await;
        assert_eq!(page["messages"].as_array().unwrap().len(), 3, "nothing was removed");
        // The streamer and a moderator remove messages; every socket hears of it.
        for (who, id) in [(&ann, &said[0]), (&mo, &said[1])] {
            let (status, body) = call(&app, Some(who), Method::DELETE, &delete(id), None).await;
            assert_eq!(status, 204, "{body}");
            assert_eq!(next(&mut viewer).await, json!({"type": "deleted", "id": id}));
        }
        let (status, body) = call(&app, Some(&ann), Method::DELETE, &delete(&said[0]), None).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("message_not_found")));
        assert_eq!(call(&app, Some(&ann), Method::DELETE, &delete("not-a-uuid"), None).await.0, 404);
        // Timeouts: checked as on the socket, then announced and enforced.
        for (body, status, code) in [
            (json!({"user_id": bob_id, "seconds": 0}), 400, "invalid_duration"),
            (json!({"user_id": user_id(&app, "ann").await, "seconds": 60}), 400, "cannot_time_out"),
            (json!({"user_id": Uuid::now_v7(), "seconds": 60}), 404, "user_not_found"),
            (json!({"user_id": bob_id}), 400, "invalid_json"),
        ] {
            let (got, err) = call(&app, Some(&mo), Method::POST, &timeouts, Some(body.clone())).await;
            assert_eq!((got, err["error"].as_str()), (status, Some(code)), "{body}");
        }
        let (status, body) = call(&app, Some(&mo), Method::POST, &timeouts, Some(json!({"user_id": bob_id, "seconds": 600}))).await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(next(&mut viewer).await["type"], "timeout");
        post(&mut viewer, "still here?").await;
        assert_eq!(next(&mut viewer).await["error"], "timed_out");
        // A private live's chat is nobody else's to moderate either.
        let private = new_live(&app, &ann, "private").await;
        let (status, _) = call(&app, Some(&mo), Method::POST, &format!("/api/v1/lives/{private}/chat/timeouts"), Some(json!({"user_id": bob_id, "seconds": 60}))).await;
        assert_eq!(status, 404);
    }

    // A live made private closes every chat socket but its owner's; they cannot open again.
    async fn a_live_made_private_closes_its_chat_for_everyone_but_the_owner(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let mo = signed_in_as(&app, "mona", Role::Moderator).await;
        let live = new_live(&app, &ann, "public").await;
        let (mut owner, _) = open(&app, &live, Some(&ann)).await;
        let (mut viewer, _) = open(&app, &live, Some(&bob)).await;
        let (mut visitor, _) = open(&app, &live, None).await;
        let (mut moderator, _) = open(&app, &live, Some(&mo)).await;
        let (status, body) = call(&app, Some(&bob), Method::PATCH, &format!("/api/v1/lives/{live}"), Some(json!({"privacy": "private"}))).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("not_your_live")));
        let (status, body) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/lives/{live}"), Some(json!({"privacy": "secret"}))).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_privacy")));
        let (status, body) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/lives/{live}"), Some(json!({"privacy": "private", "title": "Just me"}))).await;
        assert_eq!((status, body["privacy"].as_str(), body["title"].as_str()), (200, Some("private"), Some("Just me")), "{body}");
        for ws in [&mut viewer, &mut visitor, &mut moderator] {
            assert_eq!(next(ws).await["type"], "private");
            assert_eq!(closed_with(ws).await, CloseCode::Policy);
        }
        assert_eq!(next(&mut owner).await["type"], "private");
        post(&mut owner, "still mine").await;
        assert_eq!(next(&mut owner).await["message"]["text"], "still mine");
        for who in [Some(&bob), None] {
            assert_eq!(refused(request(&app, &live, who, None)).await.0, 404);
        }
    }
}
