//! The in-memory view of the Raft log, and which part of it is not yet durable.

use super::snapshot::Snapshot;
use super::types::Entry;

/// The log as the core sees it. Indexes start at 1; index 0 is the empty
/// prefix with term 0. After compaction (Raft §7) the entries up to
/// `offset` are gone (a snapshot covers them); only the term of the entry
/// at `offset` is kept, for the AppendEntries consistency check.
///
/// Invariant: `entries[i].index == offset + i + 1`.
#[derive(Debug, Default)]
pub struct RaftLog {
    entries: Vec<Entry>,
    /// The last index compacted away (0: nothing).
    offset: u64,
    /// The term of the entry at `offset` (0 when `offset` is 0).
    offset_term: u64,
    /// The highest index whose compaction is not yet on disk.
    compact_pending: Option<u64>,
    /// The lowest index whose durable copy may differ from memory (every index
    /// from here on must be rewritten by the next persist).
    /// Invariant: `1 <= unstable_from <= last_index() + 1`.
    unstable_from: u64,
    /// The last index that is durable (as of the last `take_unstable`).
    persisted_last: u64,
}

/// Log changes that must reach stable storage, applied in this order: the
/// snapshot (replacing the stored one), the truncation, the compaction,
/// then the appends (an appended entry that the compaction already covers
/// is skipped).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LogWrite {
    /// A snapshot to store (taken here, or received from the leader).
    pub snapshot: Option<Snapshot>,
    /// Remove every stored entry with index >= this before appending.
    pub truncate_from: Option<u64>,
    /// Remove every stored entry with index <= this (a snapshot covers them).
    pub compact_to: Option<u64>,
    /// The entries to append, in order.
    pub entries: Vec<Entry>,
}

impl LogWrite {
    /// Fold `next`, a later write, into this one, so that one write (and one
    /// fsync) does both: the result leaves the same log on disk as this write
    /// followed by `next`.
    pub fn merge(&mut self, next: LogWrite) {
        // A snapshot only ever covers committed entries, and a truncation
        // only ever cuts above the commit point, so the two kinds of cut
        // commute: the later snapshot and the higher compaction win.
        if next.snapshot.is_some() {
            self.snapshot = next.snapshot;
        }
        self.compact_to = self.compact_to.max(next.compact_to);
        if let Some(t) = next.truncate_from {
            match self.entries.first().map(|e| e.index) {
                Some(first) if t > first => {
                    self.entries.truncate((t - first) as usize);
                }
                _ => {
                    self.entries.clear();
                    self.truncate_from = Some(self.truncate_from.map_or(t, |f| f.min(t)));
                }
            }
        }
        self.entries.extend(next.entries);
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none()
            && self.truncate_from.is_none()
            && self.compact_to.is_none()
            && self.entries.is_empty()
    }
}

