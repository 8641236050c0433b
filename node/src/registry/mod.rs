//! The cluster registry: `monkd --registry-listen ADDR` serves the OCI Distribution API
//! (`/v2/`) over plain HTTP, so `docker push 127.0.0.1:PORT/app:1` and `docker pull`
//! work with the engine's default rule for loopback registries.
//!
//! Blobs are content-addressed on this peer's disk (`store.rs`); which images exist
//! (manifests, byte-exact, and tags) and which peers hold each blob are commands in
//! the log (`monk_statemachine::registry`), so every peer serves every tag from its
//! own state. A blob this peer lacks is fetched from a peer that holds it over the
//! authenticated peer channel (`fetch.rs`), verified, stored, and its holding proposed
//! (`blobs-held`). The collector (`collect`) deletes the blobs the state stops naming.
//! The HTTP side is `http.rs` (endpoints by `route.rs`, manifests read by
//! `manifest.rs`).
//!
//! What it does not do yet: authentication (the port has none: bind it to loopback or
//! a trusted network until trust at the edge covers it), deletion through the API
//! (`monk images rm`), range requests, and the referrers API.

pub mod build;
pub mod fetch;
pub mod http;
pub mod manifest;
pub mod route;
pub mod store;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use crate::node::Node;
use store::{BlobStore, BlobWriter};

/// Largest blob one upload may carry: layers of real images are at most a few GB.
pub const UPLOAD_BYTES_MAX: u64 = 16 << 30;
/// Uploads open at once on one peer: `docker push` opens three at a time, so this is
/// a dozen pushes; each holds a scratch file.
pub const UPLOADS_MAX: usize = 32;
/// An upload untouched this long is dropped with its scratch file (an interrupted push).
pub const UPLOAD_IDLE_MAX: Duration = Duration::from_secs(3600);
/// How often the collector looks for blobs the state no longer names.
pub const COLLECT_INTERVAL: Duration = Duration::from_secs(5);
/// A blob no manifest names is kept this long after it was stored: `docker push`
/// uploads the blobs before the manifest that names them, and a retried push may come
/// minutes later. Blobs the state named and stopped naming (`monk images rm`) go at
/// once.
pub const ORPHAN_BLOB_GRACE: Duration = Duration::from_secs(3600);

/// The registry host a runnable names cluster images by: `image: registry.monk/app`
/// (with `image-tag: 1`) is pulled from the hosting peer's own registry, which
/// fetches missing blobs from the peers that hold them. A reserved name rather than
/// a bare `app`, so an image of the cluster never silently shadows one of Docker Hub
/// (and pushing one never changes what a running `image: app` means).
pub const CLUSTER_REGISTRY_HOST: &str = "registry.monk";

/// Where the engine on this machine reaches a registry listening on `listen`:
/// loopback for a wildcard or loopback address (Docker allows plain HTTP there), else
/// the address itself (which the engine must list in `insecure-registries`).
pub fn pull_address(listen: std::net::SocketAddr) -> String {
    match listen.ip() {
        ip if ip.is_unspecified() || ip.is_loopback() => format!("127.0.0.1:{}", listen.port()),
        _ => listen.to_string(),
    }
}

/// `image` with [`CLUSTER_REGISTRY_HOST`] replaced by `pull` (this peer's registry,
/// see [`pull_address`]); other images unchanged. A cluster image on a peer that
/// serves no registry is an error naming the flag.
pub fn cluster_image(image: &str, pull: Option<&str>) -> Result<String, String> {
    let Some(rest) = image
        .strip_prefix(CLUSTER_REGISTRY_HOST)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Ok(image.to_string());
    };
    match pull {
        Some(address) => Ok(format!("{address}/{rest}")),
        None => Err(format!(
            "image {image} is in the cluster registry, which this peer does not serve (monkd --registry-listen)"
        )),
    }
}

/// An upload session: where it writes and for which repository.
struct Upload {
    name: String,
    writer: BlobWriter,
    touched: Instant,
}

/// A session's slot: idle between requests, or taken by the request writing to it.
enum Slot {
    Idle(Box<Upload>),
    Busy,
}

