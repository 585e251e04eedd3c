//! The signing secret: read the current one, rotate (the previous one keeps signing for 24 h).

use axum::extract::{Path, State};
use axum::Json;
use herald_core::operational;
use herald_core::signing::SigningSecret;
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use super::load;
use crate::api::error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::service::intake;
use crate::state::AppState;

/// The current signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: Option<String>,
}

/// A new signing secret; the previous one keeps signing (a second signature) until it expires.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    #[schema(value_type = String, format = DateTime)]
    pub previous_secret_expires_at: Timestamp,
}

/// The current signing secret (`whsec_…`).
#[utoipa::path(get, path = "/v1/subscriptions/{id}/secret", operation_id = "get_secret", tag = "subscriptions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)")),
    responses(
        (status = 200, description = "The secret", body = SecretView),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
    ))]
pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    let secret = sub
        .current_secret()
        .map(|s| SigningSecret::expose(s).to_owned());
    Ok(Json(SecretView { secret }))
}

/// A new secret; the previous one keeps signing for 24 hours.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/secret/rotate", operation_id = "rotate_secret", tag = "subscriptions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)")),
    responses(
        (status = 200, description = "The new secret", body = RotatedSecret),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
    ))]
pub(super) async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
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
    Ok(Json(RotatedSecret {
        secret: new_secret.expose().to_owned(),
        previous_secret_expires_at: previous_expires_at,
    }))
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
