//! Herald on AWS, shared by the four Lambda functions and by `herald dev` pointed at AWS: the typed
//! configuration ([`AwsConfig`]), the application state on DynamoDB and SQS with clients built and
//! warmed once ([`build_state`]), and the SQS batch handler ([`handle_sqs_batch`]).
//!
//! Workers report honestly: a message counts as done only when its service returned `Ok`. A store or
//! queue error, an unreadable body, a message of the other queue's kind (a fan-out message reaching
//! the deliver function, say: a misrouted queue) or a panic in a handler puts that message in
//! `batchItemFailures`, so SQS hands it out again (and, after `maxReceiveCount`, to the DLQ). The
//! events of a fan-out batch share one delivery write: if it fails, or their fan-out panics, every
//! one of them is reported (fan-out is idempotent, so the ones that come back create nothing twice).
//!
//! After the records of a batch finish, the delivery statistics they counted are written (one
//! UpdateItem per subscription and hour touched by the batch, see `herald_app::stats`). A failed
//! write is logged and dropped: it never fails the batch.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod config;
pub mod logging;
pub mod metrics;
mod state;

pub use config::{AwsConfig, ConfigError};
/// Which queue a batch came from, for [`handle_sqs_batch`].
pub use herald_core::ports::QueueName;
pub use state::{build_state, warm_up, AwsState, StateError};

use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use herald_app::service::fanout;
use herald_app::worker::process;
use herald_app::AppState;
use herald_core::ports::QueueMessage;
use tokio::task::JoinSet;

/// The most records SQS hands a function at once (template.yaml's `BatchSize`).
const FULL_BATCH: usize = 10;

/// Why a whole batch failed (Lambda then makes every message of it visible again).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A record without a message id cannot be reported on its own.
    #[error("an SQS record has no messageId")]
    MissingMessageId,
}

/// Processes a batch from `queue` and reports the records that failed. Deliveries run
/// concurrently, one task per record (each is its own HTTP attempt); a batch of events is fanned
/// out together ([`fanout::handle_batch`]: one delivery write, so the first attempts of all its
/// events are sent ten to an SQS request), each record still answered on its own.
pub async fn handle_sqs_batch(
    state: &AppState,
    queue: QueueName,
    event: SqsEvent,
) -> Result<SqsBatchResponse, BatchError> {
    let mut ids = Vec::with_capacity(event.records.len());
    for record in &event.records {
        ids.push(
            record
                .message_id
                .clone()
                .ok_or(BatchError::MissingMessageId)?,
        );
    }
    for record in &event.records {
        metrics::observe_queue_age(state, record);
    }
    let done = match queue {
        QueueName::Events => fan_out_records(state, ids.iter().cloned().zip(event.records)).await,
        QueueName::Deliveries => {
            process_records(state, queue, ids.iter().cloned().zip(event.records)).await
        }
    };
    // Before answering, when the queue looks drained (a batch that is not full) or the counts
    // are old: an idle instance may be frozen, then retired, as soon as the batch is answered.
    // While full batches keep coming, one write per subscription and hour serves them all.
    let drained = ids.len() < FULL_BATCH;
    if drained
        || state
            .stats
            .flush_due(state.settings.stats_flush_every, Duration::MAX)
    {
        state.stats.flush().await;
    }
    metrics::flush(state, function_of(queue));
    let mut response = SqsBatchResponse::default();
    for id in ids.into_iter().filter(|id| !done.contains(id)) {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// The function that reads `queue`: the metrics' function dimension.
fn function_of(queue: QueueName) -> &'static str {
    match queue {
        QueueName::Events => "fanout",
        QueueName::Deliveries => "deliver",
    }
}

/// Runs each record through its service in a task of its own; answers the ids that finished.
async fn process_records(
    state: &AppState,
    queue: QueueName,
    records: impl Iterator<Item = (String, SqsMessage)>,
) -> HashSet<String> {
    let mut tasks = JoinSet::new();
    for (id, record) in records {
        let state = state.clone();
        tasks.spawn(async move {
            let ok = match decode(queue, &record) {
                Some((message, receive_count)) => {
                    match process(&state, &message, receive_count).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::error!(message_id = %id, error = %e, receive_count, "message failed; reported for retry");
                            false
                        }
                    }
                }
                None => false,
            };
            (id, ok)
        });
    }
    let mut done = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((id, true)) => {
                done.insert(id);
            }
            Ok((_, false)) => {}
            // A panicking handler: its message stays unfinished. JoinError does not say which task
            // it was, so it is simply absent from `done`.
            Err(e) => tracing::error!(error = %e, "a message handler panicked"),
        }
    }
    done
}

/// Fans the batch's event records out together; answers the ids that finished. A record that does
/// not decode fails alone; if the fan-out panics, none of them finished.
async fn fan_out_records(
    state: &AppState,
    records: impl Iterator<Item = (String, SqsMessage)>,
) -> HashSet<String> {
    let mut ids = Vec::new();
    let mut batch = Vec::new();
    for (id, record) in records {
        match decode(QueueName::Events, &record) {
            Some((QueueMessage::Event(message), receive_count)) => {
                ids.push(id);
                batch.push((message, receive_count));
            }
            // `decode` lets only messages of the events queue through.
            Some((QueueMessage::Delivery(_), _)) | None => {}
        }
    }
    if batch.is_empty() {
        return HashSet::new();
    }
    let task = {
        let state = state.clone();
        let batch = batch.clone();
        tokio::spawn(async move { fanout::handle_batch(&state, &batch).await })
    };
    let results = match task.await {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(error = %e, "the fan-out of a batch panicked; every message of it is reported");
            return HashSet::new();
        }
    };
    let mut done = HashSet::with_capacity(ids.len());
    for ((id, (_, receive_count)), result) in ids.into_iter().zip(&batch).zip(results) {
        match result {
            Ok(_) => {
                done.insert(id);
            }
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, receive_count, "message failed; reported for retry");
            }
        }
    }
    done
}

/// The message of a record and its receive count, if it is a Herald message of `queue`; logs why
/// not otherwise.
fn decode(queue: QueueName, record: &SqsMessage) -> Option<(QueueMessage, u32)> {
    let message_id = record.message_id.as_deref().unwrap_or("");
    let Some(body) = record.body.as_deref() else {
        tracing::error!(message_id, "SQS record without a body");
        return None;
    };
    let message: QueueMessage = match serde_json::from_str(body) {
        Ok(m) => m,
        Err(e) => {
            // Left to the DLQ: an operator can read it there.
            tracing::error!(message_id, error = %e, "SQS body is not a Herald message");
            return None;
        }
    };
    if message.queue() != queue {
        tracing::error!(
            message_id,
            expected = queue.as_str(),
            got = message.queue().as_str(),
            "a message of the other queue: is the event source mapping on the right queue?"
        );
        return None;
    }
    let receive_count = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    Some((message, receive_count))
}
