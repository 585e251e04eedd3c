//! Slack incoming webhooks: a Block Kit message (a `section` with the linked title, author and
//! detail, a `context` with type, id and time) and `text`, the notification fallback.
//!
//! Limits (<https://api.slack.com/reference/block-kit/blocks>): a `section`'s text holds at most
//! 3,000 characters and a message at most 50 blocks (Herald sends two); a button's `url` at most
//! 3,000 characters (<https://api.slack.com/reference/block-kit/block-elements#button>); top-level
//! `text` is truncated past 40,000 characters, and as a notification it needs far fewer, so Herald
//! caps it at 3,000. In mrkdwn `&`, `<` and `>` are control characters sent as `&amp;`, `&lt;`,
//! `&gt;`, and a link is `<url|label>`
//! (<https://api.slack.com/reference/surfaces/formatting#escaping>). Texts are cut after
//! escaping, between escaped characters. The headline keeps its `<url|label>` link when the
//! headline fits whole; a link too long for that moves to an "Open" button beside the section.

use serde_json::{json, Value};

use super::template::cut_markup;
use super::{char_count, escape_within, push_within, Summary, MAX_LINK_CHARS};

/// Slack rejects a section whose text is longer than this.
const SECTION_MAX_CHARS: usize = 3000;
/// Herald's cap on the notification fallback.
const TEXT_MAX_CHARS: usize = 3000;
const BUTTON_URL_MAX_CHARS: usize = 3000;
/// Slack's most blocks per message.
#[cfg(test)]
const MAX_BLOCKS: usize = 50;

// A link always fits a button as it is.
const _: () = assert!(MAX_LINK_CHARS <= BUTTON_URL_MAX_CHARS);

fn escape_char(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        _ => out.push(c),
    }
}

fn escape(s: &str) -> String {
    escape_within(s, usize::MAX, escape_char, char_count)
}

/// The `url` of `<url|label>`: a `|` would end it early, and `%7C` is the same URL.
fn link_target(url: &str) -> String {
    escape(url).replace('|', "%7C")
}

/// A template's mrkdwn as one `section` (cut to its limit) and as the notification fallback. No
/// context line or button: the template says everything, so the same data gives the same body.
pub(super) fn templated_body(text: &str) -> Value {
    json!({
        "text": cut_markup(text, TEXT_MAX_CHARS, char_count),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": cut_markup(text, SECTION_MAX_CHARS, char_count)}},
        ],
    })
}

pub(super) fn body(s: &Summary) -> Value {
    let (text, button) = section_text(s, SECTION_MAX_CHARS);
    let mut section = json!({"type": "section", "text": {"type": "mrkdwn", "text": text}});
    if let (Some(url), Some(section)) = (button, section.as_object_mut()) {
        section.insert(
            "accessory".to_owned(),
            json!({"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": url}),
        );
    }
    json!({
        "text": escape_within(&s.plain(), TEXT_MAX_CHARS, escape_char, char_count),
        "blocks": [
            section,
            {"type": "context", "elements": [{
                "type": "mrkdwn",
                "text": format!("`{}` · `{}` · {}", s.event_type, s.id, s.time),
            }]},
        ],
    })
}

