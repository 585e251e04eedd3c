//! The shared state every router and service receives: the ports and the settings.

use std::sync::Arc;

use herald_core::ports::{Clock, Queue, Sender, Store, UnitOfWork};

use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::settings::Settings;

/// Cheap to clone: everything is behind `Arc`.
#[derive(Clone)]
pub struct AppState {
    /// Reads, and the writes that queue nothing (tenants, keys, subscriptions).
    pub store: Arc<dyn Store>,
    /// The one path for writes that queue messages (events, deliveries, attempts).
    pub writes: Arc<dyn UnitOfWork>,
    /// What the workers receive from.
    pub queue: Arc<dyn Queue>,
    pub sender: Arc<dyn Sender>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub rate_limiter: Arc<RateLimiter>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        writes: Arc<dyn UnitOfWork>,
        queue: Arc<dyn Queue>,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            writes,
            queue,
            sender,
            clock,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            rate_limiter: Arc::new(RateLimiter::default()),
        }
    }
}
