//! The system under test, behind one seam. A run needs four things from
//! the system it tests, and [`Target`] is them: the command that starts one
//! member (its data directory, its addresses, its peers, its settings); a
//! client with `read`, `write` and `cas` whose every answer maps honestly to
//! ok / fail / info ([`KvClient`], [`Answer`]); a status with role, term,
//! leader and commit/applied index (what leader-aware faults, the observer
//! and the leader timeline use); and its name. Stopping, killing, pausing
//! and restarting members is the same for every system (process groups,
//! signals) and lives in the nemesis.
//!
//! - [`faultline`]: faultline's own Raft node.
//! - [`etcd`]: etcd, through its v3 JSON gateway.
//! - [`maelstrom`]: any program that speaks Maelstrom's protocol.
//! - [`nats`]: NATS JetStream's KV store, over the NATS protocol.
#![deny(missing_docs)]

pub mod answer;
mod capabilities;
pub mod etcd;
pub mod faultline;
pub mod lock;
pub mod maelstrom;
pub mod nats;
pub mod program;
pub mod settings;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use faultline_node::protocol::NodeStatus;
use faultline_rundir::spec::{defaults, MillisRange};
use futures::future::BoxFuture;
use futures::FutureExt;

pub use answer::{Answer, Outcome, TxnAnswer};
pub use capabilities::{Capabilities, Capability};
pub use faultline_node::kv::MicroOp;

pub use faultline_rundir::spec::TargetKind;

