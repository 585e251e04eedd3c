//! [`DynamoStore`]: Herald's records in one DynamoDB table, laid out so that a delivery costs as
//! few billed units as it can: about one write unit for its event (shared by its deliveries) and
//! one for the delivery with its first attempt, no read on the way.
//!
//! # Key design
//!
//! One table (name from [`DynamoConfig::table`]) with string keys `pk` (partition) and `sk`
//! (sort) and no secondary index. Every item holds its record in `doc`: JSON text, or deflated
//! JSON as binary when that is smaller (write units are counted per started KB). Keys start with the
//! owning tenant's id, so tenant scoping is a property of the key, never a filter: a read for
//! tenant B builds a key that cannot name tenant A's item. The exceptions are the API-key item,
//! which is looked up by hash before the tenant is known, and the operators' list of tenants.
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | tenant | `ten_…` | `TENANT` | |
//! | tenant list entry | `TENANTS` | `ten_…` | |
//! | API key, by hash | `APIKEY#<sha256 hex>` | `APIKEY` | |
//! | API key, by tenant | `ten_…#KEY` | `key_…` | |
//! | subscription | `ten_…#SUB` | `sub_…` | its health: `h_fail`, `h_since`, … (`health`) |
//! | event (with its plan: the subscriptions it goes to) | `ten_…#EVT#<shard>` | `evt_…` | `expires_at` if events expire |
//! | idempotency key: its record (which event it was used for) | `ten_…#KEYED#<the id's 80 random bits, hex>` | `EVENT` | `window_ends` and `expires_at`: the end of its window (epoch seconds) |
//! | event stored before events were sharded (read only) | `ten_…#evt_…` | `EVENT` | |
//! | idempotency key written before events were sharded: the record and the event, one document | `ten_…#KEYED#…` | `EVENT` | `window_ends` |
//! | delivery, with its first attempt | `ten_…#LOG#<tag>#<shard>` | `del_…` | `attempts` (a number), `first` (the attempt), `expires_at` if deliveries expire |
//! | attempt after the first (and a superseded one) | `ten_…#del_…` | `ATTEMPT#<number, 10 digits>#att_…` | `expires_at` |
//! | send slots of a subscription with a rate (`rate`) | `ten_…#RATE` | `sub_…` | `next`, `expires_at` |
//! | a tenant's event type (`event_types`) | `ten_…#TYPES` | `TYPE#<name>` | |
//! | a tenant's catalog settings | `ten_…#TYPES` | `SETTINGS` | |
//! | delivery statistics of a subscription's hour (`stats`) | `ten_…#STATS#sub_…` | `hour#2026-12-06T09` (UTC) | counts `ok`, `fail`, `retry`, `att` and latency bins `l0`…`l29` (numbers, only those not zero), `expires_at` (8 days after the hour) |
//!
//! An event lives in one of its tenant's [`EVENT_SHARDS`] event partitions, `<shard>` being its
//! id's random bits modulo the count: found by id alone, and the tenant's events, newest first, are
//! a merge of the shards' Queries. An event accepted under an idempotency key is in its shard like
//! any other; its key has a small item of its own.
//!
//! A delivery lives in its subscription's log, spread over [`LOG_SHARDS`] partitions: `<tag>` is
//! the subscription's 40-bit tag (10 hex digits) and `<shard>` a number below eight; both are read
//! off the delivery id, whose random part carries the tag and a hash of (event, subscription)
//! (`DeliveryId::derive`). So one key serves all three ways a delivery is found.
//!
//! Access patterns (no Scan, no index):
//!
//! - tenant, API key, subscription, event, delivery by id: GetItem (strongly consistent). An event
//!   not in its shard is looked for where events were kept before the shards, on that miss only:
//!   its own partition (unkeyed) and its key's item (keyed). Those are read, not listed, and were
//!   not moved (no migration, no data lost); a keyed one is copied into its shard, and listed from
//!   then on, the next time its key is used.
//! - a subscription's owner changes it with an UpdateItem of `doc` alone; workers change its
//!   health with an UpdateItem of the health attributes alone, conditional where a warning or a
//!   probe must be given once (see `health`).
//! - tenants and API keys: `put_tenant` and `put_api_key`/`revoke_api_key` write both copies of
//!   the record in one TransactWriteItems (operator actions, rare). Authentication reads the hash
//!   item. A tenant's keys, the operators' list of tenants and a tenant's subscriptions are Queries
//!   of one partition, newest first (ids are ULIDs, so key order is creation order), cursor = the
//!   last id returned (`sk < :cursor`); subscription filters run in code, paging on until the page
//!   is full. Fan-out planning's `enabled_subscriptions` is the same Query read to the end.
//! - intake: one PutItem of the event into its shard, create-if-absent. A keyed event's id is
//!   `EventId::keyed(tenant, key, time)`: its random bits hash the key, so the key's item is found
//!   from the key at intake and from the event id afterwards. The key is taken first: a PutItem of
//!   its small item (a few hundred bytes, one write unit), on condition that the key is free; a failed
//!   condition hands the earlier item back (`ReturnValuesOnConditionCheckFailure`). Within the
//!   earlier record's window (its `expires_at` after the new record's `created_at`, so the window is
//!   exact) that record is the answer. After it, the key is taken over by a put conditional on the
//!   `window_ends` that was read. Then the event is put into its shard. No transaction (which bills
//!   double), and no read. A crash between the two puts leaves the key naming an event that was
//!   never stored (nor answered, nor queued): the same request retried is answered with that
//!   record, so that answer puts the event it names first (create-if-absent: its id and time from
//!   the record, the rest from the retry, one write unit on every duplicate with the same body).
//!   A keyed event under 1 KB thus costs two write units (key and event), one more than an unkeyed
//!   one; before the event list, the key's item held the event too (one item of the event's size
//!   plus the record's, so the same two units for this bench's ~1 KB events).
//! - the first attempt: one PutItem of the delivery with the attempt inside, conditional on no
//!   attempt being recorded (`attribute_not_exists(pk) OR attempts = 0`). A later attempt: a PutItem
//!   of the attempt's own small item, then an UpdateItem of the delivery (`SET doc, attempts`)
//!   conditional on `attempts = number - 1`. When another worker recorded that number first, the
//!   attempt is kept as its own item, so every request made is in the log. Replay, recover and
//!   giving up: an UpdateItem without condition (it creates the delivery given up before its first
//!   attempt, and keeps a recorded first attempt).
//! - a tenant's events, newest first (`GET /v1/events`): a Query of each of its eight event
//!   shards, newest first and eventually consistent, read a few items at a time and merged;
//!   cursor = the last event id; a type filter runs in code. The API adds each listed event's
//!   delivery summary with one BatchGetItem per event (its plan's delivery keys), so a page of 50
//!   is 8+ Queries and 50 BatchGetItems: a console read, never on the delivery path.
//! - a subscription's delivery log, newest first: a Query of each of its eight shards, newest first
//!   and eventually consistent, read a few items at a time and merged; cursor = the last delivery
//!   id. An event's deliveries: BatchGetItem of the keys its plan names (pending ones, not stored
//!   until their first attempt, are not found, and the API shows them as pending).
//! - a delivery's attempts: its item's `first`, and a Query of `ten_…#del_…` ascending (the
//!   zero-padded number makes text order numeric).
//! - the subscription limit: a Query of the tenant's subscriptions, stopped at the limit.
//! - a tenant's event types and settings: one Query of `ten_…#TYPES` (intake reads it once per
//!   cache period per function instance, never per event); the API's writes are one PutItem,
//!   UpdateItem or DeleteItem each.
//! - delivery statistics: an UpdateItem `ADD` per (subscription, hour) touched per flush (a Lambda
//!   batch, or a second of `herald dev`), never per delivery; a window is one Query of the
//!   subscription's statistics partition, `sk BETWEEN` its first and last hour (see `stats`).
//!
//! Pages look one item ahead (`limit + 1`), so the last page has no `next_cursor` even when
//! DynamoDB hands back a `LastEvaluatedKey`.
//!
//! Partitions: a tenant's events go to eight partitions (more than 5,000 events of under 1 KB a
//! second), and each delivery's attempt list is its own partition. One
//! subscription's deliveries go to eight partitions; at about 1,000 write units a second each and
//! one unit per delivery write, one subscription takes more than 5,000 deliveries a second (the
//! README's capacity section has the arithmetic). A tenant's subscriptions are one partition, read
//! once per cache period per function instance.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;

mod catalog;
mod codec;
mod event_types;
mod health;
mod log;
mod rate;
mod read;
mod stats;
mod table;
mod write;

pub use codec::{EVENT_SHARDS, LOG_SHARDS};
pub use rate::DynamoRateLimits;
pub use table::create_table;

/// Where and how long the store keeps its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoConfig {
    /// The table (see [`create_table`]).
    pub table: String,
    /// How long attempts are kept after they started.
    pub attempt_ttl: Duration,
    /// How long events are kept after their timestamp; `None` keeps them.
    pub event_ttl: Option<Duration>,
    /// How long deliveries are kept after they were created; `None` keeps them.
    pub delivery_ttl: Option<Duration>,
}

impl DynamoConfig {
    /// Attempts 30 days, events and deliveries forever. (Idempotency records carry their own expiry.)
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            attempt_ttl: Duration::from_secs(30 * 24 * 3600),
            event_ttl: None,
            delivery_ttl: None,
        }
    }
}

/// The store on DynamoDB. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    config: Arc<DynamoConfig>,
}

impl DynamoStore {
    pub fn new(client: Client, config: DynamoConfig) -> Self {
        Self {
            client,
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &DynamoConfig {
        &self.config
    }
}
