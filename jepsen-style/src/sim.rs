//! Simulation drills: a whole cluster in one process, the very same node code as
//! `monkd` over the in-memory Raft transport, real RocksDB in a temporary directory.
//! Each peer also serves its client API on a loopback port, so a follower forwards a
//! proposal to the leader exactly as `monkd` does (partitions cut Raft traffic only;
//! the forwarding hop stands for a client that can still reach the leader). Clients
//! write while a seeded [`schedule`](crate::schedule) partitions, crashes and
//! restarts peers, register clients ([`crate::register`]) read and overwrite a few
//! keys; an observer samples every peer's term and leader. Afterwards every fault is
//! healed, the cluster must acknowledge a write again (liveness) and converge, the
//! history is [checked](crate::history::check) and the register history
//! [checked for linearizability](crate::linearizability::check).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use openraft::ServerState;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use monk_audit::Verification;
use monk_node::network::{MemoryRouter, Network};
use monk_node::views::ProposeOutcome;
use monk_node::{Node, NodeConfig, NodeError};
use monk_statemachine::digest;

use crate::history::{
    write_path, write_proposal, Findings, LeaderClaim, Outcome, PeerFinal, Write,
};
use crate::limits::*;
use crate::register::{gather, read_back, spawn_register_clients, ReadPath, RegisterHistory};
use crate::schedule::{draw, Fault, Step};

/// What one simulated case did and found.
#[derive(Debug)]
pub struct CaseReport {
    pub seed: u64,
    pub peers: usize,
    pub schedule: Vec<Step>,
    pub findings: Findings,
}

/// A peer's running client API server and the sender that stops it.
type ApiServer = (oneshot::Sender<()>, JoinHandle<()>);

/// The peers of one simulated cluster; a crashed peer's slot is empty.
pub(crate) struct Cluster {
    root: tempfile::TempDir,
    pub(crate) router: MemoryRouter,
    /// Loopback address of each slot's client API (also its advertised address).
    addrs: Vec<String>,
    slots: Mutex<Vec<Option<Arc<Node>>>>,
    /// The client API server of each live slot, and how to stop it.
    servers: Mutex<Vec<Option<ApiServer>>>,
    /// Raft id of the peer in each slot, known once the cluster is formed.
    ids: Mutex<Vec<u64>>,
}

impl Cluster {
    fn config(&self, slot: usize) -> NodeConfig {
        NodeConfig {
            snapshot_after_entries: SIM_SNAPSHOT_AFTER_ENTRIES,
            ..NodeConfig::new(
                self.data_dir(slot),
                self.addrs[slot].clone(),
                format!("p{slot}"),
            )
        }
    }

    fn data_dir(&self, slot: usize) -> PathBuf {
        self.root.path().join(format!("p{slot}"))
    }

    /// Opens the peer of `slot` on its data dir and serves its client API.
    async fn open(&self, slot: usize) -> Result<Arc<Node>, String> {
        let deadline = Instant::now() + REOPEN_TIMEOUT;
        let retry = |e: String| async move {
            if Instant::now() >= deadline {
                return Err(format!("cannot reopen p{slot}: {e}"));
            }
            tokio::time::sleep(POLL).await;
            Ok(())
        };
        let listener = loop {
            match TcpListener::bind(&self.addrs[slot]).await {
                Ok(listener) => break listener,
                Err(e) => retry(e.to_string()).await?,
            }
        };
        let node = loop {
            let network = Network::Memory {
                router: self.router.clone(),
                self_id: 0,
            };
            match Node::open(self.config(slot), network).await {
                Ok(node) => break node,
                Err(e) => retry(e.to_string()).await?,
            }
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_api(node.clone(), listener, stopped));
        self.servers.lock().expect("servers")[slot] = Some((stop, server));
        Ok(node)
    }

    /// The live peer in `slot`.
    pub(crate) fn node(&self, slot: usize) -> Option<Arc<Node>> {
        self.slots.lock().expect("slots")[slot].clone()
    }

