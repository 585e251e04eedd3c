use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::model::PlatformConfig;
use crate::render::fixtures::{body_json, event, sub, trello, typed};
use crate::render::{render, render_reporting};

const HOSTILE: &str = "<!channel> *bold* _it_ \"quotes\" </script> [x](https://evil.example) @here\nline two\r\n# heading";

fn hostile_event() -> crate::model::Event {
    typed(
        "document.published",
        json!({
            "title": HOSTILE,
            "author": {"name": "Ada"},
            "space": {"name": "Handbook"},
            "url": "https://docs.example.com/a_b?x=1&y=(2)|3",
        }),
    )
}

fn template(source: &str) -> MessageTemplate {
    MessageTemplate::parse(source).unwrap()
}

fn rendered(markup: Markup, source: &str) -> String {
    template(source).render(markup, &hostile_event()).unwrap()
}

fn with_template(platform: PlatformConfig, source: &str) -> crate::model::Subscription {
    let mut s = sub(platform);
    s.template = Some(template(source));
    s
}

#[test]
fn slack_message_is_the_templates_mrkdwn_in_a_section() {
    let s = with_template(
        PlatformConfig::Slack,
        "*{{ data.author.name }}* published <{{ data.url | url }}|{{ data.title }}> in {{ data.space.name }}",
    );
    let e = typed(
        "document.published",
        json!({"title": "Intro", "author": {"name": "Ada"}, "space": {"name": "Handbook"}, "url": "https://docs.example.com/i"}),
    );
    let body = body_json(&render(&s, &e).unwrap());
    let text = "*Ada* published <https://docs.example.com/i|Intro> in Handbook";
    assert_eq!(
        body,
        json!({"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
    );
}

#[test]
fn each_platform_wraps_the_text_in_its_body() {
    let e = typed(
        "document.published",
        json!({"title": "Intro", "author": {"name": "Ada"}, "url": "https://docs.example.com/i"}),
    );
    let mm = PlatformConfig::Mattermost {
        username: Some("Docs".into()),
        icon_url: None,
    };
    let body = body_json(
        &render(
            &with_template(mm, "**{{ data.title }}** by {{ data.author.name }}"),
            &e,
        )
        .unwrap(),
    );
    assert_eq!(
        body,
        json!({"text": "**Intro** by Ada", "username": "Docs"})
    );

    let body = body_json(
        &render(
            &with_template(
                PlatformConfig::Teams,
                "{{ data.author.name }} published {{ data.title }}",
            ),
            &e,
        )
        .unwrap(),
    );
    let card = &body["attachments"][0]["content"];
    assert_eq!(
        card["body"],
        json!([{"type": "TextBlock", "text": "Ada published Intro", "wrap": true}])
    );
    assert_eq!(card["actions"][0]["url"], "https://docs.example.com/i");
    assert_eq!(card["type"], "AdaptiveCard");

    let body = body_json(
        &render(
            &with_template(
                trello(),
                "{{ data.title }} (by {{ data.author.name }})\n\n**Type:** {{ type }}",
            ),
            &e,
        )
        .unwrap(),
    );
    assert_eq!(
        body["name"], "Intro (by Ada)",
        "the name is plain text, not escaped"
    );
    assert_eq!(body["desc"], "**Type:** document.published");
    assert_eq!(body["urlSource"], "https://docs.example.com/i");
}

#[test]
fn hostile_data_is_escaped_per_platform() {
    let slack = rendered(Markup::Slack, "{{ data.title }}");
    assert!(
        !slack.contains('<') && !slack.contains('>') && !slack.contains('\n'),
        "{slack}"
    );
    assert!(
        slack.starts_with("&lt;!channel&gt; \u{200B}*\u{200B}bold\u{200B}*\u{200B}"),
        "{slack}"
    );
    assert!(
        slack.contains("@\u{200B}here") && slack.contains("\"quotes\""),
        "{slack}"
    );

    for markup in [Markup::Mattermost, Markup::Teams, Markup::Trello] {
        let md = rendered(markup, "{{ data.title }}");
        assert!(md.starts_with(r"\<\!channel\> \*bold\* \_it\_ "), "{md}");
        assert!(
            md.contains(r"\</script\> \[x\]\(https://evil.example\) @"),
            "{md}"
        );
        assert!(md.contains("@\u{200B}here line two  \\# heading"), "{md}");
    }
    // The JSON body stays valid whatever the data: quotes and newlines are serialized.
    let s = with_template(PlatformConfig::Slack, "\"{{ data.title }}\"\n{{ data }}");
    let body = body_json(&render(&s, &hostile_event()).unwrap());
    assert!(body["text"]
        .as_str()
        .unwrap()
        .starts_with("\"&lt;!channel&gt;"));
}

#[test]
fn escaping_cannot_be_turned_off_and_safe_is_not_there() {
    let out = rendered(
        Markup::Slack,
        "{% autoescape false %}{{ data.title }}{% endautoescape %}",
    );
    assert!(out.starts_with("&lt;!channel&gt;"), "{out}");
    let err = template("{{ data.title | safe }}")
        .render(Markup::Slack, &hostile_event())
        .unwrap_err();
    assert!(err.reason.contains("safe"), "{err}");
    // Joining data to a value marked safe does not make the data safe.
    for source in [
        "{{ (data.url | url) ~ data.title }}",
        "{{ (data.url | url) + data.title }}",
        "{% set x %}{{ data.url }}{% endset %}{{ x ~ data.title }}",
        "{{ [data.title] | join(data.url | url) }}",
        "{{ data.title | replace('x', data.url | url) }}",
    ] {
        let out = rendered(Markup::Slack, source);
        assert!(
            out.contains("&lt;!channel&gt;") && !out.contains("<!"),
            "{source}: {out}"
        );
    }
    // Filters work on the data, and their result is escaped too.
    assert!(rendered(Markup::Slack, "{{ data.title | upper }}").starts_with("&lt;!CHANNEL&gt;"));
    assert!(rendered(Markup::Slack, "{{ data.title | e }}").starts_with("&lt;!channel&gt;"));
}

#[test]
fn the_url_filter_prints_links_only() {
    assert_eq!(
        rendered(Markup::Slack, "<{{ data.url | url }}|open>"),
        "<https://docs.example.com/a_b?x=1&amp;y=(2)%7C3|open>"
    );
    assert_eq!(
        rendered(Markup::Teams, "[open]({{ data.url | url }})"),
        "[open](https://docs.example.com/a_b?x=1&y=%282%29|3)"
    );
    assert_eq!(rendered(Markup::Slack, "x{{ data.title | url }}"), "x");
    assert_eq!(
        rendered(Markup::Slack, "x{{ 'javascript:alert(1)' | url }}"),
        "x"
    );
}

#[test]
fn the_context_is_the_event_and_nothing_else() {
    let e = event(json!({"title": "T"}));
    let t = template("{{ type }}|{{ id }}|{{ timestamp }}|{{ event.data.title }}|{{ event.type }}");
    assert_eq!(
        t.render(Markup::Slack, &e).unwrap(),
        format!(
            "document.created|{}|2026-12-01T10:00:00Z|T|document.created",
            e.id
        )
    );
    assert_eq!(
        template("{{ data.s }}")
            .render(Markup::Slack, &event(json!({"s": "a_b *c* _d"})))
            .unwrap(),
        "a_b \u{200B}*\u{200B}c\u{200B}*\u{200B} \u{200B}_\u{200B}d"
    );
    // Outside the event: nothing, and no error.
    let t = template("x{{ config }}{{ range.__class__ }}{{ self }}{{ env }}{{ data.__class__.__mro__ }}{{ data.missing.deep.er }}");
    assert_eq!(t.render(Markup::Slack, &e).unwrap(), "x");
    let err = template("{{ debug() }}")
        .render(Markup::Slack, &e)
        .unwrap_err();
    assert!(err.reason.contains("debug"), "{err}");
}

#[test]
fn no_loader_and_no_macros() {
    for source in [
        "{% include 'x' %}",
        "{% import 'x' as y %}",
        "{% extends 'x' %}",
        "{% from 'x' import y %}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    ] {
        let err = MessageTemplate::parse(source).unwrap_err();
        assert_eq!(err.line, Some(1), "{source}: {err}");
        assert!(err.reason.contains("unknown statement"), "{source}: {err}");
    }
}

/// Each fails within the fuel budget, quickly, without a panic.
#[test]
fn hostile_templates_run_out_of_fuel_or_are_refused() {
    let e = hostile_event();
    for source in [
        "{% for i in range(100000000) %}x{% endfor %}",
        "{% for i in range(100000) %}{{ i }}{% endfor %}",
        "{% for a in range(1000) %}{% for b in range(1000) %}{{ b }}{% endfor %}{% endfor %}",
        "{{ 'x' * 100000000 }}",
        "{{ data.title * 1000000 }}",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "{% for i in range(30) %}{{ ('x' * 30000) | upper | lower }}{% endfor %}",
        "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
        "{% for x in [1, 2] recursive %}{{ loop([x, x]) }}{{ loop([x, x]) }}{% endfor %}",
    ] {
        let started = Instant::now();
        let Err(err) = template(source).render(Markup::Slack, &e) else {
            panic!("{source} rendered");
        };
        assert!(started.elapsed() < Duration::from_secs(2), "{source}");
        assert_eq!(err.line, Some(1), "{source}: {err}");
    }
}

#[test]
fn output_over_the_cap_is_refused() {
    // Under the fuel budget, over the 40 KB cap.
    let err = template("{{ 'x' * 50000 }}")
        .render(Markup::Slack, &hostile_event())
        .unwrap_err();
    assert!(err.reason.contains("40 KB"), "{err}");
    let err = template("{{ data.nothing }}")
        .render(Markup::Slack, &hostile_event())
        .unwrap_err();
    assert!(err.reason.contains("empty"), "{err}");
}

#[test]
fn syntax_errors_name_their_line() {
    let err = MessageTemplate::parse("a\nb\n{% if type %}\nc").unwrap_err();
    assert_eq!(err.line, Some(3));
    assert_eq!(
        err.to_string(),
        "line 3: unexpected end of input, expected end of block"
    );
    let err = MessageTemplate::parse("ok\n{{ data.title | }}").unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    let err = template("one\ntwo {{ data | nosuch }}")
        .render(Markup::Teams, &hostile_event())
        .unwrap_err();
    assert_eq!(
        (err.line, err.reason.as_str()),
        (Some(2), "filter nosuch is unknown")
    );
    assert!(MessageTemplate::parse(&"x".repeat(MAX_TEMPLATE_BYTES + 1)).is_err());
    assert!(MessageTemplate::parse(" \n").is_err());
}

#[test]
fn a_template_that_fails_on_an_event_gives_way_to_the_default_message() {
    let s = with_template(
        PlatformConfig::Slack,
        "{% for i in range(100000) %}{{ data.title }}{% endfor %}",
    );
    let e = hostile_event();
    let out = render_reporting(&s, &e).unwrap();
    assert!(out.template_error.is_some());
    let mut plain = s.clone();
    plain.template = None;
    assert_eq!(out.request, render(&plain, &e).unwrap());
}

#[test]
fn platform_limits_apply_to_the_escaped_text() {
    // Each `&` escapes to 5 characters: 6,000 of them are 30,000, over Slack's 3,000.
    let e = event(json!({"title": "&".repeat(6000)}));
    let s = with_template(PlatformConfig::Slack, "{{ data.title }}");
    let body = body_json(&render(&s, &e).unwrap());
    let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(section.chars().count() <= 3000);
    assert!(section.ends_with("&amp;…"), "cut between entities");

    let e = event(json!({"title": "*".repeat(20000)}));
    let s = with_template(
        PlatformConfig::Mattermost {
            username: None,
            icon_url: None,
        },
        "{{ data.title }}",
    );
    let text = body_json(&render(&s, &e).unwrap())["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.chars().count() <= 16_383);
    assert!(text.ends_with("\\*…"), "never a lone backslash");

    let e = event(json!({"title": "\"".repeat(20000)}));
    let s = with_template(PlatformConfig::Teams, "{{ data.title }}");
    let r = render(&s, &e).unwrap();
    assert!(r.body.len() <= 28 * 1024, "{}", r.body.len());
    let _: Value = serde_json::from_slice(&r.body).unwrap();
}

#[test]
fn cuts_never_split_an_escape() {
    let chars = crate::render::char_count;
    assert_eq!(cut_markup("ab&amp;cd", 5, chars), "ab…");
    assert_eq!(cut_markup("ab&amp;cd", 8, chars), "ab&amp;…");
    assert_eq!(cut_markup(r"ab\*cd", 4, chars), "ab…");
    assert_eq!(cut_markup(r"ab\*cd", 5, chars), r"ab\*…");
    assert_eq!(cut_markup("abc", 3, chars), "abc");
    assert_eq!(unescape_markdown(r"a\*b\\c\d"), r"a*b\c\d");
}
