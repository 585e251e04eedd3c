//! Writes: conditional puts and updates, each one request. The hot path (events, deliveries,
//! attempts) uses single conditional writes; only the rare operator writes of a tenant or an API
//! key, whose two items must agree, use a transaction ([`DynamoStore::transact_all`], the one
//! place a transaction is retried).

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use herald_core::model::{Attempt, Delivery, Event, IdempotencyRecord};
use herald_core::ports::{InsertEventOutcome, Recorded, StoreError};

use super::codec::{
    attempt_sk, attempts_pk, decode, delivery_pk, encode, event_pk, expiry, item, keyed_event_pk,
    n, s, Item, KeyedEvent, ATTEMPTS, DOC, EXPIRES_AT, FIRST, PK, SK, SK_EVENT, WINDOW_ENDS,
};
use super::DynamoStore;
use crate::error::store_backend;

/// How often a transaction cancelled by a concurrent one is tried again.
const CONFLICT_RETRIES: u32 = 5;

/// What a conditional put requires of the item it replaces.
#[derive(Debug, Clone, Copy)]
pub(super) enum Condition {
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

/// The cancellation reason codes of a cancelled transaction, in request order.
struct Cancelled {
    codes: Vec<Option<String>>,
}

impl Cancelled {
    fn condition_failed(&self, index: usize) -> bool {
        self.codes.get(index).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed")
    }

    fn conflict(&self) -> bool {
        self.codes
            .iter()
            .any(|c| c.as_deref() == Some("TransactionConflict"))
    }

    fn error(&self) -> StoreError {
        let codes: Vec<&str> = self
            .codes
            .iter()
            .map(|c| c.as_deref().unwrap_or("None"))
            .collect();
        StoreError::backend(format!(
            "DynamoDB.TransactWriteItems was cancelled: [{}]",
            codes.join(", ")
        ))
    }
}

pub(super) fn condition_failed<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

impl DynamoStore {
    pub(super) async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
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
            Err(e) if condition_failed(&e) => Err(condition.failure()),
            Err(e) => Err(store_backend("DynamoDB.PutItem", e)),
        }
    }

    /// `SET doc` of an existing item (its other attributes stay); `NotFound` if there is none.
    pub(super) async fn set_doc(
        &self,
        pk: String,
        sk: String,
        doc: AttributeValue,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.config.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .update_expression("SET #doc = :doc")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#doc", DOC)
            .expression_attribute_values(":doc", doc);
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(store_backend("DynamoDB.UpdateItem", e)),
        }
    }

    /// Deletes an item; with `must_exist`, a missing one is `NotFound`.
    pub(super) async fn delete(
        &self,
        pk: String,
        sk: String,
        must_exist: bool,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.config.table)
            .key(PK, s(pk))
            .key(SK, s(sk));
        if must_exist {
            request = request
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", PK);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(store_backend("DynamoDB.DeleteItem", e)),
        }
    }

    /// Writes `items` in one transaction, each under its condition; retries when a concurrent
    /// transaction got in the way. A failed condition is that condition's error.
    pub(super) async fn transact_all(
        &self,
        operation: &'static str,
        items: Vec<(Item, Condition)>,
    ) -> Result<(), StoreError> {
        for try_number in 0..=CONFLICT_RETRIES {
            let mut writes = Vec::with_capacity(items.len());
            for (item, condition) in &items {
                let mut put = Put::builder()
                    .table_name(&self.config.table)
                    .set_item(Some(item.clone()));
                if let Some(expression) = condition.expression() {
                    put = put
                        .condition_expression(expression)
                        .expression_attribute_names("#pk", PK);
                }
                let put = put.build().map_err(StoreError::backend)?;
                writes.push(TransactWriteItem::builder().put(put).build());
            }
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let cancelled = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => Cancelled {
                    codes: e
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().map(str::to_owned))
                        .collect(),
                },
                _ => return Err(store_backend("DynamoDB.TransactWriteItems", err)),
            };
            let failed = (0..items.len()).find(|i| cancelled.condition_failed(*i));
            if let Some((_, condition)) = failed.and_then(|i| items.get(i)) {
                return Err(condition.failure());
            }
            if cancelled.conflict() && try_number < CONFLICT_RETRIES {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(try_number + 1))).await;
                continue;
            }
            return Err(cancelled.error());
        }
        Err(StoreError::backend(format!(
            "{operation}: too many conflicting transactions"
        )))
    }
}

