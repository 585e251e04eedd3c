//! Queue pollers for one-process mode: receive from the embedded (or SQS) queue, run the fan-out or
//! delivery service on each message, acknowledge what succeeded and release what failed with a
//! backoff. In Lambda the SQS trigger does this job instead.

use std::sync::Arc;
use std::time::Duration;

use herald_core::ports::{QueueMessage, QueueName, ReceivedMessage};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::service::{delivery, fanout, WorkerError};
use crate::state::AppState;

/// How many messages each queue may work on at once.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    pub fanout_concurrency: usize,
    pub delivery_concurrency: usize,
    pub batch: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            fanout_concurrency: 64,
            delivery_concurrency: 512,
            batch: 64,
        }
    }
}

/// Runs one message through its service.
pub async fn process(
    state: &AppState,
    message: &QueueMessage,
    receive_count: u32,
) -> Result<(), WorkerError> {
    match message {
        QueueMessage::Event(m) => fanout::handle(state, m, receive_count).await.map(|_| ()),
        QueueMessage::Delivery(m) => delivery::handle(state, m, receive_count).await,
    }
}

/// Backoff before a failed message is handed out again: 1 s, 2 s, 4 s, … capped at 5 min.
fn failure_backoff(receive_count: u32) -> Duration {
    Duration::from_secs(1u64 << receive_count.saturating_sub(1).min(8))
        .min(Duration::from_secs(300))
}

/// Polls both queues until `shutdown` turns true; waits for in-flight work before returning.
pub async fn run(state: AppState, config: WorkerConfig, shutdown: watch::Receiver<bool>) {
    let fanout = tokio::spawn(poll(
        state.clone(),
        QueueName::Events,
        config.fanout_concurrency,
        config.batch,
        shutdown.clone(),
    ));
    let deliveries = tokio::spawn(poll(
        state,
        QueueName::Deliveries,
        config.delivery_concurrency,
        config.batch,
        shutdown,
    ));
    let _ = tokio::join!(fanout, deliveries);
}

async fn poll(
    state: AppState,
    queue: QueueName,
    concurrency: usize,
    batch: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    let visibility = state.settings.visibility_timeout;
    loop {
        if *shutdown.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        // Receive no more than there is room to work on.
        let available = permits.available_permits().min(batch);
        if available == 0 {
            tokio::select! {
                _ = tasks.join_next() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let received = tokio::select! {
            r = state.queue.receive(queue, available, Duration::from_secs(1), visibility) => r,
            _ = shutdown.changed() => continue,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(queue = queue.as_str(), error = %e, "receive failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let state = state.clone();
            tasks.spawn(async move {
                handle_one(&state, queue, message).await;
                drop(permit);
            });
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn handle_one(state: &AppState, queue: QueueName, received: ReceivedMessage) {
    match process(state, &received.message, received.receive_count).await {
        Ok(()) => {
            if let Err(e) = state.queue.ack(queue, &received.receipt).await {
                // The message will come back; handlers are idempotent.
                tracing::error!(queue = queue.as_str(), error = %e, "ack failed");
            }
        }
        Err(e) => {
            let backoff = failure_backoff(received.receive_count);
            tracing::error!(queue = queue.as_str(), error = %e, receive_count = received.receive_count, backoff_s = backoff.as_secs(), "message failed; it will be retried");
            if let Err(e) = state.queue.release(queue, &received.receipt, backoff).await {
                tracing::error!(queue = queue.as_str(), error = %e, "release failed; the message returns after its visibility timeout");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(failure_backoff(1), Duration::from_secs(1));
        assert_eq!(failure_backoff(2), Duration::from_secs(2));
        assert_eq!(failure_backoff(4), Duration::from_secs(8));
        assert_eq!(failure_backoff(50), Duration::from_secs(256));
    }
}