/// The registry of one peer: its blob store and open uploads.
pub struct Registry {
    pub node: Arc<Node>,
    pub store: BlobStore,
    uploads: Mutex<HashMap<String, Slot>>,
    /// Blobs this peer named in a proposal the cluster accepted (a manifest pushed
    /// here, a fetch) since the collector's last pass: named, even if a removal
    /// unnamed them before the collector saw the state name them.
    named_here: Mutex<BTreeSet<String>>,
}

/// Why an upload session cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionError {
    Unknown,
    Busy,
    TooMany,
}

impl Registry {
    /// The registry on `node`'s data dir.
    pub fn open(node: Arc<Node>) -> std::io::Result<Registry> {
        let store = BlobStore::open(&node.config.data_dir)?;
        Ok(Registry {
            node,
            store,
            uploads: Mutex::new(HashMap::new()),
            named_here: Mutex::new(BTreeSet::new()),
        })
    }

    /// Reads this peer's applied state.
    pub fn read<T>(&self, f: impl FnOnce(&monk_statemachine::State) -> T) -> T {
        let shared = self.node.shared_state();
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        f(&guard.state)
    }

    /// Records that an accepted proposal of this peer named `digests`.
    /// Kept on disk at once too, so a restart before the collector's next pass
    /// forgets nothing.
    pub fn named(&self, digests: impl IntoIterator<Item = String>) {
        let mut here = self.named_here.lock().unwrap_or_else(|p| p.into_inner());
        here.extend(digests);
        let mut recorded = self.store.named_before();
        recorded.extend(here.iter().cloned());
        self.store.remember_named(&recorded);
    }

    /// Whether this peer's state has applied every entry it has: its view of what the
    /// cluster names is current (a peer that just started may not have replayed its
    /// log yet, and would see every blob unnamed).
    async fn caught_up(&self) -> bool {
        let Some(raft) = self.node.raft().await else {
            return false;
        };
        let m = raft.metrics().borrow().clone();
        let applied = m.last_applied.map_or(0, |l| l.index);
        m.current_leader.is_some() && applied >= m.last_log_index.unwrap_or(0)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens an upload for repository `name`: its id, or why not.
    pub async fn begin(&self, name: &str) -> Result<String, SessionError> {
        let id = random_id();
        {
            let mut sessions = self.sessions();
            if sessions.len() >= UPLOADS_MAX {
                return Err(SessionError::TooMany);
            }
            sessions.insert(id.clone(), Slot::Busy);
        }
        match self.store.writer(&id).await {
            Ok(writer) => {
                self.put_back(
                    &id,
                    Upload {
                        name: name.to_string(),
                        writer,
                        touched: Instant::now(),
                    },
                );
                Ok(id)
            }
            Err(e) => {
                warn!("registry: cannot open an upload: {e}");
                self.sessions().remove(&id);
                Err(SessionError::Unknown)
            }
        }
    }

    /// Takes upload `id` of repository `name` for one request.
    fn take(&self, name: &str, id: &str) -> Result<Upload, SessionError> {
        let mut sessions = self.sessions();
        match sessions.get(id) {
            None => return Err(SessionError::Unknown),
            Some(Slot::Busy) => return Err(SessionError::Busy),
            Some(Slot::Idle(u)) if u.name != name => return Err(SessionError::Unknown),
            Some(Slot::Idle(_)) => {}
        }
        match sessions.insert(id.to_string(), Slot::Busy) {
            Some(Slot::Idle(upload)) => Ok(*upload),
            _ => Err(SessionError::Unknown),
        }
    }

    fn put_back(&self, id: &str, mut upload: Upload) {
        upload.touched = Instant::now();
        self.sessions()
            .insert(id.to_string(), Slot::Idle(Box::new(upload)));
    }

    fn end(&self, id: &str) {
        self.sessions().remove(id);
    }

    /// The size an idle upload has reached.
    pub fn upload_size(&self, name: &str, id: &str) -> Result<u64, SessionError> {
        match self.sessions().get(id) {
            Some(Slot::Idle(u)) if u.name == name => Ok(u.writer.size()),
            Some(Slot::Busy) => Err(SessionError::Busy),
            _ => Err(SessionError::Unknown),
        }
    }

    /// Drops uploads idle for longer than [`UPLOAD_IDLE_MAX`].
    async fn expire_uploads(&self) {
        let expired: Vec<Upload> = {
            let mut sessions = self.sessions();
            let ids: Vec<String> = sessions
                .iter()
                .filter(
                    |(_, s)| matches!(s, Slot::Idle(u) if u.touched.elapsed() > UPLOAD_IDLE_MAX),
                )
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| match sessions.remove(id) {
                    Some(Slot::Idle(u)) => Some(*u),
                    _ => None,
                })
                .collect()
        };
        for upload in expired {
            upload.writer.discard().await;
        }
    }
}

