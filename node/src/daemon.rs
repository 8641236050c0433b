//! Process wiring for `monkd`: logging, the gRPC server on the listen address (TLS on
//! every connection, `crate::trust::tls::incoming`), and
//! graceful shutdown on SIGTERM/SIGINT (stop accepting, stop Raft, exit 0).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::executor::runtime::{Engine, RuntimeError};
use crate::executor::{self, docker::DockerRuntime};

use crate::limits::{CLIENT_REQUEST_BYTES_MAX, CONCURRENT_REQUESTS_MAX, GRPC_MESSAGE_BYTES_MAX};
use crate::metrics::{GrpcMetricsLayer, Metrics};
use crate::network::Network;
use crate::node::{Node, NodeConfig};
use crate::pb::monk_service_server::MonkServiceServer;
use crate::pb::raft_service_server::RaftServiceServer;
use crate::server::{ClientApi, RaftApi};

/// `human` (default) or `json` log lines on stderr; the filter comes from `MONK_LOG`
/// (e.g. `MONK_LOG=debug,openraft=info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MONK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Which container runtime the executor drives (`monkd --containers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Containers {
    /// The local Docker engine (retried until it answers).
    Docker,
    /// No executor: this peer holds state but runs no containers.
    None,
}

/// How long to wait before asking an absent container engine again.
const ENGINE_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects to Docker on `socket` (`None`: Docker's defaults), retrying loudly, hands
/// the runtime to the node and runs the executor until shutdown.
async fn run_docker_executor(node: Arc<Node>, socket: Option<String>) {
    let mut warned = false;
    loop {
        if node.is_shut_down() {
            return;
        }
        match DockerRuntime::connect(socket.as_deref()).await {
            Ok(runtime) => {
                info!("container executor started (Docker)");
                let runtime: Arc<dyn executor::ContainerRuntime> = Arc::new(runtime);
                node.set_engine(Engine::Ready(runtime.clone()));
                return executor::run(node, runtime).await;
            }
            Err(e) => {
                node.set_engine(Engine::Unreachable(e.clone()));
                let e = e.to_string();
                if !warned {
                    warn!(
                        "{e}; replicas placed on this peer will not start until the engine answers"
                    );
                    warned = true;
                }
                // Say so in the log too, so `monk run` and `monk ps` show why.
                executor::report_engine_missing(&node, &e).await;
                tokio::time::sleep(ENGINE_RETRY).await;
            }
        }
    }
}

/// Binds `listen` (and `metrics_listen` for `/metrics`, the config's
/// `registry_listen` for the registry's `/v2/`), serves until a shutdown
/// signal, then stops Raft. `moby_socket` is the container engine's Unix socket
/// (`monkd --moby-socket`).
pub async fn run(
    config: NodeConfig,
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    containers: Containers,
    moby_socket: Option<String>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let metrics_listener = match metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?,
        ),
        None => None,
    };
    let registry_listener = match config.registry_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for the registry on {addr}: {e}"))?,
        ),
        None => None,
    };
    let node = Node::open(config, Network::Grpc).await?;
    info!(%listen, advertise = %node.config.advertise, name = %node.config.name, data_dir = %node.config.data_dir.display(), "monkd is ready");
    if containers == Containers::Docker {
        node.set_engine(Engine::Unreachable(RuntimeError::Unreachable(
            "not connected yet".into(),
        )));
        tokio::spawn(run_docker_executor(node.clone(), moby_socket));
    }
    tokio::spawn(crate::facts::run_reporter(node.clone()));
    tokio::spawn(crate::hub::run_refresher(
        node.clone(),
        node.config.hub.clone(),
    ));
    tokio::spawn(crate::overlay::run_reporter(node.clone()));
    tokio::spawn(crate::overlay::executor::run(node.clone()));
    tokio::spawn(crate::storage::run(node.clone()));
    tokio::spawn(crate::entity::run(node.clone()));
    if let Some(l) = registry_listener {
        info!(listen = %l.local_addr()?, "serving the cluster registry (OCI Distribution API) at /v2/");
        tokio::spawn(crate::registry::serve(l, node.clone()));
    }
    let metrics = Metrics::default();
    if let Some(l) = metrics_listener {
        info!(listen = %l.local_addr()?, "serving Prometheus metrics at /metrics");
        tokio::spawn(crate::metrics::serve(l, node.clone(), metrics.clone()));
    }
    // Stop serving on a signal, or when Raft has failed for good: a peer whose storage
    // fails (disk full, I/O error) must not live on as a zombie that answers
    // heartbeats but commits nothing; it exits non-zero so a supervisor restarts it.
    let failed: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let shutdown = {
        let (node, failed) = (node.clone(), failed.clone());
        async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                why = raft_failure(node) => {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                }
            }
        }
    };
    // The client API on `<data dir>/monkd.sock` too, for `monk` on this machine; a peer
    // that cannot have it (a path over the 108 bytes a socket address holds, another
    // monkd answering there) says why and serves TCP only.
    let socket_path = crate::trust::socket::path_in(&node.config.data_dir);
    let (stop_socket, socket_stopped) = tokio::sync::oneshot::channel::<()>();
    let socket_server = match crate::trust::socket::bind(&node.config.data_dir) {
        Ok(socket) => Some(tokio::spawn(
            tonic::transport::Server::builder()
                .layer(GrpcMetricsLayer {
                    metrics: metrics.clone(),
                })
                .concurrency_limit_per_connection(CONCURRENT_REQUESTS_MAX)
                .add_service(client_api(node.clone(), metrics.clone()))
                .serve_with_incoming_shutdown(crate::trust::socket::incoming(socket), async move {
                    let _ = socket_stopped.await;
                }),
        )),
        Err(e) => {
            warn!(socket = %socket_path.display(), "no Unix socket for local clients: {e}");
            None
        }
    };
    let served = serve_with_metrics(node.clone(), listener, metrics, shutdown).await;
    let _ = stop_socket.send(());
    if let Some(server) = socket_server {
        let _ = server.await;
        let _ = std::fs::remove_file(&socket_path);
    }
    served?;
    let failure = failed.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(why) = failure {
        error!(
            "raft stopped: {why}; exiting so a supervisor can restart monkd (the data dir is kept)"
        );
        node.shutdown().await;
        return Err(anyhow::anyhow!("raft stopped: {why}"));
    }
    info!("shutting down");
    node.begin_stopping();
    release_network(&node).await;
    node.shutdown().await;
    Ok(())
}

