//! The deterministic scheduler and the workload commands.
//!
//! Placement is a pure function of the state: the same state places the same replica on
//! the same peer on every peer of the cluster, so the scheduler runs inside `apply` and
//! a placement is part of the replicated state (and of `monk replay`).
//!
//! Rules (the peer-by-peer ones are in `placement.rs`):
//! 1. Candidates are up members that pass every rule of [`crate::placement::check`]:
//!    constraints (`affinity.tag`/`--tag`, `affinity.name`/`--peer`), residency, host
//!    ports, requirements against reported facts, declared capacity.
//! 2. Among them: fewest replicas of this workload (spread), then fewest replicas in
//!    all, then the lowest peer id.
//!
//! A replica nobody can take stays *pending* with each peer's first failed rule; it is
//! placed when a peer joins, comes back, is re-tagged or reports new facts, or when room
//! frees. When a peer is declared down or leaves, its replicas move (rules again); they
//! do not move back when it returns. Script-valued fields (`scale.value`, affinity) and
//! host ports come evaluated in the command ([`crate::command::Evaluated`]): nothing
//! here runs a script.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use monk_scripting::monkscript::model::normalize_path;
use monk_scripting::monkscript::resolve::{resolve, with_group_variables};
use monk_scripting::tree::Tree;

use crate::apply::{Applied, Rejection};
use crate::command::{Capacity, Evaluated, EvaluatedByPath, InstanceStatus, PeerId};
use crate::placement::{self, PeerLoad, Refusal};
use crate::state::State;
use crate::workload::{Constraints, Desired, Instance, Observation, Requirements, Workload};

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
/// Most peers named in a pending replica's reason; the rest are counted.
pub const PENDING_REASON_PEERS_MAX: usize = 8;

/// One runnable a `run`/`update` resolves to.
pub(crate) struct Expanded {
    pub path: String,
    pub group: Option<String>,
    pub definition: Tree,
}

fn defines(tree: &Tree) -> &str {
    tree.get("defines").and_then(Tree::as_str).unwrap_or("")
}

