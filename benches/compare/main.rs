//! `compare`: monk side by side with etcd on this machine (issue 15). Starts a 3-member
//! etcd (Debian's `etcd-server`, installed with apt-get if missing; default settings, so
//! fsync on) and a 3-peer `monkd` cluster (`--containers none`, `--no-overlay`), all on
//! 127.0.0.1 with free ports and data dirs under one temporary root (one filesystem),
//! and drives both with one closed-loop load generator: 64-byte puts against `noop`
//! proposals, sent to the leader, for each client count, rounds alternating etcd,
//! ours, etcd, ours. Prints writes/s and p50/p99/p999 per side with the ratio
//! ours/etcd, and the fsync floor of the same filesystem measured in the same run;
//! then kills each side's leader under load a few times (time to a new leader, to the
//! first acknowledged write). A full run appends its rows to `benches/RESULTS.md`.
//! Every acknowledged write is read back after its round; timings are never asserted.
//! Everything started is killed and the root removed on the way out, error or not.
//!
//! Run (builds the release binaries first):
//!
//! ```text
//! benches/compare/run [--smoke] [--clients 1,16,64,256] [--secs 10] [--rounds 2] [--kills 5]
//! ```
//!
//! `--smoke` (what CI runs, as `benches/tests/compare_smoke.rs`): 200 writes a side at
//! 1 and 4 clients, one kill each, nothing appended. Where etcd is missing and there is
//! no apt-get the run is skipped with a reason, unless `MONK_REQUIRE_ETCD=1`.

mod etcd;
mod failover;
mod fsync;
mod load;
mod ours;
mod report;
mod side;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::etcd::EtcdCluster;
use crate::failover::Recovery;
use crate::load::{Budget, Round, Summary};
use crate::ours::OurCluster;
use crate::report::{Row, Setting};
use crate::side::Side;

