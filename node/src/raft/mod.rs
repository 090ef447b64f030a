//! The pure Raft core: no I/O, no clock, no threads. (About 770 lines: the
//! server's state, its inputs, its Ready and the invariants checked at
//! each Ready; the rules are in the files named below.)
//!
//! Inputs are [`Raft::tick`], [`Raft::step`] and [`Raft::propose`]; after any
//! of them the caller takes a [`Ready`] with [`Raft::take_ready`], persists its
//! hard state and log changes, sends `messages` at once and
//! `persisted_messages` only after the persist is durable, then applies
//! `committed` in order. Randomness (the election timeout) comes from a seeded
//! RNG, so a simulation that drives several cores replays exactly from a seed.
//!
//! The role logic follows the paper: [`Raft::step`] settles terms first and
//! then hands the message to `step_leader`, `step_candidate` or `step_follower`.
//!
//! Files: this one holds the server's state and its inputs and outputs;
//! `election` (campaigns and votes), `replication` (AppendEntries, commit,
//! sending) and `reconfigure` (the configuration in force) hold the rules;
//! `log`, `progress`, `quorum`, `membership`, `config`, `types` and `id`
//! the data they work on; `paper_rules` tests one sentence of the paper each.
//!
//! Over 600 lines: the server's state, its inputs (`step`, `tick`,
//! `propose`) and its outputs (`Ready`) are the core's one API; the rules
//! themselves are in the files below.

mod config;
mod election;
mod id;
mod log;
mod membership;
mod progress;
mod quorum;
mod reconfigure;
mod replication;
mod snapshot;
mod snapshotting;
mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use config::{Config, ConfigError};
pub use log::{LogWrite, RaftLog};
pub use membership::{ChangeError, Membership, MembershipChange, RefusalKind};
pub use progress::{Progress, ProgressState};
pub use quorum::{majority, Configuration, VoteResult};
pub use snapshot::{Snapshot, SnapshotMeta};
pub use types::{ConflictHint, Entry, EntryData, HardState, Message, MessageBody, NodeId};

/// A server's role. On the wire and in files it is its lowercase name
/// (`follower`, `precandidate`, `candidate`, `leader`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Running a pre-vote round; its term has not changed yet.
    PreCandidate,
    /// Campaigning in its own new term.
    Candidate,
    /// The leader of its term.
    Leader,
}

impl Role {
    /// Its lowercase name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "precandidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a proposal was refused. The proposal certainly did not enter the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// This server is not the leader; `leader` is its best guess.
    NotLeader {
        /// The leader this server last heard from in its current term.
        leader: Option<NodeId>,
    },
    /// The membership change was refused (another is in progress, or it
    /// makes no sense).
    Membership(ChangeError),
}

/// Everything the caller must do after an input.
#[derive(Debug, Default)]
pub struct Ready {
    /// The new hard state, when it changed; persist before `persisted_messages`.
    pub hard_state: Option<HardState>,
    /// Log changes to persist before `persisted_messages`.
    pub log: LogWrite,
    /// Messages that may leave at once (a leader's AppendEntries: the leader
    /// counts its own entry only once this Ready is handled).
    pub messages: Vec<Message>,
    /// Messages that may only leave after the persist above is durable: votes
    /// and AppendEntries answers promise something about stable storage.
    pub persisted_messages: Vec<Message>,
    /// A snapshot received from the leader: reset the state machine to it
    /// before applying `committed` (which follows it).
    pub restore: Option<Snapshot>,
    /// Newly committed entries to apply, in index order.
    pub committed: Vec<Entry>,
    /// What the core noticed that lies outside Raft's fault model, for the
    /// caller to report.
    pub anomalies: Vec<Anomaly>,
}

/// Something a core noticed that Raft assumes cannot happen, for the
/// caller to look into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// A follower answered a probe as if its log ended below what it had
    /// acknowledged. A late copy of an old answer looks the same, so the
    /// caller asks the follower ([`Raft::check_acknowledged`] there) and,
    /// if it confirms, tells this leader ([`Raft::follower_lost_entries`]).
    SuspectedLoss {
        /// The follower.
        follower: NodeId,
        /// The highest index it acknowledged to this leader.
        acknowledged: u64,
        /// This leader's term.
        term: u64,
    },
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.log.is_empty()
            && self.restore.is_none()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.committed.is_empty()
            && self.anomalies.is_empty()
    }
}

