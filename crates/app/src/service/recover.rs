//! Replay and recovery: put deliveries back on the queue, whatever their state, with a fresh run of
//! the retry schedule.

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

/// Re-queues every failed delivery of `sub` created at or after `since`. Walks the log newest first
/// and stops at the first older delivery.
pub async fn recover_failed(
    state: &AppState,
    sub: &Subscription,
    since: Timestamp,
) -> Result<usize, WorkerError> {
    let mut count = 0;
    let mut cursor = None;
    loop {
        let page = state
            .store
            .list_deliveries(&sub.tenant_id, &sub.id, &PageRequest { limit: 100, cursor })
            .await?;
        let mut reached_older = false;
        for delivery in page.items {
            if delivery.created_at < since {
                reached_older = true;
                break;
            }
            if delivery.status == DeliveryStatus::Failed {
                requeue(state, delivery).await?;
                count += 1;
            }
        }
        match page.next_cursor {
            Some(next) if !reached_older => cursor = Some(next),
            _ => break,
        }
    }
    Ok(count)
}
