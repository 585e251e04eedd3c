//! The signing secret: read the current one, rotate (the previous one keeps signing for 24 h).

use axum::extract::{Path, State};
use axum::Json;
use herald_core::operational;
use herald_core::signing::SigningSecret;
use serde_json::{json, Value};

use super::load;
use crate::api::error::ApiError;
use crate::auth::Caller;
use crate::service::intake;
use crate::state::AppState;

pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    let secret = sub.current_secret().map(SigningSecret::expose);
    Ok(Json(json!({ "secret": secret })))
}

pub(super) async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut sub = load(&state, &caller, &id).await?;
    let new_secret = SigningSecret::generate();
    let now = state.clock.now();
    let previous_expires_at = sub.rotate_secret(new_secret.clone(), now);
    let updated = state.store.update_subscription(&sub).await;
    state.directory.forget_subscription(&sub.tenant_id, &sub.id);
    updated?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, "secret rotated");
    let notice = operational::secret_rotated(&sub, now, previous_expires_at);
    intake::emit(&state, sub.tenant_id, notice).await?;
    Ok(Json(json!({
        "secret": new_secret.expose(),
        "previous_secret_expires_at": previous_expires_at,
    })))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::service::testing::Harness;

    #[tokio::test]
    async fn a_rotation_is_told_to_the_herald_subscribers_but_not_to_the_rotated_one() {
        let h = Harness::new([]);
        let key = h.api_key().await.key;
        let ops = h.subscribe(&["herald.*"], true).await;
        let rotated = h.subscribe(&["herald.*"], true).await;
        let path = format!("/v1/subscriptions/{}/secret/rotate", rotated.id);
        let (status, answer) = h.call(&key, "POST", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let told: Vec<_> = h
            .take_deliveries()
            .into_iter()
            .map(|(m, _)| {
                (
                    m.delivery.event_type.to_string(),
                    m.delivery.subscription_id,
                )
            })
            .collect();
        assert_eq!(told, vec![("herald.secret.rotated".to_owned(), ops.id)]);
    }
}
