//! Log replication and commitment (paper §5.3, §5.4): the leader's
//! AppendEntries with the prevLogIndex/prevLogTerm check and nextIndex
//! back-off, the follower's receiver rules, appending and truncating the
//! log, commitment by a majority of entries of the current term only, and
//! sending messages (at once, or after the persist they depend on).

use super::*;

impl Raft {
    pub(super) fn step_leader(&mut self, msg: Message) {
        if let MessageBody::InstallSnapshotResponse {
            index,
            received,
            done,
        } = msg.body
        {
            self.handle_snapshot_response(msg.from, index, received, done);
            return;
        }
        let MessageBody::AppendEntriesResponse {
            success,
            match_index,
            reject_index,
            hint,
        } = msg.body
        else {
            // Another leader in our own term cannot exist (election safety);
            // a vote answer after we won is old news.
            return;
        };
        let last_index = self.log.last_index();
        let now = self.leading_ticks;
        let Some(pr) = self.progress.get_mut(&msg.from) else {
            return;
        };
        pr.recent_active = true;
        pr.last_heard = now;
        if success {
            if pr.on_success(match_index) {
                self.maybe_commit();
            }
        } else {
            // A follower whose log ends below what it acknowledged lost
            // entries from its disk, and would be probed at the old match
            // point for ever; but a late copy of an old answer looks the
            // same, so only the follower can say (see Anomaly::SuspectedLoss).
            if let Some(ConflictHint {
                term: None,
                first_index,
            }) = hint
            {
                if pr.suspect_loss(reject_index, first_index.saturating_sub(1)) {
                    self.anomalies.push(Anomaly::SuspectedLoss {
                        follower: msg.from.clone(),
                        acknowledged: pr.match_index,
                        term: self.hard.term,
                    });
                }
            }
            let next = match hint {
                Some(ConflictHint {
                    term: Some(t),
                    first_index,
                }) => self
                    .log
                    .last_index_of_term(t, reject_index)
                    .map_or(first_index, |i| i + 1),
                Some(ConflictHint {
                    term: None,
                    first_index,
                }) => first_index,
                None => reject_index,
            };
            let pr = self.progress.get_mut(&msg.from).expect("checked above");
            if !pr.on_reject(reject_index, next) {
                return;
            }
        }
        // Committing may have removed us (a leader outside the new
        // configuration steps down) or the follower.
        let Some(pr) = self.progress.get(&msg.from) else {
            return;
        };
        if pr.next_index <= last_index || !success {
            self.send_append(msg.from);
        }
    }

