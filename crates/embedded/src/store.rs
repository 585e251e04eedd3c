//! [`EmbeddedStore`]: Herald's records (tenants, API keys, subscriptions, events, idempotency
//! records, deliveries, attempts) in the embedded database (see `kv`).
//!
//! Writes are closures run by the group-commit writer; each checks its conditions before its first
//! write, so a refused write changes nothing. Values are encoded before they are handed to the
//! writer (events, deliveries and attempts in the compact forms of `codec`, the rest as JSON),
//! which keeps the single writer thread busy with little more than B-tree inserts.
//! Point reads run inline (a read transaction and one lookup take microseconds); scans run on the
//! blocking pool.

use std::sync::Arc;

use async_trait::async_trait;
use herald_core::health::{Health, HealthChange};
use herald_core::ids::{ApiKeyId, DeliveryId, EventId, SubscriptionId, TenantId};
use herald_core::model::{
    ApiKeyRecord, Attempt, Delivery, Event, IdempotencyRecord, Subscription, Tenant,
};
use herald_core::pattern::EventType;
use herald_core::ports::{
    DeliveryStore, EventStore, InsertEventOutcome, Page, PageRequest, Recorded, StoreError,
    SubscriptionFilter, SubscriptionStore, TenantStore,
};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::kv::ReadTable;
use crate::tables::{
    api_keys_prefix, attempt_key, attempts_prefix, delivery_key, key2, prefix1, prefix_end,
    subscription_deliveries_prefix, Tbl,
};
use crate::writer::WriteCtx;
use crate::Inner;

/// The durable store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(StoreError::backend)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(StoreError::backend)
}

impl Inner {
    /// A snapshot of table `t`. (A `Result` like the reads it starts, so callers need not care.)
    pub(crate) fn read_table(&self, t: Tbl) -> Result<ReadTable, StoreError> {
        Ok(self.kv.read(t))
    }

    fn get_record<T: DeserializeOwned>(&self, t: Tbl, key: &str) -> Result<Option<T>, StoreError> {
        self.get_record_as(t, key, decode)
    }

    /// The record under `key` in table `t`, read with `decode`.
    fn get_record_as<T>(
        &self,
        t: Tbl,
        key: &str,
        decode: fn(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        get_in_as(&self.read_table(t)?, key, decode)
    }
}

fn get_in<T: DeserializeOwned>(table: &ReadTable, key: &str) -> Result<Option<T>, StoreError> {
    get_in_as(table, key, decode)
}

/// The record under `key` in `table`, read with `decode`.
fn get_in_as<T>(
    table: &ReadTable,
    key: &str,
    decode: fn(&[u8]) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let value = table.get(key).map_err(StoreError::backend)?;
    value.map(|v| decode(v.value())).transpose()
}

// The records in the compact forms of `codec`.

fn decode_event(bytes: &[u8]) -> Result<Event, StoreError> {
    codec::decode_event(bytes).map_err(StoreError::backend)
}

pub(crate) fn decode_delivery(bytes: &[u8]) -> Result<Delivery, StoreError> {
    codec::decode_delivery_record(bytes).map_err(StoreError::backend)
}

fn decode_attempt(bytes: &[u8]) -> Result<Attempt, StoreError> {
    codec::decode_attempt(bytes).map_err(StoreError::backend)
}

/// One page of `table`'s keys under `prefix`, newest (greatest) first, strictly before `before`
/// (the cursor's key) if given. `pick` turns a row into an item and its cursor text, or skips it.
fn page_newest_first<T>(
    table: &ReadTable,
    prefix: &str,
    before: Option<String>,
    limit: usize,
    mut pick: impl FnMut(&str, &[u8]) -> Result<Option<(String, T)>, StoreError>,
) -> Result<Page<T>, StoreError> {
    // A zero limit would page forever without progress.
    let limit = limit.max(1);
    let end = before.unwrap_or_else(|| prefix_end(prefix));
    let mut items = Vec::new();
    let mut last_cursor = None;
    let mut more = false;
    let rows = table
        .range(prefix..end.as_str())
        .map_err(StoreError::backend)?;
    for row in rows.rev() {
        let (key, value) = row.map_err(StoreError::backend)?;
        if let Some((cursor, item)) = pick(key.value(), value.value())? {
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(item);
            last_cursor = Some(cursor);
        }
    }
    Ok(Page {
        items,
        next_cursor: if more { last_cursor } else { None },
    })
}

/// Every value under `prefix`, in key order.
fn scan_prefix<T>(
    table: &ReadTable,
    prefix: &str,
    mut pick: impl FnMut(&str, &[u8]) -> Result<Option<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let end = prefix_end(prefix);
    let mut out = Vec::new();
    for row in table
        .range(prefix..end.as_str())
        .map_err(StoreError::backend)?
    {
        let (key, value) = row.map_err(StoreError::backend)?;
        if let Some(item) = pick(key.value(), value.value())? {
            out.push(item);
        }
    }
    Ok(out)
}

/// A delivery encoded for the writer. Its key names its subscription's range (see
/// [`delivery_key`]), so no index rows go with it.
struct DeliveryRow {
    key: String,
    value: Vec<u8>,
}

impl DeliveryRow {
    fn new(d: &Delivery) -> Result<Self, StoreError> {
        Ok(Self {
            key: delivery_key(&d.tenant_id, &d.id),
            value: codec::encode_delivery_record(d).map_err(StoreError::backend)?,
        })
    }

