//! The API's error type and its wire shape: `{"error": {"code", "message", "field"?, "line"?,
//! "violations"?}}`, a typed [`ErrorBody`] that the OpenAPI document describes.
//!
//! A 500 is logged with its cause chain and answered with a fixed message: internals never reach
//! the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::catalog::{Refusal, Violation};
use herald_core::ports::{QueueError, StoreError};
use herald_core::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// Every error answer: `{"error": {…}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `validation_failed`, `invalid_json`, `invalid_query`,
    /// `invalid_cursor`, `invalid_header`, `unauthorized`, `not_found`, `method_not_allowed`,
    /// `conflict`, `limit_reached`, `payload_too_large`, `unsupported_media_type`,
    /// `invalid_template`, `schema_violation`, `unknown_event_type`, `builtin_event_type`,
    /// `internal_error`.
    #[schema(example = "validation_failed")]
    pub code: &'static str,
    /// For people: what to change.
    pub message: String,
    /// The field (or query parameter, or header) at fault, dotted for nested fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "url")]
    pub field: Option<String>,
    /// For `invalid_template`: the template's line (1-based) the problem is on, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 3, minimum = 1)]
    pub line: Option<usize>,
    /// With `schema_violation`: where `data` breaks its type's schema, and why (at most 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<ViolationView>>,
}

/// One place where `data` breaks its type's JSON Schema.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViolationView {
    /// A JSON pointer into `data` (`""` is `data` itself).
    #[schema(example = "/space/name")]
    pub pointer: String,
    #[schema(example = "5 is not of type \"string\"")]
    pub reason: String,
}

impl From<Violation> for ViolationView {
    fn from(v: Violation) -> Self {
        Self {
            pointer: v.pointer,
            reason: v.reason,
        }
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub line: Option<usize>,
    pub violations: Option<Vec<Violation>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            line: None,
            violations: None,
        }
    }

    /// The catalog refused an event: 422 with the violations, or naming the unknown type.
    pub fn refused(refusal: Refusal) -> Self {
        let message = refusal.to_string();
        match refusal {
            Refusal::SchemaViolation { violations, .. } => {
                let mut err = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "schema_violation",
                    message,
                )
                .with_field("data");
                err.violations = Some(violations);
                err
            }
            Refusal::UnknownType(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_event_type",
                message,
            )
            .with_field("type"),
        }
    }

    /// The body of this error (for answers that carry several, as a batch does).
    pub fn detail(self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message,
            field: self.field,
            line: self.line,
            violations: self
                .violations
                .map(|v| v.into_iter().map(ViolationView::from).collect()),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with_field(field)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// Logs the cause and answers a bare 500.
    pub fn internal(err: impl std::error::Error + 'static) -> Self {
        tracing::error!(error = %herald_core::ErrorChain(&err), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; try again",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::BadCursor => {
                Self::bad_request("invalid_cursor", "the cursor is not valid").with_field("cursor")
            }
            StoreError::NotFound => Self::not_found("record"),
            other => Self::internal(other),
        }
    }
}

/// A bad field of the input: 422 naming the field (and, for a template, its line).
impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        let mut api = Self::new(StatusCode::UNPROCESSABLE_ENTITY, err.code, err.message)
            .with_field(err.field);
        api.line = err.line;
        api
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        Self::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = ErrorBody {
            error: self.detail(),
        };
        (status, Json(body)).into_response()
    }
}

impl From<crate::service::WorkerError> for ApiError {
    fn from(err: crate::service::WorkerError) -> Self {
        match err {
            crate::service::WorkerError::Store(e) => e.into(),
            other => Self::internal(other),
        }
    }
}
