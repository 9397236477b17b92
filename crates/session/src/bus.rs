//! A message bus beside the session store: what one API process publishes, every process that
//! shares the store receives (the live chat uses it so that viewers on any replica see every
//! message).
//!
//! - Under the embedded store, one process serves everyone: a Tokio broadcast channel.
//! - Under Redis, `PUBLISH` on one channel (`{prefix}bus:{topic}`); each process keeps one
//!   subscriber connection and hands what arrives to its local broadcast. A process receives
//!   its own messages back through Redis, so local and remote subscribers see one order. The
//!   subscriber reconnects by itself; what is published while it is away is lost (a bus, not a
//!   log: the database keeps what must last).
//!
//! Payloads are opaque bytes; the bus never looks inside them.
//!
//! [`Buses`] opens each topic's bus once per store, so every part of one process that asks a
//! store for a topic (a publisher and a subscriber of `serve`, say) shares one bus
//! ([`crate::SessionStore::bus`]).

use crate::{SessionError, StoreOptions};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How many messages a slow local subscriber may fall behind before it loses some.
pub const BACKLOG: usize = 1024;

/// One payload as received.
pub type Payload = Arc<[u8]>;

/// A handle to the bus of one topic; clones share it.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    local: broadcast::Sender<Payload>,
    redis: Option<RedisSide>,
}

struct RedisSide {
    conn: redis::aio::ConnectionManager,
    channel: String,
    subscriber: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(r) = &self.redis {
            r.subscriber.abort();
        }
    }
}

fn backend(e: redis::RedisError) -> SessionError {
    SessionError::Backend(e.to_string())
}

impl Bus {
    /// A bus within this process only.
    pub fn local() -> Bus {
        let (local, _) = broadcast::channel(BACKLOG);
        Bus { inner: Arc::new(Inner { local, redis: None }) }
    }

    /// The bus of `topic` beside the store `opts` names: in-process for the embedded store,
    /// Redis pub/sub for Redis — subscribed before this returns, so nothing published after it
    /// is missed.
    pub async fn open(opts: &StoreOptions, topic: &str) -> Result<Bus, SessionError> {
        let StoreOptions::Redis { url, prefix } = opts else { return Ok(Bus::local()) };
        let client = redis::Client::open(url.as_str())
            .map_err(|e| SessionError::Unavailable(format!("malformed Redis URL: {e}; use redis://HOST:PORT")))?;
        let channel = format!("{prefix}bus:{topic}");
        let (local, _) = broadcast::channel(BACKLOG);
        let first = tokio::time::timeout(Duration::from_secs(5), subscribe(&client, &channel))
            .await
            .map_err(|_| SessionError::Unavailable("cannot subscribe on Redis: timed out".into()))?
            .map_err(|e| SessionError::Unavailable(format!("cannot subscribe on Redis: {e}")))?;
        let task = tokio::spawn(relay(client.clone(), channel.clone(), first, local.clone()));
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            redis::aio::ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| SessionError::Unavailable("cannot reach Redis: timed out".into()))?
        .map_err(|e| SessionError::Unavailable(format!("cannot reach Redis: {e}")))?;
        let redis = RedisSide { conn, channel, subscriber: task.abort_handle() };
        Ok(Bus { inner: Arc::new(Inner { local, redis: Some(redis) }) })
    }

    /// Sends `payload` to every subscriber of every process on this bus.
    pub async fn publish(&self, payload: &[u8]) -> Result<(), SessionError> {
        match &self.inner.redis {
            Some(r) => {
                let _: i64 = redis::cmd("PUBLISH")
                    .arg(&r.channel)
                    .arg(payload)
                    .query_async(&mut r.conn.clone())
                    .await
                    .map_err(backend)?;
            }
            // No subscriber at the moment is not an error.
            None => drop(self.inner.local.send(Payload::from(payload))),
        }
        Ok(())
    }

    /// What is published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Payload> {
        self.inner.local.subscribe()
    }
}

/// The buses beside one store, each topic's opened on first use and kept while the store lives.
pub struct Buses {
    opts: StoreOptions,
    open: tokio::sync::Mutex<HashMap<String, Bus>>,
}

impl std::fmt::Debug for Buses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The options may hold a Redis password: not shown.
        f.debug_struct("Buses").finish_non_exhaustive()
    }
}

impl Buses {
    /// The buses beside the store `opts` names.
    pub fn new(opts: StoreOptions) -> Buses {
        Buses { opts, open: tokio::sync::Mutex::default() }
    }

    /// The bus of `topic`, opened the first time it is asked for.
    pub async fn get(&self, topic: &str) -> Result<Bus, SessionError> {
        let mut open = self.open.lock().await;
        if let Some(bus) = open.get(topic) {
            return Ok(bus.clone());
        }
        let bus = Bus::open(&self.opts, topic).await?;
        open.insert(topic.to_owned(), bus.clone());
        Ok(bus)
    }
}

async fn subscribe(client: &redis::Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Hands what Redis delivers to the local broadcast; reconnects (with a pause) when the
/// subscription ends.
async fn relay(client: redis::Client, channel: String, first: redis::aio::PubSub, local: broadcast::Sender<Payload>) {
    let mut pubsub = Some(first);
    loop {
        if let Some(p) = pubsub.take() {
            let mut stream = p.into_on_message();
            while let Some(msg) = stream.next().await {
                let _ = local.send(Payload::from(msg.get_payload_bytes()));
            }
            tracing::warn!(bus.channel = %channel, "the Redis subscription ended; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        match subscribe(&client, &channel).await {
            Ok(p) => pubsub = Some(p),
            Err(e) => tracing::warn!(bus.channel = %channel, error = %e, "cannot subscribe on Redis; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_bus_reaches_every_subscriber() {
        let bus = Bus::local();
        let (mut a, mut b) = (bus.subscribe(), bus.subscribe());
        bus.publish(b"hello").await.unwrap();
        assert_eq!(&*a.recv().await.unwrap(), b"hello");
        assert_eq!(&*b.recv().await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn a_store_opens_each_topic_once() {
        let buses = Buses::new(StoreOptions::Embedded { path: "unused".into() });
        let mut heard = buses.get("a").await.unwrap().subscribe();
        let mut other = buses.get("b").await.unwrap().subscribe();
        buses.get("a").await.unwrap().publish(b"one").await.unwrap();
        assert_eq!(&*heard.recv().await.unwrap(), b"one", "the same bus for the same topic");
        assert!(other.try_recv().is_err(), "another topic hears nothing");
    }
}
