//! The application state on DynamoDB and SQS: SDK and HTTP clients built once per process (one
//! Lambda container), and warmed so the first request after a cold start does not pay for the
//! TLS handshakes.

use std::sync::Arc;

use futures_util::future::join_all;
use herald_app::metrics::MetricsSource;
use herald_app::sender::{HttpSender, HttpSenderConfig, SenderBuildError};
use herald_app::{AppState, Settings};
use herald_aws::aws_config::SdkConfig;
use herald_aws::aws_sdk_sqs::types::QueueAttributeName;
use herald_aws::{
    aws_sdk_dynamodb, aws_sdk_sqs, AwsUnitOfWork, DynamoConfig, DynamoRateLimits, DynamoStore,
    Meter, SqsConfig, SqsQueue,
};
use herald_core::ports::SystemClock;
use herald_core::TenantId;

use crate::config::AwsConfig;

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("building the HTTP client: {0}")]
    Sender(#[from] SenderBuildError),
}

/// The state and the raw clients (for warm-up and operator commands).
#[derive(Clone)]
pub struct AwsState {
    pub app: AppState,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub config: AwsConfig,
    /// Every DynamoDB and SQS call of `dynamodb` and `sqs`, counted, when
    /// [`AwsConfig::meter_aws`] is on.
    pub meter: Option<Meter>,
}

/// The meter's counters on the `/metrics` page.
struct MeterMetrics(Meter);

impl MetricsSource for MeterMetrics {
    fn render(&self, out: &mut String) {
        out.push_str(&self.0.snapshot().to_prometheus());
    }
}

/// Builds the clients and the application state. `sdk` comes from `herald_aws::load_sdk_config()`
/// in Lambda, or `emulator_sdk_config(url)` for an emulator.
pub fn build_state(sdk: &SdkConfig, config: &AwsConfig) -> Result<AwsState, StateError> {
    let meter = config.meter_aws.then(Meter::new);
    let mut dynamodb_config = aws_sdk_dynamodb::config::Builder::from(sdk);
    let mut sqs_config = aws_sdk_sqs::config::Builder::from(sdk);
    if let Some(meter) = &meter {
        dynamodb_config = dynamodb_config.interceptor(meter.interceptor());
        sqs_config = sqs_config.interceptor(meter.interceptor());
    }
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamodb_config.build());
    let sqs = aws_sdk_sqs::Client::from_conf(sqs_config.build());
    let dynamo_config = DynamoConfig {
        table: config.table.clone(),
        attempt_ttl: config.attempt_retention,
        event_ttl: config.event_retention,
        delivery_ttl: config.event_retention,
    };
    let store = DynamoStore::new(dynamodb.clone(), dynamo_config);
    let queue = SqsQueue::new(
        sqs.clone(),
        SqsConfig {
            events_queue_url: config.events_queue_url.clone(),
            deliveries_queue_url: config.deliveries_queue_url.clone(),
        },
    );
    let sender = HttpSender::new(HttpSenderConfig {
        timeout: config.attempt_timeout,
        policy: config.address_policy,
        ..HttpSenderConfig::default()
    })?;
    let settings = Settings {
        address_policy: config.address_policy,
        retry: config.retry.clone(),
        idempotency_window: config.idempotency_retention,
        cache_ttl: config.cache_ttl,
        lifecycle: config.lifecycle,
        stats_flush_every: config.stats_flush_every,
        ..Settings::default()
    };
    let writes = AwsUnitOfWork::new(store.clone(), queue.clone());
    let rate_limits = DynamoRateLimits::new(&store);
    let stats = Arc::new(store.clone());
    let event_types = Arc::new(store.clone());
    let app = AppState::new(
        Arc::new(store),
        Arc::new(writes),
        Arc::new(queue),
        Arc::new(sender),
        Arc::new(SystemClock),
        settings,
    )
    .with_rate_limits(Arc::new(rate_limits))
    .with_stats(stats)
    .with_event_types(event_types);
    if let Some(namespace) = &config.metrics_namespace {
        app.metrics.enable_emf(namespace);
    }
    if let Some(meter) = &meter {
        app.metrics.attach(Arc::new(MeterMetrics(meter.clone())));
    }
    Ok(AwsState {
        app,
        dynamodb,
        sqs,
        config: config.clone(),
        meter,
    })
}

/// Opens the connections to DynamoDB and to `queue_url` with one cheap call each (a GetItem of a
/// key that cannot exist, GetQueueAttributes), so their TLS sessions exist before the first event.
/// Failures are logged, not fatal: the first real call will report them properly.
pub async fn warm_up(state: &AwsState, queue_urls: &[&str]) {
    if !state.config.warm_up {
        return;
    }
    let started = std::time::Instant::now();
    let nobody = TenantId::new();
    let dynamo = state.app.store.get_tenant(&nobody);
    let queues = queue_urls.iter().map(|url| {
        state
            .sqs
            .get_queue_attributes()
            .queue_url(*url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
    });
    let (dynamo, queues) = tokio::join!(dynamo, join_all(queues));
    if let Err(e) = dynamo {
        tracing::warn!(error = %e, "warm-up: DynamoDB call failed");
    }
    for result in queues {
        if let Err(e) = result {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "warm-up: SQS call failed");
        }
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "warm-up done"
    );
}
