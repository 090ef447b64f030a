//! The filesystem that puts the model between a member and its disk: a
//! FUSE mount (the `fuser` crate) over the member's data directory, whose
//! files live in a backing directory ([`FileStore`]) and whose every call
//! goes through [`Disk`]. The kernel sends every write through at once
//! (FUSE's default write-through mode: no writeback cache), and the page
//! cache of a file is dropped at every open, so what a restarted member
//! reads is what the layer holds. Reads through `mmap` work (no direct I/O).
//!
//! What each call does: `write` is kept, not durable; `fsync`/`fdatasync`
//! of a file (and an `O_SYNC`/`O_DSYNC` write or `msync(MS_SYNC)`, which the
//! kernel turns into an fsync of the file) makes its data durable; `fsync`
//! of a directory makes the names in it durable; `flush` (close) and
//! `sync_file_range` make nothing durable (the kernel sends nothing for the
//! latter); `fallocate` is refused (EOPNOTSUPP), so programs extend files
//! with `ftruncate`, which is a write like any other.
//!
//! This file is the filesystem's calls; mounting and unmounting it are in
//! `fs/mount.rs`.
//!
//! Over 600 lines: one method per FUSE call of one `Filesystem`
//! implementation, each a few lines of translation to the model, which read
//! best as one table.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    FileAttr, FileType, Filesystem, MountOption, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

use crate::store::FileStore;
use crate::{Corruption, Counters, Damage, Disk, Errno, Ino, Loss, Store, Switches, Tear};

/// Attributes are never cached by the kernel: after a power loss, sizes
/// and names change under it.
const TTL: Duration = Duration::ZERO;

/// What the layer shares between its FUSE thread and the run.
struct Shared {
    disk: Disk<FileStore>,
    /// Extra time every fsync takes (`slow-disk`).
    slow: Duration,
    /// Directories by FUSE inode (even numbers; the root is 1).
    dirs: HashMap<u64, String>,
    dir_ids: HashMap<String, u64>,
    next_dir: u64,
    /// Permission bits set by the program, by FUSE inode.
    modes: HashMap<u64, u16>,
    uid: u32,
    gid: u32,
    started: SystemTime,
}

fn file_id(ino: Ino) -> u64 {
    ino * 2 + 1
}

fn errno(e: Errno) -> i32 {
    match e {
        Errno::NoSpace => libc::ENOSPC,
        Errno::Io => libc::EIO,
        Errno::NotFound => libc::ENOENT,
        Errno::NotEmpty => libc::ENOTEMPTY,
        Errno::IsDir => libc::EISDIR,
    }
}

/// The longest name a directory entry may have, as on ext4 and XFS.
const NAME_MAX: usize = 255;

fn join(dir: &str, name: &OsStr) -> Option<String> {
    if name.len() > NAME_MAX {
        return None;
    }
    let name = name.to_str()?;
    Some(if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    })
}

impl Shared {
    fn dir_path(&self, id: u64) -> Option<&str> {
        if id == fuser::FUSE_ROOT_ID {
            Some("")
        } else {
            self.dirs.get(&id).map(String::as_str)
        }
    }

    /// The path of `name` in the directory `parent` (a FUSE inode).
    fn child(&self, parent: u64, name: &OsStr) -> Option<String> {
        self.dir_path(parent).and_then(|d| join(d, name))
    }

    /// [`Shared::child`], or the error a real filesystem gives: a name
    /// longer than [`NAME_MAX`] bytes is ENAMETOOLONG, anything else that
    /// does not resolve ENOENT.
    fn child_or(&self, parent: u64, name: &OsStr) -> Result<String, i32> {
        if name.len() > NAME_MAX {
            return Err(libc::ENAMETOOLONG);
        }
        self.child(parent, name).ok_or(libc::ENOENT)
    }

    fn dir_id(&mut self, path: &str) -> u64 {
        if path.is_empty() {
            return fuser::FUSE_ROOT_ID;
        }
        if let Some(id) = self.dir_ids.get(path) {
            return *id;
        }
        self.next_dir += 2;
        let id = self.next_dir;
        self.dirs.insert(id, path.to_string());
        self.dir_ids.insert(path.to_string(), id);
        id
    }

    /// The file behind an odd FUSE inode, if it still exists.
    fn file(&self, id: u64) -> Option<Ino> {
        (id % 2 == 1 && id > 1)
            .then_some((id - 1) / 2)
            .filter(|ino| self.disk.has_file(*ino))
    }

