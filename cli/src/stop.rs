//! Waiting until a workload's containers are gone: what `monk stop`, `monk purge` and
//! `monk down` do before they return (as `docker compose down` does), with progress.

use std::time::{Duration, Instant};

use monk_node::MonkClient;
use monk_statemachine::view::InstanceView;

use crate::progress::{Mode, Progress};
use crate::wait::{replica_label, Phase};
use crate::workloads::replicas_of;
use crate::Failure;

/// Pause between two looks at the replicas.
const STOP_POLL: Duration = Duration::from_millis(300);
/// How long `stop`, `purge` and `down` wait for every replica to report `stopped`: each container gets
/// its `stop-grace-period` (10 s by default) and the executor passes every second;
/// two minutes cover several containers per replica stopped one after another.
const STOP_WAIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether a replica has no containers left to wait for: not placed, never started by
/// an executor (a peer without one, `monkd --containers none`), stopped, or failed
/// before its containers could run (its engine does not answer).
fn containers_gone(i: &InstanceView) -> bool {
    i.peer.is_none()
        || i.observed_generation.is_none()
        || Phase::of(i) == Phase::Stopped
        || i.status == Some(monk_statemachine::InstanceStatus::Failed)
}

/// Waits until every placed replica of `paths` reports `stopped` (its containers are
/// gone), showing progress, for at most [`STOP_WAIT_TIMEOUT`].
pub(crate) async fn wait_stopped(client: &mut MonkClient, paths: &[String]) -> Result<(), Failure> {
    let mut progress = Progress::new(Mode::choose(false));
    let began = Instant::now();
    loop {
        let replicas = replicas_of(client, paths).await?;
        progress.show(&replicas, began.elapsed());
        let left: Vec<String> = replicas
            .iter()
            .filter(|i| !containers_gone(i))
            .map(|i| format!("{} ({})", replica_label(i), Phase::of(i).text()))
            .collect();
        if left.is_empty() {
            progress.finish(true);
            return Ok(());
        }
        if began.elapsed() >= STOP_WAIT_TIMEOUT {
            progress.finish(false);
            return Err(Failure::failed(format!(
                "timed out after {}s waiting for {} to stop",
                STOP_WAIT_TIMEOUT.as_secs(),
                left.join(", ")
            )));
        }
        tokio::time::sleep(STOP_POLL).await;
    }
}
