//! The configuration of Herald on AWS, read once from the environment into one typed struct.
//! Every variable is documented in the README; a bad value is an error at start, never a panic.

use std::time::Duration;

use herald_core::health::LifecyclePolicy;
use herald_core::retry::RetryPolicy;
use herald_core::AddressPolicy;

/// Why the environment did not give a usable configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Tables, queues, policies and retention of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsConfig {
    /// `HERALD_TABLE`
    pub table: String,
    /// `HERALD_EVENTS_QUEUE_URL`
    pub events_queue_url: String,
    /// `HERALD_DELIVERIES_QUEUE_URL`
    pub deliveries_queue_url: String,
    /// `HERALD_ALLOW_HTTP`, `HERALD_ALLOW_PRIVATE` (both false unless set to `true`)
    pub address_policy: AddressPolicy,
    /// `HERALD_RETRY_SCHEDULE` (default DESIGN.md's)
    pub retry: RetryPolicy,
    /// `HERALD_ATTEMPT_TIMEOUT_MS` (default 15 000)
    pub attempt_timeout: Duration,
    /// `HERALD_ATTEMPT_RETENTION_DAYS` (default 30)
    pub attempt_retention: Duration,
    /// `HERALD_EVENT_RETENTION_DAYS` (default 0 = keep events and deliveries)
    pub event_retention: Option<Duration>,
    /// `HERALD_IDEMPOTENCY_RETENTION_HOURS` (default 24)
    pub idempotency_retention: Duration,
    /// `HERALD_CACHE_TTL_MS` (default 5 000; 0 turns it off): how long an instance keeps API keys
    /// and subscriptions it read (`herald_app::directory`). A disabled or deleted subscription
    /// stops receiving, and a revoked key stops working, within it.
    pub cache_ttl: Duration,
    /// `HERALD_DISABLE_AFTER` (default `5d`: a subscription without a success for this long is
    /// disabled) and `HERALD_BREAKER_THRESHOLD` (default 10 consecutive failures; 0 turns the
    /// breaker off).
    pub lifecycle: LifecyclePolicy,
    /// `HERALD_WARM_UP` (default true): call DynamoDB and SQS once during init.
    pub warm_up: bool,
    /// `HERALD_METER_AWS` (default false): count every DynamoDB and SQS call and estimate its
    /// billed units (`herald_aws::metering`); `herald dev` shows them at `/metrics`. Off in
    /// Lambda, where nothing publishes them.
    pub meter_aws: bool,
    /// `HERALD_EMF` (default true inside Lambda, where `AWS_LAMBDA_FUNCTION_NAME` is set; false
    /// elsewhere) and `HERALD_METRICS_NAMESPACE` (default `Herald`): publish CloudWatch metrics
    /// as Embedded Metric Format lines on stdout, under this namespace (`crate::metrics`).
    pub metrics_namespace: Option<String>,
    /// `HERALD_STATS_FLUSH_SECS` (default 10): how long an instance may keep delivery statistics
    /// while full batches keep coming (`herald_app::stats`); a batch that is not full flushes them.
    pub stats_flush_every: Duration,
}

const DAY: u64 = 24 * 3600;

