//! Simulation drills: a whole cluster in one process, the very same node code as
//! `monkd` over the in-memory transport, real RocksDB in a temporary directory. A
//! follower forwards a proposal to the leader through the same router, which cuts it
//! as it cuts Raft traffic; clients can also lose their way to a peer
//! ([`Fault::CutClients`]). Clients write while a seeded [`schedule`](crate::schedule)
//! partitions peers, delays and duplicates messages, crashes and restarts peers,
//! register clients ([`crate::register`]) read and
//! overwrite a few keys; an observer samples every peer's term and leader. Afterwards
//! every fault is healed, the cluster must acknowledge a write again (liveness) and
//! converge, the history is [checked](crate::history::check) and the register history
//! [checked for linearizability](crate::linearizability::check).
//!
//! [`simulate`] runs a case on simulated time: a single-threaded tokio runtime whose
//! clock is paused (it jumps to the next timer whenever every task waits), whose RNG
//! (the order `select!` polls in) is seeded, with openraft's election RNG and the
//! peers' wall clock ([`monk_node::clock`]) seeded from the same seed. Nothing waits
//! for real time, so a case that holds faults for seconds runs in a fraction of one,
//! and one seed gives one [`CaseReport::trace`], byte for byte.
//!
//! Why one file of this size: the cluster under test and every fault it can suffer
//! (partitions, message faults, crashes, joins and leaves) act on the same slots,
//! ids and trace, and the case runner is their only user; the membership faults are
//! the first candidates for a module of their own.

use openraft::ServerState;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use monk_audit::Verification;
use monk_node::network::{LinkFaults, MemoryRouter, Network};
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
    /// What happened, in order, on the simulated clock: each fault as applied, every
    /// client operation and its outcome, the leader claims observed, each peer's final
    /// applied index. The same seed gives the same trace under [`simulate`].
    pub trace: Vec<String>,
    /// Where a failing case's data dirs (`p0`, `p1`, ...) and `trace.txt` were kept.
    pub kept: Option<PathBuf>,
    /// How long the case lasted on its own clock (simulated time under [`simulate`]).
    pub lasted: std::time::Duration,
}

