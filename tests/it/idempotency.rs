//! Intake idempotency: a client that retries (same `Idempotency-Key`, or the same `id` in the body)
//! gets the first answer and the event goes out once; reusing a key for a different body is a 409.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, ApiResponse, Reply, TestApp, TestReceiver, QUIET, WAIT};

async fn send_with_key(app: &TestApp, key: &str, body: &Value) -> ApiResponse {
    app.send(
        app.request(Method::POST, "/v1/events")
            .header("idempotency-key", key)
            .json(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_idempotency_key_twice_gives_the_same_answer_and_one_delivery() {
    // Arrange
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.subscribe(&receiver, &["*"]).await;
    let body = json!({"type": "document.created", "data": {"id": "doc_1", "title": "Hello"}});

    // Act: the client sends, then retries with the same key (the second body formatted differently).
    let first = send_with_key(&app, "create-doc-1", &body).await.expect(202);
    let again = app
        .send(
            app.request(Method::POST, "/v1/events")
                .header("idempotency-key", "create-doc-1")
                .header("content-type", "application/json")
                .body(
                    r#"{ "data": {"title": "Hello", "id": "doc_1"}, "type": "document.created" }"#,
                ),
        )
        .await
        .expect(202);

    // Assert: the same answer, one event, one request at the receiver.
    assert_eq!(first, again);
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.webhook_id(), first["id"].as_str().unwrap());
    receiver.assert_no_more(QUIET).await;
    assert_eq!(
        app.state().metrics.events_accepted.load(Ordering::Relaxed),
        1
    );

    // Act: the same key with a different body.
    let changed = json!({"type": "document.created", "data": {"id": "doc_2"}});
    let conflict = send_with_key(&app, "create-doc-1", &changed).await;

    // Assert: 409 conflict, and still nothing new.
    assert_eq!(conflict.status, 409, "{}", conflict.text);
    assert_eq!(conflict.error_code(), "conflict");
    assert!(!conflict.error_message().is_empty());
    receiver.assert_no_more(QUIET).await;
    assert_eq!(
        app.state().metrics.events_accepted.load(Ordering::Relaxed),
        1
    );

    // A different key is a different event.
    let other = send_with_key(&app, "create-doc-2", &changed)
        .await
        .expect(202);
    assert_ne!(other["id"], first["id"]);
    receiver.wait_for(2, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_event_id_in_the_body_dedupes_like_an_idempotency_key() {
    // Arrange
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.subscribe(&receiver, &["*"]).await;
    let body = json!({"id": "cms-42", "type": "article.published", "data": {"title": "Hi"}});

    // Act
    let first = app.send_event(body.clone()).await;
    let again = app.send_event(body).await;

    // Assert
    assert_eq!(first, again);
    assert!(first["id"].as_str().unwrap().starts_with("evt_"), "{first}");
    receiver.wait_for(1, WAIT).await;
    receiver.assert_no_more(QUIET).await;

    // The same id with different data is a conflict.
    let changed = app
        .post(
            "/v1/events",
            json!({"id": "cms-42", "type": "article.published", "data": {"title": "Changed"}}),
        )
        .await;
    assert_eq!(changed.status, 409, "{}", changed.text);
    assert_eq!(changed.error_code(), "conflict");
    receiver.assert_no_more(QUIET).await;
    assert_eq!(
        app.state().metrics.events_accepted.load(Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_retry_while_the_first_delivery_is_in_flight_still_delivers_once() {
    // Arrange: the receiver takes 2 s to answer the first request (well within the 5 s timeout).
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Reply::ok().after(Duration::from_secs(2))]);
    let sub = app.subscribe(&receiver, &["*"]).await;
    let body = json!({"type": "document.published", "data": {"id": "doc_7"}});

    // Act: the first delivery is on the wire when the client retries its request.
    let first = send_with_key(&app, "publish-doc-7", &body)
        .await
        .expect(202);
    receiver.wait_for(1, WAIT).await;
    let again = send_with_key(&app, "publish-doc-7", &body)
        .await
        .expect(202);
    assert_eq!(first, again);

    // Assert: one request, one attempt.
    let event_id = first["id"].as_str().unwrap();
    let delivery = app
        .wait_for_status(sub["id"].as_str().unwrap(), event_id, "succeeded")
        .await;
    receiver.assert_no_more(QUIET).await;
    let full = app.delivery(delivery["id"].as_str().unwrap()).await;
    assert_eq!(
        full["attempts_log"].as_array().unwrap().len(),
        1,
        "one attempt: {full:#}"
    );
}
