//! [`DynamoRateLimits`]: the send slots of rate-limited subscriptions ([`herald_core::rate`]) in
//! the store's table, so that every deliver instance draws from one schedule per subscription.
//!
//! One small item per subscription with a rate: `pk` = `ten_…#RATE`, `sk` = `sub_…`, `next` = the
//! next free slot (epoch microseconds), `expires_at` a day on (TTL removes it once unused). A
//! reservation is one UpdateItem, conditional, answering the new value:
//!
//! - busy (the next free slot is not behind now): `SET next = next + :interval` if `next >= :now`;
//!   the slot is the answer less the interval;
//! - idle: `SET next = :now + :interval` if `next` is absent or behind now; the slot is now.
//!
//! Which comes first follows what this instance last saw of the subscription, so a steady stream
//! costs one write unit a delivery; a guess gone stale costs one failed conditional write (billed
//! as one unit) before the other. Within one instance, a subscription's reservations take turns;
//! across instances the conditions keep slots apart. Paid only by subscriptions with a rate (their own, or Slack's and
//! Teams' platform limits).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use herald_core::ids::{SubscriptionId, TenantId};
use herald_core::ports::StoreError;
use herald_core::rate::{interval_micros, RateLimits};
use jiff::Timestamp;

use super::codec::{n, s, EXPIRES_AT, PK, SK};
use super::write::condition_failed;
use super::DynamoStore;
use crate::error::store_backend;

const NEXT: &str = "next";
/// Conditional writes tried before giving up on a contended slot (each loses only to another
/// reservation, which made progress).
const TRIES: usize = 8;
const KEEP: Duration = Duration::from_secs(24 * 3600);

type Key = (TenantId, SubscriptionId);
/// One lock per subscription: whose turn it is to reserve.
type Turns = Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>;

/// Send slots in DynamoDB (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoRateLimits {
    client: Client,
    table: String,
    /// The last next-free slot seen per subscription: which write to try first.
    seen: Arc<Mutex<HashMap<Key, i64>>>,
    /// One reservation at a time per subscription in this instance: its concurrent deliveries
    /// queue here instead of racing each other's conditions (a lost race costs a write unit).
    turns: Arc<Turns>,
}

impl DynamoRateLimits {
    /// Slots in `store`'s table.
    pub fn new(store: &DynamoStore) -> Self {
        Self {
            client: store.client.clone(),
            table: store.config.table.clone(),
            seen: Arc::default(),
            turns: Arc::default(),
        }
    }

    fn turn(&self, key: Key) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        if turns.len() > 10_000 {
            turns.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        turns.entry(key).or_default().clone()
    }

    fn remember(&self, key: Key, next: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 100_000 {
            seen.clear();
        }
        seen.insert(key, next);
    }

    /// One conditional UpdateItem; `Ok(None)` when its condition failed.
    async fn update(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        busy: bool,
        now: i64,
        interval: i64,
    ) -> Result<Option<i64>, StoreError> {
        let expires = now / 1_000_000 + i64::try_from(KEEP.as_secs()).unwrap_or(i64::MAX);
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(format!("{tenant}#RATE")))
            .key(SK, s(subscription.to_string()))
            .expression_attribute_names("#next", NEXT)
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(expires))
            .return_values(ReturnValue::UpdatedNew);
        let request = if busy {
            request
                .update_expression("SET #next = #next + :interval, #exp = :exp")
                .condition_expression("#next >= :now")
                .expression_attribute_values(":interval", n(interval))
        } else {
            request
                .update_expression("SET #next = :first, #exp = :exp")
                .condition_expression("attribute_not_exists(#next) OR #next < :now")
                .expression_attribute_values(":first", n(now.saturating_add(interval)))
        };
        match request.send().await {
            Ok(out) => match out.attributes.as_ref().and_then(|a| a.get(NEXT)) {
                Some(AttributeValue::N(v)) => v
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|e| StoreError::backend(format!("a slot is not a number: {e}"))),
                _ => Err(StoreError::backend("the slot update answered no value")),
            },
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(store_backend("DynamoDB.UpdateItem", e)),
        }
    }
}

#[async_trait]
impl RateLimits for DynamoRateLimits {
    async fn reserve(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        per_second: u32,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError> {
        let key = (*tenant, *subscription);
        let turn = self.turn(key);
        let waited = std::time::Instant::now();
        let _turn = turn.lock().await;
        // "Not before now" still means now after waiting for the turn (in whole milliseconds:
        // an uncontended turn adds nothing).
        let waited = i64::try_from(waited.elapsed().as_millis())
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let interval = interval_micros(per_second);
        let now = now.as_microsecond().saturating_add(waited);
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied();
        let mut busy = seen.is_some_and(|next| next >= now);
        for _ in 0..TRIES {
            if let Some(next) = self
                .update(tenant, subscription, busy, now, interval)
                .await?
            {
                self.remember(key, next);
                return Timestamp::from_microsecond(next - interval).map_err(StoreError::backend);
            }
            busy = !busy;
        }
        Err(StoreError::backend(
            "the send slot stayed contended; the delivery will be tried again",
        ))
    }
}
