//! The `herald` command: `herald dev` (everything in one process on the embedded store),
//! `herald verify` (check a delivery's signature) and `herald bench` (the benchmark).
//!
//! The wiring lives here, in a library, so the integration tests start exactly what `herald dev`
//! starts, on port 0 and a temporary data folder.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod bench;
pub mod dev;
pub mod verify;
