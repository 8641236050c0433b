//! The one closed-loop load generator both sides are driven by: `clients` tasks, each
//! on its own connection, each sending its next write as soon as the previous one is
//! answered, until the round's time is up (or, in smoke mode, its write budget is
//! spent). What a side's write is lives behind [`Writer`]; this module only times.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One client's connection to one side.
pub trait Writer: Send + 'static {
    /// Sends write number `ticket` (unique in the round) and waits for its
    /// acknowledgement; what identifies the write once acknowledged (etcd: the ticket,
    /// whose key can be read back; ours: the log index it was applied at).
    fn write(&mut self, ticket: u64) -> impl Future<Output = Result<u64, String>> + Send;
}

/// When a round ends.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// No write starts after this long.
    pub duration: Duration,
    /// No more than this many writes start (smoke mode); `None`: only the time limits.
    pub writes_max: Option<u64>,
}

/// What one round of one side did.
#[derive(Debug, Default)]
pub struct Round {
    /// What identifies each acknowledged write (see [`Writer::write`]).
    pub acknowledged: Vec<u64>,
    /// The latency of each acknowledged write.
    pub latencies: Vec<Duration>,
    /// From the first write sent to the last one answered.
    pub elapsed: Duration,
    /// Writes that failed or went unanswered.
    pub errors: u64,
    /// The first of those errors, for the report.
    pub first_error: Option<String>,
}

/// Pause after a failed write, so a side that refuses everything is not spun on.
const PAUSE_AFTER_ERROR: Duration = Duration::from_millis(10);

/// Runs one closed-loop round with one task per writer.
pub async fn drive<W: Writer>(writers: Vec<W>, budget: Budget) -> Round {
    let tickets = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + budget.duration;
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|writer| tokio::spawn(client(writer, tickets.clone(), deadline, budget.writes_max)))
        .collect();
    let mut round = Round::default();
    for task in tasks {
        let part = match task.await {
            Ok(part) => part,
            Err(e) => Round {
                errors: 1,
                first_error: Some(format!("a load client panicked: {e}")),
                ..Round::default()
            },
        };
        round.acknowledged.extend(part.acknowledged);
        round.latencies.extend(part.latencies);
        round.errors += part.errors;
        round.first_error = round.first_error.or(part.first_error);
    }
    round.elapsed = started.elapsed();
    round
}

async fn client<W: Writer>(
    mut writer: W,
    tickets: Arc<AtomicU64>,
    deadline: Instant,
    writes_max: Option<u64>,
) -> Round {
    let mut round = Round::default();
    while Instant::now() < deadline {
        let ticket = tickets.fetch_add(1, Ordering::Relaxed);
        if writes_max.is_some_and(|max| ticket >= max) {
            break;
        }
        let sent = Instant::now();
        match writer.write(ticket).await {
            Ok(id) => {
                round.latencies.push(sent.elapsed());
                round.acknowledged.push(id);
            }
            Err(e) => {
                round.errors += 1;
                round.first_error.get_or_insert(e);
                tokio::time::sleep(PAUSE_AFTER_ERROR).await;
            }
        }
    }
    round
}

/// Throughput and latency percentiles of one side at one client count, over all its
/// rounds pooled.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub writes: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
}

impl Summary {
    /// Pools `rounds`: writes over the summed elapsed time, percentiles over every
    /// latency.
    pub fn of(rounds: &[Round]) -> Summary {
        let mut latencies: Vec<Duration> = rounds
            .iter()
            .flat_map(|r| r.latencies.iter().copied())
            .collect();
        latencies.sort_unstable();
        let elapsed: f64 = rounds.iter().map(|r| r.elapsed.as_secs_f64()).sum();
        let writes = latencies.len() as u64;
        Summary {
            writes,
            errors: rounds.iter().map(|r| r.errors).sum(),
            per_second: if elapsed > 0.0 {
                writes as f64 / elapsed
            } else {
                0.0
            },
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            p999: percentile(&latencies, 0.999),
        }
    }
}

/// The `p` quantile (nearest rank) of `sorted`; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&ms, 0.999), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
