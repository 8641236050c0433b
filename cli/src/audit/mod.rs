//! The offline audit commands `monk log`, `replay`, `diff`, `history`, `verify` and
//! `snapshot inspect`: their flags, the online fetch of a peer's Raft data, and their
//! tables and JSON. The forensics themselves are `monk_audit`'s; each submodule here
//! parses one command's flags, calls the library and renders what it found.
//!
//! Secrets are shown by name only (the library's `RedactedState`). A corrupt entry
//! stops a command with its index and byte offset after everything before it has been
//! printed (exit code 1).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use monk_audit::time::parse_rfc3339;
use monk_audit::{DataDirReader, Target};
use serde::Serialize;
use serde_json::Value;

use crate::exit::Failure;

mod diff;
mod history;
mod log;
mod replay;
mod snapshot;
mod text;
mod verify;

/// The audit commands, flattened into `monk`'s top level.
#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// List log entries of a data dir (or of the addressed peer): index, term, time,
    /// actor, kind, summary, and the apply result recomputed offline.
    Log(log::LogArgs),
    /// Rebuild the state at an index or time from a data dir's (or the addressed
    /// peer's) snapshot and log.
    Replay(replay::ReplayArgs),
    /// What changed in the state between two indexes or times (A before B).
    Diff(diff::DiffArgs),
    /// Every entry that touched one entity (a template path, or `peer/ID`), oldest first.
    History(history::HistoryArgs),
    /// Compare several peers (data dirs or live --peer): entries and state digests at
    /// each common index.
    Verify(verify::VerifyArgs),
    /// Snapshot files and stored snapshots.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCmd),
}

#[derive(Args, Debug)]
pub struct DataDir {
    /// A peer's data dir (or its `raft/` directory); opened read-only, safe while monkd
    /// runs. Without it, the addressed peer (`--addr`) sends a consistent copy of its
    /// Raft data through the API and that copy is audited.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl DataDir {
    /// Opens the data dir read-only.
    fn open(&self) -> Result<DataDirReader, String> {
        let path = self
            .data_dir
            .as_deref()
            .ok_or_else(|| "no --data-dir and no peer data fetched".to_string())?;
        open(path)
    }
}

/// What an audit command printed, and whether it got through everything.
struct Report {
    stdout: String,
    /// A problem that stopped the command early (printed to stderr, exit 1).
    problem: Option<String>,
}

/// For the online forms: fetches the Raft data of the addressed peer (when a command
/// has no --data-dir) and of every `verify --peer` into `scratch`, and points the
/// command at those copies, so online and offline audits run the very same code.
pub async fn fetch_online(cmd: &mut AuditCmd, addr: &str, scratch: &Path) -> Result<(), Failure> {
    let dir = match cmd {
        AuditCmd::Log(a) => Some(&mut a.dir),
        AuditCmd::Replay(a) => Some(&mut a.dir),
        AuditCmd::Diff(a) => Some(&mut a.dir),
        AuditCmd::History(a) => Some(&mut a.dir),
        AuditCmd::Verify(_) | AuditCmd::Snapshot(_) => None,
    };
    if let Some(dir) = dir {
        if dir.data_dir.is_none() {
            let dest = scratch.join("addressed-peer");
            download(addr, &dest).await?;
            dir.data_dir = Some(dest);
        }
    }
    if let AuditCmd::Verify(v) = cmd {
        for (i, peer) in v.peers.iter().enumerate() {
            let dest = scratch.join(format!("peer-{i}"));
            download(peer, &dest).await?;
            v.data_dirs.push(dest);
        }
    }
    Ok(())
}

/// Whether [`fetch_online`] has anything to fetch for `cmd`.
pub fn needs_online(cmd: &AuditCmd) -> bool {
    match cmd {
        AuditCmd::Log(a) => a.dir.data_dir.is_none(),
        AuditCmd::Replay(a) => a.dir.data_dir.is_none(),
        AuditCmd::Diff(a) => a.dir.data_dir.is_none(),
        AuditCmd::History(a) => a.dir.data_dir.is_none(),
        AuditCmd::Verify(v) => !v.peers.is_empty(),
        AuditCmd::Snapshot(_) => false,
    }
}

async fn download(addr: &str, dest: &Path) -> Result<(), Failure> {
    let dialer = crate::credentials::dialer_for(addr)?;
    let mut client = monk_node::MonkClient::connect(addr, &dialer)
        .await
        .map_err(|e| {
            Failure::unreachable(format!("{e} (give --data-dir to audit a data dir offline)"))
        })?;
    client
        .export_raft_data(&dest.join("raft"))
        .await
        .map_err(|e| {
            let reason = format!("{addr}: {} ({:?})", e.message, e.kind);
            Failure {
                reason,
                ..Failure::from(e)
            }
        })
}

pub fn run(cmd: &AuditCmd) -> ExitCode {
    let result = match cmd {
        AuditCmd::Log(args) => log::run(args),
        AuditCmd::Replay(args) => replay::run(args),
        AuditCmd::Diff(args) => diff::run(args),
        AuditCmd::History(args) => history::run(args),
        AuditCmd::Verify(args) => verify::run(args),
        AuditCmd::Snapshot(cmd) => snapshot::run(cmd),
    };
    match result {
        Ok(report) => {
            crate::output::out(&report.stdout);
            match report.problem {
                None => ExitCode::SUCCESS,
                Some(problem) => {
                    eprintln!("monk: {problem}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(reason) => {
            eprintln!("monk: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn open(dir: &Path) -> Result<DataDirReader, String> {
    monk_audit::open(dir).map_err(|e| e.to_string())
}

fn parse_time(text: &str) -> Result<u64, String> {
    parse_rfc3339(text).map_err(|e| e.to_string())
}

/// An index (all digits) or an RFC 3339 time.
fn parse_point(text: &str) -> Result<Target, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Target::Index)
            .map_err(|_| format!("index {text} is too large"));
    }
    parse_time(text).map(Target::TimeMs)
}

fn json_line<T: Serialize>(value: &T) -> String {
    // Rows are plain data; serializing them cannot fail.
    serde_json::to_string(value).expect("rows serialize") + "\n"
}

fn to_value<T: Serialize>(value: &T) -> Value {
    // Plain data with string keys: serializing to a JSON value cannot fail.
    serde_json::to_value(value).expect("rows serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_indexes_or_times() {
        assert_eq!(parse_point("42"), Ok(Target::Index(42)));
        assert_eq!(
            parse_point("1970-01-01T00:00:01Z"),
            Ok(Target::TimeMs(1000))
        );
        assert!(parse_point("soon").is_err());
    }
}
