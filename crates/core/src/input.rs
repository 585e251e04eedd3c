//! Reading a JSON object field by field, with errors that name the field.
//!
//! The API takes request bodies as JSON objects and hands them to the core's parsers
//! ([`crate::subscription`]), which take each field out of a [`Fields`] and turn it into a typed
//! value. What nobody took is refused, so a typo in a field name is an error, not a silent no-op.
//! Messages are written for the person who sent the body; they never echo a credential.

use serde_json::{Map, Value};

/// A problem with one field of an input, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field's name, dotted for nested fields (`platform_options.token`).
    pub field: String,
    pub message: String,
    /// What kind of problem, for machines: `validation_failed`, or `invalid_template`.
    pub code: &'static str,
    /// For a template, the line (1-based) the problem is on, when it has one.
    pub line: Option<usize>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            code: "validation_failed",
            line: None,
        }
    }

    /// A message template that cannot be used: `invalid_template`, with its line.
    pub fn template(err: crate::render::TemplateError) -> Self {
        Self {
            field: "template".to_owned(),
            message: err.to_string(),
            code: "invalid_template",
            line: err.line,
        }
    }
}

/// Takes fields out of a JSON object one by one, and refuses leftovers.
#[derive(Debug, Default)]
pub struct Fields(Map<String, Value>);

impl Fields {
    pub fn new(map: Map<String, Value>) -> Self {
        Self(map)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// `None` when absent; `Some(None)` when explicitly null.
    pub fn take_value(&mut self, name: &str) -> Option<Option<Value>> {
        self.0
            .remove(name)
            .map(|v| if v.is_null() { None } else { Some(v) })
    }

    /// A string of at most `max_chars` characters; `None` when absent, `Some(None)` when null.
    pub fn take_string(
        &mut self,
        name: &str,
        max_chars: usize,
    ) -> Result<Option<Option<String>>, FieldError> {
        match self.take_value(name) {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(Value::String(s))) if s.chars().count() <= max_chars => Ok(Some(Some(s))),
            Some(Some(Value::String(_))) => Err(FieldError::new(
                name,
                format!("`{name}` must be at most {max_chars} characters"),
            )),
            Some(Some(_)) => Err(FieldError::new(name, format!("`{name}` must be a string"))),
        }
    }

    /// A string that must be there and not null.
    pub fn take_required_string(
        &mut self,
        name: &str,
        max_chars: usize,
    ) -> Result<String, FieldError> {
        self.take_string(name, max_chars)?
            .flatten()
            .ok_or_else(|| FieldError::new(name, format!("`{name}` is required")))
    }

    /// `true` or `false`; null is refused like any other non-boolean.
    pub fn take_bool(&mut self, name: &str) -> Result<Option<bool>, FieldError> {
        match self.take_value(name) {
            None => Ok(None),
            Some(Some(Value::Bool(b))) => Ok(Some(b)),
            Some(_) => Err(FieldError::new(
                name,
                format!("`{name}` must be true or false"),
            )),
        }
    }

    /// Refuses fields nobody took, naming the first one.
    pub fn finish(self) -> Result<(), FieldError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(FieldError::new(k.clone(), format!("unknown field `{k}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(value: Value) -> Fields {
        let Value::Object(map) = value else {
            unreachable!("test input is an object")
        };
        Fields::new(map)
    }

    #[test]
    fn absent_null_and_present_are_told_apart() {
        let mut f = fields(json!({"a": null, "b": "x"}));
        assert_eq!(f.take_string("a", 5), Ok(Some(None)));
        assert_eq!(f.take_string("b", 5), Ok(Some(Some("x".into()))));
        assert_eq!(f.take_string("c", 5), Ok(None));
        assert_eq!(f.finish(), Ok(()));
    }

    #[test]
    fn wrong_types_and_lengths_name_the_field() {
        let mut f = fields(json!({"s": 1, "long": "ééé", "b": null}));
        assert_eq!(
            f.take_string("s", 5),
            Err(FieldError::new("s", "`s` must be a string"))
        );
        assert_eq!(
            f.take_string("long", 2),
            Err(FieldError::new(
                "long",
                "`long` must be at most 2 characters"
            ))
        );
        assert_eq!(
            f.take_bool("b"),
            Err(FieldError::new("b", "`b` must be true or false"))
        );
        assert_eq!(
            f.take_required_string("gone", 5),
            Err(FieldError::new("gone", "`gone` is required"))
        );
    }

    #[test]
    fn leftovers_are_refused() {
        let f = fields(json!({"colour": "red"}));
        assert_eq!(
            f.finish(),
            Err(FieldError::new("colour", "unknown field `colour`"))
        );
    }
}
