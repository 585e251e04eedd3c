//! `herald`: run Herald in one process, verify deliveries, and manage tenants and API keys on AWS
//! (or on a data folder).
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use herald::dev::{self, DevBackend, DevConfig};
use herald::ops;
use herald::verify::{parse_delivery, verify_delivery};
use herald_core::health::LifecyclePolicy;
use herald_core::retention::Retention;
use herald_core::retry::RetryPolicy;
use herald_core::signing::SigningSecret;
use herald_core::{AddressPolicy, ApiKeyId, TenantId};
use herald_lambda::AwsConfig;

/// mimalloc instead of the system allocator: profiling `herald bench` showed glibc's malloc and
/// free (with its chunk consolidation) at about a fifth of Herald's CPU time, spread over the
/// request, JSON and storage buffers of every delivery (measured on redb, before fjall). Built
/// without transparent huge pages (`no_thp`), which otherwise grow the resident size in 2 MiB
/// steps (86 MB against 54 MB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "herald", version, about = "Signed, retried webhook delivery")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the operator commands work, shown under their `--help`.
const OPS_HELP: &str = "\
By default these commands work on AWS, configured like the Lambda functions: HERALD_TABLE, \
HERALD_EVENTS_QUEUE_URL and HERALD_DELIVERIES_QUEUE_URL (`herald aws init` prints them), and the \
standard AWS chain for credentials, AWS_REGION and AWS_ENDPOINT_URL (an emulator).

With --data-dir DIR they work on the embedded store of `herald dev` in DIR instead. The database \
file is locked while open, so this works only while `herald dev` is not running on DIR.";

#[derive(Debug, Subcommand)]
enum Command {
    /// API, intake, fan-out and delivery in one process, on an embedded store (or on DynamoDB and
    /// SQS with `--store aws`).
    Dev(DevArgs),
    /// Check the signature of a received delivery (headers, empty line, body) from a file or stdin.
    Verify(VerifyArgs),
    /// Create and list tenants (operators).
    #[command(subcommand, after_help = OPS_HELP)]
    Tenants(TenantsCommand),
    /// Create, list and revoke a tenant's API keys (operators).
    #[command(subcommand, after_help = OPS_HELP)]
    Keys(KeysCommand),
    /// Set up AWS without SAM (an emulator or a fresh account).
    #[command(subcommand)]
    Aws(AwsCommand),
}

/// Where `herald dev` keeps its records and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    /// The embedded store and queue in the data folder.
    Embedded,
    /// DynamoDB and SQS, configured like the Lambda functions (HERALD_TABLE,
    /// HERALD_EVENTS_QUEUE_URL, HERALD_DELIVERIES_QUEUE_URL, the standard AWS chain).
    Aws,
}

