//! The AWS calls one delivery makes, pinned. On the emulator (moto), N events × F subscriptions go
//! through the Lambda handlers with the metering interceptor on (`HERALD_METER_AWS`), and the
//! DynamoDB and SQS calls Herald made on the data path (intake, fan-out, delivery) are compared,
//! by operation, with exact counts.
//!
//! These counts are the bill (see the README's "What it costs on AWS"). A change that adds a call
//! per event or per delivery must fail here and update the table below deliberately, saying why;
//! a change that removes calls should lower it.
//!
//! Only Herald's own calls are counted: the table and tenant setup happen before the measured
//! stretch, and this test plays the SQS event source mapping (receive, delete) with a client of
//! its own that the meter does not see. Every queue is drained to the last message, and the
//! receiver answers 204 at once, so the counts do not depend on timing.
//!
//! The instance's directory (`herald_app::directory`) keeps API keys and subscriptions for the
//! cache TTL. Here the TTL is an hour, longer than the test, so that what it reads once per
//! window is read exactly once and the counts stay exact; with the 5 s default a warm instance
//! reads each again at most once every 5 s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use herald_app::auth::record_for_key;
use herald_aws::aws_sdk_sqs::types::MessageSystemAttributeName;
use herald_aws::{aws_sdk_sqs, create_queues, create_table, DynamoConfig, MeterSnapshot};
use herald_contract::moto::{moto, unique};
use herald_core::ports::{QueueMessage, QueueName};
use herald_core::stats::Hour;
use herald_core::{AddressPolicy, Tenant, TenantId};
use herald_lambda::{build_state, handle_sqs_batch, AwsConfig, AwsState};
use tower::ServiceExt;

const KEY: &str = "hk_fixture_key_for_request_counts_only_00000";

/// A deployment on moto with the meter on, a tenant and its key, and an unmetered SQS client for
/// the test's own event source mapping.
async fn deploy() -> (AwsState, aws_sdk_sqs::Client) {
    let sdk = herald_aws::emulator_sdk_config(moto().endpoint());
    let table = unique("counts");
    let dynamodb = herald_aws::aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&dynamodb, &DynamoConfig::new(&table))
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (events, deliveries) = create_queues(&sqs, &unique("counts")).await.unwrap();
    let mut config = AwsConfig::from_lookup(|name| match name {
        "HERALD_TABLE" => Some(table.clone()),
        "HERALD_EVENTS_QUEUE_URL" => Some(events.clone()),
        "HERALD_DELIVERIES_QUEUE_URL" => Some(deliveries.clone()),
        "HERALD_METER_AWS" => Some("true".into()),
        _ => None,
    })
    .unwrap();
    config.address_policy = AddressPolicy::DEVELOPMENT;
    config.attempt_timeout = Duration::from_secs(5);
    config.cache_ttl = Duration::from_secs(3600);
    let state = build_state(&sdk, &config).unwrap();
    let tenant = TenantId::new();
    let now = jiff::Timestamp::now();
    state
        .app
        .store
        .put_tenant(&Tenant {
            id: tenant,
            name: "counts".into(),
            created_at: now,
        })
        .await
        .unwrap();
    state
        .app
        .store
        .put_api_key(&record_for_key(KEY, tenant, "counts", now))
        .await
        .unwrap();
    (state, sqs)
}

async fn post(router: axum::Router, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, json) = send(router, path, body).await;
    assert!(status.is_success(), "{path}: {status} {json}");
    json
}

async fn send(
    router: axum::Router,
    path: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    (status, json)
}

/// A receiver on 127.0.0.1 that answers 204 and counts what it got.
async fn start_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let count = std::sync::Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::Relaxed);
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

