//! Prometheus metrics of one peer, served as OpenMetrics text at `/metrics` when `monkd`
//! runs with `--metrics-listen ADDR`. Names follow Prometheus' naming guide: `monk_`
//! prefix, the unit in the name, `_total` on counters.
//!
//! Two kinds of figures:
//! - counted as they happen, by the code that sees them: proposals this peer took from
//!   clients by kind and result, with their commit latency ([`Metrics::proposal`]); gRPC
//!   requests by method and status code ([`GrpcMetricsLayer`]);
//! - read at scrape time: Raft's term, leader and indexes and each follower's lag (from
//!   the same view as `monk system consensus`), what the state machine applied since
//!   start by kind and result with the time it took, snapshots built, and the state's
//!   peers, workloads and replicas by status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use monk_statemachine::PeerStatus;

use crate::node::Node;

/// Label pairs of one series.
type Labels = Vec<(&'static str, String)>;

/// Commit-latency histogram buckets: 0.5 ms doubling 14 times (up to about 4 s), which
/// spans a loopback cluster's fsync and a WAN quorum under load.
const COMMIT_SECONDS_BUCKET_FIRST: f64 = 0.000_5;
const COMMIT_SECONDS_BUCKETS: u16 = 14;

/// The figures counted as they happen; cheap to clone (shared counters).
#[derive(Clone)]
pub struct Metrics {
    proposals: Family<Labels, Counter>,
    commit_seconds: Histogram,
    grpc_requests: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            proposals: Family::default(),
            commit_seconds: Histogram::new(exponential_buckets(
                COMMIT_SECONDS_BUCKET_FIRST,
                2.0,
                COMMIT_SECONDS_BUCKETS,
            )),
            grpc_requests: Family::default(),
        }
    }
}

impl Metrics {
    /// A client proposal this peer took, its result (`accepted`, `rejected`, `error`)
    /// and how long it took to commit and apply.
    pub fn proposal(&self, kind: &str, result: &str, seconds: f64) {
        self.proposals
            .get_or_create(&vec![
                ("kind", kind.to_string()),
                ("result", result.to_string()),
            ])
            .inc();
        if result != "error" {
            self.commit_seconds.observe(seconds);
        }
    }

    fn grpc_request(&self, method: &str, code: &str) {
        self.grpc_requests
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("code", code.to_string()),
            ])
            .inc();
    }

    /// The whole exposition: the counted figures and those read from `node` now.
    pub async fn render(&self, node: &Node) -> String {
        let mut registry = Registry::default();
        registry.register(
            "monk_proposals",
            "Client proposals this peer took, by command kind and result",
            self.proposals.clone(),
        );
        registry.register(
            "monk_raft_commit_seconds",
            "Time from taking a client proposal to its applied result",
            self.commit_seconds.clone(),
        );
        registry.register(
            "monk_grpc_requests",
            "gRPC requests this peer served, by method and status code",
            self.grpc_requests.clone(),
        );
        raft_figures(&mut registry, node).await;
        applied_figures(&mut registry, node);
        state_figures(&mut registry, node);
        let mut text = String::new();
        match encode(&mut text, &registry) {
            Ok(()) => text,
            Err(e) => format!("# encoding the metrics failed: {e}\n"),
        }
    }
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn index(value: Option<u64>) -> i64 {
    value.map_or(-1, |v| v as i64)
}

async fn raft_figures(registry: &mut Registry, node: &Node) {
    let Ok(view) = node.consensus().await else {
        gauge(
            registry,
            "monk_raft_member",
            "1 when this peer is in a cluster",
            0,
        );
        return;
    };
    gauge(
        registry,
        "monk_raft_member",
        "1 when this peer is in a cluster",
        1,
    );
    gauge(
        registry,
        "monk_raft_term",
        "Current Raft term",
        view.term as i64,
    );
    gauge(
        registry,
        "monk_raft_leader_id",
        "Peer id of the current leader (-1: none known)",
        index(view.leader_id),
    );
    gauge(
        registry,
        "monk_raft_is_leader",
        "1 when this peer leads",
        i64::from(view.state == "leader"),
    );
    for (name, help, value) in [
        (
            "monk_raft_last_log_index",
            "Last index in this peer's log",
            view.last_log_index,
        ),
        (
            "monk_raft_commit_index",
            "Last committed index this peer knows",
            view.commit_index,
        ),
        (
            "monk_raft_applied_index",
            "Last index applied to the state",
            view.applied_index,
        ),
        (
            "monk_raft_snapshot_index",
            "Index of the latest snapshot",
            view.snapshot_index,
        ),
        (
            "monk_raft_purged_index",
            "Last index compacted away",
            view.purged_index,
        ),
    ] {
        gauge(registry, name, &format!("{help} (-1: none)"), index(value));
    }
    let lag = Family::<Labels, Gauge>::default();
    for f in &view.followers {
        lag.get_or_create(&vec![("peer", f.id.to_string())])
            .set(f.lag.map_or(-1, |l| l as i64));
    }
    registry.register(
        "monk_raft_replication_lag_entries",
        "Entries each follower is behind the leader (on the leader only)",
        lag,
    );
}

