//! Mattermost incoming webhooks: one Markdown `text` (type, linked title, author, detail, then
//! event id and time), with the subscription's optional `username` and `icon_url` overrides.
//!
//! Limit: a post's `text` holds at most 16,383 characters
//! (<https://developers.mattermost.com/integrate/webhooks/incoming/>, "Tips and best practices").
//! Payload text is Markdown-escaped and `@` gets a zero-width space so it cannot mention anyone;
//! texts are cut after escaping, between escaped characters, and the link is never cut.

use serde::Serialize;

use super::template::cut_markup;
use super::{char_count, escape_within, push_within, Summary, MAX_LINK_CHARS};
use crate::pattern::MAX_EVENT_TYPE_LEN;

const TEXT_MAX_CHARS: usize = 16_383;

// The parts never cut (type, link, id, time) always fit, with room left for the texts: a link at
// most triples in length as a Markdown target.
const _: () = assert!(MAX_EVENT_TYPE_LEN + 3 * MAX_LINK_CHARS + 200 < TEXT_MAX_CHARS);

#[derive(Serialize)]
pub(super) struct MattermostBody<'a> {
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon_url: Option<&'a str>,
}

pub(super) fn body<'a>(
    s: &Summary,
    username: Option<&'a str>,
    icon_url: Option<&'a str>,
) -> MattermostBody<'a> {
    MattermostBody {
        text: text(s, TEXT_MAX_CHARS),
        username,
        icon_url,
    }
}

/// A template's Markdown as the post's text, cut to its limit.
pub(super) fn templated_body<'a>(
    text: &str,
    username: Option<&'a str>,
    icon_url: Option<&'a str>,
) -> MattermostBody<'a> {
    MattermostBody {
        text: cut_markup(text, TEXT_MAX_CHARS, char_count),
        username,
        icon_url,
    }
}

/// Escapes Markdown syntax, and breaks `@` mentions with a zero-width space so payload text
/// cannot ping `@channel` or a user.
fn escape_char(c: char, out: &mut String) {
    if "\\`*_[]()<>~|#".contains(c) {
        out.push('\\');
    }
    out.push(c);
    if c == '@' {
        out.push('\u{200B}');
    }
}

/// A Markdown link target: `(`, `)` or `\` would end or escape it early, and percent-encoded they
/// are the same URL.
fn link_target(url: &str) -> String {
    url.replace('(', "%28")
        .replace(')', "%29")
        .replace('\\', "%5C")
}

/// The message within `max` characters. What gives way first: the detail, then the author, then
/// the title; the link, type, id and time stay whole.
fn text(s: &Summary, max: usize) -> String {
    let mut out = format!("**{}**", s.event_type);
    let footer = format!("\nEvent `{}` · {}", s.id, s.time);
    let mut left = max.saturating_sub(char_count(&out) + char_count(&footer));
    match (&s.title, &s.link) {
        (Some(title), Some(link)) => {
            let target = link_target(link);
            let fixed = char_count(": []()") + char_count(&target);
            let label = escape_within(title, left.saturating_sub(fixed), escape_char, char_count);
            let part = format!(": [{label}]({target})");
            left = left.saturating_sub(char_count(&part));
            out.push_str(&part);
        }
        (Some(title), None) => push_within(&mut out, &mut left, ": ", title, escape_char),
        (None, Some(link)) => {
            let part = format!(": [Open link]({})", link_target(link));
            left = left.saturating_sub(char_count(&part));
            out.push_str(&part);
        }
        (None, None) => {}
    }
    if let Some(author) = &s.author {
        push_within(&mut out, &mut left, " by ", author, escape_char);
    }
    if let Some(detail) = &s.detail {
        push_within(&mut out, &mut left, "\n", detail, escape_char);
    }
    out.push_str(&footer);
    out
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

    /// Every `\` escapes a Markdown character and every `@` is followed by a zero-width space, so
    /// no cut split an escape.
    #[track_caller]
    fn assert_escapes_whole(text: &str) {
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => assert!(
                    chars.next().is_some_and(|n| "\\`*_[]()<>~|#".contains(n)),
                    "lone backslash in {text}"
                ),
                '@' => assert_eq!(chars.next(), Some('\u{200B}'), "{text}"),
                _ => {}
            }
        }
    }

    #[track_caller]
    fn assert_within_limits(e: &Event) {
        let r = render(&sub(mattermost()), e).unwrap();
        let text = body_json(&r)["text"].as_str().unwrap().to_owned();
        assert!(char_count(&text) <= TEXT_MAX_CHARS, "{}", char_count(&text));
        assert_escapes_whole(&text);
        assert!(text.ends_with(&format!("\nEvent `{EVENT_ID}` · 2026-12-01T10:00:00Z")));
        if let Some(link) = crate::render::Summary::of(e).link {
            assert!(
                text.contains(&format!("]({})", link_target(&link))),
                "{text}"
            );
        }
    }

    #[test]
    fn hostile_inputs_stay_within_mattermost_limits() {
        for_hostile_and_random_events(assert_within_limits);
    }

    #[test]
    fn link_targets_cannot_end_early() {
        let e = event(json!({"title": "T", "url": "https://example.com/(a)?q=\\)"}));
        let text = text(&crate::render::Summary::of(&e), TEXT_MAX_CHARS);
        assert!(
            text.starts_with("**document.created**: [T](https://example.com/%28a%29?q=%5C%29)\n"),
            "{text}"
        );
    }

    #[test]
    fn cuts_fall_between_escapes_detail_first_then_author_then_title() {
        let s = crate::render::Summary::of(&operational(json!({
            "title": "*_*",
            "author": "@@@",
            "url": "https://x.example/",
            "message": "[][]",
        })));
        let footer = format!("\nEvent `{EVENT_ID}` · 2026-12-01T10:00:00Z");
        let head = "**herald.subscription.failing**: [\\*\\_\\*](https://x.example/)";
        let full = format!("{head} by @\u{200B}@\u{200B}@\u{200B}\n\\[\\]\\[\\]{footer}");
        assert_eq!(text(&s, TEXT_MAX_CHARS), full);
        let max = char_count(&full);
        assert_eq!(text(&s, max), full);
        // One short: the detail loses a whole `\]` and gains `…`.
        assert_eq!(
            text(&s, max - 1),
            format!("{head} by @\u{200B}@\u{200B}@\u{200B}\n\\[\\]\\[…{footer}")
        );
        // No room for the detail, and the author cut after a whole `@` and its space.
        let cut = text(&s, char_count(head) + char_count(&footer) + 9);
        assert_eq!(cut, format!("{head} by @\u{200B}@\u{200B}…{footer}"));
        // The title gives way last, and its link stays whole.
        let cut = text(&s, char_count(head) + char_count(&footer) - 1);
        assert_eq!(
            cut,
            format!("**herald.subscription.failing**: [\\*\\_…](https://x.example/){footer}")
        );
    }
}
