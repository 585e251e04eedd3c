//! [`DynamoStore`]: Herald's records in one DynamoDB table.
//!
//! # Key design
//!
//! One table (name from [`DynamoConfig::table`]) with string keys `pk` (partition) and `sk`
//! (sort), two global secondary indexes, and on every item the record itself as a JSON string in
//! `doc` (the same serde shape the embedded store keeps). Keys start with the owning tenant's id,
//! so tenant scoping is a property of the key, never a filter: a read for tenant B builds a key
//! that cannot name tenant A's item. The exceptions are the API-key item, which is looked up by
//! hash before the tenant is known, and the operators' list of tenants.
//!
//! | item | `pk` | `sk` | index keys | `expires_at` (TTL) |
//! |---|---|---|---|---|
//! | tenant | `ten_…` | `TENANT` | | |
//! | tenant list entry | `TENANTS` | `ten_…` | | |
//! | API key, by hash | `APIKEY#<sha256 hex>` | `APIKEY` | | |
//! | API key, by tenant | `ten_…#KEY` | `key_…` | | |
//! | subscription | `ten_…#SUB` | `sub_…` | | |
//! | event | `ten_…#evt_…` | `EVENT` | | optional |
//! | idempotency record | `ten_…#IDEM#<sha256 hex of the key>` | `IDEM` | | always |
//! | delivery (+ `attempts`, a number) | `ten_…#del_…` | `DELIVERY` | `bysub_pk` = `ten_…#sub_…`, `bysub_sk` = `del_…`; `byevt_pk` = `ten_…#evt_…`, `byevt_sk` = `del_…` | optional |
//! | attempt | `ten_…#del_…` | `ATTEMPT#<number, 10 digits>#att_…` | | always |
//!
//! Indexes (projection ALL, so a page is one Query): `by_subscription` (`bysub_pk`, `bysub_sk`) and
//! `by_event` (`byevt_pk`, `byevt_sk`); only deliveries carry their attributes (sparse indexes).
//!
//! Access patterns (no Scan anywhere):
//!
//! - tenant, API key, subscription, event, delivery by id: GetItem (strongly consistent).
//! - tenants: `put_tenant` writes the tenant item and its `TENANTS` entry (the same record) in one
//!   TransactWriteItems; the operators' list is Query `pk = TENANTS`, descending, cursor = last
//!   tenant id. One partition for every tenant is fine: it is written only when a tenant is made.
//! - API keys: both key items hold the same record. `put_api_key` writes them in one
//!   TransactWriteItems, each create-if-absent; authentication reads only the hash item (GetItem).
//!   A tenant's keys, newest first: Query `pk = ten_…#KEY`, descending. Revoking reads the tenant's
//!   item (so another tenant's key id is `NotFound`) and rewrites both in one transaction.
//! - create-if-absent (tenant upsert aside): PutItem with `attribute_not_exists(pk)`; replace and
//!   delete: PutItem / DeleteItem with `attribute_exists(pk)` (a failed condition is `NotFound`).
//! - a tenant's subscriptions, newest first: Query `pk = ten_…#SUB`, descending (ids are ULIDs, so
//!   key order is creation order); the cursor is the last id returned (`sk < :cursor`). Filters run
//!   in code on the decoded records, paging on until the page is full or the partition ends.
//!   Fan-out's `enabled_subscriptions` is the same Query, read to the end.
//! - intake: TransactWriteItems of the event and the idempotency record, each conditional. The
//!   record's `expires_at` is its own (the window is the application's setting); one whose time has
//!   passed but which DynamoDB has not deleted yet counts as absent (`OR expires_at <= :now`, now
//!   being the new record's `created_at`), so the window is exact.
//! - a subscription's delivery log, newest first: Query `by_subscription`, descending, cursor =
//!   last delivery id. An event's deliveries: Query `by_event`.
//! - an attempt and the delivery's new state: one TransactWriteItems, the delivery conditional on
//!   its `attempts` attribute being `number - 1`. When another worker recorded that number first
//!   (a redelivered message racing the original), the attempt item is written alone, so every
//!   request made is in the log. A delivery's attempts, oldest first: Query `pk = ten_…#del_…`,
//!   `begins_with(sk, "ATTEMPT#")`, ascending; the zero-padded number makes text order numeric.
//! - the subscription limit: a Query of the tenant's subscriptions, stopped at the limit.
//!
//! Pages look one item ahead (`limit + 1`), so the last page has no `next_cursor` even when
//! DynamoDB hands back a `LastEvaluatedKey`.
//!
//! Each event and each delivery is its own partition, so intake and delivery writes spread evenly.
//! The hot spots are bounded by the product: a tenant's subscriptions (read once per fan-out) and a
//! subscription's index partition (one write per delivery update). Index reads are eventually
//! consistent: a delivery appears in the log and under its event a moment after it is written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, StreamExt};
use herald_core::digest::sha256_hex;
use herald_core::ids::{ApiKeyId, AttemptId, DeliveryId, EventId, SubscriptionId, TenantId};
use herald_core::model::{
    ApiKeyRecord, Attempt, Delivery, Event, IdempotencyRecord, Subscription, Tenant,
};
use herald_core::ports::{
    DeliveryStore, EventStore, InsertEventOutcome, Page, PageRequest, Recorded, StoreError,
    SubscriptionFilter, SubscriptionStore, TenantStore,
};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{service_code, store_backend};

