//! Durable storage for one node: an append-only log file and a metadata
//! record (term and vote), both checksummed.
//!
//! Log record: `len: u32 LE | crc32(len ‖ payload): u32 LE | payload` where
//! the payload is the bincode encoding of an [`Entry`]. Appends write every
//! entry of a Ready with one `write` and one fsync (group commit); truncating
//! a conflicting suffix cuts the file at the first removed record.
//!
//! On open (every file a regular file, every read bounded: `regular`;
//! the log read record by record: `log_file`), the durable mark
//! ([`durable_mark`]) tells what the tail means: a record past it that does
//! not check out is a torn append and is cut off and logged; a record at or
//! below it written whole that no longer checks out, or any damaged record
//! followed by an intact one, is damage, and opening fails with the file
//! and byte offset; a log that ends below the mark lost durable entries,
//! which [`Recovered::lost`] reports. Committed entries are never silently
//! dropped.
//!
//! The metadata record is replaced atomically: written to `meta.tmp`,
//! fsynced, renamed over `meta`, and the directory fsynced.
//!
//! Snapshots (see [`snapshot_file`]) are stored the same way, and then the
//! log is compacted: the records after the compaction point are copied to
//! `log.tmp`, fsynced, and renamed over `log`. The snapshot is durable
//! before the log loses anything, and each file is replaced whole, so a
//! crash at any moment leaves a snapshot and a log that together hold every
//! acknowledged entry. The log's first record may then be any index up to
//! the snapshot's last + 1; entries at or below the snapshot's index are
//! skipped when the log is read back.
//!
//! Over 600 lines: the order of writes, fsyncs and renames that makes a
//! crash safe is one argument, and reads best in one file; the record format
//! and the snapshot file are modules of their own.

pub mod durable_mark;
mod log_file;
mod regular;
pub mod snapshot_file;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::raft::{Entry, HardState, LogWrite, Snapshot};

use durable_mark::DurableMark;
use log_file::{encode_record, parse_record, HEADER};

/// The term/vote record is a few dozen bytes; anything much larger is not one.
const MAX_META: u64 = 64 << 10;
/// The cluster's name is short (the node refuses a long one).
const MAX_CLUSTER: u64 = 4 << 10;

pub use log_file::MAX_RECORD;

/// A storage failure. Every one is fatal to the node: it must not answer
/// anything it cannot make durable.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The operating system refused.
    // The OS error is part of the message and not a `source`: printed as a
    // chain, it would otherwise appear twice.
    #[error("{op} {path}: {cause}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// The directory belongs to another cluster.
    #[error("{path}: this data directory belongs to cluster '{found}', not '{wanted}'")]
    OtherCluster {
        /// The record's file.
        path: PathBuf,
        /// The cluster it names.
        found: String,
        /// The cluster this node was started for.
        wanted: String,
    },
    /// The term/vote record is missing or older than the log.
    #[error("{path}: {problem}; starting would forget this node's vote (pass --unsafe-accept-lost-vote to start anyway, at the risk of voting twice in a term)")]
    LostTermRecord {
        /// The record's file.
        path: PathBuf,
        /// What does not fit.
        problem: String,
    },
    /// A data file is not a regular file (a FIFO, a device, a directory).
    #[error(
        "{path}: is {kind}, not a regular file; a data directory holds only the node's own files"
    )]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A record that was once complete no longer checks out.
    #[error("{path}: corrupt record at byte offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |cause| StorageError::Io { op, path, cause }
}

/// How appends reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// All entries of one Ready share one fsync.
    GroupCommit,
    /// One write and one fsync per entry (for the benchmark's comparison).
    PerEntry,
}

/// What was found when opening a data directory.
#[derive(Debug)]
pub struct Recovered {
    /// The last persisted term and vote.
    pub hard_state: HardState,
    /// The stored snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The persisted log after the snapshot.
    pub entries: Vec<Entry>,
    /// Bytes cut off a torn tail, if any (already logged).
    pub torn_tail: Option<(u64, u64)>,
    /// Whether the term/vote record was there (a fresh directory has none).
    pub meta_found: bool,
    /// Entries (from, to) that were durable but are gone from the log: the
    /// disk lost fsynced data. The node must not vote or campaign until it
    /// holds a leader's log past `to` again.
    pub lost: Option<(u64, u64)>,
}

