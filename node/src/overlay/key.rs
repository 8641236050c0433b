//! This peer's WireGuard key pair: an X25519 private key made at first start and kept
//! in `<data dir>/wireguard.key` (mode 0600, written atomically, base64 as `wg genkey`
//! writes it), never sent anywhere; its public key (base64, as WireGuard writes it)
//! travels in `cluster-created`, `peer-joined` and `peer-overlay-changed`.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::keys::{write_private, KeyError, KEY_BYTES};

/// The file in the data dir that holds the private key.
pub const WIREGUARD_KEY_FILE: &str = "wireguard.key";

/// This peer's WireGuard key pair. `Debug` shows the public key only.
#[derive(Clone)]
pub struct WireGuardKey {
    secret: StaticSecret,
}

impl std::fmt::Debug for WireGuardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WireGuardKey({})", self.public_base64())
    }
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(WIREGUARD_KEY_FILE)
}

impl WireGuardKey {
    /// The key in `data_dir`, made and stored there first if there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<WireGuardKey, KeyError> {
        if let Some(key) = WireGuardKey::load(data_dir)? {
            return Ok(key);
        }
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::getrandom(&mut bytes).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
        let key = WireGuardKey {
            secret: StaticSecret::from(bytes),
        };
        key.store(data_dir)?;
        Ok(key)
    }

    /// Reads `wireguard.key`; `None` when there is none.
    pub fn load(data_dir: &Path) -> Result<Option<WireGuardKey>, KeyError> {
        let path = key_path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(KeyError::File { path, source }),
        };
        let bytes = STANDARD.decode(text.trim()).unwrap_or_default();
        let bytes: [u8; KEY_BYTES] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| KeyError::WrongLength { path, len: b.len() })?;
        Ok(Some(WireGuardKey {
            secret: StaticSecret::from(bytes),
        }))
    }

    /// Writes `wireguard.key` (0600, atomically: no key or the whole key after a crash).
    fn store(&self, data_dir: &Path) -> Result<(), KeyError> {
        let text = format!("{}\n", STANDARD.encode(self.secret.to_bytes()));
        write_private(&key_path(data_dir), text.as_bytes())
    }

    /// The private key's bytes, for this peer's own WireGuard interface only.
    pub fn private_bytes(&self) -> [u8; KEY_BYTES] {
        self.secret.to_bytes()
    }

    /// The public key, base64 as WireGuard writes it (44 characters).
    pub fn public_base64(&self) -> String {
        STANDARD.encode(PublicKey::from(&self.secret).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let key = WireGuardKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(WIREGUARD_KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = WireGuardKey::load_or_create(dir.path()).unwrap();
        assert_eq!(key.public_base64(), again.public_base64());
        let identity = monk_statemachine::OverlayIdentity {
            public_key: key.public_base64(),
            endpoint: "192.0.2.1:51820".into(),
        };
        assert_eq!(
            monk_statemachine::overlay::check_identity(&identity),
            Ok(())
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&key.public_base64()));
        assert!(!format!("{key:?}").contains(text.trim()));
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WIREGUARD_KEY_FILE), "garbage").unwrap();
        assert!(WireGuardKey::load_or_create(dir.path()).is_err());
    }
}