const PK: &str = "pk";
const SK: &str = "sk";
const DOC: &str = "doc";
const EXPIRES_AT: &str = "expires_at";
/// A delivery's attempt count, beside its `doc`: the condition of `record_attempt`.
const ATTEMPTS: &str = "attempts";

/// The delivery log index.
pub const BY_SUBSCRIPTION_INDEX: &str = "by_subscription";
const BY_SUB_PK: &str = "bysub_pk";
const BY_SUB_SK: &str = "bysub_sk";
/// The deliveries-of-an-event index.
pub const BY_EVENT_INDEX: &str = "by_event";
const BY_EVENT_PK: &str = "byevt_pk";
const BY_EVENT_SK: &str = "byevt_sk";

const PK_TENANTS: &str = "TENANTS";
const SK_TENANT: &str = "TENANT";
const SK_API_KEY: &str = "APIKEY";
const SK_EVENT: &str = "EVENT";
const SK_IDEMPOTENCY: &str = "IDEM";
const SK_DELIVERY: &str = "DELIVERY";
const ATTEMPT_PREFIX: &str = "ATTEMPT#";

/// How many conditional puts `create_deliveries` keeps in flight.
const CREATE_CONCURRENCY: usize = 16;
/// How often a transaction cancelled by a concurrent one is tried again.
const CONFLICT_RETRIES: u32 = 5;
/// With a filter, most rows may be dropped: read bigger pages than the caller asked for.
const FILTERED_BATCH: usize = 100;

type Item = HashMap<String, AttributeValue>;

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

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Epoch seconds `ttl` after `from`, for the TTL attribute.
fn expiry(from: Timestamp, ttl: Duration) -> i64 {
    from.as_second()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

// Key builders: the one place the layout in the module docs is spelled out in code.
fn tenant_pk(tenant: &TenantId) -> String {
    tenant.to_string()
}
fn api_key_pk(hash: &str) -> String {
    format!("APIKEY#{hash}")
}
fn tenant_keys_pk(tenant: &TenantId) -> String {
    format!("{tenant}#KEY")
}
fn subscriptions_pk(tenant: &TenantId) -> String {
    format!("{tenant}#SUB")
}
fn event_pk(tenant: &TenantId, event: &EventId) -> String {
    format!("{tenant}#{event}")
}
fn idempotency_pk(tenant: &TenantId, key: &str) -> String {
    // Hashed: the key is caller text of any length and alphabet; the record keeps the original.
    format!("{tenant}#IDEM#{}", sha256_hex(key))
}
fn delivery_pk(tenant: &TenantId, delivery: &DeliveryId) -> String {
    format!("{tenant}#{delivery}")
}
fn by_subscription_pk(tenant: &TenantId, subscription: &SubscriptionId) -> String {
    format!("{tenant}#{subscription}")
}
fn attempt_sk(number: u32, attempt: &AttemptId) -> String {
    format!("{ATTEMPT_PREFIX}{number:010}#{attempt}")
}

/// An item: its keys, the record as JSON, and its expiry if it has one.
fn item<T: Serialize>(
    pk: String,
    sk: String,
    record: &T,
    expires_at: Option<i64>,
) -> Result<Item, StoreError> {
    let doc = serde_json::to_string(record).map_err(StoreError::backend)?;
    let mut item = Item::with_capacity(8);
    item.insert(PK.into(), s(pk));
    item.insert(SK.into(), s(sk));
    item.insert(DOC.into(), s(doc));
    if let Some(at) = expires_at {
        item.insert(EXPIRES_AT.into(), n(at));
    }
    Ok(item)
}

fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let doc = item
        .get(DOC)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::backend(format!("an item has no string `{DOC}` attribute")))?;
    serde_json::from_str(doc).map_err(StoreError::backend)
}

