//! Retention on `herald dev`'s embedded store, over HTTP: a delivered event goes with its delivery
//! log once the retention has passed, while a delivery still retrying stays; the API answers 404
//! for what went, never 500.

use std::time::Duration;

use herald_core::retention::Retention;
use herald_core::retry::RetryPolicy;
use serde_json::json;

use crate::helpers::{eventually, spawn_app_with, Reply, TestReceiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivered_event_goes_after_the_retention_and_a_retrying_one_stays() {
    // Arrange: a 2 s retention (the sweeper then runs every second), and a retry a minute away.
    let app = spawn_app_with(|c| {
        c.retention = Retention::new(Duration::from_secs(2)).unwrap();
        c.retry = RetryPolicy {
            schedule: vec![Duration::from_secs(60)],
            jitter: 0.0,
            ..RetryPolicy::default()
        };
    })
    .await;
    let ok = TestReceiver::start().await;
    let failing = TestReceiver::start_with(Reply::status(500)).await;
    let ok_sub = app.subscribe(&ok, &["document.*"]).await;
    let failing_sub = app.subscribe(&failing, &["article.*"]).await;
    let (ok_sub, failing_sub) = (
        ok_sub["id"].as_str().unwrap(),
        failing_sub["id"].as_str().unwrap(),
    );
    let delivered = app
        .send_event(json!({"type": "document.created", "data": {"id": "doc_1"}}))
        .await;
    let delivered = delivered["id"].as_str().unwrap();
    let retrying = app
        .send_event(json!({"type": "article.created", "data": {"id": "art_1"}}))
        .await;
    let retrying = retrying["id"].as_str().unwrap();
    let done = app.wait_for_status(ok_sub, delivered, "succeeded").await;
    let done_id = done["id"].as_str().unwrap().to_owned();
    app.wait_for_status(failing_sub, retrying, "retrying").await;

    // Act: wait out the retention.
    eventually("the delivered event to expire", || async {
        (app.get(&format!("/v1/events/{delivered}")).await.status == 404).then_some(())
    })
    .await;

    // Assert: the delivery went with its event; the log lists nothing for it, and nothing fails.
    let gone = app.get(&format!("/v1/deliveries/{done_id}")).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert!(app.deliveries_of(ok_sub).await.is_empty());
    // The retrying delivery and its event stay, however old.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kept = app.get(&format!("/v1/events/{retrying}")).await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    let log = app.deliveries_of(failing_sub).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["status"], "retrying");
    // The event list holds only what is left.
    let listed = app.get("/v1/events").await.expect(200);
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, vec![retrying]);
}
