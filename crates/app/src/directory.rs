//! The directory: the records the hot paths look up on every request and every delivery — an API
//! key (authentication), a tenant's enabled subscriptions (fan-out), one subscription (delivery),
//! a tenant's event-type catalog with its schemas compiled (intake) — read from the store at most
//! once per staleness window per process, and kept in this process's memory in between. On AWS
//! each of those reads is a DynamoDB call (the catalog: one Query).
//!
//! # The staleness contract
//!
//! An answer may be up to the TTL older than the store ([`Settings::cache_ttl`], from
//! `HERALD_CACHE_TTL_MS`), measured on the [`Clock`] port from the moment its read started. Seen
//! from another process (another Lambda instance, the operator CLI): a disabled or deleted
//! subscription stops receiving, a new or re-enabled one starts, a rotated secret is used, and a
//! revoked key stops working, and a new, changed or deleted event type (or a changed setting) is
//! applied by intake, within the TTL. Negative answers (no such key, no such subscription)
//! are kept the same way and for as long. Writes made in this process drop what they change at
//! once ([`Directory::forget_subscription`], [`Directory::forget_api_key`],
//! [`Directory::forget_catalog`]), so a user of one
//! process (`herald dev`, a warm Lambda instance) sees their own writes. A TTL of zero keeps
//! nothing: every call reads the store.
//!
//! It must never serve the API's own reads (a PATCH then a GET reads the store, not this), and
//! never keep a failed read (the next call reads again).
//!
//! # Memory and concurrency
//!
//! Each of the maps holds at most [`MAX_ENTRIES`] entries; a miss on a full map drops the
//! expired entries, then the oldest one. Concurrent misses for one key share one store read: the
//! first caller reads, the others wait for its answer (if that read fails or is cancelled, the next
//! waiter reads). A write in this process that lands while a read is in flight drops that read's
//! slot, so its answer is handed to its waiters but not kept.
//!
//! [`Settings::cache_ttl`]: crate::settings::Settings::cache_ttl

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use herald_core::catalog::{Catalog, MemoryEventTypes};
use herald_core::health::{Health, HealthChange};
use herald_core::ports::{Clock, EventTypeStore, Store, StoreError};
use herald_core::{ApiKeyId, ApiKeyRecord, Subscription, SubscriptionId, TenantId};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::OnceCell;

/// Entries kept per map (API keys, enabled-subscription lists, subscriptions).
pub const MAX_ENTRIES: usize = 10_000;

/// The hot-path reads of the store, kept for a bounded time (see the module documentation).
pub struct Directory {
    store: Arc<dyn Store>,
    event_types: Arc<dyn EventTypeStore>,
    clock: Arc<dyn Clock>,
    ttl: SignedDuration,
    max_entries: usize,
    api_keys: Shelf<String, Option<ApiKeyRecord>>,
    enabled: Shelf<TenantId, Arc<[Subscription]>>,
    subscriptions: Shelf<(TenantId, SubscriptionId), Option<Subscription>>,
    catalogs: Shelf<TenantId, Arc<Catalog>>,
}

