//! The settings a controller chooses for every node of a cluster (timeouts,
//! protocol options, known-bug variants), as a type: the runner builds one
//! from a run's spec, and [`NodeSettings::to_args`] is the one place outside
//! the node's own flag parser that knows the flags' names (a test parses
//! them back with [`crate::cli::NodeArgs`]). Per-node settings (id,
//! addresses, peers, data directory) are the process layer's business.

use crate::bugs::UnsafeBug;
use crate::cli::MillisRange;
use crate::raft;
use faultline_rundir::spec::defaults;

/// Timeouts and options shared by every node of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSettings {
    /// Randomized election timeout range, ms.
    pub election_timeout: MillisRange,
    /// Leader heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Length of one Raft tick, ms (timeouts are rounded up to whole ticks).
    pub tick_ms: u64,
    /// How long a client request may wait for its entry to commit, ms.
    pub request_timeout_ms: u64,
    /// Most log entries per AppendEntries (the node's default when none).
    pub max_append_entries: Option<u64>,
    /// Applied entries between snapshots, 0 for none (the node's default
    /// when none).
    pub snapshot_entries: Option<u64>,
    /// Campaign with a pre-vote round first.
    pub pre_vote: bool,
    /// Leaders step down without a majority's contact.
    pub check_quorum: bool,
    /// Seed of the election-timeout RNG (random when none).
    pub seed: Option<u64>,
    /// UNSAFE known-bug variants (empty: the correct node).
    pub unsafe_bugs: Vec<UnsafeBug>,
    /// Fold every write that queues up during one fsync into the next (off:
    /// one fsync per entry, for benchmarks).
    pub group_commit: bool,
    /// The cluster's name (the node's default when none): nodes of another
    /// cluster that reach a peer port are turned away.
    pub cluster_id: Option<String>,
}

/// A cluster name no other run on this machine will pick: the start time
/// and the process's random hasher keys, in hex.
pub fn fresh_cluster_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("c{:016x}", h.finish())
}

impl NodeSettings {
    /// The node's default request timeout, ms.
    pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 2000;
    /// The most entries per AppendEntries allowed.
    pub const MAX_APPEND_ENTRIES_LIMIT: u64 = 1_000_000;

    /// The core's configuration these settings give, validated (the
    /// election timeout must exceed the heartbeat, in whole ticks).
    pub fn raft_config(&self) -> Result<raft::Config, String> {
        if let Some(m) = self.max_append_entries {
            if !(1..=Self::MAX_APPEND_ENTRIES_LIMIT).contains(&m) {
                return Err(format!(
                    "max_append_entries must be between 1 and {} (got {m})",
                    Self::MAX_APPEND_ENTRIES_LIMIT
                ));
            }
        }
        crate::cli::raft_config(
            self.election_timeout,
            self.heartbeat_ms,
            self.tick_ms,
            self.pre_vote,
            self.check_quorum,
        )
    }