/// How often to look for this peer's Raft while it has none (not yet a member).
const RAFT_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Resolves, with the reason, once this peer's Raft has stopped on an error (its
/// storage failed); a normal stop (leaving, shutdown) is not one.
async fn raft_failure(node: Arc<Node>) -> String {
    loop {
        if let Some(raft) = node.raft().await {
            let mut metrics = raft.metrics();
            loop {
                let state = metrics.borrow().running_state.clone();
                match state {
                    Err(openraft::error::Fatal::Stopped) | Ok(()) => {}
                    Err(fatal) => return fatal.to_string(),
                }
                if metrics.changed().await.is_err() {
                    break;
                }
            }
        }
        tokio::time::sleep(RAFT_WATCH_INTERVAL).await;
    }
}

/// On a graceful shutdown, removes this peer's container network when no container
/// of its cluster is left on it, so `monk down --all` leaves nothing behind; while
/// containers remain (the peer stopped with workloads running) the network stays for
/// them and the next start adopts both.
async fn release_network(node: &Node) {
    let Engine::Ready(runtime) = node.engine() else {
        return;
    };
    let Ok(info) = node.info().await else {
        return;
    };
    let (Some(cluster), Some(peer)) = (info.cluster, info.id) else {
        return;
    };
    if !matches!(runtime.list(&cluster, peer).await, Ok(left) if left.is_empty()) {
        return;
    }
    let network = executor::spec::network_name(&cluster, peer);
    match runtime.remove_network(&network).await {
        Ok(()) => info!(%network, "removed the container network: no container is left on it"),
        Err(e) => warn!(%network, "cannot remove the container network: {e}"),
    }
    // No container left: the overlay's firewall and NAT chains serve nothing either.
    // After the overlay executor's current pass, if any: it would put them back.
    if node.config.overlay.enabled {
        let _pass = node.overlay_pass().lock().await;
        crate::overlay::firewall::remove().await;
        info!("removed the overlay's firewall and NAT chains");
    }
}

/// Serves both gRPC services on `listener` until `shutdown` resolves.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    serve_with_metrics(node, listener, Metrics::default(), shutdown).await
}

/// The client API service (the TCP listener's and the Unix socket's).
fn client_api(node: Arc<Node>, metrics: Metrics) -> MonkServiceServer<ClientApi> {
    MonkServiceServer::new(ClientApi { node, metrics })
        // A client request is at most a proposal plus its envelope; only peers' Raft
        // messages (entries, snapshot chunks) may be larger.
        .max_decoding_message_size(CLIENT_REQUEST_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

/// [`serve`], counting requests and proposals into `metrics`.
pub async fn serve_with_metrics(
    node: Arc<Node>,
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let tls = node.trust().server_config()?;
    let raft = RaftServiceServer::new(RaftApi::new(node.clone()))
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX);
    let api = client_api(node, metrics.clone());
    tonic::transport::Server::builder()
        .layer(GrpcMetricsLayer { metrics })
        .concurrency_limit_per_connection(CONCURRENT_REQUESTS_MAX)
        .add_service(raft)
        .add_service(api)
        .serve_with_incoming_shutdown(crate::trust::tls::incoming(listener, tls), shutdown)
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