/// What a conditional put requires of the item it replaces.
#[derive(Debug, Clone, Copy)]
enum Condition {
    /// Unconditional upsert.
    None,
    /// Create-if-absent; a failed condition is `AlreadyExists`.
    Absent,
    /// Replace-if-present; a failed condition is `NotFound`.
    Present,
}

impl Condition {
    fn expression(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Absent => Some("attribute_not_exists(#pk)"),
            Self::Present => Some("attribute_exists(#pk)"),
        }
    }

    fn failure(self) -> StoreError {
        match self {
            Self::Present => StoreError::NotFound,
            Self::None | Self::Absent => StoreError::AlreadyExists,
        }
    }
}

/// A key condition for Query: `#pk = :pk`, optionally `AND #sk < :before` or
/// `AND begins_with(#sk, :prefix)`.
struct KeyQuery {
    index: Option<&'static str>,
    pk_name: &'static str,
    sk_name: &'static str,
    pk: String,
    sort: SortCondition,
    forward: bool,
}

enum SortCondition {
    Any,
    Before(String),
    BeginsWith(&'static str),
}

/// The cancellation reason codes of a cancelled transaction, in request order, and the item a
/// failed condition saw if it was asked for.
struct Cancelled {
    codes: Vec<Option<String>>,
    items: Vec<Option<Item>>,
}

impl Cancelled {
    fn code(&self, index: usize) -> Option<&str> {
        self.codes.get(index).and_then(|c| c.as_deref())
    }

    fn condition_failed(&self, index: usize) -> bool {
        self.code(index) == Some("ConditionalCheckFailed")
    }

