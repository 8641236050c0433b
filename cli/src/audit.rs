//! Incident forensics on a peer's data dir, offline and read-only: `monk log`,
//! `replay`, `diff`, `history`, `verify` and `snapshot inspect`.
//!
//! Every command rebuilds state with `monk_log::replay::Replayer`, which applies
//! entries with the same function the live state machine uses. Secrets are shown by
//! name only: sealed bytes are dropped from every table and every JSON object. A
//! corrupt entry stops a command with its index and byte offset after everything
//! before it has been printed (exit code 1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use monk_log::replay::{raft_dir, Base, ReplayError, Replayer, Start, Target};
use monk_log::{DataDirReader, RaftEntry};
use monk_statemachine::{
    diff, digest, inspect_snapshot, Applied, Command, MapChange, Peer, PeerId, PeerStatus, Secret,
    SecretName, SecretScope, State, StateDiff, Template, Workload,
};
use openraft::EntryPayload;
use serde::Serialize;
use serde_json::{json, Value};

use crate::timefmt::{format_ms, parse_rfc3339};
use crate::{table, Output, OutputArg};

/// Below this many common entries `verify` compares state digests at every index;
/// above it, every `VERIFY_DIGEST_STRIDE` entries and at the end (a digest serializes
/// the whole state, so one per entry on a million-entry log would take minutes).
const VERIFY_DIGEST_EVERY_INDEX_MAX: u64 = 20_000;
const VERIFY_DIGEST_STRIDE: u64 = 1_000;
/// A YAML line diff is computed with an LCS table of at most this many cells; larger
/// definitions are shown as whole before/after texts instead.
const LINE_DIFF_CELLS_MAX: usize = 4_000_000;
/// Unchanged lines shown around each change in a YAML diff.
const LINE_DIFF_CONTEXT: usize = 2;
/// Most data dirs `verify` compares at once (each holds an open RocksDB).
const VERIFY_DIRS_MAX: usize = 16;

/// The audit commands, flattened into `monk`'s top level.
#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// List log entries of a data dir (or of the addressed peer): index, term, time,
    /// actor, kind, summary, and the apply result recomputed offline.
    Log(LogArgs),
    /// Rebuild the state at an index or time from a data dir's (or the addressed
    /// peer's) snapshot and log.
    Replay(ReplayArgs),
    /// What changed in the state between two indexes or times (A before B).
    Diff(DiffArgs),
    /// Every entry that touched one entity (a template path, or `peer/ID`), oldest first.
    History(HistoryArgs),
    /// Compare several peers (data dirs or live --peer): entries and state digests at
    /// each common index.
    Verify(VerifyArgs),
    /// Snapshot files and stored snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
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
    fn path(&self) -> Result<&Path, String> {
        self.data_dir
            .as_deref()
            .ok_or_else(|| "no --data-dir and no peer data fetched".to_string())
    }
}

