//! What the tests, the drills (`jepsen-style/`) and the benchmarks share, so there is
//! one of each:
//! - [`process`]: real `monkd` processes on loopback ports with their own data dirs
//!   (start, restart on the same data dir, SIGKILL, SIGTERM with a clean exit, SIGSTOP
//!   and SIGCONT), and the bounded wait every test uses;
//! - [`cli`]: the real `monk` binary run against a peer, its output, and JSON;
//! - [`hosts`]: a bed of hosts on one machine (network namespaces on a bridge, a
//!   `dockerd` and a `monkd` each, one formed cluster), torn down even after a crash;
//! - [`inproc`]: a cluster of real peers (gRPC on loopback, RocksDB) in one process;
//! - [`builders`]: proposals and log entries built one way;
//! - [`datadir`]: data dirs written through the live store code (entries, snapshots,
//!   compaction) for replay and audit tests, without a running peer;
//! - [`lossyfs`]: a FUSE filesystem that loses what was not synced at a "power loss".
//!
//! Expected-output files use `expect-test` (`expect_file!`, `UPDATE_EXPECT=1` rewrites)
//! everywhere; this crate adds nothing to that. Everything here panics with a message
//! naming what failed where a test would, and returns `Result` where a drill wants to
//! report instead.

pub mod builders;
pub mod cli;
pub mod datadir;
pub mod hosts;
pub mod inproc;
pub mod lossyfs;
pub mod process;
