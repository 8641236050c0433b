//! The deterministic scheduler and the workload commands.
//!
//! Placement is a pure function of the state: the same state places the same replica on
//! the same peer on every peer of the cluster, so the scheduler runs inside `apply` and
//! a placement is part of the replicated state (and of `monk replay`).
//!
//! Rules, in order:
//! 1. Candidates are members that are up and satisfy the workload's constraints (every
//!    `affinity.tag`/`--tag`, `affinity.name`/`--peer` by name or id).
//! 2. A peer that declares a capacity (non-zero CPU or memory) takes a replica only if the
//!    requests of everything already placed on it plus this replica fit.
//! 3. Among the rest: fewest replicas of this workload (spread), then fewest replicas in
//!    all, then the lowest peer id.
//!
//! A replica nobody can take stays *pending* with the reason; it is placed when a peer
//! joins or comes back. When a peer is declared down or leaves, its replicas move
//! (rule 1–3 again); they do not move back when it returns.

use std::collections::BTreeMap;

use monk_scripting::monkscript::model::normalize_path;
use monk_scripting::monkscript::resolve::{resolve, with_group_variables};
use monk_scripting::tree::Tree;

use crate::apply::{Applied, Rejection};
use crate::command::{Capacity, InstanceStatus, PeerId};
use crate::state::{Peer, State};
use crate::workload::{Constraints, Desired, Instance, Observation, Workload};

/// Most replicas one workload may ask for.
pub const REPLICAS_MAX: u32 = 1000;
/// Most workloads the cluster records.
pub const WORKLOADS_MAX: usize = 10_000;
/// Deepest nesting of groups inside groups.
pub const GROUP_DEPTH_MAX: usize = 8;
/// Longest executor message kept with an observation, in bytes.
pub const REPORT_MESSAGE_BYTES_MAX: usize = 1024;
/// Most runtime variables one command may set.
pub const OVERRIDES_MAX: usize = 256;

/// One runnable a `run`/`update` resolves to.
struct Expanded {
    path: String,
    group: Option<String>,
    definition: Tree,
}

fn defines(tree: &Tree) -> &str {
    tree.get("defines").and_then(Tree::as_str).unwrap_or("")
}

/// Resolves `path` against the stored templates; a group becomes its runnables.
fn expand(state: &State, path: &str) -> Result<Vec<Expanded>, Rejection> {
    let mut out = Vec::new();
    expand_into(state, path, None, None, 0, &mut out)?;
    Ok(out)
}

fn expand_into(
    state: &State,
    path: &str,
    group: Option<(&str, &Tree)>,
    top_group: Option<&str>,
    depth: usize,
    out: &mut Vec<Expanded>,
) -> Result<(), Rejection> {
    if !state.templates.contains_key(path) {
        return Err(Rejection::UnknownTemplate { path: path.into() });
    }
    let lookup = |p: &str| state.templates.get(p).map(|t| &t.definition);
    let resolved = resolve(path, &lookup).map_err(|e| Rejection::Unresolvable {
        path: path.into(),
        why: e.to_string(),
    })?;
    let resolved = match group {
        Some((_, group_tree)) => with_group_variables(&resolved, group_tree),
        None => resolved,
    };
    match defines(&resolved) {
        "runnable" => {
            out.push(Expanded {
                path: path.into(),
                group: top_group.map(String::from),
                definition: resolved,
            });
            Ok(())
        }
        "group" | "process-group" => {
            if depth >= GROUP_DEPTH_MAX {
                return Err(Rejection::Unresolvable {
                    path: path.into(),
                    why: format!("groups nest deeper than {GROUP_DEPTH_MAX}"),
                });
            }
            let namespace = path.rsplit_once('/').map_or("", |(ns, _)| ns);
            let members = ["members", "runnable-list"]
                .iter()
                .filter_map(|k| match resolved.get(k) {
                    Some(Tree::Seq(items)) => Some(items.clone()),
                    _ => None,
                })
                .flatten()
                .filter_map(|m| m.as_str().map(|m| normalize_path(m, namespace)))
                .collect::<Vec<_>>();
            let top = top_group.unwrap_or(path);
            for member in members {
                if out.iter().any(|e| e.path == member) {
                    continue;
                }
                if member == path {
                    return Err(Rejection::Unresolvable {
                        path: path.into(),
                        why: "the group lists itself as a member".into(),
                    });
                }
                expand_into(
                    state,
                    &member,
                    Some((path, &resolved)),
                    Some(top),
                    depth + 1,
                    out,
                )
                .map_err(|e| match e {
                    Rejection::UnknownTemplate { path: missing } => Rejection::Unresolvable {
                        path: path.into(),
                        why: format!("member {missing} is not loaded"),
                    },
                    other => other,
                })?;
            }
            Ok(())
        }
        other => Err(Rejection::NotRunnable {
            path: path.into(),
            kind: if other.is_empty() {
                "definition without `defines`".into()
            } else {
                other.to_string()
            },
        }),
    }
}