/// What the `sut` crate knows of each target, by its name: what it can do,
/// how to refuse what it cannot, its default timeouts, its words on a page,
/// how a host is asked for its version, and how to build it. The one
/// place outside `sut/` that names targets is their list of names
/// ([`TargetKind`]); everything a target does is answered here.
pub trait TargetKindExt: Copy {
    /// What it can do.
    fn capabilities(self) -> Capabilities;
    /// The one-line refusal of `what` (a fault, a backend or a setting,
    /// as the user wrote it) on this target, which lacks `c`.
    fn refuse(self, what: &str, c: Capability) -> String;
    /// The target's own default election timeout range and heartbeat
    /// interval (ms): what a run or a campaign setting uses when it names
    /// none, wherever the target is chosen.
    fn default_timeouts(self) -> (MillisRange, u64);
    /// The system in words, as a run's page names it ("etcd").
    fn words(self) -> &'static str;
    /// What a reader of its benchmark figures must know, if anything.
    fn durability_note(self) -> Option<&'static str> {
        None
    }
    /// The other systems `bench node --target` this one runs beside it
    /// (when they are installed), besides faultline's node.
    fn benched_beside(self) -> &'static [TargetKind] {
        &[]
    }
    /// How a host of an inventory is asked for this target's version
    /// (its working directory `dir`, shell-quoted); none for a target
    /// that does not run on hosts.
    fn version_probe(self, dir: &str) -> Option<VersionProbe>;
    /// The target, ready to start members: faultline's node; etcd (at
    /// `--bin`, or at `$FAULTLINE_ETCD_BIN`, which `--etcd-bin` sets, or on
    /// PATH); a Maelstrom program hosted by this very binary; nats-server
    /// (at `--bin`, or on PATH).
    fn build(self, b: &Build<'_>) -> Result<Arc<dyn Target>, String>;
    /// Whether the target can run with `s` (its timeouts as it reads them).
    fn check_settings(self, s: &settings::TargetSettings<'_>) -> Result<(), String> {
        self.effective(s).map(|_| ())
    }
    /// The flags every member gets for `s`.
    fn member_args(self, s: &settings::TargetSettings<'_>) -> Result<Vec<String>, String>;
    /// What the members will really use with `s`.
    fn effective(self, s: &settings::TargetSettings<'_>) -> Result<settings::Effective, String>;
}

/// A shell command that prints a target's version on a host, and what a
/// host without it lacks (one line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionProbe {
    /// The command (its first line of output is the version; none printed:
    /// the target is missing).
    pub command: String,
    /// What to say when it printed nothing.
    pub missing: &'static str,
}

impl TargetKindExt for TargetKind {
    fn capabilities(self) -> Capabilities {
        match self {
            TargetKind::Faultline => Capabilities {
                behind_link_proxy: true,
                sealed_namespace: true,
                reports_leader: true,
                durable: true,
                membership_changes: true,
                scripted_scenarios: true,
                reports_snapshots: true,
                timeouts: true,
                pre_vote: true,
                check_quorum: true,
                snapshot_interval: true,
                node_knobs: true,
                read_modes: false,
                program: false,
                named_program: false,
                meant_correct: true,
                sealed_net_args: &["--sealed-net"],
                on_hosts: true,
                host_addr_flag: Some("--allow-addr"),
                copied_to_hosts: true,
                list_append: true,
                transactions: true,
                locks: true,
            },
            TargetKind::Etcd => Capabilities {
                behind_link_proxy: false,
                sealed_namespace: true,
                reports_leader: true,
                durable: true,
                membership_changes: false,
                scripted_scenarios: false,
                reports_snapshots: false,
                timeouts: true,
                pre_vote: true,
                // Always on in etcd: asking for it is fine.
                check_quorum: true,
                snapshot_interval: true,
                node_knobs: false,
                read_modes: true,
                program: false,
                named_program: true,
                meant_correct: false,
                sealed_net_args: &[],
                on_hosts: true,
                host_addr_flag: None,
                copied_to_hosts: false,
                list_append: true,
                transactions: true,
                locks: true,
            },
            TargetKind::Maelstrom => Capabilities {
                behind_link_proxy: true,
                sealed_namespace: false,
                reports_leader: false,
                durable: false,
                membership_changes: false,
                scripted_scenarios: false,
                reports_snapshots: false,
                timeouts: false,
                pre_vote: false,
                check_quorum: false,
                snapshot_interval: false,
                node_knobs: false,
                read_modes: false,
                program: true,
                named_program: true,
                meant_correct: false,
                sealed_net_args: &[],
                on_hosts: false,
                host_addr_flag: None,
                copied_to_hosts: false,
                list_append: true,
                transactions: true,
                locks: false,
            },
            TargetKind::Nats => Capabilities {
                behind_link_proxy: false,
                sealed_namespace: true,
                reports_leader: true,
                durable: true,
                membership_changes: false,
                scripted_scenarios: false,
                reports_snapshots: false,
                timeouts: false,
                pre_vote: false,
                check_quorum: false,
                snapshot_interval: false,
                node_knobs: false,
                read_modes: true,
                program: false,
                named_program: true,
                meant_correct: false,
                sealed_net_args: &[],
                on_hosts: false,
                host_addr_flag: None,
                copied_to_hosts: false,
                list_append: false,
                transactions: false,
                locks: false,
            },
        }
    }

    fn refuse(self, what: &str, c: Capability) -> String {
        let why = match (self, c) {
            (TargetKind::Etcd, Capability::BehindLinkProxy) => {
                "etcd members reach each other at one advertised address each, so link proxies cannot sit between them: use --net kernel"
            }
            (TargetKind::Etcd, Capability::CheckQuorum) => "etcd always checks quorum",
            (TargetKind::Nats, Capability::BehindLinkProxy) => {
                "NATS servers route to each other over connections that either end may open and both then share, so a proxy per directed link cannot cut one direction: use --net kernel"
            }
            (TargetKind::Nats, Capability::Timeouts | Capability::PreVote | Capability::CheckQuorum) => {
                "nats-server's Raft timings are fixed in its code (elections after 4-9 s, heartbeats every second)"
            }
            (TargetKind::Nats, Capability::OnHosts) => {
                "faultline does not start nats-server on the hosts of an inventory yet"
            }
            (TargetKind::Maelstrom, Capability::Durable) => {
                "a Maelstrom node keeps its state in memory, so a restart is total amnesia, which Raft does not survive by design (--allow-amnesia runs it anyway)"
            }
            (TargetKind::Maelstrom, Capability::OnHosts) => {
                "each Maelstrom node's messages go through faultline's proxies on this machine"
            }
            (TargetKind::Maelstrom, Capability::SealedNamespace) => {
                "the maelstrom target runs on the proxy backend, where faultline is the nodes' network"
            }
            (_, Capability::BehindLinkProxy) => "its members cannot be put behind link proxies",
            (_, Capability::SealedNamespace) => "it does not run in the kernel backend's namespaces",
            (_, Capability::Durable) => "it does not keep its state across a restart",
            (_, Capability::MembershipChanges) => {
                "membership changes go through faultline's node protocol"
            }
            (_, Capability::ScriptedScenarios) => {
                "the scripted scenario reads faultline's node protocol in the link proxies"
            }
            (_, Capability::ReportsSnapshots) => {
                "it waits until the held-back follower needs a snapshot, which only faultline's node reports"
            }
            (_, Capability::Timeouts) => {
                "its election timeout and heartbeat are its own (for a Maelstrom node: its arguments)"
            }
            (_, Capability::PreVote) => "it has no pre-vote switch",
            (_, Capability::CheckQuorum) => "it has no check-quorum switch",
            (_, Capability::SnapshotInterval) => "it takes no snapshot interval",
            (_, Capability::NodeKnobs) => {
                "tick, max_append_entries and the known-bug variants are faultline's node's"
            }
            (_, Capability::ReadModes) => {
                "read_mode is etcd's (faultline's node has --unsafe-bug stale-read for the same)"
            }
            (_, Capability::OnHosts) => "it cannot be started on the hosts of an inventory",
            (TargetKind::Nats, Capability::ListAppend | Capability::Transactions) => {
                "faultline's NATS client speaks its KV bucket's registers only (a list would be a read-modify-write by expected sequence, not yet written)"
            }
            (_, Capability::ListAppend) => "it has no list-append transactions",
            (TargetKind::Maelstrom, Capability::Locks) => {
                "Maelstrom's lin-kv workload has no lock"
            }
            (_, Capability::Locks) => "faultline has no lock client for it",
            (_, Capability::Transactions) => {
                "its list-append transactions take one key at a time (--txn-keys 1)"
            }
            (_, Capability::Program) => {
                "args are for the maelstrom target (--target maelstrom)"
            }
            (_, Capability::NamedProgram) => {
                "its program is faultline itself (--bin names etcd's, nats-server's or a Maelstrom node's program)"
            }
        };
        format!("{what} is not supported on {self}: {why}")
    }

    fn default_timeouts(self) -> (MillisRange, u64) {
        match self {
            TargetKind::Faultline => (defaults::ELECTION_TIMEOUT, defaults::HEARTBEAT_MS),
            // etcd's own defaults: --election-timeout 1000 (it draws from
            // [1000, 2000)) and --heartbeat-interval 100.
            TargetKind::Etcd => (
                MillisRange {
                    min: 1000,
                    max: 2000,
                },
                100,
            ),
            // Not passed to the program (its settings are its arguments);
            // recorded as what the run assumed.
            TargetKind::Maelstrom => (defaults::ELECTION_TIMEOUT, defaults::HEARTBEAT_MS),
            // nats-server's own, fixed in its Raft code (2.9): elections
            // after 4-9 s, a heartbeat every second.
            TargetKind::Nats => (
                MillisRange {
                    min: 4000,
                    max: 9000,
                },
                1000,
            ),
        }
    }

    fn words(self) -> &'static str {
        match self {
            TargetKind::Faultline => "faultline's node",
            TargetKind::Etcd => "etcd",
            TargetKind::Maelstrom => "a Maelstrom node:",
            TargetKind::Nats => "NATS JetStream",
        }
    }

    fn durability_note(self) -> Option<&'static str> {
        match self {
            TargetKind::Nats => Some(
                "nats-server 2.9 acknowledges a write before it is on disk (it flushes a stream's data every two minutes), so its figures are not fsync-for-fsync comparable with the others'",
            ),
            _ => None,
        }
    }

    fn benched_beside(self) -> &'static [TargetKind] {
        match self {
            TargetKind::Nats => &[TargetKind::Etcd],
            _ => &[],
        }
    }

    fn version_probe(self, dir: &str) -> Option<VersionProbe> {
        match self {
            TargetKind::Faultline => Some(VersionProbe {
                command: format!(
                    "{dir}/bin/faultline --version 2>/dev/null || echo 'not there yet (copied at the first run)'"
                ),
                missing: "no faultline binary in the working directory",
            }),
            TargetKind::Etcd => Some(VersionProbe {
                command: "etcd --version 2>/dev/null | head -n 1".into(),
                missing: "no etcd on the login's PATH (install the package etcd-server)",
            }),
            TargetKind::Maelstrom | TargetKind::Nats => None,
        }
    }

    fn build(self, b: &Build<'_>) -> Result<Arc<dyn Target>, String> {
        Ok(match self {
            TargetKind::Faultline => {
                Arc::new(faultline::FaultlineNode::new(b.node.clone()).in_cluster(b.cluster))
            }
            TargetKind::Etcd => {
                let bin = b
                    .bin
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("FAULTLINE_ETCD_BIN").map(PathBuf::from));
                Arc::new(etcd::Etcd::find(bin.as_deref(), b.read_mode)?)
            }
            TargetKind::Nats => Arc::new(nats::Nats::find(
                b.bin.map(std::path::Path::new),
                b.read_mode,
            )?),
            TargetKind::Maelstrom => {
                let bin = b.bin.ok_or("the maelstrom target needs --bin PATH")?;
                let host = Program {
                    program: std::env::current_exe()
                        .map_err(|e| format!("finding faultline's own binary: {e}"))?,
                    args: vec!["maelstrom-host".into()],
                };
                Arc::new(maelstrom::Maelstrom::new(host, bin.into(), b.args.to_vec()))
            }
        })
    }

    fn member_args(self, s: &settings::TargetSettings<'_>) -> Result<Vec<String>, String> {
        settings::member_args(self, s)
    }

    fn effective(self, s: &settings::TargetSettings<'_>) -> Result<settings::Effective, String> {
        settings::effective(self, s)
    }
}

