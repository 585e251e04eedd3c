//! Platform rendering: turns an event into the HTTP request a subscription's platform expects.
//!
//! `custom` gets the Standard Webhooks envelope; Slack, Mattermost and Teams get a readable message
//! (type, title, author, link) in their own shape; Trello gets a card-creation call to its REST API.
//! The content type, signatures, the subscription's auth token and its extra headers are added by
//! the caller, not here.
//!
//! Trello credentials (`api_key`, `token`) must never go anywhere but the `authorization` header of
//! the request built here: not into the URL, the body, an error or a `Debug` output, since URLs and
//! bodies end up in logs and in the delivery log.

use std::fmt;

use serde::Serialize;
use serde_json::{json, Value};

use crate::model::{Event, PlatformConfig, Subscription, TrelloOptions};
use crate::subscription::TRELLO_CARDS_URL;

const MAX_TITLE_CHARS: usize = 200;
const MAX_AUTHOR_CHARS: usize = 100;
const MAX_LINK_CHARS: usize = 2048;
/// Slack rejects a section whose text is longer than this.
const SLACK_SECTION_MAX_CHARS: usize = 3000;
const TRELLO_NAME_MAX_CHARS: usize = 512;
/// Trello's limit for a card description.
const TRELLO_DESC_MAX_CHARS: usize = 16384;
const DEBUG_BODY_PREVIEW_BYTES: usize = 512;

/// The HTTP request to send for one delivery, before the caller adds content type, signatures,
/// auth token and user headers.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedRequest {
    pub url: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// Headers whose values are credentials and stay out of `Debug` output. The caller may push the
/// subscription's own headers here too, so this is broader than the one header `render` sets.
fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || ["token", "secret", "api-key", "apikey", "password"]
        .iter()
        .any(|word| name.contains(word))
}

impl fmt::Debug for RenderedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(name, value)| {
                        let value = if is_sensitive_header(name) {
                            "<redacted>"
                        } else {
                            value.as_str()
                        };
                        (name, value)
                    }))
                    .finish()
            }
        }
        // A bounded preview: bodies can be large, and logs should stay readable.
        struct Body<'a>(&'a [u8]);
        impl fmt::Debug for Body<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let cut = self.0.len().min(DEBUG_BODY_PREVIEW_BYTES);
                let preview = String::from_utf8_lossy(self.0.get(..cut).unwrap_or_default());
                write!(f, "{preview:?}")?;
                if cut < self.0.len() {
                    f.write_str("…")?;
                }
                write!(f, " ({} bytes)", self.0.len())
            }
        }
        f.debug_struct("RenderedRequest")
            .field("url", &self.url)
            .field("headers", &Headers(&self.headers))
            .field("body", &Body(&self.body))
            .finish()
    }
}

/// Why a request could not be rendered. Messages never carry credential values.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("could not serialize the {platform} payload")]
    Serialize {
        platform: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Renders `event` for `sub`'s platform.
pub fn render(sub: &Subscription, event: &Event) -> Result<RenderedRequest, RenderError> {
    match &sub.platform {
        PlatformConfig::Custom => Ok(RenderedRequest {
            url: sub.url.to_string(),
            body: envelope_bytes(event).map_err(serialize_error("custom"))?,
            headers: Vec::new(),
        }),
        PlatformConfig::Slack => {
            json_request(sub.url.as_str(), "slack", &slack_body(&Summary::of(event)))
        }
        PlatformConfig::Mattermost { username, icon_url } => json_request(
            sub.url.as_str(),
            "mattermost",
            &MattermostBody {
                text: mattermost_text(&Summary::of(event)),
                username: non_empty(username.as_deref()),
                icon_url: non_empty(icon_url.as_deref()),
            },
        ),
        PlatformConfig::Teams => {
            json_request(sub.url.as_str(), "teams", &teams_body(&Summary::of(event)))
        }
        PlatformConfig::Trello(options) => trello_request(options, &Summary::of(event)),
    }
}

/// The Standard Webhooks envelope bytes: {"id","type","timestamp","data"} in that order; timestamp RFC 3339 UTC with whole seconds, e.g. "2026-12-01T10:00:00Z".
#[cfg(test)]
fn envelope(event: &Event) -> Vec<u8> {
    // Cannot fail: every field is a string or a `Value`, and `Value` always serializes.
    envelope_bytes(event).unwrap_or_default()
}

/// A struct rather than `json!`, so the key order is fixed whatever serde_json features are on.
#[derive(Serialize)]
struct Envelope<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: &'a Value,
}

