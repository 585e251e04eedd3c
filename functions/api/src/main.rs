//! The `api` function: Herald's management API (subscriptions, secrets, save and test, delivery
//! log, replay, recover) behind API Gateway, served by the same axum router as `herald dev`.
#![forbid(unsafe_code)]

use herald_lambda::{build_state, warm_up, AwsConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    herald_lambda::logging::init_lambda();
    let config = AwsConfig::from_env()?;
    let sdk = herald_aws::load_sdk_config().await;
    let state = build_state(&sdk, &config)?;
    warm_up(&state, &[&config.deliveries_queue_url]).await;
    let router = herald_app::api::management_router(state.app.clone());
    lambda_http::run(herald_lambda::metrics::with_metrics(
        router, &state.app, "api",
    ))
    .await
}
