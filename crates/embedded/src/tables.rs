//! The tables of the database and how their keys are built.
//!
//! Every record table maps a text key to the record's JSON. Keys start with the owning tenant's id
//! and use `/` as separator (`ten_…/sub_…`), so a tenant's records form one contiguous key range:
//! tenant scoping is a property of the key, not a filter, and lists are range scans. Ids are ULIDs,
//! which sort by creation time, so iterating a range backwards is "newest first".

/// The layout version this code reads and writes (in the `meta` keyspace, see `kv`); bumped on
/// incompatible key or value changes. Version 2 kept attempts and delivery index rows in the
/// deliveries table; version 3 is the first in fjall.
pub(crate) const SCHEMA_VERSION: u64 = 3;
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
    /// `ten_…/del_…` → Delivery
    Deliveries,
    /// `ten_…/sub_…/del_…` → empty: a subscription's deliveries, for the delivery log. Kept in
    /// the deliveries table (see [`Tbl::host`]).
    DeliveriesBySubscription,
    /// `ten_…/evt_…/del_…` → empty: an event's deliveries. Kept in the deliveries table (see
    /// [`Tbl::host`]).
    DeliveriesByEvent,
    /// `ten_…/del_…/<attempt number, 10 digits>` → Attempt; zero padding makes text order numeric.
    /// Kept in the deliveries table, right after the delivery's own row (see [`Tbl::host`]).
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
    pub(crate) const ALL: [Tbl; 11] = [
        Tbl::Tenants,
        Tbl::ApiKeys,
        Tbl::Subscriptions,
        Tbl::Events,
        Tbl::Idempotency,
        Tbl::Deliveries,
        Tbl::DeliveriesBySubscription,
        Tbl::DeliveriesByEvent,
        Tbl::Attempts,
        Tbl::Stats,
        Tbl::EventTypes,
    ];

    /// The kind whose keyspace holds this kind's rows. A delivery's attempts and index rows share
    /// the deliveries keyspace: each keyspace has a memtable and table files of its own, so fewer
    /// keyspaces flush fewer, larger files (and under redb, fewer trees per commit wrote fewer
    /// pages). Key shapes keep the kinds in ranges of their own: `del_…`, `evt_…` and `sub_…`
    /// sort apart after the tenant, and an attempt (`ten_…/del_…/…`) sorts right after its
    /// delivery.
    pub(crate) fn host(self) -> Tbl {
        match self {
            Tbl::Attempts | Tbl::DeliveriesBySubscription | Tbl::DeliveriesByEvent => {
                Tbl::Deliveries
            }
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
            Tbl::Deliveries
            | Tbl::DeliveriesBySubscription
            | Tbl::DeliveriesByEvent
            | Tbl::Attempts => "deliveries",
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

/// The key of attempt `number` of a delivery.
/// `tenant/delivery/number/attempt`: attempts sort by number, and two attempts with one number
/// (two workers racing on a redelivered message) both keep their record.
pub(crate) fn attempt_key(
    tenant: impl std::fmt::Display,
    delivery: impl std::fmt::Display,
    number: u32,
    attempt: impl std::fmt::Display,
) -> String {
    format!("{tenant}/{delivery}/{number:010}/{attempt}")
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
    fn attempt_keys_sort_numerically() {
        assert!(attempt_key("t", "d", 9, "z") < attempt_key("t", "d", 10, "a"));
        assert!(attempt_key("t", "d", 99, "a") < attempt_key("t", "d", u32::MAX, "a"));
        assert_eq!(last_part("a/b/c"), "c");
    }
}
