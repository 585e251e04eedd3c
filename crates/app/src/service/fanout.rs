//! Fan-out: one delivery per matching enabled subscription (the core's [`fan_out`] rule), each
//! created with its first-attempt message through the unit of work.
//!
//! A received batch of event messages is fanned out together ([`handle_batch`]): its events are
//! read, each tenant's enabled subscriptions once, and the deliveries of every event are created in
//! one unit-of-work call, so an adapter that sends after writing queues their first attempts ten to
//! an SQS request across events, not one request per event. [`handle`] is the batch of one.
//!
//! Idempotent: delivery ids derive from (event, subscription) and are created if absent, so running
//! twice for one event (at-least-once queues) creates nothing new. When an event message came back
//! (receive count > 1), the first attempts of its deliveries that already existed are redriven:
//! a write-then-send adapter may have stopped between creating them and queueing them.
//!
//! Each message gets its own answer, and `Ok` only once its work is done: a failed event read fails
//! that message, a failed subscription read the messages of that tenant, and a failed combined write
//! every message whose deliveries it carried (they come back, and fan-out is idempotent). A message
//! whose event is gone or wants no delivery is done without the write.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use herald_core::delivery::fan_out;
use herald_core::ids::{DeliveryId, TenantId};
use herald_core::ports::{OutgoingMessage, StoreError};
use herald_core::{Delivery, DeliveryMessage, Event, EventMessage};

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
    handle_batch(state, &[(message.clone(), receive_count)])
        .await
        .pop()
        .unwrap_or_else(|| Err(StoreError::backend("fan-out answered nothing").into()))
}

/// Fans out a batch of event messages, each with its receive count; answers each message in input
/// order: how many deliveries it created, or why it must come back.
pub async fn handle_batch(
    state: &AppState,
    messages: &[(EventMessage, u32)],
) -> Vec<Result<usize, WorkerError>> {
    let mut answers = Answers::new(messages.len());
    let now = state.clock.now();
    let by_tenant = read_events(state, messages, &mut answers).await;
    let planned = plan(state, messages, by_tenant, now, &mut answers).await;
    if planned.is_empty() {
        return answers.into_vec();
    }

    // One write for the deliveries of every event (one message per delivery, should a batch hold an
    // event twice).
    let max_delay = state.queue.max_delay();
    let mut seen = HashSet::new();
    let pairs = planned
        .iter()
        .flat_map(|p| &p.deliveries)
        .filter(|(d, _)| seen.insert(d.id))
        .map(|(d, first)| {
            let message = first.clone().delayed(Duration::ZERO, max_delay, now);
            (d.clone(), Some(message))
        })
        .collect();
    let created: HashSet<DeliveryId> = match state.writes.create_deliveries_and_send(pairs).await {
        Ok(created) => created.into_iter().collect(),
        Err(e) => {
            answers.fail_all(planned.iter().map(|p| p.index), e.into());
            return answers.into_vec();
        }
    };
    Metrics::add(&state.metrics.deliveries_created, created.len() as u64);

    // Each message's count (a delivery counts for the first message that planned it), and the
    // redrive of the ones that came back.
    let mut unclaimed = created.clone();
    let outcomes = join_all(planned.into_iter().map(|p| {
        let count = p
            .deliveries
            .iter()
            .filter(|(d, _)| unclaimed.remove(&d.id))
            .count();
        let created = &created;
        async move {
            let result = redrive_if_back(state, &p, created, now, max_delay).await;
            tracing::debug!(tenant = %p.event.tenant_id, event = %p.event.id, deliveries = count, "fanned out");
            (p.index, result.map(|()| count))
        }
    }))
    .await;
    for (i, outcome) in outcomes {
        answers.set(i, outcome);
    }
    answers.into_vec()
}

/// Reads the batch's events concurrently, grouped by tenant with their positions in the batch. A
/// message whose event is gone is done; one whose read failed must come back.
async fn read_events(
    state: &AppState,
    messages: &[(EventMessage, u32)],
    answers: &mut Answers,
) -> BTreeMap<TenantId, Vec<(usize, Event)>> {
    let reads = join_all(
        messages
            .iter()
            .map(|(m, _)| state.store.get_event(&m.tenant_id, &m.event_id)),
    )
    .await;
    let mut by_tenant: BTreeMap<TenantId, Vec<(usize, Event)>> = BTreeMap::new();
    for (i, ((message, _), read)) in messages.iter().zip(reads).enumerate() {
        match read {
            Ok(Some(event)) => by_tenant
                .entry(event.tenant_id)
                .or_default()
                .push((i, event)),
            Ok(None) => {
                tracing::warn!(tenant = %message.tenant_id, event = %message.event_id, "event to fan out no longer exists; dropping");
                answers.set(i, Ok(0));
            }
            Err(e) => answers.set(i, Err(e.into())),
        }
    }
    by_tenant
}

