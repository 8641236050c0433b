//! Placing replicas: the load on each peer, choosing a peer for one replica or a batch
//! (the rules are in `crate::placement`), and placing again after a peer is lost,
//! re-tagged or a workload's needs changed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::PENDING_REASON_PEERS_MAX;
use crate::command::PeerId;
use crate::placement::{self, PeerLoad, Refusal};
use crate::state::State;
use crate::workload::Workload;

/// What is placed on each peer.
fn load(state: &State) -> BTreeMap<PeerId, PeerLoad<'_>> {
    let mut load: BTreeMap<PeerId, PeerLoad> = BTreeMap::new();
    for w in state.workloads.values() {
        for i in w.instances.values() {
            if let Some(peer) = i.peer {
                load.entry(peer).or_default().add(w, i.replica);
            }
        }
    }
    load
}

/// Replicas of one workload per peer.
fn mine_of(workload: &Workload) -> BTreeMap<PeerId, u64> {
    let mut mine = BTreeMap::new();
    for peer in workload.instances.values().filter_map(|i| i.peer) {
        *mine.entry(peer).or_insert(0) += 1;
    }
    mine
}

/// Picks a peer for one more replica of `workload` (rules of the module docs), or says
/// why none can take it.
pub fn choose_peer(state: &State, workload: &Workload) -> Result<PeerId, String> {
    choose(state, workload, &load(state), &mine_of(workload))
}

/// [`choose_peer`] with the cluster's load and this workload's spread given, so a
/// placement of many replicas costs one pass over the peers per replica.
fn choose<'a>(
    state: &'a State,
    workload: &'a Workload,
    load: &BTreeMap<PeerId, PeerLoad<'a>>,
    mine: &BTreeMap<PeerId, u64>,
) -> Result<PeerId, String> {
    let empty = PeerLoad::default();
    let mut refused: Vec<(&str, Refusal)> = Vec::new();
    let mut refused_more = 0usize;
    let mut best: Option<(u64, u64, PeerId)> = None;
    for peer in state.members().filter(|p| p.is_up()) {
        let here = load.get(&peer.id).unwrap_or(&empty);
        if let Err(refusal) = placement::check(peer, here, workload) {
            if refused.len() < PENDING_REASON_PEERS_MAX {
                refused.push((&peer.name, refusal));
            } else {
                refused_more += 1;
            }
            continue;
        }
        let key = (
            mine.get(&peer.id).copied().unwrap_or(0),
            here.replicas,
            peer.id,
        );
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    if let Some((_, _, peer)) = best {
        return Ok(peer);
    }
    if refused.is_empty() {
        return Err("no peer is up".into());
    }
    let mut reason = refused
        .iter()
        .map(|(name, refusal)| format!("{name}: {refusal}"))
        .collect::<Vec<_>>()
        .join("; ");
    if refused_more > 0 {
        reason.push_str(&format!("; and {refused_more} more peer(s)"));
    }
    Err(reason)
}

/// Places replicas of the workload at `path` one after another, each seeing the ones
/// before it (the same choices as placing them one by one).
pub(super) fn place_many(state: &mut State, index: u64, path: &str, replicas: &[u32]) {
    let choices = {
        let Some(workload) = state.workloads.get(path) else {
            return;
        };
        let mut load = load(state);
        let mut mine = mine_of(workload);
        // A replica being re-placed no longer counts where it was.
        for &replica in replicas {
            if let Some(old) = workload.instances.get(&replica).and_then(|i| i.peer) {
                if let Some(here) = load.get_mut(&old) {
                    here.remove(workload, replica);
                }
                if let Some(count) = mine.get_mut(&old) {
                    *count = count.saturating_sub(1);
                }
            }
        }
        choose_many(state, workload, &mut load, &mut mine, replicas)
    };
    let Some(workload) = state.workloads.get_mut(path) else {
        return;
    };
    for (replica, choice) in choices {
        let Some(instance) = workload.instances.get_mut(&replica) else {
            continue;
        };
        match choice {
            Ok(peer) => {
                instance.peer = Some(peer);
                instance.pending = None;
            }
            Err(why) => {
                instance.peer = None;
                instance.pending = Some(why);
            }
        }
        instance.placed_at_index = index;
        instance.observed = None;
    }
}

/// A peer's rank for one more replica of a workload: fewest of this workload, then
/// fewest in all, then the lowest id (smallest wins).
type SpreadKey = (u64, u64, PeerId);

/// Chooses a peer for each of `replicas` in turn, each seeing the ones before: the same
/// choices as calling [`choose`] for each, in O(peers + replicas × log peers) instead of
/// O(peers × replicas). Placing a replica on a peer changes only that peer's load, so
/// every other peer's verdict and spread key for this workload stay as they were; only
/// the chosen peer is checked again.
fn choose_many<'a>(
    state: &'a State,
    workload: &'a Workload,
    load: &mut BTreeMap<PeerId, PeerLoad<'a>>,
    mine: &mut BTreeMap<PeerId, u64>,
    replicas: &[u32],
) -> Vec<(u32, Result<PeerId, String>)> {
    let empty = PeerLoad::default();
    let key = |peer: PeerId, load: &BTreeMap<PeerId, PeerLoad>, mine: &BTreeMap<PeerId, u64>| {
        let replicas_here = load.get(&peer).map_or(0, |l| l.replicas);
        (mine.get(&peer).copied().unwrap_or(0), replicas_here, peer)
    };
    let mut ready: BinaryHeap<Reverse<SpreadKey>> = state
        .members()
        .filter(|p| p.is_up())
        .filter(|p| placement::check(p, load.get(&p.id).unwrap_or(&empty), workload).is_ok())
        .map(|p| Reverse(key(p.id, load, mine)))
        .collect();
    let mut why_none: Option<String> = None;
    let mut out = Vec::with_capacity(replicas.len());
    for &replica in replicas {
        let Some(Reverse((_, _, chosen))) = ready.pop() else {
            let why = why_none.get_or_insert_with(|| {
                choose(state, workload, load, mine)
                    .err()
                    .unwrap_or_else(|| "no peer can take it".into())
            });
            out.push((replica, Err(why.clone())));
            continue;
        };
        let here = load.entry(chosen).or_default();
        here.add(workload, replica);
        *mine.entry(chosen).or_insert(0) += 1;
        let again = state
            .peers
            .get(&chosen)
            .is_some_and(|p| placement::check(p, &load[&chosen], workload).is_ok());
        if again {
            ready.push(Reverse(key(chosen, load, mine)));
        }
        out.push((replica, Ok(chosen)));
    }
    out
}

