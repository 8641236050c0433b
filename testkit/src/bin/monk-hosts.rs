//! `monk-hosts up [-o json] [--hosts N] [--dir D] | down [--dir D]`: the test bed of
//! `monk_testkit::hosts` for a person (`scripts/hosts` builds and runs it). `up` starts
//! the hosts and leaves them running (state in D, default `.monk/hosts`); run again, it
//! prints the bed that is up. With `-o json` its last line on stdout is
//! `{"hosts": [{"name", "netns", "addr", "docker_host"}], "cluster", "credentials"}`.
//! `down` stops and removes everything the bed made, and D. `hold` starts a bed owned
//! by this process (not kept) with a container on its second host, prints `SUFFIX DIR
//! PID` (the bed's suffix and dir, the container's process), and holds it until killed
//! or [`HOLD_FOR`] passes: what a test process SIGKILLed with a bed up leaves, for the
//! sweep's test and for trying the sweep by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use monk_testkit::hosts::{kept_in, tear_down_dir, HostBed, HOSTS_MAX};

const USAGE: &str =
    "usage: monk-hosts up [-o json] [--hosts N] [--dir D] | down [--dir D] | hold [--hosts N] [--dir D]";

/// Longest `hold` keeps its bed before tearing it down itself.
const HOLD_FOR: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    Down,
    Hold,
}

struct Args {
    mode: Mode,
    json: bool,
    hosts: usize,
    dir: PathBuf,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("up") => Mode::Up,
        Some("down") => Mode::Down,
        Some("hold") => Mode::Hold,
        _ => return Err(USAGE.into()),
    };
    let mut parsed = Args {
        mode,
        json: false,
        hosts: 3,
        dir: PathBuf::from(".monk/hosts"),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value; {USAGE}"));
        match flag.as_str() {
            "-o" | "--output" => parsed.json = value()? == "json",
            "--hosts" => {
                parsed.hosts = value()?
                    .parse()
                    .ok()
                    .filter(|n| (1..=HOSTS_MAX).contains(n))
                    .ok_or(format!("--hosts: 1 to {HOSTS_MAX}"))?
            }
            "--dir" => parsed.dir = PathBuf::from(value()?),
            _ => return Err(format!("unknown flag {flag}; {USAGE}")),
        }
    }
    Ok(parsed)
}

fn print(bed: &serde_json::Value, json: bool) {
    if json {
        println!("{bed}");
        return;
    }
    println!("{:<7} {:<24} {:<20} DOCKER_HOST", "NAME", "NETNS", "ADDR");
    let hosts = bed["hosts"].as_array().cloned().unwrap_or_default();
    for h in &hosts {
        println!(
            "{:<7} {:<24} {:<20} {}",
            h["name"].as_str().unwrap_or(""),
            h["netns"].as_str().unwrap_or(""),
            h["addr"].as_str().unwrap_or(""),
            h["docker_host"].as_str().unwrap_or("")
        );
    }
    if let (Some(credentials), Some(first)) = (bed["credentials"].as_str(), hosts.first()) {
        println!(
            "\nmonk: export MONK_CREDENTIALS={credentials} MONK_ADDR={}",
            first["addr"].as_str().unwrap_or("")
        );
    }
    if let Some(first) = hosts.first() {
        println!(
            "a host's engine: DOCKER_HOST={} docker ps",
            first["docker_host"].as_str().unwrap_or("")
        );
        println!(
            "a shell on a host: nsenter --net=/var/run/netns/{} bash",
            first["netns"].as_str().unwrap_or("")
        );
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.mode == Mode::Hold {
        return hold(&args);
    }
    if args.mode == Mode::Down {
        return match tear_down_dir(&args.dir) {
            Ok(true) => {
                eprintln!(
                    "hosts: everything of the bed in {} removed",
                    args.dir.display()
                );
                ExitCode::SUCCESS
            }
            Ok(false) => {
                eprintln!("hosts: no bed in {}", args.dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hosts: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(bed) = kept_in(&args.dir) {
        eprintln!("hosts: already up (scripts/hosts down removes it)");
        print(&bed, args.json);
        return ExitCode::SUCCESS;
    }
    if args.dir.join(monk_testkit::hosts::RECORD_FILE).exists() {
        // A record without its bed (a reboot, a crash during `up`): clear it first.
        if let Err(e) = tear_down_dir(&args.dir) {
            eprintln!("hosts: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(reason) = monk_testkit::hosts::unavailable() {
        eprintln!("hosts: cannot start a bed here: {reason}");
        return ExitCode::FAILURE;
    }
    let started = std::time::Instant::now();
    let bed = match HostBed::start(&args.dir, args.hosts).and_then(HostBed::keep) {
        Ok(bed) => bed,
        Err(e) => {
            eprintln!("hosts: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "hosts: {} hosts up in {:.1} s",
        args.hosts,
        started.elapsed().as_secs_f64()
    );
    print(&bed, args.json);
    ExitCode::SUCCESS
}

/// `hold`: see the module documentation.
fn hold(args: &Args) -> ExitCode {
    let bed = match HostBed::start(&args.dir, args.hosts.max(2)) {
        Ok(bed) => bed,
        Err(e) => {
            eprintln!("hosts: {e}");
            return ExitCode::FAILURE;
        }
    };
    let docker = |docker_args: &[&str]| -> Result<String, String> {
        let out = bed.hosts[1].docker(docker_args)?;
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
            false => Err(format!(
                "docker {docker_args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    };
    let image = monk_testkit::hosts::IMAGE;
    let started = docker(&["run", "-d", "--name", "orphan", image, "sleep", "600"])
        .and_then(|_| docker(&["inspect", "-f", "{{.State.Pid}}", "orphan"]));
    match started {
        Ok(pid) => println!("{} {} {pid}", bed.suffix, bed.dir.display()),
        Err(e) => {
            eprintln!("hosts: {e}");
            return ExitCode::FAILURE;
        }
    }
    std::thread::sleep(HOLD_FOR);
    ExitCode::SUCCESS
}
