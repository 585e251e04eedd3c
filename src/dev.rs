//! One-process mode: API, intake, fan-out and delivery workers, on the embedded store and queue
//! (the default) or on DynamoDB and SQS ([`DevBackend::Aws`]: real AWS or an emulator, with the
//! state the Lambda functions build). Either way the same router and the same queue pollers run.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_app::auth::{generate_api_key, record_for_key};
use herald_app::loopback::LoopbackOnly;
use herald_app::sender::{HttpSender, HttpSenderConfig};
use herald_app::worker::{self, WorkerConfig};
use herald_app::{AppState, Settings};
use herald_aws::aws_config::SdkConfig;
use herald_core::health::LifecyclePolicy;
use herald_core::ports::{StoreError, SystemClock};
use herald_core::retention::Retention;
use herald_core::retry::RetryPolicy;
use herald_core::{AddressPolicy, Tenant, TenantId};
use herald_embedded::EmbeddedDb;
use herald_lambda::AwsConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const KEY_FILE: &str = "dev-api-key";
const TENANT_FILE: &str = "dev-tenant-id";

/// Where `herald dev` keeps its records and messages.
#[derive(Debug, Clone)]
pub enum DevBackend {
    /// The embedded store and queue in the data folder.
    Embedded,
    /// DynamoDB and SQS. The data folder then holds only the development tenant's id and key
    /// files.
    Aws(Box<AwsBackend>),
}

/// The AWS side of [`DevBackend::Aws`]. The address policy, retry schedule and attempt timeout of
/// [`DevConfig`] replace those of `config`.
#[derive(Debug, Clone)]
pub struct AwsBackend {
    /// From `herald_aws::load_sdk_config()`, or `emulator_sdk_config(url)`.
    pub sdk: SdkConfig,
    pub config: AwsConfig,
}

impl DevBackend {
    pub fn aws(sdk: SdkConfig, config: AwsConfig) -> Self {
        Self::Aws(Box::new(AwsBackend { sdk, config }))
    }

    /// For logs: which store this is.
    fn describe(&self) -> String {
        match self {
            Self::Embedded => "embedded store".into(),
            Self::Aws(aws) => format!("DynamoDB table {} and SQS", aws.config.table),
        }
    }
}

/// How long `herald dev` on the embedded store keeps the hot-path reads (`crate::directory` of
/// herald_app): the data folder is locked to this process, and every write here that changes a
/// key or a subscription drops what is kept of it, so this bounds nothing a user can see (the
/// only change applied later is a subscription's health in the list fan-out reads, which fan-out
/// does not use). What it saves: at zero, every accepted event asked the store for its tenant's
/// enabled subscriptions and got a full copy of the list from the store's own 1 s cache, and each
/// time that expired every intake request in flight scanned the table on the blocking pool at once
/// (12 threads at peak instead of 5, about 2 MB more peak RSS at 12,000 events/s).
pub const EMBEDDED_CACHE_TTL: Duration = Duration::from_secs(5);

/// Everything `herald dev` needs, read once from the environment (see the README).
#[derive(Debug, Clone)]
pub struct DevConfig {
    pub addr: SocketAddr,
    /// The embedded store's folder, and where the development tenant's id and key are kept.
    pub data_dir: PathBuf,
    pub backend: DevBackend,
    /// The development tenant's key; generated once and kept in the data folder when not given.
    pub dev_api_key: Option<String>,
    pub address_policy: AddressPolicy,
    /// Deliver only to loopback addresses, whatever a callback URL names (no DNS, no outward
    /// connection): for runs whose subscriptions nobody chose, such as the API fuzzer's.
    pub loopback_only: bool,
    pub retry: RetryPolicy,
    pub attempt_timeout: Duration,
    /// How long intake remembers an idempotency key.
    pub idempotency_window: Duration,
    /// How long API keys and subscriptions read on the hot paths are kept in memory
    /// (`Settings::cache_ttl`). `None`: [`EMBEDDED_CACHE_TTL`] on the embedded store, the AWS
    /// configuration's (5 s by default) on AWS.
    pub cache_ttl: Option<Duration>,
    /// The failure lifecycle: breaker and auto-disable.
    pub lifecycle: LifecyclePolicy,
    /// How long the embedded store keeps delivered events, their deliveries and attempts (the
    /// background sweeper, `herald_embedded::EmbeddedDb::spawn_sweeper`). On AWS, DynamoDB's TTLs
    /// of the AWS configuration apply instead.
    pub retention: Retention,
    pub workers: WorkerConfig,
}