    fn put(&self, ctx: &mut WriteCtx<'_>) -> Result<(), StoreError> {
        ctx.put(Tbl::Deliveries, &self.key, &self.value)
    }
}

/// An event (and its idempotency record) encoded for the writer. Shared with the outbox.
pub(crate) struct EventWrite {
    event_key: String,
    event_value: Vec<u8>,
    /// Key, value, and the record's `created_at` (the "now" its window is judged by).
    record: Option<(String, Vec<u8>, Timestamp)>,
}

impl EventWrite {
    pub(crate) fn new(
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            event_key: key2(event.tenant_id, event.id),
            event_value: codec::encode_event(event).map_err(StoreError::backend)?,
            record: idempotency
                .map(|r| Ok::<_, StoreError>((key2(r.tenant_id, &r.key), encode(r)?, r.created_at)))
                .transpose()?,
        })
    }

    pub(crate) fn apply(&self, ctx: &mut WriteCtx<'_>) -> Result<InsertEventOutcome, StoreError> {
        if let Some((key, _, now)) = &self.record {
            if let Some(existing) = ctx.get(Tbl::Idempotency, key)? {
                let existing: IdempotencyRecord = decode(&existing)?;
                // An expired record is as good as absent: it is replaced below.
                if existing.expires_at > *now {
                    return Ok(InsertEventOutcome::Duplicate(existing));
                }
            }
        }
        // Event ids are fresh ULIDs; a clash means a caller bug, and an event is never overwritten.
        if ctx.contains(Tbl::Events, &self.event_key)? {
            return Err(StoreError::AlreadyExists);
        }
        ctx.put(Tbl::Events, &self.event_key, &self.event_value)?;
        if let Some((key, value, _)) = &self.record {
            ctx.put(Tbl::Idempotency, key, value)?;
        }
        Ok(InsertEventOutcome::Inserted)
    }
}

/// An attempt and its delivery's new state, encoded for the writer. Shared with the outbox.
pub(crate) struct AttemptWrite {
    attempt_key: String,
    attempt_value: Vec<u8>,
    /// Attempts the stored delivery must have made for the delivery to be replaced.
    expected_attempts: u32,
    delivery: DeliveryRow,
}

impl AttemptWrite {
    pub(crate) fn new(attempt: &Attempt, delivery: &Delivery) -> Result<Self, StoreError> {
        Ok(Self {
            attempt_key: attempt_key(
                &attempt.tenant_id,
                &attempt.delivery_id,
                attempt.number,
                &attempt.id,
            ),
            attempt_value: codec::encode_attempt(attempt).map_err(StoreError::backend)?,
            expected_attempts: attempt.number.saturating_sub(1),
            delivery: DeliveryRow::new(delivery)?,
        })
    }

    pub(crate) fn apply(&self, ctx: &mut WriteCtx<'_>) -> Result<Recorded, StoreError> {
        let stored = match ctx.get(Tbl::Deliveries, &self.delivery.key)? {
            Some(bytes) => Some(decode_delivery(&bytes)?.attempts),
            None => None,
        };
        ctx.put(Tbl::Attempts, &self.attempt_key, &self.attempt_value)?;
        // Not stored yet: no attempt made; its first attempt stores it.
        if stored.unwrap_or(0) != self.expected_attempts {
            return Ok(Recorded::Superseded);
        }
        self.delivery.put(ctx)?;
        Ok(Recorded::Applied)
    }
}

/// A delivery's new state, stored whether or not it was before. Shared with the outbox.
pub(crate) struct DeliveryUpdate {
    row: DeliveryRow,
}

