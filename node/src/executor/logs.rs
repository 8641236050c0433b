//! `monk logs` and `monk exec`: reach a workload's containers wherever they run. The
//! addressed peer reads the placement from its state, answers from its own engine for
//! the replicas it holds and asks the peers that hold the others (one hop, never
//! further: a forwarded request is answered locally). Logs come back in replica,
//! container and time order.

use monk_statemachine::PeerId;
use serde::{Deserialize, Serialize};

use crate::node::{Node, NodeError, NodeResult};
use crate::pb::{ExecRequest, LogsRequest};

use std::sync::Arc;

use super::runtime::Engine;
use super::{ContainerRuntime, Observed};

/// Lines per container when the request does not say.
pub const LOG_TAIL_DEFAULT: u32 = 100;
/// Most lines per container a request may ask for.
pub const LOG_TAIL_MAX: u32 = 10_000;

/// One line of container output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub replica: u32,
    pub container: String,
    pub peer: PeerId,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 time the engine stamped the line with.
    pub time: String,
    pub text: String,
}

/// Splits Docker's `2026-11-22T04:38:52.195000000Z text` into time and text.
fn split_timestamp(line: &str) -> (String, String) {
    match line.split_once(' ') {
        Some((time, text)) if time.ends_with('Z') && time.contains('T') => {
            (time.to_string(), text.to_string())
        }
        _ => (String::new(), line.to_string()),
    }
}

/// This peer's runtime and the containers it holds for `cluster`; `None` on a peer
/// that runs no containers (`monkd --containers none`).
pub(crate) async fn local_containers(
    node: &Node,
    cluster: &str,
    peer: PeerId,
) -> NodeResult<Option<(Arc<dyn ContainerRuntime>, Vec<Observed>)>> {
    let runtime = match node.engine() {
        Engine::Disabled => return Ok(None),
        Engine::Unreachable(why) => return Err(why.into()),
        Engine::Ready(runtime) => runtime,
    };
    let containers = runtime.list(cluster, peer).await?;
    Ok(Some((runtime, containers)))
}

/// Lines from this peer's own engine for the replicas of `path` it holds.
async fn local_logs(
    node: &Node,
    cluster: &str,
    peer: PeerId,
    req: &LogsRequest,
) -> NodeResult<Vec<LogLine>> {
    let Some((runtime, containers)) = local_containers(node, cluster, peer).await? else {
        return Ok(Vec::new());
    };
    let tail = match req.tail {
        0 => LOG_TAIL_DEFAULT,
        n => n.min(LOG_TAIL_MAX),
    };
    let mut out = Vec::new();
    for c in containers {
        let Some(key) = &c.key else { continue };
        let wanted = key.path == req.path
            && (!req.has_replica || key.replica == req.replica)
            && (req.container.is_empty() || key.container == req.container);
        if !wanted {
            continue;
        }
        let lines = runtime.logs(&c.id, tail, req.since).await?;
        for (stream, line) in lines {
            let (time, text) = split_timestamp(&line);
            out.push(LogLine {
                replica: key.replica,
                container: key.container.clone(),
                peer,
                stream,
                time,
                text,
            });
        }
    }
    Ok(out)
}

/// This peer's id, or why it has none.
async fn my_id(node: &Node) -> NodeResult<PeerId> {
    node.peer_id().await.ok_or_else(|| {
        NodeError::FailedPrecondition("this peer is not part of a cluster yet".into())
    })
}

/// Reads the workload at `path` (and the state around it) under the state lock.
fn with_workload<T>(
    node: &Node,
    path: &str,
    f: impl FnOnce(&monk_statemachine::State, &monk_statemachine::Workload) -> NodeResult<T>,
) -> NodeResult<T> {
    let shared = node.shared_state();
    let guard = shared.read().unwrap_or_else(|p| p.into_inner());
    let state = &guard.state;
    let workload = state.workload(path).ok_or_else(|| {
        NodeError::InvalidArgument(format!("no workload {path} is running or stopped"))
    })?;
    f(state, workload)
}

fn no_replica(workload: &monk_statemachine::Workload, replica: u32) -> NodeError {
    NodeError::InvalidArgument(format!(
        "{} has no replica {replica} (it has {})",
        workload.path,
        workload.replicas()
    ))
}

