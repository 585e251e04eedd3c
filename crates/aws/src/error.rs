//! How SDK failures become port errors.
//!
//! The SDK's own `Display` of an `SdkError` is terse ("service error"), so a failure is wrapped in
//! [`AwsError`], which names the operation and carries the full error chain as text for logs while
//! keeping the SDK error as its `source` for code that wants to inspect it.

use std::fmt;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use herald_core::ports::{QueueError, StoreError};

/// An AWS call that failed (throttling after the SDK's retries, network, a service error).
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {detail}")]
pub struct AwsError {
    /// The API operation, e.g. `DynamoDB.PutItem`.
    pub operation: &'static str,
    /// The error and its causes, flattened for logs.
    pub detail: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl AwsError {
    pub(crate) fn new<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self {
            operation,
            detail: DisplayErrorContext(&err).to_string(),
            source: Box::new(err),
        }
    }
}

/// The service error code (`ConditionalCheckFailedException`, `ReceiptHandleIsInvalid`, …) of an
/// SDK error, if the service answered at all.
pub(crate) fn service_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code())
}

pub(crate) fn store_backend<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    StoreError::backend(AwsError::new(operation, err))
}

pub(crate) fn queue_backend<E, R>(operation: &'static str, err: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    QueueError::backend(AwsError::new(operation, err))
}