impl DeliveryUpdate {
    pub(crate) fn new(delivery: &Delivery) -> Result<Self, StoreError> {
        Ok(Self {
            row: DeliveryRow::new(delivery)?,
        })
    }

    pub(crate) fn apply(&self, ctx: &mut WriteCtx<'_>) -> Result<(), StoreError> {
        self.row.put(ctx)
    }
}

impl EmbeddedStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The database behind it (for the statistics' rows, `crate::stats`).
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Runs a read that may scan many rows on the blocking pool, off the async workers.
    async fn scan<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Inner) -> Result<R, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(StoreError::backend)?
    }

    /// Writes `value` under `key` if the key is absent, else `AlreadyExists`.
    async fn create(&self, t: Tbl, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |ctx| {
                if ctx.contains(t, &key)? {
                    return Err(StoreError::AlreadyExists);
                }
                ctx.put(t, &key, &value)
            })
            .await
    }
}

#[async_trait]
impl TenantStore for EmbeddedStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let key = tenant.id.to_string();
        let value = encode(tenant)?;
        self.inner
            .writer
            .write(move |ctx| ctx.put(Tbl::Tenants, &key, &value))
            .await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.inner.get_record(Tbl::Tenants, &id.to_string())
    }

    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        let before = page.cursor_as(TenantId::parse)?.map(|id| id.to_string());
        let limit = page.limit;
        self.scan(move |inner| {
            let table = inner.read_table(Tbl::Tenants)?;
            page_newest_first(&table, TenantId::PREFIX, before, limit, |key, bytes| {
                // The tenants' API-key index rows (`ten_…/key_…`) share the table.
                if key.contains('/') {
                    return Ok(None);
                }
                let tenant: Tenant = decode(bytes)?;
                Ok(Some((tenant.id.to_string(), tenant)))
            })
        })
        .await
    }

    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let hash = key.hash.clone();
        let index_key = key2(key.tenant_id, key.id);
        let value = encode(key)?;
        self.inner
            .writer
            .write(move |ctx| {
                if let Some(existing) = ctx.get(Tbl::ApiKeys, &hash)? {
                    // A key stored before the tenant index existed (an older data folder) gets
                    // its index row now, so it can be listed and revoked. The refusal is the
                    // inner result: the outer `Err` would roll the batch back after a write.
                    let existing: ApiKeyRecord = decode(&existing)?;
                    let existing_index = key2(existing.tenant_id, existing.id);
                    if !ctx.contains(Tbl::Tenants, &existing_index)? {
                        ctx.put(Tbl::Tenants, &existing_index, hash.as_bytes())?;
                    }
                    return Ok(Err(StoreError::AlreadyExists));
                }
                if ctx.contains(Tbl::Tenants, &index_key)? {
                    return Ok(Err(StoreError::AlreadyExists));
                }
                ctx.put(Tbl::ApiKeys, &hash, &value)?;
                ctx.put(Tbl::Tenants, &index_key, hash.as_bytes())?;
                Ok(Ok(()))
            })
            .await?
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let cache = &self.inner.cache;
        if let Some(found) = cache.api_key(hash) {
            return Ok(found);
        }
        let seen = cache.generation();
        let found: Option<ApiKeyRecord> = self.inner.get_record(Tbl::ApiKeys, hash)?;
        cache.put_api_key(seen, hash.to_owned(), found.clone());
        Ok(found)
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let prefix = api_keys_prefix(tenant);
        self.scan(move |inner| {
            // The index and the records from one read transaction: they agree.
            let index = inner.read_table(Tbl::Tenants)?;
            let records = index.table(&inner.kv, Tbl::ApiKeys);
            let mut keys = scan_prefix(&index, &prefix, |_, hash| {
                let hash = std::str::from_utf8(hash).map_err(StoreError::backend)?;
                get_in::<ApiKeyRecord>(&records, hash)
            })?;
            // Key order is id order, oldest first.
            keys.reverse();
            Ok(keys)
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let index_key = key2(tenant, id);
        let (tenant, id) = (*tenant, *id);
        self.inner
            .writer
            .write(move |ctx| {
                let hash = ctx
                    .get(Tbl::Tenants, &index_key)?
                    .ok_or(StoreError::NotFound)?;
                let hash = String::from_utf8(hash).map_err(StoreError::backend)?;
                let bytes = ctx.get(Tbl::ApiKeys, &hash)?.ok_or_else(|| {
                    StoreError::backend(format!("the index row of {id} names no key record"))
                })?;
                let mut record: ApiKeyRecord = decode(&bytes)?;
                if record.tenant_id != tenant || record.id != id {
                    return Err(StoreError::backend(format!(
                        "the index row of {id} names another key's record"
                    )));
                }
                if record.revoked_at.is_some() {
                    return Ok(());
                }
                record.revoked_at = Some(at);
                let value = encode(&record)?;
                ctx.put(Tbl::ApiKeys, &hash, &value)
            })
            .await
    }
}

