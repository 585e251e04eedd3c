//! The queue's contract: send/receive/ack (one by one and in batches), delays (and the age at
//! receipt counted from when a message was due), visibility timeouts,
//! release, batches.
//!
//! Polls use short receives (no long-poll wait) with a pause in between: some emulators spin while
//! a long poll waits on in-flight messages, and a short receive may return fewer messages than
//! are visible (SQS samples its servers), so every expectation is "eventually, within a generous
//! deadline".

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::ports::{Queue, QueueError, QueueMessage, QueueName, ReceivedMessage};

use crate::fixtures::{after, attempt_of, delivery_message, event_message, now};

const D: QueueName = QueueName::Deliveries;
const E: QueueName = QueueName::Events;
/// A lease that outlives any test.
const LONG: Duration = Duration::from_secs(120);
/// How long an expectation may take to come true.
const DEADLINE: Duration = Duration::from_secs(60);
const PAUSE: Duration = Duration::from_millis(50);

/// Receives (leasing for `visibility`) until `n` messages came or the deadline passed.
async fn receive_n(
    queue: &dyn Queue,
    name: QueueName,
    n: usize,
    visibility: Duration,
) -> Vec<ReceivedMessage> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            start.elapsed() < DEADLINE,
            "only {} of {n} messages arrived within {DEADLINE:?}",
            got.len()
        );
        let batch = queue
            .receive(name, (n - got.len()).min(10), Duration::ZERO, visibility)
            .await
            .unwrap();
        if batch.is_empty() {
            tokio::time::sleep(PAUSE).await;
        }
        got.extend(batch);
    }
    got
}

/// Receives until `message` comes; returns it and the time it arrived. Fails on anything else.
async fn receive_this(
    queue: &dyn Queue,
    name: QueueName,
    message: &QueueMessage,
    visibility: Duration,
) -> (ReceivedMessage, Instant) {
    let got = receive_n(queue, name, 1, visibility).await;
    let at = Instant::now();
    assert_eq!(&got[0].message, message, "an unexpected message arrived");
    (got.into_iter().next().unwrap(), at)
}

/// Nothing is visible on `name` for a short while (several polls).
async fn assert_nothing_visible(queue: &dyn Queue, name: QueueName) {
    for _ in 0..5 {
        let got = queue.receive(name, 10, Duration::ZERO, LONG).await.unwrap();
        assert!(got.is_empty(), "unexpected messages: {got:?}");
        tokio::time::sleep(PAUSE).await;
    }
}

fn attempts(got: &[ReceivedMessage]) -> Vec<u32> {
    let mut a: Vec<u32> = got.iter().map(|m| attempt_of(&m.message)).collect();
    a.sort();
    a
}