#[derive(Debug, clap::Args)]
struct DevArgs {
    /// Address to listen on.
    #[arg(long, env = "HERALD_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Folder of the embedded store and queue, and of the development tenant's id and key files
    /// (kept there with `--store aws` too).
    #[arg(long, env = "HERALD_DATA_DIR", default_value = "./.herald")]
    data_dir: PathBuf,
    /// The store and queues: `embedded`, or `aws` (DynamoDB and SQS, real or an emulator).
    #[arg(long, env = "HERALD_STORE", value_enum, default_value_t = StoreKind::Embedded)]
    store: StoreKind,
    /// The development tenant's API key (generated and kept in the data folder when not set).
    #[arg(long, env = "HERALD_DEV_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Allow plain http:// callback URLs (default true in dev).
    #[arg(long, env = "HERALD_ALLOW_HTTP", default_value_t = true, action = clap::ArgAction::Set)]
    allow_http: bool,
    /// Allow private and loopback callback addresses (default true in dev).
    #[arg(long, env = "HERALD_ALLOW_PRIVATE", default_value_t = true, action = clap::ArgAction::Set)]
    allow_private: bool,
    /// Deliver only to loopback addresses (127.0.0.0/8, ::1, `localhost`), whatever a callback
    /// URL names: no DNS look-up, no connection elsewhere. For the API fuzzer's runs.
    #[arg(long, env = "HERALD_LOOPBACK_ONLY", default_value_t = false, action = clap::ArgAction::Set)]
    loopback_only: bool,
    /// Retry delays after the first try, e.g. `5s,5m,30m,2h,5h,10h,10h` (the default).
    #[arg(long, env = "HERALD_RETRY_SCHEDULE")]
    retry_schedule: Option<String>,
    /// Per-attempt timeout in milliseconds.
    #[arg(long, env = "HERALD_ATTEMPT_TIMEOUT_MS", default_value_t = 15_000)]
    attempt_timeout_ms: u64,
    /// How long intake remembers an idempotency key, in hours (as the Lambda functions do).
    #[arg(long, env = "HERALD_IDEMPOTENCY_RETENTION_HOURS", default_value_t = 24)]
    idempotency_retention_hours: u64,
    /// A subscription without a successful delivery for this long is disabled (e.g. `5d`, `36h`).
    #[arg(long, env = "HERALD_DISABLE_AFTER", default_value = "5d")]
    disable_after: String,
    /// How long the embedded store keeps delivered events, with their deliveries and attempts
    /// (e.g. `30d`, `12h`, `1m`, `90s`); a delivery still pending or retrying is kept until it
    /// settles. Not used with `--store aws` (DynamoDB's TTLs apply there).
    #[arg(long, env = "HERALD_RETENTION", default_value = "30d")]
    retention: String,
    /// Consecutive failures that open a subscription's circuit breaker (0: never).
    #[arg(long, env = "HERALD_BREAKER_THRESHOLD", default_value_t = 10)]
    breaker_threshold: u32,
    /// How long API keys and subscriptions read by authentication, fan-out and delivery are kept
    /// in memory, in milliseconds (0: always read the store). Default: 5000 (writes made through
    /// this process are seen at once either way).
    #[arg(long, env = "HERALD_CACHE_TTL_MS")]
    cache_ttl_ms: Option<u64>,
    /// Deliveries in flight at once.
    #[arg(long, env = "HERALD_DELIVERY_CONCURRENCY", default_value_t = 512)]
    delivery_concurrency: usize,
    /// Log format: `pretty` or `json`.
    #[arg(long, env = "HERALD_LOG_FORMAT", default_value = "pretty")]
    log_format: String,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The subscription's signing secret (`whsec_…`).
    #[arg(long, env = "HERALD_VERIFY_SECRET", hide_env_values = true)]
    secret: String,
    /// File holding the delivery; stdin when absent.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Accepted clock difference in seconds (0 turns the check off).
    #[arg(long, default_value_t = 300)]
    tolerance_secs: i64,
}

