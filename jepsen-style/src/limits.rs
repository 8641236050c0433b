//! Every limit and timing of the drills, named with its unit and the reason for its
//! value. The defaults keep a run of this crate's tests near a minute or two on a
//! 2-core machine; the environment variables named here run bigger
//! drills without editing code.

use std::time::Duration;

use monk_node::limits::PEER_DOWN_AFTER;

/// Environment variable: the seed of the first simulation case (later cases use the
/// following seeds). Unset: taken from the clock and printed.
pub const SEED_ENV: &str = "MONK_DRILL_SEED";
/// Environment variable: simulation cases per drill.
pub const CASES_ENV: &str = "MONK_DRILL_CASES";
/// Environment variable: most fault steps in one simulated schedule.
pub const STEPS_ENV: &str = "MONK_DRILL_STEPS";
/// Environment variable: kill-and-pause rounds of the process drill.
pub const ROUNDS_ENV: &str = "MONK_DRILL_ROUNDS";

/// Simulation cases per drill by default (`cargo test` on a laptop): a case lasts about
/// 10 s of simulated time and one to three seconds of a debug build's CPU; CI runs 100
/// (`.ci/run` sets [`CASES_ENV`]).
pub const DEFAULT_CASES: u32 = 10;
/// Fault steps per schedule by default: enough for partition, crash and heal to
/// overlap; each step holds for up to [`STEP_HOLD_MS_MAX`].
pub const DEFAULT_STEPS_MAX: usize = 6;
/// The most seeds one run takes: the soak (`sim --seeds 10000`, about an hour in a
/// release build) and then some; a hard cap keeps a typo from running for days.
pub const CASES_MAX: u32 = 100_000;
/// Most seeds `monk-drills sim --jobs` runs at once (each a thread with a few peers'
/// RocksDB instances in memory).
pub const JOBS_MAX: usize = 64;
pub const STEPS_MAX: usize = 200;

/// Shortest and longest time one fault step holds before the next. A follower waits
/// openraft's leader lease (the election timeout max, 1 s) plus an election timeout
/// (0.5–1 s) without hearing a leader before it campaigns, so a leader cut off or
/// crashed for less than 1.5 s keeps its term and one cut off for longer mostly loses
/// it; faults left in place by later steps last longer still.
pub const STEP_HOLD_MS_MIN: u64 = 200;
pub const STEP_HOLD_MS_MAX: u64 = 4_000;

/// Concurrent clients writing during a drill.
pub const CLIENTS: usize = 3;
/// Most writes one client sends in one run (a bound in case a fault step never ends).
pub const WRITES_PER_CLIENT_MAX: usize = 2_000;
/// Pause between a client's writes, so the log grows by tens of entries a second
/// rather than thousands (fsync on a shared disk).
pub const WRITE_PAUSE: Duration = Duration::from_millis(20);
/// A write not answered in this time counts as unknown. Longer than an election, so
/// most writes that straddle a leader change still get an answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(6);
/// Concurrent register clients in a drill (besides the writers above): each reads and
/// overwrites the keys through every live peer in turn.
pub const REGISTER_CLIENTS: usize = 3;
/// Registers (keys) they share: few, so operations on one key overlap often (what
/// makes a linearizability check bite), and a key's history stays a few hundred
/// operations, which the checker orders in milliseconds.
pub const REGISTER_KEYS: usize = 2;
/// Most operations one register client sends in one run (a bound in case a fault step
/// never ends; also keeps each written value unique, see `register::value_of_write`).
pub const REGISTER_OPS_PER_CLIENT_MAX: usize = 2_000;
/// One register operation in this many is a write; the rest are reads.
pub const REGISTER_WRITE_EVERY: usize = 3;
/// A register read whose operation number is one short of a multiple of this asks with
/// `stale` set (recorded, not checked), so the stale path is exercised too: about one
/// read in this many.
pub const REGISTER_STALE_READ_EVERY: usize = 10;
/// A read not answered in this time counts as unanswered. A read-index round is one
/// heartbeat to a quorum (milliseconds here), so a second leaves a wide margin; a
/// read stuck behind a cut-off leader waits for a quorum that never answers, and an
/// unanswered read constrains nothing, so giving up early only frees the client for
/// its next operation (unlike a write, whose timeout must outlast an election).
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// A register write not answered in this time counts as unknown. Shorter than
/// [`WRITE_TIMEOUT`]: the checker lets an unknown write take effect any time after its
/// invoke (or never), so an early give-up costs nothing in soundness, and it keeps a
/// client that hit a cut-off leader from idling for most of a fault step.
pub const REGISTER_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The injected-stale-read drill: how long the leader is cut off first. Past the
/// followers' lease plus election timeout (at most 2 s) and a failed round, so a new
/// leader is elected and acknowledges writes while the old one still holds its older
/// state.
pub const DEPOSED_LEADER_HOLD_MS: u64 = 5_000;
/// Random fault steps drawn after that first cut, per seed.
pub const DEPOSED_LEADER_EXTRA_STEPS_MAX: usize = 2;
/// Seeds within which reads served from local state must be caught as not
/// linearizable. One usually suffices (reads go to the cut-off leader a third of the
/// time for seconds); three leaves room for an unlucky interleaving.
pub const STALE_READ_SEEDS_MAX: u64 = 3;

