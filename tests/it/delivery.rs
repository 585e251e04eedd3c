//! What a subscriber receives, and what Herald does with each kind of answer: success, retryable
//! failures, redirects, 410 Gone, timeouts, and one receiver being down while another is up.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use crate::helpers::{
    assert_signed_with, eventually, free_port, spawn_app, spawn_app_with, Received, Reply,
    TestReceiver, QUIET, WAIT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_carries_the_exact_envelope_a_valid_signature_and_the_subscription_headers() {
    // Arrange: a subscription with a bearer token and two extra headers.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let sub = app
        .create_subscription(json!({
            "platform": "custom",
            "url": receiver.url(),
            "events": ["document.created"],
            "auth_token": "tok_live_123",
            "headers": {"x-team": "docs", "x-trace": "abc-123"},
        }))
        .await;
    let secret = sub["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{sub}");

    // Act: one event.
    let data = json!({"author": {"name": "Ada"}, "id": "doc_1", "title": "Welcome"});
    let accepted = app
        .send_event(json!({"type": "document.created", "data": data}))
        .await;

    // Assert: exactly one request, the envelope byte for byte, every header, a valid signature.
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    let event_id = accepted["id"].as_str().unwrap();
    assert!(event_id.starts_with("evt_"), "{accepted}");
    assert_eq!(accepted["type"], "document.created");
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook");
    assert_eq!(request.webhook_id(), event_id);

    let body = request.json();
    let timestamp = body["timestamp"].as_str().unwrap();
    let expected = format!(
        r#"{{"id":{},"type":"document.created","timestamp":{},"data":{}}}"#,
        json!(event_id),
        json!(timestamp),
        data
    );
    assert_eq!(std::str::from_utf8(&request.body).unwrap(), expected);
    assert!(
        timestamp.ends_with('Z') && !timestamp.contains('.'),
        "RFC 3339 UTC, whole seconds: {timestamp}"
    );
    let envelope_time: Timestamp = timestamp.parse().unwrap();
    let accepted_time: Timestamp = accepted["timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(envelope_time.as_second(), accepted_time.as_second());

    assert_eq!(request.header("content-type"), "application/json");
    assert!(
        request.header("user-agent").starts_with("Herald/"),
        "{}",
        request.header("user-agent")
    );
    let skew = Timestamp::now().as_second() - request.timestamp();
    assert!(skew.abs() <= 300, "webhook-timestamp is {skew} s from now");
    let signature = request.header("webhook-signature");
    assert!(
        signature.starts_with("v1,") && !signature.contains(' '),
        "one v1 signature: {signature}"
    );
    assert_signed_with(&request, secret);
    assert_eq!(request.header("authorization"), "Bearer tok_live_123");
    assert_eq!(request.header("x-team"), "docs");
    assert_eq!(request.header("x-trace"), "abc-123");
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_types_and_wildcards_select_exactly_the_matching_subscriptions() {
    // Arrange: three subscriptions with exact types, a prefix and the catch-all.
    let app = spawn_app().await;
    let docs_and_articles = TestReceiver::start().await;
    let everything = TestReceiver::start().await;
    let books = TestReceiver::start().await;
    app.subscribe(&docs_and_articles, &["document.created", "article.*"])
        .await;
    app.subscribe(&everything, &["*"]).await;
    app.subscribe(&books, &["book.updated"]).await;

    // Act
    for event_type in ["document.created", "article.published", "comment.created"] {
        app.send_event(json!({"type": event_type, "data": {}}))
            .await;
    }

    // Assert: who got what, and nothing more.
    let types = |requests: Vec<Received>| {
        let mut types: Vec<String> = requests.iter().map(Received::event_type).collect();
        types.sort();
        types
    };
    assert_eq!(
        types(docs_and_articles.wait_for(2, WAIT).await),
        ["article.published", "document.created"]
    );
    assert_eq!(
        types(everything.wait_for(3, WAIT).await),
        ["article.published", "comment.created", "document.created"]
    );
    tokio::join!(
        docs_and_articles.assert_no_more(QUIET),
        everything.assert_no_more(QUIET),
        books.assert_no_more(QUIET),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_500_is_retried_with_the_same_id_a_fresh_signature_and_both_attempts_logged() {
    // Arrange: the receiver fails once, then answers 200.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Reply::status(500)]);
    let sub = app.subscribe(&receiver, &["document.created"]).await;
    let (sub_id, secret) = (sub["id"].as_str().unwrap(), sub["secret"].as_str().unwrap());

    // Act
    let event = app
        .send_event(json!({"type": "document.created", "data": {"id": "doc_9"}}))
        .await;
    let event_id = event["id"].as_str().unwrap();

    // Assert: two requests, same message id, each signed for its own timestamp.
    let [first, second]: [Received; 2] = receiver.wait_for(2, WAIT).await.try_into().unwrap();
    assert_eq!((first.answered, second.answered), (500, 200));
    assert_eq!(first.webhook_id(), event_id);
    assert_eq!(second.webhook_id(), event_id);
    assert_eq!(first.body, second.body, "the same envelope both times");
    assert!(second.timestamp() >= first.timestamp());
    assert_signed_with(&first, secret);
    assert_signed_with(&second, secret);
    assert!(
        second.arrived_at.duration_since(first.arrived_at) >= Duration::from_millis(190),
        "the retry waits for the schedule's first delay (200 ms)"
    );

    // ... and the delivery log shows both attempts.
    let delivery = app.wait_for_status(sub_id, event_id, "succeeded").await;
    assert_eq!(delivery["attempts"], 2);
    assert_eq!(delivery["last_status_code"], 200);
    assert_eq!(delivery["event_type"], "document.created");
    let full = app.delivery(delivery["id"].as_str().unwrap()).await;
    assert_eq!(full["status"], "succeeded");
    let attempts = full["attempts_log"].as_array().unwrap();
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| {
            (
                a["number"].clone(),
                a["status_code"].clone(),
                a["succeeded"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!(1), json!(500), json!(false)),
            (json!(2), json!(200), json!(true))
        ]
    );
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redirect_is_not_followed_and_is_retried_as_a_failure() {
    // Arrange: the receiver answers 302 to another of its own routes.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(302).header("location", &receiver.url_for("/elsewhere")));
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();

    // Act
    let event = app
        .send_event(json!({"type": "document.updated", "data": {}}))
        .await;
    let event_id = event["id"].as_str().unwrap();

    // Assert: the four tries of the schedule, each a 302 to the hook itself, the other route never
    // hit; then the delivery fails, saying why.
    let requests = receiver.wait_for(4, WAIT).await;
    assert!(requests.iter().all(|r| r.answered == 302));
    let delivery = app.wait_for_status(sub_id, event_id, "failed").await;
    assert_eq!(delivery["last_status_code"], 302);
    assert_eq!(delivery["attempts"], 4);
    assert!(
        delivery["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("redirect")),
        "{delivery}"
    );
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_4xx_is_retried_on_the_schedule_not_final() {
    // Arrange: the receiver is misconfigured for a moment: 404, then 401, then it accepts.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Reply::status(404), Reply::status(401)]);
    let sub = app.subscribe(&receiver, &["*"]).await;

    // Act
    let event = app
        .send_event(json!({"type": "document.updated", "data": {}}))
        .await;

    // Assert: the event is not lost: the third try succeeds, with the same webhook-id each time.
    let requests = receiver.wait_for(3, WAIT).await;
    let answered: Vec<u16> = requests.iter().map(|r| r.answered).collect();
    assert_eq!(answered, vec![404, 401, 200]);
    assert!(requests
        .iter()
        .all(|r| r.webhook_id() == event["id"].as_str().unwrap()));
    let delivery = app
        .wait_for_status(
            sub["id"].as_str().unwrap(),
            event["id"].as_str().unwrap(),
            "succeeded",
        )
        .await;
    assert_eq!(delivery["attempts"], 3);
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_410_disables_the_subscription_and_later_events_are_not_sent() {
    // Arrange
    let app = spawn_app().await;
    let receiver = TestReceiver::start_with(Reply::status(410)).await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();
    assert_eq!(sub["enabled"], true);

    // Act: an event the receiver answers 410 to.
    let first = app
        .send_event(json!({"type": "document.created", "data": {}}))
        .await;

    // Assert: the subscription is disabled with a reason, the delivery failed.
    receiver.wait_for(1, WAIT).await;
    let path = format!("/v1/subscriptions/{sub_id}");
    let (api, path) = (&app.api, &path);
    let disabled = eventually("the subscription to be disabled", move || async move {
        let sub = api.get(path).await.expect(200);
        (sub["enabled"] == false).then_some(sub)
    })
    .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{disabled}"
    );
    let delivery = app
        .wait_for_status(sub_id, first["id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(delivery["last_status_code"], 410);
    let disabled_list = app.get("/v1/subscriptions?enabled=false").await.expect(200);
    assert_eq!(disabled_list["data"][0]["id"], sub_id);

    // ... and a following event produces no request and no delivery.
    let second = app
        .send_event(json!({"type": "document.created", "data": {}}))
        .await;
    receiver.assert_no_more(QUIET).await;
    let second = app
        .get(&format!("/v1/events/{}", second["id"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(second["deliveries"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_slower_than_the_attempt_timeout_is_retried() {
    // Arrange: a 1 s attempt timeout; the first answer takes much longer, the second is immediate.
    let app = spawn_app_with(|c| c.attempt_timeout = Duration::from_secs(1)).await;
    let receiver = TestReceiver::start().await;
    receiver.script([Reply::ok().after(Duration::from_secs(6))]);
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();

    // Act
    let event = app
        .send_event(json!({"type": "article.created", "data": {}}))
        .await;
    let event_id = event["id"].as_str().unwrap();

    // Assert: two requests; attempt 1 timed out without a status, the delivery succeeded.
    let [slow, fast]: [Received; 2] = receiver.wait_for(2, WAIT).await.try_into().unwrap();
    assert_eq!(slow.webhook_id(), event_id);
    assert_eq!(fast.webhook_id(), event_id);
    let delivery = app.wait_for_status(sub_id, event_id, "succeeded").await;
    assert_eq!(delivery["attempts"], 2);
    let full = app.delivery(delivery["id"].as_str().unwrap()).await;
    let first = &full["attempts_log"][0];
    assert_eq!(first["status_code"], json!(null), "{first}");
    let error = first["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        error.contains("timeout") || error.contains("timed out"),
        "attempt 1 error should mention the timeout: {first}"
    );
    assert_eq!(full["attempts_log"][1]["status_code"], 200);
    receiver.assert_no_more(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_is_down_does_not_affect_a_healthy_one() {
    // Arrange: one healthy receiver, one answering 503 forever, one closed port.
    let app = spawn_app().await;
    let healthy = TestReceiver::start().await;
    let unavailable = TestReceiver::start_with(Reply::status(503)).await;
    let healthy_sub = app.subscribe(&healthy, &["*"]).await;
    let unavailable_sub = app.subscribe(&unavailable, &["*"]).await;
    let closed_sub = app
        .create_subscription(json!({
            "platform": "custom",
            "url": format!("http://127.0.0.1:{}/hook", free_port()),
            "events": ["*"],
        }))
        .await;

    // Act
    let event = app
        .send_event(json!({"type": "member.invited", "data": {"email": "a@example.com"}}))
        .await;
    let event_id = event["id"].as_str().unwrap();

    // Assert: the healthy receiver gets exactly one copy while the others are being retried.
    healthy.wait_for(1, WAIT).await;
    unavailable.wait_for(2, WAIT).await;
    healthy.assert_no_more(QUIET).await;
    let ok = app
        .wait_for_status(healthy_sub["id"].as_str().unwrap(), event_id, "succeeded")
        .await;
    assert_eq!(ok["attempts"], 1);
    let failing = app
        .wait_for_delivery(unavailable_sub["id"].as_str().unwrap(), event_id, |d| {
            d["attempts"].as_u64() >= Some(2)
        })
        .await;
    assert_eq!(failing["last_status_code"], 503);
    let refused = app
        .wait_for_delivery(closed_sub["id"].as_str().unwrap(), event_id, |d| {
            d["attempts"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(refused["last_status_code"], json!(null), "{refused}");
    assert!(
        refused["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retry_after_replaces_the_scheduled_delay() {
    // Arrange: the receiver asks for 2 s (the schedule says 200 ms), then accepts.
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Reply::status(429).header("retry-after", "2")]);
    let sub = app.subscribe(&receiver, &["*"]).await;

    // Act
    let event = app
        .send_event(json!({"type": "book.created", "data": {}}))
        .await;

    // Assert: the retry waits at least what the receiver asked for.
    let [first, second]: [Received; 2] = receiver.wait_for(2, WAIT).await.try_into().unwrap();
    assert_eq!((first.answered, second.answered), (429, 200));
    let waited = second.arrived_at.duration_since(first.arrived_at);
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
    app.wait_for_status(
        sub["id"].as_str().unwrap(),
        event["id"].as_str().unwrap(),
        "succeeded",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_that_exhausts_its_schedule_fails_alone() {
    // Arrange: the schedule is 200 ms, 400 ms, 800 ms: four tries in all. The receiver rejects
    // one event's deliveries only.
    let app = spawn_app().await;
    let receiver = TestReceiver::start_with(Reply::status(500)).await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let sub_id = sub["id"].as_str().unwrap();

    // Act
    let event = app
        .send_event(json!({"type": "document.deleted", "data": {}}))
        .await;

    // Assert: four requests, then the delivery fails; the subscription stays enabled.
    receiver.wait_for(4, WAIT).await;
    let delivery = app
        .wait_for_status(sub_id, event["id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(delivery["attempts"], 4);
    assert_eq!(delivery["last_status_code"], 500);
    let after = app
        .get(&format!("/v1/subscriptions/{sub_id}"))
        .await
        .expect(200);
    assert_eq!(after["enabled"], true, "{after}");
    assert_eq!(after["disabled_reason"], json!(null), "{after}");
    receiver.assert_no_more(QUIET).await;

    // Later events still go out.
    receiver.set_default(Reply::ok());
    let next = app
        .send_event(json!({"type": "document.deleted", "data": {}}))
        .await;
    receiver.wait_for(5, WAIT).await;
    app.wait_for_status(sub_id, next["id"].as_str().unwrap(), "succeeded")
        .await;
}