    fn conflict(&self) -> bool {
        self.codes
            .iter()
            .any(|c| c.as_deref() == Some("TransactionConflict"))
    }
}

/// Backoff between retries of a transaction that lost a race with another one.
async fn conflict_pause(try_number: u32) {
    tokio::time::sleep(Duration::from_millis(20 * u64::from(try_number + 1))).await;
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

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.config.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            // Reads follow writes everywhere else in Herald (the embedded store is a database).
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_backend("DynamoDB.GetItem", e))?;
        Ok(out.item)
    }

    async fn get_record<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_item(pk, sk)
            .await?
            .map(|item| decode(&item))
            .transpose()
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.config.table)
            .set_item(Some(item));
        if let Some(expression) = condition.expression() {
            request = request
                .condition_expression(expression)
                .expression_attribute_names("#pk", PK);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(condition.failure())
            }
            Err(e) => Err(store_backend("DynamoDB.PutItem", e)),
        }
    }

    /// One Query call: the items and the key to continue from, if DynamoDB stopped early.
    async fn query_page(
        &self,
        q: &KeyQuery,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.config.table)
            .scan_index_forward(q.forward)
            .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .set_exclusive_start_key(start)
            .expression_attribute_names("#pk", q.pk_name)
            .expression_attribute_values(":pk", s(q.pk.clone()));
        request = match &q.sort {
            SortCondition::Any => request.key_condition_expression("#pk = :pk"),
            SortCondition::Before(before) => request
                .key_condition_expression("#pk = :pk AND #sk < :sk")
                .expression_attribute_names("#sk", q.sk_name)
                .expression_attribute_values(":sk", s(before.clone())),
            SortCondition::BeginsWith(prefix) => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :sk)")
                .expression_attribute_names("#sk", q.sk_name)
                .expression_attribute_values(":sk", s(*prefix)),
        };
        request = match q.index {
            Some(index) => request.index_name(index),
            None => request.consistent_read(true),
        };
        let out = request
            .send()
            .await
            .map_err(|e| store_backend("DynamoDB.Query", e))?;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), next))
    }

    /// How many items the query matches, counting no further than `up_to`.
    async fn count(&self, q: &KeyQuery, up_to: usize) -> Result<usize, StoreError> {
        let mut count = 0;
        let mut start = None;
        while count < up_to {
            let (items, next) = self.query_page(q, Some(up_to - count), start).await?;
            count += items.len();
            match next {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(count.min(up_to))
    }

    /// Every record the query matches, in its order, that `keep` keeps.
    async fn query_all<T: DeserializeOwned>(
        &self,
        q: &KeyQuery,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_page(q, None, start).await?;
            for item in &items {
                let record: T = decode(item)?;
                if keep(&record) {
                    out.push(record);
                }
            }
            match next {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }

    /// One page of a descending query: up to `limit` kept records, looking one ahead to know
    /// whether there is a next page; its cursor is `cursor_of` the last record returned.
    async fn page<T: DeserializeOwned>(
        &self,
        q: &KeyQuery,
        limit: usize,
        filtered: bool,
        keep: impl Fn(&T) -> bool,
        cursor_of: impl Fn(&T) -> String,
    ) -> Result<Page<T>, StoreError> {
        // A zero limit would page forever without progress.
        let limit = limit.max(1);
        let want = limit.saturating_add(1);
        let mut items = Vec::new();
        let mut start = None;
        'pages: loop {
            let missing = want - items.len();
            let batch = if filtered {
                missing.max(FILTERED_BATCH)
            } else {
                missing
            };
            let (rows, next) = self.query_page(q, Some(batch), start).await?;
            for row in &rows {
                let record: T = decode(row)?;
                if keep(&record) {
                    items.push(record);
                    if items.len() == want {
                        break 'pages;
                    }
                }
            }
            match next {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more {
            items.last().map(cursor_of)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    fn delivery_item(&self, d: &Delivery) -> Result<Item, StoreError> {
        let expires = self
            .config
            .delivery_ttl
            .map(|ttl| expiry(d.created_at, ttl));
        let mut item = item(
            delivery_pk(&d.tenant_id, &d.id),
            SK_DELIVERY.into(),
            d,
            expires,
        )?;
        // Every put of a delivery rewrites its index keys: a Put replaces the whole item.
        item.insert(
            BY_SUB_PK.into(),
            s(by_subscription_pk(&d.tenant_id, &d.subscription_id)),
        );
        item.insert(BY_SUB_SK.into(), s(d.id.to_string()));
        item.insert(BY_EVENT_PK.into(), s(event_pk(&d.tenant_id, &d.event_id)));
        item.insert(BY_EVENT_SK.into(), s(d.id.to_string()));
        item.insert(ATTEMPTS.into(), n(i64::from(d.attempts)));
        Ok(item)
    }

    fn put_request(&self, item: Item, condition: Condition) -> Result<Put, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.config.table)
            .set_item(Some(item));
        if let Some(expression) = condition.expression() {
            put = put
                .condition_expression(expression)
                .expression_attribute_names("#pk", PK);
        }
        put.build().map_err(StoreError::backend)
    }

    /// Runs a transaction of puts; a cancellation is returned as its reasons, anything else is a
    /// backend error.
    async fn transact(&self, puts: Vec<Put>) -> Result<Result<(), Cancelled>, StoreError> {
        let items = puts
            .into_iter()
            .map(|p| TransactWriteItem::builder().put(p).build())
            .collect();
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(Ok(())),
            Err(err) => err,
        };
        let cancelled = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => Cancelled {
                codes: e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().map(str::to_owned))
                    .collect(),
                items: e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.item.clone())
                    .collect(),
            },
            _ => return Err(store_backend("DynamoDB.TransactWriteItems", err)),
        };
        Ok(Err(cancelled))
    }
}

