//! Trust at the edge: who a peer is, whom it trusts, and who may call what.
//!
//! - [`pki`]: the cluster CA, peer certificates, fingerprints (pure).
//! - [`tls`]: TLS 1.3 for the server ([`tls::incoming`]) and clients ([`tls::Dialer`]).
//! - [`access`]: the caller of a request (a member peer, a user, or anonymous), the
//!   rule for every RPC and every command kind, and the check (pure).
//! - [`credentials`]: the user credential file `monk` reads and `cluster new` writes.
//!
//! [`Trust`] holds a peer's own material in `<data dir>/tls/`: its key (`peer.key`,
//! made at first start, mode 0600, never sent anywhere), its certificate (`peer.crt`,
//! issued by the CA when the peer creates or joins a cluster), and the cluster CA
//! (`ca.crt`, and `ca.key`, mode 0600, with which any member admits new peers). Until
//! the peer has a cluster it shows a self-signed certificate and trusts no client
//! certificate.

pub mod access;
pub mod credentials;
pub mod pki;
pub mod socket;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;

use monk_statemachine::PeerId;
use pki::{ClusterCa, PeerKey, PkiError};
use tls::{Dialer, ServerMaterial, TlsError};

/// Why a peer's TLS material could not be made, read or stored.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("this peer holds no cluster CA key, so it cannot admit peers")]
    NoCaKey,
    #[error("this peer has no certificate yet (it has not created or joined a cluster)")]
    NoCertificate,
}

/// A peer's material once it belongs to a cluster.
struct Member {
    ca: ClusterCaFiles,
    /// Our chain (our certificate, then the CA's) and key.
    key: Arc<CertifiedKey>,
    dialer: Dialer,
}

struct ClusterCaFiles {
    cert_pem: String,
    key_pem: Option<String>,
    cluster: String,
    verifier: Arc<dyn ClientCertVerifier>,
    fingerprint: String,
}

/// A peer's TLS identity and trust (see the module documentation).
pub struct Trust {
    dir: PathBuf,
    peer_key: PeerKey,
    bootstrap: Arc<CertifiedKey>,
    member: RwLock<Option<Member>>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").field("dir", &self.dir).finish()
    }
}

