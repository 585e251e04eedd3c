//! The contract of Herald's ports, as one test suite that every adapter runs: the embedded store
//! and queue, and the DynamoDB/SQS adapters (on an emulator). If both pass, the application sees
//! the same behaviour on either.
//!
//! Each property is a plain `async fn` taking the adapters under test (a [`Backend`]: the store
//! ports, the unit of work and the queue it sends to; or a [`Queue`](herald_core::ports::Queue));
//! it panics on a violation. The macros [`store_contract_tests!`] and [`queue_contract_tests!`]
//! turn every property into its own `#[tokio::test]`, each on a fresh instance from a factory:
//!
//! ```ignore
//! async fn fresh_backend() -> herald_contract::Fixture<herald_contract::Backend> {
//!     herald_contract::Fixture::new(std::sync::Arc::new(make_a_backend().await))
//! }
//! herald_contract::store_contract_tests!(fresh_backend);
//! ```
//!
//! [`memory`] holds in-memory adapters of every port, which pass this suite too, for the services'
//! unit tests.
//!
//! [`store_concurrency_contract_tests!`] adds the properties that need isolated transactions
//! under concurrent writers.
//!
//! [`rate_limits_contract_tests!`], [`stats_contract_tests!`] and [`event_types_contract_tests!`]
//! cover the smaller ports: the send slots of rate-limited subscriptions, the delivery statistics
//! and the tenants' event types.
//!
//! The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
//!
//! Timing: queues with whole-second granularity (SQS) must pass, so delays and visibility timeouts
//! are 1–2 s. Lower bounds (not visible before its time) are asserted strictly, upper bounds only
//! loosely (generous deadlines), so a slow machine does not fail a correct adapter.
#![forbid(unsafe_code)]
// This is test code: a panic is how a property reports a violation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use herald_core::model::{Attempt, Delivery, Event, IdempotencyRecord};
use herald_core::ports::{InsertEventOutcome, Queue, Recorded, Store, StoreError, UnitOfWork};

pub mod compose;
pub mod event_types;
pub mod events;
pub mod filters;
pub mod fixtures;
pub mod memory;
pub mod moto;
pub mod queue;
pub mod rate;
pub mod stats;
pub mod store;
pub mod unit_of_work;

/// The store side of an adapter pair: its store ports, its unit of work, and the queue that unit
/// of work sends to. Derefs to the store, and offers the unit-of-work writes without messages.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub writes: Arc<dyn UnitOfWork>,
    pub queue: Arc<dyn Queue>,
}

impl std::ops::Deref for Backend {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

impl Backend {
    pub async fn insert_event(
        &self,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<InsertEventOutcome, StoreError> {
        self.writes
            .insert_event_and_send(event, idempotency, Vec::new())
            .await
    }

    pub async fn record_attempt(
        &self,
        attempt: &Attempt,
        delivery: &Delivery,
    ) -> Result<Recorded, StoreError> {
        self.writes
            .record_attempt_and_send(attempt, delivery, Vec::new())
            .await
    }

    pub async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.writes
            .update_delivery_and_send(delivery, Vec::new())
            .await
    }
}

/// An adapter under test, and whatever must live as long as it (a temporary directory, say).
pub struct Fixture<T: ?Sized> {
    subject: Arc<T>,
    _guard: Option<Box<dyn Send + Sync>>,
}

impl<T: ?Sized> Fixture<T> {
    pub fn new(subject: Arc<T>) -> Self {
        Self {
            subject,
            _guard: None,
        }
    }

    /// Keeps `guard` alive until the fixture is dropped, after the test.
    pub fn with_guard(subject: Arc<T>, guard: impl Send + Sync + 'static) -> Self {
        Self {
            subject,
            _guard: Some(Box::new(guard)),
        }
    }

    pub fn subject(&self) -> Arc<T> {
        Arc::clone(&self.subject)
    }
}

/// One `#[tokio::test]` per store and unit-of-work property, each on a fresh backend from `$make`:
/// a function (or closure) of no arguments returning a future of [`Fixture<Backend>`](Fixture).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::__contract_tests!(
            store,
            $make,
            [
                tenants_and_api_keys,
                tenants_are_listed_newest_first,
                api_keys_are_listed_newest_first_per_tenant,
                revoked_keys_are_found_revoked_and_only_by_their_tenant,
                subscription_crud_is_conditional,
                subscription_health_is_kept_apart_and_changed_on_condition,
                tenants_never_see_each_other,
                insert_event_is_idempotent_and_atomic,
                subscriptions_page_newest_first_without_gaps,
                subscription_filters_and_enabled_list,
                deliveries_are_stored_from_their_first_attempt_and_paged,
                attempts_are_recorded_with_the_delivery_and_listed_oldest_first,
                subscriptions_are_counted_up_to_a_bound,
            ]
        );
        $crate::__contract_tests!(events, $make, [events_are_listed_newest_first_per_tenant]);
        $crate::__contract_tests!(
            filters,
            $make,
            [
                a_subscription_keeps_its_filter,
                a_subscription_keeps_its_template
            ]
        );
        $crate::__contract_tests!(
            unit_of_work,
            $make,
            [
                records_and_their_messages_go_together,
                a_superseded_attempt_is_logged_and_changes_nothing_else,
                the_idempotency_window_is_honoured,
                a_batch_of_events_answers_each_in_order,
            ]
        );
    };
}

