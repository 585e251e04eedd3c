//! Fresh tables and queues on the moto emulator (started by `herald_contract::moto`) for the AWS
//! adapter tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use herald_aws::aws_sdk_dynamodb;
use herald_aws::aws_sdk_sqs;
use herald_aws::{
    create_queues, create_table, AwsUnitOfWork, DynamoConfig, DynamoStore, SqsConfig, SqsQueue,
};
use herald_contract::{Backend, Fixture};
use herald_core::ports::Queue;

pub use herald_contract::moto::{moto, unique};

pub fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&herald_aws::emulator_sdk_config(moto().endpoint()))
}

pub fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&herald_aws::emulator_sdk_config(moto().endpoint()))
}

/// A store on a new table.
pub async fn dynamo_store(config: DynamoConfig) -> DynamoStore {
    let client = dynamodb_client();
    create_table(&client, &config).await.unwrap();
    DynamoStore::new(client, config)
}

/// Queues (with DLQs) under a new prefix.
pub async fn sqs_queue() -> SqsQueue {
    let client = sqs_client();
    let (events, deliveries) = create_queues(&client, &unique("herald")).await.unwrap();
    SqsQueue::new(
        client,
        SqsConfig {
            events_queue_url: events,
            deliveries_queue_url: deliveries,
        },
    )
}

/// A store on a new table, its unit of work, and new queues it sends to.
pub async fn fresh_backend() -> Fixture<Backend> {
    let store = dynamo_store(DynamoConfig::new(unique("herald"))).await;
    let queue = sqs_queue().await;
    let writes = AwsUnitOfWork::new(store.clone(), queue.clone());
    Fixture::new(Arc::new(Backend {
        store: Arc::new(store),
        writes: Arc::new(writes),
        queue: Arc::new(queue),
    }))
}

/// Send slots in a fresh table.
pub async fn fresh_rate_limits() -> Fixture<dyn herald_core::rate::RateLimits> {
    let store = dynamo_store(DynamoConfig::new(unique("herald"))).await;
    Fixture::new(Arc::new(herald_aws::DynamoRateLimits::new(&store)))
}

/// Delivery statistics in a fresh table.
pub async fn fresh_stats() -> Fixture<dyn herald_core::stats::StatsStore> {
    let store = dynamo_store(DynamoConfig::new(unique("herald"))).await;
    Fixture::new(Arc::new(store))
}

/// Event types in a fresh table.
pub async fn fresh_event_types() -> Fixture<dyn herald_core::ports::EventTypeStore> {
    let store = dynamo_store(DynamoConfig::new(unique("herald"))).await;
    Fixture::new(Arc::new(store))
}

pub async fn fresh_queue() -> Fixture<dyn Queue> {
    Fixture::new(Arc::new(sqs_queue().await))
}
