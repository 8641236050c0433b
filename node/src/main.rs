//! `monkd`: one peer of a monk cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use monk_node::executor::AdmissionPolicy;
use monk_node::{daemon, NodeConfig};
use monk_statemachine::Capacity;

#[derive(Parser, Debug)]
#[command(name = "monkd", version, about = "One peer of a monk cluster")]
struct Args {
    /// Directory holding this peer's Raft log, snapshots and identity.
    #[arg(long, env = "MONK_DATA_DIR")]
    data_dir: PathBuf,
    /// Address to listen on for peers and clients.
    #[arg(long, default_value = "127.0.0.1:44001")]
    listen: SocketAddr,
    /// Serve the cluster registry (the OCI Distribution API, plain HTTP, no
    /// authentication yet) at http://ADDR/v2/ (e.g. 127.0.0.1:5000); off by default.
    #[arg(long, value_name = "ADDR")]
    registry_listen: Option<SocketAddr>,
    /// Address others use to reach this peer (default: the listen address).
    #[arg(long)]
    advertise: Option<String>,
    /// Peer name (default: <hostname>-<port>).
    #[arg(long)]
    name: Option<String>,
    /// Scheduling tags, comma separated.
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Log format: human or json.
    #[arg(long, default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
    /// Take a snapshot (and compact the log) after this many applied entries.
    #[arg(long, default_value_t = monk_node::limits::SNAPSHOT_AFTER_ENTRIES, value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: u64,
    /// Also take one once the log grew by this many bytes since the last snapshot.
    #[arg(long, value_name = "BYTES", default_value_t = monk_node::limits::SNAPSHOT_AFTER_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every_bytes: u64,
    /// Container runtime for the replicas placed on this peer.
    #[arg(long, value_enum, default_value_t = daemon::Containers::Docker)]
    containers: daemon::Containers,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Host address that published ports bind to when a runnable names none (a peer
    /// with several interfaces, or several peers sharing one machine); default: all.
    #[arg(long, value_name = "IP")]
    publish_ip: Option<std::net::IpAddr>,
    /// Unix socket of the container engine (Docker or Podman); default: `DOCKER_HOST`
    /// or /var/run/docker.sock.
    #[arg(long, value_name = "PATH")]
    moby_socket: Option<String>,
    /// Admit privileged containers (`privileged: true`), which are root on this host.
    #[arg(long)]
    allow_privileged: bool,
    /// Host path prefixes containers may mount besides the volume root, comma separated
    /// (absolute paths).
    #[arg(long, value_name = "PREFIX", value_delimiter = ',', value_parser = absolute_path)]
    allow_host_paths: Vec<PathBuf>,
    /// Capabilities containers may add beyond Docker's default set, comma separated
    /// (`SYS_ADMIN`, `NET_ADMIN`, or `ALL`).
    #[arg(long, value_name = "CAP", value_delimiter = ',')]
    allow_caps: Vec<String>,
    /// Directory on the engine's host that `${monk-volume-path}` names; containers may
    /// always mount paths under it.
    #[arg(long, value_name = "DIR", default_value = monk_scripting::monkscript::runtime::DEFAULT_MONK_VOLUME_PATH, value_parser = absolute_path)]
    volume_root: PathBuf,
    /// UDP port this peer's WireGuard listens on for the overlay.
    #[arg(long, value_name = "PORT", default_value_t = monk_node::overlay::WIREGUARD_PORT_DEFAULT)]
    wg_listen_port: u16,
    /// Where other peers reach this peer's WireGuard (`HOST:PORT`); default: the
    /// advertise address's host and `--wg-listen-port`.
    #[arg(long, value_name = "HOST:PORT", value_parser = wg_endpoint)]
    wg_endpoint: Option<String>,
    /// Take no part in the overlay: no WireGuard interface, no firewall, no DNS; this
    /// peer's containers reach only each other, by the engine's own names. For a
    /// machine without root or TUN, or several peers sharing one network namespace.
    #[arg(long, env = "MONK_NO_OVERLAY")]
    no_overlay: bool,
    /// New client writes are refused while the data dir holds more than this many
    /// bytes (stop, purge and removals still pass); like etcd's --quota-backend-bytes.
    #[arg(long, value_name = "BYTES", default_value_t = monk_node::storage::QUOTA_BYTES_DEFAULT)]
    quota_bytes: u64,
    /// New client writes are refused while the data dir's filesystem has less free.
    #[arg(long, value_name = "BYTES", default_value_t = monk_node::storage::FREE_BYTES_MIN_DEFAULT)]
    free_bytes_min: u64,
    /// The userspace WireGuard to start where the kernel has none.
    #[arg(long, value_name = "PROGRAM", env = "WG_USERSPACE_IMPLEMENTATION", default_value = monk_node::overlay::wireguard::USERSPACE_DEFAULT)]
    wg_userspace: String,
    /// A Hub source this peer keeps current: a directory of kits, or a git repository
    /// (a local path, a bare repository or a URL `git` can reach); repeatable.
    #[arg(long, value_name = "SOURCE")]
    hub_source: Vec<String>,
    /// How often the Hub sources are read again (`90s`, `30m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = hub_refresh)]
    hub_refresh: std::time::Duration,
}

/// A `--hub-refresh` value: a duration of at least a second.
fn hub_refresh(text: &str) -> Result<std::time::Duration, String> {
    match monk_scripting::monkscript::runtime::parse::duration_secs(text)? {
        0 => Err("the refresh interval must be at least 1s".into()),
        secs => Ok(std::time::Duration::from_secs(secs)),
    }
}

/// A `--wg-endpoint` value: what `apply` accepts as an endpoint.
fn wg_endpoint(text: &str) -> Result<String, String> {
    monk_statemachine::overlay::check_endpoint(text).map(|()| text.to_string())
}

/// A flag value that must be an absolute path.
fn absolute_path(text: &str) -> Result<PathBuf, String> {
    match text.starts_with('/') {
        true => Ok(PathBuf::from(text)),
        false => Err(format!("{text:?} is not an absolute path")),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "monkd".into())
}

/// CPU and memory this machine offers, read from the OS (0 when unknown).
fn capacity() -> Capacity {
    Capacity {
        cpu_millis: monk_node::facts::cpu_millis(),
        memory_mb: monk_node::facts::memory_mb(),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    daemon::init_logging(args.log_format == "json");
    let advertise = args
        .advertise
        .clone()
        .unwrap_or_else(|| args.listen.to_string());
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), args.listen.port()));
    let config = NodeConfig {
        data_dir: args.data_dir,
        advertise,
        name,
        tags: args.tags,
        capacity: capacity(),
        snapshot_after_entries: args.snapshot_every,
        snapshot_after_bytes: args.snapshot_every_bytes,
        publish_ip: args.publish_ip.map(|ip| ip.to_string()),
        admission: AdmissionPolicy::new(
            args.allow_privileged,
            args.allow_host_paths,
            &args.allow_caps,
            args.volume_root,
        ),
        overlay: monk_node::overlay::OverlayConfig {
            listen_port: args.wg_listen_port,
            endpoint: args.wg_endpoint,
            enabled: !args.no_overlay,
            userspace: args.wg_userspace,
        },
        storage: monk_node::storage::StorageLimits {
            quota_bytes: args.quota_bytes,
            free_bytes_min: args.free_bytes_min,
        },
        hub: monk_node::hub::HubConfig {
            sources: args.hub_source,
            refresh: args.hub_refresh,
        },
        registry_listen: args.registry_listen,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("monkd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(
        config,
        args.listen,
        args.metrics_listen,
        args.containers,
        args.moby_socket,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monkd: {e:#}");
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