impl Recovered {
    /// The term/vote record is written before the log entries of its term
    /// (see [`Storage::persist`]), so a log holding an entry of a term newer
    /// than the record's — or any entry with no record at all — means the
    /// record was lost or deleted: the node would forget its term and its
    /// vote, and could vote twice in a term. An error naming the file,
    /// unless the caller accepts that risk.
    pub fn check_term_record(&self, dir: &Path) -> Result<(), StorageError> {
        let snapshot_term = self.snapshot.as_ref().map_or(0, |s| s.meta.term);
        let newest = self
            .entries
            .iter()
            .map(|e| e.term)
            .max()
            .unwrap_or(0)
            .max(snapshot_term);
        let problem = if !self.meta_found && self.snapshot.is_some() {
            format!(
                "the term/vote record is missing, but a snapshot of term {snapshot_term} is stored"
            )
        } else if !self.meta_found && !self.entries.is_empty() {
            format!(
                "the term/vote record is missing, but the log holds {} entries up to term {newest}",
                self.entries.len()
            )
        } else if newest > self.hard_state.term {
            format!(
                "the term/vote record says term {}, but the log holds entries of term {newest}",
                self.hard_state.term
            )
        } else {
            return Ok(());
        };
        Err(StorageError::LostTermRecord {
            path: dir.join("meta"),
            problem,
        })
    }
}

/// The open storage of one node.
pub struct Storage {
    dir: PathBuf,
    log_path: PathBuf,
    log: File,
    /// The index of the first stored record's entry.
    first: u64,
    /// `offsets[i]` is where the record of entry `first + i` starts.
    offsets: Vec<u64>,
    /// The index the stored snapshot ends at (0: none): appends at or
    /// below it are covered already.
    snapshot_index: u64,
    /// The file's length: where the next record goes.
    end: u64,
    mode: SyncMode,
    /// UNSAFE ack-before-fsync: when the log was last fsynced (`None`:
    /// the bug is off).
    lazy_fsync: Option<std::time::Instant>,
    /// UNSAFE ignore-fsync-error: a failed fsync is logged and ignored.
    ignore_fsync_errors: bool,
    /// UNSAFE no-dir-fsync: renames over the log and the snapshot are not
    /// followed by an fsync of the directory.
    no_dir_fsync: bool,
    /// Scratch buffer reused for appends.
    buf: Vec<u8>,
    /// The highest index known durable, on disk (see [`durable_mark`]).
    mark: DurableMark,
    /// After a loss of durable entries: the mark stays at least here until
    /// the log holds this index again (0: no loss).
    recovering_to: u64,
}