    /// The node's flags for these settings.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--election-timeout".to_string(),
            self.election_timeout.to_string(),
            "--heartbeat".to_string(),
            self.heartbeat_ms.to_string(),
            "--tick".to_string(),
            self.tick_ms.to_string(),
            "--request-timeout".to_string(),
            self.request_timeout_ms.to_string(),
        ];
        if let Some(seed) = self.seed {
            a.extend(["--seed".to_string(), seed.to_string()]);
        }
        if self.pre_vote {
            a.push("--pre-vote".into());
        }
        if self.check_quorum {
            a.push("--check-quorum".into());
        }
        if let Some(m) = self.max_append_entries {
            a.extend(["--max-append-entries".to_string(), m.to_string()]);
        }
        if let Some(n) = self.snapshot_entries {
            a.extend(["--snapshot-entries".to_string(), n.to_string()]);
            // A small threshold is asked for to make snapshots happen: keep
            // few entries behind them too, so that lagging followers need them.
            a.extend([
                "--snapshot-trailing".to_string(),
                (n / 10).min(1_000).to_string(),
            ]);
        }
        for b in &self.unsafe_bugs {
            a.extend(["--unsafe-bug".to_string(), b.to_string()]);
        }
        if !self.group_commit {
            a.push("--no-group-commit".into());
        }
        if let Some(c) = &self.cluster_id {
            a.extend(["--cluster-id".to_string(), c.clone()]);
        }
        a
    }
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            election_timeout: defaults::ELECTION_TIMEOUT,
            heartbeat_ms: defaults::HEARTBEAT_MS,
            tick_ms: defaults::TICK_MS,
            request_timeout_ms: Self::DEFAULT_REQUEST_TIMEOUT_MS,
            max_append_entries: None,
            snapshot_entries: None,
            pre_vote: false,
            check_quorum: false,
            seed: None,
            unsafe_bugs: Vec::new(),
            group_commit: true,
            cluster_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::NodeArgs;
    use clap::Parser;

    #[test]
    fn the_flags_parse_back_into_the_same_settings() {
        let s = NodeSettings {
            election_timeout: MillisRange { min: 60, max: 120 },
            heartbeat_ms: 20,
            tick_ms: 1,
            request_timeout_ms: 900,
            max_append_entries: Some(1),
            snapshot_entries: None,
            pre_vote: true,
            check_quorum: true,
            seed: Some(7),
            unsafe_bugs: vec![
                "stale-read".parse().unwrap(),
                "forget-vote".parse().unwrap(),
            ],
            group_commit: false,
            cluster_id: Some(fresh_cluster_id()),
        };
        let mut argv = vec!["faultline-node", "--id", "n1", "--listen", "127.0.0.1:1"];
        argv.extend(["--client", "127.0.0.1:2", "--data-dir", "/tmp/x"]);
        let args = s.to_args();
        let parsed = NodeArgs::try_parse_from(argv.into_iter().map(String::from).chain(args))
            .expect("the node takes its settings' flags");
        assert_eq!(parsed.election_timeout, s.election_timeout);
        assert_eq!(parsed.heartbeat, s.heartbeat_ms);
        assert_eq!(parsed.tick, s.tick_ms);
        assert_eq!(parsed.request_timeout, s.request_timeout_ms);
        assert_eq!(Some(parsed.max_append_entries), s.max_append_entries);
        assert!(parsed.pre_vote && parsed.check_quorum);
        assert_eq!(parsed.seed, s.seed);
        assert_eq!(parsed.unsafe_bugs, s.unsafe_bugs);
        assert!(parsed.no_group_commit);
        assert_eq!(Some(parsed.cluster_id), s.cluster_id);
        assert_ne!(fresh_cluster_id(), fresh_cluster_id());
    }

    #[test]
    fn the_defaults_are_the_nodes_own() {
        let argv = ["faultline-node", "--id", "n1", "--listen", "127.0.0.1:1"];
        let parsed = NodeArgs::try_parse_from(argv.into_iter().chain([
            "--client",
            "127.0.0.1:2",
            "--data-dir",
            "/tmp/x",
        ]))
        .unwrap();
        let d = NodeSettings::default();
        assert_eq!(parsed.election_timeout, d.election_timeout);
        assert_eq!(parsed.heartbeat, d.heartbeat_ms);
        assert_eq!(parsed.tick, d.tick_ms);
        assert_eq!(parsed.request_timeout, d.request_timeout_ms);
        assert_eq!(!parsed.no_group_commit, d.group_commit);
    }

    #[test]
    fn an_election_timeout_not_above_the_heartbeat_is_refused() {
        let s = NodeSettings {
            election_timeout: MillisRange { min: 50, max: 50 },
            ..NodeSettings::default()
        };
        assert!(s.raft_config().is_err());
        assert!(NodeSettings::default().raft_config().is_ok());
    }
}
