//! The failure lifecycle end to end: a dead endpoint trips its breaker, is warned about and
//! disabled, and its owner hears each step once, on a custom receiver and in a Slack-shaped
//! channel; meanwhile a healthy subscription of the same tenant is not held up. An endpoint that
//! comes back closes the breaker, the deliveries that waited go out without using their retries,
//! and the owner hears it recovered. Enabling again is one call, with recovery.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use herald_core::health::LifecyclePolicy;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app_with, Received, Reply, TestReceiver, WAIT};

/// Breaker at 3 failures with a 1 s cool-down (up to 2 s); disabled after 8 s without success
/// (so that failures, at least every 2.4 s, fall between half and nine tenths of the span).
fn quick_lifecycle() -> LifecyclePolicy {
    LifecyclePolicy {
        disable_after: Duration::from_secs(8),
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_secs(1),
        breaker_max_cooldown: Duration::from_secs(2),
    }
}

/// (type, warning or reason) of each operational event a receiver got, counted.
fn notices(requests: &[Received]) -> BTreeMap<(String, String), usize> {
    let mut seen = BTreeMap::new();
    for r in requests {
        let body = r.json();
        let detail = body["data"]["warning"]
            .as_str()
            .or(body["data"]["reason"].as_str())
            .unwrap_or("")
            .to_owned();
        *seen.entry((r.event_type(), detail)).or_insert(0) += 1;
    }
    seen
}

