//! A tenant's event types and catalog settings ([`EventTypeStore`]) in the store's file, in
//! [`Tbl::EventTypes`]: `ten_…/settings` and `ten_…/type/<name>`, so the tenant's whole catalog
//! (what intake's cache reads) is one key range.

use async_trait::async_trait;
use herald_core::catalog::{CatalogSettings, TenantCatalog, TenantEventType};
use herald_core::ports::{EventTypeStore, StoreError};
use herald_core::{EventType, TenantId};

use crate::store::EmbeddedStore;
use crate::tables::{key2, key3, prefix1, prefix_end, Tbl};

const SETTINGS: &str = "settings";
const TYPE: &str = "type";

fn type_key(tenant: &TenantId, name: &EventType) -> String {
    key3(tenant, TYPE, name)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(StoreError::backend)
}

#[async_trait]
impl EventTypeStore for EmbeddedStore {
    async fn create_event_type(&self, event_type: &TenantEventType) -> Result<(), StoreError> {
        let key = type_key(&event_type.tenant_id, &event_type.name);
        let value = encode(event_type)?;
        self.inner()
            .writer
            .write(move |ctx| {
                if ctx.contains(Tbl::EventTypes, &key)? {
                    return Err(StoreError::AlreadyExists);
                }
                ctx.put(Tbl::EventTypes, &key, &value)
            })
            .await
    }

    async fn get_event_type(
        &self,
        tenant: &TenantId,
        name: &EventType,
    ) -> Result<Option<TenantEventType>, StoreError> {
        let table = self.inner().read_table(Tbl::EventTypes)?;
        let value = table
            .get(type_key(tenant, name).as_str())
            .map_err(StoreError::backend)?;
        value
            .map(|v| serde_json::from_slice(v.value()).map_err(StoreError::backend))
            .transpose()
    }

    async fn replace_event_type(&self, event_type: &TenantEventType) -> Result<(), StoreError> {
        let key = type_key(&event_type.tenant_id, &event_type.name);
        let value = encode(event_type)?;
        self.inner()
            .writer
            .write(move |ctx| {
                if !ctx.contains(Tbl::EventTypes, &key)? {
                    return Err(StoreError::NotFound);
                }
                ctx.put(Tbl::EventTypes, &key, &value)
            })
            .await
    }

    async fn delete_event_type(
        &self,
        tenant: &TenantId,
        name: &EventType,
    ) -> Result<(), StoreError> {
        let key = type_key(tenant, name);
        self.inner()
            .writer
            .write(move |ctx| {
                if ctx.remove(Tbl::EventTypes, &key)? {
                    Ok(())
                } else {
                    Err(StoreError::NotFound)
                }
            })
            .await
    }

    async fn put_catalog_settings(
        &self,
        tenant: &TenantId,
        settings: &CatalogSettings,
    ) -> Result<(), StoreError> {
        let key = key2(tenant, SETTINGS);
        let value = encode(settings)?;
        self.inner()
            .writer
            .write(move |ctx| ctx.put(Tbl::EventTypes, &key, &value))
            .await
    }

    async fn tenant_catalog(&self, tenant: &TenantId) -> Result<TenantCatalog, StoreError> {
        let table = self.inner().read_table(Tbl::EventTypes)?;
        let (start, end) = (prefix1(tenant), prefix_end(&prefix1(tenant)));
        let settings_key = key2(tenant, SETTINGS);
        let mut catalog = TenantCatalog::default();
        for row in table
            .range(start.as_str()..end.as_str())
            .map_err(StoreError::backend)?
        {
            let (key, value) = row.map_err(StoreError::backend)?;
            if key.value() == settings_key {
                catalog.settings =
                    serde_json::from_slice(value.value()).map_err(StoreError::backend)?;
            } else {
                // Keys are `ten_…/type/<name>`: text order is name order.
                catalog
                    .types
                    .push(serde_json::from_slice(value.value()).map_err(StoreError::backend)?);
            }
        }
        Ok(catalog)
    }
}
