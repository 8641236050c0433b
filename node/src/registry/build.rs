//! Builds from users' machines (`monk build`, and `monk up`/`monk load` of a runnable
//! with `build:`): the CLI streams a build context (a tar) over the `BuildImage` RPC;
//! this peer builds it with its engine's build API, tagged
//! `127.0.0.1:PORT/REPOSITORY:TAG` (its own registry, see
//! [`super::pull_address`]), and pushes it there, so the registry stores the blobs and
//! proposes `image-pushed` as for any `docker push`. The build's output goes back to
//! the caller line by line, then the pushed digest.
//!
//! A peer without `--registry-listen` refuses builds (it has nowhere to push them),
//! naming the flag.

use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::Status;

use crate::executor::runtime::Engine;
use crate::node::Node;
use crate::pb::{BuildChunk, BuildEvent};

/// Largest build context a peer accepts, in bytes: the context is held in memory
/// while the engine reads it. Source trees with a sensible `.dockerignore` are a few
/// MB; 512 MiB admits vendored dependencies and assets without letting one call
/// exhaust a small peer's memory.
pub const BUILD_CONTEXT_BYTES_MAX: u64 = 512 << 20;
/// Bytes per `BuildChunk` the CLI sends: well under the client request bound
/// (`limits::CLIENT_REQUEST_BYTES_MAX`).
pub const BUILD_CHUNK_BYTES: usize = 1 << 20;
/// Build output lines buffered towards a slow client before the build waits for it.
pub const BUILD_EVENTS_CHANNEL: usize = 256;
/// Builds one peer runs at once: each holds its context (up to
/// [`BUILD_CONTEXT_BYTES_MAX`]) in memory and keeps the engine busy, on a machine
/// that is also a Raft voter. Further ones are refused until one ends.
pub const BUILDS_AT_ONCE_MAX: usize = 2;

/// The build slots of this process (one peer per process outside simulations).
static BUILD_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(BUILDS_AT_ONCE_MAX);

/// The answer stream of one build.
pub type BuildEvents = mpsc::Receiver<Result<BuildEvent, Status>>;

/// Receives a build context from `incoming`, then builds and pushes it in a task whose
/// output is the returned stream. Refused before anything is read when this peer
/// serves no registry or has no engine; a context over [`BUILD_CONTEXT_BYTES_MAX`]
/// or a first chunk that names no valid image is refused as it arrives.
pub async fn serve(
    node: Arc<Node>,
    mut incoming: tonic::Streaming<BuildChunk>,
) -> Result<BuildEvents, Status> {
    let Some(listen) = node.config.registry_listen else {
        return Err(Status::failed_precondition(format!(
            "peer {} serves no cluster registry, so it cannot build: start monkd with \
             --registry-listen ADDR (e.g. 127.0.0.1:5000)",
            node.config.name
        )));
    };
    let runtime = match node.engine() {
        Engine::Ready(runtime) => runtime,
        Engine::Disabled => {
            return Err(Status::failed_precondition(format!(
                "peer {} runs no containers (monkd --containers none), so it cannot build",
                node.config.name
            )))
        }
        Engine::Unreachable(e) => {
            return Err(Status::unavailable(format!(
                "peer {} cannot build: {e}",
                node.config.name
            )))
        }
    };
    let Ok(slot) = BUILD_SLOTS.try_acquire() else {
        return Err(Status::resource_exhausted(format!(
            "peer {} already runs {BUILDS_AT_ONCE_MAX} builds (BUILDS_AT_ONCE_MAX): try again when one ended",
            node.config.name
        )));
    };
    let first = incoming
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("a build needs a context: no chunk came"))?;
    monk_statemachine::registry::check_repository(&first.repository)
        .map_err(|e| Status::invalid_argument(format!("image name: {e}")))?;
    monk_statemachine::registry::check_tag(&first.tag)
        .map_err(|e| Status::invalid_argument(format!("image tag: {e}")))?;
    if first.dockerfile.is_empty() || first.dockerfile.starts_with('/') {
        return Err(Status::invalid_argument(format!(
            "the Dockerfile {:?} must be a relative path inside the context",
            first.dockerfile
        )));
    }
    let mut context = first.data;
    while let Some(chunk) = incoming.message().await? {
        if (context.len() + chunk.data.len()) as u64 > BUILD_CONTEXT_BYTES_MAX {
            return Err(Status::resource_exhausted(format!(
                "the build context is larger than {} MiB (BUILD_CONTEXT_BYTES_MAX): \
                 list what the build does not need in .dockerignore",
                BUILD_CONTEXT_BYTES_MAX >> 20
            )));
        }
        context.extend_from_slice(&chunk.data);
    }
    let reference = format!(
        "{}/{}:{}",
        super::pull_address(listen),
        first.repository,
        first.tag
    );
    let shown = format!(
        "{}/{}:{}",
        super::CLUSTER_REGISTRY_HOST,
        first.repository,
        first.tag
    );
    let (tx, rx) = mpsc::channel(BUILD_EVENTS_CHANNEL);
    tokio::spawn(async move {
        let _slot = slot;
        let (lines, mut lines_rx) = mpsc::channel::<String>(BUILD_EVENTS_CHANNEL);
        let out = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(line) = lines_rx.recv().await {
                let event = BuildEvent {
                    line,
                    digest: String::new(),
                };
                if out.send(Ok(event)).await.is_err() {
                    break;
                }
            }
        });
        let built = async {
            runtime
                .build_image(context, &first.dockerfile, &reference, &lines)
                .await?;
            runtime.push_image(&reference, &lines).await
        }
        .await;
        drop(lines);
        let _ = forward.await;
        let last = match built {
            Ok(digest) => Ok(BuildEvent {
                line: format!("pushed {shown} ({digest})"),
                digest,
            }),
            Err(e) => Err(Status::aborted(e.to_string())),
        };
        let _ = tx.send(last).await;
    });
    Ok(rx)
}
