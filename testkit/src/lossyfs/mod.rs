//! A filesystem that loses what was not synced when the power goes: a FUSE passthrough
//! over a backing directory, mounted in the test's own process ([`LossyMount`]), for
//! tests that must show "acknowledged means durable" survives a real power loss, not
//! only a killed process (whose writes the page cache keeps). The Jepsen team's LazyFS
//! does this in C++; this is the part of it our tests need, in Rust on `fuser`.
//!
//! # The model (what survives [`LossyMount::power_loss`])
//! - **File data and size**: what a reader saw at the file's last `fsync` or
//!   `fdatasync` (both sync data and size). Later writes, appends and truncations are
//!   undone: the size goes back to the synced size and overwritten synced bytes come
//!   back. All of a write or none: torn writes (part of an unsynced write surviving)
//!   are not modelled.
//! - **Creations** (files, directories, symlinks made through the mount): gone unless
//!   made durable by an fsync of the thing itself (which, as on a journaling
//!   filesystem, also makes durable the creation of the directories above it), or an
//!   fsync of the directory holding it. A gone directory takes what is in it.
//! - **Removals and renames** (`unlink`, `rmdir`, `rename`) are durable at once, as in
//!   LazyFS: a real filesystem may lose an unsynced rename or unlink; this model does
//!   not. Hard links are refused (`EXDEV`, "not supported").
//! - Everything on the backing directory before the mount is durable.
//!
//! Readers see every write (the backing directory holds it at once, as the page cache
//! would); the ledger ([`ledger`]) keeps only the difference to the durable image, so
//! appends cost no memory and overwrites of synced bytes keep the old bytes, bounded by
//! [`UNSYNCED_SAVED_BYTES_MAX`]. The backing directory itself is never fsynced: the
//! power loss simulated here is the only one these tests are about.
//!
//! # Use
//! Mount ([`LossyMount::mount`], root and `/dev/fuse`), run `monkd` on a data dir under
//! [`LossyMount::path`], SIGKILL it, call [`LossyMount::power_loss`] (unmounts, then
//! leaves exactly the durable image on the backing directory), then
//! [`LossyMount::remount`]. Dropping the mount unmounts it lazily, also when a test
//! panics. In process rather than a separate binary: a power loss is a method call on
//! the state the filesystem keeps (no protocol to a helper), nothing outlives the test
//! but the kernel's mount, and a panicking test unmounts through `Drop`.

mod fs;
pub mod ledger;
mod ops;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub use ledger::UNSYNCED_SAVED_BYTES_MAX;

