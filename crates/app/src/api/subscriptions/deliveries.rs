//! A subscription's delivery log, newest first.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::load;
use crate::api::error::ApiError;
use crate::api::extract::PageQuery;
use crate::api::views::delivery_view;
use crate::auth::Caller;
use crate::state::AppState;

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: PageQuery,
) -> Result<Json<Value>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    let page = state
        .store
        .list_deliveries(&caller.tenant_id, &sub.id, &query.page())
        .await?;
    Ok(Json(json!({
        "data": page.items.iter().map(delivery_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}
