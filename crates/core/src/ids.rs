//! Typed, prefixed identifiers (`sub_…`, `evt_…`, `del_…`).
//!
//! Every id is a ULID behind a short prefix, so ids sort by creation time (the delivery log relies on
//! that) and a value of one kind can never be passed where another is expected. Parsing checks the
//! prefix and the ULID, so an id that exists is well formed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use ulid::Ulid;

/// Why an id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a valid {kind} id (expected `{prefix}` followed by 26 base32 characters)"
)]
pub struct IdParseError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub input: String,
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, time-ordered.
            pub fn new() -> Self {
                Self(Ulid::new())
            }

            /// Builds an id from its ULID (used by deterministic derivations and adapters).
            pub fn from_ulid(ulid: Ulid) -> Self {
                Self(ulid)
            }

            pub fn ulid(&self) -> Ulid {
                self.0
            }

            /// Milliseconds since the Unix epoch at which this id was made.
            pub fn timestamp_ms(&self) -> u64 {
                self.0.timestamp_ms()
            }

            pub fn parse(input: &str) -> Result<Self, IdParseError> {
                let err = || IdParseError { kind: $kind, prefix: $prefix, input: truncate(input) };
                let rest = input.strip_prefix($prefix).ok_or_else(err)?;
                if rest.len() != 26 {
                    return Err(err());
                }
                Ulid::from_string(rest).map(Self).map_err(|_| err())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn truncate(input: &str) -> String {
    input.chars().take(64).collect()
}

prefixed_id!(
    /// A tenant: the owner of subscriptions, events and API keys.
    TenantId, "ten_", "tenant"
);
prefixed_id!(
    /// An API key's public id (the secret part is only ever stored hashed).
    ApiKeyId, "key_", "api key"
);
prefixed_id!(
    /// A subscription (an endpoint that receives events).
    SubscriptionId, "sub_", "subscription"
);
prefixed_id!(
    /// An event accepted by intake. Also the `webhook-id` every subscriber sees.
    EventId, "evt_", "event"
);
prefixed_id!(
    /// One event's delivery to one subscription.
    DeliveryId, "del_", "delivery"
);
prefixed_id!(
    /// One HTTP attempt of a delivery.
    AttemptId, "att_", "attempt"
);

/// How many bits of a delivery id's random part name its subscription (see [`DeliveryId::derive`]).
const TAG_BITS: u32 = 40;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

fn first_40_bits(digest: &[u8]) -> u64 {
    digest
        .iter()
        .take(5)
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
}

/// The first 80 bits of SHA-256 of (tenant, idempotency key).
fn key_bits(tenant: &TenantId, key: &str) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update(tenant.0.to_bytes());
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    digest
        .iter()
        .take(10)
        .fold(0u128, |acc, byte| (acc << 8) | u128::from(*byte))
}

impl EventId {
    /// The id of an event accepted under an idempotency key (`key:…` or `id:…`): its time part is
    /// `at_ms`, its 80 random bits a hash of the tenant and the key. A store can then keep the event
    /// and its idempotency record as one item, found both by key and by id.
    pub fn keyed(tenant: &TenantId, key: &str, at_ms: u64) -> Self {
        Self(Ulid::from_parts(at_ms, key_bits(tenant, key)))
    }

    /// Whether this id was made by [`EventId::keyed`] for this tenant and key.
    pub fn is_keyed_by(&self, tenant: &TenantId, key: &str) -> bool {
        self.0.random() == key_bits(tenant, key)
    }

    /// The id's 80 random bits (for a keyed event, the hash of its tenant and key).
    pub fn random_bits(&self) -> u128 {
        self.0.random()
    }
}

impl SubscriptionId {
    /// A 40-bit hash of the id: the low bits of every delivery id derived for this subscription, so
    /// a store can tell a delivery's subscription (its log partition) from the delivery id alone.
    pub fn tag(&self) -> u64 {
        first_40_bits(&Sha256::digest(self.0.to_bytes()))
    }
}

impl DeliveryId {
    /// The delivery id of `event` to `subscription`: deterministic, so a fan-out that runs twice
    /// (at-least-once queues) names the same delivery, not a second one. The ULID's time part is the
    /// event's, so deliveries still sort by time; of its 80 random bits, the high 40 hash (event,
    /// subscription) and the low 40 are the subscription's [`SubscriptionId::tag`].
    pub fn derive(event: &EventId, subscription: &SubscriptionId) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(event.0.to_bytes());
        hasher.update(subscription.0.to_bytes());
        let spread = first_40_bits(&hasher.finalize());
        let random = (u128::from(spread) << TAG_BITS) | u128::from(subscription.tag());
        Self(Ulid::from_parts(event.timestamp_ms(), random))
    }

    /// The [`SubscriptionId::tag`] of the subscription this id was derived for.
    pub fn subscription_tag(&self) -> u64 {
        (self.0.random() as u64) & TAG_MASK
    }

    /// 40 bits that differ from delivery to delivery of one subscription (a hash of the event and
    /// the subscription), for spreading one subscription's deliveries over shards.
    pub fn spread(&self) -> u64 {
        ((self.0.random() >> TAG_BITS) as u64) & TAG_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = SubscriptionId::new();
        let text = id.to_string();
        assert!(text.starts_with("sub_"));
        assert_eq!(SubscriptionId::parse(&text), Ok(id));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<SubscriptionId>(&json).unwrap(), id);
    }

    #[test]
    fn wrong_prefix_or_garbage_is_rejected() {
        let sub = SubscriptionId::new().to_string();
        assert!(EventId::parse(&sub).is_err());
        assert!(SubscriptionId::parse("sub_").is_err());
        assert!(SubscriptionId::parse("sub_not-a-ulid-at-all-xxxxxx").is_err());
        assert!(SubscriptionId::parse("").is_err());
    }

    #[test]
    fn keyed_event_ids_carry_their_key_and_their_time() {
        let (t, other) = (TenantId::new(), TenantId::new());
        let a = EventId::keyed(&t, "key:order-1", 1_000);
        let later = EventId::keyed(&t, "key:order-1", 2_000);
        assert_eq!(a.timestamp_ms(), 1_000);
        assert_ne!(a, later, "a key reused later makes another event");
        assert_eq!(a.random_bits(), later.random_bits());
        assert!(a.is_keyed_by(&t, "key:order-1"));
        assert!(!a.is_keyed_by(&t, "key:order-2"));
        assert!(!a.is_keyed_by(&other, "key:order-1"));
        assert!(!EventId::new().is_keyed_by(&t, "key:order-1"));
    }

    #[test]
    fn derived_delivery_ids_are_stable_and_distinct() {
        let e = EventId::new();
        let (a, b) = (SubscriptionId::new(), SubscriptionId::new());
        assert_eq!(DeliveryId::derive(&e, &a), DeliveryId::derive(&e, &a));
        assert_ne!(DeliveryId::derive(&e, &a), DeliveryId::derive(&e, &b));
        assert_eq!(DeliveryId::derive(&e, &a).timestamp_ms(), e.timestamp_ms());
        // The id names its subscription's tag, and spreads over shards by event.
        assert_eq!(DeliveryId::derive(&e, &a).subscription_tag(), a.tag());
        assert_ne!(a.tag(), b.tag());
        let spreads: std::collections::HashSet<u64> = (0..64)
            .map(|_| DeliveryId::derive(&EventId::new(), &a).spread() % 8)
            .collect();
        assert!(
            spreads.len() > 4,
            "64 events land on more than half of 8 shards"
        );
    }
}
