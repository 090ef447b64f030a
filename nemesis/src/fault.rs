//! Fault kinds: what a fault does when it starts, and how it heals, and
//! how a `--nemesis` list is parsed. `docs/faults.md` describes every kind
//! for users (a test keeps it in step with [`KINDS`]; every name comes
//! from one table, which [`Kind::name`] reads). The kinds, their
//! parameters and their validation are here, over 600 lines because each
//! kind's fields, class and checks read best beside each other; their
//! words (printing and parsing) are in `words.rs`, the tests in `tests.rs`.

use serde::{Deserialize, Serialize};

/// A fault kind as `--nemesis` names it (a kind with a fixed target, such
/// as `pause-leader`, is a kind of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `partition-node`.
    PartitionNode,
    /// `partition-leader`.
    PartitionLeader,
    /// `partition-halves`.
    PartitionHalves,
    /// `partition-bridge`.
    PartitionBridge,
    /// `partition-ring`.
    PartitionRing,
    /// `one-way-in`.
    OneWayIn,
    /// `one-way-out`.
    OneWayOut,
    /// `lag`.
    Lag,
    /// `loss`.
    Loss,
    /// `delay`.
    Delay,
    /// `duplicate`.
    Duplicate,
    /// `reorder`.
    Reorder,
    /// `pause`.
    Pause,
    /// `pause-leader`.
    PauseLeader,
    /// `pause-minority`.
    PauseMinority,
    /// `crash`.
    Crash,
    /// `crash-leader`.
    CrashLeader,
    /// `crash-minority`.
    CrashMinority,
    /// `crash-all`.
    CrashAll,
    /// `restart`.
    Restart,
    /// `membership`.
    Membership,
    /// `membership-split`.
    MembershipSplit,
    /// `figure-8`.
    Figure8,
    /// `lose-unsynced`.
    LoseUnsynced,
    /// `torn-write`.
    TornWrite,
    /// `corrupt`.
    Corrupt,
    /// `disk-full`.
    DiskFull,
    /// `fsync-error`.
    FsyncError,
    /// `slow-disk`.
    SlowDisk,
}

/// The one table of fault names: [`KINDS`], parsing and printing all read
/// it (in [`Kind`]'s order; aliases: `partition` for `partition-halves`,
/// `kill` for `crash`).
const NAMES: [(Kind, &str); 29] = [
    (Kind::PartitionNode, "partition-node"),
    (Kind::PartitionLeader, "partition-leader"),
    (Kind::PartitionHalves, "partition-halves"),
    (Kind::PartitionBridge, "partition-bridge"),
    (Kind::PartitionRing, "partition-ring"),
    (Kind::OneWayIn, "one-way-in"),
    (Kind::OneWayOut, "one-way-out"),
    (Kind::Lag, "lag"),
    (Kind::Loss, "loss"),
    (Kind::Delay, "delay"),
    (Kind::Duplicate, "duplicate"),
    (Kind::Reorder, "reorder"),
    (Kind::Pause, "pause"),
    (Kind::PauseLeader, "pause-leader"),
    (Kind::PauseMinority, "pause-minority"),
    (Kind::Crash, "crash"),
    (Kind::CrashLeader, "crash-leader"),
    (Kind::CrashMinority, "crash-minority"),
    (Kind::CrashAll, "crash-all"),
    (Kind::Restart, "restart"),
    (Kind::Membership, "membership"),
    (Kind::MembershipSplit, "membership-split"),
    (Kind::Figure8, "figure-8"),
    (Kind::LoseUnsynced, "lose-unsynced"),
    (Kind::TornWrite, "torn-write"),
    (Kind::Corrupt, "corrupt"),
    (Kind::DiskFull, "disk-full"),
    (Kind::FsyncError, "fsync-error"),
    (Kind::SlowDisk, "slow-disk"),
];

/// Every fault kind's name, as `--nemesis` takes it (from [`NAMES`]).
pub const KINDS: [&str; NAMES.len()] = {
    let mut out = [""; NAMES.len()];
    let mut i = 0;
    while i < NAMES.len() {
        out[i] = NAMES[i].1;
        i += 1;
    }
    out
};

