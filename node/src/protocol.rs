//! The wire protocol: length-delimited frames (tokio-util's codec, 4-byte
//! big-endian length) holding bincode-encoded messages, for both the peer
//! link and the client link. The proxy in nemesis/ reads the same framing.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use thiserror::Error;
use tokio_util::codec::LengthDelimitedCodec;

use std::collections::BTreeMap;

use crate::kv::{Applied, Proposal};
use crate::raft::{Membership, MembershipChange, Message, NodeId, RefusalKind, Role, Status};

/// The largest frame accepted on any link; a larger one closes the connection.
pub const MAX_FRAME: usize = 16 << 20;

/// The frame codec used on every link.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// A frame that could not be decoded.
#[derive(Debug, Error)]
#[error("malformed frame: {0}")]
pub struct DecodeError(String);

/// Encode a message into a frame body.
pub fn encode<T: Serialize>(value: &T) -> bytes::Bytes {
    bincode::serialize(value)
        .expect("protocol types always serialize")
        .into()
}

/// Decode a frame body.
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, DecodeError> {
    bincode::deserialize(frame).map_err(|e| {
        DecodeError(match *e {
            bincode::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                format!(
                    "the {}-byte frame ends in the middle of a message",
                    frame.len()
                )
            }
            other => {
                let text = other.to_string();
                if text.trim_end().ends_with(':') {
                    format!(
                        "{} in a {}-byte frame",
                        text.trim_end_matches([':', ' ']),
                        frame.len()
                    )
                } else {
                    text
                }
            }
        })
    })
}

/// A frame-level read error in one line that says what happened (the
/// codec's own words can be empty or only an OS error's).
pub fn describe_frame_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match e.kind() {
        std::io::ErrorKind::InvalidData if text.contains("frame size too big") => {
            format!("a frame longer than the {} MiB limit", MAX_FRAME >> 20)
        }
        _ if text.is_empty() => format!("read failed ({:?})", e.kind()),
        _ => format!("read failed: {text}"),
    }
}

/// What travels between two nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerFrame {
    /// A Raft message.
    Raft(Message),
    /// A follower hands a client request to the leader it knows.
    Forward {
        /// The follower that holds the client's connection.
        origin: NodeId,
        /// The follower's handle for the answer.
        id: u64,
        /// The request.
        proposal: Proposal,
    },
    /// A follower hands a membership change to the leader it knows.
    ForwardChange {
        /// The follower that holds the client's connection.
        origin: NodeId,
        /// The follower's handle for the answer.
        id: u64,
        /// The change.
        change: MembershipChange,
    },
    /// The leader's answer to a [`PeerFrame::Forward`].
    ForwardReply {
        /// The follower's handle.
        id: u64,
        /// The outcome.
        result: Result<Applied, ClientError>,
    },
    /// The first frame on every peer connection: who is calling, from which
    /// cluster. A node closes a connection whose first frame is not a
    /// greeting from its own cluster.
    Hello {
        /// The sender's cluster name (`--cluster-id`).
        cluster: String,
        /// The sender.
        from: NodeId,
    },
    /// The leader asks a follower whose answers say its log ends below
    /// what it acknowledged whether that is so (a late copy of an old answer
    /// looks the same).
    CheckAcknowledged {
        /// The leader.
        leader: NodeId,
        /// Its term.
        term: u64,
        /// The highest index the follower acknowledged to it.
        acknowledged: u64,
    },
    /// The follower's answer when it is so: it lost entries it acknowledged.
    LostEntries {
        /// The follower.
        follower: NodeId,
        /// The leader's term it answers in.
        term: u64,
        /// The highest index it had acknowledged.
        acknowledged: u64,
        /// Where its log ends now.
        has: u64,
    },
}

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Read a register, linearizably.
    Get {
        /// The register.
        key: String,
    },
    /// Write a register.
    Put {
        /// The register.
        key: String,
        /// The value.
        value: i64,
    },
    /// Compare-and-set a register.
    Cas {
        /// The register.
        key: String,
        /// The value it must hold.
        expected: i64,
        /// The value to store.
        new: i64,
    },
    /// The node's Raft status (answered locally, not through the log).
    Status,
    /// The latest configuration this node knows (answered locally).
    Members,
    /// Add and remove servers (through the leader; answered once the change's
    /// first configuration entry commits; the leader then carries the change
    /// through its joint and final steps).
    ChangeMembers {
        /// New servers and their peer addresses.
        add: Vec<(NodeId, String)>,
        /// Voters to remove (or learners to drop from a change in progress).
        remove: Vec<NodeId>,
    },
    /// The first request of a connection that names its cluster (a run's
    /// clients do): a node of another cluster closes the connection, as it
    /// does a peer's. Answered `Ok(None)`.
    Hello {
        /// The cluster the client belongs to.
        cluster: String,
    },
    /// A list-append transaction, through the log (answered
    /// [`ClientResponse::Txn`]).
    Txn {
        /// Its micro-operations, in order (1 to [`crate::kv::MAX_TXN_OPS`]).
        ops: Vec<crate::kv::MicroOp>,
    },
}

