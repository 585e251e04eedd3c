//! Fan-out: one delivery per matching enabled subscription (the core's [`fan_out`] rule), each
//! created with its first-attempt message through the unit of work.
//!
//! Idempotent: delivery ids derive from (event, subscription) and are created if absent, so running
//! twice for one event (at-least-once queues) creates nothing new. When the event message came back
//! (receive count > 1), the first attempts of the deliveries that already existed are redriven:
//! a write-then-send adapter may have stopped between creating them and queueing them.

use herald_core::delivery::fan_out;
use herald_core::EventMessage;

use super::WorkerError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Fans one event out; returns how many deliveries it created. `Ok` means the message can be
/// acknowledged.
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
    let subscriptions = state.store.enabled_subscriptions(&event.tenant_id).await?;
    let now = state.clock.now();
    let max_delay = state.queue.max_delay();
    let planned = fan_out(&event, &subscriptions, now);
    if planned.is_empty() {
        return Ok(0);
    }
    let pairs = planned
        .iter()
        .map(|(d, first)| {
            let message = first.clone().delayed(Default::default(), max_delay, now);
            (d.clone(), Some(message))
        })
        .collect();
    let created = state.writes.create_deliveries_and_send(pairs).await?;
    if receive_count > 1 && created.len() < planned.len() {
        let again = planned
            .into_iter()
            .filter(|(d, _)| !created.contains(&d.id))
            .map(|(_, first)| first.delayed(Default::default(), max_delay, now))
            .collect();
        state.writes.redrive(again).await?;
    }
    Metrics::add(&state.metrics.deliveries_created, created.len() as u64);
    tracing::debug!(tenant = %event.tenant_id, event = %event.id, deliveries = created.len(), "fanned out");
    Ok(created.len())
}
