//! `monk replay`: the state at an index or time, as a summary for people or the whole
//! redacted state as JSON.

use std::collections::BTreeMap;

use clap::Args;
use monk_audit::{replay_to, Base, RedactedState, Target};
use monk_statemachine::{digest, PeerId, State};
use serde::Serialize;
use serde_json::{json, Value};

use super::text::{opt_text, scope_text, status_text};
use super::{json_line, parse_time, DataDir, Report};
use crate::{table, Output, OutputArg};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub(super) dir: DataDir,
    /// Stop after this index.
    #[arg(long, conflicts_with = "to_time")]
    to_index: Option<u64>,
    /// Stop after the last entry proposed at or before this RFC 3339 time.
    #[arg(long)]
    to_time: Option<String>,
    #[command(flatten)]
    out: OutputArg,
}

fn base_text(base: &Base) -> String {
    match base {
        Base::Empty => "the start of the log".into(),
        Base::Snapshot { index, term, .. } => {
            format!("the snapshot at index {index} (term {term})")
        }
    }
}

fn describe_target(target: Target) -> String {
    match target {
        Target::End => "the end of the log".into(),
        Target::Index(n) => format!("index {n}"),
        Target::TimeMs(t) => monk_audit::time::format_ms(t),
    }
}

pub(super) fn run(args: &ReplayArgs) -> Result<Report, String> {
    let target = match (&args.to_index, &args.to_time) {
        (Some(n), _) => Target::Index(*n),
        (None, Some(t)) => Target::TimeMs(parse_time(t)?),
        (None, None) => Target::End,
    };
    let reader = args.dir.open()?;
    let replayed = replay_to(&reader, target).map_err(|e| e.to_string())?;
    let state = replayed.state();
    let state_digest = digest(state);
    let stdout = match args.out.output {
        Output::Json => {
            let base = match replayed.base() {
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
                state: RedactedState<'a>,
            }
            json_line(&Replayed {
                applied_index: state.last_applied_index(),
                applied_term: state.last_applied_term(),
                state_digest: &state_digest,
                started_from: base,
                state: RedactedState::of(state),
            })
        }
        Output::Table => {
            let mut out = format!(
                "replayed from {} to index {} (term {}); asked for {}\nstate digest  {state_digest}\n",
                base_text(replayed.base()),
                state.last_applied_index(),
                state.last_applied_term(),
                describe_target(target),
            );
            out.push_str(&state_summary(state));
            out
        }
    };
    Ok(Report {
        stdout,
        problem: replayed.stopped.map(|s| s.to_string()),
    })
}

/// A human summary of a state: cluster, peers, templates, secrets by name, join tokens.
/// Each section is its own table so that workloads (a later issue) slot in as another.
fn state_summary(state: &State) -> String {
    let mut out = format!(
        "cluster       {}\nnext peer id  {}\njoin tokens   {}\n",
        state.cluster_name().unwrap_or("-"),
        state.next_peer_id(),
        state.join_tokens().len()
    );
    let peers: Vec<Vec<String>> = state
        .peers()
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
        .templates()
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
        .secrets()
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
    out.push_str(&hub_summary(state));
    out
}

/// Hub sources with their commit, kits and definitions (left out while there are
/// none, so summaries of states from before the Hub read as they always did).
fn hub_summary(state: &State) -> String {
    if state.hub().is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = state
        .hub()
        .iter()
        .map(|(name, source)| {
            vec![
                name.clone(),
                source.commit.clone().unwrap_or_else(|| "-".into()),
                source.kits.len().to_string(),
                source.templates.len().to_string(),
                source
                    .synced_at_index
                    .map_or_else(|| "-".into(), |i| i.to_string()),
            ]
        })
        .collect();
    format!(
        "\nHub ({} sources)\n{}",
        rows.len(),
        table::render(
            &["SOURCE", "COMMIT", "KITS", "DEFINITIONS", "SYNCED AT"],
            &rows
        )
    )
}

/// Workloads and the replicas each peer holds (left out while there are none, so
/// summaries of states from before workloads existed read as they always did).
fn workload_summary(state: &State) -> String {
    if state.workloads().is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = state
        .workloads()
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
                .and_then(|p| state.peer(p))
                .map_or("(pending)".to_string(), |p| p.name.clone());
            vec![opt_text(peer), name, replicas.join(", ")]
        })
        .collect();
    out.push_str("\nReplicas per peer\n");
    out.push_str(&table::render(&["PEER", "NAME", "REPLICAS"], &rows));
    out
}
