//! Snapshots inside the core (Raft paper §7): taking one when the log since
//! the last has grown past the threshold, the leader sending its snapshot
//! in chunks to a follower that needs compacted entries, and the follower
//! installing it (Figure 13), keeping the entries that follow it when they
//! match.

use std::sync::Arc;

use super::snapshot::Incoming;
use super::*;

impl Raft {
    /// Whether enough applied entries follow the last snapshot that the
    /// caller should take one now ([`Raft::take_snapshot`]).
    pub fn snapshot_due(&self) -> bool {
        let last = self.snapshot.as_ref().map_or(0, |s| s.meta.index);
        self.config.snapshot_entries > 0
            && self.applied.saturating_sub(last) >= self.config.snapshot_entries
    }

    /// Record `data`, the caller's state machine with every entry up to
    /// [`Raft::applied_index`] applied, as this server's snapshot, and
    /// compact the log up to it (keeping `snapshot_trailing` entries
    /// behind it). The next Ready's write stores the snapshot and the
    /// compaction. Returns the snapshot's index (0 when nothing is applied
    /// past the last snapshot).
    pub fn take_snapshot(&mut self, data: Vec<u8>) -> u64 {
        let index = self.applied;
        if index == 0
            || self
                .snapshot
                .as_ref()
                .is_some_and(|s| s.meta.index >= index)
        {
            return 0;
        }
        let term = self.log.term(index).expect("applied entries are held");
        let (membership, membership_index) = self
            .conf_entries
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or((self.initial.clone(), self.initial_index), |(i, m)| {
                (m.clone(), *i)
            });
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                membership,
                membership_index,
            },
            data: Arc::new(data),
        };
        self.set_base(&snapshot.meta);
        let keep_from = index.saturating_sub(self.config.snapshot_trailing);
        if keep_from > self.log.offset() {
            self.log.compact(keep_from);
        }
        self.snapshot_unsaved = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
        self.snapshots_taken += 1;
        index
    }

    /// The snapshot's configuration becomes the one before the log; later
    /// configuration entries stay in force.
    fn set_base(&mut self, meta: &SnapshotMeta) {
        self.initial = meta.membership.clone();
        self.initial_index = meta.membership_index;
        self.conf_entries.retain(|(i, _)| *i > meta.index);
        self.refresh_membership();
    }

    /// Leader: send `to` the next chunk of the snapshot it is receiving,
    /// starting the transfer (of the latest snapshot) when needed.
    pub(super) fn send_snapshot(&mut self, to: NodeId) {
        let Some(snap) = self.snapshot.clone() else {
            return;
        };
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let offset = match pr.state {
            ProgressState::Snapshot { index, offset } if index == snap.meta.index => offset,
            // A newer snapshot replaced the one being sent: start over.
            _ => {
                pr.begin_snapshot(snap.meta.index);
                0
            }
        };
        pr.probe_sent = true;
        let total = snap.data.len() as u64;
        let start = offset.min(total) as usize;
        let end = (start + self.config.snapshot_chunk_bytes).min(snap.data.len());
        self.send(
            to,
            MessageBody::InstallSnapshot {
                meta: snap.meta.clone(),
                offset: start as u64,
                data: snap.data[start..end].to_vec(),
                done: end == snap.data.len(),
            },
        );
    }

    /// Leader: a follower's answer to a chunk.
    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        index: u64,
        received: u64,
        done: bool,
    ) {
        let now = self.leading_ticks;
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.last_heard = now;
        if done {
            // The follower's log matches ours up to `index`.
            if pr.on_success(index) {
                self.maybe_commit();
            }
            if matches!(
                self.progress.get(&from).map(|p| p.state),
                Some(ProgressState::Replicate)
            ) {
                self.send_append(from);
            }
        } else if pr.on_snapshot_chunk(index, received) {
            self.send_append(from);
        }
    }

    /// Follower: one chunk of the leader's snapshot (Figure 13).
    pub(super) fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        term: u64,
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) {
        let reply = |received, done| MessageBody::InstallSnapshotResponse {
            index: meta.index,
            received,
            done,
        };
        // Everything it covers is committed here already: nothing to do,
        // and our log matches the leader's up to its index (an answer that,
        // like any acknowledgement, waits until that is on disk: the commit
        // may have come with a snapshot still being written).
        if meta.index <= self.commit {
            self.incoming = None;
            self.send_persisted(from, reply(0, true));
            return;
        }
        let continues = self
            .incoming
            .as_ref()
            .is_some_and(|i| i.is_for(&from, term, &meta) && i.data.len() as u64 == offset);
        if offset == 0 && !continues {
            self.incoming = Some(Incoming {
                leader: from.clone(),
                term,
                meta: meta.clone(),
                data: Vec::new(),
            });
        } else if !continues {
            // A lost, duplicated or reordered chunk: say where we are.
            let have = self
                .incoming
                .as_ref()
                .filter(|i| i.is_for(&from, term, &meta))
                .map_or(0, |i| i.data.len() as u64);
            self.send(from, reply(have, false));
            return;
        }
        let incoming = self.incoming.as_mut().expect("set above");
        incoming.data.extend_from_slice(&data);
        let received = incoming.data.len() as u64;
        if !done {
            self.send(from, reply(received, false));
            return;
        }
        let incoming = self.incoming.take().expect("set above");
        let snapshot = Snapshot {
            meta: incoming.meta,
            data: Arc::new(incoming.data),
        };
        self.install(snapshot);
        // The answer promises the snapshot is on disk.
        self.send_persisted(from, reply(received, true));
    }

    /// Replace the state machine and the log up to the snapshot's index
    /// with the snapshot; keep the entries after it if the log holds the
    /// snapshot's last entry (same index and term), else discard the log.
    fn install(&mut self, snapshot: Snapshot) {
        let meta = &snapshot.meta;
        if self.log.term(meta.index) == Some(meta.term) {
            self.log.compact(meta.index);
        } else {
            self.log.reset(meta.index, meta.term);
            self.durable = self.durable.min(meta.index);
            self.conf_entries.clear();
        }
        self.set_base(&snapshot.meta.clone());
        self.commit = self.commit.max(meta.index);
        self.applied = meta.index;
        self.snapshot_unsaved = Some(snapshot.clone());
        self.restore = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
        self.snapshots_installed += 1;
        if self.snapshot_index_reaches_recovery() {
            self.recovering_to = 0;
        }
    }

    /// Whether the installed snapshot covers what this server had lost.
    fn snapshot_index_reaches_recovery(&self) -> bool {
        self.snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index >= self.recovering_to)
    }
}
