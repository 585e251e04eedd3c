//! Valid records and messages to feed the adapters.

use std::collections::BTreeMap;
use std::time::Duration;

use herald_core::ids::{AttemptId, EventId, SubscriptionId, TenantId};
use herald_core::model::{
    Attempt, Delivery, DeliveryMessage, Event, EventMessage, PlatformConfig, SecretEntry,
    Subscription, Tenant,
};
use herald_core::pattern::{EventPattern, EventType};
use herald_core::ports::{OutgoingMessage, PageRequest, QueueMessage};
use herald_core::signing::SigningSecret;
use herald_core::target::{AddressPolicy, TargetUrl};
use jiff::Timestamp;

pub fn tenant() -> Tenant {
    Tenant {
        id: TenantId::new(),
        name: "Acme".into(),
        created_at: Timestamp::now(),
    }
}

pub fn subscription(tenant: TenantId, patterns: &[&str], enabled: bool) -> Subscription {
    Subscription {
        id: SubscriptionId::new(),
        tenant_id: tenant,
        name: Some("hook".into()),
        description: None,
        platform: PlatformConfig::Custom,
        url: TargetUrl::parse("https://example.com/hook", AddressPolicy::PRODUCTION).unwrap(),
        events: patterns
            .iter()
            .map(|p| EventPattern::parse(p).unwrap())
            .collect(),
        enabled,
        disabled_reason: None,
        disabled_at: None,
        health: Default::default(),
        secrets: vec![SecretEntry {
            secret: SigningSecret::generate(),
            expires_at: None,
        }],
        headers: BTreeMap::new(),
        auth_token: None,
        rate_limit_per_sec: None,
        filter: None,
        template: None,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

pub fn event(tenant: TenantId, event_type: &str) -> Event {
    Event {
        id: EventId::new(),
        tenant_id: tenant,
        event_type: EventType::parse(event_type).unwrap(),
        timestamp: Timestamp::now(),
        data: serde_json::json!({"title": "Hello"}),
        subscriptions: Vec::new(),
    }
}

/// An event to be accepted under idempotency key `key` (`key:…` or `id:…`): its id is
/// `EventId::keyed`, each call a millisecond after the last so two events of one key differ.
pub fn keyed_event(tenant: TenantId, event_type: &str, key: &str) -> Event {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    let now_ms = u64::try_from(Timestamp::now().as_millisecond()).unwrap_or(0);
    let ms = LAST_MS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now_ms.max(last + 1))
        })
        .map_or(now_ms, |last| now_ms.max(last + 1));
    Event {
        id: EventId::keyed(&tenant, key, ms),
        ..event(tenant, event_type)
    }
}

/// An event planned for `subs`.
pub fn planned_event(tenant: TenantId, subs: &[SubscriptionId]) -> Event {
    Event {
        subscriptions: subs.to_vec(),
        ..event(tenant, "document.created")
    }
}

pub fn delivery(tenant: TenantId, sub: SubscriptionId, event: &Event) -> Delivery {
    Delivery {
        tenant_id: tenant,
        next_attempt_at: None,
        ..Delivery::pending(event, sub, Timestamp::now())
    }
}

pub fn attempt(delivery: &Delivery, number: u32) -> Attempt {
    Attempt {
        id: AttemptId::new(),
        delivery_id: delivery.id,
        tenant_id: delivery.tenant_id,
        subscription_id: delivery.subscription_id,
        number,
        started_at: Timestamp::now(),
        status_code: Some(500),
        latency_ms: 12,
        response_excerpt: Some("oops".into()),
        error: None,
        succeeded: false,
    }
}

/// A deliveries-queue message whose `attempt` tells messages apart.
pub fn delivery_message(attempt: u32) -> QueueMessage {
    let ev = event(TenantId::new(), "document.created");
    let d = Delivery::pending(&ev, SubscriptionId::new(), Timestamp::now());
    QueueMessage::Delivery(DeliveryMessage::attempt_of(&d, attempt))
}

pub fn event_message() -> QueueMessage {
    QueueMessage::Event(EventMessage {
        tenant_id: TenantId::new(),
        event_id: EventId::new(),
        event: None,
    })
}

/// `message`, visible at once.
pub fn now(message: QueueMessage) -> OutgoingMessage {
    after(message, Duration::ZERO)
}

/// `message`, visible after `delay`.
pub fn after(message: QueueMessage, delay: Duration) -> OutgoingMessage {
    OutgoingMessage { message, delay }
}

/// The `attempt` of a delivery message (panics on an event message).
pub fn attempt_of(message: &QueueMessage) -> u32 {
    match message {
        QueueMessage::Delivery(m) => m.attempt,
        QueueMessage::Event(_) => panic!("not a delivery message: {message:?}"),
    }
}

pub fn page(limit: usize, cursor: Option<String>) -> PageRequest {
    PageRequest { limit, cursor }
}
