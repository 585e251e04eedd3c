//! Event intake: parse, plan, store once (idempotently), queue for fan-out.
//!
//! The plan is the core's rule over the tenant's enabled subscriptions: which subscriptions the
//! event goes to, stored with it, so its deliveries can be shown (pending until their first attempt)
//! without an index. The event and its fan-out message (carrying the event when it is small) go
//! through the unit of work before the answer is sent; an event planned for nobody is stored and
//! costs no message. A client that saw an error retries with the same key; the duplicate path
//! redrives the earlier event's message, so on an adapter that writes first and sends second, an
//! event stored but not queued (a crash between the two) still goes out. Fan-out names the same
//! deliveries every time, and each attempt is recorded once. The idempotency window is
//! [`Settings::idempotency_window`](crate::settings::Settings): within it a key gets the first
//! answer (409 with another body); after it the key makes a new event.
//!
//! Before any of that, each event is checked against its tenant's catalog (the directory's cached
//! copy, schemas compiled once per fill): `data` against its type's JSON Schema, and unknown types
//! against the tenant's setting. A refused event stores, queues and consumes nothing (its
//! idempotency key included).

use std::time::Duration;

use herald_core::catalog::Refusal;
use herald_core::delivery::plan;
use herald_core::operational::Notice;
use herald_core::ports::{
    InsertEventOutcome, NewEvent, OutgoingMessage, QueueError, QueueMessage, StoreError,
};
use herald_core::{
    Event, EventId, EventMessage, EventType, IdempotencyRecord, SubscriptionId, TenantId,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::fanout::{first_attempts, SEND_BATCH};
use super::WorkerError;
use crate::metrics::Metrics;
use crate::state::AppState;
use herald_core::digest::sha256_hex;

const MAX_CLIENT_ID: usize = 255;

/// A parsed intake body.
#[derive(Debug, Clone)]
pub struct EventInput {
    pub event_type: EventType,
    pub data: Value,
    /// The client's own id for the event, used for deduplication.
    pub client_id: Option<String>,
    /// SHA-256 of the canonical JSON of the body (keys sorted), so formatting does not matter.
    pub body_sha256: String,
}

/// A field-level problem with the intake body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub field: &'static str,
    pub message: String,
}

/// Parses `{type, data, id?}`.
pub fn parse_event_input(body: Value) -> Result<EventInput, InputError> {
    let err = |field, message: &str| InputError {
        field,
        message: message.to_owned(),
    };
    let Value::Object(mut map) = body else {
        return Err(err(
            "body",
            "the body must be a JSON object: {\"type\": …, \"data\": {…}}",
        ));
    };
    // serde_json's map is ordered by key, so this serialisation is canonical.
    let body_sha256 = sha256_hex(serde_json::to_vec(&map).unwrap_or_default());
    let event_type = match map.remove("type") {
        Some(Value::String(s)) => EventType::parse(&s)
            .map_err(|e| InputError {
                field: "type",
                message: e.to_string(),
            })
            .and_then(|t| {
                if t.is_operational() {
                    Err(err(
                        "type",
                        "the `herald.` namespace is reserved for Herald's own operational events",
                    ))
                } else {
                    Ok(t)
                }
            })?,
        Some(_) => {
            return Err(err(
                "type",
                "`type` must be a string such as \"document.created\"",
            ))
        }
        None => return Err(err("type", "`type` is required")),
    };
    let data = match map.remove("data") {
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(err("data", "`data` must be a JSON object")),
        None => return Err(err("data", "`data` is required (use {} for none)")),
    };
    let client_id = match map.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= MAX_CLIENT_ID
                && s.chars().all(|c| c.is_ascii_graphic()) =>
        {
            Some(s)
        }
        Some(_) => return Err(err("id", "`id` must be 1 to 255 visible characters")),
    };
    if let Some(k) = map.keys().next() {
        return Err(InputError {
            field: "body",
            message: format!("unknown field `{k}`"),
        });
    }
    Ok(EventInput {
        event_type,
        data,
        client_id,
        body_sha256,
    })
}

/// What intake answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub id: EventId,
    pub event_type: EventType,
    pub timestamp: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("idempotency key reused with a different body")]
    KeyReused,
    /// The tenant's catalog refuses it (schema violation, unknown type): nothing was stored.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// One item of an intake: the parsed event and its idempotency key (header or batch field).
