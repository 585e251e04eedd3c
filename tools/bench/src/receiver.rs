//! The receiver: an axum server on 127.0.0.1, in the bench process, answering 204 to every
//! delivery and noting, per `webhook-id` (the event id), when it arrived, for which subscription
//! (`/hook/{k}`) and over which connection. [`join_arrivals`] then matches arrivals to accepted
//! events.
//!
//! It must stay cheap next to Herald, so that it does not limit the figures: a handler takes one
//! shard's lock and pushes an `Instant`; it never parses the body or checks the signature.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use crate::load::Accepted;

const RECEIVER_SHARDS: usize = 16;

/// One delivery as the receiver saw it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    subscription: u32,
    peer_port: u16,
    at: Instant,
}

/// Arrivals per event id, in shards so concurrent handlers rarely share a lock.
#[derive(Debug)]
pub struct Receiver {
    shards: Vec<Mutex<HashMap<String, Vec<Arrival>>>>,
    delivered: AtomicU64,
    /// Answer 503 to the first arrival of each (event, subscription), 204 after (the retry phase
    /// of `--store aws`).
    fail_first: AtomicBool,
}

impl Receiver {
    pub fn new() -> Self {
        Self {
            shards: (0..RECEIVER_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            delivered: AtomicU64::new(0),
            fail_first: AtomicBool::new(false),
        }
    }

    /// From now on, the first arrival of each (event, subscription) is answered 503.
    pub fn fail_first_attempts(&self) {
        self.fail_first.store(true, Ordering::Relaxed);
    }

    fn shard(&self, id: &str) -> &Mutex<HashMap<String, Vec<Arrival>>> {
        // Event ids end in random ULID characters: the last byte spreads them well enough.
        let b = id.as_bytes().last().copied().unwrap_or(0) as usize;
        &self.shards[b % self.shards.len()]
    }

    /// Notes an arrival; whether it is the first of its (event, subscription).
    fn record(&self, id: &str, arrival: Arrival) -> bool {
        let first = {
            let mut map = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
            match map.get_mut(id) {
                Some(v) => {
                    let first = !v.iter().any(|a| a.subscription == arrival.subscription);
                    v.push(arrival);
                    first
                }
                None => {
                    map.insert(id.to_owned(), vec![arrival]);
                    true
                }
            }
        };
        self.delivered.fetch_add(1, Ordering::Relaxed);
        first
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        self.delivered.store(0, Ordering::Relaxed);
    }

    pub fn take(&self) -> HashMap<String, Vec<Arrival>> {
        let mut all = HashMap::new();
        for shard in &self.shards {
            all.extend(std::mem::take(
                &mut *shard.lock().unwrap_or_else(|p| p.into_inner()),
            ));
        }
        all
    }
}

async fn hook(
    State(receiver): State<Arc<Receiver>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(subscription): UrlPath<u32>,
    headers: HeaderMap,
    _body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        let first = receiver.record(
            id,
            Arrival {
                subscription,
                peer_port: peer.port(),
                at,
            },
        );
        if first && receiver.fail_first.load(Ordering::Relaxed) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    StatusCode::NO_CONTENT
}

/// Serves `receiver` on a free port of 127.0.0.1 until the returned sender is used (or dropped).
pub async fn start_receiver(
    receiver: Arc<Receiver>,
) -> anyhow::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("binding the receiver on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/hook/{k}", post(hook))
        .with_state(receiver);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            eprintln!("receiver failed: {e}");
        }
    });
    Ok((addr, stop))
}

/// What the arrivals of a phase add up to.
#[derive(Debug, Default)]
pub struct JoinStats {
    pub delivered: u64,
    pub duplicates: u64,
    pub unmatched: u64,
    pub early: u64,
    pub connections: u64,
    pub last_arrival: Option<Instant>,
    pub latencies_ms: Vec<f64>,
}

/// Matches arrivals to accepted events: one delivery per (event, subscription); repeats are
/// duplicates, arrivals of unknown events are unmatched.
pub fn join_arrivals(
    accepted: &[Accepted],
    arrivals: &HashMap<String, Vec<Arrival>>,
    fanout: u32,
) -> JoinStats {
    let mut stats = JoinStats {
        latencies_ms: Vec::with_capacity(accepted.len() * fanout as usize),
        ..JoinStats::default()
    };
    let mut ports = HashSet::new();
    let by_id: HashMap<&str, &Accepted> = accepted.iter().map(|a| (a.id.as_str(), a)).collect();
    for (id, list) in arrivals {
        for a in list {
            ports.insert(a.peer_port);
        }
        let Some(acc) = by_id.get(id.as_str()) else {
            stats.unmatched += list.len() as u64;
            continue;
        };
        let mut seen = HashSet::with_capacity(list.len());
        for a in list {
            if !seen.insert(a.subscription) {
                stats.duplicates += 1;
                continue;
            }
            stats.delivered += 1;
            if a.at < acc.accepted {
                stats.early += 1;
            }
            stats
                .latencies_ms
                .push(a.at.saturating_duration_since(acc.accepted).as_secs_f64() * 1000.0);
            stats.last_arrival = Some(stats.last_arrival.map_or(a.at, |t| t.max(a.at)));
        }
    }
    stats.connections = ports.len() as u64;
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn arrivals_are_matched_once_per_subscription() {
        let t0 = Instant::now();
        let acc = |id: &str, ms: u64| Accepted {
            id: id.into(),
            sent: t0,
            accepted: t0 + Duration::from_millis(ms),
        };
        let accepted = vec![acc("evt_a", 0), acc("evt_b", 10)];
        let at = |sub: u32, ms: u64| Arrival {
            subscription: sub,
            peer_port: 1000 + sub as u16,
            at: t0 + Duration::from_millis(ms),
        };
        let mut arrivals = HashMap::new();
        arrivals.insert("evt_a".to_owned(), vec![at(0, 5), at(1, 7), at(0, 9)]);
        arrivals.insert("evt_b".to_owned(), vec![at(0, 8)]);
        arrivals.insert("evt_zzz".to_owned(), vec![at(0, 1)]);
        let s = join_arrivals(&accepted, &arrivals, 2);
        assert_eq!(
            (
                s.delivered,
                s.duplicates,
                s.unmatched,
                s.early,
                s.connections
            ),
            (3, 1, 1, 1, 2)
        );
        let mut l = s.latencies_ms;
        l.sort_by(f64::total_cmp);
        assert_eq!(l, vec![0.0, 5.0, 7.0]);
    }
}
