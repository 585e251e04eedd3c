//! The request a delivery attempt sends: the platform's rendering, then Herald's headers (content
//! type, Standard Webhooks id, timestamp and signature), the auth token and the subscription's own
//! headers. One function, so that what a preview shows is what delivery sends.
//!
//! A subscription's template that fails on an event gives way to Herald's default message; the
//! caller is told why (delivery logs it, a preview refuses the template).

use bytes::Bytes;
use herald_core::ports::OutboundRequest;
use herald_core::render::{render_reporting, RenderError, TemplateError};
use herald_core::signing::signature_header;
use herald_core::{Event, Subscription};
use jiff::Timestamp;

/// A request to send, and why the subscription's template was not used for it, if it failed.
#[derive(Debug)]
pub struct Built {
    pub request: OutboundRequest,
    pub template_error: Option<TemplateError>,
}

/// The request to send for `event` to `sub` at `now`: body and headers exactly as sent (the
/// outbound client adds only `user-agent` and the transport's own headers).
pub fn build_request(
    sub: &Subscription,
    event: &Event,
    now: Timestamp,
) -> Result<Built, RenderError> {
    let rendered = render_reporting(sub, event)?;
    let template_error = rendered.template_error;
    let rendered = rendered.request;
    let timestamp = now.as_second();
    let msg_id = event.id.to_string();
    let signature = signature_header(sub.signing_secrets(now), &msg_id, timestamp, &rendered.body);
    let mut headers: Vec<(String, String)> = Vec::with_capacity(8 + sub.headers.len());
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("webhook-id".into(), msg_id));
    headers.push(("webhook-timestamp".into(), timestamp.to_string()));
    headers.push(("webhook-signature".into(), signature));
    let renders_auth = rendered
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    if let (Some(token), false) = (&sub.auth_token, renders_auth) {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    headers.extend(sub.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    headers.extend(rendered.headers);
    Ok(Built {
        request: OutboundRequest {
            url: rendered.url,
            headers,
            body: Bytes::from(rendered.body),
        },
        template_error,
    })
}

#[cfg(test)]
mod tests {
    use herald_contract::fixtures::{event, subscription};
    use herald_core::render::MessageTemplate;
    use herald_core::{PlatformConfig, TenantId};
    use serde_json::{json, Value};

    use super::*;

    fn body(built: &Built) -> Value {
        serde_json::from_slice(&built.request.body).unwrap()
    }

    #[test]
    fn a_template_that_fails_on_an_event_sends_the_default_message_and_says_why() {
        let t = TenantId::new();
        let mut sub = subscription(t, &["*"], true);
        sub.platform = PlatformConfig::Slack;
        sub.auth_token = Some("tok".into());
        let mut e = event(t, "document.published");
        e.data = json!({"title": "Intro", "items": (0..20_000).collect::<Vec<_>>()});
        let now = Timestamp::now();
        let default = build_request(&sub, &e, now).unwrap();

        // Fine on the type's example, too much work on this event's data.
        sub.template = Some(
            MessageTemplate::parse("{% for i in data.items %}{{ data.title }}{% endfor %}")
                .unwrap(),
        );
        let fallback = build_request(&sub, &e, now).unwrap();
        assert!(fallback.template_error.is_some());
        assert_eq!(body(&fallback), body(&default));
        assert_eq!(fallback.request.headers, default.request.headers);

        sub.template = Some(MessageTemplate::parse("{{ data.title }} was published").unwrap());
        let templated = build_request(&sub, &e, now).unwrap();
        assert!(templated.template_error.is_none());
        assert_eq!(body(&templated)["text"], "Intro was published");
        let names: Vec<&str> = templated
            .request
            .headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "content-type",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "authorization"
            ]
        );
    }
}