impl Kind {
    /// Its name.
    pub fn name(self) -> &'static str {
        NAMES[self as usize].1
    }

    /// The kind a name (or alias) stands for.
    pub fn from_name(name: &str) -> Option<Kind> {
        match name {
            "partition" => Some(Kind::PartitionHalves),
            "kill" => Some(Kind::Crash),
            _ => NAMES.iter().find(|(_, n)| *n == name).map(|(k, _)| *k),
        }
    }
}

/// The longest a `lag` fault's heal waits for the leader to compact past
/// the lagging follower, ms.
pub const LAG_WAIT_MS: u64 = 15_000;

/// A family of faults: made the same way, recorded under one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Links cut (partitions, one-way cuts, Figure 8's shaped links).
    Partition,
    /// Messages dropped.
    Loss,
    /// Messages delayed.
    Delay,
    /// Messages delivered twice.
    Duplicate,
    /// Messages held back.
    Reorder,
    /// Processes stopped (SIGSTOP).
    Pause,
    /// Processes killed (once, or in a loop).
    Crash,
    /// Membership changes.
    Membership,
    /// What a member's disk keeps, returns or takes.
    Disk,
    /// Several faults at once.
    Combined,
}

impl Family {
    /// Its name (`partition`, `loss`, ...), as `schedule.json` records it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Partition => "partition",
            Family::Loss => "loss",
            Family::Delay => "delay",
            Family::Duplicate => "duplicate",
            Family::Reorder => "reorder",
            Family::Pause => "pause",
            Family::Crash => "crash",
            Family::Membership => "membership",
            Family::Disk => "disk",
            Family::Combined => "combined",
        }
    }
}

/// Which nodes a fault hits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Every node (every link).
    All,
    /// The leader at the moment the fault starts.
    Leader,
    /// One node chosen at random (from the run's seed).
    #[default]
    RandomNode,
    /// A random minority (at most (n-1)/2 nodes).
    Minority,
    /// A random majority (n/2 + 1 nodes).
    Majority,
    /// One follower chosen at random (from the run's seed) when the fault
    /// starts.
    Follower,
    /// A named node.
    Node(String),
}

