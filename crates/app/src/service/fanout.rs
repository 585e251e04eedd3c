//! Fan-out: the first-attempt message of each delivery an event's plan names (the core's
//! [`fan_out`] rule; the plan was made at intake). Nothing is written: a delivery is stored by its
//! first attempt. Each message carries the event when the queue takes it inline, so the attempt
//! reads nothing back.
//!
//! A received batch of event messages is fanned out together ([`handle_batch`]): the first attempts
//! of every event go out in one send, ten to an SQS request across events, not one request per
//! event. [`handle`] is the batch of one.
//!
//! Idempotent enough for an at-least-once queue: delivery ids derive from (event, subscription),
//! so a second fan-out of one event names the same deliveries, and their attempts are recorded
//! once each. When an event message came back (receive count > 1), deliveries already stored are
//! skipped; a first-attempt message still waiting on the queue may go out twice, with the same
//! `webhook-id`.
//!
//! Each message gets its own answer, and `Ok` only once its work is done: a failed event read (a
//! claim check) or a failed check of a message that came back fails that message; a failed send
//! every message whose first attempts it carried (they come back). A message whose event is gone
//! or whose plan is empty is done without a send.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use herald_core::delivery::fan_out;
use herald_core::ports::{OutgoingMessage, StoreError};
use herald_core::{DeliveryMessage, Event, EventMessage};

use super::WorkerError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// How many messages one queue request takes (SQS's SendMessageBatch): the unit intake weighs when
/// it decides to queue first attempts itself.
pub(crate) const SEND_BATCH: usize = 10;

/// The first-attempt messages of every delivery `event` plans, due now, each carrying the event if
/// the queue takes it inline.
pub(crate) fn first_attempts(
    state: &AppState,
    event: &Event,
    now: jiff::Timestamp,
) -> Vec<OutgoingMessage> {
    outgoing(state, event, fan_out(event, now), now)
}

/// `firsts` as messages to send now, carrying `event` if the queue takes it inline.
fn outgoing(
    state: &AppState,
    event: &Event,
    firsts: Vec<DeliveryMessage>,
    now: jiff::Timestamp,
) -> Vec<OutgoingMessage> {
    let inline = state.queue.carried().carry(event);
    let max_delay = state.queue.max_delay();
    firsts
        .into_iter()
        .map(|mut m| {
            m.event = inline.clone();
            m.delayed(Duration::ZERO, max_delay, now)
        })
        .collect()
}

/// Fans one event out; returns how many first attempts it queued. `Ok` means the message can be
/// acknowledged.
pub async fn handle(
    state: &AppState,
    message: &EventMessage,
    receive_count: u32,
) -> Result<usize, WorkerError> {
    handle_batch(state, &[(message.clone(), receive_count)])
        .await
        .pop()
        .unwrap_or_else(|| Err(StoreError::backend("fan-out answered nothing").into()))
}

/// Fans out a batch of event messages, each with its receive count; answers each message in input
/// order: how many first attempts it queued, or why it must come back.
pub async fn handle_batch(
    state: &AppState,
    messages: &[(EventMessage, u32)],
) -> Vec<Result<usize, WorkerError>> {
    let mut answers = Answers::new(messages.len());
    let now = state.clock.now();
    let events = read_events(state, messages, &mut answers).await;

    let checks = join_all(events.into_iter().map(|(i, event)| async move {
        let firsts = still_to_send(state, &event, messages[i].1, now).await;
        (i, event, firsts)
    }))
    .await;

    let mut seen = HashSet::new();
    let mut to_send = Vec::new();
    let mut senders = Vec::new();
    for (i, event, firsts) in checks {
        let firsts = match firsts {
            Ok(firsts) => firsts,
            Err(e) => {
                answers.set(i, Err(e.into()));
                continue;
            }
        };
        // One message per delivery, should a batch hold an event twice.
        let firsts = firsts
            .into_iter()
            .filter(|m| seen.insert(m.delivery_id()))
            .collect();
        let mine = outgoing(state, &event, firsts, now);
        if mine.is_empty() {
            answers.set(i, Ok(0));
            continue;
        }
        tracing::debug!(tenant = %event.tenant_id, event = %event.id, deliveries = mine.len(), "fanned out");
        senders.push((i, mine.len()));
        to_send.extend(mine);
    }
    if to_send.is_empty() {
        return answers.into_vec();
    }
    let queued = to_send.len();
    match state.queue.send(to_send).await {
        Ok(()) => {
            Metrics::add(&state.metrics.deliveries_created, queued as u64);
            for (i, count) in senders {
                answers.set(i, Ok(count));
            }
        }
        Err(e) => answers.fail_all(senders.into_iter().map(|(i, _)| i), e.into()),
    }
    answers.into_vec()
}

/// The first attempts `event` asks for; for a message that came back, less the deliveries already
/// stored (their first attempt was made).
async fn still_to_send(
    state: &AppState,
    event: &Event,
    receive_count: u32,
    now: jiff::Timestamp,
) -> Result<Vec<DeliveryMessage>, StoreError> {
    let mut firsts = fan_out(event, now);
    if receive_count > 1 && !firsts.is_empty() {
        let stored = state.store.deliveries_for_event(event).await?;
        firsts.retain(|m| !stored.iter().any(|d| d.id == m.delivery_id()));
    }
    Ok(firsts)
}

