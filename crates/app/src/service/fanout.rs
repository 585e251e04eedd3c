//! Fan-out: one delivery per matching enabled subscription, each queued for its first attempt.
//!
//! Idempotent: delivery ids derive from (event, subscription) and are created if absent, so running
//! twice for one event (at-least-once queues) creates nothing new. With an outbox, deliveries and
//! their first-attempt messages commit together. Without one, when the message comes back (receive
//! count > 1), deliveries that exist but were never tried are queued again, in case the first run
//! stopped before queueing them; the delivery worker drops duplicates by attempt number.

use std::time::Duration;

use herald_core::ports::{OutgoingMessage, QueueMessage};
use herald_core::{Delivery, DeliveryId, DeliveryMessage, DeliveryStatus, EventMessage};

use super::WorkerError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Fans one event out. `Ok` means the message can be acknowledged.
pub async fn handle(
    state: &AppState,
    message: &EventMessage,
    receive_count: u32,
) -> Result<usize, WorkerError> {
    let Some(event) = state
        .store
        .get_event(&message.tenant_id, &message.event_id)
        .await?
    else {
        tracing::warn!(tenant = %message.tenant_id, event = %message.event_id, "event to fan out no longer exists; dropping");
        return Ok(0);
    };
    let now = state.clock.now();
    let subscriptions = state.store.enabled_subscriptions(&event.tenant_id).await?;
    let deliveries: Vec<Delivery> = subscriptions
        .iter()
        .filter(|s| s.enabled && s.matches(&event.event_type))
        .map(|s| Delivery::pending(&event, s.id, now))
        .collect();
    if deliveries.is_empty() {
        return Ok(0);
    }
    let first_try = |id: DeliveryId| OutgoingMessage {
        message: QueueMessage::Delivery(DeliveryMessage {
            tenant_id: event.tenant_id,
            delivery_id: id,
            attempt: 1,
            not_before: None,
        }),
        delay: Duration::ZERO,
    };
    let count = match &state.outbox {
        // Deliveries and their messages commit together: nothing created is ever unqueued.
        Some(outbox) => {
            let pairs = deliveries.into_iter().map(|d| {
                let message = first_try(d.id);
                (d, message)
            });
            let created = outbox.create_deliveries_and_send(pairs.collect()).await?;
            Metrics::add(&state.metrics.deliveries_created, created.len() as u64);
            created.len()
        }
        None => {
            let created = state.store.create_deliveries(&deliveries).await?;
            let mut to_queue: Vec<DeliveryId> = created.clone();
            if created.len() < deliveries.len() && receive_count > 1 {
                // This message came back: an earlier run may have stopped between creating
                // deliveries and queueing them, so queue again what was never tried. (A first
                // receipt that finds existing deliveries is a client's duplicate intake: those are
                // already queued, and queueing them again could send twice while the first
                // attempt is in flight.)
                for d in deliveries.iter().filter(|d| !created.contains(&d.id)) {
                    if let Some(existing) = state.store.get_delivery(&d.tenant_id, &d.id).await? {
                        if existing.status == DeliveryStatus::Pending && existing.attempts == 0 {
                            to_queue.push(existing.id);
                        }
                    }
                }
            }
            Metrics::add(&state.metrics.deliveries_created, created.len() as u64);
            let messages: Vec<OutgoingMessage> = to_queue.into_iter().map(first_try).collect();
            let count = messages.len();
            if !messages.is_empty() {
                state.queue.send(messages).await?;
            }
            count
        }
    };
    tracing::debug!(tenant = %event.tenant_id, event = %event.id, deliveries = count, "fanned out");
    Ok(count)
}