/// Unplaces the replicas of `path` that their peer can no longer take (checked as if
/// each were placed anew, highest replica first, everything else staying), so
/// `place_all_pending` moves them. Used after an update changed what they ask for.
pub(super) fn evict_misfits(state: &mut State, index: u64, path: &str, when: &str) {
    let evicted = {
        let Some(w) = state.workloads.get(path) else {
            return;
        };
        let mut load = load(state);
        let mut evicted = Vec::new();
        for i in w.instances.values().rev() {
            let Some(peer_id) = i.peer else { continue };
            let (Some(peer), Some(here)) = (state.peers.get(&peer_id), load.get_mut(&peer_id))
            else {
                continue;
            };
            here.remove(w, i.replica);
            match placement::check(peer, here, w) {
                Ok(()) => here.add(w, i.replica),
                Err(refusal) => {
                    evicted.push((i.replica, format!("{}: {refusal} {when}", peer.name)))
                }
            }
        }
        evicted
    };
    unplace(state, index, path, evicted);
}

fn unplace(state: &mut State, index: u64, path: &str, replicas: Vec<(u32, String)>) {
    let Some(w) = state.workloads.get_mut(path) else {
        return;
    };
    for (replica, why) in replicas {
        if let Some(i) = w.instances.get_mut(&replica) {
            i.peer = None;
            i.pending = Some(why);
            i.placed_at_index = index;
            i.observed = None;
        }
    }
}

/// `peer-tagged`: the replicas on the peer whose tag or name constraints it no longer
/// meets are unplaced (they move), then every pending replica gets another chance.
pub(crate) fn peer_retagged(state: &mut State, index: u64, peer_id: PeerId) {
    let Some(peer) = state.peers.get(&peer_id) else {
        return;
    };
    let mut misfits: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
    for w in state.workloads.values() {
        let Err(refusal) = placement::check_constraints(peer, &w.constraints) else {
            continue;
        };
        for i in w.instances.values().filter(|i| i.peer == Some(peer_id)) {
            misfits.entry(w.path.clone()).or_default().push((
                i.replica,
                format!("{}: {refusal} after retagging", peer.name),
            ));
        }
    }
    for (path, replicas) in misfits {
        unplace(state, index, &path, replicas);
    }
    place_all_pending(state, index);
}

pub(super) fn place_pending_of(state: &mut State, index: u64, path: &str) {
    let pending: Vec<u32> = state
        .workloads
        .get(path)
        .map(|w| {
            w.instances
                .values()
                .filter(|i| i.peer.is_none())
                .map(|i| i.replica)
                .collect()
        })
        .unwrap_or_default();
    place_many(state, index, path, &pending);
}

/// A peer was declared down or left: its replicas move elsewhere (or become pending).
pub(crate) fn peer_lost(state: &mut State, index: u64, lost: PeerId, failed: bool) {
    let moving: Vec<(String, u32)> = state
        .workloads
        .values()
        // A peer that failed keeps the replicas whose `recovery` says not to move them
        // on a machine's failure; one that left keeps none.
        .filter(|w| !failed || super::definition::moves_on_peer_failure(&w.definition))
        .flat_map(|w| {
            w.instances
                .values()
                .filter(|i| i.peer == Some(lost))
                .map(|i| (w.path.clone(), i.replica))
        })
        .collect();
    // Unplace them all first so the lost peer's load does not steer the new choices.
    for (path, replica) in &moving {
        if let Some(i) = state
            .workloads
            .get_mut(path)
            .and_then(|w| w.instances.get_mut(replica))
        {
            i.peer = None;
        }
    }
    let mut by_path: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (path, replica) in moving {
        by_path.entry(path).or_default().push(replica);
    }
    for (path, replicas) in by_path {
        place_many(state, index, &path, &replicas);
    }
    // Pending replicas elsewhere keep a reason that names this peer: say it anew.
    place_all_pending(state, index);
}

/// A peer joined or came back: pending replicas get another chance.
pub(crate) fn place_all_pending(state: &mut State, index: u64) {
    let paths: Vec<String> = state
        .workloads
        .values()
        .filter(|w| w.instances.values().any(|i| i.peer.is_none()))
        .map(|w| w.path.clone())
        .collect();
    for path in paths {
        place_pending_of(state, index, &path);
    }
}
