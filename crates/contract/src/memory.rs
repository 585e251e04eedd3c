//! In-memory adapters of every port, for unit tests of the services: [`MemoryStore`] (every store
//! port and the unit of work, committing records and messages together under one lock, as the
//! embedded adapter does), [`MemoryQueue`], [`ManualClock`] and [`ScriptedSender`]. They pass the
//! same contract suite as the real adapters (`tests/memory.rs`), so what a service test shows on
//! them holds on the others.
//!
//! Time: the queue's delays and visibility timeouts are read from the clock it is given, so with a
//! [`ManualClock`] a test moves time forward instead of sleeping.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use herald_core::health::{Health, HealthChange};
use herald_core::ids::{ApiKeyId, AttemptId, DeliveryId, EventId, SubscriptionId, TenantId};
use herald_core::model::{
    ApiKeyRecord, Attempt, Carried, Delivery, Event, IdempotencyRecord, Subscription, Tenant,
};
use herald_core::pattern::EventType;
use herald_core::ports::{
    Clock, DeliveryStore, EventStore, InsertEventOutcome, NewEvent, OutboundRequest,
    OutboundResponse, OutgoingMessage, Page, PageRequest, Queue, QueueError, QueueName,
    ReceivedMessage, Recorded, SendError, Sender, StoreError, SubscriptionFilter,
    SubscriptionStore, TenantStore, UnitOfWork,
};
use herald_core::time::after;

/// The in-memory event types live in the core (the application state defaults to them, as it does
/// to the in-memory statistics); named here with the other in-memory adapters.
pub use herald_core::catalog::MemoryEventTypes;
use jiff::Timestamp;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread poisons the lock; the data is still what the test wants to see.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Arc<Self> {
        Arc::new(Self {
            now: Mutex::new(start),
        })
    }

    /// 2023-11-14T22:13:20Z, a fixed start for tests.
    pub fn fixed() -> Arc<Self> {
        Self::new(Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.now);
        *now = after(*now, by);
    }

    pub fn set(&self, to: Timestamp) {
        *lock(&self.now) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *lock(&self.now)
    }
}

struct Stored {
    queue: QueueName,
    message: OutgoingMessage,
    visible_at: Timestamp,
    receive_count: u32,
    receipt: Option<String>,
}

/// Queues in memory; delays and visibility timeouts on the given clock.
pub struct MemoryQueue {
    clock: Arc<dyn Clock>,
    messages: Mutex<VecDeque<Stored>>,
    next_receipt: Mutex<u64>,
    carried: Carried,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue").finish_non_exhaustive()
    }
}

/// SQS's longest delay, so chains of long waits are exercised as on AWS.
pub const MEMORY_MAX_DELAY: Duration = Duration::from_secs(900);

/// How big an event the queue carries by default (as SQS does; see `herald_aws::SqsQueue`).
pub const MEMORY_CARRIED: Carried = Carried(4096);

impl MemoryQueue {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Self::carrying(clock, MEMORY_CARRIED)
    }

    /// A queue whose messages carry events up to `carried` (`Carried(0)`: none, as the embedded
    /// queue).
    pub fn carrying(clock: Arc<dyn Clock>, carried: Carried) -> Arc<Self> {
        Arc::new(Self {
            clock,
            messages: Mutex::new(VecDeque::new()),
            next_receipt: Mutex::new(0),
            carried,
        })
    }

    fn push(&self, messages: Vec<OutgoingMessage>) {
        let now = self.clock.now();
        let mut queued = lock(&self.messages);
        for m in messages {
            let delay = m.delay.min(MEMORY_MAX_DELAY);
            queued.push_back(Stored {
                queue: m.message.queue(),
                visible_at: after(now, delay),
                message: m,
                receive_count: 0,
                receipt: None,
            });
        }
    }

    /// Every message on `queue`, visible or not, oldest first, with its delay as sent.
    pub fn pending(&self, queue: QueueName) -> Vec<OutgoingMessage> {
        lock(&self.messages)
            .iter()
            .filter(|m| m.queue == queue)
            .map(|m| m.message.clone())
            .collect()
    }

    /// Removes and returns every message on `queue`.
    pub fn drain(&self, queue: QueueName) -> Vec<OutgoingMessage> {
        let mut queued = lock(&self.messages);
        let (taken, kept): (VecDeque<Stored>, VecDeque<Stored>) =
            queued.drain(..).partition(|m| m.queue == queue);
        *queued = kept;
        taken.into_iter().map(|m| m.message).collect()
    }

    fn take_visible(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Vec<ReceivedMessage> {
        let now = self.clock.now();
        let mut queued = lock(&self.messages);
        let mut out = Vec::new();
        for m in queued.iter_mut() {
            if out.len() == max {
                break;
            }
            if m.queue != queue || m.visible_at > now {
                continue;
            }
            let receipt = {
                let mut next = lock(&self.next_receipt);
                *next += 1;
                format!("r{next}")
            };
            m.receive_count += 1;
            let waited = now.duration_since(m.visible_at).unsigned_abs();
            m.visible_at = after(now, visibility);
            m.receipt = Some(receipt.clone());
            out.push(ReceivedMessage {
                receipt,
                message: m.message.message.clone(),
                receive_count: m.receive_count,
                waited: Some(waited),
            });
        }
        out
    }

    /// The message holding `receipt`, if it is still leased with it (acking twice is harmless).
    fn find(&self, queue: QueueName, receipt: &str) -> Result<Option<usize>, QueueError> {
        check_receipt(receipt)?;
        Ok(lock(&self.messages)
            .iter()
            .position(|m| m.queue == queue && m.receipt.as_deref() == Some(receipt)))
    }
}

