//! The shared port contract (`herald-contract`) on the embedded store and queue: the same suite
//! the DynamoDB/SQS adapters pass on an emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use herald_contract::{Backend, Fixture};
use herald_core::ports::Queue;
use herald_embedded::EmbeddedDb;

/// A fresh database in its own temporary directory, which lives as long as the fixture.
fn fresh() -> (EmbeddedDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (EmbeddedDb::open(dir.path()).unwrap(), dir)
}

async fn fresh_backend() -> Fixture<Backend> {
    let (db, dir) = fresh();
    let backend = Backend {
        store: Arc::new(db.store()),
        writes: Arc::new(db.outbox()),
        queue: Arc::new(db.queue()),
    };
    // The database before the directory: the file is closed before the directory goes.
    Fixture::with_guard(Arc::new(backend), (db, dir))
}

async fn fresh_stats() -> Fixture<dyn herald_core::stats::StatsStore> {
    let (db, dir) = fresh();
    Fixture::with_guard(Arc::new(db.store()), (db, dir))
}

async fn fresh_event_types() -> Fixture<dyn herald_core::ports::EventTypeStore> {
    let (db, dir) = fresh();
    Fixture::with_guard(Arc::new(db.store()), (db, dir))
}

async fn fresh_queue() -> Fixture<dyn Queue> {
    let (db, dir) = fresh();
    Fixture::with_guard(Arc::new(db.queue()), (db, dir))
}

herald_contract::store_contract_tests!(fresh_backend);
herald_contract::store_concurrency_contract_tests!(fresh_backend);
herald_contract::queue_contract_tests!(fresh_queue);
herald_contract::stats_contract_tests!(fresh_stats);
herald_contract::stats_concurrency_contract_tests!(fresh_stats);
herald_contract::event_types_contract_tests!(fresh_event_types);
