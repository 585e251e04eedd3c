//! The port contract on the in-memory adapters: what the services' unit tests run on behaves as
//! the embedded and AWS adapters do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use herald_contract::memory::{MemoryQueue, MemoryStore};
use herald_contract::{Backend, Fixture};
use herald_core::catalog::MemoryEventTypes;
use herald_core::ports::{EventTypeStore, Queue, SystemClock};
use herald_core::rate::{LocalRateLimits, RateLimits};
use herald_core::stats::{MemoryStats, StatsStore};

async fn fresh_backend() -> Fixture<Backend> {
    let queue = MemoryQueue::new(Arc::new(SystemClock));
    let store = MemoryStore::new(Arc::clone(&queue));
    Fixture::new(Arc::new(Backend {
        store: store.clone(),
        writes: store,
        queue,
    }))
}

async fn fresh_rate_limits() -> Fixture<dyn RateLimits> {
    Fixture::new(Arc::new(LocalRateLimits::default()))
}

async fn fresh_stats() -> Fixture<dyn StatsStore> {
    Fixture::new(Arc::new(MemoryStats::default()))
}

async fn fresh_event_types() -> Fixture<dyn EventTypeStore> {
    Fixture::new(Arc::new(MemoryEventTypes::default()))
}

async fn fresh_queue() -> Fixture<dyn Queue> {
    Fixture::new(MemoryQueue::new(Arc::new(SystemClock)))
}

herald_contract::store_contract_tests!(fresh_backend);
herald_contract::store_concurrency_contract_tests!(fresh_backend);
herald_contract::queue_contract_tests!(fresh_queue);
herald_contract::rate_limits_contract_tests!(fresh_rate_limits);
herald_contract::rate_limits_concurrency_contract_tests!(fresh_rate_limits);
herald_contract::stats_contract_tests!(fresh_stats);
herald_contract::stats_concurrency_contract_tests!(fresh_stats);
herald_contract::event_types_contract_tests!(fresh_event_types);
