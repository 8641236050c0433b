//! `monk history`: every entry that touched one entity, with what it changed.

use std::collections::BTreeMap;

use clap::Args;
use monk_audit::{entity_history, Entity, EntityValue, EntryRow, HistoryChange};
use monk_statemachine::{MapChange, Peer, PeerId};
use serde::Serialize;

use super::text::{line_diff, result_text, status_text, workload_lines, yaml};
use super::{json_line, DataDir, Report};
use crate::{Output, OutputArg};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub(super) dir: DataDir,
    /// A template path (`ns/web`; secrets scoped to it count too) or `peer/ID`.
    entity: String,
    #[command(flatten)]
    out: OutputArg,
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

impl HistoryRow {
    fn of(row: EntryRow, change: HistoryChange) -> HistoryRow {
        let (change, before, after) = match change {
            HistoryChange::InSnapshot => (
                vec!["(inside the snapshot: change not recomputable)".into()],
                None,
                None,
            ),
            HistoryChange::Rejected => (vec!["no change".into()], None, None),
            HistoryChange::Applied {
                before,
                after,
                peers,
            } => {
                let mut change = change_text(&before, &after, &peers);
                if change.is_empty() {
                    change.push("no change".into());
                }
                (change, Some(*before), Some(*after))
            }
        };
        HistoryRow {
            entry: row,
            before,
            after,
            change,
        }
    }
}

pub(super) fn run(args: &HistoryArgs) -> Result<Report, String> {
    let entity = Entity::parse(&args.entity).map_err(|e| e.to_string())?;
    let reader = args.dir.open()?;
    let found = entity_history(&reader, &entity).map_err(|e| e.to_string())?;
    let rows: Vec<HistoryRow> = found
        .steps
        .into_iter()
        .map(|step| HistoryRow::of(step.row, step.change))
        .collect();
    let stdout = match args.out.output {
        Output::Json => rows.iter().map(json_line).collect(),
        Output::Table => {
            let mut out = String::new();
            for row in &rows {
                let e = &row.entry.entry;
                out.push_str(&format!(
                    "{} (term {}) {} by {}: {} — {}\n",
                    e.index,
                    e.term,
                    e.time.as_deref().unwrap_or("-"),
                    e.actor.as_deref().unwrap_or("-"),
                    e.summary,
                    result_text(row.entry.result.as_ref())
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
    Ok(Report {
        stdout,
        problem: found.stopped.map(|s| s.to_string()),
    })
}
