//! A subscription's rules: what a valid new subscription and a valid change are, how a change is
//! applied, and how the signing secret rotates.
//!
//! The record itself ([`Subscription`]) is in [`crate::model`]; its rules are here, as methods and
//! parsers:
//!
//! - [`NewSubscription::parse`] and [`SubscriptionPatch::parse`] read API input (a JSON object) into
//!   typed values, with one [`FieldError`](crate::input::FieldError) naming the first bad field
//!   (`parse.rs`: events, filter, headers and the reserved ones, auth token, rate limit, URL);
//! - the platform and its options are read together, and Trello credentials obey one rule,
//!   [`TrelloCredential`] (`platform.rs`), which rendering relies on;
//! - [`Subscription::create`], [`Subscription::apply`] and [`Subscription::rotate_secret`] change
//!   the record. They take the time (and any new id or secret) from the caller, so they are tested
//!   on a fixed clock, and they never fail: everything that can be wrong was refused while parsing.
//!
//! Nothing here performs I/O, reads the clock, or puts a credential (secrets, auth tokens, Trello
//! keys) into an error message or a `Debug` output.

mod parse;
mod platform;

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};

pub use parse::{
    example_events, is_reserved_header, MAX_HEADERS, MAX_HEADER_VALUE, MAX_PATTERNS,
    RATE_LIMIT_RANGE,
};
pub use platform::{TrelloCredential, TrelloCredentialError, TRELLO_CARDS_URL};

use crate::filter::Filter;
use crate::ids::{SubscriptionId, TenantId};
use crate::model::{PlatformConfig, SecretEntry, Subscription};
use crate::pattern::EventPattern;
use crate::render::MessageTemplate;
use crate::signing::SigningSecret;
use crate::target::TargetUrl;

/// How long a rotated-out secret keeps signing, so subscribers can switch keys without a gap.
pub const ROTATION_OVERLAP: SignedDuration = SignedDuration::from_hours(24);

/// A subscription to create, as read from input: every field is valid.
#[derive(Clone, PartialEq)]
pub struct NewSubscription {
    pub name: Option<String>,
    pub description: Option<String>,
    pub platform: PlatformConfig,
    pub url: TargetUrl,
    pub events: Vec<EventPattern>,
    pub filter: Option<Filter>,
    pub template: Option<MessageTemplate>,
    pub enabled: bool,
    pub headers: BTreeMap<String, String>,
    pub auth_token: Option<String>,
    pub rate_limit_per_sec: Option<u32>,
}

/// A change to a subscription. `None` leaves a field as it is; for the optional fields,
/// `Some(None)` clears it.
#[derive(Clone, Default, PartialEq)]
pub struct SubscriptionPatch {
    pub platform: Option<PlatformConfig>,
    pub url: Option<TargetUrl>,
    pub events: Option<Vec<EventPattern>>,
    /// `Some(None)` removes the filter.
    pub filter: Option<Option<Filter>>,
    /// `Some(None)` removes the template.
    pub template: Option<Option<MessageTemplate>>,
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    /// Enabling also clears the reason Herald disabled it.
    pub enabled: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub auth_token: Option<Option<String>>,
    pub rate_limit_per_sec: Option<Option<u32>>,
}