fn key(kind: &str, detail: &str) -> (String, String) {
    (kind.to_owned(), detail.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_endpoint_is_paused_then_disabled_and_its_owner_hears_each_step_once() {
    // Arrange: a dead endpoint and a healthy one for documents; a custom receiver and a Slack
    // channel for Herald's own events.
    let app = spawn_app_with(|c| c.lifecycle = quick_lifecycle()).await;
    let dead = TestReceiver::start_with(Reply::status(503)).await;
    let healthy = TestReceiver::start().await;
    let ops = TestReceiver::start().await;
    let slack = TestReceiver::start().await;
    let dead_sub = app
        .create_subscription(json!({
            "name": "Docs mirror", "platform": "custom", "url": dead.url(), "events": ["document.*"],
        }))
        .await;
    app.subscribe(&healthy, &["document.*"]).await;
    app.subscribe(&ops, &["herald.*"]).await;
    app.create_subscription(json!({
        "platform": "slack", "url": slack.url_for("/services/T1/B2/x"), "events": ["herald.subscription.*"],
    }))
    .await;
    let dead_id = dead_sub["id"].as_str().unwrap();
    let dead_path = format!("/v1/subscriptions/{dead_id}");

    // Act: an event every 300 ms until the dead subscription is disabled (bounded).
    let mut sent = Vec::new();
    let started = Instant::now();
    for n in 0..60 {
        let accepted = app
            .send_event(json!({"type": "document.published", "data": {"n": n}}))
            .await;
        sent.push((accepted["id"].as_str().unwrap().to_owned(), Instant::now()));
        let view = app.get(&dead_path).await.expect(200);
        if view["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let view = app.get(&dead_path).await.expect(200);
    assert_eq!(
        view["enabled"],
        false,
        "disabled within {:?}: {view}",
        started.elapsed()
    );
    assert_eq!(
        view["disabled_reason"],
        "no successful delivery for 8 seconds"
    );
    assert!(
        view["health"]["consecutive_failures"].as_u64().unwrap() >= 3,
        "{view}"
    );

    // Assert: the breaker held the dead endpoint to its probes: after the third failure, no
    // two requests closer than the cool-down (with room for timer granularity), but for one
    // request that may have been on its way as the breaker opened.
    let hits: Vec<Instant> = dead.requests().iter().map(|r| r.arrived_at).collect();
    let gaps: Vec<Duration> = hits.windows(2).skip(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().filter(|g| **g < Duration::from_millis(900)).count() <= 1,
        "requests to a dead endpoint after its breaker opened came closer than the cool-down: {gaps:?} ({} requests for {} events)",
        hits.len(),
        sent.len()
    );
    assert!(
        hits.len() < sent.len(),
        "{} requests for {} events",
        hits.len(),
        sent.len()
    );

    // ... the healthy subscription got every event at once, each on its first attempt.
    let got = healthy.wait_for(sent.len(), WAIT).await;
    for (id, at) in &sent {
        let r = got.iter().find(|r| r.webhook_id() == id).unwrap();
        let lag = r.arrived_at.saturating_duration_since(*at);
        assert!(lag < Duration::from_secs(1), "{id} took {lag:?}");
    }

    // ... and the owner heard each step exactly once: failing (breaker), failing (half the
    // span), disabled; never about the ops subscriptions themselves.
    let told = eventually("the disabled notice reaches the ops receiver", || async {
        let requests = ops.requests();
        notices(&requests)
            .contains_key(&key("herald.subscription.disabled", "failing"))
            .then_some(requests)
    })
    .await;
    let counted = notices(&told);
    assert_eq!(
        counted.get(&key("herald.subscription.failing", "breaker_opened")),
        Some(&1),
        "{counted:?}"
    );
    assert_eq!(
        counted.get(&key("herald.subscription.failing", "half_span")),
        Some(&1),
        "{counted:?}"
    );
    assert_eq!(
        counted.get(&key("herald.subscription.disabled", "failing")),
        Some(&1),
        "{counted:?}"
    );
    assert!(counted.values().all(|n| *n == 1), "{counted:?}");
    for r in &told {
        assert_eq!(
            r.json()["data"]["subscription"]["id"],
            dead_id,
            "{}",
            r.json()
        );
    }
    let disabled = told
        .iter()
        .find(|r| r.event_type() == "herald.subscription.disabled")
        .unwrap()
        .json();
    assert_eq!(disabled["data"]["subscription"]["name"], "Docs mirror");
    assert!(
        !disabled.to_string().contains(&dead.url()),
        "no callback URL in a notice"
    );

    // ... and the Slack channel got readable messages naming the webhook and what to do.
    let posts = eventually("the Slack channel gets the disabled message", || async {
        let posts = slack.requests();
        posts
            .iter()
            .any(|p| {
                p.json()["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("was disabled")
            })
            .then_some(posts)
    })
    .await;
    let message = posts
        .iter()
        .map(Received::json)
        .find(|p| p["text"].as_str().unwrap().contains("was disabled"))
        .unwrap();
    let section = message["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains("Webhook “Docs mirror” was disabled"),
        "{section}"
    );
    assert!(section.contains("enable it"), "{section}");

    // Enabling again is one call; with recover, what failed while down is queued again, and
    // what was still waiting goes out: every event reaches the endpoint in the end.
    dead.set_default(Reply::ok());
    let enabled = app
        .post(&format!("{dead_path}/enable"), json!({"recover": true}))
        .await
        .expect(200);
    assert_eq!(enabled["subscription"]["enabled"], true);
    assert_eq!(enabled["subscription"]["health"]["state"], "healthy");
    assert!(enabled["recover"]["recovered"].is_u64(), "{enabled}");
    // (An event accepted after it was disabled was never planned for it.)
    let mut planned = Vec::new();
    for (id, _) in &sent {
        let event = app.get(&format!("/v1/events/{id}")).await.expect(200);
        let deliveries = event["deliveries"].as_array().unwrap();
        if deliveries.iter().any(|d| d["subscription_id"] == dead_id) {
            planned.push(id.clone());
        }
    }
    assert!(
        planned.len() + 1 >= sent.len(),
        "{} of {}",
        planned.len(),
        sent.len()
    );
    let all = dead
        .try_wait_until(WAIT, |requests| {
            planned.iter().all(|id| {
                requests
                    .iter()
                    .any(|r| r.answered == 200 && r.webhook_id() == id)
            })
        })
        .await;
    if let Err(requests) = all {
        let mut missing = Vec::new();
        for id in &planned {
            if !requests
                .iter()
                .any(|r| r.answered == 200 && r.webhook_id() == id)
            {
                missing.push(app.get(&format!("/v1/events/{id}")).await.body);
            }
        }
        panic!("after enable with recover, these never arrived: {missing:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_that_comes_back_closes_the_breaker_and_the_waiting_deliveries_keep_their_retries(
) {
    let app = spawn_app_with(|c| {
        c.lifecycle = LifecyclePolicy {
            disable_after: Duration::from_secs(3600),
            ..quick_lifecycle()
        }
    })
    .await;
    let flaky = TestReceiver::start_with(Reply::status(500)).await;
    let ops = TestReceiver::start().await;
    let sub = app.subscribe(&flaky, &["document.*"]).await;
    app.subscribe(&ops, &["herald.subscription.*"]).await;
    let path = format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap());

    // Three failures open the breaker.
    for n in 0..3 {
        app.send_event(json!({"type": "document.created", "data": {"n": n}}))
            .await;
    }
    eventually("the breaker opens", || async {
        let view = app.get(&path).await.expect(200);
        (view["health"]["state"] == "paused").then_some(view)
    })
    .await;
    // These wait for the breaker, then the endpoint is back.
    let mut waiting = Vec::new();
    for n in 0..3 {
        let accepted = app
            .send_event(json!({"type": "document.updated", "data": {"n": n}}))
            .await;
        waiting.push(accepted["id"].as_str().unwrap().to_owned());
    }
    flaky.set_default(Reply::ok());

    // The probe succeeds, the waiting deliveries go out, each on its first attempt.
    for id in &waiting {
        let event = eventually("a waiting delivery is made", || async {
            let event = app.get(&format!("/v1/events/{id}")).await.expect(200);
            (event["deliveries"][0]["status"] == "succeeded").then_some(event)
        })
        .await;
        assert_eq!(event["deliveries"][0]["attempts"], 1, "{event}");
    }
    let view = app.get(&path).await.expect(200);
    assert_eq!(view["health"]["state"], "healthy", "{view}");
    assert!(view["health"]["last_success_at"].is_string(), "{view}");

    // The owner was told it was failing (the breaker) and that it recovered, once each.
    let told = eventually("the recovered notice arrives", || async {
        let requests = ops.requests();
        requests
            .iter()
            .any(|r| r.event_type() == "herald.subscription.recovered")
            .then_some(requests)
    })
    .await;
    let kinds: Vec<String> = told.iter().map(Received::event_type).collect();
    assert_eq!(
        kinds,
        [
            "herald.subscription.failing",
            "herald.subscription.recovered"
        ],
        "{:?}",
        told.iter().map(Received::json).collect::<Vec<Value>>()
    );
}
