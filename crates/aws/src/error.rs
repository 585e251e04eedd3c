//! How SDK failures become port errors.
//!
//! An `SdkError`'s own `Display` is terse ("service error") and its source chain says the service's
//! message two or three times over, with the raw HTTP response in `Debug`. [`AwsError`] keeps one
//! line: the operation, the service's code and message and the request id (or, for a failure before
//! any answer, its causes once each). That line is the whole error: it has no `source`, so a log
//! that walks the chain prints it once.

use std::fmt;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::RequestId;
use herald_core::ports::{QueueError, StoreError};
use herald_core::ErrorChain;

/// An AWS call that failed (throttling after the SDK's retries, network, a service error).
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {detail}")]
pub struct AwsError {
    /// The API operation, e.g. `DynamoDB.PutItem`.
    pub operation: &'static str,
    /// The service's error code (`ResourceNotFoundException`, …), when the service answered.
    pub code: Option<String>,
    /// What went wrong, once: `code: message (request id …)`, or the causes of a failure that got
    /// no answer (timeout, connection refused).
    pub detail: String,
}

impl AwsError {
    pub(crate) fn new<E, R>(operation: &'static str, err: &SdkError<E, R>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let code = service_code(err).map(str::to_owned);
        let detail = match err.as_service_error() {
            Some(service) => {
                let mut text = match (service.code(), service.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_owned(),
                    (None, _) => ErrorChain(err).to_string(),
                };
                if let Some(id) = service.meta().request_id() {
                    text.push_str(&format!(" (request id {id})"));
                }
                text
            }
            None => ErrorChain(err).to_string(),
        };
        Self {
            operation,
            code,
            detail,
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
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    StoreError::backend(AwsError::new(operation, &err))
}

pub(crate) fn queue_backend<E, R>(operation: &'static str, err: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    QueueError::backend(AwsError::new(operation, &err))
}
