//! The leader's pure decisions: which peers to declare down or up again (liveness),
//! and which voter change to make (autopilot). Clocks, locks, Raft metrics and
//! proposals stay in [`super::duties`]; these take what it read and the time, and say
//! what to do, so they are tested by properties below.

use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;

use monk_statemachine::{Command, PeerId};

use crate::limits::{LEARNER_CAUGHT_UP_ENTRIES, PEER_DOWN_AFTER, PEER_UP_WITHIN, VOTERS_MAX};

/// One member as the leader's state records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: PeerId,
    pub up: bool,
}

/// The `peer-down` and `peer-up` commands the leader proposes at `now`. `last_seen`
/// is when each peer's last heartbeat arrived; silence counts from `leader_since` at
/// the earliest (a new leader has heard nobody yet), and the leader itself is never
/// declared down.
pub fn liveness_decisions(
    leader: PeerId,
    members: &[MemberStatus],
    last_seen: &BTreeMap<PeerId, Instant>,
    leader_since: Instant,
    now: Instant,
) -> Vec<Command> {
    let mut commands = Vec::new();
    for member in members.iter().filter(|m| m.id != leader) {
        let last = last_seen.get(&member.id).copied();
        let heard = last.map_or(leader_since, |t| t.max(leader_since));
        let silent_for = now.saturating_duration_since(heard);
        if member.up && silent_for > PEER_DOWN_AFTER {
            commands.push(Command::PeerDown {
                peer: member.id,
                reason: format!("no heartbeat for {}s", silent_for.as_secs()),
            });
        } else if !member.up
            && last.is_some_and(|t| now.saturating_duration_since(t) < PEER_UP_WITHIN)
        {
            commands.push(Command::PeerUp { peer: member.id });
        }
    }
    commands
}

/// What the autopilot reads from Raft and the state.
#[derive(Clone, Debug, Default)]
pub struct VoterView {
    pub voters: BTreeSet<PeerId>,
    /// Learners in Raft's order (the first healthy one is chosen).
    pub learners: Vec<PeerId>,
    /// True while a membership change is in flight (joint configuration).
    pub joint: bool,
    /// The leader's last log index.
    pub last_log_index: u64,
    /// The index each follower has replicated up to, when known.
    pub matched: BTreeMap<PeerId, u64>,
    /// Whether each member is up in the replicated state (absent: unknown).
    pub up: BTreeMap<PeerId, bool>,
}

/// A voter change the autopilot makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoterChange {
    /// Make this learner a voter (fewer than [`VOTERS_MAX`] voters).
    Promote(PeerId),
    /// Replace the voter declared down by the learner (at [`VOTERS_MAX`] voters).
    Swap { down: PeerId, learner: PeerId },
}

impl VoterView {
    fn caught_up(&self, id: PeerId) -> bool {
        self.matched
            .get(&id)
            .is_some_and(|m| self.last_log_index.saturating_sub(*m) <= LEARNER_CAUGHT_UP_ENTRIES)
    }
}

