//! Projections: read-only views of [`State`] that the API and executors consume, so
//! they never depend on the state's internal layout.

use serde::Serialize;

use crate::command::PeerId;
use crate::state::{PeerStatus, State};

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