impl Storage {
    /// Open (creating if needed) the storage in `dir` and recover its state.
    pub fn open(dir: &Path, mode: SyncMode) -> Result<(Storage, Recovered), StorageError> {
        fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
        let meta_path = dir.join("meta");
        let meta = regular::read_small(&meta_path, MAX_META)?;
        let meta_found = meta.is_some();
        let hard_state = match meta {
            Some(data) => decode_meta(&meta_path, &data)?,
            None => HardState::default(),
        };
        let snapshot = snapshot_file::read(dir)?;
        let snapshot_index = snapshot.as_ref().map_or(0, |s| s.meta.index);
        let mark = durable_mark::read(dir)?;
        let log_path = dir.join("log");
        let log_tmp = dir.join("log.tmp");
        if log_tmp.exists() {
            // A crash in the middle of a compaction: `log` is still whole.
            fs::remove_file(&log_tmp).map_err(io_err("removing", &log_tmp))?;
        }
        let log = regular::open(&log_path, true, true)?.expect("created when missing");
        let size = regular::size(&log, &log_path)?;
        let scan = log_file::scan(&log, size).map_err(io_err("reading", &log_path))?;

        // An intact record in the wrong place is damage, not a torn write.
        let mut expected = None;
        for (entry, &at) in scan.entries.iter().zip(&scan.offsets) {
            let problem = match expected {
                Some(e) if entry.index != e => {
                    Some(format!("entry index {} where {e} was expected", entry.index))
                }
                None if entry.index == 0 || entry.index > snapshot_index + 1 => Some(format!(
                    "the log starts at entry {} but the snapshot ends at {snapshot_index}: entries {}-{} are missing",
                    entry.index,
                    snapshot_index + 1,
                    entry.index.saturating_sub(1)
                )),
                _ => None,
            };
            if let Some(reason) = problem {
                return Err(StorageError::Corrupt {
                    path: log_path,
                    offset: at,
                    reason,
                });
            }
            expected = Some(entry.index + 1);
        }
        let last_good = scan
            .entries
            .last()
            .map_or(snapshot_index, |e| e.index.max(snapshot_index));
        // Entries up to the mark were durable: losing them is not a torn
        // append but a disk that lost fsynced data.
        let lost_from = mark.filter(|&m| m > last_good).map(|m| (last_good + 1, m));
        let mut torn_tail = None;
        if let Some(bad) = &scan.bad {
            if let Some(next) = log_file::intact_record_after(&log, size, bad.offset)
                .map_err(io_err("reading", &log_path))?
            {
                return Err(StorageError::Corrupt {
                    path: log_path,
                    offset: bad.offset,
                    reason: format!("{} (an intact record follows at offset {next})", bad.reason),
                });
            }
            let judged_torn = match (mark, lost_from) {
                // Past the mark: a write that was never acknowledged.
                (Some(_), None) => true,
                // A record of durable entries that was written whole and no
                // longer checks out is damage; one the file ends inside was
                // cut off (reported as lost entries below).
                (Some(_), Some(_)) => bad.torn,
                // No mark (an older directory): judged by the record alone.
                (None, _) => bad.torn,
            };
            if !judged_torn {
                let durable = match lost_from {
                    Some((_, m)) => format!(" (entries up to {m} were durable)"),
                    None => String::new(),
                };
                return Err(StorageError::Corrupt {
                    path: log_path,
                    offset: bad.offset,
                    reason: format!(
                        "{}{durable}: a record written whole no longer checks out (damage, not a torn write)",
                        bad.reason
                    ),
                });
            }
            let cut = size - bad.offset;
            tracing::warn!(
                file = %log_path.display(),
                offset = bad.offset,
                bytes = cut,
                reason = %bad.reason,
                "cutting off a torn record at the tail of the log (a crash during a write)"
            );
            log.set_len(bad.offset)
                .map_err(io_err("truncating", &log_path))?;
            log.sync_all().map_err(io_err("syncing", &log_path))?;
            torn_tail = Some((bad.offset, cut));
        }
        let mut entries = scan.entries;
        let first = entries.first().map_or(snapshot_index + 1, |e| e.index);
        // The mark keeps what was durable until the node has caught up past
        // it: lowering it now would forget the loss at the next restart.
        let mark = DurableMark::open(dir, mark.unwrap_or(0).max(last_good))?;
        sync_dir(dir)?;
        let storage = Storage {
            dir: dir.to_path_buf(),
            log_path,
            log,
            first,
            offsets: scan.offsets,
            snapshot_index,
            end: scan.end,
            mode,
            lazy_fsync: None,
            ignore_fsync_errors: false,
            no_dir_fsync: false,
            buf: Vec::new(),
            mark,
            recovering_to: lost_from.map_or(0, |(_, to)| to),
        };
        // The snapshot covers what the log holds up to its index.
        entries.retain(|e| e.index > snapshot_index);
        Ok((
            storage,
            Recovered {
                hard_state,
                snapshot,
                entries,
                torn_tail,
                meta_found,
                lost: lost_from,
            },
        ))
    }

    /// The last index the stored log and snapshot hold.
    fn last_index(&self) -> u64 {
        (self.first + self.offsets.len() as u64)
            .saturating_sub(1)
            .max(self.snapshot_index)
    }

