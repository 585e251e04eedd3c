//! Platform rendering: turns an event into the HTTP request a subscription's platform expects.
//!
//! `custom` gets the Standard Webhooks envelope; Slack, Mattermost and Teams get a readable message
//! (type, title, author, link) in their own shape; Trello gets a card-creation call to its REST API.
//! The content type, signatures, the subscription's auth token and its extra headers are added by
//! the caller, not here.
//!
//! Every message fits its platform's documented limits whatever the event data: a platform rejects
//! (or silently truncates) a message over them, and escaping can multiply a text's length. So the
//! limit is applied to the *escaped* text, cutting between escaped characters (never inside
//! `&amp;` or `\*`), marking the cut with `…`, and never cutting the event's link. Each platform's
//! module cites its limits.
//!
//! A subscription's [`MessageTemplate`] (`template.rs`) replaces the chat message's text (Trello:
//! the card's name and description); Herald still wraps it in the platform's body and applies the
//! same limits. A template that fails on an event never fails its delivery: that event gets the
//! default message, and [`render_reporting`] tells the caller why.
//!
//! Trello credentials (`api_key`, `token`) must never go anywhere but the `authorization` header of
//! the request built here: not into the URL, the body, an error or a `Debug` output, since URLs and
//! bodies end up in logs and in the delivery log.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::model::{Event, PlatformConfig, Subscription};

mod mattermost;
mod slack;
mod teams;
mod template;
mod trello;

pub use template::{
    Markup, MessageTemplate, TemplateError, MAX_OUTPUT_BYTES, MAX_TEMPLATE_BYTES, TEMPLATE_FUEL,
};

#[cfg(test)]
mod fixtures;

const MAX_TITLE_CHARS: usize = 200;
const MAX_AUTHOR_CHARS: usize = 100;
/// Bytes; a normalized URL is ASCII, so also characters.
const MAX_LINK_CHARS: usize = 2048;
const DEBUG_BODY_PREVIEW_BYTES: usize = 512;
/// Marks a cut text.
const ELLIPSIS: &str = "…";

/// The HTTP request to send for one delivery, before the caller adds content type, signatures,
/// auth token and user headers.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedRequest {
    pub url: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// Headers whose values are credentials and stay out of `Debug` output (and previews). The caller
