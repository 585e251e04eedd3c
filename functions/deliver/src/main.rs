//! The `deliver` function: SQS deliveries queue -> render, sign, POST, record the attempt, schedule
//! the retry. Reports exactly the failed messages (partial batch response).
#![forbid(unsafe_code)]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use herald_lambda::{build_state, handle_sqs_batch, warm_up, AwsConfig, QueueName};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_lambda::logging::init_lambda();
    let config = AwsConfig::from_env()?;
    let sdk = herald_aws::load_sdk_config().await;
    let state = build_state(&sdk, &config)?;
    warm_up(&state, &[&config.deliveries_queue_url]).await;
    let app = &state.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response: SqsBatchResponse =
            handle_sqs_batch(app, QueueName::Deliveries, event.payload).await?;
        Ok::<_, Error>(response)
    }))
    .await
}
