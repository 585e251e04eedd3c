//! Writes: conditional puts and updates, each one request. The hot path (events, deliveries,
//! attempts) uses single conditional writes; only the rare operator writes of a tenant or an API
//! key, whose two items must agree, use a transaction ([`DynamoStore::transact_all`], the one
//! place a transaction is retried).

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use herald_core::model::{Attempt, Delivery, Event, IdempotencyRecord};
use herald_core::ports::{InsertEventOutcome, Recorded, StoreError};

use super::codec::{
    attempt_sk, attempts_pk, decode, delivery_pk, encode, event_pk, expiry, idempotency_pk, item,
    n, s, Item, ATTEMPTS, DOC, EXPIRES_AT, FIRST, PK, SK, SK_EVENT, SK_IDEMPOTENCY,
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

fn condition_failed<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
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
    /// Stores the event (create-if-absent), then, with a key, claims its idempotency record: a
    /// conditional put that hands back the record it found when the key is taken, in which case
    /// the event just written is deleted again and the earlier record answered. Two writes, no
    /// transaction: a crash between them leaves an event no answer ever named, which nothing reads.
    pub async fn insert_event(
        &self,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<InsertEventOutcome, StoreError> {
        let event_pk = event_pk(&event.tenant_id, &event.id);
        let event_item = item(
            event_pk.clone(),
            SK_EVENT.into(),
            event,
            self.config
                .event_ttl
                .map(|ttl| expiry(event.timestamp, ttl)),
        )?;
        self.put(event_item, Condition::Absent).await?;
        let Some(record) = idempotency else {
            return Ok(InsertEventOutcome::Inserted);
        };
        let record_pk = idempotency_pk(&record.tenant_id, &record.key);
        let record_item = item(
            record_pk.clone(),
            SK_IDEMPOTENCY.into(),
            record,
            Some(record.expires_at.as_second()),
        )?;
        let claimed = self
            .client
            .put_item()
            .table_name(&self.config.table)
            .set_item(Some(record_item))
            // An expired record that DynamoDB has not swept yet no longer counts.
            .condition_expression("attribute_not_exists(#pk) OR #exp <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":now", n(record.created_at.as_second()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let earlier = match claimed {
            Ok(_) => return Ok(InsertEventOutcome::Inserted),
            Err(e) if condition_failed(&e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => c.item.clone(),
                _ => None,
            },
            Err(e) => return Err(store_backend("DynamoDB.PutItem", e)),
        };
        // The key was taken: this event was never accepted.
        self.delete(event_pk, SK_EVENT.into(), false).await?;
        let earlier: IdempotencyRecord = match earlier {
            Some(item) => decode(&item)?,
            // An emulator that does not hand the item back: read it.
            None => self
                .get_record(record_pk, SK_IDEMPOTENCY)
                .await?
                .ok_or_else(|| StoreError::backend("an idempotency record vanished"))?,
        };
        Ok(InsertEventOutcome::Duplicate(earlier))
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
