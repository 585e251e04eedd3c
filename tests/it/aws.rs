//! Herald on DynamoDB and SQS, against the moto emulator on 127.0.0.1: `herald aws init` makes the
//! table and queues, `herald dev` on the AWS backend delivers a signed event end to end, and the
//! operator commands make, list and revoke API keys that the running API honours: a new key at once,
//! a revoked one within the cache TTL (`HERALD_CACHE_TTL_MS`; the running process keeps keys it
//! read for that long, and the operator commands are another process). The delivery's statistics
//! are written to and read from the table.
//!
//! moto must be installed (`scripts/test.sh` does it): `$HERALD_MOTO_SERVER`, else
//! `<workspace>/.venv/bin/moto_server`. Without it these tests fail and say so.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use herald::dev::{self, DevBackend, DevConfig};
use herald::ops;
use jiff::Timestamp;
use serde_json::json;

use crate::helpers::{assert_signed_with, fast_retries, Api, TestReceiver, WAIT};
use herald_contract::moto::{moto, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn herald_dev_on_dynamodb_and_sqs_delivers_and_honours_operator_keys() {
    // Arrange: the table and queues, as `herald aws init` makes them; running it again keeps them.
    let sdk = herald_aws::emulator_sdk_config(moto().endpoint());
    let (table, prefix) = (unique("herald"), unique("herald"));
    let made = ops::aws_init(&sdk, &table, &prefix).await.unwrap();
    assert!(made.table_created);
    let again = ops::aws_init(&sdk, &table, &prefix).await.unwrap();
    assert!(!again.table_created);
    assert_eq!(again.events_queue_url, made.events_queue_url);
    assert_eq!(again.deliveries_queue_url, made.deliveries_queue_url);

    // ... and `herald dev` on them.
    let data = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = DevConfig::new(addr, data.path().to_path_buf());
    let mut aws = made.aws_config().unwrap();
    aws.meter_aws = true;
    config.backend = DevBackend::aws(sdk.clone(), aws);
    config.retry = fast_retries();
    config.attempt_timeout = Duration::from_secs(5);
    let cache_ttl = Duration::from_secs(1);
    config.cache_ttl = Some(cache_ttl);
    let running = dev::start(config).await.expect("herald dev starts on AWS");
    let api = Api::new(running.url(), running.api_key.clone());
    // The development key is kept in the data folder, its record in DynamoDB.
    let kept = std::fs::read_to_string(data.path().join("dev-api-key")).unwrap();
    assert_eq!(kept.trim(), running.api_key);
    assert!(!data.path().join(herald_embedded::DB_DIR_NAME).exists());

    // Act: a subscription and an event, over HTTP.
    let receiver = TestReceiver::start().await;
    let sub = api.subscribe(&receiver, &["document.*"]).await;
    let accepted = api
        .send_event(json!({"type": "document.created", "data": {"title": "On AWS"}}))
        .await;

    // Assert: the signed delivery arrives (through SQS, fan-out and delivery), and is logged.
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    let event_id = accepted["id"].as_str().unwrap();
    assert_eq!(request.webhook_id(), event_id);
    assert_eq!(request.json()["data"]["title"], "On AWS");
    assert_signed_with(&request, sub["secret"].as_str().unwrap());
    let sub_id = sub["id"].as_str().unwrap();
    let delivery = api.wait_for_status(sub_id, event_id, "succeeded").await;
    assert_eq!(delivery["attempts"], 1, "{delivery}");
    // The event list (the tenant's event shards, merged) shows it with its delivery.
    let events = api.get("/v1/events").await.expect(200);
    assert_eq!(events["data"][0]["id"], event_id, "{events}");
    assert_eq!(
        events["data"][0]["deliveries"],
        json!({"total": 1, "succeeded": 1, "failed": 0, "pending": 0})
    );
    // Its statistics reach the table within a flush (a second), and are read back from there.
    let stats_path = format!("/v1/subscriptions/{sub_id}/stats?window=7d");
    let stats = crate::helpers::eventually("the delivery in the stats on DynamoDB", || async {
        let stats = api.get(&stats_path).await.expect(200);
        (stats["totals"]["attempts"] == 1).then_some(stats)
    })
    .await;
    assert_eq!(stats["totals"]["succeeded"], 1, "{stats}");
    assert_eq!(stats["totals"]["success_rate"], 1.0, "{stats}");
    assert_eq!(stats["buckets"].as_array().unwrap().len(), 168);

    // With HERALD_METER_AWS, /metrics shows the AWS calls and their estimated units.
    let metrics = api.get("/metrics").await.text;
    for line in [
        "herald_aws_calls_total{service=\"DynamoDB\",operation=\"TransactWriteItems\"}",
        "herald_aws_calls_total{service=\"SQS\",operation=\"SendMessageBatch\"}",
        "herald_dynamodb_write_units_total",
        "herald_sqs_requests_total",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    // Operators, from another set of clients on the same table: a tenant and its key work at once.
    let ops_store = herald_lambda::build_state(&sdk, &made.aws_config().unwrap())
        .unwrap()
        .app
        .store;
    let store = ops_store.as_ref();
    let now = Timestamp::now();
    let new = ops::create_tenant(store, "Ops tenant", now).await.unwrap();
    let first = Api::new(running.url(), new.key.key.clone());
    let listed = first.get("/v1/subscriptions").await.expect(200);
    assert_eq!(
        listed["data"],
        json!([]),
        "a new tenant sees nothing of another"
    );
    let second = ops::create_key(store, &new.tenant.id, "ci", now)
        .await
        .unwrap();
    let keys = ops::list_keys(store, &new.tenant.id).await.unwrap();
    let ids: Vec<_> = keys.iter().map(|k| k.id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&new.key.record.id) && ids.contains(&second.record.id));
    let tenants = ops::list_tenants(store, 100, None).await.unwrap();
    let tenant_ids: Vec<_> = tenants.items.iter().map(|t| t.id).collect();
    assert!(tenant_ids.contains(&new.tenant.id) && tenant_ids.contains(&running.tenant_id));

    // Another tenant's id cannot revoke the key; its own tenant can, and once the running
    // process's cache TTL has passed the API refuses it.
    assert!(
        ops::revoke_key(store, &running.tenant_id, &new.key.record.id, now)
            .await
            .is_err()
    );
    first.get("/v1/subscriptions").await.expect(200);
    ops::revoke_key(store, &new.tenant.id, &new.key.record.id, now)
        .await
        .unwrap();
    tokio::time::sleep(cache_ttl).await;
    let refused = first.get("/v1/subscriptions").await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert!(
        refused.error_message().contains("revoked"),
        "{}",
        refused.text
    );
    Api::new(running.url(), second.key.clone())
        .get("/v1/subscriptions")
        .await
        .expect(200);
    let keys = ops::list_keys(store, &new.tenant.id).await.unwrap();
    let revoked = keys.iter().find(|k| k.id == new.key.record.id).unwrap();
    assert!(revoked.revoked_at.is_some());

    running.stop().await;
}

/// Runs the `herald` binary with `env` (and no AWS settings from this process).
fn herald(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command.args(args);
    for name in [
        "HERALD_TABLE",
        "HERALD_EVENTS_QUEUE_URL",
        "HERALD_DELIVERIES_QUEUE_URL",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("the herald binary runs")
}

#[track_caller]
fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "herald failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The value after `label` on a line of `text` (`tenant   ten_…`).
#[track_caller]
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .map(|rest| rest.trim().to_owned())
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"))
}

#[test]
fn the_cli_sets_up_aws_and_manages_keys_from_the_environment() {
    // `herald aws init` through the standard AWS chain, pointed at moto.
    let aws_env = [
        ("AWS_ENDPOINT_URL", moto().endpoint()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let (table, prefix) = (unique("herald-cli"), unique("herald-cli"));
    let init = herald(
        &["aws", "init", "--table", &table, "--queue-prefix", &prefix],
        &aws_env,
    );
    let exports = stdout_of(&init);
    let exported = |name: &str| -> String {
        let value = field(&exports, &format!("export {name}="));
        value.trim_matches('\'').to_owned()
    };
    assert_eq!(exported("HERALD_TABLE"), table);
    let events_url = exported("HERALD_EVENTS_QUEUE_URL");
    let deliveries_url = exported("HERALD_DELIVERIES_QUEUE_URL");
    assert!(
        events_url.ends_with(&format!("{prefix}-events")),
        "{exports}"
    );
    assert!(
        deliveries_url.ends_with(&format!("{prefix}-deliveries")),
        "{exports}"
    );

    // The operator commands, configured by those exports.
    let mut env = aws_env.to_vec();
    env.extend([
        ("HERALD_TABLE", table.as_str()),
        ("HERALD_EVENTS_QUEUE_URL", events_url.as_str()),
        ("HERALD_DELIVERIES_QUEUE_URL", deliveries_url.as_str()),
    ]);
    manage_keys(&[], &env);

    // The same on the embedded store of a data folder, with no AWS configuration at all.
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    manage_keys(&["--data-dir", dir], &[]);

    // Without configuration, a clear error.
    let missing = herald(
        &["keys", "list", "--tenant", "ten_01ARZ3NDEKTSV4RRFFQ69G5FAV"],
        &[],
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("HERALD_TABLE"), "{stderr}");
}

/// tenants create, keys create / list / revoke, tenants list, with `store_args` and `env`.
#[track_caller]
fn manage_keys(store_args: &[&str], env: &[(&str, &str)]) {
    let run = |args: &[&str]| {
        let all: Vec<&str> = args.iter().chain(store_args).copied().collect();
        herald(&all, env)
    };
    let created = stdout_of(&run(&["tenants", "create", "--name", "Acme"]));
    let tenant = field(&created, "tenant");
    let first_key = field(&created, "api key");
    let first_id = field(&created, "key id");
    assert!(
        tenant.starts_with("ten_") && first_key.starts_with("hk_"),
        "{created}"
    );

    let second = stdout_of(&run(&[
        "keys", "create", "--tenant", &tenant, "--name", "ci",
    ]));
    let second_id = field(&second, "key id");
    let listed = stdout_of(&run(&["keys", "list", "--tenant", &tenant]));
    assert!(
        listed.contains(&first_id) && listed.contains(&second_id),
        "{listed}"
    );
    assert!(!listed.contains(&first_key), "a key is shown only once");
    let hash = herald_app::auth::hash_api_key(&first_key);
    assert!(!listed.contains(&hash), "never the hash");

    stdout_of(&run(&[
        "keys", "revoke", "--tenant", &tenant, "--key", &first_id,
    ]));
    let listed = stdout_of(&run(&["keys", "list", "--tenant", &tenant]));
    let revoked_line = listed.lines().find(|l| l.starts_with(&first_id)).unwrap();
    let active_line = listed.lines().find(|l| l.starts_with(&second_id)).unwrap();
    assert!(!revoked_line.trim_end().ends_with('-'), "{listed}");
    assert!(active_line.trim_end().ends_with('-'), "{listed}");

    // Another tenant's key cannot be revoked through this tenant.
    let other = stdout_of(&run(&["tenants", "create", "--name", "Other"]));
    let other_tenant = field(&other, "tenant");
    let refused = run(&[
        "keys",
        "revoke",
        "--tenant",
        &other_tenant,
        "--key",
        &second_id,
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("has no API key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let tenants = stdout_of(&run(&["tenants", "list"]));
    assert!(
        tenants.contains(&tenant) && tenants.contains(&other_tenant),
        "{tenants}"
    );
}