/// How long a mount may take to answer the kernel's first request.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an unmount may wait for the last user of the mount to let go (a process
/// that still has files open) before it aborts the connection.
pub const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a mount or a power loss failed.
#[derive(Debug, thiserror::Error)]
pub enum LossyError {
    #[error("cannot mount the lossy filesystem at {at}: {source}")]
    Mount { at: PathBuf, source: std::io::Error },
    #[error("the lossy filesystem at {at} did not answer within {MOUNT_TIMEOUT:?}")]
    MountTimeout { at: PathBuf },
    #[error("the lossy filesystem at {at} is still in use {UNMOUNT_TIMEOUT:?} after it was unmounted (a process kept a file open?)")]
    Busy { at: PathBuf },
    #[error("cannot undo unsynced changes in {path}: {source}")]
    Undo {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What one power loss undid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PowerLoss {
    /// Files, directories and symlinks removed: created, never made durable.
    pub creations_dropped: u64,
    /// Files cut back to their synced size or given back overwritten bytes.
    pub files_reverted: u64,
    /// Bytes cut off the end of files (unsynced appends).
    pub bytes_cut: u64,
    /// Synced bytes that unsynced writes had overwritten, put back.
    pub bytes_restored: u64,
    /// Files made durable for want of room in the ledger ([`UNSYNCED_SAVED_BYTES_MAX`]).
    pub writebacks: u64,
}

/// The lossy filesystem mounted at a directory over a backing directory.
pub struct LossyMount {
    backing: PathBuf,
    at: PathBuf,
    session: Option<fuser::BackgroundSession>,
    inner: Arc<Mutex<fs::Inner>>,
    /// The mount's device number: its connection under `/sys/fs/fuse/connections`.
    device: u64,
}

impl LossyMount {
    /// Mounts over `backing` at `at` (both made if missing). Needs root and
    /// `/dev/fuse`.
    pub fn mount(backing: &Path, at: &Path) -> Result<LossyMount, LossyError> {
        let fail = |source| LossyError::Mount {
            at: at.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(backing).map_err(fail)?;
        std::fs::create_dir_all(at).map_err(fail)?;
        let backing = backing.canonicalize().map_err(fail)?;
        let at = at.canonicalize().map_err(fail)?;
        let mut mount = LossyMount {
            inner: Arc::new(Mutex::new(fs::Inner::new(&backing).map_err(fail)?)),
            backing,
            at,
            session: None,
            device: 0,
        };
        mount.remount()?;
        Ok(mount)
    }

    /// [`LossyMount::mount`], or `None` after printing why the test is skipped; with
    /// `MONK_REQUIRE_ROOT=1` (set by `.ci/run`) a mount that fails is a panic instead.
    pub fn mount_or_skip(backing: &Path, at: &Path, test: &str) -> Option<LossyMount> {
        match LossyMount::mount(backing, at) {
            Ok(m) => Some(m),
            Err(e) if std::env::var("MONK_REQUIRE_ROOT").is_ok_and(|v| v == "1") => {
                panic!("{e}; MONK_REQUIRE_ROOT=1 makes this a failure")
            }
            Err(e) => {
                eprintln!("SKIPPED {test}: {e} (needs root and /dev/fuse)");
                None
            }
        }
    }

    /// Where the filesystem is mounted.
    pub fn path(&self) -> &Path {
        &self.at
    }

    /// The backing directory (the durable image after a power loss).
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Whether it is mounted now.
    pub fn is_mounted(&self) -> bool {
        self.session.is_some()
    }

    /// Bytes of overwritten synced data the ledger keeps now.
    pub fn saved_bytes(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ledger
            .saved_bytes()
    }

    /// Mounts again (after [`LossyMount::power_loss`]), on whatever the backing
    /// directory holds, all of it durable.
    pub fn remount(&mut self) -> Result<(), LossyError> {
        if self.session.is_some() {
            return Ok(());
        }
        let fail = |source| LossyError::Mount {
            at: self.at.clone(),
            source,
        };
        let inner = Arc::new(Mutex::new(fs::Inner::new(&self.backing).map_err(fail)?));
        let filesystem = ops::LossyFs(inner.clone());
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("monk-lossyfs".into()),
            fuser::MountOption::Subtype("lossyfs".into()),
            fuser::MountOption::DefaultPermissions,
        ];
        // The mount blocks until the kernel's first request: on a thread, so a kernel
        // that never asks cannot hang the test.
        let (tx, rx) = mpsc::channel();
        let at = self.at.clone();
        std::thread::Builder::new()
            .name("lossyfs-mount".into())
            .spawn(move || {
                let _ = tx.send(fuser::spawn_mount(filesystem, &at, &config));
            })
            .map_err(fail)?;
        let session = match rx.recv_timeout(MOUNT_TIMEOUT) {
            Ok(Ok(session)) => session,
            Ok(Err(source)) => return Err(fail(source)),
            Err(_) => {
                lazy_unmount(&self.at);
                return Err(LossyError::MountTimeout {
                    at: self.at.clone(),
                });
            }
        };
        self.device = std::fs::metadata(&self.at).map(|m| m.dev()).unwrap_or(0);
        self.inner = inner;
        self.session = Some(session);
        Ok(())
    }

    /// The power goes: unmounts (every process writing here must be dead: SIGKILL
    /// `monkd` first), then undoes on the backing directory everything no sync made
    /// durable (see the module's model). Mount again with [`LossyMount::remount`].
    pub fn power_loss(&mut self) -> Result<PowerLoss, LossyError> {
        self.unmount()?;
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .power_loss()
            .map_err(|(path, source)| LossyError::Undo { path, source })
    }

    /// Unmounts lazily and waits (bounded) until the filesystem served its last
    /// request; a mount still in use then has its connection aborted.
    fn unmount(&mut self) -> Result<(), LossyError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        lazy_unmount(&self.at);
        if wait_finished(&session, UNMOUNT_TIMEOUT) {
            return Ok(());
        }
        self.abort_connection();
        if wait_finished(&session, Duration::from_secs(2)) {
            return Ok(());
        }
        Err(LossyError::Busy {
            at: self.at.clone(),
        })
    }

    /// Aborts the kernel's connection to this filesystem (fusectl), so requests of a
    /// process that kept files open fail instead of blocking the unmount.
    fn abort_connection(&self) {
        let minor = libc::minor(self.device);
        let abort = PathBuf::from(format!("/sys/fs/fuse/connections/{minor}/abort"));
        let _ = std::fs::write(abort, "1");
    }
}

fn wait_finished(session: &fuser::BackgroundSession, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !session.guard.is_finished() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// `umount -l`: detached now, gone when its last user lets go.
fn lazy_unmount(at: &Path) {
    if let Ok(c) = CString::new(at.as_os_str().as_bytes()) {
        // SAFETY: a valid C string; MNT_DETACH needs nothing else.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

impl Drop for LossyMount {
    /// Unmounts lazily, without undoing anything (the test is over).
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            lazy_unmount(&self.at);
            if !wait_finished(&session, UNMOUNT_TIMEOUT) {
                self.abort_connection();
            }
        }
    }
}
