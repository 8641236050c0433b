//! The entity executor: runs the JavaScript lifecycle of the entity instances the
//! scheduler placed on this peer (issue 14), and proposes each verb's result as an
//! `entity-verb-done` command. The state machine never runs a script; it only records
//! results, so every peer holds the same saved state.
//!
//! Level-triggered like the container executor: every tick it reads the instances
//! placed here (`view::entity_assignments`) and starts the verb each one has due (the
//! head of its queue, or a readiness check), at most one per instance at a time. A
//! result is proposed for the generation and step the verb started at, so a late one
//! is refused as stale; a result that could not be proposed is kept and proposed again
//! (the verb is not run twice for it); a verb whose peer crashed before its result
//! committed is still due after the restart and runs again. It acts only under the
//! executor's lease (`node/src/node/lease.rs`), like the container executor.
//!
//! - [`script`]: which script a verb runs and what `main` is given (pure).
//! - [`host`]: secrets, HTTP and trace lines for the scripts.

pub mod action;
pub mod host;
pub mod script;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monk_js::{JsEngine, QuickJsEngine};
use monk_statemachine::schedule::entity::CHECK_READINESS;
use monk_statemachine::view::{entity_assignments, EntityAssignment};
use monk_statemachine::{Command, PeerId};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::node::lease::LeaseState;
use crate::node::Node;
use crate::secrets::WorkloadSecrets;

/// How often the entity executor looks for due verbs: short, because each verb of a
/// `run` (create, start, readiness) waits for the previous result to be applied here.
pub const ENTITY_TICK: Duration = Duration::from_millis(200);
/// Most verbs running at once on a peer (each holds a blocking thread for up to the
/// engine's wall-clock limit).
pub const ENTITY_VERBS_IN_FLIGHT_MAX: usize = 16;
/// How long a proposed result may take to show in this peer's state before the verb
/// counts as due again (a result that committed shows within milliseconds; one lost
/// with a leader change never shows).
pub const ENTITY_RESULT_SHOW_WAIT: Duration = Duration::from_secs(30);

/// One finished invocation, sent from its task back to the loop.
struct Finished {
    path: String,
    generation: u64,
    step: u64,
    verb: String,
    result: Result<Option<String>, String>,
}

/// A readiness check's progress for one (path, generation, step).
#[derive(Default)]
struct Checking {
    since: Option<Instant>,
    last: Option<Instant>,
    failures: u32,
}

/// What the loop remembers between ticks (nothing of it is needed for correctness
/// after a restart: the state says what is due).
#[derive(Default)]
struct Memo {
    in_flight: HashSet<String>,
    /// Results proposed, by path: (generation, step, when).
    proposed: HashMap<String, (u64, u64, Instant)>,
    /// Results not yet proposed (no leader), by path.
    unproposed: HashMap<String, Command>,
    checking: HashMap<(String, u64, u64), Checking>,
}

impl Memo {
    /// Forgets what concerns instances no longer hosted here, or readiness checks of
    /// a generation or step the instance moved past, so the memo stays as small as
    /// the instances hosted.
    fn forget_gone(&mut self, due: &[EntityAssignment]) {
        let hosted = |path: &str| due.iter().any(|a| a.path == path);
        self.proposed.retain(|path, _| hosted(path));
        self.checking.retain(|(path, generation, step), _| {
            due.iter()
                .any(|a| a.path == *path && a.generation == *generation && a.life.step == *step)
        });
    }
}

/// The result of `verb` on `path`, as the log records it, naming instance and verb.
fn failure(path: &str, verb: &str, why: impl std::fmt::Display) -> String {
    format!("{path} {verb}: {why}")
}

/// One verb's run: the saved state it returned (as JSON text), `None` to keep it, or
/// why it failed; and the lines it wrote.
pub(crate) struct VerbRun {
    pub result: Result<Option<String>, String>,
    pub output: Vec<String>,
}

