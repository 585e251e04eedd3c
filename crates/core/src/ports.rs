//! The ports: the small traits through which the application reaches storage, queues, the network
//! and the clock. Adapters implement them (embedded fjall, DynamoDB/SQS, reqwest); the domain and the
//! services only ever see these traits.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogSettings, TenantCatalog, TenantEventType};
use crate::health::{Health, HealthChange};
use crate::ids::{ApiKeyId, DeliveryId, EventId, SubscriptionId, TenantId};
use crate::model::{
    ApiKeyRecord, Attempt, Carried, Delivery, DeliveryMessage, Event, EventMessage,
    IdempotencyRecord, Subscription, Tenant,
};
use crate::pattern::EventType;
use crate::retry::RetryAfter;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create-if-absent found the record already there.
    #[error("the record already exists")]
    AlreadyExists,
    /// An update or delete found no record.
    #[error("the record does not exist")]
    NotFound,
    /// The cursor was not made by this store.
    #[error("the pagination cursor is not valid")]
    BadCursor,
    /// The backend failed (I/O, network, throttling). Usually worth retrying. The text carries
    /// the cause, so it is not also a `source` (a log would print it twice).
    #[error("storage backend failed: {0}")]
    Backend(BoxError),
}

impl StoreError {
    pub fn backend(err: impl Into<BoxError>) -> Self {
        Self::Backend(err.into())
    }
}

/// A page request: at most `limit` items after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The cursor read by `parse` (the id it names); `BadCursor` if it is not one of these.
    pub fn cursor_as<T, E>(
        &self,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        self.cursor
            .as_deref()
            .map(|c| parse(c).map_err(|_| StoreError::BadCursor))
            .transpose()
    }
}

/// One page of a list, and the cursor of the next page if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Filters of the subscription list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    /// Only subscriptions whose patterns match this event type.
    pub event: Option<EventType>,
    pub enabled: Option<bool>,
}

impl SubscriptionFilter {
    /// Whether `sub` passes the filter (the one rule every store applies).
    pub fn keeps(&self, sub: &Subscription) -> bool {
        self.enabled.is_none_or(|e| sub.enabled == e)
            && self.event.as_ref().is_none_or(|t| sub.matches(t))
    }

    /// Whether it filters anything out at all.
    pub fn is_empty(&self) -> bool {
        self.enabled.is_none() && self.event.is_none()
    }
}

/// What `insert_event` did.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertEventOutcome {
    /// The event is new and stored.
    Inserted,
    /// The idempotency key was seen before; nothing was written. Carries the earlier record.
    Duplicate(IdempotencyRecord),
}

// Durable state, one port per aggregate. Every method is one atomic step; "create" methods are
// create-if-absent; methods taking a `TenantId` never return another tenant's records. Events and
// deliveries are written only through [`UnitOfWork`], together with the messages they cause. A
// delivery is stored from its first attempt on (or when given up); before that it exists only as
// its event's plan and its queued message.

/// Tenants and their API keys.
#[async_trait]
pub trait TenantStore: Send + Sync + 'static {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;
    /// Every tenant, newest first (for operators).
    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError>;

    /// Stores a key record (create-if-absent on its hash and on its id).
    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// A tenant's keys, revoked ones included, newest first.
    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Sets the key's `revoked_at` to `at` (what `find_api_key` returns from then on); `NotFound`
    /// if the tenant has no such key. Revoking a revoked key changes nothing.
    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> Result<(), StoreError>;
}

/// Subscriptions.
#[async_trait]
pub trait SubscriptionStore: Send + Sync + 'static {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError>;
    async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError>;
    /// Replaces an existing subscription; `NotFound` if it is gone.
    async fn update_subscription(&self, sub: &Subscription) -> Result<(), StoreError>;
    /// Deletes; `NotFound` if it was not there.
    async fn delete_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_subscriptions(
        &self,
        tenant: &TenantId,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError>;
    /// Every enabled subscription of a tenant, for fan-out.
    async fn enabled_subscriptions(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<Subscription>, StoreError>;
    /// How many subscriptions the tenant has, stopping the count at `up_to` (the limit check needs
    /// no more).
    async fn count_subscriptions(
        &self,
        tenant: &TenantId,
        up_to: usize,
    ) -> Result<usize, StoreError>;
    /// Applies `change` to the subscription's health in one atomic step if it
    /// [applies](HealthChange::applies_to) to the stored health; answers the health before the
    /// change, or `None` when its condition did not hold. `NotFound` if the subscription is gone.
    /// Health is kept apart from what the owner sets: `create_subscription` stores it as given,
    /// `update_subscription` never changes it, and every read returns it.
    async fn update_health(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        change: HealthChange,
    ) -> Result<Option<Health>, StoreError>;
}

/// Events (their idempotency records are written with them, by [`UnitOfWork`]).
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    async fn get_event(&self, tenant: &TenantId, id: &EventId)
        -> Result<Option<Event>, StoreError>;
    /// A tenant's events, newest first (by id: ids are ULIDs of their acceptance time), only those
    /// of `event_type` if given; cursor = the last id returned.
    async fn list_events(
        &self,
        tenant: &TenantId,
        event_type: Option<&EventType>,
        page: &PageRequest,
    ) -> Result<Page<Event>, StoreError>;
}

