use serde_json::{json, Value};

use super::*;
use crate::ids::{EventId, TenantId};
use crate::pattern::EventType;

/// A `document.published` event of the documentation platform, in space `space`.
fn published(space: &str) -> Event {
    Event {
        id: EventId::new(),
        tenant_id: TenantId::new(),
        event_type: EventType::parse("document.published").unwrap(),
        timestamp: "2026-12-06T08:00:00.250Z".parse().unwrap(),
        data: json!({
            "space": {"name": space, "key": "HB"},
            "words": 1200,
            "rating": 4.5,
            "draft": false,
            "editor": null,
            "tags": ["policy", "hr"],
            "title": "Leave policy"
        }),
        subscriptions: Vec::new(),
    }
}

fn filter(value: Value) -> Filter {
    Filter::parse(&value).unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn passes(value: Value) -> bool {
    filter(value).matches(&published("Handbook"))
}

#[track_caller]
fn refused(value: Value, at: &str, message: &str) {
    let err = Filter::parse(&value).unwrap_err();
    assert_eq!(err.at, at, "{value}: {err}");
    assert!(err.message.contains(message), "{value}: {err}");
}

#[test]
fn the_handbook_filter_takes_only_the_handbook_space() {
    let handbook = filter(json!({"path": "data.space.name", "eq": "Handbook"}));
    assert!(handbook.matches(&published("Handbook")));
    assert!(!handbook.matches(&published("Engineering")));
}

#[test]
fn every_operator_evaluates_on_the_event() {
    // eq on each kind of value, numbers as f64.
    assert!(passes(json!({"path": "data.words", "eq": 1200.0})));
    assert!(passes(json!({"path": "data.draft", "eq": false})));
    assert!(!passes(json!({"path": "data.draft", "eq": "false"})));
    // in
    assert!(passes(
        json!({"path": "data.space.name", "in": ["Guides", "Handbook"]})
    ));
    assert!(!passes(
        json!({"path": "data.space.name", "in": ["Guides"]})
    ));
    // exists: null counts as absent.
    assert!(passes(json!({"path": "data.title", "exists": true})));
    assert!(!passes(json!({"path": "data.editor", "exists": true})));
    assert!(passes(json!({"path": "data.editor", "exists": false})));
    assert!(passes(json!({"path": "data.nothing", "exists": false})));
    // numeric comparisons
    assert!(passes(json!({"path": "data.words", "gt": 1000})));
    assert!(!passes(json!({"path": "data.words", "gt": 1200})));
    assert!(passes(json!({"path": "data.words", "gte": 1200})));
    assert!(passes(json!({"path": "data.rating", "lt": 5})));
    assert!(!passes(json!({"path": "data.rating", "lte": 4.4})));
    // prefix
    assert!(passes(json!({"path": "data.title", "prefix": "Leave"})));
    assert!(!passes(json!({"path": "data.title", "prefix": "leave"})));
    // the envelope
    assert!(passes(json!({"path": "type", "prefix": "document."})));
    assert!(passes(json!({"path": "type", "eq": "document.published"})));
    assert!(passes(
        json!({"path": "timestamp", "eq": "2026-12-06T08:00:00Z"})
    ));
    let event = published("Handbook");
    let by_id = filter(json!({"path": "id", "eq": event.id.to_string()}));
    assert!(by_id.matches(&event));
    // list indexes
    assert!(passes(json!({"path": "data.tags.1", "eq": "hr"})));
    assert!(!passes(json!({"path": "data.tags.2", "exists": true})));
}

#[test]
fn a_missing_path_or_a_type_mismatch_is_false_and_not_makes_it_true() {
    for condition in [
        json!({"path": "data.space.owner", "eq": "ana"}),
        json!({"path": "data.title.first", "eq": "L"}),
        json!({"path": "data.tags.x", "eq": "hr"}),
        json!({"path": "data.words", "prefix": "12"}),
        json!({"path": "data.title", "gt": 1}),
        json!({"path": "data.words", "eq": "1200"}),
        json!({"path": "data.space", "in": ["Handbook"]}),
    ] {
        assert!(!passes(condition.clone()), "{condition}");
        assert!(passes(json!({"not": condition.clone()})), "not {condition}");
    }
}

#[test]
fn combinators_nest() {
    let handbook_policies = json!({"all": [
        {"path": "data.space.name", "eq": "Handbook"},
        {"any": [
            {"path": "data.tags.0", "eq": "policy"},
            {"path": "data.words", "gt": 5000}
        ]},
        {"not": {"path": "data.draft", "eq": true}}
    ]});
    let f = filter(handbook_policies);
    assert!(f.matches(&published("Handbook")));
    assert!(!f.matches(&published("Engineering")));
    let mut draft = published("Handbook");
    draft.data["draft"] = json!(true);
    assert!(!f.matches(&draft));
    let mut other_tag = published("Handbook");
    other_tag.data["tags"] = json!(["news"]);
    assert!(!f.matches(&other_tag));
}

#[test]
fn a_filter_serialises_to_the_json_it_was_read_from() {
    let text = json!({"any": [
        {"path": "data.space.name", "in": ["Handbook", 3, true, null]},
        {"not": {"path": "data.words", "lte": 10}},
        {"path": "data.rating", "gt": 4.5},
        {"path": "data.editor", "exists": false},
        {"path": "type", "prefix": "document."}
    ]});
    let f = filter(text.clone());
    assert_eq!(serde_json::to_value(&f).unwrap(), text);
    let back: Filter = serde_json::from_value(text).unwrap();
    assert_eq!(back, f);
    let bad = serde_json::from_value::<Filter>(json!({"path": "x", "eq": 1}));
    assert!(bad.is_err(), "a stored filter is parsed again");
}

#[test]
fn bad_filters_name_the_bad_part() {
    refused(json!("Handbook"), "filter", "is an object");
    refused(json!({}), "filter", "has a `path`");
    refused(json!({"path": "data.x"}), "filter", "needs an operator");
    refused(
        json!({"path": 3, "eq": 1}),
        "filter.path",
        "must be a string",
    );
    refused(
        json!({"path": "body.x", "eq": 1}),
        "filter.path",
        "starts with",
    );
    refused(
        json!({"path": "data..x", "eq": 1}),
        "filter.path",
        "empty segments",
    );
    refused(
        json!({"path": "type.x", "eq": 1}),
        "filter.path",
        "only `data`",
    );
    refused(
        json!({"path": "data.x", "equals": 1}),
        "filter.equals",
        "not an operator",
    );
    refused(
        json!({"path": "data.x", "eq": 1, "gt": 0}),
        "filter.gt",
        "one operator",
    );
    refused(
        json!({"path": "data.x", "eq": [1]}),
        "filter.eq",
        "string, number",
    );
    refused(
        json!({"path": "data.x", "in": "a"}),
        "filter.in",
        "list of values",
    );
    refused(json!({"path": "data.x", "in": []}), "filter.in", "1 to 100");
    refused(
        json!({"path": "data.x", "in": [1, {}]}),
        "filter.in[1]",
        "string, number",
    );
    refused(
        json!({"path": "data.x", "exists": "yes"}),
        "filter.exists",
        "true or false",
    );
    refused(
        json!({"path": "data.x", "gte": "3"}),
        "filter.gte",
        "takes a number",
    );
    refused(
        json!({"path": "data.x", "prefix": 3}),
        "filter.prefix",
        "takes a string",
    );
    refused(json!({"all": {}}), "filter.all", "a list of conditions");
    refused(json!({"any": []}), "filter.any", "at least one");
    refused(
        json!({"all": [], "path": "data.x"}),
        "filter.path",
        "stands alone",
    );
    refused(
        json!({"all": [{"path": "data.a", "eq": 1}, {"path": "data.b", "in": 2}]}),
        "filter.all[1].in",
        "list of values",
    );
    refused(
        json!({"not": {"any": [{"path": "nope", "eq": 1}]}}),
        "filter.not.any[0].path",
        "starts with",
    );
}

#[test]
fn the_limits_hold() {
    // Depth: 8 levels pass, 9 do not.
    let leaf = json!({"path": "data.x", "exists": true});
    let nest = |levels: usize| (1..levels).fold(leaf.clone(), |inner, _| json!({"not": inner}));
    assert!(Filter::parse(&nest(MAX_DEPTH)).is_ok());
    let at = format!("filter{}", ".not".repeat(MAX_DEPTH));
    refused(nest(MAX_DEPTH + 1), &at, "at most 8 levels");

    // Conditions: 64 in all pass (63 under one `any`), 65 do not.
    let many = |n: usize| json!({"any": vec![leaf.clone(); n]});
    assert!(Filter::parse(&many(MAX_NODES - 1)).is_ok());
    refused(many(MAX_NODES), "filter.any[63]", "at most 64 conditions");

    // Path length.
    let long = format!("data.{}", "a".repeat(MAX_PATH_CHARS - 5));
    assert!(Filter::parse(&json!({"path": long, "exists": true})).is_ok());
    let too_long = format!("data.{}", "a".repeat(MAX_PATH_CHARS - 4));
    refused(
        json!({"path": too_long, "exists": true}),
        "filter.path",
        "256",
    );

    // `in` values.
    let values: Vec<u32> = (0..100).collect();
    assert!(Filter::parse(&json!({"path": "data.x", "in": values})).is_ok());
    let values: Vec<u32> = (0..101).collect();
    refused(
        json!({"path": "data.x", "in": values}),
        "filter.in",
        "1 to 100",
    );

    // Size: a filter over 4 KiB is refused as a whole.
    let big = json!({"path": "data.x", "eq": "x".repeat(MAX_FILTER_BYTES)});
    refused(big, "filter", "4096 bytes");
}
