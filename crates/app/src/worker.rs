//! Queue pollers for one-process mode: receive from the embedded (or SQS) queue, run the fan-out or
//! delivery service, acknowledge what succeeded and release what failed with a backoff. In Lambda
//! the SQS trigger does this job instead.
//!
//! Few queue requests per delivery: each received batch of events is fanned out by one task
//! ([`fanout::handle_batch`]: one delivery write for all of them), while deliveries run one task
//! per message (each is its own HTTP attempt). A received batch's acks are handed to the queue's
//! acker ([`acker`]) together, once all its messages settled, and leave in batches of up to ten
//! (one SQS request): a batch of deliveries finishes over tens of milliseconds on AWS, so acks
//! collected only by time would leave one or two to a request. Releases (failed messages) go one by
//! one, at once, each with its own backoff.

mod acker;

use std::sync::Arc;
use std::time::Duration;

use herald_core::ports::{QueueMessage, QueueName, ReceivedMessage};
use herald_core::EventMessage;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::service::{delivery, fanout, WorkerError};
use crate::state::AppState;
use crate::stats;
use acker::Acks;

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

/// Polls both queues until `shutdown` turns true; waits for in-flight work, and for its acks,
/// before returning. Meanwhile writes the delivery statistics when due (`stats::run_flusher`), and
/// once more at the end.
pub async fn run(state: AppState, config: WorkerConfig, shutdown: watch::Receiver<bool>) {
    let flusher = tokio::spawn(stats::run_flusher(
        Arc::clone(&state.stats),
        state.settings.stats_flush_every,
        shutdown.clone(),
    ));
    let fanout = tokio::spawn(poll(
        state.clone(),
        QueueName::Events,
        config.fanout_concurrency,
        config.batch,
        shutdown.clone(),
    ));
    let deliveries = tokio::spawn(poll(
        state.clone(),
        QueueName::Deliveries,
        config.delivery_concurrency,
        config.batch,
        shutdown,
    ));
    let _ = tokio::join!(fanout, deliveries, flusher);
    state.stats.flush().await;
}

async fn poll(
    state: AppState,
    queue: QueueName,
    concurrency: usize,
    batch: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let (acks, acker) = Acks::spawn(Arc::clone(&state.queue), queue);
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
            // Wait for a message to finish (a permit to come back), not for a whole batch.
            tokio::select! {
                _ = permits.acquire() => {}
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
        if messages.is_empty() {
            continue;
        }
        for m in &messages {
            if let Some(waited) = m.waited {
                state.metrics.queue_age(waited);
            }
        }
        if queue == QueueName::Events {
            // One task for the batch, holding a permit per message.
            let n = u32::try_from(messages.len()).unwrap_or(u32::MAX);
            let Ok(permit) = permits.clone().acquire_many_owned(n).await else {
                break;
            };
            let (state, acks) = (state.clone(), acks.clone());
            tasks.spawn(async move {
                handle_events(&state, &acks, messages).await;
                drop(permit);
            });
            continue;
        }
        // A permit per message, each given back as soon as that message is done.
        let mut admitted = Vec::with_capacity(messages.len());
        for message in messages {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            admitted.push((message, permit));
        }
        tasks.spawn(handle_deliveries(state.clone(), acks.clone(), admitted));
    }
    while tasks.join_next().await.is_some() {}
    // Every receipt is in the acker's hands now: let it flush them all.
    drop(acks);
    if let Err(e) = acker.await {
        tracing::error!(queue = queue.as_str(), error = %e, "the acker failed; unacked messages come back");
    }
}

/// Fans out a received batch of the events queue together and settles each message.
async fn handle_events(state: &AppState, acks: &Acks, received: Vec<ReceivedMessage>) {
    let (events, others): (Vec<_>, Vec<_>) = received
        .into_iter()
        .partition(|m| matches!(m.message, QueueMessage::Event(_)));
    let batch: Vec<(EventMessage, u32)> = events
        .iter()
        .filter_map(|m| match &m.message {
            QueueMessage::Event(e) => Some((e.clone(), m.receive_count)),
            QueueMessage::Delivery(_) => None,
        })
        .collect();
    let results = fanout::handle_batch(state, &batch).await;
    for (message, result) in events.into_iter().zip(results) {
        settle(state, QueueName::Events, acks, message, result.map(|_| ())).await;
    }
    // A message of the other kind (a misrouted send) is still processed, on its own.
    for message in others {
        let result = process(state, &message.message, message.receive_count).await;
        settle(state, QueueName::Events, acks, message, result).await;
    }
}

