//! Process drills: three real `monkd` processes on loopback, each with its own data
//! dir, started with `--containers none`. Clients write continuously through the gRPC
//! client (any peer; followers forward to the leader) while the drill SIGKILLs the
//! current leader and restarts it on the same data dir, and SIGSTOPs a follower and
//! SIGCONTs it later. Afterwards the history is [checked](crate::history::check), with
//! each data dir replayed offline. The processes are `monk-testkit`'s [`Monkd`], killed
//! when they drop.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use monk_node::api::ClientError;
use monk_node::views::{ConsensusView, TemplateRow};
use monk_node::MonkClient;
use monk_testkit::process::Monkd;

use crate::history::{
    write_path, write_proposal, Findings, Held, LeaderClaim, Outcome, PeerFinal, Write,
};
use crate::limits::*;
use monk_node::trust::tls::Dialer;

/// How long one observer or status RPC may take: a paused peer must not stall the
/// observer of the others.
const STATUS_RPC_TIMEOUT: Duration = Duration::from_millis(800);
/// Peers of the process drill.
const PEERS: usize = 3;

/// What the process drill did and found.
#[derive(Debug)]
pub struct ProcessReport {
    pub rounds: u32,
    pub kills: u32,
    pub pauses: u32,
    pub findings: Findings,
}

/// The drill cluster's admin, once `cluster new` made it.
static ADMIN: std::sync::Mutex<Option<Dialer>> = std::sync::Mutex::new(None);

/// As the admin once there is one; before, anonymously (setting up fresh peers).
async fn connect(addr: &str) -> Result<MonkClient, String> {
    let admin = ADMIN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let dialer = match admin {
        Some(admin) => admin,
        None => Dialer::unverified(None).map_err(|e| e.to_string())?,
    };
    connect_with(addr, &dialer).await
}

async fn connect_with(addr: &str, dialer: &Dialer) -> Result<MonkClient, String> {
    tokio::time::timeout(STATUS_RPC_TIMEOUT, MonkClient::connect(addr, dialer))
        .await
        .map_err(|_| format!("{addr}: connect timed out"))?
}

async fn consensus(addr: &str) -> Result<ConsensusView, String> {
    let mut client = connect(addr).await?;
    tokio::time::timeout(STATUS_RPC_TIMEOUT, client.consensus())
        .await
        .map_err(|_| format!("{addr}: no answer"))?
        .map_err(|s| s.message.clone())
}

