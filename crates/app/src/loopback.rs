//! A [`Sender`] that delivers only to this machine: `herald dev --loopback-only`.
//!
//! For runs that create subscriptions nobody chose, such as the API fuzzer's (`scripts/api-fuzz.sh`):
//! whatever callback URL they carry, Herald must not look a name up in DNS or connect anywhere but
//! the loopback interface. The URL's host is checked before the inner sender sees the request: an
//! IPv4 or IPv6 loopback literal, or `localhost` (answered by the hosts file, not DNS). The inner
//! [`crate::sender::HttpSender`] contacts no other host (it follows no redirect and uses no proxy).

use std::sync::Arc;

use async_trait::async_trait;
use herald_core::ports::{OutboundRequest, OutboundResponse, SendError, Sender};
use url::{Host, Url};

/// Refuses every request whose URL is not on the loopback interface; hands the others on.
#[derive(Clone)]
pub struct LoopbackOnly(pub Arc<dyn Sender>);

/// Whether `raw` names this machine's loopback interface.
pub fn is_loopback_url(raw: &str) -> bool {
    let Ok(url) = Url::parse(raw.trim()) else {
        return false;
    };
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[async_trait]
impl Sender for LoopbackOnly {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, SendError> {
        if !is_loopback_url(&request.url) {
            return Err(SendError::BlockedAddress(
                "this server delivers only to loopback addresses (--loopback-only)".into(),
            ));
        }
        self.0.send(request).await
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use herald_contract::memory::ScriptedSender;

    use super::*;

    fn request(url: &str) -> OutboundRequest {
        OutboundRequest {
            url: url.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    #[tokio::test]
    async fn only_loopback_urls_reach_the_inner_sender() {
        let inner = ScriptedSender::new([]);
        let sender = LoopbackOnly(inner.clone());
        for url in [
            "https://hooks.example.com/in",
            "http://93.184.215.14/x",
            "http://10.0.0.1/x",
            "http://[2001:db8::1]/x",
            "http://localhost.example.com/x",
            "https://api.trello.com/1/cards",
            "not a url",
        ] {
            let err = sender.send(request(url)).await.unwrap_err();
            assert!(
                matches!(err, SendError::BlockedAddress(_)),
                "{url}: {err:?}"
            );
        }
        assert!(inner.requests().is_empty());
        let loopback = [
            "http://127.0.0.1:9/x",
            "http://127.8.0.1/x",
            "http://[::1]:9/x",
            "http://LOCALHOST:9/",
        ];
        for url in loopback {
            sender.send(request(url)).await.unwrap();
        }
        let sent: Vec<String> = inner.requests().into_iter().map(|r| r.url).collect();
        assert_eq!(sent, loopback);
    }
}
