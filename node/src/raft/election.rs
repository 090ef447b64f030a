//! Elections (paper §5.2, and the pre-vote and check-quorum extensions):
//! campaigning, voting by the RequestVote rules of Figure 2, becoming
//! follower or leader, and the randomized election timeout.

use super::*;

impl Raft {
    pub(super) fn step_candidate(&mut self, msg: Message) {
        match msg.body {
            MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. } => {
                // A leader of our term exists: it won (paper §5.2).
                self.become_follower(msg.term, Some(msg.from.clone()));
                self.step_follower(msg);
            }
            MessageBody::RequestVoteResponse { granted, pre_vote } => {
                if pre_vote != (self.role == Role::PreCandidate) {
                    return; // an answer to the other kind of round
                }
                self.votes.insert(msg.from, granted);
                match self.membership.config.vote_result(&self.votes) {
                    VoteResult::Won if self.role == Role::PreCandidate => self.campaign(),
                    VoteResult::Won => self.become_leader(),
                    VoteResult::Lost => self.become_follower(self.hard.term, None),
                    VoteResult::Pending => {}
                }
            }
            _ => {}
        }
    }

    /// RequestVote receiver (Figure 2): grant when the candidate's log is at
    /// least as up-to-date as ours and we have not voted for another in this term.
    pub(super) fn handle_request_vote(
        &mut self,
        from: NodeId,
        term: u64,
        last_index: u64,
        last_term: u64,
        pre_vote: bool,
    ) {
        let up_to_date = last_term > self.log.last_term()
            || (last_term == self.log.last_term() && last_index >= self.log.last_index());
        // etcd's rule: a repeated vote for the same candidate, a fresh vote
        // when we know no leader, or a pre-vote for a later term.
        let can_vote = self.hard.vote.as_ref() == Some(&from)
            || (self.hard.vote.is_none() && self.leader.is_none())
            || (pre_vote && term > self.hard.term);
        // Pre-vote: refuse while a leader was heard within a timeout (thesis §9.6).
        let recently_led = pre_vote
            && self.leader.is_some()
            && self.election_elapsed < self.config.election_timeout_min_ticks;
        // A server that lost durable entries has no vote until it caught up.
        let granted = can_vote && up_to_date && !recently_led && !self.recovering();
        if granted && !pre_vote {
            self.hard.vote = Some(from.clone());
            self.hard_dirty = true;
            self.election_elapsed = 0;
        }
        // A granted pre-vote answer carries the proposed term; everything
        // else carries ours.
        let reply_term = if pre_vote && granted {
            term
        } else {
            self.hard.term
        };
        self.persisted_messages.push(Message {
            from: self.id.clone(),
            to: from,
            term: reply_term,
            body: MessageBody::RequestVoteResponse { granted, pre_vote },
        });
    }

    pub(super) fn start_election(&mut self) {
        if self.config.pre_vote {
            self.pre_campaign();
        } else {
            self.campaign();
        }
    }

    pub(super) fn pre_campaign(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
        self.votes.clear();
        self.votes.insert(self.id.clone(), true);
        self.request_votes(self.hard.term + 1, true);
    }

    /// Become candidate: increment the term, vote for self, ask the others.
    pub(super) fn campaign(&mut self) {
        self.role = Role::Candidate;
        self.hard.term += 1;
        self.hard.vote = Some(self.id.clone());
        self.hard_dirty = true;
        self.leader = None;
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
        self.votes.clear();
        self.votes.insert(self.id.clone(), true);
        self.request_votes(self.hard.term, false);
    }

    pub(super) fn request_votes(&mut self, term: u64, pre_vote: bool) {
        if self.membership.config.vote_result(&self.votes) == VoteResult::Won {
            if pre_vote {
                self.campaign();
            } else {
                self.become_leader();
            }
            return;
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for peer in self.membership.config.voters() {
            if peer == self.id {
                continue;
            }
            // A vote request promises our term and self-vote are durable.
            self.persisted_messages.push(Message {
                from: self.id.clone(),
                to: peer,
                term,
                body: MessageBody::RequestVote {
                    last_log_index,
                    last_log_term,
                    pre_vote,
                },
            });
        }
    }

    pub(super) fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        if term > self.hard.term {
            self.hard.term = term;
            self.hard.vote = None;
            self.hard_dirty = true;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.election_elapsed = 0;
        self.progress.clear();
        self.votes.clear();
        self.reset_randomized_timeout();
    }

    pub(super) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id.clone());
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.leading_ticks = 0;
        let next = self.log.last_index() + 1;
        self.progress = self
            .membership
            .members()
            .into_iter()
            .filter(|p| *p != self.id)
            .map(|p| (p, Progress::new(next)))
            .collect();
        // A new leader appends a no-op of its own term at once, so that it
        // can commit everything before it (paper §8).
        self.append_own(EntryData::Noop);
        self.broadcast_append();
        self.maybe_commit();
    }

    /// Whether this server hears from a current leader (or is one): a
    /// follower that heard its leader within the minimum election timeout.
    pub(super) fn hears_leader(&self) -> bool {
        match self.role {
            Role::Leader => true,
            Role::Follower => {
                self.leader.is_some()
                    && self.election_elapsed < self.config.election_timeout_min_ticks
            }
            _ => false,
        }
    }

    pub(super) fn in_lease(&self) -> bool {
        self.config.check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.config.election_timeout_min_ticks
    }

    pub(super) fn reset_randomized_timeout(&mut self) {
        self.randomized_timeout = self.rng.gen_range(
            self.config.election_timeout_min_ticks..=self.config.election_timeout_max_ticks,
        );
    }
}