fn envelope_bytes(event: &Event) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Envelope {
        id: event.id.to_string(),
        event_type: event.event_type.as_str(),
        timestamp: whole_seconds(event.timestamp),
        data: &event.data,
    })
}

fn whole_seconds(ts: jiff::Timestamp) -> String {
    // `Timestamp::strftime` formats in UTC; `%S` drops the fraction.
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn serialize_error(platform: &'static str) -> impl FnOnce(serde_json::Error) -> RenderError {
    move |source| RenderError::Serialize { platform, source }
}

fn json_request(
    url: &str,
    platform: &'static str,
    body: &impl Serialize,
) -> Result<RenderedRequest, RenderError> {
    Ok(RenderedRequest {
        url: url.to_owned(),
        body: serde_json::to_vec(body).map_err(serialize_error(platform))?,
        headers: Vec::new(),
    })
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// What a human needs to know about an event, taken tolerantly from its data.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Summary {
    event_type: String,
    id: String,
    time: String,
    title: Option<String>,
    author: Option<String>,
    link: Option<String>,
    /// What to do, for Herald's operational events (their `data.message`).
    detail: Option<String>,
}

/// The longest `detail` shown (Slack's section holds 3,000 characters with the headline).
const MAX_DETAIL_CHARS: usize = 1500;

const TITLE_PATHS: &[&[&str]] = &[
    &["title"],
    &["name"],
    &["document", "title"],
    &["article", "title"],
    &["book", "title"],
];
const AUTHOR_PATHS: &[&[&str]] = &[
    &["author"],
    &["author", "name"],
    &["user", "name"],
    &["actor", "name"],
];
const LINK_PATHS: &[&[&str]] = &[&["url"], &["link"], &["html_url"]];

impl Summary {
    fn of(event: &Event) -> Self {
        let data = &event.data;
        Self {
            event_type: event.event_type.to_string(),
            id: event.id.to_string(),
            time: whole_seconds(event.timestamp),
            title: first_string(data, TITLE_PATHS, |s| clean_text(s, MAX_TITLE_CHARS)),
            author: first_string(data, AUTHOR_PATHS, |s| clean_text(s, MAX_AUTHOR_CHARS)),
            link: first_string(data, LINK_PATHS, clean_link),
            detail: event
                .event_type
                .is_operational()
                .then(|| first_string(data, &[&["message"]], |s| clean_text(s, MAX_DETAIL_CHARS)))
                .flatten(),
        }
    }

    /// One line, e.g. `document.created: “Getting started” by Ada`.
    fn plain(&self) -> String {
        let mut out = self.event_type.clone();
        if let Some(title) = &self.title {
            out.push_str(": “");
            out.push_str(title);
            out.push('”');
        }
        if let Some(author) = &self.author {
            out.push_str(" by ");
            out.push_str(author);
        }
        out
    }
}

/// The first path that holds a string the cleaner accepts; anything else (non-objects, numbers,
/// empty strings) falls through to the next path.
fn first_string(
    data: &Value,
    paths: &[&[&str]],
    clean: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    paths.iter().find_map(|path| {
        let value = path.iter().try_fold(data, |v, key| v.get(*key))?;
        value.as_str().and_then(&clean)
    })
}

/// One line of at most `max` characters (plus `…` when cut): control characters and runs of
/// whitespace become one space, so payload text cannot break a message's layout.
fn clean_text(input: &str, max: usize) -> Option<String> {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in input.chars() {
        if c.is_whitespace() || c.is_control() {
            space = count > 0;
            continue;
        }
        let needed = 1 + usize::from(space);
        if count + needed > max {
            out.push('…');
            return Some(out);
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        count += needed;
    }
    (count > 0).then_some(out)
}

/// An `http(s)` link, normalized (percent-encoded) by the URL parser. Links carrying credentials
/// are dropped rather than shown in a channel.
fn clean_link(input: &str) -> Option<String> {
    let input = input.trim();
    let prefix_ok = |p: &str| {
        input
            .get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    };
    if !(prefix_ok("http://") || prefix_ok("https://")) {
        return None;
    }
    let url = url::Url::parse(input).ok()?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.has_host()
        && url.username().is_empty()
        && url.password().is_none()
        && url.as_str().len() <= MAX_LINK_CHARS;
    ok.then(|| url.into())
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

// Slack: incoming webhooks take `text` (the notification fallback when `blocks` is present) and
// Block Kit `blocks`; `&`, `<` and `>` are control characters in mrkdwn and must be sent as
// `&amp;`, `&lt;`, `&gt;`, and links are `<url|label>`.
// https://api.slack.com/messaging/webhooks, https://api.slack.com/reference/surfaces/formatting#escaping

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack_body(s: &Summary) -> Value {
    let label = s.title.as_deref().unwrap_or(&s.event_type);
    let headline = |link: Option<&str>| {
        let mut text = match link {
            // A `|` in the URL would end it early; `%7C` is the same URL.
            Some(url) => format!(
                "*<{}|{}>*",
                slack_escape(url).replace('|', "%7C"),
                slack_escape(label)
            ),
            None => format!("*{}*", slack_escape(label)),
        };
        if let Some(author) = &s.author {
            text.push_str("\nby ");
            text.push_str(&slack_escape(author));
        }
        if let Some(detail) = &s.detail {
            text.push('\n');
            text.push_str(&slack_escape(detail));
        }
        text
    };
    let mut section = headline(s.link.as_deref());
    if section.chars().count() > SLACK_SECTION_MAX_CHARS {
        section = headline(None);
    }
    json!({
        "text": slack_escape(&s.plain()),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {"type": "context", "elements": [{
                "type": "mrkdwn",
                "text": format!("`{}` · `{}` · {}", s.event_type, s.id, s.time),
            }]},
        ],
    })
}

// Mattermost: incoming webhooks take `text` (Markdown) and optional `username` and `icon_url`
// overrides. https://developers.mattermost.com/integrate/webhooks/incoming/

#[derive(Serialize)]
struct MattermostBody<'a> {
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon_url: Option<&'a str>,
}

/// Escapes Markdown syntax, and breaks `@` mentions with a zero-width space so payload text
/// cannot ping `@channel` or a user.
fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]()<>~|#".contains(c) {
            out.push('\\');
        }
        out.push(c);
        if c == '@' {
            out.push('\u{200B}');
        }
    }
    out
}

