//! Group commit under concurrency, and the numbers behind it (printed; run with `--nocapture`,
//! and `--release` for meaningful figures). Only correctness is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use herald_core::ids::{SubscriptionId, TenantId};
use herald_core::ports::{
    DeliveryStore, Queue, QueueName, SubscriptionStore, TenantStore, UnitOfWork,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_writes_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir);
    let store = db.store();
    let t = TenantId::new();
    let subs: Vec<_> = (0..1000).map(|_| subscription(t, &["*"], true)).collect();
    let before = db.writer_stats();
    let tasks: Vec<_> = subs
        .iter()
        .cloned()
        .map(|sub| {
            let store = store.clone();
            tokio::spawn(async move { store.create_subscription(&sub).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stats = db.writer_stats();
    let commits = stats.commits - before.commits;
    eprintln!("1,000 concurrent creates: {commits} commits");
    assert_eq!(stats.operations - before.operations, 1000);
    for sub in &subs {
        assert_eq!(
            store.get_subscription(&t, &sub.id).await.unwrap().as_ref(),
            Some(sub)
        );
    }
    assert_eq!(store.enabled_subscriptions(&t).await.unwrap().len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_latency_and_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir);
    let (store, queue, writes) = (db.store(), db.queue(), db.outbox());

    // One writer at a time: every write is its own transaction and fsync.
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let t = tenant();
        let start = Instant::now();
        store.put_tenant(&t).await.unwrap();
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    eprintln!(
        "single-op commit latency: mean {:?}, p50 {:?}, p99 {:?}",
        mean,
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100]
    );

    // 10,000 concurrent record_attempt calls.
    let t = TenantId::new();
    let sub = SubscriptionId::new();
    let deliveries: Vec<_> = (0..10_000)
        .map(|_| delivery(t, sub, &event(t, "document.created")))
        .collect();
    let before = db.writer_stats();
    let start = Instant::now();
    let tasks: Vec<_> = deliveries
        .iter()
        .cloned()
        .map(|mut d| {
            let writes = writes.clone();
            tokio::spawn(async move {
                d.attempts = 1;
                writes
                    .record_attempt_and_send(&attempt(&d, 1), &d, Vec::new())
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let elapsed = start.elapsed();
    let stats = db.writer_stats();
    eprintln!(
        "10,000 concurrent record_attempt: {:?} ({:.0}/s), {} commits",
        elapsed,
        10_000.0 / elapsed.as_secs_f64(),
        stats.commits - before.commits
    );
    for d in deliveries.iter().step_by(997) {
        assert_eq!(store.list_attempts(&t, &d.id).await.unwrap().len(), 1);
    }

    // The delivery hot path, per delivery: receive, record_attempt, ack — 200 workers in parallel.
    let n = 10_000u32;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        queue
            .send(chunk.iter().map(|a| now(delivery_message(*a))).collect())
            .await
            .unwrap();
    }
    let start = Instant::now();
    let before = db.writer_stats();
    let workers: Vec<_> = (0..200usize)
        .map(|w| {
            let (writes, queue) = (writes.clone(), queue.clone());
            let mine: Vec<_> = deliveries.iter().skip(w).step_by(200).cloned().collect();
            tokio::spawn(async move {
                let mut done = 0;
                for mut d in mine {
                    let got = queue
                        .receive(
                            QueueName::Deliveries,
                            1,
                            Duration::from_secs(5),
                            Duration::from_secs(60),
                        )
                        .await
                        .unwrap();
                    d.attempts = 2;
                    writes
                        .record_attempt_and_send(&attempt(&d, 2), &d, Vec::new())
                        .await
                        .unwrap();
                    for m in got {
                        queue.ack(QueueName::Deliveries, &m.receipt).await.unwrap();
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for w in workers {
        done += w.await.unwrap();
    }
    let elapsed = start.elapsed();
    let stats = db.writer_stats();
    eprintln!(
        "{done} × (receive + record_attempt + ack) with 200 workers: {:?} ({:.0} deliveries/s), {} commits for {} writes",
        elapsed,
        f64::from(done) / elapsed.as_secs_f64(),
        stats.commits - before.commits,
        stats.operations - before.operations,
    );
    assert_eq!(done, n);
    assert!(queue.is_empty(QueueName::Deliveries));
}
