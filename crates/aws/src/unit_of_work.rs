//! [`AwsUnitOfWork`]: the services' one write path on AWS. DynamoDB and SQS cannot commit together,
//! so every step writes to DynamoDB first, then sends to SQS. A crash (or a failed send) between the
//! two leaves a record without its message; this module is where those windows are closed.
//!
//! | step | record written | message sent after | if the send never happens |
//! |---|---|---|---|
//! | intake | event (+ idempotency record) | event → fan-out | the client, seeing an error, retries with its key: the duplicate path calls [`UnitOfWork::redrive`], which sends the event again |
//! | fan-out | deliveries | first attempts | the event message is not acked, comes back, and fan-out redrives the first attempts of the deliveries that exist |
//! | attempt | attempt + delivery | the retry | the delivery message is not acked, comes back, and the delivery step redrives the retry it names |
//! | replay / recover | delivery (pending) | its next attempt | the delivery stays pending; replaying it again queues it |
//!
//! Redrive sends a delivery message only while the delivery still waits for exactly that attempt,
//! so a message that did go out the first time is duplicated only in that narrow case, and the
//! duplicate is harmless: attempts are numbered and recorded conditionally. Fan-out is idempotent,
//! so a redriven event message creates nothing twice.

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use herald_core::ids::DeliveryId;
use herald_core::model::{Attempt, Delivery, Event, IdempotencyRecord};
use herald_core::ports::{
    DeliveryStore, InsertEventOutcome, OutgoingMessage, Queue, QueueMessage, Recorded, StoreError,
    UnitOfWork,
};

use crate::{DynamoStore, SqsQueue};

/// How many deliveries redrive reads at once.
const REDRIVE_READS: usize = 8;

/// Writes to DynamoDB, then sends to SQS. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AwsUnitOfWork {
    store: DynamoStore,
    queue: SqsQueue,
}

impl AwsUnitOfWork {
    pub fn new(store: DynamoStore, queue: SqsQueue) -> Self {
        Self { store, queue }
    }

    async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        self.queue.send(messages).await.map_err(StoreError::backend)
    }

    /// Whether `message` is still needed: a delivery message only while its delivery waits for
    /// exactly that attempt.
    async fn still_needed(&self, message: &OutgoingMessage) -> Result<bool, StoreError> {
        let QueueMessage::Delivery(m) = &message.message else {
            return Ok(true);
        };
        let delivery = self
            .store
            .get_delivery(&m.tenant_id, &m.delivery_id)
            .await?;
        Ok(delivery.is_some_and(|d| !d.is_final() && d.attempts + 1 == m.attempt))
    }
}

#[async_trait]
impl UnitOfWork for AwsUnitOfWork {
    async fn insert_event_and_send(
        &self,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
        messages: Vec<OutgoingMessage>,
    ) -> Result<InsertEventOutcome, StoreError> {
        let outcome = self.store.insert_event(event, idempotency).await?;
        if outcome == InsertEventOutcome::Inserted {
            self.send(messages).await?;
        }
        Ok(outcome)
    }

    async fn create_deliveries_and_send(
        &self,
        deliveries: Vec<(Delivery, Option<OutgoingMessage>)>,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let (records, messages): (Vec<Delivery>, Vec<Option<OutgoingMessage>>) =
            deliveries.into_iter().unzip();
        let created = self.store.create_deliveries(&records).await?;
        let to_send = records
            .iter()
            .zip(messages)
            .filter(|(d, _)| created.contains(&d.id))
            .filter_map(|(_, m)| m)
            .collect();
        self.send(to_send).await?;
        Ok(created)
    }

    async fn record_attempt_and_send(
        &self,
        attempt: &Attempt,
        delivery: &Delivery,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Recorded, StoreError> {
        let recorded = self.store.record_attempt(attempt, delivery).await?;
        if recorded == Recorded::Applied {
            self.send(messages).await?;
        }
        Ok(recorded)
    }

    async fn update_delivery_and_send(
        &self,
        delivery: &Delivery,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), StoreError> {
        self.store.update_delivery(delivery).await?;
        self.send(messages).await
    }

    async fn redrive(&self, messages: Vec<OutgoingMessage>) -> Result<(), StoreError> {
        let needed: Vec<OutgoingMessage> = stream::iter(messages)
            .map(|m| async move { Ok::<_, StoreError>(self.still_needed(&m).await?.then_some(m)) })
            .buffered(REDRIVE_READS)
            .try_filter_map(|m| async move { Ok(m) })
            .try_collect()
            .await?;
        if !needed.is_empty() {
            tracing::info!(
                messages = needed.len(),
                "re-sending messages of a step that came back"
            );
        }
        self.send(needed).await
    }
}