fn markdown_link(label: &str, url: &str) -> String {
    // Parentheses would end the link target early.
    let url = url.replace('(', "%28").replace(')', "%29");
    format!("[{label}]({url})")
}

fn mattermost_text(s: &Summary) -> String {
    let mut line = format!("**{}**", s.event_type);
    match (&s.title, &s.link) {
        (Some(title), Some(link)) => {
            line.push_str(": ");
            line.push_str(&markdown_link(&markdown_escape(title), link));
        }
        (Some(title), None) => {
            line.push_str(": ");
            line.push_str(&markdown_escape(title));
        }
        (None, Some(link)) => {
            line.push_str(": ");
            line.push_str(&markdown_link("Open link", link));
        }
        (None, None) => {}
    }
    if let Some(author) = &s.author {
        line.push_str(" by ");
        line.push_str(&markdown_escape(author));
    }
    if let Some(detail) = &s.detail {
        line.push('\n');
        line.push_str(&markdown_escape(detail));
    }
    format!("{line}\nEvent `{}` · {}", s.id, s.time)
}

// Teams: a Workflows "When a Teams webhook request is received" flow with "Post card in a chat or
// channel" takes a message activity whose attachment is an Adaptive Card.
// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook

fn teams_body(s: &Summary) -> Value {
    let title = s.title.clone().unwrap_or_else(|| s.plain());
    let mut facts = vec![json!({"title": "Event", "value": s.event_type})];
    if let Some(author) = &s.author {
        facts.push(json!({"title": "Author", "value": author}));
    }
    facts.push(json!({"title": "Time", "value": s.time}));
    facts.push(json!({"title": "Event id", "value": s.id}));
    let mut body = vec![
        json!({"type": "TextBlock", "text": title, "size": "Medium", "weight": "Bolder", "wrap": true}),
    ];
    if let Some(detail) = &s.detail {
        body.push(json!({"type": "TextBlock", "text": detail, "wrap": true}));
    }
    body.push(json!({"type": "FactSet", "facts": facts}));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if let (Some(link), Some(card)) = (&s.link, card.as_object_mut()) {
        card.insert(
            "actions".to_owned(),
            json!([{"type": "Action.OpenUrl", "title": "Open", "url": link}]),
        );
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

// Trello: POST /1/cards with `idList`, `name`, `desc`, `pos` and `urlSource` (attaches the link).
// The key and token go in `Authorization: OAuth oauth_consumer_key="…", oauth_token="…"`, which
// Trello accepts instead of `key`/`token` query parameters.
// https://developer.atlassian.com/cloud/trello/rest/api-group-cards/#api-cards-post,
// https://developer.atlassian.com/cloud/trello/guides/rest-api/authorization/

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrelloCard<'a> {
    id_list: &'a str,
    name: String,
    desc: String,
    pos: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url_source: Option<&'a str>,
}

fn trello_desc(s: &Summary) -> String {
    let mut lines = vec![format!("- **Event:** {}", s.event_type)];
    if let Some(title) = &s.title {
        lines.push(format!("- **Title:** {title}"));
    }
    if let Some(author) = &s.author {
        lines.push(format!("- **Author:** {author}"));
    }
    if let Some(link) = &s.link {
        lines.push(format!("- **Link:** {link}"));
    }
    if let Some(detail) = &s.detail {
        lines.push(format!("- **What to do:** {detail}"));
    }
    lines.push(format!("- **Event id:** {}", s.id));
    lines.push(format!("- **Time:** {}", s.time));
    lines.join("\n")
}

/// The credentials go inside quoted header parameters as they are: [`TrelloCredential`]'s rule
/// (unreserved characters only) guarantees they cannot break out of the quotes.
///
/// [`TrelloCredential`]: crate::subscription::TrelloCredential
fn trello_request(options: &TrelloOptions, s: &Summary) -> Result<RenderedRequest, RenderError> {
    let card = TrelloCard {
        id_list: &options.list_id,
        name: truncate_chars(&s.plain(), TRELLO_NAME_MAX_CHARS),
        desc: truncate_chars(&trello_desc(s), TRELLO_DESC_MAX_CHARS),
        pos: "top",
        url_source: s.link.as_deref(),
    };
    let mut request = json_request(TRELLO_CARDS_URL, "trello", &card)?;
    request.headers.push((
        "authorization".to_owned(),
        format!(
            "OAuth oauth_consumer_key=\"{}\", oauth_token=\"{}\"",
            options.api_key.expose(),
            options.token.expose()
        ),
    ));
    Ok(request)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::ids::{EventId, SubscriptionId, TenantId};
    use crate::model::SecretEntry;
    use crate::pattern::{EventPattern, EventType};
    use crate::signing::SigningSecret;
    use crate::subscription::TrelloCredential;
    use crate::target::TargetUrl;

    const EVENT_ID: &str = "evt_01KBQ4Z8M00000000000000000";
    const API_KEY: &str = "0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "ATTAsecretTokenValue9876543210";

    fn sub(platform: PlatformConfig) -> Subscription {
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
            created_at: now,
            updated_at: now,
        }
    }

    fn event(data: Value) -> Event {
        Event {
            id: EventId::parse(EVENT_ID).unwrap(),
            tenant_id: TenantId::new(),
            event_type: EventType::parse("document.created").unwrap(),
            timestamp: "2026-12-01T10:00:00.123456789Z".parse().unwrap(),
            data,
            subscriptions: Vec::new(),
        }
    }

    fn full_event() -> Event {
        event(json!({
            "title": "Getting started",
            "author": {"name": "Ada"},
            "url": "https://docs.example.com/d/1?a=1&b=2",
        }))
    }

    fn trello() -> PlatformConfig {
        PlatformConfig::Trello(TrelloOptions {
            list_id: "list123".to_owned(),
            api_key: TrelloCredential::parse(API_KEY).unwrap(),
            token: TrelloCredential::parse(TOKEN).unwrap(),
        })
    }

    fn body_json(request: &RenderedRequest) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    #[test]
    fn envelope_exact_bytes_and_key_order() {
        let bytes = envelope(&event(json!({"title": "Getting started"})));
        let expected = format!(
            r#"{{"id":"{EVENT_ID}","type":"document.created","timestamp":"2026-12-01T10:00:00Z","data":{{"title":"Getting started"}}}}"#
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn timestamps_are_utc_whole_seconds() {
        let ts: jiff::Timestamp = "2026-12-01T11:00:00.999+01:00".parse().unwrap();
        assert_eq!(whole_seconds(ts), "2026-12-01T10:00:00Z");
    }

    #[test]
    fn custom_is_the_envelope_with_no_headers() {
        let e = full_event();
        let r = render(&sub(PlatformConfig::Custom), &e).unwrap();
        assert_eq!(r.url, "https://hooks.example.com/in/abc");
        assert_eq!(r.body, envelope(&e));
        assert!(r.headers.is_empty());
    }

    #[test]
    fn operational_events_say_what_to_do_on_every_chat_platform() {
        let mut e = event(json!({
            "title": "Webhook “Docs” is failing",
            "message": "No delivery has succeeded since 10:00. Check <the endpoint> & @channel.",
        }));
        e.event_type = EventType::parse("herald.subscription.failing").unwrap();
        let slack = body_json(&render(&sub(PlatformConfig::Slack), &e).unwrap());
        let section = slack["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(
            section,
            "*Webhook “Docs” is failing*\nNo delivery has succeeded since 10:00. Check &lt;the endpoint&gt; &amp; @channel."
        );
        let mattermost = PlatformConfig::Mattermost {
            username: None,
            icon_url: None,
        };
        let text = body_json(&render(&sub(mattermost), &e).unwrap())["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.contains("\nNo delivery has succeeded since 10:00. Check \\<the endpoint\\> & @\u{200B}channel."), "{text}");
        let teams = body_json(&render(&sub(PlatformConfig::Teams), &e).unwrap());
        let card = &teams["attachments"][0]["content"]["body"];
        assert_eq!(card[0]["text"], "Webhook “Docs” is failing");
        assert!(card[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("No delivery has succeeded"));
        // An ordinary event's `message` is data like any other, not shown.
        e.event_type = EventType::parse("document.created").unwrap();
        let plain = body_json(&render(&sub(PlatformConfig::Slack), &e).unwrap());
        assert!(!plain.to_string().contains("No delivery"));
    }

    #[test]
    fn slack_shape() {
        let r = render(&sub(PlatformConfig::Slack), &full_event()).unwrap();
        assert_eq!(r.url, "https://hooks.example.com/in/abc");
        assert!(r.headers.is_empty());
        assert_eq!(
            body_json(&r),
            json!({
                "text": "document.created: “Getting started” by Ada",
                "blocks": [
                    {"type": "section", "text": {
                        "type": "mrkdwn",
                        "text": "*<https://docs.example.com/d/1?a=1&amp;b=2|Getting started>*\nby Ada",
                    }},
                    {"type": "context", "elements": [{
                        "type": "mrkdwn",
                        "text": format!("`document.created` · `{EVENT_ID}` · 2026-12-01T10:00:00Z"),
                    }]},
                ],
            })
        );
    }

    #[test]
    fn slack_escapes_control_characters() {
        let e = event(json!({
            "title": "<!channel> R&D > ops",
            "author": "<@U123>",
            "link": "https://example.com/a|b",
        }));
        let body = body_json(&render(&sub(PlatformConfig::Slack), &e).unwrap());
        assert_eq!(
            body["text"],
            "document.created: “&lt;!channel&gt; R&amp;D &gt; ops” by &lt;@U123&gt;"
        );
        assert_eq!(
            body["blocks"][0]["text"]["text"],
            "*<https://example.com/a%7Cb|&lt;!channel&gt; R&amp;D &gt; ops>*\nby &lt;@U123&gt;"
        );
    }

    #[test]
    fn mattermost_shape_without_and_with_overrides() {
        let e = full_event();
        let plain = PlatformConfig::Mattermost {
            username: None,
            icon_url: None,
        };
        let r = render(&sub(plain), &e).unwrap();
        assert_eq!(r.url, "https://hooks.example.com/in/abc");
        let text = format!(
            "**document.created**: [Getting started](https://docs.example.com/d/1?a=1&b=2) by Ada\nEvent `{EVENT_ID}` · 2026-12-01T10:00:00Z"
        );
        assert_eq!(body_json(&r), json!({"text": text}));

        let custom = PlatformConfig::Mattermost {
            username: Some("Herald".to_owned()),
            icon_url: Some("https://example.com/icon.png".to_owned()),
        };
        let r = render(&sub(custom), &e).unwrap();
        assert_eq!(
            body_json(&r),
            json!({"text": text, "username": "Herald", "icon_url": "https://example.com/icon.png"})
        );
    }

    #[test]
    fn mattermost_escapes_markdown_and_mentions() {
        let e = event(json!({"title": "[x](http://evil) *hi* @channel"}));
        let plain = PlatformConfig::Mattermost {
            username: None,
            icon_url: None,
        };
        let body = body_json(&render(&sub(plain), &e).unwrap());
        let text = body["text"].as_str().unwrap();
        assert!(text.starts_with(
            "**document.created**: \\[x\\]\\(http://evil\\) \\*hi\\* @\u{200B}channel\n"
        ));
    }

    #[test]
    fn teams_shape() {
        let r = render(&sub(PlatformConfig::Teams), &full_event()).unwrap();
        assert_eq!(r.url, "https://hooks.example.com/in/abc");
        assert_eq!(
            body_json(&r),
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "text": "Getting started", "size": "Medium", "weight": "Bolder", "wrap": true},
                            {"type": "FactSet", "facts": [
                                {"title": "Event", "value": "document.created"},
                                {"title": "Author", "value": "Ada"},
                                {"title": "Time", "value": "2026-12-01T10:00:00Z"},
                                {"title": "Event id", "value": EVENT_ID},
                            ]},
                        ],
                        "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://docs.example.com/d/1?a=1&b=2"}],
                    },
                }],
            })
        );
    }

    #[test]
    fn trello_shape() {
        let r = render(&sub(trello()), &full_event()).unwrap();
        assert_eq!(r.url, "https://api.trello.com/1/cards");
        assert_eq!(
            r.headers,
            vec![(
                "authorization".to_owned(),
                format!("OAuth oauth_consumer_key=\"{API_KEY}\", oauth_token=\"{TOKEN}\"")
            )]
        );
        let desc = format!(
            "- **Event:** document.created\n- **Title:** Getting started\n- **Author:** Ada\n- **Link:** https://docs.example.com/d/1?a=1&b=2\n- **Event id:** {EVENT_ID}\n- **Time:** 2026-12-01T10:00:00Z"
        );
        assert_eq!(
            body_json(&r),
            json!({
                "idList": "list123",
                "name": "document.created: “Getting started” by Ada",
                "desc": desc,
                "pos": "top",
                "urlSource": "https://docs.example.com/d/1?a=1&b=2",
            })
        );
    }

    #[test]
    fn trello_credentials_only_in_the_authorization_header() {
        let r = render(&sub(trello()), &full_event()).unwrap();
        let body = String::from_utf8(r.body.clone()).unwrap();
        let debug = format!("{r:?}");
        for secret in [API_KEY, TOKEN] {
            assert!(!r.url.contains(secret));
            assert!(!body.contains(secret));
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("<redacted>"));
        let auth = &r
            .headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        assert!(auth.contains(API_KEY) && auth.contains(TOKEN));
        assert!(r
            .headers
            .iter()
            .all(|(n, v)| n == "authorization" || !(v.contains(API_KEY) || v.contains(TOKEN))));
    }

    #[test]
    fn debug_redacts_caller_added_credentials() {
        let r = RenderedRequest {
            url: "https://example.com/".to_owned(),
            body: b"{}".to_vec(),
            headers: vec![
                ("Authorization".to_owned(), "Bearer s3cret".to_owned()),
                ("X-Api-Key".to_owned(), "k3y".to_owned()),
                ("webhook-id".to_owned(), "evt_x".to_owned()),
            ],
        };
        let debug = format!("{r:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("k3y"));
        assert!(debug.contains("evt_x") && debug.contains("(2 bytes)"));
    }

    #[test]
    fn fallbacks_when_data_is_not_an_object() {
        for data in [
            json!(null),
            json!("Getting started"),
            json!([1, 2]),
            json!(42),
        ] {
            let e = event(data.clone());
            let s = Summary::of(&e);
            assert_eq!((&s.title, &s.author, &s.link), (&None, &None, &None));
            assert_eq!(s.plain(), "document.created");

            let slack = body_json(&render(&sub(PlatformConfig::Slack), &e).unwrap());
            assert_eq!(slack["text"], "document.created");
            assert_eq!(slack["blocks"][0]["text"]["text"], "*document.created*");

            let teams = body_json(&render(&sub(PlatformConfig::Teams), &e).unwrap());
            let card = &teams["attachments"][0]["content"];
            assert_eq!(card["body"][0]["text"], "document.created");
            assert!(card.get("actions").is_none());
            assert_eq!(card["body"][1]["facts"].as_array().unwrap().len(), 3);

            let card = body_json(&render(&sub(trello()), &e).unwrap());
            assert_eq!(card["name"], "document.created");
            assert!(card.get("urlSource").is_none());

            let custom = body_json(&render(&sub(PlatformConfig::Custom), &e).unwrap());
            assert_eq!(custom["data"], data);
        }
    }

    #[test]
    fn tolerant_field_lookup() {
        let s = Summary::of(&event(json!({
            "title": 7,
            "name": "  ",
            "document": {"title": "Nested\n  title"},
            "author": {"id": 1},
            "user": {"name": "Grace"},
            "url": "javascript:alert(1)",
            "link": "ftp://example.com/x",
            "html_url": "HTTPS://Example.com",
        })));
        assert_eq!(s.title.as_deref(), Some("Nested title"));
        assert_eq!(s.author.as_deref(), Some("Grace"));
        assert_eq!(s.link.as_deref(), Some("https://example.com/"));

        let s = Summary::of(&event(json!({
            "article": {"title": "A"},
            "actor": {"name": "Lin"},
            "url": "https://user:pw@example.com/",
        })));
        assert_eq!(s.title.as_deref(), Some("A"));
        assert_eq!(s.author.as_deref(), Some("Lin"));
        assert_eq!(s.link, None);
        assert_eq!(s.plain(), "document.created: “A” by Lin");

        let s = Summary::of(&event(json!({"author": "Ada"})));
        assert_eq!(s.plain(), "document.created by Ada");
    }

    #[test]
    fn titles_are_bounded_on_char_boundaries() {
        let long = "é".repeat(500);
        let s = Summary::of(&event(json!({ "title": long })));
        let title = s.title.unwrap();
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS + 1);
        assert!(title.ends_with('…'));
        assert!(title.starts_with("éé"));

        assert_eq!(clean_text("ab cd", 4), Some("ab c…".to_owned()));
        assert_eq!(clean_text("ab cd", 3), Some("ab…".to_owned()));
        assert_eq!(clean_text("\u{0}\t\n", 10), None);
        assert_eq!(truncate_chars("ééé", 2), "é…");
        assert_eq!(truncate_chars("ééé", 3), "ééé");
    }
}
