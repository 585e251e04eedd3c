//! Request extractors that answer in the API's error shape: JSON bodies (415 on the wrong content
//! type, 413 when too large, 400 when malformed), ids in paths (404 when not an id), page queries.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::state::AppState;

/// A JSON object body, read up to the API's size limit.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

/// Reads and parses a JSON body with the given byte limit.
pub async fn read_json(req: Request, limit: usize) -> Result<(Value, Bytes), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {} KiB", limit / 1024),
            )
        })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    Ok((value, bytes))
}

/// An optional JSON object body: `None` when the body is empty (whatever its content type) or
/// the JSON `null` (as the OpenAPI document describes an optional body).
#[derive(Debug, Clone)]
pub struct OptionalJsonObject(pub Option<Map<String, Value>>);

impl FromRequest<AppState> for OptionalJsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let limit = state.settings.max_api_body_bytes;
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {} KiB", limit / 1024),
            )
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let (value, _) = read_json(req, limit).await?;
        match value {
            Value::Null => Ok(Self(None)),
            Value::Object(map) => Ok(Self(Some(map))),
            _ => Err(ApiError::validation(
                "body",
                "the body must be a JSON object",
            )),
        }
    }
}

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (value, _) = read_json(req, state.settings.max_api_body_bytes).await?;
        match value {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(ApiError::validation(
                "body",
                "the body must be a JSON object",
            )),
        }
    }
}

/// A path id of type `T`: anything that is not a well-formed id of that kind is a 404.
pub fn parse_path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what))
}

/// How the OpenAPI document describes [`PageQuery`]'s parameters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: u32,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: String,
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Clone)]
pub struct PageQuery {
    pub limit: usize,
    pub cursor: Option<String>,
    pub rest: std::collections::HashMap<String, String>,
}

pub const DEFAULT_PAGE_LIMIT: usize = 50;
pub const MAX_PAGE_LIMIT: usize = 100;

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let mut rest: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let limit = match rest.remove("limit") {
            None => DEFAULT_PAGE_LIMIT,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_query",
                        format!("`limit` must be a number from 1 to {MAX_PAGE_LIMIT}"),
                    )
                    .with_field("limit"))
                }
            },
        };
        let cursor = rest.remove("cursor").filter(|c| !c.is_empty());
        Ok(Self {
            limit,
            cursor,
            rest,
        })
    }
}

impl PageQuery {
    pub fn page(&self) -> herald_core::ports::PageRequest {
        herald_core::ports::PageRequest {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}
