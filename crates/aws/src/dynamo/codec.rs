//! The table's layout in code: the key of every item (the one place the key design in the module
//! docs is spelled out) and the item codec (records as JSON, deflated when that makes them smaller).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use herald_core::ids::{AttemptId, DeliveryId, EventId, SubscriptionId, TenantId};
use herald_core::ports::StoreError;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
/// The record itself: JSON text, or deflated JSON as binary.
pub(super) const DOC: &str = "doc";
/// On a delivery: its first attempt, in the same encoding as `doc`.
pub(super) const FIRST: &str = "first";
/// On a keyed event: the end of its idempotency window (epoch seconds), the condition of reusing
/// the key.
pub(super) const WINDOW_ENDS: &str = "window_ends";
/// On a delivery: its attempt count, the condition of recording the next one.
pub(super) const ATTEMPTS: &str = "attempts";
/// The TTL attribute.
pub(super) const EXPIRES_AT: &str = "expires_at";

pub(super) const PK_TENANTS: &str = "TENANTS";
pub(super) const SK_TENANT: &str = "TENANT";
pub(super) const SK_API_KEY: &str = "APIKEY";
pub(super) const SK_EVENT: &str = "EVENT";
pub(super) const ATTEMPT_PREFIX: &str = "ATTEMPT#";

/// How many partitions one subscription's delivery log is spread over. A partition takes about
/// 1,000 write units a second; a delivery's item is written once per attempt (1 unit when under
/// 1 KB), so eight take one subscription past 5,000 deliveries a second.
pub const LOG_SHARDS: u64 = 8;

/// How many partitions a tenant's events are spread over. An event is written once (1 write unit
/// under 1 KB), so eight take one tenant past 5,000 events a second; a page of the event list
/// reads each of them.
pub const EVENT_SHARDS: u64 = 8;

/// Records whose JSON is longer than this are stored deflated, when that is smaller: an item's
/// write units are counted per started KB.
const DEFLATE_ABOVE: usize = 200;
/// No stored record inflates past this (DynamoDB items are at most 400 KB).
const INFLATE_LIMIT: usize = 4 * 1024 * 1024;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Epoch seconds `ttl` after `from`, for the TTL attribute.
pub(super) fn expiry(from: Timestamp, ttl: Duration) -> i64 {
    from.as_second()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

pub(super) fn tenant_pk(tenant: &TenantId) -> String {
    tenant.to_string()
}
pub(super) fn api_key_pk(hash: &str) -> String {
    format!("APIKEY#{hash}")
}
pub(super) fn tenant_keys_pk(tenant: &TenantId) -> String {
    format!("{tenant}#KEY")
}
pub(super) fn subscriptions_pk(tenant: &TenantId) -> String {
    format!("{tenant}#SUB")
}
/// A tenant's event types and catalog settings (`event_types`).
pub(super) fn types_pk(tenant: &TenantId) -> String {
    format!("{tenant}#TYPES")
}
/// An event's partition: one of the tenant's [`EVENT_SHARDS`] event shards, read off the id's
/// random bits, so the event is found by id alone and the tenant's events by a Query of each shard.
pub(super) fn event_pk(tenant: &TenantId, event: &EventId) -> String {
    let shard = u64::try_from(event.random_bits() % u128::from(EVENT_SHARDS)).unwrap_or(0);
    event_shard_pk(tenant, shard)
}
/// The tenant's event shards, each to be read newest first and merged.
pub(super) fn event_pks(tenant: &TenantId) -> Vec<String> {
    (0..EVENT_SHARDS)
        .map(|shard| event_shard_pk(tenant, shard))
        .collect()
}
fn event_shard_pk(tenant: &TenantId, shard: u64) -> String {
    format!("{tenant}#EVT#{shard}")
}
/// Where an unkeyed event was kept before events were sharded (`ten_…#evt_…`, sk `EVENT`): read
/// only when an event is not found in its shard, so events stored then are still found by id.
pub(super) fn legacy_event_pk(tenant: &TenantId, event: &EventId) -> String {
    format!("{tenant}#{event}")
}
/// A keyed event's partition: named by the 80 bits of its id that hash its tenant and key
/// (`EventId::keyed`), so it is found by key at intake and by id afterwards.
pub(super) fn keyed_event_pk(tenant: &TenantId, event: &EventId) -> String {
    format!("{tenant}#KEYED#{:020x}", event.random_bits())
}
/// A delivery's partition: one shard of its subscription's log, both read off the delivery id
/// ([`DeliveryId::subscription_tag`], [`DeliveryId::spread`]), so a delivery is found by id alone.
pub(super) fn delivery_pk(tenant: &TenantId, delivery: &DeliveryId) -> String {
    log_pk(
        tenant,
        delivery.subscription_tag(),
        delivery.spread() % LOG_SHARDS,
    )
}
/// The log shards of a subscription, each to be read newest first and merged.
pub(super) fn log_pks(tenant: &TenantId, subscription: &SubscriptionId) -> Vec<String> {
    (0..LOG_SHARDS)
        .map(|shard| log_pk(tenant, subscription.tag(), shard))
        .collect()
}
fn log_pk(tenant: &TenantId, tag: u64, shard: u64) -> String {
    format!("{tenant}#LOG#{tag:010x}#{shard}")
}
/// The partition of a delivery's attempts after the first (and of any superseded one).
pub(super) fn attempts_pk(tenant: &TenantId, delivery: &DeliveryId) -> String {
    format!("{tenant}#{delivery}")
}
pub(super) fn attempt_sk(number: u32, attempt: &AttemptId) -> String {
    format!("{ATTEMPT_PREFIX}{number:010}#{attempt}")
}

/// What an idempotency key's item holds: its record, and, in items written before events were
/// sharded, the event accepted under it (now the event has an item of its own, in its shard).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct KeyedEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<herald_core::model::Event>,
    pub idempotency: herald_core::model::IdempotencyRecord,
}