/// The embedded store instead of AWS.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// Work on the embedded store in this folder (only while `herald dev` is not running on it).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Create a tenant and its first API key; prints the tenant id and the key (shown only once).
    #[command(after_help = OPS_HELP)]
    Create {
        /// The tenant's name.
        #[arg(long)]
        name: String,
        /// Give the tenant this id (`ten_…`) instead of a new one; it must not exist yet.
        #[arg(long)]
        id: Option<TenantId>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tenants, newest first.
    #[command(after_help = OPS_HELP)]
    List {
        /// Tenants per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Continue after a previous page (its `next cursor`).
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key for a tenant; prints it (shown only once, stored hashed).
    #[command(after_help = OPS_HELP)]
    Create {
        /// The tenant (`ten_…`).
        #[arg(long)]
        tenant: TenantId,
        /// A name to recognise the key by.
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Register a key you already have (its text in a file; `-` reads stdin) for a tenant, stored
    /// hashed like a created one. For keys known in advance, such as the events/ fixtures'.
    #[command(after_help = OPS_HELP)]
    Import {
        /// The tenant (`ten_…`).
        #[arg(long)]
        tenant: TenantId,
        /// The file holding the key (one line; never pass a key as an argument).
        #[arg(long, value_name = "PATH")]
        key_file: PathBuf,
        /// A name to recognise the key by.
        #[arg(long, default_value = "imported")]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List a tenant's keys, newest first: id, name, created, revoked.
    #[command(after_help = OPS_HELP)]
    List {
        /// The tenant (`ten_…`).
        #[arg(long)]
        tenant: TenantId,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key: the API answers 401 to it from then on.
    #[command(after_help = OPS_HELP)]
    Revoke {
        /// The tenant (`ten_…`).
        #[arg(long)]
        tenant: TenantId,
        /// The key's id (`key_…`, from `herald keys list`).
        #[arg(long)]
        key: ApiKeyId,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AwsCommand {
    /// Create the DynamoDB table and the events and deliveries queues (with dead-letter queues),
    /// then print the `export` lines that point Herald at them. Safe to run again.
    ///
    /// Uses the standard AWS chain for credentials, AWS_REGION and AWS_ENDPOINT_URL (set it to an
    /// emulator's URL, e.g. moto's). Deployments with SAM get these resources from template.yaml.
    Init {
        /// The table's name.
        #[arg(long, default_value = "herald")]
        table: String,
        /// Queue names are `<prefix>-events` and `<prefix>-deliveries` (and `…-dlq`).
        #[arg(long, default_value = "herald")]
        queue_prefix: String,
    },
}

/// `herald dev`'s default log filter. The storage engine's INFO lines are its housekeeping (a table
/// file written, a memtable flushed: several a second under load, a dozen at every start); its
/// warnings and errors still show.
const DEV_LOG: &str = "info,fjall=warn,lsm_tree=warn";

fn init_tracing(format: &str) {
    init_tracing_with(format, DEV_LOG);
}

/// Logs at `default` level unless RUST_LOG says otherwise, to stderr, so stdout carries only what
/// the command prints (URL, key, results). JSON is the Lambda functions' format.
fn init_tracing_with(format: &str, default: &str) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    herald_lambda::logging::init(format == "json", ansi, default, std::io::stderr);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => run_dev(args).await,
        Command::Verify(args) => run_verify(args),
        Command::Tenants(command) => {
            init_tracing_with("pretty", "warn");
            run_tenants(command).await
        }
        Command::Keys(command) => {
            init_tracing_with("pretty", "warn");
            run_keys(command).await
        }
        Command::Aws(command) => {
            init_tracing_with("pretty", "warn");
            run_aws(command).await
        }
    }
}

async fn run_tenants(command: TenantsCommand) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    match command {
        TenantsCommand::Create { name, id, store } => {
            let store = ops::open_store(store.data_dir.as_deref()).await?;
            let new = ops::create_tenant_with_id(store.as_ref(), &name, id, now).await?;
            print!("{}", ops::format_new_tenant(&new));
            eprintln!("The API key is shown only this once; Herald keeps only its hash.");
        }
        TenantsCommand::List {
            limit,
            cursor,
            store,
        } => {
            let store = ops::open_store(store.data_dir.as_deref()).await?;
            let page = ops::list_tenants(store.as_ref(), limit, cursor).await?;
            print!("{}", ops::format_tenants(&page.items));
            if let Some(next) = page.next_cursor {
                eprintln!("More tenants: --cursor {next}");
            }
        }
    }
    Ok(())
}

async fn run_keys(command: KeysCommand) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    match command {
        KeysCommand::Create {
            tenant,
            name,
            store,
        } => {
            let store = ops::open_store(store.data_dir.as_deref()).await?;
            let key = ops::create_key(store.as_ref(), &tenant, &name, now).await?;
            print!("{}", ops::format_new_key(&key));
            eprintln!("The API key is shown only this once; Herald keeps only its hash.");
        }
        KeysCommand::Import {
            tenant,
            key_file,
            name,
            store,
        } => {
            let text = read_key_file(&key_file)?;
            let store = ops::open_store(store.data_dir.as_deref()).await?;
            let record = ops::import_key(store.as_ref(), &tenant, &name, &text, now).await?;
            print!("{}", ops::format_imported_key(&record));
        }
        KeysCommand::List { tenant, store } => {
            let store = ops::open_store(store.data_dir.as_deref()).await?;
            let keys = ops::list_keys(store.as_ref(), &tenant).await?;
            print!("{}", ops::format_keys(&keys));
        }
        KeysCommand::Revoke { tenant, key, store } => {
            let store = ops::open_store(store.data_dir.as_deref()).await?;
            ops::revoke_key(store.as_ref(), &tenant, &key, now).await?;
            println!("revoked {key} of {tenant}");
        }
    }
    Ok(())
}

/// A duration in its largest whole unit (`30d`, `90s`), as the configuration writes it.
fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= secs && s.is_multiple_of(secs) {
            return format!("{}{unit}", s / secs);
        }
    }
    if d.subsec_millis() == 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The text of a key file, or of stdin for `-` (bounded: a key is short).
fn read_key_file(path: &std::path::Path) -> anyhow::Result<String> {
    const LIMIT: u64 = 4096;
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(LIMIT)
            .read_to_string(&mut text)
            .context("reading the key from stdin")?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(LIMIT).read_to_string(&mut text))
            .with_context(|| format!("reading the key file {}", path.display()))?;
    }
    Ok(text)
}