fn applied_figures(registry: &mut Registry, node: &Node) {
    let stats = {
        let shared = node.shared_state();
        let applied = shared.read().unwrap_or_else(|p| p.into_inner());
        applied.stats.clone()
    };
    let commands = Family::<Labels, Counter>::default();
    for ((kind, accepted), n) in &stats.commands {
        let result = if *accepted { "accepted" } else { "rejected" };
        commands
            .get_or_create(&vec![("kind", kind.to_string()), ("result", result.into())])
            .inc_by(*n);
    }
    registry.register(
        "monk_applied_commands",
        "Commands this peer's state machine applied since it started, by kind and result",
        commands,
    );
    let seconds: Counter<f64, std::sync::atomic::AtomicU64> = Counter::default();
    seconds.inc_by(stats.apply_seconds_sum);
    registry.register(
        "monk_apply_seconds",
        "Time this peer spent applying commands (divide by monk_applied_commands_total for the mean)",
        seconds,
    );
    let snapshots: Counter = Counter::default();
    snapshots.inc_by(stats.snapshots_built);
    registry.register(
        "monk_snapshots_built",
        "Snapshots this peer built since it started",
        snapshots,
    );
}

fn state_figures(registry: &mut Registry, node: &Node) {
    let (peers, workloads, replicas) = node.with_state(|s| {
        let mut peers: BTreeMap<&'static str, i64> = BTreeMap::new();
        for p in s.peers().values() {
            let status = match p.status {
                PeerStatus::Up => "up",
                PeerStatus::Down { .. } => "down",
                PeerStatus::Left { .. } => "left",
            };
            *peers.entry(status).or_default() += 1;
        }
        let mut replicas: BTreeMap<String, i64> = BTreeMap::new();
        for w in s.workloads().values() {
            for i in w.instances.values() {
                let status = match (&i.peer, &i.observed) {
                    (None, _) => "pending".to_string(),
                    (Some(_), None) => "placed".to_string(),
                    (Some(_), Some(o)) => o.status.as_str().to_string(),
                };
                *replicas.entry(status).or_default() += 1;
            }
        }
        (peers, s.workloads().len() as i64, replicas)
    });
    let by_status = Family::<Labels, Gauge>::default();
    for (status, n) in peers {
        by_status
            .get_or_create(&vec![("status", status.into())])
            .set(n);
    }
    registry.register(
        "monk_peers",
        "Peers the cluster records, by status",
        by_status,
    );
    gauge(
        registry,
        "monk_workloads",
        "Workloads the cluster runs or keeps stopped",
        workloads,
    );
    let by_status = Family::<Labels, Gauge>::default();
    for (status, n) in replicas {
        by_status.get_or_create(&vec![("status", status)]).set(n);
    }
    registry.register(
        "monk_replicas",
        "Workload replicas, by their last reported status (pending: no peer; placed: not reported yet)",
        by_status,
    );
}

/// Serves `/metrics` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, node: Arc<Node>, metrics: Metrics) {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let (node, metrics) = (node.clone(), metrics.clone());
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(&node).await,
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!("the metrics endpoint stopped: {e}");
    }
}

/// A tower layer on the gRPC server that counts every request by method and status.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    pub metrics: Metrics,
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    metrics: Metrics,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<axum::http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_string();
        let metrics = self.metrics.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            // A unary error is a trailers-only response: its code is in the headers.
            // A success carries code 0 in the trailers, after the body.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("0")
                .to_string();
            metrics.grpc_request(&method, &code);
            Ok(response)
        })
    }
}
