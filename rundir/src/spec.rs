//! A run's settings as `spec.json` holds them: [`RunSpec`], the one record
//! type the runner writes and every reader (the analysis, the run page,
//! `compare`, a repeat of the run) reads; the named choices it is made of
//! ([`TargetKind`], [`NetBackend`], [`ReadMode`], [`KeyDist`], [`Expect`]),
//! typed from the first parse ([`MillisRange`]); and the one default of
//! every setting ([`defaults`]), which `faultline run`'s flags, campaign
//! files, presets and the node's own flags all start from.
//!
//! What each choice *does* lives with the crate that acts on it (a target's
//! capabilities in `sut`, a backend's refusals in `nemesis`); here are only
//! their names, so that a file written by one crate is read by any other
//! without going through JSON values.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::quote::quoted;

/// A closed list of names: the enum, its `ALL`, `name()`, `Display`,
/// `FromStr` (with aliases, and an error listing the names) and serde by
/// the same names. One line per variant: adding one (a target, say) is
/// that line, with no `match` to extend by hand.
macro_rules! names {
    (
        $(#[$m:meta])*
        pub enum $ty:ident ($what:literal) {
            $( $(#[$vm:meta])* $v:ident = $name:literal $(| $alias:literal)*, )+
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $ty {
            $( $(#[$vm])* #[serde(rename = $name $(, alias = $alias)*)] $v, )+
        }

        impl $ty {
            /// Every one, in the order they are listed.
            pub const ALL: &'static [$ty] = &[$($ty::$v),+];

            /// Its name, as flags, files and pages write it.
            pub fn name(self) -> &'static str {
                match self {
                    $( $ty::$v => $name, )+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $( $name $(| $alias)* => Ok($ty::$v), )+
                    other => Err(format!(
                        "{} is not {} ({})",
                        quoted(other),
                        $what,
                        or_list(&[$($name),+])
                    )),
                }
            }
        }
    };
}

/// `a, b or c`.
fn or_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

mod choices;
pub use choices::*;

/// An inclusive range of milliseconds, written `A..B` (or a single `A`) on
/// the command line, in campaign files and in `spec.json`; checked once,
/// where it is read (`0 < A <= B <= MAX_TIMEOUT_MS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MillisRange {
    /// Lower bound.
    pub min: u64,
    /// Upper bound.
    pub max: u64,
}

impl FromStr for MillisRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str| {
            t.trim()
                .trim_end_matches("ms")
                .parse::<u64>()
                .map_err(|_| format!("{} is not a whole number of milliseconds", quoted(t)))
        };
        let (min, max) = match s.split_once("..") {
            Some((a, b)) => (num(a)?, num(b.trim_start_matches('='))?),
            None => {
                let v = num(s)?;
                (v, v)
            }
        };
        if min == 0 || min > max {
            return Err(format!(
                "{} is an empty range: write MIN..MAX with 0 < MIN <= MAX",
                quoted(s)
            ));
        }
        if max > MAX_TIMEOUT_MS {
            return Err(format!(
                "{}: a timeout of more than {MAX_TIMEOUT_MS} ms would leave a cluster without a leader for minutes",
                quoted(s)
            ));
        }
        Ok(MillisRange { min, max })
    }
}

impl fmt::Display for MillisRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.min, self.max)
    }
}

impl Serialize for MillisRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MillisRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The default of every run setting, in one place: `faultline run`'s
/// flags, a campaign's `[run]` and `[[setting]]` tables, the presets and
/// faultline's node's own flags all start from these. (A target with
/// timeouts of its own — etcd — says so in the `sut` crate.)
pub mod defaults {
    use super::MillisRange;

    /// Nodes.
    pub const NODES: usize = 3;
    /// Fault kinds.
    pub const NEMESIS: &str = "partition-leader";
    /// Seconds of each fault and of each quiet period.
    pub const FAULT_INTERVAL_S: f64 = 5.0;
    /// Seconds of workload and faults.
    pub const TIME_LIMIT_S: f64 = 30.0;
    /// The workload.
    pub const WORKLOAD: &str = "register";
    /// Most micro-operations per list-append transaction.
    pub const TXN_LEN: usize = 4;
    /// Most keys per list-append transaction.
    pub const TXN_KEYS: usize = 1;
    /// A lock's lease, ms.
    pub const LOCK_TTL_MS: u64 = 3000;
    /// Keys.
    pub const KEYS: usize = 5;
    /// Client processes.
    pub const CONCURRENCY: usize = 10;
    /// Target operations per second, all clients together.
    pub const RATE: f64 = 100.0;
    /// Election timeout range, ms (faultline's node).
    pub const ELECTION_TIMEOUT: MillisRange = MillisRange { min: 150, max: 300 };
    /// Heartbeat interval, ms (faultline's node).
    pub const HEARTBEAT_MS: u64 = 50;
    /// The node's clock tick, ms: the resolution of every timeout.
    pub const TICK_MS: u64 = 5;
    /// Client timeout per operation, ms.
    pub const OP_TIMEOUT_MS: u64 = 1000;
    /// Shares of read, write and cas operations.
    pub const MIX: [f64; 3] = [50.0, 30.0, 20.0];
    /// The same, as `faultline run --mix` writes it.
    pub const MIX_FLAG: &str = "50,30,20";
    /// A campaign's base seed (`faultline run` picks a random one instead).
    pub const SEED: u64 = 1;
}