/// Lines from every replica of `req.path` the request selects, wherever they run.
pub async fn workload_logs(node: &Node, req: LogsRequest) -> NodeResult<Vec<LogLine>> {
    let me = my_id(node).await?;
    let (cluster, holders) = with_workload(node, &req.path, |state, workload| {
        if req.has_replica && !workload.instances.contains_key(&req.replica) {
            return Err(no_replica(workload, req.replica));
        }
        let mut holders: Vec<(PeerId, String)> = workload
            .instances
            .values()
            .filter(|i| !req.has_replica || i.replica == req.replica)
            .filter_map(|i| i.peer)
            .filter_map(|p| state.peer(p).map(|peer| (p, peer.address.clone())))
            .collect();
        holders.sort();
        holders.dedup();
        Ok((state.cluster_name().unwrap_or_default().to_owned(), holders))
    })?;
    let mut lines = Vec::new();
    for (peer, address) in holders {
        if peer == me {
            lines.extend(local_logs(node, &cluster, me, &req).await?);
            continue;
        }
        // The holder answers from its own engine only (it holds those replicas).
        let mut client = node
            .peer_client(&address)
            .await
            .map_err(|e| NodeError::Unavailable(format!("peer {peer} at {address}: {e}")))?;
        let theirs = client
            .container_logs_local(req.clone())
            .await
            .map_err(|e| {
                NodeError::Unavailable(format!("peer {peer} at {address}: {}", e.message))
            })?;
        lines.extend(theirs);
    }
    lines.sort_by(|a, b| {
        (a.replica, &a.container, &a.time).cmp(&(b.replica, &b.container, &b.time))
    });
    Ok(lines)
}

/// The holder's side of a forwarded request: only its own engine.
pub async fn own_logs(node: &Node, req: LogsRequest) -> NodeResult<Vec<LogLine>> {
    let me = my_id(node).await?;
    let cluster = {
        let shared = node.shared_state();
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        guard.state.cluster_name().unwrap_or_default().to_owned()
    };
    local_logs(node, &cluster, me, &req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_timestamps_are_split_from_the_text() {
        assert_eq!(
            split_timestamp("2026-11-22T04:38:52.195000000Z hello world"),
            (
                "2026-11-22T04:38:52.195000000Z".into(),
                "hello world".into()
            )
        );
        assert_eq!(
            split_timestamp("no stamp"),
            (String::new(), "no stamp".into())
        );
    }
}

/// What `monk exec` prints: the command's output and exit code, and where it ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    pub peer: PeerId,
    pub container: String,
    pub exit_code: i64,
    pub stdout: String,
}

/// Most bytes of output `monk exec` returns.
pub const EXEC_OUTPUT_BYTES_MAX: usize = 1024 * 1024;

/// Runs `req.command` in replica `req.replica` of `req.path`, on the peer that holds it.
pub async fn exec(node: &Node, req: ExecRequest) -> NodeResult<ExecOutput> {
    if req.command.is_empty() {
        return Err(NodeError::InvalidArgument("no command to run".into()));
    }
    let me = my_id(node).await?;
    let (cluster, holder) = with_workload(node, &req.path, |state, workload| {
        let instance = workload
            .instances
            .get(&req.replica)
            .ok_or_else(|| no_replica(workload, req.replica))?;
        let peer = instance.peer.ok_or_else(|| {
            NodeError::FailedPrecondition(format!(
                "{}#{} is not placed on any peer",
                req.path, req.replica
            ))
        })?;
        let address = state.peer(peer).map(|p| p.address.clone());
        Ok((
            state.cluster_name().unwrap_or_default().to_owned(),
            (peer, address.unwrap_or_default()),
        ))
    })?;
    let (peer, address) = holder;
    if peer != me {
        if req.local_only {
            return Err(NodeError::FailedPrecondition(format!(
                "{}#{} is not on this peer",
                req.path, req.replica
            )));
        }
        let mut client = node
            .peer_client(&address)
            .await
            .map_err(|e| NodeError::Unavailable(format!("peer {peer} at {address}: {e}")))?;
        let mut forwarded = req.clone();
        forwarded.local_only = true;
        return client.container_exec(forwarded).await.map_err(|e| {
            NodeError::Unavailable(format!("peer {peer} at {address}: {}", e.message))
        });
    }
    let missing = || {
        NodeError::FailedPrecondition(format!(
            "{}#{} has no {} on peer {me} (is it running?)",
            req.path,
            req.replica,
            if req.container.is_empty() {
                "container".to_string()
            } else {
                format!("container {}", req.container)
            }
        ))
    };
    let Some((runtime, containers)) = local_containers(node, &cluster, me).await? else {
        return Err(missing());
    };
    let target = containers
        .iter()
        .filter(|c| {
            c.key.as_ref().is_some_and(|k| {
                k.path == req.path
                    && k.replica == req.replica
                    && (req.container.is_empty() || k.container == req.container)
            })
        })
        .min_by(|a, b| a.key.cmp(&b.key))
        .ok_or_else(missing)?;
    let (exit_code, mut stdout) = runtime.exec_output(&target.id, req.command.clone()).await?;
    if stdout.len() > EXEC_OUTPUT_BYTES_MAX {
        let mut cut = EXEC_OUTPUT_BYTES_MAX;
        while !stdout.is_char_boundary(cut) {
            cut -= 1;
        }
        stdout.truncate(cut);
    }
    Ok(ExecOutput {
        peer: me,
        container: target
            .key
            .as_ref()
            .map(|k| k.container.clone())
            .unwrap_or_default(),
        exit_code,
        stdout,
    })
}
