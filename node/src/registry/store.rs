//! Blobs on this peer's disk, content-addressed: `<data dir>/registry/blobs/sha256/<hex>`.
//! A blob is written to `registry/uploads/<id>` while its SHA-256 is computed, and only
//! a blob whose digest is the one announced is fsynced and renamed into place (then
//! the directory is fsynced), so a blob file always holds exactly its digest's bytes
//! and a crash leaves at most an upload behind, which the next start removes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use monk_statemachine::registry::check_digest;

/// This peer's blob directory and upload scratch space.
#[derive(Clone, Debug)]
pub struct BlobStore {
    blobs: PathBuf,
    uploads: PathBuf,
}

impl BlobStore {
    /// The store under `data_dir`, made if missing; uploads a dead process left are
    /// removed (their sessions died with it).
    pub fn open(data_dir: &Path) -> std::io::Result<BlobStore> {
        let store = BlobStore::at(data_dir);
        std::fs::create_dir_all(&store.blobs)?;
        if store.uploads.exists() {
            std::fs::remove_dir_all(&store.uploads)?;
        }
        std::fs::create_dir_all(&store.uploads)?;
        Ok(store)
    }

    /// The store under `data_dir` as it is, for reading blobs (`FetchBlob`).
    pub fn at(data_dir: &Path) -> BlobStore {
        let root = data_dir.join("registry");
        BlobStore {
            blobs: root.join("blobs").join("sha256"),
            uploads: root.join("uploads"),
        }
    }

    /// The file of `digest`, if the digest is one the store names files by.
    pub fn path(&self, digest: &str) -> Option<PathBuf> {
        check_digest(digest).ok()?;
        Some(self.blobs.join(digest.trim_start_matches("sha256:")))
    }

    /// The size of `digest`'s blob, if this peer holds it.
    pub fn size(&self, digest: &str) -> Option<u64> {
        let meta = std::fs::metadata(self.path(digest)?).ok()?;
        meta.is_file().then_some(meta.len())
    }

    /// A new scratch file for an upload or a fetch named `id`.
    pub async fn writer(&self, id: &str) -> std::io::Result<BlobWriter> {
        let path = self.uploads.join(id);
        let file = tokio::fs::File::create(&path).await?;
        Ok(BlobWriter {
            file,
            path,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Every blob held, with its digest and modification time.
    pub fn list(&self) -> Vec<(String, SystemTime)> {
        let Ok(entries) = std::fs::read_dir(&self.blobs) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let digest = format!("sha256:{}", e.file_name().to_str()?);
                let modified = e.metadata().ok()?.modified().ok()?;
                check_digest(&digest).ok().map(|()| (digest, modified))
            })
            .collect()
    }

    /// The blobs the state named at the collector's last pass (empty when unknown).
    pub fn named_before(&self) -> BTreeSet<String> {
        std::fs::read(self.named_file())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Records the blobs the state names now. Not fsynced: a lost record only means
    /// an unnamed blob waits for the orphan grace instead of going at once.
    pub fn remember_named(&self, named: &BTreeSet<String>) {
        let file = self.named_file();
        let temp = file.with_extension("json.tmp");
        let written = serde_json::to_vec(named)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temp, bytes))
            .and_then(|()| std::fs::rename(&temp, &file));
        if let Err(e) = written {
            tracing::warn!("registry: cannot record the blobs the state names: {e}");
        }
    }

    fn named_file(&self) -> PathBuf {
        self.uploads.with_file_name("named.json")
    }

    /// Deletes `digest`'s blob.
    pub fn remove(&self, digest: &str) -> std::io::Result<()> {
        match self.path(digest) {
            Some(path) => std::fs::remove_file(path),
            None => Ok(()),
        }
    }

    /// Moves a finished, verified upload into place, durably.
    async fn commit(&self, temp: &Path, digest: &str) -> std::io::Result<()> {
        let Some(target) = self.path(digest) else {
            return Err(std::io::Error::other(format!(
                "{digest} is not a sha256 digest"
            )));
        };
        tokio::fs::rename(temp, &target).await?;
        // The rename is durable only once the directory entry is.
        tokio::fs::File::open(&self.blobs).await?.sync_all().await
    }
}

/// Reads `file` on a blocking thread in chunks of `chunk_bytes`, each passed through
/// `wrap` into a channel of `buffered` chunks; ends after the last chunk, after a read
/// error (passed on), or when the receiver is dropped.
pub fn read_chunks<T: Send + 'static>(
    file: std::fs::File,
    chunk_bytes: usize,
    buffered: usize,
    wrap: fn(std::io::Result<Vec<u8>>) -> T,
) -> tokio::sync::mpsc::Receiver<T> {
    let (tx, rx) = tokio::sync::mpsc::channel(buffered);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = file;
        loop {
            let mut data = vec![0u8; chunk_bytes];
            let chunk = match file.read(&mut data) {
                Ok(0) => return,
                Ok(n) => {
                    data.truncate(n);
                    Ok(data)
                }
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(wrap(chunk)).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// A blob being written: its scratch file, the hash of what was written, its size.
pub struct BlobWriter {
    file: tokio::fs::File,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
}

/// How finishing a blob failed.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("the upload hashes to {computed}, not {expected}")]
    DigestMismatch { expected: String, computed: String },
    #[error("storing the blob: {0}")]
    Io(#[from] std::io::Error),
}

impl BlobWriter {
    /// Appends `bytes`.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes).await?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Stores the blob as `expected` if that is what was written (fsynced, renamed);
    /// otherwise deletes it and says what it hashed to. Returns its size.
    pub async fn finish(mut self, store: &BlobStore, expected: &str) -> Result<u64, FinishError> {
        let computed = format!("sha256:{}", hex::encode(self.hasher.finalize_reset()));
        if computed != expected {
            let _ = tokio::fs::remove_file(&self.path).await;
            return Err(FinishError::DigestMismatch {
                expected: expected.to_string(),
                computed,
            });
        }
        self.file.flush().await?;
        // The blob is acknowledged once stored: its bytes must be on disk first.
        self.file.sync_all().await?;
        if let Err(e) = store.commit(&self.path, expected).await {
            let _ = tokio::fs::remove_file(&self.path).await;
            return Err(e.into());
        }
        Ok(self.size)
    }

    /// Drops the scratch file (a cancelled or refused upload).
    pub async fn discard(self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}