impl Directory {
    /// Reads through `store`, keeping answers for `ttl` on `clock` (zero: keeps nothing).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            store,
            event_types: Arc::new(MemoryEventTypes::default()),
            clock,
            ttl: SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX),
            max_entries: MAX_ENTRIES,
            api_keys: Shelf::default(),
            enabled: Shelf::default(),
            subscriptions: Shelf::default(),
            catalogs: Shelf::default(),
        }
    }

    /// The same directory reading catalogs from `event_types` (this process's memory by default).
    pub fn with_event_types(mut self, event_types: Arc<dyn EventTypeStore>) -> Self {
        self.event_types = event_types;
        self
    }

    /// `tenant`'s event-type catalog, schemas compiled once per read (for intake).
    pub async fn catalog(&self, tenant: &TenantId) -> Result<Arc<Catalog>, StoreError> {
        let load = || async {
            let read = self.event_types.tenant_catalog(tenant).await?;
            Ok(Arc::new(Catalog::compile(read)))
        };
        self.read(&self.catalogs, *tenant, load).await
    }

    /// Drops what this process keeps of `tenant`'s catalog: call it after a write to its event
    /// types or settings, whether or not the write succeeded.
    pub fn forget_catalog(&self, tenant: &TenantId) {
        self.catalogs.forget(tenant);
    }

    /// The key record with this hash ([`crate::auth::hash_api_key`]), revoked or not.
    pub async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let load = || self.store.find_api_key(hash);
        self.read(&self.api_keys, hash.to_owned(), load).await
    }

    /// Every enabled subscription of `tenant`, for fan-out.
    pub async fn enabled_subscriptions(
        &self,
        tenant: &TenantId,
    ) -> Result<Arc<[Subscription]>, StoreError> {
        let load = || async { Ok(self.store.enabled_subscriptions(tenant).await?.into()) };
        self.read(&self.enabled, *tenant, load).await
    }

    /// One subscription of `tenant`, for delivery.
    pub async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        let load = || self.store.get_subscription(tenant, id);
        self.read(&self.subscriptions, (*tenant, *id), load).await
    }

    /// Drops what this process keeps of the subscription and of its tenant's enabled list. Call it
    /// after creating, updating, disabling or deleting a subscription, whether or not the write
    /// succeeded (a failed write may still have landed).
    pub fn forget_subscription(&self, tenant: &TenantId, id: &SubscriptionId) {
        self.subscriptions.forget(&(*tenant, *id));
        self.enabled.forget(tenant);
    }

    /// Keeps `health` as the kept subscription's health (what a worker here just wrote or read
    /// back), so this process's next deliveries to it act on it without reading the store. The
    /// entry keeps its age: it is not made fresher than its read.
    pub fn note_health(&self, tenant: &TenantId, id: &SubscriptionId, health: &Health) {
        self.subscriptions.update(&(*tenant, *id), |kept| {
            if let Some(sub) = kept {
                sub.health = health.clone();
            }
        });
    }

    /// Whether a success at `now` must be written ([`Health::success_needs_write`]), asked of the
    /// kept copy so that concurrent deliveries here write it once: the first caller that finds it
    /// due marks the kept copy as succeeded and gets `true`. Without a kept copy, `snapshot` (the
    /// copy the caller read) decides.
    pub fn claim_success_write(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        snapshot: &Health,
        now: Timestamp,
    ) -> bool {
        let kept = self.subscriptions.update(&(*tenant, *id), |kept| {
            let sub = kept.as_mut()?;
            let due = sub.health.success_needs_write(now);
            if due {
                sub.health.apply(HealthChange::Succeeded { at: now });
            }
            Some(due)
        });
        kept.flatten()
            .unwrap_or_else(|| snapshot.success_needs_write(now))
    }

    /// Drops what this process keeps of the key, after revoking it. Keys are kept by hash, which a
    /// revocation does not name: reads of keys in flight are dropped too.
    pub fn forget_api_key(&self, id: &ApiKeyId) {
        self.api_keys.forget_where(|slot| match slot {
            Slot::Ready { value, .. } => value.as_ref().is_some_and(|k| k.id == *id),
            Slot::Loading(_) => true,
        });
    }

    #[cfg(test)]
    fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The kept answer for `key` while fresh, else `load`'s (shared with concurrent callers).
    async fn read<K, V, F, Fut>(
        &self,
        shelf: &Shelf<K, V>,
        key: K,
        load: F,
    ) -> Result<V, StoreError>
    where
        K: Eq + Hash + Clone,
        V: Clone,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, StoreError>>,
    {
        if self.ttl.is_zero() {
            return load().await;
        }
        let now = self.clock.now();
        let cell = match shelf.lookup(&key, now, self.ttl, self.max_entries) {
            Lookup::Fresh(value) => return Ok(value),
            Lookup::Load(cell) => cell,
            // Every slot is a read in flight: read without keeping.
            Lookup::Full => return load().await,
        };
        let (value, loaded_at) = cell
            .get_or_try_init(|| async {
                let started = self.clock.now();
                Ok::<_, StoreError>((load().await?, started))
            })
            .await?;
        shelf.settle(&key, &cell, value, *loaded_at);
        Ok(value.clone())
    }
}

/// One read shared by concurrent callers: the answer and when its read started.
type Pending<V> = Arc<OnceCell<(V, Timestamp)>>;

enum Slot<V> {
    Ready { value: V, loaded_at: Timestamp },
    Loading(Pending<V>),
}

enum Lookup<V> {
    Fresh(V),
    Load(Pending<V>),
    Full,
}

/// One map of kept answers.
struct Shelf<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K, V> Default for Shelf<K, V> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

fn fresh(loaded_at: Timestamp, now: Timestamp, ttl: SignedDuration) -> bool {
    // A clock that went back is no proof of freshness.
    let age = now.duration_since(loaded_at);
    !age.is_negative() && age < ttl
}