/// Resolves `path` against the stored templates; a group becomes its runnables.
pub(crate) fn expand(state: &State, path: &str) -> Result<Vec<Expanded>, Rejection> {
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

/// Replicas a definition asks for: `scale.value` (literal, or the number its script gave
/// the proposer), clamped to `scale.min/max`; else 1.
fn replicas_of(definition: &Tree, evaluated: Option<&Evaluated>) -> u32 {
    let scale = definition.get("scale");
    let value = evaluated
        .and_then(|e| e.replicas)
        .map(i64::from)
        .or_else(|| scale.and_then(|s| literal_int(s.get("value"))))
        .unwrap_or(1);
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

/// A literal number of cores (`"2.0"`, `2`, `0.5`) in millicores.
fn literal_millis(tree: Option<&Tree>) -> Option<u64> {
    let cores: f64 = match tree? {
        Tree::Int(n) => *n as f64,
        Tree::Str(s) | Tree::Float(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (cores.is_finite() && cores > 0.0).then(|| (cores * 1000.0).round() as u64)
}

fn literal_bool(tree: Option<&Tree>) -> bool {
    match tree {
        Some(Tree::Bool(b)) => *b,
        Some(Tree::Str(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// `requirements: {CPU, RAM, GPU, disk}` (literal values; keys as the reference writes
/// them, lower case accepted).
fn requirements_of(definition: &Tree) -> Requirements {
    let Some(r) = definition.get("requirements") else {
        return Requirements::default();
    };
    let field = |names: &[&str]| names.iter().find_map(|n| r.get(n));
    let positive = |t: Option<&Tree>| literal_int(t).map_or(0, |n| n.max(0) as u64);
    Requirements {
        cpu_millis: literal_millis(field(&["CPU", "cpu"])).unwrap_or(0),
        memory_mb: positive(field(&["RAM", "ram", "memory"])),
        gpu: literal_bool(field(&["GPU", "gpu"])),
        disk_gb: positive(field(&["disk", "DISK"])),
    }
}

fn constraints_of(
    definition: &Tree,
    evaluated: Option<&Evaluated>,
    tag: Option<&String>,
    peer: Option<&String>,
) -> Constraints {
    let affinity = definition.get("affinity");
    let text = |key: &str| {
        affinity
            .and_then(|a| a.get(key))
            .and_then(Tree::as_str)
            .filter(|s| !s.is_empty() && !s.starts_with("<-"))
            .map(String::from)
    };
    let evaluated_tag = evaluated.and_then(|e| e.tag.clone());
    let evaluated_name = evaluated.and_then(|e| e.name.clone());
    let mut tags: Vec<String> = text("tag")
        .or(evaluated_tag)
        .into_iter()
        .chain(tag.cloned())
        .collect();
    tags.sort();
    tags.dedup();
    Constraints {
        tags,
        peer: peer.cloned().or_else(|| text("name")).or(evaluated_name),
        resident: literal_bool(affinity.and_then(|a| a.get("resident"))),
        ignore_pressure: literal_bool(affinity.and_then(|a| a.get("ignore-pressure"))),
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
pub(crate) fn overrides_for(
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

/// What is placed on each peer.
fn load(state: &State) -> BTreeMap<PeerId, PeerLoad<'_>> {
    let mut load: BTreeMap<PeerId, PeerLoad> = BTreeMap::new();
    for w in state.workloads.values() {
        for i in w.instances.values() {
            if let Some(peer) = i.peer {
                load.entry(peer).or_default().add(w, i.replica);
            }
        }
    }
    load
}

/// Replicas of one workload per peer.
fn mine_of(workload: &Workload) -> BTreeMap<PeerId, u64> {
    let mut mine = BTreeMap::new();
    for peer in workload.instances.values().filter_map(|i| i.peer) {
        *mine.entry(peer).or_insert(0) += 1;
    }
    mine
}

/// Picks a peer for one more replica of `workload` (rules of the module docs), or says
/// why none can take it.
pub fn choose_peer(state: &State, workload: &Workload) -> Result<PeerId, String> {
    choose(state, workload, &load(state), &mine_of(workload))
}

/// [`choose_peer`] with the cluster's load and this workload's spread given, so a
/// placement of many replicas costs one pass over the peers per replica.
fn choose<'a>(
    state: &'a State,
    workload: &'a Workload,
    load: &BTreeMap<PeerId, PeerLoad<'a>>,
    mine: &BTreeMap<PeerId, u64>,
) -> Result<PeerId, String> {
    let empty = PeerLoad::default();
    let mut refused: Vec<(&str, Refusal)> = Vec::new();
    let mut refused_more = 0usize;
    let mut best: Option<(u64, u64, PeerId)> = None;
    for peer in state.members().filter(|p| p.is_up()) {
        let here = load.get(&peer.id).unwrap_or(&empty);
        if let Err(refusal) = placement::check(peer, here, workload) {
            if refused.len() < PENDING_REASON_PEERS_MAX {
                refused.push((&peer.name, refusal));
            } else {
                refused_more += 1;
            }
            continue;
        }
        let key = (
            mine.get(&peer.id).copied().unwrap_or(0),
            here.replicas,
            peer.id,
        );
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    if let Some((_, _, peer)) = best {
        return Ok(peer);
    }
    if refused.is_empty() {
        return Err("no peer is up".into());
    }
    let mut reason = refused
        .iter()
        .map(|(name, refusal)| format!("{name}: {refusal}"))
        .collect::<Vec<_>>()
        .join("; ");
    if refused_more > 0 {
        reason.push_str(&format!("; and {refused_more} more peer(s)"));
    }
    Err(reason)
}

/// Places replicas of the workload at `path` one after another, each seeing the ones
/// before it (the same choices as placing them one by one).
fn place_many(state: &mut State, index: u64, path: &str, replicas: &[u32]) {
    let choices = {
        let Some(workload) = state.workloads.get(path) else {
            return;
        };
        let mut load = load(state);
        let mut mine = mine_of(workload);
        // A replica being re-placed no longer counts where it was.
        for &replica in replicas {
            if let Some(old) = workload.instances.get(&replica).and_then(|i| i.peer) {
                if let Some(here) = load.get_mut(&old) {
                    here.remove(workload, replica);
                }
                if let Some(count) = mine.get_mut(&old) {
                    *count = count.saturating_sub(1);
                }
            }
        }
        choose_many(state, workload, &mut load, &mut mine, replicas)
    };
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

/// A peer's rank for one more replica of a workload: fewest of this workload, then
/// fewest in all, then the lowest id (smallest wins).
type SpreadKey = (u64, u64, PeerId);

/// Chooses a peer for each of `replicas` in turn, each seeing the ones before: the same
/// choices as calling [`choose`] for each, in O(peers + replicas × log peers) instead of
/// O(peers × replicas). Placing a replica on a peer changes only that peer's load, so
/// every other peer's verdict and spread key for this workload stay as they were; only
/// the chosen peer is checked again.
fn choose_many<'a>(
    state: &'a State,
    workload: &'a Workload,
    load: &mut BTreeMap<PeerId, PeerLoad<'a>>,
    mine: &mut BTreeMap<PeerId, u64>,
    replicas: &[u32],
) -> Vec<(u32, Result<PeerId, String>)> {
    let empty = PeerLoad::default();
    let key = |peer: PeerId, load: &BTreeMap<PeerId, PeerLoad>, mine: &BTreeMap<PeerId, u64>| {
        let replicas_here = load.get(&peer).map_or(0, |l| l.replicas);
        (mine.get(&peer).copied().unwrap_or(0), replicas_here, peer)
    };
    let mut ready: BinaryHeap<Reverse<SpreadKey>> = state
        .members()
        .filter(|p| p.is_up())
        .filter(|p| placement::check(p, load.get(&p.id).unwrap_or(&empty), workload).is_ok())
        .map(|p| Reverse(key(p.id, load, mine)))
        .collect();
    let mut why_none: Option<String> = None;
    let mut out = Vec::with_capacity(replicas.len());
    for &replica in replicas {
        let Some(Reverse((_, _, chosen))) = ready.pop() else {
            let why = why_none.get_or_insert_with(|| {
                choose(state, workload, load, mine)
                    .err()
                    .unwrap_or_else(|| "no peer can take it".into())
            });
            out.push((replica, Err(why.clone())));
            continue;
        };
        let here = load.entry(chosen).or_default();
        here.add(workload, replica);
        *mine.entry(chosen).or_insert(0) += 1;
        let again = state
            .peers
            .get(&chosen)
            .is_some_and(|p| placement::check(p, &load[&chosen], workload).is_ok());
        if again {
            ready.push(Reverse(key(chosen, load, mine)));
        }
        out.push((replica, Ok(chosen)));
    }
    out
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
pub(crate) fn targets(state: &State, path: &str) -> Result<Vec<String>, Rejection> {
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
    evaluated: Option<&EvaluatedByPath>,
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
        let evaluated = evaluated.and_then(|all| all.get(&e.path));
        let replicas = replicas_of(&e.definition, evaluated);
        let workload = Workload {
            path: e.path.clone(),
            group: e.group,
            requests: requests_of(&e.definition),
            requirements: requirements_of(&e.definition),
            host_ports: evaluated.map(|e| e.host_ports.clone()).unwrap_or_default(),
            constraints: constraints_of(&e.definition, evaluated, tag, peer),
            evaluated: evaluated.cloned(),
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

/// The definition a running workload at `path` takes on `update`: its runnable resolved
/// again, with its group's variables.
pub(crate) fn updated_definition(state: &State, path: &str) -> Result<Expanded, Rejection> {
    let expanded = expand(state, path)?;
    let Some(mut e) = expanded.into_iter().find(|e| e.path == path) else {
        return Err(Rejection::NotRunnable {
            path: path.into(),
            kind: "no longer a runnable".into(),
        });
    };
    // A member keeps its group's variables.
    if let Some(group) = state.workloads.get(path).and_then(|w| w.group.clone()) {
        if let Some(g) = state.templates.get(&group) {
            let lookup = |q: &str| state.templates.get(q).map(|t| &t.definition);
            if let Ok(group_tree) = resolve(&g.path, &lookup) {
                e.definition = with_group_variables(&e.definition, &group_tree);
            }
        }
    }
    Ok(e)
}

/// `workload-update`: take the current templates; a change starts a new generation.
pub(crate) fn update(
    state: &mut State,
    index: u64,
    path: &str,
    overrides: &BTreeMap<String, String>,
    evaluated: Option<&EvaluatedByPath>,
) -> Result<Applied, Rejection> {
    let updates = targets(state, path)?
        .iter()
        .map(|p| updated_definition(state, p))
        .collect::<Result<Vec<_>, _>>()?;
    check_overrides(path, &updates, overrides)?;
    for e in updates {
        let Some(w) = state.workloads.get_mut(&e.path) else {
            continue;
        };
        let mut merged = w.overrides.clone();
        merged.extend(overrides_for(&e.definition, overrides));
        let evaluated = evaluated.and_then(|all| all.get(&e.path));
        if w.definition != e.definition || w.overrides != merged {
            w.requests = requests_of(&e.definition);
            w.requirements = requirements_of(&e.definition);
            let fresh = constraints_of(&e.definition, evaluated, None, None);
            w.constraints.resident = fresh.resident;
            w.constraints.ignore_pressure = fresh.ignore_pressure;
            if let Some(ev) = evaluated {
                w.host_ports = ev.host_ports.clone();
                w.evaluated = Some(ev.clone());
            }
            w.definition = e.definition;
            w.overrides = merged;
            w.generation += 1;
            w.changed_at_index = index;
            evict_misfits(state, index, &e.path, "after the update");
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

/// Unplaces the replicas of `path` that their peer can no longer take (checked as if
/// each were placed anew, highest replica first, everything else staying), so
/// `place_all_pending` moves them. Used after an update changed what they ask for.
fn evict_misfits(state: &mut State, index: u64, path: &str, when: &str) {
    let evicted = {
        let Some(w) = state.workloads.get(path) else {
            return;
        };
        let mut load = load(state);
        let mut evicted = Vec::new();
        for i in w.instances.values().rev() {
            let Some(peer_id) = i.peer else { continue };
            let (Some(peer), Some(here)) = (state.peers.get(&peer_id), load.get_mut(&peer_id))
            else {
                continue;
            };
            here.remove(w, i.replica);
            match placement::check(peer, here, w) {
                Ok(()) => here.add(w, i.replica),
                Err(refusal) => {
                    evicted.push((i.replica, format!("{}: {refusal} {when}", peer.name)))
                }
            }
        }
        evicted
    };
    unplace(state, index, path, evicted);
}

fn unplace(state: &mut State, index: u64, path: &str, replicas: Vec<(u32, String)>) {
    let Some(w) = state.workloads.get_mut(path) else {
        return;
    };
    for (replica, why) in replicas {
        if let Some(i) = w.instances.get_mut(&replica) {
            i.peer = None;
            i.pending = Some(why);
            i.placed_at_index = index;
            i.observed = None;
        }
    }
}

/// `peer-tagged`: the replicas on the peer whose tag or name constraints it no longer
/// meets are unplaced (they move), then every pending replica gets another chance.
pub(crate) fn peer_retagged(state: &mut State, index: u64, peer_id: PeerId) {
    let Some(peer) = state.peers.get(&peer_id) else {
        return;
    };
    let mut misfits: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
    for w in state.workloads.values() {
        let Err(refusal) = placement::check_constraints(peer, &w.constraints) else {
            continue;
        };
        for i in w.instances.values().filter(|i| i.peer == Some(peer_id)) {
            misfits.entry(w.path.clone()).or_default().push((
                i.replica,
                format!("{}: {refusal} after retagging", peer.name),
            ));
        }
    }
    for (path, replicas) in misfits {
        unplace(state, index, &path, replicas);
    }
    place_all_pending(state, index);
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
    // Pending replicas elsewhere keep a reason that names this peer: say it anew.
    place_all_pending(state, index);
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
