//! A tenant's own event types (the catalog beside the built-in one): a name, a description, an
//! optional JSON Schema (draft 2020-12) for `data`, an optional example, a deprecated flag; and
//! the tenant's catalog settings (whether events of unknown types are accepted).
//!
//! Parse, don't validate: [`TenantEventType::create`] and [`TenantEventType::patched`] are the only
//! ways the API makes a record, and both compile the schema and check the example against it. Schemas
//! are compiled by the `jsonschema` crate with no resolver: a `$ref` outside the schema itself is
//! refused when the schema is compiled, never fetched. [`Catalog`] holds a tenant's compiled
//! schemas for intake, which checks `data` against them ([`Catalog::check`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{EventId, TenantId};
use crate::input::{FieldError, Fields};
use crate::model::{Event, Subscription};
use crate::pattern::{BuiltinEventType, EventType, Operational, OPERATIONAL_PREFIX};
use crate::ports::{EventTypeStore, StoreError};

/// Most event types a tenant may register.
pub const MAX_TENANT_EVENT_TYPES: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Largest schema, serialised.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Largest example, serialised.
pub const MAX_EXAMPLE_BYTES: usize = 64 * 1024;
/// Most violations an intake refusal lists.
pub const MAX_VIOLATIONS: usize = 10;

/// One event type a tenant registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantEventType {
    pub tenant_id: TenantId,
    pub name: EventType,
    pub description: String,
    /// A JSON Schema (draft 2020-12) that compiled when it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// An example `data`, valid against `schema` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
    #[serde(default)]
    pub deprecated: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Why a new type's name cannot be registered although it is well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameTaken {
    #[error("`{0}` is one of Herald's built-in event types")]
    Builtin(String),
}

/// Whether `name` is a built-in or operational type (read-only, and not for tenants to register).
pub fn is_builtin_name(name: &str) -> bool {
    BuiltinEventType::find(name).is_some() || Operational::ALL.iter().any(|k| k.as_str() == name)
}

/// A name a tenant may register: a valid event type, outside the `herald.` namespace.
fn parse_name(raw: &str) -> Result<EventType, FieldError> {
    let name = EventType::parse(raw).map_err(|e| FieldError::new("name", e.to_string()))?;
    if raw.starts_with(OPERATIONAL_PREFIX) {
        return Err(FieldError::new(
            "name",
            "the `herald.` namespace is reserved for Herald's own operational events",
        ));
    }
    Ok(name)
}

/// What a create or a patch failed on: a field, or a built-in name (a conflict, not bad input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventTypeInputError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Taken(#[from] NameTaken),
}

fn object(body: Value) -> Result<Fields, FieldError> {
    match body {
        Value::Object(map) => Ok(Fields::new(map)),
        _ => Err(FieldError::new("body", "the body must be a JSON object")),
    }
}

/// `schema` or `example`: an object (or, for a schema, `true`/`false`) of at most `max` bytes.
fn take_json(
    fields: &mut Fields,
    name: &str,
    max: usize,
) -> Result<Option<Option<Value>>, FieldError> {
    let Some(value) = fields.take_value(name) else {
        return Ok(None);
    };
    let Some(value) = value else {
        return Ok(Some(None));
    };
    let ok_shape = matches!(value, Value::Object(_)) || (name == "schema" && value.is_boolean());
    if !ok_shape {
        return Err(FieldError::new(
            name,
            format!("`{name}` must be a JSON object"),
        ));
    }
    let size = serde_json::to_vec(&value)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > max {
        return Err(FieldError::new(
            name,
            format!("`{name}` must be at most {} KiB serialised", max / 1024),
        ));
    }
    Ok(Some(Some(value)))
}

/// Compiles `schema` as draft 2020-12, without fetching anything: a remote `$ref` is an error.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::options()
        .build(schema)
        .map_err(|e| e.to_string())
}

/// The (schema, example) pair checked together: the schema compiles, the example fits it.
fn check_pair(schema: Option<&Value>, example: Option<&Value>) -> Result<(), FieldError> {
    let Some(schema) = schema else {
        return Ok(());
    };
    let validator = compile(schema).map_err(|why| {
        FieldError::new(
            "schema",
            format!("`schema` is not a valid JSON Schema (draft 2020-12): {why}"),
        )
    })?;
    if let Some(example) = example {
        let found = violations(&validator, example);
        if let Some(first) = found.first() {
            return Err(FieldError::new(
                "example",
                format!("`example` does not match the schema: {first}"),
            ));
        }
    }
    Ok(())
}

