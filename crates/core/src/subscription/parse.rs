//! Reading a new subscription and a patch from a JSON object: one function per field rule, and the
//! order in which fields are read (the first problem found is the one reported).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::platform::{check_url, parse_platform, parse_platform_options, TRELLO_CARDS_URL};
use super::{NewSubscription, SubscriptionPatch};
use crate::filter::Filter;
use crate::ids::{EventId, TenantId};
use crate::input::{FieldError, Fields};
use crate::model::{Event, PlatformConfig, Subscription};
use crate::pattern::{BuiltinEventType, EventPattern, EventType, BUILTIN_EVENT_TYPES};
use crate::render::{Markup, MessageTemplate, MAX_TEMPLATE_BYTES};
use crate::target::{AddressPolicy, TargetUrl};

/// Most event patterns one subscription may list.
pub const MAX_PATTERNS: usize = 50;
/// Most extra headers one subscription may set.
pub const MAX_HEADERS: usize = 20;
/// Longest value of an extra header, in bytes.
pub const MAX_HEADER_VALUE: usize = 1024;
/// The lowest and highest per-subscription rate limit, in requests per second.
pub const RATE_LIMIT_RANGE: std::ops::RangeInclusive<u64> = 1..=10_000;

const MAX_URL_CHARS: usize = 2048;
const MAX_PLATFORM_CHARS_NEW: usize = 2048;
const MAX_PLATFORM_CHARS_PATCH: usize = 32;
const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 2000;
const MAX_AUTH_TOKEN_CHARS: usize = 4096;

impl NewSubscription {
    /// Reads a subscription to create. The URL is checked under `policy`; a Trello subscription
    /// without one posts to Trello's card endpoint.
    pub fn parse(body: Map<String, Value>, policy: AddressPolicy) -> Result<Self, FieldError> {
        let mut fields = Fields::new(body);
        let platform =
            parse_platform(&fields.take_required_string("platform", MAX_PLATFORM_CHARS_NEW)?)?;
        let options = fields.take_value("platform_options").flatten();
        let platform = parse_platform_options(platform, options)?;
        let url = match (
            fields.take_string("url", MAX_URL_CHARS)?.flatten(),
            &platform,
        ) {
            (None, PlatformConfig::Trello(_)) => trello_url()?,
            (None, _) => return Err(FieldError::new("url", "`url` is required")),
            (Some(raw), _) => parse_url(&raw, policy)?,
        };
        check_url(&platform, &url)?;
        let events = parse_events(fields.take_value("events").flatten())?;
        let filter = parse_filter(fields.take_value("filter").flatten())?;
        let template = parse_template(
            fields
                .take_string("template", MAX_TEMPLATE_BYTES)?
                .flatten(),
            &platform,
            &events,
        )?;
        let name = non_empty(fields.take_string("name", MAX_NAME_CHARS)?.flatten());
        let description = non_empty(
            fields
                .take_string("description", MAX_DESCRIPTION_CHARS)?
                .flatten(),
        );
        let enabled = fields.take_bool("enabled")?.unwrap_or(true);
        let headers = parse_headers(fields.take_value("headers").flatten())?;
        let auth_token = parse_auth_token(
            fields
                .take_string("auth_token", MAX_AUTH_TOKEN_CHARS)?
                .flatten(),
        )?;
        let rate_limit_per_sec =
            parse_rate_limit(fields.take_value("rate_limit_per_sec").flatten())?;
        fields.finish()?;
        Ok(Self {
            name,
            description,
            platform,
            url,
            events,
            filter,
            template,
            enabled,
            headers,
            auth_token,
            rate_limit_per_sec,
        })
    }
}

