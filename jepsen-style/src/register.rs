//! Register clients of the simulation drills: a small key model on real cluster
//! commands, read back through the node's client API, recorded for the
//! [linearizability checker](crate::linearizability).
//!
//! A register is a template at `register/k<n>` (outside `drill/`, whose templates the
//! history checker expects loaded once each); its definition, a minimal runnable,
//! carries the register's value in a `value` field. A write loads the template again
//! through `Node::propose`, as the unique writes of the drills do; a read asks the
//! peer's own client API for the template over gRPC, as `monk` does, so a follower
//! forwards it to the leader, which answers after a read-index round
//! (`Node::linearize`). About one read in ten asks with `stale` set instead (served
//! from that peer's applied state, recorded and not checked). The state machine has no
//! conditional command, so there is no compare-and-set: the model is read and write.
//!
//! [`ReadPath::LocalStateForTests`] is the injected bug that shows the checker can
//! fail: linearizable reads answered from the chosen peer's local state with no
//! read-index round, as a peer that skipped `linearize()` would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

use tokio::task::JoinHandle;

use monk_node::api::Query;
use monk_node::{Node, NodeError};
use monk_scripting::tree::Tree;

use crate::history::{load_proposal, Outcome as WriteOutcome};
use crate::limits::*;
use crate::linearizability::{Op, Operation, Outcome, Value};
use crate::sim::{outcome_of_error, Cluster};

/// Where register templates live.
pub const REGISTER_PREFIX: &str = "register/";
/// Field of a register's definition holding its value.
const VALUE_FIELD: &str = "value";
/// How a peer answers a query for a template it does not hold (`Node::query_local`):
/// the register was never written.
const ABSENT: &str = "no template at ";
/// Values a client may write without colliding with another client's
/// (more than [`REGISTER_OPS_PER_CLIENT_MAX`]).
const VALUES_PER_CLIENT: u64 = 1_000_000;

/// How the drill's linearizable register reads are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPath {
    /// Through the peer's client API, as `monk` asks: read-index on the leader, a
    /// follower forwards.
    ReadIndex,
    /// Test only, an injected bug: straight from the chosen peer's applied state, with
    /// no read-index round, so a follower or a deposed leader answers with what it has.
    LocalStateForTests,
}

/// The template path of register `key`.
pub fn register_path(key: usize) -> String {
    format!("{REGISTER_PREFIX}k{key}")
}

/// The value client `client` writes in its `n`th operation: unique in a run.
pub fn value_of_write(client: usize, n: usize) -> Value {
    client as u64 * VALUES_PER_CLIENT + n as u64
}

/// What a drill register client does: the key, and whether it reads (with `stale` set
/// or not) or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    Write(Value),
    Read { stale: bool },
}

/// Client `client`'s `n`th operation: on key `n/2 mod REGISTER_KEYS` (clients move
/// through the keys together, so they meet on them), a write one time in
/// [`REGISTER_WRITE_EVERY`], else a read, stale about one time in
/// [`REGISTER_STALE_READ_EVERY`].
fn plan(client: usize, n: usize) -> (usize, Plan) {
    let key = (n / 2) % REGISTER_KEYS;
    let plan = if n.is_multiple_of(REGISTER_WRITE_EVERY) {
        Plan::Write(value_of_write(client, n))
    } else {
        Plan::Read {
            stale: n % REGISTER_STALE_READ_EVERY == REGISTER_STALE_READ_EVERY - 1,
        }
    };
    (key, plan)
}

/// The value a template query answered with.
fn value_in(template: &serde_json::Value) -> Result<Option<Value>, String> {
    template
        .get("definition")
        .and_then(|d| d.get(VALUE_FIELD))
        .and_then(serde_json::Value::as_u64)
        .map(Some)
        .ok_or_else(|| format!("no {VALUE_FIELD} in {template}"))
}

