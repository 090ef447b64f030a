//! The `[run]` table of a campaign file: what every run shares.

use serde::Deserialize;

use super::DiskModels;
use crate::spec::RunSpec;

/// Settings shared by every run of a campaign (all optional).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedRun {
    /// Nodes (default 3).
    pub nodes: usize,
    /// Seconds per run (default 30).
    pub time_limit: f64,
    /// Seconds per fault and per quiet period (default 5).
    pub fault_interval: f64,
    /// Random schedule (default false: alternate).
    pub random_schedule: bool,
    /// Shares of read, write and cas (default [50, 30, 20]).
    pub mix: [f64; 3],
    /// Key choice: "uniform" or "zipf" (default uniform).
    pub key_dist: faultline_workloads::register::KeyDist,
    /// Clients pick a random node per operation (default: stick to one).
    pub random_node: bool,
    /// Keys (default 5).
    pub keys: usize,
    /// Client processes (default 10).
    pub concurrency: usize,
    /// Target ops/s (default 100).
    pub rate: f64,
    /// Base seed; run i uses seed + i (default 1).
    pub seed: u64,
    /// Client timeout per operation, ms (default 1000).
    pub op_timeout: u64,
    /// The network backend: "proxy" (default) or "kernel".
    pub net: faultline_nemesis::net::NetBackend,
    /// The system under test: "faultline" (default) or "etcd".
    pub target: faultline_sut::TargetKind,
    /// etcd's reads: "linearizable" (default) or "serializable".
    pub read_mode: faultline_sut::etcd::ReadMode,
    /// For target "maelstrom": the node program.
    pub bin: Option<String>,
    /// For target "maelstrom": the program's arguments.
    pub args: Vec<String>,
    /// Run crash faults on a target whose restart forgets everything.
    pub allow_amnesia: bool,
    /// What the disk layer takes to be durable: "posix" (default),
    /// "journaled" or "names-durable" (docs/faults.md), or a list of them:
    /// each setting then runs once per model.
    pub disk_model: DiskModels,
    /// The inventory of hosts the members run on (docs/hosts.md).
    pub hosts: Option<String>,
    /// The workload: "register" (default) or "append" (list-append
    /// transactions).
    pub workload: faultline_rundir::spec::Workload,
    /// Append workload: most micro-operations per transaction (default 4).
    pub txn_len: Option<usize>,
    /// Append workload: most keys per transaction (default 1).
    pub txn_keys: Option<usize>,
    /// Append workload: the consistency model its histories are judged
    /// against ("strict-serializable", the default, "serializable" or
    /// "strong-session-serializable").
    pub consistency: Option<faultline_rundir::spec::Consistency>,
    /// Lock workload: the lease's time to live, ms (default 3000).
    pub lock_ttl: Option<u64>,
    /// Lock workload: the holders' writes fenced by the lock's token.
    pub fenced: bool,
    /// Lock workload: the share of holds with a client pause of 1.5 × the TTL.
    pub lock_pauses: f64,
}

impl Default for SharedRun {
    fn default() -> Self {
        let d = RunSpec::default();
        SharedRun {
            nodes: d.nodes,
            time_limit: d.time_limit_s,
            fault_interval: d.fault_interval_s,
            random_schedule: d.random_schedule,
            mix: d.mix,
            key_dist: d.key_dist,
            random_node: d.random_node,
            keys: d.keys,
            concurrency: d.concurrency,
            rate: d.rate,
            seed: d.seed,
            op_timeout: d.op_timeout_ms,
            net: d.net,
            target: d.target,
            read_mode: d.read_mode,
            bin: d.bin,
            args: d.args,
            allow_amnesia: d.allow_amnesia,
            disk_model: DiskModels::One(d.disk_model),
            hosts: d.hosts,
            workload: d.workload,
            txn_len: d.txn_len,
            txn_keys: d.txn_keys,
            consistency: None,
            lock_ttl: d.lock_ttl_ms,
            fenced: d.lock_fenced,
            lock_pauses: d.lock_pauses,
        }
    }
}
