//! What a command prints with `--json` (one line), and the verdict every
//! record of a run or campaign carries: one record type each, so that the
//! writer and every reader (a script, a test) read the same fields.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The verdict for a key or a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations explains every result.
    Linearizable,
    /// No order does.
    NotLinearizable,
    /// The budget ran out first.
    Unknown,
}

impl Verdict {
    /// The exit status of a command whose verdict this is: 0
    /// linearizable, 1 not, 3 undecided (the one place this is decided;
    /// README's exit-code table).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Linearizable => 0,
            Verdict::NotLinearizable => 1,
            Verdict::Unknown => 3,
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Verdict::Linearizable => s.serialize_bool(true),
            Verdict::NotLinearizable => s.serialize_bool(false),
            Verdict::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(Verdict::Linearizable),
            serde_json::Value::Bool(false) => Ok(Verdict::NotLinearizable),
            serde_json::Value::String(s) if s == "unknown" => Ok(Verdict::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "a verdict is true, false or \"unknown\", not {other}"
            ))),
        }
    }
}

/// What `faultline run --json` and `faultline campaign --json` print.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignLine {
    /// The campaign's directory in the store.
    pub campaign: PathBuf,
    /// Its page.
    pub report: PathBuf,
    /// Every run's verdict together.
    pub valid: Verdict,
    /// Runs in all.
    pub runs: usize,
    /// Runs that are not linearizable.
    pub not_linearizable: Vec<String>,
    /// Runs whose verdict is unknown.
    pub unknown: Vec<String>,
    /// Runs whose outcome was not what they expected (`DIR: what happened`).
    pub unexpected: Vec<String>,
    /// Runs whose expectation is undecided.
    pub undecided: Vec<String>,
    /// Positive controls that were caught.
    pub controls_caught: usize,
    /// The exit status: 0 as expected, 1 not, 3 undecided.
    pub exit: u8,
    /// Election times after crashes of the leader, per setting.
    pub elections: Vec<ElectionLine>,
}

/// One setting's election times in a [`CampaignLine`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElectionLine {
    /// The setting.
    pub setting: String,
    /// Its election timeout range, ms, as written.
    pub election_timeout: Option<String>,
    /// Crashes of the leader.
    pub trials: usize,
    /// Crashes after which no other node became leader before the next fault.
    pub no_leader: usize,
    /// Crashes of a node that was no longer the leader: not trials.
    #[serde(default)]
    pub missed: usize,
    /// Mean, median, p99 and longest election time, ms.
    pub mean_ms: Option<f64>,
    /// Median, ms.
    pub median_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Longest, ms.
    pub max_ms: Option<f64>,
    /// What the Raft paper reports for this range, if it does.
    pub paper: Option<String>,
}

/// What `faultline compare --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareLine {
    /// The comparison's page.
    pub report: PathBuf,
    /// Cells both campaigns ran.
    pub shared: usize,
    /// Figures clearly better on one side.
    pub clear_differences: usize,
    /// Cells only campaign A ran.
    pub only_a: usize,
    /// Cells only campaign B ran.
    pub only_b: usize,
    /// The settings compared, (A's, B's).
    pub pairs: Vec<(String, String)>,
}
