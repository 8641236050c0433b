//! When `monk run`, `update`, `scale` and `restart` stop waiting, decided by a pure
//! function of what the cluster reported: every replica's [`Phase`] (what the
//! progress display shows), and a [`Verdict`]: keep waiting, done, or give up with the
//! reason (a replica failed or exited, crash-loops, cannot be placed, or the deadline
//! passed). No clock and no I/O here: the caller passes the elapsed time and the
//! replicas it read; `workloads.rs` does the polling and `progress.rs` the drawing.

use std::collections::BTreeMap;
use std::time::Duration;

use monk_statemachine::view::InstanceView;
use monk_statemachine::InstanceStatus;

/// How long `run`/`update`/`scale`/`restart` wait by default: Nomad's progress
/// deadline is of this order, long enough for an image pull and a chain of
/// `depends.wait-for` (whose own default is 300 s), short enough that a script does
/// not hang for good.
pub const WAIT_TIMEOUT_DEFAULT: &str = "5m";

/// A replica whose containers the engine restarted this many times since the wait
/// began is crash-looping and the wait gives up. Docker's restart back-off starts at
/// 100 ms and doubles, so three restarts take well under two seconds of back-off for
/// a process that exits at once, while a container that merely failed once or twice
/// on its way up (a database not accepting connections yet) still gets its chance.
pub const CRASH_LOOP_RESTARTS: u64 = 3;

/// A replica whose containers restarted during the wait counts as up only once its
/// restart count has held this long: one report of `running` between two crashes
/// (an executor pass that saw the container in the moment it was up, as happens on
/// a loaded machine) must not end the wait, while a container that failed once on
/// its way up and then stays up costs the wait only this much. Ten executor passes.
pub const RESTART_SETTLE: Duration = Duration::from_secs(10);

/// The longest `--timeout` accepted: a day. A longer wait is a mistake (a unit
/// forgotten), and `--timeout 0` already means "do not wait".
const TIMEOUT_SECS_MAX: u64 = 24 * 60 * 60;

/// Parses `--timeout`: seconds (`90`), or a number with `s`, `m` or `h` (`5m`).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_secs) = match text.char_indices().last() {
        Some((at, 's')) => (&text[..at], 1),
        Some((at, 'm')) => (&text[..at], 60),
        Some((at, 'h')) => (&text[..at], 60 * 60),
        _ => (text, 1),
    };
    let secs = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .ok_or_else(|| format!("{text:?}: expected seconds (90) or a duration (90s, 5m, 1h)"))?;
    if secs > TIMEOUT_SECS_MAX {
        return Err(format!("{text:?}: at most a day (24h)"));
    }
    Ok(Duration::from_secs(secs))
}

/// Where one replica stands, as the progress display names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No peer can take it; the reason names each peer's refusal.
    Pending(String),
    /// Placed; its peer has not reported the current generation yet (an older
    /// generation's containers may still run).
    Placed,
    /// Its containers are being created or started (message: the engine's restarts).
    Starting(String),
    /// Held back by `depends.wait-for` (message: `waiting for ns/db`).
    WaitingFor(String),
    /// Every container runs; a readiness check, if any, has not passed yet.
    Running(String),
    /// Running and its readiness check passes.
    Ready,
    /// Stopped (a report from before this `run` of a stopped workload).
    Stopped,
    /// Failed or exited: the status and the executor's reason.
    Down(InstanceStatus, String),
}

impl Phase {
    /// Of a replica as the cluster reports it.
    pub fn of(i: &InstanceView) -> Phase {
        if i.peer.is_none() {
            return Phase::Pending(i.pending.clone().unwrap_or_default());
        }
        if i.observed_generation != Some(i.generation) {
            return Phase::Placed;
        }
        match i.status {
            None => Phase::Placed,
            Some(InstanceStatus::Starting) if i.message.starts_with("waiting for ") => {
                Phase::WaitingFor(i.message.clone())
            }
            Some(InstanceStatus::Starting) => Phase::Starting(i.message.clone()),
            Some(InstanceStatus::Running) => Phase::Running(i.message.clone()),
            Some(InstanceStatus::Ready) => Phase::Ready,
            Some(InstanceStatus::Stopped) => Phase::Stopped,
            Some(s @ (InstanceStatus::Failed | InstanceStatus::Exited)) => {
                Phase::Down(s, i.message.clone())
            }
        }
    }

