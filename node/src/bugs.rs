//! Known-bug variants of the node: small, clearly fenced deviations from
//! correct Raft, switched on with `faultline-node --unsafe-bug NAME`, so
//! that faultline can show it catches the classic mistakes Jepsen found in
//! real Raft systems. None is on unless asked for; every place that deviates
//! names its variant in a comment starting with "UNSAFE".

use std::fmt;
use std::str::FromStr;

/// One deliberate bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnsafeBug {
    /// Every node answers reads from its own state machine at once, without
    /// going through the log or confirming it still leads. A partitioned old
    /// leader, or a follower that has not applied the latest writes yet,
    /// returns values that were already overwritten: stale reads.
    StaleRead,
    /// `votedFor` is not persisted (the term is). A node that crashes after
    /// voting and restarts in the same term can vote again, for another
    /// candidate: two leaders in one term, whose logs diverge at the same
    /// index and term, and committed writes can be lost.
    ForgetVote,
    /// A leader commits an entry of an earlier term as soon as a majority
    /// stores it, the bug the Raft paper's Figure 8 warns against: a later
    /// leader can overwrite such an "committed" entry, losing an
    /// acknowledged write.
    CommitOldTerm,
    /// Nothing is persisted: the log, the term and the vote live in memory.
    /// A node restarted after a crash comes back empty; when a majority
    /// restarts, acknowledged writes are gone (lost writes, reads of null).
    VolatileLog,
    /// A follower accepts AppendEntries without checking that its entry at
    /// prevLogIndex has prevLogTerm. Stale entries from an old leader stay
    /// in its log under newer ones, its state machine applies them, and once
    /// it leads it serves and replicates them: divergent state.
    SkipPrevCheck,
    /// The leader acknowledges a write as soon as it is in its own log,
    /// before a majority stores it. A leader cut off from the majority
    /// acknowledges writes that a new leader then overwrites: lost writes.
    AckBeforeCommit,
    /// A membership change is a single configuration entry: the new voters
    /// take over at once, with no learner catch-up and no joint
    /// configuration. When the change adds or removes more than one server,
    /// a majority of the old configuration and a majority of the new one
    /// need not overlap: a leader cut off with the new servers commits on
    /// its own while the old servers elect another leader (split brain).
    OneStepMembership,
    /// A follower that installs a snapshot from its leader updates its log
    /// and its commit and applied indexes, but keeps its own state machine
    /// instead of loading the snapshot's: every write the snapshot covered
    /// and the follower had not applied yet is missing from it for good.
    /// Nothing shows while it follows; once it leads, it serves reads from
    /// that state: stale values, lost writes.
    InstallKeepsState,
    /// The storage writes each batch of entries with `write` and counts it
    /// durable at once: the follower answers AppendEntries and the leader
    /// counts itself toward the commit before the entries are on disk; it
    /// fsyncs the log at most once a second (a timer, as systems that
    /// batch their fsyncs do), and its durable mark follows those fsyncs
    /// only. A power loss on a majority (`lose-unsynced`) drops entries a
    /// majority acknowledged: lost writes.
    AckBeforeFsync,
    /// An fsync of the log, of the term/vote record or of the durable mark
    /// that fails (EIO) is logged and the node carries on as if it had
    /// succeeded (the "fsyncgate" mistake): the writes it was to make
    /// durable are lost at the next power loss, after the node
    /// acknowledged them.
    IgnoreFsyncError,
    /// Compaction and snapshots replace the log and the snapshot by
    /// renaming a new file over the old one without fsyncing the directory:
    /// after a power loss the old names come back, and the entries
    /// appended to the new log since (fsynced, acknowledged) are gone.
    NoDirFsync,
}

/// Every variant, in the order the docs list them.
pub const ALL: [UnsafeBug; 11] = [
    UnsafeBug::StaleRead,
    UnsafeBug::ForgetVote,
    UnsafeBug::CommitOldTerm,
    UnsafeBug::VolatileLog,
    UnsafeBug::SkipPrevCheck,
    UnsafeBug::AckBeforeCommit,
    UnsafeBug::OneStepMembership,
    UnsafeBug::InstallKeepsState,
    UnsafeBug::AckBeforeFsync,
    UnsafeBug::IgnoreFsyncError,
    UnsafeBug::NoDirFsync,
];

impl UnsafeBug {
    /// The variant's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            UnsafeBug::StaleRead => "stale-read",
            UnsafeBug::ForgetVote => "forget-vote",
            UnsafeBug::CommitOldTerm => "commit-old-term",
            UnsafeBug::VolatileLog => "volatile-log",
            UnsafeBug::SkipPrevCheck => "skip-prev-check",
            UnsafeBug::AckBeforeCommit => "ack-before-commit",
            UnsafeBug::OneStepMembership => "one-step-membership",
            UnsafeBug::InstallKeepsState => "install-keeps-state",
            UnsafeBug::AckBeforeFsync => "ack-before-fsync",
            UnsafeBug::IgnoreFsyncError => "ignore-fsync-error",
            UnsafeBug::NoDirFsync => "no-dir-fsync",
        }
    }
}

impl fmt::Display for UnsafeBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for UnsafeBug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            format!(
                "unknown bug '{s}' (known: {})",
                ALL.iter().map(|b| b.name()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}
