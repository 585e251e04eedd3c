//! Herald on AWS, shared by the four Lambda functions and by `herald dev` pointed at AWS: the typed
//! configuration ([`AwsConfig`]), the application state on DynamoDB and SQS with clients built and
//! warmed once ([`build_state`]), and the SQS batch handler ([`handle_sqs_batch`]).
//!
//! Workers report honestly: a message counts as done only when its service returned `Ok`. A store or
//! queue error, an unreadable body, a message of the other queue's kind (a fan-out message reaching
//! the deliver function, say: a misrouted queue) or a panic in a handler puts that message in
//! `batchItemFailures`, so SQS hands it out again (and, after `maxReceiveCount`, to the DLQ).
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod state;

pub use config::{AwsConfig, ConfigError};
/// Which queue a batch came from, for [`handle_sqs_batch`].
pub use herald_core::ports::QueueName;
pub use state::{build_state, warm_up, AwsState, StateError};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use herald_app::worker::process;
use herald_app::AppState;
use herald_core::ports::QueueMessage;
use tokio::task::JoinSet;

/// Why a whole batch failed (Lambda then makes every message of it visible again).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A record without a message id cannot be reported on its own.
    #[error("an SQS record has no messageId")]
    MissingMessageId,
}

/// Processes every record of a batch from `queue` concurrently and reports the ones that failed.
pub async fn handle_sqs_batch(
    state: &AppState,
    queue: QueueName,
    event: SqsEvent,
) -> Result<SqsBatchResponse, BatchError> {
    let mut tasks = JoinSet::new();
    let mut ids = Vec::with_capacity(event.records.len());
    for record in event.records {
        let id = record
            .message_id
            .clone()
            .ok_or(BatchError::MissingMessageId)?;
        ids.push(id.clone());
        let state = state.clone();
        tasks.spawn(async move {
            let ok = process_record(&state, queue, &record).await;
            (id, ok)
        });
    }
    let mut done = std::collections::HashSet::with_capacity(ids.len());
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
    let mut response = SqsBatchResponse::default();
    for id in ids.into_iter().filter(|id| !done.contains(id)) {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// `true` when the message is finished and may be deleted.
async fn process_record(state: &AppState, queue: QueueName, record: &SqsMessage) -> bool {
    let message_id = record.message_id.as_deref().unwrap_or("");
    let Some(body) = record.body.as_deref() else {
        tracing::error!(message_id, "SQS record without a body");
        return false;
    };
    let message: QueueMessage = match serde_json::from_str(body) {
        Ok(m) => m,
        Err(e) => {
            // Left to the DLQ: an operator can read it there.
            tracing::error!(message_id, error = %e, "SQS body is not a Herald message");
            return false;
        }
    };
    if message.queue() != queue {
        tracing::error!(
            message_id,
            expected = queue.as_str(),
            got = message.queue().as_str(),
            "a message of the other queue: is the event source mapping on the right queue?"
        );
        return false;
    }
    let receive_count = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    match process(state, &message, receive_count).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(message_id, error = %e, receive_count, "message failed; reported for retry");
            false
        }
    }
}
