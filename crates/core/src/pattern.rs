//! Event types (`document.created`) and the patterns subscriptions use to select them
//! (`document.created`, `article.*`, `*`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) const MAX_EVENT_TYPE_LEN: usize = 128;

/// Why an event type or pattern did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("event type `{0}` is not valid: use dotted lowercase names such as `document.created` (letters, digits, `_` and `-`, at least two parts, at most 128 characters)")]
    InvalidEventType(String),
    #[error("event pattern `{0}` is not valid: use an event type (`document.created`), a prefix ending in `.*` (`article.*`), or `*`")]
    InvalidPattern(String),
}

/// A dotted lowercase event type name, such as `document.published`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(String);

fn valid_segment(segment: &str) -> bool {
    let mut chars = segment.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

impl EventType {
    pub fn parse(input: &str) -> Result<Self, PatternError> {
        let ok = input.len() <= MAX_EVENT_TYPE_LEN
            && input.split('.').count() >= 2
            && input.split('.').all(valid_segment);
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(PatternError::InvalidEventType(
                input.chars().take(64).collect(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is one of Herald's own operational events (`herald.…`): only Herald emits them,
    /// and `*` does not match them (a subscription names `herald.*` or one of them).
    pub fn is_operational(&self) -> bool {
        self.0.starts_with(OPERATIONAL_PREFIX)
    }

    /// One of [`OPERATIONAL_EVENT_TYPES`].
    pub fn operational(kind: Operational) -> Self {
        Self(kind.as_str().to_owned())
    }

    /// `webhook.test`, the type of "save and test" events.
    pub fn webhook_test() -> Self {
        Self("webhook.test".to_owned())
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventType({})", self.0)
    }
}

/// What a subscription listens to.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum EventPattern {
    /// Every event.
    All,
    /// Exactly one type.
    Exact(EventType),
    /// Every type under a prefix: `article.*` holds the prefix `article` and matches `article.created`
    /// and `article.comment.added`, not `article` or `articles.created`.
    Prefix(String),
}

impl EventPattern {
    pub fn parse(input: &str) -> Result<Self, PatternError> {
        let err = || PatternError::InvalidPattern(input.chars().take(64).collect());
        if input == "*" {
            return Ok(Self::All);
        }
        if let Some(prefix) = input.strip_suffix(".*") {
            let ok = !prefix.is_empty()
                && prefix.len() < MAX_EVENT_TYPE_LEN
                && prefix.split('.').all(valid_segment);
            return if ok {
                Ok(Self::Prefix(prefix.to_owned()))
            } else {
                Err(err())
            };
        }
        EventType::parse(input).map(Self::Exact).map_err(|_| err())
    }

    pub fn matches(&self, event_type: &EventType) -> bool {
        match self {
            Self::All => !event_type.is_operational(),
            Self::Exact(t) => t == event_type,
            Self::Prefix(p) => event_type
                .as_str()
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('.')),
        }
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Exact(t) => f.write_str(t.as_str()),
            Self::Prefix(p) => write!(f, "{p}.*"),
        }
    }
}

impl fmt::Debug for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventPattern({self})")
    }
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <$ty>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(EventType);
string_serde!(EventPattern);

/// The namespace of Herald's operational events, reserved: intake refuses it.
pub const OPERATIONAL_PREFIX: &str = "herald.";

/// Herald's operational events about a tenant's own subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operational {
    SubscriptionFailing,
    SubscriptionDisabled,
    SubscriptionRecovered,
    DeliveryExhausted,
    SecretRotated,
}

impl Operational {
    pub const ALL: [Self; 5] = [
        Self::SubscriptionFailing,
        Self::SubscriptionDisabled,
        Self::SubscriptionRecovered,
        Self::DeliveryExhausted,
        Self::SecretRotated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubscriptionFailing => "herald.subscription.failing",
            Self::SubscriptionDisabled => "herald.subscription.disabled",
            Self::SubscriptionRecovered => "herald.subscription.recovered",
            Self::DeliveryExhausted => "herald.delivery.exhausted",
            Self::SecretRotated => "herald.secret.rotated",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::SubscriptionFailing => "A subscription keeps failing: its breaker opened, or half or nine tenths of the span after which Herald disables it passed without a success.",
            Self::SubscriptionDisabled => "Herald disabled a subscription (410 Gone, or no success for the whole span).",
            Self::SubscriptionRecovered => "A subscription reported failing delivered successfully again.",
            Self::DeliveryExhausted => "A delivery used up its retry schedule and failed.",
            Self::SecretRotated => "A subscription's signing secret was rotated.",
        }
    }
}

