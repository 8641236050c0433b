//! Rendering shared by the audit commands: apply results, peer statuses, workload
//! changes (for `monk diff` and `monk history`), templates as YAML and a line diff
//! between two YAML texts.

use std::collections::BTreeMap;

use monk_statemachine::{
    Applied, Instance, MapChange, Peer, PeerId, PeerStatus, SecretScope, Template, Workload,
};

/// A YAML line diff is computed with an LCS table of at most this many cells; larger
/// definitions are shown as whole before/after texts instead.
const LINE_DIFF_CELLS_MAX: usize = 4_000_000;
/// Unchanged lines shown around each change in a YAML diff.
const LINE_DIFF_CONTEXT_LINES: usize = 2;

pub(super) fn result_text(result: Option<&Applied>) -> String {
    match result {
        None => "(in snapshot)".into(),
        Some(Applied::Accepted { peer_id: None }) => "accepted".into(),
        Some(Applied::Accepted { peer_id: Some(id) }) => format!("accepted (peer {id})"),
        Some(Applied::Rejected { reason }) => format!("rejected: {reason}"),
    }
}

pub(super) fn status_text(status: &PeerStatus) -> String {
    match status {
        PeerStatus::Up => "up".into(),
        PeerStatus::Down {
            reason,
            since_index,
        } => format!("down since {since_index}: {reason}"),
        PeerStatus::Left { at_index } => format!("left at {at_index}"),
    }
}

pub(super) fn scope_text(scope: &SecretScope) -> String {
    match scope {
        SecretScope::Global => "global".into(),
        SecretScope::Entity(path) => path.clone(),
    }
}

pub(super) fn opt_text<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

pub(super) fn peer_text(state_peers: &BTreeMap<PeerId, Peer>, peer: Option<PeerId>) -> String {
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
pub(super) fn workload_lines(
    change: &MapChange<String, Workload>,
    peers: &BTreeMap<PeerId, Peer>,
) -> Vec<String> {
    let placement = |i: &Instance| match (&i.peer, &i.pending) {
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

/// `- old` / `+ new` / `  same` lines between two texts, with a little context.
pub(super) fn line_diff(before: &str, after: &str) -> Vec<String> {
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
    let near = |k: usize| {
        changed
            .iter()
            .any(|&c| c.abs_diff(k) <= LINE_DIFF_CONTEXT_LINES)
    };
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

pub(super) fn yaml(template: &Template) -> String {
    serde_saphyr::to_string(&template.definition)
        .unwrap_or_else(|e| format!("(not printable as YAML: {e})\n"))
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
}
