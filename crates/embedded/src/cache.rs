//! A short-lived cache of decoded subscriptions and API keys, the records read on every intake
//! request, fan-out and delivery but rarely written.
//!
//! Coherent within the process: the writer thread invalidates it after every commit that touched
//! those tables and before it answers the writer's callers, so a write is visible to every read
//! that starts after the write returned. A read that raced an invalidation does not store what it
//! read (the generation moved). The database is locked by one process, so the TTL is only a
//! bound on staleness should anything else ever change it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_core::ids::TenantId;
use herald_core::model::{ApiKeyRecord, Subscription};

const TTL: Duration = Duration::from_secs(1);
/// Bounds memory: a full map is emptied (lookups of random keys must not grow it forever).
const MAX_ENTRIES: usize = 4096;

struct Entry<T> {
    at: Instant,
    value: T,
}

struct Map<K, T>(Mutex<HashMap<K, Entry<T>>>);

impl<K: Eq + Hash, T: Clone> Map<K, T> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<T>>> {
        // The map holds no invariant a panic could break.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get<Q: ?Sized + Eq + Hash>(&self, key: &Q) -> Option<T>
    where
        K: std::borrow::Borrow<Q>,
    {
        let map = self.lock();
        map.get(key)
            .filter(|e| e.at.elapsed() < TTL)
            .map(|e| e.value.clone())
    }

    fn insert(&self, generation: &AtomicU64, seen: u64, key: K, value: T) {
        let mut map = self.lock();
        // Checked under the lock: `invalidate` bumps first, then clears under the same lock.
        if generation.load(Ordering::SeqCst) != seen {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(
            key,
            Entry {
                at: Instant::now(),
                value,
            },
        );
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

pub(crate) struct ReadCache {
    generation: AtomicU64,
    subscriptions: Map<String, Option<Subscription>>,
    enabled: Map<TenantId, Arc<Vec<Subscription>>>,
    api_keys: Map<String, Option<ApiKeyRecord>>,
}

impl ReadCache {
    pub(crate) fn new() -> Self {
        Self {
            generation: AtomicU64::new(0),
            subscriptions: Map::new(),
            enabled: Map::new(),
            api_keys: Map::new(),
        }
    }

    /// Taken before reading the file; hand it back to the `put_*` call.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.subscriptions.clear();
        self.enabled.clear();
        self.api_keys.clear();
    }

    pub(crate) fn subscription(&self, key: &str) -> Option<Option<Subscription>> {
        self.subscriptions.get(key)
    }

    pub(crate) fn put_subscription(&self, seen: u64, key: String, sub: Option<Subscription>) {
        self.subscriptions.insert(&self.generation, seen, key, sub);
    }

    pub(crate) fn enabled(&self, tenant: &TenantId) -> Option<Arc<Vec<Subscription>>> {
        self.enabled.get(tenant)
    }

    pub(crate) fn put_enabled(&self, seen: u64, tenant: TenantId, subs: Arc<Vec<Subscription>>) {
        self.enabled.insert(&self.generation, seen, tenant, subs);
    }

    pub(crate) fn api_key(&self, hash: &str) -> Option<Option<ApiKeyRecord>> {
        self.api_keys.get(hash)
    }

    pub(crate) fn put_api_key(&self, seen: u64, hash: String, key: Option<ApiKeyRecord>) {
        self.api_keys.insert(&self.generation, seen, hash, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let cache = ReadCache::new();
        let seen = cache.generation();
        cache.invalidate();
        cache.put_api_key(seen, "h".into(), None);
        assert!(cache.api_key("h").is_none());
        let seen = cache.generation();
        cache.put_api_key(seen, "h".into(), None);
        assert_eq!(cache.api_key("h"), Some(None));
        cache.invalidate();
        assert!(cache.api_key("h").is_none());
    }
}
