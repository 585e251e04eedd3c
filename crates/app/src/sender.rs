//! The outbound HTTP client: how Herald POSTs a rendered, signed payload to a subscriber.
//!
//! [`HttpSender`] is the production [`Sender`]. It owns one `reqwest::Client`, built once and
//! shared by every delivery, and enforces the delivery and security rules of the design:
//!
//! - redirects are never followed (a 3xx is returned as is, and the delivery rules count it as a
//!   failure);
//! - every attempt has one total deadline covering DNS, connect, TLS, headers and body;
//! - at most `max_response_bytes` of the response body is read, the rest is never buffered;
//! - the target is checked statically ([`TargetUrl::parse`]: scheme, userinfo, literal addresses,
//!   `localhost`-style names) and then again after DNS: a custom resolver looks the name up once,
//!   checks every address against the [`AddressPolicy`], and hands reqwest only checked addresses,
//!   so a name cannot resolve to a public address at check time and a private one at connect time.
//!
//! It must never follow a redirect, go through a proxy (the proxy would do its own DNS and defeat
//! the address check), connect to an address that was not checked, or put request headers (bearer
//! tokens, Trello's key and token in `authorization`) or the request URL (a subscriber's URL may
//! carry a token in its query string) into an error message or a log line.
//!
//! Policy refusals are reported as [`SendError::BlockedAddress`]: a private or loopback address
//! (literal or resolved), a `localhost`-style name, and plain `http://` when the policy does not
//! allow it. A URL that can never be a target (malformed, another scheme, userinfo, fragment) is
//! [`SendError::InvalidRequest`].

use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use herald_core::ports::{OutboundRequest, OutboundResponse, SendError, Sender};
use herald_core::retry::RetryAfter;
use herald_core::{AddressPolicy, TargetUrl, TargetUrlError};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use url::Url;

/// The connect phase (DNS + TCP + TLS) never gets more than this, even with a longer total timeout,
/// so a black-holed address fails fast enough to leave time for nothing else to hang.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A `Retry-After` value is a few digits or an HTTP date; anything longer is not worth keeping.
const MAX_RETRY_AFTER_LEN: usize = 64;

/// Error messages end up in the delivery log; keep them short.
const MAX_ERROR_LEN: usize = 512;

/// How the outbound client is built.
#[derive(Debug, Clone)]
pub struct HttpSenderConfig {
    /// Total time of one attempt: DNS, connect, TLS, request, response headers and body excerpt.
    pub timeout: Duration,
    /// How much of the response body is read and kept.
    pub max_response_bytes: usize,
    /// Which schemes and addresses may be contacted.
    pub policy: AddressPolicy,
    pub user_agent: String,
    /// Idle keep-alive connections kept per host.
    pub pool_idle_per_host: usize,
}

impl Default for HttpSenderConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            max_response_bytes: 4096,
            policy: AddressPolicy::PRODUCTION,
            user_agent: format!("Herald/{}", herald_core::VERSION),
            // As many as deliveries in flight, so a busy receiver's connections are reused.
            pool_idle_per_host: 512,
        }
    }
}

/// Why the outbound client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderBuildError {
    #[error("the sender timeout must be greater than zero")]
    ZeroTimeout,
    #[error("the user agent is not a valid header value")]
    InvalidUserAgent,
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The production [`Sender`]. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    policy: AddressPolicy,
    timeout: Duration,
    max_response_bytes: usize,
}

impl HttpSender {
    pub fn new(config: HttpSenderConfig) -> Result<Self, SenderBuildError> {
        let resolver_policy = config.policy;
        Self::build(config, resolver_policy)
    }