/// What a target really does with the timeouts it was given: faultline's
/// node rounds them up to whole ticks; etcd and a Maelstrom node say what
/// was passed. Written by the run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Effective {
    /// For etcd and Maelstrom nodes: the flags passed and what the target
    /// does with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<String>,
    /// The node's clock tick, ms.
    pub tick_ms: u64,
    /// The election timeout range, ms, as the target reads it (for a
    /// Maelstrom node: "(the program's own)").
    pub election_timeout: String,
    /// The heartbeat interval, ms.
    pub heartbeat_ms: u64,
}

/// Everything that defines a run; stored as `spec.json`, so a run can be
/// repeated from it, and read back as the same type by every reader. A
/// field missing from the file takes its default (a file written by an
/// older faultline, or by hand); a field it does not know is ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSpec {
    /// The timeout setting's name (campaigns compare these).
    pub setting: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Fault kinds, comma-separated (empty: no faults).
    pub nemesis: String,
    /// Length of each fault and of each quiet period, seconds.
    pub fault_interval_s: f64,
    /// Random fault durations and kinds from the seed, instead of alternating.
    pub random_schedule: bool,
    /// The workload.
    #[serde(default)]
    pub workload: Workload,
    /// Append workload: most micro-operations per transaction (4 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_len: Option<usize>,
    /// Append workload: most keys per transaction (1, single-key, when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_keys: Option<usize>,
    /// Append workload: the model the history is judged against.
    #[serde(default)]
    pub consistency: Consistency,
    /// Lock workload: the lease's time to live, ms (3000 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_ttl_ms: Option<u64>,
    /// Lock workload: the holders' writes are fenced by the lock's token.
    #[serde(default)]
    pub lock_fenced: bool,
    /// Lock workload: the share of holds in which the holder's client
    /// pauses (no renewals, no requests) for 1.5 × the TTL.
    #[serde(default)]
    pub lock_pauses: f64,
    /// Keys.
    pub keys: usize,
    /// Concurrent client processes.
    pub concurrency: usize,
    /// Target ops/s (0: as fast as possible).
    pub rate: f64,
    /// Length of the main phase, seconds.
    pub time_limit_s: f64,
    /// Election timeout range, ms.
    pub election_timeout: MillisRange,
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Pre-vote on.
    pub pre_vote: bool,
    /// Check-quorum on.
    pub check_quorum: bool,
    /// The run's seed: the fault schedule, link decisions and operations follow from it.
    pub seed: u64,
    /// Per-operation client timeout, ms.
    pub op_timeout_ms: u64,
    /// Shares of read, write and cas operations.
    #[serde(default = "default_mix")]
    pub mix: [f64; 3],
    /// How clients choose keys.
    #[serde(default)]
    pub key_dist: KeyDist,
    /// Clients pick a random node per operation instead of sticking to one.
    #[serde(default)]
    pub random_node: bool,
    /// UNSAFE known-bug variants the nodes run with (empty: the correct node).
    #[serde(default)]
    pub unsafe_bug: Vec<String>,
    /// Most entries per AppendEntries (the node's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_append_entries: Option<u64>,
    /// The nodes' clock tick, ms ([`defaults::TICK_MS`] when absent): the
    /// resolution of every timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_ms: Option<u64>,
    /// Applied entries between snapshots, 0 for none (the node's default,
    /// 10,000, when absent; for etcd, its --snapshot-count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_entries: Option<u64>,
    /// The network backend: the proxy on every link, the kernel's network
    /// in per-node namespaces, or the hosts of an inventory.
    #[serde(default)]
    pub net: NetBackend,
    /// The system under test.
    #[serde(default)]
    pub target: TargetKind,
    /// How etcd serves reads (`serializable`: from a member's local state,
    /// a positive control that the bench catches stale reads).
    #[serde(default)]
    pub read_mode: ReadMode,
    /// What the run is expected to show: linearizable, or — for a positive
    /// control — caught. Stored here only; the run's and the campaign's
    /// results read it from here.
    #[serde(default)]
    pub expect: Expect,
    /// For the maelstrom target: the node program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// For the maelstrom target: the program's arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Crash faults on a target whose restart forgets everything.
    #[serde(default)]
    pub allow_amnesia: bool,
    /// What the disk layer takes to be durable (runs with disk faults).
    #[serde(default)]
    pub disk_model: DiskModel,
    /// The inventory of hosts the members run on (`--hosts`; the network
    /// backend is then `hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
    /// The tested system's version (written by the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// What the nodes really use: the timeouts rounded up to whole ticks
    /// (written by the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<Effective>,
}

