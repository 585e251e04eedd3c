//! The application's tunables, in one typed struct that binaries fill from their configuration.

use std::time::Duration;

use herald_core::health::LifecyclePolicy;
use herald_core::retry::RetryPolicy;
use herald_core::AddressPolicy;

/// Limits and policies the services and routers apply.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which callback addresses are allowed (production: https + public only).
    pub address_policy: AddressPolicy,
    pub retry: RetryPolicy,
    /// Largest accepted body of a management request (subscriptions, recover, …).
    pub max_api_body_bytes: usize,
    /// Largest accepted event intake body (the event payload is stored once; messages carry ids).
    pub max_event_bytes: usize,
    /// Largest accepted batch intake body (under Lambda's 6 MB request limit).
    pub max_batch_bytes: usize,
    /// How long a worker may hold a received message before it is handed out again.
    pub visibility_timeout: Duration,
    /// Subscriptions a tenant may have (fan-out reads them all).
    pub max_subscriptions_per_tenant: usize,
    /// How long intake remembers an idempotency key (or a client event id): a reuse within it gets
    /// the first answer (or 409 with another body); after it, the key makes a new event.
    pub idempotency_window: Duration,
    /// How long the hot-path reads (API keys, a tenant's enabled subscriptions, a subscription for
    /// delivery) may be answered from this process's memory ([`crate::directory`]): a change made
    /// by another process (a disabled or deleted subscription, a revoked key) is seen here within
    /// it. Zero keeps nothing: every read goes to the store. The Lambda functions use 5 s
    /// (`HERALD_CACHE_TTL_MS`); the default here is zero, read-your-writes everywhere.
    pub cache_ttl: Duration,
    /// The failure lifecycle: breaker, warnings, auto-disable.
    pub lifecycle: LifecyclePolicy,
    /// How long delivery statistics may wait in this process's buffer while deliveries keep
    /// coming ([`crate::stats`]): on DynamoDB every flush is one write per subscription and hour,
    /// so a longer wait spreads it over more deliveries. A pause in the flow flushes at once.
    pub stats_flush_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            address_policy: AddressPolicy::PRODUCTION,
            retry: RetryPolicy::default(),
            max_api_body_bytes: 64 * 1024,
            max_event_bytes: 256 * 1024,
            max_batch_bytes: 5 * 1024 * 1024,
            visibility_timeout: Duration::from_secs(90),
            max_subscriptions_per_tenant: 1000,
            idempotency_window: Duration::from_secs(24 * 3600),
            cache_ttl: Duration::ZERO,
            lifecycle: LifecyclePolicy::default(),
            stats_flush_every: Duration::from_secs(1),
        }
    }
}
