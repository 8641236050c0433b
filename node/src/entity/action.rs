//! `monk do ns/name/verb k=v ...`: an entity instance's custom verb (JavaScript) or a
//! runnable's `actions.<name>` (ArrowScript `code` with typed `arguments`, whose
//! `exec(...)` runs in the runnable's replica 0). Either runs on the peer hosting the
//! instance or replica (the addressed peer forwards it there, one hop, as `monk exec`
//! does), its output and outcome go back to the user, and its result enters the log
//! (`entity-verb-done` or `action-done`) with the arguments' names only (values may
//! be secret). A verb result the log refuses (the instance changed while the verb ran)
//! is reported as not saved.

use std::collections::BTreeMap;
use std::sync::Arc;

use monk_js::QuickJsEngine;
use monk_scripting::arrow::value::Value;
use monk_scripting::tree::Tree;
use monk_statemachine::schedule::entity::{is_custom, ACTION_ARGS_MAX};
use monk_statemachine::view::entity_assignments;
use monk_statemachine::{Applied, Command, PeerId};
use serde::{Deserialize, Serialize};

use super::script;
use crate::node::{Node, NodeError, NodeResult};
use crate::pb::DoRequest;

/// What `monk do` prints: where it ran, the lines the script wrote, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoOutput {
    pub peer: PeerId,
    pub output: Vec<String>,
    /// Why the verb failed (or why its result was not saved); `None` is success.
    pub error: Option<String>,
    /// The log index of its recorded result.
    pub index: Option<u64>,
}

/// Runs `req` on the peer hosting the instance or the runnable's replica 0
/// (forwarding there from any other peer).
pub async fn run(node: &Arc<Node>, req: DoRequest) -> NodeResult<DoOutput> {
    let me = node.peer_id().await.ok_or(NodeError::NotMember)?;
    if req.args.len() > ACTION_ARGS_MAX {
        return Err(NodeError::InvalidArgument(format!(
            "at most {ACTION_ARGS_MAX} arguments"
        )));
    }
    let path = req.path.trim_start_matches('/').to_string();
    let (host, address, is_entity) = {
        let shared = node.shared_state();
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        let state = &guard.state;
        let w = state.workload(&path).ok_or_else(|| {
            NodeError::InvalidArgument(format!("no workload {path} is running or stopped"))
        })?;
        let host = w.instances.get(&0).and_then(|i| i.peer).ok_or_else(|| {
            NodeError::FailedPrecondition(format!("{path} is not placed on any peer"))
        })?;
        let address = state
            .peer(host)
            .map(|p| p.address.clone())
            .unwrap_or_default();
        (host, address, w.entity.is_some())
    };
    if host != me {
        if req.local_only {
            return Err(NodeError::FailedPrecondition(format!(
                "{path} is not hosted on this peer"
            )));
        }
        let mut client = node
            .peer_client(&address)
            .await
            .map_err(|e| NodeError::Unavailable(format!("peer {host} at {address}: {e}")))?;
        let forwarded = DoRequest {
            local_only: true,
            ..req
        };
        return client.entity_do(forwarded).await.map_err(|e| {
            NodeError::Unavailable(format!("peer {host} at {address}: {}", e.message))
        });
    }
    match is_entity {
        true => run_verb_here(node, me, &path, req).await,
        false => run_action_here(node, me, &path, 0, req).await,
    }
}

/// An entity instance's custom verb, on its host.
async fn run_verb_here(
    node: &Arc<Node>,
    me: PeerId,
    path: &str,
    req: DoRequest,
) -> NodeResult<DoOutput> {
    let assignment = {
        let shared = node.shared_state();
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        entity_assignments(&guard.state, me)
            .into_iter()
            .find(|a| a.path == path)
    };
    let a = assignment.ok_or_else(|| {
        NodeError::FailedPrecondition(format!("{path} is not hosted on this peer"))
    })?;
    check_verb(&a, &req.verb)?;
    let args = req
        .args
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let (generation, step) = (a.generation, a.life.step);
    let engine = Arc::new(QuickJsEngine::default());
    let run = super::run_verb(node.clone(), engine, a, req.verb.clone(), args).await;
    let command = Command::EntityVerbDone {
        peer: me,
        path: path.to_string(),
        generation,
        step,
        verb: req.verb.clone(),
        state: run.result.as_ref().ok().cloned().flatten(),
        error: run.result.as_ref().err().cloned(),
        args: sorted_names(&req),
    };
    let outcome = node
        .propose(node.stamp(format!("peer:{me}/entity-do"), command))
        .await?;
    let error = match (run.result, outcome.applied) {
        (Err(e), _) => Some(e),
        (Ok(_), Applied::Rejected { reason }) => Some(format!(
            "{path} {}: ran, but its result was not saved: {reason}",
            req.verb
        )),
        (Ok(_), Applied::Accepted { .. }) => None,
    };
    Ok(DoOutput {
        peer: me,
        output: run.output,
        error,
        index: Some(outcome.index),
    })
}