/// The deliveries each event asks for, from its tenant's enabled subscriptions (read once per
/// tenant, concurrently). An event that asks for none is done.
async fn plan(
    state: &AppState,
    messages: &[(EventMessage, u32)],
    by_tenant: BTreeMap<TenantId, Vec<(usize, Event)>>,
    now: jiff::Timestamp,
    answers: &mut Answers,
) -> Vec<Planned> {
    let groups = join_all(by_tenant.into_iter().map(|(tenant, events)| async move {
        let subscriptions = state.store.enabled_subscriptions(&tenant).await;
        (events, subscriptions)
    }))
    .await;
    let mut planned = Vec::new();
    for (events, subscriptions) in groups {
        let subscriptions = match subscriptions {
            Ok(subscriptions) => subscriptions,
            Err(e) => {
                answers.fail_all(events.iter().map(|(i, _)| *i), e.into());
                continue;
            }
        };
        for (i, event) in events {
            let deliveries = fan_out(&event, &subscriptions, now);
            if deliveries.is_empty() {
                answers.set(i, Ok(0));
            } else {
                planned.push(Planned {
                    index: i,
                    receive_count: messages[i].1,
                    event,
                    deliveries,
                });
            }
        }
    }
    planned
}

/// An event with deliveries to create, and where its message sits in the batch.
struct Planned {
    index: usize,
    receive_count: u32,
    event: Event,
    deliveries: Vec<(Delivery, DeliveryMessage)>,
}

