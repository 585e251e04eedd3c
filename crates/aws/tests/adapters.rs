//! What the shared contract does not cover: the table and queue setup, TTL attributes, the claim
//! check, redrive to the dead-letter queue, and how AWS failures surface. On the moto emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use common::{dynamo_store, dynamodb_client, moto, sqs_client, sqs_queue, unique};
use herald_aws::{
    aws_sdk_dynamodb, aws_sdk_sqs, create_queues, create_table, AwsError, DynamoConfig,
    DynamoStore, SqsConfig, SqsQueue, EVENT_SHARDS, LOG_SHARDS,
};
use herald_contract::fixtures::{after, attempt, delivery, delivery_message, event, now};
use herald_core::ids::{SubscriptionId, TenantId};
use herald_core::model::{Event, IdempotencyRecord};
use herald_core::ports::{
    EventStore, InsertEventOutcome, Queue, QueueError, QueueName, StoreError, SubscriptionStore,
    TenantStore,
};
use jiff::Timestamp;

const D: QueueName = QueueName::Deliveries;

/// The raw item at `pk`/`sk`, to look at what the adapter wrote.
async fn raw_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: String,
    sk: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no item"))
}

fn expires_at(item: &std::collections::HashMap<String, AttributeValue>) -> Option<i64> {
    item.get("expires_at")
        .map(|v| v.as_n().unwrap().parse().unwrap())
}