    fn attr(&self, id: u64) -> Option<FileAttr> {
        let (kind, size, perm, nlink) = match self.file(id) {
            Some(ino) => (FileType::RegularFile, self.disk.store().len(ino), 0o644, 1),
            None => {
                let path = self.dir_path(id)?;
                if !self.disk.is_dir(path) {
                    return None;
                }
                (FileType::Directory, 4096, 0o755, 2)
            }
        };
        Some(FileAttr {
            ino: id,
            size,
            blocks: size.div_ceil(512),
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind,
            perm: self.modes.get(&id).copied().unwrap_or(perm),
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// The FUSE inode of `path` now.
    fn lookup(&mut self, path: &str) -> Option<u64> {
        if self.disk.is_dir(path) {
            Some(self.dir_id(path))
        } else {
            self.disk.lookup(path).map(file_id)
        }
    }

    /// A real disk's error since the last call, as EIO (logged).
    fn real_error(&self) -> Option<i32> {
        let e = self.disk.store().take_error()?;
        tracing::error!("the disk under the fault layer failed: {e}");
        Some(libc::EIO)
    }

    /// After a directory rename, the FUSE inodes of the directories under
    /// it follow.
    fn rebase_dirs(&mut self, from: &str, to: &str) {
        let moved: Vec<(u64, String)> = self
            .dirs
            .iter()
            .filter_map(|(id, p)| crate::rebase(p, from, to).map(|n| (*id, n)))
            .collect();
        for (id, new) in moved {
            let old = self.dirs.insert(id, new.clone());
            if let Some(old) = old {
                self.dir_ids.remove(&old);
            }
            self.dir_ids.insert(new, id);
        }
    }

    /// Forget the FUSE inodes of directories that no longer exist.
    fn prune_dirs(&mut self) {
        let gone: Vec<u64> = self
            .dirs
            .iter()
            .filter(|(_, p)| !self.disk.is_dir(p))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(p) = self.dirs.remove(&id) {
                self.dir_ids.remove(&p);
            }
        }
    }
}

/// The FUSE side.
struct Layer(Arc<Mutex<Shared>>);

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Layer {
    fn entry(&self, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let mut s = lock(&self.0);
        let path = match s.child_or(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        match s.lookup(&path).and_then(|id| s.attr(id)) {
            Some(attr) => reply.entry(&TTL, &attr, 0),
            None => reply.error(libc::ENOENT),
        }
    }
}

impl Filesystem for Layer {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        self.entry(parent, name, reply)
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match lock(&self.0).attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(libc::ENOENT),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let mut s = lock(&self.0);
        if let Some(len) = size {
            let Some(file) = s.file(ino) else {
                return reply.error(libc::EISDIR);
            };
            if s.disk.switches.disk_full && len > s.disk.store().len(file) {
                s.disk.counters.injected += 1;
                return reply.error(libc::ENOSPC);
            }
            if let Err(e) = s.disk.truncate(file, len) {
                return reply.error(errno(e));
            }
        }
        if let Some(mode) = mode {
            s.modes.insert(ino, (mode & 0o7777) as u16);
        }
        if let Some(e) = s.real_error() {
            return reply.error(e);
        }
        match s.attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(libc::ENOENT),
        }
    }

    fn mknod(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(libc::EPERM);
        }
        let mut s = lock(&self.0);
        match create(&mut s, parent, name, mode & !umask) {
            Ok(id) => match s.attr(id) {
                Some(attr) => reply.entry(&TTL, &attr, 0),
                None => reply.error(libc::EIO),
            },
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut s = lock(&self.0);
        let path = match s.child_or(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        if s.lookup(&path).is_some() {
            return reply.error(libc::EEXIST);
        }
        if let Err(e) = s.disk.mkdir(&path) {
            return reply.error(errno(e));
        }
        let id = s.dir_id(&path);
        s.modes.insert(id, (mode & !umask & 0o7777) as u16);
        match s.attr(id) {
            Some(attr) => reply.entry(&TTL, &attr, 0),
            None => reply.error(libc::EIO),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut s = lock(&self.0);
        let path = match s.child_or(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        if s.disk.is_dir(&path) {
            return reply.error(libc::EISDIR);
        }
        match s.disk.unlink(&path) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut s = lock(&self.0);
        let path = match s.child_or(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        if s.disk.lookup(&path).is_some() {
            return reply.error(libc::ENOTDIR);
        }
        match s.disk.rmdir(&path) {
            Ok(()) => {
                s.prune_dirs();
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        let mut s = lock(&self.0);
        let (from, to) = match (s.child_or(parent, name), s.child_or(newparent, newname)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        if flags & libc::RENAME_EXCHANGE != 0 {
            return reply.error(libc::EINVAL);
        }
        if flags & libc::RENAME_NOREPLACE != 0 && s.lookup(&to).is_some() {
            return reply.error(libc::EEXIST);
        }
        let is_dir = s.disk.is_dir(&from);
        match s.disk.rename(&from, &to) {
            Ok(()) => {
                if is_dir {
                    if let Some(old) = s.dir_ids.remove(&to) {
                        s.dirs.remove(&old);
                    }
                    s.rebase_dirs(&from, &to);
                }
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        let mut s = lock(&self.0);
        let Some(file) = s.file(ino) else {
            return reply.error(libc::ENOENT);
        };
        if flags & libc::O_TRUNC != 0 && s.disk.store().len(file) > 0 {
            if let Err(e) = s.disk.truncate(file, 0) {
                return reply.error(errno(e));
            }
        }
        // No FOPEN_KEEP_CACHE: the kernel drops what it cached of the file.
        reply.opened(0, 0)
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let s = lock(&self.0);
        let Some(file) = s.file(ino) else {
            return reply.error(libc::ENOENT);
        };
        let data = s
            .disk
            .store()
            .read_at(file, offset.max(0) as u64, size as usize);
        match s.real_error() {
            Some(e) => reply.error(e),
            None => reply.data(&data),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let mut s = lock(&self.0);
        let Some(file) = s.file(ino) else {
            return reply.error(libc::ESTALE);
        };
        match s.disk.write(file, offset.max(0) as u64, data) {
            Ok(n) => match s.real_error() {
                Some(e) => reply.error(e),
                None => reply.written(n as u32),
            },
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _owner: u64, reply: ReplyEmpty) {
        reply.ok()
    }

    fn fsync(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let slow = lock(&self.0).slow;
        let shared = self.0.clone();
        let finish = move || {
            let mut s = lock(&shared);
            let Some(file) = s.file(ino) else {
                return reply.error(libc::ENOENT);
            };
            match s.disk.fsync(file) {
                Ok(()) => {
                    // The real disk's flush too: a member's fsync through
                    // the layer costs what it costs without it.
                    s.disk.store().sync(file);
                    match s.real_error() {
                        Some(e) => reply.error(e),
                        None => reply.ok(),
                    }
                }
                Err(e) => reply.error(errno(e)),
            }
        };
        if slow.is_zero() {
            finish()
        } else {
            // The slow fsync waits in a thread of its own: the member's
            // other calls go on meanwhile, as they would with a slow disk.
            std::thread::spawn(move || {
                std::thread::sleep(slow);
                finish()
            });
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let mut s = lock(&self.0);
        let Some(dir) = s.dir_path(ino).map(str::to_string) else {
            return reply.error(libc::ENOENT);
        };
        let mut entries: Vec<(u64, FileType, String)> = vec![
            (ino, FileType::Directory, ".".into()),
            (fuser::FUSE_ROOT_ID, FileType::Directory, "..".into()),
        ];
        for (name, file) in s.disk.children(&dir) {
            match file {
                Some(f) => entries.push((file_id(f), FileType::RegularFile, name)),
                None => {
                    let path = join(&dir, OsStr::new(&name)).unwrap_or_default();
                    entries.push((s.dir_id(&path), FileType::Directory, name));
                }
            }
        }
        for (i, (id, kind, name)) in entries.into_iter().enumerate().skip(offset.max(0) as usize) {
            if reply.add(id, (i + 1) as i64, kind, name) {
                break;
            }
        }
        reply.ok()
    }

    fn fsyncdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _ds: bool, reply: ReplyEmpty) {
        let mut s = lock(&self.0);
        let Some(dir) = s.dir_path(ino).map(str::to_string) else {
            return reply.error(libc::ENOENT);
        };
        match s.disk.fsync_dir(&dir) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        let full = lock(&self.0).disk.switches.disk_full;
        let free = if full { 0 } else { 1 << 24 };
        reply.statfs(1 << 24, free, free, 1 << 20, 1 << 20, 4096, 255, 4096)
    }

    fn access(&mut self, _req: &Request<'_>, _ino: u64, _mask: i32, reply: ReplyEmpty) {
        reply.ok()
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut s = lock(&self.0);
        match create(&mut s, parent, name, mode & !umask) {
            Ok(id) => match s.attr(id) {
                Some(attr) => reply.created(&TTL, &attr, 0, 0, 0),
                None => reply.error(libc::EIO),
            },
            Err(e) => reply.error(e),
        }
    }
}

fn create(s: &mut Shared, parent: u64, name: &OsStr, mode: u32) -> Result<u64, i32> {
    let path = s.child_or(parent, name)?;
    if s.lookup(&path).is_some() {
        return Err(libc::EEXIST);
    }
    if s.disk.switches.disk_full {
        s.disk.counters.injected += 1;
        return Err(libc::ENOSPC);
    }
    let ino = s.disk.create(&path).map_err(errno)?;
    if let Some(e) = s.real_error() {
        return Err(e);
    }
    let id = file_id(ino);
    s.modes.insert(id, (mode & 0o7777) as u16);
    Ok(id)
}

mod mount;
pub use mount::{check_prerequisites, is_mounted, Mounted, Stats};
