//! How records are shown in API answers. Secrets, bearer tokens and Trello credentials are never
//! part of a view; the secret has its own endpoint.

use herald_core::health::LifecyclePolicy;
use herald_core::{Attempt, Delivery, Event, PlatformConfig, Subscription};
use jiff::Timestamp;
use serde_json::{json, Value};

/// A subscription with its health as of `now` under `lifecycle`.
pub fn subscription_view(sub: &Subscription, lifecycle: &LifecyclePolicy, now: Timestamp) -> Value {
    let platform_options = match &sub.platform {
        PlatformConfig::Mattermost { username, icon_url } => {
            json!({ "username": username, "icon_url": icon_url })
        }
        PlatformConfig::Trello(t) => {
            json!({ "list_id": t.list_id, "api_key_set": true, "token_set": true })
        }
        _ => json!({}),
    };
    json!({
        "id": sub.id,
        "name": sub.name,
        "description": sub.description,
        "platform": sub.platform.platform(),
        "url": sub.url,
        "events": sub.events,
        "enabled": sub.enabled,
        "disabled_reason": sub.disabled_reason,
        "disabled_at": sub.disabled_at,
        "headers": sub.headers,
        "auth_token_set": sub.auth_token.is_some(),
        "rate_limit_per_sec": sub.rate_limit_per_sec,
        "health": lifecycle.view(&sub.health, now),
        "platform_options": platform_options,
        "created_at": sub.created_at,
        "updated_at": sub.updated_at,
    })
}

pub fn delivery_view(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "subscription_id": d.subscription_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "status": d.status,
        "attempts": d.attempts,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "next_attempt_at": d.next_attempt_at,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    })
}

pub fn attempt_view(a: &Attempt) -> Value {
    json!({
        "id": a.id,
        "number": a.number,
        "started_at": a.started_at,
        "status_code": a.status_code,
        "latency_ms": a.latency_ms,
        "response_excerpt": a.response_excerpt,
        "error": a.error,
        "succeeded": a.succeeded,
        "result": attempt_result(a),
    })
}

/// `delivered`, `accepted` (202: the receiver queued it to process later, as Teams Workflows
/// does; Herald cannot know whether it was then posted), or `failed`.
fn attempt_result(a: &Attempt) -> &'static str {
    match (a.succeeded, a.status_code) {
        (true, Some(202)) => "accepted",
        (true, _) => "delivered",
        (false, _) => "failed",
    }
}

pub fn event_view(e: &Event) -> Value {
    json!({ "id": e.id, "type": e.event_type, "timestamp": e.timestamp, "data": e.data })
}
