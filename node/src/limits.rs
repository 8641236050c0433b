//! Every limit and timing of a peer, named with its unit and the reason for its value.

use std::time::Duration;

/// Leader heartbeat to followers (etcd's default). Loopback and LAN round trips are
/// well under this.
pub const RAFT_HEARTBEAT_INTERVAL_MS: u64 = 100;
/// Election timeouts. openraft 0.9 makes a follower wait its leader lease (the
/// maximum, 1 s) *plus* its own timeout (drawn once from this range) after the last
/// heartbeat before it campaigns, and refuse votes for the lease: so a follower
/// campaigns only after 1.5 to 2 s of silence, more tolerance of a busy 2-core machine
/// than etcd's 1 s election timeout, and a dead leader is replaced in about 2 s
/// (`benches/compare`'s failover figures; was 1.5/3 s, p50 6.2 s, max 12.5 s).
pub const RAFT_ELECTION_TIMEOUT_MIN_MS: u64 = 500;
pub const RAFT_ELECTION_TIMEOUT_MAX_MS: u64 = 1_000;
/// Take a snapshot after this many applied entries; a snapshot of a typical cluster
/// state is far smaller than 10k JSON entries.
pub const SNAPSHOT_AFTER_ENTRIES: u64 = 10_000;
/// Take a snapshot once the log grew by this many bytes since the last one, whatever
/// the entry count (a few big template loads would otherwise keep a large log).
pub const SNAPSHOT_AFTER_BYTES: u64 = 64 << 20;
/// Entries kept behind a snapshot, so a briefly lagging follower catches up from the
/// log instead of a full snapshot transfer.
pub const ENTRIES_KEPT_AFTER_SNAPSHOT: u64 = 1_000;
/// Deadline of one peer-to-peer or client RPC (not a Raft RPC, which openraft bounds).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to keep retrying a command while no leader is known (an election takes
/// up to two election timeouts under load).
pub const NO_LEADER_RETRY_FOR: Duration = Duration::from_secs(15);
/// Pause between retries while no leader is known.
pub const NO_LEADER_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How often every member tells the leader it is alive. Each answered heartbeat
/// renews the executor's lease (`node/src/node/lease.rs`), so the interval is part of
/// what the lease must cover after a leader dies.
pub const PEER_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
/// Longest one such heartbeat may take, connection included, so that a leader which
/// vanished mid-call delays the heartbeat to its successor by at most this (the
/// executor's lease is renewed only by answered heartbeats).
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);
/// A member not heard from for this long is declared down by the leader. Long enough
/// that a cut-off peer has fenced its replicas first (its lease, a tick and the kills:
/// `node/src/node/lease.rs` asserts it at compile time), and that a leader election,
/// which stops every follower's renewals for a few seconds, fences no one. Its
/// replicas then run elsewhere within a few seconds more (the placement commits with
/// the `peer-down`, the executor there wakes on it, the container starts).
pub const PEER_DOWN_AFTER: Duration = Duration::from_secs(9);
/// A member declared down and heard from within this long is declared up again: six
/// heartbeats, so a stale record from before it fell silent does not count.
pub const PEER_UP_WITHIN: Duration = Duration::from_secs(3);
/// How often the leader reviews liveness and voter membership.
pub const AUTOPILOT_INTERVAL: Duration = Duration::from_secs(1);
/// Most voters; further peers are learners (quorum latency grows with voters).
pub const VOTERS_MAX: usize = 5;
/// A learner within this many entries of the leader counts as caught up.
pub const LEARNER_CAUGHT_UP_ENTRIES: u64 = 100;
/// Largest gRPC message (snapshots travel in one InstallSnapshot chunk stream).
pub const GRPC_MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest single proposal accepted from a client (a big `monk load`).
pub const PROPOSAL_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest client request a peer reads (a proposal and its envelope); larger ones are
/// refused by the transport with their size and this limit. Peers' Raft messages may
/// be up to [`GRPC_MESSAGE_BYTES_MAX`]. (etcd's default is 1.5 MiB a request; ours
/// allows a `monk load` of a whole Hub mirror in one proposal.)
pub const CLIENT_REQUEST_BYTES_MAX: usize = PROPOSAL_BYTES_MAX + 64 * 1024;
/// Largest snapshot a follower receives, in bytes: a chunk that would write past it
/// is refused (the snapshot is a JSON image of the state, far smaller in practice).
pub const SNAPSHOT_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Largest Raft data a peer exports through the API for online audit (one gRPC
/// message; bigger data dirs are copied and audited with --data-dir).
pub const EXPORT_BYTES_MAX: usize = 60 * 1024 * 1024;
/// In-flight client requests a peer serves at once.
pub const CONCURRENT_REQUESTS_MAX: usize = 256;
/// How long `cluster new` waits for the fresh single voter to become leader.
pub const BOOTSTRAP_LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long a join token admits peers unless `monk cluster token --ttl` says otherwise.
pub const JOIN_TOKEN_TTL_DEFAULT: Duration = Duration::from_secs(3600);
/// The longest `--ttl` a join token may have.
pub const JOIN_TOKEN_TTL_MAX: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long `cluster join` waits for the new peer to apply the log up to its own
/// admission before it answers (it then knows the cluster's users).
pub const JOIN_CATCH_UP_WAIT: Duration = Duration::from_secs(30);
/// How often the container executor wakes up to compare state with the runtime (and
/// checks its lease) when nothing new was applied.
pub const EXECUTOR_TICK: Duration = Duration::from_secs(1);
/// How long the quorum-acknowledgement watch (`node/duties.rs`) waits for openraft's
/// metrics before it looks again whether the peer still runs (they normally arrive
/// every 100 ms heartbeat or faster).
pub const QUORUM_ACK_WATCH_RETRY: Duration = Duration::from_secs(1);
/// How often the fencing watchdog checks the executor's lease, whatever a pass is
/// doing (`executor/reconcile.rs`).
pub const FENCE_CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// Longest the executor waits for one of its reports to commit; the next pass reports
/// again (a leader cut off from its quorum would otherwise hold the loop for good).
pub const EXECUTOR_REPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest pause between two executor passes: it wakes as soon as new entries
/// are applied (a replica placed on this peer starts without waiting for a tick), but
/// a stream of commits runs at most a pass per this.
pub const EXECUTOR_PASS_GAP: Duration = Duration::from_millis(250);
/// Longest one executor pass may take (image checks, creates, graceful stops).
pub const EXECUTOR_ACTION_TIMEOUT: Duration = Duration::from_secs(180);
/// Longest a call to the container engine may take before it counts as failed.
pub const CONTAINER_ENGINE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a peer measures its machine (cores, memory, GPUs, free disk); the first
/// measurement is reported as soon as the peer is a member.
pub const FACTS_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// How often a peer compares the WireGuard identity the state holds for it with its
/// own (the first check runs as soon as it is a member); a change is rare (a restart
/// with a new `--wg-endpoint`), so a slow check costs nothing.
pub const OVERLAY_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// How often the overlay executor compares this peer's WireGuard interface and
/// firewall with the state (a moved replica's address reaches the firewall and the
/// DNS within about this long).
pub const OVERLAY_TICK: Duration = Duration::from_secs(1);
/// Bound on asking another member for its local view (`monk system overlay`).
pub const PEER_QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// Free disk is reported again only after it moved by this many percent...
pub const FACTS_DISK_CHANGE_PERCENT: u64 = 10;
/// ...and by at least this many GB, so small churn adds no log entries.
pub const FACTS_DISK_CHANGE_GB_MIN: u64 = 2;
