//! The wall clock a peer stamps proposals with (`proposed_at_ms`, request ids, token
//! expiry): the system's, shifted by `MONK_TEST_CLOCK_OFFSET_MS` where a test skews
//! one host, or, on a thread a simulation claimed with [`simulate`], a clock that
//! starts at a fixed epoch and follows tokio's (paused, auto-advancing) clock, so that
//! one seed stamps the very same times into every entry and replays byte for byte.
//! Durations and deadlines inside the node use `tokio::time::Instant`, which a paused
//! runtime advances the same way.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

thread_local! {
    /// Where this thread's simulated clock started: tokio's instant and the epoch.
    static SIMULATED: Cell<Option<(Instant, u64)>> = const { Cell::new(None) };
}

/// From now on, on this thread, [`now_ms`] is `epoch_ms` plus the time tokio's clock
/// advanced since this call. Only the simulation calls it, on the single thread of a
/// runtime with a paused clock.
pub fn simulate(epoch_ms: u64) {
    SIMULATED.set(Some((Instant::now(), epoch_ms)));
}

/// Test only: `MONK_TEST_CLOCK_OFFSET_MS` skews this process's wall clock (a peer on a
/// host whose clock is wrong), since `CLOCK_REALTIME` cannot be set per network
/// namespace. Read once; unset (as everywhere but the skew tests) it is 0.
static CLOCK_OFFSET_MS: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
    std::env::var("MONK_TEST_CLOCK_OFFSET_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
});

/// Milliseconds since the Unix epoch on this peer's clock.
pub fn now_ms() -> u64 {
    if let Some((start, epoch)) = SIMULATED.get() {
        return epoch.saturating_add(start.elapsed().as_millis() as u64);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    now.saturating_add_signed(*CLOCK_OFFSET_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_simulated_clock_starts_at_its_epoch_and_follows_tokio() {
        simulate(1_000_000);
        assert_eq!(now_ms(), 1_000_000);
        tokio::time::sleep(std::time::Duration::from_secs(90)).await;
        assert_eq!(now_ms(), 1_090_000);
    }

    #[test]
    fn an_unclaimed_thread_reads_the_system_clock() {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let ours = std::thread::spawn(now_ms).join().expect("thread");
        assert!(ours.abs_diff(system) < 60_000, "{ours} vs {system}");
    }
}
