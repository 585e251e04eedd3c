//! The shared state every router and service receives: the ports, the settings, and the
//! directory that keeps the hot-path reads of the store for `Settings::cache_ttl`.

use std::sync::Arc;

use herald_core::catalog::MemoryEventTypes;
use herald_core::ports::{Clock, EventTypeStore, Queue, Sender, Store, UnitOfWork};
use herald_core::rate::{LocalRateLimits, RateLimits};
use herald_core::stats::{MemoryStats, StatsStore};

use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::stats::Stats;

/// Cheap to clone: everything is behind `Arc`.
#[derive(Clone)]
pub struct AppState {
    /// Reads, and the writes that queue nothing (tenants, keys, subscriptions).
    pub store: Arc<dyn Store>,
    /// The store's reads on the hot paths (authentication, fan-out, delivery), kept for
    /// `settings.cache_ttl`. Everything else, the API's own reads included, uses `store`.
    pub directory: Arc<Directory>,
    /// The one path for writes that queue messages (events, deliveries, attempts).
    pub writes: Arc<dyn UnitOfWork>,
    /// What the workers receive from.
    pub queue: Arc<dyn Queue>,
    pub sender: Arc<dyn Sender>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// Send slots of rate-limited subscriptions, shared by every worker that delivers.
    pub rate_limits: Arc<dyn RateLimits>,
    /// Delivery statistics: counted here, flushed to their store in batches.
    pub stats: Arc<Stats>,
    /// The tenants' own event types and catalog settings (the API's reads and writes; intake
    /// reads them through `directory`).
    pub event_types: Arc<dyn EventTypeStore>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        writes: Arc<dyn UnitOfWork>,
        queue: Arc<dyn Queue>,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        let event_types: Arc<dyn EventTypeStore> = Arc::new(MemoryEventTypes::default());
        let directory = Directory::new(store.clone(), clock.clone(), settings.cache_ttl)
            .with_event_types(event_types.clone());
        Self {
            store,
            directory: Arc::new(directory),
            writes,
            queue,
            sender,
            clock,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            rate_limits: Arc::new(LocalRateLimits::default()),
            stats: Arc::new(Stats::new(Arc::new(MemoryStats::default()))),
            event_types,
        }
    }

    /// The same state with `rate_limits` shared by the workers (this process's memory by
    /// default; DynamoDB on AWS, where many instances deliver at once).
    pub fn with_rate_limits(mut self, rate_limits: Arc<dyn RateLimits>) -> Self {
        self.rate_limits = rate_limits;
        self
    }

    /// The same state with the tenants' event types kept in `store` (this process's memory by
    /// default; the embedded file or DynamoDB where they must outlive the process). Call it
    /// before serving: it starts the directory afresh.
    pub fn with_event_types(mut self, store: Arc<dyn EventTypeStore>) -> Self {
        let directory = Directory::new(
            self.store.clone(),
            self.clock.clone(),
            self.settings.cache_ttl,
        )
        .with_event_types(store.clone());
        self.directory = Arc::new(directory);
        self.event_types = store;
        self
    }

    /// The same state with delivery statistics kept in `store` (this process's memory by
    /// default; the embedded file or DynamoDB where they must outlive the process).
    pub fn with_stats(mut self, store: Arc<dyn StatsStore>) -> Self {
        self.stats = Arc::new(Stats::new(store));
        self
    }
}