    /// Make `hard` (when given) and the log changes durable. The term/vote
    /// record goes first: a crash in between leaves a record newer than the
    /// log, never a log entry of a term the record does not know
    /// ([`Recovered::check_term_record`] relies on it).
    pub fn persist(
        &mut self,
        hard: Option<&HardState>,
        write: &LogWrite,
    ) -> Result<(), StorageError> {
        if let Some(h) = hard {
            match write_meta(&self.dir, h) {
                // UNSAFE ignore-fsync-error: a failed sync of the record is
                // logged and ignored.
                Err(StorageError::Io {
                    op: "syncing",
                    path,
                    cause,
                }) if self.ignore_fsync_errors => {
                    tracing::error!(path = %path.display(), "fsync failed, carrying on (UNSAFE ignore-fsync-error): {cause}");
                }
                r => r?,
            }
        }
        if let Some(s) = &write.snapshot {
            snapshot_file::write_with(&self.dir, s, !self.no_dir_fsync)?;
            self.snapshot_index = s.meta.index;
        }
        if let Some(from) = write.truncate_from {
            let keep = from.saturating_sub(self.first) as usize;
            if from >= self.first && keep < self.offsets.len() {
                // The mark goes down first: a crash after the cut must not
                // look like a disk that lost durable entries.
                self.mark
                    .lower_now(from.saturating_sub(1).max(self.recovering_to))?;
                self.end = self.offsets[keep];
                self.offsets.truncate(keep);
                self.log
                    .set_len(self.end)
                    .map_err(io_err("truncating", &self.log_path))?;
                if write.entries.is_empty() {
                    self.synced(self.log.sync_data(), &self.log_path)?;
                }
            }
        }
        if let Some(to) = write.compact_to {
            self.compact(to)?;
        }
        // Entries a compaction covers need not be written; the rest must
        // follow the stored log without a gap. Only the compaction counts:
        // a snapshot taken with trailing entries covers entries the log
        // keeps (for followers), and skipping those left a gap between the
        // stored log and the next append whenever the writer was behind
        // (the leader stopped with "a gap in the log" under load).
        let covered = self.first.saturating_sub(1);
        let skip = write
            .entries
            .iter()
            .take_while(|e| e.index <= covered)
            .count();
        let entries = &write.entries[skip..];
        if let Some(e) = entries.first() {
            let next = self.first + self.offsets.len() as u64;
            if self.offsets.is_empty() {
                self.first = e.index;
            } else if e.index != next {
                return Err(StorageError::Corrupt {
                    path: self.log_path.clone(),
                    offset: self.end,
                    reason: format!(
                        "refusing to append entry {} where {next} comes next (a gap in the log)",
                        e.index
                    ),
                });
            }
        }
        match self.mode {
            SyncMode::GroupCommit => {
                if !entries.is_empty() {
                    self.buf.clear();
                    let mut at = self.end;
                    for e in entries {
                        let before = self.buf.len();
                        encode_record(e, &mut self.buf);
                        self.offsets.push(at);
                        at += (self.buf.len() - before) as u64;
                    }
                    self.log
                        .write_all_at(&self.buf, self.end)
                        .map_err(io_err("writing", &self.log_path))?;
                    self.end = at;
                    // UNSAFE ack-before-fsync: written is taken for
                    // durable; the fsync comes at most once a second, and
                    // the durable mark follows only those.
                    if let Some(last) = self.lazy_fsync {
                        if last.elapsed() < std::time::Duration::from_secs(1) {
                            return Ok(());
                        }
                        self.lazy_fsync = Some(std::time::Instant::now());
                    }
                    self.synced(self.log.sync_data(), &self.log_path)?;
                }
            }
            SyncMode::PerEntry => {
                for e in entries {
                    self.buf.clear();
                    encode_record(e, &mut self.buf);
                    self.log
                        .write_all_at(&self.buf, self.end)
                        .map_err(io_err("writing", &self.log_path))?;
                    self.offsets.push(self.end);
                    self.end += self.buf.len() as u64;
                    self.synced(self.log.sync_data(), &self.log_path)?;
                }
            }
        }
        // Now durable: raise the mark before anything is acknowledged.
        let last = self.last_index();
        if last >= self.recovering_to {
            self.recovering_to = 0;
        }
        match self.mark.raise(last.max(self.recovering_to)) {
            // UNSAFE ignore-fsync-error: the mark's failure too.
            Err(e) if self.ignore_fsync_errors => {
                tracing::error!(
                    "the durable mark failed, carrying on (UNSAFE ignore-fsync-error): {e}"
                );
            }
            r => r?,
        }
        Ok(())
    }

    /// Switch on the storage's known-bug variants among `bugs` (UNSAFE:
    /// ack-before-fsync, ignore-fsync-error, no-dir-fsync; see
    /// [`crate::bugs::UnsafeBug`]).
    pub fn enable_bugs(&mut self, bugs: &[crate::bugs::UnsafeBug]) {
        use crate::bugs::UnsafeBug;
        if bugs.contains(&UnsafeBug::AckBeforeFsync) {
            self.lazy_fsync = Some(std::time::Instant::now());
        }
        self.ignore_fsync_errors = bugs.contains(&UnsafeBug::IgnoreFsyncError);
        self.no_dir_fsync = bugs.contains(&UnsafeBug::NoDirFsync);
    }