/// The program that runs a member: an executable and fixed leading
/// arguments (`faultline node`, say).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before the member's own flags.
    pub args: Vec<String>,
}

impl From<PathBuf> for Program {
    fn from(program: PathBuf) -> Self {
        Program {
            program,
            args: Vec::new(),
        }
    }
}

/// One member to start, as a target sees it.
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    /// Its name (`n1`).
    pub id: &'a str,
    /// Where it takes peer traffic.
    pub listen: SocketAddr,
    /// Where it takes clients.
    pub client: SocketAddr,
    /// Every other member's name and peer address (where this one reaches it).
    pub peers: &'a [(String, SocketAddr)],
    /// Its data directory.
    pub data_dir: &'a std::path::Path,
    /// Its settings, as flags of the system (built by the runner).
    pub settings: &'a [String],
    /// The initial voters (empty: itself and its peers).
    pub voters: &'a [String],
    /// Start outside the cluster, to be added by a membership change.
    pub join: bool,
}

impl Member<'_> {
    /// `--id`, `--listen`, `--client` and one `--peer ID=ADDR` per peer:
    /// the flags by which a member learns where it and its peers are (for
    /// faultline's node and for a Maelstrom node's host alike).
    pub(crate) fn address_args(&self, cmd: &mut std::process::Command) {
        cmd.arg("--id")
            .arg(self.id)
            .arg("--listen")
            .arg(self.listen.to_string())
            .arg("--client")
            .arg(self.client.to_string());
        for (id, addr) in self.peers {
            cmd.arg("--peer").arg(format!("{id}={addr}"));
        }
    }
}

