//! `/v1/event-types` (the catalog: built-in, operational and the tenant's own types, each with an
//! optional JSON Schema for `data` and an example) and `/v1/settings` (the tenant's catalog
//! settings). Built-in and operational types are read-only.
//!
//! Every write here drops this process's cached copy of the tenant's catalog, so intake here
//! applies it at once; other processes (other Lambda instances) apply it within the directory's
//! TTL (`HERALD_CACHE_TTL_MS`).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use herald_core::catalog::{
    is_builtin_name, CatalogSettings, EventTypeInputError, TenantEventType, UnknownEventTypes,
    MAX_EXAMPLE_BYTES, MAX_SCHEMA_BYTES, MAX_TENANT_EVENT_TYPES,
};
use herald_core::ports::StoreError;
use herald_core::{EventType, Operational, BUILTIN_EVENT_TYPES};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{read_json, JsonObject};
use crate::auth::Caller;
use crate::state::AppState;

/// Largest body of a create or a patch: a schema and an example at their limits, and the rest.
const MAX_BODY_BYTES: usize = MAX_SCHEMA_BYTES + MAX_EXAMPLE_BYTES + 8 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
        .routes(routes!(read_settings, update_settings))
}

/// The event catalog, in one page.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub data: Vec<EventTypeView>,
    /// Always null: the catalog is one page.
    pub next_cursor: Option<String>,
}

/// One event type of the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    #[schema(example = "document.translated")]
    pub name: String,
    pub description: String,
    /// Herald's catalog (read-only), or the tenant's own (`false`).
    pub builtin: bool,
    /// Herald's own events (`herald.*`): a subscription names them (or `herald.*`) to get them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operational: Option<bool>,
    /// An example `data` of this type, as the source application sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
    /// The JSON Schema (draft 2020-12) intake checks `data` against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Informational: events of a deprecated type are still accepted.
    pub deprecated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

impl From<TenantEventType> for EventTypeView {
    fn from(t: TenantEventType) -> Self {
        Self {
            name: t.name.as_str().to_owned(),
            description: t.description,
            builtin: false,
            operational: None,
            example: t.example,
            schema: t.schema,
            deprecated: t.deprecated,
            created_at: Some(t.created_at),
            updated_at: Some(t.updated_at),
        }
    }
}

/// Herald's own types: the built-in catalog, then the operational events.
fn builtin_views() -> impl Iterator<Item = EventTypeView> {
    let builtin = BUILTIN_EVENT_TYPES.iter().map(|b| EventTypeView {
        name: b.name.to_owned(),
        description: b.description.to_owned(),
        builtin: true,
        operational: None,
        example: Some(b.example()),
        schema: None,
        deprecated: false,
        created_at: None,
        updated_at: None,
    });
    let operational = Operational::ALL.iter().map(|kind| EventTypeView {
        name: kind.as_str().to_owned(),
        description: kind.description().to_owned(),
        builtin: true,
        operational: Some(true),
        example: None,
        schema: None,
        deprecated: false,
        created_at: None,
        updated_at: None,
    });
    builtin.chain(operational)
}

/// A new event type of the tenant's own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "document.translated",
    "description": "A document was translated into another language.",
    "schema": {
        "type": "object",
        "required": ["id", "title", "language", "space"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "language": {"type": "string", "pattern": "^[a-z]{2}$"},
            "space": {
                "type": "object",
                "required": ["name"],
                "properties": {"key": {"type": "string"}, "name": {"type": "string"}}
            },
            "url": {"type": "string", "format": "uri"}
        }
    },
    "example": {
        "id": "doc_1042",
        "title": "Premiers pas",
        "language": "fr",
        "space": {"key": "HB", "name": "Handbook"},
        "url": "https://docs.example.com/handbook/fr/getting-started"
    }
}))]
pub struct EventTypeCreate {
    /// Dotted lowercase (`document.translated`), outside the `herald.` namespace, not a built-in
    /// name, no wildcard.
    #[schema(max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$")]
    pub name: String,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// A JSON Schema (draft 2020-12) for `data`, at most 64 KiB; `$ref`s stay inside it.
    pub schema: Option<Value>,
    /// An example `data` (a JSON object, at most 64 KiB), valid against `schema` when both are
    /// given.
    #[schema(value_type = Option<Object>)]
    pub example: Option<Value>,
    #[serde(default)]
    pub deprecated: bool,
}

