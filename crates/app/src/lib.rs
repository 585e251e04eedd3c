//! Herald's application layer: the HTTP API and intake routers, the fan-out and delivery services,
//! the workers that drive them from a queue, and the outbound HTTP client.
//!
//! Everything here talks to the outside only through the core's ports, so the same code runs in the
//! Lambda functions (routers under `lambda_http`, services under SQS triggers) and in `herald dev`.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod auth;
pub mod console;
pub mod directory;
pub mod loopback;
pub mod metrics;
pub mod sender;
pub mod service;
pub mod settings;
pub mod state;
pub mod stats;
pub mod worker;

pub use settings::Settings;
pub use state::AppState;
