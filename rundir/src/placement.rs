//! Where a campaign's runs ran: `placement.json` in a campaign directory
//! ([`CampaignPlacement`]: this process, local jobs or worker hosts, the
//! cores they had, the runs re-queued after a worker failed them, the
//! resumptions) and in each run directory ([`RunPlacement`]: the worker or
//! CPU set of that run, and its earlier failed attempts). Written whole
//! by a rename, like `progress.json`; `docs/run-files.md` names every field.

use serde::{Deserialize, Serialize};

/// How a campaign placed its runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One run at a time, in the controller's own process.
    Here,
    /// Up to `jobs` runs at once on this machine, each in a child process.
    Jobs,
    /// One run at a time on each worker host, over SSH.
    Workers,
}

/// A campaign's `placement.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignPlacement {
    /// How runs were placed.
    pub mode: Mode,
    /// Runs at once (1 here; `--jobs`; the number of workers).
    pub jobs: usize,
    /// The cores this machine let the controller use.
    pub cores: usize,
    /// Whether local runs were pinned to CPU sets of their own.
    pub pinned: bool,
    /// Whether runs at once shared cores (timing figures may move; verdicts do not).
    pub shared_cores: bool,
    /// The worker hosts, by name (workers only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<String>,
    /// Workers that were dropped, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<Attempt>,
    /// Runs a worker failed (not a verdict) that went back into the queue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requeued: Vec<Requeue>,
    /// Runs that failed on every try and have no result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Requeue>,
    /// Each `--resume` of the campaign: when, and how many runs it ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<Resume>,
}

/// One failed attempt, or one lost worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The worker (or `here`).
    pub on: String,
    /// What went wrong, in one line.
    pub error: String,
}

/// A run that a worker failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requeue {
    /// The run's directory in the campaign.
    pub run: String,
    /// Which attempt failed (1 is the first).
    pub attempt: usize,
    /// Where and why.
    pub failure: Attempt,
}

/// One resumption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// When, ms since the Unix epoch.
    pub at_unix_ms: u64,
    /// The runs it found missing or interrupted and ran again.
    pub runs: usize,
    /// Where the interrupted runs' directories were moved, in the campaign.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<String>,
}

/// A run's `placement.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunPlacement {
    /// Where it ran: `here`, or a worker's name.
    pub ran_on: String,
    /// The worker's SSH destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The CPUs it was pinned to, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Vec<usize>>,
    /// Whether it shared cores with other runs of the campaign.
    pub shared_cores: bool,
    /// Earlier attempts that failed (a worker lost, a setup error).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

/// Write `value` to `path` whole: a temporary file renamed over it.
pub fn write_whole<T: Serialize>(path: &std::path::Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    std::fs::rename(&tmp, path)
}
