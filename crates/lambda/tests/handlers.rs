//! The Lambda handlers on the real event shapes in `events/` (the same files `cargo lambda invoke`
//! and `sam local invoke -e` use), over the embedded adapters: API Gateway events through the axum
//! routers, SQS batches through `handle_sqs_batch` with honest partial failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use herald_app::auth::record_for_key;
use herald_app::sender::{HttpSender, HttpSenderConfig};
use herald_app::{AppState, Settings};
use herald_core::ports::*;
use herald_core::*;
use herald_embedded::EmbeddedDb;
use herald_lambda::handle_sqs_batch;
use tower::ServiceExt;

const FIXTURE_KEY: &str = "hk_fixture_key_for_local_invocations_only_0000";
const TENANT: &str = "ten_01JDXF0000000000000000TEST";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn sqs(name: &str) -> SqsEvent {
    serde_json::from_str(&fixture(name)).unwrap()
}

struct App {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn app_with(wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(dir.path()).unwrap();
    let store = wrap(Arc::new(db.store()));
    let sender = HttpSender::new(HttpSenderConfig::default()).unwrap();
    let state = AppState::new(
        store,
        Arc::new(db.queue()),
        Arc::new(sender),
        Arc::new(SystemClock),
        Settings::default(),
    );
    let tenant: TenantId = TENANT.parse().unwrap();
    let now = jiff::Timestamp::now();
    state
        .store
        .put_tenant(&Tenant {
            id: tenant,
            name: "fixture".into(),
            created_at: now,
        })
        .await
        .unwrap();
    state
        .store
        .put_api_key(&record_for_key(FIXTURE_KEY, tenant, "fixture", now))
        .await
        .unwrap();
    App { state, _dir: dir }
}

async fn app() -> App {
    app_with(|s| s).await
}

async fn call(router: axum::Router, name: &str) -> (u16, serde_json::Value) {
    let request = lambda_http::request::from_str(&fixture(name)).unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn api_gateway_events_reach_the_management_router() {
    let app = app().await;
    let router = || herald_app::api::management_router(app.state.clone());
    assert_eq!(call(router(), "api-healthz.json").await.0, 200);
    let (status, types) = call(router(), "api-event-types.json").await;
    assert_eq!(status, 200);
    assert!(types["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "document.created"));
    let (status, created) = call(router(), "api-create-subscription.json").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["platform"], "slack");
    let (status, list) = call(router(), "api-list-subscriptions.json").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"][0]["id"], created["id"]);
}

#[tokio::test]
async fn the_ingest_event_is_accepted_and_queued_for_fanout() {
    let app = app().await;
    let (status, accepted) = call(
        herald_app::api::intake_router(app.state.clone()),
        "ingest-event.json",
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let queued = app
        .state
        .queue
        .receive(
            QueueName::Events,
            10,
            std::time::Duration::ZERO,
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    match &queued[0].message {
        QueueMessage::Event(m) => {
            assert_eq!(m.event_id.to_string(), accepted["id"].as_str().unwrap())
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn the_management_router_does_not_take_intake() {
    let app = app().await;
    let (status, _) = call(
        herald_app::api::management_router(app.state.clone()),
        "ingest-event.json",
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_mixed_batch_reports_exactly_the_unreadable_message() {
    // Record 0: a delivery that does not exist (dropped, done). Record 1: not a Herald message.
    // Record 2: an event that does not exist (dropped, done).
    let app = app().await;
    let response = handle_sqs_batch(&app.state, sqs("sqs-deliver-mixed.json"))
        .await
        .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        vec!["00000000-0000-4000-8000-000000000001".to_string()]
    );
}

#[tokio::test]
async fn the_fanout_fixture_fans_a_stored_event_out() {
    let app = app().await;
    let tenant: TenantId = TENANT.parse().unwrap();
    let now = jiff::Timestamp::now();
    let event = Event {
        id: "evt_01JDXF0000000000000000EVT1".parse().unwrap(),
        tenant_id: tenant,
        event_type: EventType::parse("document.created").unwrap(),
        timestamp: now,
        data: serde_json::json!({"title": "x"}),
    };
    app.state.store.insert_event(&event, None).await.unwrap();
    let sub = Subscription {
        id: SubscriptionId::new(),
        tenant_id: tenant,
        name: None,
        description: None,
        platform: PlatformConfig::Custom,
        url: herald_core::TargetUrl::from_stored("https://hooks.example.com/in").unwrap(),
        events: vec![EventPattern::parse("document.*").unwrap()],
        enabled: true,
        disabled_reason: None,
        secrets: vec![SecretEntry {
            secret: herald_core::signing::SigningSecret::generate(),
            expires_at: None,
        }],
        headers: Default::default(),
        auth_token: None,
        rate_limit_per_sec: None,
        created_at: now,
        updated_at: now,
    };
    app.state.store.create_subscription(&sub).await.unwrap();
    let response = handle_sqs_batch(&app.state, sqs("sqs-fanout.json"))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let deliveries = app
        .state
        .store
        .deliveries_for_event(&tenant, &event.id)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].subscription_id, sub.id);
}

/// A store whose delivery reads fail, as DynamoDB does when throttled or unreachable.
struct BrokenDeliveries(Arc<dyn Store>);

#[async_trait]
impl Store for BrokenDeliveries {
    async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        self.0.put_tenant(t).await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.0.get_tenant(id).await
    }

    async fn list_tenants(&self, p: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        self.0.list_tenants(p).await
    }

    async fn put_api_key(&self, k: &ApiKeyRecord) -> Result<(), StoreError> {
        self.0.put_api_key(k).await
    }

    async fn find_api_key(&self, h: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.0.find_api_key(h).await
    }

    async fn list_api_keys(&self, t: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.0.list_api_keys(t).await
    }

    async fn revoke_api_key(
        &self,
        t: &TenantId,
        id: &ApiKeyId,
        at: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        self.0.revoke_api_key(t, id, at).await
    }

    async fn create_subscription(&self, s: &Subscription) -> Result<(), StoreError> {
        self.0.create_subscription(s).await
    }

    async fn get_subscription(
        &self,
        t: &TenantId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        self.0.get_subscription(t, id).await
    }

    async fn update_subscription(&self, s: &Subscription) -> Result<(), StoreError> {
        self.0.update_subscription(s).await
    }

    async fn delete_subscription(
        &self,
        t: &TenantId,
        id: &SubscriptionId,
    ) -> Result<(), StoreError> {
        self.0.delete_subscription(t, id).await
    }

    async fn list_subscriptions(
        &self,
        t: &TenantId,
        f: &SubscriptionFilter,
        p: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        self.0.list_subscriptions(t, f, p).await
    }

    async fn enabled_subscriptions(&self, t: &TenantId) -> Result<Vec<Subscription>, StoreError> {
        self.0.enabled_subscriptions(t).await
    }

    async fn insert_event(
        &self,
        e: &Event,
        i: Option<&IdempotencyRecord>,
    ) -> Result<InsertEventOutcome, StoreError> {
        self.0.insert_event(e, i).await
    }

    async fn get_event(&self, t: &TenantId, id: &EventId) -> Result<Option<Event>, StoreError> {
        self.0.get_event(t, id).await
    }

    async fn create_deliveries(&self, d: &[Delivery]) -> Result<Vec<DeliveryId>, StoreError> {
        self.0.create_deliveries(d).await
    }

    async fn update_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        self.0.update_delivery(d).await
    }

    async fn record_attempt(&self, a: &Attempt, d: &Delivery) -> Result<(), StoreError> {
        self.0.record_attempt(a, d).await
    }

    async fn list_deliveries(
        &self,
        t: &TenantId,
        s: &SubscriptionId,
        p: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        self.0.list_deliveries(t, s, p).await
    }

    async fn deliveries_for_event(
        &self,
        t: &TenantId,
        e: &EventId,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.0.deliveries_for_event(t, e).await
    }

    async fn list_attempts(
        &self,
        t: &TenantId,
        d: &DeliveryId,
    ) -> Result<Vec<Attempt>, StoreError> {
        self.0.list_attempts(t, d).await
    }

    async fn get_delivery(
        &self,
        _t: &TenantId,
        _id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        Err(StoreError::backend(
            "ProvisionedThroughputExceededException",
        ))
    }
}

#[tokio::test]
async fn a_store_error_is_reported_as_a_failure_not_as_success() {
    let app = app_with(|inner| Arc::new(BrokenDeliveries(inner))).await;
    let response = handle_sqs_batch(&app.state, sqs("sqs-deliver.json"))
        .await
        .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        vec!["00000000-0000-4000-8000-000000000000".to_string()]
    );
}
