//! Message templates over real HTTP: a team wants "only the Handbook space, only published, in
//! our Slack channel, saying who published it". The preview shows the exact request; the message
//! that then arrives is the previewed body byte for byte. A bad template is a 422 with its line at
//! create and at preview, and nothing is created.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestReceiver};

const TEMPLATE: &str = "*{{ data.author.name }}* published <{{ data.url | url }}|{{ data.title }}> in {{ data.space.name }}";

fn published() -> Value {
    json!({
        "type": "document.published",
        "data": {
            "title": "Leave policy <!channel>",
            "author": {"name": "Ada *Lovelace*"},
            "space": {"name": "Handbook"},
            "url": "https://docs.example.com/handbook/leave?v=2&lang=en",
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_templates_slack_message_arrives_as_previewed_byte_for_byte() {
    // Arrange: a Slack-platform subscription to a local receiver, with a template.
    let app = spawn_app().await;
    let slack = TestReceiver::start().await;
    let subscription = json!({
        "platform": "slack",
        "url": slack.url_for("/services/T1/B2/x"),
        "events": ["document.published"],
        "filter": {"path": "data.space.name", "eq": "Handbook"},
        "template": TEMPLATE,
        "headers": {"x-team": "docs", "x-api-key": "k3y-value"},
    });

    // Act: preview the event, then create the subscription and send the same event.
    let preview = app
        .post(
            "/v1/subscriptions/preview",
            json!({"subscription": subscription, "event": published()}),
        )
        .await
        .expect(200);
    let created = app.create_subscription(subscription.clone()).await;
    assert_eq!(created["template"], TEMPLATE, "the view shows the template");
    app.send_event(published()).await;
    let arrived = slack.wait_for(1, Duration::from_secs(10)).await;

    // Assert: the same bytes, and the same headers but the per-event and per-secret ones.
    let body = preview["body"].as_str().unwrap();
    assert_eq!(std::str::from_utf8(&arrived[0].body).unwrap(), body);
    let text = "*Ada \u{200B}*\u{200B}Lovelace\u{200B}*\u{200B}* published <https://docs.example.com/handbook/leave?v=2&amp;lang=en|Leave policy &lt;!channel&gt;> in Handbook";
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        json!({"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
    );
    assert_eq!(preview["method"], "POST");
    assert_eq!(preview["url"], slack.url_for("/services/T1/B2/x"));
    assert!(preview["note"]
        .as_str()
        .unwrap()
        .contains("throwaway secret"));
    let headers = preview["headers"].as_array().unwrap();
    for pair in headers {
        let (name, value) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        match name {
            "webhook-id" | "webhook-timestamp" | "webhook-signature" => {
                assert!(arrived[0].header_opt(name).is_some(), "{name}")
            }
            "x-api-key" => assert_eq!(value, "<redacted>"),
            _ => assert_eq!(arrived[0].header(name), value, "{name}"),
        }
    }
    let names: Vec<&str> = headers.iter().map(|p| p[0].as_str().unwrap()).collect();
    assert!(
        names.contains(&"x-team") && names.contains(&"user-agent"),
        "{names:?}"
    );
    assert_eq!(preview["event"]["type"], "document.published");
    assert_eq!(preview["event"]["data"], published()["data"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_template_is_a_422_with_its_line_and_nothing_is_created() {
    let app = spawn_app().await;
    let slack = TestReceiver::start().await;
    let bad = json!({
        "platform": "slack", "url": slack.url_for("/services/T1/B2/x"), "events": ["document.*"],
        "template": "Published:\n{% if data.title %}\n{{ data.title }}",
    });
    for answer in [
        app.post("/v1/subscriptions", bad.clone()).await,
        app.post(
            "/v1/subscriptions/preview",
            json!({"subscription": bad, "event_type": "document.published"}),
        )
        .await,
    ] {
        assert_eq!(answer.status, 422, "{}", answer.text);
        assert_eq!(answer.error_code(), "invalid_template");
        assert_eq!(answer.error_field(), Some("template"));
        // The input ends on line 3 without `{% endif %}`.
        assert_eq!(answer.body["error"]["line"], 3);
        assert_eq!(
            answer.error_message(),
            "line 3: unexpected end of input, expected end of block"
        );
    }
    // An unknown filter shows on the example of a type subscribed to.
    let answer = app
        .post(
            "/v1/subscriptions",
            json!({
                "platform": "teams", "url": "https://prod-00.westus.logic.azure.com/workflows/x",
                "events": ["document.published"], "template": "ok\n{{ data.title | shout }}",
            }),
        )
        .await;
    assert_eq!(
        (answer.status, answer.error_code()),
        (422, "invalid_template"),
        "{}",
        answer.text
    );
    assert_eq!(answer.body["error"]["line"], 2);
    // Custom subscriptions take no template.
    let answer = app
        .post(
            "/v1/subscriptions",
            json!({
                "platform": "custom", "url": slack.url(), "events": ["*"], "template": "{{ type }}",
            }),
        )
        .await;
    assert_eq!(
        (answer.status, answer.error_field()),
        (422, Some("template")),
        "{}",
        answer.text
    );
    assert!(answer
        .error_message()
        .contains("custom subscriptions receive the signed event envelope"));
    let list = app.get("/v1/subscriptions").await.expect(200);
    assert_eq!(list["data"], json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn preview_shows_the_default_message_and_the_teams_example_without_sending() {
    let app = spawn_app().await;
    // Teams, from the type's example, with a placeholder URL: the documentation-platform use case.
    let preview = app
        .post("/v1/subscriptions/preview", json!({
            "subscription": {
                "platform": "teams",
                "template": "{{ data.author.name }} published {{ data.title }} in {{ data.space.name }}",
            },
            "event_type": "document.published",
        }))
        .await
        .expect(200);
    let card: Value = serde_json::from_str(preview["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        card["attachments"][0]["content"]["body"][0]["text"],
        "Ada Lovelace published Getting started in Handbook"
    );
    assert!(preview["url"].as_str().unwrap().starts_with("https://"));
    // No template: Herald's own message. Trello credentials are redacted.
    let preview = app
        .post(
            "/v1/subscriptions/preview",
            json!({
                "subscription": {"platform": "trello", "auth_token": "tok",
                    "platform_options": {"list_id": "l1", "api_key": "key1", "token": "s3cret"}},
                "event": {"type": "article.published", "data": {"title": "Notes"}},
            }),
        )
        .await
        .expect(200);
    assert!(!preview.to_string().contains("s3cret") && !preview.to_string().contains("key1"));
    let card: Value = serde_json::from_str(preview["body"].as_str().unwrap()).unwrap();
    assert_eq!(card["name"], "article.published: “Notes”");
    // One of `event`, `event_type`; nothing stored.
    let answer = app
        .post(
            "/v1/subscriptions/preview",
            json!({"subscription": {"platform": "slack"}}),
        )
        .await;
    assert_eq!(
        (answer.status, answer.error_field()),
        (422, Some("event")),
        "{}",
        answer.text
    );
    let answer = app
        .post(
            "/v1/subscriptions/preview",
            json!({"subscription": {"platform": "slack"}, "event_type": "nothing.here"}),
        )
        .await;
    assert_eq!(
        (answer.status, answer.error_field()),
        (422, Some("event_type")),
        "{}",
        answer.text
    );
    let list = app.get("/v1/subscriptions").await.expect(200);
    assert_eq!(list["data"], json!([]));
    let events = app.get("/v1/events").await.expect(200);
    assert_eq!(events["data"], json!([]));
}