impl DynamoStore {
    /// Writes `items` in one transaction, each under its condition; retries when a concurrent
    /// transaction got in the way. A failed condition is that condition's error.
    async fn transact_all(
        &self,
        operation: &'static str,
        items: Vec<(Item, Condition)>,
    ) -> Result<(), StoreError> {
        for try_number in 0..=CONFLICT_RETRIES {
            let puts = items
                .iter()
                .map(|(item, condition)| self.put_request(item.clone(), *condition))
                .collect::<Result<Vec<_>, _>>()?;
            let cancelled = match self.transact(puts).await? {
                Ok(()) => return Ok(()),
                Err(cancelled) => cancelled,
            };
            let failed = items
                .iter()
                .enumerate()
                .find(|(i, _)| cancelled.condition_failed(*i));
            if let Some((_, (_, condition))) = failed {
                return Err(condition.failure());
            }
            if cancelled.conflict() && try_number < CONFLICT_RETRIES {
                conflict_pause(try_number).await;
                continue;
            }
            return Err(cancelled_error(&cancelled));
        }
        Err(StoreError::backend(format!(
            "{operation}: too many conflicting transactions"
        )))
    }
}

/// A transaction cancelled for a reason the caller does not handle.
fn cancelled_error(cancelled: &Cancelled) -> StoreError {
    let codes: Vec<&str> = cancelled
        .codes
        .iter()
        .map(|c| c.as_deref().unwrap_or("None"))
        .collect();
    StoreError::backend(format!(
        "DynamoDB.TransactWriteItems was cancelled: [{}]",
        codes.join(", ")
    ))
}

