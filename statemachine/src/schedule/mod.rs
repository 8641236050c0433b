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

mod definition;
pub use definition::{moves_on_peer_failure, ENTITY_MODULES_MAX};
pub mod entity;
mod place;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use monk_scripting::monkscript::resolve::{resolve, with_group_variables};

use crate::apply::{Applied, Rejection};
use crate::command::{EvaluatedByPath, InstanceStatus, PeerId};
use crate::state::State;
use crate::workload::{Desired, Instance, Observation, Workload};

use definition::{check_overrides, constraints_of, replicas_of, requests_of, requirements_of};
pub(crate) use definition::{expand, overrides_for, Expanded};
pub(crate) use entity::{action_done, verb_done, ActionDone, VerbDone};
pub use place::choose_peer;
use place::{evict_misfits, place_many, place_pending_of};
pub(crate) use place::{peer_lost, peer_retagged, place_all_pending};
/// Most replicas one workload may ask for.
pub const REPLICAS_MAX: u32 = 1000;
/// Most workloads the cluster records.
pub const WORKLOADS_MAX: usize = 10_000;
/// Deepest nesting of groups inside groups.
pub const GROUP_DEPTH_MAX: usize = 8;
/// Longest executor message kept with an observation, in bytes.
pub const REPORT_MESSAGE_BYTES_MAX: usize = 1024;
/// Most container addresses one `workload-report` may carry (one per container of
/// the replica).
pub const REPORT_ADDRESSES_MAX: usize = 64;
/// Most runtime variables one command may set.
pub const OVERRIDES_MAX: usize = 256;
/// Most peers named in a pending replica's reason; the rest are counted.
pub const PENDING_REASON_PEERS_MAX: usize = 8;

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

/// What `workload-run` was asked, as the command carries it.
pub(crate) struct RunRequest<'a> {
    pub path: &'a str,
    pub tag: Option<&'a String>,
    pub peer: Option<&'a String>,
    pub overrides: &'a BTreeMap<String, String>,
    pub evaluated: Option<&'a EvaluatedByPath>,
    /// Whether entity instances may be run (entries of format 7 on).
    pub entities: bool,
}

/// Whether `run` starts an existing workload again: it is stopped, or it is an entity
/// instance whose last verb failed with nothing queued (so the run retries it).
fn runs_again(w: &Workload) -> bool {
    w.desired == Desired::Stopped || w.entity.as_ref().is_some_and(entity::wants_retry)
}

/// `workload-run`.
pub(crate) fn run(state: &mut State, index: u64, r: RunRequest) -> Result<Applied, Rejection> {
    let RunRequest {
        path,
        tag,
        peer,
        overrides,
        evaluated,
        entities,
    } = r;
    let expanded = expand(state, path, entities)?;
    check_overrides(path, &expanded, overrides)?;
    // Stopped workloads start again where they were; running ones are left alone.
    let mut fresh = Vec::new();
    let mut restarted = Vec::new();
    for e in expanded {
        match state.workloads.get(&e.path) {
            Some(w)
                if w.entity
                    .as_ref()
                    .is_some_and(|l| l.todo.first().is_some_and(|v| v == "purge")) =>
            {
                return Err(Rejection::BeingPurged { path: e.path });
            }
            Some(w) if runs_again(w) => restarted.push(e.path),
            Some(_) => {}
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
            if let Some(life) = w.entity.as_mut() {
                entity::queue_run(life);
            }
        }
        place_pending_of(state, index, &path);
    }
    for e in fresh {
        let evaluated = evaluated.and_then(|all| all.get(&e.path));
        // An entity instance is one workload on one peer, asking for no resources.
        let (replicas, requests, requirements) = match e.entity {
            Some(_) => (1, Default::default(), Default::default()),
            None => (
                replicas_of(&e.definition, evaluated),
                requests_of(&e.definition),
                requirements_of(&e.definition),
            ),
        };
        let workload = Workload {
            path: e.path.clone(),
            group: e.group,
            requests,
            requirements,
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
            entity: e.entity.map(entity::new_life),
            last_action: None,
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
    let expanded = expand(state, path, true)?;
    let Some(mut e) = expanded.into_iter().find(|e| e.path == path) else {
        return Err(Rejection::NotRunnable {
            path: path.into(),
            kind: "no longer a runnable".into(),
        });
    };
    // A member keeps its group's variables.
    if let Some(group) = state.workloads.get(path).and_then(|w| w.group.clone()) {
        if state.definition(&group).is_some() {
            let lookup = |q: &str| state.definition(q);
            if let Ok(group_tree) = resolve(&group, &lookup) {
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
        let type_changed = match (&w.entity, &e.entity) {
            (Some(life), Some(ty)) => {
                life.type_definition != ty.definition || life.modules != ty.modules
            }
            _ => false,
        };
        if w.definition != e.definition || w.overrides != merged || type_changed {
            let desired = w.desired;
            if let (Some(life), Some(ty)) = (w.entity.as_mut(), e.entity) {
                entity::queue_update(life, ty, desired);
            } else {
                w.requests = requests_of(&e.definition);
                w.requirements = requirements_of(&e.definition);
            }
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
                if let Some(life) = w.entity.as_mut() {
                    entity::queue_stop(life);
                }
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
            if let Some(life) = w.entity.as_mut() {
                entity::queue_run(life);
            }
        }
        place_pending_of(state, index, p);
    }
    Ok(Applied::Accepted { peer_id: None })
}

/// `workload-purge`.
pub(crate) fn purge(state: &mut State, index: u64, path: &str) -> Result<Applied, Rejection> {
    for p in targets(state, path)? {
        let forget = match state.workloads.get_mut(&p) {
            Some(w) => {
                w.changed_at_index = index;
                entity::queue_purge(w)
            }
            None => false,
        };
        if forget {
            state.workloads.remove(&p);
        }
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
    if w.entity.is_some() {
        return Err(Rejection::NotRunnable {
            path: path.into(),
            kind: "entity instance (it has one replica)".into(),
        });
    }
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
    pub addresses: &'a BTreeMap<String, Ipv4Addr>,
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
        addresses,
    } = r;
    if addresses.len() > REPORT_ADDRESSES_MAX {
        return Err(Rejection::Limit {
            what: "container addresses in one report".into(),
            max: REPORT_ADDRESSES_MAX,
        });
    }
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
    if w.entity.is_some() {
        return Err(stale(
            "an entity instance (its executor reports with entity-verb-done)".into(),
        ));
    }
    let instance = w
        .instances
        .get_mut(&replica)
        .ok_or_else(|| stale("no such replica".into()))?;
    if instance.peer != Some(peer) {
        return Err(stale(format!("the replica is not placed on peer {peer}")));
    }
    let message = truncated(message);
    instance.observed = Some(Observation {
        generation,
        status,
        message,
        at_index: index,
        addresses: addresses.clone(),
    });
    Ok(Applied::Accepted { peer_id: None })
}

/// `message` cut to [`REPORT_MESSAGE_BYTES_MAX`] bytes at a character boundary.
pub(crate) fn truncated(message: &str) -> String {
    let mut message = message.to_string();
    if message.len() > REPORT_MESSAGE_BYTES_MAX {
        let mut cut = REPORT_MESSAGE_BYTES_MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    message
}
