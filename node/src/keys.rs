//! The cluster key and sealed secrets.
//!
//! Every peer holds the same 32-byte cluster key in `cluster.key` in its data dir
//! (mode 0600, written atomically). The first peer creates it with the cluster; a
//! joining peer sends an ephemeral X25519 public key with its admission request and
//! receives the cluster key sealed to it (X25519 → SHA-256 → ChaCha20-Poly1305), so the
//! key never crosses the wire in the clear. Secrets are sealed with ChaCha20-Poly1305
//! under the cluster key, a random nonce, and the secret's key (`global:name`,
//! `ns/app:name`) as associated data, so a sealed value cannot be moved to another
//! name. Only sealed bytes enter the log.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

/// Bytes of the cluster key and of X25519 keys.
pub const KEY_BYTES: usize = 32;
/// Bytes of a ChaCha20-Poly1305 nonce.
const NONCE_BYTES: usize = 12;
/// Longest secret value accepted, in bytes (the sealed form must fit the log limit).
pub const SECRET_VALUE_BYTES_MAX: usize = 48 * 1024;

/// Why a key could not be made, read, stored, or a sealed value opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no randomness: {0}")]
    NoRandomness(String),
    /// Reading or writing `cluster.key`.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {len} bytes, expected {KEY_BYTES}", path.display())]
    WrongLength { path: PathBuf, len: usize },
    #[error("sealing failed")]
    SealFailed,
    #[error("sealed value too short")]
    TooShort,
    /// Sealed under another key or name, or damaged.
    #[error(
        "the secret {aad} does not open with this cluster's key (sealed elsewhere or damaged)"
    )]
    DoesNotOpen { aad: String },
    /// The admitting peer's answer to a join cannot be used.
    #[error("{0}")]
    Join(&'static str),
    #[error("the joining peer's key must be {KEY_BYTES} bytes")]
    JoinerKeyLength,
}

/// The key every peer of a cluster shares.
#[derive(Clone)]
pub struct ClusterKey([u8; KEY_BYTES]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
    Ok(bytes)
}

/// Writes `bytes` to `path` (a `.key` file) readable only by the owner, through a
/// synced temporary file and a rename, so a crash leaves the old file or the whole new
/// one.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("key.tmp");
    let fail = |source: std::io::Error| KeyError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("cluster.key")
}

impl ClusterKey {
    pub fn generate() -> Result<ClusterKey, KeyError> {
        Ok(ClusterKey(random()?))
    }

    /// Reads `cluster.key`; `None` when this peer has none (a data dir from before
    /// secrets existed, or not yet in a cluster).
    pub fn load(data_dir: &Path) -> Result<Option<ClusterKey>, KeyError> {
        let path = key_path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; KEY_BYTES] =
                    bytes
                        .try_into()
                        .map_err(|b: Vec<u8>| KeyError::WrongLength {
                            path: path.clone(),
                            len: b.len(),
                        })?;
                Ok(Some(ClusterKey(key)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::File { path, source }),
        }
    }

    /// Writes `cluster.key` (0600, see [`write_private`]).
    pub fn store(&self, data_dir: &Path) -> Result<(), KeyError> {
        write_private(&key_path(data_dir), &self.0)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// `nonce || ciphertext` of `value`, bound to `aad` (the secret's key).
    pub fn seal(&self, aad: &str, value: &[u8]) -> Result<Vec<u8>, KeyError> {
        let nonce: [u8; NONCE_BYTES] = random()?;
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| KeyError::SealFailed)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`ClusterKey::seal`] produced for the same `aad`.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_BYTES {
            return Err(KeyError::TooShort);
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| KeyError::DoesNotOpen {
                aad: aad.to_string(),
            })
    }
}

/// A joining peer's one-time key pair for receiving the cluster key.
pub struct JoinKeys {
    secret: StaticSecret,
}

fn join_cipher(shared: &[u8; KEY_BYTES]) -> ChaCha20Poly1305 {
    let key: [u8; KEY_BYTES] = Sha256::new()
        .chain_update(b"monk-join-v1")
        .chain_update(shared)
        .finalize()
        .into();
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

impl JoinKeys {
    pub fn generate() -> Result<JoinKeys, KeyError> {
        Ok(JoinKeys {
            secret: StaticSecret::from(random::<KEY_BYTES>()?),
        })
    }

    pub fn public(&self) -> [u8; KEY_BYTES] {
        PublicKey::from(&self.secret).to_bytes()
    }

    /// Opens the cluster key an admitting peer sealed to [`JoinKeys::public`].
    pub fn receive(&self, ephemeral: &[u8], sealed: &[u8]) -> Result<ClusterKey, KeyError> {
        let ephemeral: [u8; KEY_BYTES] = ephemeral
            .try_into()
            .map_err(|_| KeyError::Join("the admitting peer sent a malformed key"))?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(ephemeral));
        let key = join_cipher(shared.as_bytes())
            .decrypt(Nonce::from_slice(&[0; NONCE_BYTES]), sealed)
            .map_err(|_| KeyError::Join("the cluster key from the admitting peer does not open"))?;
        let key: [u8; KEY_BYTES] = key
            .try_into()
            .map_err(|_| KeyError::Join("the cluster key has the wrong length"))?;
        Ok(ClusterKey(key))
    }
}

impl ClusterKey {
    /// Seals this key to a joiner's public key: `(ephemeral public key, sealed key)`.
    /// The ephemeral key is used once, so a fixed nonce is safe.
    pub fn seal_for(&self, joiner: &[u8]) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
        let joiner: [u8; KEY_BYTES] = joiner.try_into().map_err(|_| KeyError::JoinerKeyLength)?;
        let ephemeral = StaticSecret::from(random::<KEY_BYTES>()?);
        let shared = ephemeral.diffie_hellman(&PublicKey::from(joiner));
        let sealed = join_cipher(shared.as_bytes())
            .encrypt(Nonce::from_slice(&[0; NONCE_BYTES]), self.0.as_slice())
            .map_err(|_| KeyError::SealFailed)?;
        Ok((PublicKey::from(&ephemeral).to_bytes().to_vec(), sealed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_under_its_own_name_and_key() {
        let key = ClusterKey::generate().unwrap();
        let sealed = key.seal("global:db-password", b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(key.open("global:db-password", &sealed).unwrap(), b"hunter2");
        assert!(key.open("global:other", &sealed).is_err());
        let other = ClusterKey::generate().unwrap();
        assert!(other.open("global:db-password", &sealed).is_err());
        assert!(key.open("global:db-password", &sealed[..5]).is_err());
    }

    #[test]
    fn the_cluster_key_travels_to_a_joiner_sealed() {
        let key = ClusterKey::generate().unwrap();
        let joiner = JoinKeys::generate().unwrap();
        let (ephemeral, sealed) = key.seal_for(&joiner.public()).unwrap();
        assert!(!sealed.windows(KEY_BYTES).any(|w| w == key.0));
        let received = joiner.receive(&ephemeral, &sealed).unwrap();
        assert_eq!(received.0, key.0);
        let stranger = JoinKeys::generate().unwrap();
        assert!(stranger.receive(&ephemeral, &sealed).is_err());
    }

    #[test]
    fn the_key_file_round_trips_with_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(ClusterKey::load(dir.path()).unwrap().is_none());
        let key = ClusterKey::generate().unwrap();
        key.store(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("cluster.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(ClusterKey::load(dir.path()).unwrap().unwrap().0, key.0);
    }
}