/// A record as an attribute value: its JSON, deflated when long and smaller so.
pub(super) fn encode<T: Serialize>(record: &T) -> Result<AttributeValue, StoreError> {
    let json = serde_json::to_vec(record).map_err(StoreError::backend)?;
    if json.len() > DEFLATE_ABOVE {
        let packed = miniz_oxide::deflate::compress_to_vec(&json, 6);
        if packed.len() < json.len() {
            return Ok(AttributeValue::B(Blob::new(packed)));
        }
    }
    String::from_utf8(json)
        .map(AttributeValue::S)
        .map_err(StoreError::backend)
}

/// The record in `value` (JSON text or deflated JSON).
pub(super) fn decode_value<T: DeserializeOwned>(value: &AttributeValue) -> Result<T, StoreError> {
    match value {
        AttributeValue::S(text) => serde_json::from_str(text).map_err(StoreError::backend),
        AttributeValue::B(blob) => {
            let json =
                miniz_oxide::inflate::decompress_to_vec_with_limit(blob.as_ref(), INFLATE_LIMIT)
                    .map_err(|e| {
                        StoreError::backend(format!("a stored record does not inflate: {e}"))
                    })?;
            serde_json::from_slice(&json).map_err(StoreError::backend)
        }
        _ => Err(StoreError::backend(
            "a stored record is neither text nor binary",
        )),
    }
}

/// The record of an item (its `doc`).
pub(super) fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let doc = item
        .get(DOC)
        .ok_or_else(|| StoreError::backend(format!("an item has no `{DOC}` attribute")))?;
    decode_value(doc)
}

/// A record read back from its item: by default its `doc`; a subscription adds the health kept
/// beside it (`super::health`).
pub(super) trait Stored: Sized {
    fn from_item(item: &Item) -> Result<Self, StoreError>;
}

macro_rules! stored_as_doc {
    ($($ty:ty),*) => {
        $(impl Stored for $ty {
            fn from_item(item: &Item) -> Result<Self, StoreError> {
                decode(item)
            }
        })*
    };
}
stored_as_doc!(
    herald_core::model::Tenant,
    herald_core::model::ApiKeyRecord,
    herald_core::model::Event,
    herald_core::model::Delivery,
    herald_core::model::Attempt,
    KeyedEvent
);