#[derive(Debug, Clone)]
pub struct IntakeItem {
    pub input: EventInput,
    pub idempotency_key: Option<String>,
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    /// Stored and queued now.
    Accepted(Accepted),
    /// The key (or client id) was used before with the same body: the first answer.
    Duplicate(Accepted),
    /// The key was used before with another body.
    KeyReused,
    /// The tenant's catalog refuses it; nothing was stored or queued for it.
    Refused(Refusal),
}

/// Stores and queues an event. Same key + same body → the first answer; different body → KeyReused.
pub async fn accept(
    state: &AppState,
    tenant: TenantId,
    input: EventInput,
    idempotency_key: Option<String>,
) -> Result<Accepted, IntakeError> {
    let item = IntakeItem {
        input,
        idempotency_key,
    };
    match accept_all(state, tenant, vec![item]).await?.pop() {
        Some(ItemOutcome::Accepted(a) | ItemOutcome::Duplicate(a)) => Ok(a),
        Some(ItemOutcome::KeyReused) => Err(IntakeError::KeyReused),
        Some(ItemOutcome::Refused(r)) => Err(IntakeError::Refused(r)),
        None => Err(StoreError::backend("intake answered nothing").into()),
    }
}

/// Stores and queues events, each on its own (a duplicate, a reused key or a refusal by the
/// tenant's catalog affects its item only), in one unit of work: on AWS, one conditional write per
/// event and one queue request per ten; the catalog comes from the directory (one Query per cache
/// period, not per event). Answers in input order.
pub async fn accept_all(
    state: &AppState,
    tenant: TenantId,
    items: Vec<IntakeItem>,
) -> Result<Vec<ItemOutcome>, IntakeError> {
    let catalog = state.directory.catalog(&tenant).await?;
    let mut refused = Vec::with_capacity(items.len());
    let mut taken = Vec::with_capacity(items.len());
    for item in items {
        match catalog.check(&item.input.event_type, &item.input.data) {
            Ok(()) => {
                refused.push(None);
                taken.push(item);
            }
            Err(refusal) => {
                tracing::info!(tenant = %tenant, event_type = %item.input.event_type, reason = %refusal, "event refused by the catalog");
                refused.push(Some(ItemOutcome::Refused(refusal)));
            }
        }
    }
    let mut outcomes = if taken.is_empty() {
        Vec::new()
    } else {
        accept_planned(state, tenant, taken, None).await?
    }
    .into_iter();
    refused
        .into_iter()
        .map(|r| {
            r.or_else(|| outcomes.next())
                .ok_or_else(|| StoreError::backend("intake answered too few events").into())
        })
        .collect()
}

/// Emits one of Herald's operational events into `tenant`'s stream, keyed by the notice's key
/// (the same change, seen twice, is stored once), planned for every enabled subscription that
/// names it except its subject.
pub async fn emit(state: &AppState, tenant: TenantId, notice: Notice) -> Result<(), WorkerError> {
    let event_type = EventType::operational(notice.kind);
    let body = json!({"type": event_type, "data": notice.data});
    let input = EventInput {
        body_sha256: sha256_hex(serde_json::to_vec(&body).unwrap_or_default()),
        event_type,
        data: notice.data,
        client_id: None,
    };
    let item = IntakeItem {
        input,
        idempotency_key: Some(notice.key),
    };
    let outcome = match accept_planned(state, tenant, vec![item], Some(notice.subject)).await {
        Ok(outcome) => outcome,
        Err(IntakeError::Store(e)) => return Err(e.into()),
        Err(IntakeError::Queue(e)) => return Err(e.into()),
        // Reused keys are answered per item, below, never as an error of the whole; operational
        // events are not checked against a catalog.
        Err(IntakeError::KeyReused | IntakeError::Refused(_)) => return Ok(()),
    };
    if let Some(ItemOutcome::Accepted(a)) = outcome.first() {
        tracing::info!(target: "herald::operator", tenant = %tenant, subscription = %notice.subject, event = %a.id, event_type = %a.event_type, "operational event");
    }
    // A duplicate (or the same key with other figures) was emitted already.
    Ok(())
}

