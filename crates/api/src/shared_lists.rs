//! A short cache of the lists every viewer sees alike — the home page's recent, trending and
//! category lists and search results — shared by every request of one API process.
//!
//! A signed-in visitor's page is theirs (the gateway's page cache never keeps it), but most of
//! what it shows is not: the same recent videos, the same results for the same search. Those
//! lists are read from the database once per `public_page_max_age` (default 2 s) per process,
//! however many visitors ask; a list is never older than that (the same staleness as the
//! gateway's page cache, `docs/scaling.md`). What is per viewer (the feed, their bell, their
//! subscriptions) is never kept here. Zero turns it off.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use turtlemen_db::channels::Channel;
use turtlemen_db::videos::Video;

/// Entries kept per kind of list at most (a search is keyed by its words, so there can be
/// many): over it, the expired ones are dropped, then all.
const MAX_ENTRIES: usize = 4096;

/// Values kept for a short time, by key.
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, Arc<V>)>>,
}

impl<K: Eq + Hash, V> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::default() }
    }

    /// The value kept for `key` if younger than the time to live, else `load`'s (kept when it
    /// succeeds). Concurrent misses each load: the cost is bounded by the requests in flight.
    pub async fn get_or_load<E, F, Fut>(&self, key: K, load: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if self.ttl.is_zero() {
            return load().await.map(Arc::new);
        }
        if let Ok(entries) = self.entries.lock()
            && let Some((at, v)) = entries.get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(v.clone());
        }
        let v = Arc::new(load().await?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (Instant::now(), v.clone()));
        }
        Ok(v)
    }
}

/// One page of search results: videos, channels (first page only), the next page's number.
pub type SearchPage = (Vec<Video>, Vec<Channel>, Option<u32>);

/// The API process's shared lists.
pub struct SharedLists {
    /// Home lists by their listing (`Debug` of `turtlemen_db::videos::Listing`).
    pub home: TtlCache<String, Vec<Video>>,
    /// Search results by the parsed search (`Debug` of `crate::search::Search`).
    pub search: TtlCache<String, SearchPage>,
}

impl SharedLists {
    pub fn new(ttl: Duration) -> Self {
        Self { home: TtlCache::new(ttl), search: TtlCache::new(ttl) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_value_is_loaded_once_per_time_to_live() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_millis(200));
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(7)
        };
        assert_eq!(*cache.get_or_load("a", load).await.expect("loaded"), 7);
        assert_eq!(*cache.get_or_load("a", load).await.expect("kept"), 7);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        cache.get_or_load("a", load).await.expect("loaded again");
        assert_eq!(loads.load(Ordering::SeqCst), 2, "expired");
        // A failed load is not kept; zero keeps nothing.
        assert!(cache.get_or_load("b", || async { Err::<u32, _>("down") }).await.is_err());
        let off: TtlCache<&str, u32> = TtlCache::new(Duration::ZERO);
        off.get_or_load("a", load).await.expect("loaded");
        off.get_or_load("a", load).await.expect("loaded");
        assert_eq!(loads.load(Ordering::SeqCst), 4);
    }
}
