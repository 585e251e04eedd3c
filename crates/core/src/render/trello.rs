//! Trello: a card-creation call to Trello's REST API (`POST /1/cards` with `idList`, `name`, `desc`,
//! `pos` and `urlSource`, which attaches the event's link to the card).
//!
//! Limits: a card's `name` and `desc` hold at most 16,384 characters each
//! (<https://developer.atlassian.com/cloud/trello/rest/api-group-cards/#api-cards-post>); Herald
//! keeps names to 512, a readable title. Neither is escaped, so a cut (by characters, marked `…`)
//! cannot split an escape, and the cut comes from the end of `desc`, after its link line.
//!
//! The key and token go in `Authorization: OAuth oauth_consumer_key="…", oauth_token="…"`, which
//! Trello accepts instead of `key`/`token` query parameters
//! (<https://developer.atlassian.com/cloud/trello/guides/rest-api/authorization/>), and nowhere else.

use serde::Serialize;

use super::template::{cut_markup, unescape_markdown};
use super::{
    char_count, json_request, truncate_chars, RenderError, RenderedRequest, Summary,
    MAX_AUTHOR_CHARS, MAX_LINK_CHARS, MAX_TITLE_CHARS,
};
use crate::model::TrelloOptions;
use crate::pattern::MAX_EVENT_TYPE_LEN;
use crate::subscription::TRELLO_CARDS_URL;

const NAME_MAX_CHARS: usize = 512;
/// Trello's limit for a card description.
const DESC_MAX_CHARS: usize = 16384;

// The lines up to the link always fit, so a cut description still has its link.
const _: () = assert!(
    MAX_EVENT_TYPE_LEN + MAX_TITLE_CHARS + MAX_AUTHOR_CHARS + MAX_LINK_CHARS + 100 < DESC_MAX_CHARS
);

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

fn desc(s: &Summary) -> String {
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
///
/// With a template's `text`, its first line (unescaped: a card name is plain text) is the name and
/// the rest the description; the event's link is still attached.
pub(super) fn request(
    options: &TrelloOptions,
    s: &Summary,
    text: Option<&str>,
) -> Result<RenderedRequest, RenderError> {
    let (name, desc) = match text {
        Some(text) => {
            let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
            (
                truncate_chars(unescape_markdown(first).trim(), NAME_MAX_CHARS),
                cut_markup(
                    rest.trim_start_matches(['\r', '\n']),
                    DESC_MAX_CHARS,
                    char_count,
                ),
            )
        }
        None => (
            truncate_chars(&s.plain(), NAME_MAX_CHARS),
            truncate_chars(&desc(s), DESC_MAX_CHARS),
        ),
    };
    let card = TrelloCard {
        id_list: &options.list_id,
        name,
        desc,
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
    use serde_json::json;

    use super::*;
    use crate::model::Event;
    use crate::render::fixtures::*;
    use crate::render::{char_count, render};

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

    #[track_caller]
    fn assert_within_limits(e: &Event) {
        let card = body_json(&render(&sub(trello()), e).unwrap());
        let name = card["name"].as_str().unwrap();
        let desc = card["desc"].as_str().unwrap();
        assert!(char_count(name) <= NAME_MAX_CHARS);
        assert!(char_count(desc) <= DESC_MAX_CHARS);
        match crate::render::Summary::of(e).link {
            Some(link) => {
                assert_eq!(card["urlSource"], link.as_str());
                assert!(desc.contains(&format!("- **Link:** {link}\n")));
            }
            None => assert!(card.get("urlSource").is_none()),
        }
    }

    #[test]
    fn hostile_inputs_stay_within_trello_limits() {
        for_hostile_and_random_events(assert_within_limits);
    }

    #[test]
    fn a_long_description_is_cut_at_its_end() {
        let s = Summary {
            detail: Some("😀".repeat(20_000)),
            ..Summary::of(&full_event())
        };
        let d = desc(&s);
        let cut = truncate_chars(&d, DESC_MAX_CHARS);
        assert_eq!(char_count(&cut), DESC_MAX_CHARS);
        assert!(cut.ends_with("😀…"));
        assert!(cut.contains("- **Link:** https://docs.example.com/d/1?a=1&b=2\n"));
    }
}
