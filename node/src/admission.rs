//! What a peer does to a client's proposal before it enters the log: for `run` and
//! `update`, evaluate the script-valued placement fields and list the host ports the
//! containers publish ([`monk_statemachine::evaluate`]), so `apply` stays pure and a
//! replay places replicas exactly as the cluster did.
//!
//! The evaluation needs the templates and workloads as committed, so it runs on the
//! leader: a follower forwards such a proposal unevaluated (nothing has entered any log
//! yet, so forwarding cannot apply it twice), and the leader evaluates it after a
//! read-index barrier.

use std::sync::Arc;

use monk_statemachine::evaluate::{evaluate_runnable, set_evaluated, to_evaluate};
use monk_statemachine::{Command, EvaluatedByPath, Proposal};

use crate::executor::RunHost;
use crate::node::{Node, NodeError, NodeResult};
use crate::views::ProposeOutcome;

/// Whether `command` still needs evaluating before it can be proposed.
pub fn needs_evaluation(command: &Command) -> bool {
    matches!(
        command,
        Command::WorkloadRun {
            evaluated: None,
            ..
        } | Command::WorkloadUpdate {
            evaluated: None,
            ..
        }
    )
}

/// Proposes a client's proposal, evaluating it first where it needs that.
pub async fn admit_and_propose(
    node: &Arc<Node>,
    mut proposal: Proposal,
) -> NodeResult<ProposeOutcome> {
    if !needs_evaluation(&proposal.command) {
        return node.propose(proposal).await;
    }
    if let Some(leader) = node.linearize().await? {
        return node.forward_unproposed(&leader, &proposal).await;
    }
    let values = node.with_state(|state| {
        let mut values = EvaluatedByPath::new();
        let runnables = to_evaluate(state, &proposal.command);
        let cluster = crate::executor::spec::Cluster::of(
            state,
            runnables.iter().map(|r| (r.path.as_str(), &r.definition)),
        );
        for runnable in runnables {
            let mut host = RunHost {
                path: &runnable.path,
                definition: &runnable.definition,
                secrets: None,
                cluster: &cluster,
            };
            let evaluated = evaluate_runnable(&runnable, &mut host)
                .map_err(|e| NodeError::InvalidArgument(e.to_string()))?;
            values.insert(runnable.path.clone(), evaluated);
        }
        Ok::<_, NodeError>(values)
    })?;
    set_evaluated(&mut proposal.command, values);
    node.propose(proposal).await
}