fn default_mix() -> [f64; 3] {
    defaults::MIX
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            setting: "run".into(),
            nodes: defaults::NODES,
            nemesis: defaults::NEMESIS.into(),
            fault_interval_s: defaults::FAULT_INTERVAL_S,
            random_schedule: false,
            workload: Workload::Register,
            txn_len: None,
            txn_keys: None,
            consistency: Consistency::StrictSerializable,
            lock_ttl_ms: None,
            lock_fenced: false,
            lock_pauses: 0.0,
            keys: defaults::KEYS,
            concurrency: defaults::CONCURRENCY,
            rate: defaults::RATE,
            time_limit_s: defaults::TIME_LIMIT_S,
            election_timeout: defaults::ELECTION_TIMEOUT,
            heartbeat_ms: defaults::HEARTBEAT_MS,
            pre_vote: false,
            check_quorum: false,
            seed: defaults::SEED,
            op_timeout_ms: defaults::OP_TIMEOUT_MS,
            mix: defaults::MIX,
            key_dist: KeyDist::Uniform,
            random_node: false,
            unsafe_bug: Vec::new(),
            max_append_entries: None,
            snapshot_entries: None,
            tick_ms: None,
            net: NetBackend::Proxy,
            target: TargetKind::Faultline,
            read_mode: ReadMode::Linearizable,
            expect: Expect::Linearizable,
            bin: None,
            args: Vec::new(),
            allow_amnesia: false,
            disk_model: DiskModel::Posix,
            hosts: None,
            target_version: None,
            effective: None,
        }
    }
}

impl RunSpec {
    /// Read a run directory's `spec.json`: none when there is none (a run
    /// that never started), an error naming the file when it is unreadable
    /// or not a spec.
    pub fn read(dir: &crate::RunDir) -> Result<Option<RunSpec>, String> {
        crate::records::read_record(&dir.spec())
    }

    /// Every setting as (name, value in words), in the order of the file:
    /// the run page's settings table.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<u64>| v.map_or("–".to_string(), |v| v.to_string());
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        let append = self.workload == Workload::Append;
        let lock = self.workload == Workload::Lock;
        let mut rows = vec![
            ("setting", self.setting.clone()),
            ("nodes", self.nodes.to_string()),
            ("nemesis", self.nemesis.clone()),
            ("fault_interval_s", self.fault_interval_s.to_string()),
            ("random_schedule", yes(self.random_schedule)),
            ("workload", self.workload.to_string()),
            // A workload's own settings: its default when not given, "–"
            // for another workload.
            (
                "txn_len",
                opt(self
                    .txn_len
                    .or(append.then_some(defaults::TXN_LEN))
                    .map(|n| n as u64)),
            ),
            (
                "txn_keys",
                opt(self
                    .txn_keys
                    .or(append.then_some(defaults::TXN_KEYS))
                    .map(|n| n as u64)),
            ),
            (
                "consistency",
                if append {
                    self.consistency.to_string()
                } else {
                    "–".to_string()
                },
            ),
            (
                "lock_ttl_ms",
                opt(self.lock_ttl_ms.or(lock.then_some(defaults::LOCK_TTL_MS))),
            ),
            ("lock_fenced", yes(self.lock_fenced)),
            ("lock_pauses", self.lock_pauses.to_string()),
            ("keys", self.keys.to_string()),
            ("concurrency", self.concurrency.to_string()),
            ("rate", self.rate.to_string()),
            ("time_limit_s", self.time_limit_s.to_string()),
            ("election_timeout", self.election_timeout.to_string()),
            ("heartbeat_ms", self.heartbeat_ms.to_string()),
            ("pre_vote", yes(self.pre_vote)),
            ("check_quorum", yes(self.check_quorum)),
            ("seed", self.seed.to_string()),
            ("op_timeout_ms", self.op_timeout_ms.to_string()),
            (
                "mix",
                self.mix
                    .iter()
                    .map(f64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("key_dist", self.key_dist.to_string()),
            ("random_node", yes(self.random_node)),
            ("unsafe_bug", list(&self.unsafe_bug)),
            ("max_append_entries", opt(self.max_append_entries)),
            ("tick_ms", opt(self.tick_ms)),
            ("snapshot_entries", opt(self.snapshot_entries)),
            ("net", self.net.to_string()),
            ("target", self.target.to_string()),
            ("read_mode", self.read_mode.to_string()),
            ("expect", self.expect.to_string()),
            ("bin", self.bin.clone().unwrap_or_else(|| "–".into())),
            ("args", list(&self.args)),
            ("allow_amnesia", yes(self.allow_amnesia)),
            ("disk_model", self.disk_model.to_string()),
            ("hosts", self.hosts.clone().unwrap_or_else(|| "–".into())),
            (
                "target_version",
                self.target_version.clone().unwrap_or_else(|| "–".into()),
            ),
        ];
        if let Some(e) = &self.effective {
            let mut s = format!(
                "tick_ms: {}; election_timeout: {}; heartbeat_ms: {}",
                e.tick_ms, e.election_timeout, e.heartbeat_ms
            );
            if let Some(p) = &e.passed {
                s = format!("passed: {p}; {s}");
            }
            rows.push(("effective", s));
        }
        rows
    }
}

#[cfg(test)]
mod tests;
