//! Every entry that touched one entity (a template path with the secrets scoped to it
//! and the workload running from it, or a peer), oldest first, with the entity's value
//! before and after each (`monk history`).
//!
//! Which entries may touch the entity is decided by [`crate::reach`] before an entry
//! is applied; whether it did is decided after, from the result and the values.

use std::collections::BTreeMap;

use monk_log::replay::{Replayer, Start, Target};
use monk_log::{DataDirReader, RaftEntry};
use monk_statemachine::{
    Applied, Peer, PeerId, SecretName, SecretScope, State, Template, Workload,
};
use openraft::EntryPayload;
use serde::Serialize;

use crate::entry::EntryRow;
use crate::reach::{reach, PeerReach};
use crate::replay::Stopped;
use crate::AuditError;

/// One entity's value in a state: a template (plus secrets scoped to it), or a peer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EntityValue {
    Template {
        template: Option<Template>,
        secrets: Vec<SecretName>,
        /// The workload running from this path, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        workload: Option<Box<Workload>>,
    },
    Peer {
        peer: Option<Peer>,
    },
}

/// What a history follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entity {
    /// A template path (`ns/web`).
    Path(String),
    /// `peer/ID`.
    Peer(PeerId),
}

impl Entity {
    /// `peer/ID` or a template path.
    pub fn parse(text: &str) -> Result<Entity, AuditError> {
        match text.strip_prefix("peer/") {
            Some(id) => id
                .parse()
                .map(Entity::Peer)
                .map_err(|_| AuditError::BadPeerEntity(text.to_string())),
            None if text.is_empty() => Err(AuditError::EmptyEntity),
            None => Ok(Entity::Path(text.to_string())),
        }
    }

    pub fn value(&self, state: &State) -> EntityValue {
        match self {
            Entity::Path(path) => EntityValue::Template {
                template: state.template(path).cloned(),
                secrets: state
                    .secrets()
                    .values()
                    .filter(|s| s.scope == SecretScope::Entity(path.clone()))
                    .map(SecretName::from)
                    .collect(),
                workload: state.workload(path).cloned().map(Box::new),
            },
            Entity::Peer(id) => EntityValue::Peer {
                peer: state.peer(*id).cloned(),
            },
        }
    }

    /// Whether the entry may touch this entity (decided before applying it).
    pub fn may_touch(&self, entry: &RaftEntry) -> bool {
        let EntryPayload::Normal(p) = &entry.payload else {
            return false;
        };
        let reach = reach(&p.command);
        match self {
            Entity::Path(path) => reach.moves_workloads || reach.paths.contains(&path.as_str()),
            Entity::Peer(id) => match reach.peer {
                PeerReach::None => false,
                PeerReach::Named(peer) => peer == *id,
                PeerReach::Assigned => true,
            },
        }
    }

    /// Whether the entry, with its result, did concern this entity.
    pub fn touched(
        &self,
        entry: &RaftEntry,
        result: Option<&Applied>,
        before: &EntityValue,
        after: &EntityValue,
    ) -> bool {
        let EntryPayload::Normal(p) = &entry.payload else {
            return true;
        };
        let reach = reach(&p.command);
        match self {
            Entity::Peer(id) if reach.peer == PeerReach::Assigned => {
                matches!(result, Some(Applied::Accepted { peer_id: Some(assigned) }) if assigned == id)
                    || before != after
            }
            Entity::Peer(_) => true,
            Entity::Path(path) => reach.paths.contains(&path.as_str()) || before != after,
        }
    }
}

/// What one entry did to the entity.
#[derive(Clone, Debug, PartialEq)]
pub enum HistoryChange {
    /// The entry is inside the snapshot the replay started from: not recomputable.
    InSnapshot,
    /// The state machine rejected it: nothing changed.
    Rejected,
    /// Applied. `peers` is every peer after it, to name where replicas sit.
    Applied {
        before: Box<EntityValue>,
        after: Box<EntityValue>,
        peers: BTreeMap<PeerId, Peer>,
    },
}

/// One entry of an entity's history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryStep {
    pub row: EntryRow,
    pub change: HistoryChange,
}

/// An entity's history, and where it stopped early if it did.
#[derive(Debug)]
pub struct History {
    pub steps: Vec<HistoryStep>,
    pub stopped: Option<Stopped>,
}

/// Every entry of the data dir that touched `entity`, oldest first.
pub fn entity_history(reader: &DataDirReader, entity: &Entity) -> Result<History, AuditError> {
    let mut replayer = Replayer::open(reader, Target::End, Start::Earliest)?;
    let mut steps = Vec::new();
    let mut stopped = None;
    while let Some(next) = replayer.next_entry() {
        let entry = match next {
            Ok(entry) => entry,
            Err(e) => {
                stopped = Some(Stopped::at(e, replayer.state()));
                break;
            }
        };
        let before = entity
            .may_touch(&entry)
            .then(|| entity.value(replayer.state()));
        let (entry, result) = match replayer.apply(entry) {
            Ok(pair) => pair,
            Err(e) => {
                stopped = Some(Stopped::at(e, replayer.state()));
                break;
            }
        };
        let Some(before) = before else { continue };
        let after = entity.value(replayer.state());
        if !entity.touched(&entry, result.as_ref(), &before, &after) {
            continue;
        }
        let change = match &result {
            None => HistoryChange::InSnapshot,
            Some(Applied::Rejected { .. }) => HistoryChange::Rejected,
            Some(Applied::Accepted { .. }) => HistoryChange::Applied {
                before: Box::new(before),
                after: Box::new(after),
                peers: replayer.state().peers().clone(),
            },
        };
        steps.push(HistoryStep {
            row: EntryRow::of(&entry, result),
            change,
        });
    }
    Ok(History { steps, stopped })
}
