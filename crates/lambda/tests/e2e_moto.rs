//! End to end on the AWS emulator (moto): the four handlers, called with Lambda events the way the
//! runtime calls them, carry an event from intake to a signed POST at a receiver on 127.0.0.1.
//!
//! `poll_like_lambda` plays the SQS event source mapping: receive up to 10 messages, hand them to
//! the handler as an `SqsEvent`, delete exactly the ones not named in `batchItemFailures`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use herald_app::auth::record_for_key;
use herald_aws::aws_sdk_sqs::types::MessageSystemAttributeName;
use herald_aws::{create_queues, create_table, DynamoConfig};
use herald_contract::moto::{moto, unique};
use herald_core::ports::QueueName;
use herald_core::retry::RetryPolicy;
use herald_core::signing::{verify, SigningSecret};
use herald_core::{AddressPolicy, Tenant, TenantId};
use herald_lambda::{build_state, handle_sqs_batch, AwsConfig, AwsState};
use tower::ServiceExt;

const KEY: &str = "hk_fixture_key_for_local_invocations_only_0000";

fn fixture(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(format!(
        "{}/../../events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// An API Gateway v2 event from a fixture, with another path, method or JSON body.
fn http_event(
    name: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> lambda_http::Request {
    let mut event = fixture(name);
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["http"]["method"] = method.into();
    if let Some(body) = body {
        event["body"] = base64::engine::general_purpose::STANDARD
            .encode(body.to_string())
            .into();
        event["isBase64Encoded"] = true.into();
        event["headers"]["content-type"] = "application/json".into();
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

async fn call(
    router: axum::Router,
    request: lambda_http::Request,
) -> (StatusCode, serde_json::Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

struct Deployment {
    state: AwsState,
    tenant: TenantId,
}

async fn deploy() -> Deployment {
    let moto = moto();
    let sdk = herald_aws::emulator_sdk_config(moto.endpoint());
    let table = unique("herald");
    let dynamodb = herald_aws::aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&dynamodb, &DynamoConfig::new(&table))
        .await
        .unwrap();
    let sqs = herald_aws::aws_sdk_sqs::Client::new(&sdk);
    let (events, deliveries) = create_queues(&sqs, &unique("herald")).await.unwrap();
    let mut config = AwsConfig::from_lookup(|name| match name {
        "HERALD_TABLE" => Some(table.clone()),
        "HERALD_EVENTS_QUEUE_URL" => Some(events.clone()),
        "HERALD_DELIVERIES_QUEUE_URL" => Some(deliveries.clone()),
        _ => None,
    })
    .unwrap();
    // The receiver is on 127.0.0.1 over http; retries come after 1 s.
    config.address_policy = AddressPolicy::DEVELOPMENT;
    config.retry = RetryPolicy {
        schedule: vec![Duration::from_secs(1); 3],
        jitter: 0.0,
        ..RetryPolicy::default()
    };
    config.attempt_timeout = Duration::from_secs(5);
    let state = build_state(&sdk, &config).unwrap();
    let tenant = TenantId::new();
    let now = jiff::Timestamp::now();
    state
        .app
        .store
        .put_tenant(&Tenant {
            id: tenant,
            name: "e2e".into(),
            created_at: now,
        })
        .await
        .unwrap();
    state
        .app
        .store
        .put_api_key(&record_for_key(KEY, tenant, "e2e", now))
        .await
        .unwrap();
    Deployment { state, tenant }
}

/// What the receiver got, and what it answers next.
#[derive(Default)]
struct Receiver {
    requests: Mutex<Vec<(HeaderMap, Vec<u8>)>>,
    answers: Mutex<Vec<u16>>,
}

async fn start_receiver(answers: Vec<u16>) -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver {
        answers: Mutex::new(answers),
        ..Default::default()
    });
    let shared = receiver.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
        let shared = shared.clone();
        async move {
            shared
                .requests
                .lock()
                .unwrap()
                .push((headers, body.to_vec()));
            let mut answers = shared.answers.lock().unwrap();
            let status = if answers.is_empty() {
                200
            } else {
                answers.remove(0)
            };
            StatusCode::from_u16(status).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

/// One poll of the SQS event source mapping: receive, invoke, delete what succeeded.
async fn poll_like_lambda(
    state: &AwsState,
    queue_url: &str,
    wait_s: i32,
) -> (usize, SqsBatchResponse) {
    let received = state
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_s)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    let messages = received.messages.unwrap_or_default();
    let mut event = SqsEvent::default();
    for m in &messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.body = m.body.clone();
        record.event_source = Some("aws:sqs".into());
        let mut attributes = HashMap::new();
        for (k, v) in m.attributes.clone().unwrap_or_default() {
            attributes.insert(k.as_str().to_owned(), v);
        }
        record.attributes = attributes;
        event.records.push(record);
    }
    let count = event.records.len();
    if count == 0 {
        return (0, SqsBatchResponse::default());
    }
    let queue = if queue_url == state.config.events_queue_url {
        QueueName::Events
    } else {
        QueueName::Deliveries
    };
    let response = handle_sqs_batch(&state.app, queue, event).await.unwrap();
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for m in &messages {
        if !failed.contains(&m.message_id.as_deref().unwrap_or("")) {
            state
                .sqs
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    (count, response)
}

/// Polls until `done` holds, or fails after `limit`.
async fn poll_until(
    state: &AwsState,
    queue_url: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < until,
            "condition not reached within {limit:?}"
        );
        poll_like_lambda(state, queue_url, 1).await;
    }
}

#[tokio::test]
async fn an_event_goes_from_intake_through_fanout_to_a_signed_post_and_a_failure_is_retried() {
    // Arrange: a deployment on moto and a receiver that fails once, then succeeds.
    let d = deploy().await;
    let (url, receiver) = start_receiver(vec![500]).await;
    let api = || herald_app::api::management_router(d.state.app.clone());
    let ingest = || herald_app::api::intake_router(d.state.app.clone());

    // The api function creates a subscription.
    let body = serde_json::json!({"platform": "custom", "url": url, "events": ["document.*"]});
    let (status, sub) = call(
        api(),
        http_event(
            "api-create-subscription.json",
            "POST",
            "/v1/subscriptions",
            Some(body),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let secret = SigningSecret::parse(sub["secret"].as_str().unwrap()).unwrap();

    // The ingest function accepts the fixture's event.
    let (status, accepted) = call(
        ingest(),
        lambda_http::request::from_str(&fixture("ingest-event.json").to_string()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let event_id = accepted["id"].as_str().unwrap().to_owned();

    // The fanout function takes it from the events queue.
    let config = &d.state.config;
    let (n, response) = poll_like_lambda(&d.state, &config.events_queue_url, 5).await;
    assert_eq!((n, response.batch_item_failures.len()), (1, 0));

    // The deliver function makes the first attempt (500) and, a second later, the retry (200).
    poll_until(
        &d.state,
        &config.deliveries_queue_url,
        Duration::from_secs(30),
        || receiver.requests.lock().unwrap().len() >= 2,
    )
    .await;
    let requests = receiver.requests.lock().unwrap().clone();
    for (headers, body) in &requests {
        let header = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("webhook-id"), event_id);
        let ts = header("webhook-timestamp");
        verify(
            &secret,
            &event_id,
            &ts,
            &header("webhook-signature"),
            body,
            jiff::Timestamp::now().as_second(),
            300,
        )
        .unwrap();
        let envelope: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(envelope["type"], "document.created");
        assert_eq!(envelope["data"]["title"], "Getting started");
    }

    // The delivery log through the api function shows both attempts and success.
    let sub_id = sub["id"].as_str().unwrap();
    let log_request = || {
        http_event(
            "api-list-subscriptions.json",
            "GET",
            &format!("/v1/subscriptions/{sub_id}/deliveries"),
            None,
        )
    };
    let until = Instant::now() + Duration::from_secs(10);
    let delivery = loop {
        let (status, log) = call(api(), log_request()).await;
        assert_eq!(status, StatusCode::OK);
        // The log index is eventually consistent.
        if log["data"][0]["status"] == "succeeded" {
            break log["data"][0].clone();
        }
        assert!(Instant::now() < until, "delivery not succeeded: {log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivery["attempts"], 2);
    let (_, detail) = call(
        api(),
        http_event(
            "api-list-subscriptions.json",
            "GET",
            &format!("/v1/deliveries/{}", delivery["id"].as_str().unwrap()),
            None,
        ),
    )
    .await;
    let codes: Vec<_> = detail["attempts_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, vec![serde_json::json!(500), serde_json::json!(200)]);
    let _ = d.tenant;
}

#[tokio::test]
async fn a_batch_of_ten_with_three_failing_reports_exactly_those_three() {
    // Arrange: 7 real delivery messages (their subscriptions do not exist, so they finish at once)
    // and 3 bodies that are not Herald messages, all on the real deliveries queue.
    let d = deploy().await;
    let queue_url = d.state.config.deliveries_queue_url.clone();
    let mut bad_ids = Vec::new();
    for i in 0..10 {
        let body = if i % 3 == 1 {
            format!("not a herald message {i}")
        } else {
            // A delivery of a subscription that does not exist: given up at once.
            let event = herald_contract::fixtures::event(d.tenant, "document.created");
            let pending = herald_core::Delivery::pending(
                &event,
                herald_core::SubscriptionId::new(),
                event.timestamp,
            );
            herald_aws::encode_body(&herald_core::ports::QueueMessage::Delivery(
                herald_core::DeliveryMessage::attempt_of(&pending, 1),
            ))
            .unwrap()
        };
        let sent = d
            .state
            .sqs
            .send_message()
            .queue_url(&queue_url)
            .message_body(&body)
            .send()
            .await
            .unwrap();
        if body.starts_with("not") {
            bad_ids.push(sent.message_id.unwrap());
        }
    }
    assert_eq!(bad_ids.len(), 3);

    // Act: receive all 10 (SQS may hand them out over several receives) and invoke.
    let mut failed = Vec::new();
    let mut seen = 0;
    let until = Instant::now() + Duration::from_secs(30);
    while seen < 10 {
        assert!(
            Instant::now() < until,
            "only {seen} of 10 messages received"
        );
        let (n, response) = poll_like_lambda(&d.state, &queue_url, 1).await;
        seen += n;
        failed.extend(
            response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier),
        );
    }

    // Assert: exactly the three, and they are still on the queue (not deleted).
    failed.sort();
    bad_ids.sort();
    assert_eq!(failed, bad_ids);
}