fn read(path: &Path) -> Result<Option<String>, TrustError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TrustError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `text` to `path` atomically, readable only by the owner when `private`.
pub(crate) fn write_file(path: &Path, text: &str, private: bool) -> Result<(), TrustError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| TrustError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mode = if private { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    // Synced before the rename, so a crash leaves the old file or the whole new one.
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

impl Trust {
    /// Opens (or starts) the material in `data_dir/tls`; `cluster` is the cluster the
    /// data dir belongs to, if any (from `node.json`).
    pub fn open(data_dir: &Path, cluster: Option<&str>) -> Result<Arc<Trust>, TrustError> {
        let dir = data_dir.join("tls");
        let key_path = dir.join("peer.key");
        let peer_key = match read(&key_path)? {
            Some(pem) => PeerKey::from_pem(&pem)?,
            None => {
                let key = PeerKey::generate()?;
                write_file(&key_path, &key.key_pem(), true)?;
                key
            }
        };
        let bootstrap = tls::certified_key(&[&peer_key.self_signed_pem()?], &peer_key.key_pem())?;
        let trust = Trust {
            dir,
            peer_key,
            bootstrap,
            member: RwLock::new(None),
        };
        let stored = (
            read(&trust.dir.join("ca.crt"))?,
            read(&trust.dir.join("peer.crt"))?,
            cluster,
        );
        if let (Some(ca_pem), Some(cert_pem), Some(cluster)) = stored {
            let ca_key = read(&trust.dir.join("ca.key"))?;
            trust.activate(cluster, &ca_pem, ca_key, &cert_pem)?;
        }
        Ok(Arc::new(trust))
    }

    fn activate(
        &self,
        cluster: &str,
        ca_pem: &str,
        ca_key_pem: Option<String>,
        cert_pem: &str,
    ) -> Result<(), TrustError> {
        let ca_der = pki::cert_from_pem(ca_pem)?;
        let key = tls::certified_key(&[cert_pem, ca_pem], &self.peer_key.key_pem())?;
        let member = Member {
            dialer: Dialer::member(ca_pem, key.clone())?,
            key,
            ca: ClusterCaFiles {
                cert_pem: ca_pem.to_string(),
                key_pem: ca_key_pem,
                cluster: cluster.to_string(),
                verifier: tls::ca_client_verifier(&ca_der)?,
                fingerprint: pki::fingerprint(&ca_der),
            },
        };
        *self.member.write().unwrap_or_else(|p| p.into_inner()) = Some(member);
        Ok(())
    }

    /// `cluster new`: a new CA, and this peer's certificate as peer 1.
    pub fn create_cluster(&self, cluster: &str, peer: PeerId) -> Result<(), TrustError> {
        let ca = ClusterCa::generate(cluster)?;
        let cert_pem = ca.issue_peer(peer, &self.peer_key.public_key())?;
        write_file(&self.dir.join("ca.key"), &ca.key_pem(), true)?;
        write_file(&self.dir.join("ca.crt"), &ca.cert_pem, false)?;
        write_file(&self.dir.join("peer.crt"), &cert_pem, false)?;
        self.activate(cluster, &ca.cert_pem, Some(ca.key_pem()), &cert_pem)
    }

    /// A joining peer, admitted: stores the CA and the certificate it was issued.
    pub fn install(
        &self,
        cluster: &str,
        ca_pem: &str,
        ca_key_pem: &str,
        cert_pem: &str,
    ) -> Result<(), TrustError> {
        // Check before storing: a certificate that does not load is refused whole.
        tls::certified_key(&[cert_pem, ca_pem], &self.peer_key.key_pem())?;
        if !ca_key_pem.is_empty() {
            write_file(&self.dir.join("ca.key"), ca_key_pem, true)?;
        }
        write_file(&self.dir.join("ca.crt"), ca_pem, false)?;
        write_file(&self.dir.join("peer.crt"), cert_pem, false)?;
        let key = (!ca_key_pem.is_empty()).then(|| ca_key_pem.to_string());
        self.activate(cluster, ca_pem, key, cert_pem)
    }

    /// Issues a certificate for admitted peer `peer` holding `public_key`.
    pub fn issue(&self, peer: PeerId, public_key: &[u8]) -> Result<String, TrustError> {
        let member = self.member.read().unwrap_or_else(|p| p.into_inner());
        let m = member.as_ref().ok_or(TrustError::NoCertificate)?;
        let key = m.ca.key_pem.as_deref().ok_or(TrustError::NoCaKey)?;
        let ca = ClusterCa::from_pem(&m.ca.cluster, &m.ca.cert_pem, key)?;
        Ok(ca.issue_peer(peer, public_key)?)
    }

    /// The CA certificate and key in PEM, for a peer being admitted.
    pub fn ca_for_joiner(&self) -> Result<(String, String), TrustError> {
        let member = self.member.read().unwrap_or_else(|p| p.into_inner());
        let m = member.as_ref().ok_or(TrustError::NoCertificate)?;
        let key = m.ca.key_pem.clone().ok_or(TrustError::NoCaKey)?;
        Ok((m.ca.cert_pem.clone(), key))
    }

    /// This peer's public key, for its certificate.
    pub fn public_key(&self) -> Vec<u8> {
        self.peer_key.public_key()
    }

    /// The cluster CA certificate in PEM, once the peer has a cluster.
    pub fn ca_pem(&self) -> Option<String> {
        let member = self.member.read().unwrap_or_else(|p| p.into_inner());
        member.as_ref().map(|m| m.ca.cert_pem.clone())
    }

    /// SHA-256 of the CA certificate, once the peer has a cluster.
    pub fn ca_fingerprint(&self) -> Option<String> {
        let member = self.member.read().unwrap_or_else(|p| p.into_inner());
        member.as_ref().map(|m| m.ca.fingerprint.clone())
    }

    /// How this peer calls other members (its certificate, the CA's trust).
    pub fn peer_dialer(&self) -> Result<Dialer, TrustError> {
        let member = self.member.read().unwrap_or_else(|p| p.into_inner());
        member
            .as_ref()
            .map(|m| m.dialer.clone())
            .ok_or(TrustError::NoCertificate)
    }

    /// The server side of this peer's TLS.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TrustError> {
        Ok(tls::server_config(self.clone())?)
    }
}

impl ServerMaterial for Trust {
    fn current_key(&self) -> Option<Arc<CertifiedKey>> {
        let member = self.member.read().unwrap_or_else(|p| p.into_inner());
        Some(
            member
                .as_ref()
                .map_or_else(|| self.bootstrap.clone(), |m| m.key.clone()),
        )
    }

    fn client_verifier(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        let member = self.member.read().unwrap_or_else(|p| p.into_inner());
        member.as_ref().map(|m| m.ca.verifier.clone())
    }
}
