//! Membership changes inside the core (paper §6, joint consensus): which
//! configuration is in force, and the leader proposing each later step of
//! a change as the previous one commits.

use super::*;

impl Raft {
    /// Use the latest configuration in the log; a leader starts or stops
    /// replicating to the servers that joined or left.
    pub(super) fn refresh_membership(&mut self) {
        self.membership = match self.conf_entries.last() {
            Some((_, m)) => m.clone(),
            None => self.initial.clone(),
        };
        if self.role == Role::Leader {
            let members = self.membership.members();
            self.progress.retain(|id, _| members.contains(id));
            let next = self.log.last_index() + 1;
            for id in members {
                if id != self.id {
                    self.progress
                        .entry(id)
                        .or_insert_with(|| Progress::new(next));
                }
            }
        }
    }

    /// Leader: propose the next step of a change once the current step is
    /// committed (and its learners have caught up).
    pub(super) fn advance_membership(&mut self) {
        if self.role != Role::Leader || !self.membership.in_transition() {
            return;
        }
        if self.membership_index() > self.commit {
            return;
        }
        let commit = self.commit;
        let caught_up = self.membership.learners.iter().all(|l| {
            self.progress
                .get(l)
                .is_some_and(|p| p.match_index >= commit)
        });
        if !caught_up {
            return;
        }
        if let Some(next) = self.membership.next_step() {
            self.append_own(EntryData::Config(next));
            self.replicate_pending = true;
            self.maybe_commit();
        }
    }
}
