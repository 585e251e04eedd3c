//! A subscription's delivery log, newest first.

use axum::extract::{Path, State};
use axum::Json;

use super::load;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{PageParams, PageQuery};
use crate::api::views::{delivery_view, DeliveryList};
use crate::auth::Caller;
use crate::state::AppState;

/// The subscription's deliveries, newest first.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/deliveries", operation_id = "list_subscription_deliveries", tag = "deliveries",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)"), PageParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 400, description = "A query parameter is not valid (`field` names it)",
            body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: PageQuery,
) -> Result<Json<DeliveryList>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    let page = state
        .store
        .list_deliveries(&caller.tenant_id, &sub.id, &query.page())
        .await?;
    Ok(Json(DeliveryList {
        data: page.items.iter().map(delivery_view).collect(),
        next_cursor: page.next_cursor,
    }))
}