    /// Running or ready: what the wait waits for.
    pub fn is_up(&self) -> bool {
        matches!(self, Phase::Running(_) | Phase::Ready)
    }

    /// One word, then the detail if there is one: `pending: beta: missing tag gpu`,
    /// `starting`, `waiting for ns/db`, `ready`.
    pub fn text(&self) -> String {
        let with = |word: &str, detail: &str| match detail.is_empty() {
            true => word.to_string(),
            false => format!("{word}: {detail}"),
        };
        match self {
            Phase::Pending(why) => with("pending", why),
            Phase::Placed => "placed".into(),
            Phase::Starting(msg) => with("starting", msg),
            Phase::WaitingFor(msg) => msg.clone(),
            Phase::Running(msg) => with("running", msg),
            Phase::Ready => "ready".into(),
            Phase::Stopped => "stopped".into(),
            Phase::Down(status, msg) => with(status.as_str(), msg),
        }
    }
}

/// `ns/web#0`.
pub fn replica_name(i: &InstanceView) -> String {
    format!("{}#{}", i.path, i.replica)
}

/// `ns/web#0 on alpha`, or `ns/web#0` while it has no peer.
pub fn replica_label(i: &InstanceView) -> String {
    match &i.peer_name {
        Some(peer) => format!("{} on {peer}", replica_name(i)),
        None => replica_name(i),
    }
}

/// The restart counts the executor puts in a replica's message, per container
/// (`main restarted 4 times; sidecar restarted 1 times`, see `replica_status` in
/// `node/src/executor/mod.rs`).
pub fn restart_counts(message: &str) -> BTreeMap<String, u64> {
    message
        .split("; ")
        .filter_map(|part| {
            let (container, rest) = part.split_once(" restarted ")?;
            let count = rest.strip_suffix(" times")?.parse().ok()?;
            Some((container.to_string(), count))
        })
        .collect()
}

/// What the wait decided after one look at the replicas.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Waiting,
    Done,
    GiveUp(String),
}

type ReplicaKey = (String, u32);

/// The wait's memory between looks: the restart counts each replica's containers had
/// when the wait began, so only restarts during this wait count as a crash loop, and,
/// for a replica that restarted during the wait, since when its restart count holds.
#[derive(Debug, Default)]
pub struct Watch {
    baseline: BTreeMap<ReplicaKey, BTreeMap<String, u64>>,
    started: bool,
    /// Restarts during the wait (all containers) and when that number was first seen.
    settling: BTreeMap<ReplicaKey, (u64, Duration)>,
}

impl Watch {
    /// Judges one look at the replicas of the workloads waited for, `elapsed` after
    /// the wait began, with `timeout` as its deadline.
    pub fn judge(
        &mut self,
        replicas: &[InstanceView],
        elapsed: Duration,
        timeout: Duration,
    ) -> Verdict {
        self.remember_baseline(replicas);
        for i in replicas {
            match Phase::of(i) {
                Phase::Down(status, msg) => {
                    return Verdict::GiveUp(format!(
                        "{}: {} {msg}",
                        replica_label(i),
                        status.as_str()
                    ));
                }
                Phase::Starting(_) | Phase::Running(_) => {
                    if let Some(reason) = self.crash_loop(i) {
                        return Verdict::GiveUp(reason);
                    }
                }
                _ => {}
            }
        }
        let up: Vec<bool> = replicas.iter().map(|i| self.up(i, elapsed)).collect();
        let placed_up = replicas
            .iter()
            .zip(&up)
            .all(|(i, up)| i.peer.is_none() || *up);
        let pending: Vec<&InstanceView> = replicas.iter().filter(|i| i.peer.is_none()).collect();
        if placed_up && pending.is_empty() {
            return Verdict::Done;
        }
        // Every placed replica is up and the rest have no peer that can take them: say
        // why now rather than at the deadline (they stay pending in the cluster and
        // are placed when a peer frees up, joins or is re-tagged).
        if placed_up {
            let reasons: Vec<String> = pending
                .iter()
                .map(|i| {
                    format!(
                        "{} pending: {}",
                        replica_name(i),
                        i.pending.as_deref().unwrap_or("not placed yet")
                    )
                })
                .collect();
            return Verdict::GiveUp(reasons.join("\n"));
        }
        if elapsed >= timeout {
            let waiting: Vec<String> = replicas
                .iter()
                .zip(&up)
                .filter(|(_, up)| !**up)
                .map(|(i, _)| format!("{} ({})", replica_label(i), Phase::of(i).text()))
                .collect();
            return Verdict::GiveUp(format!(
                "timed out after {}s waiting for {}",
                timeout.as_secs(),
                waiting.join(", ")
            ));
        }
        Verdict::Waiting
    }