impl TenantEventType {
    /// Parses a create body `{name, description?, schema?, example?, deprecated?}`.
    pub fn create(
        tenant: TenantId,
        body: Value,
        now: Timestamp,
    ) -> Result<Self, EventTypeInputError> {
        let mut fields = object(body)?;
        let raw = fields.take_required_string("name", 200)?;
        if is_builtin_name(&raw) {
            return Err(NameTaken::Builtin(raw).into());
        }
        let name = parse_name(&raw)?;
        let description = fields
            .take_string("description", MAX_DESCRIPTION_CHARS)?
            .flatten()
            .unwrap_or_default();
        let schema = take_json(&mut fields, "schema", MAX_SCHEMA_BYTES)?.flatten();
        let example = take_json(&mut fields, "example", MAX_EXAMPLE_BYTES)?.flatten();
        let deprecated = fields.take_bool("deprecated")?.unwrap_or(false);
        fields.finish()?;
        check_pair(schema.as_ref(), example.as_ref())?;
        Ok(Self {
            tenant_id: tenant,
            name,
            description,
            schema,
            example,
            deprecated,
            created_at: now,
            updated_at: now,
        })
    }

    /// Applies a patch body (any of `description`, `schema`, `example`, `deprecated`; `schema:
    /// null` and `example: null` remove them) and re-checks the resulting pair.
    pub fn patched(&self, body: Value, now: Timestamp) -> Result<Self, FieldError> {
        let mut fields = object(body)?;
        let mut next = self.clone();
        match fields.take_string("description", MAX_DESCRIPTION_CHARS)? {
            None => {}
            Some(Some(d)) => next.description = d,
            Some(None) => {
                return Err(FieldError::new(
                    "description",
                    "`description` must be a string",
                ))
            }
        }
        if let Some(schema) = take_json(&mut fields, "schema", MAX_SCHEMA_BYTES)? {
            next.schema = schema;
        }
        if let Some(example) = take_json(&mut fields, "example", MAX_EXAMPLE_BYTES)? {
            next.example = example;
        }
        if let Some(d) = fields.take_bool("deprecated")? {
            next.deprecated = d;
        }
        fields.finish()?;
        check_pair(next.schema.as_ref(), next.example.as_ref())?;
        next.updated_at = now;
        Ok(next)
    }
}

/// Whether intake takes events of types in no catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownEventTypes {
    #[default]
    Accept,
    Reject,
}

/// A tenant's catalog settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSettings {
    #[serde(default)]
    pub unknown_event_types: UnknownEventTypes,
}

impl CatalogSettings {
    /// Applies a partial body `{unknown_event_types?: "accept" | "reject"}`.
    pub fn patched(&self, body: Value) -> Result<Self, FieldError> {
        let mut fields = object(body)?;
        let mut next = *self;
        match fields.take_value("unknown_event_types") {
            None => {}
            Some(Some(Value::String(s))) if s == "accept" => {
                next.unknown_event_types = UnknownEventTypes::Accept
            }
            Some(Some(Value::String(s))) if s == "reject" => {
                next.unknown_event_types = UnknownEventTypes::Reject
            }
            Some(_) => {
                return Err(FieldError::new(
                    "unknown_event_types",
                    "`unknown_event_types` must be \"accept\" or \"reject\"",
                ))
            }
        }
        fields.finish()?;
        Ok(next)
    }
}

/// A tenant's settings and every type it registered, sorted by name: what one store read gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantCatalog {
    pub settings: CatalogSettings,
    pub types: Vec<TenantEventType>,
}

/// Where `data` breaks its schema, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// A JSON pointer into `data` (`""` is `data` itself).
    pub pointer: String,
    pub reason: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.reason)
    }
}

/// The first [`MAX_VIOLATIONS`] ways `data` breaks the compiled schema (none: it fits).
pub fn violations(validator: &jsonschema::Validator, data: &Value) -> Vec<Violation> {
    validator
        .iter_errors(data)
        .take(MAX_VIOLATIONS)
        .map(|e| Violation {
            pointer: e.instance_path().as_str().to_owned(),
            reason: e.to_string(),
        })
        .collect()
}

/// Why intake refuses an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("data does not match the schema of {event_type}: {}", .violations.first().map(ToString::to_string).unwrap_or_default())]
    SchemaViolation {
        event_type: EventType,
        violations: Vec<Violation>,
    },
    #[error("`{0}` is not a registered event type, and this tenant refuses unknown types (register it with POST /v1/event-types, or set unknown_event_types to \"accept\")")]
    UnknownType(EventType),
}

/// One registered type with its schema compiled.
#[derive(Debug, Clone)]
pub struct CompiledType {
    pub record: TenantEventType,
    /// `None` when it has no schema (or, should a stored schema no longer compile, when it is
    /// not checked: the write path refuses such schemas, so that is a library change, not input).
    pub validator: Option<Arc<jsonschema::Validator>>,
}

