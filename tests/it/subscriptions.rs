//! Managing subscriptions: create, read, list (paginated, filtered), update, delete, and the
//! signing secret with its rotation.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_signed_with, spawn_app, TestReceiver, QUIET, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_round_trips_through_create_read_update_and_delete() {
    // Arrange
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;

    // Act: create.
    let created = app
        .create_subscription(json!({
            "name": "Docs to the wiki bot",
            "description": "Everything about documents",
            "platform": "custom",
            "url": receiver.url(),
            "events": ["document.created", "article.*"],
            "headers": {"x-team": "docs"},
            "auth_token": "tok_abc",
        }))
        .await;

    // Assert: the 201 answer, with the secret; the read without it and without the token.
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("sub_"), "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["name"], "Docs to the wiki bot");
    assert_eq!(created["platform"], "custom");
    assert_eq!(created["url"], receiver.url());
    assert_eq!(created["events"], json!(["document.created", "article.*"]));
    assert_eq!(created["enabled"], true);
    assert_eq!(created["auth_token_set"], true);
    let path = format!("/v1/subscriptions/{id}");
    let read = app.get(&path).await.expect(200);
    assert_eq!(read["id"], id);
    assert_eq!(read["events"], created["events"]);
    assert_eq!(read["headers"], json!({"x-team": "docs"}));
    assert!(
        read.get("secret").is_none(),
        "a read never shows the secret: {read}"
    );
    assert!(
        !read.to_string().contains("tok_abc"),
        "nor the token: {read}"
    );

    // Act: a partial update.
    let updated = app
        .patch(
            &path,
            json!({"name": "Renamed", "enabled": false, "events": ["book.updated"]}),
        )
        .await
        .expect(200);

    // Assert: the changed fields changed, the rest did not.
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["events"], json!(["book.updated"]));
    assert_eq!(updated["description"], "Everything about documents");
    assert_eq!(updated["url"], receiver.url());
    let read = app.get(&path).await.expect(200);
    assert_eq!(read["name"], "Renamed");
    assert_eq!(read["enabled"], false);
    assert_eq!(read["events"], json!(["book.updated"]));

    // Act + Assert: delete, then it is gone.
    let deleted = app.delete(&path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(app.get(&path).await.status, 404);
    assert_eq!(app.delete(&path).await.status, 404);
    let list = app.get("/v1/subscriptions").await.expect(200);
    assert_eq!(list["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_subscription_list_paginates_newest_first_and_filters() {
    // Arrange: five subscriptions, created one after the other.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let events = if n % 2 == 0 {
            json!(["document.*"])
        } else {
            json!(["book.updated"])
        };
        let sub = app
            .create_subscription(json!({
                "name": format!("sub {n}"),
                "platform": "custom",
                "url": receiver.url(),
                "events": events,
                "enabled": n != 4,
            }))
            .await;
        ids.push(sub["id"].clone());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Act: walk the list two at a time.
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/subscriptions?limit=2&cursor={c}"),
            None => "/v1/subscriptions?limit=2".to_owned(),
        };
        let page = app.get(&path).await.expect(200);
        pages.push(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].clone())
                .collect(),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages.len() <= 5, "pagination does not end: {pages:?}");
    }

    // Assert: 2 + 2 + 1, newest first, each exactly once.
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let walked: Vec<Value> = pages.concat();
    let newest_first: Vec<Value> = ids.iter().rev().cloned().collect();
    assert_eq!(walked, newest_first);

    // Filters: by event type and by enabled.
    let names = |list: Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let documents = app
        .get("/v1/subscriptions?event=document.created")
        .await
        .expect(200);
    assert_eq!(names(documents), ["sub 4", "sub 2", "sub 0"]);
    let disabled = app.get("/v1/subscriptions?enabled=false").await.expect(200);
    assert_eq!(names(disabled), ["sub 4"]);

    // Bad queries are 400s naming the parameter.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("enabled=maybe", "enabled"),
        ("event=Not%20A%20Type", "event"),
    ] {
        let res = app.get(&format!("/v1/subscriptions?{query}")).await;
        assert_eq!(res.status, 400, "{query}: {}", res.text);
        assert_eq!(res.error_field(), Some(field), "{query}: {}", res.text);
    }
    let res = app.get("/v1/subscriptions?cursor=garbage").await;
    assert_eq!(res.status, 400, "a bad cursor: {}", res.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_secret_endpoint_returns_the_creation_secret_and_rotation_signs_with_both() {
    // Arrange
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    let old_secret = sub["secret"].as_str().unwrap();
    let secret_path = format!("/v1/subscriptions/{sub_id}/secret");

    // The secret endpoint returns what creation returned.
    let shown = app.get(&secret_path).await.expect(200);
    assert_eq!(shown["secret"], old_secret);

    // Act: rotate.
    let rotated = app
        .send(app.request(Method::POST, &format!("{secret_path}/rotate")))
        .await
        .expect(200);
    let new_secret = rotated["secret"].as_str().unwrap();

    // Assert: a new secret, now the current one; the old one still signs for a while.
    assert!(new_secret.starts_with("whsec_"), "{rotated}");
    assert_ne!(new_secret, old_secret);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    assert_eq!(
        app.get(&secret_path).await.expect(200)["secret"],
        new_secret
    );

    // ... and the next delivery carries two signatures, each verifying with one secret.
    app.send_event(json!({"type": "document.created", "data": {}}))
        .await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    let signatures: Vec<&str> = request.header("webhook-signature").split(' ').collect();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert!(
        signatures.iter().all(|s| s.starts_with("v1,")),
        "{signatures:?}"
    );
    assert_signed_with(&request, old_secret);
    assert_signed_with(&request, new_secret);
    receiver.assert_no_more(QUIET).await;
}
