//! Entity instances as workloads (issue 14): which lifecycle verbs a `run`, `update`,
//! `stop`, `restart` or `purge` queues for an instance, and `entity-verb-done`, the
//! hosting peer's result of the verb at the head of the queue. Pure: the scripts ran in
//! that peer's entity executor; here only their results are recorded, so every peer
//! holds the same saved state, and a verb whose result never committed stays queued.

use crate::apply::{Applied, Rejection};
use crate::command::{InstanceStatus, PeerId};
use crate::state::State;
use crate::workload::{Desired, EntityLife, Observation, VerbResult, Workload};

use super::definition::EntityType;
use super::truncated;

/// The lifecycle verbs the cluster queues itself; custom verbs run through `monk do`.
pub const LIFECYCLE_VERBS: [&str; 5] = ["create", "start", "update", "stop", "purge"];
/// The verb a readiness check runs as; it is never queued, it follows a `start`.
pub const CHECK_READINESS: &str = "check-readiness";
/// Largest saved state, in bytes of JSON: the same bound the engine puts on what a
/// script returns (`monk_js::limits`), so a result the engine let through fits.
pub const ENTITY_STATE_BYTES_MAX: usize = 1024 * 1024;
/// Most arguments a `monk do` names (`k=v` pairs on a command line).
pub const ACTION_ARGS_MAX: usize = 64;

/// A fresh instance's lifecycle: created, then started.
pub(crate) fn new_life(entity: EntityType) -> EntityLife {
    EntityLife {
        type_path: entity.path,
        type_definition: entity.definition,
        modules: entity.modules,
        state: None,
        created: false,
        todo: vec!["create".into(), "start".into()],
        step: 1,
        last: None,
    }
}

/// Replaces what is queued; the head changes, so the step moves on.
fn queue(life: &mut EntityLife, verbs: &[&str]) {
    life.todo = verbs.iter().map(|v| v.to_string()).collect();
    life.step += 1;
}

/// `run` (of a stopped or failed instance) and `restart`: create it if it never was,
/// then start it.
pub(crate) fn queue_run(life: &mut EntityLife) {
    match life.created {
        true => queue(life, &["start"]),
        false => queue(life, &["create", "start"]),
    }
}

/// `update` with a changed definition or type: update, then start (a stopped
/// instance is only updated; one never created is created when it next runs).
pub(crate) fn queue_update(life: &mut EntityLife, entity: EntityType, desired: Desired) {
    life.type_path = entity.path;
    life.type_definition = entity.definition;
    life.modules = entity.modules;
    match (life.created, desired) {
        (true, Desired::Running) => queue(life, &["update", "start"]),
        (true, Desired::Stopped) => queue(life, &["update"]),
        (false, Desired::Running) => queue(life, &["create", "start"]),
        (false, Desired::Stopped) => queue(life, &[]),
    }
}

/// `stop`: an instance never created has nothing to stop.
pub(crate) fn queue_stop(life: &mut EntityLife) {
    match life.created {
        true => queue(life, &["stop"]),
        false => queue(life, &[]),
    }
}

/// Whether a `run` of a running instance has something to do: its last verb failed
/// and nothing is queued, so the run tries again.
pub(crate) fn wants_retry(life: &EntityLife) -> bool {
    life.todo.is_empty() && life.last.as_ref().is_some_and(|l| l.error.is_some())
}

/// `purge`: an instance that was created runs its `purge` verb first and is forgotten
/// when that succeeds; one never created is forgotten at once (returns `true`).
pub(crate) fn queue_purge(w: &mut Workload) -> bool {
    let Some(life) = w.entity.as_mut() else {
        return true;
    };
    if !life.created {
        return true;
    }
    w.desired = Desired::Stopped;
    queue(life, &["purge"]);
    false
}

/// Refuses a result from a peer that is not a member; else how to refuse it as stale.
fn reporter_checked<'p>(
    state: &State,
    peer: PeerId,
    path: &'p str,
) -> Result<impl Fn(String) -> Rejection + use<'p>, Rejection> {
    if !state.peers.get(&peer).is_some_and(|p| p.is_member()) {
        return Err(Rejection::UnknownPeer { peer });
    }
    Ok(move |why: String| Rejection::StaleReport {
        path: path.into(),
        replica: 0,
        why,
    })
}

/// `entity-verb-done`, as the command carries it.
pub(crate) struct VerbDone<'a> {
    pub peer: PeerId,
    pub path: &'a str,
    pub generation: u64,
    pub step: u64,
    pub verb: &'a str,
    pub state: Option<&'a String>,
    pub error: Option<&'a String>,
    pub args: &'a [String],
}

