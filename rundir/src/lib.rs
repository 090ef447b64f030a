//! The run directory and the campaign directory: the one place their files
//! are named. Every writer (the runner, the cluster, the benchmarks) and
//! every reader (the reports) goes through these, so a file cannot be
//! written under one name and looked for under another. What each file
//! holds is in the project's `docs/campaigns.md` (the store's layout) and
//! `docs/history-format.md` (the history).
#![deny(missing_docs)]

pub mod campaign;
pub mod placement;
pub mod quote;
pub mod read;
pub mod records;
pub mod spec;
pub mod summary;

use std::path::{Path, PathBuf};

/// The history: every invocation and completion, JSON Lines.
pub const HISTORY: &str = "history.jsonl";
/// The run's analysis and verdict.
pub const RESULTS: &str = "results.json";
/// What defines the run.
pub const SPEC: &str = "spec.json";
/// The fault schedule, planned and executed.
pub const SCHEDULE: &str = "schedule.json";
/// The nodes' statuses, sampled.
pub const STATUS: &str = "status.jsonl";
/// The links' counters.
pub const LINKS: &str = "links.json";
/// The nodes' logs and data directories.
pub const NODES: &str = "nodes";
/// A directory's page.
pub const INDEX: &str = "index.html";
/// A campaign's list of settings, faults and runs.
pub const CAMPAIGN: &str = "campaign.json";
/// A campaign's progress, rewritten as its runs finish.
pub const PROGRESS: &str = "progress.json";
/// Where a campaign's runs, or one run, ran.
pub const PLACEMENT: &str = "placement.json";
/// The hosts a `--hosts` run ran its members on.
pub const HOSTS: &str = "hosts.json";
/// What each member's disk layer counted, and what every disk fault did
/// (a run with disk faults only).
pub const DISK: &str = "disk.json";

/// The data files of a run that its page links to, in order.
pub const RUN_FILES: &[&str] = &[HISTORY, RESULTS, SCHEDULE, SPEC, STATUS, LINKS];

/// One run's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir(PathBuf);

impl RunDir {
    /// The run directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir(path.into())
    }
    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// [`HISTORY`].
    pub fn history(&self) -> PathBuf {
        self.0.join(HISTORY)
    }
    /// [`RESULTS`].
    pub fn results(&self) -> PathBuf {
        self.0.join(RESULTS)
    }
    /// [`PLACEMENT`].
    pub fn placement(&self) -> PathBuf {
        self.0.join(PLACEMENT)
    }
    /// [`HOSTS`].
    pub fn hosts(&self) -> PathBuf {
        self.0.join(HOSTS)
    }
    /// [`SPEC`].
    pub fn spec(&self) -> PathBuf {
        self.0.join(SPEC)
    }
    /// [`SCHEDULE`].
    pub fn schedule(&self) -> PathBuf {
        self.0.join(SCHEDULE)
    }
    /// [`STATUS`].
    pub fn status(&self) -> PathBuf {
        self.0.join(STATUS)
    }
    /// [`LINKS`].
    pub fn links(&self) -> PathBuf {
        self.0.join(LINKS)
    }
    /// [`NODES`]: the nodes' logs (`nX.log`) and data directories (`nX/`).
    pub fn nodes(&self) -> PathBuf {
        self.0.join(NODES)
    }
    /// [`DISK`].
    pub fn disk(&self) -> PathBuf {
        self.0.join(DISK)
    }
    /// Where node `id`'s disk layer keeps its files during the run.
    pub fn node_backing(&self, id: &str) -> PathBuf {
        self.nodes().join(format!(".{id}.disk"))
    }
    /// Node `id`'s log.
    pub fn node_log(&self, id: &str) -> PathBuf {
        self.nodes().join(format!("{id}.log"))
    }
    /// Node `id`'s data directory.
    pub fn node_data(&self, id: &str) -> PathBuf {
        self.nodes().join(id)
    }
    /// [`INDEX`].
    pub fn index(&self) -> PathBuf {
        self.0.join(INDEX)
    }
}

/// One campaign's directory (its runs are directories inside it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignDir(PathBuf);

impl CampaignDir {
    /// The campaign directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> CampaignDir {
        CampaignDir(path.into())
    }
    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// [`CAMPAIGN`].
    pub fn campaign(&self) -> PathBuf {
        self.0.join(CAMPAIGN)
    }
    /// [`PROGRESS`].
    pub fn progress(&self) -> PathBuf {
        self.0.join(PROGRESS)
    }
    /// [`PLACEMENT`].
    pub fn placement(&self) -> PathBuf {
        self.0.join(PLACEMENT)
    }
    /// The campaign's own [`RESULTS`].
    pub fn results(&self) -> PathBuf {
        self.0.join(RESULTS)
    }
    /// [`INDEX`].
    pub fn index(&self) -> PathBuf {
        self.0.join(INDEX)
    }
    /// Run `dir` of the campaign.
    pub fn run(&self, dir: &str) -> RunDir {
        RunDir::new(self.0.join(dir))
    }
}

/// Whether `name` is a plain directory or file name: one path component,
/// not `.` or `..`, no separator. Every path read from a store file (a
/// campaign's run directories) must be one, so that reading a hostile
/// store never writes outside it.
pub fn plain_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    ) && !name.contains('/')
        && !name.contains('\0')
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_names_are_plain() {
        for ok in ["r001-default-partition", "a b", "x.y"] {
            assert!(super::plain_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "/x", "a/b", "a/", "/", "a\0b"] {
            assert!(!super::plain_name(bad), "{bad:?}");
        }
    }
}