/// The writes of events and deliveries. The services reach them only through
/// [`crate::AwsUnitOfWork`], which sends their messages after them.
impl DynamoStore {
    /// Stores the event and its idempotency record (see `UnitOfWork::insert_event_and_send`).
    pub async fn insert_event(
        &self,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<InsertEventOutcome, StoreError> {
        let event_item = item(
            event_pk(&event.tenant_id, &event.id),
            SK_EVENT.into(),
            event,
            self.config
                .event_ttl
                .map(|ttl| expiry(event.timestamp, ttl)),
        )?;
        let Some(record) = idempotency else {
            self.put(event_item, Condition::Absent).await?;
            return Ok(InsertEventOutcome::Inserted);
        };
        let record_pk = idempotency_pk(&record.tenant_id, &record.key);
        let record_item = item(
            record_pk.clone(),
            SK_IDEMPOTENCY.into(),
            record,
            Some(record.expires_at.as_second()),
        )?;
        for try_number in 0..=CONFLICT_RETRIES {
            let record_put = Put::builder()
                .table_name(&self.config.table)
                .set_item(Some(record_item.clone()))
                // An expired record that DynamoDB has not swept yet no longer counts.
                .condition_expression("attribute_not_exists(#pk) OR #exp <= :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#exp", EXPIRES_AT)
                .expression_attribute_values(":now", n(record.created_at.as_second()))
                // The duplicate's answer comes back with the cancellation: no second read.
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(StoreError::backend)?;
            let event_put = self.put_request(event_item.clone(), Condition::Absent)?;
            let cancelled = match self.transact(vec![record_put, event_put]).await? {
                Ok(()) => return Ok(InsertEventOutcome::Inserted),
                Err(cancelled) => cancelled,
            };
            if cancelled.condition_failed(0) {
                let existing = match cancelled.items.first().cloned().flatten() {
                    Some(item) => Some(decode(&item)?),
                    None => self.get_record(record_pk.clone(), SK_IDEMPOTENCY).await?,
                };
                match existing {
                    Some(existing) => return Ok(InsertEventOutcome::Duplicate(existing)),
                    // Swept between the write and the read: the key is free again, try again.
                    None => continue,
                }
            }
            if cancelled.condition_failed(1) {
                // Event ids are fresh ULIDs; a clash is a caller bug, and events are never
                // overwritten.
                return Err(StoreError::AlreadyExists);
            }
            if cancelled.conflict() && try_number < CONFLICT_RETRIES {
                conflict_pause(try_number).await;
                continue;
            }
            return Err(cancelled_error(&cancelled));
        }
        Err(StoreError::backend(
            "insert_event: the idempotency record kept changing under concurrent writers",
        ))
    }

    /// Creates the deliveries that do not exist yet; returns the ones it created.
    pub async fn create_deliveries(
        &self,
        deliveries: &[Delivery],
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let rows = deliveries
            .iter()
            .map(|d| Ok((d.id, self.delivery_item(d)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // One conditional put each (a transaction would fail whole on the first existing one);
        // `buffered` keeps the input order.
        let results: Vec<Result<Option<DeliveryId>, StoreError>> = stream::iter(rows)
            .map(|(id, item)| async move {
                match self.put(item, Condition::Absent).await {
                    Ok(()) => Ok(Some(id)),
                    Err(StoreError::AlreadyExists) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(CREATE_CONCURRENCY)
            .collect()
            .await;
        let mut created = Vec::new();
        for result in results {
            if let Some(id) = result? {
                created.push(id);
            }
        }
        Ok(created)
    }

    /// Replaces an existing delivery.
    pub async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let item = self.delivery_item(delivery)?;
        self.put(item, Condition::Present).await
    }

    /// Records the attempt; replaces the delivery only if it has made `attempt.number - 1`
    /// attempts (the `attempts` attribute), else keeps the attempt record alone.
    pub async fn record_attempt(
        &self,
        attempt: &Attempt,
        delivery: &Delivery,
    ) -> Result<Recorded, StoreError> {
        let attempt_item = item(
            delivery_pk(&attempt.tenant_id, &attempt.delivery_id),
            attempt_sk(attempt.number, &attempt.id),
            attempt,
            Some(expiry(attempt.started_at, self.config.attempt_ttl)),
        )?;
        let delivery_item = self.delivery_item(delivery)?;
        let expected = i64::from(attempt.number.saturating_sub(1));
        for try_number in 0..=CONFLICT_RETRIES {
            let delivery_put = Put::builder()
                .table_name(&self.config.table)
                .set_item(Some(delivery_item.clone()))
                .condition_expression("attribute_exists(#pk) AND #att = :expected")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#att", ATTEMPTS)
                .expression_attribute_values(":expected", n(expected))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(StoreError::backend)?;
            let attempt_put = self.put_request(attempt_item.clone(), Condition::None)?;
            let cancelled = match self.transact(vec![attempt_put, delivery_put]).await? {
                Ok(()) => return Ok(Recorded::Applied),
                Err(cancelled) => cancelled,
            };
            if cancelled.condition_failed(1) {
                let exists = match cancelled.items.get(1).cloned().flatten() {
                    Some(_) => true,
                    None => self
                        .get_item(delivery_pk(&delivery.tenant_id, &delivery.id), SK_DELIVERY)
                        .await?
                        .is_some(),
                };
                if !exists {
                    return Err(StoreError::NotFound);
                }
                // Another worker recorded this number first: keep this request in the log.
                self.put(attempt_item, Condition::None).await?;
                return Ok(Recorded::Superseded);
            }
            if cancelled.conflict() && try_number < CONFLICT_RETRIES {
                conflict_pause(try_number).await;
                continue;
            }
            return Err(cancelled_error(&cancelled));
        }
        Err(StoreError::backend(
            "record_attempt: the delivery kept changing under concurrent writers",
        ))
    }
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let record = item(tenant_pk(&tenant.id), SK_TENANT.into(), tenant, None)?;
        let entry = item(PK_TENANTS.into(), tenant.id.to_string(), tenant, None)?;
        self.transact_all(
            "put_tenant",
            vec![(record, Condition::None), (entry, Condition::None)],
        )
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.get_record(tenant_pk(id), SK_TENANT).await
    }

    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        let before = page
            .cursor
            .as_deref()
            .map(|c| TenantId::parse(c).map_err(|_| StoreError::BadCursor))
            .transpose()?;
        let q = KeyQuery {
            index: None,
            pk_name: PK,
            sk_name: SK,
            pk: PK_TENANTS.into(),
            sort: before.map_or(SortCondition::Any, |id| {
                SortCondition::Before(id.to_string())
            }),
            forward: false,
        };
        self.page(
            &q,
            page.limit,
            false,
            |_: &Tenant| true,
            |t| t.id.to_string(),
        )
        .await
    }

    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let by_hash = item(api_key_pk(&key.hash), SK_API_KEY.into(), key, None)?;
        let by_tenant = item(
            tenant_keys_pk(&key.tenant_id),
            key.id.to_string(),
            key,
            None,
        )?;
        self.transact_all(
            "put_api_key",
            vec![(by_hash, Condition::Absent), (by_tenant, Condition::Absent)],
        )
        .await
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_record(api_key_pk(hash), SK_API_KEY).await
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let q = KeyQuery {
            index: None,
            pk_name: PK,
            sk_name: SK,
            pk: tenant_keys_pk(tenant),
            sort: SortCondition::Any,
            forward: false,
        };
        self.query_all(&q, |_: &ApiKeyRecord| true).await
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        // Read through the tenant's partition: another tenant's key id is simply not there.
        let mut record: ApiKeyRecord = self
            .get_record(tenant_keys_pk(tenant), &id.to_string())
            .await?
            .ok_or(StoreError::NotFound)?;
        if record.revoked_at.is_some() {
            return Ok(());
        }
        record.revoked_at = Some(at);
        let by_hash = item(api_key_pk(&record.hash), SK_API_KEY.into(), &record, None)?;
        let by_tenant = item(tenant_keys_pk(tenant), id.to_string(), &record, None)?;
        self.transact_all(
            "revoke_api_key",
            vec![
                (by_hash, Condition::Present),
                (by_tenant, Condition::Present),
            ],
        )
        .await
    }
}

#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let item = item(
            subscriptions_pk(&sub.tenant_id),
            sub.id.to_string(),
            sub,
            None,
        )?;
        self.put(item, Condition::Absent).await
    }

