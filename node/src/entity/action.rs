//! `monk do ns/name/verb k=v ...` for entity instances: the custom verb runs on the
//! peer hosting the instance (the addressed peer forwards it there, one hop, as
//! `monk exec` does), its output and outcome go back to the user, and its result
//! enters the log as `entity-verb-done` with the arguments' names only (values may be
//! secret). A result the log refuses (the instance changed while the verb ran) is
//! reported as not saved.

use std::sync::Arc;

use monk_js::QuickJsEngine;
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

/// Runs `req` on the instance's host (forwarding there from any other peer).
pub async fn run(node: &Arc<Node>, req: DoRequest) -> NodeResult<DoOutput> {
    let me = node.peer_id().await.ok_or(NodeError::NotMember)?;
    if req.args.len() > ACTION_ARGS_MAX {
        return Err(NodeError::InvalidArgument(format!(
            "at most {ACTION_ARGS_MAX} arguments"
        )));
    }
    let path = req.path.trim_start_matches('/').to_string();
    let (host, address, assignment) = {
        let shared = node.shared_state();
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        let state = &guard.state;
        let w = state.workload(&path).ok_or_else(|| {
            NodeError::InvalidArgument(format!("no workload {path} is running or stopped"))
        })?;
        if w.entity.is_none() {
            return Err(NodeError::InvalidArgument(format!(
                "{path} is not an entity instance (actions of runnables and groups are not supported yet)"
            )));
        }
        let host = w.instances.get(&0).and_then(|i| i.peer).ok_or_else(|| {
            NodeError::FailedPrecondition(format!("{path} is not placed on any peer"))
        })?;
        let address = state
            .peer(host)
            .map(|p| p.address.clone())
            .unwrap_or_default();
        let assignment = entity_assignments(state, host)
            .into_iter()
            .find(|a| a.path == path);
        (host, address, assignment)
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
    let mut names: Vec<String> = req.args.keys().cloned().collect();
    names.sort();
    let command = Command::EntityVerbDone {
        peer: me,
        path: path.clone(),
        generation,
        step,
        verb: req.verb.clone(),
        state: run.result.as_ref().ok().cloned().flatten(),
        error: run.result.as_ref().err().cloned(),
        args: names,
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
