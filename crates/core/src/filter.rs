//! Payload filters: an optional condition on a subscription over the event's fields, so a
//! subscription to `document.published` can take only the Handbook space's documents. Applied in
//! the plan ([`crate::delivery::plan`]) after the event-type patterns: an event a filter refuses
//! gets no delivery for that subscription, and so costs no queue message.
//!
//! The language is JSON, one object per condition:
//!
//! - `{"path": "data.space.name", "eq": "Handbook"}`: equal to a string, number, boolean or null;
//! - `{"path": "data.space.name", "in": ["Handbook", "Guides"]}`: equal to one of 1 to 100 values;
//! - `{"path": "data.author", "exists": true}`: present and not null (`false`: absent or null);
//! - `{"path": "data.words", "gt": 100}`, and `gte`, `lt`, `lte`: a number compared with a number;
//! - `{"path": "type", "prefix": "document."}`: a string starting with a string;
//! - `{"all": [..]}`, `{"any": [..]}` (1 or more conditions each) and `{"not": {..}}`.
//!
//! A path is dotted over the event as delivered: `type`, `id`, `timestamp` (its RFC 3339 text, in
//! whole seconds, as the envelope shows it), or
//! `data` followed by field names (`data.space.name`); a segment of digits also indexes a list
//! (`data.tags.0`). A condition whose path leads nowhere, or to a value of another kind than its
//! operand, is false (so `not` of it is true); numbers compare as `f64`.
//!
//! Limits keep a filter cheap to store and to run at fan-out: at most [`MAX_DEPTH`] levels,
//! [`MAX_NODES`] conditions, [`MAX_PATH_CHARS`] characters per path, [`MAX_IN_VALUES`] values per
//! `in`, and [`MAX_FILTER_BYTES`] bytes of JSON in all. A [`Filter`] exists only once parsed
//! ([`Filter::parse`], which names the bad part as in `filter.all[1].in`); it serialises back to
//! the JSON it was read from, which is how every store keeps it, inside the subscription's document.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::model::Event;

/// Deepest nesting of `all`, `any` and `not`, counting the top condition as 1.
pub const MAX_DEPTH: usize = 8;
/// Most conditions (every object, combinators included) in one filter.
pub const MAX_NODES: usize = 64;
/// Longest path, in characters.
pub const MAX_PATH_CHARS: usize = 256;
/// Most values one `in` may list.
pub const MAX_IN_VALUES: usize = 100;
/// Largest filter, in bytes of compact JSON.
pub const MAX_FILTER_BYTES: usize = 4096;

const OPERATORS: &str = "eq, in, exists, gt, gte, lt, lte, prefix";

/// A parsed payload filter (see the module documentation for the language).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Eq {
        path: Path,
        value: Value,
    },
    In {
        path: Path,
        values: Vec<Value>,
    },
    Exists {
        path: Path,
        exists: bool,
    },
    Compare {
        path: Path,
        op: Comparison,
        value: Number,
    },
    Prefix {
        path: Path,
        prefix: String,
    },
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
}

/// A numeric comparison's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Comparison {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
        }
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Self::Gt => left > right,
            Self::Gte => left >= right,
            Self::Lt => left < right,
            Self::Lte => left <= right,
        }
    }
}

/// A dotted path into the event: `type`, `id`, `timestamp` or `data…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    /// The segments after `data` (empty for the envelope fields and `data` itself).
    data: Option<Vec<String>>,
    root: Root,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Type,
    Id,
    Timestamp,
    Data,
}

