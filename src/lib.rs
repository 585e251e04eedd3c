//! The `herald` command: `herald dev` (everything in one process, on the embedded store or on
//! DynamoDB and SQS), `herald verify` (check a delivery's signature), and the operator commands
//! `herald tenants`, `herald keys` and `herald aws init`. The benchmark is a separate tool,
//! `herald-bench` (tools/bench), that runs this binary.
//!
//! The wiring lives here, in a library, so the integration tests start exactly what `herald dev`
//! starts, on port 0 and a temporary data folder.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod dev;
pub mod ops;
pub mod verify;
