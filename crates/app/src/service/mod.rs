//! The application services: intake, fan-out, delivery (attempts, retries, "save and test") and
//! recovery. They use only the ports in `AppState`, and are what the Lambda handlers and the
//! `herald dev` workers call.

pub mod delivery;
pub mod fanout;
pub mod intake;
pub mod lifecycle;
pub mod outbound;
pub mod recover;
pub mod test_send;
#[cfg(test)]
pub(crate) mod testing;

/// A worker's failure on one message: the message must not be acknowledged (it comes back).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] herald_core::ports::StoreError),
    #[error(transparent)]
    Queue(#[from] herald_core::ports::QueueError),
    /// A step that several messages of a batch shared failed (fan-out reads a tenant's
    /// subscriptions and writes the deliveries once per batch): each of them reports it.
    #[error(transparent)]
    Shared(std::sync::Arc<WorkerError>),
}