/// The names of `req`'s arguments, sorted: what the log records (never the values).
fn sorted_names(req: &DoRequest) -> Vec<String> {
    let mut names: Vec<String> = req.args.keys().cloned().collect();
    names.sort();
    names
}

/// A runnable's `actions.<name>` (ArrowScript `code` with typed `arguments`), on the
/// peer holding its replica 0: `exec(...)` runs in that replica's containers.
async fn run_action_here(
    node: &Arc<Node>,
    me: PeerId,
    path: &str,
    replica: u32,
    req: DoRequest,
) -> NodeResult<DoOutput> {
    let (cluster, definition, overrides) = {
        let shared = node.shared_state();
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        let state = &guard.state;
        let w = state.workload(path).ok_or_else(|| {
            NodeError::InvalidArgument(format!("no workload {path} is running or stopped"))
        })?;
        (
            state.cluster_name().unwrap_or_default().to_string(),
            w.definition.clone(),
            w.overrides.clone(),
        )
    };
    let declared = runnable_actions(&definition);
    let action = definition
        .get("actions")
        .and_then(|a| a.get(&req.verb))
        .ok_or_else(|| {
            NodeError::InvalidArgument(format!(
                "{path} has no action {}; it has: {}",
                req.verb,
                if declared.is_empty() {
                    "none".to_string()
                } else {
                    declared.join(", ")
                }
            ))
        })?;
    let code = action
        .get("code")
        .and_then(Tree::as_str)
        .unwrap_or_default();
    let mut variables = literal_variables(&definition);
    variables.extend(overrides);
    variables.extend(arguments(path, &req.verb, action, &req.args)?);
    let Some((runtime, observed)) =
        crate::executor::logs::local_containers(node, &cluster, me).await?
    else {
        return Err(NodeError::FailedPrecondition(format!(
            "peer {me} runs no containers (monkd --containers none), so {path}'s actions cannot run here"
        )));
    };
    let containers: Vec<&crate::executor::Observed> = observed
        .iter()
        .filter(|o| {
            o.key
                .as_ref()
                .is_some_and(|k| k.path == path && k.replica == replica)
        })
        .collect();
    let what = format!("action {}", req.verb);
    let result = crate::executor::readiness::evaluate_with_exec(
        runtime.as_ref(),
        path,
        &what,
        code,
        &variables,
        &containers,
    )
    .await
    .map_err(|e| format!("{path} {what}: {e}"));
    let command = Command::ActionDone {
        peer: me,
        path: path.to_string(),
        action: req.verb.clone(),
        args: sorted_names(&req),
        error: result.as_ref().err().cloned(),
    };
    let outcome = node
        .propose(node.stamp(format!("peer:{me}/action"), command))
        .await?;
    let output = match &result {
        Ok(value) if !matches!(value, Value::Nil) => {
            value.to_text().lines().map(String::from).collect()
        }
        _ => Vec::new(),
    };
    Ok(DoOutput {
        peer: me,
        output,
        error: result.err(),
        index: Some(outcome.index),
    })
}

/// The names of a runnable's `actions`.
pub fn runnable_actions(definition: &Tree) -> Vec<String> {
    match definition.get("actions") {
        Some(Tree::Map(entries)) => entries.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    }
}

/// A scalar's text (`None` for maps, lists, nulls and `<-` scripts).
fn literal_text(tree: &Tree) -> Option<String> {
    let text = match tree {
        Tree::Str(s) => s.clone(),
        Tree::Int(n) => n.to_string(),
        Tree::Bool(b) => b.to_string(),
        Tree::Float(f) => f.clone(),
        _ => return None,
    };
    (!text.trim_start().starts_with("<-")).then_some(text)
}

/// The runnable's variables with literal values (`name: v` or `name: {value: v}`).
fn literal_variables(definition: &Tree) -> BTreeMap<String, String> {
    let Some(Tree::Map(vars)) = definition.get("variables") else {
        return BTreeMap::new();
    };
    vars.iter()
        .filter_map(|(name, v)| {
            let value = match v {
                Tree::Map(_) => v.get("value").and_then(literal_text),
                other => literal_text(other),
            }?;
            Some((name.clone(), value))
        })
        .collect()
}