/// Plays the event source mapping on `queue` until `expected` messages were handled and deleted:
/// receive up to 10, hand them to the handler as one batch, delete the ones that succeeded.
/// Answers the statistics writes expected: the handler keeps the counts of full batches (ten
/// records: more are coming) and writes them, one per subscription and hour, after a batch that
/// is not full (the queue is drained).
async fn drain(
    state: &AwsState,
    esm: &aws_sdk_sqs::Client,
    queue: QueueName,
    expected: usize,
) -> u64 {
    let url = match queue {
        QueueName::Events => state.config.events_queue_url.clone(),
        QueueName::Deliveries => state.config.deliveries_queue_url.clone(),
    };
    let until = Instant::now() + Duration::from_secs(60);
    let mut handled = 0;
    let mut stats_writes = 0;
    let mut buffered = std::collections::HashSet::new();
    while handled < expected {
        assert!(
            Instant::now() < until,
            "{handled} of {expected} messages handled"
        );
        let received = esm
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        for m in &messages {
            if let Ok(QueueMessage::Delivery(d)) =
                serde_json::from_str(m.body.as_deref().unwrap_or_default())
            {
                buffered.insert(d.delivery.subscription_id);
            }
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            let mut attributes = HashMap::new();
            for (k, v) in m.attributes.clone().unwrap_or_default() {
                attributes.insert(k.as_str().to_owned(), v);
            }
            record.attributes = attributes;
            event.records.push(record);
        }
        let response = handle_sqs_batch(&state.app, queue, event).await.unwrap();
        assert!(
            response.batch_item_failures.is_empty(),
            "a message failed: {response:?}"
        );
        for m in &messages {
            esm.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
        handled += messages.len();
        if messages.len() < 10 {
            stats_writes += buffered.len() as u64;
            buffered.clear();
        }
    }
    assert_eq!(handled, expected, "more messages than expected on {url}");
    stats_writes
}

/// Runs `events` events through `fanout` subscriptions and returns the calls Herald made, and the
/// statistics writes expected of the delivery batches it handled. A run that straddles the turn
/// of an hour (two statistics items for one subscription in one batch) is made again.
async fn measure(events: usize, fanout: usize) -> (MeterSnapshot, u64) {
    loop {
        let hour = Hour::containing(jiff::Timestamp::now());
        let run = measure_once(events, fanout).await;
        if Hour::containing(jiff::Timestamp::now()) == hour {
            return run;
        }
    }
}

async fn measure_once(events: usize, fanout: usize) -> (MeterSnapshot, u64) {
    let (state, esm) = deploy().await;
    let meter = state
        .meter
        .clone()
        .expect("HERALD_METER_AWS turns the meter on");
    let (url, received) = start_receiver().await;
    for _ in 0..fanout {
        post(
            herald_app::api::management_router(state.app.clone()),
            "/v1/subscriptions",
            serde_json::json!({"platform": "custom", "url": url, "events": ["order.*"]}),
        )
        .await;
    }

    let before = meter.snapshot();
    for i in 0..events {
        post(
            herald_app::api::intake_router(state.app.clone()),
            "/v1/events",
            serde_json::json!({"type": "order.paid", "data": {"order": i, "note": words(900, i as u64)}}),
        )
        .await;
    }
    // One event per request: its first attempts go out from intake when they fit one request.
    let fan_out_messages = if fanout <= 10 { 0 } else { events };
    drain(&state, &esm, QueueName::Events, fan_out_messages).await;
    let stats_writes = drain(&state, &esm, QueueName::Deliveries, events * fanout).await;
    let measured = meter.snapshot().since(&before);

    assert_eq!(
        received.load(std::sync::atomic::Ordering::Relaxed),
        (events * fanout) as u64,
        "every delivery arrived once"
    );
    (measured, stats_writes)
}

/// `len` bytes of random lowercase words: text that deflates about as badly as any real payload,
/// so the item sizes below are honest (one repeated letter would deflate to nothing).
fn words(len: usize, seed: u64) -> String {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut text = String::with_capacity(len + 10);
    while text.len() < len {
        for _ in 0..2 + next() % 8 {
            text.push(char::from(b'a' + (next() % 26) as u8));
        }
        text.push(' ');
    }
    text.truncate(len);
    text
}

fn by_operation(snapshot: &MeterSnapshot) -> BTreeMap<String, u64> {
    snapshot
        .calls
        .iter()
        .map(|((service, op), n)| (format!("{service}.{op}"), *n))
        .collect()
}

fn expected(rows: &[(&str, u64)]) -> BTreeMap<String, u64> {
    rows.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

/// Today's data path, without an idempotency key, every first attempt answered 204: the calls
/// Herald makes for `events` events (one per intake request) planned for `fanout` subscriptions
/// each, on one instance within one cache window. With F ≤ 10 the first attempts fit one request
/// and intake sends them itself; with more, each event's fan-out message goes to the fanout
/// function, which gets them as one SQS batch (this test's event source mapping receives ten at a
/// time, and moto answers with every visible message).
///
/// | call | per event | per fan-out batch (F > 10) | per delivery | once per instance and window |
/// |---|---|---|---|---|
/// | DynamoDB.GetItem | | | | F: each subscription (delivery) |
/// | DynamoDB.PutItem | 1: the event, with its plan (no key: no idempotency record) | | 1: the delivery with its first attempt inside | |
/// | DynamoDB.Query | | | | 1: the tenant's enabled subscriptions (intake's plan); 1: the tenant's event-type catalog (intake's schema check, schemas compiled once per read) |
/// | SQS.SendMessageBatch | 1: its first attempts (F ≤ 10) or its fan-out message (F > 10) | ceil(E × F / 10): the first attempts of all its events, 10 a request | | |
/// | DynamoDB.UpdateItem | | | | F: each subscription's last success (its health), written at most once an hour |
/// | DynamoDB.UpdateItem | | per deliver batch: one per subscription it delivered to (its statistics of the hour, `ADD`) | | |
///
/// The API key costs nothing here: the subscription requests before the measured stretch read it
/// (once) into the directory. The catalog is read once per window whether or not the tenant has
/// types of its own (nothing tells intake that it has none without reading). The enabled list is
/// read once though it was never read before:
/// creating a subscription drops it, so intake plans with the new one at once. Concurrent misses
/// (a batch of ten) share one read, so "once" is exact.
///
/// Nothing is read back: the messages carry the (small) event and the delivery. Not counted: the
/// event source mapping's ReceiveMessage and DeleteMessage(Batch), played by this test. Update this
/// table and the function together, deliberately.
///
/// The statistics writes depend on how the deliveries fell into batches, which `drain` reports
/// (`stats_writes`): one per subscription whose counts a flush carried, a flush after each batch
/// that is not full (and after 10 s of full ones, which these runs never reach).
fn todays_calls(events: u64, fanout: u64, stats_writes: u64) -> BTreeMap<String, u64> {
    assert!(events <= 10, "the formulas hold for one fan-out batch");
    let deliveries = events * fanout;
    expected(&[
        ("DynamoDB.GetItem", fanout),
        ("DynamoDB.PutItem", events + deliveries),
        ("DynamoDB.Query", 2),
        ("DynamoDB.UpdateItem", fanout + stats_writes),
        (
            "SQS.SendMessageBatch",
            if fanout <= 10 {
                events
            } else {
                events + deliveries.div_ceil(10)
            },
        ),
    ])
}

#[tokio::test]
async fn the_calls_per_event_and_per_delivery_are_pinned() {
    // Two shapes, so that a call per event, per batch and per delivery cannot hide behind each
    // other; the first sends the first attempts of four events in one SendMessageBatch, the second
    // fills more than one.
    // Write units: one per delivery item (the delivery with its first attempt, under 1 KB), and
    // one per event item of ~900 B of random words plus its plan: with twelve subscriptions
    // planned (twelve ids) the event item passes 1 KB and bills two. Plus one per subscription:
    // its first success of the hour, on its own item (under 1 KB). Plus one per statistics write
    // (an item of a few counts, under 1 KB).
    for (events, fanout, write_units) in [(4u64, 1u64, 4 + 4 + 1), (2, 12, 2 * 2 + 24 + 12)] {
        let (measured, stats_writes) = measure(events as usize, fanout as usize).await;
        if fanout == 1 {
            // The four deliveries came in one batch: one statistics write for them all.
            assert_eq!(stats_writes, 1, "not one statistics write per delivery");
        }
        let write_units = write_units + stats_writes;
        eprintln!(
            "{events} events x {fanout} subscriptions: {:?}; statistics writes {stats_writes}; write units {}, read units {}, SQS requests {}",
            by_operation(&measured),
            measured.dynamodb_write_units,
            measured.dynamodb_read_units,
            measured.sqs_requests
        );
        assert_eq!(
            by_operation(&measured),
            todays_calls(events, fanout, stats_writes),
            "{events} events x {fanout} subscriptions: the AWS calls per event or per delivery \
             changed; if that is intended, update `todays_calls` and its table"
        );
        assert_eq!(
            measured.sqs_empty_receives, 0,
            "Herald itself never polls here"
        );
        assert_eq!(
            measured.dynamodb_write_units, write_units,
            "{events} events x {fanout} subscriptions: an item changed size class"
        );
    }
}

/// A payload filter decides in intake's plan: an event it refuses is stored (one PutItem, for the
/// event log) and costs nothing else, no queue message and no delivery item. Three refused events
/// and one that passes, to one filtered subscription, make the calls of one event delivered once
/// plus one PutItem per refused event.
#[tokio::test]
async fn an_event_a_filter_refuses_costs_its_put_and_no_message() {
    let (state, esm) = deploy().await;
    let meter = state.meter.clone().expect("the meter is on");
    let (url, received) = start_receiver().await;
    post(
        herald_app::api::management_router(state.app.clone()),
        "/v1/subscriptions",
        serde_json::json!({"platform": "custom", "url": url, "events": ["order.*"],
            "filter": {"path": "data.region", "eq": "eu"}}),
    )
    .await;

    let before = meter.snapshot();
    for region in ["us", "apac", "us", "eu"] {
        post(
            herald_app::api::intake_router(state.app.clone()),
            "/v1/events",
            serde_json::json!({"type": "order.paid", "data": {"region": region}}),
        )
        .await;
    }
    let stats_writes = drain(&state, &esm, QueueName::Deliveries, 1).await;
    let measured = meter.snapshot().since(&before);

    assert_eq!(received.load(std::sync::atomic::Ordering::Relaxed), 1);
    for queue in [
        &state.config.events_queue_url,
        &state.config.deliveries_queue_url,
    ] {
        let left = esm
            .receive_message()
            .queue_url(queue)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        assert!(left.messages.unwrap_or_default().is_empty(), "{queue}");
    }
    let mut calls = todays_calls(1, 1, stats_writes);
    *calls.get_mut("DynamoDB.PutItem").unwrap() += 3;
    assert_eq!(by_operation(&measured), calls, "refused events cost more");
}

/// A type with a JSON Schema costs nothing per event: intake checks `data` against the schema
/// compiled when the catalog was read (once per window, counted in `todays_calls`). Four valid
/// events of the type make today's calls of four events; two that break the schema are answered
/// 422 and cost no call at all.
#[tokio::test]
async fn events_of_a_type_with_a_schema_cost_what_other_events_cost() {
    let (state, esm) = deploy().await;
    let meter = state.meter.clone().expect("the meter is on");
    let (url, received) = start_receiver().await;
    let api = || herald_app::api::management_router(state.app.clone());
    post(
        api(),
        "/v1/subscriptions",
        serde_json::json!({"platform": "custom", "url": url, "events": ["order.*"]}),
    )
    .await;
    post(
        api(),
        "/v1/event-types",
        serde_json::json!({"name": "order.paid", "schema": {"type": "object",
            "required": ["order"], "properties": {"order": {"type": "integer"}}}}),
    )
    .await;

    let before = meter.snapshot();
    for order in [
        serde_json::json!(1),
        serde_json::json!("two"),
        serde_json::json!(3),
    ] {
        let body = serde_json::json!({"type": "order.paid", "data": {"order": order}});
        let (status, _) = send(
            herald_app::api::intake_router(state.app.clone()),
            "/v1/events",
            body,
        )
        .await;
        let want = if order.is_string() { 422 } else { 202 };
        assert_eq!(status.as_u16(), want);
    }
    for order in [4, 5] {
        post(
            herald_app::api::intake_router(state.app.clone()),
            "/v1/events",
            serde_json::json!({"type": "order.paid", "data": {"order": order}}),
        )
        .await;
    }
    let (status, _) = send(
        herald_app::api::intake_router(state.app.clone()),
        "/v1/events",
        serde_json::json!({"type": "order.paid", "data": {}}),
    )
    .await;
    assert_eq!(status.as_u16(), 422);
    let stats_writes = drain(&state, &esm, QueueName::Deliveries, 4).await;
    let measured = meter.snapshot().since(&before);

    assert_eq!(received.load(std::sync::atomic::Ordering::Relaxed), 4);
    assert_eq!(
        by_operation(&measured),
        todays_calls(4, 1, stats_writes),
        "a schema costs a call per event, or a refused event costs calls"
    );
}
