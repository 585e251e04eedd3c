//! Herald's system integration tests: one binary (one link, shared helpers), real HTTP end to end.
//!
//! Each test starts its own Herald (in process on port 0 and a temporary data folder, or the real
//! `herald` binary for crash tests) and its own receivers, so tests run in parallel and share nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod api_validation;
mod aws;
mod batch;
mod catalog;
mod crash;
mod delivery;
mod events;
mod filters;
mod flow_control;
mod idempotency;
mod lifecycle;
mod logs;
mod replay;
mod retention;
mod save_and_test;
mod stats;
mod subscriptions;
mod templates;