    /// The Raft metrics of the live peer in `slot`.
    pub(crate) async fn metrics(
        &self,
        slot: usize,
    ) -> Option<openraft::RaftMetrics<u64, monk_log::PeerNode>> {
        let raft = self.node(slot)?.raft().await?;
        let metrics = raft.metrics().borrow().clone();
        Some(metrics)
    }

    pub(crate) fn live(&self) -> Vec<Arc<Node>> {
        self.slots
            .lock()
            .expect("slots")
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The `turn`th live peer, cycling through the live ones.
    pub(crate) fn any(&self, turn: usize) -> Option<Arc<Node>> {
        let live = self.live();
        live.get(turn % live.len().max(1)).cloned()
    }

    /// The peer client `client` sends its `turn`th operation to: client 0 goes
    /// through whichever peer leads, the others through every live peer in turn, so
    /// followers forward.
    pub(crate) async fn target(&self, client: usize, turn: usize) -> Option<Arc<Node>> {
        match client {
            0 => self.leader().await.map(|(_, node)| node),
            _ => self.any(turn),
        }
    }

    pub(crate) fn id(&self, slot: usize) -> u64 {
        self.ids.lock().expect("ids")[slot]
    }

    /// The live peer that leads in the highest term, if any claims to.
    pub(crate) async fn leader(&self) -> Option<(usize, Arc<Node>)> {
        let nodes: Vec<(usize, Arc<Node>)> = {
            let slots = self.slots.lock().expect("slots");
            slots
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.clone().map(|n| (i, n)))
                .collect()
        };
        let mut best: Option<(u64, usize, Arc<Node>)> = None;
        for (slot, node) in nodes {
            let Some(raft) = node.raft().await else {
                continue;
            };
            let m = raft.metrics().borrow().clone();
            if m.state == ServerState::Leader && best.as_ref().is_none_or(|b| m.current_term > b.0)
            {
                best = Some((m.current_term, slot, node));
            }
        }
        best.map(|(_, slot, node)| (slot, node))
    }

    /// Stops the peer's Raft and its client API and drops its store; the data dir stays.
    async fn crash(&self, slot: usize) {
        let node = self.slots.lock().expect("slots")[slot].take();
        if let Some(node) = node {
            node.shutdown().await;
        }
        let server = self.servers.lock().expect("servers")[slot].take();
        if let Some((stop, server)) = server {
            let _ = stop.send(());
            let _ = tokio::time::timeout(REOPEN_TIMEOUT, server).await;
        }
    }

    async fn restart(&self, slot: usize) -> Result<(), String> {
        if self.slots.lock().expect("slots")[slot].is_some() {
            return Ok(());
        }
        let node = self.open(slot).await?;
        self.slots.lock().expect("slots")[slot] = Some(node);
        Ok(())
    }

    pub(crate) async fn apply(&self, fault: Fault) -> Result<(), String> {
        let peers = self.ids.lock().expect("ids").len();
        match fault {
            Fault::Isolate(slot) => self.router.isolate(self.id(slot), true),
            Fault::IsolateLeader => {
                if let Some((slot, _)) = self.leader().await {
                    self.router.isolate(self.id(slot), true);
                }
            }
            Fault::Heal(slot) => self.router.isolate(self.id(slot), false),
            Fault::HealAll => (0..peers).for_each(|s| self.router.isolate(self.id(s), false)),
            Fault::Crash(slot) => self.crash(slot).await,
            Fault::CrashLeader => {
                if let Some((slot, node)) = self.leader().await {
                    drop(node);
                    self.crash(slot).await;
                }
            }
            Fault::Restart(slot) => self.restart(slot).await?,
            Fault::RestartAll => {
                for slot in 0..peers {
                    self.restart(slot).await?;
                }
            }
        }
        Ok(())
    }
}