impl Path {
    fn parse(text: &str, at: &str) -> Result<Self, FilterError> {
        let err = |message: String| FilterError::new(at, message);
        if text.chars().count() > MAX_PATH_CHARS {
            return Err(err(format!(
                "a path has at most {MAX_PATH_CHARS} characters"
            )));
        }
        let mut segments = text.split('.');
        let root = match segments.next().unwrap_or_default() {
            "type" => Root::Type,
            "id" => Root::Id,
            "timestamp" => Root::Timestamp,
            "data" => Root::Data,
            _ => return Err(err(
                "a path starts with `type`, `id`, `timestamp` or `data` (as in `data.space.name`)"
                    .into(),
            )),
        };
        let rest: Vec<String> = segments.map(str::to_owned).collect();
        if rest.iter().any(String::is_empty) {
            return Err(err(
                "a path has no empty segments (`data.space.name`)".into()
            ));
        }
        if root != Root::Data && !rest.is_empty() {
            return Err(err(
                "only `data` has fields: `type`, `id` and `timestamp` are text".into(),
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            data: (root == Root::Data).then_some(rest),
            root,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path in `event`, if there is one (null counts as none).
    fn resolve<'a>(&self, event: &'a Event) -> Option<Cow<'a, Value>> {
        let text = |s: String| Some(Cow::Owned(Value::String(s)));
        match self.root {
            Root::Type => text(event.event_type.as_str().to_owned()),
            Root::Id => text(event.id.to_string()),
            Root::Timestamp => text(crate::render::whole_seconds(event.timestamp)),
            Root::Data => {
                let mut at = &event.data;
                for segment in self.data.iter().flatten() {
                    at = match at {
                        Value::Object(map) => map.get(segment)?,
                        Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                        _ => return None,
                    };
                }
                (!at.is_null()).then_some(Cow::Borrowed(at))
            }
        }
    }
}

/// What is wrong with a filter, and where: `at` is the bad part's location (`filter.all[1].in`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct FilterError {
    pub at: String,
    pub message: String,
}

impl FilterError {
    fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            message: message.into(),
        }
    }
}

impl Filter {
    /// Reads a filter from JSON; errors name the bad part under `filter`.
    pub fn parse(value: &Value) -> Result<Self, FilterError> {
        let bytes = serde_json::to_vec(value).map_or(usize::MAX, |b| b.len());
        if bytes > MAX_FILTER_BYTES {
            return Err(FilterError::new(
                "filter",
                format!("a filter has at most {MAX_FILTER_BYTES} bytes of JSON"),
            ));
        }
        Parser { nodes: 0 }.node(value, "filter", 1)
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        match self {
            Self::Eq { path, value } => path.resolve(event).is_some_and(|v| same(&v, value)),
            Self::In { path, values } => path
                .resolve(event)
                .is_some_and(|v| values.iter().any(|x| same(&v, x))),
            Self::Exists { path, exists } => path.resolve(event).is_some() == *exists,
            Self::Compare { path, op, value } => {
                path.resolve(event)
                    .is_some_and(|v| match (v.as_f64(), value.as_f64()) {
                        (Some(left), Some(right)) => op.holds(left, right),
                        _ => false,
                    })
            }
            Self::Prefix { path, prefix } => path
                .resolve(event)
                .is_some_and(|v| v.as_str().is_some_and(|s| s.starts_with(prefix.as_str()))),
            Self::All(all) => all.iter().all(|f| f.matches(event)),
            Self::Any(any) => any.iter().any(|f| f.matches(event)),
            Self::Not(inner) => !inner.matches(event),
        }
    }

    /// The filter as JSON, as it was read.
    pub fn to_json(&self) -> Value {
        let condition = |path: &Path, op: &str, operand: Value| {
            let mut map = Map::new();
            map.insert("path".into(), Value::String(path.text.clone()));
            map.insert(op.into(), operand);
            Value::Object(map)
        };
        let list = |name: &str, items: &[Filter]| {
            let mut map = Map::new();
            map.insert(
                name.into(),
                Value::Array(items.iter().map(Filter::to_json).collect()),
            );
            Value::Object(map)
        };
        match self {
            Self::Eq { path, value } => condition(path, "eq", value.clone()),
            Self::In { path, values } => condition(path, "in", Value::Array(values.clone())),
            Self::Exists { path, exists } => condition(path, "exists", Value::Bool(*exists)),
            Self::Compare { path, op, value } => {
                condition(path, op.as_str(), Value::Number(value.clone()))
            }
            Self::Prefix { path, prefix } => {
                condition(path, "prefix", Value::String(prefix.clone()))
            }
            Self::All(items) => list("all", items),
            Self::Any(items) => list("any", items),
            Self::Not(inner) => {
                let mut map = Map::new();
                map.insert("not".into(), inner.to_json());
                Value::Object(map)
            }
        }
    }
}

/// Equal as JSON, numbers as `f64` (so `1` equals `1.0`).
fn same(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().is_some() && a.as_f64() == b.as_f64(),
        _ => left == right,
    }
}

struct Parser {
    nodes: usize,
}