/// Runs `verb` for `a` on a blocking thread with `args` (`monk do`'s `k=v`).
pub(crate) async fn run_verb(
    node: Arc<Node>,
    engine: Arc<QuickJsEngine>,
    a: EntityAssignment,
    verb: String,
    args: serde_json::Map<String, serde_json::Value>,
) -> VerbRun {
    let secrets = WorkloadSecrets {
        sealed: {
            let shared = node.shared_state();
            let guard = shared.read().unwrap_or_else(|p| p.into_inner());
            guard.state.secrets().clone()
        },
        key: node.cluster_key().ok().flatten(),
    };
    let script = match script::script_for(&a, &verb) {
        Ok(Some(script)) => script,
        Ok(None) => {
            return VerbRun {
                result: Ok(None),
                output: Vec::new(),
            }
        }
        Err(e) => {
            return VerbRun {
                result: Err(e.to_string()),
                output: Vec::new(),
            }
        }
    };
    let invocation = script::invocation(&a, &verb, args);
    let host = Arc::new(host::EntityHost {
        node,
        runtime: tokio::runtime::Handle::current(),
        path: a.path.clone(),
        verb: verb.clone(),
        permits: vec![a.definition.clone(), a.life.type_definition.clone()],
        secrets,
        lines: Default::default(),
    });
    let seen = host.clone();
    let outcome =
        tokio::task::spawn_blocking(move || engine.invoke(&script, &invocation, host)).await;
    let output = std::mem::take(&mut *seen.lines.lock().unwrap_or_else(|p| p.into_inner()));
    let result = match outcome {
        Err(e) => Err(failure(
            &a.path,
            &verb,
            format!("the script's thread ended: {e}"),
        )),
        Ok(Err(e)) => Err(failure(&a.path, &verb, e)),
        Ok(Ok(outcome)) => saved_state(&a.path, &verb, outcome.state),
    };
    VerbRun { result, output }
}

/// What a script returned, as the saved state's JSON text: an object replaces the
/// state, nothing keeps it, anything else is an error.
fn saved_state(
    path: &str,
    shown: &str,
    state: Option<serde_json::Value>,
) -> Result<Option<String>, String> {
    match state {
        None => Ok(None),
        Some(serde_json::Value::Object(map)) => {
            Ok(Some(serde_json::Value::Object(map).to_string()))
        }
        Some(other) => Err(failure(
            path,
            shown,
            format!("main returned {other}, not an object (return an object or nothing)"),
        )),
    }
}

/// Whether a readiness check of `a` is due now (its initial delay and period passed),
/// starting its clock on first sight.
fn check_due(memo: &mut Memo, a: &EntityAssignment, now: Instant) -> bool {
    let Some(timing) = script::readiness_of(&a.life.type_definition) else {
        return false;
    };
    let c = memo
        .checking
        .entry((a.path.clone(), a.generation, a.life.step))
        .or_default();
    let since = *c.since.get_or_insert(now);
    now.duration_since(since) >= timing.initial_delay
        && c.last
            .is_none_or(|last| now.duration_since(last) >= timing.period)
}

/// Runs the entity executor for `node` until the node shuts down.
pub async fn run(node: Arc<Node>) {
    let engine = Arc::new(QuickJsEngine::default());
    let (done_tx, mut done_rx) = mpsc::channel::<Finished>(ENTITY_VERBS_IN_FLIGHT_MAX);
    let mut memo = Memo::default();
    loop {
        if node.is_shut_down() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(ENTITY_TICK) => {}
            Some(done) = done_rx.recv() => finished(&node, &mut memo, done).await,
        }
        let Some(peer) = node.peer_id().await else {
            continue;
        };
        if node.lease_state().await != LeaseState::Current {
            continue;
        }
        let hosted = || {
            let shared = node.shared_state();
            let guard = shared.read().unwrap_or_else(|p| p.into_inner());
            entity_assignments(&guard.state, peer)
        };
        let mut due = hosted();
        // A result just committed may have made the next verb due: look again rather
        // than a tick later.
        if propose_kept(&node, peer, &mut memo, &due).await {
            due = hosted();
        }
        memo.forget_gone(&due);
        let now = Instant::now();
        for a in due {
            if memo.in_flight.len() >= ENTITY_VERBS_IN_FLIGHT_MAX {
                break;
            }
            let Some(verb) = a.verb_due().map(String::from) else {
                continue;
            };
            if memo.in_flight.contains(&a.path) || memo.unproposed.contains_key(&a.path) {
                continue;
            }
            let shown = memo.proposed.get(&a.path).is_some_and(|(g, s, at)| {
                (*g, *s) == (a.generation, a.life.step)
                    && now.duration_since(*at) < ENTITY_RESULT_SHOW_WAIT
            });
            if shown || (verb == CHECK_READINESS && !check_due(&mut memo, &a, now)) {
                continue;
            }
            if let Some(c) = memo
                .checking
                .get_mut(&(a.path.clone(), a.generation, a.life.step))
            {
                c.last = Some(now);
            }
            info!(instance = %a.path, %verb, generation = a.generation, "entity executor: running");
            memo.in_flight.insert(a.path.clone());
            let (node, engine, tx) = (node.clone(), engine.clone(), done_tx.clone());
            tokio::spawn(async move {
                let (path, generation, step) = (a.path.clone(), a.generation, a.life.step);
                let result = run_verb(node, engine, a, verb.clone(), Default::default())
                    .await
                    .result;
                let done = Finished {
                    path,
                    generation,
                    step,
                    verb,
                    result,
                };
                if tx.send(done).await.is_err() {
                    warn!("entity executor: a result arrived after the loop ended");
                }
            });
        }
    }
}