impl DevConfig {
    /// Defaults of DESIGN.md, for tests and the CLI to adjust.
    pub fn new(addr: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            addr,
            data_dir,
            backend: DevBackend::Embedded,
            dev_api_key: None,
            address_policy: AddressPolicy::DEVELOPMENT,
            loopback_only: false,
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(15),
            idempotency_window: Settings::default().idempotency_window,
            cache_ttl: None,
            lifecycle: LifecyclePolicy::default(),
            retention: Retention::default(),
            workers: WorkerConfig::default(),
        }
    }
}

/// How long [`Running::stop`] waits for the embedded database to close.
pub const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// A running instance.
pub struct Running {
    pub addr: SocketAddr,
    pub api_key: String,
    pub tenant_id: TenantId,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    workers: JoinHandle<()>,
    /// The retention sweeper (embedded store only).
    sweeper: Option<JoinHandle<()>>,
    /// Resolves when the embedded database is closed (see [`Running::stop`]).
    closed: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight work finish, and returns once the embedded database is
    /// closed (a read or sweep pass already on the blocking pool may finish after its task
    /// did), so the data folder can be opened again at once; waits at most [`CLOSE_WAIT`] for it.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Some(sweeper) = self.sweeper {
            sweeper.abort();
            let _ = sweeper.await;
        }
        let _ = self.server.await;
        let _ = self.workers.await;
        drop(self.state);
        if let Some(closed) = self.closed {
            if tokio::time::timeout(CLOSE_WAIT, closed).await.is_err() {
                tracing::warn!("the embedded database is still open after {CLOSE_WAIT:?}");
            }
        }
    }
}

/// Opens the store (the data folder, or DynamoDB and SQS), ensures the development tenant and key,
/// and starts serving.
pub async fn start(config: DevConfig) -> anyhow::Result<Running> {
    let (mut state, db) = match &config.backend {
        DevBackend::Embedded => {
            let (state, db) = embedded_state(&config)?;
            (state, Some(db))
        }
        DevBackend::Aws(aws) => (aws_state(&config, &aws.sdk, &aws.config)?, None),
    };
    if config.loopback_only {
        state.sender = Arc::new(LoopbackOnly(state.sender.clone()));
    }
    let (tenant_id, api_key) =
        ensure_dev_tenant(&state, &config.data_dir, config.dev_api_key.as_deref())
            .await
            .with_context(|| {
                format!(
                    "preparing the development tenant in the {}",
                    config.backend.describe()
                )
            })?;
    tracing::info!(store = %config.backend.describe(), "store ready");

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let router = herald_app::api::router(state.clone());
    let mut server_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "server failed");
        }
    });
    let workers = tokio::spawn(worker::run(state.clone(), config.workers, shutdown_rx));
    let closed = db.as_ref().map(|db| Box::pin(db.closed()) as Pin<Box<_>>);
    let sweeper = db.map(|db| db.spawn_sweeper(config.retention, state.clock.clone()));
    Ok(Running {
        addr,
        api_key,
        tenant_id,
        state,
        shutdown,
        server,
        workers,
        sweeper,
        closed,
    })
}

