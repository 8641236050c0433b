//! Blobs between peers. A peer asked for a blob it lacks ([`ensure_local`]) fetches it
//! from a peer the state says holds it, over the peer channel (`FetchBlob`, TLS with
//! this peer's certificate, members only), verifies its digest, stores it and proposes
//! `blobs-held`. The serving side ([`serve_blob`]) streams a held blob in chunks.

use std::sync::Arc;

use monk_statemachine::{Applied, Command, PeerId};
use tonic::Status;
use tracing::{info, warn};

use super::store::BlobStore;
use super::Registry;
use crate::pb::{BlobChunk, BlobRequest};

/// Bytes per `FetchBlob` message: well under the gRPC message bound, large enough
/// that a 50 MB layer is 50 messages.
pub const BLOB_CHUNK_BYTES: usize = 1 << 20;
/// Chunks buffered between the file reader and the stream (memory per fetch served:
/// this times [`BLOB_CHUNK_BYTES`]).
pub const BLOB_CHUNKS_BUFFERED: usize = 4;

/// Why a blob could not be had on this peer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no image in the cluster names blob {0}")]
    Unknown(String),
    #[error("no peer that holds blob {digest} answered: {why}")]
    Unavailable { digest: String, why: String },
}

/// Makes sure this peer holds `digest`: fetched from a holder when it does not.
pub async fn ensure_local(registry: &Arc<Registry>, digest: &str) -> Result<(), FetchError> {
    if registry.store.size(digest).is_some() {
        return Ok(());
    }
    let me = registry.node.peer_id().await;
    let holders: Vec<(PeerId, String)> = registry.read(|s| {
        s.blobs()
            .get(digest)
            .map(|b| {
                b.holders
                    .iter()
                    .filter(|id| Some(**id) != me)
                    .filter_map(|id| s.peer(*id).filter(|p| p.is_member()))
                    .map(|p| (p.id, p.address.clone()))
                    .collect()
            })
            .unwrap_or_default()
    });
    if holders.is_empty() {
        return Err(FetchError::Unknown(digest.to_string()));
    }
    let mut why = Vec::new();
    for (peer, address) in holders {
        match fetch_from(registry, &address, digest).await {
            Ok(size) => {
                info!(%digest, from = peer, size, "registry: fetched a blob from a peer");
                propose_held(registry, me, digest).await;
                return Ok(());
            }
            Err(e) => {
                warn!(%digest, from = peer, "registry: fetching a blob failed: {e}");
                why.push(format!("peer {peer}: {e}"));
            }
        }
    }
    Err(FetchError::Unavailable {
        digest: digest.to_string(),
        why: why.join("; "),
    })
}

/// Streams `digest` from the peer at `address` into the store; its size.
async fn fetch_from(registry: &Registry, address: &str, digest: &str) -> Result<u64, String> {
    let mut client = registry
        .node
        .peer_client(address)
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = client.fetch_blob(digest).await.map_err(|e| e.to_string())?;
    let mut writer = registry
        .store
        .writer(&format!("fetch-{}", super::random_id()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => {
                if let Err(e) = writer.write(&chunk.data).await {
                    writer.discard().await;
                    return Err(e.to_string());
                }
                if writer.size() > super::UPLOAD_BYTES_MAX {
                    writer.discard().await;
                    return Err(format!("longer than {} bytes", super::UPLOAD_BYTES_MAX));
                }
            }
            Ok(None) => break,
            Err(status) => {
                writer.discard().await;
                return Err(status.message().to_string());
            }
        }
    }
    writer
        .finish(&registry.store, digest)
        .await
        .map_err(|e| e.to_string())
}

/// Proposes that this peer holds `digest` now (a failure only means other peers keep
/// fetching it elsewhere).
async fn propose_held(registry: &Registry, me: Option<PeerId>, digest: &str) {
    let Some(me) = me else {
        return;
    };
    let command = Command::BlobsHeld {
        peer: me,
        blobs: vec![digest.to_string()],
    };
    let proposal = registry.node.stamp(format!("peer:{me}"), command);
    match registry.node.propose(proposal).await {
        Ok(outcome) => match outcome.applied {
            Applied::Accepted { .. } => registry.named([digest.to_string()]),
            Applied::Rejected { reason } => {
                warn!(%digest, "registry: blobs-held refused: {reason}")
            }
        },
        Err(e) => warn!(%digest, "registry: cannot propose blobs-held: {e}"),
    }
}

/// The `FetchBlob` stream of a blob this peer holds.
pub fn serve_blob(
    store: &BlobStore,
    request: BlobRequest,
) -> Result<tokio::sync::mpsc::Receiver<Result<BlobChunk, Status>>, Status> {
    let path = store.path(&request.digest).ok_or_else(|| {
        Status::invalid_argument(format!("{:.80} is not a sha256 digest", request.digest))
    })?;
    let file = std::fs::File::open(&path)
        .map_err(|_| Status::not_found(format!("this peer holds no blob {}", request.digest)))?;
    Ok(super::store::read_chunks(
        file,
        BLOB_CHUNK_BYTES,
        BLOB_CHUNKS_BUFFERED,
        |chunk| match chunk {
            Ok(data) => Ok(BlobChunk { data }),
            Err(e) => Err(Status::internal(format!("reading the blob: {e}"))),
        },
    ))
}
