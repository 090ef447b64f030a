//! The disk model behind faultline's disk faults: what a member has
//! written, what of it is durable, and what a power loss, a torn write or a
//! failing fsync leaves of it.
//!
//! The model keeps the files' current contents in a [`Store`] (the real
//! files under the layer, or memory in tests) and, per file, enough to undo
//! what is not durable yet: for every write since the file's last good
//! fsync, the bytes it overwrote and the length the file had. Memory grows
//! with the un-fsynced data only, not with the files.
//!
//! The rules of the default model ([`DiskModel::Posix`], the strict POSIX
//! reading):
//! - a file's data becomes durable at `fsync`/`fdatasync` of that file;
//! - creating, renaming and removing a name becomes durable only when its
//!   directory is fsynced; a file created and never made durable by its
//!   directory is gone after a power loss, whatever was fsynced in it;
//! - a failed fsync (EIO) leaves the file's un-fsynced writes never to be
//!   made durable (as Linux does: the dirty pages are dropped and marked
//!   clean), while the next fsync succeeds — the "fsyncgate" trap;
//! - a power loss undoes every write and every name change not durable.
//!
//! Two other models differ only in when names become durable:
//! [`DiskModel::Journaled`] (ext4 `data=ordered`, XFS) makes every name
//! change durable at any successful fsync or fdatasync, of a file or a
//! directory, as the journal commits them together; [`DiskModel::NamesDurable`]
//! (LazyFS) makes each name change durable at once, and caches file data
//! only.
//!
//! [`fs`] is the filesystem that puts the model between a member and its
//! disk (a FUSE mount over its data directory); [`store`] keeps the files'
//! contents in a backing directory on the real disk.
//!
//! Over 600 lines: the model of one member's disk — what is durable, what a
//! power loss undoes, what a fault damages — is one set of rules that must
//! agree with each other; the filesystem and the backing store are modules
//! of their own.
#![deny(missing_docs)]

pub mod fs;
pub mod store;
pub mod why;

mod damage;
pub use damage::{Corruption, Damage};

pub use store::{MemStore, Store};

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};

pub use faultline_rundir::spec::DiskModel;

/// A file of the model (an inode: names point at it).
pub type Ino = u64;

/// An error the layer returns to the program, as errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// No space left on device (`disk-full`).
    NoSpace,
    /// Input/output error (`fsync-error`).
    Io,
    /// No such file or directory.
    NotFound,
    /// Directory not empty.
    NotEmpty,
    /// Is a directory.
    IsDir,
}

/// The most bytes of undo records (what writes and truncations not yet
/// durable overwrote or cut off) one member's disk holds. A write or a
/// truncation that would need more fails with ENOSPC: the member pays for
/// its own un-fsynced data, never the controller's memory.
pub const UNDO_LIMIT: u64 = 256 << 20;

/// How much of a cut-off range is read at a time: a chunk that reads as
/// zeros is kept as a hole (the length alone), not as bytes.
const UNDO_CHUNK: u64 = 1 << 20;

/// What undoes one write: the bytes it overwrote and the file's length
/// before it.
#[derive(Clone, Debug)]
struct Undo {
    offset: u64,
    /// The bytes in `[offset, offset + written)` that were there before
    /// (shorter when the write went past the old end).
    old: Vec<u8>,
    /// How many bytes the write wrote (0 for a truncate).
    written: u64,
    old_len: u64,
}

#[derive(Clone, Debug, Default)]
struct FileState {
    /// Undo records of the writes not durable, oldest first.
    pending: Vec<Undo>,
    /// Writes that a failed fsync dropped: they stay in the current
    /// contents but are never made durable (undone at a power loss).
    dropped: Vec<Undo>,
}

/// A torn write's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tear {
    /// The last pending write keeps a seeded prefix; every earlier pending
    /// write of the file is lost.
    PrefixOfLast,
    /// A seeded subset of the pending 4 KiB pages reached the disk; the
    /// others did not.
    PageSubset,
}

/// What one power loss undid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    /// Bytes of writes undone.
    pub bytes: u64,
    /// Names that came back or went away.
    pub names: Vec<String>,
    /// For a torn write: the file, and the bytes of it that were kept.
    pub torn: Option<(String, u64)>,
    /// Why: per name, the calls that would have made it durable and the
    /// one missing; per file whose data was undone, its range, last write
    /// and last fsync (at most [`why::EXPLANATIONS_LIMIT`], then a count).
    pub why: Vec<String>,
}

