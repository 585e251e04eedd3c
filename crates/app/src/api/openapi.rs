//! The OpenAPI 3.1 document, `GET /v1/openapi.json` (no API key).
//!
//! Paths, parameters, bodies and answers come from the routers themselves
//! ([`super::described_routes`]): each handler's `#[utoipa::path]` and the typed views and error
//! body it answers with. This module adds what no route carries: the title, the bearer API key
//! scheme, the tags, and the links from an answer's ids to the operations that take them. The
//! document is built once per process and served as the same bytes.

use std::sync::OnceLock;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

/// The name of the security scheme that every authenticated route names.
pub const API_KEY: &str = "api_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald",
        description = "Signed, retried webhook delivery. Every `/v1` route but this document takes \
`Authorization: Bearer <api key>` (`hk_…`); the key names the tenant, and another tenant's ids \
answer 404. Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`. Lists take `?limit=` \
(1 to 100) and `?cursor=` and answer `{\"data\": […], \"next_cursor\"}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerApiKey),
    components(schemas(super::requests::BatchItem)),
    tags(
        (name = "subscriptions", description = "Where events go, and how they are signed"),
        (name = "deliveries", description = "The delivery log, attempts and replay"),
        (name = "events", description = "Intake and the events received"),
        (name = "event types", description = "The event catalog: built-in types and the \
tenant's own, with JSON Schemas for `data`; the tenant's catalog settings"),
        (name = "health", description = "Liveness, metrics and this document"),
    )
)]
struct Base;

struct BearerApiKey;

impl Modify for BearerApiKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hk_…")
                    .description(Some("An API key: `herald dev` prints one at start"))
                    .build(),
            ),
        );
    }
}

/// Where an answer's ids lead, as OpenAPI links (clients and the fuzzer follow them): the path and
/// status of the answer, the field holding the id, and the operations that take it as `{id}`.
const LINKS: &[(&str, &str, &str, &[&str])] = &[
    (
        "/v1/subscriptions",
        "201",
        "id",
        &[
            "get_subscription",
            "update_subscription",
            "delete_subscription",
            "get_secret",
            "rotate_secret",
            "test_subscription",
            "list_subscription_deliveries",
            "get_subscription_stats",
            "recover_deliveries",
            "enable_subscription",
        ],
    ),
    (
        "/v1/subscriptions/{id}/test",
        "200",
        "delivery_id",
        &["get_delivery", "retry_delivery"],
    ),
    (
        "/v1/subscriptions/{id}/test",
        "200",
        "event_id",
        &["get_event"],
    ),
    ("/v1/events", "202", "id", &["get_event"]),
];

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.merge(super::described_routes());
    add_links(&mut doc);
    doc
}

/// Adds [`LINKS`] to the POST answers they start from (a test checks that each one lands).
fn add_links(doc: &mut utoipa::openapi::OpenApi) {
    for (path, status, field, targets) in LINKS {
        let answer = doc
            .paths
            .paths
            .get_mut(*path)
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.responses.responses.get_mut(*status));
        let Some(RefOr::T(answer)) = answer else {
            continue;
        };
        for target in *targets {
            let link = LinkBuilder::new()
                .operation_id(*target)
                .parameter("id", format!("$response.body#/{field}"))
                .build();
            answer.links.insert((*target).to_owned(), RefOr::T(link));
        }
    }
}

/// The document as served: JSON, built once.
fn document_json() -> Result<&'static str, &'static serde_json::Error> {
    static JSON: OnceLock<Result<String, serde_json::Error>> = OnceLock::new();
    JSON.get_or_init(|| document().to_json())
        .as_ref()
        .map(String::as_str)
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "openapi", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document",
        content_type = "application/json", body = Object)))]