impl Subscription {
    /// The subscription `input` describes, with one signing secret, as of `now`.
    pub fn create(
        input: NewSubscription,
        id: SubscriptionId,
        tenant_id: TenantId,
        secret: SigningSecret,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            tenant_id,
            name: input.name,
            description: input.description,
            platform: input.platform,
            url: input.url,
            events: input.events,
            filter: input.filter,
            template: input.template,
            enabled: input.enabled,
            disabled_reason: None,
            disabled_at: None,
            health: Default::default(),
            secrets: vec![SecretEntry {
                secret,
                expires_at: None,
            }],
            headers: input.headers,
            auth_token: input.auth_token,
            rate_limit_per_sec: input.rate_limit_per_sec,
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies `patch` as of `now`.
    pub fn apply(&mut self, patch: SubscriptionPatch, now: Timestamp) {
        let SubscriptionPatch {
            platform,
            url,
            events,
            filter,
            template,
            name,
            description,
            enabled,
            headers,
            auth_token,
            rate_limit_per_sec,
        } = patch;
        if let Some(platform) = platform {
            self.platform = platform;
        }
        if let Some(url) = url {
            self.url = url;
        }
        if let Some(events) = events {
            self.events = events;
        }
        if let Some(filter) = filter {
            self.filter = filter;
        }
        if let Some(template) = template {
            self.template = template;
        }
        if let Some(name) = name {
            self.name = name;
        }
        if let Some(description) = description {
            self.description = description;
        }
        match enabled {
            Some(true) => self.enable(now),
            Some(false) => self.disable(None, now),
            None => {}
        }
        if let Some(headers) = headers {
            self.headers = headers;
        }
        if let Some(auth_token) = auth_token {
            self.auth_token = auth_token;
        }
        if let Some(rate) = rate_limit_per_sec {
            self.rate_limit_per_sec = rate;
        }
        self.updated_at = now;
    }

    /// Stops deliveries to it as of `now`, with Herald's reason if Herald decided it. Disabling a
    /// disabled subscription keeps when and why it was first disabled.
    pub fn disable(&mut self, reason: Option<String>, now: Timestamp) {
        if !self.enabled {
            return;
        }
        self.enabled = false;
        self.disabled_reason = reason;
        self.disabled_at = Some(now);
        self.updated_at = now;
    }

    /// Delivers to it again as of `now`, forgetting why and when it was disabled.
    pub fn enable(&mut self, now: Timestamp) {
        self.enabled = true;
        self.disabled_reason = None;
        self.disabled_at = None;
        self.updated_at = now;
    }

    /// Makes `new` the current secret as of `now`. The previous current secret keeps signing for
    /// [`ROTATION_OVERLAP`]; older rotated-out secrets keep their expiry, and those already expired
    /// are dropped. Returns when the previous secret stops signing.
    pub fn rotate_secret(&mut self, new: SigningSecret, now: Timestamp) -> Timestamp {
        let expires = now.checked_add(ROTATION_OVERLAP).unwrap_or(Timestamp::MAX);
        let previous = std::mem::take(&mut self.secrets);
        self.secrets = std::iter::once(SecretEntry {
            secret: new,
            expires_at: None,
        })
        .chain(previous.into_iter().enumerate().filter_map(|(i, entry)| {
            let expires_at = if i == 0 {
                Some(expires)
            } else {
                entry.expires_at
            };
            // Only the first entry is current; a later one without an expiry should not exist.
            expires_at.is_some_and(|t| t > now).then_some(SecretEntry {
                secret: entry.secret,
                expires_at,
            })
        }))
        .collect();
        self.updated_at = now;
        expires
    }
}

// The auth token is a credential: these show only whether one is set. Header values may be
// credentials too (an `x-api-key`), and so may a chat platform's callback URL (a Slack or Teams
// webhook URL is its own secret): a stored subscription shows header names and the URL's host.
impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("platform", &self.platform)
            .field("url_host", &self.url.as_url().host_str())
            .field("events", &self.events)
            .field("filter", &self.filter)
            .field("template_set", &self.template.is_some())
            .field("enabled", &self.enabled)
            .field("disabled_reason", &self.disabled_reason)
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("auth_token_set", &self.auth_token.is_some())
            .field("secrets", &self.secrets.len())
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for NewSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSubscription")
            .field("name", &self.name)
            .field("platform", &self.platform)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("filter", &self.filter)
            .field("enabled", &self.enabled)
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("auth_token_set", &self.auth_token.is_some())
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SubscriptionPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionPatch")
            .field("platform", &self.platform)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("filter", &self.filter)
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field(
                "header_names",
                &self.headers.as_ref().map(|h| h.keys().collect::<Vec<_>>()),
            )
            .field(
                "auth_token_set",
                &self.auth_token.as_ref().map(Option::is_some),
            )
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::input::FieldError;
    use crate::model::TrelloOptions;
    use crate::target::AddressPolicy;