/// One event type of the built-in catalog: its name, what it means and an example `data` (JSON
/// text, parsed by [`BuiltinEventType::example`]), shaped as a documentation platform sends it and
/// as Herald's chat messages read it (`title`, `author.name`, `url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinEventType {
    pub name: &'static str,
    pub description: &'static str,
    example: &'static str,
}

impl BuiltinEventType {
    /// The example `data`. Always an object: the catalog's texts are checked by a unit test.
    pub fn example(&self) -> serde_json::Value {
        serde_json::from_str(self.example).unwrap_or(serde_json::Value::Null)
    }

    /// The built-in type called `name`, if there is one.
    pub fn find(name: &str) -> Option<&'static BuiltinEventType> {
        BUILTIN_EVENT_TYPES.iter().find(|t| t.name == name)
    }
}

const fn builtin(
    name: &'static str,
    description: &'static str,
    example: &'static str,
) -> BuiltinEventType {
    BuiltinEventType {
        name,
        description,
        example,
    }
}

/// The built-in catalog of a documentation platform's events (DESIGN.md).
pub const BUILTIN_EVENT_TYPES: &[BuiltinEventType] = &[
    builtin(
        "document.created",
        "A document was created.",
        r#"{"id":"doc_1042","title":"Getting started","space":{"key":"HB","name":"Handbook"},"language":"en","author":{"id":"usr_7","name":"Ada Lovelace"},"url":"https://docs.example.com/handbook/getting-started"}"#,
    ),
    builtin(
        "document.updated",
        "A document was changed.",
        r#"{"id":"doc_1042","title":"Getting started","space":{"key":"HB","name":"Handbook"},"language":"en","version":7,"author":{"id":"usr_7","name":"Ada Lovelace"},"url":"https://docs.example.com/handbook/getting-started"}"#,
    ),
    builtin(
        "document.deleted",
        "A document was deleted.",
        r#"{"id":"doc_1042","title":"Getting started","space":{"key":"HB","name":"Handbook"},"author":{"id":"usr_7","name":"Ada Lovelace"}}"#,
    ),
    builtin(
        "document.published",
        "A document was published.",
        r#"{"id":"doc_1042","title":"Getting started","space":{"key":"HB","name":"Handbook"},"language":"en","version":7,"author":{"id":"usr_7","name":"Ada Lovelace"},"url":"https://docs.example.com/handbook/getting-started"}"#,
    ),
    builtin(
        "article.created",
        "An article was created.",
        r#"{"id":"art_311","title":"Release notes 4.2","book":{"id":"book_12","title":"Release notes"},"author":{"id":"usr_9","name":"Grace Hopper"},"url":"https://docs.example.com/release-notes/4-2"}"#,
    ),
    builtin(
        "article.updated",
        "An article was changed.",
        r#"{"id":"art_311","title":"Release notes 4.2","book":{"id":"book_12","title":"Release notes"},"version":3,"author":{"id":"usr_9","name":"Grace Hopper"},"url":"https://docs.example.com/release-notes/4-2"}"#,
    ),
    builtin(
        "article.deleted",
        "An article was deleted.",
        r#"{"id":"art_311","title":"Release notes 4.2","book":{"id":"book_12","title":"Release notes"},"author":{"id":"usr_9","name":"Grace Hopper"}}"#,
    ),
    builtin(
        "article.published",
        "An article was published.",
        r#"{"id":"art_311","title":"Release notes 4.2","book":{"id":"book_12","title":"Release notes"},"author":{"id":"usr_9","name":"Grace Hopper"},"url":"https://docs.example.com/release-notes/4-2"}"#,
    ),
    builtin(
        "book.created",
        "A book was created.",
        r#"{"id":"book_12","title":"Release notes","space":{"key":"HB","name":"Handbook"},"author":{"id":"usr_9","name":"Grace Hopper"},"url":"https://docs.example.com/release-notes"}"#,
    ),
    builtin(
        "book.updated",
        "A book was changed.",
        r#"{"id":"book_12","title":"Release notes","space":{"key":"HB","name":"Handbook"},"chapters":14,"author":{"id":"usr_9","name":"Grace Hopper"},"url":"https://docs.example.com/release-notes"}"#,
    ),
    builtin(
        "comment.created",
        "A comment was posted.",
        r#"{"id":"cmt_88","text":"Should this mention the new sign-in flow?","document":{"id":"doc_1042","title":"Getting started"},"author":{"id":"usr_3","name":"Alan Turing"},"url":"https://docs.example.com/handbook/getting-started#cmt_88"}"#,
    ),
    builtin(
        "member.invited",
        "A member was invited.",
        r#"{"email":"katherine@example.com","role":"editor","space":{"key":"HB","name":"Handbook"},"author":{"id":"usr_7","name":"Ada Lovelace"}}"#,
    ),
    builtin(
        "webhook.test",
        "A test event sent by \"save and test\".",
        r#"{"title":"Test event from Herald","message":"If you can read this, your webhook works.","subscription_id":"sub_01JEXAMPLE0000000000000000"}"#,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> EventType {
        EventType::parse(s).unwrap()
    }

    #[test]
    fn exact_pattern_matches_only_its_type() {
        let p = EventPattern::parse("document.created").unwrap();
        assert!(p.matches(&t("document.created")));
        assert!(!p.matches(&t("document.updated")));
        assert!(!p.matches(&t("document.created.v2")));
    }

    #[test]
    fn prefix_pattern_matches_below_its_prefix_only() {
        let p = EventPattern::parse("article.*").unwrap();
        assert!(p.matches(&t("article.created")));
        assert!(p.matches(&t("article.comment.added")));
        assert!(!p.matches(&t("articles.created")));
        assert!(!p.matches(&t("document.created")));
    }

    #[test]
    fn star_matches_everything_but_herald_s_own_events() {
        let star = EventPattern::parse("*").unwrap();
        assert!(star.matches(&t("member.invited")));
        assert!(star.matches(&t("heraldry.created")));
        for kind in Operational::ALL {
            let op = EventType::operational(kind);
            assert_eq!(EventType::parse(kind.as_str()).unwrap(), op);
            assert!(op.is_operational());
            assert!(!star.matches(&op), "{op}");
            assert!(EventPattern::parse("herald.*").unwrap().matches(&op));
        }
        assert!(EventPattern::parse("herald.subscription.*")
            .unwrap()
            .matches(&EventType::operational(Operational::SubscriptionDisabled)));
    }

    #[test]
    fn bad_patterns_and_types_are_rejected() {
        for bad in [
            "",
            ".",
            "document",
            "Document.created",
            "document..created",
            "document.*.x",
            "*.created",
            "document.",
            "doc ument.created",
            "**",
            "document.**",
            ".*",
        ] {
            assert!(
                EventPattern::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
        assert!(EventType::parse("article.*").is_err());
        assert!(EventType::parse(&format!("a.{}", "b".repeat(200))).is_err());
    }

    #[test]
    fn patterns_round_trip_as_text() {
        for p in ["*", "article.*", "document.created", "a.b.*"] {
            assert_eq!(EventPattern::parse(p).unwrap().to_string(), p);
        }
    }

    #[test]
    fn the_builtin_catalog_is_all_valid() {
        assert_eq!(
            EventType::parse("webhook.test").unwrap(),
            EventType::webhook_test()
        );
        for BuiltinEventType { name, .. } in BUILTIN_EVENT_TYPES {
            EventType::parse(name).unwrap();
        }
    }

    #[test]
    fn every_builtin_type_has_an_object_example_and_is_found_by_name() {
        for builtin in BUILTIN_EVENT_TYPES {
            assert!(builtin.example().is_object(), "{}", builtin.name);
            assert_eq!(BuiltinEventType::find(builtin.name), Some(builtin));
        }
        assert_eq!(BuiltinEventType::find("document.nope"), None);
    }
}
