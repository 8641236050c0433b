//! The filesystem's state and operations: a passthrough to the backing directory
//! (every write reaches it at once, so readers see it, as they would the page cache),
//! which records in a [`Ledger`] what a power loss must undo, and
//! [`Inner::power_loss`], which undoes it. The FUSE requests reach it through
//! [`super::ops`], every one under one lock, so the ledger and the backing directory
//! never disagree halfway.
//!
//! Node numbers are our own (the root is 1), mapped from the backing inode numbers, so
//! an inode number the backing filesystem reuses after an unlink gets a fresh node.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo, RenameFlags, TimeOrNow};

use super::ledger::Ledger;
use super::PowerLoss;

/// One name the filesystem has handed to the kernel.
#[derive(Debug, Clone)]
struct Node {
    /// Relative to the backing directory ("" for the root).
    path: PathBuf,
    backing_ino: u64,
}

/// The state behind the lock.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(super) backing: PathBuf,
    nodes: HashMap<u64, Node>,
    by_backing: HashMap<u64, u64>,
    next_node: u64,
    pub(super) files: HashMap<u64, (u64, File)>,
    pub(super) dirs: HashMap<u64, Vec<(u64, FileType, OsString)>>,
    next_handle: u64,
    pub(crate) ledger: Ledger,
}

pub(super) fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn time(secs: i64, nanos: i64) -> SystemTime {
    let nanos = u32::try_from(nanos).unwrap_or(0);
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nanos),
        Err(_) => UNIX_EPOCH - Duration::new(secs.unsigned_abs(), 0),
    }
}

fn kind(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

fn attr(node: u64, m: &Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(node),
        size: m.size(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: time(m.ctime(), m.ctime_nsec()),
        kind: kind(m.mode()),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

/// Reads up to `buf.len()` bytes at `offset`, fewer only at the end of the file.
pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn timespec(t: Option<TimeOrNow>) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(t)) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            }
        }
    }
}

pub(super) fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| os(libc::EINVAL))
}

impl Inner {
    pub(crate) fn new(backing: &Path) -> io::Result<Inner> {
        let root = std::fs::symlink_metadata(backing)?;
        let mut inner = Inner {
            backing: backing.to_path_buf(),
            nodes: HashMap::new(),
            by_backing: HashMap::new(),
            next_node: 2,
            files: HashMap::new(),
            dirs: HashMap::new(),
            next_handle: 1,
            ledger: Ledger::default(),
        };
        inner.nodes.insert(
            1,
            Node {
                path: PathBuf::new(),
                backing_ino: root.ino(),
            },
        );
        inner.by_backing.insert(root.ino(), 1);
        Ok(inner)
    }

