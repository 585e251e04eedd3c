//! The send slots' contract ([`RateLimits`]): slots exactly `1 / rate` apart, never before now,
//! never handed out twice, one schedule per subscription.

use std::sync::Arc;

use herald_core::ids::{SubscriptionId, TenantId};
use herald_core::rate::RateLimits;
use jiff::{SignedDuration, Timestamp};

/// A whole second, so stores of any precision keep it exactly.
fn base() -> Timestamp {
    let now = Timestamp::now().as_second();
    Timestamp::from_second(now).unwrap()
}

fn ms(at: Timestamp, n: i64) -> Timestamp {
    at.checked_add(SignedDuration::from_millis(n)).unwrap()
}

pub async fn slots_follow_the_rate_and_start_afresh_after_a_pause(limits: Arc<dyn RateLimits>) {
    let (tenant, sub, other) = (
        TenantId::new(),
        SubscriptionId::new(),
        SubscriptionId::new(),
    );
    let now = base();
    let mut slots = Vec::new();
    for _ in 0..5 {
        slots.push(limits.reserve(&tenant, &sub, 5, now).await.unwrap());
    }
    let expected: Vec<_> = (0..5).map(|k| ms(now, 200 * k)).collect();
    assert_eq!(slots, expected);
    // Another subscription keeps its own schedule.
    assert_eq!(limits.reserve(&tenant, &other, 5, now).await.unwrap(), now);
    // Asked later, within the schedule: the next free slot.
    assert_eq!(
        limits
            .reserve(&tenant, &sub, 5, ms(now, 300))
            .await
            .unwrap(),
        ms(now, 1000)
    );
    // After a pause: now, not a burst of slots left in the past.
    let later = ms(now, 10_000);
    assert_eq!(
        limits.reserve(&tenant, &sub, 5, later).await.unwrap(),
        later
    );
    assert_eq!(
        limits.reserve(&tenant, &sub, 5, later).await.unwrap(),
        ms(later, 200)
    );
}

/// Many workers at once never share a slot, and leave none out.
pub async fn concurrent_reservations_get_distinct_consecutive_slots(limits: Arc<dyn RateLimits>) {
    let (tenant, sub) = (TenantId::new(), SubscriptionId::new());
    let now = base();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let limits = limits.clone();
            tokio::spawn(async move { limits.reserve(&tenant, &sub, 10, now).await.unwrap() })
        })
        .collect();
    let mut slots = Vec::new();
    for task in tasks {
        slots.push(task.await.unwrap());
    }
    slots.sort();
    let expected: Vec<_> = (0..20).map(|k| ms(now, 100 * k)).collect();
    assert_eq!(slots, expected);
}