impl SubscriptionPatch {
    /// Reads a partial update of `current`: absent fields stay as they are, `null` clears what can
    /// be cleared. Platform and options resolve against the current platform: naming the same
    /// platform again keeps its options; options alone apply to the current platform.
    pub fn parse(
        body: Map<String, Value>,
        current: &Subscription,
        policy: AddressPolicy,
    ) -> Result<Self, FieldError> {
        let mut fields = Fields::new(body);
        let mut patch = Self::default();

        let platform_given = fields.take_string("platform", MAX_PLATFORM_CHARS_PATCH)?;
        let options_given = fields.take_value("platform_options");
        if platform_given.is_some() || options_given.is_some() {
            let platform = match platform_given.flatten() {
                Some(raw) => parse_platform(&raw)?,
                None => current.platform.platform(),
            };
            patch.platform = match options_given {
                Some(options) => Some(parse_platform_options(platform, options)?),
                None if platform == current.platform.platform() => Some(current.platform.clone()),
                None => Some(parse_platform_options(platform, None)?),
            };
        }
        let platform = patch.platform.as_ref().unwrap_or(&current.platform);
        if let Some(url) = fields.take_string("url", MAX_URL_CHARS)? {
            patch.url = Some(match (url, platform) {
                (None, PlatformConfig::Trello(_)) => trello_url()?,
                (None, _) => return Err(FieldError::new("url", "`url` cannot be removed")),
                (Some(raw), _) => parse_url(&raw, policy)?,
            });
        }
        // Only a patch that sets the platform or the URL is checked, so a subscription made before
        // a rule can still be paused or renamed.
        if patch.platform.is_some() || patch.url.is_some() {
            check_url(platform, patch.url.as_ref().unwrap_or(&current.url))?;
        }
        if fields.has("events") {
            patch.events = Some(parse_events(fields.take_value("events").flatten())?);
        }
        if let Some(filter) = fields.take_value("filter") {
            patch.filter = Some(parse_filter(filter)?);
        }
        let events = patch.events.as_deref().unwrap_or(&current.events);
        match fields.take_string("template", MAX_TEMPLATE_BYTES)? {
            Some(template) => patch.template = Some(parse_template(template, platform, events)?),
            // A template kept on a platform that takes none.
            None if current.template.is_some() && Markup::of(platform.platform()).is_none() => {
                return Err(FieldError::new("template", CUSTOM_TEMPLATE))
            }
            None => {}
        }
        if let Some(name) = fields.take_string("name", MAX_NAME_CHARS)? {
            patch.name = Some(non_empty(name));
        }
        if let Some(description) = fields.take_string("description", MAX_DESCRIPTION_CHARS)? {
            patch.description = Some(non_empty(description));
        }
        patch.enabled = fields.take_bool("enabled")?;
        if let Some(headers) = fields.take_value("headers") {
            patch.headers = Some(parse_headers(headers)?);
        }
        if let Some(token) = fields.take_string("auth_token", MAX_AUTH_TOKEN_CHARS)? {
            patch.auth_token = Some(parse_auth_token(token)?);
        }
        if let Some(rate) = fields.take_value("rate_limit_per_sec") {
            patch.rate_limit_per_sec = Some(parse_rate_limit(rate)?);
        }
        fields.finish()?;
        Ok(patch)
    }
}

const CUSTOM_TEMPLATE: &str =
    "custom subscriptions receive the signed event envelope; templates shape chat messages";

/// A message template for a chat platform or Trello; empty or null means none. It must compile and
/// render the example of every built-in event type the patterns take (an event of none of them:
/// `webhook.test`'s), so a template that fails is refused now rather than at delivery.
fn parse_template(
    source: Option<String>,
    platform: &PlatformConfig,
    events: &[EventPattern],
) -> Result<Option<MessageTemplate>, FieldError> {
    let Some(source) = source.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let Some(markup) = Markup::of(platform.platform()) else {
        return Err(FieldError::new("template", CUSTOM_TEMPLATE));
    };
    let template = MessageTemplate::parse(&source).map_err(FieldError::template)?;
    template
        .check(markup, &example_events(events))
        .map_err(FieldError::template)?;
    Ok(Some(template))
}

/// An event of each built-in type that `patterns` take, with the type's example data; when they
/// take none, a `webhook.test` event. What a template is checked against.
pub fn example_events(patterns: &[EventPattern]) -> Vec<Event> {
    let event = |event_type: EventType, data| Event {
        id: EventId::new(),
        tenant_id: TenantId::new(),
        event_type,
        timestamp: jiff::Timestamp::UNIX_EPOCH,
        data,
        subscriptions: Vec::new(),
    };
    let mut out: Vec<Event> = BUILTIN_EVENT_TYPES
        .iter()
        .filter_map(|t| {
            let event_type = EventType::parse(t.name).ok()?;
            patterns
                .iter()
                .any(|p| p.matches(&event_type))
                .then(|| event(event_type, t.example()))
        })
        .collect();
    if out.is_empty() {
        let test = EventType::webhook_test();
        let data = BuiltinEventType::find(test.as_str()).map(BuiltinEventType::example);
        out.push(event(test, data.unwrap_or_default()));
    }
    out
}

fn trello_url() -> Result<TargetUrl, FieldError> {
    TargetUrl::parse(TRELLO_CARDS_URL, AddressPolicy::PRODUCTION)
        .map_err(|e| FieldError::new("url", e.to_string()))
}

