//! What defines one run — [`RunSpec`], stored as `spec.json` — with the one
//! set of default values that `faultline run`, campaign files and presets
//! all use ([`defaults`]), its validation, and its typed conversion into
//! the node's settings and the workload's configuration.

use std::time::Duration;

use faultline_nemesis::fault::{parse_list, Fault};
use faultline_node::bugs::UnsafeBug;
use faultline_node::cli::MillisRange;
use faultline_node::settings::NodeSettings;
use faultline_workloads::register::{KeyDist, RegisterConfig};
use serde::{Deserialize, Serialize};

/// The default of every run setting. `faultline run`'s flags, a campaign's
/// `[run]` and `[[setting]]` tables and the presets all start from these.
pub mod defaults {
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
    /// Keys.
    pub const KEYS: usize = 5;
    /// Client processes.
    pub const CONCURRENCY: usize = 10;
    /// Target operations per second, all clients together.
    pub const RATE: f64 = 100.0;
    /// Election timeout range, ms.
    pub const ELECTION_TIMEOUT: &str = "150..300";
    /// Heartbeat interval, ms.
    pub const HEARTBEAT_MS: u64 = 50;
    /// Client timeout per operation, ms.
    pub const OP_TIMEOUT_MS: u64 = 1000;
    /// Shares of read, write and cas operations.
    pub const MIX: [f64; 3] = [50.0, 30.0, 20.0];
    /// The same, as `faultline run --mix` writes it.
    pub const MIX_FLAG: &str = "50,30,20";
    /// A campaign's base seed (`faultline run` picks a random one instead).
    pub const SEED: u64 = 1;
}

/// Everything that defines a run; stored as `spec.json`, so a run can be
/// repeated from it.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// The workload (`register`).
    pub workload: String,
    /// Keys.
    pub keys: usize,
    /// Concurrent client processes.
    pub concurrency: usize,
    /// Target ops/s (0: as fast as possible).
    pub rate: f64,
    /// Length of the main phase, seconds.
    pub time_limit_s: f64,
    /// Election timeout range, ms.
    pub election_timeout: String,
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
            workload: defaults::WORKLOAD.into(),
            keys: defaults::KEYS,
            concurrency: defaults::CONCURRENCY,
            rate: defaults::RATE,
            time_limit_s: defaults::TIME_LIMIT_S,
            election_timeout: defaults::ELECTION_TIMEOUT.into(),
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
        }
    }
}

impl RunSpec {
    /// Check every setting; returns the parsed faults.
    pub fn validate(&self) -> anyhow::Result<Vec<Fault>> {
        anyhow::ensure!(
            (1..=9).contains(&self.nodes),
            "--nodes must be between 1 and 9 (got {})",
            self.nodes
        );
        anyhow::ensure!(
            self.workload == defaults::WORKLOAD,
            "unknown workload '{}' (known: register)",
            self.workload
        );
        anyhow::ensure!(self.time_limit_s > 0.0, "--time-limit must be positive");
        anyhow::ensure!(
            self.fault_interval_s > 0.0,
            "--fault-interval must be positive"
        );
        self.node_settings()?
            .raft_config()
            .map_err(|e| anyhow::anyhow!("setting '{}': {e}", self.setting))?;
        self.register_config()
            .validate()
            .map_err(|e| anyhow::anyhow!(e))?;
        parse_list(&self.nemesis, self.nodes).map_err(|e| anyhow::anyhow!("--nemesis: {e}"))
    }

    /// The nodes' settings for this run.
    pub fn node_settings(&self) -> anyhow::Result<NodeSettings> {
        let election_timeout: MillisRange = self
            .election_timeout
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--election-timeout: {e}"))?;
        let unsafe_bugs = self
            .unsafe_bug
            .iter()
            .map(|b| b.parse::<UnsafeBug>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--unsafe-bug: {e}"))?;
        Ok(NodeSettings {
            election_timeout,
            heartbeat_ms: self.heartbeat_ms,
            request_timeout_ms: self.op_timeout_ms,
            max_append_entries: self.max_append_entries,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            seed: Some(self.seed),
            unsafe_bugs,
            cluster_id: Some(faultline_node::settings::fresh_cluster_id()),
            ..NodeSettings::default()
        })
    }

    /// The workload's configuration for this run.
    pub fn register_config(&self) -> RegisterConfig {
        RegisterConfig {
            keys: self.keys,
            concurrency: self.concurrency,
            rate: self.rate,
            key_dist: self.key_dist,
            mix: (self.mix[0], self.mix[1], self.mix[2]),
            random_node: self.random_node,
            timeout: Duration::from_millis(self.op_timeout_ms),
            seed: self.seed,
        }
    }
}

/// Parse `R,W,C` shares of reads, writes and cas (any positive scale).
pub fn parse_mix(s: &str) -> Result<[f64; 3], String> {
    let parts: Vec<f64> = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .map_err(|_| format!("'{p}' in --mix {s} is not a number"))
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [r, w, c] if *r >= 0.0 && *w >= 0.0 && *c >= 0.0 && r + w + c > 0.0 => Ok([*r, *w, *c]),
        _ => Err(format!(
            "--mix {s}: give three non-negative shares READ,WRITE,CAS, not all zero"
        )),
    }
}

/// Parse a key distribution: `uniform` or `zipf`.
pub fn parse_key_dist(s: &str) -> Result<KeyDist, String> {
    match s {
        "uniform" => Ok(KeyDist::Uniform),
        "zipf" | "zipfian" => Ok(KeyDist::Zipf),
        other => Err(format!("'{other}' is not uniform or zipf")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_is_valid_and_its_mix_flag_says_the_same() {
        let spec = RunSpec::default();
        assert!(!spec.validate().unwrap().is_empty());
        assert_eq!(parse_mix(defaults::MIX_FLAG).unwrap(), defaults::MIX);
    }

    #[test]
    fn a_bad_timeout_or_bug_is_refused_by_name() {
        let bad = RunSpec {
            election_timeout: "40..40".into(),
            ..RunSpec::default()
        };
        let e = format!("{:#}", bad.validate().unwrap_err());
        assert!(e.contains("setting 'run'"), "{e}");
        let bad = RunSpec {
            unsafe_bug: vec!["no-such-bug".into()],
            ..RunSpec::default()
        };
        assert!(format!("{:#}", bad.validate().unwrap_err()).contains("--unsafe-bug"));
        let bad = RunSpec {
            max_append_entries: Some(0),
            ..RunSpec::default()
        };
        assert!(format!("{:#}", bad.validate().unwrap_err()).contains("max_append_entries"));
    }
}
