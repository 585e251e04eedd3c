use std::time::Duration;

use axum::http::StatusCode;
use herald_core::ports::{Clock, PageRequest, QueueName};
use serde_json::{json, Value};

use crate::service::testing::Harness;

fn translated() -> Value {
    json!({
        "name": "document.translated",
        "description": "A document was translated.",
        "schema": {
            "type": "object",
            "required": ["title", "space"],
            "properties": {
                "title": {"type": "string"},
                "space": {"type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}}}
            }
        },
        "example": {"title": "Premiers pas", "space": {"name": "Handbook"}}
    })
}

/// A harness whose directory keeps answers for a minute: writes here must still apply at once.
async fn harness() -> (Harness, String) {
    let h = Harness::new([]).with_cache_ttl(Duration::from_secs(60));
    let key = h.api_key().await.key;
    (h, key)
}

async fn stored_events(h: &Harness) -> usize {
    let page = PageRequest {
        limit: 100,
        cursor: None,
    };
    let events = h.state.store.list_events(&h.tenant, None, &page).await;
    events.unwrap().items.len()
}

#[tokio::test]
async fn a_type_is_created_listed_read_patched_and_deleted() {
    let (h, key) = harness().await;
    let (status, created) = h
        .call(&key, "POST", "/v1/event-types", Some(translated()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["builtin"], false);
    assert_eq!(created["deprecated"], false);
    assert_eq!(created["schema"], translated()["schema"]);
    assert!(created["created_at"].is_string() && created["updated_at"].is_string());

    let (_, list) = h.call(&key, "GET", "/v1/event-types", None).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"document.created"));
    assert_eq!(names.last(), Some(&"document.translated"));
    assert_eq!(list["next_cursor"], Value::Null);

    let path = "/v1/event-types/document.translated";
    let (status, read) = h.call(&key, "GET", path, None).await;
    assert_eq!((status, &read), (StatusCode::OK, &created));
    let (status, builtin) = h
        .call(&key, "GET", "/v1/event-types/document.published", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(builtin["builtin"], true);
    assert!(builtin["example"].is_object());

    let (status, patched) = h
        .call(
            &key,
            "PATCH",
            path,
            Some(json!({"deprecated": true, "example": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["deprecated"], true);
    assert!(patched.get("example").is_none());
    assert_eq!(patched["schema"], created["schema"]);

    // An example that breaks the schema: 422 with the pointer, and nothing changed.
    let bad = json!({"example": {"title": "T", "space": {"name": 5}}});
    let (status, err) = h.call(&key, "PATCH", path, Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "example");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/space/name"));
    assert_eq!(h.call(&key, "GET", path, None).await.1, patched);

    let (status, _) = h.call(&key, "DELETE", path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in ["GET", "DELETE"] {
        let (status, _) = h.call(&key, method, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
    }
    let (status, _) = h.call(&key, "PATCH", path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn conflicts_and_bad_input_are_refused() {
    let (h, key) = harness().await;
    h.call(&key, "POST", "/v1/event-types", Some(translated()))
        .await;
    let (status, err) = h
        .call(&key, "POST", "/v1/event-types", Some(translated()))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    for builtin in ["document.published", "herald.secret.rotated"] {
        let body = json!({"name": builtin});
        let (status, err) = h.call(&key, "POST", "/v1/event-types", Some(body)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{builtin}: {err}");
        let path = format!("/v1/event-types/{builtin}");
        let (status, err) = h.call(&key, "PATCH", &path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(err["error"]["code"], "builtin_event_type");
        let (status, _) = h.call(&key, "DELETE", &path, None).await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
    for (body, field) in [
        (json!({"name": "herald.mine"}), "name"),
        (json!({"name": "article.*"}), "name"),
        (json!({"name": "a.b", "schema": {"type": 12}}), "schema"),
        (
            json!({"name": "a.b", "schema": {"type": "object"}, "example": "x"}),
            "example",
        ),
    ] {
        let (status, err) = h.call(&key, "POST", "/v1/event-types", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
}

#[tokio::test]
async fn a_tenant_registers_at_most_two_hundred_types() {
    let (h, key) = harness().await;
    for i in 0..herald_core::catalog::MAX_TENANT_EVENT_TYPES {
        let body = json!({"name": format!("custom.t{i}")});
        let (status, _) = h.call(&key, "POST", "/v1/event-types", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let body = json!({"name": "custom.one_more"});
    let (status, err) = h.call(&key, "POST", "/v1/event-types", Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "name");
}

#[tokio::test]
async fn a_schema_violating_event_is_refused_with_pointers_and_nothing_is_stored() {
    let (h, key) = harness().await;
    h.subscribe(&["*"], true).await;
    // The catalog is read (and kept) before the type exists: the create must drop it.
    let ok = json!({"type": "document.created", "data": {}});
    assert_eq!(
        h.call(&key, "POST", "/v1/events", Some(ok)).await.0,
        StatusCode::ACCEPTED
    );
    h.take(QueueName::Deliveries);
    h.call(&key, "POST", "/v1/event-types", Some(translated()))
        .await;
    let before = stored_events(&h).await;

    let bad = json!({"type": "document.translated", "id": "client-1",
        "data": {"space": {"name": 5}}});
    let (status, err) = h.call(&key, "POST", "/v1/events", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let err = &err["error"];
    assert_eq!(err["code"], "schema_violation");
    assert_eq!(err["field"], "data");
    let violations = err["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations.contains(&json!({"pointer": "/space/name",
        "reason": "5 is not of type \"string\""})));
    assert!(violations.iter().any(|v| v["pointer"] == ""));
    assert!(err["message"]
        .as_str()
        .unwrap()
        .starts_with("data does not match the schema of document.translated: "));
    assert_eq!(stored_events(&h).await, before, "nothing stored");
    assert!(h.take(QueueName::Deliveries).is_empty(), "nothing queued");
    assert!(h.take(QueueName::Events).is_empty());

    // The client id was not consumed: the corrected event under it is new, not a conflict.
    let good = json!({"type": "document.translated", "id": "client-1",
        "data": {"title": "T", "space": {"name": "HB"}}});
    let (status, _) = h.call(&key, "POST", "/v1/events", Some(good)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(stored_events(&h).await, before + 1);
    assert_eq!(h.take(QueueName::Deliveries).len(), 1);

    // In a batch, only the bad item is refused.
    let batch = json!({"events": [
        {"type": "document.translated", "data": {"title": 1, "space": {"name": "HB"}}},
        {"type": "document.translated", "data": {"title": "T", "space": {"name": "HB"}}},
    ]});
    let (status, answer) = h.call(&key, "POST", "/v1/events/batch", Some(batch)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["data"][0]["status"], "rejected");
    assert_eq!(answer["data"][0]["error"]["code"], "schema_violation");
    assert_eq!(
        answer["data"][0]["error"]["violations"][0]["pointer"],
        "/title"
    );
    assert_eq!(answer["data"][1]["status"], "accepted");
    assert_eq!(stored_events(&h).await, before + 2);
}

#[tokio::test]
async fn unknown_types_follow_the_setting_and_deprecated_types_are_accepted() {
    let (h, key) = harness().await;
    let (status, settings) = h.call(&key, "GET", "/v1/settings", None).await;
    assert_eq!(
        (status, settings),
        (StatusCode::OK, json!({"unknown_event_types": "accept"}))
    );
    let mystery = || Some(json!({"type": "mystery.happened", "data": {}}));
    assert_eq!(
        h.call(&key, "POST", "/v1/events", mystery()).await.0,
        StatusCode::ACCEPTED
    );

    let reject = json!({"unknown_event_types": "reject"});
    let (status, settings) = h
        .call(&key, "PATCH", "/v1/settings", Some(reject.clone()))
        .await;
    assert_eq!((status, settings), (StatusCode::OK, reject.clone()));
    assert_eq!(h.call(&key, "GET", "/v1/settings", None).await.1, reject);
    let before = stored_events(&h).await;
    let (status, err) = h.call(&key, "POST", "/v1/events", mystery()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["code"], "unknown_event_type");
    assert_eq!(err["error"]["field"], "type");
    assert_eq!(stored_events(&h).await, before);

    // Built-in types stay known; a registered (even deprecated) type is known.
    let builtin = json!({"type": "document.created", "data": {}});
    assert_eq!(
        h.call(&key, "POST", "/v1/events", Some(builtin)).await.0,
        StatusCode::ACCEPTED
    );
    let body = json!({"name": "mystery.happened", "deprecated": true});
    h.call(&key, "POST", "/v1/event-types", Some(body)).await;
    assert_eq!(
        h.call(&key, "POST", "/v1/events", mystery()).await.0,
        StatusCode::ACCEPTED
    );

    let (status, err) = h
        .call(
            &key,
            "PATCH",
            "/v1/settings",
            Some(json!({"unknown_event_types": "maybe"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "unknown_event_types");
}

#[tokio::test]
async fn send_example_delivers_the_type_s_example_as_that_type() {
    let (h, key) = harness().await;
    let sub = h.subscribe(&["webhook.*"], true).await;
    h.call(&key, "POST", "/v1/event-types", Some(translated()))
        .await;
    let path = format!("/v1/subscriptions/{}/test", sub.id);

    let body = json!({"event_type": "document.translated"});
    let (status, report) = h.call(&key, "POST", &path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["delivered"].clone(), report["status"].clone()),
        (json!(true), json!(204))
    );
    let sent: Value = serde_json::from_slice(&h.sender.requests()[0].body).unwrap();
    assert_eq!(sent["type"], "document.translated");
    assert_eq!(sent["data"], translated()["example"]);
    let event_id = report["event_id"].as_str().unwrap();
    let (_, event) = h
        .call(&key, "GET", &format!("/v1/events/{event_id}"), None)
        .await;
    assert_eq!(event["type"], "document.translated", "{event}");

    let body = json!({"event_type": "document.published"});
    h.call(&key, "POST", &path, Some(body)).await;
    let sent: Value = serde_json::from_slice(&h.sender.requests()[1].body).unwrap();
    assert_eq!(sent["type"], "document.published");
    assert_eq!(sent["data"]["title"], "Getting started");

    // No body, null, {} and `event_type: null`: a webhook.test event, as before.
    for body in [
        None,
        Some(Value::Null),
        Some(json!({})),
        Some(json!({"event_type": null})),
    ] {
        let (status, _) = h.call(&key, "POST", &path, body).await;
        assert_eq!(status, StatusCode::OK);
        let last = h.sender.requests().pop().unwrap();
        let sent: Value = serde_json::from_slice(&last.body).unwrap();
        assert_eq!(sent["type"], "webhook.test");
    }

    h.call(
        &key,
        "POST",
        "/v1/event-types",
        Some(json!({"name": "bare.type"})),
    )
    .await;
    let sends = h.sender.requests().len();
    for name in ["bare.type", "unknown.type", "herald.secret.rotated", "Bad"] {
        let body = json!({"event_type": name});
        let (status, err) = h.call(&key, "POST", &path, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {err}");
        assert_eq!(err["error"]["field"], "event_type");
    }
    assert_eq!(h.sender.requests().len(), sends, "nothing sent");
}

#[tokio::test]
async fn a_type_written_by_another_process_applies_here_within_the_ttl() {
    let (h, key) = harness().await;
    let bad = || Some(json!({"type": "document.translated", "data": {"title": 1}}));
    assert_eq!(
        h.call(&key, "POST", "/v1/events", bad()).await.0,
        StatusCode::ACCEPTED
    );

    // Another instance registers the type: this one's directory is not told.
    let t = herald_core::catalog::TenantEventType::create(h.tenant, translated(), h.clock.now());
    h.state
        .event_types
        .create_event_type(&t.unwrap())
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(59));
    let (status, _) = h.call(&key, "POST", "/v1/events", bad()).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "within the TTL: the kept catalog"
    );
    h.clock.advance(Duration::from_secs(1));
    let (status, _) = h.call(&key, "POST", "/v1/events", bad()).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "after it: read again"
    );
}