/// How often the observer samples every peer's term and leader.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(25);
/// How long a client waits for some peer to claim leadership before trying again.
pub const NO_LEADER_PAUSE: Duration = Duration::from_millis(50);

/// Snapshot (and compact) after this many entries in the simulation, far below the
/// production 10 000, so restarted peers also catch up by snapshot transfer and
/// replay starts from a snapshot.
pub const SIM_SNAPSHOT_AFTER_ENTRIES: u64 = 40;
/// Forming a cluster and promoting every learner to voter (one per autopilot tick).
pub const FORM_TIMEOUT: Duration = Duration::from_secs(40);
/// After healing everything: until a write is acknowledged again (liveness), and until
/// every peer applied the same index with the same digest.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(45);
/// Reopening a crashed peer's data dir waits for the old RocksDB handle to close.
pub const REOPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// Poll interval of every bounded wait.
pub const POLL: Duration = Duration::from_millis(100);

/// Kill-and-pause rounds of the process drill by default.
pub const DEFAULT_ROUNDS: u32 = 2;
pub const ROUNDS_MAX: u32 = 100;
/// How long a SIGKILLed leader stays dead: past the followers' lease plus election
/// timeout (at most 2 s) and a failed round, so another peer takes over before it
/// comes back.
pub const KILLED_FOR: Duration = Duration::from_secs(4);
/// How long a follower stays SIGSTOPped: past `PEER_DOWN_AFTER`, so the leader
/// declares it down and then up again, and past its own election timeout, so it may
/// wake up campaigning in a stale term.
pub const PAUSED_FOR: Duration = Duration::from_secs(PEER_DOWN_AFTER.as_secs() + 1);
/// A started `monkd` must answer within this.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads a count from the environment, falling back to `default`, capped at `max`.
pub fn env_count<T: std::str::FromStr + Ord + Copy>(name: &str, default: T, max: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
        .min(max)
}

/// Where the peers' wall clock starts in a simulated case (2026-01-01T00:00:00Z): a
/// fixed epoch, so proposals carry the same `proposed_at_ms` on every run of a seed.
pub const SIM_EPOCH_MS: u64 = 1_767_225_600_000;

/// The longest delay a [`Jitter`](crate::schedule::Fault::Jitter) step puts on a Raft
/// message or reply: a fifth of the election timeout's lower bound, so a jittery
/// network slows the cluster and reorders messages without deposing every leader.
pub const JITTER_DELAY_MS_MAX: u64 = 300;

/// The most requests in a thousand a jitter step delivers twice.
pub const JITTER_DUPLICATE_PER_MILLE_MAX: u32 = 100;

/// The memory-backed filesystem simulated cases keep their data dirs on, when present.
pub const SIM_MEMORY_DIR: &str = "/dev/shm";

/// Slots beside a simulated cluster's peers that [`Join`](crate::schedule::Fault::Join)
/// steps fill: enough for a learner to be promoted and another to stay a learner.
pub const SIM_SPARE_SLOTS: usize = 2;

/// How long a simulated join or leave may take before the case goes on without it (a
/// partition may hold it up indefinitely).
pub const MEMBERSHIP_CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between two operations of one client in a simulated case: wider than
/// [`WRITE_PAUSE`], because a simulated case costs CPU per operation, not per second,
/// and the schedule of faults is what a seed explores (still tens of operations per
/// fault step, several in flight when a fault holds them up).
pub const SIM_OPERATION_PAUSE: Duration = Duration::from_millis(60);

/// The real runner's quiet time between two faults: long enough for an election and a
/// few acknowledged writes, so each heal's recovery is measured on its own.
pub const REAL_QUIET: Duration = Duration::from_secs(4);
/// How long the real runner holds a fault: past an election (2 s) and, at the top,
/// past the peer-down timeout so rescheduling and the voter swap happen.
pub const REAL_FAULT_HOLD_MS_MIN: u64 = 3_000;
pub const REAL_FAULT_HOLD_MS_MAX: u64 = PEER_DOWN_AFTER.as_millis() as u64 + 2_000;
/// The clock skew the real runner gives a peer (ahead by a minute and a half: more
/// than any token lifetime margin or lease, less than a day).
pub const REAL_SKEW_MS: i64 = 90_000;
/// The disk-full fault's tmpfs, in MiB: room for a peer's data dir in a drill (a few
/// MiB of log and snapshots), the rest taken by a ballast file.
pub const REAL_DISK_MIB: u64 = 256;
/// What the ballast leaves free on it: a few seconds of the drill's writes, or less
/// than RocksDB needs to open (a peer that cannot start is a full disk too).
pub const REAL_DISK_ROOM_BYTES: u64 = 256 << 10;
/// Longest a mount, copy or unmount of the disk-full fault may take.
pub const REAL_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a healed host may take to answer its final read.
pub const REAL_FINAL_READ_TIMEOUT: Duration = Duration::from_secs(60);
