//! Durability: what was acknowledged survives closing the database and survives SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use herald_core::ids::TenantId;
use herald_core::ports::{
    DeliveryStore, EventStore, OutgoingMessage, Queue, QueueName, SubscriptionStore, TenantStore,
    UnitOfWork,
};

const D: QueueName = QueueName::Deliveries;
const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn everything_is_there_after_reopen_and_unacked_messages_are_visible_again() {
    let dir = tempfile::tempdir().unwrap();
    let t = tenant();
    let sub = subscription(t.id, &["*"], true);
    let ev = event(t.id, "document.created");
    let del = delivery(t.id, sub.id, &ev);
    {
        let db = open(&dir);
        let (store, queue) = (db.store(), db.queue());
        store.put_tenant(&t).await.unwrap();
        store.create_subscription(&sub).await.unwrap();
        let writes = db.outbox();
        writes
            .insert_event_and_send(&ev, None, Vec::new())
            .await
            .unwrap();
        writes
            .record_attempt_and_send(&attempt(&del, 1), &del, Vec::new())
            .await
            .unwrap();
        queue
            .send((1..=4).map(|n| now(delivery_message(n))).collect())
            .await
            .unwrap();
        queue
            .send(vec![OutgoingMessage {
                message: delivery_message(99),
                delay: Duration::from_secs(3600),
            }])
            .await
            .unwrap();
        let got = queue.receive(D, 3, Duration::ZERO, LONG).await.unwrap();
        assert_eq!(got.len(), 3);
        queue.ack(D, &got[0].receipt).await.unwrap(); // 1 is gone for good
                                                      // 2 and 3 stay leased for 30 s, 4 is untouched, 99 is delayed by an hour.
    }
    let db = open(&dir);
    let (store, queue) = (db.store(), db.queue());
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(
        store.get_subscription(&t.id, &sub.id).await.unwrap(),
        Some(sub.clone())
    );
    assert_eq!(
        store.get_event(&t.id, &ev.id).await.unwrap(),
        Some(ev.clone())
    );
    assert_eq!(
        store.get_delivery(&t.id, &del.id).await.unwrap(),
        Some(del.clone())
    );
    assert_eq!(store.list_attempts(&t.id, &del.id).await.unwrap().len(), 1);

    // Leases are forgotten; the delay is not.
    assert_eq!(queue.len(D), 4);
    let got = queue.receive(D, 10, Duration::ZERO, LONG).await.unwrap();
    let mut attempts: Vec<u32> = got.iter().map(|m| attempt_of(&m.message)).collect();
    attempts.sort();
    assert_eq!(attempts, vec![2, 3, 4]);
    // Recovered messages may have been received before the restart, so they count as received
    // once already: handlers then run their crash-recovery checks.
    assert!(got.iter().all(|m| m.receive_count == 2));

    // New sequence numbers continue after the recovered ones.
    queue.send(vec![now(delivery_message(5))]).await.unwrap();
    let got = queue.receive(D, 10, Duration::ZERO, LONG).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(attempt_of(&got[0].message), 5);
}

const CHILD_ENV: &str = "HERALD_EMBEDDED_CRASH_CHILD_DIR";
const TEST_NAME: &str = "acknowledged_writes_survive_sigkill";

/// The child half: write as fast as possible from many tasks and print each write once it is
/// acknowledged, until killed.
fn crash_child(dir: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let db = herald_embedded::EmbeddedDb::open(std::path::Path::new(dir)).unwrap();
        let mut tasks = Vec::new();
        for worker in 0..32u32 {
            let (store, queue) = (db.store(), db.queue());
            tasks.push(tokio::spawn(async move {
                for i in 0u32.. {
                    if i % 2 == 0 {
                        let t = tenant();
                        store.put_tenant(&t).await.unwrap();
                        println!("ACK tenant {}", t.id);
                    } else {
                        let attempt = worker * 1_000_000 + i;
                        queue
                            .send(vec![now(delivery_message(attempt))])
                            .await
                            .unwrap();
                        println!("ACK message {attempt}");
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        crash_child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut tenants = HashSet::new();
    let mut messages = HashSet::new();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked_this_round = 0;
        let mut record = |line: &str| {
            if let Some(id) = line.strip_prefix("ACK tenant ") {
                tenants.insert(TenantId::parse(id).unwrap());
            } else if let Some(n) = line.strip_prefix("ACK message ") {
                messages.insert(n.parse::<u32>().unwrap());
            } else {
                return false;
            }
            true
        };
        // Kill it in full flight, at a different point each round.
        for line in lines.by_ref() {
            if record(&line.unwrap()) {
                acked_this_round += 1;
                if acked_this_round == 300 + round * 250 {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
                               // Whatever it printed before dying was acknowledged too.
        for line in lines {
            match line {
                Ok(line) => {
                    record(&line);
                }
                Err(_) => break,
            }
        }
        child.wait().unwrap();
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = herald_embedded::EmbeddedDb::open(dir.path()).unwrap();
        let (store, queue) = (db.store(), db.queue());
        for t in &tenants {
            assert!(
                store.get_tenant(t).await.unwrap().is_some(),
                "tenant {t} lost"
            );
        }
        let mut stored = HashSet::new();
        loop {
            let got = queue.receive(D, 1000, Duration::ZERO, LONG).await.unwrap();
            if got.is_empty() {
                break;
            }
            stored.extend(got.iter().map(|m| attempt_of(&m.message)));
        }
        let lost: Vec<_> = messages.difference(&stored).collect();
        assert!(lost.is_empty(), "{} acknowledged messages lost", lost.len());
        eprintln!(
            "after 3 SIGKILLs: {} acknowledged tenants and {} acknowledged messages all present",
            tenants.len(),
            messages.len()
        );
    });
}

#[tokio::test]
async fn closed_resolves_once_the_last_handle_is_gone_and_the_folder_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = herald_embedded::EmbeddedDb::open(dir.path()).unwrap();
    let store = db.store();
    let mut closed = std::pin::pin!(db.closed());
    drop(db);
    // A zero timeout polls it once.
    assert!(
        tokio::time::timeout(Duration::ZERO, closed.as_mut())
            .await
            .is_err(),
        "a store handle still holds it"
    );
    assert!(herald_embedded::EmbeddedDb::open(dir.path()).is_err());
    drop(store);
    tokio::time::timeout(LONG, closed).await.unwrap();
    herald_embedded::EmbeddedDb::open(dir.path()).unwrap();
}