/// Deliveries and their attempts, as read back (they are written by [`UnitOfWork`]).
#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    async fn get_delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError>;
    /// A subscription's stored deliveries, newest first.
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError>;
    /// The stored deliveries of `event`: those of its planned subscriptions
    /// ([`Event::subscriptions`]) whose first attempt was recorded or that were given up. (A planned
    /// delivery not stored yet is pending: the caller shows it as such.)
    async fn deliveries_for_event(&self, event: &Event) -> Result<Vec<Delivery>, StoreError>;
    /// A delivery's attempts, oldest first (two attempts with one number, made by two workers
    /// that raced on a redelivered message, are both listed).
    async fn list_attempts(
        &self,
        tenant: &TenantId,
        delivery: &DeliveryId,
    ) -> Result<Vec<Attempt>, StoreError>;
}

/// A tenant's own event types and its catalog settings. Intake reads them through a cache:
/// [`EventTypeStore::tenant_catalog`] is the one read it makes (one DynamoDB Query).
#[async_trait]
pub trait EventTypeStore: Send + Sync + 'static {
    /// Create-if-absent on (tenant, name); `AlreadyExists` if the tenant has it.
    async fn create_event_type(&self, event_type: &TenantEventType) -> Result<(), StoreError>;
    async fn get_event_type(
        &self,
        tenant: &TenantId,
        name: &EventType,
    ) -> Result<Option<TenantEventType>, StoreError>;
    /// Replaces an existing type; `NotFound` if it is gone.
    async fn replace_event_type(&self, event_type: &TenantEventType) -> Result<(), StoreError>;
    /// Deletes; `NotFound` if it was not there.
    async fn delete_event_type(
        &self,
        tenant: &TenantId,
        name: &EventType,
    ) -> Result<(), StoreError>;
    async fn put_catalog_settings(
        &self,
        tenant: &TenantId,
        settings: &CatalogSettings,
    ) -> Result<(), StoreError>;
    /// The tenant's settings (the defaults if never set) and all its types, sorted by name.
    async fn tenant_catalog(&self, tenant: &TenantId) -> Result<TenantCatalog, StoreError>;
}

/// Every store port, as one handle (what `AppState` holds).
pub trait Store: TenantStore + SubscriptionStore + EventStore + DeliveryStore {}

impl<T: TenantStore + SubscriptionStore + EventStore + DeliveryStore> Store for T {}

/// An event to store, its idempotency record, and the messages to send if it is inserted. An event
/// with a record has an id made by [`EventId::keyed`](crate::ids::EventId::keyed) for the record's
/// tenant and key (a store may keep both as one item, found by either).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event: Event,
    pub idempotency: Option<IdempotencyRecord>,
    pub messages: Vec<OutgoingMessage>,
}

/// What [`UnitOfWork::record_attempt_and_send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The attempt, the delivery's new state and the messages were stored.
    Applied,
    /// Another worker had already recorded this attempt number (a redelivered message raced the
    /// original): only the attempt record was kept, so the log shows every request made; the
    /// delivery and the queue are as the other worker left them.
    Superseded,
}

/// The two queues of the data flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueueName {
    /// Accepted events waiting for fan-out.
    Events,
    /// Deliveries waiting for an attempt.
    Deliveries,
}

impl QueueName {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Deliveries => "deliveries",
        }
    }
}

/// A message body on one of the queues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// Both variants are built once per send and moved, never stored in bulk: boxing the larger
// would cost an allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
pub enum QueueMessage {
    Event(EventMessage),
    Delivery(DeliveryMessage),
}

impl QueueMessage {
    pub fn queue(&self) -> QueueName {
        match self {
            Self::Event(_) => QueueName::Events,
            Self::Delivery(_) => QueueName::Deliveries,
        }
    }
}

/// A message to send, visible after `delay` (capped by the queue's `max_delay`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub message: QueueMessage,
    pub delay: Duration,
}

/// A received message, invisible to other receivers until acked or released.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    pub receipt: String,
    pub message: QueueMessage,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
    /// How long it had been due (visible) when it was received: the queue's age at receipt, a
    /// retry's delay not included. `None` when the queue cannot tell.
    pub waited: Option<Duration>,
}