fn parse_url(raw: &str, policy: AddressPolicy) -> Result<TargetUrl, FieldError> {
    TargetUrl::parse(raw, policy).map_err(|e| FieldError::new("url", e.to_string()))
}

/// Trimmed; empty means none.
fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// 1 to [`MAX_PATTERNS`] patterns; repeats are dropped, the first occurrence keeps its place.
fn parse_events(value: Option<Value>) -> Result<Vec<EventPattern>, FieldError> {
    let err = |message: String| FieldError::new("events", message);
    let items = match value {
        Some(Value::Array(items)) => items,
        None => {
            return Err(err(
                "`events` is required: a list such as [\"document.created\", \"article.*\"]".into(),
            ))
        }
        Some(_) => {
            return Err(err(
                "`events` must be a list of event types or patterns".into()
            ))
        }
    };
    if items.is_empty() {
        return Err(err("choose at least one event type".into()));
    }
    if items.len() > MAX_PATTERNS {
        return Err(err(format!("at most {MAX_PATTERNS} event patterns")));
    }
    let mut patterns: Vec<EventPattern> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(s) = item else {
            return Err(err("every event pattern must be a string".into()));
        };
        let pattern = EventPattern::parse(&s).map_err(|e| err(e.to_string()))?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

/// A payload filter ([`Filter`]); null or absent means none. The error's field is the bad part's
/// location (`filter.all[1].in`).
fn parse_filter(value: Option<Value>) -> Result<Option<Filter>, FieldError> {
    value
        .map(|v| Filter::parse(&v).map_err(|e| FieldError::new(e.at, e.message)))
        .transpose()
}

/// Headers Herald sets itself, or that would break the request if a subscription overrode them.
pub fn is_reserved_header(lowercase_name: &str) -> bool {
    matches!(
        lowercase_name,
        "content-type"
            | "content-length"
            | "host"
            | "user-agent"
            | "authorization"
            | "transfer-encoding"
            | "connection"
            | "te"
            | "upgrade"
            | "expect"
            | "keep-alive"
            | "proxy-authorization"
    ) || lowercase_name.starts_with("webhook-")
}

/// Up to [`MAX_HEADERS`] extra headers, names lowercased; null means none.
fn parse_headers(value: Option<Value>) -> Result<BTreeMap<String, String>, FieldError> {
    let err = |message: String| FieldError::new("headers", message);
    let map = match value {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(err("`headers` must be an object of name: value".into())),
    };
    if map.len() > MAX_HEADERS {
        return Err(err(format!("at most {MAX_HEADERS} headers")));
    }
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(err(format!(
                "`{}` is not a valid header name",
                name.chars().take(60).collect::<String>()
            )));
        }
        if is_reserved_header(&lower) {
            return Err(err(format!(
                "`{lower}` is set by Herald and cannot be overridden (use auth_token for authorization)"
            )));
        }
        let Value::String(value) = value else {
            return Err(err(format!("the value of `{lower}` must be a string")));
        };
        if value.len() > MAX_HEADER_VALUE || http::HeaderValue::from_str(&value).is_err() {
            return Err(err(format!(
                "the value of `{lower}` is not a valid header value (visible text, at most {MAX_HEADER_VALUE} bytes)"
            )));
        }
        out.insert(lower, value);
    }
    Ok(out)
}

/// Visible ASCII, sent as `Bearer <token>`; empty or null means none.
fn parse_auth_token(token: Option<String>) -> Result<Option<String>, FieldError> {
    match token {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) if t.chars().all(|c| c.is_ascii_graphic()) => Ok(Some(t)),
        Some(_) => Err(FieldError::new(
            "auth_token",
            "`auth_token` must be visible ASCII without spaces",
        )),
    }
}

