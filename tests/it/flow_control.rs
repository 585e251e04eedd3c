//! Rate limits that hold: a subscription limited to 5 requests a second gets 200 events at that
//! pace and no faster, in any one-second window, on `herald dev` and on DynamoDB and SQS with two
//! delivery workers drawing from one schedule. Nothing is dropped, and waiting is not an attempt.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use herald::dev::{self, DevBackend, DevConfig};
use herald::ops;
use serde_json::{json, Value};

use crate::helpers::{fast_retries, spawn_app, Api, Received, TestReceiver};
use herald_contract::moto::{moto, unique};

const EVENTS: usize = 200;
const RATE: u64 = 5;
/// 200 events at 5 a second take 40 s; this leaves room for a slow machine.
const PATIENCE: Duration = Duration::from_secs(150);

/// The most of `times` within any one second.
fn busiest_second<T: Ord + Copy>(mut times: Vec<T>, second: impl Fn(T, T) -> bool) -> usize {
    times.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        // `second(a, b)`: b is a second or more after a.
        while second(times[start], times[end]) {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

/// When each attempt to `sub_id` started, from its delivery log; every delivery listed must have
/// succeeded on its first attempt (waiting for a slot is not an attempt).
/// A message the queue hands out twice (at-least-once) is attempted twice under one attempt
/// number; the first start of each (delivery, number) is the one its slot was reserved for.
async fn attempt_starts(api: &Api, sub_id: &str) -> (Vec<jiff::Timestamp>, usize) {
    let mut first = std::collections::BTreeMap::new();
    let mut repeated = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/subscriptions/{sub_id}/deliveries?limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.get(&path).await.expect(200);
        for d in page["data"].as_array().unwrap() {
            if d["status"] != "succeeded" {
                continue;
            }
            assert_eq!(d["attempts"], 1, "{d}");
            let full = api.delivery(d["id"].as_str().unwrap()).await;
            for a in full["attempts_log"].as_array().unwrap() {
                let at: jiff::Timestamp = a["started_at"].as_str().unwrap().parse().unwrap();
                let key = (d["id"].as_str().unwrap().to_owned(), a["number"].as_u64());
                match first.get(&key) {
                    Some(earlier) if *earlier <= at => repeated += 1,
                    _ => {
                        if first.insert(key, at).is_some() {
                            repeated += 1;
                        }
                    }
                }
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (first.into_values().collect(), repeated),
        }
    }
}

/// Sends the events in two batches of 100 and checks how they arrive.
async fn two_hundred_at_five_a_second(api: &Api, receiver: &TestReceiver) {
    let sub = api
        .create_subscription(json!({
            "platform": "custom", "url": receiver.url(), "events": ["document.*"],
            "rate_limit_per_sec": RATE,
        }))
        .await;
    let started = Instant::now();
    let mut accepted = BTreeSet::new();
    for batch in 0..2 {
        let events: Vec<Value> = (0..EVENTS / 2)
            .map(|n| json!({"type": "document.published", "data": {"batch": batch, "n": n}}))
            .collect();
        let answer = api
            .post("/v1/events/batch", json!({ "events": events }))
            .await
            .expect(200);
        for item in answer["data"].as_array().unwrap() {
            assert_eq!(item["status"], "accepted", "{item}");
            accepted.insert(item["id"].as_str().unwrap().to_owned());
        }
    }

    // Every event arrives (at least once: a queue may hand a message out twice).
    let ids = |requests: &[Received]| -> BTreeSet<String> {
        requests.iter().map(|r| r.webhook_id().to_owned()).collect()
    };
    let requests = receiver
        .try_wait_until(PATIENCE, |requests| ids(requests) == accepted)
        .await
        .unwrap_or_else(|got| panic!("{} of {EVENTS} events arrived", ids(&got).len()));
    let took = started.elapsed();

    // When Herald sent each request: every attempt's start, from the delivery log. These are what
    // the limit governs. (A repeat of a message the queue handed out twice is counted apart:
    // moto's ReceiveMessage can hand one message to two workers at once.)
    let sub_id = sub["id"].as_str().unwrap();
    let (mut starts, mut repeated) = attempt_starts(api, sub_id).await;
    for _ in 0..100 {
        // The last attempts are recorded just after their answers arrived.
        if starts.len() >= EVENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        (starts, repeated) = attempt_starts(api, sub_id).await;
    }
    assert!(starts.len() >= EVENTS, "{} attempts logged", starts.len());
    let sent = busiest_second(starts, |a, b| {
        b.duration_since(a) >= jiff::SignedDuration::from_secs(1)
    });
    // ... and what the receiver saw, which adds this machine's scheduling between sending and
    // arriving (a loaded 2-core runner can bunch two requests by a few hundred milliseconds).
    let mut seen = BTreeSet::new();
    let arrivals: Vec<Instant> = requests
        .iter()
        .filter(|r| seen.insert(r.webhook_id().to_owned()))
        .map(|r| r.arrived_at)
        .collect();
    let arrived = busiest_second(arrivals, |a, b| b - a >= Duration::from_secs(1));
    eprintln!(
        "{EVENTS} events at {RATE}/s: {took:?}, {} requests ({repeated} repeated by the queue), busiest second: {sent} sent, {arrived} arrived",
        requests.len()
    );
    assert!(
        sent <= 6,
        "Herald started {sent} requests within one second at a limit of {RATE}/s"
    );
    assert!(
        arrived <= 8,
        "{arrived} requests arrived within one second at a limit of {RATE}/s"
    );
    // 200 slots 200 ms apart: the last is 39.8 s after the first.
    assert!(took >= Duration::from_millis(39_000), "took only {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_of_five_a_second_holds_for_200_events_on_herald_dev() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    two_hundred_at_five_a_second(&app, &receiver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_of_five_a_second_holds_across_two_workers_on_dynamodb_and_sqs() {
    // Two `herald dev` processes' worth of workers on one table and one pair of queues: each
    // receives deliveries, both draw slots from the table.
    let sdk = herald_aws::emulator_sdk_config(moto().endpoint());
    let made = ops::aws_init(&sdk, &unique("rate"), &unique("rate"))
        .await
        .unwrap();
    let mut running = Vec::new();
    let mut folders = Vec::new();
    for _ in 0..2 {
        let data = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut config = DevConfig::new(addr, data.path().to_path_buf());
        config.backend = DevBackend::aws(sdk.clone(), made.aws_config().unwrap());
        config.retry = fast_retries();
        config.attempt_timeout = Duration::from_secs(5);
        running.push(dev::start(config).await.expect("herald dev starts on AWS"));
        folders.push(data);
    }
    let api = Api::new(running[0].url(), running[0].api_key.clone());
    let receiver = TestReceiver::start().await;
    two_hundred_at_five_a_second(&api, &receiver).await;
    for r in running {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn teams_answers_202_and_the_log_says_accepted_and_retired_connector_urls_are_refused() {
    let app = spawn_app().await;
    // A retired Office 365 connector URL is refused at create, pointing to Workflows.
    let refused = app
        .post(
            "/v1/subscriptions",
            json!({"platform": "teams", "events": ["*"],
                   "url": "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/x/y"}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.error_field(), Some("url"));
    assert!(
        refused.error_message().contains("Workflows"),
        "{}",
        refused.text
    );

    // Teams Workflows accept a message with 202: delivered as far as Herald can know, and shown
    // as accepted.
    let teams = TestReceiver::start_with(crate::helpers::Reply::status(202)).await;
    let sub = app
        .create_subscription(
            json!({"platform": "teams", "url": teams.url(), "events": ["document.*"]}),
        )
        .await;
    let event = app
        .send_event(json!({"type": "document.published", "data": {"title": "Handbook"}}))
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    let delivery = app
        .wait_for_status(sub_id, event["id"].as_str().unwrap(), "succeeded")
        .await;
    let full = app.delivery(delivery["id"].as_str().unwrap()).await;
    let attempt = &full["attempts_log"][0];
    assert_eq!(
        (attempt["status_code"].as_u64(), attempt["result"].as_str()),
        (Some(202), Some("accepted")),
        "{full}"
    );
}