/// Reads register `path` on `node`, as `path` decides.
async fn read(
    node: &Node,
    path: &str,
    stale: bool,
    how: ReadPath,
) -> Result<Option<Value>, String> {
    let query = Query::Template { path: path.into() };
    if how == ReadPath::LocalStateForTests && !stale {
        return match node.query_local(&query) {
            Ok(template) => value_in(&template),
            Err(NodeError::InvalidArgument(m)) if m.starts_with(ABSENT) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
    }
    match node.query(&query, stale).await {
        Ok(template) => value_in(&template),
        Err(NodeError::InvalidArgument(m)) if m.starts_with(ABSENT) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes `value` to register `path` through `node` (forwarded to the leader).
async fn write(node: &Node, path: &str, value: Value) -> Outcome {
    let Ok(number) = i64::try_from(value) else {
        return Outcome::Fail;
    };
    let proposal = load_proposal(
        path,
        &format!("{path}={value}"),
        vec![(VALUE_FIELD.into(), Tree::Int(number))],
    );
    let outcome = crate::outcome_of(node.propose(proposal), |e| outcome_of_error(&e));
    match tokio::time::timeout(REGISTER_WRITE_TIMEOUT, outcome).await {
        Err(_) => Outcome::Unknown,
        Ok(WriteOutcome::Acknowledged { .. }) => Outcome::Ok,
        // Committed but refused by the state machine: the register did not change.
        Ok(WriteOutcome::Rejected { .. } | WriteOutcome::Failed { .. }) => Outcome::Fail,
        Ok(WriteOutcome::Unknown { .. }) => Outcome::Unknown,
    }
}

/// Microseconds since `epoch` on the monotonic clock.
fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One register client: reads and writes the registers until `stop`, timing each
/// operation from `epoch`, sent where [`Cluster::target`] says (client 0 through the
/// leader, so some operations get through while a cut-off peer holds the others up
/// for a timeout).
pub(crate) fn spawn_register_client(
    cluster: Arc<Cluster>,
    client: usize,
    epoch: Instant,
    how: ReadPath,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<Operation>> {
    tokio::spawn(async move {
        let mut history = Vec::new();
        let mut turn = client;
        while history.len() < REGISTER_OPS_PER_CLIENT_MAX && !stop.load(Ordering::SeqCst) {
            turn += 1;
            let Some(node) = cluster.target(client, turn).await else {
                tokio::time::sleep(NO_LEADER_PAUSE).await;
                continue;
            };
            let (key, plan) = plan(client, history.len());
            let path = register_path(key);
            let invoked_us = micros_since(epoch);
            let (op, outcome, stale) = match plan {
                Plan::Write(value) => {
                    (Op::Write { value }, write(&node, &path, value).await, false)
                }
                Plan::Read { stale } => {
                    let answer = tokio::time::timeout(READ_TIMEOUT, read(&node, &path, stale, how));
                    match answer.await {
                        Ok(Ok(seen)) => (Op::Read { seen }, Outcome::Ok, stale),
                        // Failed or unanswered, a read says nothing either way.
                        Ok(Err(_)) | Err(_) => (Op::Read { seen: None }, Outcome::Unknown, stale),
                    }
                }
            };
            drop(node);
            history.push(Operation {
                client,
                key: path,
                op,
                stale,
                invoked_us,
                completed_us: micros_since(epoch),
                outcome,
            });
            tokio::time::sleep(cluster.pace).await;
        }
        history
    })
}

/// Running register clients and the instant their times count from.
pub(crate) struct RegisterClients {
    epoch: Instant,
    clients: Vec<JoinHandle<Vec<Operation>>>,
}

/// What the register clients did, times counted from `epoch`.
pub(crate) struct RegisterHistory {
    epoch: Instant,
    pub(crate) operations: Vec<Operation>,
}

/// Starts [`REGISTER_CLIENTS`] register clients on `cluster`.
pub(crate) fn spawn_register_clients(
    cluster: &Arc<Cluster>,
    how: ReadPath,
    stop: &Arc<AtomicBool>,
) -> RegisterClients {
    let epoch = Instant::now();
    let clients = (0..REGISTER_CLIENTS)
        .map(|c| spawn_register_client(cluster.clone(), c, epoch, how, stop.clone()))
        .collect();
    RegisterClients { epoch, clients }
}

/// Waits for register clients to stop and gathers their operations.
pub(crate) async fn gather(clients: RegisterClients) -> Result<RegisterHistory, String> {
    let mut operations = Vec::new();
    for client in clients.clients {
        operations.extend(
            client
                .await
                .map_err(|e| format!("a register client panicked: {e}"))?,
        );
    }
    Ok(RegisterHistory {
        epoch: clients.epoch,
        operations,
    })
}

/// Once every fault is healed, every register must be read again (liveness of
/// reads) through the leader, within [`CONVERGE_TIMEOUT`]; the reads join `history`
/// as client [`REGISTER_CLIENTS`]'s, so the last value of each key is checked too.
pub(crate) async fn read_back(
    cluster: &Cluster,
    history: &mut RegisterHistory,
) -> Result<(), String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    for key in 0..REGISTER_KEYS {
        let path = register_path(key);
        let mut last = String::from("no leader");
        loop {
            if Instant::now() >= deadline {
                return Err(format!(
                    "{path} not read {CONVERGE_TIMEOUT:?} after healing: {last}"
                ));
            }
            let Some((_, node)) = cluster.leader().await else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            let invoked_us = micros_since(history.epoch);
            let answer =
                tokio::time::timeout(READ_TIMEOUT, read(&node, &path, false, ReadPath::ReadIndex));
            match answer.await {
                Ok(Ok(seen)) => {
                    history.operations.push(Operation {
                        client: REGISTER_CLIENTS,
                        key: path,
                        op: Op::Read { seen },
                        stale: false,
                        invoked_us,
                        completed_us: micros_since(history.epoch),
                        outcome: Outcome::Ok,
                    });
                    break;
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer in {READ_TIMEOUT:?}"),
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_value_is_unique_and_every_kind_of_operation_is_planned() {
        let mut values = std::collections::BTreeSet::new();
        let (mut writes, mut reads, mut stale, mut keys) =
            (0, 0, 0, std::collections::BTreeSet::new());
        for client in 0..REGISTER_CLIENTS {
            for n in 0..REGISTER_OPS_PER_CLIENT_MAX {
                let (key, plan) = plan(client, n);
                keys.insert(key);
                match plan {
                    Plan::Write(v) => {
                        writes += 1;
                        assert!(values.insert(v), "value {v} written twice");
                    }
                    Plan::Read { stale: true } => stale += 1,
                    Plan::Read { stale: false } => reads += 1,
                }
            }
        }
        assert_eq!(keys.len(), REGISTER_KEYS);
        assert!(
            writes > 0 && stale > 0 && reads > writes,
            "{writes} {reads} {stale}"
        );
    }

    #[test]
    fn a_register_value_is_read_from_the_template_definition() {
        let template = serde_json::json!({
            "path": "register/k0",
            "definition": {"defines": "runnable", "value": 42},
        });
        assert_eq!(value_in(&template), Ok(Some(42)));
        assert!(value_in(&serde_json::json!({"definition": {}})).is_err());
    }
}
