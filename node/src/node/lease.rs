//! The executor's lease: whether this peer may act on its containers (issue 13,
//! fencing). A peer cut off from a quorum must stop its replicas before the majority
//! declares it down and starts them elsewhere, or two copies of a `replicas: 1`
//! database run at once; and a peer that restarts on an old state must not remove
//! containers the cluster still wants before it has caught up.
//!
//! The timing argument. A follower heartbeats the leader every 0.5 s; the leader
//! answers only while a quorum acknowledged it within [`QUORUM_ACK_FRESH`] (a deposed
//! leader on the minority side cannot renew anyone's lease), and with its commit
//! index. The follower renews its lease at the time it *sent* that heartbeat, which is
//! before the leader recorded it; the leader declares the follower down only
//! [`PEER_DOWN_AFTER`] after the last heartbeat it recorded. So the follower's lease
//! (renewal + [`LEASE`]) ends at least `PEER_DOWN_AFTER - LEASE` before the majority
//! may start its replicas elsewhere, and the executor's fencing watchdog needs at most
//! one check interval plus the kills to stop them in that window ([`FENCE_MARGIN`], checked by a test). A leader
//! renews the same lease with each quorum acknowledgement (at the time it happened);
//! a newly elected one, not acknowledged yet, acts on the lease it held as a
//! follower. That renewal is no later than the followers last heard the old
//! leadership, so it ends before the new majority's down timeout as well. A
//! single-voter cluster's leader always holds it (no one else can move its replicas).
//!
//! [`Lease::state`] and [`Lease::leader_state`] are pure (times and indexes in, a
//! [`LeaseState`] out).

use std::time::Duration;
use tokio::time::Instant;

use crate::limits::{FENCE_CHECK_INTERVAL, PEER_DOWN_AFTER};

/// How long a renewal lets the executor act (`monkd --lease` is not offered: the
/// bound below is what makes it safe, and it follows from the down timeout). Longer
/// than a leader's death stops renewals, so it fences no follower
/// (`testkit/tests/fencing.rs`): the last renewal is up to a heartbeat interval (0.5 s)
/// old when the leader dies; openraft 0.9 makes a follower wait its leader lease
/// (`election_timeout_max`, 1 s) plus its own election timeout (0.5 to 1 s) before it
/// campaigns, so an election takes 1.5 to 2 s, a round more (0.5 to 1 s) after a split
/// vote; then a heartbeat to the dead leader may hang for its timeout (1 s) before the
/// next one reaches the new leader: about 4.5 s at worst, and 6 s leaves a margin for a
/// loaded machine. (Session 7's CI runs saw replicas killed with a 5 s lease and blamed
/// lapsed leases; the cause was a newly elected leader reading "no quorum
/// acknowledgement yet" as fenced, fixed in [`Lease::leader_state`].)
pub const LEASE: Duration = Duration::from_secs(6);
/// How fresh the leader's quorum acknowledgement must be for it to renew a lease.
pub const QUORUM_ACK_FRESH: Duration = Duration::from_millis(1500);
/// What the executor needs after the lease ends to have killed every container of
/// the peer after the watchdog noticed (`FENCE_CHECK_INTERVAL` later at most): the kills (no stop grace: a fenced replica is
/// killed, as a cut-off peer's would be by a real fence).
pub const FENCE_MARGIN: Duration = Duration::from_secs(2);

const _: () = assert!(
    LEASE.as_millis() + FENCE_CHECK_INTERVAL.as_millis() + FENCE_MARGIN.as_millis()
        <= PEER_DOWN_AFTER.as_millis()
);

/// A leader's quorum acknowledgement as openraft last published it: the term it
/// leads, and when a quorum acknowledged it (the metrics' age subtracted from the time
/// they arrived).
#[derive(Clone, Copy, Debug)]
pub struct QuorumAck {
    pub term: u64,
    pub at: Option<Instant>,
}

/// What the executor may do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// Heard from a quorum within the lease and applied what the leader had
    /// committed then: act.
    Current,
    /// Within the lease but not caught up yet (a restart on an older state): do
    /// nothing, neither start nor remove.
    CatchingUp,
    /// The lease ran out: kill every container of this peer's replicas.
    Fenced,
}

/// The follower side of the lease: when it was last renewed and the leader's commit
/// index then.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    pub renewed_at: Instant,
    /// `None` until the first renewal (the process start counts as one, so a peer
    /// that cannot reach a quorum at start fences after [`LEASE`]).
    pub commit_index: Option<u64>,
}

impl Lease {
    /// A lease held from `now` (process start), not caught up to anything yet.
    pub fn starting(now: Instant) -> Lease {
        Lease {
            renewed_at: now,
            commit_index: None,
        }
    }