/// The peers of one simulated cluster; a crashed peer's slot is empty.
pub(crate) struct Cluster {
    /// The peers' data dirs live under it; removed when the cluster is dropped unless
    /// [`Cluster::keep`] kept them.
    root: Mutex<tempfile::TempDir>,
    root_path: PathBuf,
    pub(crate) router: MemoryRouter,
    /// The address each slot advertises (never bound: forwarding goes through the
    /// router).
    addrs: Vec<String>,
    slots: Mutex<Vec<Option<Arc<Node>>>>,
    /// Slots the clients cannot reach (a client-side partition; peers still can).
    clients_cut: Mutex<BTreeSet<usize>>,
    /// The pause between two operations of one client.
    pub(crate) pace: std::time::Duration,
    /// When the case began, on tokio's clock (the trace's time origin).
    started: Instant,
    /// What happened so far (see [`CaseReport::trace`]).
    trace: Mutex<Vec<String>>,
    /// Raft id of the peer in each slot, once it is a member (spare slots have none
    /// until they join).
    ids: Mutex<Vec<Option<u64>>>,
    /// Slots whose peer left the cluster (or whose join failed half-way): never
    /// restarted, and not among the peers that must converge.
    gone: Mutex<BTreeSet<usize>>,
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
        self.root_path.join(format!("p{slot}"))
    }

    /// Keeps the data dirs after the case (for `monk replay`, `monk verify`), with the
    /// trace beside them in `trace.txt`; returns where.
    fn keep(&self, trace: &[String]) -> PathBuf {
        self.root
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .disable_cleanup(true);
        let path = self.root_path.join("trace.txt");
        if let Err(e) = std::fs::write(&path, trace.join("\n") + "\n") {
            eprintln!("cannot write {}: {e}", path.display());
        }
        self.root_path.clone()
    }

    /// Opens the peer of `slot` on its data dir (the previous run of it may still be
    /// releasing its RocksDB lock: retried until [`REOPEN_TIMEOUT`]).
    async fn open(&self, slot: usize) -> Result<Arc<Node>, String> {
        let deadline = Instant::now() + REOPEN_TIMEOUT;
        loop {
            let network = Network::Memory {
                router: self.router.clone(),
                self_id: 0,
            };
            match Node::open(self.config(slot), network).await {
                Ok(node) => return Ok(node),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("cannot reopen p{slot}: {e}"))
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Adds a line to the trace, stamped with the milliseconds since the case began.
    pub(crate) fn record(&self, line: impl std::fmt::Display) {
        let ms = self.started.elapsed().as_millis();
        self.trace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{ms:>7} {line}"));
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

    /// The `turn`th live peer the clients can reach, cycling through them.
    pub(crate) fn any(&self, turn: usize) -> Option<Arc<Node>> {
        let cut = self
            .clients_cut
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let reachable: Vec<Arc<Node>> = self
            .slots
            .lock()
            .expect("slots")
            .iter()
            .enumerate()
            .filter(|(slot, _)| !cut.contains(slot))
            .filter_map(|(_, node)| node.clone())
            .collect();
        reachable.get(turn % reachable.len().max(1)).cloned()
    }

    /// The peer client `client` sends its `turn`th operation to: client 0 goes
    /// through whichever peer leads (when it can reach it), the others through every
    /// reachable peer in turn, so followers forward.
    pub(crate) async fn target(&self, client: usize, turn: usize) -> Option<Arc<Node>> {
        match client {
            0 => {
                let (slot, node) = self.leader().await?;
                let cut = self.clients_cut.lock().unwrap_or_else(|p| p.into_inner());
                (!cut.contains(&slot)).then_some(node)
            }
            _ => self.any(turn),
        }
    }

    /// The Raft id of the peer in `slot`, if it is or was a member.
    pub(crate) fn id(&self, slot: usize) -> Option<u64> {
        self.ids.lock().expect("ids").get(slot).copied().flatten()
    }

    /// Cuts (or reconnects) the peer in `slot`, if it has an id.
    pub(crate) fn isolate(&self, slot: usize, isolated: bool) {
        if let Some(id) = self.id(slot) {
            self.router.isolate(id, isolated);
        }
    }

    /// Slots that hold a member: joined, and not gone.
    fn member_slots(&self) -> Vec<usize> {
        let gone = self.gone.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let ids = self.ids.lock().expect("ids").clone();
        (0..ids.len())
            .filter(|slot| ids[*slot].is_some() && !gone.contains(slot))
            .collect()
    }

    /// A spare slot joins: its peer opens, the leader admits it with a fresh token, it
    /// starts Raft as a learner (the autopilot may promote it). A join cut short by a
    /// fault leaves the slot gone (a member that never runs, as a machine that died
    /// while joining), not a failure of the case.
    async fn join(&self) -> Result<(), String> {
        let spare = {
            let ids = self.ids.lock().expect("ids");
            let gone = self.gone.lock().unwrap_or_else(|p| p.into_inner());
            (0..self.addrs.len()).find(|slot| ids[*slot].is_none() && !gone.contains(slot))
        };
        let Some(slot) = spare else {
            self.record("join: no spare slot left");
            return Ok(());
        };
        let Some((_, leader)) = self.leader().await else {
            self.record("join: no leader");
            return Ok(());
        };
        let node = self.open(slot).await?;
        let joined = tokio::time::timeout(
            MEMBERSHIP_CHANGE_TIMEOUT,
            monk_testkit::inproc::join_in_process(&leader, &node, "drill"),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        let id = node.peer_id().await;
        if let (Ok(()), Some(id)) = (&joined, id) {
            self.ids.lock().expect("ids")[slot] = Some(id);
            self.slots.lock().expect("slots")[slot] = Some(node);
            self.record(format_args!("join: p{slot} joined as {id}"));
            return Ok(());
        }
        node.shutdown().await;
        self.gone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slot);
        self.record(format_args!("join: p{slot} failed: {joined:?}"));
        Ok(())
    }

    /// The member in `slot` leaves: the leader removes it from the configuration and
    /// records `peer-left`, then it stops. Refused or cut short by a fault, it stays a
    /// member unless the configuration no longer holds it.
    async fn leave(&self, slot: usize) {
        let Some(id) = self
            .id(slot)
            .filter(|_| self.member_slots().contains(&slot))
        else {
            self.record(format_args!("leave: p{slot} is not a member"));
            return;
        };
        let Some((_, leader)) = self.leader().await else {
            self.record("leave: no leader");
            return;
        };
        let removed = tokio::time::timeout(MEMBERSHIP_CHANGE_TIMEOUT, leader.remove_peer(id))
            .await
            .map_err(|_| "timed out".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        drop(leader);
        let still_configured = match self.leader().await {
            Some((_, leader)) => match leader.raft().await {
                Some(raft) => raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .get_node(&id)
                    .is_some(),
                None => true,
            },
            None => true,
        };
        if removed.is_err() && still_configured {
            self.record(format_args!("leave: p{slot} stays: {removed:?}"));
            return;
        }
        self.crash(slot).await;
        self.gone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slot);
        self.record(format_args!("leave: p{slot} left ({removed:?})"));
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

    /// Stops the peer's Raft and drops its store; the data dir stays.
    async fn crash(&self, slot: usize) {
        let node = self.slots.lock().expect("slots")[slot].take();
        if let Some(node) = node {
            node.shutdown().await;
        }
    }

    async fn restart(&self, slot: usize) -> Result<(), String> {
        if self.slots.lock().expect("slots")[slot].is_some() || !self.member_slots().contains(&slot)
        {
            return Ok(());
        }
        let node = self.open(slot).await?;
        self.slots.lock().expect("slots")[slot] = Some(node);
        Ok(())
    }

    fn cut_clients(&self, slot: usize, cut: bool) {
        let mut clients_cut = self.clients_cut.lock().unwrap_or_else(|p| p.into_inner());
        if cut {
            clients_cut.insert(slot);
        } else {
            clients_cut.remove(&slot);
        }
    }

    pub(crate) async fn apply(&self, fault: Fault) -> Result<(), String> {
        self.record(format_args!("fault {fault:?}"));
        let slots = self.addrs.len();
        match fault {
            Fault::Isolate(slot) => self.isolate(slot, true),
            Fault::IsolateLeader => {
                if let Some((slot, _)) = self.leader().await {
                    self.isolate(slot, true);
                }
            }
            Fault::Heal(slot) => {
                self.isolate(slot, false);
                self.cut_clients(slot, false);
            }
            Fault::HealAll => {
                (0..slots).for_each(|s| self.isolate(s, false));
                self.router.set_link_faults(None);
                self.clients_cut
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            }
            Fault::CutClients(slot) => self.cut_clients(slot, true),
            Fault::Jitter {
                delay_max_ms,
                duplicate_per_mille,
            } => self.router.set_link_faults(Some(LinkFaults {
                delay_max: std::time::Duration::from_millis(delay_max_ms),
                duplicate_per_mille,
                // Seeded by the simulated time of the step: the same on every replay.
                draws: self.started.elapsed().as_millis() as u64,
            })),
            Fault::Calm => self.router.set_link_faults(None),
            Fault::Crash(slot) => self.crash(slot).await,
            Fault::CrashLeader => {
                if let Some((slot, node)) = self.leader().await {
                    drop(node);
                    self.crash(slot).await;
                }
            }
            Fault::Restart(slot) => self.restart(slot).await?,
            Fault::RestartAll => {
                for slot in self.member_slots() {
                    self.restart(slot).await?;
                }
            }
            Fault::Join => self.join().await?,
            Fault::Leave(slot) => self.leave(slot).await,
        }
        Ok(())
    }
}

/// Where a case keeps its peers' data dirs: in memory (`/dev/shm`) where the machine
/// has it, as fsync there costs nothing and a case's speed is then its CPU time;
/// otherwise the system's temporary directory.
fn sim_root() -> Result<tempfile::TempDir, String> {
    let shm = std::path::Path::new(SIM_MEMORY_DIR);
    let in_memory = shm
        .is_dir()
        .then(|| {
            tempfile::Builder::new()
                .prefix("monk-sim-")
                .tempdir_in(shm)
                .ok()
        })
        .flatten();
    match in_memory {
        Some(dir) => Ok(dir),
        None => tempfile::Builder::new()
            .prefix("monk-sim-")
            .tempdir()
            .map_err(|e| format!("cannot make a temporary directory: {e}")),
    }
}

/// The address the peer in `slot` advertises: never bound (the documentation range
/// TEST-NET-1, so nothing real answers should anything dial it).
fn sim_address(slot: usize) -> String {
    format!("192.0.2.{}:7000", slot + 1)
}

/// Opens `peers` peers and forms a cluster exactly as `cluster new` / `cluster join`
/// do minus the gRPC hop; waits until every peer is a voter (up to five). Its clients
/// pause `pace` between operations. Beside them
/// [`SIM_SPARE_SLOTS`] spare slots can join later ([`Fault::Join`]).
pub(crate) async fn form(peers: usize, pace: std::time::Duration) -> Result<Arc<Cluster>, String> {
    let root = sim_root()?;
    let slots = peers + SIM_SPARE_SLOTS;
    let cluster = Arc::new(Cluster {
        root_path: root.path().to_path_buf(),
        root: Mutex::new(root),
        router: MemoryRouter::default(),
        addrs: (0..slots).map(sim_address).collect(),
        slots: Mutex::new(vec![None; slots]),
        clients_cut: Mutex::new(BTreeSet::new()),
        pace,
        started: Instant::now(),
        trace: Mutex::new(Vec::new()),
        ids: Mutex::new(vec![None; slots]),
        gone: Mutex::new(BTreeSet::new()),
    });
    let mut nodes = Vec::new();
    for slot in 0..peers {
        nodes.push(cluster.open(slot).await?);
    }
    let first = nodes[0].clone();
    monk_testkit::inproc::form_in_process(&nodes, "drill").await?;
    for (slot, node) in nodes.iter().enumerate() {
        let id = node.peer_id().await.ok_or("a formed peer has no id")?;
        cluster.ids.lock().expect("ids")[slot] = Some(id);
    }
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
    for (slot, node) in nodes.into_iter().enumerate() {
        cluster.slots.lock().expect("slots")[slot] = Some(node);
    }
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
            tokio::time::sleep(cluster.pace).await;
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
    let members = cluster.member_slots();
    let mut out = Vec::new();
    for &slot in &members {
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
    for slot in 0..cluster.addrs.len() {
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
    let cluster = form(peers, SIM_OPERATION_PAUSE).await?;
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
    let trace = std::mem::take(&mut *cluster.trace.lock().unwrap_or_else(|p| p.into_inner()));
    let kept = findings.failure().map(|_| cluster.keep(&trace));
    Ok(CaseReport {
        seed,
        peers,
        schedule,
        findings,
        trace,
        kept,
        lasted: cluster.started.elapsed(),
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
    for write in &writes {
        cluster.record(format_args!("write {} {:?}", write.path, write.outcome));
    }
    for operation in registers.iter().flat_map(|r| &r.operations) {
        cluster.record(format_args!("register {operation:?}"));
    }
    for claim in &claims {
        cluster.record(format_args!("claim {claim:?}"));
    }
    for peer in &peer_finals {
        cluster.record(format_args!(
            "final {} applied {}",
            peer.name, peer.applied_index
        ));
    }
    let findings = Findings::of(&writes, &peer_finals, &claims, &logs);
    let Some(registers) = registers else {
        return Ok(findings);
    };
    let started = std::time::Instant::now();
    let report = crate::linearizability::check(&registers.operations);
    Ok(findings.with_registers(report, started.elapsed()))
}

/// Runs [`run_schedule`] on simulated time (see the module docs): a fresh
/// single-threaded runtime with a paused clock and tokio's RNG, openraft's RNG and the
/// peers' wall clock all seeded from `seed`.
pub fn simulate(
    seed: u64,
    peers: usize,
    schedule: Vec<Step>,
    reads: ReadPath,
) -> Result<CaseReport, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .rng_seed(tokio::runtime::RngSeed::from_bytes(&seed.to_le_bytes()))
        .build()
        .map_err(|e| format!("cannot build the simulation runtime: {e}"))?;
    runtime.block_on(async {
        monk_log::runtime::seed_thread_rng(seed);
        monk_node::clock::simulate(SIM_EPOCH_MS);
        run_schedule(seed, peers, schedule, reads).await
    })
}

/// Runs the case `seed` draws on simulated time (see [`simulate`]).
pub fn simulate_case(seed: u64, peers: usize, steps_max: usize) -> Result<CaseReport, String> {
    simulate(
        seed,
        peers,
        draw(seed, peers, steps_max),
        ReadPath::ReadIndex,
    )
}