    pub(super) fn step_follower(&mut self, msg: Message) {
        match msg.body {
            MessageBody::AppendEntries { .. } => {
                self.election_elapsed = 0;
                self.leader = Some(msg.from.clone());
                self.handle_append_entries(msg);
            }
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                done,
            } => {
                self.election_elapsed = 0;
                self.leader = Some(msg.from.clone());
                self.handle_install_snapshot(msg.from, msg.term, meta, offset, data, done);
            }
            _ => {}
        }
    }

    /// AppendEntries receiver (Figure 2), with the conflict hint for fast back-off.
    pub(super) fn handle_append_entries(&mut self, msg: Message) {
        let MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } = msg.body
        else {
            return;
        };
        let reply = |success, match_index, hint| MessageBody::AppendEntriesResponse {
            success,
            match_index,
            reject_index: prev_log_index,
            hint,
        };
        // Entries up to our snapshot are committed, so they match the
        // leader's (leader completeness): skip them and check from there.
        let (prev_log_index, prev_log_term, entries) = if prev_log_index < self.log.offset() {
            let offset = self.log.offset();
            let last_sent = prev_log_index + entries.len() as u64;
            if last_sent <= offset {
                self.send_persisted(msg.from, reply(true, last_sent, None));
                return;
            }
            let term = self.log.term(offset).expect("the offset's term is kept");
            let rest: Vec<Entry> = entries.into_iter().filter(|e| e.index > offset).collect();
            (offset, term, rest)
        } else {
            (prev_log_index, prev_log_term, entries)
        };
        // Reply false if the log does not contain an entry at prevLogIndex
        // whose term matches prevLogTerm.
        match self.log.term(prev_log_index) {
            None => {
                let hint = ConflictHint {
                    term: None,
                    first_index: self.log.last_index() + 1,
                };
                self.send_persisted(msg.from, reply(false, 0, Some(hint)));
                return;
            }
            // UNSAFE variant: accept whatever the term at prevLogIndex.
            Some(t) if t != prev_log_term && !self.config.unsafe_skip_prev_check => {
                let hint = ConflictHint {
                    term: Some(t),
                    first_index: self.log.first_index_of_term_at(prev_log_index),
                };
                self.send_persisted(msg.from, reply(false, 0, Some(hint)));
                return;
            }
            Some(_) => {}
        }
        // If an existing entry conflicts with a new one (same index, different
        // term), delete it and all that follow; append entries not already in the log.
        let last_new = prev_log_index + entries.len() as u64;
        for entry in entries {
            match self.log.term(entry.index) {
                Some(t) if t == entry.term => continue,
                // UNSAFE variant: a mismatched log may now "conflict" below
                // the commit point; the buggy follower keeps its entry.
                Some(_) if self.config.unsafe_skip_prev_check && entry.index <= self.commit => {
                    continue
                }
                Some(_) => {
                    assert!(
                        entry.index > self.commit,
                        "{}: leader {} asked to overwrite committed entry {} (commit {})",
                        self.id,
                        msg.from,
                        entry.index,
                        self.commit
                    );
                    self.truncate_log(entry.index);
                    self.push_entry(entry);
                }
                None => self.push_entry(entry),
            }
        }
        // commitIndex = min(leaderCommit, index of last new entry): only what
        // this message proved to match the leader.
        let new_commit = leader_commit.min(last_new);
        if new_commit > self.commit {
            self.commit = new_commit;
        }
        assert!(
            self.commit <= self.log.last_index(),
            "{}: invariant commit <= last index broken: commit {} past the log's last entry {}",
            self.id,
            self.commit,
            self.log.last_index()
        );
        if last_new >= self.recovering_to {
            // Its log matches the leader's up to past what it lost.
            self.recovering_to = 0;
        }
        self.send_persisted(msg.from, reply(true, last_new, None));
    }

    pub(super) fn append_own(&mut self, data: EntryData) -> u64 {
        let index = self.log.last_index() + 1;
        self.push_entry(Entry {
            term: self.hard.term,
            index,
            data,
        });
        index
    }

    /// Append to the log; a configuration entry takes effect at once.
    pub(super) fn push_entry(&mut self, entry: Entry) {
        let conf = match &entry.data {
            EntryData::Config(m) => Some((entry.index, m.clone())),
            _ => None,
        };
        self.log.push(entry);
        if let Some(c) = conf {
            self.conf_entries.push(c);
            self.refresh_membership();
        }
    }

    /// Cut the log from `from`; a configuration entry cut off is undone.
    pub(super) fn truncate_log(&mut self, from: u64) {
        // Leader Append-Only (§5.3): a leader never overwrites or deletes
        // entries in its own log.
        assert!(
            self.role != Role::Leader,
            "{}: invariant broken: the leader of term {} was asked to cut its own log from {from}",
            self.id,
            self.hard.term
        );
        self.log.truncate(from);
        self.durable = self.durable.min(from.saturating_sub(1));
        if self.membership_index() >= from {
            self.conf_entries.retain(|(i, _)| *i < from);
            self.refresh_membership();
        }
    }

    /// Commit the highest index stored on a majority, but only when its entry
    /// is of the current term (paper §5.4.2, Figure 8).
    pub(super) fn maybe_commit(&mut self) {
        let own = self.durable.min(self.log.last_index());
        let n = self.membership.config.committed_index(|id| {
            if *id == self.id {
                own
            } else {
                self.progress.get(id).map_or(0, |p| p.match_index)
            }
        });
        // UNSAFE variant: count replicas for entries of any term.
        let current_term =
            self.log.term(n) == Some(self.hard.term) || self.config.unsafe_commit_old_term;
        if n > self.commit && current_term {
            assert!(
                n <= self.log.last_index(),
                "{}: invariant commit <= last index broken: a majority matched {n}, past the leader's last entry {}",
                self.id,
                self.log.last_index()
            );
            self.commit = n;
            // A leader that the committed configuration removed steps down;
            // the remaining servers elect a leader among themselves.
            if !self.membership.config.contains(&self.id) && self.membership_index() <= n {
                self.become_follower(self.hard.term, None);
            }
        }
    }

    pub(super) fn quorum_active(&mut self) -> bool {
        let mut active: BTreeSet<NodeId> = BTreeSet::new();
        active.insert(self.id.clone());
        for (id, pr) in self.progress.iter_mut() {
            if std::mem::take(&mut pr.recent_active) {
                active.insert(id.clone());
            }
        }
        self.membership.config.is_quorum(&active)
    }

    pub(super) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for p in peers {
            if self.progress[&p].can_send() {
                self.send_append(p);
            }
        }
    }

    pub(super) fn broadcast_heartbeat(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for p in peers {
            // A heartbeat also re-sends a probe that may have been lost.
            self.progress.get_mut(&p).expect("listed").probe_sent = false;
            self.send_append(p);
        }
    }

    pub(super) fn send_append(&mut self, to: NodeId) {
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let prev_log_index = pr.next_index - 1;
        // The follower needs entries we compacted away (or is receiving our
        // snapshot already): send the snapshot.
        let prev_log_term = match self.log.term(prev_log_index) {
            Some(t) if !matches!(pr.state, ProgressState::Snapshot { .. }) => t,
            _ => {
                self.send_snapshot(to);
                return;
            }
        };
        let entries = self
            .log
            .slice(pr.next_index, self.config.max_entries_per_message);
        match pr.state {
            ProgressState::Replicate => {
                if let Some(last) = entries.last() {
                    pr.next_index = last.index + 1;
                }
            }
            ProgressState::Probe => pr.probe_sent = true,
            ProgressState::Snapshot { .. } => unreachable!("sent the snapshot above"),
        }
        let leader_commit = self.commit;
        self.send(
            to,
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            },
        );
    }

    pub(super) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.messages.push(Message {
            from: self.id.clone(),
            to,
            term: self.hard.term,
            body,
        });
    }

    pub(super) fn send_persisted(&mut self, to: NodeId, body: MessageBody) {
        self.persisted_messages.push(Message {
            from: self.id.clone(),
            to,
            term: self.hard.term,
            body,
        });
    }
}