/// Counters per member, as the run page shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes written.
    pub bytes_written: u64,
    /// Successful fsyncs (files and directories).
    pub fsyncs: u64,
    /// Errors injected (ENOSPC on a write, EIO on an fsync).
    pub injected: u64,
}

/// Faults switched on for a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Switches {
    /// Writes fail with ENOSPC.
    pub disk_full: bool,
    /// fsync fails with EIO.
    pub fsync_error: bool,
}

/// The disk of one member.
pub struct Disk<S: Store> {
    store: S,
    next: Ino,
    /// Name → file, as the program sees it now.
    names: BTreeMap<String, Ino>,
    /// Name → file, as a power loss would leave it.
    durable: BTreeMap<String, Ino>,
    /// Directories that exist (now / durably); `""` is the root.
    dirs: BTreeSet<String>,
    durable_dirs: BTreeSet<String>,
    files: BTreeMap<Ino, FileState>,
    /// Directory renames not made durable yet (`from`, `to`): when the
    /// directory of `to` is fsynced, what is durable under `from` moves.
    dir_renames: Vec<(String, String)>,
    /// The switches of the current fault window.
    pub switches: Switches,
    /// Counters.
    pub counters: Counters,
    /// Bytes held in undo records, every file's (at most [`UNDO_LIMIT`]).
    undo_held: u64,
    /// When names become durable.
    model: DiskModel,
    /// The calls so far, to explain what a power loss takes.
    log: why::CallLog,
}

/// The bytes a file's undo records hold.
fn held(state: &FileState) -> u64 {
    state
        .pending
        .iter()
        .chain(&state.dropped)
        .map(|u| u.old.len() as u64)
        .sum()
}

/// The directory a name is in (`a/b/c` → `a/b`, `c` → ``).
pub fn parent(name: &str) -> &str {
    name.rfind('/').map_or("", |i| &name[..i])
}

impl<S: Store> Disk<S> {
    /// An empty disk on `store`, under the strict POSIX model.
    pub fn new(store: S) -> Disk<S> {
        Disk::with_model(store, DiskModel::Posix)
    }

    /// An empty disk on `store`, under `model`.
    pub fn with_model(store: S, model: DiskModel) -> Disk<S> {
        Disk {
            store,
            next: 1,
            names: BTreeMap::new(),
            durable: BTreeMap::new(),
            dirs: BTreeSet::from([String::new()]),
            durable_dirs: BTreeSet::from([String::new()]),
            files: BTreeMap::new(),
            dir_renames: Vec::new(),
            switches: Switches::default(),
            counters: Counters::default(),
            undo_held: 0,
            model,
            log: why::CallLog::default(),
        }
    }

    /// The model it follows.
    pub fn model(&self) -> DiskModel {
        self.model
    }

    /// Every name change so far becomes durable (the journaled model at
    /// a successful fsync; the names-durable model at each change).
    fn names_durable_now(&mut self) {
        let before: BTreeSet<Ino> = self.durable.values().copied().collect();
        self.durable = self.names.clone();
        self.durable_dirs = self.dirs.clone();
        self.dir_renames.clear();
        for ino in before {
            self.forget_if_unnamed(ino);
        }
    }

    /// After a name change: durable at once under the names-durable model.
    fn named(&mut self) {
        if self.model == DiskModel::NamesDurable {
            self.names_durable_now();
        }
    }

    /// After a successful fsync: under the journaled model, the journal's
    /// commit makes every earlier name change durable.
    fn synced(&mut self) {
        if self.model == DiskModel::Journaled {
            self.names_durable_now();
        }
    }

    /// Bytes held in undo records now.
    pub fn undo_held(&self) -> u64 {
        self.undo_held
    }

    /// Room for `n` more bytes of undo records, or ENOSPC.
    fn undo_room(&self, n: u64) -> Result<(), Errno> {
        if self.undo_held.saturating_add(n) > UNDO_LIMIT {
            Err(Errno::NoSpace)
        } else {
            Ok(())
        }
    }

    /// The store (to read the current contents).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The file a name points at now.
    pub fn lookup(&self, name: &str) -> Option<Ino> {
        self.names.get(name).copied()
    }