/// The batch's events, with their positions: carried in the message, or read (a claim check),
/// concurrently. A message whose event is gone is done; one whose read failed must come back.
async fn read_events(
    state: &AppState,
    messages: &[(EventMessage, u32)],
    answers: &mut Answers,
) -> Vec<(usize, Event)> {
    let reads = join_all(messages.iter().map(|(m, _)| async move {
        match &m.event {
            Some(event) => Ok(Some(event.clone())),
            None => state.store.get_event(&m.tenant_id, &m.event_id).await,
        }
    }))
    .await;
    let mut events = Vec::with_capacity(messages.len());
    for (i, ((message, _), read)) in messages.iter().zip(reads).enumerate() {
        match read {
            Ok(Some(event)) => events.push((i, event)),
            Ok(None) => {
                tracing::warn!(tenant = %message.tenant_id, event = %message.event_id, "event to fan out no longer exists; dropping");
                answers.set(i, Ok(0));
            }
            Err(e) => answers.set(i, Err(e.into())),
        }
    }
    events
}

/// The answer of each message of a batch, filled in as it becomes known.
struct Answers(Vec<Option<Result<usize, WorkerError>>>);

impl Answers {
    fn new(n: usize) -> Self {
        Self((0..n).map(|_| None).collect())
    }

    fn set(&mut self, i: usize, answer: Result<usize, WorkerError>) {
        if let Some(slot) = self.0.get_mut(i) {
            *slot = Some(answer);
        }
    }

    /// Fails every message in `indices` with `error`, shared if there are several.
    fn fail_all(&mut self, indices: impl IntoIterator<Item = usize>, error: WorkerError) {
        let indices: Vec<usize> = indices.into_iter().collect();
        if let [only] = indices[..] {
            self.set(only, Err(error));
            return;
        }
        let shared = Arc::new(error);
        for i in indices {
            self.set(i, Err(WorkerError::Shared(Arc::clone(&shared))));
        }
    }

    /// Every answer; a message left unanswered (none should be) is reported failed, never done.
    fn into_vec(self) -> Vec<Result<usize, WorkerError>> {
        self.0
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err(StoreError::backend("fan-out left a message unanswered").into())
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use herald_contract::compose::ProbedQueue;
    use herald_contract::fixtures;
    use herald_core::ports::QueueName;
    use herald_core::{DeliveryId, EventMessage, TenantId};

    use super::*;
    use crate::service::testing::Harness;

    /// Puts a probe in front of `h`'s queue, its sends failing if `fail`.
    fn probe(h: &mut Harness, fail: bool) -> Arc<ProbedQueue> {
        let probe = ProbedQueue::new(Arc::clone(&h.state.queue));
        probe.fail_sends(fail);
        h.state.queue = probe.clone();
        probe
    }

    /// Another tenant of the harness's store, with `subscriptions` subscriptions to everything
    /// and one stored event planned for them.
    async fn other_tenant(h: &Harness, subscriptions: usize) -> Event {
        let tenant = TenantId::new();
        let mut event = fixtures::event(tenant, "document.created");
        for _ in 0..subscriptions {
            let sub = fixtures::subscription(tenant, &["*"], true);
            h.state.store.create_subscription(&sub).await.unwrap();
            event.subscriptions.push(sub.id);
        }
        h.state
            .writes
            .insert_event_and_send(&event, None, Vec::new())
            .await
            .unwrap();
        event
    }

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

    #[tokio::test]
    async fn a_batch_for_two_tenants_queues_every_first_attempt_in_one_send() {
        let mut h = Harness::new([]);
        let sends = probe(&mut h, false);
        h.subscribe(&["document.*"], true).await;
        let first = h.event("document.created").await;
        let second = h.event("document.deleted").await;
        let unwanted = h.event("comment.created").await;
        let theirs = other_tenant(&h, 2).await;
        let batch: Vec<(EventMessage, u32)> = [&first, &theirs, &second, &unwanted]
            .into_iter()
            .map(|e| (message(e), 1))
            .collect();

        let answers = handle_batch(&h.state, &batch).await;

        let counts: Vec<usize> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(counts, vec![1, 2, 1, 0]);
        assert_eq!(sends.sends(), 1, "one send");
        let mut queued: Vec<_> = h
            .take_deliveries()
            .into_iter()
            .map(|(m, _)| (m.tenant_id(), m.delivery.event_id))
            .collect();
        queued.sort();
        let mut expected = vec![
            (h.tenant, first.id),
            (h.tenant, second.id),
            (theirs.tenant_id, theirs.id),
            (theirs.tenant_id, theirs.id),
        ];
        expected.sort();
        assert_eq!(queued, expected);
    }

    #[tokio::test]
    async fn a_failed_send_fails_every_message_it_carried_and_a_batch_names_a_delivery_once() {
        let mut h = Harness::new([]);
        let sends = probe(&mut h, true);
        h.subscribe(&["*"], true).await;
        let first = h.event("document.created").await;
        let theirs = other_tenant(&h, 1).await;
        let gone = EventMessage {
            tenant_id: h.tenant,
            event_id: herald_core::EventId::new(),
            event: None,
        };
        // `first` twice, as an at-least-once queue may hand it out.
        let batch = vec![
            (message(&first), 1),
            (message(&theirs), 2),
            (gone, 1),
            (message(&first), 1),
        ];

        let answers = handle_batch(&h.state, &batch).await;

        assert_eq!(sends.sends(), 1);
        assert!(answers[0].is_err() && answers[1].is_err());
        assert!(answers[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("Throttled"));
        // The event that is gone and the repeat needed no send: those messages are done.
        assert_eq!(answers[2].as_ref().unwrap(), &0);
        assert_eq!(answers[3].as_ref().unwrap(), &0);
        assert!(h.take(QueueName::Deliveries).is_empty());
        // Once the queue recovered, the batch completes, each delivery queued once.
        sends.fail_sends(false);
        let again: Vec<usize> = handle_batch(&h.state, &batch)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(again, vec![1, 1, 0, 0]);
        assert_eq!(h.take_deliveries().len(), 2);
    }
}