impl<K: Eq + Hash + Clone, V: Clone> Shelf<K, V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, Slot<V>>> {
        // Nothing panics while holding it; if something did, the map is still consistent.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fresh answer, or the read to join (started here if none is in flight).
    fn lookup(&self, key: &K, now: Timestamp, ttl: SignedDuration, max: usize) -> Lookup<V> {
        let mut slots = self.lock();
        match slots.get(key) {
            Some(Slot::Ready { value, loaded_at }) if fresh(*loaded_at, now, ttl) => {
                return Lookup::Fresh(value.clone())
            }
            Some(Slot::Loading(pending)) => return Lookup::Load(pending.clone()),
            Some(Slot::Ready { .. }) => {
                slots.remove(key);
            }
            None => {}
        }
        if slots.len() >= max {
            slots.retain(|_, slot| match slot {
                Slot::Ready { loaded_at, .. } => fresh(*loaded_at, now, ttl),
                Slot::Loading(_) => true,
            });
        }
        if slots.len() >= max {
            let oldest = slots
                .iter()
                .filter_map(|(k, slot)| match slot {
                    Slot::Ready { loaded_at, .. } => Some((*loaded_at, k)),
                    Slot::Loading(_) => None,
                })
                .min_by_key(|(loaded_at, _)| *loaded_at)
                .map(|(_, k)| k.clone());
            match oldest {
                Some(k) => {
                    slots.remove(&k);
                }
                None => return Lookup::Full,
            }
        }
        let pending = Pending::default();
        slots.insert(key.clone(), Slot::Loading(pending.clone()));
        Lookup::Load(pending)
    }

