//! Projections: read-only views of [`State`] that the API and executors consume, so
//! they never depend on the state's internal layout.

use std::collections::BTreeMap;

use monk_scripting::tree::Tree;
use serde::{Deserialize, Serialize};

use crate::command::{InstanceStatus, PeerId};
use crate::state::{PeerStatus, State};
use crate::workload::{Desired, EntityLife};

/// One peer as the cluster sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerView {
    pub id: PeerId,
    pub name: String,
    pub address: String,
    pub tags: Vec<String>,
    pub up: bool,
    pub down_reason: Option<String>,
}

/// The cluster as a whole: name, members, how many templates and secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    pub name: Option<String>,
    pub peers: Vec<PeerView>,
    pub templates: usize,
    pub secrets: usize,
    pub workloads: usize,
    pub applied_index: u64,
}

impl ClusterView {
    pub fn of(state: &State) -> ClusterView {
        let peers = state
            .members()
            .map(|p| PeerView {
                id: p.id,
                name: p.name.clone(),
                address: p.address.clone(),
                tags: p.tags.clone(),
                up: p.is_up(),
                down_reason: match &p.status {
                    PeerStatus::Down { reason, .. } => Some(reason.clone()),
                    _ => None,
                },
            })
            .collect();
        ClusterView {
            name: state.cluster_name.clone(),
            peers,
            templates: state.templates.len(),
            secrets: state.secrets.len(),
            workloads: state.workloads.len(),
            applied_index: state.last_applied_index,
        }
    }
}

/// What one node must know about the cluster: its own record and the overlay peers it
/// should reach (every other member that is up).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub peer: PeerId,
    pub is_member: bool,
    pub overlay_peers: Vec<(PeerId, String)>,
}

impl NodeView {
    pub fn of(state: &State, peer: PeerId) -> NodeView {
        let is_member = state.peers.get(&peer).is_some_and(|p| p.is_member());
        let overlay_peers = state
            .members()
            .filter(|p| p.id != peer && p.is_up())
            .map(|p| (p.id, p.address.clone()))
            .collect();
        NodeView {
            peer,
            is_member,
            overlay_peers,
        }
    }
}

/// One replica as `monk ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub path: String,
    pub replica: u32,
    pub generation: u64,
    pub desired: Desired,
    pub peer: Option<PeerId>,
    pub peer_name: Option<String>,
    /// Why it is not placed.
    pub pending: Option<String>,
    /// The last reported status, if it is about the current generation on this peer.
    pub status: Option<InstanceStatus>,
    /// The generation the last report was about.
    pub observed_generation: Option<u64>,
    pub message: String,
    pub group: Option<String>,
    /// Its running containers' addresses on the overlay, by container name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses: BTreeMap<String, std::net::Ipv4Addr>,
}

/// Every workload replica, in path and replica order.
pub fn instances(state: &State) -> Vec<InstanceView> {
    let mut out = Vec::new();
    for w in state.workloads.values() {
        for i in w.instances.values() {
            out.push(InstanceView {
                path: w.path.clone(),
                replica: i.replica,
                generation: w.generation,
                desired: w.desired,
                peer: i.peer,
                peer_name: i
                    .peer
                    .and_then(|p| state.peers.get(&p))
                    .map(|p| p.name.clone()),
                pending: i.pending.clone(),
                status: i.observed.as_ref().map(|o| o.status),
                observed_generation: i.observed.as_ref().map(|o| o.generation),
                message: i
                    .observed
                    .as_ref()
                    .map(|o| o.message.clone())
                    .unwrap_or_default(),
                group: w.group.clone(),
                addresses: i
                    .observed
                    .as_ref()
                    .map(|o| o.addresses.clone())
                    .unwrap_or_default(),
            });
        }
    }
    out
}

/// One replica an executor must reconcile on its peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub path: String,
    pub replica: u32,
    pub generation: u64,
    pub desired: Desired,
    /// The resolved runnable definition.
    pub definition: Tree,
    pub overrides: BTreeMap<String, String>,
    /// The last status this peer reported for it (so executors report only changes).
    pub reported: Option<(u64, InstanceStatus, String)>,
    /// The container addresses it last reported.
    pub reported_addresses: BTreeMap<String, std::net::Ipv4Addr>,
}

/// The replicas placed on `peer`, in path and replica order (containers only: entity
/// instances are [`entity_assignments`]).
pub fn assignments(state: &State, peer: PeerId) -> Vec<Assignment> {
    let mut out = Vec::new();
    for w in state.workloads.values().filter(|w| w.entity.is_none()) {
        for i in w.instances.values().filter(|i| i.peer == Some(peer)) {
            out.push(Assignment {
                path: w.path.clone(),
                replica: i.replica,
                generation: w.generation,
                desired: w.desired,
                definition: w.definition.clone(),
                overrides: w.overrides.clone(),
                reported: i
                    .observed
                    .as_ref()
                    .map(|o| (o.generation, o.status, o.message.clone())),
                reported_addresses: i
                    .observed
                    .as_ref()
                    .map(|o| o.addresses.clone())
                    .unwrap_or_default(),
            });
        }
    }
    out
}

/// One entity instance an entity executor hosts on its peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityAssignment {
    pub path: String,
    pub generation: u64,
    pub desired: Desired,
    /// The instance's resolved definition (the first argument of `main`).
    pub definition: Tree,
    pub life: EntityLife,
    /// The status its last result left it in, if it was about this generation.
    pub status: Option<InstanceStatus>,
}

impl EntityAssignment {
    /// The verb due: the head of the queue, or a readiness check of a started
    /// instance that has one and is not ready yet; `None` when nothing is due.
    pub fn verb_due(&self) -> Option<&str> {
        if let Some(head) = self.life.todo.first() {
            return Some(head);
        }
        let failed = self.life.last.as_ref().is_some_and(|l| l.error.is_some());
        let checking = self.desired == Desired::Running
            && self.life.has_readiness_check()
            && !failed
            && self.status == Some(InstanceStatus::Running);
        checking.then_some(crate::schedule::entity::CHECK_READINESS)
    }
}

/// The entity instances placed on `peer`, in path order.
pub fn entity_assignments(state: &State, peer: PeerId) -> Vec<EntityAssignment> {
    state
        .workloads
        .values()
        .filter_map(|w| {
            let life = w.entity.as_ref()?;
            let instance = w.instances.get(&0).filter(|i| i.peer == Some(peer))?;
            Some(EntityAssignment {
                path: w.path.clone(),
                generation: w.generation,
                desired: w.desired,
                definition: w.definition.clone(),
                life: life.clone(),
                status: instance
                    .observed
                    .as_ref()
                    .filter(|o| o.generation == w.generation)
                    .map(|o| o.status),
            })
        })
        .collect()
}
