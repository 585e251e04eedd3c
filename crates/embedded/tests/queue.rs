//! The queue's contract: send/receive/ack (one by one and in batches), delays, visibility timeouts,
//! release, receipts, waking.
//! Timing assertions are strict on lower bounds and loose on upper bounds, so a slow machine does
//! not fail them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use herald_core::ports::{OutgoingMessage, Queue, QueueError, QueueName};

const D: QueueName = QueueName::Deliveries;
const NO_WAIT: Duration = Duration::ZERO;
const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn send_receive_ack() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir).queue();
    assert!(queue.max_delay() >= Duration::from_secs(12 * 3600));
    queue
        .send(
            (1..=5)
                .map(|n| now(delivery_message(n)))
                .chain([now(event_message())])
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(queue.len(D), 5);
    assert_eq!(queue.len(QueueName::Events), 1);

    let got = queue.receive(D, 3, NO_WAIT, LONG).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|m| attempt_of(&m.message))
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(got.iter().all(|m| m.receive_count == 1));
    let rest = queue.receive(D, 10, NO_WAIT, LONG).await.unwrap();
    assert_eq!(
        rest.iter()
            .map(|m| attempt_of(&m.message))
            .collect::<Vec<_>>(),
        vec![4, 5]
    );
    // Everything is leased now.
    assert!(queue
        .receive(D, 10, NO_WAIT, LONG)
        .await
        .unwrap()
        .is_empty());

    for m in got.iter().chain(&rest) {
        queue.ack(D, &m.receipt).await.unwrap();
    }
    assert!(queue.is_empty(D));
    // Acking twice is harmless.
    queue.ack(D, &got[0].receipt).await.unwrap();

    let ev = queue
        .receive(QueueName::Events, 10, NO_WAIT, LONG)
        .await
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert!(matches!(
        ev[0].message,
        herald_core::ports::QueueMessage::Event(_)
    ));

    assert!(matches!(
        queue.ack(D, "not a receipt").await,
        Err(QueueError::Codec(_))
    ));
    assert!(matches!(
        queue.release(D, "1:x", Duration::ZERO).await,
        Err(QueueError::Codec(_))
    ));
}

#[tokio::test]
async fn delay_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir).queue();
    let sent = Instant::now();
    queue
        .send(vec![OutgoingMessage {
            message: delivery_message(1),
            delay: Duration::from_millis(300),
        }])
        .await
        .unwrap();
    queue.send(vec![now(delivery_message(2))]).await.unwrap();

    // The undelayed one comes first, the delayed one is not there yet.
    let first = queue.receive(D, 10, NO_WAIT, LONG).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|m| attempt_of(&m.message))
            .collect::<Vec<_>>(),
        vec![2]
    );
    if sent.elapsed() < Duration::from_millis(250) {
        assert!(queue
            .receive(D, 10, Duration::from_millis(50), LONG)
            .await
            .unwrap()
            .is_empty());
    }

    // A waiting receive gets it as soon as it is due, not at the end of its wait.
    let got = queue
        .receive(D, 10, Duration::from_secs(20), LONG)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(attempt_of(&got[0].message), 1);
    let elapsed = sent.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test]
