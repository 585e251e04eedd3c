//! Herald's AWS adapters: the store ports on DynamoDB ([`DynamoStore`]), the
//! [`Queue`](herald_core::ports::Queue) on SQS ([`SqsQueue`]), and the services' write path over
//! both, "write, then send" ([`AwsUnitOfWork`]). [`metering`] counts what those calls would
//! bill, when asked to.
//!
//! The SDK is built without its default aws-lc TLS stack: [`http_client`] is hyper + rustls with
//! ring, which the rest of Herald already uses. Use [`load_sdk_config`] in the Lambda functions
//! (the standard credential and region chain, `AWS_ENDPOINT_URL` included), or
//! [`emulator_sdk_config`] for a local emulator.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use herald_aws::{DynamoConfig, DynamoStore, SqsConfig, SqsQueue};
//! let sdk = herald_aws::load_sdk_config().await;
//! let store = DynamoStore::new(
//!     herald_aws::aws_sdk_dynamodb::Client::new(&sdk),
//!     DynamoConfig::new("herald"),
//! );
//! let queue = SqsQueue::new(
//!     herald_aws::aws_sdk_sqs::Client::new(&sdk),
//!     SqsConfig {
//!         events_queue_url: std::env::var("HERALD_EVENTS_QUEUE_URL")?,
//!         deliveries_queue_url: std::env::var("HERALD_DELIVERIES_QUEUE_URL")?,
//!     },
//! );
//! # let _ = (store, queue); Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod dynamo;
mod error;
pub mod metering;
mod sqs;
mod unit_of_work;

pub use aws_config;
pub use aws_sdk_dynamodb;
pub use aws_sdk_sqs;

pub use dynamo::{
    create_table, DynamoConfig, DynamoRateLimits, DynamoStore, EVENT_SHARDS, LOG_SHARDS,
};
pub use error::AwsError;
pub use metering::{Meter, MeterInterceptor, MeterSnapshot};
pub use sqs::{
    create_queue_with_dlq, create_queues, delay_seconds, encode_body, waited_since,
    BatchDeleteError, BatchSendError, SqsConfig, SqsQueue, CARRIED, DEFAULT_MAX_RECEIVE_COUNT,
    DUE_ATTRIBUTE, MAX_DELAY,
};
pub use unit_of_work::AwsUnitOfWork;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider, SharedHttpClient};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// The SDK's HTTPS client on rustls with ring (no aws-lc build).
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The standard AWS configuration chain (environment, profile, container/instance roles; Lambda's
/// environment credentials) over [`http_client`].
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}

/// A configuration for an emulator at `endpoint_url` (moto, LocalStack): region `us-east-1`,
/// static fake credentials, nothing read from the environment.
pub fn emulator_sdk_config(endpoint_url: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint_url)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "static",
        )))
        .http_client(http_client())
        .build()
}
