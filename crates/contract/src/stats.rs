//! The delivery statistics' contract ([`StatsStore`]): deltas add up per (tenant, subscription,
//! hour), a read answers exactly the hours asked for, oldest first, and never another tenant's or
//! another subscription's.

use std::sync::Arc;

use herald_core::ids::{SubscriptionId, TenantId};
use herald_core::stats::{Hour, HourStats, StatsDelta, StatsStore, Tally};
use jiff::Timestamp;

fn hour(key: &str) -> Hour {
    Hour::parse_key(key).unwrap()
}

/// Counts with a little of everything, so a store that drops a field or a bin fails.
fn sample(succeeded: u64, retrying: u64, latency_ms: u64) -> HourStats {
    let mut s = HourStats::default();
    for _ in 0..succeeded {
        s.attempt(latency_ms, Tally::Succeeded);
    }
    for _ in 0..retrying {
        s.attempt(latency_ms * 10, Tally::Retrying);
    }
    s.attempt(90_000, Tally::Failed);
    s.attempt(1, Tally::Superseded);
    s.given_up();
    s
}

fn delta(tenant: TenantId, subscription: SubscriptionId, at: Hour, stats: HourStats) -> StatsDelta {
    StatsDelta {
        tenant,
        subscription,
        hour: at,
        stats,
    }
}

fn sum(parts: &[HourStats]) -> HourStats {
    let mut total = HourStats::default();
    for p in parts {
        total.merge(p);
    }
    total
}

pub async fn deltas_add_up_per_hour_and_read_oldest_first(stats: Arc<dyn StatsStore>) {
    let (tenant, sub) = (TenantId::new(), SubscriptionId::new());
    let (a, b, c) = (sample(3, 1, 40), sample(1, 2, 250), sample(0, 5, 3));
    let (h9, h10, h12) = (
        hour("2026-12-06T09"),
        hour("2026-12-06T10"),
        hour("2026-12-06T12"),
    );
    // Two deltas of one hour in one call, and the same hour again in a later call.
    stats
        .add_stats(&[
            delta(tenant, sub, h10, a),
            delta(tenant, sub, h9, b),
            delta(tenant, sub, h10, c),
        ])
        .await
        .unwrap();
    stats
        .add_stats(&[delta(tenant, sub, h10, b), delta(tenant, sub, h12, c)])
        .await
        .unwrap();
    stats.add_stats(&[]).await.unwrap();

    let read = stats
        .read_stats(&tenant, &sub, h9, h12.plus(1))
        .await
        .unwrap();
    assert_eq!(
        read,
        vec![(h9, b), (h10, sum(&[a, c, b])), (h12, c)],
        "every hour that holds something, added up, oldest first"
    );
    // [from, to): the hour `to` is not read, nor hours before `from`.
    let read = stats.read_stats(&tenant, &sub, h10, h12).await.unwrap();
    assert_eq!(read, vec![(h10, sum(&[a, c, b]))]);
    assert_eq!(
        stats.read_stats(&tenant, &sub, h12, h12).await.unwrap(),
        vec![]
    );
    // A window of a week around them.
    let week = stats
        .read_stats(&tenant, &sub, h12.plus(-167), h12.plus(1))
        .await
        .unwrap();
    assert_eq!(week.len(), 3);
}

pub async fn buckets_are_kept_per_tenant_and_subscription(stats: Arc<dyn StatsStore>) {
    let (tenant, other_tenant) = (TenantId::new(), TenantId::new());
    let (sub, other_sub) = (SubscriptionId::new(), SubscriptionId::new());
    let now = Hour::containing(Timestamp::now());
    let (mine, theirs, sibling) = (sample(2, 0, 10), sample(0, 3, 500), sample(7, 7, 70));
    stats
        .add_stats(&[
            delta(tenant, sub, now, mine),
            // The same subscription id under another tenant: not this tenant's.
            delta(other_tenant, sub, now, theirs),
            delta(tenant, other_sub, now, sibling),
        ])
        .await
        .unwrap();
    let range = (now.plus(-23), now.plus(1));
    assert_eq!(
        stats
            .read_stats(&tenant, &sub, range.0, range.1)
            .await
            .unwrap(),
        vec![(now, mine)]
    );
    assert_eq!(
        stats
            .read_stats(&other_tenant, &sub, range.0, range.1)
            .await
            .unwrap(),
        vec![(now, theirs)]
    );
    assert_eq!(
        stats
            .read_stats(&tenant, &other_sub, range.0, range.1)
            .await
            .unwrap(),
        vec![(now, sibling)]
    );
    assert_eq!(
        stats
            .read_stats(&other_tenant, &other_sub, range.0, range.1)
            .await
            .unwrap(),
        vec![]
    );
}

/// Many writers adding to one hour at once lose nothing.
pub async fn concurrent_adds_all_count(stats: Arc<dyn StatsStore>) {
    let (tenant, sub) = (TenantId::new(), SubscriptionId::new());
    let now = Hour::containing(Timestamp::now());
    let one = sample(1, 1, 20);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let stats = stats.clone();
            tokio::spawn(async move {
                stats
                    .add_stats(&[delta(tenant, sub, now, one)])
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let read = stats
        .read_stats(&tenant, &sub, now, now.plus(1))
        .await
        .unwrap();
    assert_eq!(read, vec![(now, sum(&[one; 16]))]);
}
