//! The core's settings, in ticks.

use thiserror::Error;

/// The settings of one Raft server. Times are in ticks (fields named
/// `*_ticks`); the node turns its millisecond settings into ticks
/// (`NodeSettings::raft_config`, from the one set of defaults in
/// `faultline_rundir::spec::defaults`). The defaults below are the core's
/// own, for the simulation, where a tick is the unit of time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Lower bound of the randomized election timeout, ticks (inclusive).
    /// Default 150 ticks.
    pub election_timeout_min_ticks: u64,
    /// Upper bound of the randomized election timeout, ticks (inclusive).
    /// Default 300 ticks.
    pub election_timeout_max_ticks: u64,
    /// Interval between a leader's heartbeats, ticks. Default 50 ticks.
    pub heartbeat_ticks: u64,
    /// Campaign with a pre-vote round first (thesis §9.6). Default off.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a majority within an
    /// election timeout, and followers ignore votes while they hear from a
    /// leader. Default off.
    pub check_quorum: bool,
    /// The most entries one AppendEntries carries. Default 256.
    pub max_entries_per_message: usize,
    /// Take a snapshot once this many applied entries follow the last one
    /// (0: never). Default 0 in the core; the node chooses its own default.
    pub snapshot_entries: u64,
    /// Entries kept in the log behind a snapshot just taken, so that a
    /// follower a little behind catches up by entries rather than by the
    /// whole snapshot. Default 0.
    pub snapshot_trailing: u64,
    /// The most snapshot bytes one InstallSnapshot carries. Default 1 MiB.
    pub snapshot_chunk_bytes: usize,
    /// UNSAFE, for testing the bench (`--unsafe-bug commit-old-term`): a
    /// leader commits entries of earlier terms by counting replicas (the
    /// bug of the Raft paper's Figure 8). Default off.
    pub unsafe_commit_old_term: bool,
    /// UNSAFE (`--unsafe-bug skip-prev-check`): a follower accepts
    /// AppendEntries whose prevLogTerm does not match its log. Default off.
    pub unsafe_skip_prev_check: bool,
    /// UNSAFE (`--unsafe-bug one-step-membership`): a membership change is
    /// one configuration entry, with no learner catch-up and no joint
    /// configuration. Default off.
    pub unsafe_one_step_membership: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            election_timeout_min_ticks: 150,
            election_timeout_max_ticks: 300,
            heartbeat_ticks: 50,
            pre_vote: false,
            check_quorum: false,
            max_entries_per_message: 256,
            snapshot_entries: 0,
            snapshot_trailing: 0,
            snapshot_chunk_bytes: 1 << 20,
            unsafe_commit_old_term: false,
            unsafe_skip_prev_check: false,
            unsafe_one_step_membership: false,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// min > max, or zero.
    #[error("election timeout range {min}..{max} is empty or zero")]
    EmptyElectionRange {
        /// Lower bound.
        min: u64,
        /// Upper bound.
        max: u64,
    },
    /// The heartbeat must come well before followers time out.
    #[error(
        "heartbeat interval {heartbeat} must be shorter than the election timeout minimum {min}"
    )]
    HeartbeatTooSlow {
        /// Heartbeat interval.
        heartbeat: u64,
        /// Election timeout minimum.
        min: u64,
    },
    /// Zero heartbeat or zero batch.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

impl Config {
    /// Check the cross-field constraints.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.election_timeout_min_ticks == 0
            || self.election_timeout_min_ticks > self.election_timeout_max_ticks
        {
            return Err(ConfigError::EmptyElectionRange {
                min: self.election_timeout_min_ticks,
                max: self.election_timeout_max_ticks,
            });
        }
        if self.heartbeat_ticks == 0 {
            return Err(ConfigError::Zero("heartbeat interval"));
        }
        if self.max_entries_per_message == 0 {
            return Err(ConfigError::Zero("max entries per message"));
        }
        if self.snapshot_chunk_bytes == 0 {
            return Err(ConfigError::Zero("snapshot chunk size"));
        }
        if self.heartbeat_ticks >= self.election_timeout_min_ticks {
            return Err(ConfigError::HeartbeatTooSlow {
                heartbeat: self.heartbeat_ticks,
                min: self.election_timeout_min_ticks,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_impossible_settings() {
        let ok = Config::default();
        assert_eq!(ok.validate(), Ok(()));
        let c = Config {
            election_timeout_min_ticks: 300,
            election_timeout_max_ticks: 150,
            ..ok.clone()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::EmptyElectionRange { .. })
        ));
        let c = Config {
            heartbeat_ticks: 150,
            ..ok.clone()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::HeartbeatTooSlow { .. })
        ));
        let c = Config {
            heartbeat_ticks: 0,
            ..ok
        };
        assert!(matches!(c.validate(), Err(ConfigError::Zero(_))));
    }
}
