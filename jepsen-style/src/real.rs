//! Real drills (`monk-drills real`): the three-host bed (network namespaces on a
//! bridge, a `monkd` and a `dockerd` each, TLS), one register written and read through
//! the real `monk` CLI by a client on every host, while a loop seeded like the
//! simulation injects the faults asked for, one at a time, each held for a while and
//! then healed: a host cut off the bridge, a peer SIGKILLed and restarted on its data
//! dir, a peer SIGSTOPped and resumed, a peer restarted with its wall clock skewed, a
//! peer restarted on a disk that fills and then given room again, a peer SIGKILLed on
//! a data dir that loses what it had not synced (`power-loss`).
//! Afterwards every host reads once more, the history is checked for linearizability,
//! the hosts' final reads must agree, and each heal's recovery (until a write is
//! acknowledged again) is measured. The bed partitions test
//! (`tests/partitions.rs`) uses the same clients with fixed one-way, leader and
//! bridge partitions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use monk_node::network::splitmix64;
use monk_testkit::cli::monk;
use monk_testkit::hosts::{HostBed, IMAGE};
use monk_testkit::lossyfs::LossyMount;

use crate::limits::{
    REAL_COMMAND_TIMEOUT, REAL_DISK_MIB, REAL_DISK_ROOM_BYTES, REAL_FAULT_HOLD_MS_MAX,
    REAL_FAULT_HOLD_MS_MIN, REAL_FINAL_READ_TIMEOUT, REAL_QUIET, REAL_SKEW_MS,
};
use crate::linearizability::{check, Op, Operation, Outcome, Report};

/// The register's template path.
pub const KEY: &str = "register/k0";
/// Every how many operations a client writes (the others read).
const WRITE_EVERY: usize = 3;

/// A fault the real runner can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RealFault {
    /// A host cut off the bridge (its peer and engine keep running).
    Partition,
    /// A peer SIGKILLed, restarted on its data dir after the hold.
    Kill,
    /// A peer SIGSTOPped, SIGCONTed after the hold.
    Pause,
    /// A peer restarted with its wall clock skewed by [`REAL_SKEW_MS`], and back.
    Skew,
    /// A peer restarted on a disk with [`REAL_DISK_ROOM_BYTES`] free: it exits when
    /// the disk fills (or cannot start); after the hold it is given room and restarted.
    DiskFull,
    /// A peer SIGKILLed and what it had not synced dropped (its data dir is then on a
    /// `monk_testkit::lossyfs` mount), restarted after the hold.
    PowerLoss,
}

