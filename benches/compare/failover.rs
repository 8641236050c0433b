//! Failover under load (issue 15 item 2): a few clients write through the followers
//! while the leader is SIGKILLed; timed from the kill to the first member that says it
//! leads, and to the first write acknowledged afterwards (probes sent every
//! [`PROBE_INTERVAL`] through the survivors, each with its own deadline, so a probe
//! stuck on a leaderless member does not hide a later one that succeeds). The killed
//! member is restarted and rejoins before the next kill.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio::task::JoinSet;

use crate::load::{self, Budget, Writer};
use crate::side::Side;

/// Clients writing through the followers while the leader dies.
const LOAD_CLIENTS: usize = 4;
/// How long the load runs before the kill.
const LOAD_BEFORE_KILL: Duration = Duration::from_secs(1);
/// How long the load runs in all (it outlives the kill).
const LOAD_DURATION: Duration = Duration::from_secs(3);
/// Gap between two probe writes: the resolution of the first-write time.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// Deadline of one probe write.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a new leader or a first write, and for a restarted member.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause after a restarted member rejoined, so the next kill finds a settled cluster.
const SETTLE: Duration = Duration::from_secs(2);

/// One kill's timings.
#[derive(Clone, Copy, Debug)]
pub struct Recovery {
    pub to_leader: Duration,
    pub to_write: Duration,
}

/// Kills the leader of `side` `kills` times under load and times each recovery.
pub async fn measure<S: Side>(side: &mut S, kills: usize) -> Result<Vec<Recovery>> {
    let mut recoveries = Vec::with_capacity(kills);
    for kill in 0..kills {
        let leader = side.leader(RECOVERY_TIMEOUT).await?;
        let survivors: Vec<usize> = side
            .running()
            .into_iter()
            .filter(|&s| s != leader)
            .collect();
        let prefix = format!("failover/{kill}/");
        let mut writers = Vec::new();
        for i in 0..LOAD_CLIENTS {
            writers.push(side.writer(survivors[i % survivors.len()], &prefix).await?);
        }
        let mut probes = Vec::new();
        for &slot in &survivors {
            probes.push(side.writer(slot, &format!("{prefix}probe/")).await?);
        }
        let budget = Budget {
            duration: LOAD_DURATION,
            writes_max: None,
        };
        let background = tokio::spawn(load::drive(writers, budget));
        tokio::time::sleep(LOAD_BEFORE_KILL).await;
        let killed_at = Instant::now();
        side.kill(leader);
        let new_leader = async {
            side.leader(RECOVERY_TIMEOUT)
                .await
                .map(|_| killed_at.elapsed())
        };
        let (to_leader, to_write) = tokio::join!(new_leader, first_write(probes, killed_at));
        recoveries.push(Recovery {
            to_leader: to_leader?,
            to_write: to_write?,
        });
        let _ = background.await;
        side.restart(leader)?;
        let deadline = Instant::now() + RECOVERY_TIMEOUT;
        while !side.rejoined(leader).await {
            if Instant::now() >= deadline {
                bail!(
                    "{}: the restarted member did not rejoin within {RECOVERY_TIMEOUT:?}",
                    S::NAME
                );
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
        tokio::time::sleep(SETTLE).await;
    }
    Ok(recoveries)
}

/// From `since` to the first acknowledged probe write through any of `probes`.
async fn first_write<W: Writer + Clone>(probes: Vec<W>, since: Instant) -> Result<Duration> {
    let mut attempts = JoinSet::new();
    let mut ticket = 0u64;
    loop {
        if since.elapsed() > RECOVERY_TIMEOUT {
            bail!("no write acknowledged within {RECOVERY_TIMEOUT:?} of the leader's kill");
        }
        let mut probe = probes[ticket as usize % probes.len()].clone();
        let this = ticket;
        attempts.spawn(async move {
            matches!(
                tokio::time::timeout(PROBE_TIMEOUT, probe.write(this)).await,
                Ok(Ok(_))
            )
        });
        ticket += 1;
        let pause = tokio::time::sleep(PROBE_INTERVAL);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                done = attempts.join_next() => match done {
                    Some(Ok(true)) => return Ok(since.elapsed()),
                    Some(_) => continue,
                    None => break,
                },
                _ = &mut pause => break,
            }
        }
        // Let the pause run out when every attempt so far has failed.
        pause.await;
    }
}