/// The writes of events and deliveries. The services reach them only through
/// [`crate::AwsUnitOfWork`], which sends their messages after them.
impl DynamoStore {
    /// Stores the event, create-if-absent: one PutItem into its tenant's event shard. A keyed event
    /// (its id made by `EventId::keyed`) first takes its key: a small item with the idempotency
    /// record under the key's partition, put on condition that the key is free; a failed condition
    /// hands the earlier item back (`ReturnValuesOnConditionCheckFailure`). Within the earlier
    /// record's window that record is the answer; after it, the key is taken over, conditional on
    /// the window that was read. Then the event goes into its shard.
    ///
    /// A crash between the two puts leaves the key taken by an event that was never stored, nor
    /// answered, nor queued. A retry with the same key and body is answered with the earlier
    /// record, so that answer first stores the earlier event (create-if-absent: its id and time
    /// from the record, the rest from the retry, which is the same request): the event the answer
    /// names always exists.
    pub async fn insert_event(
        &self,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<InsertEventOutcome, StoreError> {
        let Some(record) = idempotency else {
            self.put(self.event_item(event)?, Condition::Absent).await?;
            return Ok(InsertEventOutcome::Inserted);
        };
        if !event.id.is_keyed_by(&record.tenant_id, &record.key)
            || event.tenant_id != record.tenant_id
        {
            return Err(StoreError::backend(
                "a keyed event's id must be EventId::keyed of its tenant and key",
            ));
        }
        let doc = KeyedEvent {
            event: None,
            idempotency: record.clone(),
        };
        let window_ends = record.expires_at.as_second();
        // The key's item is needed only for its window: it may go when that ends.
        let mut keyed = item(
            keyed_event_pk(&event.tenant_id, &event.id),
            SK_EVENT.into(),
            &doc,
            Some(window_ends),
        )?;
        keyed.insert(WINDOW_ENDS.into(), n(window_ends));
        let mut taken_over = None;
        for _ in 0..=CONFLICT_RETRIES {
            let earlier = match self.put_keyed(keyed.clone(), taken_over).await? {
                None => {
                    self.put_event_if_absent(event).await?;
                    return Ok(InsertEventOutcome::Inserted);
                }
                Some(earlier) => earlier,
            };
            let earlier: KeyedEvent = decode(&earlier)?;
            let before = &earlier.idempotency;
            if before.key != record.key {
                return Err(StoreError::backend(
                    "two idempotency keys of one tenant share an 80-bit hash",
                ));
            }
            // A key item written before events were sharded holds its event: copy it into its
            // shard (listed, and kept when the key is taken over).
            if let Some(old) = &earlier.event {
                self.put_event_if_absent(old).await?;
            }
            if before.expires_at > record.created_at {
                if earlier.event.is_none() && before.body_sha256 == record.body_sha256 {
                    let answered = Event {
                        id: before.event_id,
                        timestamp: before.created_at,
                        ..event.clone()
                    };
                    self.put_event_if_absent(&answered).await?;
                }
                return Ok(InsertEventOutcome::Duplicate(earlier.idempotency));
            }
            if before.event_id == event.id {
                return Err(StoreError::AlreadyExists);
            }
            taken_over = Some(before.expires_at.as_second());
        }
        Err(StoreError::backend(
            "insert_event: the idempotency key kept changing under concurrent writers",
        ))
    }

    /// An event's item in its tenant's event shard.
    fn event_item(&self, event: &Event) -> Result<Item, StoreError> {
        let ttl = self.config.event_ttl.map(|t| expiry(event.timestamp, t));
        item(
            event_pk(&event.tenant_id, &event.id),
            event.id.to_string(),
            event,
            ttl,
        )
    }

    /// Puts an event into its shard unless it is there already (a keyed event's id names one
    /// event: whoever stores it first stores the same request).
    async fn put_event_if_absent(&self, event: &Event) -> Result<(), StoreError> {
        match self.put(self.event_item(event)?, Condition::Absent).await {
            Ok(()) | Err(StoreError::AlreadyExists) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Puts a keyed event's item if its key is free (`window_ends` absent), or, taking over an
    /// expired key, if the window is still the one read. `None` when written; else the item found.
    async fn put_keyed(
        &self,
        keyed: Item,
        taken_over: Option<i64>,
    ) -> Result<Option<Item>, StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.config.table)
            .set_item(Some(keyed))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        request = match taken_over {
            None => request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(window) => request
                .condition_expression("#win = :win")
                .expression_attribute_names("#win", WINDOW_ENDS)
                .expression_attribute_values(":win", n(window)),
        };
        let pk = request.get_item().as_ref().and_then(|i| i.get(PK)).cloned();
        match request.send().await {
            Ok(_) => Ok(None),
            Err(e) if condition_failed(&e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) if c.item.is_some() => {
                    Ok(c.item.clone())
                }
                // An emulator that does not hand the item back, or one that vanished: read it.
                _ => {
                    let Some(AttributeValue::S(pk)) = pk else {
                        return Err(StoreError::backend("a keyed item without a key"));
                    };
                    match self.get_item(pk, SK_EVENT).await? {
                        Some(found) => Ok(Some(found)),
                        None => Err(StoreError::backend(
                            "a keyed event vanished while it was read",
                        )),
                    }
                }
            },
            Err(e) => Err(store_backend("DynamoDB.PutItem", e)),
        }
    }