/// One register operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// Read a key.
    Read(String),
    /// Write a value.
    Write(String, i64),
    /// Compare and set: (key, expected, new).
    Cas(String, i64, i64),
}

/// A connection to one member.
pub trait KvClient: Send + Sync {
    /// The member's client address.
    fn addr(&self) -> SocketAddr;
    /// Run one operation; the answer mapped to what the history records.
    fn call<'a>(&'a self, op: &'a KvOp) -> BoxFuture<'a, Answer>;
    /// Run one list-append transaction (its micro-operations at once);
    /// only called on a target whose capabilities have `list_append` (and
    /// `transactions` when it names several keys).
    fn txn<'a>(&'a self, ops: &'a [MicroOp]) -> BoxFuture<'a, TxnAnswer> {
        let _ = ops;
        async { Outcome::Fail("this system has no list-append transactions".into()) }.boxed()
    }
    /// Make `lock` ready to be taken (the cas lock: its register); only
    /// called on a target whose capabilities have `locks`, as are the other
    /// lock methods. By default each is the cas lock of [`lock`].
    fn lock_prepare<'a>(&'a self, lock: &'a str) -> BoxFuture<'a, Result<(), String>> {
        lock::prepare_cas(self, lock)
    }
    /// Take `lock` with a lease of `ttl`, waiting until `deadline_ms` on
    /// the clients' shared clock `now` (ms): `ok` with the lock held,
    /// `fail` when certainly not taken, `info` when it may have been.
    fn lock_acquire<'a>(
        &'a self,
        lock: &'a str,
        ttl: Duration,
        now: &'a (dyn Fn() -> u64 + Send + Sync),
        deadline_ms: u64,
    ) -> BoxFuture<'a, Outcome<lock::Held>> {
        lock::acquire_cas(self, lock, ttl, now, deadline_ms)
    }
    /// Extend the lease of a held lock; `Err` when it is no longer held
    /// (or the renewal's fate is unknown).
    fn lock_renew<'a>(
        &'a self,
        held: &'a mut lock::Held,
        ttl: Duration,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(), String>> {
        lock::renew_cas(self, held, ttl, now_ms)
    }
    /// Give a held lock back.
    fn lock_release<'a>(&'a self, held: &'a lock::Held) -> BoxFuture<'a, Answer> {
        lock::release_cas(self, held)
    }
    /// Write `value` to the protected register `key` only if `held` is
    /// still the newest holder as the store sees it (`fail` otherwise).
    fn fenced_write<'a>(
        &'a self,
        key: &'a str,
        held: &'a lock::Held,
        value: i64,
    ) -> BoxFuture<'a, Answer> {
        lock::fenced_write_cas(self, key, held, value)
    }
}

