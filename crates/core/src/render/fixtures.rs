//! Subscriptions and events for the rendering tests, ordinary and hostile.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use super::RenderedRequest;
use crate::ids::{EventId, SubscriptionId, TenantId};
use crate::model::{Event, PlatformConfig, SecretEntry, Subscription, TrelloOptions};
use crate::pattern::{EventPattern, EventType};
use crate::signing::SigningSecret;
use crate::subscription::TrelloCredential;
use crate::target::TargetUrl;

pub const EVENT_ID: &str = "evt_01KBQ4Z8M00000000000000000";
pub const API_KEY: &str = "0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "ATTAsecretTokenValue9876543210";

pub fn sub(platform: PlatformConfig) -> Subscription {
    let now = jiff::Timestamp::now();
    Subscription {
        id: SubscriptionId::new(),
        tenant_id: TenantId::new(),
        name: None,
        description: None,
        platform,
        url: TargetUrl::from_stored("https://hooks.example.com/in/abc").unwrap(),
        events: vec![EventPattern::parse("*").unwrap()],
        enabled: true,
        disabled_reason: None,
        disabled_at: None,
        health: Default::default(),
        secrets: vec![SecretEntry {
            secret: SigningSecret::generate(),
            expires_at: None,
        }],
        headers: BTreeMap::new(),
        auth_token: None,
        rate_limit_per_sec: None,
        filter: None,
        template: None,
        created_at: now,
        updated_at: now,
    }
}

pub fn event(data: Value) -> Event {
    Event {
        id: EventId::parse(EVENT_ID).unwrap(),
        tenant_id: TenantId::new(),
        event_type: EventType::parse("document.created").unwrap(),
        timestamp: "2026-12-01T10:00:00.123456789Z".parse().unwrap(),
        data,
        subscriptions: Vec::new(),
    }
}

/// An operational event, whose `data.message` is shown as the detail.
pub fn operational(data: Value) -> Event {
    typed(OPERATIONAL_TYPE, data)
}

pub fn typed(event_type: &str, data: Value) -> Event {
    Event {
        event_type: EventType::parse(event_type).unwrap(),
        ..event(data)
    }
}

pub fn full_event() -> Event {
    event(json!({
        "title": "Getting started",
        "author": {"name": "Ada"},
        "url": "https://docs.example.com/d/1?a=1&b=2",
    }))
}

pub fn trello() -> PlatformConfig {
    PlatformConfig::Trello(TrelloOptions {
        list_id: "list123".to_owned(),
        api_key: TrelloCredential::parse(API_KEY).unwrap(),
        token: TrelloCredential::parse(TOKEN).unwrap(),
    })
}

pub fn mattermost() -> PlatformConfig {
    PlatformConfig::Mattermost {
        username: None,
        icon_url: None,
    }
}

pub fn body_json(request: &RenderedRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

const OPERATIONAL_TYPE: &str = "herald.subscription.failing";
/// The longest event type there can be (128 characters).
fn longest_type() -> String {
    format!("{}.{}", "a".repeat(63), "b".repeat(64))
}

/// Characters that escaping lengthens, that are many bytes, or that combine.
const HOSTILE: &[&str] = &[
    "&", "<", ">", "*", "_", "@", "\\", "|", "(", ")", "[", "]", "`", "#", "~", "\"", "😀", "é",
    "e\u{301}", "\u{301}", "\u{200B}", " ", "\n", "\u{0}", "a",
];

/// The longest accepted link (2,048 bytes), made of what Slack and Markdown must escape.
pub fn longest_link() -> String {
    let head = "https://docs.example.com/(x)?q=";
    let filler = "&|()\\".chars().cycle();
    head.chars().chain(filler).take(2048).collect()
}

/// Titles, authors and details of each hostile character at far past the length kept, crossed
/// with no link, an ordinary one and the longest, for an ordinary, an operational and the longest
/// event type.
/// Runs `check` on every hostile event and on 300 seeded random ones.
pub fn for_hostile_and_random_events(mut check: impl FnMut(&Event)) {
    hostile_events().iter().for_each(&mut check);
    let mut rng = StdRng::seed_from_u64(9);
    (0..300).for_each(|_| check(&random_event(&mut rng)));
}

pub fn hostile_events() -> Vec<Event> {
    let mut texts: Vec<String> = HOSTILE.iter().map(|h| h.repeat(5000)).collect();
    texts.push(HOSTILE.concat().repeat(300));
    let links = [
        None,
        Some("https://docs.example.com/d/1?a=1&b=2".to_owned()),
        Some(longest_link()),
        Some(format!("https://docs.example.com/?q={}", "&".repeat(2020))),
    ];
    let types = ["document.created", OPERATIONAL_TYPE, &longest_type()].map(str::to_owned);
    let mut events = Vec::new();
    for text in &texts {
        for link in &links {
            for event_type in &types {
                let data = json!({"title": text, "author": text, "message": text, "url": link});
                events.push(typed(event_type, data));
                // Without a title, the event type is the label.
                let data = json!({"author": text, "message": text, "url": link});
                events.push(typed(event_type, data));
            }
        }
    }
    events
}

fn random_text(rng: &mut StdRng) -> String {
    let len = match rng.gen_range(0..3) {
        0 => rng.gen_range(0..20),
        1 => rng.gen_range(0..400),
        _ => rng.gen_range(0..4000),
    };
    (0..len)
        .map(|_| HOSTILE[rng.gen_range(0..HOSTILE.len())])
        .collect()
}

/// An event with random hostile texts, each field sometimes absent, and sometimes a long link.
pub fn random_event(rng: &mut StdRng) -> Event {
    let mut data = Map::new();
    for field in ["title", "author", "message"] {
        if rng.gen_bool(0.8) {
            data.insert(field.to_owned(), Value::String(random_text(rng)));
        }
    }
    if rng.gen_bool(0.7) {
        let len = rng.gen_range(0..2100);
        let link: String = "https://docs.example.com/?q="
            .chars()
            .chain((0..len).map(|_| ['&', '|', '(', ')', '\\', 'a'][rng.gen_range(0..6)]))
            .collect();
        data.insert("url".to_owned(), Value::String(link));
    }
    let event_type = match rng.gen_range(0..3) {
        0 => "document.created".to_owned(),
        1 => OPERATIONAL_TYPE.to_owned(),
        _ => longest_type(),
    };
    typed(&event_type, Value::Object(data))
}
