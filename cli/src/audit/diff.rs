//! `monk diff`: what changed in the state between two indexes or times, section by
//! section for people, or the redacted typed diff as JSON.

use std::collections::BTreeMap;

use clap::Args;
use monk_audit::{state_diff, RedactedDiff, Target};
use monk_statemachine::{digest, MapChange, Peer, PeerId, Secret, State, StateDiff, Template};
use serde::Serialize;
use serde_json::{json, Value};

use super::text::{line_diff, status_text, workload_lines, yaml};
use super::{json_line, parse_point, DataDir, Report};
use crate::Output;
use crate::OutputArg;

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[command(flatten)]
    pub(super) dir: DataDir,
    /// From: an index or an RFC 3339 time.
    a: String,
    /// To: an index or an RFC 3339 time, not before A.
    b: String,
    #[command(flatten)]
    out: OutputArg,
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

fn peer_lines(change: &MapChange<PeerId, Peer>) -> Vec<String> {
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

fn secret_lines(change: &MapChange<String, Secret>) -> Vec<String> {
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
    json!({"index": state.last_applied_index(), "term": state.last_applied_term(), "state_digest": digest(state)})
}

pub(super) fn run(args: &DiffArgs) -> Result<Report, String> {
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
    let reader = args.dir.open()?;
    let change = state_diff(&reader, a, b).map_err(|e| e.to_string())?;
    let (before, after, d) = (&change.before, &change.after, &change.diff);
    let stdout = match args.out.output {
        Output::Json => {
            #[derive(Serialize)]
            struct Diffed<'a> {
                from: Value,
                to: Value,
                changes: RedactedDiff<'a>,
            }
            json_line(&Diffed {
                from: point_json(before),
                to: point_json(after),
                changes: RedactedDiff::of(d),
            })
        }
        Output::Table => format!(
            "diff from index {} (term {}) to index {} (term {})\n{}",
            before.last_applied_index(),
            before.last_applied_term(),
            after.last_applied_index(),
            after.last_applied_term(),
            diff_text(d, after.peers())
        ),
    };
    Ok(Report {
        stdout,
        problem: change.stopped.map(|s| s.to_string()),
    })
}
