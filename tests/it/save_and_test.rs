//! "Save and test": `POST /v1/subscriptions/{id}/test` sends a `webhook.test` event now, waits for
//! the answer and reports it; the attempt shows in the delivery log and is never retried.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    assert_signed_with, free_port, spawn_app, spawn_app_with, Reply, TestReceiver, QUIET, WAIT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn save_and_test_reports_a_successful_delivery() {
    // Arrange: a subscription that does not even list webhook.test.
    let app = spawn_app().await;
    let receiver = TestReceiver::start_with(Reply::ok().body("hello from the receiver")).await;
    let sub = app.subscribe(&receiver, &["document.created"]).await;
    let sub_id = sub["id"].as_str().unwrap();

    // Act
    let report = app
        .send(app.request(Method::POST, &format!("/v1/subscriptions/{sub_id}/test")))
        .await
        .expect(200);

    // Assert: the report.
    assert_eq!(report["delivered"], true, "{report}");
    assert_eq!(report["status"], 200);
    assert!(report["latency_ms"].is_u64(), "{report}");
    assert_eq!(report["response_excerpt"], "hello from the receiver");
    assert_eq!(report["error"], json!(null));

    // ... the receiver got a signed webhook.test event, once.
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.event_type(), "webhook.test");
    assert_eq!(request.webhook_id(), report["event_id"].as_str().unwrap());
    assert_signed_with(&request, sub["secret"].as_str().unwrap());
    receiver.assert_no_more(QUIET).await;

    // ... and the test is in the delivery log.
    let log = app.deliveries_of(sub_id).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["id"], report["delivery_id"]);
    assert_eq!(log[0]["event_type"], "webhook.test");
    assert_eq!(log[0]["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn save_and_test_reports_a_failing_receiver_without_retrying() {
    // Arrange
    let app = spawn_app().await;
    let receiver = TestReceiver::start_with(Reply::status(500).body("boom")).await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();

    // Act
    let report = app
        .send(app.request(Method::POST, &format!("/v1/subscriptions/{sub_id}/test")))
        .await
        .expect(200);

    // Assert
    assert_eq!(report["delivered"], false, "{report}");
    assert_eq!(report["status"], 500);
    assert_eq!(report["response_excerpt"], "boom");
    assert!(
        report["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{report}"
    );
    assert!(report["latency_ms"].is_u64(), "{report}");
    assert_eq!(
        receiver.wait_for(1, WAIT).await[0].event_type(),
        "webhook.test"
    );
    receiver.assert_no_more(QUIET).await;
    let log = app.deliveries_of(sub_id).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn save_and_test_reports_an_unreachable_receiver() {
    // Arrange: nothing listens on the port.
    let app = spawn_app().await;
    let sub = app
        .create_subscription(json!({
            "platform": "custom",
            "url": format!("http://127.0.0.1:{}/hook", free_port()),
            "events": ["*"],
        }))
        .await;

    // Act
    let report = app
        .send(app.request(
            Method::POST,
            &format!("/v1/subscriptions/{}/test", sub["id"].as_str().unwrap()),
        ))
        .await
        .expect(200);

    // Assert
    assert_eq!(report["delivered"], false, "{report}");
    assert_eq!(report["status"], json!(null));
    assert!(
        report["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn save_and_test_against_a_410_disables_the_subscription() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start_with(Reply::status(410)).await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let path = format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap());

    let report = app
        .send(app.request(Method::POST, &format!("{path}/test")))
        .await
        .expect(200);

    assert_eq!(report["delivered"], false, "{report}");
    assert_eq!(report["status"], 410);
    let after = app.get(&path).await.expect(200);
    assert_eq!(after["enabled"], false, "{after}");
    assert!(
        after["disabled_reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{after}"
    );
}

/// `herald dev --loopback-only`, as the API fuzzer runs it: a callback URL off this machine is
/// never looked up nor sent to; a receiver on 127.0.0.1 still gets its delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loopback_only_sends_to_this_machine_and_nowhere_else() {
    let app = spawn_app_with(|config| config.loopback_only = true).await;
    let receiver = TestReceiver::start().await;
    let here = app.subscribe(&receiver, &["*"]).await;
    let away = app
        .create_subscription(json!({
            "platform": "custom",
            "url": "https://hooks.example.com/herald",
            "events": ["*"],
        }))
        .await;
    let test = |sub: &serde_json::Value| {
        let path = format!("/v1/subscriptions/{}/test", sub["id"].as_str().unwrap());
        app.send(app.request(Method::POST, &path))
    };

    let report = test(&away).await.expect(200);
    assert_eq!(report["delivered"], false, "{report}");
    assert_eq!(report["status"], json!(null));
    assert!(
        report["error"].as_str().unwrap().contains("loopback"),
        "{report}"
    );

    let report = test(&here).await.expect(200);
    assert_eq!(report["delivered"], true, "{report}");
    receiver.wait_for(1, WAIT).await;
}
