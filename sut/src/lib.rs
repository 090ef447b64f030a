//! The system under test, behind one seam. A run needs four things from
//! the system it tests, and [`Target`] is them: the command that starts one
//! member (its data directory, its addresses, its peers, its settings); a
//! client with `read`, `write` and `cas` whose every answer maps honestly to
//! ok / fail / info ([`KvClient`], [`Outcome`]); a status with role, term,
//! leader and commit/applied index (what leader-aware faults, the observer
//! and the leader timeline use); and its name. Stopping, killing, pausing
//! and restarting members is the same for every system (process groups,
//! signals) and lives in the nemesis.
//!
//! - [`faultline`]: faultline's own Raft node.
//! - [`etcd`]: etcd, through its v3 JSON gateway.
//! - [`maelstrom`]: any program that speaks Maelstrom's protocol.
#![deny(missing_docs)]

pub mod etcd;
pub mod faultline;
pub mod maelstrom;
pub mod outcome;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use faultline_node::protocol::NodeStatus;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use outcome::Outcome;

/// Which system a run tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// faultline's own Raft node.
    #[default]
    Faultline,
    /// etcd.
    Etcd,
    /// Any program that speaks Maelstrom's protocol on stdin and stdout.
    Maelstrom,
}

impl TargetKind {
    /// The target's own default election timeout range (ms, as `MIN..MAX`)
    /// and heartbeat interval (ms): what a run or a campaign setting uses
    /// when it names none, wherever the target is chosen.
    pub fn default_timeouts(self) -> (&'static str, u64) {
        match self {
            TargetKind::Faultline => ("150..300", 50),
            // etcd's own defaults: --election-timeout 1000 (it draws from
            // [1000, 2000)) and --heartbeat-interval 100.
            TargetKind::Etcd => ("1000..2000", 100),
            // Not passed to the program (its settings are its arguments);
            // recorded as what the run assumed.
            TargetKind::Maelstrom => ("150..300", 50),
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetKind::Faultline => "faultline",
            TargetKind::Etcd => "etcd",
            TargetKind::Maelstrom => "maelstrom",
        })
    }
}

impl FromStr for TargetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "faultline" | "faultline-node" => Ok(TargetKind::Faultline),
            "etcd" => Ok(TargetKind::Etcd),
            "maelstrom" => Ok(TargetKind::Maelstrom),
            other => Err(format!(
                "'{}' is not a target (faultline, etcd or maelstrom)",
                faultline_node::echo::shown(other)
            )),
        }
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
    fn call<'a>(&'a self, op: &'a KvOp) -> BoxFuture<'a, Outcome>;
}

/// What a target can do, for the backends and waits that depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Its members can be told where each peer is, so a link proxy can sit
    /// on every directed link (etcd's members advertise one address each).
    pub behind_link_proxy: bool,
    /// Its status names the leader as the members themselves see it (not
    /// inferred from traffic): a run waits for one before it starts.
    pub reports_leader: bool,
}

/// A system faultline can test.
pub trait Target: Send + Sync {
    /// Which system.
    fn kind(&self) -> TargetKind;
    /// What it can do.
    fn capabilities(&self) -> Capabilities;
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

/// A path from the user, safe to echo in a one-line message.
pub(crate) fn shown_path(p: &std::path::Path) -> String {
    faultline_node::echo::shown_os(p.as_os_str())
}
