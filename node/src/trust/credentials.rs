//! A user's credential file: the cluster it belongs to, the user and role, the bearer
//! credential (`mku_…`), the cluster CA certificate that peers must present (so the
//! client verifies whom it talks to), and peer addresses it was used with. `cluster
//! new` writes the admin's next to the peer's data dir (`admin.credentials`) and `monk`
//! keeps copies per user; `monk user add` prints new ones. Files are mode 0600.
//!
//! Only the SHA-256 of the credential enters the log (`user-added`), so a leaked log
//! or data dir gives no one access.

use std::path::Path;

use serde::{Deserialize, Serialize};

use monk_statemachine::Role;

use super::access::CREDENTIAL_PREFIX;
use super::tls::{Dialer, TlsError};
use super::{write_file, TrustError};

/// Bytes of randomness in a credential.
const CREDENTIAL_BYTES: usize = 32;
/// The file `cluster new` writes in the first peer's data dir.
pub const ADMIN_CREDENTIALS_FILE: &str = "admin.credentials";

/// What a credential file holds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub cluster: String,
    pub user: String,
    pub role: Role,
    /// The bearer credential (`mku_` and 64 hex digits).
    pub credential: String,
    /// The cluster CA certificate, PEM.
    pub ca_pem: String,
    /// Peer addresses this credential was used with (to pick it by address).
    #[serde(default)]
    pub peers: Vec<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("cluster", &self.cluster)
            .field("user", &self.user)
            .field("role", &self.role)
            .field("peers", &self.peers)
            .finish()
    }
}

/// A new random credential (`mku_<64 hex>`).
pub fn new_credential() -> Result<String, TrustError> {
    let mut bytes = [0u8; CREDENTIAL_BYTES];
    getrandom::getrandom(&mut bytes).map_err(|e| TrustError::Io {
        path: "/dev/urandom".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(format!("{CREDENTIAL_PREFIX}{}", hex::encode(bytes)))
}

/// Why a credential file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a monk credential file: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Tls { path: String, source: TlsError },
}

impl Credential {
    /// Reads a credential file.
    pub fn load(path: &Path) -> Result<Credential, CredentialError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CredentialError::Read {
            path: shown.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| CredentialError::Parse {
            path: shown,
            source,
        })
    }

    /// Writes it to `path`, mode 0600.
    pub fn store(&self, path: &Path) -> Result<(), TrustError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| TrustError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        write_file(path, &format!("{text}\n"), true)
    }

    /// How to call the cluster with it.
    pub fn dialer(&self) -> Result<Dialer, TlsError> {
        Dialer::trusting(&self.ca_pem, Some(self.credential.clone()))
    }
}