pub async fn send_receive_ack(queue: Arc<dyn Queue>) {
    let queue = queue.as_ref();
    // SQS's limit; the core chains anything longer.
    assert!(queue.max_delay() >= Duration::from_secs(900));
    queue.send(Vec::new()).await.unwrap();
    assert!(queue
        .receive(D, 0, Duration::ZERO, LONG)
        .await
        .unwrap()
        .is_empty());

    let event = event_message();
    queue
        .send(
            (1..=5)
                .map(|n| now(delivery_message(n)))
                .chain([now(event.clone())])
                .collect(),
        )
        .await
        .unwrap();

    let got = receive_n(queue, D, 5, LONG).await;
    assert_eq!(attempts(&got), vec![1, 2, 3, 4, 5]);
    assert!(got.iter().all(|m| m.receive_count == 1));
    // Everything is leased now.
    assert_nothing_visible(queue, D).await;

    let (ev, _) = receive_this(queue, E, &event, LONG).await;
    assert_eq!(ev.receive_count, 1);

    for m in &got {
        queue.ack(D, &m.receipt).await.unwrap();
    }
    // Acking twice is harmless.
    queue.ack(D, &got[0].receipt).await.unwrap();
    queue.ack(E, &ev.receipt).await.unwrap();

    // An acked message does not come back when its lease would have ended.
    let short = delivery_message(6);
    queue.send(vec![now(short.clone())]).await.unwrap();
    let (m, _) = receive_this(queue, D, &short, Duration::from_secs(1)).await;
    queue.ack(D, &m.receipt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_nothing_visible(queue, D).await;
}

pub async fn ack_many_removes_each_message_it_names(queue: Arc<dyn Queue>) {
    let queue = queue.as_ref();
    queue.ack_many(D, Vec::new()).await.unwrap();
    // More than one SQS batch.
    queue
        .send((1..=12).map(|n| now(delivery_message(n))).collect())
        .await
        .unwrap();
    // A short lease, so a message that was not acked would be back before the end.
    let lease = Duration::from_secs(2);
    let leased_at = Instant::now();
    let mut got = receive_n(queue, D, 12, lease).await;
    got.sort_by_key(|m| attempt_of(&m.message));
    let last = got.pop().unwrap();

    // Repeats are harmless, within one call and across calls.
    let mut receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    receipts.push(got[0].receipt.clone());
    queue.ack_many(D, receipts).await.unwrap();
    queue
        .ack_many(D, vec![got[1].receipt.clone()])
        .await
        .unwrap();
    // A foreign receipt is refused, and does not keep the good one beside it from being acked.
    assert!(matches!(
        queue
            .ack_many(D, vec!["not a receipt".into(), last.receipt.clone()])
            .await,
        Err(QueueError::Codec(_))
    ));

    let back_by = leased_at + lease + Duration::from_millis(1500);
    tokio::time::sleep_until(back_by.into()).await;
    assert_nothing_visible(queue, D).await;
}

pub async fn delay_is_honoured(queue: Arc<dyn Queue>) {
    let queue = queue.as_ref();
    // Not whole seconds: an adapter that rounds must round up, never deliver early.
    let delay = Duration::from_millis(1500);
    let delayed = delivery_message(1);
    let prompt = delivery_message(2);
    let sent = Instant::now();
    queue
        .send(vec![after(delayed.clone(), delay)])
        .await
        .unwrap();
    queue.send(vec![now(prompt.clone())]).await.unwrap();

    // The undelayed one comes first; the delayed one never before its time.
    let (first, _) = receive_this(queue, D, &prompt, LONG).await;
    assert_eq!(first.receive_count, 1);
    assert!(
        first.waited.is_some(),
        "the queue's age at receipt is known"
    );
    let (late, at) = receive_this(queue, D, &delayed, LONG).await;
    let waited = at - sent;
    assert!(
        waited >= delay,
        "delivered after {waited:?}, before its delay"
    );
    assert!(waited < DEADLINE, "{waited:?}");
    // Its age at receipt counts from when it was due, not from when it was sent.
    let age = late.waited.expect("the queue's age at receipt is known");
    assert!(
        age + Duration::from_millis(1000) <= waited,
        "age {age:?} of a message received {waited:?} after it was sent with a {delay:?} delay"
    );
}

pub async fn visibility_timeout_brings_a_message_back(queue: Arc<dyn Queue>) {
    let queue = queue.as_ref();
    let visibility = Duration::from_secs(1);
    let message = delivery_message(7);
    queue.send(vec![now(message.clone())]).await.unwrap();
    let leased_at = Instant::now();
    let (first, _) = receive_this(queue, D, &message, visibility).await;
    assert_eq!(first.receive_count, 1);

    let (second, at) = receive_this(queue, D, &message, LONG).await;
    assert!(
        at - leased_at >= visibility,
        "back after {:?}, before its lease ended",
        at - leased_at
    );
    assert_eq!(second.receive_count, 2);
    queue.ack(D, &second.receipt).await.unwrap();
}

pub async fn release_makes_a_message_visible_again(queue: Arc<dyn Queue>) {
    let queue = queue.as_ref();
    queue
        .send(vec![now(delivery_message(1)), now(delivery_message(2))])
        .await
        .unwrap();
    let mut got = receive_n(queue, D, 2, LONG).await;
    got.sort_by_key(|m| attempt_of(&m.message));

    queue
        .release(D, &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let (again, _) = receive_this(queue, D, &got[0].message, LONG).await;
    assert_eq!(again.receive_count, 2);

    let delay = Duration::from_secs(1);
    let released_at = Instant::now();
    queue.release(D, &got[1].receipt, delay).await.unwrap();
    let (later, at) = receive_this(queue, D, &got[1].message, LONG).await;
    assert!(
        at - released_at >= delay,
        "back after {:?}, before its delay",
        at - released_at
    );
    assert_eq!(later.receive_count, 2);
    queue.ack(D, &again.receipt).await.unwrap();
    queue.ack(D, &later.receipt).await.unwrap();
}

pub async fn a_batch_arrives_exactly_once_on_the_right_queues(queue: Arc<dyn Queue>) {
    let queue = queue.as_ref();
    let events: Vec<QueueMessage> = (0..12).map(|_| event_message()).collect();
    // Interleaved, so an adapter that groups per queue has something to group.
    let mut batch = Vec::new();
    for n in 1..=25u32 {
        batch.push(now(delivery_message(n)));
        if let Some(e) = events.get(n as usize - 1) {
            batch.push(now(e.clone()));
        }
    }
    queue.send(batch).await.unwrap();

    let got = receive_n(queue, D, 25, LONG).await;
    assert_eq!(attempts(&got), (1..=25).collect::<Vec<_>>());
    let got_events = receive_n(queue, E, 12, LONG).await;
    let want: HashSet<_> = events.iter().map(|e| format!("{e:?}")).collect();
    let seen: HashSet<_> = got_events
        .iter()
        .map(|m| format!("{:?}", m.message))
        .collect();
    assert_eq!(seen, want);
    assert_nothing_visible(queue, D).await;
    assert_nothing_visible(queue, E).await;
    for m in got.iter().chain(&got_events) {
        let name = m.message.queue();
        queue.ack(name, &m.receipt).await.unwrap();
    }
}

pub async fn a_waiting_receive_gets_a_message_sent_during_its_wait(queue: Arc<dyn Queue>) {
    let waiter = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            let start = Instant::now();
            let got = queue
                .receive(D, 10, Duration::from_secs(15), LONG)
                .await
                .unwrap();
            (got, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let message = delivery_message(3);
    queue.send(vec![now(message.clone())]).await.unwrap();
    let (got, waited) = waiter.await.unwrap();
    assert_eq!(
        got.len(),
        1,
        "the waiting receive returned {got:?} after {waited:?}"
    );
    assert_eq!(got[0].message, message);
    queue.ack(D, &got[0].receipt).await.unwrap();
}

pub async fn bad_receipts_are_refused(queue: Arc<dyn Queue>) {
    assert!(matches!(
        queue.ack(D, "not a receipt").await,
        Err(QueueError::Codec(_))
    ));
    assert!(matches!(
        queue.release(D, "1:x", Duration::ZERO).await,
        Err(QueueError::Codec(_))
    ));
}