pub(super) async fn serve() -> Response {
    match document_json() {
        Ok(json) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Err(e) => super::error::ApiError::internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Method, Request};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;
    use crate::service::testing::Harness;

    /// Every route of [`crate::api::router`] but the console's files. A route added there without
    /// a description, or described and not served, fails these tests.
    const ROUTES: &[(&str, &str)] = &[
        ("get", "/healthz"),
        ("get", "/metrics"),
        ("get", "/v1/openapi.json"),
        ("post", "/v1/subscriptions"),
        ("get", "/v1/subscriptions"),
        ("get", "/v1/subscriptions/{id}"),
        ("patch", "/v1/subscriptions/{id}"),
        ("delete", "/v1/subscriptions/{id}"),
        ("get", "/v1/subscriptions/{id}/secret"),
        ("post", "/v1/subscriptions/{id}/secret/rotate"),
        ("post", "/v1/subscriptions/{id}/test"),
        ("post", "/v1/subscriptions/preview"),
        ("get", "/v1/subscriptions/{id}/deliveries"),
        ("get", "/v1/subscriptions/{id}/stats"),
        ("post", "/v1/subscriptions/{id}/recover"),
        ("post", "/v1/subscriptions/{id}/enable"),
        ("get", "/v1/deliveries/{id}"),
        ("post", "/v1/deliveries/{id}/retry"),
        ("post", "/v1/events"),
        ("get", "/v1/events"),
        ("post", "/v1/events/batch"),
        ("get", "/v1/events/{id}"),
        ("get", "/v1/event-types"),
        ("post", "/v1/event-types"),
        ("get", "/v1/event-types/{name}"),
        ("patch", "/v1/event-types/{name}"),
        ("delete", "/v1/event-types/{name}"),
        ("get", "/v1/settings"),
        ("patch", "/v1/settings"),
    ];

    const PUBLIC: &[&str] = &["/healthz", "/metrics", "/v1/openapi.json"];

    fn doc() -> Value {
        serde_json::from_str(document_json().unwrap()).unwrap()
    }

    /// `(method, path, operation)` of every documented operation.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
        out
    }

    #[test]
    fn the_document_is_openapi_3_1_and_lists_exactly_the_served_routes() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let documented: BTreeSet<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(m, p, _)| (m, p))
            .collect();
        let expected: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, expected);
        let scheme = &doc["components"]["securitySchemes"][API_KEY];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
    }

    /// The API's files under `dir`, recursively, less their test modules.
    fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // The code served, not its tests.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                out.push((path.display().to_string(), code.to_owned()));
            }
        }
    }

    /// `routes!` registers a handler with its description; a plain `.route(…)` would serve a path
    /// the document does not know. None in the API's modules (the console's files are outside).
    #[test]
    fn the_api_registers_routes_only_with_their_descriptions() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        let mut files = Vec::new();
        sources(&dir, &mut files);
        assert!(files.len() >= 10, "{}", files.len());
        let plain = [".route(", ".route_service(", ".nest("].map(|s| s.replace('(', "(\""));
        for (name, text) in files {
            for bad in &plain {
                assert!(
                    !text.contains(bad.as_str()),
                    "{name} uses {bad}…): use routes!"
                );
            }
        }
    }

    #[tokio::test]
    async fn every_documented_route_is_served_and_answers_what_it_documents_without_a_key() {
        let h = Harness::new([]);
        for (method, path, op) in operations(&doc()) {
            let uri = path
                .replace("{id}", "sub_01JF3Q8Z6X4N7W2C5V9B1M0KQR")
                .replace("{name}", "document.translated");
            let request = Request::builder()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let response = crate::api::router(h.state.clone())
                .oneshot(request)
                .await
                .unwrap();
            let status = response.status().as_u16();
            let documented = op["responses"].as_object().unwrap();
            assert!(
                documented.contains_key(&status.to_string()),
                "{method} {path} answered {status}, not documented"
            );
            if PUBLIC.contains(&path.as_str()) {
                assert_eq!(status, 200, "{method} {path}");
                assert!(op.get("security").is_none(), "{method} {path}");
            } else {
                assert_eq!(status, 401, "{method} {path} needs a key");
                assert_eq!(op["security"], json!([{ API_KEY: [] }]), "{method} {path}");
            }
        }
    }

    /// Whether `schema` (through `$ref` and `allOf`) has the property `field`.
    fn has_property(doc: &Value, schema: &Value, field: &str) -> bool {
        let schema = resolve(doc, schema);
        schema["properties"].get(field).is_some()
            || schema["allOf"]
                .as_array()
                .is_some_and(|all| all.iter().any(|s| has_property(doc, s, field)))
    }

    #[test]
    fn every_link_starts_from_a_documented_answer_and_leads_to_an_operation_with_an_id() {
        let doc = doc();
        let ops = operations(&doc);
        let mut links = 0;
        for (path, status, field, targets) in LINKS {
            let answer = &doc["paths"][path]["post"]["responses"][status];
            let schema = &answer["content"]["application/json"]["schema"];
            assert!(
                has_property(&doc, schema, field),
                "{path} {status} has no `{field}`"
            );
            for target in *targets {
                let link = &answer["links"][target];
                assert_eq!(link["operationId"], *target, "{path} {status}");
                let (_, target_path, _) = ops
                    .iter()
                    .find(|(_, _, op)| op["operationId"] == *target)
                    .unwrap_or_else(|| panic!("no operation {target}"));
                assert!(target_path.contains("{id}"), "{target}");
                links += 1;
            }
        }
        assert_eq!(links, 14);
    }

    #[test]
    fn every_body_taking_route_documents_the_body_errors() {
        for (method, path, op) in operations(&doc()) {
            if op.get("requestBody").is_none() {
                continue;
            }
            for status in ["400", "413", "415", "422"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }

    /// The schema a `$ref` (or an inline schema) names.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        // `Option<T>`: one of null and T.
        if let Some(t) = schema["oneOf"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["$ref"].is_string()))
        {
            return resolve(doc, t);
        }
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                &doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    #[tokio::test]
    async fn the_documented_request_examples_are_accepted_by_the_handlers() {
        let h = Harness::new([]);
        let key = h.api_key().await.key;
        let doc = doc();
        let created_example = |op: &Value| {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            resolve(&doc, schema)["example"].clone()
        };
        let ops = operations(&doc);
        let op = |m: &str, p: &str| {
            ops.iter()
                .find(|(om, op, _)| om == m && op == p)
                .map(|(_, _, o)| o.clone())
                .unwrap()
        };
        let (status, sub) = h
            .call(
                &key,
                "POST",
                "/v1/subscriptions",
                Some(created_example(&op("post", "/v1/subscriptions"))),
            )
            .await;
        assert_eq!(status, 201, "{sub}");
        let id = sub["id"].as_str().unwrap();
        let one = format!("/v1/subscriptions/{id}");
        for (method, path, uri, want) in [
            ("post", "/v1/events", "/v1/events".to_owned(), 202),
            (
                "post",
                "/v1/events/batch",
                "/v1/events/batch".to_owned(),
                200,
            ),
            ("patch", "/v1/subscriptions/{id}", one.clone(), 200),
            (
                "post",
                "/v1/subscriptions/{id}/enable",
                format!("{one}/enable"),
                200,
            ),
            (
                "post",
                "/v1/subscriptions/{id}/recover",
                format!("{one}/recover"),
                202,
            ),
            ("post", "/v1/event-types", "/v1/event-types".to_owned(), 201),
            (
                "patch",
                "/v1/event-types/{name}",
                "/v1/event-types/document.translated".to_owned(),
                200,
            ),
            ("patch", "/v1/settings", "/v1/settings".to_owned(), 200),
        ] {
            let example = created_example(&op(method, path));
            assert!(example.is_object(), "{method} {path} has no example");
            let (status, answer) = h
                .call(&key, &method.to_uppercase(), &uri, Some(example))
                .await;
            assert_eq!(status.as_u16(), want, "{method} {path}: {answer}");
        }
    }

    /// `(method, path template)` of every `call('METHOD', 'v1/…')` in `source`, with each
    /// `${enc(…)}` as `{id}` and the query left out.
    fn console_calls(source: &str) -> Vec<(String, String)> {
        let mut calls = Vec::new();
        for chunk in source.split("call('").skip(1) {
            let Some((method, rest)) = chunk.split_once('\'') else {
                continue;
            };
            let rest = rest.trim_start_matches([',', ' ']);
            let Some(quote) = rest.chars().next().filter(|c| ['\'', '`'].contains(c)) else {
                continue;
            };
            let Some(end) = rest[1..].find(quote) else {
                continue;
            };
            let mut path = String::from("/");
            let mut text = &rest[1..=end];
            while let Some(start) = text.find("${") {
                path.push_str(&text[..start]);
                path.push_str("{id}");
                let close = text[start..]
                    .find('}')
                    .map_or(text.len(), |c| start + c + 1);
                text = &text[close..];
            }
            path.push_str(text);
            let path = path.split('?').next().unwrap_or_default().to_owned();
            calls.push((method.to_lowercase(), path));
        }
        calls
    }

    #[test]
    fn every_call_the_console_makes_is_a_documented_operation() {
        let source = include_str!("../../../../web/api.js");
        let calls = console_calls(source);
        assert!(calls.len() >= 14, "{calls:?}");
        // The console's calls name every path parameter `{id}`; so do the documented paths here.
        let any_param = |path: String| {
            path.split('/')
                .map(|s| if s.starts_with('{') { "{id}" } else { s })
                .collect::<Vec<_>>()
                .join("/")
        };
        let documented: BTreeSet<(String, String)> = operations(&doc())
            .into_iter()
            .map(|(m, p, _)| (m, any_param(p)))
            .collect();
        for call in calls {
            assert!(documented.contains(&call), "the console calls {call:?}");
        }
    }

    /// `(method, path, body)` of every `curl … $H/v1/…` command of the README, continuation
    /// lines joined.
    fn readme_calls(readme: &str) -> Vec<(String, String, Option<Value>)> {
        let joined = readme.replace("\\\n", " ");
        let mut calls = Vec::new();
        for (start, _) in joined.match_indices("\ncurl ") {
            let text = &joined[start + 1..];
            let line = text.lines().next().unwrap_or_default();
            let Some(at) = line.find("$H/") else {
                continue;
            };
            let path = line[at + 2..].split_whitespace().next().unwrap_or_default();
            let method = line
                .split_once("-X ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("GET");
            // A body may go on over lines, up to its closing quote.
            let body = line.contains("-d '").then(|| {
                let rest = text.split_once("-d '").map_or("", |(_, rest)| rest);
                let json = rest.split_once('\'').map_or(rest, |(json, _)| json);
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{line}: {e}"))
            });
            calls.push((method.to_owned(), path.to_owned(), body));
        }
        calls
    }

    /// The README's curl commands, in order, against the API as `herald dev` runs it: each names
    /// a documented operation and gets a documented answer; each body is accepted.
    #[tokio::test]
    async fn the_readme_walk_through_matches_the_document() {
        let mut h = Harness::new([]);
        let mut settings = (*h.state.settings).clone();
        settings.address_policy = herald_core::AddressPolicy::DEVELOPMENT;
        h.state.settings = std::sync::Arc::new(settings);
        let key = h.api_key().await.key;
        let doc = doc();
        let calls = readme_calls(include_str!("../../../../README.md"));
        assert!(calls.len() >= 9, "{calls:?}");
        let mut sub = String::new();
        for (method, path, body) in calls {
            let mut template = path.replace("$SUB", "{id}").replace("del_...", "{id}");
            if let Some(name) = template.strip_prefix("/v1/event-types/") {
                template = template.replace(name, "{name}");
            }
            let op = &doc["paths"][&template][method.to_lowercase()];
            assert!(
                op.is_object(),
                "the README calls {method} {path}, not documented"
            );
            let uri = path
                .replace("$SUB", &sub)
                .replace("del_...", "del_01JF3Q8Z6X4N7W2C5V9B1M0KQR");
            let sends_body = body.is_some();
            let (status, answer) = h.call(&key, &method, &uri, body).await;
            let documented = op["responses"].get(status.as_str()).is_some();
            assert!(
                documented,
                "{method} {path}: {status} is not documented: {answer}"
            );
            if sends_body {
                assert!(status.is_success(), "{method} {path}: {status} {answer}");
            }
            if method == "POST" && path == "/v1/subscriptions" && sub.is_empty() {
                sub = answer["id"].as_str().unwrap_or_default().to_owned();
            }
        }
    }

    #[tokio::test]
    async fn the_document_is_served_without_a_key_by_both_api_routers() {
        let h = Harness::new([]);
        for router in [
            crate::api::router(h.state.clone()),
            crate::api::management_router(h.state.clone()),
        ] {
            let request = Request::get("/v1/openapi.json")
                .body(Body::empty())
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let served: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(served, doc());
        }
    }
}