    const PROD: AddressPolicy = AddressPolicy::PRODUCTION;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn object(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            unreachable!("test input is an object")
        };
        map
    }

    /// A secret whose 24 key bytes are all `n`.
    fn secret(n: u8) -> SigningSecret {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode([n; 24]);
        SigningSecret::parse(&format!("whsec_{key}")).unwrap()
    }

    fn subscription(body: Value) -> Subscription {
        let new = NewSubscription::parse(object(body), PROD).unwrap();
        Subscription::create(
            new,
            SubscriptionId::new(),
            TenantId::new(),
            secret(1),
            at("2026-12-01T10:00:00Z"),
        )
    }

    fn custom() -> Subscription {
        subscription(json!({
            "name": "Docs",
            "platform": "custom",
            "url": "https://hooks.example.com/in",
            "events": ["document.*"],
            "headers": {"x-team": "docs"},
            "auth_token": "tok",
        }))
    }

    fn trello() -> Subscription {
        subscription(json!({
            "platform": "trello",
            "events": ["*"],
            "platform_options": {"list_id": "l1", "api_key": "key1", "token": "tok1"},
        }))
    }

    fn patch(sub: &Subscription, body: Value) -> Result<SubscriptionPatch, FieldError> {
        SubscriptionPatch::parse(object(body), sub, PROD)
    }

    #[test]
    fn a_filter_is_read_at_create_and_patch_and_null_removes_it() {
        let handbook = json!({"path": "data.space.name", "eq": "Handbook"});
        let mut sub = subscription(json!({
            "platform": "custom", "url": "https://hooks.example.com/in",
            "events": ["document.published"], "filter": handbook.clone(),
        }));
        let shown = sub.filter.as_ref().map(crate::filter::Filter::to_json);
        assert_eq!(shown, Some(handbook));
        // Stored as JSON and read back the same.
        let stored: Subscription =
            serde_json::from_value(serde_json::to_value(&sub).unwrap()).unwrap();
        assert_eq!(stored.filter, sub.filter);

        let bad = json!({"any": [{"path": "data.space.name", "in": "Handbook"}]});
        let err = patch(&sub, json!({"filter": bad})).unwrap_err();
        assert_eq!(err.field, "filter.any[0].in", "{err}");
        let err = NewSubscription::parse(
            object(
                json!({"platform": "custom", "url": "https://hooks.example.com/in",
                "events": ["*"], "filter": {"path": "space", "eq": 1}}),
            ),
            PROD,
        )
        .unwrap_err();
        assert_eq!(err.field, "filter.path", "{err}");

        // Absent leaves it; null removes it.
        let untouched = patch(&sub, json!({"name": "Handbook"})).unwrap();
        assert_eq!(untouched.filter, None);
        sub.apply(
            patch(&sub, json!({"filter": null})).unwrap(),
            at("2026-12-02T10:00:00Z"),
        );
        assert_eq!(sub.filter, None);
        let unfiltered = serde_json::to_value(&sub).unwrap();
        assert!(unfiltered.get("filter").is_none(), "no filter, no field");
    }

    #[test]
    fn a_subscription_s_debug_shows_no_credential() {
        let mut sub = custom();
        sub.url =
            TargetUrl::parse("https://hooks.slack.com/services/T1/B2/very-secret", PROD).unwrap();
        sub.headers
            .insert("x-api-key".into(), "hdr-secret-value".into());
        sub.auth_token = Some("bearer-secret-9f3".into());
        let shown = format!("{sub:?}");
        for secret in [
            "bearer-secret-9f3",
            "very-secret",
            "hdr-secret-value",
            "whsec_",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("hooks.slack.com") && shown.contains("x-api-key"),
            "{shown}"
        );
        let trello = format!("{:?}", trello());
        assert!(
            !trello.contains("key1") && !trello.contains("tok1"),
            "{trello}"
        );
    }

    #[test]
    fn a_created_subscription_has_one_current_secret_and_the_given_time() {
        let sub = custom();
        let now = at("2026-12-01T10:00:00Z");
        assert_eq!((sub.created_at, sub.updated_at), (now, now));
        assert_eq!(sub.secrets.len(), 1);
        assert_eq!(sub.secrets[0].expires_at, None);
        assert_eq!(sub.current_secret(), Some(&secret(1)));
        assert!(sub.enabled && sub.disabled_reason.is_none());
    }

    #[test]
    fn a_patch_changes_what_it_names_and_nothing_else() {
        let mut sub = custom();
        let before = sub.clone();
        let later = at("2026-12-02T08:00:00Z");
        let p = patch(
            &sub,
            json!({"name": "Renamed", "events": ["book.updated"], "auth_token": null}),
        )
        .unwrap();
        sub.apply(p, later);
        assert_eq!(sub.name.as_deref(), Some("Renamed"));
        assert_eq!(sub.events, [EventPattern::parse("book.updated").unwrap()]);
        assert_eq!(sub.auth_token, None);
        assert_eq!(sub.updated_at, later);
        assert_eq!(sub.created_at, before.created_at);
        assert_eq!(
            (&sub.url, &sub.headers, &sub.platform, &sub.secrets),
            (
                &before.url,
                &before.headers,
                &before.platform,
                &before.secrets
            )
        );

        // An empty patch only touches the time.
        let mut same = before.clone();
        same.apply(patch(&before, json!({})).unwrap(), later);
        assert_eq!(
            same,
            Subscription {
                updated_at: later,
                ..before
            }
        );
    }

    #[test]
    fn enabling_clears_the_reason_and_time_disabling_keeps_the_first() {
        let mut sub = custom();
        let gone = at("2026-12-02T07:00:00Z");
        sub.disable(Some("the endpoint answered 410 Gone".into()), gone);
        assert!(!sub.enabled);
        assert_eq!(sub.disabled_at, Some(gone));
        let now = at("2026-12-02T08:00:00Z");
        let mut renamed = sub.clone();
        renamed.apply(patch(&sub, json!({"name": "x"})).unwrap(), now);
        assert!(renamed.disabled_reason.is_some());
        // Disabled again (by its owner): when and why it first stopped stand.
        renamed.apply(patch(&sub, json!({"enabled": false})).unwrap(), now);
        assert_eq!(renamed.disabled_at, Some(gone));
        assert!(renamed.disabled_reason.is_some());
        sub.apply(patch(&sub, json!({"enabled": true})).unwrap(), now);
        assert!(sub.enabled);
        assert_eq!((sub.disabled_reason.clone(), sub.disabled_at), (None, None));
        // Disabled by its owner: the time, no reason of Herald's.
        sub.apply(patch(&sub, json!({"enabled": false})).unwrap(), now);
        assert_eq!((sub.disabled_reason, sub.disabled_at), (None, Some(now)));
    }

    #[test]
    fn a_bad_patch_names_its_field() {
        let sub = custom();
        for (body, field) in [
            (json!({"url": "ftp://example.com/x"}), "url"),
            (json!({"url": null}), "url"),
            (json!({"events": []}), "events"),
            (json!({"events": null}), "events"),
            (json!({"enabled": null}), "enabled"),
            (json!({"platform": "nope"}), "platform"),
            (json!({"platform": "trello"}), "platform_options.list_id"),
            (json!({"headers": {"host": "x"}}), "headers"),
            (json!({"colour": "red"}), "colour"),
        ] {
            let err = patch(&sub, body.clone()).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
        assert_eq!(
            patch(&sub, json!({"url": null})).unwrap_err().message,
            "`url` cannot be removed"
        );
    }

    #[test]
    fn null_clears_optional_fields() {
        let mut sub = custom();
        sub.rate_limit_per_sec = Some(5);
        let p = patch(
            &sub,
            json!({"name": null, "headers": null, "rate_limit_per_sec": null, "description": "  "}),
        )
        .unwrap();
        sub.apply(p, at("2026-12-02T08:00:00Z"));
        assert_eq!((sub.name, sub.description), (None, None));
        assert!(sub.headers.is_empty());
        assert_eq!(sub.rate_limit_per_sec, None);
    }

    #[test]
    fn platform_options_resolve_against_the_current_platform() {
        let sub = trello();
        let PlatformConfig::Trello(current) = sub.platform.clone() else {
            panic!("not trello")
        };
        // Naming the same platform again keeps its options (credentials are never sent back).
        let p = patch(&sub, json!({"platform": "trello"})).unwrap();
        assert_eq!(p.platform, Some(sub.platform.clone()));
        // Options alone apply to the current platform, and must be complete.
        let p = patch(
            &sub,
            json!({"platform_options": {"list_id": "l2", "api_key": "key2", "token": "tok2"}}),
        )
        .unwrap();
        let Some(PlatformConfig::Trello(TrelloOptions { list_id, .. })) = p.platform else {
            panic!("not trello: {p:?}")
        };
        assert_eq!((list_id.as_str(), current.list_id.as_str()), ("l2", "l1"));
        let err = patch(&sub, json!({"platform_options": {"list_id": "l2"}})).unwrap_err();
        assert_eq!(err.field, "platform_options.api_key");
        // Another platform starts from its own (here: no) options.
        let p = patch(&sub, json!({"platform": "slack"})).unwrap();
        assert_eq!(p.platform, Some(PlatformConfig::Slack));
    }

    #[test]
    fn removing_the_url_of_a_trello_subscription_points_it_at_trello() {
        let mut sub = trello();
        sub.url = TargetUrl::parse("https://elsewhere.example.com/", PROD).unwrap();
        let p = patch(&sub, json!({"url": null})).unwrap();
        assert_eq!(
            p.url.map(|u| u.as_str().to_owned()).as_deref(),
            Some(TRELLO_CARDS_URL)
        );
        // The platform named in the same patch decides.
        let custom = custom();
        let p = patch(
            &custom,
            json!({"platform": "trello", "url": null,
                   "platform_options": {"list_id": "l1", "api_key": "k", "token": "t"}}),
        )
        .unwrap();
        assert_eq!(
            p.url.map(|u| u.as_str().to_owned()).as_deref(),
            Some(TRELLO_CARDS_URL)
        );
    }

    #[test]
    fn rotation_keeps_the_previous_secret_for_24_hours() {
        let mut sub = custom();
        let t0 = at("2026-12-01T12:00:00Z");
        let expires = sub.rotate_secret(secret(2), t0);
        assert_eq!(expires, at("2026-12-02T12:00:00Z"));
        assert_eq!(sub.updated_at, t0);
        assert_eq!(sub.current_secret(), Some(&secret(2)));
        assert_eq!(
            sub.secrets,
            [
                SecretEntry {
                    secret: secret(2),
                    expires_at: None
                },
                SecretEntry {
                    secret: secret(1),
                    expires_at: Some(expires)
                },
            ]
        );
        // Both sign until the overlap ends, then only the new one.
        let signing = |now: &str| sub.signing_secrets(at(now)).cloned().collect::<Vec<_>>();
        assert_eq!(signing("2026-12-02T11:59:59Z"), [secret(2), secret(1)]);
        assert_eq!(signing("2026-12-02T12:00:00Z"), [secret(2)]);
    }

    #[test]
    fn rotating_again_keeps_unexpired_secrets_and_drops_expired_ones() {
        let mut sub = custom();
        sub.rotate_secret(secret(2), at("2026-12-01T12:00:00Z"));
        // Within the first overlap: three secrets sign, the oldest keeps its own expiry.
        let second = sub.rotate_secret(secret(3), at("2026-12-01T18:00:00Z"));
        assert_eq!(
            sub.secrets,
            [
                SecretEntry {
                    secret: secret(3),
                    expires_at: None
                },
                SecretEntry {
                    secret: secret(2),
                    expires_at: Some(second)
                },
                SecretEntry {
                    secret: secret(1),
                    expires_at: Some(at("2026-12-02T12:00:00Z"))
                },
            ]
        );
        // After the first overlap ended, secret 1 is dropped on the next rotation.
        let third = sub.rotate_secret(secret(4), at("2026-12-02T12:00:00Z"));
        assert_eq!(
            sub.secrets,
            [
                SecretEntry {
                    secret: secret(4),
                    expires_at: None
                },
                SecretEntry {
                    secret: secret(3),
                    expires_at: Some(third)
                },
                SecretEntry {
                    secret: secret(2),
                    expires_at: Some(second)
                },
            ]
        );
        // Long after: only the new one and the one just rotated out.
        sub.rotate_secret(secret(5), at("2027-01-01T00:00:00Z"));
        assert_eq!(sub.secrets.len(), 2);
        assert_eq!(sub.secrets[1].secret, secret(4));
    }

    #[test]
    fn stored_records_keep_their_shape() {
        // A record as the stores kept it before URLs and Trello credentials were typed.
        let stored = json!({
            "id": SubscriptionId::new(),
            "tenant_id": TenantId::new(),
            "name": null,
            "description": null,
            "platform": {"platform": "trello", "list_id": "l1", "api_key": "key1", "token": "t.1~"},
            "url": "https://api.trello.com/1/cards",
            "events": ["*"],
            "enabled": true,
            "disabled_reason": null,
            "secrets": [{"secret": format!("whsec_{}", "A".repeat(32)), "expires_at": null}],
            "headers": {},
            "auth_token": null,
            "rate_limit_per_sec": null,
            "created_at": "2026-12-01T10:00:00Z",
            "updated_at": "2026-12-01T10:00:00Z",
        });
        let sub: Subscription = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(sub.url.as_str(), TRELLO_CARDS_URL);
        assert_eq!(serde_json::to_value(&sub).unwrap(), stored);
    }

    #[test]
    fn debug_output_hides_the_auth_token() {
        let new = NewSubscription::parse(
            object(
                json!({"platform": "custom", "url": "https://h.example.com/",
                          "events": ["*"], "auth_token": "s3cret-token"}),
            ),
            PROD,
        )
        .unwrap();
        let debug = format!("{new:?}");
        assert!(!debug.contains("s3cret-token") && debug.contains("auth_token_set: true"));
        let p = patch(&custom(), json!({"auth_token": "s3cret-token"})).unwrap();
        assert!(!format!("{p:?}").contains("s3cret-token"));
    }

    #[test]
    fn a_template_is_checked_kept_and_removed() {
        let slack = |template: Value| {
            NewSubscription::parse(
                object(
                    json!({"platform": "slack", "url": "https://hooks.slack.com/services/T/B/x",
                              "events": ["document.published"], "template": template}),
                ),
                PROD,
            )
        };
        let new = slack(json!("{{ data.author.name }} published {{ data.title }}")).unwrap();
        assert!(new.template.is_some());
        assert_eq!(slack(json!("")).unwrap().template, None);
        assert_eq!(slack(Value::Null).unwrap().template, None);

        let err = slack(json!("a\n{% if data %}\nb")).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code, err.line),
            ("template", "invalid_template", Some(2))
        );
        assert!(
            err.message.starts_with("line 2: unexpected end of input"),
            "{err}"
        );
        // Unknown filters and runaway loops show on the type's example.
        let err = slack(json!("{{ data.title | shout }}")).unwrap_err();
        assert_eq!((err.code, err.line), ("invalid_template", Some(1)));
        let err = slack(json!("{% for i in range(90000) %}{{ i }}{% endfor %}")).unwrap_err();
        assert_eq!(err.code, "invalid_template");

        let err = NewSubscription::parse(
            object(
                json!({"platform": "custom", "url": "https://h.example.com/", "events": ["*"],
                          "template": "{{ type }}"}),
            ),
            PROD,
        )
        .unwrap_err();
        assert_eq!(err.field, "template");
        assert!(err
            .message
            .contains("custom subscriptions receive the signed event envelope"));

        let mut sub = subscription(
            json!({"platform": "teams", "url": "https://prod-00.westus.logic.azure.com/workflows/x",
                                          "events": ["document.*"], "template": "{{ data.title }}"}),
        );
        let keep = patch(&sub, json!({"name": "n"})).unwrap();
        assert_eq!(keep.template, None, "absent: kept");
        let p = patch(&sub, json!({"template": "**{{ data.title }}**"})).unwrap();
        sub.apply(p, at("2026-12-01T11:00:00Z"));
        assert_eq!(
            sub.template.as_ref().map(MessageTemplate::as_str),
            Some("**{{ data.title }}**")
        );
        let err = patch(&sub, json!({"platform": "custom"})).unwrap_err();
        assert_eq!(
            err.field, "template",
            "a custom subscription cannot keep a template"
        );
        let p = patch(&sub, json!({"template": null})).unwrap();
        sub.apply(p, at("2026-12-01T12:00:00Z"));
        assert_eq!(sub.template, None);
        assert!(patch(&sub, json!({"platform": "custom"})).is_ok());
    }
}
