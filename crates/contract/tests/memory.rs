//! The port contract on the in-memory adapters: what the services' unit tests run on behaves as
//! the embedded and AWS adapters do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use herald_contract::memory::{MemoryQueue, MemoryStore};
use herald_contract::{Backend, Fixture};
use herald_core::ports::{Queue, SystemClock};

async fn fresh_backend() -> Fixture<Backend> {
    let queue = MemoryQueue::new(Arc::new(SystemClock));
    let store = MemoryStore::new(Arc::clone(&queue));
    Fixture::new(Arc::new(Backend {
        store: store.clone(),
        writes: store,
        queue,
    }))
}

async fn fresh_queue() -> Fixture<dyn Queue> {
    Fixture::new(MemoryQueue::new(Arc::new(SystemClock)))
}

herald_contract::store_contract_tests!(fresh_backend);
herald_contract::store_concurrency_contract_tests!(fresh_backend);
herald_contract::queue_contract_tests!(fresh_queue);