/// Runs each delivery of a received batch in a task of its own (each is its own HTTP attempt) and
/// hands the batch's acks to the acker together once every message has settled, so a batch costs
/// one delete request however its attempts are spread in time. A message still running after a
/// third of the lease no longer holds back its batch mates' acks. Failed messages are released at
/// once.
async fn handle_deliveries(
    state: AppState,
    acks: Acks,
    messages: Vec<(ReceivedMessage, OwnedSemaphorePermit)>,
) {
    let queue = QueueName::Deliveries;
    let mut running = JoinSet::new();
    for (message, permit) in messages {
        let state = state.clone();
        running.spawn(async move {
            let result = process(&state, &message.message, message.receive_count).await;
            drop(permit);
            (message, result)
        });
    }
    let hold_until = tokio::time::Instant::now() + state.settings.visibility_timeout / 3;
    let mut holding = true;
    let mut finished = Vec::new();
    loop {
        let joined = tokio::select! {
            joined = running.join_next() => joined,
            () = tokio::time::sleep_until(hold_until), if holding => {
                holding = false;
                acks.ack_all(std::mem::take(&mut finished)).await;
                continue;
            }
        };
        match joined {
            None => break,
            Some(Ok((message, Ok(())))) if holding => finished.push(message.receipt),
            Some(Ok((message, Ok(())))) => acks.ack(message.receipt).await,
            Some(Ok((message, Err(e)))) => release(&state, queue, message, e).await,
            // Its message comes back after its lease.
            Some(Err(e)) => {
                tracing::error!(queue = queue.as_str(), error = %e, "a message handler panicked")
            }
        }
    }
    acks.ack_all(finished).await;
}

/// Acks a message whose service succeeded (with the acker's next batch); releases a failed one
/// after its backoff.
async fn settle(
    state: &AppState,
    queue: QueueName,
    acks: &Acks,
    received: ReceivedMessage,
    result: Result<(), WorkerError>,
) {
    match result {
        Ok(()) => acks.ack(received.receipt).await,
        Err(e) => release(state, queue, received, e).await,
    }
}

/// Makes a failed message visible again after its backoff.
async fn release(
    state: &AppState,
    queue: QueueName,
    received: ReceivedMessage,
    error: WorkerError,
) {
    let backoff = failure_backoff(received.receive_count);
    tracing::error!(queue = queue.as_str(), %error, receive_count = received.receive_count, backoff_s = backoff.as_secs(), "message failed; it will be retried");
    if let Err(e) = state.queue.release(queue, &received.receipt, backoff).await {
        tracing::error!(queue = queue.as_str(), error = %e, "release failed; the message returns after its visibility timeout");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use herald_core::ports::{OutboundRequest, OutboundResponse, Queue, SendError, Sender};

    use super::*;
    use crate::service::testing::Harness;
    use herald_contract::compose::ProbedQueue;

    /// The harness's receiver, answering its n-th request after n × 20 ms: attempts that finish
    /// further apart than the acker's linger.
    struct Staggered {
        inner: Arc<dyn Sender>,
        seen: AtomicU32,
    }

    #[async_trait]
    impl Sender for Staggered {
        async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, SendError> {
            let n = self.seen.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20) * n).await;
            self.inner.send(request).await
        }
    }

    #[tokio::test]
    async fn a_received_batch_of_deliveries_is_acked_in_one_request() {
        // Given three first attempts on the queue, received as one batch, whose receiver answers
        // them 20 ms apart
        let mut h = Harness::new([]);
        h.state.sender = Arc::new(Staggered {
            inner: h.sender.clone(),
            seen: AtomicU32::new(0),
        });
        h.subscribe(&["*"], true).await;
        for _ in 0..3 {
            let event = h.event("document.created").await;
            let message = EventMessage {
                tenant_id: event.tenant_id,
                event_id: event.id,
                event: None,
            };
            fanout::handle(&h.state, &message, 1).await.unwrap();
        }
        let queue = ProbedQueue::new(h.queue.clone());
        h.state.queue = queue.clone();
        let received = queue
            .receive(
                QueueName::Deliveries,
                10,
                Duration::ZERO,
                Duration::from_secs(90),
            )
            .await
            .unwrap();
        assert_eq!(received.len(), 3);

        // When the worker runs them
        let permits = Arc::new(Semaphore::new(3));
        let mut admitted = Vec::new();
        for message in received {
            admitted.push((message, permits.clone().acquire_owned().await.unwrap()));
        }
        let (acks, acker) = Acks::spawn(queue.clone(), QueueName::Deliveries);
        handle_deliveries(h.state.clone(), acks, admitted).await;
        acker.await.unwrap();

        // Then each was delivered, and their acks went together
        assert_eq!(h.sender.requests().len(), 3);
        assert_eq!(queue.ack_batches(), vec![3]);
        assert!(h.queue.pending(QueueName::Deliveries).is_empty());
        assert_eq!(permits.available_permits(), 3);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(failure_backoff(1), Duration::from_secs(1));
        assert_eq!(failure_backoff(2), Duration::from_secs(2));
        assert_eq!(failure_backoff(4), Duration::from_secs(8));
        assert_eq!(failure_backoff(50), Duration::from_secs(256));
    }
}