/// A system faultline can test.
pub trait Target: Send + Sync {
    /// Which system.
    fn kind(&self) -> TargetKind;
    /// What it can do.
    fn capabilities(&self) -> Capabilities {
        self.kind().capabilities()
    }
    /// Its version, as the report shows it.
    fn version(&self) -> String;
    /// The command that starts `member` (stdio, process group and
    /// namespace are the caller's).
    fn command(&self, member: &Member<'_>) -> std::process::Command;
    /// Connect a client to the member whose client address is `addr`; an
    /// error means nothing was sent (a definite failure).
    fn connect<'a>(
        &'a self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Box<dyn KvClient>, String>>;
    /// The member's status: role, term, leader, commit and applied index.
    fn status<'a>(
        &'a self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<NodeStatus>>;
    /// Make the running members ready for the workload, within `timeout`
    /// (`clients`: their client addresses): NATS creates its KV bucket's
    /// stream; the others have nothing to do.
    fn prepare<'a>(
        &'a self,
        clients: &'a [SocketAddr],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>> {
        let _ = (clients, timeout);
        async { Ok(()) }.boxed()
    }
}

impl fmt::Debug for dyn Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.version())
    }
}

/// The faultline node run by `program`.
pub fn faultline(program: impl Into<Program>) -> Arc<dyn Target> {
    Arc::new(faultline::FaultlineNode::new(program.into()))
}

/// What a run needs to build its target, whichever it is.
#[derive(Clone, Debug)]
pub struct Build<'a> {
    /// faultline's node (`faultline node`, or the `faultline-node` binary).
    pub node: Program,
    /// etcd's reads.
    pub read_mode: etcd::ReadMode,
    /// A program to test (Maelstrom), or the production system's program
    /// (etcd, nats-server) when not the one on PATH.
    pub bin: Option<&'a str>,
    /// Its arguments.
    pub args: &'a [String],
    /// The run's cluster id, which faultline's node's clients name when
    /// they connect (a node of another cluster turns them away).
    pub cluster: Option<&'a str>,
}

/// A path from the user, safe to echo in a one-line message.
pub(crate) fn shown_path(p: &std::path::Path) -> String {
    faultline_rundir::quote::quoted_os(p.as_os_str())
}
