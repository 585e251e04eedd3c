//! The signing secret: read the current one, rotate (the previous one keeps signing for 24 h).

use axum::extract::{Path, State};
use axum::Json;
use herald_core::operational;
use herald_core::signing::SigningSecret;
use serde_json::{json, Value};

use super::load;
use crate::api::error::ApiError;
use crate::auth::Caller;
use crate::service::intake::{self, IntakeError};
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
    match intake::emit(&state, sub.tenant_id, notice).await {
        Ok(()) | Err(IntakeError::KeyReused) => {}
        Err(IntakeError::Store(e)) => return Err(e.into()),
        Err(IntakeError::Queue(e)) => return Err(e.into()),
    }
    Ok(Json(json!({
        "secret": new_secret.expose(),
        "previous_secret_expires_at": previous_expires_at,
    })))
}