/// Keeps up to [`VOTERS_MAX`] healthy voters: promotes a caught-up learner that is up
/// while there are fewer, and at the limit swaps a voter declared down for one. Makes
/// no change while another is in flight.
pub fn autopilot_change(view: &VoterView) -> Option<VoterChange> {
    if view.joint {
        return None;
    }
    let learner = view
        .learners
        .iter()
        .copied()
        .find(|id| view.up.get(id).copied().unwrap_or(false) && view.caught_up(*id))?;
    if view.voters.len() < VOTERS_MAX {
        return Some(VoterChange::Promote(learner));
    }
    let down = view
        .voters
        .iter()
        .copied()
        .find(|v| view.up.get(v) == Some(&false))?;
    Some(VoterChange::Swap { down, learner })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    const PEERS_MAX: u64 = 7;

    /// Milliseconds after a base instant (0 = the base).
    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    /// Members 1..=n with random up flags and random last heartbeats (or none), the
    /// leader's start and the time of the review, in milliseconds.
    fn liveness_case(
    ) -> impl Strategy<Value = (Vec<MemberStatus>, BTreeMap<PeerId, u64>, PeerId, u64, u64)> {
        (1..=PEERS_MAX).prop_flat_map(|n| {
            (
                prop::collection::vec(any::<bool>(), n as usize),
                prop::collection::btree_map(1..=n, 0u64..20_000, 0..=n as usize),
                1..=n,
                0u64..10_000,
                0u64..30_000,
            )
                .prop_map(|(up, seen, leader, since, now)| {
                    let members = up
                        .into_iter()
                        .enumerate()
                        .map(|(i, up)| MemberStatus {
                            id: i as PeerId + 1,
                            up,
                        })
                        .collect();
                    (members, seen, leader, since, now)
                })
        })
    }

    proptest! {
        /// A peer is declared down only when up and silent for longer than
        /// `PEER_DOWN_AFTER` (counted from the leader's start at the earliest), never
        /// the leader itself; up again only when down and heard recently; and a down
        /// peer heard within `PEER_UP_WITHIN` is always declared up.
        #[test]
        fn liveness_follows_heartbeats(
            (members, seen, leader, since, now) in liveness_case(),
        ) {
            let base = Instant::now();
            let last_seen: BTreeMap<PeerId, Instant> =
                seen.iter().map(|(id, ms)| (*id, at(base, *ms))).collect();
            let commands =
                liveness_decisions(leader, &members, &last_seen, at(base, since), at(base, now));
            for command in &commands {
                match command {
                    Command::PeerDown { peer, .. } => {
                        prop_assert_ne!(*peer, leader);
                        let member = members.iter().find(|m| m.id == *peer).expect("a member");
                        prop_assert!(member.up);
                        let heard = seen.get(peer).copied().unwrap_or(0).max(since);
                        prop_assert!(now.saturating_sub(heard) > PEER_DOWN_AFTER.as_millis() as u64);
                    }
                    Command::PeerUp { peer } => {
                        prop_assert_ne!(*peer, leader);
                        let member = members.iter().find(|m| m.id == *peer).expect("a member");
                        prop_assert!(!member.up);
                        let heard = seen.get(peer).copied().expect("heard from");
                        prop_assert!(now.saturating_sub(heard) < PEER_UP_WITHIN.as_millis() as u64);
                    }
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            for m in members.iter().filter(|m| m.id != leader) {
                let heard = seen.get(&m.id).copied().unwrap_or(0).max(since);
                let silent = now.saturating_sub(heard) > PEER_DOWN_AFTER.as_millis() as u64;
                let declared_down = commands.iter().any(|c| matches!(c, Command::PeerDown { peer, .. } if *peer == m.id));
                prop_assert_eq!(declared_down, m.up && silent, "peer {}", m.id);
                let recent = seen.get(&m.id).is_some_and(|t| now.saturating_sub(*t) < PEER_UP_WITHIN.as_millis() as u64);
                let declared_up = commands.contains(&Command::PeerUp { peer: m.id });
                prop_assert_eq!(declared_up, !m.up && recent, "peer {}", m.id);
            }
        }
    }

    /// Peers 1..=9: the first few voters, the rest learners, with random health (up,
    /// down or unknown), replication progress and joint flag.
    fn voter_view() -> impl Strategy<Value = VoterView> {
        (
            prop::collection::btree_map(1u64..=9, (0u8..3, 0u64..400), 1..=9),
            1usize..=VOTERS_MAX,
            prop::bool::weighted(0.1),
        )
            .prop_map(|(peers, voters_wanted, joint)| {
                let mut view = VoterView {
                    joint,
                    last_log_index: 300,
                    ..VoterView::default()
                };
                for (i, (id, (health, matched))) in peers.into_iter().enumerate() {
                    match health {
                        0 => {}
                        1 => {
                            view.up.insert(id, true);
                        }
                        _ => {
                            view.up.insert(id, false);
                        }
                    }
                    view.matched.insert(id, matched);
                    if i < voters_wanted {
                        view.voters.insert(id);
                    } else {
                        view.learners.push(id);
                    }
                }
                view
            })
    }

    proptest! {
        /// The autopilot never exceeds `VOTERS_MAX` voters, promotes or swaps in only a
        /// caught-up learner that is up, swaps out only a voter declared down, changes
        /// nothing during a joint configuration, and at the limit with a down voter and
        /// a healthy learner always swaps.
        #[test]
        fn autopilot_keeps_healthy_voters_within_the_limit(view in voter_view()) {
            let healthy = |id: PeerId| {
                view.up.get(&id) == Some(&true)
                    && view.matched.get(&id).is_some_and(|m| view.last_log_index.saturating_sub(*m) <= LEARNER_CAUGHT_UP_ENTRIES)
            };
            let change = autopilot_change(&view);
            let voters_after = match change {
                None => view.voters.clone(),
                Some(VoterChange::Promote(id)) => {
                    prop_assert!(view.learners.contains(&id) && healthy(id));
                    prop_assert!(view.voters.len() < VOTERS_MAX);
                    let mut v = view.voters.clone();
                    v.insert(id);
                    v
                }
                Some(VoterChange::Swap { down, learner }) => {
                    prop_assert!(view.learners.contains(&learner) && healthy(learner));
                    prop_assert!(view.voters.contains(&down));
                    prop_assert_eq!(view.up.get(&down), Some(&false));
                    let mut v = view.voters.clone();
                    v.remove(&down);
                    v.insert(learner);
                    v
                }
            };
            prop_assert!(voters_after.len() <= VOTERS_MAX.max(view.voters.len()));
            if view.joint {
                prop_assert_eq!(change, None);
            }
            let any_healthy_learner = view.learners.iter().any(|l| healthy(*l));
            let any_down_voter = view.voters.iter().any(|v| view.up.get(v) == Some(&false));
            if !view.joint && any_healthy_learner {
                if view.voters.len() < VOTERS_MAX {
                    prop_assert!(matches!(change, Some(VoterChange::Promote(_))), "{:?}", change);
                } else if any_down_voter {
                    prop_assert!(matches!(change, Some(VoterChange::Swap { .. })), "{:?}", change);
                }
            }
        }
    }
}
