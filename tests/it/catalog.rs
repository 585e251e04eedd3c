//! The event catalog over real HTTP: a documentation platform registers `document.translated`
//! with a JSON Schema. A violating event is answered 422 with the pointer, is not stored and
//! reaches nobody; a valid one is delivered. PATCH and DELETE change what intake checks at once;
//! a tenant that refuses unknown types gets 422 for them; "Send example" delivers a type's example.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply, TestReceiver, QUIET, WAIT};

fn translated_type() -> Value {
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

fn translated(space_name: Value) -> Value {
    json!({"type": "document.translated", "data": {"title": "Premiers pas", "space": {"name": space_name}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schema_decides_what_intake_takes_and_patch_and_delete_change_it_at_once() {
    // Arrange: a subscriber to everything, and the type with its schema.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.subscribe(&receiver, &["*"]).await;
    let created = app
        .post("/v1/event-types", translated_type())
        .await
        .expect(201);
    assert_eq!(created["builtin"], false);

    // Act: an event that breaks the schema.
    let refused = app.post("/v1/events", translated(json!(5))).await;

    // Assert: 422 naming the pointer; nothing stored, nothing delivered.
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.error_code(), "schema_violation");
    assert_eq!(refused.error_field(), Some("data"));
    assert_eq!(
        refused.error_message(),
        "data does not match the schema of document.translated: /space/name: 5 is not of type \"string\""
    );
    assert_eq!(
        refused.body["error"]["violations"],
        json!([{"pointer": "/space/name", "reason": "5 is not of type \"string\""}])
    );
    let events = app.get("/v1/events").await.expect(200);
    assert_eq!(events["data"], json!([]), "nothing stored");
    receiver.assert_no_more(QUIET).await;

    // A valid one is delivered.
    let accepted = app.send_event(translated(json!("Handbook"))).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].event_type(), "document.translated");
    assert_eq!(got[0].json()["id"], accepted["id"]);

    // PATCH removes the schema: the same bad event is taken now.
    let patched = app
        .patch(
            "/v1/event-types/document.translated",
            json!({"schema": null, "deprecated": true}),
        )
        .await
        .expect(200);
    assert_eq!(patched["deprecated"], true);
    assert!(patched.get("schema").is_none(), "{patched}");
    app.send_event(translated(json!(5))).await;
    receiver.wait_for(2, WAIT).await;

    // DELETE: the type is gone from the catalog, and its events are unknown (accepted by default).
    app.delete("/v1/event-types/document.translated")
        .await
        .expect(204);
    app.get("/v1/event-types/document.translated")
        .await
        .expect(404);
    let catalog = app.get("/v1/event-types").await.expect(200);
    assert!(!catalog["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "document.translated"));
    app.send_event(translated(json!(5))).await;
    receiver.wait_for(3, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_that_rejects_unknown_types_gets_422_for_them() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.subscribe(&receiver, &["*"]).await;
    assert_eq!(
        app.get("/v1/settings").await.expect(200),
        json!({"unknown_event_types": "accept"})
    );
    app.patch("/v1/settings", json!({"unknown_event_types": "reject"}))
        .await
        .expect(200);

    let refused = app
        .post("/v1/events", json!({"type": "space.archived", "data": {}}))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.error_code(), "unknown_event_type");
    assert_eq!(refused.error_field(), Some("type"));

    // Built-in types stay known, and registering the type makes it known.
    app.send_event(json!({"type": "document.created", "data": {}}))
        .await;
    app.post("/v1/event-types", json!({"name": "space.archived"}))
        .await
        .expect(201);
    app.send_event(json!({"type": "space.archived", "data": {}}))
        .await;
    let got = receiver.wait_for(2, WAIT).await;
    let types: Vec<String> = got.iter().map(|r| r.event_type()).collect();
    assert!(types.contains(&"space.archived".to_owned()), "{types:?}");
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_example_delivers_the_type_s_example_and_reports_the_answer() {
    // Arrange: a subscription that does not list the type, a receiver answering 202.
    let app = spawn_app().await;
    let receiver = TestReceiver::start_with(Reply::status(202).body("queued")).await;
    let sub = app.subscribe(&receiver, &["document.created"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    app.post("/v1/event-types", translated_type())
        .await
        .expect(201);

    // Act
    let report = app
        .post(
            &format!("/v1/subscriptions/{sub_id}/test"),
            json!({"event_type": "document.translated"}),
        )
        .await
        .expect(200);

    // Assert: the report, and the receiver got the example as a document.translated event.
    assert_eq!(report["delivered"], true, "{report}");
    assert_eq!(report["status"], 202);
    assert_eq!(report["response_excerpt"], "queued");
    let got = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(got.event_type(), "document.translated");
    assert_eq!(got.json()["data"], translated_type()["example"]);
    assert_eq!(got.webhook_id(), report["event_id"].as_str().unwrap());
    let log = app.deliveries_of(sub_id).await;
    assert_eq!(log[0]["event_type"], "document.translated");

    // A type without an example: 422, nothing sent.
    let refused = app
        .post(
            &format!("/v1/subscriptions/{sub_id}/test"),
            json!({"event_type": "webhook.unknown"}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.error_field(), Some("event_type"));
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_types_example_checks_templates_and_fills_a_preview() {
    // Arrange: a type whose example has `version` as text (the built-in examples have a number).
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let mut with_text_version = translated_type();
    with_text_version["schema"] = Value::Null;
    with_text_version["example"] = json!({"title": "Premiers pas", "version": "sept"});
    app.post("/v1/event-types", with_text_version)
        .await
        .expect(201);
    let subscription = |events: Value| {
        json!({
            "platform": "slack",
            "url": receiver.url_for("/services/T1/B2/x"),
            "events": events,
            "template": "{{ data.title }}, version {{ data.version + 1 }}",
        })
    };

    // Act + Assert: the template works on document.published's example but not on the tenant's
    // type's, so a subscription taking both is refused at once, naming the template.
    let refused = app
        .post(
            "/v1/subscriptions",
            subscription(json!(["document.published", "document.translated"])),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.error_code(), "invalid_template");
    assert_eq!(refused.error_field(), Some("template"));
    let listed = app.get("/v1/subscriptions").await.expect(200);
    assert_eq!(listed["data"], json!([]), "nothing created");
    app.post(
        "/v1/subscriptions",
        subscription(json!(["document.published"])),
    )
    .await
    .expect(201);

    // A preview given only the tenant's type uses its example.
    let preview = app
        .post(
            "/v1/subscriptions/preview",
            json!({"subscription": {"platform": "slack"}, "event_type": "document.translated"}),
        )
        .await
        .expect(200);
    assert_eq!(
        preview["event"]["data"],
        json!({"title": "Premiers pas", "version": "sept"})
    );
    assert!(
        preview["body"].as_str().unwrap().contains("Premiers pas"),
        "{}",
        preview["body"]
    );
}
