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
use herald_contract::compose::ComposedStore;
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

async fn app_with(store: impl FnOnce(&EmbeddedDb) -> Arc<dyn Store>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(dir.path()).unwrap();
    let store = store(&db);
    let sender = HttpSender::new(HttpSenderConfig::default()).unwrap();
    let state = AppState::new(
        store,
        Arc::new(db.outbox()),
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
    app_with(|db| Arc::new(db.store())).await
}

/// A subscription to every event of the fixtures' tenant, so intake plans a delivery for each.
async fn subscribe_to_everything(app: &App) {
    let tenant: TenantId = TENANT.parse().unwrap();
    let sub = herald_contract::fixtures::subscription(tenant, &["*"], true);
    app.state.store.create_subscription(&sub).await.unwrap();
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
async fn the_ingest_event_is_accepted_and_its_first_attempt_queued() {
    let app = app().await;
    subscribe_to_everything(&app).await;
    let (status, accepted) = call(
        herald_app::api::intake_router(app.state.clone()),
        "ingest-event.json",
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    // One subscription: intake queues the first attempt itself.
    let queued = queued_first_attempts(&app).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].delivery.event_id.to_string(),
        accepted["id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn the_management_router_does_not_take_intake() {
    let app = app().await;
    let (status, _) = call(
        herald_app::api::management_router(app.state.clone()),
        "ingest-event.json",
    )
    .await;
    // `GET /v1/events` (the list) is served here; posting an event is not.
    assert_eq!(status, 405);
}

#[tokio::test]
async fn the_batch_intake_event_answers_each_event_and_queues_the_accepted_ones() {
    let app = app().await;
    subscribe_to_everything(&app).await;
    let (status, answer) = call(
        herald_app::api::intake_router(app.state.clone()),
        "ingest-batch.json",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<&str> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "accepted", "rejected"]);
    // Two first attempts fit the one request two fan-out messages would take: queued by intake.
    assert_eq!(queued_first_attempts(&app).await.len(), 2);
}

#[tokio::test]
async fn a_mixed_batch_reports_exactly_the_unreadable_message() {
    // Record 0: a delivery of an unknown subscription (given up, done). Record 1: not a Herald message.
    // Record 2: a fan-out message, which the deliver function does not take.
    let app = app().await;
    let response = handle_sqs_batch(
        &app.state,
        QueueName::Deliveries,
        sqs("sqs-deliver-mixed.json"),
    )
    .await
    .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        vec![
            "00000000-0000-4000-8000-000000000001".to_string(),
            "00000000-0000-4000-8000-000000000002".to_string()
        ]
    );
}

/// A subscription of the fixture tenant to `document.*`.
async fn subscribe(app: &App) -> Subscription {
    let now = jiff::Timestamp::now();
    let sub = Subscription {
        id: SubscriptionId::new(),
        tenant_id: TENANT.parse().unwrap(),
        name: None,
        description: None,
        platform: PlatformConfig::Custom,
        url: herald_core::TargetUrl::from_stored("https://hooks.example.com/in").unwrap(),
        events: vec![EventPattern::parse("document.*").unwrap()],
        enabled: true,
        disabled_reason: None,
        disabled_at: None,
        health: Default::default(),
        secrets: vec![SecretEntry {
            secret: herald_core::signing::SigningSecret::generate(),
            expires_at: None,
        }],
        headers: Default::default(),
        auth_token: None,
        rate_limit_per_sec: None,
        filter: None,
        template: None,
        created_at: now,
        updated_at: now,
    };
    app.state.store.create_subscription(&sub).await.unwrap();
    sub
}

/// Stores the fixture tenant's event `id`, planned for `sub`, as intake would (its fan-out message
/// aside: the fixtures carry only the id, a claim check).
async fn store_event(app: &App, id: &str, sub: &Subscription) -> Event {
    let event = Event {
        id: id.parse().unwrap(),
        tenant_id: TENANT.parse().unwrap(),
        event_type: EventType::parse("document.created").unwrap(),
        timestamp: jiff::Timestamp::now(),
        data: serde_json::json!({"title": "x"}),
        subscriptions: vec![sub.id],
    };
    app.state
        .writes
        .insert_event_and_send(&event, None, Vec::new())
        .await
        .unwrap();
    event
}

fn failed_ids(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// The ids of the records of a fixture at these positions.
fn record_ids(positions: &[usize]) -> Vec<String> {
    positions
        .iter()
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect()
}

/// The first-attempt messages on the deliveries queue.
async fn queued_first_attempts(app: &App) -> Vec<DeliveryMessage> {
    app.state
        .queue
        .receive(
            QueueName::Deliveries,
            10,
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|m| match m.message {
            QueueMessage::Delivery(d) => d,
            other => panic!("not a delivery message: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn the_fanout_fixture_queues_the_first_attempt_of_each_planned_delivery() {
    let app = app().await;
    let sub = subscribe(&app).await;
    let event = store_event(&app, "evt_01JDXF0000000000000000EVT1", &sub).await;
    let response = handle_sqs_batch(&app.state, QueueName::Events, sqs("sqs-fanout.json"))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let queued = queued_first_attempts(&app).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].attempt, 1);
    assert_eq!(queued[0].delivery.subscription_id, sub.id);
    assert_eq!(
        queued[0].delivery_id(),
        DeliveryId::derive(&event.id, &sub.id)
    );
}

#[tokio::test]
async fn a_fanout_batch_queues_every_planned_first_attempt_and_reports_exactly_the_bad_records() {
    // Given three stored events planned for one subscription
    let app = app().await;
    let sub = subscribe(&app).await;
    let mut events = Vec::new();
    for id in ["EVT1", "EVT2", "EVT3"] {
        events.push(store_event(&app, &format!("evt_01JDXF0000000000000000{id}"), &sub).await);
    }

    // When the fanout function gets them in one batch, with an unreadable record (2) and a
    // delivery message (4)
    let response = handle_sqs_batch(&app.state, QueueName::Events, sqs("sqs-fanout-batch.json"))
        .await
        .unwrap();

    // Then exactly the two bad records are reported, and each event's first attempt is queued
    assert_eq!(failed_ids(&response), record_ids(&[2, 4]));
    let mut queued: Vec<DeliveryId> = queued_first_attempts(&app)
        .await
        .iter()
        .map(DeliveryMessage::delivery_id)
        .collect();
    queued.sort();
    let mut expected: Vec<DeliveryId> = events
        .iter()
        .map(|e| DeliveryId::derive(&e.id, &sub.id))
        .collect();
    expected.sort();
    assert_eq!(queued, expected);
}

#[tokio::test]
async fn a_failed_send_reports_every_event_of_the_batch() {
    let mut app = app().await;
    let sub = subscribe(&app).await;
    for id in ["EVT1", "EVT2", "EVT3"] {
        store_event(&app, &format!("evt_01JDXF0000000000000000{id}"), &sub).await;
    }
    let probe = herald_contract::compose::ProbedQueue::new(app.state.queue.clone());
    probe.fail_sends(true);
    app.state.queue = probe;
    let response = handle_sqs_batch(&app.state, QueueName::Events, sqs("sqs-fanout-batch.json"))
        .await
        .unwrap();
    // The three events' first attempts were not sent: they must come back, with the bad records.
    assert_eq!(failed_ids(&response), record_ids(&[0, 1, 2, 3, 4]));
}

/// A delivery store whose reads fail, as DynamoDB's do when throttled or unreachable.
struct BrokenDeliveries;

#[async_trait]
impl DeliveryStore for BrokenDeliveries {
    async fn get_delivery(
        &self,
        _t: &TenantId,
        _id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        Err(StoreError::backend(
            "ProvisionedThroughputExceededException",
        ))
    }

    async fn list_deliveries(
        &self,
        _t: &TenantId,
        _s: &SubscriptionId,
        _p: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        Err(StoreError::backend(
            "ProvisionedThroughputExceededException",
        ))
    }

    async fn deliveries_for_event(&self, _e: &Event) -> Result<Vec<Delivery>, StoreError> {
        Err(StoreError::backend(
            "ProvisionedThroughputExceededException",
        ))
    }

    async fn list_attempts(
        &self,
        _t: &TenantId,
        _d: &DeliveryId,
    ) -> Result<Vec<Attempt>, StoreError> {
        Err(StoreError::backend(
            "ProvisionedThroughputExceededException",
        ))
    }
}

#[tokio::test]
async fn a_store_error_on_a_redelivered_message_is_reported_as_a_failure_not_as_success() {
    let app = app_with(|db| {
        Arc::new(ComposedStore {
            deliveries: Arc::new(BrokenDeliveries),
            ..ComposedStore::of(Arc::new(db.store()))
        })
    })
    .await;
    // Received again, so the handler checks the stored delivery first, and that read fails.
    let mut event = sqs("sqs-deliver.json");
    event.records[0]
        .attributes
        .insert("ApproximateReceiveCount".into(), "2".into());
    let response = handle_sqs_batch(&app.state, QueueName::Deliveries, event)
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