    /// On the first look, each replica already reporting its current generation
    /// keeps the restart counts it has (they happened before this wait); replicas of
    /// a new generation start from zero.
    fn remember_baseline(&mut self, replicas: &[InstanceView]) {
        if self.started {
            return;
        }
        self.started = true;
        for i in replicas {
            if i.observed_generation == Some(i.generation) {
                self.baseline
                    .insert((i.path.clone(), i.replica), restart_counts(&i.message));
            }
        }
    }

    /// Restarts of each container of `i` since the wait began.
    fn restarts_during(&self, i: &InstanceView) -> BTreeMap<String, u64> {
        let before = self.baseline.get(&(i.path.clone(), i.replica));
        restart_counts(&i.message)
            .into_iter()
            .map(|(container, count)| {
                let was = before.and_then(|b| b.get(&container)).copied().unwrap_or(0);
                (container, count.saturating_sub(was))
            })
            .collect()
    }

    /// Running or ready, and, if it restarted during the wait, steady for
    /// [`RESTART_SETTLE`].
    fn up(&mut self, i: &InstanceView, elapsed: Duration) -> bool {
        if !Phase::of(i).is_up() {
            return false;
        }
        let restarts: u64 = self.restarts_during(i).values().sum();
        if restarts == 0 {
            return true;
        }
        let key = (i.path.clone(), i.replica);
        let since = match self.settling.get(&key) {
            Some((seen, since)) if *seen == restarts => *since,
            _ => {
                self.settling.insert(key, (restarts, elapsed));
                elapsed
            }
        };
        elapsed.saturating_sub(since) >= RESTART_SETTLE
    }

