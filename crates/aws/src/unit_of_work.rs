//! [`AwsUnitOfWork`]: the services' one write path on AWS. DynamoDB and SQS cannot commit together,
//! so every step writes to DynamoDB first, then sends to SQS. A crash (or a failed send) between the
//! two leaves a record without its message; this module is where those windows are closed.
//!
//! | step | record written | message sent after | if the send never happens |
//! |---|---|---|---|
//! | intake (one event or a batch) | events (+ idempotency records) | their first attempts, or (when those would take more requests) event → fan-out, ten to a request | the client, seeing an error, retries with its key: the duplicate path redrives the event's first attempts, sent for the deliveries not stored yet |
//! | fan-out | nothing (a delivery is stored by its first attempt) | first attempts | the event message is not acked, comes back, and fan-out sends the first attempts of the deliveries not stored yet |
//! | attempt | the delivery with its first attempt, or a later attempt + the delivery's new state | the retry | the delivery message is not acked, comes back, and the delivery step redrives the retry it names |
//! | replay / recover | delivery (pending) | its next attempt | the delivery stays pending; replaying it again queues it |
//!
//! Redrive sends a delivery message only while the delivery still waits for exactly that attempt,
//! so a message that did go out the first time is duplicated only in that narrow case, and the
//! duplicate is harmless: attempts are numbered and recorded conditionally. Fan-out names the same
//! deliveries every time, so a redriven event message creates no new one.

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use herald_core::model::{Attempt, Delivery};
use herald_core::ports::{
    DeliveryStore, InsertEventOutcome, NewEvent, OutgoingMessage, Queue, QueueMessage, Recorded,
    StoreError, UnitOfWork,
};

use crate::{DynamoStore, SqsQueue};

/// How many events a batch writes at once.
const INSERT_CONCURRENCY: usize = 16;
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
    /// exactly that attempt (a first attempt: while its delivery is not stored).
    async fn still_needed(&self, message: &OutgoingMessage) -> Result<bool, StoreError> {
        let QueueMessage::Delivery(m) = &message.message else {
            return Ok(true);
        };
        let delivery = self
            .store
            .get_delivery(&m.tenant_id(), &m.delivery_id())
            .await?;
        Ok(match delivery {
            // A first attempt not made yet: its delivery is stored by it.
            None => m.attempt == 1,
            Some(d) => !d.is_final() && d.attempts + 1 == m.attempt,
        })
    }
}

#[async_trait]
impl UnitOfWork for AwsUnitOfWork {
    async fn insert_events_and_send(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<InsertEventOutcome>, StoreError> {
        // One conditional write per event, a few at a time; then the messages of the inserted
        // ones in batches of ten (a batch of 100 events is at most ten SQS requests).
        // A key used twice in one batch: its later uses are written after the first, so they
        // meet its record instead of racing it.
        let mut seen = std::collections::HashSet::new();
        let (first, repeats): (Vec<_>, Vec<_>) =
            events.into_iter().enumerate().partition(|(_, e)| {
                e.idempotency
                    .as_ref()
                    .is_none_or(|r| seen.insert((r.tenant_id, r.key.clone())))
            });
        // Owned items and a cloned store: borrowed ones trip async-trait's `Send` inference.
        let store = self.store.clone();
        let mut results: Vec<(usize, InsertEventOutcome, Vec<OutgoingMessage>)> =
            stream::iter(first)
                .map(move |(i, e)| {
                    let store = store.clone();
                    async move {
                        let outcome = store.insert_event(&e.event, e.idempotency.as_ref()).await?;
                        Ok::<_, StoreError>((i, outcome, e.messages))
                    }
                })
                .buffered(INSERT_CONCURRENCY)
                .try_collect()
                .await?;
        for (i, e) in repeats {
            let outcome = self
                .store
                .insert_event(&e.event, e.idempotency.as_ref())
                .await?;
            results.push((i, outcome, e.messages));
        }
        results.sort_by_key(|(i, _, _)| *i);
        let results: Vec<(InsertEventOutcome, Vec<OutgoingMessage>)> =
            results.into_iter().map(|(_, o, m)| (o, m)).collect();
        let mut outcomes = Vec::with_capacity(results.len());
        let mut to_send = Vec::new();
        for (outcome, messages) in results {
            if outcome == InsertEventOutcome::Inserted {
                to_send.extend(messages);
            }
            outcomes.push(outcome);
        }
        self.send(to_send).await?;
        Ok(outcomes)
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
