//! Payload filters and message templates as the store keeps them: part of the subscription's
//! document, so every store keeps them without code of its own. Create and update keep them
//! exactly (numbers included), an update without one removes it, and the enabled list that intake
//! plans with (and delivery's directory reads) carries them.

use std::sync::Arc;

use herald_core::ids::TenantId;
use herald_core::render::MessageTemplate;
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

pub async fn a_subscription_keeps_its_template(store: Arc<Backend>) {
    let t = TenantId::new();
    let mut sub = subscription(t, &["document.*"], true);
    let source = "*{{ data.author.name }}* published \"{{ data.title }}\"\n{{ data.url | url }}";
    sub.template = Some(MessageTemplate::parse(source).unwrap());
    store.create_subscription(&sub).await.unwrap();

    let read = store.get_subscription(&t, &sub.id).await.unwrap().unwrap();
    assert_eq!(
        read.template.as_ref().map(MessageTemplate::as_str),
        Some(source)
    );
    let enabled = store.enabled_subscriptions(&t).await.unwrap();
    assert_eq!(
        enabled[0].template, sub.template,
        "delivery renders with it"
    );

    sub.template = None;
    store.update_subscription(&sub).await.unwrap();
    let read = store.get_subscription(&t, &sub.id).await.unwrap().unwrap();
    assert_eq!(read.template, None, "an update without it removes it");
}