    /// Builds with a resolver policy that may differ from the static URL policy. Only tests use a
    /// different one, to reach the resolver through the whole client.
    fn build(
        config: HttpSenderConfig,
        resolver_policy: AddressPolicy,
    ) -> Result<Self, SenderBuildError> {
        if config.timeout.is_zero() {
            return Err(SenderBuildError::ZeroTimeout);
        }
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|_| SenderBuildError::InvalidUserAgent)?;
        if config.policy.allow_http || config.policy.allow_private {
            tracing::warn!(
                allow_http = config.policy.allow_http,
                allow_private = config.policy.allow_private,
                "outbound deliveries may use plain http or reach private and loopback addresses"
            );
        }
        let client = reqwest::Client::builder()
            // 3xx is a failed delivery; following it could also lead to a private address.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy resolves names itself, past our resolver's checks.
            .no_proxy()
            .https_only(!config.policy.allow_http)
            .dns_resolver(Arc::new(CheckedResolver {
                policy: resolver_policy,
            }))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(MAX_CONNECT_TIMEOUT))
            .user_agent(user_agent)
            .pool_max_idle_per_host(config.pool_idle_per_host)
            .tcp_nodelay(true)
            .build()
            .map_err(SenderBuildError::Client)?;
        Ok(Self {
            client,
            policy: config.policy,
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// The static checks. reqwest never calls the resolver for an IP-literal host, so literal
    /// addresses are checked here or not at all.
    fn check_url(&self, raw: &str) -> Result<Url, SendError> {
        let target = TargetUrl::parse(raw, self.policy).map_err(|e| match e {
            TargetUrlError::PrivateAddress => SendError::BlockedAddress(e.to_string()),
            TargetUrlError::SchemeNotAllowed if is_plain_http(raw) => SendError::BlockedAddress(
                "plain http:// is not allowed by the address policy".into(),
            ),
            other => SendError::InvalidRequest(other.to_string()),
        })?;
        // TargetUrl::parse checks literals already; this keeps the guarantee local to the sender.
        if let Some(ip) = target.ip_literal() {
            if !self.policy.allows(ip) {
                return Err(SendError::BlockedAddress(
                    "the URL points to a non-public address".into(),
                ));
            }
        }
        // Send exactly the URL that was checked, not a second parse of the raw string.
        Ok(target.as_url().clone())
    }

    async fn exchange(
        &self,
        url: Url,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<OutboundResponse, SendError> {
        let response = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= MAX_RETRY_AFTER_LEN)
            .and_then(RetryAfter::parse);
        let body_excerpt = read_excerpt(response, self.max_response_bytes).await?;
        Ok(OutboundResponse {
            status,
            retry_after,
            body_excerpt,
        })
    }
}

#[async_trait]
impl Sender for HttpSender {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, SendError> {
        let url = self.check_url(&request.url)?;
        let headers = build_headers(&request.headers)?;
        // reqwest's own timeout covers the same span; this outer one makes "no attempt outlives
        // the timeout" hold whatever reqwest does inside.
        match tokio::time::timeout(self.timeout, self.exchange(url, headers, request.body)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Timeout),
        }
    }
}

fn is_plain_http(raw: &str) -> bool {
    Url::parse(raw.trim()).is_ok_and(|u| u.scheme() == "http")
}

/// Header values carry bearer tokens and credentials: they are marked sensitive (hidden from
/// `Debug`) and never quoted in errors.
fn build_headers(pairs: &[(String, String)]) -> Result<HeaderMap, SendError> {
    let mut headers = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SendError::InvalidRequest("a header name is not valid".into()))?;
        let mut header_value = HeaderValue::from_str(value).map_err(|_| {
            SendError::InvalidRequest(format!("the value of header {header_name} is not valid"))
        })?;
        header_value.set_sensitive(true);
        headers.append(header_name, header_value);
    }
    Ok(headers)
}

/// Reads at most `cap` bytes and stops; dropping the response then closes the connection instead
/// of draining an arbitrarily large body.
async fn read_excerpt(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, SendError> {
    let mut excerpt = Vec::new();
    while excerpt.len() < cap {
        match response.chunk().await.map_err(classify)? {
            Some(chunk) => {
                let take = chunk.len().min(cap - excerpt.len());
                excerpt.extend_from_slice(&chunk[..take]);
            }
            None => break,
        }
    }
    Ok(excerpt)
}

/// Why our resolver refused. A distinct type so [`classify`] can find it in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    // The address itself is left out: the message reaches the tenant's delivery log, and the
    // internal address of an internal name is not theirs to learn.
    #[error("{host} resolves to a private, loopback or otherwise non-public address")]
    Blocked { host: String },
    #[error("could not resolve {host}: {cause}")]
    Lookup { host: String, cause: io::Error },
    #[error("{host} has no addresses")]
    NoAddresses { host: String },
}