/// Writes per side and round in smoke mode.
const SMOKE_WRITES: u64 = 200;
/// Client counts in smoke mode.
const SMOKE_CLIENTS: [usize; 2] = [1, 4];
/// Longest a smoke round may run if its writes are slow (a debug build on a busy
/// machine).
const SMOKE_ROUND_LIMIT: Duration = Duration::from_secs(30);
/// Appends timed for the fsync floor (a full run; a smoke run times a tenth).
const FSYNC_SAMPLES: usize = 1000;
/// Longest wait for a leader before a round.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(about = "monk side by side with etcd: commit throughput, latency, failover")]
struct Args {
    /// Few writes (200 a side at 1 and 4 clients, one kill each); checks both sides
    /// answered and kept every acknowledged write; appends nothing.
    #[arg(long)]
    smoke: bool,
    /// Closed-loop client counts, one row each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    clients: Vec<usize>,
    /// Seconds per round.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Rounds per side and client count (alternating etcd, ours, etcd, ours).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Leader kills per side for the failover timing (0: none).
    #[arg(long, default_value_t = 5)]
    kills: usize,
    /// Where the temporary root for both clusters' data dirs goes.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// The results file a full run appends to.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md"))]
    results: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("compare: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C drops `run`'s future, and with it every guard: children killed, root removed.
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(args) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut args: Args) -> Result<()> {
    if args.smoke {
        args.clients = SMOKE_CLIENTS.to_vec();
        args.rounds = 1;
        args.kills = args.kills.min(1);
    }
    let Some(etcd_binary) = etcd::locate_or_install()? else {
        return Ok(());
    };
    let root = tempfile::Builder::new()
        .prefix("monk-compare-")
        .tempdir_in(&args.dir)
        .with_context(|| format!("a temporary dir in {}", args.dir.display()))?;
    let samples = if args.smoke {
        FSYNC_SAMPLES / 10
    } else {
        FSYNC_SAMPLES
    };
    let (fsync_p50, fsync_p99) = fsync::floor(root.path(), samples)?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let setting = Setting {
        date: report::date(),
        machine: report::machine(root.path()),
        commit: report::commit(&repo),
        etcd_version: etcd::version(&etcd_binary),
        fsync_p50,
        fsync_p99,
        secs: args.secs,
        rounds: args.rounds,
    };
    eprintln!(
        "compare: starting 3 etcd members and 3 monkd peers under {}",
        root.path().display()
    );
    let mut etcd = EtcdCluster::start(&etcd_binary, &root.path().join("etcd")).await?;
    let mut ours = OurCluster::start(&root.path().join("monkd")).await?;

    let budget = match args.smoke {
        true => Budget {
            duration: SMOKE_ROUND_LIMIT,
            writes_max: Some(SMOKE_WRITES),
        },
        false => Budget {
            duration: Duration::from_secs(args.secs),
            writes_max: None,
        },
    };
    let mut rows = Vec::new();
    for &clients in &args.clients {
        let mut etcd_rounds = Vec::new();
        let mut our_rounds = Vec::new();
        for round in 0..args.rounds {
            let prefix = format!("bench/{clients}/{round}/");
            etcd_rounds.push(one_round(&etcd, clients, &prefix, budget).await?);
            our_rounds.push(one_round(&ours, clients, &prefix, budget).await?);
        }
        let row = Row {
            clients,
            etcd: Summary::of(&etcd_rounds),
            ours: Summary::of(&our_rounds),
        };
        eprintln!(
            "compare: {clients} clients: etcd {:.0}/s, monkd {:.0}/s",
            row.etcd.per_second, row.ours.per_second
        );
        rows.push(row);
    }
    println!("{}", report::table(&setting, &rows));

    let failover = match args.kills {
        0 => None,
        kills => {
            let etcd_kills = failover::measure(&mut etcd, kills).await?;
            let our_kills = failover::measure(&mut ours, kills).await?;
            let text = format!(
                "etcd {}; monkd {}",
                recovery_summary(&etcd_kills),
                recovery_summary(&our_kills)
            );
            println!(
                "failover, leader SIGKILLed under load, {kills} kill(s) each, p50 (max): {text}"
            );
            Some(text)
        }
    };
    drop(ours);
    drop(etcd);
    if !args.smoke {
        report::append(&args.results, &setting, &rows, failover.as_deref())?;
        println!("appended to {}", args.results.display());
    }
    Ok(())
}

/// One round of one side at the leader: connect `clients` writers, drive them, read
/// every acknowledged write back.
async fn one_round<S: Side>(
    side: &S,
    clients: usize,
    prefix: &str,
    budget: Budget,
) -> Result<Round> {
    let leader = side.leader(LEADER_TIMEOUT).await?;
    let mut writers = Vec::with_capacity(clients);
    for _ in 0..clients {
        writers.push(side.writer(leader, prefix).await?);
    }
    let round = load::drive(writers, budget).await;
    if round.acknowledged.is_empty() {
        bail!(
            "{} acknowledged no write at {clients} client(s): {}",
            S::NAME,
            round.first_error.as_deref().unwrap_or("no error either")
        );
    }
    if let Some(error) = &round.first_error {
        eprintln!(
            "compare: {} at {clients} client(s): {} write(s) failed, the first: {error}",
            S::NAME,
            round.errors
        );
    }
    side.check_present(leader, prefix, &round.acknowledged)
        .await
        .with_context(|| format!("{} at {clients} client(s)", S::NAME))?;
    Ok(round)
}

/// `leader 1234 ms (2345), first write 1300 ms (2400)`.
fn recovery_summary(kills: &[Recovery]) -> String {
    let median = |mut v: Vec<Duration>| {
        v.sort_unstable();
        let max = v.last().copied().unwrap_or_default();
        (load::percentile(&v, 0.5), max)
    };
    let (leader, leader_max) = median(kills.iter().map(|r| r.to_leader).collect());
    let (write, write_max) = median(kills.iter().map(|r| r.to_write).collect());
    format!(
        "new leader {} ms ({}), first write {} ms ({})",
        leader.as_millis(),
        leader_max.as_millis(),
        write.as_millis(),
        write_max.as_millis()
    )
}