/// `entity-verb-done`: recorded only from the hosting peer, for the current generation
/// and step, and only for the verb at the head of the queue (or a readiness check of a
/// started instance).
pub(crate) fn verb_done(state: &mut State, index: u64, d: VerbDone) -> Result<Applied, Rejection> {
    let stale = reporter_checked(state, d.peer, d.path)?;
    if let Some(saved) = d.state {
        if saved.len() > ENTITY_STATE_BYTES_MAX {
            return Err(Rejection::Limit {
                what: format!("bytes of saved state of {}", d.path),
                max: ENTITY_STATE_BYTES_MAX,
            });
        }
        if !serde_json::from_str::<serde_json::Value>(saved).is_ok_and(|v| v.is_object()) {
            return Err(stale("the saved state is not a JSON object".into()));
        }
    }
    let w = state
        .workloads
        .get_mut(d.path)
        .ok_or_else(|| stale("no such workload".into()))?;
    if w.generation != d.generation {
        return Err(stale(format!(
            "generation {} is not the workload's {}",
            d.generation, w.generation
        )));
    }
    if w.instances.get(&0).and_then(|i| i.peer) != Some(d.peer) {
        return Err(stale(format!(
            "the instance is not placed on peer {}",
            d.peer
        )));
    }
    let desired = w.desired;
    let life = w
        .entity
        .as_mut()
        .ok_or_else(|| stale("not an entity instance".into()))?;
    if life.step != d.step {
        return Err(stale(format!(
            "step {} is not the instance's {}",
            d.step, life.step
        )));
    }
    if is_custom(d.verb) {
        return custom_done(life, index, &d).map_err(stale);
    }
    let expected = match life.todo.first() {
        Some(head) => head.as_str(),
        None if desired == Desired::Running && life.has_readiness_check() => CHECK_READINESS,
        None => "",
    };
    if d.verb != expected {
        return Err(stale(format!(
            "{} is not the verb due (due: {})",
            d.verb,
            if expected.is_empty() {
                "none"
            } else {
                expected
            }
        )));
    }
    record(life, index, &d);
    let status = match d.error {
        Some(_) => {
            life.todo.clear();
            InstanceStatus::Failed
        }
        None => {
            if d.verb == "create" {
                life.created = true;
            }
            if d.verb != CHECK_READINESS {
                life.todo.remove(0);
            }
            status_after(life, desired, d.verb)
        }
    };
    if d.error.is_none() && d.verb == "purge" {
        // Entity instances ask no resources: forgetting one frees no room.
        state.workloads.remove(d.path);
        return Ok(Applied::Accepted { peer_id: None });
    }
    let message = d.error.map(|e| truncated(e)).unwrap_or_default();
    if let Some(instance) = w.instances.get_mut(&0) {
        instance.observed = Some(Observation {
            generation: d.generation,
            status,
            message,
            at_index: index,
            addresses: Default::default(),
        });
    }
    Ok(Applied::Accepted { peer_id: None })
}

/// Whether `verb` is a custom verb (`monk do`), not one the cluster queues itself.
pub fn is_custom(verb: &str) -> bool {
    verb != CHECK_READINESS && !LIFECYCLE_VERBS.contains(&verb)
}

/// Records a result: the saved state it returned, the verb's outcome, and a new step
/// (every accepted result moves the step on, so a verb that started before it and
/// finishes after it is refused rather than overwriting what it saved).
fn record(life: &mut EntityLife, index: u64, d: &VerbDone) {
    if let (Some(saved), None) = (d.state, d.error) {
        life.state = Some(saved.clone());
    }
    life.last = Some(VerbResult {
        verb: d.verb.into(),
        args: d.args.to_vec(),
        error: d.error.map(|e| truncated(e)),
        at_index: index,
    });
    life.step += 1;
}

/// A custom verb's result (`monk do`): declared by the type, on a created instance; it
/// saves state like any verb, and a failure fails the action, not the instance.
fn custom_done(life: &mut EntityLife, index: u64, d: &VerbDone) -> Result<Applied, String> {
    let declared = life
        .type_definition
        .get("lifecycle")
        .and_then(|l| l.get(d.verb))
        .is_some();
    if !declared {
        return Err(format!("{} declares no verb {}", life.type_path, d.verb));
    }
    if !life.created {
        return Err("the instance is not created".into());
    }
    if d.args.len() > ACTION_ARGS_MAX {
        return Err(format!("more than {ACTION_ARGS_MAX} arguments"));
    }
    record(life, index, d);
    Ok(Applied::Accepted { peer_id: None })
}

/// What an instance is after a verb succeeded: still starting while verbs are queued,
/// stopped after `stop`, ready after its readiness check (or at once without one).
fn status_after(life: &EntityLife, desired: Desired, verb: &str) -> InstanceStatus {
    if !life.todo.is_empty() {
        return InstanceStatus::Starting;
    }
    match (desired, verb) {
        (Desired::Stopped, _) => InstanceStatus::Stopped,
        (Desired::Running, CHECK_READINESS) => InstanceStatus::Ready,
        (Desired::Running, _) if life.has_readiness_check() => InstanceStatus::Running,
        (Desired::Running, _) => InstanceStatus::Ready,
    }
}

/// `action-done`, as the command carries it.
pub(crate) struct ActionDone<'a> {
    pub peer: PeerId,
    pub path: &'a str,
    pub action: &'a str,
    pub args: &'a [String],
    pub error: Option<&'a String>,
}

/// `action-done`: recorded only from a peer holding one of the runnable's replicas,
/// for an action its definition declares; it changes nothing but the workload's last
/// action.
pub(crate) fn action_done(
    state: &mut State,
    index: u64,
    d: ActionDone,
) -> Result<Applied, Rejection> {
    let stale = reporter_checked(state, d.peer, d.path)?;
    if d.args.len() > ACTION_ARGS_MAX {
        return Err(Rejection::Limit {
            what: "arguments of one action".into(),
            max: ACTION_ARGS_MAX,
        });
    }
    let w = state
        .workloads
        .get_mut(d.path)
        .ok_or_else(|| stale("no such workload".into()))?;
    // `monk do` runs on replica 0's peer; a container hook on its replica's.
    if !w.instances.values().any(|i| i.peer == Some(d.peer)) {
        return Err(stale(format!("no replica is placed on peer {}", d.peer)));
    }
    if w.definition
        .get("actions")
        .and_then(|a| a.get(d.action))
        .is_none()
    {
        return Err(stale(format!("{} declares no action {}", d.path, d.action)));
    }
    w.last_action = Some(VerbResult {
        verb: d.action.into(),
        args: d.args.to_vec(),
        error: d.error.map(|e| truncated(e)),
        at_index: index,
    });
    Ok(Applied::Accepted { peer_id: None })
}