/// Handles a finished verb: a readiness check that failed with attempts left waits
/// for its next period; anything else is proposed.
async fn finished(node: &Arc<Node>, memo: &mut Memo, done: Finished) {
    memo.in_flight.remove(&done.path);
    let Some(peer) = node.peer_id().await else {
        return;
    };
    let mut error = done.result.as_ref().err().cloned();
    if done.verb == CHECK_READINESS {
        let key = (done.path.clone(), done.generation, done.step);
        if let Some(why) = &error {
            let attempts = {
                let shared = node.shared_state();
                let guard = shared.read().unwrap_or_else(|p| p.into_inner());
                guard
                    .state
                    .workload(&done.path)
                    .and_then(|w| w.entity.as_ref())
                    .and_then(|l| script::readiness_of(&l.type_definition))
                    .map_or(1, |r| r.attempts)
            };
            let c = memo.checking.entry(key.clone()).or_default();
            c.failures += 1;
            if c.failures < attempts {
                info!(instance = %done.path, "entity executor: not ready yet ({}/{attempts}): {why}", c.failures);
                return;
            }
            error = Some(format!(
                "not ready after {attempts} attempt(s); last: {why}"
            ));
        }
        memo.checking.remove(&key);
    }
    let command = Command::EntityVerbDone {
        peer,
        path: done.path.clone(),
        generation: done.generation,
        step: done.step,
        verb: done.verb,
        state: done.result.ok().flatten(),
        error,
        args: Vec::new(),
    };
    memo.unproposed.insert(done.path, command);
}

/// Proposes the results kept, dropping those the state has moved past (another
/// generation or step: the result no longer applies); whether any was proposed.
async fn propose_kept(
    node: &Arc<Node>,
    peer: PeerId,
    memo: &mut Memo,
    due: &[EntityAssignment],
) -> bool {
    let kept: Vec<(String, Command)> = memo.unproposed.drain().collect();
    let mut proposed = false;
    for (path, command) in kept {
        let Command::EntityVerbDone {
            generation, step, ..
        } = &command
        else {
            continue;
        };
        let (generation, step) = (*generation, *step);
        let current = due
            .iter()
            .any(|a| a.path == path && a.generation == generation && a.life.step == step);
        if !current {
            continue;
        }
        let summary = command.summary();
        match node
            .propose(node.stamp(format!("peer:{peer}/entity-executor"), command.clone()))
            .await
        {
            Ok(outcome) => {
                if let monk_statemachine::Applied::Rejected { reason } = outcome.applied {
                    warn!("entity executor: {summary}: refused: {reason}");
                }
                memo.proposed
                    .insert(path, (generation, step, Instant::now()));
                proposed = true;
            }
            Err(e) => {
                warn!("entity executor cannot propose {summary}: {e}; will retry");
                memo.unproposed.insert(path, command);
            }
        }
    }
    proposed
}
