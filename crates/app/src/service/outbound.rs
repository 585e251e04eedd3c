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