/// A whole number in [`RATE_LIMIT_RANGE`]; null means no limit.
fn parse_rate_limit(value: Option<Value>) -> Result<Option<u32>, FieldError> {
    let field = "rate_limit_per_sec";
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|v| RATE_LIMIT_RANGE.contains(v))
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "`rate_limit_per_sec` must be a whole number from 1 to 10000",
                )
            }),
        Some(_) => Err(FieldError::new(
            field,
            "`rate_limit_per_sec` must be a number",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DEV: AddressPolicy = AddressPolicy::DEVELOPMENT;
    const PROD: AddressPolicy = AddressPolicy::PRODUCTION;

    fn object(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            unreachable!("test input is an object")
        };
        map
    }

    fn valid() -> Value {
        json!({"platform": "custom", "url": "https://hooks.example.com/in", "events": ["document.created"]})
    }

    /// The body of [`valid`] with `changes` applied (null removes a field).
    fn new_with(changes: Value) -> Result<NewSubscription, FieldError> {
        let mut body = object(valid());
        for (k, v) in object(changes) {
            if v.is_null() {
                body.remove(&k);
            } else {
                body.insert(k, v);
            }
        }
        NewSubscription::parse(body, PROD)
    }

    #[track_caller]
    fn refused(changes: Value, field: &str, message: &str) {
        let err = new_with(changes.clone()).unwrap_err();
        assert_eq!(err.field, field, "{changes}: {err}");
        assert!(err.message.contains(message), "{changes}: {err}");
    }

    #[test]
    fn a_minimal_subscription_gets_the_defaults() {
        let new = NewSubscription::parse(object(valid()), PROD).unwrap();
        assert_eq!(new.platform, PlatformConfig::Custom);
        assert_eq!(new.url.as_str(), "https://hooks.example.com/in");
        assert_eq!(
            new.events,
            [EventPattern::parse("document.created").unwrap()]
        );
        assert!(new.enabled);
        assert_eq!((new.name, new.description), (None, None));
        assert!(new.headers.is_empty());
        assert_eq!((new.auth_token, new.rate_limit_per_sec), (None, None));
    }

    #[test]
    fn every_field_is_read() {
        let new = new_with(json!({
            "name": "  Docs  ",
            "description": "",
            "enabled": false,
            "headers": {"X-Team": "docs"},
            "auth_token": "tok_abc",
            "rate_limit_per_sec": 10,
            "events": ["article.*", "document.created", "article.*"],
        }))
        .unwrap();
        assert_eq!(new.name.as_deref(), Some("Docs"));
        assert_eq!(new.description, None);
        assert!(!new.enabled);
        assert_eq!(new.headers.get("x-team").map(String::as_str), Some("docs"));
        assert_eq!(new.auth_token.as_deref(), Some("tok_abc"));
        assert_eq!(new.rate_limit_per_sec, Some(10));
        let events: Vec<String> = new.events.iter().map(ToString::to_string).collect();
        assert_eq!(events, ["article.*", "document.created"], "repeats dropped");
    }

    #[test]
    fn platform_and_url_errors_name_their_field() {
        refused(
            json!({"platform": null}),
            "platform",
            "`platform` is required",
        );
        refused(
            json!({"platform": "carrier-pigeon"}),
            "platform",
            "unknown platform",
        );
        refused(json!({"url": null}), "url", "`url` is required");
        refused(json!({"url": "ftp://example.com/x"}), "url", "https://");
        refused(json!({"url": "http://example.com/x"}), "url", "https://");
        refused(json!({"url": "https://127.0.0.1/x"}), "url", "private");
        refused(json!({"url": 7}), "url", "`url` must be a string");
        let mut dev = object(valid());
        dev.insert("url".into(), json!("http://127.0.0.1:9/x"));
        assert!(NewSubscription::parse(dev, DEV).is_ok());
    }

    #[test]
    fn trello_needs_no_url() {
        let new = new_with(json!({
            "platform": "trello",
            "url": null,
            "platform_options": {"list_id": "l1", "api_key": "k1", "token": "t.1~"},
        }))
        .unwrap();
        assert_eq!(new.url.as_str(), TRELLO_CARDS_URL);
    }

    #[test]
    fn event_rules() {
        refused(json!({"events": null}), "events", "`events` is required");
        refused(json!({"events": []}), "events", "at least one");
        refused(
            json!({"events": "document.created"}),
            "events",
            "must be a list",
        );
        refused(json!({"events": [1]}), "events", "must be a string");
        refused(
            json!({"events": ["Document Created"]}),
            "events",
            "not valid",
        );
        refused(json!({"events": ["*.created"]}), "events", "not valid");
        let fifty_one: Vec<String> = (0..51).map(|n| format!("a.e{n}")).collect();
        refused(json!({"events": fifty_one}), "events", "at most 50");
        let fifty: Vec<String> = (0..50).map(|n| format!("a.e{n}")).collect();
        assert_eq!(new_with(json!({"events": fifty})).unwrap().events.len(), 50);
    }

    #[test]
    fn header_rules() {
        for reserved in [
            "webhook-id",
            "Webhook-Signature",
            "Authorization",
            "content-type",
            "Host",
            "proxy-authorization",
        ] {
            refused(
                json!({"headers": {reserved: "x"}}),
                "headers",
                "is set by Herald and cannot be overridden",
            );
        }
        assert!(is_reserved_header("webhook-anything"));
        assert!(!is_reserved_header("x-webhook-id"));

        let too_many: Map<String, Value> =
            (0..21).map(|n| (format!("x-h{n}"), json!("v"))).collect();
        refused(
            json!({"headers": too_many}),
            "headers",
            "at most 20 headers",
        );
        let twenty: Map<String, Value> = (0..20).map(|n| (format!("x-h{n}"), json!("v"))).collect();
        assert_eq!(
            new_with(json!({"headers": twenty})).unwrap().headers.len(),
            20
        );

        refused(
            json!({"headers": {"x a": "1"}}),
            "headers",
            "not a valid header name",
        );
        refused(
            json!({"headers": {"x-a": 1}}),
            "headers",
            "must be a string",
        );
        refused(
            json!({"headers": {"x-a": "1\r\nx-b: 2"}}),
            "headers",
            "not a valid header value",
        );
        refused(
            json!({"headers": {"x-a": "v".repeat(1025)}}),
            "headers",
            "at most 1024 bytes",
        );
        refused(json!({"headers": ["x-a"]}), "headers", "must be an object");
        let max = new_with(json!({"headers": {"x-a": "v".repeat(1024)}})).unwrap();
        assert_eq!(max.headers["x-a"].len(), 1024);
    }

    #[test]
    fn auth_token_rate_limit_and_text_rules() {
        refused(
            json!({"auth_token": "has space"}),
            "auth_token",
            "visible ASCII",
        );
        assert_eq!(
            new_with(json!({"auth_token": ""})).unwrap().auth_token,
            None
        );
        for bad in [json!(0), json!(10_001), json!(1.5), json!(-1)] {
            refused(
                json!({"rate_limit_per_sec": bad}),
                "rate_limit_per_sec",
                "from 1 to 10000",
            );
        }
        refused(
            json!({"rate_limit_per_sec": "5"}),
            "rate_limit_per_sec",
            "must be a number",
        );
        for ok in [1, 10_000] {
            let new = new_with(json!({"rate_limit_per_sec": ok})).unwrap();
            assert_eq!(new.rate_limit_per_sec, Some(ok));
        }
        refused(
            json!({"name": "n".repeat(201)}),
            "name",
            "at most 200 characters",
        );
        refused(
            json!({"description": "d".repeat(2001)}),
            "description",
            "at most 2000",
        );
        refused(json!({"enabled": "yes"}), "enabled", "true or false");
        refused(json!({"colour": "red"}), "colour", "unknown field `colour`");
    }

    #[test]
    fn teams_refuses_retired_connector_urls_at_create_and_patch() {
        const CONNECTOR: &str =
            "https://contoso.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d";
        const WORKFLOWS: &str = "https://prod-00.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sig=x";
        refused(
            json!({"platform": "teams", "url": CONNECTOR}),
            "url",
            "Office 365 connector webhooks were retired by Microsoft; create a Workflows webhook in Teams (Workflows → 'Post to a channel when a webhook request is received') and use its URL",
        );
        refused(
            json!({"platform": "teams", "url": "https://outlook.office.com/webhook/a/b"}),
            "url",
            "retired",
        );
        assert!(new_with(json!({"platform": "teams", "url": WORKFLOWS})).is_ok());
        assert!(new_with(json!({"platform": "slack", "url": CONNECTOR})).is_ok());

        let create = |platform: &str, url: &str| {
            let new = new_with(json!({"platform": platform, "url": url})).unwrap();
            Subscription::create(
                new,
                crate::ids::SubscriptionId::new(),
                crate::ids::TenantId::new(),
                crate::signing::SigningSecret::generate(),
                jiff::Timestamp::UNIX_EPOCH,
            )
        };
        let patch = |current: &Subscription, body: Value| {
            SubscriptionPatch::parse(object(body), current, PROD)
        };
        let teams = create("teams", WORKFLOWS);
        let err = patch(&teams, json!({"url": CONNECTOR})).unwrap_err();
        assert_eq!(err.field, "url");
        assert!(err.message.contains("retired"), "{err}");
        // Moving a connector URL to Teams is the same mistake.
        let custom = create("custom", CONNECTOR);
        let err = patch(&custom, json!({"platform": "teams"})).unwrap_err();
        assert_eq!(err.field, "url");
        assert!(patch(&custom, json!({"platform": "teams", "url": WORKFLOWS})).is_ok());
        // A patch that touches neither can still pause a subscription stored before the rule.
        let mut legacy = teams.clone();
        legacy.url = TargetUrl::from_stored(CONNECTOR).unwrap();
        assert!(patch(&legacy, json!({"enabled": false})).is_ok());
    }
}
