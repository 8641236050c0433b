//! Our side: three `monkd` processes (`--containers none`, `--no-overlay`, each on a
//! loopback port with its own data dir; `monk-testkit`'s [`Monkd`], SIGKILLed when they
//! drop), formed into one cluster the way `monk cluster new`, `cluster token` and
//! `cluster join` do it (the same calls through the typed client), and the writer:
//! `noop` proposals as the cluster's admin.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use monk_node::trust::tls::Dialer;
use monk_node::views::ConsensusView;
use monk_node::MonkClient;
use monk_statemachine::Command;
use monk_testkit::process::Monkd;

use crate::load::Writer;
use crate::side::Side;

/// Peers of the cluster, as etcd's members.
pub const PEERS: usize = 3;
/// How long a started `monkd` may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long forming may take until every peer is a voter.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline of one status call while waiting: a killed or stuck peer must not stall
/// the look at the others.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(800);
/// Pause between two looks while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The actor the proposals are recorded under.
const ACTOR: &str = "bench";

/// A formed 3-peer cluster and its admin's dialer.
pub struct OurCluster {
    peers: Vec<Monkd>,
    admin: Dialer,
}

impl OurCluster {
    /// Starts three peers under `root`, forms the cluster, waits for three voters.
    pub async fn start(root: &Path) -> Result<OurCluster> {
        std::fs::create_dir_all(root)?;
        let mut peers = Vec::new();
        for i in 0..PEERS {
            let mut peer = Monkd::new(root, &format!("m{i}"), &["--containers", "none"])
                .map_err(|e| anyhow!(e))?;
            peer.spawn().map_err(|e| anyhow!(e))?;
            peers.push(peer);
        }
        let anonymous = Dialer::unverified(None)?;
        for peer in &peers {
            wait_answering(&peer.addr, &anonymous).await?;
        }
        let admin = form(&peers, &anonymous).await?;
        let cluster = OurCluster { peers, admin };
        cluster.wait_voters().await?;
        Ok(cluster)
    }

    /// The address of peer `slot`.
    pub fn addr(&self, slot: usize) -> &str {
        &self.peers[slot].addr
    }

    /// The consensus view of peer `slot`, within [`STATUS_TIMEOUT`].
    pub async fn consensus(&self, slot: usize) -> Result<ConsensusView> {
        let look = async {
            let mut client = MonkClient::connect(self.addr(slot), &self.admin)
                .await
                .map_err(|e| anyhow!(e))?;
            client.consensus().await.map_err(|e| anyhow!(e.message))
        };
        tokio::time::timeout(STATUS_TIMEOUT, look)
            .await
            .map_err(|_| anyhow!("{}: no answer in {STATUS_TIMEOUT:?}", self.addr(slot)))?
    }

    async fn wait_voters(&self) -> Result<()> {
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            let slot = self.leader(FORM_TIMEOUT).await?;
            if let Ok(view) = self.consensus(slot).await {
                if view.voters.len() == PEERS {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!("not every monkd peer became a voter within {FORM_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Side for OurCluster {
    type Writer = OurWriter;
    const NAME: &'static str = "monkd";

    /// The peers still running.
    fn running(&self) -> Vec<usize> {
        (0..self.peers.len())
            .filter(|&i| self.peers[i].pid().is_some())
            .collect()
    }

    /// SIGKILL of peer `slot`.
    fn kill(&mut self, slot: usize) {
        self.peers[slot].kill();
    }

    /// Starts peer `slot` again on its data dir.
    fn restart(&mut self, slot: usize) -> Result<()> {
        self.peers[slot].spawn().map_err(|e| anyhow!(e))
    }

    /// The slot of the peer leading in the highest term, waiting up to `limit`.
    async fn leader(&self, limit: Duration) -> Result<usize> {
        let deadline = Instant::now() + limit;
        loop {
            let mut best: Option<(u64, usize)> = None;
            for slot in self.running() {
                if let Ok(view) = self.consensus(slot).await {
                    if view.state == "leader" && best.is_none_or(|(term, _)| view.term > term) {
                        best = Some((view.term, slot));
                    }
                }
            }
            if let Some((_, slot)) = best {
                return Ok(slot);
            }
            if Instant::now() >= deadline {
                bail!("monkd elected no leader within {limit:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// A writer connected to peer `slot` as the admin.
    async fn writer(&self, slot: usize, _prefix: &str) -> Result<OurWriter> {
        let client = MonkClient::connect(self.addr(slot), &self.admin)
            .await
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("connecting to monkd at {}", self.addr(slot)))?;
        Ok(OurWriter { client })
    }

    /// Fails unless every acknowledged write was applied at an index of its own, and
    /// peer `slot` has applied them all.
    async fn check_present(&self, slot: usize, _prefix: &str, acked: &[u64]) -> Result<()> {
        let distinct: BTreeSet<u64> = acked.iter().copied().collect();
        if distinct.len() != acked.len() {
            bail!(
                "monkd acknowledged {} noops at only {} distinct log indexes",
                acked.len(),
                distinct.len()
            );
        }
        let applied = self.consensus(slot).await?.applied_index.unwrap_or(0);
        match distinct.last() {
            Some(&last) if last > applied => {
                bail!("monkd acknowledged a noop at index {last} but has applied only {applied}")
            }
            _ => Ok(()),
        }
    }

    async fn rejoined(&self, slot: usize) -> bool {
        self.consensus(slot)
            .await
            .is_ok_and(|view| view.leader_id.is_some())
    }
}

/// Waits until the peer at `addr` answers `info`.
async fn wait_answering(addr: &str, dialer: &Dialer) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let look = async {
            let mut client = MonkClient::connect(addr, dialer).await.ok()?;
            client.info().await.ok()
        };
        if let Ok(Some(_)) = tokio::time::timeout(STATUS_TIMEOUT, look).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "monkd at {addr} did not answer within {START_TIMEOUT:?} (its log: <data dir>.log)"
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// `cluster new` on the first peer, then one single-use `cluster token` and a
/// `cluster join` per other peer; the admin's dialer.
async fn form(peers: &[Monkd], anonymous: &Dialer) -> Result<Dialer> {
    let (first, others) = peers.split_first().context("no peers")?;
    let created = MonkClient::connect(&first.addr, anonymous)
        .await
        .map_err(|e| anyhow!(e))?
        .cluster_new("compare")
        .await
        .map_err(|e| anyhow!("cluster new: {}", e.message))?;
    let admin = created.credential.dialer()?;
    let mut leader = MonkClient::connect(&first.addr, &admin)
        .await
        .map_err(|e| anyhow!(e))?;
    for peer in others {
        let token = leader
            .issue_token()
            .await
            .map_err(|e| anyhow!("cluster token: {}", e.message))?;
        MonkClient::connect(&peer.addr, anonymous)
            .await
            .map_err(|e| anyhow!(e))?
            .cluster_join(&token)
            .await
            .map_err(|e| anyhow!("cluster join at {}: {}", peer.addr, e.message))?;
    }
    Ok(admin)
}

/// One client: `noop` proposals on one connection.
#[derive(Clone)]
pub struct OurWriter {
    client: MonkClient,
}

impl Writer for OurWriter {
    async fn write(&mut self, _ticket: u64) -> Result<u64, String> {
        self.client
            .propose(ACTOR, Command::Noop)
            .await
            .map(|outcome| outcome.index)
            .map_err(|e| format!("monkd propose: {:?}: {}", e.kind, e.message))
    }
}
