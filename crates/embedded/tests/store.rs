//! What only the embedded store promises beyond the port contract (crates/contract, run on this
//! adapter by tests/contract.rs): group commit keeps a refused write from disturbing the writes
//! batched with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use herald_core::ids::TenantId;
use herald_core::ports::{StoreError, SubscriptionStore};

#[tokio::test]
async fn a_refused_write_does_not_disturb_its_batch_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = TenantId::new();
    let existing = subscription(t, &["*"], true);
    store.create_subscription(&existing).await.unwrap();
    // Issued together so they share group commits: the duplicates fail, the rest land.
    let fresh: Vec<_> = (0..50).map(|_| subscription(t, &["*"], true)).collect();
    let mut tasks = Vec::new();
    for (i, sub) in fresh.iter().enumerate() {
        let (store, sub, dup) = (store.clone(), sub.clone(), existing.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                assert!(matches!(
                    store.create_subscription(&dup).await,
                    Err(StoreError::AlreadyExists)
                ));
            }
            store.create_subscription(&sub).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for sub in &fresh {
        assert!(store.get_subscription(&t, &sub.id).await.unwrap().is_some());
    }
    assert_eq!(
        store.get_subscription(&t, &existing.id).await.unwrap(),
        Some(existing)
    );
}