/// A partial update: absent fields stay; `schema: null` and `example: null` remove them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "A document was translated (machine or human).",
    "deprecated": false}))]
pub struct EventTypeUpdate {
    #[schema(max_length = 500)]
    pub description: Option<String>,
    pub schema: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub example: Option<Value>,
    pub deprecated: Option<bool>,
}

/// A partial update of the settings: absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"unknown_event_types": "reject"}))]
pub struct SettingsUpdate {
    #[schema(schema_with = unknown_schema)]
    pub unknown_event_types: Option<String>,
}

/// The tenant's catalog settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"unknown_event_types": "reject"}))]
pub struct SettingsView {
    /// `accept` (the default): events of types in no catalog are taken; `reject`: they are
    /// refused with 422 `unknown_event_type`.
    #[schema(schema_with = unknown_schema)]
    pub unknown_event_types: String,
}

fn unknown_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["accept", "reject"]))
        .build()
}

impl From<CatalogSettings> for SettingsView {
    fn from(s: CatalogSettings) -> Self {
        let value = match s.unknown_event_types {
            UnknownEventTypes::Accept => "accept",
            UnknownEventTypes::Reject => "reject",
        };
        Self {
            unknown_event_types: value.to_owned(),
        }
    }
}

fn builtin_read_only(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "builtin_event_type",
        format!("`{name}` is one of Herald's built-in event types, which are read-only"),
    )
}

/// A path name: a tenant type's name, or a 404 (nothing can be stored under a malformed one).
fn path_name(raw: &str) -> Result<EventType, ApiError> {
    EventType::parse(raw).map_err(|_| ApiError::not_found("event type"))
}