/// A subscription as stored: its document with its health beside it (a record written before
/// health existed reads as healthy).
#[derive(Serialize, Deserialize)]
struct SubscriptionRecord {
    #[serde(flatten)]
    sub: Subscription,
    #[serde(default)]
    health: Health,
}

fn encode_subscription(sub: &Subscription, health: &Health) -> Result<Vec<u8>, StoreError> {
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        sub: &'a Subscription,
        health: &'a Health,
    }
    encode(&Out { sub, health })
}

fn decode_subscription(bytes: &[u8]) -> Result<Subscription, StoreError> {
    let SubscriptionRecord { mut sub, health } = decode(bytes)?;
    sub.health = health;
    Ok(sub)
}

impl EmbeddedStore {
    /// Reads the subscription under `key` on the writer and stores what `change` makes of it (a
    /// document and a health, or nothing), answering `change`'s answer; `NotFound` if it is gone.
    async fn rewrite_subscription<R: Send + 'static>(
        &self,
        key: String,
        change: impl FnOnce(Subscription) -> Result<(Option<(Subscription, Health)>, R), StoreError>
            + Send
            + 'static,
    ) -> Result<R, StoreError> {
        self.inner
            .writer
            .write(move |ctx| {
                let bytes = ctx
                    .get(Tbl::Subscriptions, &key)?
                    .ok_or(StoreError::NotFound)?;
                let (write, answer) = change(decode_subscription(&bytes)?)?;
                if let Some((sub, health)) = write {
                    ctx.put(
                        Tbl::Subscriptions,
                        &key,
                        &encode_subscription(&sub, &health)?,
                    )?;
                }
                Ok(answer)
            })
            .await
    }
}

#[async_trait]
impl SubscriptionStore for EmbeddedStore {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let key = key2(sub.tenant_id, sub.id);
        let value = encode_subscription(sub, &sub.health)?;
        self.create(Tbl::Subscriptions, key, value).await
    }

    async fn update_health(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        change: HealthChange,
    ) -> Result<Option<Health>, StoreError> {
        self.rewrite_subscription(key2(tenant, id), move |sub| {
            if !change.applies_to(&sub.health) {
                return Ok((None, None));
            }
            let mut health = sub.health.clone();
            health.apply(change);
            let before = sub.health.clone();
            Ok((Some((sub, health)), Some(before)))
        })
        .await
    }

    async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        let key = key2(tenant, id);
        let cache = &self.inner.cache;
        if let Some(found) = cache.subscription(&key) {
            return Ok(found);
        }
        let seen = cache.generation();
        let found = self
            .inner
            .read_table(Tbl::Subscriptions)?
            .get(key.as_str())
            .map_err(StoreError::backend)?
            .map(|v| decode_subscription(v.value()))
            .transpose()?;
        cache.put_subscription(seen, key, found.clone());
        Ok(found)
    }

    async fn update_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let key = key2(sub.tenant_id, sub.id);
        let sub = sub.clone();
        // The stored health stays: workers write it, never the owner.
        self.rewrite_subscription(key, move |stored| Ok((Some((sub, stored.health)), ())))
            .await
    }

    async fn delete_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<(), StoreError> {
        // The subscription's deliveries and attempts stay: they are the delivery log.
        let key = key2(tenant, id);
        self.inner
            .writer
            .write(move |ctx| {
                if ctx.remove(Tbl::Subscriptions, &key)? {
                    Ok(())
                } else {
                    Err(StoreError::NotFound)
                }
            })
            .await
    }

    async fn list_subscriptions(
        &self,
        tenant: &TenantId,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        let before = page
            .cursor_as(SubscriptionId::parse)?
            .map(|id| key2(tenant, id));
        let (tenant, filter, limit) = (*tenant, filter.clone(), page.limit);
        self.scan(move |inner| {
            let table = inner.read_table(Tbl::Subscriptions)?;
            page_newest_first(&table, &prefix1(tenant), before, limit, |_, bytes| {
                let sub = decode_subscription(bytes)?;
                Ok(filter.keeps(&sub).then(|| (sub.id.to_string(), sub)))
            })
        })
        .await
    }

    async fn enabled_subscriptions(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let tenant = *tenant;
        if let Some(found) = self.inner.cache.enabled(&tenant) {
            return Ok(found.as_ref().clone());
        }
        let seen = self.inner.cache.generation();
        let found = self
            .scan(move |inner| {
                let table = inner.read_table(Tbl::Subscriptions)?;
                scan_prefix(&table, &prefix1(tenant), |_, bytes| {
                    let sub = decode_subscription(bytes)?;
                    Ok(sub.enabled.then_some(sub))
                })
            })
            .await?;
        self.inner
            .cache
            .put_enabled(seen, tenant, Arc::new(found.clone()));
        Ok(found)
    }

    async fn count_subscriptions(
        &self,
        tenant: &TenantId,
        up_to: usize,
    ) -> Result<usize, StoreError> {
        let tenant = *tenant;
        self.scan(move |inner| {
            let table = inner.read_table(Tbl::Subscriptions)?;
            let prefix = prefix1(tenant);
            let end = prefix_end(&prefix);
            let rows = table
                .range(prefix.as_str()..end.as_str())
                .map_err(StoreError::backend)?;
            Ok(rows.take(up_to).count())
        })
        .await
    }
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> Result<Option<Event>, StoreError> {
        self.inner
            .get_record_as(Tbl::Events, &key2(tenant, id), decode_event)
    }

    /// A backwards range scan of the tenant's events; a type filter reads on until the page is full.
    async fn list_events(
        &self,
        tenant: &TenantId,
        event_type: Option<&EventType>,
        page: &PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        let before = page.cursor_as(EventId::parse)?.map(|id| key2(tenant, id));
        let (tenant, event_type, limit) = (*tenant, event_type.cloned(), page.limit);
        self.scan(move |inner| {
            let table = inner.read_table(Tbl::Events)?;
            page_newest_first(&table, &prefix1(tenant), before, limit, |_, bytes| {
                let event = decode_event(bytes)?;
                let kept = event_type.as_ref().is_none_or(|t| event.event_type == *t);
                Ok(kept.then(|| (event.id.to_string(), event)))
            })
        })
        .await
    }
}