/// Serves `node`'s client API (with forwarding to the leader) until `stopped`.
async fn serve_api(node: Arc<Node>, listener: TcpListener, stopped: oneshot::Receiver<()>) {
    let shutdown = async {
        let _ = stopped.await;
    };
    if let Err(e) = monk_node::daemon::serve(node, listener, shutdown).await {
        eprintln!("client API server failed: {e}");
    }
}

fn free_loopback_addr() -> Result<String, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string())
}

/// Opens `peers` peers and forms a cluster exactly as `cluster new` / `cluster join`
/// do minus the gRPC hop; waits until every peer is a voter (up to five).
pub(crate) async fn form(peers: usize) -> Result<Arc<Cluster>, String> {
    let cluster = Arc::new(Cluster {
        root: tempfile::tempdir().map_err(|e| e.to_string())?,
        router: MemoryRouter::default(),
        addrs: (0..peers)
            .map(|_| free_loopback_addr())
            .collect::<Result<_, _>>()?,
        slots: Mutex::new(vec![None; peers]),
        servers: Mutex::new((0..peers).map(|_| None).collect()),
        ids: Mutex::new(Vec::new()),
    });
    let mut nodes = Vec::new();
    for slot in 0..peers {
        nodes.push(cluster.open(slot).await?);
    }
    let first = nodes[0].clone();
    monk_testkit::inproc::form_in_process(&nodes, "drill").await?;
    let mut ids = Vec::new();
    for node in &nodes {
        ids.push(node.peer_id().await.ok_or("a formed peer has no id")?);
    }
    *cluster.ids.lock().expect("ids") = ids;
    let want_voters = peers.min(monk_node::limits::VOTERS_MAX);
    let deadline = Instant::now() + FORM_TIMEOUT;
    loop {
        let view = first.consensus().await.map_err(|e| e.to_string())?;
        // A promotion passes through a joint configuration; wait for the final one,
        // or a peer cut off before it arrives campaigns under an older voter set.
        let raft = first.raft().await.ok_or("the first peer left")?;
        let joint = raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_joint_config()
            .len();
        if view.voters.len() == want_voters && joint == 1 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!("autopilot did not promote every learner: {view:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
    *cluster.slots.lock().expect("slots") = nodes.into_iter().map(Some).collect();
    let last = first.raft().await.ok_or("the first peer left")?;
    let last = last.metrics().borrow().last_log_index.unwrap_or(0);
    converge(&cluster, last).await?;
    Ok(cluster)
}

/// What a node error tells a client: refused before any leader saw the command, or
/// unknown (it may still commit).
pub(crate) fn outcome_of_error(e: &NodeError) -> Outcome {
    match e {
        NodeError::InvalidArgument(m)
        | NodeError::FailedPrecondition(m)
        | NodeError::PermissionDenied(m) => Outcome::Failed { error: m.clone() },
        NodeError::Unavailable(m) | NodeError::Internal(m) => Outcome::Unknown { error: m.clone() },
        NodeError::NotMember | NodeError::Token(_) => Outcome::Failed {
            error: e.to_string(),
        },
        NodeError::Key(_)
        | NodeError::Identity(_)
        | NodeError::Runtime(_)
        | NodeError::Trust(_) => Outcome::Unknown {
            error: e.to_string(),
        },
    }
}

/// Sends one write to `node` and records what came back.
pub(crate) async fn write_once(node: &Node, path: &str) -> Outcome {
    crate::outcome_of(node.propose(write_proposal(path)), |e| outcome_of_error(&e)).await
}

/// What an unbounded proposal's reply tells its client.
pub(crate) fn outcome_of_reply(reply: Result<ProposeOutcome, NodeError>) -> Outcome {
    match reply {
        Ok(o) if o.applied.is_accepted() => Outcome::Acknowledged { index: o.index },
        Ok(o) => Outcome::Rejected {
            index: o.index,
            reason: format!("{:?}", o.applied),
        },
        Err(e) => outcome_of_error(&e),
    }
}

/// One client: writes unique templates until `stop`. Client 0 writes through
/// whichever peer leads; the others through every live peer in turn, so followers
/// forward.
fn spawn_client(
    cluster: Arc<Cluster>,
    client: usize,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<Write>> {
    tokio::spawn(async move {
        let mut writes = Vec::new();
        let mut turn = client;
        while writes.len() < WRITES_PER_CLIENT_MAX && !stop.load(Ordering::SeqCst) {
            turn += 1;
            let Some(node) = cluster.target(client, turn).await else {
                tokio::time::sleep(NO_LEADER_PAUSE).await;
                continue;
            };
            let path = write_path(client, writes.len());
            let outcome = write_once(&node, &path).await;
            drop(node);
            writes.push(Write { path, outcome });
            tokio::time::sleep(WRITE_PAUSE).await;
        }
        writes
    })
}

/// Samples every live peer's (term, leader) until `stop`.
pub(crate) fn spawn_observer(
    cluster: Arc<Cluster>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<BTreeSet<LeaderClaim>> {
    tokio::spawn(async move {
        let mut claims = BTreeSet::new();
        while !stop.load(Ordering::SeqCst) {
            for node in cluster.live() {
                let Some(raft) = node.raft().await else {
                    continue;
                };
                let m = raft.metrics().borrow().clone();
                if let Some(leader) = m.current_leader {
                    claims.insert(LeaderClaim {
                        term: m.current_term,
                        leader,
                        observer: m.id,
                    });
                }
            }
            tokio::time::sleep(SAMPLE_INTERVAL).await;
        }
        claims
    })
}

/// After healing: a write must be acknowledged again within [`CONVERGE_TIMEOUT`].
async fn write_until_acknowledged(cluster: &Cluster) -> Result<Write, String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut last = String::from("no leader");
    for attempt in 0.. {
        if Instant::now() >= deadline {
            return Err(format!(
                "no write acknowledged {CONVERGE_TIMEOUT:?} after healing: {last}"
            ));
        }
        let Some((_, node)) = cluster.leader().await else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        let path = write_path(CLIENTS, attempt);
        let outcome = write_once(&node, &path).await;
        if let Outcome::Acknowledged { .. } = outcome {
            return Ok(Write { path, outcome });
        }
        last = format!("{outcome:?}");
        tokio::time::sleep(POLL).await;
    }
    unreachable!("the loop returns at the deadline")
}

/// Waits until every peer applied the same index, at least `index` (digests are
/// compared by the checker).
pub(crate) async fn converge(cluster: &Cluster, index: u64) -> Result<(), String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let mut seen = BTreeSet::new();
        for node in cluster.live() {
            let view = node.consensus().await.map_err(|e| e.to_string())?;
            seen.insert(view.applied_index.unwrap_or(0));
        }
        if seen.len() == 1 && seen.iter().all(|i| *i >= index) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("peers did not converge on index {index}: {seen:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every peer's final state; then every peer is shut down, its data dir replayed, and
/// the data dirs compared with each other.
async fn finals(cluster: &Cluster) -> (Vec<PeerFinal>, Result<Verification, String>) {
    let peers = cluster.ids.lock().expect("ids").len();
    let mut out = Vec::new();
    for slot in 0..peers {
        let Some(node) = cluster.slots.lock().expect("slots")[slot].clone() else {
            continue;
        };
        let (applied_index, digest, held) = {
            let shared = node.shared_state();
            let applied = shared.read().expect("state lock");
            let s = &applied.state;
            (s.last_applied_index(), digest(s), PeerFinal::held_in(s))
        };
        let final_state = PeerFinal {
            name: node.config.name.clone(),
            applied_index,
            digest,
            held,
            replay_digest: Err("not replayed yet".into()),
        };
        out.push((slot, final_state));
    }
    for slot in 0..peers {
        cluster.crash(slot).await;
    }
    for (slot, peer) in &mut out {
        peer.replay_digest = crate::replayed_digest(&cluster.data_dir(*slot), peer.applied_index);
    }
    let dirs: Vec<(String, PathBuf)> = out
        .iter()
        .map(|(slot, peer)| (peer.name.clone(), cluster.data_dir(*slot)))
        .collect();
    let index = out.first().map_or(0, |(_, peer)| peer.applied_index);
    let logs = crate::verify_data_dirs(&dirs, index);
    (out.into_iter().map(|(_, peer)| peer).collect(), logs)
}

/// Runs one case: the schedule `seed` draws, on a fresh cluster of `peers`.
pub async fn run_case(seed: u64, peers: usize, steps_max: usize) -> Result<CaseReport, String> {
    let schedule = draw(seed, peers, steps_max);
    run_schedule(seed, peers, schedule, ReadPath::ReadIndex).await
}

/// Runs `schedule` (drawn from `seed`) on a fresh cluster of `peers`, register reads
/// served as `reads` says.
pub async fn run_schedule(
    seed: u64,
    peers: usize,
    schedule: Vec<Step>,
    reads: ReadPath,
) -> Result<CaseReport, String> {
    let cluster = form(peers).await?;
    let stop_clients = Arc::new(AtomicBool::new(false));
    let stop_observer = Arc::new(AtomicBool::new(false));
    let observer = spawn_observer(cluster.clone(), stop_observer.clone());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| spawn_client(cluster.clone(), c, stop_clients.clone()))
        .collect();
    let register_clients = spawn_register_clients(&cluster, reads, &stop_clients);
    for step in &schedule {
        cluster.apply(step.fault).await?;
        tokio::time::sleep(std::time::Duration::from_millis(step.hold_ms)).await;
    }
    // Heal before waiting for the clients, so a write in flight to a cut-off leader
    // can still be answered rather than always timing out.
    stop_clients.store(true, Ordering::SeqCst);
    cluster.apply(Fault::HealAll).await?;
    cluster.apply(Fault::RestartAll).await?;
    let mut writes = Vec::new();
    for client in clients {
        writes.extend(
            client
                .await
                .map_err(|e| format!("a client panicked: {e}"))?,
        );
    }
    let registers = gather(register_clients).await?;
    let findings = finish(&cluster, writes, Some(registers), observer, stop_observer).await?;
    Ok(CaseReport {
        seed,
        peers,
        schedule,
        findings,
    })
}

/// Once every fault is healed: a write must be acknowledged again, every peer must
/// apply the same index; then the observer stops, every peer is shut down, replayed,
/// and the history checked, with the register history (`None` when no register
/// client ran).
pub(crate) async fn finish(
    cluster: &Cluster,
    mut writes: Vec<Write>,
    mut registers: Option<RegisterHistory>,
    observer: JoinHandle<BTreeSet<LeaderClaim>>,
    stop_observer: Arc<AtomicBool>,
) -> Result<Findings, String> {
    let last = write_until_acknowledged(cluster).await?;
    let last_index = match last.outcome {
        Outcome::Acknowledged { index } => index,
        _ => 0,
    };
    writes.push(last);
    converge(cluster, last_index).await?;
    if let Some(registers) = &mut registers {
        read_back(cluster, registers).await?;
    }
    stop_observer.store(true, Ordering::SeqCst);
    let claims = observer
        .await
        .map_err(|e| format!("the observer panicked: {e}"))?;
    let claims: Vec<LeaderClaim> = claims.into_iter().collect();
    let (peer_finals, logs) = finals(cluster).await;
    let findings = Findings::of(&writes, &peer_finals, &claims, &logs);
    let Some(registers) = registers else {
        return Ok(findings);
    };
    let started = Instant::now();
    let report = crate::linearizability::check(&registers.operations);
    Ok(findings.with_registers(report, started.elapsed()))
}