/// An action's arguments: those given, checked against `arguments.<name>.type`, and
/// the defaults of the rest; an unknown argument or a missing one without a default
/// is an error.
fn arguments(
    path: &str,
    action: &str,
    spec: &Tree,
    given: &std::collections::HashMap<String, String>,
) -> NodeResult<BTreeMap<String, String>> {
    let declared: Vec<(String, Tree)> = match spec.get("arguments") {
        Some(Tree::Map(entries)) => entries.clone(),
        _ => Vec::new(),
    };
    let bad = |why: String| NodeError::InvalidArgument(format!("{path}/{action}: {why}"));
    if let Some(unknown) = given
        .keys()
        .find(|k| !declared.iter().any(|(d, _)| d == *k))
    {
        let names: Vec<&str> = declared.iter().map(|(d, _)| d.as_str()).collect();
        return Err(bad(format!(
            "no argument {unknown} (it takes: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    let mut out = BTreeMap::new();
    for (name, arg) in &declared {
        let value = match (given.get(name), arg.get("default").and_then(literal_text)) {
            (Some(v), _) => v.clone(),
            (None, Some(default)) => default,
            (None, None) => return Err(bad(format!("argument {name} is required"))),
        };
        let ty = arg.get("type").and_then(Tree::as_str).unwrap_or("string");
        let fits = match ty {
            "int" | "integer" => value.parse::<i64>().is_ok(),
            "float" | "number" => value.parse::<f64>().is_ok(),
            "bool" | "boolean" => matches!(value.as_str(), "true" | "false"),
            _ => true,
        };
        if !fits {
            return Err(bad(format!("argument {name}={value:?} is not a {ty}")));
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Whether `verb` can be run with `monk do` on `a`: a custom verb its type declares,
/// on an instance that was created.
fn check_verb(a: &monk_statemachine::view::EntityAssignment, verb: &str) -> NodeResult<()> {
    if !is_custom(verb) {
        return Err(NodeError::InvalidArgument(format!(
            "{verb} is a lifecycle verb: monk run, update, stop and purge run it"
        )));
    }
    if !script::declares(&a.life.type_definition, verb) {
        let custom = custom_verbs(&a.life.type_definition);
        return Err(NodeError::InvalidArgument(format!(
            "{} ({}) has no action {verb}; it has: {}",
            a.path,
            a.life.type_path,
            if custom.is_empty() {
                "none".to_string()
            } else {
                custom.join(", ")
            }
        )));
    }
    if !a.life.created {
        return Err(NodeError::FailedPrecondition(format!(
            "{} is not created yet (monk run it first)",
            a.path
        )));
    }
    Ok(())
}

/// The custom verbs an entity type declares (its `lifecycle` keys besides the
/// lifecycle verbs and `sync`), for `monk actions` and error messages.
pub fn custom_verbs(type_definition: &monk_scripting::tree::Tree) -> Vec<String> {
    match type_definition.get("lifecycle") {
        Some(monk_scripting::tree::Tree::Map(entries)) => entries
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k != "sync" && is_custom(k))
            .collect(),
        _ => Vec::new(),
    }
}

/// Container hooks (`containers.<c>.hooks.container-started: <action>`) of `path`'s
/// `replica`, which just started on this peer: each named action runs, in the
/// background, like a `monk do` of it with its default arguments; a failure is recorded
/// (`action-done`) and shown by `monk describe`.
pub fn container_started(
    node: &Arc<Node>,
    me: PeerId,
    path: &str,
    replica: u32,
    definition: &Tree,
) {
    let Some(Tree::Map(containers)) = definition.get("containers") else {
        return;
    };
    for (container, spec) in containers {
        let Some(action) = spec
            .get("hooks")
            .and_then(|h| h.get(CONTAINER_STARTED))
            .and_then(Tree::as_str)
        else {
            continue;
        };
        let req = DoRequest {
            path: path.to_string(),
            verb: action.to_string(),
            args: Default::default(),
            local_only: true,
        };
        let (node, path, container) = (node.clone(), path.to_string(), container.clone());
        tokio::spawn(async move {
            match run_action_here(&node, me, &path, replica, req).await {
                Ok(DoOutput { error: None, .. }) => {
                    tracing::info!(%path, replica, %container, "hook {CONTAINER_STARTED} ran");
                }
                Ok(DoOutput { error: Some(e), .. }) => {
                    tracing::warn!(%path, replica, %container, "hook {CONTAINER_STARTED} failed: {e}");
                }
                Err(e) => {
                    tracing::warn!(%path, replica, %container, "hook {CONTAINER_STARTED} did not run: {e}");
                }
            }
        });
    }
}

/// The container hook run once a replica's containers run.
pub const CONTAINER_STARTED: &str = "container-started";