/// The event types a subscription can name: the documentation platform's, Herald's own, and the
/// tenant's (sorted by name).
#[utoipa::path(get, path = "/v1/event-types", operation_id = "list_event_types", tag = "event types",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The catalog", body = EventTypeList),
        (status = 401, description = "No valid API key", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<EventTypeList>, ApiError> {
    let own = state.event_types.tenant_catalog(&caller.tenant_id).await?;
    let data = builtin_views()
        .chain(own.types.into_iter().map(EventTypeView::from))
        .collect();
    Ok(Json(EventTypeList {
        data,
        next_cursor: None,
    }))
}

/// Registers an event type of the tenant's own. Intake then checks `data` of this type against
/// its schema, if it has one.
#[utoipa::path(post, path = "/v1/event-types", operation_id = "create_event_type", tag = "event types",
    security(("api_key" = [])),
    request_body = EventTypeCreate,
    responses(
        (status = 201, description = "Registered", body = EventTypeView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 409, description = "The tenant has this type already, or it is a built-in \
name (`conflict`)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is not valid (`field` names it): the name, a schema \
that does not compile, an example that breaks the schema, a size, or the tenant has 200 types",
            body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let (body, _) = read_json(req, MAX_BODY_BYTES).await?;
    let new =
        TenantEventType::create(caller.tenant_id, body, state.clock.now()).map_err(
            |e| match e {
                EventTypeInputError::Field(f) => f.into(),
                EventTypeInputError::Taken(t) => ApiError::conflict(t.to_string()),
            },
        )?;
    // A read of the tenant's catalog (one Query on DynamoDB): registering types is rare.
    let existing = state.event_types.tenant_catalog(&caller.tenant_id).await?;
    if existing.types.len() >= MAX_TENANT_EVENT_TYPES {
        return Err(ApiError::validation(
            "name",
            format!("a tenant can register at most {MAX_TENANT_EVENT_TYPES} event types"),
        ));
    }
    let created = state.event_types.create_event_type(&new).await;
    state.directory.forget_catalog(&caller.tenant_id);
    match created {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => {
            return Err(ApiError::conflict(format!(
                "the event type `{}` exists already",
                new.name
            )))
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(tenant = %caller.tenant_id, event_type = %new.name, "event type created");
    Ok((StatusCode::CREATED, Json(EventTypeView::from(new))))
}

/// One event type: a built-in one or one of the tenant's.
#[utoipa::path(get, path = "/v1/event-types/{name}", operation_id = "get_event_type", tag = "event types",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "The type's name (`document.translated`)")),
    responses(
        (status = 200, description = "The event type", body = EventTypeView),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such event type", body = ErrorBody),
    ))]
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<EventTypeView>, ApiError> {
    if let Some(view) = builtin_views().find(|v| v.name == name) {
        return Ok(Json(view));
    }
    let name = path_name(&name)?;
    let found = state
        .event_types
        .get_event_type(&caller.tenant_id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("event type"))?;
    Ok(Json(found.into()))
}

/// Changes a tenant's event type: any of `description`, `schema`, `example`, `deprecated`. The
/// resulting schema and example are checked together.
#[utoipa::path(patch, path = "/v1/event-types/{name}", operation_id = "update_event_type", tag = "event types",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "The type's name (`document.translated`)")),
    request_body = EventTypeUpdate,
    responses(
        (status = 200, description = "Updated", body = EventTypeView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such event type", body = ErrorBody),
        (status = 409, description = "A built-in type, which is read-only \
(`builtin_event_type`)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is not valid (`field` names it)", body = ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<EventTypeView>, ApiError> {
    if is_builtin_name(&name) {
        return Err(builtin_read_only(&name));
    }
    let name = path_name(&name)?;
    let (body, _) = read_json(req, MAX_BODY_BYTES).await?;
    let kept = state
        .event_types
        .get_event_type(&caller.tenant_id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("event type"))?;
    let next = kept.patched(body, state.clock.now())?;
    let replaced = state.event_types.replace_event_type(&next).await;
    state.directory.forget_catalog(&caller.tenant_id);
    replaced.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found("event type"),
        other => other.into(),
    })?;
    tracing::info!(tenant = %caller.tenant_id, event_type = %next.name, "event type updated");
    Ok(Json(next.into()))
}

/// Removes a tenant's event type. Events of that type are then unknown (accepted or refused by
/// the tenant's setting); stored events stay.
#[utoipa::path(delete, path = "/v1/event-types/{name}", operation_id = "delete_event_type", tag = "event types",
    security(("api_key" = [])),
    params(("name" = String, Path, description = "The type's name (`document.translated`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such event type", body = ErrorBody),
        (status = 409, description = "A built-in type, which is read-only \
(`builtin_event_type`)", body = ErrorBody),
    ))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if is_builtin_name(&name) {
        return Err(builtin_read_only(&name));
    }
    let name = path_name(&name)?;
    let deleted = state
        .event_types
        .delete_event_type(&caller.tenant_id, &name)
        .await;
    state.directory.forget_catalog(&caller.tenant_id);
    deleted.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found("event type"),
        other => other.into(),
    })?;
    tracing::info!(tenant = %caller.tenant_id, event_type = %name, "event type deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's catalog settings.
#[utoipa::path(get, path = "/v1/settings", operation_id = "get_settings", tag = "event types",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The settings", body = SettingsView),
        (status = 401, description = "No valid API key", body = ErrorBody),
    ))]
async fn read_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SettingsView>, ApiError> {
    let catalog = state.event_types.tenant_catalog(&caller.tenant_id).await?;
    Ok(Json(catalog.settings.into()))
}

/// Changes the tenant's catalog settings (absent fields stay).
#[utoipa::path(patch, path = "/v1/settings", operation_id = "update_settings", tag = "event types",
    security(("api_key" = [])),
    request_body = SettingsUpdate,
    responses(
        (status = 200, description = "The settings now", body = SettingsView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is not valid (`field` names it)", body = ErrorBody),
    ))]
async fn update_settings(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> Result<Json<SettingsView>, ApiError> {
    let kept = state.event_types.tenant_catalog(&caller.tenant_id).await?;
    let next = kept.settings.patched(Value::Object(body))?;
    let put = state
        .event_types
        .put_catalog_settings(&caller.tenant_id, &next)
        .await;
    state.directory.forget_catalog(&caller.tenant_id);
    put?;
    tracing::info!(tenant = %caller.tenant_id, unknown_event_types = ?next.unknown_event_types, "catalog settings updated");
    Ok(Json(next.into()))
}

#[cfg(test)]
mod tests;