impl AwsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let flag = |name: &'static str, default: bool| -> Result<bool, ConfigError> {
            match lookup(name).as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some("true" | "1" | "yes") => Ok(true),
                Some("false" | "0" | "no") => Ok(false),
                Some(other) => Err(ConfigError::Invalid {
                    name,
                    reason: format!("`{other}` is not true or false"),
                }),
            }
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match lookup(name).as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: format!("`{v}` is not a whole number"),
                }),
            }
        };
        let retry = match lookup("HERALD_RETRY_SCHEDULE").filter(|v| !v.trim().is_empty()) {
            None => RetryPolicy::default(),
            Some(text) => RetryPolicy::parse_schedule(&text).map_err(|e| ConfigError::Invalid {
                name: "HERALD_RETRY_SCHEDULE",
                reason: e.to_string(),
            })?,
        };
        let attempt_timeout_ms = number("HERALD_ATTEMPT_TIMEOUT_MS", 15_000)?;
        if attempt_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                name: "HERALD_ATTEMPT_TIMEOUT_MS",
                reason: "must be above 0".into(),
            });
        }
        let event_days = number("HERALD_EVENT_RETENTION_DAYS", 0)?;
        let disable_after = lookup("HERALD_DISABLE_AFTER");
        let lifecycle =
            LifecyclePolicy::configure(disable_after.as_deref(), None).map_err(|reason| {
                ConfigError::Invalid {
                    name: "HERALD_DISABLE_AFTER",
                    reason,
                }
            })?;
        let lifecycle = LifecyclePolicy {
            breaker_threshold: u32::try_from(number(
                "HERALD_BREAKER_THRESHOLD",
                u64::from(lifecycle.breaker_threshold),
            )?)
            .unwrap_or(u32::MAX),
            ..lifecycle
        };
        Ok(Self {
            table: required("HERALD_TABLE")?,
            events_queue_url: required("HERALD_EVENTS_QUEUE_URL")?,
            deliveries_queue_url: required("HERALD_DELIVERIES_QUEUE_URL")?,
            address_policy: AddressPolicy {
                allow_http: flag("HERALD_ALLOW_HTTP", false)?,
                allow_private: flag("HERALD_ALLOW_PRIVATE", false)?,
            },
            retry,
            attempt_timeout: Duration::from_millis(attempt_timeout_ms),
            attempt_retention: Duration::from_secs(
                number("HERALD_ATTEMPT_RETENTION_DAYS", 30)?.max(1) * DAY,
            ),
            event_retention: (event_days > 0).then(|| Duration::from_secs(event_days * DAY)),
            idempotency_retention: Duration::from_secs(
                number("HERALD_IDEMPOTENCY_RETENTION_HOURS", 24)?.max(1) * 3600,
            ),
            cache_ttl: Duration::from_millis(number("HERALD_CACHE_TTL_MS", 5_000)?),
            lifecycle,
            warm_up: flag("HERALD_WARM_UP", true)?,
            meter_aws: flag("HERALD_METER_AWS", false)?,
            stats_flush_every: Duration::from_secs(number("HERALD_STATS_FLUSH_SECS", 10)?),
            metrics_namespace: flag("HERALD_EMF", lookup("AWS_LAMBDA_FUNCTION_NAME").is_some())?
                .then(|| {
                    lookup("HERALD_METRICS_NAMESPACE")
                        .map(|ns| ns.trim().to_owned())
                        .filter(|ns| !ns.is_empty())
                        .unwrap_or_else(|| "Herald".to_owned())
                }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("HERALD_TABLE", "herald-dev"),
        ("HERALD_EVENTS_QUEUE_URL", "http://127.0.0.1:5000/1/events"),
        (
            "HERALD_DELIVERIES_QUEUE_URL",
            "http://127.0.0.1:5000/1/deliveries",
        ),
    ];

    #[test]
    fn defaults_are_production_safe() {
        let c = AwsConfig::from_lookup(env(&BASE)).unwrap();
        assert_eq!(c.address_policy, AddressPolicy::PRODUCTION);
        assert_eq!(c.retry, RetryPolicy::default());
        assert_eq!(c.attempt_timeout, Duration::from_secs(15));
        assert_eq!(c.event_retention, None);
        assert_eq!(c.cache_ttl, Duration::from_secs(5));
        assert!(c.warm_up);
        assert!(!c.meter_aws);
        assert_eq!(c.metrics_namespace, None);
        assert_eq!(c.stats_flush_every, Duration::from_secs(10));
        // Inside Lambda, metrics are on by default.
        let mut lambda = BASE.to_vec();
        lambda.push(("AWS_LAMBDA_FUNCTION_NAME", "herald-deliver"));
        let c = AwsConfig::from_lookup(env(&lambda)).unwrap();
        assert_eq!(c.metrics_namespace.as_deref(), Some("Herald"));
        lambda.push(("HERALD_METRICS_NAMESPACE", "Herald/prod"));
        let c = AwsConfig::from_lookup(env(&lambda)).unwrap();
        assert_eq!(c.metrics_namespace.as_deref(), Some("Herald/prod"));
        lambda.push(("HERALD_EMF", "false"));
        assert_eq!(
            AwsConfig::from_lookup(env(&lambda))
                .unwrap()
                .metrics_namespace,
            None
        );
    }

    #[test]
    fn missing_and_invalid_values_are_errors() {
        assert!(matches!(
            AwsConfig::from_lookup(env(&BASE[..2])),
            Err(ConfigError::Missing("HERALD_DELIVERIES_QUEUE_URL"))
        ));
        let mut bad = BASE.to_vec();
        bad.push(("HERALD_ALLOW_HTTP", "maybe"));
        assert!(matches!(
            AwsConfig::from_lookup(env(&bad)),
            Err(ConfigError::Invalid {
                name: "HERALD_ALLOW_HTTP",
                ..
            })
        ));
        let mut bad = BASE.to_vec();
        bad.push(("HERALD_RETRY_SCHEDULE", "5 parsecs"));
        assert!(AwsConfig::from_lookup(env(&bad)).is_err());
    }

    #[test]
    fn values_are_read() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("HERALD_ALLOW_PRIVATE", "true"),
            ("HERALD_EVENT_RETENTION_DAYS", "7"),
            ("HERALD_RETRY_SCHEDULE", "1s,2s"),
            ("HERALD_METER_AWS", "1"),
            ("HERALD_CACHE_TTL_MS", "0"),
        ]);
        let c = AwsConfig::from_lookup(env(&vars)).unwrap();
        assert!(c.address_policy.allow_private && !c.address_policy.allow_http);
        assert_eq!(c.event_retention, Some(Duration::from_secs(7 * DAY)));
        assert_eq!(c.retry.max_attempts(), 3);
        assert!(c.meter_aws);
        assert_eq!(c.cache_ttl, Duration::ZERO);
    }
}
