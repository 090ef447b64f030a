//! The named choices of a run's settings: each a closed list of names,
//! read and written as those names (see the `names!` macro in the parent
//! module).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::or_list;
use crate::quote::quoted;

names! {
    /// Which system a run tests. What each can do, how it is started and
    /// what it is called on a page are the `sut` crate's (its
    /// `TargetKindExt`); a new target is a line here and a module there.
    pub enum TargetKind ("a target") {
        /// faultline's own Raft node.
        #[default]
        Faultline = "faultline" | "faultline-node",
        /// etcd.
        Etcd = "etcd",
        /// Any program that speaks Maelstrom's protocol on stdin and stdout.
        Maelstrom = "maelstrom",
        /// NATS JetStream (`nats-server`), its KV store.
        Nats = "nats",
    }
}

names! {
    /// Which network carries the nodes' traffic and takes the faults.
    pub enum NetBackend ("a network backend") {
        /// faultline's proxy on every directed link (loopback), acting on
        /// whole messages of the node's protocol.
        #[default]
        Proxy = "proxy",
        /// Each node in a network namespace of its own; faults by nftables
        /// (and tc netem where the kernel has it), acting on packets.
        Kernel = "kernel",
        /// Each node on a host of an inventory (`--hosts`); faults by an
        /// nftables table of the run's own on each host.
        Hosts = "hosts",
    }
}

names! {
    /// How a production target serves reads.
    pub enum ReadMode ("a read mode") {
        /// etcd: through the Raft log's read index; NATS: by the stream's
        /// leader. The default.
        #[default]
        Linearizable = "linearizable",
        /// etcd: from the member's local state: may be stale (a positive
        /// control).
        Serializable = "serializable",
        /// NATS: "direct get" from any replica of the stream: may be stale
        /// (a positive control).
        Direct = "direct",
    }
}

names! {
    /// What the disk layer takes to be durable after a power loss: which
    /// reading of POSIX (docs/faults.md gives the sources for each).
    pub enum DiskModel ("a disk model") {
        /// The strict reading (and the default): a file's data is durable
        /// at its fsync, a name (create, rename, unlink) only once its
        /// directory is fsynced.
        #[default]
        Posix = "posix",
        /// A journaling filesystem as ext4 (`data=ordered`) and XFS behave:
        /// any successful fsync or fdatasync also makes durable every name
        /// change made before it, anywhere on the member's filesystem.
        Journaled = "journaled",
        /// Names durable at once, only file data cached (LazyFS's model):
        /// creates, renames and unlinks survive any power loss.
        NamesDurable = "names-durable",
    }
}

names! {
    /// What the clients do.
    pub enum Workload ("a workload") {
        /// read / write / cas on registers, checked for linearizability.
        #[default]
        Register = "register",
        /// List-append transactions, checked by their dependency graph
        /// against a consistency model.
        Append = "append" | "list-append",
        /// Locks with leases: acquire, hold (writing the register the lock
        /// protects), release; checked against a mutex, and the protected
        /// register for writes by a stale holder.
        Lock = "lock",
    }
}

names! {
    /// What a list-append history is judged against.
    pub enum Consistency ("a consistency model") {
        /// Serializable, and in real-time order (what etcd and faultline's
        /// node claim). The default.
        #[default]
        StrictSerializable = "strict-serializable",
        /// Some serial order, real time aside.
        Serializable = "serializable",
        /// Serializable, and each process's transactions in their order
        /// (session guarantees without real time).
        StrongSessionSerializable = "strong-session-serializable",
    }
}

names! {
    /// How the register workload's clients choose keys.
    pub enum KeyDist ("a key distribution") {
        /// Every key equally likely.
        #[default]
        Uniform = "uniform",
        /// Zipfian (s = 1): a few hot keys.
        Zipf = "zipf" | "zipfian",
    }
}

names! {
    /// What a run is expected to show (`expect = "…"` in a campaign file):
    /// a campaign's positive controls (a known-bug variant, etcd's
    /// serializable reads) are expected to be caught.
    pub enum Expect ("an expectation") {
        /// Every history linearizable and no safety violation in the logs.
        #[default]
        Linearizable = "linearizable",
        /// Caught: a history that is not linearizable, or a safety
        /// violation in the nodes' logs.
        NotLinearizable = "not-linearizable",
        /// Caught by the log audit: a safety violation in the nodes' logs.
        Unsafe = "unsafe",
        /// Either verdict: the design promises neither (an unfenced lease
        /// lock under faults may be caught, or the run may not expose it).
        /// Reported, never unexpected.
        Either = "either",
    }
}

impl ReadMode {
    /// Whether reads may be served from a member's own state, stale (a
    /// positive control: the checker must catch it).
    pub fn may_be_stale(self) -> bool {
        self != ReadMode::Linearizable
    }

    /// What the reads are, in words, when not the default.
    pub fn words(self) -> Option<&'static str> {
        match self {
            ReadMode::Linearizable => None,
            ReadMode::Serializable => Some("serializable reads (from each member's local state)"),
            ReadMode::Direct => Some("direct reads (from any replica of the stream)"),
        }
    }
}

impl Expect {
    /// Its name, as in a campaign file.
    pub fn as_str(self) -> &'static str {
        self.name()
    }

    /// Whether this expects the run to be caught (a positive control).
    pub fn is_control(self) -> bool {
        match self {
            Expect::Linearizable | Expect::Either => false,
            Expect::NotLinearizable | Expect::Unsafe => true,
        }
    }

    /// What an unexpected outcome of this expectation is, in words.
    pub fn miss(self) -> &'static str {
        match self {
            Expect::Linearizable => "a violation where none was expected",
            Expect::NotLinearizable => "positive control not caught",
            Expect::Unsafe => "positive control not caught: no safety violation in the logs",
            Expect::Either => "never (either verdict is as expected)",
        }
    }

    /// The expectation in words, for a page.
    pub fn words(self) -> &'static str {
        match self {
            Expect::Linearizable => "linearizable",
            Expect::NotLinearizable => "caught (not linearizable)",
            Expect::Unsafe => "caught (unsafe in the logs)",
            Expect::Either => "either (may be caught: the design promises neither)",
        }
    }
}

/// The longest election timeout or heartbeat accepted, ms (five minutes).
pub const MAX_TIMEOUT_MS: u64 = 300_000;
