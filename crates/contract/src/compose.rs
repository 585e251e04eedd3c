//! [`ComposedStore`]: one [`Store`](herald_core::ports::Store) made of a separate adapter per
//! port, so a test can swap one port for a faulty one (a delivery store that fails as a throttled
//! DynamoDB does, say) and keep the real adapter for the rest.

use std::sync::Arc;

use async_trait::async_trait;
use herald_core::ids::{ApiKeyId, DeliveryId, EventId, SubscriptionId, TenantId};
use herald_core::model::{ApiKeyRecord, Attempt, Delivery, Event, Subscription, Tenant};
use herald_core::ports::{
    DeliveryStore, EventStore, Page, PageRequest, StoreError, SubscriptionFilter,
    SubscriptionStore, TenantStore,
};
use jiff::Timestamp;

/// Each port from its own adapter.
pub struct ComposedStore {
    pub tenants: Arc<dyn TenantStore>,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub events: Arc<dyn EventStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
}

impl ComposedStore {
    /// Every port from `store`, then replace the ones under test.
    pub fn of<S>(store: Arc<S>) -> Self
    where
        S: TenantStore + SubscriptionStore + EventStore + DeliveryStore,
    {
        Self {
            tenants: store.clone(),
            subscriptions: store.clone(),
            events: store.clone(),
            deliveries: store,
        }
    }
}

#[async_trait]
impl TenantStore for ComposedStore {
    async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        self.tenants.put_tenant(t).await
    }
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.tenants.get_tenant(id).await
    }
    async fn list_tenants(&self, p: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        self.tenants.list_tenants(p).await
    }
    async fn put_api_key(&self, k: &ApiKeyRecord) -> Result<(), StoreError> {
        self.tenants.put_api_key(k).await
    }
    async fn find_api_key(&self, h: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.tenants.find_api_key(h).await
    }
    async fn list_api_keys(&self, t: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.tenants.list_api_keys(t).await
    }
    async fn revoke_api_key(
        &self,
        t: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.tenants.revoke_api_key(t, id, at).await
    }
}

#[async_trait]
impl SubscriptionStore for ComposedStore {
    async fn create_subscription(&self, s: &Subscription) -> Result<(), StoreError> {
        self.subscriptions.create_subscription(s).await
    }
    async fn get_subscription(
        &self,
        t: &TenantId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        self.subscriptions.get_subscription(t, id).await
    }
    async fn update_subscription(&self, s: &Subscription) -> Result<(), StoreError> {
        self.subscriptions.update_subscription(s).await
    }
    async fn delete_subscription(
        &self,
        t: &TenantId,
        id: &SubscriptionId,
    ) -> Result<(), StoreError> {
        self.subscriptions.delete_subscription(t, id).await
    }
    async fn list_subscriptions(
        &self,
        t: &TenantId,
        f: &SubscriptionFilter,
        p: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        self.subscriptions.list_subscriptions(t, f, p).await
    }
    async fn enabled_subscriptions(&self, t: &TenantId) -> Result<Vec<Subscription>, StoreError> {
        self.subscriptions.enabled_subscriptions(t).await
    }
    async fn count_subscriptions(&self, t: &TenantId, up_to: usize) -> Result<usize, StoreError> {
        self.subscriptions.count_subscriptions(t, up_to).await
    }
}

#[async_trait]
impl EventStore for ComposedStore {
    async fn get_event(&self, t: &TenantId, id: &EventId) -> Result<Option<Event>, StoreError> {
        self.events.get_event(t, id).await
    }
}

#[async_trait]
impl DeliveryStore for ComposedStore {
    async fn get_delivery(
        &self,
        t: &TenantId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.deliveries.get_delivery(t, id).await
    }
    async fn list_deliveries(
        &self,
        t: &TenantId,
        s: &SubscriptionId,
        p: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        self.deliveries.list_deliveries(t, s, p).await
    }
    async fn deliveries_for_event(&self, e: &Event) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries.deliveries_for_event(e).await
    }
    async fn list_attempts(
        &self,
        t: &TenantId,
        d: &DeliveryId,
    ) -> Result<Vec<Attempt>, StoreError> {
        self.deliveries.list_attempts(t, d).await
    }
}