/// The state over the data folder, and the database (for the sweeper).
fn embedded_state(config: &DevConfig) -> anyhow::Result<(AppState, EmbeddedDb)> {
    let db = EmbeddedDb::open(&config.data_dir)
        .with_context(|| format!("opening the data folder {}", config.data_dir.display()))?;
    let sender = HttpSender::new(HttpSenderConfig {
        timeout: config.attempt_timeout,
        policy: config.address_policy,
        ..HttpSenderConfig::default()
    })
    .context("building the HTTP client")?;
    let settings = Settings {
        address_policy: config.address_policy,
        retry: config.retry.clone(),
        idempotency_window: config.idempotency_window,
        cache_ttl: config.cache_ttl.unwrap_or(EMBEDDED_CACHE_TTL),
        lifecycle: config.lifecycle,
        ..Settings::default()
    };
    // Store and queue share the file: writes and the messages they cause commit together.
    let state = AppState::new(
        Arc::new(db.store()),
        Arc::new(db.outbox()),
        Arc::new(db.queue()),
        Arc::new(sender),
        Arc::new(SystemClock),
        settings,
    )
    .with_stats(Arc::new(db.store()))
    .with_event_types(Arc::new(db.store()));
    Ok((state, db))
}

/// The bytes of the files in `dir` and its subfolders, for `herald dev` to show what the data
/// folder takes.
pub use herald_embedded::folder_size;

/// The Lambda functions' state, with the development policies of `config`.
fn aws_state(config: &DevConfig, sdk: &SdkConfig, aws: &AwsConfig) -> anyhow::Result<AppState> {
    let mut folder = std::fs::DirBuilder::new();
    folder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
    folder
        .create(&config.data_dir)
        .with_context(|| format!("creating the data folder {}", config.data_dir.display()))?;
    let aws = AwsConfig {
        address_policy: config.address_policy,
        retry: config.retry.clone(),
        attempt_timeout: config.attempt_timeout,
        idempotency_retention: config.idempotency_window,
        cache_ttl: config.cache_ttl.unwrap_or(aws.cache_ttl),
        lifecycle: config.lifecycle,
        // Served at /metrics instead; nothing would drain EMF lines here.
        metrics_namespace: None,
        ..aws.clone()
    };
    let state = herald_lambda::build_state(sdk, &aws).context("building the AWS clients")?;
    Ok(state.app)
}

async fn ensure_dev_tenant(
    state: &AppState,
    dir: &Path,
    given_key: Option<&str>,
) -> anyhow::Result<(TenantId, String)> {
    let now = state.clock.now();
    let tenant_file = dir.join(TENANT_FILE);
    let tenant_id = match std::fs::read_to_string(&tenant_file) {
        Ok(text) => text
            .trim()
            .parse::<TenantId>()
            .context("reading the development tenant id")?,
        Err(_) => {
            let id = TenantId::new();
            write_private(&tenant_file, &id.to_string())?;
            id
        }
    };
    if state.store.get_tenant(&tenant_id).await?.is_none() {
        state
            .store
            .put_tenant(&Tenant {
                id: tenant_id,
                name: "Development".into(),
                created_at: now,
            })
            .await?;
    }
    let key_file = dir.join(KEY_FILE);
    let key = match given_key {
        Some(key) => key.to_owned(),
        None => match std::fs::read_to_string(&key_file) {
            Ok(text) => text.trim().to_owned(),
            Err(_) => {
                let new = generate_api_key(tenant_id, "development", now);
                write_private(&key_file, &new.key)?;
                new.key
            }
        },
    };
    let record = record_for_key(&key, tenant_id, "development", now);
    match state.store.put_api_key(&record).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => {
            // Stored before (the usual restart); on a shared table it must still be this tenant's.
            match state.store.find_api_key(&record.hash).await? {
                Some(existing) if existing.tenant_id != tenant_id => anyhow::bail!(
                    "the development API key belongs to tenant {}, not to the development tenant {tenant_id}; use another key",
                    existing.tenant_id
                ),
                Some(existing) if existing.revoked_at.is_some() => tracing::warn!(
                    key_id = %existing.id,
                    "the development API key has been revoked: requests with it answer 401"
                ),
                _ => {}
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok((tenant_id, key))
}

/// Writes a new file readable by its owner only, created with that mode (never readable by others,
/// not even for a moment).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
