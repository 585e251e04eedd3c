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
    let subscriptions = state
        .directory
        .enabled_subscriptions(&event.tenant_id)
        .await?;
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

#[cfg(test)]
mod tests {
    use herald_core::ports::QueueName;
    use herald_core::{DeliveryStatus, EventMessage};

    use super::*;
    use crate::service::testing::Harness;

    fn message(event: &herald_core::Event) -> EventMessage {
        EventMessage {
            tenant_id: event.tenant_id,
            event_id: event.id,
        }
    }

    #[tokio::test]
    async fn one_delivery_per_matching_enabled_subscription_and_nothing_for_the_rest() {
        let h = Harness::new([]);
        let all = h.subscribe(&["*"], true).await;
        let documents = h.subscribe(&["document.*"], true).await;
        h.subscribe(&["comment.*"], true).await;
        h.subscribe(&["*"], false).await;
        let event = h.event("document.published").await;

        let created = handle(&h.state, &message(&event), 1).await.unwrap();

        assert_eq!(created, 2);
        let mut deliveries = h
            .state
            .store
            .deliveries_for_event(&h.tenant, &event.id)
            .await
            .unwrap();
        deliveries.sort_by_key(|d| d.subscription_id);
        let mut expected = vec![all.id, documents.id];
        expected.sort();
        assert_eq!(
            deliveries
                .iter()
                .map(|d| d.subscription_id)
                .collect::<Vec<_>>(),
            expected
        );
        assert!(deliveries
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0));
        // Each with its first attempt queued, due now.
        let mut queued = h.take_deliveries();
        queued.sort_by_key(|(m, _)| m.delivery_id);
        let mut ids: Vec<_> = deliveries.iter().map(|d| d.id).collect();
        ids.sort();
        assert_eq!(
            queued
                .iter()
                .map(|(m, _)| m.delivery_id)
                .collect::<Vec<_>>(),
            ids
        );
        assert!(queued
            .iter()
            .all(|(m, delay)| m.attempt == 1 && delay.is_zero() && m.not_before.is_none()));
    }

    #[tokio::test]
    async fn a_message_seen_twice_creates_and_queues_nothing_new() {
        let h = Harness::new([]);
        h.subscribe(&["*"], true).await;
        let event = h.event("document.created").await;
        assert_eq!(handle(&h.state, &message(&event), 1).await.unwrap(), 1);
        assert_eq!(h.take_deliveries().len(), 1);

        // Again, as a duplicate message and as the same message come back after a crash.
        assert_eq!(handle(&h.state, &message(&event), 1).await.unwrap(), 0);
        assert_eq!(handle(&h.state, &message(&event), 2).await.unwrap(), 0);
        assert!(h.take(QueueName::Deliveries).is_empty());
        let deliveries = h
            .state
            .store
            .deliveries_for_event(&h.tenant, &event.id)
            .await
            .unwrap();
        assert_eq!(deliveries.len(), 1);
    }

    #[tokio::test]
    async fn an_event_nobody_wants_or_that_is_gone_creates_nothing() {
        let h = Harness::new([]);
        h.subscribe(&["comment.*"], true).await;
        let event = h.event("document.created").await;
        assert_eq!(handle(&h.state, &message(&event), 1).await.unwrap(), 0);
        let gone = EventMessage {
            tenant_id: h.tenant,
            event_id: herald_core::EventId::new(),
        };
        assert_eq!(handle(&h.state, &gone, 1).await.unwrap(), 0);
        assert!(h.take(QueueName::Deliveries).is_empty());
    }
}