impl ResolveError {
    fn to_send_error(&self) -> SendError {
        match self {
            Self::Blocked { .. } => SendError::BlockedAddress(self.to_string()),
            Self::Lookup { .. } | Self::NoAddresses { .. } => SendError::Dns(self.to_string()),
        }
    }
}

/// Resolves once and refuses the whole name if any address is refused, so reqwest can only ever
/// connect to an address that passed the policy.
#[derive(Debug, Clone, Copy)]
struct CheckedResolver {
    policy: AddressPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_checked(&host, policy).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

async fn resolve_checked(
    host: &str,
    policy: AddressPolicy,
) -> Result<Vec<SocketAddr>, ResolveError> {
    // Port 0: reqwest replaces it with the URL's port or the scheme's default.
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|cause| ResolveError::Lookup {
            host: host.to_owned(),
            cause,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ResolveError::NoAddresses {
            host: host.to_owned(),
        });
    }
    // One bad address refuses the name: a mixed answer is how rebinding attacks slip through.
    if let Some(bad) = addrs
        .iter()
        .map(SocketAddr::ip)
        .find(|ip| !policy.allows(*ip))
    {
        log_refusal(host, bad);
        return Err(ResolveError::Blocked {
            host: host.to_owned(),
        });
    }
    Ok(addrs)
}

fn log_refusal(host: &str, ip: IpAddr) {
    // Operators may see the address; the tenant-facing error does not carry it.
    tracing::warn!(host, %ip, "refused to deliver to a non-public address");
}

/// Maps a reqwest error to a [`SendError`]. The URL is stripped first: it can carry credentials.
fn classify(err: reqwest::Error) -> SendError {
    let err = err.without_url();
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(resolve) = cause.downcast_ref::<ResolveError>() {
            return resolve.to_send_error();
        }
        source = cause.source();
    }
    if err.is_timeout() {
        return SendError::Timeout;
    }
    if let Some(io) = find_io_error(&err) {
        if matches!(
            io.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotConnected
                | io::ErrorKind::BrokenPipe
        ) {
            return SendError::Connect(bounded(io.to_string()));
        }
        if io.kind() == io::ErrorKind::TimedOut {
            return SendError::Timeout;
        }
    }
    if err.is_connect() {
        return SendError::Connect(describe(&err));
    }
    SendError::Io(describe(&err))
}

fn find_io_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a io::Error> {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = cause.source();
    }
    None
}

/// The error and its causes on one line (reqwest's top-level message alone says very little).
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        // Wrappers often repeat their cause's message; say it once.
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    bounded(text)
}

