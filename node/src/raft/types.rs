//! The data the Raft core exchanges with the world: log entries, the hard
//! state that must survive a crash, and the messages between servers.

use serde::{Deserialize, Serialize};

pub use super::id::NodeId;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryData {
    /// The empty entry a new leader appends in its own term, so that it can
    /// commit (and learn the commit point of) everything before it.
    Noop,
    /// An opaque state-machine command; the core never looks inside.
    Command(Vec<u8>),
    /// A cluster configuration; a server uses the latest one in its log.
    Config(super::membership::Membership),
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The entry's position in the log, from 1.
    pub index: u64,
    /// What the entry carries.
    pub data: EntryData,
}

/// The state that must be on stable storage before the server answers any RPC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term the server has seen.
    pub term: u64,
    /// The candidate that received this server's vote in `term`, if any.
    pub vote: Option<NodeId>,
}

/// A message between two Raft servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: u64,
    /// The RPC.
    pub body: MessageBody,
}

/// The Raft RPCs and their replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// A candidate asks for a vote (or, with `pre_vote`, whether it would get one).
    RequestVote {
        /// Index of the candidate's last log entry.
        last_log_index: u64,
        /// Term of the candidate's last log entry.
        last_log_term: u64,
        /// A pre-vote (Raft thesis §9.6): nobody changes term or vote.
        pre_vote: bool,
    },
    /// The answer to [`MessageBody::RequestVote`].
    RequestVoteResponse {
        /// Whether the vote was granted.
        granted: bool,
        /// Whether this answers a pre-vote.
        pre_vote: bool,
    },
    /// The leader replicates entries (none for a heartbeat).
    AppendEntries {
        /// Index of the entry just before `entries`.
        prev_log_index: u64,
        /// Term of the entry at `prev_log_index`.
        prev_log_term: u64,
        /// The entries to store, in index order.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: u64,
    },
    /// The leader sends its snapshot to a follower that needs entries the
    /// leader has compacted away (Raft paper §7, Figure 13), one chunk of
    /// the state machine's bytes at a time.
    InstallSnapshot {
        /// What the snapshot covers.
        meta: super::snapshot::SnapshotMeta,
        /// Where this chunk starts in the snapshot's bytes.
        offset: u64,
        /// The chunk.
        data: Vec<u8>,
        /// Whether this is the last chunk.
        done: bool,
    },
    /// The answer to [`MessageBody::InstallSnapshot`].
    InstallSnapshotResponse {
        /// The snapshot's last included index.
        index: u64,
        /// How many of its bytes the follower holds: the offset of the next
        /// chunk it wants.
        received: u64,
        /// The follower installed it (or already held everything it covers):
        /// its log now matches the leader's up to `index`.
        done: bool,
    },
    /// The answer to [`MessageBody::AppendEntries`].
    AppendEntriesResponse {
        /// Whether the follower's log matched at `prev_log_index`.
        success: bool,
        /// On success: the last index the follower now knows to match the leader.
        match_index: u64,
        /// On rejection: the `prev_log_index` that did not match.
        reject_index: u64,
        /// On rejection: where the leader should look next (fast back-off).
        hint: Option<ConflictHint>,
    },
}

/// The follower's hint for fast log back-off (Raft paper §5.3, last paragraphs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictHint {
    /// The term of the follower's entry at the rejected index, or `None` when
    /// the follower's log is shorter than that index.
    pub term: Option<u64>,
    /// The first index the follower holds with `term`, or its last index + 1.
    pub first_index: u64,
}

impl MessageBody {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::RequestVote { pre_vote: true, .. } => "PreVote",
            MessageBody::RequestVote { .. } => "RequestVote",
            MessageBody::RequestVoteResponse { pre_vote: true, .. } => "PreVoteResponse",
            MessageBody::RequestVoteResponse { .. } => "RequestVoteResponse",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
        }
    }
}