async fn run_aws(command: AwsCommand) -> anyhow::Result<()> {
    match command {
        AwsCommand::Init {
            table,
            queue_prefix,
        } => {
            let sdk = herald_aws::load_sdk_config().await;
            let made = ops::aws_init(&sdk, &table, &queue_prefix).await?;
            if made.table_created {
                eprintln!("Created the table {}.", made.table);
            } else {
                eprintln!("The table {} exists already; kept it.", made.table);
            }
            eprintln!("Queues ready. Point Herald at them with:");
            print!("{}", made.exports());
        }
    }
    Ok(())
}

async fn run_dev(args: DevArgs) -> anyhow::Result<()> {
    init_tracing(&args.log_format);
    let mut config = DevConfig::new(args.addr, args.data_dir);
    if args.store == StoreKind::Aws {
        let aws = AwsConfig::from_env().context("--store aws reads the AWS configuration")?;
        config.backend = DevBackend::aws(herald_aws::load_sdk_config().await, aws);
    }
    config.dev_api_key = args.api_key;
    config.address_policy = AddressPolicy {
        allow_http: args.allow_http,
        allow_private: args.allow_private,
    };
    config.loopback_only = args.loopback_only;
    if let Some(schedule) = args.retry_schedule {
        config.retry = RetryPolicy::parse_schedule(&schedule)?;
    }
    config.attempt_timeout = Duration::from_millis(args.attempt_timeout_ms);
    config.idempotency_window =
        Duration::from_secs(args.idempotency_retention_hours.max(1).saturating_mul(3600));
    config.cache_ttl = args.cache_ttl_ms.map(Duration::from_millis);
    config.lifecycle = LifecyclePolicy {
        breaker_threshold: args.breaker_threshold,
        ..LifecyclePolicy::configure(Some(&args.disable_after), None)
            .map_err(|e| anyhow::anyhow!("--disable-after: {e}"))?
    };
    config.retention =
        Retention::parse(&args.retention).map_err(|e| anyhow::anyhow!("--retention: {e}"))?;
    config.workers.delivery_concurrency = args.delivery_concurrency.max(1);
    if config.address_policy.allow_http || config.address_policy.allow_private {
        tracing::warn!(
            allow_http = config.address_policy.allow_http,
            allow_private = config.address_policy.allow_private,
            "development mode: plain http and private/loopback targets are allowed; never run like this in production"
        );
    }
    let data_dir = config.data_dir.clone();
    let embedded = matches!(config.backend, DevBackend::Embedded);
    let retention = config.retention;
    let running = dev::start(config).await?;
    println!("Herald is running at {}", running.url());
    if embedded {
        match dev::folder_size(&data_dir) {
            Ok(bytes) => println!(
                "Data folder {}: {:.1} MB (retention {})",
                data_dir.display(),
                bytes as f64 / 1e6,
                humanize(retention.keep())
            ),
            Err(e) => {
                tracing::warn!(folder = %data_dir.display(), error = %e, "cannot read the data folder's size")
            }
        }
    }
    println!("Development API key: {}", running.api_key);
    println!(
        "Try: curl -H 'Authorization: Bearer {}' {}/v1/event-types",
        running.api_key,
        running.url()
    );
    let state_url = running.url();
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!(url = %state_url, "shutting down");
            running.stop().await;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<()> {
    let secret = SigningSecret::parse(&args.secret).context("reading --secret")?;
    let mut input = Vec::new();
    match &args.file {
        Some(path) => {
            input = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut input)
                .context("reading stdin")?;
        }
    }
    let delivery = parse_delivery(&input)?;
    let now = jiff::Timestamp::now().as_second();
    let tolerance = if args.tolerance_secs <= 0 {
        i64::MAX / 2
    } else {
        args.tolerance_secs
    };
    match verify_delivery(&secret, &delivery, now, tolerance) {
        Ok(()) => {
            println!("valid: the signature of {} matches", delivery.id);
            Ok(())
        }
        Err(e) => {
            println!("invalid: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations_print_as_they_are_configured() {
        assert_eq!(humanize(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(humanize(Duration::from_secs(60)), "1m");
        assert_eq!(humanize(Duration::from_secs(90)), "90s");
        assert_eq!(humanize(Duration::from_secs(7200)), "2h");
        assert_eq!(humanize(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn the_retention_is_read_from_the_environment_and_checked() {
        let args = |extra: &[&str]| {
            let mut all = vec!["herald", "dev"];
            all.extend_from_slice(extra);
            match Cli::try_parse_from(all).unwrap().command {
                Command::Dev(args) => args.retention,
                _ => unreachable!(),
            }
        };
        assert_eq!(args(&[]), "30d");
        assert_eq!(args(&["--retention", "1m"]), "1m");
        assert!(Retention::parse(&args(&["--retention", "0s"])).is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn operator_commands_parse_their_ids_and_store() {
        let tenant = TenantId::new();
        let key = ApiKeyId::new();
        let cli = Cli::try_parse_from([
            "herald",
            "keys",
            "revoke",
            "--tenant",
            &tenant.to_string(),
            "--key",
            &key.to_string(),
            "--data-dir",
            "/tmp/x",
        ])
        .unwrap();
        match cli.command {
            Command::Keys(KeysCommand::Revoke {
                tenant: t,
                key: k,
                store,
            }) => {
                assert_eq!((t, k), (tenant, key));
                assert_eq!(store.data_dir, Some(PathBuf::from("/tmp/x")));
            }
            other => panic!("{other:?}"),
        }
        // A key id is not a tenant id.
        assert!(
            Cli::try_parse_from(["herald", "keys", "list", "--tenant", &key.to_string()]).is_err()
        );
        let cli = Cli::try_parse_from(["herald", "tenants", "create", "--name", "Acme"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Tenants(TenantsCommand::Create {
                store: StoreArgs { data_dir: None },
                ..
            })
        ));
    }

    #[test]
    fn keys_import_takes_a_tenant_and_a_key_file_and_tenants_an_id() {
        let tenant = TenantId::new();
        let cli = Cli::try_parse_from([
            "herald",
            "keys",
            "import",
            "--tenant",
            &tenant.to_string(),
            "--key-file",
            "key.txt",
        ])
        .unwrap();
        match cli.command {
            Command::Keys(KeysCommand::Import {
                tenant: t,
                key_file,
                name,
                ..
            }) => {
                assert_eq!(t, tenant);
                assert_eq!(key_file, PathBuf::from("key.txt"));
                assert_eq!(name, "imported");
            }
            other => panic!("{other:?}"),
        }
        // The key itself is never an argument.
        assert!(Cli::try_parse_from([
            "herald",
            "keys",
            "import",
            "--tenant",
            &tenant.to_string(),
            "--key",
            "hk_x"
        ])
        .is_err());
        let cli = Cli::try_parse_from([
            "herald",
            "tenants",
            "create",
            "--name",
            "Fixture",
            "--id",
            "ten_01JDXF0000000000000000TEST",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Tenants(TenantsCommand::Create { id: Some(_), .. })
        ));
    }

    #[test]
    fn read_key_file_reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "hk_abc\n").unwrap();
        assert_eq!(read_key_file(&path).unwrap(), "hk_abc\n");
        assert!(read_key_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn dev_takes_a_store_kind() {
        let cli = Cli::try_parse_from(["herald", "dev", "--store", "aws"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Dev(DevArgs {
                store: StoreKind::Aws,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["herald", "dev", "--store", "s3"]).is_err());
    }
}
