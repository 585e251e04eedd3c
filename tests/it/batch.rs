//! Batch intake: `POST /v1/events/batch` answers each event on its own, in order: accepted,
//! duplicate (the first answer of its key) or rejected with the reason, so one bad event never
//! rejects the others; a resent batch goes out once.

use std::collections::BTreeSet;

use serde_json::json;

use crate::helpers::{spawn_app, TestReceiver, QUIET, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_event_of_a_batch_is_answered_on_its_own_and_a_resent_batch_goes_out_once() {
    // Arrange
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.subscribe(&receiver, &["*"]).await;
    let batch = json!({"events": [
        {"type": "document.created", "data": {"n": 1}, "id": "doc-1"},
        {"type": "document.created", "data": {"n": 2}, "idempotency_key": "k-2"},
        {"type": "Not A Type", "data": {}},
        {"type": "document.created", "data": {"n": 2}, "idempotency_key": "k-2"},
        {"type": "document.created", "data": {"n": 3}},
    ]});

    // Act
    let first = app
        .post("/v1/events/batch", batch.clone())
        .await
        .expect(200);

    // Assert: accepted, accepted, rejected (naming the field), the second's duplicate, accepted.
    let items = first["data"].as_array().unwrap();
    let statuses: Vec<&str> = items
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["accepted", "accepted", "rejected", "duplicate", "accepted"],
        "{first:#}"
    );
    assert_eq!(items[2]["error"]["field"], "type");
    assert_eq!(items[3]["id"], items[1]["id"]);
    let accepted: BTreeSet<String> = [0, 1, 4]
        .iter()
        .map(|i| items[*i]["id"].as_str().unwrap().to_owned())
        .collect();
    let received: BTreeSet<String> = receiver
        .wait_for(3, WAIT)
        .await
        .iter()
        .map(|r| r.webhook_id().to_owned())
        .collect();
    assert_eq!(received, accepted);

    // Act: the client resends the batch, one keyed body changed.
    let mut again = batch.clone();
    again["events"][1]["data"] = json!({"n": 99});
    let second = app.post("/v1/events/batch", again).await.expect(200);

    // Assert: the id'd event is a duplicate, the changed body is refused, the unkeyed one is new.
    let items2 = second["data"].as_array().unwrap();
    assert_eq!(items2[0]["status"], "duplicate");
    assert_eq!(items2[0]["id"], items[0]["id"]);
    assert_eq!(items2[1]["status"], "rejected");
    assert_eq!(items2[1]["error"]["code"], "conflict");
    assert_eq!(items2[4]["status"], "accepted");
    receiver.wait_for(4, WAIT).await;
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_batch_is_refused_whole_and_stores_nothing() {
    let app = spawn_app().await;
    for (body, why) in [
        (json!([]), "not an object"),
        (json!({"events": []}), "empty"),
        (json!({"events": {}}), "not a list"),
        (json!({"events": [], "extra": 1}), "unknown field"),
        (
            json!({"events": vec![json!({"type": "a.b", "data": {}}); 101]}),
            "more than 100",
        ),
    ] {
        let answer = app.post("/v1/events/batch", body).await;
        assert_eq!(answer.status, 422, "{why}: {}", answer.text);
        assert_eq!(answer.error_field(), Some("events"), "{why}");
    }
    assert_eq!(
        app.state()
            .metrics
            .events_accepted
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
