//! Replay and recovery: put deliveries back on the queue, whatever their state, with a fresh run of
//! the retry schedule. Recovery works in bounded steps, so one HTTP request never walks a whole
//! delivery log.

use std::time::Duration;

use herald_core::ports::PageRequest;
use herald_core::{Delivery, DeliveryStatus, Subscription};
use jiff::Timestamp;

use super::WorkerError;
use crate::state::AppState;

/// Queues the next attempt of `delivery` now and marks it pending; its retry schedule starts over
/// (the core's [`Delivery::requeue`] rule).
pub async fn requeue(state: &AppState, mut delivery: Delivery) -> Result<Delivery, WorkerError> {
    let now = state.clock.now();
    let next = delivery.requeue(now);
    let message = next.delayed(Duration::ZERO, state.queue.max_delay(), now);
    state
        .writes
        .update_delivery_and_send(&delivery, vec![message])
        .await?;
    tracing::info!(tenant = %delivery.tenant_id, delivery = %delivery.id, attempt = delivery.attempts + 1, "delivery re-queued");
    Ok(delivery)
}

/// Deliveries read from the store per page while recovering.
const RECOVER_PAGE: usize = 100;

/// How far one call of [`recover_failed`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Failed deliveries queued again by this call.
    pub recovered: usize,
    /// Where the next call continues; `None` when every delivery since the time was examined.
    pub next_cursor: Option<String>,
}

/// Re-queues the failed deliveries of `sub` created at or after `since`, examining at most `limit`
/// deliveries from `cursor` on, so that one call (one HTTP request) stays short. Walks the log
/// newest first and stops at the first older delivery.
pub async fn recover_failed(
    state: &AppState,
    sub: &Subscription,
    since: Timestamp,
    mut cursor: Option<String>,
    limit: usize,
) -> Result<Recovered, WorkerError> {
    let mut recovered = 0;
    let mut remaining = limit;
    while remaining > 0 {
        // Never read past the limit, so the store's cursor is exactly where this call stopped.
        let page = PageRequest {
            limit: remaining.min(RECOVER_PAGE),
            cursor,
        };
        let page = state
            .store
            .list_deliveries(&sub.tenant_id, &sub.id, &page)
            .await?;
        remaining = remaining.saturating_sub(page.items.len());
        for delivery in page.items {
            if delivery.created_at < since {
                return Ok(Recovered {
                    recovered,
                    next_cursor: None,
                });
            }
            if delivery.status == DeliveryStatus::Failed {
                requeue(state, delivery).await?;
                recovered += 1;
            }
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    Ok(Recovered {
        recovered,
        next_cursor: cursor,
    })
}

#[cfg(test)]
mod tests {
    use herald_contract::memory::Reply;
    use herald_core::DeliveryStatus;

    use super::*;
    use crate::service::delivery;
    use crate::service::testing::Harness;

    #[tokio::test]
    async fn requeue_queues_exactly_the_next_attempt_with_a_fresh_schedule() {
        let h = Harness::with_schedule(&[5], vec![Reply::Status(500); 3]);
        let (_, first) = h.one_delivery().await;
        delivery::handle(&h.state, &first, 1).await.unwrap();
        let (second, _) = h.take_deliveries().remove(0);
        h.clock.advance(std::time::Duration::from_secs(5));
        delivery::handle(&h.state, &second, 1).await.unwrap();
        let failed = h.delivery(&first).await;
        assert_eq!(
            (failed.status, failed.attempts),
            (DeliveryStatus::Failed, 2)
        );

        let requeued = requeue(&h.state, failed).await.unwrap();

        assert_eq!(requeued.status, DeliveryStatus::Pending);
        assert_eq!(requeued.run_started_at, 2);
        let queued = h.take_deliveries();
        assert_eq!(queued.len(), 1);
        assert_eq!((queued[0].0.attempt, queued[0].1), (3, Duration::ZERO));
        // The new run has the whole schedule: attempt 3 fails and attempt 4 is scheduled.
        assert_eq!(
            h.delivery(&first).await,
            requeued,
            "the stored delivery is the requeued one"
        );
        let sender_before = h.sender.requests().len();
        delivery::handle(&h.state, &queued[0].0, 1).await.unwrap();
        assert_eq!(h.sender.requests().len(), sender_before + 1);
        let after = h.take_deliveries();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].0.attempt, 4);
    }
}