/// A fault kind with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// Isolate one random node.
    PartitionNode,
    /// Isolate the leader.
    PartitionLeader,
    /// Random majority/minority halves.
    PartitionHalves,
    /// Two halves and a bridge node that sees both.
    PartitionBridge {
        /// The bridge (a random node unless named or the leader).
        #[serde(default)]
        bridge: Target,
    },
    /// Each node sees only its ring neighbours.
    PartitionRing,
    /// The leader can send but not receive.
    OneWayIn,
    /// The leader can receive but not send.
    OneWayOut,
    /// Hold a follower apart (cut off both ways) until the leader has
    /// compacted its log past the follower's last entry, so that the heal
    /// forces an InstallSnapshot (Raft §7). The heal waits for that (up to
    /// [`LAG_WAIT_MS`]) and records whether it came.
    Lag {
        /// Whom: a named node, or a random follower.
        target: Target,
    },
    /// Message loss.
    Loss {
        /// Probability.
        p: f64,
        /// Whose links.
        target: Target,
    },
    /// Message delay.
    Delay {
        /// Base delay, ms.
        ms: u64,
        /// Extra random delay up to this, ms.
        jitter_ms: u64,
        /// Whose links.
        target: Target,
    },
    /// Message duplication.
    Duplicate {
        /// Probability.
        p: f64,
        /// Whose links.
        target: Target,
    },
    /// Message reordering.
    Reorder {
        /// Probability of holding a message back.
        p: f64,
        /// Whose links.
        target: Target,
    },
    /// SIGSTOP, then SIGCONT at heal.
    Pause {
        /// Whom.
        target: Target,
    },
    /// SIGKILL, then restart on the same data at heal.
    Crash {
        /// Whom.
        target: Target,
    },
    /// A crash loop: SIGKILL and restart at once, again every `every_ms`
    /// until heal (each restart on the same data).
    Restart {
        /// Time from one kill to the next, ms.
        every_ms: u64,
        /// Whom (resolved once, when the fault starts).
        target: Target,
    },
    /// Remove a random voter, then add a fresh node at heal.
    Membership,
    /// Isolate the leader with two fresh nodes and ask it to add them.
    MembershipSplit,
    /// The Raft paper's Figure 8, played step by step on five nodes:
    /// 1. the leader L and one follower F are cut off together; L's clients
    ///    leave a tail of uncommitted entries on both;
    /// 2. the other three elect one of them, W, over links that carry only
    ///    votes: W's first entry reaches nobody;
    /// 3. L, F and one more node P: L or F (V) is elected; the links to P
    ///    pass V's old entries but not yet those of V's own term; as soon as
    ///    V's commit index moves, P is cut off. If it has not moved 5 s after
    ///    V tried to send P an entry of its own term, those pass too (and P
    ///    is cut once V commits with them);
    /// 4. W, P and the fifth node meet again (V and F cut off).
    ///
    /// A correct leader in step 3 commits only once P holds its own new entry,
    /// so W cannot win step 4. A leader that counts replicas of old entries
    /// (`commit-old-term`) commits L's old entry as soon as P has it; W then
    /// wins with P's vote and overwrites it, and at the heal V and F are asked
    /// to overwrite an entry they applied as committed (and P in step 4, if
    /// V's next heartbeat told it of the commit before the cut). The links'
    /// message filters, not delays, decide what reaches whom, so each step
    /// happens whatever the machine's speed.
    Figure8,
    /// Kill the member (SIGKILL) and drop every write and name change its
    /// disk had not made durable (a power loss); restart it at heal.
    LoseUnsynced {
        /// Whom.
        target: Target,
    },
    /// As [`Fault::LoseUnsynced`], but one file with pending writes keeps a
    /// seeded part of them (a power loss in the middle of writing it back).
    TornWrite {
        /// Whom.
        target: Target,
    },
    /// Kill the member, damage one of its files chosen by the seed (one
    /// bit flipped, or the tail cut off), restart it at heal.
    Corrupt {
        /// Cut the tail off (else flip a bit).
        truncate: bool,
        /// Whom.
        target: Target,
    },
    /// Writes fail with ENOSPC until heal; members that stopped are
    /// restarted at heal.
    DiskFull {
        /// Whom.
        target: Target,
    },
    /// fsync fails with EIO until heal (and the un-fsynced writes are
    /// dropped for good); members that stopped are restarted at heal.
    FsyncError {
        /// Whom.
        target: Target,
    },
    /// Every fsync takes `ms` longer until heal.
    SlowDisk {
        /// Extra time per fsync, ms.
        ms: u64,
        /// Whom.
        target: Target,
    },
    /// Several faults at once, started one after another (`A+B`) or all at
    /// the fault's start (`A&B`), and healed together.
    Combined {
        /// The parts, in starting order.
        parts: Vec<Fault>,
        /// Start every part at once instead of one slice apart.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        together: bool,
    },
}

/// What a message fault does to each message on its links.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Drop with this probability.
    Loss(f64),
    /// Delay by `ms`, plus up to `jitter_ms` more.
    Delay {
        /// Base delay, ms.
        ms: u64,
        /// Extra random delay up to this, ms.
        jitter_ms: u64,
    },
    /// Deliver twice with this probability.
    Duplicate(f64),
    /// Hold back with this probability.
    Reorder(f64),
}

