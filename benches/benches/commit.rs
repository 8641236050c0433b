//! Commits per second and p50/p99 commit latency on a 3-peer loopback cluster with
//! fsync on (real gRPC, real RocksDB), for 1 and for 64 concurrent clients.
//!
//! Run: `cargo bench --workspace --bench commit` (set `MONK_BENCH_COMMITS` to change
//! the number of commits per run; default 2,000).

use std::time::{Duration, Instant};

use monk_node::MonkClient;
use monk_statemachine::{Command, Proposal, FORMAT_VERSION};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(
    leader: &str,
    admin: &monk_node::trust::tls::Dialer,
    clients: usize,
    commits: usize,
) -> (f64, Duration, Duration) {
    let per_client = commits / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let leader = leader.to_string();
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = MonkClient::connect(&leader, &admin).await.expect("connect");
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let proposal = Proposal {
                    format_version: FORMAT_VERSION,
                    proposed_at_ms: 0,
                    actor: "bench".into(),
                    request_id: format!("{c}-{i}"),
                    command: Command::Noop,
                };
                let t = Instant::now();
                client.propose_raw(&proposal).await.expect("commit");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    let elapsed = started.elapsed();
    all.sort();
    (
        all.len() as f64 / elapsed.as_secs_f64(),
        percentile(&all, 0.50),
        percentile(&all, 0.99),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("commit: bench");
        return;
    }
    let commits: usize = std::env::var("MONK_BENCH_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let root = tempfile::tempdir().expect("temp dir");
        let peers = monk_benches::cluster(root.path(), 3).await;
        let leader = peers[0].address.clone();
        println!("3-peer loopback cluster, fsync on, {commits} no-op commits per run");
        for clients in [1usize, 64] {
            let (rate, p50, p99) = run(&leader, &peers[0].admin, clients, commits).await;
            println!(
                "clients {clients:>3}: {rate:>8.0} commits/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
        }
        for p in &peers {
            p.node.shutdown().await;
            p.server.abort();
        }
    });
}