impl Parser {
    fn node(&mut self, value: &Value, at: &str, depth: usize) -> Result<Filter, FilterError> {
        let err = |at: &str, message: String| Err(FilterError::new(at, message));
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return err(at, format!("a filter has at most {MAX_NODES} conditions"));
        }
        if depth > MAX_DEPTH {
            return err(
                at,
                format!("a filter nests at most {MAX_DEPTH} levels deep"),
            );
        }
        let Value::Object(map) = value else {
            return err(
                at,
                "a filter is an object such as {\"path\": \"data.space.name\", \"eq\": \"Handbook\"}"
                    .into(),
            );
        };
        for combinator in ["all", "any", "not"] {
            let Some(operand) = map.get(combinator) else {
                continue;
            };
            if let Some(other) = map.keys().find(|k| *k != combinator) {
                return err(
                    &format!("{at}.{}", key(other)),
                    format!(
                        "`{combinator}` stands alone: put `{}` in a condition of its own",
                        key(other)
                    ),
                );
            }
            let here = format!("{at}.{combinator}");
            if combinator == "not" {
                return Ok(Filter::Not(Box::new(self.node(
                    operand,
                    &here,
                    depth + 1,
                )?)));
            }
            let Value::Array(items) = operand else {
                return err(&here, format!("`{combinator}` takes a list of conditions"));
            };
            if items.is_empty() {
                return err(
                    &here,
                    format!("`{combinator}` takes at least one condition"),
                );
            }
            let parsed = items
                .iter()
                .enumerate()
                .map(|(i, item)| self.node(item, &format!("{here}[{i}]"), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if combinator == "all" {
                Filter::All(parsed)
            } else {
                Filter::Any(parsed)
            });
        }
        let path = match map.get("path") {
            Some(Value::String(text)) => Path::parse(text, &format!("{at}.path"))?,
            Some(_) => return err(&format!("{at}.path"), "`path` must be a string".into()),
            None => {
                return err(
                    at,
                    format!("a condition has a `path` and one operator ({OPERATORS}), or is `all`, `any` or `not`"),
                )
            }
        };
        let mut operators = map.iter().filter(|(k, _)| *k != "path");
        let (op, operand) = match (operators.next(), operators.next()) {
            (Some(one), None) => one,
            (None, _) => return err(at, format!("a condition needs an operator: {OPERATORS}")),
            (Some(_), Some((second, _))) => {
                return err(
                    &format!("{at}.{}", key(second)),
                    "one operator per condition: combine conditions with `all`".into(),
                )
            }
        };
        let here = format!("{at}.{}", key(op));
        match (op.as_str(), operand) {
            ("eq", v) => Ok(Filter::Eq {
                path,
                value: scalar(v, &here)?,
            }),
            ("in", Value::Array(items)) => {
                if items.is_empty() || items.len() > MAX_IN_VALUES {
                    return err(&here, format!("`in` takes 1 to {MAX_IN_VALUES} values"));
                }
                let values = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| scalar(v, &format!("{here}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Filter::In { path, values })
            }
            ("in", _) => err(&here, "`in` takes a list of values".into()),
            ("exists", Value::Bool(exists)) => Ok(Filter::Exists {
                path,
                exists: *exists,
            }),
            ("exists", _) => err(&here, "`exists` takes true or false".into()),
            ("prefix", Value::String(prefix)) => Ok(Filter::Prefix {
                path,
                prefix: prefix.clone(),
            }),
            ("prefix", _) => err(&here, "`prefix` takes a string".into()),
            (name, operand) => match Comparison::parse(name) {
                Some(op) => match operand {
                    Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => {
                        Ok(Filter::Compare {
                            path,
                            op,
                            value: n.clone(),
                        })
                    }
                    _ => err(&here, format!("`{name}` takes a number")),
                },
                None => err(
                    &here,
                    format!("`{}` is not an operator: {OPERATORS}", key(name)),
                ),
            },
        }
    }
}

/// A key as shown in a location or message: at most 40 characters of it.
fn key(name: &str) -> String {
    name.chars().take(40).collect()
}

/// A value `eq` and `in` compare with: a string, number, boolean or null.
fn scalar(value: &Value, at: &str) -> Result<Value, FilterError> {
    match value {
        Value::Array(_) | Value::Object(_) => Err(FilterError::new(
            at,
            "compare with a string, number, boolean or null",
        )),
        v => Ok(v.clone()),
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
