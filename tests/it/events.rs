//! `GET /v1/events`: the tenant's events, newest first, paged, filtered by type, each with how its
//! deliveries stand across its subscriptions; another tenant's never; bad paging is a 400.

use std::time::Duration;

use herald_core::retry::RetryPolicy;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app_with, Reply, TestReceiver};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_are_listed_newest_first_with_their_delivery_summary() {
    // Arrange: one receiver that takes everything, one that is gone (410: final), one that keeps
    // failing with a retry far away (so its delivery stays retrying).
    let app = spawn_app_with(|config| {
        config.retry = RetryPolicy {
            schedule: vec![Duration::from_secs(120)],
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    })
    .await;
    let ok = TestReceiver::start().await;
    let gone = TestReceiver::start_with(Reply::status(410)).await;
    let failing = TestReceiver::start_with(Reply::status(500)).await;
    app.subscribe(&ok, &["document.*"]).await;
    app.subscribe(&gone, &["document.created"]).await;
    app.subscribe(&failing, &["document.created"]).await;

    // Act: an event to all three; once it has settled (the 410 disabled a subscription, which
    // Herald tells the tenant with an event of its own), four more, a few milliseconds apart (ids
    // order by acceptance time).
    let first = app
        .send_event(json!({"type": "document.created", "data": {}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (api, first_id) = (&app.api, first.clone());
    let summary_of = |id: String| async move {
        let page = api.get("/v1/events?limit=100").await.expect(200);
        let item = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id.as_str())
            .cloned()
            .unwrap();
        item["deliveries"].clone()
    };
    let settled = eventually("the first event's deliveries to settle", || async {
        let s = summary_of(first_id.clone()).await;
        (s["succeeded"] == 1 && s["failed"] == 1).then_some(s)
    })
    .await;
    let disabled = eventually(
        "Herald's own event about the disabled subscription",
        || async {
            let page = api
                .get("/v1/events?type=herald.subscription.disabled")
                .await
                .expect(200);
            ids(&page).first().cloned()
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut sent = vec![first.clone()];
    for kind in [
        "article.created",
        "document.updated",
        "article.updated",
        "document.updated",
    ] {
        let ev = app.send_event(json!({"type": kind, "data": {}})).await;
        sent.push(ev["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Assert: the list walked two at a time is every event once, newest first.
    let mut newest_first: Vec<String> = sent[1..].iter().rev().cloned().collect();
    newest_first.extend([disabled, first.clone()]);
    let mut walked = Vec::new();
    let mut sizes = Vec::new();
    let mut path = "/v1/events?limit=2".to_owned();
    loop {
        let page = app.get(&path).await.expect(200);
        sizes.push(ids(&page).len());
        walked.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/events?limit=2&cursor={c}"),
            None => break,
        }
        assert!(sizes.len() <= 4, "paging does not end: {sizes:?}");
    }
    assert_eq!(sizes, [2, 2, 2]);
    assert_eq!(walked, newest_first);

    // Each event's summary counts its deliveries by where they stand.
    assert_eq!(
        settled,
        json!({"total": 3, "succeeded": 1, "failed": 1, "pending": 1}),
        "the retrying delivery is pending"
    );
    let detail = app.get(&format!("/v1/events/{first}")).await.expect(200);
    let statuses: Vec<&str> = detail["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 3);
    for status in ["succeeded", "failed", "retrying"] {
        assert!(statuses.contains(&status), "{statuses:?}");
    }
    assert_eq!(
        summary_of(sent[1].clone()).await,
        json!({"total": 0, "succeeded": 0, "failed": 0, "pending": 0})
    );
    let item = app.get("/v1/events?limit=1").await.expect(200)["data"][0].clone();
    assert_eq!(item["type"], "document.updated");
    assert!(item["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));

    // A type filter keeps that type alone, still newest first.
    let updated = app
        .get("/v1/events?type=document.updated")
        .await
        .expect(200);
    assert_eq!(ids(&updated), [sent[4].clone(), sent[2].clone()]);
    assert_eq!(updated["next_cursor"], Value::Null);

    // Another tenant sees none of them.
    let other = app.other_tenant().await;
    let theirs = other.get("/v1/events").await.expect(200);
    assert_eq!(theirs, json!({"data": [], "next_cursor": null}));
    let cursor = format!("/v1/events?cursor={}", sent[4]);
    assert_eq!(
        ids(&other.get(&cursor).await.expect(200)),
        Vec::<String>::new()
    );

    // Bad paging and filters are 400s naming the parameter.
    for (path, field) in [
        ("/v1/events?limit=0", "limit"),
        ("/v1/events?limit=101", "limit"),
        ("/v1/events?limit=ten", "limit"),
        ("/v1/events?cursor=garbage", "cursor"),
        ("/v1/events?cursor=sub_01JEXAMPLE0000000000000000", "cursor"),
        ("/v1/events?type=Not%20A%20Type", "type"),
    ] {
        let answer = app.get(path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text);
        assert_eq!(answer.error_field(), Some(field), "{path}");
    }
}