/// `Codec` unless `receipt` looks like one this queue hands out (`r<number>`).
fn check_receipt(receipt: &str) -> Result<(), QueueError> {
    let well_formed = receipt
        .strip_prefix('r')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if well_formed {
        Ok(())
    } else {
        Err(QueueError::Codec(format!("`{receipt}` is not a receipt")))
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    fn max_delay(&self) -> Duration {
        MEMORY_MAX_DELAY
    }

    fn carried(&self) -> Carried {
        self.carried
    }

    async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError> {
        self.push(messages);
        Ok(())
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let got = self.take_visible(queue, max.max(1), visibility);
            if !got.is_empty() || std::time::Instant::now() >= deadline {
                return Ok(got);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn ack(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        if let Some(index) = self.find(queue, receipt)? {
            lock(&self.messages).remove(index);
        }
        Ok(())
    }

    async fn ack_many(&self, queue: QueueName, receipts: Vec<String>) -> Result<(), QueueError> {
        // Every well-formed receipt is acked, in one step, before a malformed one is reported.
        let (good, bad): (Vec<String>, Vec<String>) =
            receipts.into_iter().partition(|r| check_receipt(r).is_ok());
        let good: HashSet<String> = good.into_iter().collect();
        lock(&self.messages)
            .retain(|m| m.queue != queue || m.receipt.as_ref().is_none_or(|r| !good.contains(r)));
        match bad.first() {
            Some(receipt) => check_receipt(receipt),
            None => Ok(()),
        }
    }

    async fn release(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let now = self.clock.now();
        if let Some(index) = self.find(queue, receipt)? {
            if let Some(m) = lock(&self.messages).get_mut(index) {
                m.visible_at = after(now, delay);
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Data {
    tenants: BTreeMap<TenantId, Tenant>,
    keys: HashMap<String, ApiKeyRecord>,
    subscriptions: BTreeMap<(TenantId, SubscriptionId), Subscription>,
    events: HashMap<(TenantId, EventId), Event>,
    idempotency: HashMap<(TenantId, String), IdempotencyRecord>,
    deliveries: BTreeMap<(TenantId, DeliveryId), Delivery>,
    attempts: BTreeMap<(TenantId, DeliveryId, u32, AttemptId), Attempt>,
}

/// Every store port and the unit of work, in memory. Writes and their messages happen under one
/// lock, so, like the embedded adapter, it never needs a redrive.
pub struct MemoryStore {
    data: Mutex<Data>,
    queue: Arc<MemoryQueue>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// A store whose unit of work sends to `queue`.
    pub fn new(queue: Arc<MemoryQueue>) -> Arc<Self> {
        Arc::new(Self {
            data: Mutex::new(Data::default()),
            queue,
        })
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.data)
    }
}

/// Newest-first paging over ids, the cursor being the last id returned.
fn page_desc<K: Ord + Clone, T: Clone>(
    items: impl DoubleEndedIterator<Item = (K, T)>,
    page: &PageRequest,
    before: Option<K>,
    cursor_of: impl Fn(&T) -> String,
) -> Page<T> {
    let limit = page.limit.max(1);
    let mut out: Vec<T> = items
        .rev()
        .filter(|(k, _)| before.as_ref().is_none_or(|b| k < b))
        .map(|(_, v)| v)
        .take(limit + 1)
        .collect();
    let more = out.len() > limit;
    out.truncate(limit);
    let next_cursor = if more {
        out.last().map(cursor_of)
    } else {
        None
    };
    Page {
        items: out,
        next_cursor,
    }
}

#[async_trait]
impl TenantStore for MemoryStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.data().tenants.insert(tenant.id, tenant.clone());
        Ok(())
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        Ok(self.data().tenants.get(id).cloned())
    }

    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        let before = page.cursor_as(TenantId::parse)?;
        let data = self.data();
        let items = data.tenants.iter().map(|(k, v)| (*k, v.clone()));
        Ok(page_desc(items, page, before, |t| t.id.to_string()))
    }

    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut data = self.data();
        if data.keys.contains_key(&key.hash) || data.keys.values().any(|k| k.id == key.id) {
            return Err(StoreError::AlreadyExists);
        }
        data.keys.insert(key.hash.clone(), key.clone());
        Ok(())
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.data().keys.get(hash).cloned())
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut keys: Vec<ApiKeyRecord> = self
            .data()
            .keys
            .values()
            .filter(|k| k.tenant_id == *tenant)
            .cloned()
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.id));
        Ok(keys)
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut data = self.data();
        let key = data
            .keys
            .values_mut()
            .find(|k| k.tenant_id == *tenant && k.id == *id)
            .ok_or(StoreError::NotFound)?;
        if key.revoked_at.is_none() {
            key.revoked_at = Some(at);
        }
        Ok(())
    }
}

