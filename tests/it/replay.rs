//! Going back over past deliveries: replay one (`POST /v1/deliveries/{id}/retry`), recover every
//! failed one since a time (`POST /v1/subscriptions/{id}/recover`), read an event with its
//! deliveries; and the public reads: the event catalog and the health check.

use herald_core::retry::RetryPolicy;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{fast_retries, spawn_app, spawn_app_with, Reply, TestReceiver, QUIET, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replaying_a_delivery_makes_a_new_attempt() {
    // Arrange: one delivered event.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let event = app
        .send_event(json!({"type": "document.created", "data": {"id": "doc_1"}}))
        .await;
    let event_id = event["id"].as_str().unwrap();
    let original = receiver.wait_for(1, WAIT).await.remove(0);
    let delivery = app.wait_for_status(sub_id, event_id, "succeeded").await;
    let delivery_id = delivery["id"].as_str().unwrap();

    // Act
    let replay = app
        .send(app.request(Method::POST, &format!("/v1/deliveries/{delivery_id}/retry")))
        .await;

    // Assert: accepted, sent again with the same message id and body, logged as attempt 2.
    assert_eq!(replay.status, 202, "{}", replay.text);
    assert_eq!(replay.body["id"], delivery_id);
    let again = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(again.webhook_id(), event_id);
    assert_eq!(again.body, original.body);
    let replayed = app
        .wait_for_delivery(sub_id, event_id, |d| {
            d["attempts"] == 2 && d["status"] == "succeeded"
        })
        .await;
    assert_eq!(replayed["last_status_code"], 200);
    let full = app.delivery(delivery_id).await;
    assert_eq!(
        full["attempts_log"].as_array().unwrap().len(),
        2,
        "{full:#}"
    );
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recover_requeues_the_failed_deliveries_since_a_time_and_nothing_else() {
    // Arrange: two events fail for good (400 on all four tries of the schedule), a third succeeds.
    let app = spawn_app().await;
    let receiver = TestReceiver::start_with(Reply::status(400)).await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    let mut failed = Vec::new();
    for n in 0..2 {
        let event = app
            .send_event(json!({"type": "document.updated", "data": {"n": n}}))
            .await;
        let id = event["id"].as_str().unwrap().to_owned();
        app.wait_for_status(sub_id, &id, "failed").await;
        failed.push(id);
    }
    receiver.wait_for(8, WAIT).await;
    receiver.set_default(Reply::ok());
    let succeeded = app
        .send_event(json!({"type": "document.updated", "data": {"n": 2}}))
        .await;
    let succeeded_id = succeeded["id"].as_str().unwrap();
    app.wait_for_status(sub_id, succeeded_id, "succeeded").await;
    receiver.wait_for(9, WAIT).await;

    // A time after everything recovers nothing; a bad time is refused.
    let recover_path = format!("/v1/subscriptions/{sub_id}/recover");
    let future = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)).to_string();
    let none = app
        .post(&recover_path, json!({"since": future}))
        .await
        .expect(202);
    assert_eq!(none["recovered"], 0);
    assert_eq!(none["next_cursor"], Value::Null, "{none}");
    let bad = app.post(&recover_path, json!({"since": "yesterday"})).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.error_field(), Some("since"));

    // Act
    let recovered = app
        .post(&recover_path, json!({"since": since.to_string()}))
        .await
        .expect(202);

    // Assert: the two failed deliveries go out again and succeed; the succeeded one does not.
    assert_eq!(recovered["recovered"], 2, "{recovered}");
    let resent: Vec<String> = receiver
        .wait_for(11, WAIT)
        .await
        .iter()
        .skip(9)
        .map(|r| r.webhook_id().to_owned())
        .collect();
    let mut resent_sorted = resent.clone();
    resent_sorted.sort();
    let mut failed_sorted = failed.clone();
    failed_sorted.sort();
    assert_eq!(resent_sorted, failed_sorted);
    for id in &failed {
        let d = app.wait_for_status(sub_id, id, "succeeded").await;
        assert_eq!(d["attempts"], 5, "{d}");
    }
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recover_works_in_bounded_steps_that_continue_from_a_cursor() {
    // Arrange: no retries, so a failed attempt fails its delivery at once; three deliveries fail.
    let app = spawn_app_with(|config| {
        config.retry = RetryPolicy {
            schedule: Vec::new(),
            ..fast_retries()
        }
    })
    .await;
    let receiver = TestReceiver::start_with(Reply::status(503)).await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let sub_path = format!("/v1/subscriptions/{sub_id}");
    let since = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60)).to_string();
    let mut failed = Vec::new();
    for n in 0..3 {
        // A delivery that runs out of tries may disable the subscription: enable it each time.
        app.patch(&sub_path, json!({"enabled": true}))
            .await
            .expect(200);
        let event = app
            .send_event(json!({"type": "document.updated", "data": {"n": n}}))
            .await;
        let id = event["id"].as_str().unwrap().to_owned();
        app.wait_for_status(sub_id, &id, "failed").await;
        failed.push(id);
    }
    app.patch(&sub_path, json!({"enabled": true}))
        .await
        .expect(200);
    receiver.wait_for(3, WAIT).await;
    receiver.set_default(Reply::ok());
    let recover_path = format!("{sub_path}/recover");

    // Act: recover two deliveries per request.
    let first = app
        .post(&recover_path, json!({"since": since, "limit": 2}))
        .await
        .expect(202);
    let cursor = first["next_cursor"].as_str().expect("a cursor to continue");
    let second = app
        .post(
            &recover_path,
            json!({"since": since, "limit": 2, "cursor": cursor}),
        )
        .await
        .expect(202);

    // Assert: two, then the last one and no cursor; each failed delivery goes out once more.
    assert_eq!(first["recovered"], 2, "{first}");
    assert_eq!(second["recovered"], 1, "{second}");
    assert_eq!(second["next_cursor"], Value::Null, "{second}");
    let mut resent: Vec<String> = receiver
        .wait_for(6, WAIT)
        .await
        .iter()
        .skip(3)
        .map(|r| r.webhook_id().to_owned())
        .collect();
    resent.sort();
    failed.sort();
    assert_eq!(resent, failed);
    for id in &failed {
        let d = app.wait_for_status(sub_id, id, "succeeded").await;
        assert_eq!(d["attempts"], 2, "{d}");
    }
    receiver.assert_no_more(QUIET).await;

    // A step larger than the maximum, or a cursor that is not one, is refused.
    let too_many = app
        .post(&recover_path, json!({"since": since, "limit": 1001}))
        .await;
    assert_eq!(too_many.status, 422, "{}", too_many.text);
    assert_eq!(too_many.error_field(), Some("limit"));
    let bad_cursor = app
        .post(&recover_path, json!({"since": since, "cursor": "garbage"}))
        .await;
    assert_eq!(bad_cursor.status, 400, "{}", bad_cursor.text);
    assert_eq!(bad_cursor.error_field(), Some("cursor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_shows_its_deliveries_per_subscription() {
    // Arrange: two subscriptions for the event, one not.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let a = app.subscribe(&receiver, &["comment.*"]).await;
    let b = app.subscribe(&receiver, &["*"]).await;
    app.subscribe(&receiver, &["book.created"]).await;

    // Act
    let event = app
        .send_event(json!({"type": "comment.created", "data": {"text": "Nice"}}))
        .await;
    let event_id = event["id"].as_str().unwrap();
    receiver.wait_for(2, WAIT).await;
    app.wait_for_status(a["id"].as_str().unwrap(), event_id, "succeeded")
        .await;
    app.wait_for_status(b["id"].as_str().unwrap(), event_id, "succeeded")
        .await;

    // Assert
    let read = app.get(&format!("/v1/events/{event_id}")).await.expect(200);
    assert_eq!(read["id"], event_id);
    assert_eq!(read["type"], "comment.created");
    assert_eq!(read["data"], json!({"text": "Nice"}));
    let mut subs: Vec<String> = read["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["status"], "succeeded", "{d}");
            d["subscription_id"].as_str().unwrap().to_owned()
        })
        .collect();
    subs.sort();
    let mut expected = vec![
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    ];
    expected.sort();
    assert_eq!(subs, expected);
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_event_catalog_lists_the_builtin_types_and_health_needs_no_key() {
    let app = spawn_app().await;

    let catalog = app.get("/v1/event-types").await.expect(200);
    let names: Vec<&str> = catalog["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for name in [
        "document.created",
        "article.published",
        "webhook.test",
        "herald.subscription.failing",
        "herald.subscription.disabled",
        "herald.subscription.recovered",
        "herald.delivery.exhausted",
        "herald.secret.rotated",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }

    let health = app
        .client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retry_and_recover_on_a_disabled_subscription_say_to_enable_it_first() {
    // Arrange: a delivered event, then the subscription is disabled.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let event = app
        .send_event(json!({"type": "document.created", "data": {}}))
        .await;
    let delivery = app
        .wait_for_status(sub_id, event["id"].as_str().unwrap(), "succeeded")
        .await;
    app.patch(
        &format!("/v1/subscriptions/{sub_id}"),
        json!({"enabled": false}),
    )
    .await
    .expect(200);

    // Act
    let retry = app
        .send(app.request(
            Method::POST,
            &format!("/v1/deliveries/{}/retry", delivery["id"].as_str().unwrap()),
        ))
        .await;
    let recover = app
        .post(
            &format!("/v1/subscriptions/{sub_id}/recover"),
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;

    // Assert: both refused with a message that says what to do; nothing is sent.
    for refused in [&retry, &recover] {
        assert_eq!(refused.status, 409, "{}", refused.text);
        assert_eq!(refused.error_code(), "conflict");
        assert!(refused.error_message().contains("enable it first"));
    }
    receiver.wait_for(1, WAIT).await;
    receiver.assert_no_more(QUIET).await;
}
