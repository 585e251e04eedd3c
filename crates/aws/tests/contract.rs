//! The shared port contract (`herald-contract`) on the DynamoDB and SQS adapters, against the moto
//! emulator that `common` starts (see `scripts/test.sh` for installing it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fresh_backend, fresh_event_types, fresh_queue, fresh_rate_limits, fresh_stats};

herald_contract::store_contract_tests!(fresh_backend);
// Not `store_concurrency_contract_tests!`: moto's TransactWriteItems is not isolated (it rolls back
// by restoring a snapshot of the whole table), so concurrent idempotent inserts race inside the
// emulator. DynamoDB's transactions are serializable; the adapter retries `TransactionConflict`
// and maps a failed idempotency condition to `Duplicate`, which the sequential suite checks.
herald_contract::queue_contract_tests!(fresh_queue);
herald_contract::rate_limits_contract_tests!(fresh_rate_limits);
// Not `rate_limits_concurrency_contract_tests!`: moto's conditional writes are not atomic under
// concurrent requests (DynamoDB's are).
herald_contract::stats_contract_tests!(fresh_stats);
// Not `stats_concurrency_contract_tests!`: moto can lose one of several concurrent `ADD`s to an
// item (DynamoDB applies them atomically).
herald_contract::event_types_contract_tests!(fresh_event_types);