async fn visibility_timeout_brings_a_message_back() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir).queue();
    queue.send(vec![now(delivery_message(7))]).await.unwrap();
    let leased_at = Instant::now();
    let first = queue
        .receive(D, 1, NO_WAIT, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(first[0].receive_count, 1);
    if leased_at.elapsed() < Duration::from_millis(150) {
        assert!(queue.receive(D, 1, NO_WAIT, LONG).await.unwrap().is_empty());
    }
    let second = queue
        .receive(D, 1, Duration::from_secs(20), LONG)
        .await
        .unwrap();
    assert!(leased_at.elapsed() >= Duration::from_millis(200));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].receive_count, 2);
    assert_eq!(second[0].message, first[0].message);

    // The first holder's receipt is stale: its ack must not delete the re-leased message.
    queue.ack(D, &first[0].receipt).await.unwrap();
    assert_eq!(queue.len(D), 1);
    queue
        .release(D, &first[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    assert!(queue.receive(D, 1, NO_WAIT, LONG).await.unwrap().is_empty());
    queue.ack(D, &second[0].receipt).await.unwrap();
    assert!(queue.is_empty(D));
}

#[tokio::test]
async fn ack_many_ignores_stale_receipts_and_its_deletes_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(&dir);
        let queue = db.queue();
        queue
            .send((1..=3).map(|n| now(delivery_message(n))).collect())
            .await
            .unwrap();
        let first = queue
            .receive(D, 3, NO_WAIT, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(first.len(), 3);
        let second = queue
            .receive(D, 3, Duration::from_secs(20), LONG)
            .await
            .unwrap();
        assert_eq!(second.len(), 3);
        assert!(second.iter().all(|m| m.receive_count == 2));

        // The first leases' receipts are stale: acking them deletes nothing.
        let stale = first.iter().map(|m| m.receipt.clone()).collect();
        queue.ack_many(D, stale).await.unwrap();
        assert_eq!(queue.len(D), 3);
        let current = second[..2].iter().map(|m| m.receipt.clone()).collect();
        queue.ack_many(D, current).await.unwrap();
        assert_eq!(queue.len(D), 1);
    }
    // After a restart only the message that was not acked is there.
    let queue = open(&dir).queue();
    assert_eq!(queue.len(D), 1);
}

#[tokio::test]
async fn release_makes_a_message_visible_again() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir).queue();
    queue
        .send(vec![now(delivery_message(1)), now(delivery_message(2))])
        .await
        .unwrap();
    let got = queue.receive(D, 2, NO_WAIT, LONG).await.unwrap();

    queue
        .release(D, &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = queue.receive(D, 10, NO_WAIT, LONG).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message, got[0].message);
    assert_eq!(again[0].receive_count, 2);

    let released_at = Instant::now();
    queue
        .release(D, &got[1].receipt, Duration::from_millis(250))
        .await
        .unwrap();
    if released_at.elapsed() < Duration::from_millis(200) {
        assert!(queue
            .receive(D, 10, NO_WAIT, LONG)
            .await
            .unwrap()
            .is_empty());
    }
    let later = queue
        .receive(D, 10, Duration::from_secs(20), LONG)
        .await
        .unwrap();
    assert!(released_at.elapsed() >= Duration::from_millis(250));
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].message, got[1].message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_receiver_wakes_on_send() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir).queue();
    let waiter = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let got = queue
                .receive(D, 10, Duration::from_secs(20), LONG)
                .await
                .unwrap();
            (got, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    queue.send(vec![now(delivery_message(3))]).await.unwrap();
    let (got, waited) = waiter.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    // A wait with nothing to get ends at its deadline, not before.
    let start = Instant::now();
    assert!(queue
        .receive(D, 10, Duration::from_millis(150), LONG)
        .await
        .unwrap()
        .is_empty());
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_receivers_get_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir).queue();
    let n = 500u32;
    // Receivers stop once every message is acked, however long the sends take.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut receivers = Vec::new();
    for _ in 0..4 {
        let (queue, acked) = (queue.clone(), acked.clone());
        receivers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while acked.load(std::sync::atomic::Ordering::SeqCst) < n {
                let got = queue
                    .receive(D, 7, Duration::from_millis(100), LONG)
                    .await
                    .unwrap();
                for m in got {
                    queue.ack(D, &m.receipt).await.unwrap();
                    mine.push(attempt_of(&m.message));
                    acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            mine
        }));
    }
    for chunk in (1..=n).collect::<Vec<_>>().chunks(50) {
        queue
            .send(chunk.iter().map(|a| now(delivery_message(*a))).collect())
            .await
            .unwrap();
    }
    let mut all = Vec::new();
    for r in receivers {
        all.extend(r.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=n).collect::<Vec<_>>());
    assert!(queue.is_empty(D));
}
