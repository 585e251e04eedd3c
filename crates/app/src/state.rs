//! The shared state every router and service receives: the ports and the settings.

use std::sync::Arc;

use herald_core::ports::{Clock, Outbox, Queue, Sender, Store};

use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::settings::Settings;

/// Cheap to clone: everything is behind `Arc`.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    /// Set when store and queue share one database: writes and their messages commit together.
    pub outbox: Option<Arc<dyn Outbox>>,
    pub sender: Arc<dyn Sender>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub rate_limiter: Arc<RateLimiter>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            queue,
            outbox: None,
            sender,
            clock,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            rate_limiter: Arc::new(RateLimiter::default()),
        }
    }

    /// Uses `outbox` for the writes that queue messages (the embedded adapters offer one).
    pub fn with_outbox(mut self, outbox: Arc<dyn Outbox>) -> Self {
        self.outbox = Some(outbox);
        self
    }
}
