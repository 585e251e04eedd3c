//! Payload filters as the store keeps them: part of the subscription's document, so every store
//! keeps one without code of its own. Create and update keep it exactly (numbers included), an
//! update without it removes it, and the enabled list intake plans with carries it.

use std::sync::Arc;

use herald_core::ids::TenantId;
use herald_core::Filter;

use crate::fixtures::subscription;
use crate::Backend;

pub async fn a_subscription_keeps_its_filter(store: Arc<Backend>) {
    let t = TenantId::new();
    let mut sub = subscription(t, &["document.*"], true);
    let filter = serde_json::json!({"all": [
        {"path": "data.space.name", "in": ["Handbook", "Guides"]},
        {"not": {"path": "data.words", "gte": 1.5}},
        {"path": "data.draft", "exists": false}
    ]});
    sub.filter = Some(Filter::parse(&filter).unwrap());
    store.create_subscription(&sub).await.unwrap();

    let read = store.get_subscription(&t, &sub.id).await.unwrap().unwrap();
    assert_eq!(read.filter, sub.filter);
    assert_eq!(read.filter.as_ref().map(Filter::to_json), Some(filter));
    let enabled = store.enabled_subscriptions(&t).await.unwrap();
    assert_eq!(enabled.len(), 1);
    assert_eq!(
        enabled[0].filter, sub.filter,
        "intake plans with the filter"
    );

    sub.filter = None;
    store.update_subscription(&sub).await.unwrap();
    let read = store.get_subscription(&t, &sub.id).await.unwrap().unwrap();
    assert_eq!(read.filter, None, "an update without it removes it");
}