/// Intake's one path: `exclude` is left out of every plan (an operational event's subject).
async fn accept_planned(
    state: &AppState,
    tenant: TenantId,
    items: Vec<IntakeItem>,
    exclude: Option<SubscriptionId>,
) -> Result<Vec<ItemOutcome>, IntakeError> {
    // Whole seconds: the envelope's `timestamp` has that precision, and the intake answer must match.
    let exact = state.clock.now();
    let now = Timestamp::from_second(exact.as_second()).unwrap_or(exact);
    let id_ms = u64::try_from(exact.as_millisecond()).unwrap_or(0);
    let window =
        SignedDuration::try_from(state.settings.idempotency_window).unwrap_or(SignedDuration::MAX);
    // The plan: which subscriptions each event goes to (the core's rule), stored with the event.
    let subscriptions = state.directory.enabled_subscriptions(&tenant).await?;
    let carried = state.queue.carried();
    let message = |event: &Event| OutgoingMessage {
        message: QueueMessage::Event(EventMessage {
            tenant_id: tenant,
            event_id: event.id,
            event: carried.carry(event),
        }),
        delay: Duration::ZERO,
    };
    let events: Vec<(Event, Option<IdempotencyRecord>, String)> = items
        .into_iter()
        .map(|item| {
            let key = item
                .idempotency_key
                .map(|k| format!("key:{k}"))
                .or_else(|| item.input.client_id.map(|id| format!("id:{id}")));
            // A keyed event's id derives from its key, so a store can keep both as one item.
            let id = key
                .as_deref()
                .map_or_else(EventId::new, |k| EventId::keyed(&tenant, k, id_ms));
            let mut event = Event {
                id,
                tenant_id: tenant,
                subscriptions: Vec::new(),
                event_type: item.input.event_type,
                timestamp: now,
                data: item.input.data,
            };
            // The plan reads the event's type and fields (payload filters).
            event.subscriptions = plan(&event, &subscriptions)
                .into_iter()
                .filter(|s| Some(*s) != exclude)
                .collect();
            let idempotency = key.map(|key| IdempotencyRecord {
                tenant_id: tenant,
                key,
                body_sha256: item.input.body_sha256.clone(),
                event_id: event.id,
                created_at: now,
                expires_at: now.checked_add(window).unwrap_or(Timestamp::MAX),
            });
            (event, idempotency, item.input.body_sha256)
        })
        .collect();
    // Small plans skip the fan-out hop: when the first attempts of this request take no more
    // queue requests than its events' fan-out messages would (ten to a request), intake queues
    // them itself. An event nobody subscribed to is stored and answered, and costs no message.
    let planned = events
        .iter()
        .filter(|(e, _, _)| !e.subscriptions.is_empty())
        .count();
    let firsts: usize = events.iter().map(|(e, _, _)| e.subscriptions.len()).sum();
    let direct = firsts <= SEND_BATCH * planned.div_ceil(SEND_BATCH);
    let mut bodies = Vec::with_capacity(events.len());
    let new_events: Vec<NewEvent> = events
        .into_iter()
        .map(|(event, idempotency, body)| {
            bodies.push(body);
            let messages = match (event.subscriptions.is_empty(), direct) {
                (true, _) => Vec::new(),
                (false, true) => first_attempts(state, &event, now),
                (false, false) => vec![message(&event)],
            };
            NewEvent {
                messages,
                event,
                idempotency,
            }
        })
        .collect();
    let plan_sizes: Vec<usize> = new_events
        .iter()
        .map(|e| e.event.subscriptions.len())
        .collect();
    // What the answer needs of each event, not a copy of its payload.
    let answers_if_new: Vec<Accepted> = new_events
        .iter()
        .map(|e| Accepted {
            id: e.event.id,
            event_type: e.event.event_type.clone(),
            timestamp: e.event.timestamp,
        })
        .collect();
    let outcomes = state.writes.insert_events_and_send(new_events).await?;

    let mut answers = Vec::with_capacity(outcomes.len());
    let mut redrive = Vec::new();
    for (((new, body), plan_size), outcome) in answers_if_new
        .into_iter()
        .zip(bodies)
        .zip(plan_sizes)
        .zip(outcomes)
    {
        let answer = match outcome {
            InsertEventOutcome::Inserted => {
                state.metrics.events_accepted(1);
                if direct {
                    Metrics::add(&state.metrics.deliveries_created, plan_size as u64);
                }
                tracing::info!(tenant = %tenant, event = %new.id, event_type = %new.event_type, "event accepted");
                ItemOutcome::Accepted(new)
            }
            InsertEventOutcome::Duplicate(previous) if previous.body_sha256 != body => {
                ItemOutcome::KeyReused
            }
            InsertEventOutcome::Duplicate(previous) => {
                let earlier = state
                    .store
                    .get_event(&tenant, &previous.event_id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                // The first request may have stopped between storing and queueing (its event
                // message or its first attempts): redrive the first attempts themselves, which a
                // write-then-send adapter sends only for the deliveries not stored yet.
                redrive.extend(first_attempts(state, &earlier, now));
                ItemOutcome::Duplicate(Accepted {
                    id: earlier.id,
                    event_type: earlier.event_type,
                    timestamp: earlier.timestamp,
                })
            }
        };
        answers.push(answer);
    }
    if !redrive.is_empty() {
        state.writes.redrive(redrive).await?;
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::Harness;
    use herald_core::ports::{Clock, QueueName};
    use serde_json::json;

    fn input(n: u32) -> EventInput {
        parse_event_input(json!({"type": "document.created", "data": {"n": n}})).unwrap()
    }

    #[tokio::test]
    async fn a_refused_event_stores_queues_and_consumes_nothing() {
        let h = Harness::new([]);
        h.subscribe(&["*"], true).await;
        let schema = json!({"type": "object", "required": ["n"],
            "properties": {"n": {"type": "integer", "minimum": 10}}});
        let typed = herald_core::catalog::TenantEventType::create(
            h.tenant,
            json!({"name": "document.created", "schema": schema}),
            h.clock.now(),
        );
        // A built-in name cannot be registered; a type of the tenant's own can.
        assert!(typed.is_err());
        let typed = herald_core::catalog::TenantEventType::create(
            h.tenant,
            json!({"name": "counter.ticked", "schema": schema}),
            h.clock.now(),
        )
        .unwrap();
        h.state.event_types.create_event_type(&typed).await.unwrap();
        let tick = |n: i64| {
            parse_event_input(json!({"type": "counter.ticked", "data": {"n": n}})).unwrap()
        };
        let key = || Some("k-1".to_owned());
        let refused = accept(&h.state, h.tenant, tick(3), key()).await;
        let Err(IntakeError::Refused(Refusal::SchemaViolation { violations, .. })) = refused else {
            panic!("expected a schema violation, got {refused:?}")
        };
        assert_eq!(violations[0].pointer, "/n");
        assert!(h.take(QueueName::Deliveries).is_empty());
        assert!(h.take(QueueName::Events).is_empty());

        // The key was not consumed: a valid event under it is new.
        let accepted = accept(&h.state, h.tenant, tick(12), key()).await.unwrap();
        assert!(h
            .state
            .store
            .get_event(&h.tenant, &accepted.id)
            .await
            .unwrap()
            .is_some());
        assert_eq!(h.take_deliveries().len(), 1);
    }

    #[test]
    fn herald_s_own_namespace_is_refused() {
        let refused =
            parse_event_input(json!({"type": "herald.subscription.disabled", "data": {}}))
                .unwrap_err();
        assert_eq!(refused.field, "type");
        assert!(refused.message.contains("reserved"));
        assert!(parse_event_input(json!({"type": "heraldry.created", "data": {}})).is_ok());
    }

    #[tokio::test]
    async fn a_key_gets_the_first_answer_within_its_window_and_a_new_event_after() {
        let h = Harness::new([]);
        h.subscribe(&["*"], true).await;
        let key = || Some("k-1".to_owned());
        let first = accept(&h.state, h.tenant, input(1), key()).await.unwrap();
        assert_eq!(h.take_deliveries().len(), 1, "its first attempt queued");

        // Within the window: the same answer, nothing new stored or queued.
        h.clock
            .advance(h.state.settings.idempotency_window - Duration::from_secs(1));
        let again = accept(&h.state, h.tenant, input(1), key()).await.unwrap();
        assert_eq!(again, first);
        assert!(h.take(QueueName::Deliveries).is_empty());
        // Another body under the key is refused.
        assert!(matches!(
            accept(&h.state, h.tenant, input(2), key()).await,
            Err(IntakeError::KeyReused)
        ));

        // When the window has passed, the key makes a new event.
        h.clock.advance(Duration::from_secs(1));
        let later = accept(&h.state, h.tenant, input(2), key()).await.unwrap();
        assert_ne!(later.id, first.id);
        assert_eq!(h.take_deliveries().len(), 1);
    }

    #[tokio::test]
    async fn the_plan_is_stored_and_a_small_one_is_queued_as_first_attempts_carrying_the_event() {
        let h = Harness::new([]);
        let docs = h.subscribe(&["document.*"], true).await;
        h.subscribe(&["document.*"], false).await;
        let wanted = accept(&h.state, h.tenant, input(1), None).await.unwrap();
        let stored = h
            .state
            .store
            .get_event(&h.tenant, &wanted.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.subscriptions, vec![docs.id]);
        // One first attempt takes no more queue requests than a fan-out message: no fan-out hop.
        assert!(h.take(QueueName::Events).is_empty());
        let queued = h.take_deliveries();
        assert_eq!(queued.len(), 1);
        let (m, delay) = &queued[0];
        assert_eq!((m.attempt, *delay), (1, Duration::ZERO));
        assert_eq!(
            m.delivery_id(),
            herald_core::DeliveryId::derive(&stored.id, &docs.id)
        );
        assert_eq!(m.event.as_ref(), Some(&stored), "a small event rides along");

        let unwanted = parse_event_input(json!({"type": "comment.created", "data": {}})).unwrap();
        let answer = accept(&h.state, h.tenant, unwanted, None).await.unwrap();
        assert!(h
            .state
            .store
            .get_event(&h.tenant, &answer.id)
            .await
            .unwrap()
            .is_some());
        assert!(h.take(QueueName::Events).is_empty(), "nobody to deliver to");
        assert!(h.take(QueueName::Deliveries).is_empty());
    }

    #[tokio::test]
    async fn an_event_the_filter_refuses_is_stored_unplanned_and_queues_nothing() {
        // A documentation platform publishes for every space; the team takes the Handbook's.
        let h = Harness::new([]);
        let mut handbook = herald_contract::fixtures::subscription(h.tenant, &["document.*"], true);
        handbook.filter = Some(
            herald_core::Filter::parse(&json!({"path": "data.space", "eq": "Handbook"})).unwrap(),
        );
        h.state.store.create_subscription(&handbook).await.unwrap();
        let published = |space: &str| {
            parse_event_input(json!({"type": "document.published", "data": {"space": space}}))
                .unwrap()
        };

        let elsewhere = accept(&h.state, h.tenant, published("Engineering"), None)
            .await
            .unwrap();
        let stored = h.state.store.get_event(&h.tenant, &elsewhere.id).await;
        assert_eq!(stored.unwrap().unwrap().subscriptions, vec![]);
        assert!(h.take(QueueName::Events).is_empty(), "no fan-out message");
        assert!(h.take(QueueName::Deliveries).is_empty(), "no first attempt");

        accept(&h.state, h.tenant, published("Handbook"), None)
            .await
            .unwrap();
        let queued = h.take_deliveries();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].0.delivery.subscription_id, handbook.id);
    }

    #[tokio::test]
    async fn first_attempts_that_would_cost_more_requests_go_through_fan_out() {
        let h = Harness::new([]);
        for _ in 0..11 {
            h.subscribe(&["*"], true).await;
        }
        // Eleven first attempts take two requests; one fan-out message takes one.
        accept(&h.state, h.tenant, input(1), None).await.unwrap();
        assert_eq!(h.take(QueueName::Events).len(), 1);
        assert!(h.take(QueueName::Deliveries).is_empty());
        // A batch of ten events planned for eleven each: 110 first attempts against ten messages.
        let items = (0..10)
            .map(|n| IntakeItem {
                input: input(n),
                idempotency_key: None,
            })
            .collect();
        accept_all(&h.state, h.tenant, items).await.unwrap();
        assert_eq!(h.take(QueueName::Events).len(), 10);
        assert!(h.take(QueueName::Deliveries).is_empty());
    }

    #[test]
    fn parses_a_valid_body_and_hashes_it_canonically() {
        let a = parse_event_input(json!({"type": "document.created", "data": {"b": 1, "a": 2}}))
            .unwrap();
        let b: Value =
            serde_json::from_str(r#"{ "data": {"a":2,"b":1}, "type":"document.created" }"#)
                .unwrap();
        let b = parse_event_input(b).unwrap();
        assert_eq!(a.body_sha256, b.body_sha256);
        assert_eq!(a.event_type.as_str(), "document.created");
    }

    #[test]
    fn refuses_bad_bodies_with_the_field() {
        let cases = [
            (json!([]), "body"),
            (json!({"data": {}}), "type"),
            (json!({"type": "Bad Type", "data": {}}), "type"),
            (json!({"type": "a.b"}), "data"),
            (json!({"type": "a.b", "data": 3}), "data"),
            (json!({"type": "a.b", "data": {}, "id": 5}), "id"),
            (json!({"type": "a.b", "data": {}, "extra": 1}), "body"),
        ];
        for (body, field) in cases {
            assert_eq!(
                parse_event_input(body.clone()).unwrap_err().field,
                field,
                "{body}"
            );
        }
    }
}