/// may push the subscription's own headers here too, so this is broader than the one header
/// `render` sets.
pub fn is_sensitive_header(name: &str) -> bool {
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

/// A rendered request, and why the subscription's template was not used for it, if it failed.
#[derive(Debug)]
pub struct Rendered {
    pub request: RenderedRequest,
    pub template_error: Option<TemplateError>,
}

/// Renders `event` for `sub`'s platform.
pub fn render(sub: &Subscription, event: &Event) -> Result<RenderedRequest, RenderError> {
    render_reporting(sub, event).map(|r| r.request)
}

/// Renders `event` for `sub`'s platform, with its template when it has one; a template that fails
/// on this event gives way to the default message and is reported.
pub fn render_reporting(sub: &Subscription, event: &Event) -> Result<Rendered, RenderError> {
    let markup = Markup::of(sub.platform.platform());
    let (text, template_error) = match (&sub.template, markup) {
        (Some(template), Some(markup)) => match template.render(markup, event) {
            Ok(text) => (Some(text), None),
            Err(e) => (None, Some(e)),
        },
        _ => (None, None),
    };
    let text = text.as_deref();
    let request = match &sub.platform {
        PlatformConfig::Custom => RenderedRequest {
            url: sub.url.to_string(),
            body: envelope_bytes(event).map_err(serialize_error("custom"))?,
            headers: Vec::new(),
        },
        PlatformConfig::Slack => {
            let body = match text {
                Some(text) => slack::templated_body(text),
                None => slack::body(&Summary::of(event)),
            };
            json_request(sub.url.as_str(), "slack", &body)?
        }
        PlatformConfig::Mattermost { username, icon_url } => {
            let (username, icon_url) = (
                non_empty(username.as_deref()),
                non_empty(icon_url.as_deref()),
            );
            let body = match text {
                Some(text) => mattermost::templated_body(text, username, icon_url),
                None => mattermost::body(&Summary::of(event), username, icon_url),
            };
            json_request(sub.url.as_str(), "mattermost", &body)?
        }
        PlatformConfig::Teams => {
            let summary = Summary::of(event);
            let body = match text {
                Some(text) => teams::templated_body(text, summary.link.as_deref()),
                None => teams::body(&summary),
            };
            json_request(sub.url.as_str(), "teams", &body)?
        }
        PlatformConfig::Trello(options) => trello::request(options, &Summary::of(event), text)?,
    };
    Ok(Rendered {
        request,
        template_error,
    })
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

pub(crate) fn whole_seconds(ts: jiff::Timestamp) -> String {
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

/// The longest `detail` shown, for readability; each platform's limit is applied after escaping.
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

/// `s` cut to at most `max` characters, the last being `…` when cut.
fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// `text` escaped character by character, keeping as many whole escaped characters as fit in
/// `max` units of `cost` (`…` included when cut). Cutting only between escaped characters is what
/// keeps `&amp;` or `\*` whole. Empty when not even `…` fits.
fn escape_within(
    text: &str,
    max: usize,
    escape: fn(char, &mut String),
    cost: fn(&str) -> usize,
) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        escape(c, &mut out);
    }
    if cost(&out) <= max {
        return out;
    }
    out.clear();
    let Some(budget) = max.checked_sub(cost(ELLIPSIS)) else {
        return out;
    };
    let mut used = 0;
    let mut piece = String::new();
    for c in text.chars() {
        piece.clear();
        escape(c, &mut piece);
        used += cost(&piece);
        if used > budget {
            break;
        }
        out.push_str(&piece);
    }
    out.push_str(ELLIPSIS);
    out
}

/// Appends `prefix` and `text` escaped, within the `left` characters of a message, and takes what
/// they use from `left`. Nothing is appended when not even the prefix and `…` fit.
fn push_within(
    out: &mut String,
    left: &mut usize,
    prefix: &str,
    text: &str,
    escape: fn(char, &mut String),
) {
    let Some(room) = left.checked_sub(char_count(prefix)) else {
        return;
    };
    let part = escape_within(text, room, escape, char_count);
    if part.is_empty() {
        return;
    }
    *left = room.saturating_sub(char_count(&part));
    out.push_str(prefix);
    out.push_str(&part);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::fixtures::*;
    use super::*;
    use crate::pattern::EventType;

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

    #[test]
    fn the_longest_links_are_kept() {
        for link in [
            longest_link(),
            format!("https://docs.example.com/?q={}", "&".repeat(2020)),
        ] {
            let s = Summary::of(&event(json!({ "url": link })));
            assert_eq!(s.link.as_deref(), Some(link.as_str()));
        }
        let s = Summary::of(&event(json!({ "url": longest_link() + "a" })));
        assert_eq!(s.link, None);
    }

    fn slack_char(c: char, out: &mut String) {
        match c {
            '&' => out.push_str("&amp;"),
            _ => out.push(c),
        }
    }

    #[test]
    fn escaped_text_is_cut_between_escapes() {
        let cut = |s: &str, max| escape_within(s, max, slack_char, char_count);
        assert_eq!(cut("a&b", 7), "a&amp;b");
        assert_eq!(cut("a&bc", 7), "a&amp;…");
        assert_eq!(cut("a&b", 6), "a…");
        assert_eq!(cut("a&b", 5), "a…");
        assert_eq!(cut("a&b", 1), "…");
        assert_eq!(cut("a&b", 0), "");
        assert_eq!(cut("😀e\u{301}😀", 3), "😀e…");

        let mut out = "x".to_owned();
        let mut left = 6;
        push_within(&mut out, &mut left, " by ", "&&", slack_char);
        assert_eq!((out.as_str(), left), ("x by …", 1));
        push_within(&mut out, &mut left, "\n", "more", slack_char);
        assert_eq!(out, "x by …", "no room, nothing added");
    }
}