#[derive(Args, Debug)]
pub struct LogArgs {
    #[command(flatten)]
    dir: DataDir,
    /// First index to show.
    #[arg(long)]
    from: Option<u64>,
    /// Last index to show.
    #[arg(long)]
    to: Option<u64>,
    /// Only entries proposed at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only entries proposed at or before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// Only this command kind (`templates-loaded`, `peer-down`, `blank`, `membership`, ...).
    #[arg(long)]
    kind: Option<String>,
    /// Only entries touching this entity path (or a path under it).
    #[arg(long)]
    path: Option<String>,
    /// Only entries proposed by this actor.
    #[arg(long)]
    actor: Option<String>,
    #[command(flatten)]
    out: OutputArg,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    dir: DataDir,
    /// Stop after this index.
    #[arg(long, conflicts_with = "to_time")]
    to_index: Option<u64>,
    /// Stop after the last entry proposed at or before this RFC 3339 time.
    #[arg(long)]
    to_time: Option<String>,
    #[command(flatten)]
    out: OutputArg,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[command(flatten)]
    dir: DataDir,
    /// From: an index or an RFC 3339 time.
    a: String,
    /// To: an index or an RFC 3339 time, not before A.
    b: String,
    #[command(flatten)]
    out: OutputArg,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    dir: DataDir,
    /// A template path (`ns/web`; secrets scoped to it count too) or `peer/ID`.
    entity: String,
    #[command(flatten)]
    out: OutputArg,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Two or more peers' data dirs.
    #[arg(long = "data-dir", value_name = "DIR", num_args = 1)]
    data_dirs: Vec<PathBuf>,
    /// A running peer (HOST:PORT) whose Raft data is fetched through the API and
    /// compared like a data dir; repeat, and mix with --data-dir.
    #[arg(long = "peer", value_name = "ADDR", num_args = 1)]
    peers: Vec<String>,
    #[command(flatten)]
    out: OutputArg,
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCmd {
    /// Index, term, format, size and size per kind of state of a snapshot file or of
    /// the snapshot stored in a data dir.
    Inspect {
        #[arg(value_name = "FILE-OR-DIR")]
        path: PathBuf,
        #[command(flatten)]
        out: OutputArg,
    },
}

/// What an audit command printed, and whether it got through everything.
struct Report {
    stdout: String,
    /// A problem that stopped the command early (printed to stderr, exit 1).
    problem: Option<String>,
}

impl Report {
    fn done(stdout: String) -> Report {
        Report {
            stdout,
            problem: None,
        }
    }
}

/// Runs one audit command; prints its output and returns the exit code.
/// For the online forms: fetches the Raft data of the addressed peer (when a command
/// has no --data-dir) and of every `verify --peer` into `scratch`, and points the
/// command at those copies, so online and offline audits run the very same code.
pub async fn fetch_online(cmd: &mut AuditCmd, addr: &str, scratch: &Path) -> Result<(), String> {
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

async fn download(addr: &str, dest: &Path) -> Result<(), String> {
    let mut client = monk_node::MonkClient::connect(addr)
        .await
        .map_err(|e| format!("{e} (give --data-dir to audit a data dir offline)"))?;
    client
        .export_raft_data(&dest.join("raft"))
        .await
        .map_err(|s| format!("{addr}: {} ({:?})", s.message(), s.code()))
}

pub fn run(cmd: &AuditCmd) -> ExitCode {
    let result = match cmd {
        AuditCmd::Log(args) => log(args),
        AuditCmd::Replay(args) => replay(args),
        AuditCmd::Diff(args) => diff_cmd(args),
        AuditCmd::History(args) => history(args),
        AuditCmd::Verify(args) => verify(args),
        AuditCmd::Snapshot(SnapshotCmd::Inspect { path, out }) => {
            snapshot_inspect(path, out.output)
        }
    };
    match result {
        Ok(report) => {
            print!("{}", report.stdout);
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
    if !dir.exists() {
        return Err(format!("{}: no such data dir", dir.display()));
    }
    DataDirReader::open(&raft_dir(dir)).map_err(|e| e.to_string())
}

fn parse_time(text: &str) -> Result<u64, String> {
    parse_rfc3339(text)
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

fn describe_target(target: Target) -> String {
    match target {
        Target::End => "the end of the log".into(),
        Target::Index(n) => format!("index {n}"),
        Target::TimeMs(t) => format_ms(t),
    }
}

fn stopped_early(e: &ReplayError, state: &State) -> String {
    format!(
        "{e}; the output above covers everything up to index {}",
        state.last_applied_index
    )
}

// ---------------------------------------------------------------------------------
// Entries as rows

/// One log entry as the audit commands show it (no secret material).
#[derive(Serialize)]
struct EntryRow {
    index: u64,
    term: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    kind: String,
    summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
    /// `None`: the entry is included in the snapshot the replay started from, so its
    /// result cannot be recomputed.
    result: Option<Applied>,
}

fn membership_summary(m: &openraft::Membership<u64, monk_log::PeerNode>) -> String {
    let ids = |ids: &mut dyn Iterator<Item = u64>| -> String {
        ids.map(|v| v.to_string()).collect::<Vec<_>>().join(",")
    };
    let configs: Vec<String> = m
        .get_joint_config()
        .iter()
        .map(|c| format!("[{}]", ids(&mut c.iter().copied())))
        .collect();
    let (what, voters) = match configs.as_slice() {
        [single] => ("voters", single.clone()),
        joint => ("joint voters", joint.join(" + ")),
    };
    format!(
        "membership: {what} {voters} learners [{}]",
        ids(&mut m.learner_ids())
    )
}

impl EntryRow {
    fn of(entry: &RaftEntry, result: Option<Applied>) -> EntryRow {
        let (index, term) = (entry.log_id.index, entry.log_id.leader_id.term);
        let mut row = EntryRow {
            index,
            term,
            time_ms: None,
            time: None,
            actor: None,
            request_id: None,
            kind: String::new(),
            summary: String::new(),
            paths: Vec::new(),
            result,
        };
        match &entry.payload {
            EntryPayload::Blank => {
                row.kind = "blank".into();
                row.summary = format!("leader {} took term {term}", entry.log_id.leader_id.node_id);
            }
            EntryPayload::Membership(m) => {
                row.kind = "membership".into();
                row.summary = membership_summary(m);
            }
            EntryPayload::Normal(p) => {
                row.time_ms = Some(p.proposed_at_ms);
                row.time = Some(format_ms(p.proposed_at_ms));
                row.actor = Some(p.actor.clone());
                row.request_id = Some(p.request_id.clone());
                row.kind = p.command.kind().into();
                row.summary = p.command.summary();
                row.paths = p.command.paths().into_iter().map(String::from).collect();
            }
        }
        row
    }

    fn result_text(&self) -> String {
        result_text(self.result.as_ref())
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.index.to_string(),
            self.term.to_string(),
            self.time.clone().unwrap_or_else(|| "-".into()),
            self.actor.clone().unwrap_or_else(|| "-".into()),
            self.kind.clone(),
            self.summary.clone(),
            self.result_text(),
        ]
    }
}

fn result_text(result: Option<&Applied>) -> String {
    match result {
        None => "(in snapshot)".into(),
        Some(Applied::Accepted { peer_id: None }) => "accepted".into(),
        Some(Applied::Accepted { peer_id: Some(id) }) => format!("accepted (peer {id})"),
        Some(Applied::Rejected { reason }) => format!("rejected: {reason}"),
    }
}

const ENTRY_HEADER: [&str; 7] = [
    "INDEX", "TERM", "TIME", "ACTOR", "KIND", "SUMMARY", "RESULT",
];

fn json_line<T: Serialize>(value: &T) -> String {
    // Rows are plain data; serializing them cannot fail.
    serde_json::to_string(value).expect("rows serialize") + "\n"
}

// ---------------------------------------------------------------------------------
// monk log

fn path_matches(filter: &str, path: &str) -> bool {
    path == filter
        || path
            .strip_prefix(filter)
            .is_some_and(|rest| rest.starts_with('/') || filter.ends_with('/'))
}

fn log(args: &LogArgs) -> Result<Report, String> {
    let since = args.since.as_deref().map(parse_time).transpose()?;
    let until = args.until.as_deref().map(parse_time).transpose()?;
    let reader = open(args.dir.path()?)?;
    // Listing never needs a state before the snapshot: entries inside it are shown
    // without a result, so the replay runs to the end and the loop stops at `--to`.
    let mut replayer =
        Replayer::open(&reader, Target::End, Start::Earliest).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut last_time = None;
    let mut problem = None;
    while let Some(next) = replayer.next_entry() {
        let past_to = |e: &RaftEntry| args.to.is_some_and(|to| e.log_id.index > to);
        if next.as_ref().is_ok_and(past_to) {
            break;
        }
        let applied = next.and_then(|entry| replayer.apply(entry));
        let (entry, result) = match applied {
            Ok(pair) => pair,
            Err(e) => {
                problem = Some(stopped_early(&e, replayer.state()));
                break;
            }
        };
        let row = EntryRow::of(&entry, result);
        last_time = row.time_ms.or(last_time);
        let time = row.time_ms.or(last_time);
        let keep = args.from.is_none_or(|f| row.index >= f)
            && since.is_none_or(|s| time.is_some_and(|t| t >= s))
            && until.is_none_or(|u| time.is_none_or(|t| t <= u))
            && args.kind.as_ref().is_none_or(|k| *k == row.kind)
            && args
                .actor
                .as_ref()
                .is_none_or(|a| row.actor.as_ref() == Some(a))
            && args
                .path
                .as_ref()
                .is_none_or(|p| row.paths.iter().any(|q| path_matches(p, q)));
        if keep {
            rows.push(row);
        }
    }
    let stdout = match args.out.output {
        Output::Json => rows.iter().map(json_line).collect(),
        Output::Table => {
            let cells: Vec<Vec<String>> = rows.iter().map(EntryRow::cells).collect();
            table::render(&ENTRY_HEADER, &cells)
        }
    };
    Ok(Report { stdout, problem })
}

// ---------------------------------------------------------------------------------
// monk replay

/// Replays to `target` (starting from the nearest usable state). `Err` in the second
/// field: the replay stopped early at a corrupt entry, a gap, or an entry this build
/// cannot apply; the state holds everything before it.
fn replay_to(
    reader: &DataDirReader,
    target: Target,
) -> Result<(Replayer<'_>, Option<String>), String> {
    let mut replayer = Replayer::open(reader, target, Start::Nearest).map_err(|e| e.to_string())?;
    let problem = replayer
        .run()
        .err()
        .map(|e| stopped_early(&e, replayer.state()));
    Ok((replayer, problem))
}

fn base_text(base: &Base) -> String {
    match base {
        Base::Empty => "the start of the log".into(),
        Base::Snapshot { index, term, .. } => {
            format!("the snapshot at index {index} (term {term})")
        }
    }
}

fn status_text(status: &PeerStatus) -> String {
    match status {
        PeerStatus::Up => "up".into(),
        PeerStatus::Down {
            reason,
            since_index,
        } => format!("down since {since_index}: {reason}"),
        PeerStatus::Left { at_index } => format!("left at {at_index}"),
    }
}

fn scope_text(scope: &SecretScope) -> String {
    match scope {
        SecretScope::Global => "global".into(),
        SecretScope::Entity(path) => path.clone(),
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    // Plain data with string keys: serializing to a JSON value cannot fail.
    serde_json::to_value(value).expect("rows serialize")
}

/// The state as it may be printed: every field of [`State`], secrets by name only.
/// Serialized directly (not through `serde_json::Value`) so definitions keep their
/// key order.
#[derive(Serialize)]
struct ShownState<'a> {
    last_applied_index: u64,
    last_applied_term: u64,
    cluster_name: &'a Option<String>,
    next_peer_id: PeerId,
    peers: &'a BTreeMap<PeerId, Peer>,
    join_tokens: &'a BTreeMap<String, u64>,
    templates: &'a BTreeMap<String, Template>,
    secrets: BTreeMap<&'a str, SecretName>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    workloads: &'a BTreeMap<String, Workload>,
}

impl<'a> ShownState<'a> {
    fn of(state: &'a State) -> ShownState<'a> {
        ShownState {
            last_applied_index: state.last_applied_index,
            last_applied_term: state.last_applied_term,
            cluster_name: &state.cluster_name,
            next_peer_id: state.next_peer_id,
            peers: &state.peers,
            join_tokens: &state.join_tokens,
            templates: &state.templates,
            secrets: state
                .secrets
                .iter()
                .map(|(k, s)| (k.as_str(), SecretName::from(s)))
                .collect(),
            workloads: &state.workloads,
        }
    }
}

/// `(index, term)` of an applied entry.
type IndexTerm = (u64, u64);

/// The first index where two logs hold different entries (with both entries), and
/// the last index both hold.
type EntryDifference = (Option<(u64, Value, Value)>, Option<u64>);

/// A state diff as it may be printed: secrets by name only.
#[derive(Serialize)]
struct ShownDiff<'a> {
    applied: &'a Option<(IndexTerm, IndexTerm)>,
    cluster_name: &'a Option<(Option<String>, Option<String>)>,
    next_peer_id: &'a Option<(PeerId, PeerId)>,
    peers: &'a [MapChange<PeerId, Peer>],
    join_tokens: &'a [MapChange<String, u64>],
    templates: &'a [MapChange<String, Template>],
    secrets: Vec<MapChange<String, SecretName>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    workloads: &'a [MapChange<String, Workload>],
}

impl<'a> ShownDiff<'a> {
    fn of(d: &'a StateDiff) -> ShownDiff<'a> {
        let name = |change: &MapChange<String, Secret>| match change {
            MapChange::Added { key, after } => MapChange::Added {
                key: key.clone(),
                after: after.into(),
            },
            MapChange::Changed { key, before, after } => MapChange::Changed {
                key: key.clone(),
                before: before.into(),
                after: after.into(),
            },
            MapChange::Removed { key, before } => MapChange::Removed {
                key: key.clone(),
                before: before.into(),
            },
        };
        ShownDiff {
            applied: &d.applied,
            cluster_name: &d.cluster_name,
            next_peer_id: &d.next_peer_id,
            peers: &d.peers,
            join_tokens: &d.join_tokens,
            templates: &d.templates,
            secrets: d.secrets.iter().map(name).collect(),
            workloads: &d.workloads,
        }
    }
}

/// A human summary of a state: cluster, peers, templates, secrets by name, join tokens.
/// Each section is its own table so that workloads (a later issue) slot in as another.
fn state_summary(state: &State) -> String {
    let mut out = format!(
        "cluster       {}\nnext peer id  {}\njoin tokens   {}\n",
        state.cluster_name.as_deref().unwrap_or("-"),
        state.next_peer_id,
        state.join_tokens.len()
    );
    let peers: Vec<Vec<String>> = state
        .peers
        .values()
        .map(|p| {
            vec![
                p.id.to_string(),
                p.name.clone(),
                p.address.clone(),
                status_text(&p.status),
                p.tags.join(","),
                p.joined_at_index.to_string(),
            ]
        })
        .collect();
    out.push_str(&format!("\nPeers ({})\n", peers.len()));
    out.push_str(&table::render(
        &["ID", "NAME", "ADDRESS", "STATUS", "TAGS", "JOINED AT"],
        &peers,
    ));
    let templates: Vec<Vec<String>> = state
        .templates
        .values()
        .map(|t| {
            vec![
                t.path.clone(),
                t.kind.clone(),
                t.generation.to_string(),
                t.loaded_at_index.to_string(),
            ]
        })
        .collect();
    out.push_str(&format!("\nTemplates ({})\n", templates.len()));
    out.push_str(&table::render(
        &["PATH", "KIND", "GENERATION", "LOADED AT"],
        &templates,
    ));
    let secrets: Vec<Vec<String>> = state
        .secrets
        .values()
        .map(|s| {
            vec![
                s.name.clone(),
                scope_text(&s.scope),
                s.set_at_index.to_string(),
            ]
        })
        .collect();
    out.push_str(&format!("\nSecrets ({}, names only)\n", secrets.len()));
    out.push_str(&table::render(&["NAME", "SCOPE", "SET AT"], &secrets));
    out.push_str(&workload_summary(state));
    out
}

/// Workloads and the replicas each peer holds (left out while there are none, so
/// summaries of states from before workloads existed read as they always did).
fn workload_summary(state: &State) -> String {
    if state.workloads.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = state
        .workloads
        .values()
        .map(|w| {
            let pending = w.instances.values().filter(|i| i.peer.is_none()).count();
            vec![
                w.path.clone(),
                w.generation.to_string(),
                w.desired.as_str().into(),
                w.replicas().to_string(),
                pending.to_string(),
                w.group.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut out = format!("\nWorkloads ({})\n", rows.len());
    out.push_str(&table::render(
        &["PATH", "GEN", "DESIRED", "REPLICAS", "PENDING", "GROUP"],
        &rows,
    ));
    let mut per_peer: BTreeMap<Option<PeerId>, Vec<String>> = BTreeMap::new();
    for i in monk_statemachine::view::instances(state) {
        let status = match (i.status, i.observed_generation == Some(i.generation)) {
            (Some(s), true) => s.as_str(),
            (Some(_), false) => "older generation",
            (None, _) => "not reported",
        };
        per_peer
            .entry(i.peer)
            .or_default()
            .push(format!("{}#{} {status}", i.path, i.replica));
    }
    let rows: Vec<Vec<String>> = per_peer
        .into_iter()
        .map(|(peer, replicas)| {
            let name = peer
                .and_then(|p| state.peers.get(&p))
                .map_or("(pending)".to_string(), |p| p.name.clone());
            vec![opt_text(peer), name, replicas.join(", ")]
        })
        .collect();
    out.push_str("\nReplicas per peer\n");
    out.push_str(&table::render(&["PEER", "NAME", "REPLICAS"], &rows));
    out
}

fn opt_text<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn peer_text(state_peers: &BTreeMap<PeerId, Peer>, peer: Option<PeerId>) -> String {
    match peer {
        Some(id) => match state_peers.get(&id) {
            Some(p) => format!("{} ({id})", p.name),
            None => format!("peer {id}"),
        },
        None => "no peer".into(),
    }
}

/// What changed in one workload, for `monk diff` and `monk history`: started, purged,
/// stopped, generations, scaling, and each replica placed, moved or observed.
fn workload_lines(
    change: &MapChange<String, Workload>,
    peers: &BTreeMap<PeerId, Peer>,
) -> Vec<String> {
    let placement = |i: &monk_statemachine::Instance| match (&i.peer, &i.pending) {
        (Some(p), _) => peer_text(peers, Some(*p)),
        (None, Some(why)) => format!("pending: {why}"),
        (None, None) => "pending".into(),
    };
    match change {
        MapChange::Added { key, after } => {
            let mut lines = vec![format!(
                "+ {key} started (generation {}, {} replica(s){})",
                after.generation,
                after.replicas(),
                after
                    .group
                    .as_ref()
                    .map_or(String::new(), |g| format!(", through {g}"))
            )];
            for i in after.instances.values() {
                let seen = i.observed.as_ref().map_or(String::new(), |o| {
                    format!(", {} (generation {})", o.status.as_str(), o.generation)
                });
                lines.push(format!(
                    "    #{} placed on {}{seen}",
                    i.replica,
                    placement(i)
                ));
            }
            lines
        }
        MapChange::Removed { key, before } => vec![format!(
            "- {key} purged (was generation {}, {} replica(s))",
            before.generation,
            before.replicas()
        )],
        MapChange::Changed { key, before, after } => {
            let mut lines = vec![format!("~ {key}")];
            if before.desired != after.desired {
                lines.push(format!(
                    "    {} → {}",
                    before.desired.as_str(),
                    after.desired.as_str()
                ));
            }
            if before.generation != after.generation {
                lines.push(format!(
                    "    generation {} → {}",
                    before.generation, after.generation
                ));
            }
            if before.replicas() != after.replicas() {
                lines.push(format!(
                    "    scaled {} → {}",
                    before.replicas(),
                    after.replicas()
                ));
            }
            for (r, a) in &after.instances {
                match before.instances.get(r) {
                    None => lines.push(format!("    #{r} placed on {}", placement(a))),
                    Some(b) if b.peer != a.peer => lines.push(format!(
                        "    #{r} moved {} → {}",
                        placement(b),
                        placement(a)
                    )),
                    Some(b) if b.observed != a.observed => {
                        if let Some(o) = &a.observed {
                            let mut line = format!(
                                "    #{r} on {} reported {} (generation {})",
                                peer_text(peers, a.peer),
                                o.status.as_str(),
                                o.generation
                            );
                            if !o.message.is_empty() {
                                line.push_str(&format!(": {}", o.message));
                            }
                            lines.push(line);
                        }
                    }
                    _ => {}
                }
            }
            for r in before
                .instances
                .keys()
                .filter(|r| !after.instances.contains_key(r))
            {
                lines.push(format!("    #{r} removed"));
            }
            if lines.len() == 1 {
                lines.push("    definition or overrides changed".into());
            }
            lines
        }
    }
}

fn replay(args: &ReplayArgs) -> Result<Report, String> {
    let target = match (&args.to_index, &args.to_time) {
        (Some(n), _) => Target::Index(*n),
        (None, Some(t)) => Target::TimeMs(parse_time(t)?),
        (None, None) => Target::End,
    };
    let reader = open(args.dir.path()?)?;
    let (replayer, problem) = replay_to(&reader, target)?;
    let state = replayer.state();
    let state_digest = digest(state);
    let stdout = match args.out.output {
        Output::Json => {
            let base = match replayer.base() {
                Base::Empty => json!({"kind": "empty"}),
                Base::Snapshot {
                    index,
                    term,
                    digest,
                } => {
                    json!({"kind": "snapshot", "index": index, "term": term, "digest": digest})
                }
            };
            #[derive(Serialize)]
            struct Replayed<'a> {
                applied_index: u64,
                applied_term: u64,
                state_digest: &'a str,
                started_from: Value,
                state: ShownState<'a>,
            }
            json_line(&Replayed {
                applied_index: state.last_applied_index,
                applied_term: state.last_applied_term,
                state_digest: &state_digest,
                started_from: base,
                state: ShownState::of(state),
            })
        }
        Output::Table => {
            let mut out = format!(
                "replayed from {} to index {} (term {}); asked for {}\nstate digest  {state_digest}\n",
                base_text(replayer.base()),
                state.last_applied_index,
                state.last_applied_term,
                describe_target(target),
            );
            out.push_str(&state_summary(state));
            out
        }
    };
    Ok(Report { stdout, problem })
}

// ---------------------------------------------------------------------------------
// monk diff

/// `- old` / `+ new` / `  same` lines between two texts, with a little context.
fn line_diff(before: &str, after: &str) -> Vec<String> {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    if a.len().saturating_mul(b.len()) > LINE_DIFF_CELLS_MAX {
        let mut out: Vec<String> = a.iter().map(|l| format!("-{l}")).collect();
        out.extend(b.iter().map(|l| format!("+{l}")));
        return out;
    }
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let near = |k: usize| changed.iter().any(|&c| c.abs_diff(k) <= LINE_DIFF_CONTEXT);
    let mut out = Vec::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if near(k) {
            out.push(format!("{op}{line}"));
            skipped = false;
        } else if !skipped {
            out.push(" …".into());
            skipped = true;
        }
    }
    out
}

fn yaml(template: &Template) -> String {
    serde_saphyr::to_string(&template.definition)
        .unwrap_or_else(|e| format!("(not printable as YAML: {e})\n"))
}

fn template_lines(change: &MapChange<String, Template>) -> Vec<String> {
    match change {
        MapChange::Added { key, after } => vec![format!(
            "+ {key} ({}, generation {}, loaded at {})",
            after.kind, after.generation, after.loaded_at_index
        )],
        MapChange::Removed { key, before } => {
            vec![format!(
                "- {key} ({}, generation {})",
                before.kind, before.generation
            )]
        }
        MapChange::Changed { key, before, after } => {
            let mut lines = vec![format!(
                "~ {key} (generation {} → {}, loaded at {})",
                before.generation, after.generation, after.loaded_at_index
            )];
            if before.kind != after.kind {
                lines.push(format!("    kind {} → {}", before.kind, after.kind));
            }
            lines.extend(
                line_diff(&yaml(before), &yaml(after))
                    .into_iter()
                    .map(|l| format!("    {l}")),
            );
            lines
        }
    }
}

fn peer_lines(change: &MapChange<PeerId, monk_statemachine::Peer>) -> Vec<String> {
    let line = match change {
        MapChange::Added { key, after } => format!(
            "+ {key} {} ({}) joined at {}, {}",
            after.name,
            after.address,
            after.joined_at_index,
            status_text(&after.status)
        ),
        MapChange::Removed { key, before } => format!("- {key} {} removed", before.name),
        MapChange::Changed { key, before, after } => {
            let mut what = Vec::new();
            if before.status != after.status {
                what.push(format!(
                    "{} → {}",
                    status_text(&before.status),
                    status_text(&after.status)
                ));
            }
            if before.address != after.address {
                what.push(format!("address {} → {}", before.address, after.address));
            }
            if before.tags != after.tags || before.capacity != after.capacity {
                what.push("tags/capacity changed".into());
            }
            format!("~ {key} {}: {}", after.name, what.join("; "))
        }
    };
    vec![line]
}

fn secret_lines(change: &MapChange<String, monk_statemachine::Secret>) -> Vec<String> {
    let line = match change {
        MapChange::Added { key, after } => format!("+ {key} set at {}", after.set_at_index),
        MapChange::Changed { key, after, .. } => {
            format!("~ {key} set again at {}", after.set_at_index)
        }
        MapChange::Removed { key, .. } => format!("- {key} removed"),
    };
    vec![line]
}

fn token_lines(change: &MapChange<String, u64>) -> Vec<String> {
    let short = |k: &str| k.get(..12).unwrap_or(k).to_string();
    let line = match change {
        MapChange::Added { key, after } => format!("+ {}… issued at {after}", short(key)),
        MapChange::Changed { key, after, .. } => {
            format!("~ {}… issued again at {after}", short(key))
        }
        MapChange::Removed { key, .. } => format!("- {}… forgotten", short(key)),
    };
    vec![line]
}

/// The diff as text for people; empty sections are left out. `peers` names the
/// peers replicas sit on.
fn diff_text(d: &StateDiff, peers: &BTreeMap<PeerId, Peer>) -> String {
    let mut out = String::new();
    if let Some((before, after)) = &d.cluster_name {
        out.push_str(&format!(
            "cluster name: {} → {}\n",
            before.as_deref().unwrap_or("-"),
            after.as_deref().unwrap_or("-")
        ));
    }
    let mut section = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            out.push_str(&format!("{title}:\n"));
            for line in lines {
                out.push_str(&format!("  {line}\n"));
            }
        }
    };
    section("peers", d.peers.iter().flat_map(peer_lines).collect());
    section(
        "templates",
        d.templates.iter().flat_map(template_lines).collect(),
    );
    section(
        "secrets (names only)",
        d.secrets.iter().flat_map(secret_lines).collect(),
    );
    section(
        "workloads",
        d.workloads
            .iter()
            .flat_map(|c| workload_lines(c, peers))
            .collect(),
    );
    section(
        "join tokens",
        d.join_tokens.iter().flat_map(token_lines).collect(),
    );
    if d.is_empty() {
        out.push_str("no changes\n");
    }
    out
}

fn point_json(state: &State) -> Value {
    json!({"index": state.last_applied_index, "term": state.last_applied_term, "state_digest": digest(state)})
}

fn diff_cmd(args: &DiffArgs) -> Result<Report, String> {
    let (a, b) = (parse_point(&args.a)?, parse_point(&args.b)?);
    let backwards = match (a, b) {
        (Target::Index(x), Target::Index(y)) | (Target::TimeMs(x), Target::TimeMs(y)) => y < x,
        _ => false,
    };
    if backwards {
        return Err(format!(
            "B ({}) is before A ({}); give the earlier point first",
            args.b, args.a
        ));
    }
    let reader = open(args.dir.path()?)?;
    let (mut replayer, problem) = replay_to(&reader, a)?;
    if let Some(problem) = problem {
        return Err(problem);
    }
    let before = replayer.state().clone();
    replayer.retarget(b);
    let problem = replayer
        .run()
        .err()
        .map(|e| stopped_early(&e, replayer.state()));
    let after = replayer.state();
    let d = diff(&before, after);
    let stdout = match args.out.output {
        Output::Json => {
            #[derive(Serialize)]
            struct Diffed<'a> {
                from: Value,
                to: Value,
                changes: ShownDiff<'a>,
            }
            json_line(&Diffed {
                from: point_json(&before),
                to: point_json(after),
                changes: ShownDiff::of(&d),
            })
        }
        Output::Table => format!(
            "diff from index {} (term {}) to index {} (term {})\n{}",
            before.last_applied_index,
            before.last_applied_term,
            after.last_applied_index,
            after.last_applied_term,
            diff_text(&d, &after.peers)
        ),
    };
    Ok(Report { stdout, problem })
}

// ---------------------------------------------------------------------------------
// monk history

/// One entity's value in a state: a template (plus secrets scoped to it), or a peer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
enum EntityValue {
    Template {
        template: Option<Template>,
        secrets: Vec<SecretName>,
        /// The workload running from this path, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        workload: Option<Box<Workload>>,
    },
    Peer {
        peer: Option<monk_statemachine::Peer>,
    },
}

enum Entity {
    Path(String),
    Peer(PeerId),
}

impl Entity {
    fn parse(text: &str) -> Result<Entity, String> {
        match text.strip_prefix("peer/") {
            Some(id) => id
                .parse()
                .map(Entity::Peer)
                .map_err(|_| format!("{text:?}: a peer is named peer/ID with a numeric id")),
            None if text.is_empty() => Err("the entity path is empty".into()),
            None => Ok(Entity::Path(text.to_string())),
        }
    }

    fn value(&self, state: &State) -> EntityValue {
        match self {
            Entity::Path(path) => EntityValue::Template {
                template: state.templates.get(path).cloned(),
                secrets: state
                    .secrets
                    .values()
                    .filter(|s| s.scope == SecretScope::Entity(path.clone()))
                    .map(SecretName::from)
                    .collect(),
                workload: state.workloads.get(path).cloned().map(Box::new),
            },
            Entity::Peer(id) => EntityValue::Peer {
                peer: state.peers.get(id).cloned(),
            },
        }
    }

    /// Whether the entry may touch this entity (decided before applying it).
    fn may_touch(&self, entry: &RaftEntry) -> bool {
        let EntryPayload::Normal(p) = &entry.payload else {
            return false;
        };
        match (self, &p.command) {
            // Group commands and peer changes move a workload without naming it.
            (
                Entity::Path(_),
                Command::WorkloadRun { .. }
                | Command::WorkloadUpdate { .. }
                | Command::WorkloadStop { .. }
                | Command::WorkloadPurge { .. }
                | Command::WorkloadRestart { .. }
                | Command::PeerJoined { .. }
                | Command::PeerLeft { .. }
                | Command::PeerDown { .. }
                | Command::PeerUp { .. }
                | Command::PeerTagged { .. }
                | Command::PeerFactsReported { .. },
            ) => true,
            (Entity::Path(path), command) => command.paths().contains(&path.as_str()),
            (
                Entity::Peer(id),
                Command::PeerLeft { peer }
                | Command::PeerDown { peer, .. }
                | Command::PeerUp { peer }
                | Command::PeerTagged { peer, .. }
                | Command::PeerFactsReported { peer, .. },
            ) => peer == id,
            (Entity::Peer(_), Command::PeerJoined { .. } | Command::ClusterCreated { .. }) => true,
            _ => false,
        }
    }

    /// Whether the entry, with its result, did concern this entity.
    fn touched(
        &self,
        entry: &RaftEntry,
        result: Option<&Applied>,
        before: &EntityValue,
        after: &EntityValue,
    ) -> bool {
        match (self, &entry.payload) {
            (Entity::Peer(id), EntryPayload::Normal(p))
                if matches!(
                    p.command,
                    Command::PeerJoined { .. } | Command::ClusterCreated { .. }
                ) =>
            {
                matches!(result, Some(Applied::Accepted { peer_id: Some(assigned) }) if assigned == id)
                    || before != after
            }
            (Entity::Path(path), EntryPayload::Normal(p)) => {
                p.command.paths().contains(&path.as_str()) || before != after
            }
            _ => true,
        }
    }
}

fn change_text(
    before: &EntityValue,
    after: &EntityValue,
    peers: &BTreeMap<PeerId, Peer>,
) -> Vec<String> {
    match (before, after) {
        (
            EntityValue::Template {
                template: tb,
                secrets: sb,
                workload: wb,
            },
            EntityValue::Template {
                template: ta,
                secrets: sa,
                workload: wa,
            },
        ) => {
            let mut lines = match (tb, ta) {
                (None, Some(t)) => {
                    let mut l = vec![format!(
                        "template added ({}, generation {})",
                        t.kind, t.generation
                    )];
                    l.extend(yaml(t).lines().map(|line| format!("    +{line}")));
                    l
                }
                (Some(t), None) => vec![format!(
                    "template removed (was generation {})",
                    t.generation
                )],
                (Some(b), Some(a)) if b != a => {
                    let mut l = vec![format!(
                        "template changed (generation {} → {})",
                        b.generation, a.generation
                    )];
                    l.extend(
                        line_diff(&yaml(b), &yaml(a))
                            .into_iter()
                            .map(|line| format!("    {line}")),
                    );
                    l
                }
                _ => Vec::new(),
            };
            for s in sa {
                match sb.iter().find(|o| o.name == s.name) {
                    None => lines.push(format!("secret {} set", s.name)),
                    Some(o) if o != s => lines.push(format!("secret {} set again", s.name)),
                    _ => {}
                }
            }
            for s in sb.iter().filter(|o| !sa.iter().any(|s| s.name == o.name)) {
                lines.push(format!("secret {} removed", s.name));
            }
            let workload_change = match (wb, wa) {
                (None, Some(a)) => Some(MapChange::Added {
                    key: a.path.clone(),
                    after: (**a).clone(),
                }),
                (Some(b), None) => Some(MapChange::Removed {
                    key: b.path.clone(),
                    before: (**b).clone(),
                }),
                (Some(b), Some(a)) if a != b => Some(MapChange::Changed {
                    key: a.path.clone(),
                    before: (**b).clone(),
                    after: (**a).clone(),
                }),
                _ => None,
            };
            if let Some(change) = workload_change {
                lines.extend(workload_lines(&change, peers));
            }
            lines
        }
        (EntityValue::Peer { peer: pb }, EntityValue::Peer { peer: pa }) => match (pb, pa) {
            (None, Some(p)) => vec![format!(
                "peer {} {} ({}) joined, {}",
                p.id,
                p.name,
                p.address,
                status_text(&p.status)
            )],
            (Some(b), Some(a)) if b != a => vec![format!(
                "{} → {}",
                status_text(&b.status),
                status_text(&a.status)
            )],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[derive(Serialize)]
struct HistoryRow {
    #[serde(flatten)]
    entry: EntryRow,
    /// The entity before and after this entry; absent when the entry is inside the
    /// snapshot the replay started from.
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<EntityValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<EntityValue>,
    change: Vec<String>,
}

fn history(args: &HistoryArgs) -> Result<Report, String> {
    let entity = Entity::parse(&args.entity)?;
    let reader = open(args.dir.path()?)?;
    let mut replayer =
        Replayer::open(&reader, Target::End, Start::Earliest).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut problem = None;
    while let Some(next) = replayer.next_entry() {
        let entry = match next {
            Ok(entry) => entry,
            Err(e) => {
                problem = Some(stopped_early(&e, replayer.state()));
                break;
            }
        };
        let may_touch = entity.may_touch(&entry);
        let before = may_touch.then(|| entity.value(replayer.state()));
        let (entry, result) = match replayer.apply(entry) {
            Ok(pair) => pair,
            Err(e) => {
                problem = Some(stopped_early(&e, replayer.state()));
                break;
            }
        };
        let Some(before) = before else { continue };
        let after = entity.value(replayer.state());
        if !entity.touched(&entry, result.as_ref(), &before, &after) {
            continue;
        }
        let row = EntryRow::of(&entry, result);
        let (change, before, after) = match &row.result {
            None => (
                vec!["(inside the snapshot: change not recomputable)".into()],
                None,
                None,
            ),
            Some(Applied::Rejected { .. }) => (vec!["no change".into()], None, None),
            Some(_) => {
                let mut change = change_text(&before, &after, &replayer.state().peers);
                if change.is_empty() {
                    change.push("no change".into());
                }
                (change, Some(before), Some(after))
            }
        };
        rows.push(HistoryRow {
            entry: row,
            before,
            after,
            change,
        });
    }
    let stdout = match args.out.output {
        Output::Json => rows.iter().map(json_line).collect(),
        Output::Table => {
            let mut out = String::new();
            for row in &rows {
                let e = &row.entry;
                out.push_str(&format!(
                    "{} (term {}) {} by {}: {} — {}\n",
                    e.index,
                    e.term,
                    e.time.as_deref().unwrap_or("-"),
                    e.actor.as_deref().unwrap_or("-"),
                    e.summary,
                    e.result_text()
                ));
                for line in &row.change {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            if rows.is_empty() {
                out.push_str(&format!("no entry touched {}\n", args.entity));
            }
            out
        }
    };
    Ok(Report { stdout, problem })
}

// ---------------------------------------------------------------------------------
// monk verify

/// Where two peers' data dirs disagree.
#[derive(Serialize)]
#[serde(tag = "finding", rename_all = "kebab-case")]
enum Finding {
    /// All compared entries and digests agree.
    Consistent { up_to: u64, digests_compared: u64 },
    /// The entries at `index` differ (or one of them is unreadable).
    EntryDiffers {
        index: u64,
        mine: Value,
        theirs: Value,
    },
    /// The entries agree but the states do not: the difference predates the stored logs.
    StateDiffers {
        index: u64,
        mine: String,
        theirs: String,
    },
}

fn entry_value(entry: &Result<RaftEntry, String>) -> Value {
    match entry {
        Ok(e) => {
            let mut row = to_value(&EntryRow::of(e, None));
            if let Some(map) = row.as_object_mut() {
                map.remove("result");
            }
            row
        }
        Err(reason) => json!({"unreadable": reason}),
    }
}

fn entry_line(entry: &Value) -> String {
    if let Some(reason) = entry.get("unreadable") {
        return format!("unreadable: {}", reason.as_str().unwrap_or_default());
    }
    let get = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_string()
    };
    format!(
        "term {} {} by {} [{}] {}: {}",
        entry.get("term").map(Value::to_string).unwrap_or_default(),
        get("time"),
        get("actor"),
        get("request_id"),
        get("kind"),
        get("summary")
    )
}

/// The first index where the two stored logs disagree, looking only at indexes both
/// hold, and the last index both hold.
fn first_entry_difference(a: &DataDirReader, b: &DataDirReader) -> Result<EntryDifference, String> {
    let range = |r: &DataDirReader| r.index_range().map_err(|e| e.to_string());
    let (Some((fa, la)), Some((fb, lb))) = (range(a)?, range(b)?) else {
        return Ok((None, None));
    };
    let (first, last) = (fa.max(fb), la.min(lb));
    if first > last {
        return Ok((None, None));
    }
    let mut ia = a.entries_from(first);
    let mut ib = b.entries_from(first);
    let keyed = |item: Option<Result<RaftEntry, monk_log::codec::EntryError>>| -> Option<(u64, Result<RaftEntry, String>)> {
        item.map(|r| match r {
            Ok(e) => (e.log_id.index, Ok(e)),
            Err(e) => (e.index, Err(e.to_string())),
        })
    };
    let mut next_a = keyed(ia.next());
    let mut next_b = keyed(ib.next());
    for index in first..=last {
        let ea = match &next_a {
            Some((i, _)) if *i == index => next_a.take().map(|(_, e)| e),
            _ => None,
        };
        let eb = match &next_b {
            Some((i, _)) if *i == index => next_b.take().map(|(_, e)| e),
            _ => None,
        };
        let missing = || Err::<RaftEntry, String>("missing (gap in the log)".into());
        let ea = ea.unwrap_or_else(missing);
        let eb = eb.unwrap_or_else(missing);
        let same = matches!((&ea, &eb), (Ok(x), Ok(y)) if x == y);
        if !same {
            return Ok((
                Some((index, entry_value(&ea), entry_value(&eb))),
                Some(last),
            ));
        }
        if next_a.is_none() {
            next_a = keyed(ia.next());
        }
        if next_b.is_none() {
            next_b = keyed(ib.next());
        }
    }
    Ok((None, Some(last)))
}

fn verify(args: &VerifyArgs) -> Result<Report, String> {
    if args.data_dirs.len() < 2 {
        return Err("verify needs at least two --data-dir or --peer".into());
    }
    if args.data_dirs.len() > VERIFY_DIRS_MAX {
        return Err(format!(
            "verify compares at most {VERIFY_DIRS_MAX} data dirs at once"
        ));
    }
    let names: Vec<String> = args
        .data_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let readers = args
        .data_dirs
        .iter()
        .map(|d| open(d))
        .collect::<Result<Vec<_>, _>>()?;
    let reference = &readers[0];
    let mut findings = Vec::new();
    for (k, other) in readers.iter().enumerate().skip(1) {
        findings.push(verify_pair(reference, other, &names[0], &names[k])?);
    }
    let divergent = findings
        .iter()
        .any(|f| !matches!(f, Finding::Consistent { .. }));
    let stdout = match args.out.output {
        Output::Json => json_line(&json!({
            "consistent": !divergent,
            "reference": names[0],
            "peers": findings
                .iter()
                .zip(&names[1..])
                .map(|(finding, name)| {
                    let mut v = to_value(finding);
                    if let Some(map) = v.as_object_mut() {
                        map.insert("data_dir".into(), json!(name));
                    }
                    v
                })
                .collect::<Vec<_>>(),
        })),
        Output::Table => {
            let mut out = String::new();
            for (k, finding) in findings.iter().enumerate() {
                let (a, b) = (&names[0], &names[k + 1]);
                match finding {
                    Finding::Consistent { up_to, digests_compared } => out.push_str(&format!(
                        "{a} and {b}: consistent up to {up_to} ({digests_compared} state digests compared)\n"
                    )),
                    Finding::EntryDiffers { index, mine, theirs, .. } => out.push_str(&format!(
                        "{a} and {b}: first difference at index {index}\n  {a}: {}\n  {b}: {}\n",
                        entry_line(mine),
                        entry_line(theirs)
                    )),
                    Finding::StateDiffers { index, mine, theirs, .. } => out.push_str(&format!(
                        "{a} and {b}: states differ after index {index} although their entries agree (the difference predates the logs both hold)\n  {a}: digest {mine}\n  {b}: digest {theirs}\n"
                    )),
                }
            }
            out
        }
    };
    Ok(Report {
        stdout,
        problem: divergent.then(|| "the data dirs diverge".to_string()),
    })
}

/// Applies entries until the replayer's state includes `index` (or it runs out).
fn advance_to(r: &mut Replayer<'_>, index: u64) -> Result<(), String> {
    while r.state().last_applied_index < index {
        match r.next_entry() {
            None => return Err(format!("log ends before index {index}")),
            Some(entry) => {
                r.apply(entry.map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

fn verify_pair(
    a: &DataDirReader,
    b: &DataDirReader,
    name_a: &str,
    name_b: &str,
) -> Result<Finding, String> {
    let (difference, last_common) = first_entry_difference(a, b)?;
    if let Some((index, mine, theirs)) = difference {
        return Ok(Finding::EntryDiffers {
            index,
            mine,
            theirs,
        });
    }
    let up_to = last_common.unwrap_or(0);
    // The earliest state each peer can rebuild: the empty state when its log is
    // complete, else its snapshot. Digests are comparable from the later of the two.
    let mut ra =
        Replayer::open(a, Target::End, Start::Earliest).map_err(|e| format!("{name_a}: {e}"))?;
    let mut rb =
        Replayer::open(b, Target::End, Start::Earliest).map_err(|e| format!("{name_b}: {e}"))?;
    let first = ra.base().index().max(rb.base().index());
    if first > up_to {
        return Ok(Finding::Consistent {
            up_to,
            digests_compared: 0,
        });
    }
    ra.retarget(Target::Index(up_to));
    rb.retarget(Target::Index(up_to));
    advance_to(&mut ra, first).map_err(|e| format!("{name_a}: {e}"))?;
    advance_to(&mut rb, first).map_err(|e| format!("{name_b}: {e}"))?;
    let every_index = up_to.saturating_sub(first) <= VERIFY_DIGEST_EVERY_INDEX_MAX;
    let mut compared = 0;
    for index in first..=up_to {
        advance_to(&mut ra, index).map_err(|e| format!("{name_a}: {e}"))?;
        advance_to(&mut rb, index).map_err(|e| format!("{name_b}: {e}"))?;
        if every_index || index == first || index == up_to || index % VERIFY_DIGEST_STRIDE == 0 {
            let (da, db) = (digest(ra.state()), digest(rb.state()));
            compared += 1;
            if da != db {
                return Ok(Finding::StateDiffers {
                    index,
                    mine: da,
                    theirs: db,
                });
            }
        }
    }
    Ok(Finding::Consistent {
        up_to,
        digests_compared: compared,
    })
}

// ---------------------------------------------------------------------------------
// monk snapshot inspect

fn snapshot_inspect(path: &Path, output: Output) -> Result<Report, String> {
    let (bytes, meta) = if path.is_dir() {
        let reader = open(path)?;
        let (meta, bytes) = reader
            .snapshot()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: the data dir holds no snapshot", path.display()))?;
        (bytes, Some(meta))
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        (bytes, None)
    };
    let (header, body) =
        inspect_snapshot(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("{}: snapshot body does not decode: {e}", path.display()))?;
    let state: State = serde_json::from_value(value.clone())
        .map_err(|e| format!("{}: snapshot body does not decode: {e}", path.display()))?;
    let index = meta
        .as_ref()
        .and_then(|m| m.last_log_id)
        .map_or(state.last_applied_index, |l| l.index);
    let term = meta
        .as_ref()
        .and_then(|m| m.last_log_id)
        .map_or(state.last_applied_term, |l| l.leader_id.term);
    let kinds: Vec<(String, usize, usize)> =
        ["peers", "join_tokens", "templates", "secrets", "workloads"]
            .iter()
            .map(|k| {
                let part = value.get(*k).cloned().unwrap_or(Value::Null);
                let count = part.as_object().map_or(0, |o| o.len());
                let size = serde_json::to_vec(&part).map_or(0, |b| b.len());
                (k.to_string(), count, size)
            })
            .collect();
    let stdout = match output {
        Output::Json => json_line(&json!({
            "index": index,
            "term": term,
            "format": header.format,
            "size_bytes": bytes.len(),
            "body_bytes": header.body_bytes,
            "digest": header.digest,
            "snapshot_id": meta.as_ref().map(|m| m.snapshot_id.clone()),
            "kinds": kinds.iter().map(|(k, c, s)| json!({"kind": k, "count": c, "bytes": s})).collect::<Vec<_>>(),
        })),
        Output::Table => {
            let mut out = format!(
                "index     {index}\nterm      {term}\nformat    {}\nsize      {} bytes (body {})\ndigest    {}\n",
                header.format,
                bytes.len(),
                header.body_bytes,
                header.digest
            );
            let rows: Vec<Vec<String>> = kinds
                .iter()
                .map(|(k, c, s)| vec![k.clone(), c.to_string(), s.to_string()])
                .collect();
            out.push_str(&table::render(&["KIND", "COUNT", "BYTES"], &rows));
            out
        }
    };
    Ok(Report::done(stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diff_shows_changes_with_context() {
        let before = "a\nb\nc\nd\ne\nf\ng\n";
        let after = "a\nb\nc\nD\ne\nf\ng\n";
        assert_eq!(
            line_diff(before, after),
            vec![" …", " b", " c", "-d", "+D", " e", " f", " …"]
        );
    }

    #[test]
    fn points_are_indexes_or_times() {
        assert_eq!(parse_point("42"), Ok(Target::Index(42)));
        assert_eq!(
            parse_point("1970-01-01T00:00:01Z"),
            Ok(Target::TimeMs(1000))
        );
        assert!(parse_point("soon").is_err());
    }

    /// Every field of the state is shown (sealed bytes as names): a field added to
    /// `State` (workloads) must be added to `ShownState` too.
    #[test]
    fn shown_state_and_diff_cover_every_field() {
        let keys = |v: Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let state = State::default();
        assert_eq!(
            keys(to_value(&state)),
            keys(to_value(&ShownState::of(&state)))
        );
        let d = StateDiff::default();
        assert_eq!(keys(to_value(&d)), keys(to_value(&ShownDiff::of(&d))));
    }

    #[test]
    fn path_filter_matches_children() {
        assert!(path_matches("ns", "ns/web"));
        assert!(path_matches("ns/web", "ns/web"));
        assert!(!path_matches("ns", "nsx/web"));
    }
}
