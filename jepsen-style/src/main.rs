//! `monk-drills`: runs many simulated drills and reports them (issue 13 item 7).
//!
//!     cargo run -p monk-drills --release -- sim --seeds 200 [--first-seed S]
//!         [--peers 3] [--steps 6] [-o json]
//!     monk-drills real --hosts 3 --duration SECS --faults partition,kill,pause,skew,power-loss
//!         [--seed S] [-o json]
//!
//! Each seed draws a fault schedule and runs it on a fresh in-process cluster with
//! writers and register clients, on simulated time (`monk_drills::sim::simulate`: one
//! seed, one schedule, one trace); a line per case, then the sums
//! as a table, or with `-o json` one JSON object on the last line of stdout
//! (`monk_drills::summary`). Any failing case makes the exit code 1 and prints the
//! command that replays its seed. `real` runs `monk_drills::real` on the three-host bed
//! (root, `ip netns`, a Docker engine) and prints its JSON; a failed run keeps the bed's
//! data and logs.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use monk_drills::limits::{CASES_MAX, JOBS_MAX, STEPS_MAX};
use monk_drills::real::{RealFault, RealOptions};
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
#[allow(clippy::large_enum_variant)]
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
        /// Seeds run at once, each on its own thread and single-threaded runtime
        /// (default: the machine's cores). A seed's run is the same whatever runs
        /// beside it.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=JOBS_MAX as i64))]
        jobs: Option<u32>,
        /// `json`: one JSON object on the last line instead of the table.
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
    /// Seeded faults on the three-host bed (root, `ip netns`, Docker): real `monkd`
    /// processes, a register written and read through the real `monk` CLI.
    Real {
        /// Hosts in the bed.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(3..=5))]
        hosts: u32,
        /// How long the clients run, in seconds.
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(10..=86_400))]
        duration: u64,
        /// Which faults to inject: partition, kill, pause, skew, disk-full, power-loss
        /// (comma-separated; disk-full and power-loss not together).
        #[arg(long, default_value = "partition,kill,pause,skew,disk-full")]
        faults: String,
        /// The seed of the faults, hosts and holds (default: the clock).
        #[arg(long)]
        seed: Option<u64>,
        /// `json`: one JSON object on the last line of stdout.
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Mode::Sim {
            seeds,
            first_seed,
            peers,
            steps,
            jobs,
            output,
        } => {
            let jobs = jobs.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |j| j as usize,
            );
            sim(seeds, first_seed, peers, steps, jobs.min(JOBS_MAX), &output)
        }
        Mode::Real {
            hosts,
            duration,
            faults,
            seed,
            output,
        } => real(hosts, duration, &faults, seed, &output),
    }
}

/// `monk-drills real`: one run on the bed; exit 1 on a violation, 2 when it cannot run.
fn real(hosts: u32, duration: u64, faults: &str, seed: Option<u64>, output: &str) -> ExitCode {
    let faults = match RealFault::parse_list(faults) {
        Ok(faults) => faults,
        Err(e) => {
            eprintln!("monk-drills: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = seed.unwrap_or_else(monk_drills::schedule::first_seed);
    let options = RealOptions {
        hosts: hosts as usize,
        duration: std::time::Duration::from_secs(duration),
        faults,
        seed,
    };
    if let Some(why) = monk_testkit::hosts::unavailable() {
        eprintln!("monk-drills: the host bed cannot run here: {why}");
        return ExitCode::from(2);
    }
    let root = match tempfile::Builder::new()
        .prefix("monk-drills-real-")
        .tempdir()
    {
        Ok(root) => root,
        Err(e) => {
            eprintln!("monk-drills: cannot make a temporary directory: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("real run, seed {seed}, {hosts} hosts, {duration} s");
    let report = match monk_drills::real::run(root.path(), &options) {
        Ok(report) => report,
        Err(e) => {
            let kept = root.keep();
            eprintln!(
                "monk-drills: the run did not complete: {e}\n(bed data and logs kept in {})",
                kept.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let summary = report.to_json();
    match output {
        "json" => println!("{summary}"),
        _ => println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        ),
    }
    match report.failure() {
        None => ExitCode::SUCCESS,
        Some(why) => {
            let kept = root.keep();
            eprintln!(
                "seed {seed}: {why}\n(bed data and logs kept in {})",
                kept.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// `monk-drills sim`: `seeds` simulated cases; exit 1 if any fails.
fn sim(
    seeds: u32,
    first_seed: Option<u64>,
    peers: u32,
    steps: u32,
    jobs: usize,
    output: &str,
) -> ExitCode {
    let first = first_seed.unwrap_or_else(monk_drills::schedule::first_seed);
    let mut summary = Summary::default();
    // Workers take the next case from a shared counter and send back its result;
    // this thread prints and sums them as they come (in completion order).
    let next = std::sync::atomic::AtomicU64::new(0);
    let (results, finished) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let results = results.clone();
            let next = &next;
            scope.spawn(move || loop {
                let case = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if case >= u64::from(seeds) {
                    return;
                }
                let seed = first.wrapping_add(case);
                let started = std::time::Instant::now();
                let result = simulate_case(seed, peers as usize, steps as usize);
                if results.send((seed, started.elapsed(), result)).is_err() {
                    return;
                }
            });
        }
        drop(results);
        for (seed, wall, result) in finished {
            add_case(&mut summary, seed, wall, result);
        }
    });
    summary.failures.sort_by_key(|(seed, _)| *seed);
    match output {
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

/// Prints one finished case on stderr and adds it to `summary`.
fn add_case(
    summary: &mut Summary,
    seed: u64,
    wall: std::time::Duration,
    result: Result<monk_drills::sim::CaseReport, String>,
) {
    {
        match result {
            Ok(report) => {
                eprintln!(
                    "seed {seed} ({} ms simulated in {} ms): {}",
                    report.lasted.as_millis(),
                    wall.as_millis(),
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
}