    /// A sync's result: an error, unless UNSAFE ignore-fsync-error logs it
    /// and carries on.
    fn synced(&self, r: std::io::Result<()>, path: &Path) -> Result<(), StorageError> {
        match r {
            Err(e) if self.ignore_fsync_errors => {
                tracing::error!(path = %path.display(), "fsync failed, carrying on (UNSAFE ignore-fsync-error): {e}");
                Ok(())
            }
            r => r.map_err(io_err("syncing", path)),
        }
    }

    /// Drop every stored entry up to `to`: copy the records after it to
    /// `log.tmp`, fsync, rename over `log`, fsync the directory. Before the
    /// rename the whole old log is there; after it, the new one.
    fn compact(&mut self, to: u64) -> Result<(), StorageError> {
        if to < self.first {
            return Ok(());
        }
        let drop = ((to - self.first + 1) as usize).min(self.offsets.len());
        let cut = self.offsets.get(drop).copied().unwrap_or(self.end);
        let mut tail = vec![0u8; (self.end - cut) as usize];
        self.log
            .read_exact_at(&mut tail, cut)
            .map_err(io_err("reading", &self.log_path))?;
        let tmp = self.dir.join("log.tmp");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err("creating", &tmp))?;
        file.write_all_at(&tail, 0)
            .map_err(io_err("writing", &tmp))?;
        file.sync_all().map_err(io_err("syncing", &tmp))?;
        fs::rename(&tmp, &self.log_path).map_err(io_err("renaming", &self.log_path))?;
        // UNSAFE no-dir-fsync: the rename is left to chance.
        if !self.no_dir_fsync {
            sync_dir(&self.dir)?;
        }
        self.log = file;
        self.offsets.drain(..drop);
        for o in &mut self.offsets {
            *o -= cut;
        }
        self.first = to + 1;
        self.end -= cut;
        Ok(())
    }

    /// The index of the first stored entry.
    pub fn first_index(&self) -> u64 {
        self.first
    }

    /// Number of entries stored.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

/// Record that the data directory belongs to cluster `id` (at the first
/// start), or check that it does: a directory of another cluster is refused.
pub fn claim_cluster(dir: &Path, id: &str) -> Result<(), StorageError> {
    let path = dir.join("cluster");
    match regular::read_small(&path, MAX_CLUSTER)? {
        Some(found) if String::from_utf8_lossy(&found).trim() == id => Ok(()),
        Some(found) => Err(StorageError::OtherCluster {
            found: String::from_utf8_lossy(&found)
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(80)
                .collect(),
            path,
            wanted: id.to_string(),
        }),
        None => {
            let tmp = dir.join("cluster.tmp");
            {
                let f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
                f.write_all_at(id.as_bytes(), 0)
                    .map_err(io_err("writing", &tmp))?;
                f.sync_all().map_err(io_err("syncing", &tmp))?;
            }
            fs::rename(&tmp, &path).map_err(io_err("renaming", &path))?;
            sync_dir(dir)
        }
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing directory", dir))
}

fn decode_meta(path: &Path, data: &[u8]) -> Result<HardState, StorageError> {
    let corrupt = |reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason,
    };
    let (s, e) = parse_record(data, 0).map_err(corrupt)?;
    if e != data.len() {
        return Err(corrupt(format!(
            "{} trailing bytes after the record",
            data.len() - e
        )));
    }
    bincode::deserialize(&data[s..e])
        .map_err(|e| corrupt(format!("undecodable term and vote: {e}")))
}

fn write_meta(dir: &Path, hard: &HardState) -> Result<(), StorageError> {
    let payload = bincode::serialize(hard).expect("hard state always serializes");
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(&payload);
    let mut rec = Vec::with_capacity(HEADER + payload.len());
    rec.extend_from_slice(&len);
    rec.extend_from_slice(&h.finalize().to_le_bytes());
    rec.extend_from_slice(&payload);
    let tmp = dir.join("meta.tmp");
    let path = dir.join("meta");
    {
        let f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
        f.write_all_at(&rec, 0).map_err(io_err("writing", &tmp))?;
        f.sync_all().map_err(io_err("syncing", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err("renaming", &path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tail_tests;
#[cfg(test)]
mod tests;