fn bounded(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use axum::http::{HeaderMap as AxumHeaders, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::Router;
    use tokio::net::TcpListener;

    use super::*;

    /// Serves `router` on 127.0.0.1 on a free port; returns the base URL.
    async fn serve(router: Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        format!("http://{addr}")
    }

    /// A bare TCP listener that only counts connections: proves a refused request never connected.
    async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((_stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        (port, hits)
    }

    fn sender(policy: AddressPolicy) -> HttpSender {
        HttpSender::new(HttpSenderConfig {
            policy,
            ..HttpSenderConfig::default()
        })
        .unwrap()
    }

    fn request(url: String) -> OutboundRequest {
        OutboundRequest {
            url,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(b"{}"),
        }
    }

    #[tokio::test]
    async fn posts_body_headers_and_user_agent() {
        type Seen = Arc<Mutex<Option<(AxumHeaders, Bytes)>>>;
        let seen: Seen = Arc::default();
        let store = seen.clone();
        let router = Router::new().route(
            "/hook",
            post(move |headers: AxumHeaders, body: Bytes| {
                let store = store.clone();
                async move {
                    *store.lock().unwrap() = Some((headers, body));
                    (StatusCode::ACCEPTED, "thanks")
                }
            }),
        );
        let base = serve(router).await;

        let response = sender(AddressPolicy::DEVELOPMENT)
            .send(OutboundRequest {
                url: format!("{base}/hook?x=1"),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("authorization".into(), "Bearer tok_secret".into()),
                    ("webhook-id".into(), "evt_1".into()),
                    ("x-extra".into(), "a".into()),
                    ("x-extra".into(), "b".into()),
                ],
                body: Bytes::from_static(br#"{"type":"document.created"}"#),
            })
            .await
            .unwrap();

        assert_eq!(response.status, 202);
        assert_eq!(response.body_excerpt, b"thanks");
        assert_eq!(response.retry_after, None);
        let (headers, body) = seen.lock().unwrap().take().expect("the receiver was hit");
        assert_eq!(&body[..], br#"{"type":"document.created"}"#);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["authorization"], "Bearer tok_secret");
        assert_eq!(headers["webhook-id"], "evt_1");
        let extra: Vec<_> = headers.get_all("x-extra").iter().collect();
        assert_eq!(extra, ["a", "b"]);
        assert_eq!(
            headers["user-agent"],
            format!("Herald/{}", herald_core::VERSION).as_str()
        );
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let router = Router::new()
            .route(
                "/hook",
                post(|| async { (StatusCode::FOUND, [("location", "/elsewhere")], "") }),
            )
            .route(
                "/elsewhere",
                get({
                    let c = counter.clone();
                    move || async move {
                        c.fetch_add(1, Ordering::SeqCst);
                        "followed"
                    }
                })
                .post(move || async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    "followed"
                }),
            );
        let base = serve(router).await;

        let response = sender(AddressPolicy::DEVELOPMENT)
            .send(request(format!("{base}/hook")))
            .await
            .unwrap();

        assert_eq!(response.status, 302);
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn returns_retry_after() {
        let router = Router::new().route(
            "/hook",
            post(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "120")],
                    "busy",
                )
                    .into_response()
            }),
        );
        let base = serve(router).await;

        let response = sender(AddressPolicy::DEVELOPMENT)
            .send(request(format!("{base}/hook")))
            .await
            .unwrap();

        assert_eq!(response.status, 503);
        assert_eq!(
            response.retry_after,
            Some(RetryAfter::Delay(Duration::from_secs(120)))
        );
        assert_eq!(response.body_excerpt, b"busy");
    }

    #[tokio::test]
    async fn large_bodies_are_cut_to_the_cap() {
        let router = Router::new().route("/hook", post(|| async { vec![b'x'; 1 << 20] }));
        let base = serve(router).await;

        let response = sender(AddressPolicy::DEVELOPMENT)
            .send(request(format!("{base}/hook")))
            .await
            .unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body_excerpt.len(), 4096);
        assert!(response.body_excerpt.iter().all(|&b| b == b'x'));
    }

    #[tokio::test]
    async fn slow_receivers_time_out() {
        let router = Router::new().route(
            "/hook",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let base = serve(router).await;
        let sender = HttpSender::new(HttpSenderConfig {
            timeout: Duration::from_millis(300),
            policy: AddressPolicy::DEVELOPMENT,
            ..HttpSenderConfig::default()
        })
        .unwrap();

        let started = std::time::Instant::now();
        let err = sender
            .send(request(format!("{base}/hook")))
            .await
            .unwrap_err();

        assert_eq!(err, SendError::Timeout);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        // Headers arrive at once, then the body stops half way.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                        .await;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                });
            }
        });
        let sender = HttpSender::new(HttpSenderConfig {
            timeout: Duration::from_millis(300),
            policy: AddressPolicy::DEVELOPMENT,
            ..HttpSenderConfig::default()
        })
        .unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();

        // Without the outer deadline: reqwest's own timeout must be classified as a timeout too.
        let err = sender
            .exchange(url.clone(), HeaderMap::new(), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err, SendError::Timeout);

        let err = sender.send(request(url.to_string())).await.unwrap_err();
        assert_eq!(err, SendError::Timeout);
    }

    #[tokio::test]
    async fn closed_ports_fail_to_connect_without_leaking_secrets() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);

        let err = sender(AddressPolicy::DEVELOPMENT)
            .send(OutboundRequest {
                url: format!("http://127.0.0.1:{port}/hook?key=KEYSECRET&token=TOKSECRET"),
                headers: vec![("authorization".into(), "Bearer HDRSECRET".into())],
                body: Bytes::new(),
            })
            .await
            .unwrap_err();

        assert!(matches!(err, SendError::Connect(_)), "{err:?}");
        let text = format!("{err} {err:?}");
        for secret in ["KEYSECRET", "TOKSECRET", "HDRSECRET"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[tokio::test]
    async fn production_refuses_loopback_without_connecting() {
        let (port, hits) = counting_listener().await;
        let sender = sender(AddressPolicy::PRODUCTION);

        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("https://127.0.0.1:{port}/"),
            format!("https://localhost:{port}/"),
            format!("https://[::1]:{port}/"),
            format!("https://[::ffff:127.0.0.1]:{port}/"),
            format!("https://0x7f000001:{port}/"),
        ] {
            let err = sender.send(request(url.clone())).await.unwrap_err();
            assert!(
                matches!(err, SendError::BlockedAddress(_)),
                "{url}: {err:?}"
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn urls_that_are_never_targets_are_invalid() {
        let sender = sender(AddressPolicy::DEVELOPMENT);
        for url in [
            "ftp://127.0.0.1/x",
            "file:///etc/passwd",
            "http://u:p@127.0.0.1/",
            "not a url",
        ] {
            let err = sender.send(request(url.into())).await.unwrap_err();
            assert!(
                matches!(err, SendError::InvalidRequest(_)),
                "{url}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn invalid_headers_are_refused_without_quoting_the_value() {
        let (port, hits) = counting_listener().await;
        let err = sender(AddressPolicy::DEVELOPMENT)
            .send(OutboundRequest {
                url: format!("http://127.0.0.1:{port}/"),
                headers: vec![("authorization".into(), "Bearer SECRET\n".into())],
                body: Bytes::new(),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::InvalidRequest(_)), "{err:?}");
        assert!(!err.to_string().contains("SECRET"));
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn resolver_refuses_names_resolving_to_loopback() {
        let err = resolve_checked("localhost", AddressPolicy::PRODUCTION)
            .await
            .unwrap_err();
        assert!(matches!(err, ResolveError::Blocked { .. }), "{err:?}");

        // Through reqwest's trait, as the client calls it.
        let resolver = CheckedResolver {
            policy: AddressPolicy::PRODUCTION,
        };
        let name: Name = "localhost".parse().unwrap();
        let boxed = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(boxed.downcast_ref::<ResolveError>().is_some());

        let allowed = resolve_checked("localhost", AddressPolicy::DEVELOPMENT)
            .await
            .unwrap();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn resolver_refusal_surfaces_as_blocked_address() {
        // The static check lets "localhost" through; only the resolver stands in the way, so this
        // proves its error is found in reqwest's error chain and that nothing connects.
        let (port, hits) = counting_listener().await;
        let sender = HttpSender::build(
            HttpSenderConfig {
                policy: AddressPolicy::DEVELOPMENT,
                ..HttpSenderConfig::default()
            },
            AddressPolicy::PRODUCTION,
        )
        .unwrap();

        let err = sender
            .send(request(format!("http://localhost:{port}/")))
            .await
            .unwrap_err();

        assert!(matches!(err, SendError::BlockedAddress(_)), "{err:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn lookup_failures_are_dns_errors() {
        // Built by hand: a real failing lookup would query a DNS server beyond the loopback.
        let err = ResolveError::Lookup {
            host: "hooks.example.com".into(),
            cause: io::Error::other("no such host"),
        };
        assert!(matches!(err.to_send_error(), SendError::Dns(_)), "{err:?}");
        let none = ResolveError::NoAddresses {
            host: "hooks.example.com".into(),
        };
        assert!(matches!(none.to_send_error(), SendError::Dns(_)));
    }

    #[test]
    fn config_defaults() {
        let config = HttpSenderConfig::default();
        assert_eq!(config.timeout, Duration::from_secs(15));
        assert_eq!(config.max_response_bytes, 4096);
        assert_eq!(config.policy, AddressPolicy::PRODUCTION);
        assert_eq!(
            config.user_agent,
            format!("Herald/{}", herald_core::VERSION)
        );
        assert!(matches!(
            HttpSender::new(HttpSenderConfig {
                timeout: Duration::ZERO,
                ..HttpSenderConfig::default()
            }),
            Err(SenderBuildError::ZeroTimeout)
        ));
    }
}
