//! The services on the in-memory adapters of `herald-contract`, a manual clock and a scripted
//! receiver: unit tests of what each service carries out, in milliseconds and without sleeping.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use herald_contract::fixtures;
use herald_contract::memory::{ManualClock, MemoryQueue, MemoryStore, Reply, ScriptedSender};
use herald_core::ports::{Clock, OutgoingMessage, QueueMessage, QueueName};
use herald_core::retry::RetryPolicy;
use herald_core::{Delivery, DeliveryMessage, Event, EventMessage, Subscription, TenantId};
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::{generate_api_key, NewApiKey};
use crate::settings::Settings;
use crate::state::AppState;

pub(crate) struct Harness {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub queue: Arc<MemoryQueue>,
    pub sender: Arc<ScriptedSender>,
    pub tenant: TenantId,
}

impl Harness {
    /// Retries after 5 s and 5 min, without jitter; the receiver answers `script`, then 204.
    pub fn new(script: impl IntoIterator<Item = Reply>) -> Self {
        Self::with_schedule(&[5, 300], script)
    }

    pub fn with_schedule(schedule: &[u64], script: impl IntoIterator<Item = Reply>) -> Self {
        let clock = ManualClock::fixed();
        let queue = MemoryQueue::new(clock.clone());
        let store = MemoryStore::new(queue.clone());
        let sender = ScriptedSender::new(script);
        let settings = Settings {
            retry: RetryPolicy {
                schedule: schedule.iter().map(|s| Duration::from_secs(*s)).collect(),
                jitter: 0.0,
                ..RetryPolicy::default()
            },
            ..Settings::default()
        };
        let state = AppState::new(
            store.clone(),
            store,
            queue.clone(),
            sender.clone(),
            clock.clone(),
            settings,
        );
        Self {
            state,
            clock,
            queue,
            sender,
            tenant: TenantId::new(),
        }
    }

    /// The same state, with the directory keeping answers for `ttl` (on the manual clock).
    pub fn with_cache_ttl(self, ttl: Duration) -> Self {
        self.with_settings(|s| s.cache_ttl = ttl)
    }

    /// The same state, with `change` made to its settings.
    pub fn with_settings(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        let s = &self.state;
        let mut settings = (*s.settings).clone();
        change(&mut settings);
        self.state = AppState::new(
            s.store.clone(),
            s.writes.clone(),
            s.queue.clone(),
            s.sender.clone(),
            s.clock.clone(),
            settings,
        );
        self
    }

    /// A stored API key of the tenant.
    pub async fn api_key(&self) -> NewApiKey {
        let new = generate_api_key(self.tenant, "test", self.clock.now());
        self.state.store.put_api_key(&new.record).await.unwrap();
        new
    }

    /// One request to the one-process router with `key`: the status and the JSON answer (`null`
    /// when there is none).
    pub async fn call(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let response = crate::api::router(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn subscribe(&self, patterns: &[&str], enabled: bool) -> Subscription {
        let sub = fixtures::subscription(self.tenant, patterns, enabled);
        self.state.store.create_subscription(&sub).await.unwrap();
        sub
    }

    /// An event as intake stores it, planned for the tenant's matching subscriptions (no fan-out
    /// message is queued).
    pub async fn event(&self, event_type: &str) -> Event {
        self.store_event(fixtures::event(self.tenant, event_type))
            .await
    }

    /// Stores `event` with intake's plan.
    pub async fn store_event(&self, mut event: Event) -> Event {
        // As intake plans: through the directory.
        let subs = self
            .state
            .directory
            .enabled_subscriptions(&event.tenant_id)
            .await
            .unwrap();
        event.subscriptions = herald_core::delivery::plan(&event, &subs);
        self.state
            .writes
            .insert_event_and_send(&event, None, Vec::new())
            .await
            .unwrap();
        event
    }

    /// A subscription to everything and one event fanned out to it: the first attempt's message
    /// (taken off the queue).
    pub async fn one_delivery(&self) -> (Subscription, DeliveryMessage) {
        let sub = self.subscribe(&["*"], true).await;
        let event = self.event("document.published").await;
        let message = EventMessage {
            tenant_id: event.tenant_id,
            event_id: event.id,
            event: Some(event.clone()),
        };
        crate::service::fanout::handle(&self.state, &message, 1)
            .await
            .unwrap();
        let (first, _) = self.take_deliveries().remove(0);
        (sub, first)
    }

    /// The delivery `m` is about, as stored.
    pub async fn delivery(&self, m: &DeliveryMessage) -> Delivery {
        self.state
            .store
            .get_delivery(&m.tenant_id(), &m.delivery_id())
            .await
            .unwrap()
            .unwrap()
    }

    /// `sub` as stored now.
    pub async fn subscription(&self, sub: &Subscription) -> Subscription {
        self.state
            .store
            .get_subscription(&sub.tenant_id, &sub.id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Takes every message off `queue`.
    pub fn take(&self, queue: QueueName) -> Vec<OutgoingMessage> {
        self.queue.drain(queue)
    }

    /// Takes every delivery message off the deliveries queue, with its delay.
    pub fn take_deliveries(&self) -> Vec<(DeliveryMessage, Duration)> {
        self.take(QueueName::Deliveries)
            .into_iter()
            .map(|m| match m.message {
                QueueMessage::Delivery(d) => (d, m.delay),
                other => panic!("not a delivery message: {other:?}"),
            })
            .collect()
    }
}
