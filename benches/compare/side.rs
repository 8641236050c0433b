//! What the harness does with either cluster, so every round and every kill is the
//! same code for both: find the leader, connect writers, read back what was
//! acknowledged, kill and restart a member. etcd's side is in `etcd.rs`, ours in
//! `ours.rs`.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;

use crate::load::Writer;

/// A 3-member cluster under test.
pub trait Side {
    type Writer: Writer + Clone;
    /// `etcd` or `monkd`, for messages.
    const NAME: &'static str;
    /// The members still running.
    fn running(&self) -> Vec<usize>;
    /// SIGKILL of member `slot`.
    fn kill(&mut self, slot: usize);
    /// Starts member `slot` again on its data dir.
    fn restart(&mut self, slot: usize) -> Result<()>;
    /// The slot of the running member that leads, waiting up to `limit`.
    fn leader(&self, limit: Duration) -> impl Future<Output = Result<usize>>;
    /// A writer on its own connection to member `slot`, its writes distinct under
    /// `prefix` where the side has keys.
    fn writer(&self, slot: usize, prefix: &str) -> impl Future<Output = Result<Self::Writer>>;
    /// Fails unless every acknowledged write (as [`Writer::write`] identified it) is
    /// present when read through member `slot`.
    fn check_present(
        &self,
        slot: usize,
        prefix: &str,
        acked: &[u64],
    ) -> impl Future<Output = Result<()>>;
    /// Whether member `slot` answers and knows a leader (after a restart).
    fn rejoined(&self, slot: usize) -> impl Future<Output = bool>;
}
