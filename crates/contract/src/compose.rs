//! Adapters for fault injection and observation in tests: [`ComposedStore`], one
//! [`Store`](herald_core::ports::Store) made of a separate adapter per port, so a test can swap one
//! port for a faulty one (a delivery store that fails as a throttled DynamoDB does, say) and keep
//! the real adapter for the rest; and [`ProbedQueue`], a queue in front of another that counts
//! sends, records batch acks and fails sends on demand.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use herald_core::ids::{ApiKeyId, DeliveryId, EventId, SubscriptionId, TenantId};
use herald_core::model::{ApiKeyRecord, Attempt, Carried, Delivery, Event, Subscription, Tenant};
use herald_core::ports::{
    DeliveryStore, EventStore, OutgoingMessage, Page, PageRequest, Queue, QueueError, QueueName,
    ReceivedMessage, StoreError, SubscriptionFilter, SubscriptionStore, TenantStore,
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
    async fn update_health(
        &self,
        t: &TenantId,
        id: &SubscriptionId,
        change: herald_core::health::HealthChange,
    ) -> Result<Option<herald_core::health::Health>, StoreError> {
        self.subscriptions.update_health(t, id, change).await
    }
}

#[async_trait]
impl EventStore for ComposedStore {
    async fn get_event(&self, t: &TenantId, id: &EventId) -> Result<Option<Event>, StoreError> {
        self.events.get_event(t, id).await
    }
    async fn list_events(
        &self,
        t: &TenantId,
        event_type: Option<&herald_core::pattern::EventType>,
        p: &PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        self.events.list_events(t, event_type, p).await
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

/// A queue that forwards to another and lets a test watch and break it: it counts the calls of
/// `send`, records the size of every `ack_many`, and fails sends while told to (as SQS does when
/// throttled or unreachable).
pub struct ProbedQueue {
    inner: Arc<dyn Queue>,
    failing_sends: AtomicBool,
    sends: AtomicUsize,
    ack_batches: Mutex<Vec<usize>>,
}

impl ProbedQueue {
    pub fn new(inner: Arc<dyn Queue>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failing_sends: AtomicBool::new(false),
            sends: AtomicUsize::new(0),
            ack_batches: Mutex::new(Vec::new()),
        })
    }

    /// From now on, every send fails (`true`) or goes through (`false`).
    pub fn fail_sends(&self, fail: bool) {
        self.failing_sends.store(fail, Ordering::Relaxed);
    }

    /// How many times `send` was called, failed calls included.
    pub fn sends(&self) -> usize {
        self.sends.load(Ordering::Relaxed)
    }

    /// The number of receipts of each `ack_many`, in call order.
    pub fn ack_batches(&self) -> Vec<usize> {
        self.ack_batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Queue for ProbedQueue {
    fn max_delay(&self) -> Duration {
        self.inner.max_delay()
    }
    fn carried(&self) -> Carried {
        self.inner.carried()
    }
    async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError> {
        self.sends.fetch_add(1, Ordering::Relaxed);
        if self.failing_sends.load(Ordering::Relaxed) {
            return Err(QueueError::backend("AWS.SimpleQueueService.Throttled"));
        }
        self.inner.send(messages).await
    }
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.inner.receive(queue, max, wait, visibility).await
    }
    async fn ack(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        self.inner.ack(queue, receipt).await
    }
    async fn ack_many(&self, queue: QueueName, receipts: Vec<String>) -> Result<(), QueueError> {
        self.ack_batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(receipts.len());
        self.inner.ack_many(queue, receipts).await
    }
    async fn release(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.inner.release(queue, receipt, delay).await
    }
}