    async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        self.get_record(subscriptions_pk(tenant), &id.to_string())
            .await
    }

    async fn update_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let item = item(
            subscriptions_pk(&sub.tenant_id),
            sub.id.to_string(),
            sub,
            None,
        )?;
        self.put(item, Condition::Present).await
    }

    async fn delete_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<(), StoreError> {
        // The subscription's deliveries and attempts stay: they are the delivery log.
        let result = self
            .client
            .delete_item()
            .table_name(&self.config.table)
            .key(PK, s(subscriptions_pk(tenant)))
            .key(SK, s(id.to_string()))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(store_backend("DynamoDB.DeleteItem", e)),
        }
    }

    async fn list_subscriptions(
        &self,
        tenant: &TenantId,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        let before = page
            .cursor
            .as_deref()
            .map(|c| SubscriptionId::parse(c).map_err(|_| StoreError::BadCursor))
            .transpose()?;
        let q = KeyQuery {
            index: None,
            pk_name: PK,
            sk_name: SK,
            pk: subscriptions_pk(tenant),
            sort: before.map_or(SortCondition::Any, |id| {
                SortCondition::Before(id.to_string())
            }),
            forward: false,
        };
        let filtered = filter.enabled.is_some() || filter.event.is_some();
        self.page(
            &q,
            page.limit,
            filtered,
            |sub: &Subscription| {
                filter.enabled.is_none_or(|e| sub.enabled == e)
                    && filter.event.as_ref().is_none_or(|t| sub.matches(t))
            },
            |sub| sub.id.to_string(),
        )
        .await
    }

    async fn enabled_subscriptions(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let q = KeyQuery {
            index: None,
            pk_name: PK,
            sk_name: SK,
            pk: subscriptions_pk(tenant),
            sort: SortCondition::Any,
            forward: true,
        };
        self.query_all(&q, |sub: &Subscription| sub.enabled).await
    }

    async fn count_subscriptions(
        &self,
        tenant: &TenantId,
        up_to: usize,
    ) -> Result<usize, StoreError> {
        let q = KeyQuery {
            index: None,
            pk_name: PK,
            sk_name: SK,
            pk: subscriptions_pk(tenant),
            sort: SortCondition::Any,
            forward: true,
        };
        self.count(&q, up_to).await
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> Result<Option<Event>, StoreError> {
        self.get_record(event_pk(tenant, id), SK_EVENT).await
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn get_delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.get_record(delivery_pk(tenant, id), SK_DELIVERY).await
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let before = page
            .cursor
            .as_deref()
            .map(|c| DeliveryId::parse(c).map_err(|_| StoreError::BadCursor))
            .transpose()?;
        let q = KeyQuery {
            index: Some(BY_SUBSCRIPTION_INDEX),
            pk_name: BY_SUB_PK,
            sk_name: BY_SUB_SK,
            pk: by_subscription_pk(tenant, subscription),
            sort: before.map_or(SortCondition::Any, |id| {
                SortCondition::Before(id.to_string())
            }),
            forward: false,
        };
        self.page(
            &q,
            page.limit,
            false,
            |_: &Delivery| true,
            |d| d.id.to_string(),
        )
        .await
    }

    async fn deliveries_for_event(
        &self,
        tenant: &TenantId,
        event: &EventId,
    ) -> Result<Vec<Delivery>, StoreError> {
        let q = KeyQuery {
            index: Some(BY_EVENT_INDEX),
            pk_name: BY_EVENT_PK,
            sk_name: BY_EVENT_SK,
            pk: event_pk(tenant, event),
            sort: SortCondition::Any,
            forward: true,
        };
        self.query_all(&q, |_: &Delivery| true).await
    }

    async fn list_attempts(
        &self,
        tenant: &TenantId,
        delivery: &DeliveryId,
    ) -> Result<Vec<Attempt>, StoreError> {
        let q = KeyQuery {
            index: None,
            pk_name: PK,
            sk_name: SK,
            pk: delivery_pk(tenant, delivery),
            sort: SortCondition::BeginsWith(ATTEMPT_PREFIX),
            forward: true,
        };
        self.query_all(&q, |_: &Attempt| true).await
    }
}