    fn crash_loop(&self, i: &InstanceView) -> Option<String> {
        self.restarts_during(i)
            .into_iter()
            .find(|(_, restarts)| *restarts >= CRASH_LOOP_RESTARTS)
            .map(|(container, restarts)| {
                format!(
                    "{}: crash-looping: container {container} restarted {restarts} times \
                     during the wait (see monk logs {} -r {})",
                    replica_label(i),
                    i.path,
                    i.replica
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monk_statemachine::Desired;

    fn replica(status: Option<InstanceStatus>, message: &str) -> InstanceView {
        InstanceView {
            path: "ns/web".into(),
            replica: 0,
            generation: 2,
            desired: Desired::Running,
            peer: Some(1),
            peer_name: Some("alpha".into()),
            pending: None,
            status,
            observed_generation: status.map(|_| 2),
            message: message.into(),
            group: None,
            addresses: Default::default(),
        }
    }

    const LONG: Duration = Duration::from_secs(300);

    #[test]
    fn timeouts_parse_with_and_without_units() {
        assert_eq!(parse_timeout("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_timeout("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("0"), Ok(Duration::ZERO));
        assert!(parse_timeout("5x").is_err());
        assert!(parse_timeout("m").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("25h").is_err());
    }

    #[test]
    fn phases_name_what_the_executor_reported() {
        let mut pending = replica(None, "");
        pending.peer = None;
        pending.pending = Some("alpha: missing tag gpu".into());
        assert_eq!(
            Phase::of(&pending).text(),
            "pending: alpha: missing tag gpu"
        );
        assert_eq!(Phase::of(&replica(None, "")), Phase::Placed);
        let waiting = replica(Some(InstanceStatus::Starting), "waiting for ns/db");
        assert_eq!(Phase::of(&waiting).text(), "waiting for ns/db");
        assert_eq!(
            Phase::of(&replica(Some(InstanceStatus::Ready), "")),
            Phase::Ready
        );
        let mut old = replica(Some(InstanceStatus::Running), "");
        old.observed_generation = Some(1);
        assert_eq!(
            Phase::of(&old),
            Phase::Placed,
            "an older generation is not up"
        );
    }

    #[test]
    fn restart_counts_are_read_per_container() {
        let counts = restart_counts("main restarted 4 times; side restarted 1 times");
        assert_eq!(counts.get("main"), Some(&4));
        assert_eq!(counts.get("side"), Some(&1));
        assert!(restart_counts("not ready: exec cat exited with 1").is_empty());
    }

    #[test]
    fn a_crash_loop_during_the_wait_gives_up_with_the_reason() {
        let mut watch = Watch::default();
        let fresh = replica(None, "");
        assert_eq!(
            watch.judge(&[fresh], Duration::ZERO, LONG),
            Verdict::Waiting
        );
        let twice = replica(Some(InstanceStatus::Starting), "main restarted 2 times");
        assert_eq!(
            watch.judge(&[twice], Duration::ZERO, LONG),
            Verdict::Waiting
        );
        let looping = replica(Some(InstanceStatus::Starting), "main restarted 3 times");
        let Verdict::GiveUp(reason) = watch.judge(&[looping], Duration::ZERO, LONG) else {
            panic!("three restarts during the wait are a crash loop");
        };
        assert!(
            reason.starts_with("ns/web#0 on alpha: crash-looping: container main restarted 3"),
            "{reason}"
        );
    }

    #[test]
    fn a_replica_that_restarted_during_the_wait_is_up_once_it_holds() {
        let mut watch = Watch::default();
        assert_eq!(
            watch.judge(&[replica(None, "")], Duration::ZERO, LONG),
            Verdict::Waiting
        );
        let once = replica(Some(InstanceStatus::Running), "main restarted 1 times");
        let at = |secs| Duration::from_secs(secs);
        assert_eq!(
            watch.judge(std::slice::from_ref(&once), at(5), LONG),
            Verdict::Waiting
        );
        assert_eq!(
            watch.judge(std::slice::from_ref(&once), at(14), LONG),
            Verdict::Waiting
        );
        assert_eq!(
            watch.judge(std::slice::from_ref(&once), at(15), LONG),
            Verdict::Done
        );
        // A second restart starts the clock again.
        let mut watch = Watch::default();
        watch.judge(&[replica(None, "")], Duration::ZERO, LONG);
        watch.judge(std::slice::from_ref(&once), at(1), LONG);
        let twice = replica(Some(InstanceStatus::Running), "main restarted 2 times");
        assert_eq!(
            watch.judge(std::slice::from_ref(&twice), at(11), LONG),
            Verdict::Waiting
        );
        assert_eq!(watch.judge(&[twice], at(21), LONG), Verdict::Done);
    }

    #[test]
    fn restarts_before_the_wait_do_not_count() {
        let mut watch = Watch::default();
        let old = replica(Some(InstanceStatus::Running), "main restarted 10 times");
        assert_eq!(watch.judge(&[old], Duration::ZERO, LONG), Verdict::Done);
        let more = replica(Some(InstanceStatus::Starting), "main restarted 12 times");
        assert_eq!(watch.judge(&[more], Duration::ZERO, LONG), Verdict::Waiting);
    }

    #[test]
    fn the_deadline_names_what_it_waited_for() {
        let mut watch = Watch::default();
        let waiting = replica(Some(InstanceStatus::Starting), "waiting for ns/db");
        let verdict = watch.judge(&[waiting], Duration::from_secs(2), Duration::from_secs(2));
        assert_eq!(
            verdict,
            Verdict::GiveUp(
                "timed out after 2s waiting for ns/web#0 on alpha (waiting for ns/db)".into()
            )
        );
    }

    #[test]
    fn failures_and_unplaceable_replicas_end_the_wait_at_once() {
        let mut watch = Watch::default();
        let failed = replica(
            Some(InstanceStatus::Exited),
            "container main exited with code 3",
        );
        assert_eq!(
            watch.judge(&[failed], Duration::ZERO, LONG),
            Verdict::GiveUp("ns/web#0 on alpha: exited container main exited with code 3".into())
        );
        let up = replica(Some(InstanceStatus::Running), "");
        let mut nowhere = replica(None, "");
        nowhere.replica = 1;
        nowhere.peer = None;
        nowhere.pending = Some("alpha: missing tag gpu".into());
        assert_eq!(
            Watch::default().judge(&[up, nowhere], Duration::ZERO, LONG),
            Verdict::GiveUp("ns/web#1 pending: alpha: missing tag gpu".into())
        );
    }
}
