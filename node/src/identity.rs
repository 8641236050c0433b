//! The peer's identity in its data dir (`node.json`): which cluster it belongs to and
//! the id the cluster assigned it. Written atomically (temp file, fsync, rename).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub peer_id: u64,
    pub cluster_name: String,
}

/// Why `node.json` could not be read, written or removed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.json")
}

pub fn load(data_dir: &Path) -> Result<Option<Identity>, IdentityError> {
    let p = path(data_dir);
    match fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| IdentityError::Corrupt { path: p, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Io { path: p, source }),
    }
}

pub fn store(data_dir: &Path, identity: &Identity) -> Result<(), IdentityError> {
    let p = path(data_dir);
    let tmp = data_dir.join("node.json.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(identity).expect("identity serializes"))?;
        f.sync_all()?;
        fs::rename(&tmp, &p)?;
        fs::File::open(data_dir)?.sync_all()
    };
    write().map_err(|source| IdentityError::Io { path: p, source })
}

pub fn remove(data_dir: &Path) -> Result<(), IdentityError> {
    let p = path(data_dir);
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(IdentityError::Io { path: p, source }),
    }
}
