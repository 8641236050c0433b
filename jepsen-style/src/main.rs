//! `monk-drills`: runs many simulated drills and reports them (issue 13 item 7).
//!
//!     cargo run -p monk-drills --release -- sim --seeds 200 [--first-seed S]
//!         [--peers 3] [--steps 6] [-o json]
//!
//! Each seed draws a fault schedule and runs it on a fresh in-process cluster with
//! writers and register clients, on simulated time (`monk_drills::sim::simulate`: one
//! seed, one schedule, one trace); a line per case, then the sums
//! as a table, or with `-o json` one JSON object on the last line of stdout
//! (`monk_drills::summary`). Any failing case makes the exit code 1 and prints the
//! command that replays its seed. The real-process drills run as tests on the
//! three-host bed (`jepsen-style/tests/partitions.rs`, `testkit/tests/fencing.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use monk_drills::limits::{CASES_MAX, STEPS_MAX};
use monk_drills::sim::simulate_case;
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

fn main() -> ExitCode {
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
        let started = std::time::Instant::now();
        match simulate_case(seed, peers as usize, steps as usize) {
            Ok(report) => {
                eprintln!(
                    "seed {seed} ({} ms simulated in {} ms): {}",
                    report.lasted.as_millis(),
                    started.elapsed().as_millis(),
                    report.findings
                );
                if let Some(dir) = &report.kept {
                    eprintln!(
                        "seed {seed}: data dirs and trace kept in {0} (monk verify --data-dir {0}/p0 --data-dir {0}/p1 ...; monk replay --data-dir {0}/p0)",
                        dir.display()
                    );
                }
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