/// An item: its keys, the record, and its expiry if it has one.
pub(super) fn item<T: Serialize>(
    pk: String,
    sk: String,
    record: &T,
    expires_at: Option<i64>,
) -> Result<Item, StoreError> {
    let mut item = Item::with_capacity(6);
    item.insert(PK.into(), s(pk));
    item.insert(SK.into(), s(sk));
    item.insert(DOC.into(), encode(record)?);
    if let Some(at) = expires_at {
        item.insert(EXPIRES_AT.into(), n(at));
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_start_with_the_tenant_and_sort_as_documented() {
        let t = TenantId::new();
        let d = DeliveryId::new();
        assert!(subscriptions_pk(&t).starts_with(&t.to_string()));
        assert!(tenant_keys_pk(&t).starts_with(&t.to_string()));
        assert_ne!(tenant_keys_pk(&t), subscriptions_pk(&t));
        assert!(delivery_pk(&t, &d).starts_with(&t.to_string()));
        let keyed = EventId::keyed(&t, &"x".repeat(5000), 1);
        assert!(keyed_event_pk(&t, &keyed).len() < 100);
        assert_eq!(
            keyed_event_pk(&t, &keyed),
            keyed_event_pk(&t, &EventId::keyed(&t, &"x".repeat(5000), 2)),
            "one partition per key, whenever it is used"
        );
        let a = AttemptId::new();
        assert!(attempt_sk(9, &a) < attempt_sk(10, &AttemptId::new()));
        assert!(attempt_sk(99, &a) < attempt_sk(u32::MAX, &a));
        assert_ne!(
            keyed_event_pk(&t, &EventId::keyed(&t, "key:a", 1)),
            keyed_event_pk(&t, &EventId::keyed(&t, "key:b", 1))
        );
    }

    #[test]
    fn an_event_lives_in_one_of_its_tenants_event_shards() {
        let t = TenantId::new();
        let shards = event_pks(&t);
        assert_eq!(shards.len(), EVENT_SHARDS as usize);
        let mut used = std::collections::HashSet::new();
        for i in 0..64u64 {
            for id in [EventId::new(), EventId::keyed(&t, &format!("key:{i}"), i)] {
                let pk = event_pk(&t, &id);
                assert!(shards.contains(&pk), "{pk} is one of {shards:?}");
                used.insert(pk);
            }
        }
        assert_eq!(used.len(), EVENT_SHARDS as usize, "spread over every shard");
        let e = EventId::new();
        assert!(!event_pks(&TenantId::new()).contains(&event_pk(&t, &e)));
        assert_ne!(legacy_event_pk(&t, &e), event_pk(&t, &e));
    }

    #[test]
    fn a_delivery_lives_in_one_of_its_subscriptions_log_shards() {
        let t = TenantId::new();
        let sub = SubscriptionId::new();
        let shards = log_pks(&t, &sub);
        assert_eq!(shards.len(), LOG_SHARDS as usize);
        let mut used = std::collections::HashSet::new();
        for _ in 0..64 {
            let d = DeliveryId::derive(&EventId::new(), &sub);
            let pk = delivery_pk(&t, &d);
            assert!(shards.contains(&pk), "{pk} is one of {shards:?}");
            used.insert(pk);
        }
        assert!(used.len() > 4, "spread over the shards");
        let other = DeliveryId::derive(&EventId::new(), &SubscriptionId::new());
        assert!(!shards.contains(&delivery_pk(&t, &other)));
    }

    #[test]
    fn records_round_trip_plain_or_deflated() {
        let small = serde_json::json!({"a": 1});
        assert!(matches!(encode(&small).unwrap(), AttributeValue::S(_)));
        let long = serde_json::json!({"text": "the same words again ".repeat(40)});
        let packed = encode(&long).unwrap();
        let AttributeValue::B(blob) = &packed else {
            panic!("a long repetitive record is deflated")
        };
        assert!(blob.as_ref().len() < 200);
        assert_eq!(decode_value::<serde_json::Value>(&packed).unwrap(), long);
        assert_eq!(
            decode_value::<serde_json::Value>(&encode(&small).unwrap()).unwrap(),
            small
        );
        assert!(
            decode_value::<serde_json::Value>(&AttributeValue::B(Blob::new(vec![1, 2, 3])))
                .is_err()
        );
    }

    #[test]
    fn expiry_is_epoch_seconds_after_the_start() {
        let at = Timestamp::from_second(1_000).unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(expiry(at, Duration::from_secs(60)), 1_060);
        assert_eq!(expiry(at, Duration::MAX), i64::MAX);
    }
}