/// A tenant's catalog as intake uses it: schemas compiled once per read.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub settings: CatalogSettings,
    types: HashMap<EventType, CompiledType>,
}

impl Catalog {
    pub fn compile(read: TenantCatalog) -> Self {
        let types = read
            .types
            .into_iter()
            .map(|record| {
                let validator = record
                    .schema
                    .as_ref()
                    .and_then(|s| compile(s).ok())
                    .map(Arc::new);
                (record.name.clone(), CompiledType { record, validator })
            })
            .collect();
        Self {
            settings: read.settings,
            types,
        }
    }

    pub fn get(&self, name: &EventType) -> Option<&CompiledType> {
        self.types.get(name)
    }

    /// An event of each of the tenant's types that `sub` takes and that has an example, with the
    /// example as its data: what a subscription's template is checked against beside the
    /// built-in examples.
    pub fn example_events(&self, sub: &Subscription) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .types
            .values()
            .filter(|t| sub.matches(&t.record.name))
            .filter_map(|t| {
                Some(Event {
                    id: EventId::new(),
                    tenant_id: sub.tenant_id,
                    event_type: t.record.name.clone(),
                    timestamp: Timestamp::UNIX_EPOCH,
                    data: t.record.example.clone()?,
                    subscriptions: Vec::new(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.event_type.as_str().cmp(b.event_type.as_str()));
        out
    }

    /// Whether intake takes an event of `event_type` with this `data`. Built-in and operational
    /// types are always known; deprecated types are still taken (deprecation informs, it does
    /// not refuse).
    pub fn check(&self, event_type: &EventType, data: &Value) -> Result<(), Refusal> {
        match self.types.get(event_type) {
            Some(t) => match &t.validator {
                Some(v) => {
                    let found = violations(v, data);
                    if found.is_empty() {
                        Ok(())
                    } else {
                        Err(Refusal::SchemaViolation {
                            event_type: event_type.clone(),
                            violations: found,
                        })
                    }
                }
                None => Ok(()),
            },
            None if self.settings.unknown_event_types == UnknownEventTypes::Reject
                && !is_builtin_name(event_type.as_str())
                && !event_type.is_operational() =>
            {
                Err(Refusal::UnknownType(event_type.clone()))
            }
            None => Ok(()),
        }
    }
}

/// Event types and settings in this process's memory (unit tests, and a state without a durable
/// store for them).
#[derive(Debug, Default)]
pub struct MemoryEventTypes {
    tenants: Mutex<HashMap<TenantId, Kept>>,
}

/// One tenant's settings and types, by name.
type Kept = (CatalogSettings, BTreeMap<EventType, TenantEventType>);

impl MemoryEventTypes {
    fn with<R>(&self, tenant: &TenantId, f: impl FnOnce(&mut Kept) -> R) -> R {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        f(tenants.entry(*tenant).or_default())
    }
}

#[async_trait]
impl EventTypeStore for MemoryEventTypes {
    async fn create_event_type(&self, t: &TenantEventType) -> Result<(), StoreError> {
        self.with(&t.tenant_id, |(_, types)| {
            if types.contains_key(&t.name) {
                return Err(StoreError::AlreadyExists);
            }
            types.insert(t.name.clone(), t.clone());
            Ok(())
        })
    }

    async fn get_event_type(
        &self,
        tenant: &TenantId,
        name: &EventType,
    ) -> Result<Option<TenantEventType>, StoreError> {
        Ok(self.with(tenant, |(_, types)| types.get(name).cloned()))
    }

    async fn replace_event_type(&self, t: &TenantEventType) -> Result<(), StoreError> {
        self.with(&t.tenant_id, |(_, types)| match types.get_mut(&t.name) {
            Some(kept) => {
                *kept = t.clone();
                Ok(())
            }
            None => Err(StoreError::NotFound),
        })
    }

    async fn delete_event_type(
        &self,
        tenant: &TenantId,
        name: &EventType,
    ) -> Result<(), StoreError> {
        self.with(tenant, |(_, types)| {
            types.remove(name).map(|_| ()).ok_or(StoreError::NotFound)
        })
    }

    async fn put_catalog_settings(
        &self,
        tenant: &TenantId,
        settings: &CatalogSettings,
    ) -> Result<(), StoreError> {
        self.with(tenant, |(kept, _)| *kept = *settings);
        Ok(())
    }

    async fn tenant_catalog(&self, tenant: &TenantId) -> Result<TenantCatalog, StoreError> {
        Ok(self.with(tenant, |(settings, types)| TenantCatalog {
            settings: *settings,
            types: types.values().cloned().collect(),
        }))
    }
}

#[cfg(test)]
mod tests;