/// A shape of links cut.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape<'a> {
    /// One node cut off from all: the leader, or a random node.
    Isolate {
        /// The leader (else a random node).
        leader: bool,
    },
    /// Random majority and minority halves.
    Halves,
    /// Two halves and a bridge node that sees both.
    Bridge(&'a Target),
    /// Each node sees only its ring neighbours.
    Ring,
    /// The leader cut one way.
    OneWay {
        /// It can send but not receive (else receive but not send).
        inbound: bool,
    },
    /// A follower held apart until it needs a snapshot.
    Lag(&'a Target),
}

/// What a process fault does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Proc<'a> {
    /// SIGSTOP, then SIGCONT at heal.
    Pause(&'a Target),
    /// SIGKILL, then a restart at heal.
    Crash(&'a Target),
    /// A crash loop until heal.
    Restart {
        /// Time from one kill to the next, ms.
        every_ms: u64,
        /// Whom.
        target: &'a Target,
    },
}

/// What a disk fault does (through each target member's disk layer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DiskOp {
    /// SIGKILL and a power loss; restart at heal.
    LoseUnsynced,
    /// SIGKILL and a torn power loss; restart at heal.
    Torn,
    /// SIGKILL and one file damaged (`truncate`: its tail cut, else a bit
    /// flipped); restart at heal.
    Corrupt {
        /// Cut the tail.
        truncate: bool,
    },
    /// ENOSPC on writes.
    Full,
    /// EIO on fsync.
    FsyncError,
    /// Slower fsyncs, by this many ms.
    Slow(u64),
}

/// What a fault is, by what makes it. [`Fault::class`] is the one match
/// that places every kind; the code that makes, heals, refuses or counts
/// faults matches on this (every arm spelled out), so a new kind is placed
/// once, and every maker then has to decide about it if its class is new.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Class<'a> {
    /// Links cut in a shape.
    Partition(Shape<'a>),
    /// The paper's Figure 8, played by message filters.
    Figure8,
    /// A rule on every message of the links that touch the target.
    Message(Rule, &'a Target),
    /// Signals to processes.
    Process(Proc<'a>),
    /// A membership change (`split`: with two fresh nodes and the leader cut off).
    Membership {
        /// membership-split.
        split: bool,
    },
    /// Through the disk layer of each target member.
    Disk(DiskOp, &'a Target),
    /// Several faults.
    Combined {
        /// The parts, in starting order.
        parts: &'a [Fault],
        /// All at once.
        together: bool,
    },
}

impl Fault {
    /// Its kind (`None` for a combination of kinds).
    pub fn kind(&self) -> Option<Kind> {
        Some(match self {
            Fault::PartitionNode => Kind::PartitionNode,
            Fault::PartitionLeader => Kind::PartitionLeader,
            Fault::PartitionHalves => Kind::PartitionHalves,
            Fault::PartitionBridge { .. } => Kind::PartitionBridge,
            Fault::PartitionRing => Kind::PartitionRing,
            Fault::OneWayIn => Kind::OneWayIn,
            Fault::OneWayOut => Kind::OneWayOut,
            Fault::Lag { .. } => Kind::Lag,
            Fault::Loss { .. } => Kind::Loss,
            Fault::Delay { .. } => Kind::Delay,
            Fault::Duplicate { .. } => Kind::Duplicate,
            Fault::Reorder { .. } => Kind::Reorder,
            Fault::Pause {
                target: Target::Leader,
            } => Kind::PauseLeader,
            Fault::Pause {
                target: Target::Minority,
            } => Kind::PauseMinority,
            Fault::Pause { .. } => Kind::Pause,
            Fault::Crash {
                target: Target::Leader,
            } => Kind::CrashLeader,
            Fault::Crash {
                target: Target::Minority,
            } => Kind::CrashMinority,
            Fault::Crash {
                target: Target::All,
            } => Kind::CrashAll,
            Fault::Crash { .. } => Kind::Crash,
            Fault::Restart { .. } => Kind::Restart,
            Fault::Membership => Kind::Membership,
            Fault::MembershipSplit => Kind::MembershipSplit,
            Fault::Figure8 => Kind::Figure8,
            Fault::LoseUnsynced { .. } => Kind::LoseUnsynced,
            Fault::TornWrite { .. } => Kind::TornWrite,
            Fault::Corrupt { .. } => Kind::Corrupt,
            Fault::DiskFull { .. } => Kind::DiskFull,
            Fault::FsyncError { .. } => Kind::FsyncError,
            Fault::SlowDisk { .. } => Kind::SlowDisk,
            Fault::Combined { .. } => return None,
        })
    }

    /// The fault by what makes it (see [`Class`]).
    pub fn class(&self) -> Class<'_> {
        match self {
            Fault::PartitionNode => Class::Partition(Shape::Isolate { leader: false }),
            Fault::PartitionLeader => Class::Partition(Shape::Isolate { leader: true }),
            Fault::PartitionHalves => Class::Partition(Shape::Halves),
            Fault::PartitionBridge { bridge } => Class::Partition(Shape::Bridge(bridge)),
            Fault::PartitionRing => Class::Partition(Shape::Ring),
            Fault::OneWayIn => Class::Partition(Shape::OneWay { inbound: true }),
            Fault::OneWayOut => Class::Partition(Shape::OneWay { inbound: false }),
            Fault::Lag { target } => Class::Partition(Shape::Lag(target)),
            Fault::Loss { p, target } => Class::Message(Rule::Loss(*p), target),
            Fault::Delay {
                ms,
                jitter_ms,
                target,
            } => Class::Message(
                Rule::Delay {
                    ms: *ms,
                    jitter_ms: *jitter_ms,
                },
                target,
            ),
            Fault::Duplicate { p, target } => Class::Message(Rule::Duplicate(*p), target),
            Fault::Reorder { p, target } => Class::Message(Rule::Reorder(*p), target),
            Fault::Pause { target } => Class::Process(Proc::Pause(target)),
            Fault::Crash { target } => Class::Process(Proc::Crash(target)),
            Fault::Restart { every_ms, target } => Class::Process(Proc::Restart {
                every_ms: *every_ms,
                target,
            }),
            Fault::Membership => Class::Membership { split: false },
            Fault::MembershipSplit => Class::Membership { split: true },
            Fault::Figure8 => Class::Figure8,
            Fault::LoseUnsynced { target } => Class::Disk(DiskOp::LoseUnsynced, target),
            Fault::TornWrite { target } => Class::Disk(DiskOp::Torn, target),
            Fault::Corrupt { truncate, target } => Class::Disk(
                DiskOp::Corrupt {
                    truncate: *truncate,
                },
                target,
            ),
            Fault::DiskFull { target } => Class::Disk(DiskOp::Full, target),
            Fault::FsyncError { target } => Class::Disk(DiskOp::FsyncError, target),
            Fault::SlowDisk { ms, target } => Class::Disk(DiskOp::Slow(*ms), target),
            Fault::Combined { parts, together } => Class::Combined {
                parts,
                together: *together,
            },
        }
    }

    /// The fault's family: how it is made, and what its history events are called.
    pub fn family(&self) -> Family {
        match self.class() {
            Class::Partition(_) | Class::Figure8 => Family::Partition,
            Class::Message(Rule::Loss(_), _) => Family::Loss,
            Class::Message(Rule::Delay { .. }, _) => Family::Delay,
            Class::Message(Rule::Duplicate(_), _) => Family::Duplicate,
            Class::Message(Rule::Reorder(_), _) => Family::Reorder,
            Class::Process(Proc::Pause(_)) => Family::Pause,
            Class::Process(Proc::Crash(_) | Proc::Restart { .. }) => Family::Crash,
            Class::Membership { .. } => Family::Membership,
            Class::Disk(..) => Family::Disk,
            Class::Combined { .. } => Family::Combined,
        }
    }

    /// Whether the fault works through the members' disk layer.
    pub fn needs_disk_layer(&self) -> bool {
        match self.class() {
            Class::Disk(..) => true,
            Class::Combined { parts, .. } => parts.iter().any(Fault::needs_disk_layer),
            Class::Partition(_)
            | Class::Figure8
            | Class::Message(..)
            | Class::Process(_)
            | Class::Membership { .. } => false,
        }
    }

    /// How many spare node slots the fault needs.
    pub fn spares_needed(&self) -> usize {
        match self.class() {
            Class::Membership { split } => 1 + usize::from(split),
            Class::Combined { parts, .. } => parts.iter().map(Fault::spares_needed).sum(),
            Class::Partition(_)
            | Class::Figure8
            | Class::Message(..)
            | Class::Process(_)
            | Class::Disk(..) => 0,
        }
    }

    /// Check the fault against a cluster of `n` nodes named `n1..nN`.
    pub fn validate(&self, n: usize) -> Result<(), String> {
        let prob = |p: f64, what: &str| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("{what} probability {p} is not between 0 and 1"))
            }
        };
        let target = |t: &Target| match t {
            Target::Node(id) => {
                let ok = id
                    .strip_prefix('n')
                    .and_then(|k| k.parse::<usize>().ok())
                    .is_some_and(|k| (1..=n).contains(&k));
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "target @{} is not a node of this {n}-node cluster (n1..n{n})",
                        faultline_rundir::quote::quoted(id)
                    ))
                }
            }
            Target::Minority if n < 3 => {
                Err(format!("a {n}-node cluster has no non-empty minority"))
            }
            Target::Follower if n < 2 => Err(format!("a {n}-node cluster has no follower")),
            _ => Ok(()),
        };
        match self {
            Fault::PartitionNode | Fault::PartitionLeader | Fault::OneWayIn | Fault::OneWayOut
                if n < 2 =>
            {
                Err(format!(
                    "{self} needs at least 2 nodes; the cluster has {n}"
                ))
            }
            Fault::PartitionHalves | Fault::PartitionRing if n < 3 => Err(format!(
                "{self} needs at least 3 nodes; the cluster has {n}"
            )),
            Fault::Combined { parts, .. } => {
                if parts.len() < 2 {
                    return Err(format!("'{self}': a combined fault has at least two parts"));
                }
                parts.iter().try_for_each(|p| p.validate(n))
            }
            Fault::Membership if n < 2 => Err(format!(
                "{self} needs at least 2 nodes; the cluster has {n}"
            )),
            Fault::MembershipSplit if n < 3 => Err(format!(
                "{self} needs at least 3 nodes; the cluster has {n}"
            )),
            Fault::PartitionBridge { bridge } => {
                if n < 3 {
                    return Err(format!(
                        "{self} needs at least 3 nodes; the cluster has {n}"
                    ));
                }
                match bridge {
                    Target::All | Target::Minority => Err(format!(
                        "'{self}': the bridge is one node: @leader, @node or a node id"
                    )),
                    t => target(t),
                }
            }
            Fault::Figure8 => {
                if n != 5 {
                    return Err(format!(
                        "{self} plays the paper's five servers: it needs exactly 5 nodes; the cluster has {n}"
                    ));
                }
                Ok(())
            }
            Fault::Restart {
                every_ms,
                target: t,
            } => {
                if *every_ms < 50 {
                    return Err(format!(
                        "'{self}': restarting more often than every 50 ms leaves the node no time to start"
                    ));
                }
                target(t)
            }
            Fault::Loss { p, target: t }
            | Fault::Duplicate { p, target: t }
            | Fault::Reorder { p, target: t } => {
                prob(*p, self.family().name())?;
                target(t)
            }
            Fault::Lag { .. } if n < 3 => Err(format!(
                "'{self}' needs at least 3 nodes (a majority must go on without the lagging follower); the cluster has {n}"
            )),
            Fault::Lag {
                target: Target::All | Target::Minority | Target::Leader,
            } => Err(format!(
                "'{self}': lag holds back one follower: lag, lag@node or lag@ID"
            )),
            Fault::SlowDisk { ms, .. } if *ms == 0 || *ms > 60_000 => Err(format!(
                "'{self}': a slow disk's extra time per fsync is between 1 and 60000 ms"
            )),
            Fault::LoseUnsynced { target: t }
            | Fault::TornWrite { target: t }
            | Fault::Corrupt { target: t, .. }
            | Fault::DiskFull { target: t }
            | Fault::FsyncError { target: t }
            | Fault::SlowDisk { target: t, .. } => target(t),
            Fault::Lag { target: t }
            | Fault::Delay { target: t, .. }
            | Fault::Pause { target: t }
            | Fault::Crash { target: t } => target(t),
            Fault::PartitionNode
            | Fault::PartitionLeader
            | Fault::OneWayIn
            | Fault::OneWayOut
            | Fault::PartitionHalves
            | Fault::PartitionRing
            | Fault::Membership
            | Fault::MembershipSplit => Ok(()),
        }
    }
}

mod words;
pub use words::parse_list;

#[cfg(test)]
mod tests;
