//! Herald's domain core: what a subscription, an event and a delivery are, a subscription's rules
//! (input parsing, patches, secret rotation), how events are matched, how callback URLs and
//! addresses are checked, how payloads are rendered and signed, when to retry, and the ports through
//! which the application reaches the outside world.
//!
//! This crate must stay free of AWS crates, HTTP servers and async runtimes: it is shared by the
//! Lambda functions, `herald dev` and every adapter.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod catalog;
pub mod delivery;
pub mod digest;
pub mod error_chain;
pub mod filter;
pub mod health;
pub mod ids;
pub mod input;
pub mod model;
pub mod operational;
pub mod outcome;
pub mod pattern;
pub mod ports;
pub mod rate;
pub mod render;
pub mod retention;
pub mod retry;
pub mod signing;
pub mod stats;
pub mod subscription;
pub mod target;
pub mod time;

pub use error_chain::ErrorChain;
pub use filter::{Filter, FilterError};
pub use ids::*;
pub use input::FieldError;
pub use model::*;
pub use pattern::{
    BuiltinEventType, EventPattern, EventType, Operational, PatternError, BUILTIN_EVENT_TYPES,
};
pub use subscription::{NewSubscription, SubscriptionPatch, TrelloCredential};
pub use target::{AddressPolicy, TargetUrl, TargetUrlError};

/// Herald's version, for the `user-agent` header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
