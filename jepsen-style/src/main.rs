//! `monk-drills`: runs many simulated drills and reports them (issue 13 item 7).
//!
//!     cargo run -p monk-drills --release -- sim --seeds 200 [--first-seed S]
//!         [--peers 3] [--steps 6] [-o json]
//!
//! Each seed draws a fault schedule and runs it on a fresh in-process cluster with
//! writers and register clients (`monk_drills::sim`); a line per case, then the sums
//! as a table, or with `-o json` one JSON object on the last line of stdout
//! (`monk_drills::summary`). Any failing case makes the exit code 1 and prints the
//! command that replays its seed. The real-process drills run as tests on the
//! three-host bed (`jepsen-style/tests/partitions.rs`, `testkit/tests/fencing.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use monk_drills::limits::{CASES_MAX, STEPS_MAX};
use monk_drills::sim::run_case;
use monk_drills::summary::Summary;

#[derive(Parser, Debug)]
#[command(
    name = "monk-drills",
    about = "Break simulated clusters on purpose and report"
)]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Seeded fault schedules on in-process clusters.
    Sim {
        /// How many seeds (cases) to run.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=i64::from(CASES_MAX)))]
        seeds: u32,
        /// The first seed (default: the clock); seeds follow it one by one.
        #[arg(long)]
        first_seed: Option<u64>,
        /// Peers in each cluster.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(3..=7))]
        peers: u32,
        /// Most fault steps a schedule draws.
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=STEPS_MAX as i64))]
        steps: u32,
        /// `json`: one JSON object on the last line instead of the table.
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let Mode::Sim {
        seeds,
        first_seed,
        peers,
        steps,
        output,
    } = Cli::parse().command;
    let first = first_seed.unwrap_or_else(monk_drills::schedule::first_seed);
    let mut summary = Summary::default();
    for case in 0..u64::from(seeds) {
        let seed = first.wrapping_add(case);
        match run_case(seed, peers as usize, steps as usize).await {
            Ok(report) => {
                eprintln!("seed {seed}: {}", report.findings);
                summary.add(&report);
            }
            Err(why) => {
                eprintln!("seed {seed}: did not recover: {why}");
                summary.add_unrecovered(seed, why);
            }
        }
    }
    match output.as_str() {
        "json" => println!("{}", summary.to_json()),
        _ => print!("{}", summary.to_table()),
    }
    if summary.failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    for (seed, _) in &summary.failures {
        eprintln!(
            "replay: cargo run -p monk-drills --release -- sim --seeds 1 --first-seed {seed} --peers {peers} --steps {steps}"
        );
    }
    ExitCode::FAILURE
}
