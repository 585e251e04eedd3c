//! The acker of one queue: finished messages' receipts come in over a channel and leave in batches
//! ([`Queue::ack_many`]: one SQS request per ten, one embedded commit), so a delivery does not cost
//! a delete request of its own. A batch goes when it holds [`ACK_BATCH`] receipts or [`ACK_LINGER`]
//! after its first, so a receipt handed over waits a few milliseconds at most (the worker hands a
//! received batch's receipts over together, once all its messages settled). Acks only stop a
//! finished message from coming back; they never delay a delivery.
//!
//! It must never lose a receipt silently: a failed batch is logged (its messages come back after
//! their lease, and handlers are idempotent), and when every sender is gone it flushes what it
//! holds and waits for the batches in flight before it returns.

use std::sync::Arc;
use std::time::Duration;

use herald_core::ports::{Queue, QueueName};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// Receipts per batch: what one SQS `DeleteMessageBatch` takes.
pub(crate) const ACK_BATCH: usize = 10;
/// The longest a receipt waits for others to share its batch.
pub(crate) const ACK_LINGER: Duration = Duration::from_millis(5);
/// Batches of one queue in flight at once. An un-acked message stays in the embedded queue's
/// index and file, so acks that fall behind cost memory and disk: at fan-out 10 on `herald bench`
/// (`--events 20000 --fanout 10`, two rounds each) 8 in flight left peak RSS at 235–240 MB and
/// 6,170–6,190 disk bytes per delivery, 32 brought them to 148–153 MB and 5,150–5,275 at the same
/// throughput (21,000–22,100 deliveries/s); fan-out 1 is unchanged. On SQS it is concurrency only:
/// no more requests.
const ACK_FLUSHES: usize = 32;
/// Receipts waiting in the channel before senders wait (backpressure on the handlers).
const ACK_BACKLOG: usize = 1024;

/// Hands finished messages' receipts to the acker. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Acks {
    queue: Arc<dyn Queue>,
    name: QueueName,
    tx: mpsc::Sender<String>,
}

impl Acks {
    /// Starts the acker of `name`; it runs until every [`Acks`] clone is dropped, then drains. Await
    /// the handle to know every receipt was sent.
    pub(crate) fn spawn(queue: Arc<dyn Queue>, name: QueueName) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(ACK_BACKLOG);
        let task = tokio::spawn(run(Arc::clone(&queue), name, rx));
        (Self { queue, name, tx }, task)
    }

    /// Acks every receipt of `receipts` (a received batch's), in as few batches as they fill.
    pub(crate) async fn ack_all(&self, receipts: Vec<String>) {
        for receipt in receipts {
            self.ack(receipt).await;
        }
    }

    /// Acks `receipt` with the next batch.
    pub(crate) async fn ack(&self, receipt: String) {
        if let Err(mpsc::error::SendError(receipt)) = self.tx.send(receipt).await {
            // The acker is gone (it panicked): ack on our own rather than let the message return.
            if let Err(e) = self.queue.ack(self.name, &receipt).await {
                tracing::error!(queue = self.name.as_str(), error = %e, "ack failed; the message comes back");
            }
        }
    }
}

async fn run(queue: Arc<dyn Queue>, name: QueueName, mut rx: mpsc::Receiver<String>) {
    let flushes = Arc::new(Semaphore::new(ACK_FLUSHES));
    let mut in_flight = JoinSet::new();
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::with_capacity(ACK_BATCH);
        batch.push(first);
        let linger = tokio::time::sleep(ACK_LINGER);
        tokio::pin!(linger);
        while batch.len() < ACK_BATCH {
            tokio::select! {
                // Receipts already waiting join the batch before the linger is looked at.
                biased;
                next = rx.recv() => match next {
                    Some(receipt) => batch.push(receipt),
                    None => break,
                },
                () = &mut linger => break,
            }
        }
        while in_flight.try_join_next().is_some() {}
        // The semaphore is never closed; if it were, the batch goes out without a permit.
        let permit = Arc::clone(&flushes).acquire_owned().await.ok();
        let queue = Arc::clone(&queue);
        in_flight.spawn(async move {
            flush(queue.as_ref(), name, batch).await;
            drop(permit);
        });
    }
    while in_flight.join_next().await.is_some() {}
}

async fn flush(queue: &dyn Queue, name: QueueName, receipts: Vec<String>) {
    let n = receipts.len();
    if let Err(e) = queue.ack_many(name, receipts).await {
        tracing::error!(queue = name.as_str(), receipts = n, error = %e, "ack failed; the messages not acked come back");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use herald_contract::compose::ProbedQueue;
    use herald_contract::fixtures::{delivery_message, now};
    use herald_contract::memory::MemoryQueue;
    use herald_core::ports::SystemClock;

    use super::*;

    const D: QueueName = QueueName::Deliveries;

    /// A probed memory queue holding `n` received (leased) messages, the memory queue, and the
    /// receipts.
    async fn leased(n: u32) -> (Arc<ProbedQueue>, Arc<MemoryQueue>, Vec<String>) {
        let memory = MemoryQueue::new(Arc::new(SystemClock));
        let queue = ProbedQueue::new(memory.clone());
        queue
            .send((1..=n).map(|a| now(delivery_message(a))).collect())
            .await
            .unwrap();
        let got = queue
            .receive(D, n as usize, Duration::ZERO, Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(got.len(), n as usize);
        (queue, memory, got.into_iter().map(|m| m.receipt).collect())
    }

    #[tokio::test]
    async fn receipts_leave_ten_to_a_batch_and_all_of_them_on_shutdown() {
        let (queue, memory, receipts) = leased(25).await;
        let (acks, acker) = Acks::spawn(queue.clone(), D);

        for receipt in receipts {
            acks.ack(receipt).await;
        }
        drop(acks);
        acker.await.unwrap();

        let batches = queue.ack_batches();
        assert_eq!(batches.iter().sum::<usize>(), 25, "{batches:?}");
        assert!(batches.iter().all(|n| *n <= ACK_BATCH), "{batches:?}");
        assert!(batches.len() <= 5, "{batches:?}");
        assert!(memory.pending(D).is_empty(), "every message acked");
    }

    #[tokio::test]
    async fn a_lone_receipt_goes_after_the_linger_without_waiting_for_company() {
        let (queue, memory, receipts) = leased(1).await;
        let (acks, acker) = Acks::spawn(queue.clone(), D);
        let start = Instant::now();

        acks.ack(receipts[0].clone()).await;
        while queue.ack_batches().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(5), "never acked");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }

        assert_eq!(queue.ack_batches(), vec![1]);
        drop(acks);
        acker.await.unwrap();
        assert!(memory.pending(D).is_empty());
    }
}
