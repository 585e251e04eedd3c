//! End to end on the AWS emulator (moto): the four handlers, called with Lambda events the way the
//! runtime calls them, carry an event from intake to a signed POST at a receiver on 127.0.0.1.
//!
//! Covered: single intake (first attempts queued by the ingest function) and batch intake (fanned
//! out by the fanout function), fan-out to one and to ten subscriptions, a retry, a replay,
//! an event's deliveries (pending, then succeeded) and the delivery log (paged) after each step.
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
async fn an_event_goes_from_intake_to_a_signed_post_and_a_failure_is_retried() {
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

    // One subscription: the ingest function queued the first attempt itself (one request, as the
    // fan-out message would have been); the events queue stays empty.
    let config = &d.state.config;
    let (n, _) = poll_like_lambda(&d.state, &config.events_queue_url, 1).await;
    assert_eq!(n, 0, "no fan-out hop for a small plan");

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

/// A GET through the api function, with an optional query (`limit=2&cursor=…`).
async fn get(d: &Deployment, path: &str, query: &str) -> (StatusCode, serde_json::Value) {
    let mut event = fixture("api-list-subscriptions.json");
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["http"]["method"] = "GET".into();
    event["rawQueryString"] = query.into();
    let params: serde_json::Map<String, serde_json::Value> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
    event["queryStringParameters"] = params.into();
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    call(
        herald_app::api::management_router(d.state.app.clone()),
        request,
    )
    .await
}

/// Polls `path` until `done` holds of its answer (the log shards are read eventually consistent).
async fn get_until(
    d: &Deployment,
    path: &str,
    query: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(d, path, query).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < until, "{path} never got there: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_batch_fans_out_to_ten_and_the_log_follows_every_step_through_a_replay() {
    // Arrange: ten subscriptions to one receiver that always answers 200.
    let d = deploy().await;
    let (url, receiver) = start_receiver(Vec::new()).await;
    let api = || herald_app::api::management_router(d.state.app.clone());
    let mut subs = Vec::new();
    for _ in 0..10 {
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
        subs.push(sub["id"].as_str().unwrap().to_owned());
    }

    // Batch intake: three events in one API Gateway request.
    let events: Vec<_> = (0..3)
        .map(|i| serde_json::json!({"type": "document.published", "data": {"n": i}}))
        .collect();
    let (status, answer) = call(
        herald_app::api::intake_router(d.state.app.clone()),
        http_event(
            "ingest-batch.json",
            "POST",
            "/v1/events/batch",
            Some(serde_json::json!({ "events": events })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let ids: Vec<String> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            assert_eq!(item["status"], "accepted", "{item}");
            item["id"].as_str().unwrap().to_owned()
        })
        .collect();

    // Before fan-out, each event shows its ten planned deliveries, pending.
    let (_, event) = get(&d, &format!("/v1/events/{}", ids[0]), "").await;
    let pending = event["deliveries"].as_array().unwrap();
    assert_eq!(pending.len(), 10, "{event}");
    assert!(pending
        .iter()
        .all(|d| d["status"] == "pending" && d["attempts"] == 0));

    // Fan-out and delivery: thirty signed POSTs.
    let config = &d.state.config;
    let mut fanned = 0;
    let until = Instant::now() + Duration::from_secs(30);
    while fanned < 3 {
        assert!(
            Instant::now() < until,
            "only {fanned} of 3 events fanned out"
        );
        fanned += poll_like_lambda(&d.state, &config.events_queue_url, 1)
            .await
            .0;
    }
    poll_until(
        &d.state,
        &config.deliveries_queue_url,
        Duration::from_secs(60),
        || receiver.requests.lock().unwrap().len() >= 30,
    )
    .await;

    // The event shows every delivery succeeded.
    get_until(&d, &format!("/v1/events/{}", ids[0]), "", |e| {
        e["deliveries"].as_array().is_some_and(|ds| {
            ds.len() == 10
                && ds
                    .iter()
                    .all(|d| d["status"] == "succeeded" && d["attempts"] == 1)
        })
    })
    .await;

    // One subscription's log: three deliveries, newest first, two pages.
    let log_path = format!("/v1/subscriptions/{}/deliveries", subs[3]);
    let first_page = get_until(&d, &log_path, "limit=2", |p| {
        p["data"].as_array().is_some_and(|items| items.len() == 2)
    })
    .await;
    let cursor = first_page["next_cursor"].as_str().unwrap().to_owned();
    let (_, second_page) = get(&d, &log_path, &format!("limit=2&cursor={cursor}")).await;
    assert_eq!(second_page["data"].as_array().unwrap().len(), 1);
    assert!(second_page["next_cursor"].is_null());
    let log: Vec<&serde_json::Value> = first_page["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second_page["data"].as_array().unwrap())
        .collect();
    // Newest first is delivery id order, descending (events of one millisecond: in id order).
    let delivery_ids: Vec<&str> = log.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let mut sorted = delivery_ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(delivery_ids, sorted);
    let mut events_in_log: Vec<&str> = log
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    events_in_log.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(events_in_log, expected);

    // Replay the oldest: it is sent again and the log shows its second attempt.
    let replayed = second_page["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, answer) = call(
        api(),
        http_event(
            "api-list-subscriptions.json",
            "POST",
            &format!("/v1/deliveries/{replayed}/retry"),
            None,
        ),
    )
    .await;
    assert!(status.is_success(), "{status}: {answer}");
    poll_until(
        &d.state,
        &config.deliveries_queue_url,
        Duration::from_secs(30),
        || receiver.requests.lock().unwrap().len() >= 31,
    )
    .await;
    let detail = get_until(&d, &format!("/v1/deliveries/{replayed}"), "", |d| {
        d["status"] == "succeeded" && d["attempts"] == 2
    })
    .await;
    assert_eq!(detail["attempts_log"].as_array().unwrap().len(), 2);
    get_until(&d, &log_path, "", |p| {
        p["data"][2]["id"] == replayed.as_str() && p["data"][2]["attempts"] == 2
    })
    .await;
}
