//! Microsoft Teams through a Workflows webhook ("Post to a channel when a webhook request is
//! received"): a message activity whose attachment is an Adaptive Card (title, detail, facts, and
//! an `Action.OpenUrl` to the event's link).
//!
//! Limit: the message is at most 28 KB
//! (<https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook>;
//! the Workflows Teams connector fails larger ones with "request entity too large",
//! <https://learn.microsoft.com/en-us/connectors/teams/#known-issues-and-limitations-with-actions>).
//! Herald holds the whole JSON body to 28,672 bytes: texts are cut, as serialized, between
//! characters; the link and the facts stay whole.

use serde_json::{json, Value};

use super::template::cut_markup;
use super::{escape_within, Summary, MAX_LINK_CHARS};
use crate::pattern::MAX_EVENT_TYPE_LEN;

const BODY_MAX_BYTES: usize = 28 * 1024;

// What is never cut (the card's frame, type, id, time and a link that JSON at most doubles)
// always fits, with room left for the texts.
const _: () = assert!(2 * MAX_LINK_CHARS + 2 * MAX_EVENT_TYPE_LEN + 1024 < BODY_MAX_BYTES);

pub(super) fn body(s: &Summary) -> Value {
    body_within(s, BODY_MAX_BYTES)
}

/// A template's Markdown as one wrapping TextBlock, cut so the body fits its limit, and the
/// event's link as the card's "Open" action as in the default card.
pub(super) fn templated_body(text: &str, link: Option<&str>) -> Value {
    let frame = templated_card("", link).to_string().len();
    let text = cut_markup(text, BODY_MAX_BYTES.saturating_sub(frame), json_bytes);
    templated_card(&text, link)
}

fn templated_card(text: &str, link: Option<&str>) -> Value {
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": text, "wrap": true}],
    });
    if let (Some(link), Some(card)) = (link, card.as_object_mut()) {
        card.insert(
            "actions".to_owned(),
            json!([{"type": "Action.OpenUrl", "title": "Open", "url": link}]),
        );
    }
    message(card)
}

fn message(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// The message within `max` bytes of JSON. What gives way first: the detail, then the author,
/// then the title.
fn body_within(s: &Summary, max: usize) -> Value {
    let title = s.title.clone().unwrap_or_else(|| s.plain());
    let full = card(s, &title, s.author.as_deref(), s.detail.as_deref());
    if full.to_string().len() <= max {
        return full;
    }
    // JSON strings are escaped character by character, so the texts' share adds up exactly.
    let frame = card(
        s,
        "",
        s.author.as_ref().map(|_| ""),
        s.detail.as_ref().map(|_| ""),
    );
    let mut left = max.saturating_sub(frame.to_string().len());
    let title = cut(&title, &mut left);
    let author = s.author.as_deref().map(|a| cut(a, &mut left));
    let detail = s.detail.as_deref().map(|d| cut(d, &mut left));
    card(s, &title, author.as_deref(), detail.as_deref())
}

fn keep(c: char, out: &mut String) {
    out.push(c);
}

fn cut(text: &str, left: &mut usize) -> String {
    let out = escape_within(text, *left, keep, json_bytes);
    *left = left.saturating_sub(json_bytes(&out));
    out
}

/// The bytes `s` takes inside a JSON string as serde_json writes it.
fn json_bytes(s: &str) -> usize {
    s.chars()
        .map(|c| match c {
            '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
            c if c < ' ' => 6,
            c => c.len_utf8(),
        })
        .sum()
}

fn card(s: &Summary, title: &str, author: Option<&str>, detail: Option<&str>) -> Value {
    let mut facts = vec![json!({"title": "Event", "value": s.event_type})];
    if let Some(author) = author {
        facts.push(json!({"title": "Author", "value": author}));
    }
    facts.push(json!({"title": "Time", "value": s.time}));
    facts.push(json!({"title": "Event id", "value": s.id}));
    let mut body = vec![
        json!({"type": "TextBlock", "text": title, "size": "Medium", "weight": "Bolder", "wrap": true}),
    ];
    if let Some(detail) = detail {
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
    message(card)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{Event, PlatformConfig};
    use crate::render::fixtures::*;
    use crate::render::render;

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

    #[track_caller]
    fn assert_link_kept(body: &Value, e: &Event) {
        let actions = &body["attachments"][0]["content"]["actions"];
        match crate::render::Summary::of(e).link {
            Some(link) => assert_eq!(actions[0]["url"], link.as_str()),
            None => assert!(actions.is_null()),
        }
    }

    #[test]
    fn hostile_inputs_stay_within_the_teams_limit() {
        let mut largest = 0;
        let mut check = |e: &Event| {
            let r = render(&sub(PlatformConfig::Teams), e).unwrap();
            assert!(r.body.len() <= BODY_MAX_BYTES, "{}", r.body.len());
            largest = largest.max(r.body.len());
            assert_link_kept(&body_json(&r), e);
        };
        for_hostile_and_random_events(&mut check);
        // Today's bounds on the summary keep every card well under the limit.
        assert!(largest < BODY_MAX_BYTES / 2, "{largest}");
    }

    #[test]
    fn an_oversized_card_is_cut_detail_first_and_keeps_its_link() {
        let e = operational(json!({
            "title": "😀\"".repeat(100),
            "author": "Ada",
            "url": longest_link(),
            "message": "\"\\😀".repeat(600),
        }));
        let s = crate::render::Summary::of(&e);
        let title = s.title.clone().unwrap();
        let frame = card(&s, "", Some(""), Some("")).to_string().len();
        // The title, the author, and some of the detail fit.
        let texts = frame + json_bytes(&title) + "Ada".len();
        for extra in [4002, 100, 3] {
            let max = texts + extra;
            let body = body_within(&s, max);
            assert!(body.to_string().len() <= max);
            let card = &body["attachments"][0]["content"];
            assert_eq!(card["body"][0]["text"], title.as_str());
            let detail = card["body"][1]["text"].as_str().unwrap();
            assert!(
                detail.ends_with('…') && json_bytes(detail) <= extra,
                "{detail}"
            );
            assert_link_kept(&body, &e);
        }
        // Room for part of the title only: the detail goes, the link stays.
        let max = frame + 300;
        let body = body_within(&s, max);
        assert!(body.to_string().len() <= max);
        let card = &body["attachments"][0]["content"];
        assert!(card["body"][0]["text"].as_str().unwrap().ends_with("\"…"));
        assert_eq!(card["body"][1]["text"], "");
        assert_link_kept(&body, &e);
    }

    #[test]
    fn json_bytes_counts_as_serde_json_writes() {
        let mut all: String = (0..0x80u8).map(char::from).collect();
        all.push_str("é😀\u{301}\u{2028}\u{200B}…");
        for c in all.chars() {
            let s = c.to_string();
            assert_eq!(
                json_bytes(&s) + 2,
                serde_json::to_string(&s).unwrap().len(),
                "{c:?}"
            );
        }
    }
}
