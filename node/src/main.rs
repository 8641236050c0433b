//! `monkd`: one peer of a monk cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
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
        publish_ip: args.publish_ip.map(|ip| ip.to_string()),
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
