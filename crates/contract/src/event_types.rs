//! The event-type contract ([`EventTypeStore`]): create-if-absent per (tenant, name), replace and
//! delete only what exists, settings default to "accept", and the one catalog read answers the
//! tenant's settings and all its types sorted by name, never another tenant's.

use std::sync::Arc;

use herald_core::catalog::{CatalogSettings, TenantEventType, UnknownEventTypes};
use herald_core::ids::TenantId;
use herald_core::ports::{EventTypeStore, StoreError};
use herald_core::EventType;
use jiff::Timestamp;
use serde_json::json;

fn at() -> Timestamp {
    "2026-12-06T10:00:00Z".parse().unwrap()
}

fn event_type(tenant: TenantId, name: &str) -> TenantEventType {
    TenantEventType::create(
        tenant,
        json!({
            "name": name,
            "description": format!("{name} happened"),
            "schema": {"type": "object", "required": ["title"],
                "properties": {"title": {"type": "string"}}},
            "example": {"title": "Getting started"},
        }),
        at(),
    )
    .unwrap()
}

fn name(text: &str) -> EventType {
    EventType::parse(text).unwrap()
}

pub async fn types_are_created_once_read_replaced_and_deleted(store: Arc<dyn EventTypeStore>) {
    let tenant = TenantId::new();
    let t = event_type(tenant, "space.archived");
    store.create_event_type(&t).await.unwrap();
    assert!(matches!(
        store.create_event_type(&t).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.get_event_type(&tenant, &t.name).await.unwrap(),
        Some(t.clone()),
        "read back whole: schema, example and timestamps"
    );

    let mut changed = t
        .patched(
            json!({"description": "Archived.", "deprecated": true, "example": null}),
            at(),
        )
        .unwrap();
    changed.updated_at = at()
        .checked_add(jiff::SignedDuration::from_secs(5))
        .unwrap();
    store.replace_event_type(&changed).await.unwrap();
    assert_eq!(
        store.get_event_type(&tenant, &t.name).await.unwrap(),
        Some(changed.clone())
    );

    store.delete_event_type(&tenant, &t.name).await.unwrap();
    assert_eq!(store.get_event_type(&tenant, &t.name).await.unwrap(), None);
    assert!(matches!(
        store.delete_event_type(&tenant, &t.name).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.replace_event_type(&changed).await,
        Err(StoreError::NotFound)
    ));
    // A deleted name can be registered again.
    store.create_event_type(&t).await.unwrap();
}

pub async fn the_catalog_read_has_settings_and_every_type_by_name_for_one_tenant(
    store: Arc<dyn EventTypeStore>,
) {
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let empty = store.tenant_catalog(&tenant).await.unwrap();
    assert_eq!(empty.settings, CatalogSettings::default());
    assert_eq!(
        empty.settings.unknown_event_types,
        UnknownEventTypes::Accept
    );
    assert!(empty.types.is_empty());

    for n in ["zeta.done", "alpha.started", "mid.way"] {
        store
            .create_event_type(&event_type(tenant, n))
            .await
            .unwrap();
    }
    store
        .create_event_type(&event_type(other, "alpha.started"))
        .await
        .unwrap();
    let reject = CatalogSettings {
        unknown_event_types: UnknownEventTypes::Reject,
    };
    store.put_catalog_settings(&tenant, &reject).await.unwrap();

    let read = store.tenant_catalog(&tenant).await.unwrap();
    assert_eq!(read.settings, reject);
    let names: Vec<&str> = read.types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["alpha.started", "mid.way", "zeta.done"]);
    assert!(read.types.iter().all(|t| t.tenant_id == tenant));
    assert_eq!(read.types[0], event_type(tenant, "alpha.started"));

    let theirs = store.tenant_catalog(&other).await.unwrap();
    assert_eq!(theirs.settings, CatalogSettings::default());
    assert_eq!(theirs.types.len(), 1);
    assert_eq!(
        store
            .get_event_type(&other, &name("mid.way"))
            .await
            .unwrap(),
        None,
        "never another tenant's"
    );
    assert!(matches!(
        store.delete_event_type(&other, &name("zeta.done")).await,
        Err(StoreError::NotFound)
    ));

    // Settings are replaced, not merged into the types.
    store
        .put_catalog_settings(&tenant, &CatalogSettings::default())
        .await
        .unwrap();
    let read = store.tenant_catalog(&tenant).await.unwrap();
    assert_eq!(read.settings, CatalogSettings::default());
    assert_eq!(read.types.len(), 3);
}