    /// Renewed by a heartbeat sent at `sent_at` that the leader answered with
    /// `commit_index` (a later renewal never goes back in time).
    pub fn renew(&mut self, sent_at: Instant, commit_index: u64) {
        if sent_at >= self.renewed_at || self.commit_index.is_none() {
            self.renewed_at = sent_at.max(self.renewed_at);
            self.commit_index = Some(commit_index.max(self.commit_index.unwrap_or(0)));
        }
    }

    /// A follower's state at `now` with `applied` applied.
    pub fn state(&self, now: Instant, applied: u64) -> LeaseState {
        if now.saturating_duration_since(self.renewed_at) > LEASE {
            return LeaseState::Fenced;
        }
        match self.commit_index {
            Some(committed) if applied >= committed => LeaseState::Current,
            _ => LeaseState::CatchingUp,
        }
    }
}

impl Lease {
    /// A leader's state at `now`: a quorum acknowledged it at `acked_at` (`None`:
    /// not yet in this term), it leads `voters` voters and applied `applied`. The
    /// acknowledgement renews the lease as a heartbeat answered then would; until the
    /// first one, the lease this peer held as a follower still counts. Before, a new
    /// leader read "no acknowledgement yet" as fenced and killed its own replicas at
    /// its first executor tick after winning an election (the fencing bed caught it:
    /// a follower's replica killed 2 s after its leader died, when it was elected in
    /// its place). A single voter always holds the lease (no one else can move its
    /// replicas).
    pub fn leader_state(
        &mut self,
        now: Instant,
        acked_at: Option<Instant>,
        voters: usize,
        applied: u64,
    ) -> LeaseState {
        if voters <= 1 {
            return LeaseState::Current;
        }
        if let Some(acked_at) = acked_at {
            self.renew(acked_at, applied);
        }
        self.state(now, applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_acts_only_renewed_and_caught_up_and_fences_after_the_lease() {
        let start = Instant::now();
        let mut lease = Lease::starting(start);
        // Just started: within the lease, but caught up to nothing yet.
        assert_eq!(lease.state(start, 100), LeaseState::CatchingUp);
        lease.renew(start + Duration::from_millis(500), 40);
        assert_eq!(
            lease.state(start + Duration::from_secs(1), 39),
            LeaseState::CatchingUp
        );
        assert_eq!(
            lease.state(start + Duration::from_secs(1), 40),
            LeaseState::Current
        );
        // No renewal for longer than the lease: fenced, whatever was applied.
        let late = start + Duration::from_millis(500) + LEASE + Duration::from_millis(1);
        assert_eq!(lease.state(late, 1_000), LeaseState::Fenced);
        // A stale answer (sent before the last renewal) does not move it back.
        lease.renew(start + Duration::from_millis(100), 10);
        assert_eq!(lease.renewed_at, start + Duration::from_millis(500));
        assert_eq!(lease.commit_index, Some(40));
        // A new renewal ends the fence.
        lease.renew(late, 50);
        assert_eq!(lease.state(late, 50), LeaseState::Current);
    }

    #[test]
    fn a_leader_holds_the_lease_while_a_quorum_acknowledges_it() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let ms = Duration::from_millis;
        let mut single = Lease::starting(start);
        let late = LEASE.as_millis() as u64 * 3;
        assert_eq!(
            single.leader_state(at(late), None, 1, 0),
            LeaseState::Current
        );

        let mut lease = Lease::starting(start);
        assert_eq!(
            lease.leader_state(at(1_000), Some(at(700)), 3, 5),
            LeaseState::Current
        );
        // The acknowledgement renewed the lease at the time it happened.
        assert_eq!(lease.renewed_at, at(700));
        // No acknowledgement for longer than the lease: fenced.
        let stale = Some(at(late) - LEASE - ms(1));
        assert_eq!(
            lease.leader_state(at(late), stale, 3, 5),
            LeaseState::Fenced
        );
    }

    #[test]
    fn a_follower_elected_leader_keeps_the_lease_it_held_until_a_quorum_acknowledges_it() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut lease = Lease::starting(start);
        // A follower renewed by the old leader's answer at 1 s.
        lease.renew(at(1_000), 40);
        // Elected at 3 s: no quorum acknowledgement in this term yet, still current.
        assert_eq!(
            lease.leader_state(at(3_000), None, 3, 40),
            LeaseState::Current
        );
        // Never acknowledged: fenced once the old renewal is older than the lease.
        let after = 1_000 + LEASE.as_millis() as u64 + 1;
        assert_eq!(
            lease.leader_state(at(after), None, 3, 40),
            LeaseState::Fenced
        );
        // A peer that never was renewed at all fences a lease after its start.
        let mut fresh = Lease::starting(start);
        let past = LEASE.as_millis() as u64 + 1;
        assert_eq!(fresh.leader_state(at(past), None, 3, 0), LeaseState::Fenced);
    }
}