impl RealFault {
    pub fn name(self) -> &'static str {
        match self {
            RealFault::Partition => "partition",
            RealFault::Kill => "kill",
            RealFault::Pause => "pause",
            RealFault::Skew => "skew",
            RealFault::DiskFull => "disk-full",
            RealFault::PowerLoss => "power-loss",
        }
    }

    /// Parses `partition,kill,pause,skew,disk-full,power-loss` (any subset, any order;
    /// not both of the last two, which each put the data dir on its own filesystem).
    pub fn parse_list(list: &str) -> Result<Vec<RealFault>, String> {
        let all = [
            RealFault::Partition,
            RealFault::Kill,
            RealFault::Pause,
            RealFault::Skew,
            RealFault::DiskFull,
            RealFault::PowerLoss,
        ];
        let faults: Vec<RealFault> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                all.into_iter().find(|f| f.name() == s).ok_or_else(|| {
                    format!(
                        "unknown fault {s:?}: choose from partition, kill, pause, skew, disk-full, power-loss"
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        if faults.contains(&RealFault::DiskFull) && faults.contains(&RealFault::PowerLoss) {
            return Err("disk-full and power-loss cannot run together: each puts the data dir on its own filesystem (a tmpfs, a lossy mount); run them in two runs".into());
        }
        Ok(faults)
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RealOptions {
    pub hosts: usize,
    pub duration: Duration,
    pub faults: Vec<RealFault>,
    pub seed: u64,
}

/// What a real run did and found.
#[derive(Debug)]
pub struct RealReport {
    pub history: Vec<Operation>,
    pub linearizability: Report,
    /// Faults injected, by kind.
    pub injected: BTreeMap<&'static str, u32>,
    /// For each heal, the time until a write was acknowledged again (ms).
    pub recovery_ms: Vec<u64>,
    /// Leader changes seen between one heal and the next.
    pub leader_changes: u32,
    /// Hosts whose final read disagreed with the first host's.
    pub divergent_reads: usize,
}

/// The register's definition holding `value`.
pub fn definition(value: u64) -> String {
    format!(
        "namespace: register\nk0:\n  defines: runnable\n  variables:\n    value: {value}\n  containers:\n    main:\n      image: {IMAGE}\n"
    )
}

/// The register's value as `monk dump` on `addr` shows it; `Err` when the read failed.
pub fn read(addr: &str) -> Result<Option<u64>, String> {
    let o = monk(addr, &["dump", KEY, "-o", "json"]);
    if !o.status.success() {
        let why = String::from_utf8_lossy(&o.stderr).into_owned();
        return match why.contains("no template at") || why.contains("no definition") {
            true => Ok(None),
            false => Err(why),
        };
    }
    let tree: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    Ok(tree["variables"]["value"].as_u64())
}

/// The register clients of a bed and their shared history.
pub struct CliClients {
    pub history: Arc<Mutex<Vec<Operation>>>,
    pub started: Instant,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl CliClients {
    /// Loads the register with 1 through the first host, then starts one client per
    /// host: every [`WRITE_EVERY`]th operation loads a unique value, the others read.
    pub fn start(bed: &HostBed, dir: &Path) -> Result<CliClients, String> {
        let initial = dir.join("initial.yaml");
        std::fs::write(&initial, definition(1)).map_err(|e| e.to_string())?;
        let path = initial.to_str().ok_or("a non-UTF-8 temporary path")?;
        let o = monk(&bed.hosts[0].addr, &["load", path]);
        if !o.status.success() {
            return Err(format!(
                "cannot load the register: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        let started = Instant::now();
        let history: Arc<Mutex<Vec<Operation>>> = Arc::new(Mutex::new(vec![Operation {
            client: 99,
            key: KEY.into(),
            op: Op::Write { value: 1 },
            stale: false,
            invoked_us: 0,
            completed_us: 0,
            outcome: Outcome::Ok,
        }]));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..bed.hosts.len())
            .map(|client| {
                let (addr, dir, history, stop) = (
                    bed.hosts[client].addr.clone(),
                    dir.to_path_buf(),
                    history.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    let micros = || started.elapsed().as_micros() as u64;
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let invoked_us = micros();
                        let (op, outcome) = if n.is_multiple_of(WRITE_EVERY) {
                            write(&addr, &dir, client, n)
                        } else {
                            match read(&addr) {
                                Ok(seen) => (Op::Read { seen }, Outcome::Ok),
                                Err(_) => (Op::Read { seen: None }, Outcome::Unknown),
                            }
                        };
                        history
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(Operation {
                                client,
                                key: KEY.into(),
                                op,
                                stale: false,
                                invoked_us,
                                completed_us: micros(),
                                outcome,
                            });
                    }
                })
            })
            .collect();
        Ok(CliClients {
            history,
            started,
            stop,
            threads,
        })
    }

    /// Microseconds since the clients started.
    pub fn micros(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Stops the clients, then every host reads once more (retrying until it answers,
    /// up to [`REAL_FINAL_READ_TIMEOUT`]); returns the history and the final reads.
    pub fn finish(mut self, bed: &HostBed) -> Result<(Vec<Operation>, Vec<Option<u64>>), String> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in std::mem::take(&mut self.threads) {
            thread
                .join()
                .map_err(|_| "a register client panicked".to_string())?;
        }
        let mut finals = Vec::new();
        for (i, host) in bed.hosts.iter().enumerate() {
            let deadline = Instant::now() + REAL_FINAL_READ_TIMEOUT;
            loop {
                let invoked_us = self.micros();
                if let Ok(seen) = read(&host.addr) {
                    self.history
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Operation {
                            client: 10 + i,
                            key: KEY.into(),
                            op: Op::Read { seen },
                            stale: false,
                            invoked_us,
                            completed_us: self.micros(),
                            outcome: Outcome::Ok,
                        });
                    finals.push(seen);
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!("{} never answered after healing", host.name));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        let history = self
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok((history, finals))
    }
}

/// One write through the CLI: a unique value loaded. A failed write may still have
/// been committed (a timeout, a leader lost after appending): unknown, never failed.
fn write(addr: &str, dir: &Path, client: usize, n: usize) -> (Op, Outcome) {
    let value = (client as u64 + 1) * 1_000_000 + n as u64;
    let file = dir.join(format!("w{client}-{n}.yaml"));
    let written = std::fs::write(&file, definition(value)).is_ok();
    let outcome = match file.to_str() {
        Some(path) if written && monk(addr, &["load", path]).status.success() => Outcome::Ok,
        _ => Outcome::Unknown,
    };
    (Op::Write { value }, outcome)
}

/// Puts each peer's data dir on a lossy mount (for power-loss faults): the peer is
/// killed, its data dir becomes the mount's backing directory (all of it durable), the
/// mount takes its place, and the peer restarts on it.
fn lossy_data_dirs(bed: &mut HostBed) -> Result<Vec<LossyMount>, String> {
    let mut disks = Vec::new();
    for peer in &mut bed.peers {
        peer.kill();
        let backing = peer.data_dir.with_extension("backing");
        std::fs::rename(&peer.data_dir, &backing)
            .map_err(|e| format!("{}: {e}", backing.display()))?;
        disks.push(LossyMount::mount(&backing, &peer.data_dir).map_err(|e| e.to_string())?);
        peer.spawn()?;
    }
    Ok(disks)
}

/// Injects `fault` on host `i` and holds it for `hold`, then heals it. `disks`: the
/// peers' lossy data dirs, when power losses are drilled.
fn inject(
    bed: &mut HostBed,
    disks: &mut [LossyMount],
    fault: RealFault,
    i: usize,
    hold: Duration,
) -> Result<(), String> {
    match fault {
        RealFault::PowerLoss => {
            bed.peers[i].kill();
            let disk = disks
                .get_mut(i)
                .ok_or("a power loss on a peer without a lossy data dir")?;
            let lost = disk.power_loss().map_err(|e| e.to_string())?;
            eprintln!("        the power loss undid {lost:?}");
            disk.remount().map_err(|e| e.to_string())?;
            std::thread::sleep(hold);
            bed.peers[i].spawn()
        }
        RealFault::Partition => {
            bed.cut(i)?;
            std::thread::sleep(hold);
            bed.heal(i)
        }
        RealFault::Kill => {
            bed.peers[i].kill();
            std::thread::sleep(hold);
            bed.peers[i].spawn()
        }
        RealFault::Pause => {
            bed.peers[i].pause();
            std::thread::sleep(hold);
            bed.peers[i].resume();
            Ok(())
        }
        RealFault::Skew => {
            let peer = &mut bed.peers[i];
            peer.kill();
            peer.env
                .push(("MONK_TEST_CLOCK_OFFSET_MS".into(), REAL_SKEW_MS.to_string()));
            peer.spawn()?;
            std::thread::sleep(hold);
            peer.kill();
            peer.env.retain(|(k, _)| k != "MONK_TEST_CLOCK_OFFSET_MS");
            peer.spawn()
        }
        RealFault::DiskFull => {
            let peer = &mut bed.peers[i];
            peer.kill();
            let on_disk = onto_full_disk(&peer.data_dir)?;
            peer.spawn()?;
            std::thread::sleep(hold);
            if let Some(status) = peer.wait_exit(Duration::ZERO) {
                eprintln!("         the peer on the full disk exited: {status}");
            }
            peer.kill();
            off_full_disk(&peer.data_dir, &on_disk)?;
            peer.spawn()
        }
    }
}

/// Moves the data dir `dir` (its peer stopped) onto a small tmpfs mounted in its
/// place, which a ballast file fills but for [`REAL_DISK_ROOM_BYTES`]; returns where
/// the original went.
fn onto_full_disk(dir: &Path) -> Result<PathBuf, String> {
    let on_disk = dir.with_extension("on-disk");
    std::fs::rename(dir, &on_disk).map_err(|e| format!("move {}: {e}", dir.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let size = format!("size={}m", REAL_DISK_MIB);
    command(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(dir),
    )?;
    command(Command::new("cp").arg("-a").arg(on_disk.join(".")).arg(dir))?;
    let free = monk_node::storage::free_bytes(dir).map_err(|e| e.to_string())?;
    let ballast = vec![0u8; free.saturating_sub(REAL_DISK_ROOM_BYTES) as usize];
    std::fs::write(dir.join(BALLAST), ballast).map_err(|e| format!("ballast: {e}"))?;
    Ok(on_disk)
}

/// "The operator made room": the data dir's files, written on the tmpfs while it
/// filled, go back onto the real disk in `dir`'s place and the tmpfs goes.
fn off_full_disk(dir: &Path, on_disk: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(dir.join(BALLAST));
    std::fs::remove_dir_all(on_disk).map_err(|e| format!("remove {}: {e}", on_disk.display()))?;
    std::fs::create_dir_all(on_disk).map_err(|e| e.to_string())?;
    command(Command::new("cp").arg("-a").arg(dir.join(".")).arg(on_disk))?;
    command(Command::new("umount").arg(dir))?;
    std::fs::remove_dir(dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    std::fs::rename(on_disk, dir).map_err(|e| format!("move back {}: {e}", dir.display()))
}

/// The file that takes a full disk's space.
const BALLAST: &str = "ballast";

/// Runs `command`, bounded; its failure with its stderr.
fn command(command: &mut Command) -> Result<(), String> {
    let what = format!("{command:?}");
    let o = monk_testkit::hosts::run(command, REAL_COMMAND_TIMEOUT)?;
    match o.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    }
}

/// Runs the drill on a bed started under `root` (which keeps the engines' and peers'
/// data and logs).
pub fn run(root: &Path, options: &RealOptions) -> Result<RealReport, String> {
    if options.faults.is_empty() {
        return Err(
            "no faults to inject: pass --faults partition,kill,pause,skew,disk-full,power-loss"
                .into(),
        );
    }
    // Before the bed, so the peers are gone before their disks unmount.
    let mut disks = Vec::new();
    let mut bed = HostBed::start(root, options.hosts)?;
    if options.faults.contains(&RealFault::PowerLoss) {
        disks = lossy_data_dirs(&mut bed)?;
    }
    let dir = root.join("client");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let clients = CliClients::start(&bed, &dir)?;
    let mut draws = options.seed;
    let mut injected: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut heals_us = Vec::new();
    let mut leaders = Vec::new();
    while clients.started.elapsed() + REAL_QUIET < options.duration {
        std::thread::sleep(REAL_QUIET);
        let fault = options.faults[splitmix64(&mut draws) as usize % options.faults.len()];
        let host = splitmix64(&mut draws) as usize % options.hosts;
        let span = REAL_FAULT_HOLD_MS_MAX - REAL_FAULT_HOLD_MS_MIN;
        let hold = Duration::from_millis(REAL_FAULT_HOLD_MS_MIN + splitmix64(&mut draws) % span);
        eprintln!(
            "{:>6.1} s: {} {} for {} ms",
            clients.started.elapsed().as_secs_f64(),
            fault.name(),
            bed.hosts[host].name,
            hold.as_millis()
        );
        inject(&mut bed, &mut disks, fault, host, hold)?;
        heals_us.push(clients.micros());
        *injected.entry(fault.name()).or_default() += 1;
        leaders.extend(bed.leader((host + 1) % options.hosts));
    }
    std::thread::sleep(options.duration.saturating_sub(clients.started.elapsed()));
    let (history, finals) = clients.finish(&bed)?;
    let leader_changes = leaders.windows(2).filter(|w| w[0] != w[1]).count() as u32;
    let divergent_reads = finals.iter().filter(|v| **v != finals[0]).count();
    let recovery_ms = heals_us
        .iter()
        .filter_map(|healed| recovery_after(&history, *healed))
        .collect();
    Ok(RealReport {
        linearizability: check(&history),
        history,
        injected,
        recovery_ms,
        leader_changes,
        divergent_reads,
    })
}

/// Milliseconds from `healed_us` until the first write acknowledged after it.
fn recovery_after(history: &[Operation], healed_us: u64) -> Option<u64> {
    history
        .iter()
        .filter(|o| matches!(o.op, Op::Write { .. }) && o.outcome == Outcome::Ok)
        .filter(|o| o.completed_us >= healed_us)
        .map(|o| (o.completed_us - healed_us) / 1_000)
        .min()
}

/// The `q`th quantile (0..=1) of `samples`, nearest rank; 0 when empty.
pub fn quantile(samples: &[u64], q: f64) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl RealReport {
    /// The runner's JSON line: the same fields as the simulation's summary, where
    /// `lost` and `duplicated` are what the register check can tell (an acknowledged
    /// write lost, or applied twice, makes the history non-linearizable), and
    /// `split_brain_seconds` is not measured here (`testkit/tests/fencing.rs` does).
    pub fn to_json(&self) -> serde_json::Value {
        let acknowledged = self
            .history
            .iter()
            .filter(|o| o.outcome == Outcome::Ok)
            .count();
        let unknown = self.history.len() - acknowledged;
        serde_json::json!({
            "mode": "real",
            "runs": 1,
            "operations": self.history.len(),
            "acknowledged": acknowledged,
            "unknown": unknown,
            "lost": null,
            "duplicated": null,
            "linearizability_violations": u32::from(self.linearizability.is_violation()),
            "reads_checked": self.linearizability.reads,
            "digest_divergences": self.divergent_reads,
            "split_brain_seconds": null,
            "elections": self.leader_changes,
            "faults": self.injected,
            "recovery_ms_p50": quantile(&self.recovery_ms, 0.5),
            "recovery_ms_p99": quantile(&self.recovery_ms, 0.99),
        })
    }

    /// Why the run failed, if it did.
    pub fn failure(&self) -> Option<String> {
        if self.linearizability.is_violation() {
            return Some(format!("not linearizable: {}", self.linearizability));
        }
        if self.divergent_reads > 0 {
            return Some(format!(
                "{} hosts read another value at the end",
                self.divergent_reads
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_and_unknown_faults_are_named() {
        assert_eq!(
            RealFault::parse_list("kill, partition").unwrap(),
            vec![RealFault::Kill, RealFault::Partition]
        );
        let e = RealFault::parse_list("partition,flood").unwrap_err();
        assert!(e.contains("\"flood\""), "{e}");
        let e = RealFault::parse_list("disk-full,kill,power-loss").unwrap_err();
        assert!(e.contains("cannot run together"), "{e}");
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[30, 10, 20], 0.5), 20);
        assert_eq!(quantile(&[30, 10, 20], 0.99), 30);
    }

    #[test]
    fn recovery_is_the_first_acknowledged_write_after_the_heal() {
        let op = |op, completed_us, outcome| Operation {
            client: 0,
            key: KEY.into(),
            op,
            stale: false,
            invoked_us: 0,
            completed_us,
            outcome,
        };
        let history = vec![
            op(Op::Write { value: 2 }, 1_000_000, Outcome::Ok),
            op(Op::Read { seen: Some(2) }, 3_000_000, Outcome::Ok),
            op(Op::Write { value: 3 }, 3_500_000, Outcome::Unknown),
            op(Op::Write { value: 4 }, 4_250_000, Outcome::Ok),
        ];
        assert_eq!(recovery_after(&history, 2_000_000), Some(2_250));
        assert_eq!(recovery_after(&history, 5_000_000), None);
    }
}