#[async_trait]
impl SubscriptionStore for MemoryStore {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let mut data = self.data();
        let key = (sub.tenant_id, sub.id);
        if data.subscriptions.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        data.subscriptions.insert(key, sub.clone());
        Ok(())
    }

    async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        Ok(self.data().subscriptions.get(&(*tenant, *id)).cloned())
    }

    async fn update_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let mut data = self.data();
        let slot = data
            .subscriptions
            .get_mut(&(sub.tenant_id, sub.id))
            .ok_or(StoreError::NotFound)?;
        let health = std::mem::take(&mut slot.health);
        *slot = Subscription {
            health,
            ..sub.clone()
        };
        Ok(())
    }

    async fn update_health(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        change: HealthChange,
    ) -> Result<Option<Health>, StoreError> {
        let mut data = self.data();
        let slot = data
            .subscriptions
            .get_mut(&(*tenant, *id))
            .ok_or(StoreError::NotFound)?;
        if !change.applies_to(&slot.health) {
            return Ok(None);
        }
        let before = slot.health.clone();
        slot.health.apply(change);
        Ok(Some(before))
    }

    async fn delete_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<(), StoreError> {
        match self.data().subscriptions.remove(&(*tenant, *id)) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    async fn list_subscriptions(
        &self,
        tenant: &TenantId,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        let before = page.cursor_as(SubscriptionId::parse)?;
        let data = self.data();
        let items = data
            .subscriptions
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .filter(|(_, s)| filter.keeps(s))
            .map(|((_, id), s)| (*id, s.clone()));
        Ok(page_desc(items, page, before, |s| s.id.to_string()))
    }

    async fn enabled_subscriptions(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<Subscription>, StoreError> {
        Ok(self
            .data()
            .subscriptions
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .filter(|(_, s)| s.enabled)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn count_subscriptions(
        &self,
        tenant: &TenantId,
        up_to: usize,
    ) -> Result<usize, StoreError> {
        Ok(self
            .data()
            .subscriptions
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .take(up_to)
            .count())
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> Result<Option<Event>, StoreError> {
        Ok(self.data().events.get(&(*tenant, *id)).cloned())
    }

    async fn list_events(
        &self,
        tenant: &TenantId,
        event_type: Option<&EventType>,
        page: &PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        let before = page.cursor_as(EventId::parse)?;
        let data = self.data();
        let mut mine: Vec<(EventId, Event)> = data
            .events
            .values()
            .filter(|e| e.tenant_id == *tenant)
            .filter(|e| event_type.is_none_or(|t| e.event_type == *t))
            .map(|e| (e.id, e.clone()))
            .collect();
        mine.sort_by_key(|(id, _)| *id);
        Ok(page_desc(mine.into_iter(), page, before, |e| {
            e.id.to_string()
        }))
    }
}

#[async_trait]
impl DeliveryStore for MemoryStore {
    async fn get_delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        Ok(self.data().deliveries.get(&(*tenant, *id)).cloned())
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let before = page.cursor_as(DeliveryId::parse)?;
        let data = self.data();
        let mut mine: Vec<(DeliveryId, Delivery)> = data
            .deliveries
            .values()
            .filter(|d| d.tenant_id == *tenant && d.subscription_id == *subscription)
            .map(|d| (d.id, d.clone()))
            .collect();
        mine.sort_by_key(|(id, _)| *id);
        Ok(page_desc(mine.into_iter(), page, before, |d| {
            d.id.to_string()
        }))
    }

    async fn deliveries_for_event(&self, event: &Event) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .data()
            .deliveries
            .values()
            .filter(|d| d.tenant_id == event.tenant_id && d.event_id == event.id)
            .cloned()
            .collect())
    }

    async fn list_attempts(
        &self,
        tenant: &TenantId,
        delivery: &DeliveryId,
    ) -> Result<Vec<Attempt>, StoreError> {
        Ok(self
            .data()
            .attempts
            .iter()
            .filter(|((t, d, _, _), _)| t == tenant && d == delivery)
            .map(|(_, a)| a.clone())
            .collect())
    }
}

#[async_trait]
impl UnitOfWork for MemoryStore {
    async fn insert_events_and_send(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<InsertEventOutcome>, StoreError> {
        let mut data = self.data();
        // Checked before any write, so a refused batch changes nothing.
        for e in &events {
            if data.events.contains_key(&(e.event.tenant_id, e.event.id)) {
                return Err(StoreError::AlreadyExists);
            }
        }
        let mut outcomes = Vec::with_capacity(events.len());
        let mut to_send = Vec::new();
        for NewEvent {
            event,
            idempotency,
            messages,
        } in events
        {
            if let Some(record) = &idempotency {
                let key = (record.tenant_id, record.key.clone());
                if let Some(existing) = data.idempotency.get(&key) {
                    if existing.expires_at > record.created_at {
                        outcomes.push(InsertEventOutcome::Duplicate(existing.clone()));
                        continue;
                    }
                }
                data.idempotency.insert(key, record.clone());
            }
            data.events.insert((event.tenant_id, event.id), event);
            to_send.extend(messages);
            outcomes.push(InsertEventOutcome::Inserted);
        }
        self.queue.push(to_send);
        Ok(outcomes)
    }

    async fn record_attempt_and_send(
        &self,
        attempt: &Attempt,
        delivery: &Delivery,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Recorded, StoreError> {
        let mut data = self.data();
        let key = (delivery.tenant_id, delivery.id);
        // Not stored yet: no attempt made.
        let stored_attempts = data.deliveries.get(&key).map_or(0, |d| d.attempts);
        data.attempts.insert(
            (
                attempt.tenant_id,
                attempt.delivery_id,
                attempt.number,
                attempt.id,
            ),
            attempt.clone(),
        );
        if stored_attempts + 1 != attempt.number {
            return Ok(Recorded::Superseded);
        }
        data.deliveries.insert(key, delivery.clone());
        self.queue.push(messages);
        Ok(Recorded::Applied)
    }

    async fn update_delivery_and_send(
        &self,
        delivery: &Delivery,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), StoreError> {
        self.data()
            .deliveries
            .insert((delivery.tenant_id, delivery.id), delivery.clone());
        self.queue.push(messages);
        Ok(())
    }

    async fn redrive(&self, _messages: Vec<OutgoingMessage>) -> Result<(), StoreError> {
        // Records and messages were written together: nothing can be missing.
        Ok(())
    }
}

/// A scripted answer of [`ScriptedSender`].
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with a `Retry-After` value as the receiver would send it.
    StatusRetryAfter(u16, &'static str),
    Error(SendError),
}

/// A [`Sender`] that answers from a script (then 204 once it runs out) and keeps every request.
#[derive(Debug, Default)]
pub struct ScriptedSender {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<OutboundRequest>>,
}

impl ScriptedSender {
    pub fn new(script: impl IntoIterator<Item = Reply>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script.into_iter().collect()),
            requests: Mutex::new(Vec::new()),
        })
    }

    /// Every request sent so far, in order.
    pub fn requests(&self) -> Vec<OutboundRequest> {
        lock(&self.requests).clone()
    }
}

#[async_trait]
impl Sender for ScriptedSender {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, SendError> {
        lock(&self.requests).push(request);
        let reply = lock(&self.script).pop_front().unwrap_or(Reply::Status(204));
        let (status, retry_after) = match reply {
            Reply::Status(s) => (s, None),
            Reply::StatusRetryAfter(s, value) => (s, herald_core::retry::RetryAfter::parse(value)),
            Reply::Error(e) => return Err(e),
        };
        Ok(OutboundResponse {
            status,
            retry_after,
            body_excerpt: Vec::new(),
        })
    }
}