impl RaftLog {
    /// A log restored from storage; all of it is durable.
    pub fn restore(entries: Vec<Entry>) -> Self {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == i as u64 + 1));
        Self::restore_after(0, 0, entries)
    }

    /// A log restored from a snapshot ending at (`offset`, `offset_term`)
    /// and the stored entries that follow it; all of it is durable.
    pub fn restore_after(offset: u64, offset_term: u64, entries: Vec<Entry>) -> Self {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == offset + i as u64 + 1));
        let last = offset + entries.len() as u64;
        RaftLog {
            entries,
            offset,
            offset_term,
            compact_pending: None,
            unstable_from: last + 1,
            persisted_last: last,
        }
    }

    /// The last index compacted away (0 when nothing is).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The first index still held (`offset + 1`; past `last_index` when
    /// the log holds nothing after its snapshot).
    pub fn first_index(&self) -> u64 {
        self.offset + 1
    }

    /// Index of the last entry (0 when empty).
    pub fn last_index(&self) -> u64 {
        self.offset + self.entries.len() as u64
    }

    /// Entries held (after the compacted prefix).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Term of the last entry (0 when empty).
    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.offset_term, |e| e.term)
    }

    /// Term of the entry at `index`: `Some(0)` for index 0, the snapshot's
    /// term at `offset`, `None` past the end and below `offset` (compacted).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.offset {
            return Some(self.offset_term);
        }
        if index < self.offset {
            return None;
        }
        self.entries
            .get((index - self.offset) as usize - 1)
            .map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        if index <= self.offset {
            return None;
        }
        self.entries.get((index - self.offset) as usize - 1)
    }

    /// Up to `max` entries from `from` on (from the first held entry when
    /// `from` was compacted away).
    pub fn slice(&self, from: u64, max: usize) -> Vec<Entry> {
        let start = (from.max(self.offset + 1) - self.offset - 1) as usize;
        if start >= self.entries.len() {
            return Vec::new();
        }
        let end = (start + max).min(self.entries.len());
        self.entries[start..end].to_vec()
    }

    /// Entries `from..=to`.
    pub fn range(&self, from: u64, to: u64) -> Vec<Entry> {
        if from > to {
            return Vec::new();
        }
        self.slice(from, (to - from + 1) as usize)
    }

    /// The first index holding `term`, searching down from `index` (for the
    /// conflict hint): the start of the run of `term` that contains `index`.
    pub fn first_index_of_term_at(&self, index: u64) -> u64 {
        let Some(t) = self.term(index) else {
            return self.last_index() + 1;
        };
        let mut i = index;
        while i > self.offset + 1 && self.term(i - 1) == Some(t) {
            i -= 1;
        }
        i
    }

    /// The last index at or below `upto` whose entry has `term`, if any.
    pub fn last_index_of_term(&self, term: u64, upto: u64) -> Option<u64> {
        let mut i = upto.min(self.last_index());
        while i > 0 {
            let t = self.term(i)?;
            if t == term {
                return Some(i);
            }
            if t < term {
                return None;
            }
            i -= 1;
        }
        None
    }

    /// Append one entry at the end.
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// Remove every entry with index >= `from` (never a compacted one: only
    /// uncommitted entries are ever cut, and only committed ones compacted).
    pub fn truncate(&mut self, from: u64) {
        debug_assert!(from > self.offset, "truncating compacted entries");
        let from = from.max(self.offset + 1);
        self.entries.truncate((from - self.offset - 1) as usize);
        self.unstable_from = self.unstable_from.min(from);
    }

    /// Discard every entry up to `to` (held entries only; a snapshot covers
    /// them). Returns false when there is nothing to discard.
    pub fn compact(&mut self, to: u64) -> bool {
        if to <= self.offset || to > self.last_index() {
            return false;
        }
        let term = self.term(to).expect("held");
        self.entries.drain(..(to - self.offset) as usize);
        self.offset = to;
        self.offset_term = term;
        self.unstable_from = self.unstable_from.max(to + 1);
        self.persisted_last = self.persisted_last.max(to);
        self.compact_pending = Some(to);
        true
    }

    /// Discard the whole log: a snapshot ending at (`index`, `term`)
    /// replaces it (InstallSnapshot when the log does not match it).
    pub fn reset(&mut self, index: u64, term: u64) {
        self.entries.clear();
        self.offset = index;
        self.offset_term = term;
        // What was stored above `index` must be cut; what was stored below
        // is covered by the snapshot.
        self.unstable_from = index + 1;
        self.compact_pending = Some(index);
    }

    /// What has changed since the last call, to be persisted; afterwards the
    /// whole log counts as durable.
    pub fn take_unstable(&mut self) -> LogWrite {
        let last = self.last_index();
        let from = self.unstable_from.min(last + 1).max(self.offset + 1);
        let truncate_from = (from <= self.persisted_last).then_some(from);
        let entries = self.range(from, last);
        self.unstable_from = last + 1;
        self.persisted_last = last;
        LogWrite {
            snapshot: None,
            truncate_from,
            compact_to: self.compact_pending.take(),
            entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::EntryData;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: EntryData::Noop,
        }
    }

    fn w(truncate_from: Option<u64>, entries: &[(u64, u64)]) -> LogWrite {
        LogWrite {
            truncate_from,
            entries: entries.iter().map(|&(i, t)| e(i, t)).collect(),
            ..Default::default()
        }
    }

    /// Apply writes to a disk image, as storage does.
    fn apply(disk: &mut Vec<Entry>, write: &LogWrite) {
        if let Some(t) = write.truncate_from {
            disk.truncate((t - 1) as usize);
        }
        for x in &write.entries {
            assert_eq!(x.index, disk.len() as u64 + 1, "a gap in {write:?}");
            disk.push(x.clone());
        }
    }

    #[test]
    fn merged_writes_leave_the_same_log_as_the_writes_in_turn() {
        let disk = vec![e(1, 1), e(2, 1), e(3, 1)];
        let cases = [
            vec![w(None, &[(4, 1)]), w(None, &[(5, 1), (6, 1)])],
            vec![w(None, &[(4, 1), (5, 1)]), w(Some(5), &[(5, 2)])],
            vec![w(None, &[(4, 1), (5, 1)]), w(Some(4), &[(4, 2)])],
            vec![w(None, &[(4, 1)]), w(Some(2), &[(2, 3), (3, 3)])],
            vec![w(Some(3), &[(3, 2)]), w(Some(2), &[])],
            vec![w(Some(2), &[]), w(None, &[(2, 2)]), w(Some(2), &[(2, 3)])],
            vec![
                w(Some(3), &[(3, 2), (4, 2)]),
                w(Some(4), &[(4, 3)]),
                w(None, &[(5, 3)]),
            ],
        ];
        for writes in cases {
            let mut expected = disk.clone();
            for x in &writes {
                apply(&mut expected, x);
            }
            let mut merged = LogWrite::default();
            for x in writes.iter().map(|x| LogWrite {
                truncate_from: x.truncate_from,
                entries: x.entries.clone(),
                ..Default::default()
            }) {
                merged.merge(x);
            }
            let mut got = disk.clone();
            apply(&mut got, &merged);
            assert_eq!(got, expected, "{writes:?} merged into {merged:?}");
        }
    }
}