    /// Every name now, in order.
    pub fn names(&self) -> Vec<String> {
        self.names.keys().cloned().collect()
    }

    /// Create an empty file (its name is durable once its directory is
    /// fsynced).
    pub fn create(&mut self, name: &str) -> Result<Ino, Errno> {
        if !self.dirs.contains(parent(name)) {
            return Err(Errno::NotFound);
        }
        let ino = self.next;
        self.next += 1;
        self.store.set_len(ino, 0);
        if let Some(old) = self.names.insert(name.to_string(), ino) {
            self.forget_if_unnamed(old);
        }
        self.files.insert(ino, FileState::default());
        self.log.push(why::Call::Create(name.to_string()));
        self.named();
        Ok(ino)
    }

    /// Make a directory (durable once its parent is fsynced).
    pub fn mkdir(&mut self, name: &str) -> Result<(), Errno> {
        if !self.dirs.contains(parent(name)) {
            return Err(Errno::NotFound);
        }
        self.dirs.insert(name.to_string());
        self.log.push(why::Call::Mkdir(name.to_string()));
        self.named();
        Ok(())
    }

    /// Write `data` at `offset` of `ino`.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        if self.switches.disk_full {
            self.counters.injected += 1;
            return Err(Errno::NoSpace);
        }
        let old_len = self.store.len(ino);
        let overwritten = old_len.saturating_sub(offset).min(data.len() as u64);
        self.undo_room(overwritten)?;
        let old = self.store.read_at(ino, offset, data.len());
        self.undo_held += old.len() as u64;
        self.store.write_at(ino, offset, data);
        self.files.entry(ino).or_default().pending.push(Undo {
            offset,
            old,
            written: data.len() as u64,
            old_len,
        });
        self.counters.bytes_written += data.len() as u64;
        self.log
            .push(why::Call::Write(ino, offset, data.len() as u64));
        Ok(data.len())
    }

    /// Cut or extend `ino` to `len`. What a cut removes is kept for a
    /// power loss chunk by chunk, holes and chunks of zeros by their length
    /// alone (a sparse file of many gigabytes costs nothing); ENOSPC when
    /// it would hold more than [`UNDO_LIMIT`].
    pub fn truncate(&mut self, ino: Ino, len: u64) -> Result<(), Errno> {
        let old_len = self.store.len(ino);
        let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut bytes = 0u64;
        if len < old_len {
            for (a, b) in self.store.data_ranges(ino, len, old_len) {
                let mut at = a;
                while at < b {
                    let n = (b - at).min(UNDO_CHUNK);
                    self.undo_room(bytes + n)?;
                    let data = self.store.read_at(ino, at, n as usize);
                    if data.iter().any(|&x| x != 0) {
                        bytes += data.len() as u64;
                        chunks.push((at, data));
                    }
                    at += n;
                }
            }
        }
        self.store.set_len(ino, len);
        self.undo_held += bytes;
        let state = self.files.entry(ino).or_default();
        // Undone newest first: the chunks put the cut bytes back, then the
        // length record restores the old length (holes read as zeros).
        state.pending.push(Undo {
            offset: len.min(old_len),
            old: Vec::new(),
            written: 0,
            old_len,
        });
        for (at, data) in chunks {
            state.pending.push(Undo {
                offset: at,
                old: data,
                written: 0,
                old_len,
            });
        }
        Ok(())
    }

    /// fsync (or fdatasync) `ino`: its writes become durable; with the
    /// `fsync_error` switch on, EIO, and its un-fsynced writes are dropped
    /// for good.
    pub fn fsync(&mut self, ino: Ino) -> Result<(), Errno> {
        let state = self.files.entry(ino).or_default();
        if self.switches.fsync_error {
            self.counters.injected += 1;
            let pending = std::mem::take(&mut state.pending);
            state.dropped.extend(pending);
            return Err(Errno::Io);
        }
        let made_durable = std::mem::take(&mut state.pending);
        self.undo_held -= made_durable.iter().map(|u| u.old.len() as u64).sum::<u64>();
        // A write dropped by an earlier failed fsync must not, at a power
        // loss, bring back old bytes over what is durable now.
        if !state.dropped.is_empty() {
            for w in made_durable.iter().filter(|w| w.written > 0) {
                let (a, b) = (w.offset, w.offset + w.written);
                for d in state.dropped.iter_mut() {
                    // Undoing it must not cut the file short of the
                    // durable write either.
                    if a < d.offset + d.written.max(1) && d.offset <= b {
                        d.old_len = d.old_len.max(b);
                    }
                    let (da, db) = (d.offset, d.offset + d.old.len() as u64);
                    let (from, to) = (a.max(da), b.min(db));
                    if from < to {
                        let now = self.store.read_at(ino, from, (to - from) as usize);
                        let at = (from - da) as usize;
                        d.old[at..at + now.len()].copy_from_slice(&now);
                    }
                }
            }
        }
        self.counters.fsyncs += 1;
        self.log.push(why::Call::Fsync(ino));
        self.synced();
        Ok(())
    }

    /// fsync the directory `dir`: the names in it (created, renamed,
    /// removed) become durable.
    pub fn fsync_dir(&mut self, dir: &str) -> Result<(), Errno> {
        if self.switches.fsync_error {
            self.counters.injected += 1;
            return Err(Errno::Io);
        }
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.dir_renames)
            .into_iter()
            .partition(|(_, to)| parent(to) == dir);
        self.dir_renames = later;
        for (from, to) in now {
            self.durable = moved(std::mem::take(&mut self.durable), &from, &to);
            self.durable_dirs = moved_set(std::mem::take(&mut self.durable_dirs), &from, &to);
        }
        let in_dir = |n: &String| parent(n) == dir;
        let gone: Vec<String> = self
            .durable
            .keys()
            .filter(|n| in_dir(n) && !self.names.contains_key(*n))
            .cloned()
            .collect();
        for n in gone {
            self.durable.remove(&n);
        }
        for (n, ino) in self.names.iter().filter(|(n, _)| in_dir(n)) {
            self.durable.insert(n.clone(), *ino);
        }
        let sub: Vec<String> = self
            .dirs
            .iter()
            .filter(|d| !d.is_empty() && in_dir(d))
            .cloned()
            .collect();
        self.durable_dirs
            .retain(|d| d.is_empty() || !in_dir(d) || self.dirs.contains(d));
        self.durable_dirs.extend(sub);
        self.counters.fsyncs += 1;
        self.log.push(why::Call::FsyncDir(dir.to_string()));
        self.synced();
        Ok(())
    }

    /// Rename `from` to `to` (replacing `to`); durable once both
    /// directories are fsynced. A directory takes everything under it
    /// along (`to` must not exist or be an empty directory).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Errno> {
        if self.dirs.contains(from) && !from.is_empty() {
            if self.names.contains_key(to) || !self.children(to).is_empty() {
                return Err(Errno::NotEmpty);
            }
            if !self.dirs.contains(parent(to)) || to.starts_with(&format!("{from}/")) {
                return Err(Errno::NotFound);
            }
            self.dirs.remove(to);
            self.names = moved(std::mem::take(&mut self.names), from, to);
            self.dirs = moved_set(std::mem::take(&mut self.dirs), from, to);
            self.dir_renames.push((from.to_string(), to.to_string()));
            self.log
                .push(why::Call::Rename(from.to_string(), to.to_string()));
            self.named();
            return Ok(());
        }
        if self.dirs.contains(to) {
            return Err(Errno::IsDir);
        }
        if !self.dirs.contains(parent(to)) {
            return Err(Errno::NotFound);
        }
        let ino = self.names.remove(from).ok_or(Errno::NotFound)?;
        if let Some(old) = self.names.insert(to.to_string(), ino) {
            self.forget_if_unnamed(old);
        }
        self.log
            .push(why::Call::Rename(from.to_string(), to.to_string()));
        self.named();
        Ok(())
    }

    /// Remove the name `name`; durable once its directory is fsynced.
    pub fn unlink(&mut self, name: &str) -> Result<(), Errno> {
        let ino = self.names.remove(name).ok_or(Errno::NotFound)?;
        self.forget_if_unnamed(ino);
        self.log.push(why::Call::Unlink(name.to_string()));
        self.named();
        Ok(())
    }

    /// Remove the empty directory `name`; durable once its parent is
    /// fsynced.
    pub fn rmdir(&mut self, name: &str) -> Result<(), Errno> {
        if name.is_empty() || !self.dirs.contains(name) {
            return Err(Errno::NotFound);
        }
        if !self.children(name).is_empty() {
            return Err(Errno::NotEmpty);
        }
        self.dirs.remove(name);
        self.log.push(why::Call::Rmdir(name.to_string()));
        self.named();
        Ok(())
    }

    /// Every directory now (the root as `""`), parents first.
    pub fn dirs(&self) -> Vec<String> {
        self.dirs.iter().cloned().collect()
    }

    /// Whether `name` is a directory now (`""` is the root).
    pub fn is_dir(&self, name: &str) -> bool {
        self.dirs.contains(name)
    }

    /// What is in directory `dir` now: (name in it, file or `None` for a
    /// directory), in order.
    pub fn children(&self, dir: &str) -> Vec<(String, Option<Ino>)> {
        let mut out: Vec<(String, Option<Ino>)> = self
            .dirs
            .iter()
            .filter(|d| !d.is_empty() && parent(d) == dir)
            .map(|d| (base(d).to_string(), None))
            .collect();
        out.extend(
            self.names
                .iter()
                .filter(|(n, _)| parent(n) == dir)
                .map(|(n, i)| (base(n).to_string(), Some(*i))),
        );
        out.sort();
        out
    }

    /// Whether the file exists (some name, now or durable, points at it).
    pub fn has_file(&self, ino: Ino) -> bool {
        self.files.contains_key(&ino)
    }

    /// Forget a file no name (now or durable) points at.
    fn forget_if_unnamed(&mut self, ino: Ino) {
        let named = self
            .names
            .values()
            .chain(self.durable.values())
            .any(|i| *i == ino);
        if !named {
            if let Some(state) = self.files.remove(&ino) {
                self.undo_held -= held(&state);
            }
            self.store.remove(ino);
        }
    }

    /// Bytes written and not yet durable (dropped ones included).
    pub fn bytes_not_durable(&self) -> u64 {
        self.files
            .values()
            .flat_map(|f| f.pending.iter().chain(&f.dropped))
            .map(|u| u.written)
            .sum()
    }

    /// The names with writes not yet durable.
    pub fn pending_names(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|(_, ino)| {
                self.files
                    .get(ino)
                    .is_some_and(|f| !f.pending.is_empty() || !f.dropped.is_empty())
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// A power loss: every write and every name change that was not
    /// durable is undone.
    pub fn power_loss(&mut self) -> Loss {
        self.lose(None)
    }

    /// A power loss in the middle of writing back one file (chosen by
    /// `seed` among those with pending writes): that file keeps a seeded
    /// part of its pending writes (`tear`); everything else not durable is
    /// undone.
    pub fn torn(&mut self, seed: u64, tear: Tear) -> Loss {
        let candidates = self.pending_names();
        if candidates.is_empty() {
            return self.lose(None);
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let name = candidates[rng.gen_range(0..candidates.len())].clone();
        self.lose(Some((name, tear, rng.gen())))
    }

    fn lose(&mut self, torn: Option<(String, Tear, u64)>) -> Loss {
        let mut loss = Loss::default();
        let mut data_why: Vec<String> = Vec::new();
        let torn_ino = torn
            .as_ref()
            .and_then(|(n, _, _)| self.names.get(n).copied());
        let inos: Vec<Ino> = self.files.keys().copied().collect();
        for ino in inos {
            let state = self.files.get_mut(&ino).expect("listed");
            let mut undo: Vec<Undo> = std::mem::take(&mut state.dropped);
            undo.extend(std::mem::take(&mut state.pending));
            // A torn file: the byte ranges that reached the disk, with
            // what is in them now (the newest writes).
            let kept: Vec<(u64, Vec<u8>)> = match (&torn, torn_ino) {
                (Some((_, tear, r)), Some(t)) if t == ino => kept_ranges(&undo, *tear, *r)
                    .into_iter()
                    .map(|(a, b)| (a, self.store.read_at(ino, a, (b - a) as usize)))
                    .collect(),
                _ => Vec::new(),
            };
            let written: u64 = undo.iter().map(|u| u.written).sum();
            if written > 0 {
                let from = undo.iter().map(|u| u.offset).min().unwrap_or(0);
                let to = undo.iter().map(|u| u.offset + u.written).max().unwrap_or(0);
                let name = self
                    .names
                    .iter()
                    .chain(&self.durable)
                    .find(|(_, i)| **i == ino)
                    .map_or_else(|| format!("file #{ino}"), |(n, _)| n.clone());
                data_why.push(self.log.explain_data(&name, ino, written, (from, to)));
            }
            for u in undo.iter().rev() {
                loss.bytes += u.written;
                if !u.old.is_empty() {
                    self.store.write_at(ino, u.offset, &u.old);
                }
                self.store.set_len(ino, u.old_len);
            }
            if let (Some((name, _, _)), Some(t)) = (&torn, torn_ino) {
                if t == ino {
                    let mut bytes = 0;
                    for (at, data) in &kept {
                        self.store.write_at(ino, *at, data);
                        bytes += data.len() as u64;
                    }
                    loss.bytes = loss.bytes.saturating_sub(bytes);
                    loss.torn = Some((name.clone(), bytes));
                }
            }
        }
        // Every undo record was used up above.
        self.undo_held = 0;
        let mut changed: BTreeSet<String> = BTreeSet::new();
        for (n, ino) in &self.names {
            if self.durable.get(n) != Some(ino) {
                changed.insert(n.clone());
            }
        }
        for n in self.durable.keys() {
            if !self.names.contains_key(n) {
                changed.insert(n.clone());
            }
        }
        loss.names = changed.into_iter().collect();
        let names_why = loss
            .names
            .iter()
            .map(|n| self.log.explain_name(n, self.model));
        loss.why = why::capped(names_why.chain(data_why).collect());
        self.log.clear();
        self.dir_renames.clear();
        self.names = self.durable.clone();
        self.dirs = self.durable_dirs.clone();
        let live: BTreeSet<Ino> = self.names.values().copied().collect();
        let dead: Vec<Ino> = self
            .files
            .keys()
            .filter(|i| !live.contains(i))
            .copied()
            .collect();
        for ino in dead {
            self.files.remove(&ino);
            self.store.remove(ino);
        }
        loss
    }
}

/// The last part of a name (`a/b/c` → `c`).
pub fn base(name: &str) -> &str {
    name.rfind('/').map_or(name, |i| &name[i + 1..])
}

/// `key` moved from under `from` to under `to` (`None`: not under `from`).
pub(crate) fn rebase(key: &str, from: &str, to: &str) -> Option<String> {
    if key == from {
        Some(to.to_string())
    } else {
        key.strip_prefix(from)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(|rest| format!("{to}/{rest}"))
    }
}

fn moved(map: BTreeMap<String, Ino>, from: &str, to: &str) -> BTreeMap<String, Ino> {
    map.into_iter()
        .map(|(k, v)| (rebase(&k, from, to).unwrap_or(k), v))
        .collect()
}

fn moved_set(set: BTreeSet<String>, from: &str, to: &str) -> BTreeSet<String> {
    set.into_iter()
        .map(|k| rebase(&k, from, to).unwrap_or(k))
        .collect()
}

/// The page size a torn write keeps or loses pages of.
pub const PAGE: u64 = 4096;

/// The byte ranges `[a, b)` of a file's pending writes (oldest first) that
/// a torn write-back kept: a prefix of the last write, or the pages whose
/// bit in `r` is set (page `p` by bit `p % 64`).
fn kept_ranges(undo: &[Undo], tear: Tear, r: u64) -> Vec<(u64, u64)> {
    match tear {
        Tear::PrefixOfLast => match undo.iter().rev().find(|u| u.written > 0) {
            Some(last) => {
                let kept = r % last.written;
                if kept == 0 {
                    Vec::new()
                } else {
                    vec![(last.offset, last.offset + kept)]
                }
            }
            None => Vec::new(),
        },
        Tear::PageSubset => {
            let keeps = |page: u64| (r >> (page % 64)) & 1 == 1;
            let mut out = Vec::new();
            for u in undo.iter().filter(|u| u.written > 0) {
                let end = u.offset + u.written;
                let mut at = u.offset;
                while at < end {
                    let to = ((at / PAGE + 1) * PAGE).min(end);
                    if keeps(at / PAGE) {
                        out.push((at, to));
                    }
                    at = to;
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests;
