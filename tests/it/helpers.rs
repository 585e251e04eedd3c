//! The test harness: a Herald on port 0 and a temporary data folder (`spawn_app`), a real HTTP
//! receiver that records what it gets and answers from a script (`TestReceiver`), the real `herald`
//! binary for crash tests (`HeraldProcess`), and small helpers to wait for conditions.
//!
//! Every wait is bounded by [`WAIT`] and returns as soon as its condition holds, so a slow machine
//! makes the tests slower, never wrong. Negative checks ("nothing more arrives") watch for [`QUIET`].

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use herald::dev::{self, DevConfig, Running};
use herald_app::auth::generate_api_key;
use herald_app::AppState;
use herald_core::retry::RetryPolicy;
use herald_core::signing::{verify, SigningSecret};
use herald_core::{Tenant, TenantId};
use serde_json::{json, Value};
use tokio::sync::watch;

/// The longest any test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(20);
/// How long a test watches for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(800);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(50);

// ---- polling -------------------------------------------------------------------------------------

/// Polls `check` until it returns `Some`, or panics after [`WAIT`] naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

// ---- the application -----------------------------------------------------------------------------

/// The retry schedule of test apps: fast, exact, short.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        schedule: [200, 400, 800]
            .into_iter()
            .map(Duration::from_millis)
            .collect(),
        jitter: 0.0,
        ..RetryPolicy::default()
    }
}

/// A Herald running in this process (what `herald dev` starts) on a temporary data folder.
pub struct TestApp {
    pub api: Api,
    running: Running,
    data: tempfile::TempDir,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Starts Herald with the test defaults: fast retries, 5 s attempt timeout.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts Herald with the test defaults adjusted by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut DevConfig)) -> TestApp {
    let data = tempfile::tempdir().expect("a temporary data folder");
    spawn_app_in(data, adjust).await
}

/// Starts Herald on an existing data folder (a restart, when another app used it before).
pub async fn spawn_app_in(data: tempfile::TempDir, adjust: impl FnOnce(&mut DevConfig)) -> TestApp {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = DevConfig::new(addr, data.path().to_path_buf());
    config.retry = fast_retries();
    config.attempt_timeout = Duration::from_secs(5);
    adjust(&mut config);
    // The app stopped before may still be dropping the last tasks that hold its database (aborted
    // tasks are dropped on the runtime's own time): wait for it to let go of the file.
    let deadline = Instant::now() + WAIT;
    let running = loop {
        match dev::start(config.clone()).await {
            Ok(running) => break running,
            Err(e)
                if format!("{e:#}").contains("Database already open")
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => panic!("herald dev starts: {e:?}"),
        }
    };
    let api = Api::new(running.url(), running.api_key.clone());
    TestApp { api, running, data }
}

impl TestApp {
    pub fn state(&self) -> &AppState {
        &self.running.state
    }

    /// The development tenant the app's key belongs to.
    pub fn tenant_id(&self) -> TenantId {
        self.running.tenant_id
    }

    /// Stops gracefully and hands back the data folder, for a restart or to inspect it.
    pub async fn stop(self) -> tempfile::TempDir {
        self.running.stop().await;
        self.data
    }

    /// A second tenant with its own API key, made directly in the store, and a client using it.
    pub async fn other_tenant(&self) -> Api {
        let now = jiff::Timestamp::now();
        let tenant = Tenant {
            id: TenantId::new(),
            name: "Other tenant".into(),
            created_at: now,
        };
        let store = &self.state().store;
        store.put_tenant(&tenant).await.expect("tenant stored");
        let new = generate_api_key(tenant.id, "other", now);
        store.put_api_key(&new.record).await.expect("key stored");
        Api::new(self.api.url.clone(), new.key)
    }
}

/// An answer of the API.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl ApiResponse {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn error_field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        self.body
    }
}