/// Integer value of a literal scalar (`3` or `"3"`); ArrowScript and others are `None`.
fn literal_int(tree: Option<&Tree>) -> Option<i64> {
    match tree? {
        Tree::Int(n) => Some(*n),
        Tree::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Replicas a definition asks for: a literal `scale.value` (clamped to `scale.min/max`),
/// else 1. Dynamic (ArrowScript) scale is decided by executors later, starting from 1.
fn replicas_of(definition: &Tree) -> u32 {
    let scale = definition.get("scale");
    let value = scale.and_then(|s| literal_int(s.get("value"))).unwrap_or(1);
    let min = scale.and_then(|s| literal_int(s.get("min"))).unwrap_or(1);
    let max = scale
        .and_then(|s| literal_int(s.get("max")))
        .unwrap_or(i64::from(REPLICAS_MAX));
    value
        .clamp(min.max(0), max.max(min))
        .clamp(0, i64::from(REPLICAS_MAX)) as u32
}

/// What one replica asks for: the containers' literal `resources.requests` summed.
fn requests_of(definition: &Tree) -> Capacity {
    let mut total = Capacity::default();
    if let Some(Tree::Map(containers)) = definition.get("containers") {
        for (_, container) in containers {
            let requests = container.get("resources").and_then(|r| r.get("requests"));
            let cpu = literal_int(requests.and_then(|r| r.get("cpu"))).unwrap_or(0);
            let memory = literal_int(requests.and_then(|r| r.get("memory"))).unwrap_or(0);
            total.cpu_millis = total.cpu_millis.saturating_add(cpu.max(0) as u64);
            total.memory_mb = total.memory_mb.saturating_add(memory.max(0) as u64);
        }
    }
    total
}

fn constraints_of(definition: &Tree, tag: Option<&String>, peer: Option<&String>) -> Constraints {
    let affinity = definition.get("affinity");
    let text = |key: &str| {
        affinity
            .and_then(|a| a.get(key))
            .and_then(Tree::as_str)
            .filter(|s| !s.is_empty() && !s.starts_with("<-"))
            .map(String::from)
    };
    let mut tags: Vec<String> = text("tag").into_iter().chain(tag.cloned()).collect();
    tags.sort();
    tags.dedup();
    Constraints {
        tags,
        peer: peer.cloned().or_else(|| text("name")),
    }
}

fn variable_names(definition: &Tree) -> impl Iterator<Item = &str> {
    match definition.get("variables") {
        Some(Tree::Map(vars)) => vars.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        _ => Vec::new(),
    }
    .into_iter()
}

fn check_overrides(
    path: &str,
    expanded: &[Expanded],
    overrides: &BTreeMap<String, String>,
) -> Result<(), Rejection> {
    if overrides.len() > OVERRIDES_MAX {
        return Err(Rejection::Limit {
            what: "runtime variables".into(),
            max: OVERRIDES_MAX,
        });
    }
    for name in overrides.keys() {
        let known = expanded
            .iter()
            .any(|e| variable_names(&e.definition).any(|v| v == name));
        if !known {
            return Err(Rejection::UnknownVariable {
                path: path.into(),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

/// The overrides that concern one runnable (those naming its variables).
fn overrides_for(
    definition: &Tree,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let names: Vec<&str> = variable_names(definition).collect();
    overrides
        .iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn satisfies(peer: &Peer, constraints: &Constraints) -> bool {
    let tags_ok = constraints.tags.iter().all(|t| peer.tags.contains(t));
    let peer_ok = constraints
        .peer
        .as_ref()
        .is_none_or(|p| *p == peer.name || *p == peer.id.to_string());
    tags_ok && peer_ok
}

/// Requests of everything placed on each peer, and replica counts.
fn load(state: &State) -> BTreeMap<PeerId, (Capacity, u64)> {
    let mut load: BTreeMap<PeerId, (Capacity, u64)> = BTreeMap::new();
    for w in state.workloads.values() {
        for i in w.instances.values() {
            if let Some(peer) = i.peer {
                let entry = load.entry(peer).or_default();
                entry.0.cpu_millis = entry.0.cpu_millis.saturating_add(w.requests.cpu_millis);
                entry.0.memory_mb = entry.0.memory_mb.saturating_add(w.requests.memory_mb);
                entry.1 += 1;
            }
        }
    }
    load
}

fn fits(capacity: Capacity, used: Capacity, asked: Capacity) -> bool {
    let cpu_ok = capacity.cpu_millis == 0
        || used.cpu_millis.saturating_add(asked.cpu_millis) <= capacity.cpu_millis;
    let mem_ok = capacity.memory_mb == 0
        || used.memory_mb.saturating_add(asked.memory_mb) <= capacity.memory_mb;
    cpu_ok && mem_ok
}

/// Replicas of one workload per peer.
fn mine_of(workload: &Workload) -> BTreeMap<PeerId, u64> {
    let mut mine = BTreeMap::new();
    for peer in workload.instances.values().filter_map(|i| i.peer) {
        *mine.entry(peer).or_insert(0) += 1;
    }
    mine
}

/// Picks a peer for one more replica of `workload` (rules 1–3 of the module docs).
pub fn choose_peer(state: &State, workload: &Workload) -> Result<PeerId, String> {
    choose(state, workload, &load(state), &mine_of(workload))
}

/// [`choose_peer`] with the cluster's load and this workload's spread given, so a
/// placement of many replicas costs one pass over the peers per replica.
fn choose(
    state: &State,
    workload: &Workload,
    load: &BTreeMap<PeerId, (Capacity, u64)>,
    mine: &BTreeMap<PeerId, u64>,
) -> Result<PeerId, String> {
    let mut matching = 0;
    let mut best: Option<((u64, u64, PeerId), PeerId)> = None;
    for peer in state.members().filter(|p| p.is_up()) {
        if !satisfies(peer, &workload.constraints) {
            continue;
        }
        matching += 1;
        let (used, total) = load.get(&peer.id).copied().unwrap_or_default();
        if !fits(peer.capacity, used, workload.requests) {
            continue;
        }
        let key = (mine.get(&peer.id).copied().unwrap_or(0), total, peer.id);
        if best.as_ref().is_none_or(|(b, _)| key < *b) {
            best = Some((key, peer.id));
        }
    }
    match best {
        Some((_, peer)) => Ok(peer),
        None if matching == 0 => Err(format!(
            "no up peer matches {}",
            describe(&workload.constraints)
        )),
        None => Err(format!(
            "{matching} peer(s) match but none has room for {} mCPU / {} MB",
            workload.requests.cpu_millis, workload.requests.memory_mb
        )),
    }
}

fn describe(constraints: &Constraints) -> String {
    let mut parts = Vec::new();
    if !constraints.tags.is_empty() {
        parts.push(format!("tags [{}]", constraints.tags.join(",")));
    }
    if let Some(peer) = &constraints.peer {
        parts.push(format!("peer {peer}"));
    }
    if parts.is_empty() {
        "the workload".into()
    } else {
        parts.join(" and ")
    }
}

/// Places replicas of the workload at `path` one after another, each seeing the ones
/// before it (same result as placing them one by one, without recounting the
/// cluster's load for every replica).
fn place_many(state: &mut State, index: u64, path: &str, replicas: &[u32]) {
    let Some(workload) = state.workloads.get(path) else {
        return;
    };
    let mut load = load(state);
    let mut mine = mine_of(workload);
    let mut choices = Vec::with_capacity(replicas.len());
    for &replica in replicas {
        // A replica being re-placed no longer counts where it was.
        if let Some(old) = workload.instances.get(&replica).and_then(|i| i.peer) {
            if let Some(entry) = load.get_mut(&old) {
                entry.0.cpu_millis = entry
                    .0
                    .cpu_millis
                    .saturating_sub(workload.requests.cpu_millis);
                entry.0.memory_mb = entry
                    .0
                    .memory_mb
                    .saturating_sub(workload.requests.memory_mb);
                entry.1 = entry.1.saturating_sub(1);
            }
            if let Some(count) = mine.get_mut(&old) {
                *count = count.saturating_sub(1);
            }
        }
        let choice = choose(state, workload, &load, &mine);
        if let Ok(peer) = choice {
            let entry = load.entry(peer).or_default();
            entry.0.cpu_millis = entry
                .0
                .cpu_millis
                .saturating_add(workload.requests.cpu_millis);
            entry.0.memory_mb = entry
                .0
                .memory_mb
                .saturating_add(workload.requests.memory_mb);
            entry.1 += 1;
            *mine.entry(peer).or_insert(0) += 1;
        }
        choices.push((replica, choice));
    }
    let Some(workload) = state.workloads.get_mut(path) else {
        return;
    };
    for (replica, choice) in choices {
        let Some(instance) = workload.instances.get_mut(&replica) else {
            continue;
        };
        match choice {
            Ok(peer) => {
                instance.peer = Some(peer);
                instance.pending = None;
            }
            Err(why) => {
                instance.peer = None;
                instance.pending = Some(why);
            }
        }
        instance.placed_at_index = index;
        instance.observed = None;
    }
}

fn new_instance(replica: u32, index: u64) -> Instance {
    Instance {
        replica,
        peer: None,
        pending: Some("not placed yet".into()),
        placed_at_index: index,
        observed: None,
    }
}

/// The workloads a path names: the runnable itself, or every workload started through
/// the group at that path.
fn targets(state: &State, path: &str) -> Result<Vec<String>, Rejection> {
    let paths: Vec<String> = state
        .workloads
        .values()
        .filter(|w| w.path == path || w.group.as_deref() == Some(path))
        .map(|w| w.path.clone())
        .collect();
    if paths.is_empty() {
        return Err(Rejection::UnknownWorkload { path: path.into() });
    }
    Ok(paths)
}

/// `workload-run`.
pub(crate) fn run(
    state: &mut State,
    index: u64,
    path: &str,
    tag: Option<&String>,
    peer: Option<&String>,
    overrides: &BTreeMap<String, String>,
) -> Result<Applied, Rejection> {
    let expanded = expand(state, path)?;
    check_overrides(path, &expanded, overrides)?;
    // Stopped workloads start again where they were; running ones are left alone.
    let mut fresh = Vec::new();
    let mut restarted = Vec::new();
    for e in expanded {
        match state.workloads.get(&e.path) {
            Some(w) if w.desired == Desired::Running => {}
            Some(_) => restarted.push(e.path),
            None => fresh.push(e),
        }
    }
    if fresh.is_empty() && restarted.is_empty() {
        return Err(Rejection::AlreadyRunning { path: path.into() });
    }
    if state.workloads.len() + fresh.len() > WORKLOADS_MAX {
        return Err(Rejection::Limit {
            what: "workloads".into(),
            max: WORKLOADS_MAX,
        });
    }
    for path in restarted {
        if let Some(w) = state.workloads.get_mut(&path) {
            w.desired = Desired::Running;
            w.changed_at_index = index;
        }
        place_pending_of(state, index, &path);
    }
    for e in fresh {
        let replicas = replicas_of(&e.definition);
        let workload = Workload {
            path: e.path.clone(),
            group: e.group,
            requests: requests_of(&e.definition),
            constraints: constraints_of(&e.definition, tag, peer),
            overrides: overrides_for(&e.definition, overrides),
            definition: e.definition,
            generation: 1,
            desired: Desired::Running,
            instances: (0..replicas).map(|r| (r, new_instance(r, index))).collect(),
            started_at_index: index,
            changed_at_index: index,
        };
        state.workloads.insert(e.path.clone(), workload);
        let all: Vec<u32> = (0..replicas).collect();
        place_many(state, index, &e.path, &all);
    }
    Ok(Applied::Accepted { peer_id: None })
}

/// `workload-update`: take the current templates; a change starts a new generation.
pub(crate) fn update(
    state: &mut State,
    index: u64,
    path: &str,
    overrides: &BTreeMap<String, String>,
) -> Result<Applied, Rejection> {
    let paths = targets(state, path)?;
    let mut updates = Vec::new();
    for p in &paths {
        let expanded = expand(state, p)?;
        let Some(mut e) = expanded.into_iter().find(|e| e.path == *p) else {
            return Err(Rejection::NotRunnable {
                path: p.clone(),
                kind: "no longer a runnable".into(),
            });
        };
        // A member keeps its group's variables.
        if let Some(group) = state.workloads.get(p).and_then(|w| w.group.clone()) {
            if let Some(g) = state.templates.get(&group) {
                let lookup = |q: &str| state.templates.get(q).map(|t| &t.definition);
                if let Ok(group_tree) = resolve(&g.path, &lookup) {
                    e.definition = with_group_variables(&e.definition, &group_tree);
                }
            }
        }
        updates.push(e);
    }
    check_overrides(path, &updates, overrides)?;
    for e in updates {
        let Some(w) = state.workloads.get_mut(&e.path) else {
            continue;
        };
        let mut merged = w.overrides.clone();
        merged.extend(overrides_for(&e.definition, overrides));
        if w.definition != e.definition || w.overrides != merged {
            w.requests = requests_of(&e.definition);
            w.definition = e.definition;
            w.overrides = merged;
            w.generation += 1;
            w.changed_at_index = index;
            evict_overcommitted(state, index, &e.path);
        }
    }
    place_all_pending(state, index);
    Ok(Applied::Accepted { peer_id: None })
}

/// `workload-stop`.
pub(crate) fn stop(state: &mut State, index: u64, path: &str) -> Result<Applied, Rejection> {
    for p in targets(state, path)? {
        if let Some(w) = state.workloads.get_mut(&p) {
            if w.desired != Desired::Stopped {
                w.desired = Desired::Stopped;
                w.changed_at_index = index;
            }
        }
    }
    Ok(Applied::Accepted { peer_id: None })
}

/// `workload-restart`: a new generation (executors replace every container); a stopped
/// workload runs again where it was placed.
pub(crate) fn restart(state: &mut State, index: u64, path: &str) -> Result<Applied, Rejection> {
    let paths = targets(state, path)?;
    for p in &paths {
        if let Some(w) = state.workloads.get_mut(p) {
            w.generation += 1;
            w.desired = Desired::Running;
            w.changed_at_index = index;
        }
        place_pending_of(state, index, p);
    }
    Ok(Applied::Accepted { peer_id: None })
}

/// `workload-purge`.
pub(crate) fn purge(state: &mut State, index: u64, path: &str) -> Result<Applied, Rejection> {
    for p in targets(state, path)? {
        state.workloads.remove(&p);
    }
    // Freed room may let pending replicas of other workloads in.
    place_all_pending(state, index);
    Ok(Applied::Accepted { peer_id: None })
}

/// `workload-scale`.
pub(crate) fn scale(
    state: &mut State,
    index: u64,
    path: &str,
    replicas: u32,
) -> Result<Applied, Rejection> {
    if replicas > REPLICAS_MAX {
        return Err(Rejection::Limit {
            what: "replicas".into(),
            max: REPLICAS_MAX as usize,
        });
    }
    let Some(w) = state.workloads.get_mut(path) else {
        return Err(
            match state
                .workloads
                .values()
                .any(|w| w.group.as_deref() == Some(path))
            {
                true => Rejection::NotRunnable {
                    path: path.into(),
                    kind: "group (scale its runnables one by one)".into(),
                },
                false => Rejection::UnknownWorkload { path: path.into() },
            },
        );
    };
    let current = w.replicas();
    if replicas == current {
        return Ok(Applied::Accepted { peer_id: None });
    }
    w.changed_at_index = index;
    if replicas < current {
        w.instances.retain(|r, _| *r < replicas);
        place_all_pending(state, index);
        return Ok(Applied::Accepted { peer_id: None });
    }
    for r in current..replicas {
        w.instances.insert(r, new_instance(r, index));
    }
    let added: Vec<u32> = (current..replicas).collect();
    place_many(state, index, path, &added);
    Ok(Applied::Accepted { peer_id: None })
}

/// An executor's observation, as `workload-report` carries it.
pub(crate) struct Report<'a> {
    pub peer: PeerId,
    pub path: &'a str,
    pub replica: u32,
    pub generation: u64,
    pub status: InstanceStatus,
    pub message: &'a str,
}

/// `workload-report`: recorded only from the peer the replica is placed on.
pub(crate) fn report(state: &mut State, index: u64, r: Report) -> Result<Applied, Rejection> {
    let Report {
        peer,
        path,
        replica,
        generation,
        status,
        message,
    } = r;
    if !state.peers.get(&peer).is_some_and(|p| p.is_member()) {
        return Err(Rejection::UnknownPeer { peer });
    }
    let stale = |why: String| Rejection::StaleReport {
        path: path.into(),
        replica,
        why,
    };
    let w = state
        .workloads
        .get_mut(path)
        .ok_or_else(|| stale("no such workload".into()))?;
    if generation > w.generation {
        return Err(stale(format!(
            "generation {generation} is newer than the workload's {}",
            w.generation
        )));
    }
    let instance = w
        .instances
        .get_mut(&replica)
        .ok_or_else(|| stale("no such replica".into()))?;
    if instance.peer != Some(peer) {
        return Err(stale(format!("the replica is not placed on peer {peer}")));
    }
    let mut message = message.to_string();
    if message.len() > REPORT_MESSAGE_BYTES_MAX {
        let mut cut = REPORT_MESSAGE_BYTES_MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    instance.observed = Some(Observation {
        generation,
        status,
        message,
        at_index: index,
    });
    Ok(Applied::Accepted { peer_id: None })
}

/// After a workload's requests grew, replicas whose peer no longer has room for them
/// are unplaced (highest replica first) so `place_all_pending` moves them.
fn evict_overcommitted(state: &mut State, index: u64, path: &str) {
    let replicas: Vec<(u32, Option<PeerId>)> = match state.workloads.get(path) {
        Some(w) => w
            .instances
            .values()
            .rev()
            .map(|i| (i.replica, i.peer))
            .collect(),
        None => return,
    };
    for (replica, peer) in replicas {
        let Some(peer) = peer else { continue };
        let capacity = state
            .peers
            .get(&peer)
            .map(|p| p.capacity)
            .unwrap_or_default();
        let (used, _) = load(state).get(&peer).copied().unwrap_or_default();
        if fits(capacity, used, Capacity::default()) {
            continue;
        }
        if let Some(i) = state
            .workloads
            .get_mut(path)
            .and_then(|w| w.instances.get_mut(&replica))
        {
            i.peer = None;
            i.pending = Some("its peer has no room for the updated requests".into());
            i.placed_at_index = index;
            i.observed = None;
        }
    }
}

fn place_pending_of(state: &mut State, index: u64, path: &str) {
    let pending: Vec<u32> = state
        .workloads
        .get(path)
        .map(|w| {
            w.instances
                .values()
                .filter(|i| i.peer.is_none())
                .map(|i| i.replica)
                .collect()
        })
        .unwrap_or_default();
    place_many(state, index, path, &pending);
}

/// A peer was declared down or left: its replicas move elsewhere (or become pending).
pub(crate) fn peer_lost(state: &mut State, index: u64, lost: PeerId) {
    let moving: Vec<(String, u32)> = state
        .workloads
        .values()
        .flat_map(|w| {
            w.instances
                .values()
                .filter(|i| i.peer == Some(lost))
                .map(|i| (w.path.clone(), i.replica))
        })
        .collect();
    // Unplace them all first so the lost peer's load does not steer the new choices.
    for (path, replica) in &moving {
        if let Some(i) = state
            .workloads
            .get_mut(path)
            .and_then(|w| w.instances.get_mut(replica))
        {
            i.peer = None;
        }
    }
    let mut by_path: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (path, replica) in moving {
        by_path.entry(path).or_default().push(replica);
    }
    for (path, replicas) in by_path {
        place_many(state, index, &path, &replicas);
    }
}

/// A peer joined or came back: pending replicas get another chance.
pub(crate) fn place_all_pending(state: &mut State, index: u64) {
    let paths: Vec<String> = state
        .workloads
        .values()
        .filter(|w| w.instances.values().any(|i| i.peer.is_none()))
        .map(|w| w.path.clone())
        .collect();
    for path in paths {
        place_pending_of(state, index, &path);
    }
}