async fn wait_ready(addr: &str) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut client) = connect(addr).await {
            if client.info().await.is_ok() {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "monkd at {addr} did not answer in {START_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The slot of the peer leading in the highest term, waiting for one.
async fn leader_slot(addrs: &[String]) -> Result<usize, String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let mut best: Option<(u64, usize)> = None;
        for (slot, addr) in addrs.iter().enumerate() {
            if let Ok(view) = consensus(addr).await {
                if view.state == "leader" && best.is_none_or(|(t, _)| view.term > t) {
                    best = Some((view.term, slot));
                }
            }
        }
        if let Some((_, slot)) = best {
            return Ok(slot);
        }
        if Instant::now() >= deadline {
            return Err(format!("no leader within {CONVERGE_TIMEOUT:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A refusal by the peer failed the write; anything else (no answer, a broken
/// connection) leaves its outcome unknown.
fn outcome_of_status(e: &ClientError) -> Outcome {
    let error = format!("{:?}: {}", e.kind, e.message);
    match e.is_refusal() {
        true => Outcome::Failed { error },
        false => Outcome::Unknown { error },
    }
}

/// Sends one write to the peer at `addr` and records what came back.
async fn write_once(addr: &str, path: &str) -> Outcome {
    match connect(addr).await {
        Ok(mut client) => {
            let proposal = write_proposal(path);
            let reply = client.propose_raw(&proposal);
            crate::outcome_of(reply, |status| outcome_of_status(&status)).await
        }
        Err(error) => Outcome::Failed { error },
    }
}

/// One client: writes through the peers in turn until `stop`.
fn spawn_client(
    rt: &Runtime,
    addrs: Vec<String>,
    client: usize,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<Write>> {
    rt.spawn(async move {
        let mut writes = Vec::new();
        let mut turn = client;
        while writes.len() < WRITES_PER_CLIENT_MAX && !stop.load(Ordering::SeqCst) {
            let path = write_path(client, writes.len());
            let outcome = write_once(&addrs[turn % addrs.len()], &path).await;
            turn += 1;
            writes.push(Write { path, outcome });
            tokio::time::sleep(WRITE_PAUSE).await;
        }
        writes
    })
}

/// Samples one peer's (term, leader) until `stop`.
fn spawn_observer(
    rt: &Runtime,
    addr: String,
    stop: Arc<AtomicBool>,
) -> JoinHandle<BTreeSet<LeaderClaim>> {
    rt.spawn(async move {
        let mut claims = BTreeSet::new();
        while !stop.load(Ordering::SeqCst) {
            if let Ok(view) = consensus(&addr).await {
                if let (Some(leader), Some(observer)) = (view.leader_id, view.id) {
                    claims.insert(LeaderClaim {
                        term: view.term,
                        leader,
                        observer,
                    });
                }
            }
            tokio::time::sleep(SAMPLE_INTERVAL).await;
        }
        claims
    })
}

async fn form(addrs: &[String]) -> Result<(), String> {
    let anonymous = Dialer::unverified(None).map_err(|e| e.to_string())?;
    let created = connect_with(&addrs[0], &anonymous)
        .await?
        .cluster_new("drill")
        .await
        .map_err(|s| s.message.clone())?;
    let admin = created.credential.dialer().map_err(|e| e.to_string())?;
    *ADMIN.lock().unwrap_or_else(|p| p.into_inner()) = Some(admin.clone());
    let mut first = connect_with(&addrs[0], &admin).await?;
    for addr in &addrs[1..] {
        // Join tokens are single-use: one per joining peer.
        let token = first.issue_token().await.map_err(|s| s.message.clone())?;
        let mut peer = connect_with(addr, &anonymous).await?;
        peer.cluster_join(&token)
            .await
            .map_err(|s| s.message.clone())?;
    }
    let deadline = Instant::now() + FORM_TIMEOUT;
    loop {
        if let Ok(view) = consensus(&addrs[0]).await {
            if view.voters.len() == addrs.len() {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err("autopilot did not make every peer a voter".into());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// After the faults: a write through any peer must be acknowledged again.
async fn write_until_acknowledged(addrs: &[String]) -> Result<Write, String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut last = String::new();
    for attempt in 0.. {
        if Instant::now() >= deadline {
            return Err(format!(
                "no write acknowledged {CONVERGE_TIMEOUT:?} after the faults: {last}"
            ));
        }
        let path = write_path(CLIENTS, attempt);
        let outcome = write_once(&addrs[attempt % addrs.len()], &path).await;
        if let Outcome::Acknowledged { .. } = outcome {
            return Ok(Write { path, outcome });
        }
        last = format!("{outcome:?}");
        tokio::time::sleep(POLL).await;
    }
    unreachable!("the loop returns at the deadline")
}

/// Waits until every peer reports the same applied index (at least `index`), with
/// the same answers twice in a row (liveness commands may still be landing), and
/// returns each peer's (applied index, digest). Digests are compared by the checker.
async fn converge(addrs: &[String], index: u64) -> Result<Vec<(u64, String)>, String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut previous = None;
    loop {
        let mut points = Vec::new();
        for addr in addrs {
            match consensus(addr).await {
                Ok(v) => points.push((v.applied_index.unwrap_or(0), v.state_digest)),
                Err(e) => points.push((0, e)),
            }
        }
        let same_index = points.iter().all(|(i, _)| *i >= index && *i == points[0].0);
        if same_index && previous.as_ref() == Some(&points) {
            return Ok(points);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "peers did not converge on index {index}: {points:?}"
            ));
        }
        previous = same_index.then_some(points);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The drill templates a peer holds, read from its own state (stale read).
async fn held(addr: &str) -> Result<std::collections::BTreeMap<String, Held>, String> {
    let mut client = connect(addr).await?;
    let rows: Vec<TemplateRow> = client.templates(true).await.map_err(|e| e.message)?;
    Ok(rows
        .into_iter()
        .filter(|r| r.path.starts_with("drill/"))
        .map(|r| {
            let held = Held {
                generation: r.generation,
                loaded_at_index: r.loaded_at_index,
            };
            (r.path, held)
        })
        .collect())
}

/// Waits for every task; a panicked task is an error.
fn join_all<T>(rt: &Runtime, tasks: Vec<JoinHandle<T>>) -> Result<Vec<T>, String> {
    tasks
        .into_iter()
        .map(|t| {
            rt.block_on(t)
                .map_err(|e| format!("a drill task panicked: {e}"))
        })
        .collect()
}

/// Runs the process drill: `rounds` of (SIGKILL the leader, restart it; SIGSTOP a
/// follower, SIGCONT it) under continuous writes.
pub fn run(rounds: u32) -> Result<ProcessReport, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut peers = Vec::new();
    for i in 0..PEERS {
        let mut peer = Monkd::new(root.path(), &format!("m{i}"), &["--containers", "none"])?;
        peer.spawn()?;
        peers.push(peer);
    }
    let addrs: Vec<String> = peers.iter().map(|p| p.addr.clone()).collect();
    rt.block_on(async {
        for addr in &addrs {
            wait_ready(addr).await?;
        }
        form(&addrs).await
    })?;

    let stop_clients = Arc::new(AtomicBool::new(false));
    let stop_observers = Arc::new(AtomicBool::new(false));
    let observers: Vec<_> = addrs
        .iter()
        .map(|a| spawn_observer(&rt, a.clone(), stop_observers.clone()))
        .collect();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| spawn_client(&rt, addrs.clone(), c, stop_clients.clone()))
        .collect();
    let (mut kills, mut pauses) = (0, 0);
    for _ in 0..rounds {
        let leader = rt.block_on(leader_slot(&addrs))?;
        peers[leader].kill();
        kills += 1;
        std::thread::sleep(KILLED_FOR);
        peers[leader].spawn()?;
        rt.block_on(wait_ready(&addrs[leader]))?;

        let leader = rt.block_on(leader_slot(&addrs))?;
        let follower = (leader + 1) % PEERS;
        peers[follower].pid().ok_or("the follower is not running")?;
        peers[follower].pause();
        pauses += 1;
        std::thread::sleep(PAUSED_FOR);
        peers[follower].resume();
    }
    stop_clients.store(true, Ordering::SeqCst);
    let mut writes: Vec<Write> = join_all(&rt, clients)?.into_iter().flatten().collect();

    let (last, finals) = rt.block_on(async {
        let last = write_until_acknowledged(&addrs).await?;
        let index = match last.outcome {
            Outcome::Acknowledged { index } => index,
            _ => 0,
        };
        let points = converge(&addrs, index).await?;
        let mut finals = Vec::new();
        for ((peer, addr), (applied_index, digest)) in peers.iter().zip(&addrs).zip(points) {
            finals.push(PeerFinal {
                name: peer.name.clone(),
                applied_index,
                digest,
                held: held(addr).await?,
                replay_digest: Err("not replayed yet".into()),
            });
        }
        Ok::<_, String>((last, finals))
    })?;
    writes.push(last);
    stop_observers.store(true, Ordering::SeqCst);
    let claims: BTreeSet<LeaderClaim> = join_all(&rt, observers)?.into_iter().flatten().collect();
    let claims: Vec<LeaderClaim> = claims.into_iter().collect();
    let mut finals = finals;
    for (peer, state) in peers.iter_mut().zip(&mut finals) {
        peer.kill();
        state.replay_digest = crate::replayed_digest(&peer.data_dir, state.applied_index);
    }
    let dirs: Vec<(String, PathBuf)> = peers
        .iter()
        .map(|peer| (peer.name.clone(), peer.data_dir.clone()))
        .collect();
    let index = finals.first().map_or(0, |f| f.applied_index);
    let logs = crate::verify_data_dirs(&dirs, index);
    Ok(ProcessReport {
        rounds,
        kills,
        pauses,
        findings: Findings::of(&writes, &finals, &claims, &logs),
    })
}