fn attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(StoreError::backend)
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(StoreError::backend)
}

fn index(name: &str, pk: &str, sk: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(StoreError::backend)
}

/// Creates the table and its indexes (on-demand capacity), waits until it is active, and enables
/// TTL on `expires_at`. `AlreadyExists` if the table is there already.
pub async fn create_table(client: &Client, config: &DynamoConfig) -> Result<(), StoreError> {
    let mut request = client
        .create_table()
        .table_name(&config.table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(index(BY_SUBSCRIPTION_INDEX, BY_SUB_PK, BY_SUB_SK)?)
        .global_secondary_indexes(index(BY_EVENT_INDEX, BY_EVENT_PK, BY_EVENT_SK)?);
    for name in [PK, SK, BY_SUB_PK, BY_SUB_SK, BY_EVENT_PK, BY_EVENT_SK] {
        request = request.attribute_definitions(attribute(name)?);
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if service_code(&e) == Some("ResourceInUseException") => {
            return Err(StoreError::AlreadyExists)
        }
        Err(e) => return Err(store_backend("DynamoDB.CreateTable", e)),
    }
    // Real DynamoDB takes a few seconds; emulators are active at once.
    let mut waited = Duration::ZERO;
    loop {
        let out = client
            .describe_table()
            .table_name(&config.table)
            .send()
            .await
            .map_err(|e| store_backend("DynamoDB.DescribeTable", e))?;
        let status = out.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            break;
        }
        if waited >= Duration::from_secs(300) {
            return Err(StoreError::backend(format!(
                "table {} is not active after {waited:?} (status {status:?})",
                config.table
            )));
        }
        let step = Duration::from_secs(1);
        tokio::time::sleep(step).await;
        waited += step;
    }
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(EXPIRES_AT)
        .build()
        .map_err(StoreError::backend)?;
    client
        .update_time_to_live()
        .table_name(&config.table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| store_backend("DynamoDB.UpdateTimeToLive", e))?;
    Ok(())
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
        assert!(idempotency_pk(&t, &"x".repeat(5000)).len() < 200);
        let a = AttemptId::new();
        assert!(attempt_sk(9, &a) < attempt_sk(10, &AttemptId::new()));
        assert!(attempt_sk(99, &a) < attempt_sk(u32::MAX, &a));
        assert_ne!(idempotency_pk(&t, "key:a"), idempotency_pk(&t, "key:b"));
    }

    #[test]
    fn expiry_is_epoch_seconds_after_the_start() {
        let at = Timestamp::from_second(1_000).unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(expiry(at, Duration::from_secs(60)), 1_060);
        assert_eq!(expiry(at, Duration::MAX), i64::MAX);
    }
}