/// A message that came back may follow a run that created its deliveries and stopped before
/// queueing them: the first attempts of the ones that existed already are redriven.
async fn redrive_if_back(
    state: &AppState,
    planned: &Planned,
    created: &HashSet<DeliveryId>,
    now: jiff::Timestamp,
    max_delay: Duration,
) -> Result<(), WorkerError> {
    if planned.receive_count <= 1 {
        return Ok(());
    }
    let again: Vec<OutgoingMessage> = planned
        .deliveries
        .iter()
        .filter(|(d, _)| !created.contains(&d.id))
        .map(|(_, first)| first.clone().delayed(Duration::ZERO, max_delay, now))
        .collect();
    if again.is_empty() {
        return Ok(());
    }
    state.writes.redrive(again).await?;
    Ok(())
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;
    use herald_contract::fixtures;
    use herald_core::ports::{
        InsertEventOutcome, NewEvent, QueueMessage, QueueName, Recorded, UnitOfWork,
    };
    use herald_core::{Attempt, DeliveryStatus, EventMessage};

    use super::*;
    use crate::service::testing::Harness;

    /// The harness's unit of work, counting delivery writes (failing them when `fail` is set, as a
    /// throttled DynamoDB does) and recording what is redriven.
    struct Writes {
        inner: Arc<dyn UnitOfWork>,
        fail: bool,
        creates: AtomicUsize,
        redriven: Mutex<Vec<OutgoingMessage>>,
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap()
    }

    impl Writes {
        /// Puts itself in front of `h`'s unit of work.
        fn install(h: &mut Harness, fail: bool) -> Arc<Self> {
            let writes = Arc::new(Self {
                inner: Arc::clone(&h.state.writes),
                fail,
                creates: AtomicUsize::new(0),
                redriven: Mutex::new(Vec::new()),
            });
            h.state.writes = writes.clone();
            writes
        }
    }

    #[async_trait]
    impl UnitOfWork for Writes {
        async fn insert_events_and_send(
            &self,
            events: Vec<NewEvent>,
        ) -> Result<Vec<InsertEventOutcome>, StoreError> {
            self.inner.insert_events_and_send(events).await
        }

        async fn create_deliveries_and_send(
            &self,
            deliveries: Vec<(Delivery, Option<OutgoingMessage>)>,
        ) -> Result<Vec<DeliveryId>, StoreError> {
            self.creates.fetch_add(1, Ordering::Relaxed);
            if self.fail {
                return Err(StoreError::backend(
                    "ProvisionedThroughputExceededException",
                ));
            }
            self.inner.create_deliveries_and_send(deliveries).await
        }

        async fn record_attempt_and_send(
            &self,
            attempt: &Attempt,
            delivery: &Delivery,
            messages: Vec<OutgoingMessage>,
        ) -> Result<Recorded, StoreError> {
            self.inner
                .record_attempt_and_send(attempt, delivery, messages)
                .await
        }

        async fn update_delivery_and_send(
            &self,
            delivery: &Delivery,
            messages: Vec<OutgoingMessage>,
        ) -> Result<(), StoreError> {
            self.inner
                .update_delivery_and_send(delivery, messages)
                .await
        }

        async fn redrive(&self, messages: Vec<OutgoingMessage>) -> Result<(), StoreError> {
            lock(&self.redriven).extend(messages.iter().cloned());
            self.inner.redrive(messages).await
        }
    }

    /// Another tenant of the harness's store, with `subscriptions` subscriptions to everything
    /// and one stored event.
    async fn other_tenant(h: &Harness, subscriptions: usize) -> Event {
        let tenant = TenantId::new();
        for _ in 0..subscriptions {
            let sub = fixtures::subscription(tenant, &["*"], true);
            h.state.store.create_subscription(&sub).await.unwrap();
        }
        let event = fixtures::event(tenant, "document.created");
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

    #[tokio::test]
    async fn a_batch_for_two_tenants_creates_each_ones_deliveries_in_one_write() {
        let mut h = Harness::new([]);
        let writes = Writes::install(&mut h, false);
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
        assert_eq!(writes.creates.load(Ordering::Relaxed), 1, "one write");
        for (event, n) in [(&first, 1), (&second, 1), (&unwanted, 0), (&theirs, 2)] {
            let deliveries = h
                .state
                .store
                .deliveries_for_event(&event.tenant_id, &event.id)
                .await
                .unwrap();
            assert_eq!(deliveries.len(), n, "{}", event.event_type);
            assert!(deliveries.iter().all(|d| d.tenant_id == event.tenant_id));
        }
        // Every delivery's first attempt is queued, once.
        let mut queued: Vec<_> = h
            .take_deliveries()
            .into_iter()
            .map(|(m, _)| (m.tenant_id, m.attempt))
            .collect();
        queued.sort();
        let mut expected = vec![
            (h.tenant, 1),
            (h.tenant, 1),
            (theirs.tenant_id, 1),
            (theirs.tenant_id, 1),
        ];
        expected.sort();
        assert_eq!(queued, expected);
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_message_it_carried() {
        let mut h = Harness::new([]);
        let writes = Writes::install(&mut h, true);
        h.subscribe(&["*"], true).await;
        let first = h.event("document.created").await;
        let second = h.event("document.deleted").await;
        let theirs = other_tenant(&h, 1).await;
        let gone = EventMessage {
            tenant_id: h.tenant,
            event_id: herald_core::EventId::new(),
        };
        let batch = vec![
            (message(&first), 1),
            (message(&theirs), 2),
            (gone, 1),
            (message(&second), 1),
        ];

        let answers = handle_batch(&h.state, &batch).await;

        assert_eq!(writes.creates.load(Ordering::Relaxed), 1);
        assert!(answers[0].is_err() && answers[1].is_err() && answers[3].is_err());
        assert!(answers[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("ProvisionedThroughputExceededException"));
        // The event that is gone needed no write: that message is done.
        assert_eq!(answers[2].as_ref().unwrap(), &0);
        assert!(h.take(QueueName::Deliveries).is_empty());
        // Run again once the store recovered, the batch completes.
        h.state.writes = writes.inner.clone();
        let again: Vec<usize> = handle_batch(&h.state, &batch)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(again, vec![1, 1, 0, 1]);
    }

    #[tokio::test]
    async fn a_batch_that_came_back_redrives_only_what_existed_and_counts_an_event_once() {
        let mut h = Harness::new([]);
        let writes = Writes::install(&mut h, false);
        h.subscribe(&["*"], true).await;
        let done = h.event("document.created").await;
        let fresh = h.event("document.deleted").await;
        assert_eq!(handle(&h.state, &message(&done), 1).await.unwrap(), 1);
        let (existing, _) = h.take_deliveries().remove(0);

        // `done` came back: its delivery exists, so its first attempt is redriven. `fresh` is in
        // the batch twice, as an at-least-once queue may hand it out: created once, redriven never.
        let batch = vec![
            (message(&done), 2),
            (message(&fresh), 1),
            (message(&fresh), 2),
        ];
        let counts: Vec<usize> = handle_batch(&h.state, &batch)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();

        assert_eq!(counts, vec![0, 1, 0]);
        let queued = h.take_deliveries();
        assert_eq!(queued.len(), 1);
        assert_ne!(queued[0].0.delivery_id, existing.delivery_id);
        let redriven: Vec<QueueMessage> = lock(&writes.redriven)
            .iter()
            .map(|m| m.message.clone())
            .collect();
        assert_eq!(redriven, vec![QueueMessage::Delivery(existing)]);
    }
}