/// 128 random bits in hex: an upload's id (unguessable, so one client cannot write
/// into another's upload).
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // Without the OS's randomness an id must still be unique on this peer.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = nanos.to_le_bytes();
    }
    hex::encode(bytes)
}

/// Deletes the blobs of this peer that the state stopped naming since the last pass
/// or that this peer named in a proposal since (the set is kept in
/// `registry/named.json`, so a restart between a removal and the next pass forgets
/// nothing),
/// and those never named and older than [`ORPHAN_BLOB_GRACE`]; expires idle uploads.
/// Runs every [`COLLECT_INTERVAL`] until shutdown, skipping passes while this peer's
/// state is behind its log.
pub async fn collect(registry: Arc<Registry>) {
    let mut named_before = registry.store.named_before();
    let mut recorded = named_before.clone();
    loop {
        tokio::time::sleep(COLLECT_INTERVAL).await;
        if registry.node.is_shut_down() {
            return;
        }
        registry.expire_uploads().await;
        if !registry.caught_up().await {
            continue;
        }
        let named_here = std::mem::take(
            &mut *registry
                .named_here
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        named_before.extend(named_here);
        let named: BTreeSet<String> = registry.read(|s| s.blobs().keys().cloned().collect());
        let now = SystemTime::now();
        for (digest, modified) in registry.store.list() {
            if named.contains(&digest) {
                continue;
            }
            let age = now.duration_since(modified).unwrap_or_default();
            if named_before.contains(&digest) || age > ORPHAN_BLOB_GRACE {
                match registry.store.remove(&digest) {
                    Ok(()) => info!(%digest, "registry: deleted a blob no image names"),
                    Err(e) => warn!(%digest, "registry: cannot delete a blob: {e}"),
                }
            }
        }
        if named != recorded {
            registry.store.remember_named(&named);
            recorded = named.clone();
        }
        named_before = named;
    }
}

/// Serves the registry on `listener` and runs its collector until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, node: Arc<Node>) {
    let registry = match Registry::open(node) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            warn!("registry: cannot open its directory: {e}; not serving");
            return;
        }
    };
    tokio::spawn(collect(registry.clone()));
    let app = axum::Router::new()
        .fallback(http::handle)
        .with_state(registry);
    if let Err(e) = axum::serve(listener, app).await {
        warn!("registry server stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_images_are_pulled_from_the_peers_own_registry() {
        assert_eq!(
            cluster_image("registry.monk/app:1", Some("127.0.0.1:5000")),
            Ok("127.0.0.1:5000/app:1".to_string())
        );
        assert_eq!(
            cluster_image("nginx:1.27", Some("127.0.0.1:5000")),
            Ok("nginx:1.27".to_string())
        );
        assert_eq!(
            cluster_image("registry.monkey/app:1", Some("127.0.0.1:5000")),
            Ok("registry.monkey/app:1".to_string())
        );
        let refused = cluster_image("registry.monk/app:1", None).unwrap_err();
        assert!(refused.contains("--registry-listen"), "{refused}");
        assert_eq!(
            pull_address("0.0.0.0:5000".parse().unwrap()),
            "127.0.0.1:5000"
        );
        assert_eq!(
            pull_address("127.0.0.1:5000".parse().unwrap()),
            "127.0.0.1:5000"
        );
        assert_eq!(
            pull_address("10.0.0.5:5000".parse().unwrap()),
            "10.0.0.5:5000"
        );
    }
}
