//! Scripted drills: fault sequences too precise for a random schedule to hit often,
//! written out step by step on the simulated cluster of [`crate::sim`].
//!
//! [`truncated_write`] makes a proposal's entry reach a minority, get truncated on the
//! peer that proposed it while another copy survives and is later committed. The peer
//! that proposed it is told to forward the proposal to the new leader; if it does, the
//! command is applied twice.
//!
//! [`silent_voter`] isolates a voter that holds a replica for longer than
//! `PEER_DOWN_AFTER`: liveness (heartbeats over the in-memory router) must declare it
//! down, the scheduler must move its replicas, the autopilot must swap the learner in
//! for it, and once healed it must be declared up again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

use openraft::ServerState;

use monk_scripting::tree::Tree;
use monk_statemachine::{Command, LoadedTemplate, PeerId, Proposal, State, FORMAT_VERSION};

use crate::history::{write_path, write_proposal, Findings, Write};
use crate::limits::{CONVERGE_TIMEOUT, POLL, WRITE_PAUSE};
use crate::register::{gather, spawn_register_clients, ReadPath};
use crate::sim::{finish, form, outcome_of_reply, spawn_observer, Cluster};

/// Peers of the truncated-write drill: the smallest cluster where an entry held by
/// two peers is still a minority.
const PEERS: usize = 5;

