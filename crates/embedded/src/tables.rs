//! The tables of the database and how their keys are built.
//!
//! Every record table maps a text key to the record's encoded bytes (`codec`). Keys start with the
//! owning tenant's id and use `/` as separator (`ten_…/sub_…`), so a tenant's records form one
//! contiguous key range: tenant scoping is a property of the key, not a filter, and lists are
//! range scans. Ids are ULIDs, which sort by creation time, so iterating a range backwards is
//! "newest first".
//!
//! No record needs an index row. A delivery's key holds its subscription's partition, which its
//! id names ([`delivery_key`]), so a subscription's delivery log is one range; an event's
//! deliveries are found by deriving their ids from its planned subscriptions, as on DynamoDB.
//! Index rows cost redb more than their bytes (each commit rewrote a leaf at the end of every
//! range it added to); on fjall they were two more memtable entries and journal records per
//! delivery (`tools/engine-compare` replaying one trace without them: 23 % fewer bytes at F=1).

use herald_core::ids::{AttemptId, DeliveryId, SubscriptionId, TenantId};

/// The layout version this code reads and writes (in the `meta` keyspace, see `kv`); bumped on
/// incompatible key or value changes. Version 2 kept attempts and delivery index rows in the
/// deliveries table; version 3 was the first in fjall; version 4 keys deliveries by their
/// subscription's partition, with no index rows (version 3 of the redb store before it).
pub(crate) const SCHEMA_VERSION: u64 = 4;
pub(crate) const SCHEMA_VERSION_KEY: &str = "schema_version";

/// The record tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tbl {
    /// `ten_…` → Tenant, and `ten_…/key_…` → the key's hash: the tenant's API keys (the records
    /// stay in `ApiKeys`). Kept here, not in `ApiKeys`, so a hash lookup can never meet an index row.
    Tenants,
    /// key hash → ApiKeyRecord (the hash is globally unique; lookups come before the tenant is known)
    ApiKeys,
    /// `ten_…/sub_…` → Subscription, with its health beside it (`health`)
    Subscriptions,
    /// `ten_…/evt_…` → Event
    Events,
    /// `ten_…/<idempotency key>` → IdempotencyRecord
    Idempotency,
    /// `ten_…/p<partition>/del_…` → Delivery (see [`delivery_key`]): a subscription's deliveries
    /// form one key range, so its delivery log is a range scan and needs no index rows.
    Deliveries,
    /// `ten_…/p<partition>/del_…/<attempt number, 10 digits>/att_…` → Attempt; zero padding
    /// makes text order numeric. Kept in the deliveries table, right after the delivery's own row
    /// (see [`Tbl::host`]).
    Attempts,
    /// `ten_…/sub_…/<hour, 2026-12-06T09>` → HourStats: a subscription's delivery statistics, one
    /// row per hour (text order is time order); rows older than the retention are removed when
    /// their subscription's newer rows are written
    Stats,
    /// `ten_…/settings` → CatalogSettings, `ten_…/type/<name>` → TenantEventType: a tenant's
    /// catalog is one key range
    EventTypes,
}

impl Tbl {
    pub(crate) const ALL: [Tbl; 9] = [
        Tbl::Tenants,
        Tbl::ApiKeys,
        Tbl::Subscriptions,
        Tbl::Events,
        Tbl::Idempotency,
        Tbl::Deliveries,
        Tbl::Attempts,
        Tbl::Stats,
        Tbl::EventTypes,
    ];

    /// The kind whose keyspace holds this kind's rows. A delivery's attempts share the deliveries
    /// keyspace: each keyspace has a memtable and table files of its own, so fewer keyspaces
    /// flush fewer, larger files (and under redb, fewer trees per commit wrote fewer pages). An
    /// attempt (`…/del_…/…`) sorts right after its delivery.
    pub(crate) fn host(self) -> Tbl {
        match self {
            Tbl::Attempts => Tbl::Deliveries,
            other => other,
        }
    }

    /// Whether this kind has a table of its own (is its own host).
    pub(crate) fn is_host(self) -> bool {
        self.host() == self
    }

    /// The name of the keyspace that holds this kind's rows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tbl::Tenants => "tenants",
            Tbl::ApiKeys => "api_keys",
            Tbl::Subscriptions => "subscriptions",
            Tbl::Events => "events",
            Tbl::Idempotency => "idempotency",
            Tbl::Deliveries | Tbl::Attempts => "deliveries",
            Tbl::Stats => "stats",
            Tbl::EventTypes => "event_types",
        }
    }
}

/// `a/b`
pub(crate) fn key2(a: impl std::fmt::Display, b: impl std::fmt::Display) -> String {
    format!("{a}/{b}")
}

/// `a/b/c`
pub(crate) fn key3(
    a: impl std::fmt::Display,
    b: impl std::fmt::Display,
    c: impl std::fmt::Display,
) -> String {
    format!("{a}/{b}/{c}")
}

/// The partition of a subscription's deliveries: `p` and its 40-bit tag in hex, the low bits of
/// every delivery id derived for it ([`DeliveryId::subscription_tag`]).
fn partition(tag: u64) -> String {
    format!("p{tag:010x}")
}

/// `ten_…/p<partition>/del_…`: a delivery's key, found from its id alone (the id names its
/// subscription's partition). Two subscriptions whose tags collide share a range; the delivery
/// log filters by the record's subscription.
pub(crate) fn delivery_key(tenant: &TenantId, delivery: &DeliveryId) -> String {
    format!(
        "{tenant}/{}/{delivery}",
        partition(delivery.subscription_tag())
    )
}

/// `ten_…/p<partition>/`: the range of a subscription's deliveries (and their attempts).
pub(crate) fn subscription_deliveries_prefix(
    tenant: &TenantId,
    subscription: &SubscriptionId,
) -> String {
    format!("{tenant}/{}/", partition(subscription.tag()))
}

