//! `monk logs`: recent output of a workload's containers. The addressed peer reads the
//! placement from its state, asks its own engine for the replicas it holds and the
//! peers that hold the others (one hop, never further), and returns the lines in
//! replica, container and time order.

use monk_statemachine::PeerId;
use serde::{Deserialize, Serialize};

use crate::client::MonkClient;
use crate::node::{Node, NodeError, NodeResult};
use crate::pb::LogsRequest;

use super::docker::DockerRuntime;
use super::ContainerRuntime;

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

/// Lines from this peer's own engine for the replicas of `path` it holds.
async fn local_logs(cluster: &str, peer: PeerId, req: &LogsRequest) -> NodeResult<Vec<LogLine>> {
    let runtime = DockerRuntime::connect()
        .await
        .map_err(NodeError::Unavailable)?;
    let containers = runtime
        .list(cluster, peer)
        .await
        .map_err(NodeError::Unavailable)?;
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
        let lines = runtime
            .logs(&c.id, tail, req.since)
            .await
            .map_err(NodeError::Unavailable)?;
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

/// Lines from every replica of `req.path` the request selects, wherever they run.
pub async fn workload_logs(node: &Node, req: LogsRequest) -> NodeResult<Vec<LogLine>> {
    let me = node.peer_id().await.ok_or_else(|| {
        NodeError::FailedPrecondition("this peer is not part of a cluster yet".into())
    })?;
    let (cluster, holders) = {
        let shared = node.shared_state();
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        let state = &guard.state;
        let workload = state.workloads.get(&req.path).ok_or_else(|| {
            NodeError::InvalidArgument(format!("no workload {} is running or stopped", req.path))
        })?;
        if req.has_replica && !workload.instances.contains_key(&req.replica) {
            return Err(NodeError::InvalidArgument(format!(
                "{} has no replica {} (it has {})",
                req.path,
                req.replica,
                workload.replicas()
            )));
        }
        let mut holders: Vec<(PeerId, String)> = workload
            .instances
            .values()
            .filter(|i| !req.has_replica || i.replica == req.replica)
            .filter_map(|i| i.peer)
            .filter_map(|p| state.peers.get(&p).map(|peer| (p, peer.address.clone())))
            .collect();
        holders.sort();
        holders.dedup();
        (state.cluster_name.clone().unwrap_or_default(), holders)
    };
    let mut lines = Vec::new();
    for (peer, address) in holders {
        if peer == me {
            lines.extend(local_logs(&cluster, me, &req).await?);
            continue;
        }
        // The holder answers from its own engine only (it holds those replicas).
        let mut client = MonkClient::connect(&address)
            .await
            .map_err(|e| NodeError::Unavailable(format!("peer {peer} at {address}: {e}")))?;
        let theirs = client
            .container_logs_local(req.clone())
            .await
            .map_err(|e| {
                NodeError::Unavailable(format!("peer {peer} at {address}: {}", e.message()))
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
    let me = node.peer_id().await.ok_or_else(|| {
        NodeError::FailedPrecondition("this peer is not part of a cluster yet".into())
    })?;
    let cluster = {
        let shared = node.shared_state();
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        guard.state.cluster_name.clone().unwrap_or_default()
    };
    local_logs(&cluster, me, &req).await
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
