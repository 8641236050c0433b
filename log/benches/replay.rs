//! Replay speed and peak memory (harness = false): writes a data dir of
//! `MONK_BENCH_ENTRIES` entries (default 1,000,000) with the live store code, then
//! replays it from the start in a child process (so the peak resident memory it
//! reports is the replay's alone) and prints entries per second.
//!
//! Run: `cargo bench --workspace --bench replay` (set `MONK_BENCH_ENTRIES` for a
//! quicker run).

use std::path::Path;
use std::process::Command as Process;
use std::time::Instant;

use monk_log::replay::{Replayer, Start, Target};
use monk_log::{DataDirReader, RaftEntry};
use monk_scripting::tree::Tree;
use monk_statemachine::{digest, Capacity, Command, LoadedTemplate, SecretScope};
use monk_testkit::builders::entry;
use monk_testkit::datadir::{blank, membership, DataDirWriter};

/// Entries in the benchmark log unless `MONK_BENCH_ENTRIES` says otherwise.
const ENTRIES_DEFAULT: u64 = 1_000_000;
/// Entries per append batch while writing the data dir (one synced write each).
const APPEND_BATCH: u64 = 10_000;
/// Distinct template paths the log cycles through (keeps the state a realistic size).
const TEMPLATE_PATHS: u64 = 500;
/// Set in the child process: the raft dir to replay.
const CHILD_ENV: &str = "MONK_BENCH_REPLAY_DIR";

/// A mix: 1% template loads, 1% secrets, 2% peer down/up, the rest half no-ops and
/// half peer-up observations.
fn command(index: u64) -> Command {
    match index % 100 {
        0 => Command::TemplatesLoaded {
            templates: vec![LoadedTemplate {
                path: format!("bench/t{}", index / 100 % TEMPLATE_PATHS),
                kind: "runnable".into(),
                definition: Tree::Map(vec![
                    ("defines".into(), Tree::Str("runnable".into())),
                    ("image".into(), Tree::Str(format!("app:{index}"))),
                    ("port".into(), Tree::Int(8080)),
                ]),
            }],
        },
        1 => Command::SecretSet {
            name: format!("s{}", index / 100 % 50),
            scope: SecretScope::Global,
            sealed: vec![7; 64],
        },
        2 => Command::PeerDown {
            peer: 2,
            reason: "no heartbeat for 6s".into(),
        },
        3 => Command::PeerUp { peer: 2 },
        n if n % 2 == 0 => Command::Noop,
        _ => Command::PeerUp { peer: 2 },
    }
}

fn write(raft_dir: &Path, entries: u64) {
    let mut writer = DataDirWriter::create(raft_dir).expect("create data dir");
    let start = vec![
        membership(0, 0),
        blank(1, 1),
        entry(
            1,
            2,
            Command::ClusterCreated {
                name: "bench".into(),
                first_peer_name: "p1".into(),
                first_peer_address: "h:1".into(),
                tags: vec![],
                capacity: Capacity::default(),
                facts: None,
                admin_token_sha256: None,
                overlay_range: None,
                overlay: None,
                open_network: false,
            },
        ),
        entry(
            1,
            3,
            Command::JoinTokenIssued {
                token_sha256: "t".into(),
                expires_at_ms: None,
            },
        ),
        entry(
            1,
            4,
            Command::PeerJoined {
                name: "p2".into(),
                address: "h:2".into(),
                token_sha256: "t".into(),
                tags: vec![],
                capacity: Capacity::default(),
                facts: None,
                admitted_at_ms: None,
                overlay: None,
            },
        ),
    ];
    let mut next = start.len() as u64;
    writer.append(start).expect("append");
    while next < entries {
        let end = (next + APPEND_BATCH).min(entries);
        let batch: Vec<RaftEntry> = (next..end).map(|i| entry(1, i, command(i))).collect();
        writer.append(batch).expect("append");
        next = end;
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn replay_child(raft_dir: &Path) {
    let opening = Instant::now();
    let reader = DataDirReader::open(raft_dir).expect("open read-only");
    let opened = opening.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut replayer = Replayer::open(&reader, Target::End, Start::Nearest).expect("plan");
    replayer.run().expect("replay");
    let elapsed = started.elapsed().as_secs_f64();
    let state = replayer.into_state();
    let applied = state.last_applied_index() + 1;
    println!(
        "replay: {applied} entries in {elapsed:.3} s = {:.0} entries/s (opening the data dir read-only took {opened:.3} s more); peak RSS {:.1} MiB; {} templates, {} secrets; digest {}",
        applied as f64 / elapsed,
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
        state.templates().len(),
        state.secrets().len(),
        &digest(&state)[..16],
    );
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        replay_child(Path::new(&dir));
        return;
    }
    let entries = std::env::var("MONK_BENCH_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ENTRIES_DEFAULT);
    let root = tempfile::tempdir().expect("temp dir");
    let raft_dir = root.path().join("raft");
    let started = Instant::now();
    write(&raft_dir, entries);
    let size: u64 = std::fs::read_dir(&raft_dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "wrote {entries} entries ({:.1} MiB on disk) in {:.1} s",
        size as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    let exe = std::env::current_exe().expect("own path");
    let status = Process::new(exe)
        .env(CHILD_ENV, &raft_dir)
        .status()
        .expect("run the replay child");
    assert!(status.success(), "replay child failed: {status}");
}