#[tokio::test]
async fn create_table_makes_no_index_enables_ttl_and_is_conditional() {
    let client = dynamodb_client();
    let config = DynamoConfig::new(unique("herald"));
    create_table(&client, &config).await.unwrap();
    assert!(matches!(
        create_table(&client, &config).await,
        Err(StoreError::AlreadyExists)
    ));

    let table = client
        .describe_table()
        .table_name(&config.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    // Every access pattern is served by key order: no index to pay for.
    assert!(table.global_secondary_indexes().is_empty());
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
    );

    let ttl = client
        .describe_time_to_live()
        .table_name(&config.table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

#[tokio::test]
async fn ttl_attributes_follow_the_config() {
    let mut config = DynamoConfig::new(unique("herald"));
    config.event_ttl = Some(Duration::from_secs(3600));
    config.delivery_ttl = Some(Duration::from_secs(7200));
    config.attempt_ttl = Duration::from_secs(60);
    let table = config.table.clone();
    let store = dynamo_store(config).await;
    let client = dynamodb_client();

    let t = TenantId::new();
    let ev = herald_contract::fixtures::keyed_event(t, "document.created", "key:ttl");
    let record = IdempotencyRecord {
        tenant_id: t,
        key: "key:ttl".into(),
        body_sha256: "h".into(),
        event_id: ev.id,
        created_at: Timestamp::now(),
        expires_at: Timestamp::now() + jiff::SignedDuration::from_secs(600),
    };
    store.insert_event(&ev, Some(&record)).await.unwrap();
    let mut d = delivery(t, SubscriptionId::new(), &ev);
    // The first attempt is stored inside the delivery; the second is an item of its own.
    d.attempts = 1;
    store.record_attempt(&attempt(&d, 1), &d).await.unwrap();
    d.attempts = 2;
    let a = attempt(&d, 2);
    store.record_attempt(&a, &d).await.unwrap();

    // The key's item (its idempotency record) lasts its window; the event, in its tenant's event
    // shard, as events do.
    let keyed_pk = format!("{t}#KEYED#{:020x}", ev.id.random_bits());
    let item = raw_item(&client, &table, keyed_pk.clone(), "EVENT").await;
    assert_eq!(expires_at(&item), Some(record.expires_at.as_second()));
    let item = raw_item(&client, &table, event_pk(t, &ev), &ev.id.to_string()).await;
    assert_eq!(expires_at(&item), Some(ev.timestamp.as_second() + 3600));
    let item = raw_item(&client, &table, log_pk(t, &d), &d.id.to_string()).await;
    assert_eq!(expires_at(&item), Some(d.created_at.as_second() + 7200));
    assert!(item.contains_key("first"), "the first attempt is inside");
    let item = raw_item(
        &client,
        &table,
        format!("{t}#{}", d.id),
        &format!("ATTEMPT#0000000002#{}", a.id),
    )
    .await;
    assert_eq!(expires_at(&item), Some(a.started_at.as_second() + 60));

    // By default events and deliveries stay; attempts and idempotency keys still expire.
    let config = DynamoConfig::new(unique("herald"));
    let table = config.table.clone();
    let store = dynamo_store(config).await;
    store.insert_event(&ev, Some(&record)).await.unwrap();
    d.attempts = 1;
    store.record_attempt(&attempt(&d, 1), &d).await.unwrap();
    d.attempts = 2;
    store.record_attempt(&a, &d).await.unwrap();
    let item = raw_item(&client, &table, event_pk(t, &ev), &ev.id.to_string()).await;
    assert_eq!(expires_at(&item), None, "the event stays");
    let item = raw_item(&client, &table, keyed_pk, "EVENT").await;
    assert_eq!(expires_at(&item), Some(record.expires_at.as_second()));
    let item = raw_item(&client, &table, log_pk(t, &d), &d.id.to_string()).await;
    assert_eq!(expires_at(&item), None);
    let item = raw_item(
        &client,
        &table,
        format!("{t}#{}", d.id),
        &format!("ATTEMPT#0000000002#{}", a.id),
    )
    .await;
    assert_eq!(
        expires_at(&item),
        Some(a.started_at.as_second() + 30 * 24 * 3600)
    );
}

#[tokio::test]
async fn an_expired_idempotency_record_no_longer_dedupes() {
    let store = dynamo_store(DynamoConfig::new(unique("herald"))).await;
    let t = TenantId::new();
    let keyed = || herald_contract::fixtures::keyed_event(t, "document.created", "key:old");
    let old = keyed();
    let stale = IdempotencyRecord {
        tenant_id: t,
        key: "key:old".into(),
        body_sha256: "1".into(),
        event_id: old.id,
        // Expired an hour ago, but DynamoDB's TTL sweep has not removed it (it never does on
        // moto, and takes up to days on AWS).
        created_at: Timestamp::now() - jiff::SignedDuration::from_hours(2),
        expires_at: Timestamp::now() - jiff::SignedDuration::from_hours(1),
    };
    assert_eq!(
        store.insert_event(&old, Some(&stale)).await.unwrap(),
        InsertEventOutcome::Inserted
    );
    let new = keyed();
    let fresh = IdempotencyRecord {
        event_id: new.id,
        body_sha256: "2".into(),
        created_at: Timestamp::now(),
        expires_at: Timestamp::now() + jiff::SignedDuration::from_hours(1),
        ..stale.clone()
    };
    assert_eq!(
        store.insert_event(&new, Some(&fresh)).await.unwrap(),
        InsertEventOutcome::Inserted
    );
    // And the fresh record is the one that dedupes now.
    let third = keyed();
    let again = IdempotencyRecord {
        event_id: third.id,
        ..fresh.clone()
    };
    assert_eq!(
        store.insert_event(&third, Some(&again)).await.unwrap(),
        InsertEventOutcome::Duplicate(fresh)
    );
}

#[tokio::test]
async fn a_256_kib_event_is_stored_once_and_its_messages_stay_tiny() {
    let store = dynamo_store(DynamoConfig::new(unique("herald"))).await;
    let t = TenantId::new();
    let mut ev = event(t, "document.created");
    ev.data = serde_json::json!({ "body": "x".repeat(256 * 1024) });
    store.insert_event(&ev, None).await.unwrap();
    assert_eq!(store.get_event(&t, &ev.id).await.unwrap(), Some(ev.clone()));
    let message = herald_core::ports::QueueMessage::Event(herald_core::model::EventMessage {
        tenant_id: t,
        event_id: ev.id,
        event: herald_aws::CARRIED.carry(&ev),
    });
    assert!(herald_aws::encode_body(&message).unwrap().len() < 1024);
}

#[tokio::test]
async fn aws_failures_are_backend_errors_that_name_the_operation() {
    let store = DynamoStore::new(dynamodb_client(), DynamoConfig::new(unique("missing")));
    let err = store.get_tenant(&TenantId::new()).await.unwrap_err();
    let StoreError::Backend(inner) = &err else {
        panic!("{err:?}")
    };
    let aws = inner.downcast_ref::<AwsError>().unwrap();
    assert_eq!(aws.operation, "DynamoDB.GetItem");
    assert_eq!(aws.code.as_deref(), Some("ResourceNotFoundException"));
    // Said once, without the SDK's raw response: the line a log shows.
    let line = herald_core::ErrorChain(&err).to_string();
    assert_eq!(
        line.matches("ResourceNotFoundException").count(),
        1,
        "{line}"
    );
    assert_eq!(
        line.matches("Requested resource not found").count(),
        1,
        "{line}"
    );
    assert!(
        line.starts_with("storage backend failed: DynamoDB.GetItem failed: "),
        "{line}"
    );
    assert!(!line.contains("Response {"), "{line}");

    let queue = SqsQueue::new(
        sqs_client(),
        SqsConfig {
            events_queue_url: format!("{}/123456789012/missing-events", moto().endpoint()),
            deliveries_queue_url: format!("{}/123456789012/missing-deliveries", moto().endpoint()),
        },
    );
    let err = queue
        .send(vec![now(delivery_message(1))])
        .await
        .unwrap_err();
    let QueueError::Backend(inner) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        inner.downcast_ref::<AwsError>().unwrap().operation,
        "SQS.SendMessageBatch"
    );
}

#[tokio::test]
async fn queues_redrive_to_their_dead_letter_queue() {
    let client = sqs_client();
    let prefix = unique("herald");
    let (events, deliveries) = create_queues(&client, &prefix).await.unwrap();
    for (url, name) in [(&events, "events"), (&deliveries, "deliveries")] {
        let attributes = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap();
        let policy: serde_json::Value = serde_json::from_str(
            attributes
                .attributes()
                .unwrap()
                .get(&QueueAttributeName::RedrivePolicy)
                .unwrap(),
        )
        .unwrap();
        assert!(policy["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{prefix}-{name}-dlq")));
        assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), "5");
    }

    let queue = SqsQueue::new(
        client.clone(),
        SqsConfig {
            events_queue_url: events,
            deliveries_queue_url: deliveries,
        },
    );
    let message = delivery_message(1);
    queue.send(vec![now(message.clone())]).await.unwrap();
    // Received and never acked, five times (a zero lease makes it visible again at once).
    let start = Instant::now();
    let mut counts = Vec::new();
    while counts.len() < 5 {
        assert!(start.elapsed() < Duration::from_secs(60), "{counts:?}");
        for m in queue
            .receive(D, 1, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap()
        {
            assert_eq!(m.message, message);
            counts.push(m.receive_count);
        }
    }
    assert_eq!(counts, vec![1, 2, 3, 4, 5]);
    // The sixth receive finds it gone to the dead-letter queue.
    let dlq = client
        .get_queue_url()
        .queue_name(format!("{prefix}-deliveries-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let start = Instant::now();
    let body = loop {
        assert!(queue
            .receive(D, 10, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap()
            .is_empty());
        let out = client
            .receive_message()
            .queue_url(&dlq)
            .send()
            .await
            .unwrap();
        if let Some(m) = out.messages().first() {
            break m.body().unwrap().to_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        serde_json::from_str::<herald_core::ports::QueueMessage>(&body).unwrap(),
        message
    );
}

#[tokio::test]
async fn an_undecodable_body_is_skipped_not_fatal() {
    let queue = sqs_queue().await;
    sqs_client()
        .send_message()
        .queue_url(&queue.config().deliveries_queue_url)
        .message_body("not a Herald message")
        .send()
        .await
        .unwrap();
    let good = delivery_message(2);
    queue.send(vec![now(good.clone())]).await.unwrap();
    let start = Instant::now();
    loop {
        let got = queue
            .receive(D, 10, Duration::ZERO, Duration::from_secs(120))
            .await
            .unwrap();
        assert!(got.iter().all(|m| m.message == good));
        if !got.is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn delays_beyond_15_minutes_are_capped_not_refused() {
    let queue = sqs_queue().await;
    assert_eq!(queue.max_delay(), Duration::from_secs(900));
    queue
        .send(vec![after(
            delivery_message(1),
            Duration::from_secs(10 * 3600),
        )])
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(queue
            .receive(D, 10, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn filtered_lists_page_across_dynamodb_query_pages() {
    // More rows than one internal Query page holds, with the few matching ones far apart, so the
    // adapter must follow LastEvaluatedKey within one list call.
    let store = dynamo_store(DynamoConfig::new(unique("herald"))).await;
    let t = TenantId::new();
    let mut matching = Vec::new();
    for i in 0..230 {
        let wanted = i % 75 == 0;
        let sub = herald_contract::fixtures::subscription(
            t,
            &[if wanted {
                "article.created"
            } else {
                "book.created"
            }],
            !wanted || i != 150,
        );
        store.create_subscription(&sub).await.unwrap();
        if wanted {
            matching.push(sub);
        }
    }
    matching.sort_by_key(|s| std::cmp::Reverse(s.id));
    let filter = herald_core::ports::SubscriptionFilter {
        event: Some(herald_core::pattern::EventType::parse("article.created").unwrap()),
        enabled: None,
    };
    let first = store
        .list_subscriptions(&t, &filter, &herald_contract::fixtures::page(3, None))
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        matching[..3].iter().map(|s| s.id).collect::<Vec<_>>()
    );
    let second = store
        .list_subscriptions(
            &t,
            &filter,
            &herald_contract::fixtures::page(3, first.next_cursor),
        )
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![matching[3].id]
    );
    assert_eq!(second.next_cursor, None);

    let disabled = herald_core::ports::SubscriptionFilter {
        event: None,
        enabled: Some(false),
    };
    let p = store
        .list_subscriptions(&t, &disabled, &herald_contract::fixtures::page(10, None))
        .await
        .unwrap();
    assert_eq!(p.items.len(), 1);
    assert_eq!(p.next_cursor, None);
    assert_eq!(store.enabled_subscriptions(&t).await.unwrap().len(), 229);
}

/// The write-then-send window: an attempt recorded whose retry was never sent (the process died
/// between the two). When the attempt's message comes back, redrive sends the retry; a message no
/// longer needed is not sent.
#[tokio::test]
async fn redrive_sends_what_a_crash_between_write_and_send_left_out_and_nothing_else() {
    use herald_aws::AwsUnitOfWork;
    use herald_core::model::{DeliveryMessage, DeliveryStatus};
    use herald_core::ports::{QueueMessage, UnitOfWork};

    let store = dynamo_store(DynamoConfig::new(unique("herald"))).await;
    let queue = sqs_queue().await;
    let writes = AwsUnitOfWork::new(store.clone(), queue.clone());
    let t = TenantId::new();
    let ev = event(t, "document.created");
    let mut d = delivery(t, SubscriptionId::new(), &ev);
    // Intake stored the event; the crash came before its first attempt was sent.
    let first = QueueMessage::Delivery(DeliveryMessage::attempt_of(&d, 1));
    writes.redrive(vec![now(first.clone())]).await.unwrap();
    let got = queue
        .receive(D, 10, Duration::from_secs(2), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "a first attempt not made is sent");
    assert_eq!(got[0].message, first);
    queue.ack(D, &got[0].receipt).await.unwrap();

    // Attempt 1 recorded; the crash came before its retry was sent.
    d.attempts = 1;
    d.status = DeliveryStatus::Retrying;
    store.record_attempt(&attempt(&d, 1), &d).await.unwrap();
    let retry = QueueMessage::Delivery(DeliveryMessage::attempt_of(&d, 2));
    let stale = QueueMessage::Delivery(DeliveryMessage::attempt_of(&d, 1));

    writes
        .redrive(vec![now(retry.clone()), now(stale)])
        .await
        .unwrap();

    let got = queue
        .receive(D, 10, Duration::from_secs(2), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "only the missing retry is sent");
    assert_eq!(got[0].message, retry);
    queue.ack(D, &got[0].receipt).await.unwrap();

    // Once the delivery is over, nothing is redriven.
    d.attempts = 2;
    d.status = DeliveryStatus::Succeeded;
    store.record_attempt(&attempt(&d, 2), &d).await.unwrap();
    writes.redrive(vec![now(retry)]).await.unwrap();
    let got = queue
        .receive(D, 10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(got.is_empty(), "{got:?}");
}

/// The documented partition of an event: its tenant's event shard, read off its id.
fn event_pk(t: TenantId, e: &herald_core::model::Event) -> String {
    format!("{t}#EVT#{}", e.id.random_bits() % u128::from(EVENT_SHARDS))
}

#[tokio::test]
async fn events_stored_before_sharding_are_still_read_by_id_and_listed_once_their_key_is_used() {
    let config = DynamoConfig::new(unique("herald"));
    let table = config.table.clone();
    let store = dynamo_store(config).await;
    let client = dynamodb_client();
    let t = TenantId::new();
    // An unkeyed event as the earlier layout kept it: its own partition, sort key `EVENT`.
    let old = event(t, "document.created");
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(format!("{t}#{}", old.id)))
        .item("sk", AttributeValue::S("EVENT".into()))
        .item(
            "doc",
            AttributeValue::S(serde_json::to_string(&old).unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(store.get_event(&t, &old.id).await.unwrap(), Some(old));

    // A keyed event as the earlier layout kept it: inside its key's item, with its record.
    let legacy = herald_contract::fixtures::keyed_event(t, "document.created", "key:legacy");
    let legacy_record = IdempotencyRecord {
        tenant_id: t,
        key: "key:legacy".into(),
        body_sha256: "h".into(),
        event_id: legacy.id,
        created_at: legacy.timestamp,
        expires_at: Timestamp::MAX,
    };
    let doc = serde_json::json!({"event": legacy, "idempotency": legacy_record});
    client
        .put_item()
        .table_name(&table)
        .item(
            "pk",
            AttributeValue::S(format!("{t}#KEYED#{:020x}", legacy.id.random_bits())),
        )
        .item("sk", AttributeValue::S("EVENT".into()))
        .item("doc", AttributeValue::S(doc.to_string()))
        .item(
            "window_ends",
            AttributeValue::N(Timestamp::MAX.as_second().to_string()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.get_event(&t, &legacy.id).await.unwrap(),
        Some(legacy.clone())
    );
    let page = herald_core::ports::PageRequest {
        limit: 10,
        cursor: None,
    };
    assert!(store
        .list_events(&t, None, &page)
        .await
        .unwrap()
        .items
        .is_empty());
    // The next use of its key copies it into its shard, where it is listed.
    let again = herald_contract::fixtures::keyed_event(t, "document.created", "key:legacy");
    let again_record = IdempotencyRecord {
        event_id: again.id,
        ..legacy_record.clone()
    };
    assert_eq!(
        store
            .insert_event(&again, Some(&again_record))
            .await
            .unwrap(),
        InsertEventOutcome::Duplicate(legacy_record)
    );
    assert_eq!(
        store.list_events(&t, None, &page).await.unwrap().items,
        vec![legacy]
    );
}

#[tokio::test]
async fn a_key_taken_by_an_event_a_crash_left_unstored_stores_it_when_answered() {
    let config = DynamoConfig::new(unique("herald"));
    let table = config.table.clone();
    let store = dynamo_store(config).await;
    let client = dynamodb_client();
    let t = TenantId::new();
    let keyed = herald_contract::fixtures::keyed_event(t, "document.created", "key:cut");
    let record = IdempotencyRecord {
        tenant_id: t,
        key: "key:cut".into(),
        body_sha256: "h".into(),
        event_id: keyed.id,
        created_at: keyed.timestamp,
        expires_at: Timestamp::MAX,
    };
    store.insert_event(&keyed, Some(&record)).await.unwrap();
    // The key's item is small: the record alone, kept for its window.
    let key_item = raw_item(
        &client,
        &table,
        format!("{t}#KEYED#{:020x}", keyed.id.random_bits()),
        "EVENT",
    )
    .await;
    assert_eq!(expires_at(&key_item), Some(Timestamp::MAX.as_second()));
    // A crash between the key's put and the event's.
    client
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(event_pk(t, &keyed)))
        .key("sk", AttributeValue::S(keyed.id.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(store.get_event(&t, &keyed.id).await.unwrap(), None);

    // Another body under the key stores nothing; the same request again stores the event it is
    // answered with.
    let other = herald_contract::fixtures::keyed_event(t, "article.created", "key:cut");
    let other_record = IdempotencyRecord {
        event_id: other.id,
        body_sha256: "other".into(),
        created_at: other.timestamp,
        ..record.clone()
    };
    assert_eq!(
        store
            .insert_event(&other, Some(&other_record))
            .await
            .unwrap(),
        InsertEventOutcome::Duplicate(record.clone())
    );
    assert_eq!(store.get_event(&t, &keyed.id).await.unwrap(), None);
    let retry = Event {
        id: herald_contract::fixtures::keyed_event(t, "document.created", "key:cut").id,
        timestamp: Timestamp::now(),
        ..keyed.clone()
    };
    let retried = IdempotencyRecord {
        event_id: retry.id,
        created_at: retry.timestamp,
        ..record.clone()
    };
    assert_eq!(
        store.insert_event(&retry, Some(&retried)).await.unwrap(),
        InsertEventOutcome::Duplicate(record)
    );
    assert_eq!(
        store.get_event(&t, &keyed.id).await.unwrap(),
        Some(keyed.clone())
    );
    let page = herald_core::ports::PageRequest {
        limit: 10,
        cursor: None,
    };
    assert_eq!(
        store.list_events(&t, None, &page).await.unwrap().items,
        vec![keyed]
    );
}

/// The documented partition of a delivery: its subscription's log shard, read off its id.
fn log_pk(t: TenantId, d: &herald_core::model::Delivery) -> String {
    format!(
        "{t}#LOG#{:010x}#{}",
        d.id.subscription_tag(),
        d.id.spread() % LOG_SHARDS
    )
}