/// The store properties under concurrent writers, one `#[tokio::test]` each. They need a back end
/// whose transactions are isolated: the embedded store and DynamoDB are, moto is not (its
/// TransactWriteItems checks and writes item by item and rolls back by restoring a snapshot of the
/// table, so concurrent transactions on one table overwrite each other).
#[macro_export]
macro_rules! store_concurrency_contract_tests {
    ($make:expr) => {
        $crate::__contract_tests!(
            store,
            $make,
            [
                concurrent_inserts_with_one_key_store_one_event,
                concurrent_failures_all_count,
            ]
        );
    };
}

/// One `#[tokio::test]` per queue property, each on fresh queues from `$make`: a function (or
/// closure) of no arguments returning a future of [`Fixture<dyn Queue>`](Fixture).
#[macro_export]
macro_rules! queue_contract_tests {
    ($make:expr) => {
        $crate::__contract_tests!(
            queue,
            $make,
            [
                send_receive_ack,
                ack_many_removes_each_message_it_names,
                delay_is_honoured,
                visibility_timeout_brings_a_message_back,
                release_makes_a_message_visible_again,
                a_batch_arrives_exactly_once_on_the_right_queues,
                a_waiting_receive_gets_a_message_sent_during_its_wait,
                bad_receipts_are_refused,
            ]
        );
    };
}

/// One `#[tokio::test]` per send-slot property ([`herald_core::rate::RateLimits`]), each on a
/// fresh instance from `$make`, returning a future of [`Fixture<dyn RateLimits>`](Fixture).
#[macro_export]
macro_rules! rate_limits_contract_tests {
    ($make:expr) => {
        $crate::__contract_tests!(
            rate,
            $make,
            [slots_follow_the_rate_and_start_afresh_after_a_pause]
        );
    };
}

/// The send-slot properties under concurrent workers. They need a back end whose conditional
/// writes are atomic: DynamoDB's are, moto's are not (two concurrent conditional UpdateItems can
/// both pass their condition), so the AWS adapter runs only the sequential ones on the emulator.
#[macro_export]
macro_rules! rate_limits_concurrency_contract_tests {
    ($make:expr) => {
        $crate::__contract_tests!(
            rate,
            $make,
            [concurrent_reservations_get_distinct_consecutive_slots]
        );
    };
}

/// One `#[tokio::test]` per delivery-statistics property ([`herald_core::stats::StatsStore`]),
/// each on a fresh instance from `$make`, returning a future of [`Fixture<dyn StatsStore>`](Fixture).
#[macro_export]
macro_rules! stats_contract_tests {
    ($make:expr) => {
        $crate::__contract_tests!(
            stats,
            $make,
            [
                deltas_add_up_per_hour_and_read_oldest_first,
                buckets_are_kept_per_tenant_and_subscription,
            ]
        );
    };
}

/// The statistics under concurrent writers. DynamoDB applies concurrent `ADD`s to one item
/// atomically; moto does not (under load one of sixteen was lost), so the AWS adapter runs only
/// the sequential properties on the emulator.
#[macro_export]
macro_rules! stats_concurrency_contract_tests {
    ($make:expr) => {
        $crate::__contract_tests!(stats, $make, [concurrent_adds_all_count]);
    };
}

/// One `#[tokio::test]` per event-type property ([`herald_core::ports::EventTypeStore`]), each on
/// a fresh instance from `$make`, returning a future of [`Fixture<dyn EventTypeStore>`](Fixture).
#[macro_export]
macro_rules! event_types_contract_tests {
    ($make:expr) => {
        $crate::__contract_tests!(
            event_types,
            $make,
            [
                types_are_created_once_read_replaced_and_deleted,
                the_catalog_read_has_settings_and_every_type_by_name_for_one_tenant,
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_tests {
    ($module:ident, $make:expr, [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = ($make)().await;
                $crate::$module::$case(fixture.subject()).await;
                drop(fixture);
            }
        )*
    };
}