/// A snapshot of a server's volatile and persistent state, for status requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The server.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: u64,
    /// Whom it voted for in `term`.
    pub vote: Option<NodeId>,
    /// The leader it knows of in `term`.
    pub leader: Option<NodeId>,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Highest index handed out for applying.
    pub applied_index: u64,
    /// Index of its last log entry.
    pub last_log_index: u64,
    /// Term of its last log entry.
    pub last_log_term: u64,
    /// The voters of its configuration (the new voters while joint).
    pub voters: Vec<NodeId>,
    /// While a change is joint: the old voters, whose majority also counts.
    pub outgoing: Vec<NodeId>,
    /// Servers catching up before they become voters.
    pub learners: Vec<NodeId>,
    /// Index of the latest configuration entry (0: the initial configuration).
    pub config_index: u64,
    /// The last index its latest snapshot covers (0: none).
    pub snapshot_index: u64,
    /// The term of that index.
    pub snapshot_term: u64,
    /// The first log index it still holds.
    pub first_index: u64,
    /// Snapshots it took of its own state machine since it started.
    pub snapshots_taken: u64,
    /// Snapshots it installed from a leader since it started.
    pub snapshots_installed: u64,
    /// Ticks since it last heard from `leader` (0 on the leader itself; none
    /// without a leader).
    pub leader_silence_ticks: Option<u64>,
    /// On a leader: ticks since it became leader.
    pub leading_ticks: Option<u64>,
    /// On a leader: how many ticks ago a majority of its voters (itself
    /// included; of both configurations while joint) last answered it. A
    /// leader that cannot hear a majority cannot commit, however well the
    /// others hear it.
    pub quorum_silence_ticks: Option<u64>,
}

/// One Raft server's state machine.
pub struct Raft {
    id: NodeId,
    config: Config,
    /// The configuration before any entry in its log: the one it started
    /// with, or its snapshot's.
    initial: Membership,
    /// The index of `initial`'s entry (0 for the configuration it started with).
    initial_index: u64,
    /// The latest snapshot, taken or installed.
    snapshot: Option<Snapshot>,
    /// A snapshot to hand to the caller for storing, with the next Ready.
    snapshot_unsaved: Option<Snapshot>,
    /// A snapshot the caller must load into its state machine.
    restore: Option<Snapshot>,
    /// A snapshot being received from the leader.
    incoming: Option<snapshot::Incoming>,
    snapshots_taken: u64,
    snapshots_installed: u64,
    /// The configuration entries in the log, in index order.
    conf_entries: Vec<(u64, Membership)>,
    /// The latest configuration in the log, committed or not (else `initial`).
    membership: Membership,
    /// Persistent: latest term seen, vote in that term.
    hard: HardState,
    hard_dirty: bool,
    log: RaftLog,
    /// Highest log index known to be on this server's disk. A leader counts
    /// its own copy of an entry towards a majority only up to here.
    durable: u64,
    /// Highest index known committed. Invariant: `applied <= commit <= log.last_index()`.
    commit: u64,
    /// Highest index handed to the caller in `Ready::committed`.
    applied: u64,
    role: Role,
    leader: Option<NodeId>,
    /// Ticks since the last reset: of the election timer (follower,
    /// candidate) or of the check-quorum round (leader).
    election_elapsed: u64,
    /// Ticks since this server became leader (while it leads).
    leading_ticks: u64,
    /// Ticks since the leader's last heartbeat.
    heartbeat_elapsed: u64,
    /// This term's election timeout, drawn from the configured range.
    randomized_timeout: u64,
    /// Answers in the current (pre-)election.
    votes: HashMap<NodeId, bool>,
    /// Leader only: one entry per other voter.
    progress: BTreeMap<NodeId, Progress>,
    rng: ChaCha8Rng,
    messages: Vec<Message>,
    persisted_messages: Vec<Message>,
    /// Proposals were appended since the last Ready: replicate them then, so
    /// a batch of proposals goes out as one AppendEntries per follower.
    replicate_pending: bool,
    /// Noticed since the last Ready.
    anomalies: Vec<Anomaly>,
    /// After its disk lost durable entries up to this index (0: none): the
    /// server neither votes nor campaigns until its log, matching a
    /// leader's, reaches it again. Its lost entries may have counted towards
    /// a majority; voting without them could elect a leader that lacks a
    /// committed entry.
    recovering_to: u64,
    /// The term and commit index at the last Ready: neither may go back
    /// ([`Raft::assert_invariants`]).
    last_ready: (u64, u64),
}

