//! The catalog: tenants, API keys and subscriptions (the store ports that change rarely and are
//! read often; the services read the hot ones through a short-lived cache).

use async_trait::async_trait;
use herald_core::health::{Health, HealthChange};
use herald_core::ids::{ApiKeyId, SubscriptionId, TenantId};
use herald_core::model::{ApiKeyRecord, Subscription, Tenant};
use herald_core::ports::{
    Page, PageRequest, StoreError, SubscriptionFilter, SubscriptionStore, TenantStore,
};
use jiff::Timestamp;

use super::codec::{
    api_key_pk, encode, item, subscriptions_pk, tenant_keys_pk, tenant_pk, PK_TENANTS, SK_API_KEY,
    SK_TENANT,
};
use super::health::health_attributes;
use super::read::KeyQuery;
use super::write::Condition;
use super::DynamoStore;

#[async_trait]
impl TenantStore for DynamoStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let record = item(tenant_pk(&tenant.id), SK_TENANT.into(), tenant, None)?;
        let entry = item(PK_TENANTS.into(), tenant.id.to_string(), tenant, None)?;
        self.transact_all(
            "put_tenant",
            vec![(record, Condition::None), (entry, Condition::None)],
        )
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.get_record(tenant_pk(id), SK_TENANT).await
    }

    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        let before = page.cursor_as(TenantId::parse)?;
        let q = KeyQuery::newest_first(PK_TENANTS.into(), before.map(|id| id.to_string()));
        self.page(
            &q,
            page.limit,
            false,
            |_: &Tenant| true,
            |t| t.id.to_string(),
        )
        .await
    }

    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let by_hash = item(api_key_pk(&key.hash), SK_API_KEY.into(), key, None)?;
        let by_tenant = item(
            tenant_keys_pk(&key.tenant_id),
            key.id.to_string(),
            key,
            None,
        )?;
        self.transact_all(
            "put_api_key",
            vec![(by_hash, Condition::Absent), (by_tenant, Condition::Absent)],
        )
        .await
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_record(api_key_pk(hash), SK_API_KEY).await
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let q = KeyQuery::newest_first(tenant_keys_pk(tenant), None);
        self.query_all(&q, |_: &ApiKeyRecord| true).await
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        // Read through the tenant's partition: another tenant's key id is simply not there.
        let mut record: ApiKeyRecord = self
            .get_record(tenant_keys_pk(tenant), &id.to_string())
            .await?
            .ok_or(StoreError::NotFound)?;
        if record.revoked_at.is_some() {
            return Ok(());
        }
        record.revoked_at = Some(at);
        let by_hash = item(api_key_pk(&record.hash), SK_API_KEY.into(), &record, None)?;
        let by_tenant = item(tenant_keys_pk(tenant), id.to_string(), &record, None)?;
        self.transact_all(
            "revoke_api_key",
            vec![
                (by_hash, Condition::Present),
                (by_tenant, Condition::Present),
            ],
        )
        .await
    }
}

#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let mut item = item(
            subscriptions_pk(&sub.tenant_id),
            sub.id.to_string(),
            sub,
            None,
        )?;
        health_attributes(&sub.health, &mut item);
        self.put(item, Condition::Absent).await
    }

    async fn update_health(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        change: HealthChange,
    ) -> Result<Option<Health>, StoreError> {
        self.update_health_item(tenant, id, change).await
    }

    async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        self.get_record(subscriptions_pk(tenant), &id.to_string())
            .await
    }

    async fn update_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        // `SET doc` only: the health attributes beside it are the workers'.
        self.set_doc(
            subscriptions_pk(&sub.tenant_id),
            sub.id.to_string(),
            encode(sub)?,
        )
        .await
    }

    async fn delete_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<(), StoreError> {
        // The subscription's deliveries and attempts stay: they are the delivery log.
        self.delete(subscriptions_pk(tenant), id.to_string(), true)
            .await
    }

    async fn list_subscriptions(
        &self,
        tenant: &TenantId,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        let before = page.cursor_as(SubscriptionId::parse)?;
        let q = KeyQuery::newest_first(subscriptions_pk(tenant), before.map(|id| id.to_string()));
        self.page(
            &q,
            page.limit,
            !filter.is_empty(),
            |sub: &Subscription| filter.keeps(sub),
            |sub| sub.id.to_string(),
        )
        .await
    }

    async fn enabled_subscriptions(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let q = KeyQuery::all(subscriptions_pk(tenant));
        self.query_all(&q, |sub: &Subscription| sub.enabled).await
    }

    async fn count_subscriptions(
        &self,
        tenant: &TenantId,
        up_to: usize,
    ) -> Result<usize, StoreError> {
        let q = KeyQuery::all(subscriptions_pk(tenant));
        self.count(&q, up_to).await
    }
}
