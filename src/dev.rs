//! One-process mode: API, intake, fan-out and delivery workers on the embedded store and queue.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_app::auth::{generate_api_key, record_for_key};
use herald_app::sender::{HttpSender, HttpSenderConfig};
use herald_app::worker::{self, WorkerConfig};
use herald_app::{AppState, Settings};
use herald_core::ports::{StoreError, SystemClock};
use herald_core::retry::RetryPolicy;
use herald_core::{AddressPolicy, Tenant, TenantId};
use herald_embedded::EmbeddedDb;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const KEY_FILE: &str = "dev-api-key";
const TENANT_FILE: &str = "dev-tenant-id";

/// Everything `herald dev` needs, read once from the environment (see the README).
#[derive(Debug, Clone)]
pub struct DevConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The development tenant's key; generated once and kept in the data folder when not given.
    pub dev_api_key: Option<String>,
    pub address_policy: AddressPolicy,
    pub retry: RetryPolicy,
    pub attempt_timeout: Duration,
    pub workers: WorkerConfig,
}

impl DevConfig {
    /// Defaults of DESIGN.md, for tests and the CLI to adjust.
    pub fn new(addr: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            addr,
            data_dir,
            dev_api_key: None,
            address_policy: AddressPolicy::DEVELOPMENT,
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(15),
            workers: WorkerConfig::default(),
        }
    }
}

/// A running instance.
pub struct Running {
    pub addr: SocketAddr,
    pub api_key: String,
    pub tenant_id: TenantId,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    workers: JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight work finish, and returns.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.workers.await;
    }

    /// Waits until a signal or `stop` ends the server.
    pub async fn wait(self) {
        let _ = (&mut { self.server }).await;
    }
}

/// Opens the data folder, ensures the development tenant and key, and starts serving.
pub async fn start(config: DevConfig) -> anyhow::Result<Running> {
    let db = EmbeddedDb::open(&config.data_dir)
        .with_context(|| format!("opening the data folder {}", config.data_dir.display()))?;
    let store = Arc::new(db.store());
    let queue = Arc::new(db.queue());
    let sender = HttpSender::new(HttpSenderConfig {
        timeout: config.attempt_timeout,
        policy: config.address_policy,
        ..HttpSenderConfig::default()
    })
    .context("building the HTTP client")?;
    let settings = Settings {
        address_policy: config.address_policy,
        retry: config.retry.clone(),
        ..Settings::default()
    };
    let state = AppState::new(
        store,
        queue,
        Arc::new(sender),
        Arc::new(SystemClock),
        settings,
    );
    let (tenant_id, api_key) =
        ensure_dev_tenant(&state, &config.data_dir, config.dev_api_key.as_deref()).await?;

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let router = herald_app::api::router(state.clone()).layer(
        tower_http::trace::TraceLayer::new_for_http()
            .make_span_with(tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO))
            .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
    );
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
    Ok(Running {
        addr,
        api_key,
        tenant_id,
        state,
        shutdown,
        server,
        workers,
    })
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
    match state
        .store
        .put_api_key(&record_for_key(&key, tenant_id, "development", now))
        .await
    {
        Ok(()) | Err(StoreError::AlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    Ok((tenant_id, key))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