    pub(super) fn full(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    pub(super) fn path(&self, node: u64) -> io::Result<PathBuf> {
        self.nodes
            .get(&node)
            .map(|n| n.path.clone())
            .ok_or_else(|| os(libc::ENOENT))
    }

    pub(super) fn child(&self, parent: u64, name: &OsStr) -> io::Result<PathBuf> {
        Ok(self.path(parent)?.join(name))
    }

    /// The node for the backing inode `ino`, now named `rel`.
    pub(super) fn node_for(&mut self, rel: PathBuf, ino: u64) -> u64 {
        if let Some(&node) = self.by_backing.get(&ino) {
            if node != 1 {
                if let Some(n) = self.nodes.get_mut(&node) {
                    n.path = rel;
                }
            }
            return node;
        }
        let node = self.next_node;
        self.next_node += 1;
        self.by_backing.insert(ino, node);
        self.nodes.insert(
            node,
            Node {
                path: rel,
                backing_ino: ino,
            },
        );
        node
    }

    /// `node` is gone for good: its last name was removed or replaced.
    pub(super) fn forget(&mut self, node: u64) {
        if let Some(n) = self.nodes.remove(&node) {
            self.by_backing.remove(&n.backing_ino);
        }
        self.ledger.forget(node);
    }

    /// The node under `rel` and its attributes.
    pub(super) fn entry(&mut self, rel: PathBuf) -> io::Result<FileAttr> {
        let meta = std::fs::symlink_metadata(self.full(&rel))?;
        let node = self.node_for(rel, meta.ino());
        Ok(attr(node, &meta))
    }

    pub(super) fn getattr(&self, node: u64, fh: Option<u64>) -> io::Result<FileAttr> {
        if let Some((_, file)) = fh.and_then(|fh| self.files.get(&fh)) {
            return Ok(attr(node, &file.metadata()?));
        }
        let meta = std::fs::symlink_metadata(self.full(&self.path(node)?))?;
        Ok(attr(node, &meta))
    }

    /// Before `range` of `node`'s bytes change: tracks the file and keeps the durable
    /// bytes the change destroys. `true`: over the ledger's limit, so write the file
    /// back (make it durable) after the change instead.
    pub(super) fn before_change(
        &mut self,
        node: u64,
        file: &File,
        range: std::ops::Range<u64>,
    ) -> io::Result<bool> {
        if !self.ledger.is_tracked(node) {
            self.ledger.track(node, file.metadata()?.len());
        }
        let gaps = self.ledger.to_save(node, range);
        let bytes: u64 = gaps.iter().map(|g| g.end - g.start).sum();
        if !self.ledger.has_room(bytes) {
            return Ok(true);
        }
        for gap in gaps {
            let len = usize::try_from(gap.end - gap.start).map_err(|_| os(libc::EFBIG))?;
            let mut old = vec![0u8; len];
            let n = read_at(file, &mut old, gap.start)?;
            old.truncate(n);
            self.ledger.save(node, gap.start, old);
        }
        Ok(false)
    }

    pub(super) fn write(
        &mut self,
        node: u64,
        fh: u64,
        offset: u64,
        data: &[u8],
    ) -> io::Result<u32> {
        let file = self
            .files
            .get(&fh)
            .ok_or_else(|| os(libc::EBADF))?
            .1
            .try_clone()?;
        let end = offset + data.len() as u64;
        let write_back = self.before_change(node, &file, offset..end)?;
        file.write_all_at(data, offset)?;
        if write_back {
            self.ledger.write_back(node);
        }
        u32::try_from(data.len()).map_err(|_| os(libc::EFBIG))
    }

    pub(super) fn truncate(&mut self, node: u64, file: &File, size: u64) -> io::Result<()> {
        let write_back = self.before_change(node, file, size..u64::MAX)?;
        file.set_len(size)?;
        if write_back {
            self.ledger.write_back(node);
        }
        Ok(())
    }

    pub(super) fn open_file(&self, rel: &Path, flags: i32) -> io::Result<File> {
        let acc = flags & libc::O_ACCMODE;
        // Always readable: a write keeps the synced bytes it overwrites, read first.
        OpenOptions::new()
            .read(true)
            .write(acc == libc::O_WRONLY || acc == libc::O_RDWR)
            .open(self.full(rel))
    }

    pub(super) fn handle(&mut self, node: u64, file: File) -> u64 {
        let fh = self.next_handle;
        self.next_handle += 1;
        self.files.insert(fh, (node, file));
        fh
    }

    pub(super) fn open(&mut self, node: u64, flags: i32) -> io::Result<u64> {
        let rel = self.path(node)?;
        let file = self.open_file(&rel, flags)?;
        if flags & libc::O_TRUNC != 0 {
            self.truncate(node, &file, 0)?;
        }
        Ok(self.handle(node, file))
    }

    pub(super) fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> io::Result<(FileAttr, u64)> {
        let rel = self.child(parent, name)?;
        let full = self.full(&rel);
        let existed = std::fs::symlink_metadata(&full).is_ok();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .create_new(flags & libc::O_EXCL != 0)
            .mode(mode & 0o7777)
            .open(&full)?;
        let attr = self.entry(rel)?;
        let node = attr.ino.0;
        if existed {
            if flags & libc::O_TRUNC != 0 {
                self.truncate(node, &file, 0)?;
            }
        } else {
            self.ledger.created(node);
            self.ledger.track(node, 0);
        }
        let fh = self.handle(node, file);
        Ok((self.getattr(node, Some(fh))?, fh))
    }

    /// A new name made by `make` under `parent`: a creation no sync made durable yet.
    pub(super) fn made(
        &mut self,
        parent: u64,
        name: &OsStr,
        make: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<FileAttr> {
        let rel = self.child(parent, name)?;
        make(&self.full(&rel))?;
        let attr = self.entry(rel)?;
        self.ledger.created(attr.ino.0);
        Ok(attr)
    }

    pub(super) fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> io::Result<()> {
        let rel = self.child(parent, name)?;
        let full = self.full(&rel);
        let meta = std::fs::symlink_metadata(&full)?;
        if dir {
            std::fs::remove_dir(&full)?;
        } else {
            std::fs::remove_file(&full)?;
        }
        if dir || meta.nlink() <= 1 {
            if let Some(&node) = self.by_backing.get(&meta.ino()) {
                self.forget(node);
            }
        }
        Ok(())
    }

    pub(super) fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> io::Result<()> {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return Err(os(libc::EINVAL));
        }
        let from = self.child(parent, name)?;
        let to = self.child(new_parent, new_name)?;
        let replaced = std::fs::symlink_metadata(self.full(&to)).ok();
        if replaced.is_some() && flags.contains(RenameFlags::RENAME_NOREPLACE) {
            return Err(os(libc::EEXIST));
        }
        let moved = std::fs::symlink_metadata(self.full(&from))?;
        std::fs::rename(self.full(&from), self.full(&to))?;
        if let Some(old) = replaced.filter(|m| m.ino() != moved.ino()) {
            if let Some(&node) = self.by_backing.get(&old.ino()) {
                if old.is_dir() || old.nlink() <= 1 {
                    self.forget(node);
                }
            }
        }
        for n in self.nodes.values_mut() {
            if let Ok(rest) = n.path.strip_prefix(&from) {
                n.path = if rest.as_os_str().is_empty() {
                    to.clone()
                } else {
                    to.join(rest)
                };
            }
        }
        Ok(())
    }

    /// An fsync of `node`: its data and size are durable, and so is its creation and
    /// that of the directories above it (as a journaling filesystem commits them with
    /// it); for a directory, also the creation of every name in it.
    pub(super) fn synced(&mut self, node: u64, directory: bool) -> io::Result<()> {
        self.ledger.data_durable(node);
        let path = self.path(node)?;
        let created: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(n, _)| self.ledger.is_unsynced_creation(**n))
            .filter(|(_, c)| {
                path.starts_with(&c.path) || (directory && c.path.parent() == Some(path.as_path()))
            })
            .map(|(n, _)| *n)
            .collect();
        for n in created {
            self.ledger.creation_durable(n);
        }
        Ok(())
    }