/// An HTTP client of the API with one tenant's key.
#[derive(Debug, Clone)]
pub struct Api {
    pub url: String,
    pub api_key: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(url: String, api_key: String) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .expect("a reqwest client");
        Self {
            url,
            api_key,
            client,
        }
    }

    /// A request with this client's key; `path` starts with `/`.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.api_key)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> ApiResponse {
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("the API's body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        ApiResponse { status, body, text }
    }

    pub async fn get(&self, path: &str) -> ApiResponse {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> ApiResponse {
        self.send(self.request(Method::POST, path).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> ApiResponse {
        self.send(self.request(Method::PATCH, path).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> ApiResponse {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// Creates a subscription and returns the 201 body (with `id` and `secret`).
    pub async fn create_subscription(&self, body: Value) -> Value {
        self.post("/v1/subscriptions", body).await.expect(201)
    }

    /// A `custom` subscription to `receiver` for `events`.
    pub async fn subscribe(&self, receiver: &TestReceiver, events: &[&str]) -> Value {
        self.create_subscription(json!({
            "platform": "custom",
            "url": receiver.url(),
            "events": events,
        }))
        .await
    }

    /// Sends an event and returns the 202 body (`id`, `type`, `timestamp`).
    pub async fn send_event(&self, body: Value) -> Value {
        self.post("/v1/events", body).await.expect(202)
    }

    /// The delivery log of a subscription (first page, newest first).
    pub async fn deliveries_of(&self, subscription_id: &str) -> Vec<Value> {
        let log = self
            .get(&format!("/v1/subscriptions/{subscription_id}/deliveries"))
            .await
            .expect(200);
        log["data"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the delivery log of `subscription_id` holds a delivery of `event_id` for which
    /// `done` holds, and returns it.
    pub async fn wait_for_delivery(
        &self,
        subscription_id: &str,
        event_id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.deliveries_of(subscription_id).await;
            let delivery = log.iter().find(|d| d["event_id"] == event_id);
            if let Some(d) = delivery.filter(|d| done(d)) {
                return d.clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for the delivery of {event_id} to {subscription_id}; last seen: {delivery:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the delivery of `event_id` to `subscription_id` reaches `status`.
    pub async fn wait_for_status(
        &self,
        subscription_id: &str,
        event_id: &str,
        status: &str,
    ) -> Value {
        self.wait_for_delivery(subscription_id, event_id, |d| d["status"] == status)
            .await
    }

    /// One delivery with its `attempts_log`.
    pub async fn delivery(&self, delivery_id: &str) -> Value {
        self.get(&format!("/v1/deliveries/{delivery_id}"))
            .await
            .expect(200)
    }
}

// ---- signatures ----------------------------------------------------------------------------------

/// Asserts the Standard Webhooks signature of `request` verifies with `secret` (`whsec_…`).
#[track_caller]
pub fn assert_signed_with(request: &Received, secret: &str) {
    let secret = SigningSecret::parse(secret).expect("a whsec_ secret");
    let now = jiff::Timestamp::now().as_second();
    let result = verify(
        &secret,
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        request.header("webhook-signature"),
        &request.body,
        now,
        300,
    );
    assert_eq!(
        result,
        Ok(()),
        "the signature {:?} does not verify",
        request.header("webhook-signature")
    );
}

// ---- the receiver --------------------------------------------------------------------------------

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn ok() -> Self {
        Self::status(200)
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: format!("answer {status}"),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub arrived_at: Instant,
    /// The status the receiver answered (or will answer, after its delay).
    pub answered: u16,
}

impl Received {
    /// A header that must be there.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        self.header_opt(name)
            .unwrap_or_else(|| panic!("the request has no `{name}` header: {:#?}", self.headers))
    }

    pub fn header_opt(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id")
    }

    pub fn timestamp(&self) -> i64 {
        self.header("webhook-timestamp")
            .parse()
            .expect("webhook-timestamp is a number")
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }
}

struct Shared {
    log: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    count: watch::Sender<usize>,
    /// How many requests the test has accounted for (the last `wait_for`).
    seen: AtomicUsize,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers from a script: queued
/// replies first, one per request, then the default reply.
#[derive(Clone)]
pub struct TestReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl TestReceiver {
    /// A receiver that answers 200.
    pub async fn start() -> Self {
        Self::start_with(Reply::ok()).await
    }

    /// A receiver whose default answer is `default`.
    pub async fn start_with(default: Reply) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the receiver binds");
        let addr = listener.local_addr().unwrap();
        let (count, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            log: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            count,
            seen: AtomicUsize::new(0),
        });
        let router = axum::Router::new()
            .fallback(record)
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, shared }
    }

    /// The default callback URL (`/hook`).
    pub fn url(&self) -> String {
        self.url_for("/hook")
    }

    pub fn url_for(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues answers for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Changes the answer given once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        *self.shared.default.lock().unwrap() = reply;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived and returns the first `n`. Panics after `timeout`.
    /// Marks `n` as accounted for: [`Self::assert_no_more`] then fails on any request beyond them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut count = self.shared.count.subscribe();
        let arrived = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        if arrived.is_err() {
            panic!(
                "expected {n} requests within {timeout:?}, got {}: {:#?}",
                self.requests().len(),
                self.summary()
            );
        }
        self.shared.seen.store(n, Ordering::SeqCst);
        self.requests().into_iter().take(n).collect()
    }

    /// Waits until the requests so far satisfy `condition`: `Ok` with them, or `Err` with them
    /// after `timeout`.
    pub async fn try_wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>, Vec<Received>> {
        let mut count = self.shared.count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if condition(&requests) {
                return Ok(requests);
            }
            if tokio::time::timeout_at(deadline, count.changed())
                .await
                .is_err()
            {
                return Err(requests);
            }
        }
    }

    /// Watches for `quiet` and asserts no request arrived beyond those the last
    /// [`Self::wait_for`] accounted for (none, if it was never called).
    pub async fn assert_no_more(&self, quiet: Duration) {
        tokio::time::sleep(quiet).await;
        let seen = self.shared.seen.load(Ordering::SeqCst);
        let got = self.requests().len();
        assert_eq!(
            got,
            seen,
            "expected no more than {seen} requests, got {got}: {:#?}",
            self.summary()
        );
    }

    /// One line per request, for failure messages.
    fn summary(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| {
                format!(
                    "{} {} webhook-id={:?} -> {}",
                    r.method,
                    r.path,
                    r.header_opt("webhook-id"),
                    r.answered
                )
            })
            .collect()
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let next = shared.script.lock().unwrap().pop_front();
        next.unwrap_or_else(|| shared.default.lock().unwrap().clone())
    };
    shared.log.lock().unwrap().push(Received {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
        arrived_at: Instant::now(),
        answered: reply.status,
    });
    shared.count.send_modify(|c| *c += 1);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).expect("a valid status code");
    let mut response = (status, reply.body).into_response();
    for (name, value) in &reply.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    response
}

// ---- the real binary -----------------------------------------------------------------------------

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// `herald dev` as a child process. Killed when dropped, so a failing test leaves nothing behind;
/// its log is printed when the test panics.
pub struct HeraldProcess {
    child: Option<Child>,
    pub url: String,
    log: PathBuf,
}

impl HeraldProcess {
    /// Starts `herald dev` on a free port with its data in `dir/data`, its log in
    /// `dir/{log_name}.log`, `api_key` and extra environment, and waits until `/healthz` answers.
    pub async fn start(dir: &Path, api_key: &str, env: &[(&str, &str)], log_name: &str) -> Self {
        Self::start_with(dir, api_key, env, log_name, false).await
    }

    /// As [`HeraldProcess::start`], with only the log (stderr) in `{log_name}.log` and what the
    /// command prints for its user (stdout: the URL and the development key) in `{log_name}.out`.
    pub async fn start_log_apart(
        dir: &Path,
        api_key: &str,
        env: &[(&str, &str)],
        log_name: &str,
    ) -> Self {
        Self::start_with(dir, api_key, env, log_name, true).await
    }

    async fn start_with(
        dir: &Path,
        api_key: &str,
        env: &[(&str, &str)],
        log_name: &str,
        stdout_apart: bool,
    ) -> Self {
        let port = free_port();
        let data_dir = dir.join("data");
        let log = dir.join(format!("{log_name}.log"));
        let log_file = std::fs::File::create(&log).expect("a log file");
        let stdout = if stdout_apart {
            std::fs::File::create(dir.join(format!("{log_name}.out"))).expect("an output file")
        } else {
            log_file.try_clone().expect("log handle")
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
        command
            .arg("dev")
            .env("HERALD_ADDR", format!("127.0.0.1:{port}"))
            .env("HERALD_DATA_DIR", &data_dir)
            .env("HERALD_DEV_API_KEY", api_key)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log_file);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("the herald binary starts");
        let mut process = Self {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        process.wait_healthy().await;
        process
    }

    async fn wait_healthy(&mut self) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(exit)) = child.try_wait() {
                    panic!("herald exited early ({exit}):\n{}", self.log_text());
                }
            }
            let health = client.get(format!("{}/healthz", self.url)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "herald did not become healthy within {WAIT:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL herald");
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!(
                    "---- herald log ({}) ----\n{}",
                    self.log.display(),
                    self.log_text()
                );
            }
        }
    }
}