/// The section's mrkdwn within `max` characters, and the link for a button when the headline
/// cannot hold it. What gives way first: the detail, then the author, then the title.
fn section_text(s: &Summary, max: usize) -> (String, Option<&str>) {
    let label = s.title.as_deref().unwrap_or(&s.event_type);
    let linked = s
        .link
        .as_deref()
        .map(|url| (url, format!("*<{}|{}>*", link_target(url), escape(label))));
    let (mut text, button) = match linked {
        Some((_, headline)) if char_count(&headline) <= max => (headline, None),
        linked => {
            let label = escape_within(label, max.saturating_sub(2), escape_char, char_count);
            (format!("*{label}*"), linked.map(|(url, _)| url))
        }
    };
    let mut left = max.saturating_sub(char_count(&text));
    if let Some(author) = &s.author {
        push_within(&mut text, &mut left, "\nby ", author, escape_char);
    }
    if let Some(detail) = &s.detail {
        push_within(&mut text, &mut left, "\n", detail, escape_char);
    }
    (text, button)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::PlatformConfig;
    use crate::render::fixtures::*;
    use crate::render::render;

    fn slack(e: &crate::model::Event) -> Value {
        body_json(&render(&sub(PlatformConfig::Slack), e).unwrap())
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

    /// Outside a leading `*<url|…>` link, mrkdwn text has no raw `<` or `>`, and every `&` starts
    /// a whole entity. Returns the link's target, if any.
    fn assert_escaped(text: &str) -> Option<String> {
        let (target, rest) = match text.strip_prefix("*<") {
            Some(rest) => {
                let end = rest.find('>').unwrap();
                let (link, rest) = rest.split_at(end);
                let (target, _) = link.split_once('|').unwrap();
                (Some(target.to_owned()), &rest[1..])
            }
            None => (None, text),
        };
        for part in [target.as_deref().unwrap_or(""), rest] {
            assert!(!part.contains('<') && !part.contains('>'), "{text}");
            for (i, _) in part.match_indices('&') {
                let tail = &part[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;"]
                        .iter()
                        .any(|e| tail.starts_with(e)),
                    "broken entity in {text}"
                );
            }
        }
        target
    }

    #[track_caller]
    fn assert_within_limits(e: &crate::model::Event) {
        let body = slack(e);
        let summary = crate::render::Summary::of(e);
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS);
        let fallback = body["text"].as_str().unwrap();
        assert!(char_count(fallback) <= TEXT_MAX_CHARS);
        assert!(assert_escaped(fallback).is_none());
        let section = &blocks[0];
        let text = section["text"]["text"].as_str().unwrap();
        assert!(
            char_count(text) <= SECTION_MAX_CHARS,
            "{}",
            char_count(text)
        );
        let target = assert_escaped(text);
        let button = section["accessory"]["url"].as_str();
        if let Some(link) = &summary.link {
            // The link is kept whole, inline or on the button.
            match (&target, button) {
                (Some(target), None) => assert_eq!(target, &link_target(link)),
                (None, Some(url)) => {
                    assert_eq!(url, link);
                    assert!(char_count(url) <= BUTTON_URL_MAX_CHARS);
                }
                other => panic!("link lost or doubled: {other:?}"),
            }
        } else {
            assert!(target.is_none() && button.is_none());
        }
        for block in blocks {
            let text = block["text"]["text"]
                .as_str()
                .or(block["elements"][0]["text"].as_str())
                .unwrap();
            assert!(char_count(text) <= SECTION_MAX_CHARS);
        }
    }

    #[test]
    fn hostile_inputs_stay_within_slack_limits() {
        for_hostile_and_random_events(assert_within_limits);
    }

    #[test]
    fn an_escaped_detail_is_cut_between_entities_and_keeps_the_link() {
        // 1,500 `<` escape to 6,000 characters.
        let e = operational(json!({
            "title": "T",
            "url": "https://docs.example.com/d/1",
            "message": "<".repeat(5000),
        }));
        let text = slack(&e)["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.starts_with("*<https://docs.example.com/d/1|T>*\n&lt;&lt;"));
        assert!(text.ends_with("&lt;…"), "{text}");
        // Full up to the last whole `&lt;` that leaves room for `…`.
        let used = char_count(&text);
        assert!(used <= SECTION_MAX_CHARS && used + "&lt;".len() > SECTION_MAX_CHARS);
    }

    #[test]
    fn a_link_too_long_for_the_headline_moves_to_a_button() {
        let link = format!("https://docs.example.com/?q={}", "&".repeat(2000));
        let e = event(json!({"title": "&".repeat(300), "author": "Ada", "url": link}));
        let body = slack(&e);
        let section = &body["blocks"][0];
        assert_eq!(section["accessory"]["url"], link);
        assert_eq!(section["accessory"]["type"], "button");
        let text = section["text"]["text"].as_str().unwrap();
        assert!(
            text.starts_with("*&amp;&amp;") && text.ends_with("…*\nby Ada"),
            "{text}"
        );
        assert_within_limits(&e);
    }

    #[test]
    fn cuts_give_way_detail_first_then_author_then_title() {
        let s = crate::render::Summary::of(&operational(json!({
            "title": "Title",
            "author": "Ada Lovelace",
            "url": "https://x.example/",
            "message": "Do this",
        })));
        let full = "*<https://x.example/|Title>*\nby Ada Lovelace\nDo this";
        assert_eq!(section_text(&s, 100).0, full);
        assert_eq!(section_text(&s, char_count(full)).0, full);
        assert_eq!(
            section_text(&s, char_count(full) - 1).0,
            "*<https://x.example/|Title>*\nby Ada Lovelace\nDo th…"
        );
        assert_eq!(
            section_text(&s, 40).0,
            "*<https://x.example/|Title>*\nby Ada Lov…"
        );
        // Too short for the linked headline: the label is cut and the link goes to the button.
        let (text, button) = section_text(&s, 5);
        assert_eq!(
            (text.as_str(), button),
            ("*Ti…*", Some("https://x.example/"))
        );
    }
}