/// A client request with its id (answers may come back in any order).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientEnvelope {
    /// Chosen by the client, echoed in the reply.
    pub id: u64,
    /// The request.
    pub request: ClientRequest,
}

/// The node's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientReply {
    /// The request's id.
    pub id: u64,
    /// The outcome.
    pub response: ClientResponse,
}

/// The outcome of a client request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResponse {
    /// Done: the value read, or the value now stored.
    Ok(Option<i64>),
    /// A cas whose expected value did not match: certainly not applied.
    CasMismatch {
        /// What the register held.
        actual: Option<i64>,
    },
    /// The node's status.
    Status(NodeStatus),
    /// The configuration as this node knows it.
    Members(MembersInfo),
    /// The change's first configuration entry committed at this index.
    Changed {
        /// Its log index.
        index: u64,
    },
    /// The request did not complete; see [`ClientError::is_definite`].
    Error(ClientError),
    /// A transaction committed: per micro-operation, the list read, or none
    /// for an append.
    Txn(Vec<Option<Vec<i64>>>),
}

impl ClientResponse {
    /// What kind of answer this is, in words, for messages about an answer
    /// that did not fit the request.
    pub fn describe(&self) -> String {
        match self {
            ClientResponse::Ok(Some(v)) => format!("a register value ({v})"),
            ClientResponse::Ok(None) => "an empty register value".into(),
            ClientResponse::CasMismatch { .. } => "a compare-and-set mismatch".into(),
            ClientResponse::Status(_) => "a status".into(),
            ClientResponse::Members(_) => "a membership listing".into(),
            ClientResponse::Changed { index } => {
                format!("a membership change committed at {index}")
            }
            ClientResponse::Error(e) => format!("an error ({e})"),
            ClientResponse::Txn(r) => format!("a transaction's results ({} micro-ops)", r.len()),
        }
    }
}

/// The status a node reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub id: NodeId,
    /// Its role (`follower`, `precandidate`, `candidate` or `leader` in JSON).
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// The leader it knows in `term`.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: u64,
    /// Applied index.
    pub applied_index: u64,
    /// Last log index.
    pub last_log_index: u64,
    /// Voters of its configuration (the new voters while joint).
    pub voters: Vec<NodeId>,
    /// While a change is joint: the old voters.
    #[serde(default)]
    pub outgoing: Vec<NodeId>,
    /// Servers catching up before they vote.
    #[serde(default)]
    pub learners: Vec<NodeId>,
    /// Index of the latest configuration entry (0: the initial one).
    #[serde(default)]
    pub config_index: u64,
    /// Milliseconds since it last heard from `leader`, to a tick (0 on the
    /// leader itself; none without a leader). Never skipped when empty:
    /// bincode frames carry every field in order.
    #[serde(default)]
    pub leader_heard_ms: Option<u64>,
    /// On a leader: milliseconds since it became leader, to a tick.
    #[serde(default)]
    pub leading_ms: Option<u64>,
    /// On a leader: milliseconds since a majority of its voters last
    /// answered it, to a tick (a leader that hears no majority cannot commit).
    #[serde(default)]
    pub quorum_heard_ms: Option<u64>,
    /// The last index its latest snapshot covers (0: none).
    #[serde(default)]
    pub snapshot_index: u64,
    /// The term of that index.
    #[serde(default)]
    pub snapshot_term: u64,
    /// The first log index it still holds (the ones before are compacted).
    #[serde(default)]
    pub first_index: u64,
    /// Snapshots it took of its own state machine since it started.
    #[serde(default)]
    pub snapshots_taken: u64,
    /// Snapshots it installed from a leader since it started.
    #[serde(default)]
    pub snapshots_installed: u64,
}

/// A configuration as one node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersInfo {
    /// The node that answered.
    pub id: NodeId,
    /// The leader it knows.
    pub leader: Option<NodeId>,
    /// Index of the configuration entry (0: the initial configuration).
    pub config_index: u64,
    /// Whether this node knows that entry to be committed.
    pub committed: bool,
    /// Whether a change is under way (learners, or joint).
    pub changing: bool,
    /// The voters (the new ones while joint).
    pub voters: Vec<NodeId>,
    /// While joint: the old voters.
    pub outgoing: Vec<NodeId>,
    /// Servers catching up.
    pub learners: Vec<NodeId>,
    /// Voters that the change in progress will remove.
    pub removing: Vec<NodeId>,
    /// Recorded peer addresses of members added by a change.
    pub addresses: BTreeMap<NodeId, String>,
}