impl Raft {
    /// A server restored from its stable state (`hard` and `entries` as last
    /// persisted; both empty for a new server). `conf` is the configuration
    /// to use until the log holds one: the initial voters, or empty for a
    /// server that joins an existing cluster (it waits to be added). Panics
    /// if `config` does not validate: callers validate user input first.
    pub fn new(
        id: NodeId,
        config: Config,
        conf: Configuration,
        hard: HardState,
        entries: Vec<Entry>,
        seed: u64,
    ) -> Self {
        Self::restore(id, config, conf, hard, None, entries, seed)
    }

    /// Like [`Raft::new`], for a server that also stored a snapshot:
    /// `entries` are the stored entries after it (any at or below its index
    /// are skipped). The caller loads the snapshot into its state machine;
    /// the first committed entry handed out follows it.
    pub fn restore(
        id: NodeId,
        config: Config,
        conf: Configuration,
        hard: HardState,
        snapshot: Option<Snapshot>,
        mut entries: Vec<Entry>,
        seed: u64,
    ) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid Raft config: {e}");
        }
        let (initial, initial_index, offset, offset_term) = match &snapshot {
            Some(s) => {
                entries.retain(|e| e.index > s.meta.index);
                (
                    s.meta.membership.clone(),
                    s.meta.membership_index,
                    s.meta.index,
                    s.meta.term,
                )
            }
            None => (Membership::from_config(conf), 0, 0, 0),
        };
        let mut raft = Raft {
            id,
            config,
            membership: initial.clone(),
            initial,
            initial_index,
            snapshot,
            snapshot_unsaved: None,
            restore: None,
            incoming: None,
            snapshots_taken: 0,
            snapshots_installed: 0,
            conf_entries: Vec::new(),
            hard,
            hard_dirty: false,
            log: RaftLog::restore_after(offset, offset_term, entries),
            durable: 0,
            commit: offset,
            applied: offset,
            role: Role::Follower,
            leader: None,
            election_elapsed: 0,
            leading_ticks: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: 0,
            votes: HashMap::new(),
            progress: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            messages: Vec::new(),
            persisted_messages: Vec::new(),
            replicate_pending: false,
            anomalies: Vec::new(),
            recovering_to: 0,
            last_ready: (0, 0),
        };
        raft.conf_entries = raft
            .log
            .range(raft.log.first_index(), raft.log.last_index())
            .into_iter()
            .filter_map(|e| match e.data {
                EntryData::Config(m) => Some((e.index, m)),
                _ => None,
            })
            .collect();
        raft.durable = raft.log.last_index();
        raft.refresh_membership();
        raft.reset_randomized_timeout();
        raft
    }

    /// This server's disk lost entries up to `to` that it had made durable
    /// (and may have acknowledged): it neither votes nor campaigns until it
    /// holds a leader's log up to `to` again.
    pub fn recover_lost_entries(&mut self, to: u64) {
        self.recovering_to = self.recovering_to.max(to);
    }

    /// Whether this server is still catching up after losing durable entries.
    pub fn recovering(&self) -> bool {
        self.recovering_to > 0
    }

    // ---- accessors ----------------------------------------------------

    /// This server's id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }
    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Current term.
    pub fn term(&self) -> u64 {
        self.hard.term
    }
    /// The leader known in the current term.
    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }
    /// Commit index.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }
    /// The log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// The hard state (term and vote).
    pub fn hard_state(&self) -> &HardState {
        &self.hard
    }
    /// The voting configuration.
    pub fn configuration(&self) -> &Configuration {
        &self.membership.config
    }
    /// The latest configuration in the log, with learners and addresses.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    /// Index of the latest configuration entry (0 for the initial one).
    pub fn membership_index(&self) -> u64 {
        self.conf_entries
            .last()
            .map_or(self.initial_index, |(i, _)| *i)
    }

    /// Highest index handed out for applying.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// The latest snapshot, taken or installed.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
    /// The leader's view of a follower.
    pub fn progress(&self, id: &str) -> Option<&Progress> {
        self.progress.get(id)
    }

    /// A snapshot for status requests.
    pub fn status(&self) -> Status {
        Status {
            id: self.id.clone(),
            role: self.role,
            term: self.hard.term,
            vote: self.hard.vote.clone(),
            leader: self.leader.clone(),
            commit_index: self.commit,
            applied_index: self.applied,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            voters: self.membership.config.incoming.iter().cloned().collect(),
            outgoing: self.membership.config.outgoing.iter().cloned().collect(),
            learners: self.membership.learners.iter().cloned().collect(),
            config_index: self.membership_index(),
            snapshot_index: self.snapshot.as_ref().map_or(0, |s| s.meta.index),
            snapshot_term: self.snapshot.as_ref().map_or(0, |s| s.meta.term),
            first_index: self.log.first_index(),
            snapshots_taken: self.snapshots_taken,
            snapshots_installed: self.snapshots_installed,
            // A follower resets its election clock whenever its leader's
            // AppendEntries arrive, so that clock is the leader's silence.
            leader_silence_ticks: match (&self.role, &self.leader) {
                (Role::Leader, _) => Some(0),
                (_, Some(_)) => Some(self.election_elapsed),
                (_, None) => None,
            },
            leading_ticks: (self.role == Role::Leader).then_some(self.leading_ticks),
            quorum_silence_ticks: (self.role == Role::Leader).then(|| self.quorum_silence()),
        }
    }

    /// On a leader: ticks since a majority of each of its configurations
    /// last answered it (its own answer is always fresh).
    fn quorum_silence(&self) -> u64 {
        let now = self.leading_ticks;
        let silence_of = |voters: &BTreeSet<NodeId>| -> u64 {
            if voters.is_empty() {
                return 0;
            }
            let mut s: Vec<u64> = voters
                .iter()
                .map(|v| {
                    if *v == self.id {
                        0
                    } else {
                        self.progress
                            .get(v)
                            .map_or(now, |p| now.saturating_sub(p.last_heard))
                    }
                })
                .collect();
            s.sort_unstable();
            s[quorum::majority(s.len()) - 1]
        };
        silence_of(&self.membership.config.incoming)
            .max(silence_of(&self.membership.config.outgoing))
    }

    // ---- inputs -------------------------------------------------------

    /// Advance logical time by one tick.
    pub fn tick(&mut self) {
        self.election_elapsed += 1;
        match self.role {
            Role::Leader => {
                self.heartbeat_elapsed += 1;
                self.leading_ticks += 1;
                if self.election_elapsed >= self.config.election_timeout_min_ticks {
                    self.election_elapsed = 0;
                    if self.config.check_quorum && !self.quorum_active() {
                        self.become_follower(self.hard.term, None);
                        return;
                    }
                }
                if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
                    self.heartbeat_elapsed = 0;
                    self.broadcast_heartbeat();
                }
            }
            _ => {
                if self.election_elapsed >= self.randomized_timeout
                    && self.membership.config.contains(&self.id)
                    && !self.recovering()
                {
                    self.start_election();
                }
            }
        }
    }

    /// Append a command to the log if this server is the leader. Returns the
    /// entry's (index, term); the command is applied once `Ready::committed`
    /// hands it out.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<(u64, u64), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader.clone(),
            });
        }
        let index = self.append_own(EntryData::Command(command));
        self.replicate_pending = true;
        self.maybe_commit();
        Ok((index, self.hard.term))
    }

    /// Start a membership change if this server is the leader; returns the
    /// index of its first configuration entry. The leader proposes the later
    /// steps (joint, then final) by itself as each one commits.
    pub fn propose_membership(&mut self, change: &MembershipChange) -> Result<u64, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader.clone(),
            });
        }
        let busy = |s: &str| Err(ProposeError::Membership(ChangeError::busy(s)));
        // A change must not race one that an earlier leader left
        // uncommitted: first commit an entry of our own term (the no-op).
        if self.log.term(self.commit) != Some(self.hard.term) {
            return busy(
                "the new leader has not committed an entry of its term yet; retry shortly",
            );
        }
        if self.membership_index() > self.commit {
            return busy(
                "the previous configuration entry is not committed yet; one change at a time",
            );
        }
        let next = self
            .membership
            .begin(change, self.config.unsafe_one_step_membership)
            .map_err(ProposeError::Membership)?;
        let index = self.append_own(EntryData::Config(next));
        self.replicate_pending = true;
        self.maybe_commit();
        Ok(index)
    }

    /// Handle a message from another server.
    pub fn step(&mut self, msg: Message) {
        if msg.to != self.id {
            return;
        }
        let term = self.hard.term;
        if msg.term > term {
            match &msg.body {
                MessageBody::RequestVote { pre_vote, .. } => {
                    if self.in_lease() || (!pre_vote && self.hears_leader()) {
                        // While we hear from a live leader, a candidate is
                        // ignored: it cannot be needed yet, and it may be a
                        // removed server that would disrupt the cluster
                        // (paper §6, thesis §4.2.3).
                        return;
                    }
                    if !pre_vote {
                        self.become_follower(msg.term, None);
                    }
                }
                // A granted pre-vote answer carries the term we would run in.
                MessageBody::RequestVoteResponse {
                    pre_vote: true,
                    granted: true,
                } => {}
                MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. } => {
                    self.become_follower(msg.term, Some(msg.from.clone()));
                }
                _ => self.become_follower(msg.term, None),
            }
        } else if msg.term < term {
            // Stale sender: answer requests with our term so it steps down.
            match msg.body {
                MessageBody::AppendEntries { prev_log_index, .. } => {
                    self.send(
                        msg.from,
                        MessageBody::AppendEntriesResponse {
                            success: false,
                            match_index: 0,
                            reject_index: prev_log_index,
                            hint: None,
                        },
                    );
                }
                MessageBody::RequestVote { pre_vote, .. } => {
                    self.send(
                        msg.from,
                        MessageBody::RequestVoteResponse {
                            granted: false,
                            pre_vote,
                        },
                    );
                }
                MessageBody::InstallSnapshot { meta, .. } => {
                    self.send(
                        msg.from,
                        MessageBody::InstallSnapshotResponse {
                            index: meta.index,
                            received: 0,
                            done: false,
                        },
                    );
                }
                _ => {}
            }
            return;
        }

        if let MessageBody::RequestVote {
            last_log_index,
            last_log_term,
            pre_vote,
        } = msg.body
        {
            self.handle_request_vote(msg.from, msg.term, last_log_index, last_log_term, pre_vote);
            return;
        }
        match self.role {
            Role::Leader => self.step_leader(msg),
            Role::Candidate | Role::PreCandidate => self.step_candidate(msg),
            Role::Follower => self.step_follower(msg),
        }
    }

    /// Hand over everything the caller must do; afterwards the core counts
    /// the log and hard state as persisted and the committed entries as applied.
    pub fn take_ready(&mut self) -> Ready {
        // The caller persists this Ready before the next input, so the whole
        // log counts as durable already (a lone leader commits at once).
        let last = self.log.last_index();
        if self.durable != last {
            self.durable = last;
            if self.role == Role::Leader {
                self.maybe_commit();
            }
        }
        self.take_ready_async()
    }

    /// Like [`Raft::take_ready`], for a caller that persists in the
    /// background and goes on handing inputs meanwhile: the caller writes
    /// each Ready's `hard_state` and `log` in order, sends its
    /// `persisted_messages` only once that write is durable, and then reports
    /// it with [`Raft::on_persisted`]. Until then a leader does not count its
    /// own copy of those entries towards a majority. `committed` entries may
    /// be applied at once: a majority holds them on disk.
    pub fn take_ready_async(&mut self) -> Ready {
        self.advance_membership();
        if std::mem::take(&mut self.replicate_pending) && self.role == Role::Leader {
            self.broadcast_append();
        }
        let hard_state = std::mem::take(&mut self.hard_dirty).then(|| self.hard.clone());
        let mut log = self.log.take_unstable();
        log.snapshot = self.snapshot_unsaved.take();
        let committed = self.log.range(self.applied + 1, self.commit);
        self.applied = self.commit;
        self.assert_invariants();
        self.last_ready = (self.hard.term, self.commit);
        Ready {
            hard_state,
            log,
            restore: self.restore.take(),
            messages: std::mem::take(&mut self.messages),
            persisted_messages: std::mem::take(&mut self.persisted_messages),
            committed,
            anomalies: std::mem::take(&mut self.anomalies),
        }
    }

    /// Stop at once, naming the invariant, when the server's indexes
    /// contradict each other (TigerBeetle's rule: assert where state
    /// changes, in the real program and not only in the simulator). The
    /// node's panic hook logs the message as a `faultline::panic` line,
    /// which a run's log audit reports as a safety finding. Checked at
    /// every Ready: a few comparisons.
    fn assert_invariants(&self) {
        let (applied, commit, last) = (self.applied, self.commit, self.log.last_index());
        let (term_before, commit_before) = self.last_ready;
        assert!(
            self.hard.term >= term_before,
            "{}: invariant the term never decreases broken (term {} after {term_before})",
            self.id,
            self.hard.term
        );
        assert!(
            commit >= commit_before,
            "{}: invariant the commit index never goes back broken (commit {commit} after {commit_before})",
            self.id
        );
        assert!(
            applied <= commit && commit <= last,
            "{}: invariant applied <= commit <= last log index broken (applied {applied}, commit {commit}, last index {last})",
            self.id
        );
        // The log starts at or before the snapshot's end (trailing entries
        // may stay behind it), and a snapshot covers only committed entries.
        let offset = self.log.offset();
        if let Some(snap) = self.snapshot.as_ref().map(|s| s.meta.index) {
            assert!(
                offset <= snap && snap <= commit,
                "{}: invariant log offset <= snapshot index <= commit broken (offset {offset}, snapshot index {snap}, commit {commit})",
                self.id
            );
        }
        assert!(
            self.durable <= last,
            "{}: invariant durable <= last log index broken (durable {}, last index {last})",
            self.id,
            self.durable
        );
    }

    /// Asked by the leader of `term`, which holds our acknowledgement of
    /// entries up to `acknowledged`: where our durable log ends, if it ends
    /// below that — entries we acknowledged are gone. In the same term a log
    /// never loses entries it acknowledged to its leader, so the answer is
    /// certain (an old question in a newer term gets none).
    pub fn check_acknowledged(&self, term: u64, acknowledged: u64) -> Option<u64> {
        let has = self.durable.min(self.log.last_index());
        (term == self.hard.term && self.role != Role::Leader && has < acknowledged).then_some(has)
    }

    /// `follower` confirmed (see [`Raft::check_acknowledged`]) that its log
    /// ends at `has`, below what it acknowledged in `term`: replicate to it
    /// from there. Ignored unless this server still leads `term`.
    pub fn follower_lost_entries(&mut self, follower: &str, term: u64, has: u64) {
        if term != self.hard.term || self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(follower) else {
            return;
        };
        if pr.reset_to(has) {
            self.send_append(follower.to_string());
        }
    }

    /// A write handed out by [`Raft::take_ready_async`] is durable; its last
    /// entry was (`index`, `term`). Ignored when the log has changed at that
    /// index since (a truncation cut it off): then that entry is not ours.
    pub fn on_persisted(&mut self, index: u64, term: u64) {
        // At or below the log's offset a snapshot covers the index: those
        // entries are committed, and so are the same everywhere.
        let ours = index <= self.log.offset() || self.log.term(index) == Some(term);
        if index > self.durable && ours {
            self.durable = index;
            if self.role == Role::Leader {
                self.maybe_commit();
            }
        }
    }
}

#[cfg(test)]
mod paper_rules;
