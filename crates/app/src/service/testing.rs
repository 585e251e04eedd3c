//! The services on the in-memory adapters of `herald-contract`, a manual clock and a scripted
//! receiver: unit tests of what each service carries out, in milliseconds and without sleeping.

use std::sync::Arc;
use std::time::Duration;

use herald_contract::fixtures;
use herald_contract::memory::{ManualClock, MemoryQueue, MemoryStore, Reply, ScriptedSender};
use herald_core::ports::{OutgoingMessage, QueueMessage, QueueName};
use herald_core::retry::RetryPolicy;
use herald_core::{Delivery, DeliveryMessage, Event, EventMessage, Subscription, TenantId};

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
        let subs = self
            .state
            .store
            .enabled_subscriptions(&event.tenant_id)
            .await
            .unwrap();
        event.subscriptions = herald_core::delivery::plan(&event.event_type, &subs);
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