    pub(super) fn setattr(
        &mut self,
        node: u64,
        fh: Option<u64>,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
    ) -> io::Result<FileAttr> {
        let full = self.full(&self.path(node)?);
        if let Some(mode) = mode {
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            std::os::unix::fs::lchown(&full, owner.0, owner.1)?;
        }
        if let Some(size) = size {
            let file = match fh.and_then(|fh| self.files.get(&fh)) {
                Some((_, f)) => f.try_clone()?,
                None => OpenOptions::new().read(true).write(true).open(&full)?,
            };
            self.truncate(node, &file, size)?;
        }
        if times.0.is_some() || times.1.is_some() {
            let ts = [timespec(times.0), timespec(times.1)];
            let c = c_path(&full)?;
            // SAFETY: `c` is a valid C string and `ts` two timespecs, as utimensat needs.
            let rc = unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    ts.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        self.getattr(node, fh)
    }

    pub(super) fn opendir(&mut self, node: u64) -> io::Result<u64> {
        let rel = self.path(node)?;
        let parent = match rel.parent() {
            Some(p) => {
                let meta = std::fs::symlink_metadata(self.full(p))?;
                self.node_for(p.to_path_buf(), meta.ino())
            }
            None => 1,
        };
        let mut list = vec![
            (node, FileType::Directory, OsString::from(".")),
            (parent, FileType::Directory, OsString::from("..")),
        ];
        for entry in std::fs::read_dir(self.full(&rel))? {
            let entry = entry?;
            let kind = match entry.file_type()? {
                t if t.is_dir() => FileType::Directory,
                t if t.is_symlink() => FileType::Symlink,
                _ => FileType::RegularFile,
            };
            let child = self.node_for(rel.join(entry.file_name()), entry.ino());
            list.push((child, kind, entry.file_name()));
        }
        let fh = self.next_handle;
        self.next_handle += 1;
        self.dirs.insert(fh, list);
        Ok(fh)
    }

    pub(super) fn fallocate(
        &mut self,
        node: u64,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> io::Result<()> {
        let file = self
            .files
            .get(&fh)
            .ok_or_else(|| os(libc::EBADF))?
            .1
            .try_clone()?;
        match mode {
            // Extends the size (unsynced, like a write); the bytes it adds are zeros.
            0 => {
                self.before_change(node, &file, offset..offset)?;
            }
            // Allocates blocks without changing what a reader sees.
            libc::FALLOC_FL_KEEP_SIZE => {}
            _ => return Err(os(libc::EOPNOTSUPP)),
        }
        let (off, len) = (
            i64::try_from(offset).map_err(|_| os(libc::EINVAL))?,
            i64::try_from(length).map_err(|_| os(libc::EINVAL))?,
        );
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor and plain integers.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), mode, off, len) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Undoes everything unsynced on the backing directory (the filesystem is no longer
    /// mounted, so nothing else touches it): unsynced creations removed, files cut back
    /// to their durable size and their overwritten bytes put back.
    pub(crate) fn power_loss(&mut self) -> Result<PowerLoss, (PathBuf, io::Error)> {
        let writebacks = self.ledger.writebacks();
        let undo = self.ledger.undo();
        let mut report = PowerLoss {
            writebacks,
            ..PowerLoss::default()
        };
        let mut removals: Vec<PathBuf> = undo
            .remove
            .iter()
            .filter_map(|n| self.nodes.get(n).map(|n| n.path.clone()))
            .collect();
        removals.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for rel in removals {
            let full = self.full(&rel);
            let removed = match std::fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&full),
                Ok(_) => std::fs::remove_file(&full),
                Err(e) => Err(e),
            };
            match removed {
                Ok(()) => report.creations_dropped += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err((full, e)),
            }
        }
        for restore in undo.restore {
            let Some(rel) = self.nodes.get(&restore.node).map(|n| n.path.clone()) else {
                continue;
            };
            let full = self.full(&rel);
            let file = match OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&full)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err((full, e)),
            };
            let fail = |e| (full.clone(), e);
            let len = file.metadata().map_err(fail)?.len();
            report.bytes_cut += len.saturating_sub(restore.size);
            file.set_len(restore.size).map_err(fail)?;
            for (offset, bytes) in &restore.saved {
                file.write_all_at(bytes, *offset).map_err(fail)?;
                report.bytes_restored += bytes.len() as u64;
            }
            report.files_reverted += 1;
        }
        Ok(report)
    }
}