    /// Keeps `value` if `pending` is still the read in flight for `key` (not forgotten meanwhile).
    fn settle(&self, key: &K, pending: &Pending<V>, value: &V, loaded_at: Timestamp) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get_mut(key) {
            if matches!(slot, Slot::Loading(p) if Arc::ptr_eq(p, pending)) {
                *slot = Slot::Ready {
                    value: value.clone(),
                    loaded_at,
                };
            }
        }
    }

    /// Changes a kept answer in place and answers what `change` did (`None`: nothing kept; a
    /// read in flight is left alone).
    fn update<R>(&self, key: &K, change: impl FnOnce(&mut V) -> R) -> Option<R> {
        match self.lock().get_mut(key) {
            Some(Slot::Ready { value, .. }) => Some(change(value)),
            _ => None,
        }
    }

    fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    fn forget_where(&self, matches: impl Fn(&Slot<V>) -> bool) {
        self.lock().retain(|_, slot| !matches(slot));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use async_trait::async_trait;
    use herald_contract::compose::ComposedStore;
    use herald_contract::fixtures;
    use herald_contract::memory::{ManualClock, MemoryQueue, MemoryStore};
    use herald_core::ports::TenantStore;
    use herald_core::ports::{Page, PageRequest, SubscriptionFilter, SubscriptionStore};
    use herald_core::Tenant;

    use super::*;
    use crate::auth::record_for_key;

    const TTL: Duration = Duration::from_secs(5);

    /// The memory store, counting the three reads the directory keeps (each yields once, so
    /// concurrent callers overlap), and failing them on demand.
    struct Counting {
        inner: Arc<MemoryStore>,
        keys: AtomicUsize,
        enabled: AtomicUsize,
        subscriptions: AtomicUsize,
        fail: AtomicBool,
    }

    impl Counting {
        /// Counts `read`, and yields after it: what a caller gets was read before the yield.
        async fn counted<T>(
            &self,
            counter: &AtomicUsize,
            read: impl Future<Output = Result<T, StoreError>>,
        ) -> Result<T, StoreError> {
            counter.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::backend("the table is throttled"));
            }
            let answer = read.await;
            tokio::task::yield_now().await;
            answer
        }
    }

    #[async_trait]
    impl TenantStore for Counting {
        async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
            self.inner.put_tenant(t).await
        }
        async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
            self.inner.get_tenant(id).await
        }
        async fn list_tenants(&self, p: &PageRequest) -> Result<Page<Tenant>, StoreError> {
            self.inner.list_tenants(p).await
        }
        async fn put_api_key(&self, k: &ApiKeyRecord) -> Result<(), StoreError> {
            self.inner.put_api_key(k).await
        }
        async fn find_api_key(&self, h: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
            self.counted(&self.keys, self.inner.find_api_key(h)).await
        }
        async fn list_api_keys(&self, t: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
            self.inner.list_api_keys(t).await
        }
        async fn revoke_api_key(
            &self,
            t: &TenantId,
            id: &ApiKeyId,
            at: Timestamp,
        ) -> Result<(), StoreError> {
            self.inner.revoke_api_key(t, id, at).await
        }
    }

    #[async_trait]
    impl SubscriptionStore for Counting {
        async fn create_subscription(&self, s: &Subscription) -> Result<(), StoreError> {
            self.inner.create_subscription(s).await
        }
        async fn get_subscription(
            &self,
            t: &TenantId,
            id: &SubscriptionId,
        ) -> Result<Option<Subscription>, StoreError> {
            self.counted(&self.subscriptions, self.inner.get_subscription(t, id))
                .await
        }
        async fn update_subscription(&self, s: &Subscription) -> Result<(), StoreError> {
            self.inner.update_subscription(s).await
        }
        async fn delete_subscription(
            &self,
            t: &TenantId,
            id: &SubscriptionId,
        ) -> Result<(), StoreError> {
            self.inner.delete_subscription(t, id).await
        }
        async fn list_subscriptions(
            &self,
            t: &TenantId,
            f: &SubscriptionFilter,
            p: &PageRequest,
        ) -> Result<Page<Subscription>, StoreError> {
            self.inner.list_subscriptions(t, f, p).await
        }
        async fn enabled_subscriptions(
            &self,
            t: &TenantId,
        ) -> Result<Vec<Subscription>, StoreError> {
            self.counted(&self.enabled, self.inner.enabled_subscriptions(t))
                .await
        }
        async fn count_subscriptions(
            &self,
            t: &TenantId,
            up_to: usize,
        ) -> Result<usize, StoreError> {
            self.inner.count_subscriptions(t, up_to).await
        }
        async fn update_health(
            &self,
            t: &TenantId,
            id: &SubscriptionId,
            change: herald_core::health::HealthChange,
        ) -> Result<Option<herald_core::health::Health>, StoreError> {
            self.inner.update_health(t, id, change).await
        }
    }

    struct Fixture {
        clock: Arc<ManualClock>,
        /// Writes go here directly, as another process's would: the directory is not told.
        store: Arc<MemoryStore>,
        reads: Arc<Counting>,
        directory: Directory,
        tenant: TenantId,
    }

    impl Fixture {
        fn new(ttl: Duration) -> Self {
            Self::bounded(ttl, MAX_ENTRIES)
        }

        fn bounded(ttl: Duration, max_entries: usize) -> Self {
            let clock = ManualClock::fixed();
            let store = MemoryStore::new(MemoryQueue::new(clock.clone()));
            let reads = Arc::new(Counting {
                inner: store.clone(),
                keys: AtomicUsize::new(0),
                enabled: AtomicUsize::new(0),
                subscriptions: AtomicUsize::new(0),
                fail: AtomicBool::new(false),
            });
            let composed = ComposedStore {
                tenants: reads.clone(),
                subscriptions: reads.clone(),
                ..ComposedStore::of(store.clone())
            };
            let directory = Directory::new(Arc::new(composed), clock.clone(), ttl)
                .with_max_entries(max_entries);
            Self {
                clock,
                store,
                reads,
                directory,
                tenant: TenantId::new(),
            }
        }

        /// (key reads, enabled-list reads, subscription reads) so far.
        fn reads(&self) -> (usize, usize, usize) {
            (
                self.reads.keys.load(Ordering::SeqCst),
                self.reads.enabled.load(Ordering::SeqCst),
                self.reads.subscriptions.load(Ordering::SeqCst),
            )
        }

        async fn subscription(&self) -> Subscription {
            let sub = fixtures::subscription(self.tenant, &["*"], true);
            self.store.create_subscription(&sub).await.unwrap();
            sub
        }

        async fn key(&self, text: &str) -> ApiKeyRecord {
            let record = record_for_key(text, self.tenant, "test", self.clock.now());
            self.store.put_api_key(&record).await.unwrap();
            record
        }

        /// All three reads once.
        async fn read_all(&self, key: &ApiKeyRecord, sub: &Subscription) {
            let d = &self.directory;
            d.find_api_key(&key.hash).await.unwrap();
            d.enabled_subscriptions(&self.tenant).await.unwrap();
            d.get_subscription(&self.tenant, &sub.id).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_hit_within_the_ttl_does_not_read_the_store_and_after_it_reads_again() {
        let f = Fixture::new(TTL);
        let (key, sub) = (f.key("hk_a").await, f.subscription().await);

        f.read_all(&key, &sub).await;
        assert_eq!(f.reads(), (1, 1, 1));
        f.clock.advance(TTL - Duration::from_millis(1));
        f.read_all(&key, &sub).await;
        assert_eq!(f.reads(), (1, 1, 1), "within the TTL: from memory");

        f.clock.advance(Duration::from_millis(1));
        f.read_all(&key, &sub).await;
        assert_eq!(f.reads(), (2, 2, 2), "at the TTL: read again");
    }

    #[tokio::test]
    async fn a_zero_ttl_reads_through_every_time_and_keeps_nothing() {
        let f = Fixture::new(Duration::ZERO);
        let (key, sub) = (f.key("hk_a").await, f.subscription().await);
        for _ in 0..3 {
            f.read_all(&key, &sub).await;
        }
        assert_eq!(f.reads(), (3, 3, 3));
        let d = &f.directory;
        assert_eq!(
            (d.api_keys.len(), d.enabled.len(), d.subscriptions.len()),
            (0, 0, 0)
        );

        // And it sees every write at once.
        f.store
            .delete_subscription(&f.tenant, &sub.id)
            .await
            .unwrap();
        assert_eq!(d.get_subscription(&f.tenant, &sub.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_deleted_or_disabled_subscription_stops_being_returned_after_the_ttl() {
        let f = Fixture::new(TTL);
        let (deleted, disabled) = (f.subscription().await, f.subscription().await);
        let d = &f.directory;
        assert_eq!(d.enabled_subscriptions(&f.tenant).await.unwrap().len(), 2);
        assert!(d
            .get_subscription(&f.tenant, &deleted.id)
            .await
            .unwrap()
            .is_some());

        // Another process deletes one and disables the other.
        f.store
            .delete_subscription(&f.tenant, &deleted.id)
            .await
            .unwrap();
        let mut off = disabled.clone();
        off.enabled = false;
        f.store.update_subscription(&off).await.unwrap();

        // Within the TTL the old answers may still be given; after it, never.
        f.clock.advance(Duration::from_secs(1));
        assert_eq!(d.enabled_subscriptions(&f.tenant).await.unwrap().len(), 2);
        f.clock.advance(TTL);
        assert!(d.enabled_subscriptions(&f.tenant).await.unwrap().is_empty());
        assert_eq!(
            d.get_subscription(&f.tenant, &deleted.id).await.unwrap(),
            None
        );
        assert!(
            !d.get_subscription(&f.tenant, &disabled.id)
                .await
                .unwrap()
                .unwrap()
                .enabled
        );
    }

    #[tokio::test]
    async fn a_revoked_key_stops_authenticating_after_the_ttl_or_at_once_when_forgotten() {
        let f = Fixture::new(TTL);
        let (key, other) = (f.key("hk_revoked_elsewhere").await, f.key("hk_here").await);
        let d = &f.directory;
        let revoked = |k: &ApiKeyRecord| {
            let hash = k.hash.clone();
            async move {
                d.find_api_key(&hash)
                    .await
                    .unwrap()
                    .unwrap()
                    .revoked_at
                    .is_some()
            }
        };
        assert!(!revoked(&key).await);

        // Revoked by another process (the operator CLI): seen once the TTL has passed.
        let now = f.clock.now();
        f.store
            .revoke_api_key(&f.tenant, &key.id, now)
            .await
            .unwrap();
        assert!(!revoked(&key).await, "within the TTL");
        f.clock.advance(TTL);
        assert!(revoked(&key).await);

        // Revoked in this process, which then forgets it: seen at once.
        assert!(!revoked(&other).await);
        let now = f.clock.now();
        f.store
            .revoke_api_key(&f.tenant, &other.id, now)
            .await
            .unwrap();
        assert!(!revoked(&other).await, "not forgotten yet");
        d.forget_api_key(&other.id);
        assert!(revoked(&other).await);
        assert!(revoked(&key).await);
        assert_eq!(f.reads().0, 4, "forgetting one key keeps the others");
    }

    #[tokio::test]
    async fn negative_answers_are_kept_for_the_ttl_too() {
        let f = Fixture::new(TTL);
        let d = &f.directory;
        let text = "hk_not_yet";
        let hash = crate::auth::hash_api_key(text);
        let missing = SubscriptionId::new();
        assert_eq!(d.find_api_key(&hash).await.unwrap(), None);
        assert_eq!(d.get_subscription(&f.tenant, &missing).await.unwrap(), None);
        f.key(text).await;
        f.clock.advance(Duration::from_secs(1));
        assert_eq!(d.find_api_key(&hash).await.unwrap(), None);
        assert_eq!(d.get_subscription(&f.tenant, &missing).await.unwrap(), None);
        assert_eq!(
            f.reads(),
            (1, 0, 1),
            "unknown keys do not reach the store twice"
        );
        f.clock.advance(TTL);
        assert!(d.find_api_key(&hash).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn forgetting_a_subscription_drops_it_and_its_tenants_list_at_once() {
        let f = Fixture::new(TTL);
        let (key, sub) = (f.key("hk_a").await, f.subscription().await);
        f.read_all(&key, &sub).await;
        let mut off = sub.clone();
        off.enabled = false;
        f.store.update_subscription(&off).await.unwrap();
        f.directory.forget_subscription(&f.tenant, &sub.id);

        let d = &f.directory;
        assert!(d.enabled_subscriptions(&f.tenant).await.unwrap().is_empty());
        assert!(
            !d.get_subscription(&f.tenant, &sub.id)
                .await
                .unwrap()
                .unwrap()
                .enabled
        );
        d.find_api_key(&key.hash).await.unwrap();
        assert_eq!(f.reads(), (1, 2, 2), "the key was not forgotten");
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_read_and_a_write_meanwhile_is_not_undone() {
        let f = Fixture::new(TTL);
        let sub = f.subscription().await;
        let d = &f.directory;
        let (a, b, c) = tokio::join!(
            d.enabled_subscriptions(&f.tenant),
            d.enabled_subscriptions(&f.tenant),
            d.enabled_subscriptions(&f.tenant),
        );
        assert_eq!(
            (a.unwrap().len(), b.unwrap().len(), c.unwrap().len()),
            (1, 1, 1)
        );
        assert_eq!(f.reads().1, 1);

        // A write in this process while a read is in flight: the read's answer is not kept.
        f.clock.advance(TTL);
        let read = d.enabled_subscriptions(&f.tenant);
        let write = async {
            f.store
                .delete_subscription(&f.tenant, &sub.id)
                .await
                .unwrap();
            d.forget_subscription(&f.tenant, &sub.id);
        };
        let (read, ()) = tokio::join!(read, write);
        assert_eq!(read.unwrap().len(), 1, "read before the write");
        assert!(d.enabled_subscriptions(&f.tenant).await.unwrap().is_empty());
        assert_eq!(f.reads().1, 3);
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let f = Fixture::new(TTL);
        let sub = f.subscription().await;
        f.reads.fail.store(true, Ordering::SeqCst);
        let d = &f.directory;
        assert!(d.get_subscription(&f.tenant, &sub.id).await.is_err());
        f.reads.fail.store(false, Ordering::SeqCst);
        assert!(d
            .get_subscription(&f.tenant, &sub.id)
            .await
            .unwrap()
            .is_some());
        assert_eq!(f.reads().2, 2);
    }

    #[tokio::test]
    async fn a_clock_that_went_back_does_not_make_an_entry_fresh() {
        let f = Fixture::new(TTL);
        let sub = f.subscription().await;
        let d = &f.directory;
        d.get_subscription(&f.tenant, &sub.id).await.unwrap();
        let start = f.clock.now();
        f.clock
            .set(start.checked_sub(SignedDuration::from_secs(1)).unwrap());
        d.get_subscription(&f.tenant, &sub.id).await.unwrap();
        assert_eq!(f.reads().2, 2);
    }

    #[tokio::test]
    async fn each_map_is_bounded_dropping_expired_entries_then_the_oldest() {
        let f = Fixture::bounded(TTL, 3);
        let d = &f.directory;
        let ids: Vec<_> = (0..5).map(|_| SubscriptionId::new()).collect();
        for id in &ids {
            d.get_subscription(&f.tenant, id).await.unwrap();
            f.clock.advance(Duration::from_millis(10));
        }
        assert_eq!(d.subscriptions.len(), 3);
        assert_eq!(f.reads().2, 5);
        // The newest are kept, the oldest were dropped.
        d.get_subscription(&f.tenant, &ids[4]).await.unwrap();
        assert_eq!(f.reads().2, 5);
        d.get_subscription(&f.tenant, &ids[0]).await.unwrap();
        assert_eq!(f.reads().2, 6);

        // Once they have expired, a full map makes room by dropping them all.
        f.clock.advance(TTL);
        d.get_subscription(&f.tenant, &SubscriptionId::new())
            .await
            .unwrap();
        assert_eq!(d.subscriptions.len(), 1);
    }
}