/// A queue failure.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The text carries the cause, so it is not also a `source`.
    #[error("queue backend failed: {0}")]
    Backend(BoxError),
    #[error("the message could not be encoded or decoded: {0}")]
    Codec(String),
}

impl QueueError {
    pub fn backend(err: impl Into<BoxError>) -> Self {
        Self::Backend(err.into())
    }
}

/// A durable at-least-once queue with delays and visibility timeouts.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// The longest delay `send` honours; longer waits are chained by the caller.
    fn max_delay(&self) -> Duration;
    /// How big an event its messages carry inline (bigger ones travel as a claim check).
    fn carried(&self) -> Carried;
    /// Durably enqueues every message (all of them to the queue each message names).
    async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError>;
    /// Up to `max` visible messages, waiting up to `wait` for the first. Received messages stay
    /// invisible for `visibility`, then come back unless acked.
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;
    /// Removes a received message for good.
    async fn ack(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError>;
    /// Removes every received message of `receipts` for good, in as few backend requests as the
    /// backend allows (SQS: one per ten). Each receipt stands alone, as with [`Queue::ack`]: a
    /// stale, repeated or already acked one is ignored, and one that fails does not keep the others
    /// from being acked. `Codec` if some receipt was not made by this queue; on any error, the
    /// messages not acked come back after their lease (handlers are idempotent).
    async fn ack_many(&self, queue: QueueName, receipts: Vec<String>) -> Result<(), QueueError>;
    /// Makes a received message visible again after `delay`.
    async fn release(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError>;
}

/// An HTTP request to a subscriber, fully rendered and signed.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// What a subscriber answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
    /// The parsed `Retry-After` header, if the receiver sent a valid one.
    pub retry_after: Option<RetryAfter>,
    /// At most the configured cap (4 KiB) of the body.
    pub body_excerpt: Vec<u8>,
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("DNS resolution failed: {0}")]
    Dns(String),
    #[error("refused to connect: {0}")]
    BlockedAddress(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("transport error: {0}")]
    Io(String),
}

/// Sends one request. Implementations enforce the timeout, refuse redirects, check addresses and cap
/// how much of the response they read.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, SendError>;
}

/// The time. A port so tests and retries can reason about it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The one write path of the services: store these records and send these messages.
///
/// The embedded adapter commits both in one transaction, so a record never exists without its
/// messages. The AWS adapter writes to DynamoDB, then sends to SQS; the window between the two is
/// closed there, by [`UnitOfWork::redrive`] (see `herald_aws::unit_of_work`).
#[async_trait]
pub trait UnitOfWork: Send + Sync + 'static {
    /// Stores new events, each with its idempotency record if given, and sends the messages of
    /// each one it inserted (together, so a batch of events costs few queue requests). Each item
    /// stands alone: if its idempotency key is taken by an unexpired record, that item writes and
    /// sends nothing and answers the earlier record. A record whose `expires_at` is at or before
    /// the new record's `created_at` counts as absent and is replaced. Answers in input order.
    async fn insert_events_and_send(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<InsertEventOutcome>, StoreError>;

    /// [`UnitOfWork::insert_events_and_send`] of one event.
    async fn insert_event_and_send(
        &self,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
        messages: Vec<OutgoingMessage>,
    ) -> Result<InsertEventOutcome, StoreError> {
        let item = NewEvent {
            event: event.clone(),
            idempotency: idempotency.cloned(),
            messages,
        };
        let mut outcomes = self.insert_events_and_send(vec![item]).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::backend("insert_events_and_send answered nothing"))
    }

    /// Records `attempt`. If the stored delivery has made `attempt.number - 1` attempts (a delivery
    /// not stored yet has made none: its first attempt stores it), also stores `delivery` as its new
    /// state and sends `messages` ([`Recorded::Applied`]); otherwise keeps only the attempt record
    /// ([`Recorded::Superseded`]).
    async fn record_attempt_and_send(
        &self,
        attempt: &Attempt,
        delivery: &Delivery,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Recorded, StoreError>;

    /// Stores the delivery's new state, whether or not it was stored before (a delivery given up
    /// before its first attempt was not), and sends `messages` (replay, recover, giving up).
    async fn update_delivery_and_send(
        &self,
        delivery: &Delivery,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), StoreError>;

    /// A message came back after the step it caused may have committed (its receive count is
    /// above one): `messages` are what that step sends. An adapter that commits records and
    /// messages together does nothing; one that writes, then sends, sends those still needed.
    async fn redrive(&self, messages: Vec<OutgoingMessage>) -> Result<(), StoreError>;
}
