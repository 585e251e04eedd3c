//! [`EmbeddedOutbox`]: the embedded [`UnitOfWork`]: store writes and the queue messages they cause
//! in one group commit.
//!
//! Intake's event and its fan-out message, fan-out's deliveries and their first-attempt messages,
//! an attempt and its retry message, a replay and its message: each pair lands atomically, in one
//! commit instead of two, so there is no moment where a record exists without its message (or the
//! reverse). That is why [`UnitOfWork::redrive`] does nothing here: a message that comes back after
//! its step committed finds that step's messages already queued.

use std::sync::Arc;

use async_trait::async_trait;
use herald_core::model::{Attempt, Delivery};
use herald_core::ports::{
    InsertEventOutcome, NewEvent, OutgoingMessage, Recorded, StoreError, UnitOfWork,
};

use crate::queue::PreparedSend;
use crate::store::{AttemptWrite, DeliveryUpdate, EventWrite};
use crate::Inner;

/// The outbox over the embedded store and queue. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedOutbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedOutbox").finish_non_exhaustive()
    }
}

impl EmbeddedOutbox {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }
}

fn queue_error(err: herald_core::ports::QueueError) -> StoreError {
    StoreError::backend(err)
}

#[async_trait]
impl UnitOfWork for EmbeddedOutbox {
    async fn insert_events_and_send(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<InsertEventOutcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let writes = events
            .iter()
            .map(|e| EventWrite::new(&e.event, e.idempotency.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let messages: Vec<Vec<OutgoingMessage>> = events.into_iter().map(|e| e.messages).collect();
        let queues = Arc::clone(&self.inner.queues);
        let shared = Arc::clone(&self.inner.queues);
        self.inner
            .writer
            .write_then(
                move |ctx| {
                    // In order, in one commit: a key used twice in the batch dedupes against the
                    // first use.
                    let mut outcomes = Vec::with_capacity(writes.len());
                    let mut to_send = Vec::new();
                    for (write, messages) in writes.iter().zip(messages) {
                        let outcome = write.apply(ctx)?;
                        if outcome == InsertEventOutcome::Inserted {
                            to_send.extend(messages);
                        }
                        outcomes.push(outcome);
                    }
                    let send = PreparedSend::new(&queues, to_send).map_err(queue_error)?;
                    send.write(ctx)?;
                    Ok((outcomes, send))
                },
                move |result| {
                    result.map(|(outcomes, send)| {
                        send.publish(&shared);
                        outcomes
                    })
                },
            )
            .await
    }

    async fn record_attempt_and_send(
        &self,
        attempt: &Attempt,
        delivery: &Delivery,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Recorded, StoreError> {
        let write = AttemptWrite::new(attempt, delivery)?;
        let send = PreparedSend::new(&self.inner.queues, messages).map_err(queue_error)?;
        let shared = Arc::clone(&self.inner.queues);
        self.inner
            .writer
            .write_then(
                move |ctx| {
                    let recorded = write.apply(ctx)?;
                    if recorded == Recorded::Applied {
                        send.write(ctx)?;
                        return Ok((recorded, Some(send)));
                    }
                    Ok((recorded, None))
                },
                move |result| {
                    result.map(|(recorded, send)| {
                        if let Some(send) = send {
                            send.publish(&shared);
                        }
                        recorded
                    })
                },
            )
            .await
    }

    async fn update_delivery_and_send(
        &self,
        delivery: &Delivery,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), StoreError> {
        let write = DeliveryUpdate::new(delivery)?;
        let send = PreparedSend::new(&self.inner.queues, messages).map_err(queue_error)?;
        let shared = Arc::clone(&self.inner.queues);
        self.inner
            .writer
            .write_then(
                move |ctx| {
                    write.apply(ctx)?;
                    send.write(ctx)?;
                    Ok(send)
                },
                move |result| result.map(|send| send.publish(&shared)),
            )
            .await
    }

    async fn redrive(&self, _messages: Vec<OutgoingMessage>) -> Result<(), StoreError> {
        // Records and their messages committed together: nothing can be missing.
        Ok(())
    }
}
