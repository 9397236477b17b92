//! A short cache of the lists every viewer sees alike — the home page's recent, trending and
//! category lists and search results — shared by every request of one API process.
//!
//! A signed-in visitor's page is theirs (the gateway's page cache never keeps it), but most of
//! what it shows is not: the same recent videos, the same results for the same search. Those
//! lists are read from the database once per `public_page_max_age` (default 2 s) per process,
//! however many visitors ask. As the gateway's page cache does, a list past that age is read
//! again by one request while the others get the kept one, for at most as long again (so a list
//! is never older than twice the age, `docs/scaling.md`), and requests that find nothing kept
//! wait for the one read instead of each reading: a popular search costs one query per age,
//! never a burst of them when it expires. What is per viewer (the feed, their bell, their
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

/// What is kept for one key.
struct Slot<V> {
    /// The value and when it was read.
    kept: Option<(Instant, Arc<V>)>,
    /// A request is reading it again (the others get `kept` meanwhile).
    refreshing: bool,
    /// Taken by the one request that reads a value nothing is kept for; the others wait on it.
    first_read: Arc<tokio::sync::Mutex<()>>,
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Self { kept: None, refreshing: false, first_read: Arc::default() }
    }
}

/// Values kept for a short time, by key.
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, Slot<V>>>,
}

/// Clears a slot's `refreshing` mark when the refreshing request ends, however it ends (a
/// request dropped mid-read must not leave the mark, or the value would never be read again).
struct Refreshing<'a, K: Eq + Hash, V> {
    cache: &'a TtlCache<K, V>,
    key: &'a K,
}

impl<K: Eq + Hash, V> Drop for Refreshing<'_, K, V> {
    fn drop(&mut self) {
        if let Ok(mut entries) = self.cache.entries.lock()
            && let Some(slot) = entries.get_mut(self.key)
        {
            slot.refreshing = false;
        }
    }
}

/// What a request does on looking a key up.
enum Lookup<V> {
    Kept(Arc<V>),
    Refresh,
    WaitFor(Arc<tokio::sync::Mutex<()>>),
}

impl<K: Eq + Hash + Clone, V> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::default() }
    }

    /// The value kept for `key` if younger than the time to live. Past it (and younger than
    /// twice it), the kept value while another request reads it again, or `load`'s when this
    /// request is the one. With nothing kept, `load`'s, read by one request at a time (the
    /// others wait and take what it kept). A failed load keeps nothing and is this request's
    /// error.
    pub async fn get_or_load<E, F, Fut>(&self, key: K, load: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if self.ttl.is_zero() {
            return load().await.map(Arc::new);
        }
        let first_read = match self.lookup(&key) {
            Lookup::Kept(v) => return Ok(v),
            Lookup::Refresh => None,
            Lookup::WaitFor(gate) => Some(gate),
        };
        let _turn = match &first_read {
            Some(gate) => {
                let turn = gate.clone().lock_owned().await;
                // The request before us may have read it meanwhile.
                if let Some(v) = self.fresh(&key) {
                    return Ok(v);
                }
                Some(turn)
            }
            None => None,
        };
        let _mark = first_read.is_none().then(|| Refreshing { cache: self, key: &key });
        let v = Arc::new(load().await?);
        self.keep(&key, v.clone());
        Ok(v)
    }

    fn lookup(&self, key: &K) -> Lookup<V> {
        let Ok(mut entries) = self.entries.lock() else { return Lookup::Refresh };
        if !entries.contains_key(key) {
            self.make_room(&mut entries);
        }
        let slot = entries.entry(key.clone()).or_default();
        match &slot.kept {
            Some((at, v)) if at.elapsed() < self.ttl => Lookup::Kept(v.clone()),
            Some((at, v)) if at.elapsed() < self.ttl * 2 => {
                if slot.refreshing {
                    Lookup::Kept(v.clone())
                } else {
                    slot.refreshing = true;
                    Lookup::Refresh
                }
            }
            _ => Lookup::WaitFor(slot.first_read.clone()),
        }
    }

    fn fresh(&self, key: &K) -> Option<Arc<V>> {
        let entries = self.entries.lock().ok()?;
        match &entries.get(key)?.kept {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            _ => None,
        }
    }

    fn keep(&self, key: &K, v: Arc<V>) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if !entries.contains_key(key) {
            self.make_room(&mut entries);
        }
        entries.entry(key.clone()).or_default().kept = Some((Instant::now(), v));
    }

    /// Before a new key goes in: at [`MAX_ENTRIES`], the slots too old to serve are dropped
    /// (those being read are kept), then all.
    fn make_room(&self, entries: &mut HashMap<K, Slot<V>>) {
        if entries.len() < MAX_ENTRIES {
            return;
        }
        let servable = self.ttl * 2;
        entries.retain(|_, slot| {
            slot.refreshing
                || Arc::strong_count(&slot.first_read) > 1
                || slot.kept.as_ref().is_some_and(|(at, _)| at.elapsed() < servable)
        });
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
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

    #[tokio::test]
    async fn concurrent_requests_for_what_is_not_kept_read_it_once() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(60));
        let loads = AtomicUsize::new(0);
        let (release, released) = tokio::sync::watch::channel(false);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            let mut released = released.clone();
            released.wait_for(|r| *r).await.expect("released");
            Ok::<_, ()>(7)
        };
        let all = futures::future::join_all((0..20).map(|_| cache.get_or_load("q", load)));
        let releasing = async {
            tokio::task::yield_now().await;
            release.send(true).expect("sent");
        };
        let (got, ()) = tokio::join!(all, releasing);
        assert!(got.iter().all(|v| v.as_deref() == Ok(&7)));
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one read for twenty requests");
    }

    #[tokio::test]
    async fn past_its_age_one_request_reads_again_while_the_others_get_the_kept_value() {
        let ttl = Duration::from_secs(1);
        let cache: TtlCache<&str, u32> = TtlCache::new(ttl);
        cache.get_or_load("q", || async { Ok::<_, ()>(1) }).await.expect("loaded");
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;

        // A refresh that has not finished: the others get the kept value, without reading.
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let refresh = cache.get_or_load("q", || async {
            released.await.expect("released");
            Ok::<_, ()>(2)
        });
        let others = async {
            tokio::task::yield_now().await;
            let v = cache.get_or_load("q", || async { panic!("only one request reads") }).await.map(|v| *v);
            release.send(()).expect("sent");
            v
        };
        let (refreshed, other) = tokio::join!(refresh, others);
        assert_eq!(other, Ok::<_, ()>(1), "the kept value while it is read again");
        assert_eq!(refreshed.map(|v| *v), Ok(2));
        assert_eq!(cache.get_or_load("q", || async { Ok::<_, ()>(3) }).await.map(|v| *v), Ok(2), "kept anew");

        // A refresh dropped half-way leaves no mark: the next request reads.
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        let dropped = cache.get_or_load("q", futures::future::pending::<Result<u32, ()>>);
        assert!(tokio::time::timeout(Duration::from_millis(10), dropped).await.is_err());
        assert_eq!(cache.get_or_load("q", || async { Ok::<_, ()>(4) }).await.map(|v| *v), Ok(4));

        // Past twice its age nothing is served: the request reads.
        tokio::time::sleep(ttl * 2 + Duration::from_millis(50)).await;
        assert_eq!(cache.get_or_load("q", || async { Ok::<_, ()>(5) }).await.map(|v| *v), Ok(5));
    }
}