#[async_trait]
impl DeliveryStore for EmbeddedStore {
    async fn get_delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.inner
            .get_record_as(Tbl::Deliveries, &delivery_key(tenant, id), decode_delivery)
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let prefix = subscription_deliveries_prefix(tenant, subscription);
        let before = page
            .cursor_as(DeliveryId::parse)?
            .map(|id| delivery_key(tenant, &id));
        // A cursor from another subscription's log names another range: nothing before it here.
        if before.as_ref().is_some_and(|b| !b.starts_with(&prefix)) {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let (subscription, limit) = (*subscription, page.limit);
        self.scan(move |inner| {
            let table = inner.read_table(Tbl::Deliveries)?;
            page_newest_first(&table, &prefix, before, limit, |key, bytes| {
                // The range holds the deliveries' attempts too (`…/del_…/…`), and the deliveries
                // of any subscription whose tag collides with this one's.
                let id = &key[prefix.len()..];
                if id.contains('/') {
                    return Ok(None);
                }
                let delivery = decode_delivery(bytes)?;
                Ok((delivery.subscription_id == subscription).then(|| (id.to_owned(), delivery)))
            })
        })
        .await
    }

    /// The event's planned deliveries that are stored, in plan order: every delivery derives its
    /// id from its event and one of the event's planned subscriptions, so they are point reads
    /// (as on DynamoDB), not an index.
    async fn deliveries_for_event(&self, event: &Event) -> Result<Vec<Delivery>, StoreError> {
        let (tenant, event_id) = (event.tenant_id, event.id);
        let keys: Vec<String> = event
            .delivery_ids()
            .map(|id| delivery_key(&tenant, &id))
            .collect();
        self.scan(move |inner| {
            let table = inner.read_table(Tbl::Deliveries)?;
            let mut found = Vec::with_capacity(keys.len());
            for key in &keys {
                if let Some(d) = get_in_as(&table, key, decode_delivery)? {
                    if d.tenant_id == tenant && d.event_id == event_id {
                        found.push(d);
                    }
                }
            }
            Ok(found)
        })
        .await
    }

    async fn list_attempts(
        &self,
        tenant: &TenantId,
        delivery: &DeliveryId,
    ) -> Result<Vec<Attempt>, StoreError> {
        let prefix = attempts_prefix(tenant, delivery);
        self.scan(move |inner| {
            let table = inner.read_table(Tbl::Attempts)?;
            scan_prefix(&table, &prefix, |_, bytes| decode_attempt(bytes).map(Some))
        })
        .await
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
