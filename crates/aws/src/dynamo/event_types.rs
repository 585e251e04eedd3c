//! A tenant's event types and catalog settings ([`EventTypeStore`]): one partition per tenant,
//! `ten_…#TYPES`, with `sk` = `TYPE#<name>` for each type and `SETTINGS` for the settings, so the
//! whole catalog (what intake's cache reads once per fill) is ONE Query. Reads are strongly
//! consistent, like the rest of the store's.

use async_trait::async_trait;
use herald_core::catalog::{CatalogSettings, TenantCatalog, TenantEventType};
use herald_core::ports::{EventTypeStore, StoreError};
use herald_core::{EventType, TenantId};

use super::codec::{decode, encode, item, types_pk, SK};
use super::read::KeyQuery;
use super::write::Condition;
use super::DynamoStore;

const SK_SETTINGS: &str = "SETTINGS";

fn type_sk(name: &EventType) -> String {
    format!("TYPE#{name}")
}

#[async_trait]
impl EventTypeStore for DynamoStore {
    async fn create_event_type(&self, event_type: &TenantEventType) -> Result<(), StoreError> {
        let pk = types_pk(&event_type.tenant_id);
        let item = item(pk, type_sk(&event_type.name), event_type, None)?;
        self.put(item, Condition::Absent).await
    }

    async fn get_event_type(
        &self,
        tenant: &TenantId,
        name: &EventType,
    ) -> Result<Option<TenantEventType>, StoreError> {
        self.get_item(types_pk(tenant), &type_sk(name))
            .await?
            .map(|item| decode(&item))
            .transpose()
    }

    async fn replace_event_type(&self, event_type: &TenantEventType) -> Result<(), StoreError> {
        let pk = types_pk(&event_type.tenant_id);
        self.set_doc(pk, type_sk(&event_type.name), encode(event_type)?)
            .await
    }

    async fn delete_event_type(
        &self,
        tenant: &TenantId,
        name: &EventType,
    ) -> Result<(), StoreError> {
        self.delete(types_pk(tenant), type_sk(name), true).await
    }

    async fn put_catalog_settings(
        &self,
        tenant: &TenantId,
        settings: &CatalogSettings,
    ) -> Result<(), StoreError> {
        let item = item(types_pk(tenant), SK_SETTINGS.into(), settings, None)?;
        self.put(item, Condition::None).await
    }

    async fn tenant_catalog(&self, tenant: &TenantId) -> Result<TenantCatalog, StoreError> {
        let mut catalog = TenantCatalog::default();
        // `SETTINGS` sorts before `TYPE#…`, and the types sort by name.
        for item in self.query_items(&KeyQuery::all(types_pk(tenant))).await? {
            let is_settings = item
                .get(SK)
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk == SK_SETTINGS);
            if is_settings {
                catalog.settings = decode(&item)?;
            } else {
                catalog.types.push(decode(&item)?);
            }
        }
        Ok(catalog)
    }
}
