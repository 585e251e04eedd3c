use serde_json::json;

use super::*;

fn now() -> Timestamp {
    "2026-12-06T10:00:00Z".parse().unwrap()
}

fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["title", "space"],
        "properties": {
            "title": {"type": "string"},
            "space": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}}
            }
        }
    })
}

fn create(body: Value) -> Result<TenantEventType, EventTypeInputError> {
    TenantEventType::create(TenantId::new(), body, now())
}

fn field_of(err: EventTypeInputError) -> (String, String) {
    match err {
        EventTypeInputError::Field(f) => (f.field, f.message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn a_full_create_body_parses_with_its_timestamps() {
    let t = create(json!({
        "name": "space.archived",
        "description": "A space was archived.",
        "schema": schema(),
        "example": {"title": "Handbook", "space": {"name": "HB"}},
        "deprecated": true,
    }))
    .unwrap();
    assert_eq!(t.name.as_str(), "space.archived");
    assert_eq!(t.description, "A space was archived.");
    assert!(t.deprecated);
    assert_eq!((t.created_at, t.updated_at), (now(), now()));

    let bare = create(json!({"name": "space.created"})).unwrap();
    assert_eq!(
        (bare.description.as_str(), bare.schema, bare.example),
        ("", None, None)
    );
    assert!(!bare.deprecated);
}

#[test]
fn bad_reserved_and_wildcard_names_are_refused_and_builtins_are_taken() {
    for bad in ["Space.Created", "space", "space.*", "*", "space..x", ""] {
        let (field, _) = field_of(create(json!({"name": bad})).unwrap_err());
        assert_eq!(field, "name", "{bad}");
    }
    let (_, message) = field_of(create(json!({"name": "herald.custom.thing"})).unwrap_err());
    assert!(message.contains("reserved"), "{message}");
    for builtin in [
        "document.published",
        "webhook.test",
        "herald.secret.rotated",
    ] {
        assert_eq!(
            create(json!({"name": builtin})).unwrap_err(),
            EventTypeInputError::Taken(NameTaken::Builtin(builtin.into()))
        );
    }
}

#[test]
fn sizes_and_shapes_are_bounded() {
    let long = "x".repeat(MAX_DESCRIPTION_CHARS + 1);
    let (field, _) = field_of(create(json!({"name": "a.b", "description": long})).unwrap_err());
    assert_eq!(field, "description");

    let big = json!({"type": "object", "description": "y".repeat(MAX_SCHEMA_BYTES)});
    let (field, message) = field_of(create(json!({"name": "a.b", "schema": big})).unwrap_err());
    assert_eq!(
        (field.as_str(), message.contains("64 KiB")),
        ("schema", true)
    );

    let big = json!({"text": "z".repeat(MAX_EXAMPLE_BYTES)});
    let (field, _) = field_of(create(json!({"name": "a.b", "example": big})).unwrap_err());
    assert_eq!(field, "example");

    let (field, _) = field_of(create(json!({"name": "a.b", "example": [1]})).unwrap_err());
    assert_eq!(field, "example");
    let (field, _) = field_of(create(json!({"name": "a.b", "colour": "red"})).unwrap_err());
    assert_eq!(field, "colour");
}

#[test]
fn an_invalid_schema_is_refused_saying_why() {
    let (field, message) =
        field_of(create(json!({"name": "a.b", "schema": {"type": "strnig"}})).unwrap_err());
    assert_eq!(field, "schema");
    assert!(message.contains("not a valid JSON Schema"), "{message}");
    assert!(message.contains("strnig"), "{message}");
}

#[test]
fn a_remote_ref_is_refused_not_fetched() {
    let remote = json!({"$ref": "https://127.0.0.1:9/schema.json"});
    let (field, _) = field_of(create(json!({"name": "a.b", "schema": remote})).unwrap_err());
    assert_eq!(field, "schema");
    // A reference inside the schema itself is fine.
    let local =
        json!({"$defs": {"s": {"type": "string"}}, "properties": {"t": {"$ref": "#/$defs/s"}}});
    assert!(create(json!({"name": "a.b", "schema": local})).is_ok());
}

#[test]
fn an_example_must_fit_the_schema_with_pointer_and_reason() {
    let (field, message) = field_of(
        create(json!({
            "name": "a.b",
            "schema": schema(),
            "example": {"title": "T", "space": {"name": 5}},
        }))
        .unwrap_err(),
    );
    assert_eq!(field, "example");
    assert!(
        message.contains("/space/name: 5 is not of type \"string\""),
        "{message}"
    );
}

#[test]
fn a_patch_changes_what_it_names_removes_nulls_and_rechecks_the_pair() {
    let t = create(json!({"name": "a.b", "schema": schema()})).unwrap();
    let later = now()
        .checked_add(jiff::SignedDuration::from_secs(60))
        .unwrap();

    let p = t
        .patched(json!({"description": "new", "deprecated": true}), later)
        .unwrap();
    assert_eq!((p.description.as_str(), p.deprecated), ("new", true));
    assert_eq!((p.created_at, p.updated_at), (now(), later));
    assert_eq!(p.schema, t.schema);

    // An example that breaks the kept schema is refused; removing the schema lets it in.
    let bad = json!({"title": 1});
    assert_eq!(
        t.patched(json!({"example": bad}), later).unwrap_err().field,
        "example"
    );
    let p = t
        .patched(json!({"schema": null, "example": bad}), later)
        .unwrap();
    assert_eq!((&p.schema, &p.example), (&None, &Some(bad)));
    // A new schema that the kept example breaks is refused too.
    assert_eq!(
        p.patched(json!({"schema": schema()}), later)
            .unwrap_err()
            .field,
        "example"
    );
    assert_eq!(
        t.patched(json!({"name": "c.d"}), later).unwrap_err().field,
        "name"
    );
}

#[test]
fn settings_patch_takes_accept_or_reject_only() {
    let s = CatalogSettings::default();
    assert_eq!(s.unknown_event_types, UnknownEventTypes::Accept);
    let r = s.patched(json!({"unknown_event_types": "reject"})).unwrap();
    assert_eq!(r.unknown_event_types, UnknownEventTypes::Reject);
    assert_eq!(r.patched(json!({})).unwrap(), r);
    assert_eq!(
        s.patched(json!({"unknown_event_types": "maybe"}))
            .unwrap_err()
            .field,
        "unknown_event_types"
    );
    assert_eq!(
        serde_json::to_value(r).unwrap(),
        json!({"unknown_event_types": "reject"})
    );
}

fn catalog(settings: UnknownEventTypes, types: Vec<TenantEventType>) -> Catalog {
    Catalog::compile(TenantCatalog {
        settings: CatalogSettings {
            unknown_event_types: settings,
        },
        types,
    })
}

#[test]
fn check_lists_pointer_and_reason_of_at_most_ten_violations() {
    let mut props = serde_json::Map::new();
    for i in 0..15 {
        props.insert(format!("f{i:02}"), json!({"type": "string"}));
    }
    let t =
        create(json!({"name": "a.b", "schema": {"type": "object", "properties": props}})).unwrap();
    let c = catalog(UnknownEventTypes::Accept, vec![t.clone()]);
    let mut data = serde_json::Map::new();
    for i in 0..15 {
        data.insert(format!("f{i:02}"), json!(i));
    }
    let Err(Refusal::SchemaViolation {
        event_type,
        violations,
    }) = c.check(&t.name, &Value::Object(data))
    else {
        panic!("expected a schema violation")
    };
    assert_eq!(event_type, t.name);
    assert_eq!(violations.len(), MAX_VIOLATIONS);
    assert_eq!(violations[0].pointer, "/f00");
    assert_eq!(violations[0].reason, "0 is not of type \"string\"");

    let schema_t = create(json!({"name": "document.shared", "schema": schema()})).unwrap();
    let c = catalog(UnknownEventTypes::Accept, vec![schema_t.clone()]);
    let refusal = c
        .check(&schema_t.name, &json!({"title": "T", "space": {"name": 5}}))
        .unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "data does not match the schema of document.shared: /space/name: 5 is not of type \"string\""
    );
    assert!(c
        .check(
            &schema_t.name,
            &json!({"title": "T", "space": {"name": "HB"}})
        )
        .is_ok());
}

#[test]
fn unknown_types_follow_the_setting_and_builtins_and_deprecated_types_pass() {
    let old = create(json!({"name": "legacy.thing", "deprecated": true})).unwrap();
    let unknown = EventType::parse("mystery.event").unwrap();
    let builtin = EventType::parse("document.published").unwrap();

    let accepting = catalog(UnknownEventTypes::Accept, vec![old.clone()]);
    assert!(accepting.check(&unknown, &json!({})).is_ok());

    let rejecting = catalog(UnknownEventTypes::Reject, vec![old.clone()]);
    assert_eq!(
        rejecting.check(&unknown, &json!({})),
        Err(Refusal::UnknownType(unknown.clone()))
    );
    assert!(rejecting.check(&builtin, &json!({})).is_ok());
    assert!(rejecting
        .check(&EventType::webhook_test(), &json!({}))
        .is_ok());
    assert!(rejecting.check(&old.name, &json!({"anything": 1})).is_ok());
}