    /// Records an attempt (see `UnitOfWork::record_attempt_and_send`). The first attempt stores
    /// the delivery with the attempt inside it: one put, conditional on no attempt being recorded.
    /// A later one is a small item of its own, then an update of the delivery conditional on its
    /// count. A superseded attempt is kept as an item of its own.
    pub async fn record_attempt(
        &self,
        attempt: &Attempt,
        delivery: &Delivery,
    ) -> Result<Recorded, StoreError> {
        let before = i64::from(attempt.number.saturating_sub(1));
        if attempt.number <= 1 {
            let mut first = self.delivery_item(delivery)?;
            first.insert(FIRST.into(), encode(attempt)?);
            let result = self
                .client
                .put_item()
                .table_name(&self.config.table)
                .set_item(Some(first))
                .condition_expression("attribute_not_exists(#pk) OR #att = :before")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#att", ATTEMPTS)
                .expression_attribute_values(":before", n(before))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(Recorded::Applied),
                Err(e) if condition_failed(&e) => {
                    self.put_attempt(attempt).await?;
                    Ok(Recorded::Superseded)
                }
                Err(e) => Err(store_backend("DynamoDB.PutItem", e)),
            };
        }
        // The attempt first: if the update then finds another worker was first, the request
        // made is still in the log.
        self.put_attempt(attempt).await?;
        match self.update_delivery_state(delivery, Some(before)).await {
            Ok(()) => Ok(Recorded::Applied),
            Err(StoreError::NotFound) => Ok(Recorded::Superseded),
            Err(e) => Err(e),
        }
    }

    /// Stores a delivery's new state, creating it if it was never stored (giving up before the
    /// first attempt); its first attempt, if recorded, stays.
    pub async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.update_delivery_state(delivery, None).await
    }

    fn delivery_item(&self, d: &Delivery) -> Result<Item, StoreError> {
        let expires = self
            .config
            .delivery_ttl
            .map(|ttl| expiry(d.created_at, ttl));
        let mut item = item(
            delivery_pk(&d.tenant_id, &d.id),
            d.id.to_string(),
            d,
            expires,
        )?;
        item.insert(ATTEMPTS.into(), n(i64::from(d.attempts)));
        Ok(item)
    }

    async fn put_attempt(&self, attempt: &Attempt) -> Result<(), StoreError> {
        let expires = expiry(attempt.started_at, self.config.attempt_ttl);
        let record = item(
            attempts_pk(&attempt.tenant_id, &attempt.delivery_id),
            attempt_sk(attempt.number, &attempt.id),
            attempt,
            Some(expires),
        )?;
        self.put(record, Condition::None).await
    }

    /// `SET doc, attempts` (and the expiry, if deliveries expire); with `expected`, only if the
    /// stored count is that (`NotFound` otherwise, or if there is no item).
    async fn update_delivery_state(
        &self,
        d: &Delivery,
        expected: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut set = String::from("SET #doc = :doc, #att = :att");
        let mut request = self
            .client
            .update_item()
            .table_name(&self.config.table)
            .key(PK, s(delivery_pk(&d.tenant_id, &d.id)))
            .key(SK, s(d.id.to_string()))
            .expression_attribute_names("#doc", DOC)
            .expression_attribute_names("#att", ATTEMPTS)
            .expression_attribute_values(":doc", encode(d)?)
            .expression_attribute_values(":att", n(i64::from(d.attempts)));
        if let Some(ttl) = self.config.delivery_ttl {
            set.push_str(", #exp = :exp");
            request = request
                .expression_attribute_names("#exp", EXPIRES_AT)
                .expression_attribute_values(":exp", n(expiry(d.created_at, ttl)));
        }
        if let Some(expected) = expected {
            request = request
                .condition_expression("#att = :before")
                .expression_attribute_values(":before", n(expected));
        }
        match request.update_expression(set).send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(store_backend("DynamoDB.UpdateItem", e)),
        }
    }
}
