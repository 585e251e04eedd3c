//! Herald's log over a whole run of the real `herald dev` in JSON (the Lambda functions' format,
//! `herald_lambda::logging`): every line is one JSON object; requests and attempts are logged with
//! their ids, status and latency; and no secret the run made or used appears anywhere in it —
//! API keys (right and wrong), signing secrets (first and rotated), auth tokens, header values,
//! the secret parts of Slack, Teams and Mattermost webhook URLs, Trello credentials.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, Api, HeraldProcess, TestReceiver};

const API_KEY: &str = "hk_logs-test-key-SECRET-0123456789abcdef";
const WRONG_KEY: &str = "hk_wrong-key-SECRET-fedcba9876543210";

#[tokio::test]
async fn a_full_run_logs_ids_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("HERALD_LOG_FORMAT", "json"),
        // Herald's own crates at debug: stricter than production's info.
        (
            "RUST_LOG",
            "info,herald=debug,herald_app=debug,herald_core=debug,herald_embedded=debug",
        ),
        ("HERALD_RETRY_SCHEDULE", "1s"),
    ];
    let herald = HeraldProcess::start_log_apart(dir.path(), API_KEY, &env, "herald").await;
    let api = Api::new(herald.url.clone(), API_KEY.to_owned());
    let receiver = TestReceiver::start().await;
    let base = receiver.url();
    let mut secrets: Vec<String> = vec![API_KEY.into(), WRONG_KEY.into()];

    let custom = api
        .create_subscription(json!({
            "name": "custom", "platform": "custom", "url": format!("{base}/hooks"),
            "events": ["document.*"],
            "auth_token": "tok-AUTHTOKEN-SECRET-1",
            "headers": {"X-Api-Secret": "HEADERVALUE-SECRET-2"},
        }))
        .await;
    secrets.extend([
        "tok-AUTHTOKEN-SECRET-1".into(),
        "HEADERVALUE-SECRET-2".into(),
    ]);
    let chat = [
        (
            "slack",
            "/services/T0SECRET3/B0SECRET4/SLACKPATH-SECRET-5",
            "SLACKPATH-SECRET-5",
        ),
        (
            "mattermost",
            "/hooks/MATTERMOSTKEY-SECRET-6",
            "MATTERMOSTKEY-SECRET-6",
        ),
        (
            "teams",
            "/workflows/triggers/manual/paths/invoke?api-version=1&sig=TEAMSSIG-SECRET-7",
            "TEAMSSIG-SECRET-7",
        ),
    ];
    let mut subs = vec![custom];
    for (platform, path, secret) in chat {
        subs.push(
            api.create_subscription(json!({
                "name": platform, "platform": platform, "url": format!("{base}{path}"),
                "events": ["document.*"],
            }))
            .await,
        );
        secrets.push(secret.into());
    }
    // Trello goes to api.trello.com: subscribed to a type this run never sends.
    subs.push(
        api.create_subscription(json!({
            "name": "trello", "platform": "trello", "events": ["never.sent"],
            "platform_options": {
                "list_id": "list1",
                "api_key": "TRELLOKEY-SECRET-8",
                "token": "ATTATRELLOTOKEN-SECRET-9",
            },
        }))
        .await,
    );
    secrets.extend([
        "TRELLOKEY-SECRET-8".into(),
        "ATTATRELLOTOKEN-SECRET-9".into(),
    ]);
    for sub in &subs {
        secrets.push(sub["secret"].as_str().unwrap().to_owned());
    }
    let custom_id = subs[0]["id"].as_str().unwrap();

    // Events, save and test, reading and rotating the secret, a bad key, a bad body.
    let event = api
        .send_event(json!({"type": "document.published", "data": {"title": "Handbook"}}))
        .await;
    api.post(&format!("/v1/subscriptions/{custom_id}/test"), json!({}))
        .await
        .expect(200);
    let read = api
        .get(&format!("/v1/subscriptions/{custom_id}/secret"))
        .await
        .expect(200);
    secrets.push(read["secret"].as_str().unwrap().to_owned());
    let rotated = api
        .post(
            &format!("/v1/subscriptions/{custom_id}/secret/rotate"),
            json!({}),
        )
        .await
        .expect(200);
    secrets.push(rotated["secret"].as_str().unwrap().to_owned());
    let wrong = Api::new(herald.url.clone(), WRONG_KEY.to_owned());
    assert_eq!(wrong.get("/v1/subscriptions").await.status, 401);
    assert_eq!(
        api.post(
            "/v1/subscriptions",
            json!({"platform": "custom", "url": "x"})
        )
        .await
        .status,
        422
    );
    // Every chat subscription and the custom one got the event.
    let event_id = event["id"].as_str().unwrap().to_owned();
    eventually("the event delivered to all four receivers", || async {
        let e = api.get(&format!("/v1/events/{event_id}")).await.expect(200);
        let delivered = e["deliveries"]
            .as_array()
            .map(|d| d.iter().filter(|d| d["status"] == "succeeded").count())
            .unwrap_or(0);
        (delivered == 4).then_some(())
    })
    .await;
    // Let the last lines reach the file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = herald.log_text();
    herald.kill();

    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 10, "{log}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log shows the secret {secret}:\n{}",
            log.lines()
                .filter(|l| l.contains(secret.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // One line per request, with its route template, status, latency and tenant.
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert!(requests
        .iter()
        .any(|r| r["route"] == "/v1/subscriptions/{id}/secret/rotate"
            && r["status"] == 200
            && r["latency_ms"].is_u64()
            && r["tenant"].as_str().is_some_and(|t| t.starts_with("ten_"))));
    assert!(requests.iter().any(|r| r["status"] == 401));
    // One line per attempt, with every id.
    let attempts: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "delivery attempt" && l["event"] == event_id.as_str())
        .collect();
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    for a in &attempts {
        for field in ["tenant", "subscription", "event", "delivery", "attempt_id"] {
            assert!(
                a[field].as_str().is_some_and(|v| !v.is_empty()),
                "{field}: {a}"
            );
        }
        assert_eq!(a["attempt"], 1, "{a}");
        assert_eq!(a["status"], 200, "{a}");
        assert!(a["latency_ms"].is_u64(), "{a}");
    }
}
