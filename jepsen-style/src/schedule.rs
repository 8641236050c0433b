//! Fault schedules: a proptest strategy over partitions, heals, crashes and restarts,
//! delayed and duplicated messages, peers joining and leaving, drawn from a seed so that a failing schedule can
//! be drawn again. On simulated time (`crate::sim::simulate`) the seed fixes the
//! interleaving too, so a replay runs the very same case.

use std::fmt;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::limits::{
    DEPOSED_LEADER_EXTRA_STEPS_MAX, DEPOSED_LEADER_HOLD_MS, JITTER_DELAY_MS_MAX,
    JITTER_DUPLICATE_PER_MILLE_MAX, SIM_SPARE_SLOTS, STEP_HOLD_MS_MAX, STEP_HOLD_MS_MIN,
};

/// One fault. Peers are named by their slot (0-based position in the cluster).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Cut a peer off from every other (both directions).
    Isolate(usize),
    /// Cut off whichever peer leads right now.
    IsolateLeader,
    /// Clients can no longer reach a peer (the peers still can).
    CutClients(usize),
    /// Reconnect one peer (to peers and clients).
    Heal(usize),
    /// Reconnect every peer.
    HealAll,
    /// Stop a peer's Raft and drop its store, as a crash does (its data dir stays).
    Crash(usize),
    /// Crash whichever peer leads right now.
    CrashLeader,
    /// Reopen a crashed peer on its data dir.
    Restart(usize),
    /// Reopen every crashed peer.
    RestartAll,
    /// Delay every Raft message and reply by up to `delay_max_ms` (so they overtake
    /// each other) and deliver `duplicate_per_mille` of the requests twice.
    Jitter {
        delay_max_ms: u64,
        duplicate_per_mille: u32,
    },
    /// Deliver messages at once and once only again.
    Calm,
    /// A spare slot's peer joins through the leader (a learner the autopilot may
    /// promote).
    Join,
    /// A member leaves: the leader removes it, then it stops for good.
    Leave(usize),
}

/// A fault and how long it holds before the next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub fault: Fault,
    pub hold_ms: u64,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} for {} ms", self.fault, self.hold_ms)
    }
}

/// Any fault on a cluster of `peers` (and its spare slots, once they joined).
pub fn fault(peers: usize) -> impl Strategy<Value = Fault> {
    let slot = 0..peers + SIM_SPARE_SLOTS;
    prop_oneof![
        2 => slot.clone().prop_map(Fault::Isolate),
        2 => Just(Fault::IsolateLeader),
        1 => slot.clone().prop_map(Fault::CutClients),
        1 => slot.clone().prop_map(Fault::Heal),
        2 => Just(Fault::HealAll),
        2 => slot.clone().prop_map(Fault::Crash),
        2 => Just(Fault::CrashLeader),
        1 => slot.clone().prop_map(Fault::Restart),
        2 => Just(Fault::RestartAll),
        2 => (1..=JITTER_DELAY_MS_MAX, 0..=JITTER_DUPLICATE_PER_MILLE_MAX).prop_map(
            |(delay_max_ms, duplicate_per_mille)| Fault::Jitter {
                delay_max_ms,
                duplicate_per_mille
            }
        ),
        1 => Just(Fault::Calm),
        1 => Just(Fault::Join),
        1 => slot.prop_map(Fault::Leave),
    ]
}

/// Schedules of 1 to `steps_max` steps on a cluster of `peers`.
pub fn schedule(peers: usize, steps_max: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = (fault(peers), STEP_HOLD_MS_MIN..=STEP_HOLD_MS_MAX)
        .prop_map(|(fault, hold_ms)| Step { fault, hold_ms });
    proptest::collection::vec(step, 1..=steps_max.max(1))
}

/// The schedule `seed` stands for: the same seed always gives the same steps.
pub fn draw(seed: u64, peers: usize, steps_max: usize) -> Vec<Step> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    schedule(peers, steps_max)
        .new_tree(&mut runner)
        .expect("a vec strategy of plain values always draws")
        .current()
}

/// The schedule of the injected-stale-read drill: the leader cut off for
/// [`DEPOSED_LEADER_HOLD_MS`] (long enough for the others to elect another and go on
/// writing while it keeps its older state), then what `seed` draws.
pub fn deposed_leader(seed: u64, peers: usize) -> Vec<Step> {
    let cut = Step {
        fault: Fault::IsolateLeader,
        hold_ms: DEPOSED_LEADER_HOLD_MS,
    };
    std::iter::once(cut)
        .chain(draw(seed, peers, DEPOSED_LEADER_EXTRA_STEPS_MAX))
        .collect()
}

/// The seed of the first case: `MONK_DRILL_SEED`, else the clock.
pub fn first_seed() -> u64 {
    std::env::var(crate::limits::SEED_ENV)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_draws_the_same_schedule() {
        for seed in [0, 1, 42, u64::MAX] {
            let a = draw(seed, 3, 8);
            assert_eq!(a, draw(seed, 3, 8));
            assert!((1..=8).contains(&a.len()));
            assert!(a
                .iter()
                .all(|s| (STEP_HOLD_MS_MIN..=STEP_HOLD_MS_MAX).contains(&s.hold_ms)));
        }
        assert_ne!(
            draw(1, 5, 8),
            draw(2, 5, 8),
            "different seeds, different schedules"
        );
    }
}
