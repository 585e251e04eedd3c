//! Replay and recovery: put deliveries back on the queue, whatever their state, with a fresh run of
//! the retry schedule. Recovery works in bounded steps, so one HTTP request never walks a whole
//! delivery log.

use std::time::Duration;

use herald_core::ports::{OutgoingMessage, PageRequest, QueueMessage};
use herald_core::{Delivery, DeliveryMessage, DeliveryStatus, Subscription};
use jiff::Timestamp;

use super::WorkerError;
use crate::state::AppState;

/// Queues the next attempt of `delivery` now and marks it pending; its retry schedule starts over.
pub async fn requeue(state: &AppState, mut delivery: Delivery) -> Result<Delivery, WorkerError> {
    let now = state.clock.now();
    delivery.status = DeliveryStatus::Pending;
    delivery.run_started_at = delivery.attempts;
    delivery.next_attempt_at = Some(now);
    delivery.updated_at = now;
    state.store.update_delivery(&delivery).await?;
    let message = QueueMessage::Delivery(DeliveryMessage {
        tenant_id: delivery.tenant_id,
        delivery_id: delivery.id,
        attempt: delivery.attempts + 1,
        not_before: None,
    });
    state
        .queue
        .send(vec![OutgoingMessage {
            message,
            delay: Duration::ZERO,
        }])
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