/// `ten_…/p<partition>/del_…/`: the range of a delivery's attempts.
pub(crate) fn attempts_prefix(tenant: &TenantId, delivery: &DeliveryId) -> String {
    format!("{}/", delivery_key(tenant, delivery))
}

/// The key of attempt `number` of a delivery: after [`attempts_prefix`], the number and the
/// attempt's id, so attempts sort by number, and two attempts with one number (two workers
/// racing on a redelivered message) both keep their record.
pub(crate) fn attempt_key(
    tenant: &TenantId,
    delivery: &DeliveryId,
    number: u32,
    attempt: &AttemptId,
) -> String {
    format!(
        "{}{number:010}/{attempt}",
        attempts_prefix(tenant, delivery)
    )
}

/// `a/` — the prefix of everything under `a`.
pub(crate) fn prefix1(a: impl std::fmt::Display) -> String {
    format!("{a}/")
}

/// `a/b/` — the prefix of everything under `a/b`.
pub(crate) fn prefix2(a: impl std::fmt::Display, b: impl std::fmt::Display) -> String {
    format!("{a}/{b}/")
}

/// The smallest key greater than every key starting with `prefix` (which ends in an ASCII
/// character such as `/` or `_`): the same text with the final character replaced by the next one
/// (`/` by `0`, `_` by `` ` ``). So the half-open range `prefix..prefix_end(prefix)` holds exactly
/// the keys under the prefix.
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_owned();
    if let Some(next) = end.pop().and_then(|c| char::from_u32(u32::from(c) + 1)) {
        end.push(next);
    }
    end
}

/// `ten_…/key_` — the prefix of a tenant's API-key index rows in [`Tbl::Tenants`].
pub(crate) fn api_keys_prefix(tenant: impl std::fmt::Display) -> String {
    format!("{tenant}/key_")
}

/// The last `/`-separated part of a key.
pub(crate) fn last_part(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, last)| last)
}

#[cfg(test)]
mod tests {
    use herald_core::ids::EventId;

    use super::*;

    #[test]
    fn prefix_range_holds_exactly_the_prefixed_keys() {
        let p = prefix1("ten_A");
        let end = prefix_end(&p);
        assert_eq!(end, "ten_A0");
        for inside in ["ten_A/", "ten_A/sub_Z", "ten_A/zzzz/zzz"] {
            assert!(p.as_str() <= inside && inside < end.as_str(), "{inside}");
        }
        for outside in ["ten_A", "ten_AB/x", "ten_B/x", "ten_/x"] {
            assert!(
                !(p.as_str() <= outside && outside < end.as_str()),
                "{outside}"
            );
        }
    }

    #[test]
    fn tenant_and_key_ranges_hold_exactly_their_rows() {
        let end = prefix_end("ten_");
        assert_eq!(end, "ten`");
        for inside in ["ten_", "ten_01ARZ3NDEKTSV4RRFFQ69G5FAV", "ten_ZZZ/key_ZZZ"] {
            assert!("ten_" <= inside && inside < end.as_str(), "{inside}");
        }
        let p = api_keys_prefix("ten_A");
        let end = prefix_end(&p);
        assert!(p.as_str() <= "ten_A/key_Z" && "ten_A/key_Z" < end.as_str());
        for outside in ["ten_A", "ten_A/sub_Z", "ten_AB/key_Z", "ten_B/key_Z"] {
            assert!(
                !(p.as_str() <= outside && outside < end.as_str()),
                "{outside}"
            );
        }
    }

    #[test]
    fn a_kind_and_its_host_name_one_table() {
        for t in Tbl::ALL {
            assert_eq!(t.name(), t.host().name(), "{t:?}");
            assert_eq!(Tbl::ALL[t as usize], t, "ALL is in the enum's order");
            assert!(t.host().is_host(), "{t:?}");
        }
        let hosts: Vec<_> = Tbl::ALL.into_iter().filter(|t| t.is_host()).collect();
        let names: std::collections::BTreeSet<_> = hosts.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), hosts.len(), "two hosts with one name");
    }

    #[test]
    fn attempt_keys_sort_numerically_after_their_delivery() {
        let (t, d) = (TenantId::new(), DeliveryId::new());
        let (a, z) = (AttemptId::new(), AttemptId::new());
        let (lo, hi) = if a.to_string() < z.to_string() {
            (a, z)
        } else {
            (z, a)
        };
        assert!(attempt_key(&t, &d, 9, &hi) < attempt_key(&t, &d, 10, &lo));
        assert!(attempt_key(&t, &d, 99, &lo) < attempt_key(&t, &d, u32::MAX, &lo));
        let prefix = attempts_prefix(&t, &d);
        assert!(attempt_key(&t, &d, 1, &lo).starts_with(&prefix));
        assert!(delivery_key(&t, &d) < prefix);
        assert_eq!(last_part("a/b/c"), "c");
    }

    #[test]
    fn a_subscriptions_deliveries_share_its_range() {
        let (t, sub, other) = (
            TenantId::new(),
            SubscriptionId::new(),
            SubscriptionId::new(),
        );
        let prefix = subscription_deliveries_prefix(&t, &sub);
        for _ in 0..20 {
            let mine = DeliveryId::derive(&EventId::new(), &sub);
            assert!(delivery_key(&t, &mine).starts_with(&prefix));
            assert!(attempt_key(&t, &mine, 1, &AttemptId::new()).starts_with(&prefix));
            let theirs = DeliveryId::derive(&EventId::new(), &other);
            assert!(!delivery_key(&t, &theirs).starts_with(&prefix));
        }
    }
}
