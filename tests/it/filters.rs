//! Payload filters over real HTTP: a documentation platform publishes `document.published` for
//! every space and a team's subscription takes only the Handbook space's. The other space's event
//! plans no delivery; a bad filter is a 422 naming the bad part; removing the filter (PATCH null)
//! lets every space through again.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestReceiver};

fn published(space: &str) -> Value {
    json!({"type": "document.published", "data": {"space": {"name": space}, "title": "Leave policy"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_filter_delivers_only_the_matching_space_until_it_is_removed() {
    // Arrange: a subscription to documents published in the Handbook space.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let handbook = json!({"path": "data.space.name", "eq": "Handbook"});
    let sub = app
        .create_subscription(json!({
            "platform": "custom",
            "url": receiver.url(),
            "events": ["document.published"],
            "filter": handbook.clone(),
        }))
        .await;
    assert_eq!(sub["filter"], handbook, "the view shows the filter");
    let sub_id = sub["id"].as_str().unwrap();

    // Act: one event in each space.
    let engineering = app.send_event(published("Engineering")).await;
    let in_handbook = app.send_event(published("Handbook")).await;

    // Assert: exactly the Handbook event arrives; the other has no delivery at all.
    let arrived = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(arrived[0].json()["data"]["space"]["name"], "Handbook");
    assert_eq!(arrived[0].json()["id"], in_handbook["id"]);
    receiver.assert_no_more(Duration::from_millis(500)).await;
    let skipped = app
        .get(&format!(
            "/v1/events/{}",
            engineering["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(skipped["deliveries"], json!([]), "none planned: {skipped}");
    let log = app.deliveries_of(sub_id).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["event_id"], in_handbook["id"]);

    // A bad filter is refused with the bad part named, and nothing changes.
    let bad = app
        .patch(
            &format!("/v1/subscriptions/{sub_id}"),
            json!({"filter": {"all": [handbook.clone(), {"path": "data.space.name", "in": "Guides"}]}}),
        )
        .await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    assert_eq!(bad.error_field(), Some("filter.all[1].in"));
    let kept = app
        .get(&format!("/v1/subscriptions/{sub_id}"))
        .await
        .expect(200);
    assert_eq!(kept["filter"], handbook);

    // Removing the filter lets both spaces through.
    let patched = app
        .patch(
            &format!("/v1/subscriptions/{sub_id}"),
            json!({"filter": null}),
        )
        .await
        .expect(200);
    assert_eq!(patched["filter"], Value::Null);
    app.send_event(published("Engineering")).await;
    app.send_event(published("Handbook")).await;
    let all = receiver.wait_for(3, Duration::from_secs(10)).await;
    let mut spaces: Vec<String> = all[1..]
        .iter()
        .map(|r| {
            r.json()["data"]["space"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    spaces.sort();
    assert_eq!(spaces, ["Engineering", "Handbook"]);
    receiver.assert_no_more(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_filter_at_create_is_a_422_naming_the_part_and_creates_nothing() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    for (filter, field) in [
        (
            json!({"path": "space.name", "eq": "Handbook"}),
            "filter.path",
        ),
        (json!({"path": "data.words", "gt": "100"}), "filter.gt"),
        (json!({"not": {"any": []}}), "filter.not.any"),
        (json!("Handbook"), "filter"),
    ] {
        let answer = app
            .post(
                "/v1/subscriptions",
                json!({"platform": "custom", "url": receiver.url(),
                       "events": ["document.published"], "filter": filter}),
            )
            .await;
        assert_eq!(answer.status, 422, "{filter}: {:?}", answer.body);
        assert_eq!(answer.error_code(), "validation_failed", "{filter}");
        assert_eq!(answer.error_field(), Some(field), "{filter}");
    }
    let list = app.get("/v1/subscriptions").await.expect(200);
    assert_eq!(list["data"], json!([]));
}
