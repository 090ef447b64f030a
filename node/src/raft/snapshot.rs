//! Snapshots (Raft paper §7): the state machine as of one log index, which
//! replaces the log up to that index, and the follower's side of receiving
//! one in chunks (InstallSnapshot).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::id::NodeId;
use super::membership::Membership;

/// What a snapshot covers: the last entry it includes and the configuration
/// in force there (the latest configuration entry at or below `index`,
/// joint or with learners as it was).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last included index.
    pub index: u64,
    /// The term of the entry at `index`.
    pub term: u64,
    /// The configuration as of `index`.
    pub membership: Membership,
    /// The index of that configuration's entry (0: the initial one).
    pub membership_index: u64,
}

/// A snapshot: its metadata and the state machine's bytes, which the core
/// never looks inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The state machine, as the caller serialized it.
    pub data: Arc<Vec<u8>>,
}

/// A snapshot being received, chunk by chunk, from one leader.
#[derive(Debug)]
pub(super) struct Incoming {
    /// The leader and its term.
    pub leader: NodeId,
    pub term: u64,
    pub meta: SnapshotMeta,
    /// The bytes received so far (chunks arrive in order).
    pub data: Vec<u8>,
}

impl Incoming {
    /// Whether a chunk from `leader` in `term` belongs to this transfer.
    pub fn is_for(&self, leader: &str, term: u64, meta: &SnapshotMeta) -> bool {
        self.leader == leader
            && self.term == term
            && self.meta.index == meta.index
            && self.meta.term == meta.term
    }
}