impl MembersInfo {
    /// Whether this view shows a change finished: committed, no transition,
    /// the added servers voting and the removed ones gone.
    pub fn shows_done(&self, added: &[String], removed: &[String]) -> bool {
        self.committed
            && !self.changing
            && added.iter().all(|id| self.voters.contains(id))
            && removed.iter().all(|id| !self.voters.contains(id))
    }

    /// The view of node `id` whose latest configuration entry is at `index`.
    pub fn new(
        id: NodeId,
        leader: Option<NodeId>,
        m: &Membership,
        index: u64,
        commit: u64,
    ) -> Self {
        MembersInfo {
            id,
            leader,
            config_index: index,
            committed: index <= commit,
            changing: m.in_transition(),
            voters: m.config.incoming.iter().cloned().collect(),
            outgoing: m.config.outgoing.iter().cloned().collect(),
            learners: m.learners.iter().cloned().collect(),
            removing: m.removing.iter().cloned().collect(),
            addresses: m.addresses.clone(),
        }
    }
}

impl NodeStatus {
    /// The report of a core's status; `tick` is the length of its tick.
    pub fn new(s: Status, tick: std::time::Duration) -> Self {
        NodeStatus {
            id: s.id,
            role: s.role,
            term: s.term,
            leader: s.leader,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            last_log_index: s.last_log_index,
            voters: s.voters,
            outgoing: s.outgoing,
            learners: s.learners,
            config_index: s.config_index,
            leader_heard_ms: s.leader_silence_ticks.map(|t| t * tick.as_millis() as u64),
            leading_ms: s.leading_ticks.map(|t| t * tick.as_millis() as u64),
            quorum_heard_ms: s.quorum_silence_ticks.map(|t| t * tick.as_millis() as u64),
            snapshot_index: s.snapshot_index,
            snapshot_term: s.snapshot_term,
            first_index: s.first_index,
            snapshots_taken: s.snapshots_taken,
            snapshots_installed: s.snapshots_installed,
        }
    }
}

/// Why a request did not complete.
///
/// Definite errors (the request certainly had no effect): `NotLeader`,
/// `NoLeader`, `BadRequest`. Every other error leaves the outcome unknown: the
/// command may have been, or may yet be, applied. A workload maps definite
/// errors to `fail` and unknown ones to `info`.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum ClientError {
    /// The node that got the forwarded request is not the leader; nothing was proposed.
    #[error("not the leader (leader hint: {leader:?}); not proposed")]
    NotLeader {
        /// Its guess.
        leader: Option<NodeId>,
    },
    /// The node knows no leader to forward to; nothing was proposed.
    #[error("no leader known; not proposed")]
    NoLeader,
    /// The request could not be understood; nothing was proposed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No answer within the request timeout; the outcome is unknown.
    #[error("timed out; the outcome is unknown")]
    Timeout,
    /// The leader lost leadership before the entry committed; unknown.
    #[error("leadership lost before commit; the outcome is unknown")]
    LeadershipLost,
    /// The node is shutting down; unknown.
    #[error("node shutting down; the outcome is unknown")]
    ShuttingDown,
    /// The leader refused a membership change (another is in progress, or
    /// it makes no sense); nothing changed.
    #[error("membership change refused: {message}")]
    ChangeRefused {
        /// What the one who asked should do next.
        kind: RefusalKind,
        /// What a person reads.
        message: String,
    },
}

impl ClientError {
    /// Whether the request certainly had no effect.
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            ClientError::NotLeader { .. }
                | ClientError::NoLeader
                | ClientError::BadRequest(_)
                | ClientError::ChangeRefused { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_without_a_leader_survives_the_wire() {
        for (heard, leading) in [(None, None), (Some(35), None), (Some(0), Some(1200))] {
            let status = ClientReply {
                id: 9,
                response: ClientResponse::Status(NodeStatus {
                    id: "n2".into(),
                    role: Role::Follower,
                    term: 3,
                    leader: heard.map(|_| "n1".into()),
                    commit_index: 4,
                    applied_index: 4,
                    last_log_index: 5,
                    voters: vec!["n1".into(), "n2".into(), "n3".into()],
                    outgoing: vec![],
                    learners: vec![],
                    config_index: 0,
                    leader_heard_ms: heard,
                    leading_ms: leading,
                    quorum_heard_ms: leading.map(|_| 40),
                    snapshot_index: 3,
                    snapshot_term: 2,
                    first_index: 2,
                    snapshots_taken: 1,
                    snapshots_installed: 0,
                }),
            };
            let back: ClientReply = decode(&encode(&status)).unwrap();
            assert_eq!(format!("{back:?}"), format!("{status:?}"));
        }
    }
}
