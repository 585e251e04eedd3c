//! Delivery health per subscription (`GET /v1/subscriptions/{id}/stats`): what a real receiver's
//! answers add up to, hour by hour, over a day or a week; kept across a restart; bad input refused.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, spawn_app_in, Reply, TestApp, TestReceiver, WAIT};

/// The stats once their totals have `attempts` (counts reach the store within about a second).
async fn stats_with_attempts(app: &TestApp, path: &str, attempts: u64) -> Value {
    eventually(&format!("{attempts} attempts in {path}"), || async {
        let stats = app.get(path).await.expect(200);
        (stats["totals"]["attempts"] == attempts).then_some(stats)
    })
    .await
}

fn time(v: &Value) -> Timestamp {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stats_count_what_the_receiver_answered_hour_by_hour() {
    // Arrange: a receiver that accepts at first.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let sub = app.subscribe(&receiver, &["document.*"]).await;
    let id = sub["id"].as_str().unwrap();
    let send = |n: u32| {
        let app = &app;
        async move {
            let event = app
                .send_event(json!({"type": "document.created", "data": {"n": n}}))
                .await;
            event["id"].as_str().unwrap().to_owned()
        }
    };

    // Act: two deliveries succeed at once; one fails once and then succeeds; one fails on every
    // try (200, 400, 800 ms schedule: four requests), slowly.
    for n in 0..2 {
        let event = send(n).await;
        app.wait_for_status(id, &event, "succeeded").await;
    }
    receiver.script([Reply::status(503)]);
    let event = send(2).await;
    app.wait_for_status(id, &event, "succeeded").await;
    receiver.set_default(Reply::status(500).after(Duration::from_millis(250)));
    let event = send(3).await;
    app.wait_for_status(id, &event, "failed").await;
    receiver.wait_for(8, WAIT).await;

    // Assert: 8 requests; 3 succeeded, 1 failed, 1 + 3 retries.
    let path = format!("/v1/subscriptions/{id}/stats");
    let stats = stats_with_attempts(&app, &path, 8).await;
    assert_eq!(stats["subscription_id"], id);
    assert_eq!(stats["window"], "24h");
    assert_eq!(stats["bucket_seconds"], 3600);
    assert_eq!(
        stats["totals"],
        json!({"succeeded": 3, "failed": 1, "retrying": 4, "attempts": 8, "success_rate": 0.75}),
        "{stats}"
    );
    let (p50, p95) = (
        stats["latency_ms"]["p50"].as_u64().unwrap(),
        stats["latency_ms"]["p95"].as_u64().unwrap(),
    );
    assert!(
        p95 >= 250,
        "the slowest attempts took 250 ms or more: {stats}"
    );
    assert!(p50 <= p95, "{stats}");

    // 24 hourly buckets, oldest first, ending with the current hour; together they are the totals.
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24);
    let (from, to) = (time(&stats["from"]), time(&stats["to"]));
    assert_eq!(from.as_second() % 3600, 0);
    assert_eq!(to.as_second() - from.as_second(), 24 * 3600);
    assert!(from < Timestamp::now() && Timestamp::now() < to);
    assert_eq!(time(&buckets[0]["start"]), from);
    for (i, b) in buckets.iter().enumerate() {
        assert_eq!(
            time(&b["start"]).as_second(),
            from.as_second() + 3600 * i as i64
        );
    }
    for field in ["succeeded", "failed", "retrying", "attempts"] {
        let sum: u64 = buckets.iter().map(|b| b[field].as_u64().unwrap()).sum();
        assert_eq!(sum, stats["totals"][field].as_u64().unwrap(), "{field}");
    }

    // A week: 168 buckets, the same totals.
    let week = app.get(&format!("{path}?window=7d")).await.expect(200);
    assert_eq!(week["window"], "7d");
    assert_eq!(week["buckets"].as_array().unwrap().len(), 168);
    assert_eq!(week["totals"], stats["totals"]);
    assert_eq!(week["to"], stats["to"]);

    // The counts are in the store: a restart keeps them.
    let data = app.stop().await;
    let app = spawn_app_in(data, |_| {}).await;
    let again = app.get(&path).await.expect(200);
    assert_eq!(again["totals"], stats["totals"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_without_deliveries_has_zeros_and_no_rates() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let stats = app
        .get(&format!(
            "/v1/subscriptions/{}/stats?window=24h",
            sub["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(
        stats["totals"],
        json!({"succeeded": 0, "failed": 0, "retrying": 0, "attempts": 0, "success_rate": null})
    );
    assert_eq!(stats["latency_ms"], json!({"p50": null, "p95": null}));
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24);
    assert!(buckets
        .iter()
        .all(|b| b["attempts"] == 0 && b["succeeded"] == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_window_is_refused_and_other_tenants_subscriptions_are_not_found() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let path = format!("/v1/subscriptions/{}/stats", sub["id"].as_str().unwrap());
    for bad in ["30d", "", "1h", "24H"] {
        let answer = app.get(&format!("{path}?window={bad}")).await;
        assert_eq!(answer.status, 422, "{bad}");
        assert_eq!(answer.error_field(), Some("window"), "{bad}");
    }
    let other = app.other_tenant().await;
    assert_eq!(other.get(&path).await.status, 404);
    let unknown = app
        .get("/v1/subscriptions/sub_01JEXAMPLE0000000000000000/stats")
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(app.get("/v1/subscriptions/nope/stats").await.status, 404);
}
