//! The shared state every router and service receives: the ports and the settings.

use std::sync::Arc;

use herald_core::ports::{Clock, Queue, Sender, Store};

use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::settings::Settings;

/// Cheap to clone: everything is behind `Arc`.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
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
        queue: Arc<dyn Queue>,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            queue,
            sender,
            clock,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            rate_limiter: Arc::new(RateLimiter::default()),
        }
    }
}