/// Waits until `done` holds, naming `what` on timeout.
async fn until<F, Fut>(what: &str, mut done: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    while !done().await {
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

async fn last_log(cluster: &Cluster, slot: usize) -> u64 {
    let metrics = cluster.metrics(slot).await;
    metrics.and_then(|m| m.last_log_index).unwrap_or(0)
}

async fn leads(cluster: &Cluster, slot: usize) -> bool {
    let metrics = cluster.metrics(slot).await;
    metrics.is_some_and(|m| m.state == ServerState::Leader)
}

async fn leader_among(cluster: &Cluster, slots: &[usize]) -> Option<usize> {
    for slot in slots {
        if leads(cluster, *slot).await {
            return Some(*slot);
        }
    }
    None
}

/// Between every two of `slots`, AppendEntries are dropped (votes still pass).
fn drop_appends_among(cluster: &Cluster, slots: &[usize], dropped: bool) {
    for from in slots {
        for to in slots.iter().filter(|t| *t != from) {
            if let (Some(from), Some(to)) = (cluster.id(*from), cluster.id(*to)) {
                cluster.router.drop_appends(from, to, dropped);
            }
        }
    }
}

fn cut(cluster: &Cluster, slots: &[usize], isolated: bool) {
    for slot in slots {
        cluster.isolate(*slot, isolated);
    }
}

/// Leader `a` appends write E and replicates it to `d` only (2 of 5). `x`, `y`, `z`
/// elect a leader `l` (without E) while AppendEntries among them are dropped (votes
/// pass), so `l`'s entries reach only `a` once it reconnects, which
/// truncates E and answers the waiting proposal with "forward to leader". `d`, `y`,
/// `z` then elect `d` (its log is the longest among them), which commits E. When all
/// heal, whatever `a` and `l` did with the forwarded proposal must not apply E again.
pub async fn truncated_write() -> Result<Findings, String> {
    let cluster = form(PEERS, WRITE_PAUSE).await?;
    let stop_observer = Arc::new(AtomicBool::new(false));
    let observer = spawn_observer(cluster.clone(), stop_observer.clone());
    let (a, a_node) = cluster.leader().await.ok_or("no leader after forming")?;
    let others: Vec<usize> = (0..PEERS).filter(|s| *s != a).collect();
    let (d, xyz) = (others[0], others[1..].to_vec());

    cut(&cluster, &xyz, true);
    let d_before = last_log(&cluster, d).await;
    let path = write_path(0, 0);
    let client = {
        let path = path.clone();
        // No client-side timeout: the proposal must live through two elections, bounded
        // by the node's own retry and RPC deadlines.
        tokio::spawn(async move {
            let reply = a_node.propose(write_proposal(&path)).await;
            outcome_of_reply(reply)
        })
    };
    until("E to reach d", || async {
        last_log(&cluster, d).await > d_before
    })
    .await?;

    cut(&cluster, &[a, d], true);
    drop_appends_among(&cluster, &xyz, true);
    cut(&cluster, &xyz, false);
    until("x, y or z to lead", || async {
        leader_among(&cluster, &xyz).await.is_some()
    })
    .await?;
    let l = leader_among(&cluster, &xyz)
        .await
        .ok_or("x, y and z lost their leader")?;
    let yz: Vec<usize> = xyz.iter().copied().filter(|s| *s != l).collect();

    let l_before = last_log(&cluster, l).await;
    cut(&cluster, &yz, true);
    cut(&cluster, &[a], false);
    // Either a answers its client (E truncated, outcome unknown), or it forwards E to
    // l, whose log grows.
    until("a to truncate E", || async {
        client.is_finished() || last_log(&cluster, l).await > l_before
    })
    .await?;

    cut(&cluster, &[l, a], true);
    cut(&cluster, &[d], false);
    cut(&cluster, &yz, false);
    until("d to lead", || async { leads(&cluster, d).await }).await?;

    drop_appends_among(&cluster, &xyz, false);
    cut(&cluster, &[a, l], false);
    let outcome = client
        .await
        .map_err(|e| format!("the client panicked: {e}"))?;
    let writes = vec![Write { path, outcome }];
    // No register clients here: each step above waits for a log to grow, which their
    // writes would fake.
    finish(&cluster, writes, None, observer, stop_observer).await
}

/// Peers of the silent-voter drill: five voters (the most) and one learner to swap in.
const SILENT_VOTER_PEERS: usize = 6;
/// The runnable the silent-voter drill runs, one replica per peer (outside `drill/`, so
/// the history checker, which owns that prefix, does not count it as a write).
const SILENT_VOTER_RUNNABLE: &str = "swap/web";

fn proposal(command: Command) -> Proposal {
    Proposal {
        format_version: FORMAT_VERSION,
        proposed_at_ms: 0,
        actor: "drill".into(),
        request_id: format!("drill-{}", command.kind()),
        command,
    }
}

/// A runnable with one replica per peer.
fn runnable() -> Tree {
    let map = |entries: Vec<(&str, Tree)>| {
        Tree::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    };
    map(vec![
        ("defines", Tree::Str("runnable".into())),
        (
            "scale",
            map(vec![("value", Tree::Int(SILENT_VOTER_PEERS as i64))]),
        ),
        (
            "containers",
            map(vec![(
                "main",
                map(vec![("image", Tree::Str("busybox".into()))]),
            )]),
        ),
    ])
}

/// Proposes through the current leader; `what` names the command in errors.
async fn propose_accepted(cluster: &Cluster, what: &str, command: Command) -> Result<(), String> {
    let (_, node) = cluster.leader().await.ok_or("no leader")?;
    let outcome = node
        .propose(proposal(command))
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    match outcome.applied.is_accepted() {
        true => Ok(()),
        false => Err(format!("{what} was rejected: {:?}", outcome.applied)),
    }
}

/// Whether `test` holds of the current leader's applied state.
async fn leader_state(cluster: &Cluster, test: impl Fn(&State) -> bool) -> bool {
    match cluster.leader().await {
        Some((_, node)) => node.with_state(test),
        None => false,
    }
}

/// The peers holding a replica of the drill's runnable.
fn holders(state: &State) -> Vec<PeerId> {
    state
        .workloads()
        .get(SILENT_VOTER_RUNNABLE)
        .map(|w| w.instances.values().filter_map(|i| i.peer).collect())
        .unwrap_or_default()
}

/// The current voters and learners, as the leader's Raft sees them.
async fn voters_and_learners(cluster: &Cluster) -> Option<(Vec<PeerId>, Vec<PeerId>)> {
    let (slot, _) = cluster.leader().await?;
    let metrics = cluster.metrics(slot).await?;
    let membership = metrics.membership_config.membership();
    Some((
        membership.voter_ids().collect(),
        membership.learner_ids().collect(),
    ))
}

/// A voter that holds a replica falls silent past `PEER_DOWN_AFTER`; see the module.
pub async fn silent_voter() -> Result<Findings, String> {
    let cluster = form(SILENT_VOTER_PEERS, WRITE_PAUSE).await?;
    let stop_observer = Arc::new(AtomicBool::new(false));
    let observer = spawn_observer(cluster.clone(), stop_observer.clone());
    let stop_registers = Arc::new(AtomicBool::new(false));
    let registers = spawn_register_clients(&cluster, ReadPath::ReadIndex, &stop_registers);
    let template = LoadedTemplate {
        path: SILENT_VOTER_RUNNABLE.into(),
        kind: "runnable".into(),
        definition: runnable(),
    };
    propose_accepted(
        &cluster,
        "templates-loaded",
        Command::TemplatesLoaded {
            templates: vec![template],
        },
    )
    .await?;
    let run = Command::WorkloadRun {
        path: SILENT_VOTER_RUNNABLE.into(),
        tag: None,
        peer: None,
        overrides: Default::default(),
        evaluated: None,
    };
    propose_accepted(&cluster, "workload-run", run).await?;
    let (leader_slot, _) = cluster.leader().await.ok_or("no leader")?;
    let leader = cluster.id(leader_slot).ok_or("the leader has no id")?;
    let (voters, learners) = voters_and_learners(&cluster).await.ok_or("no leader")?;
    let learner = *learners.first().ok_or("no learner to swap in")?;
    let held = cluster
        .node(leader_slot)
        .ok_or("the leader is gone")?
        .with_state(holders);
    let victim = voters
        .iter()
        .copied()
        .find(|v| *v != leader && held.contains(v))
        .ok_or_else(|| format!("no follower voter holds a replica: {held:?}"))?;

    cluster.router.isolate(victim, true);
    until("the silent voter to be declared down", || async {
        leader_state(&cluster, |s| s.peer(victim).is_some_and(|p| !p.is_up())).await
    })
    .await?;
    until("its replica to move to a peer that is up", || async {
        leader_state(&cluster, |s| {
            let held = holders(s);
            held.len() == SILENT_VOTER_PEERS && !held.contains(&victim)
        })
        .await
    })
    .await?;
    until("the learner to replace it as a voter", || async {
        voters_and_learners(&cluster)
            .await
            .is_some_and(|(v, _)| v.contains(&learner) && !v.contains(&victim))
    })
    .await?;
    cluster.router.isolate(victim, false);
    until("the healed peer to be declared up", || async {
        leader_state(&cluster, |s| s.peer(victim).is_some_and(|p| p.is_up())).await
    })
    .await?;
    stop_registers.store(true, Ordering::SeqCst);
    let registers = gather(registers).await?;
    finish(
        &cluster,
        Vec::new(),
        Some(registers),
        observer,
        stop_observer,
    )
    .await
}
