//! Fan-out: the first-attempt message of each delivery the event's plan names (the core's
//! [`fan_out`] rule; the plan was made at intake). Nothing is written: a delivery is stored by its
//! first attempt. Each message carries the event when the queue takes it inline, so the attempt
//! reads nothing back.
//!
//! Idempotent enough for an at-least-once queue: delivery ids derive from (event, subscription),
//! so a second fan-out of one event names the same deliveries, and their attempts are recorded
//! once each. When the event message came back (receive count > 1), deliveries already stored are
//! skipped; a first-attempt message still waiting on the queue may go out twice, with the same
//! `webhook-id`.

use herald_core::delivery::fan_out;
use herald_core::ports::OutgoingMessage;
use herald_core::EventMessage;

use super::WorkerError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Fans one event out; returns how many first attempts it queued. `Ok` means the message can be
/// acknowledged.
pub async fn handle(
    state: &AppState,
    message: &EventMessage,
    receive_count: u32,
) -> Result<usize, WorkerError> {
    let event = match &message.event {
        Some(event) => event.clone(),
        None => match state
            .store
            .get_event(&message.tenant_id, &message.event_id)
            .await?
        {
            Some(event) => event,
            None => {
                tracing::warn!(tenant = %message.tenant_id, event = %message.event_id, "event to fan out no longer exists; dropping");
                return Ok(0);
            }
        },
    };
    let now = state.clock.now();
    let mut planned = fan_out(&event, now);
    if receive_count > 1 && !planned.is_empty() {
        let stored = state.store.deliveries_for_event(&event).await?;
        planned.retain(|m| !stored.iter().any(|d| d.id == m.delivery_id()));
    }
    if planned.is_empty() {
        return Ok(0);
    }
    let carried = state.queue.carried().carry(&event);
    let max_delay = state.queue.max_delay();
    let messages: Vec<OutgoingMessage> = planned
        .into_iter()
        .map(|mut m| {
            m.event = carried.clone();
            m.delayed(Default::default(), max_delay, now)
        })
        .collect();
    let queued = messages.len();
    state.queue.send(messages).await?;
    Metrics::add(&state.metrics.deliveries_created, queued as u64);
    tracing::debug!(tenant = %event.tenant_id, event = %event.id, deliveries = queued, "fanned out");
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use herald_core::ports::QueueName;
    use herald_core::{DeliveryId, EventMessage};

    use super::*;
    use crate::service::testing::Harness;

    fn message(event: &herald_core::Event) -> EventMessage {
        EventMessage {
            tenant_id: event.tenant_id,
            event_id: event.id,
            event: None,
        }
    }

    #[tokio::test]
    async fn one_first_attempt_per_planned_subscription_carrying_the_event_and_nothing_stored() {
        let h = Harness::new([]);
        let all = h.subscribe(&["*"], true).await;
        let documents = h.subscribe(&["document.*"], true).await;
        h.subscribe(&["comment.*"], true).await;
        h.subscribe(&["*"], false).await;
        let event = h.event("document.published").await;
        assert_eq!(event.subscriptions.len(), 2, "intake planned the two");

        let queued = handle(&h.state, &message(&event), 1).await.unwrap();

        assert_eq!(queued, 2);
        let mut want = vec![
            DeliveryId::derive(&event.id, &all.id),
            DeliveryId::derive(&event.id, &documents.id),
        ];
        want.sort();
        let mut got = h.take_deliveries();
        got.sort_by_key(|(m, _)| m.delivery_id());
        assert_eq!(
            got.iter().map(|(m, _)| m.delivery_id()).collect::<Vec<_>>(),
            want
        );
        for (m, delay) in &got {
            assert_eq!(
                (m.attempt, m.not_before, *delay),
                (1, None, Default::default())
            );
            assert_eq!(m.event.as_ref(), Some(&event), "small events ride along");
            assert_eq!(m.delivery.attempts, 0);
        }
        // Stored from their first attempt on, not before.
        assert!(h
            .state
            .store
            .deliveries_for_event(&event)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_big_event_travels_as_a_claim_check() {
        let h = Harness::new([]);
        h.subscribe(&["*"], true).await;
        let mut event = herald_contract::fixtures::event(h.tenant, "document.created");
        event.data = serde_json::json!({"body": "x".repeat(5000)});
        let event = h.store_event(event).await;
        assert_eq!(handle(&h.state, &message(&event), 1).await.unwrap(), 1);
        let (m, _) = h.take_deliveries().remove(0);
        assert_eq!(m.event, None, "read from the store at the attempt");
    }

    #[tokio::test]
    async fn a_message_that_came_back_skips_the_deliveries_already_made() {
        let h = Harness::new([]);
        h.subscribe(&["*"], true).await;
        h.subscribe(&["*"], true).await;
        let event = h.event("document.created").await;
        assert_eq!(handle(&h.state, &message(&event), 1).await.unwrap(), 2);
        let mut first = h.take_deliveries();
        // One of the two is attempted (and so stored); then the event message comes back.
        let (m, _) = first.remove(0);
        crate::service::delivery::handle(&h.state, &m, 1)
            .await
            .unwrap();
        h.take(QueueName::Deliveries);
        assert_eq!(handle(&h.state, &message(&event), 2).await.unwrap(), 1);
        let again = h.take_deliveries();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0.delivery_id(), first[0].0.delivery_id());
    }

    #[tokio::test]
    async fn an_event_nobody_wants_or_that_is_gone_queues_nothing() {
        let h = Harness::new([]);
        h.subscribe(&["comment.*"], true).await;
        let event = h.event("document.created").await;
        assert!(event.subscriptions.is_empty());
        assert_eq!(handle(&h.state, &message(&event), 1).await.unwrap(), 0);
        let gone = EventMessage {
            tenant_id: h.tenant,
            event_id: herald_core::EventId::new(),
            event: None,
        };
        assert_eq!(handle(&h.state, &gone, 1).await.unwrap(), 0);
        assert!(h.take(QueueName::Deliveries).is_empty());
    }
}
