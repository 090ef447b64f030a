//! What a campaign tells as it goes: the caller's watcher
//! ([`CampaignWatch`]: progress bars, one line per run) and the bookkeeping
//! after each finished run ([`Tally`]: the progress record and the page),
//! shared by the runs in this process, in child processes and on workers.

use std::path::Path;

use faultline_results::RunResults;
use faultline_rundir::records::{unix_ms, ProgressRecord};

use crate::campaign::PlannedRun;
use crate::run::Progress;

/// What the caller is told as a campaign goes.
pub trait CampaignWatch {
    /// The campaign starts: its directory, its runs, how many of them are
    /// left to run (all but on a resumption) and about how long they take.
    fn started(&self, name: &str, dir: &Path, runs: &[PlannedRun], todo: usize, approx_secs: f64);
    /// Run `i` (from 0) starts; the returned progress, if any, is ticked
    /// through the run.
    fn run_started(&self, i: usize, run: &PlannedRun) -> Option<Progress>;
    /// Run `i` ended with these results; `done` of `total` runs have.
    fn run_finished(
        &self,
        i: usize,
        done: usize,
        total: usize,
        run: &PlannedRun,
        results: &RunResults,
    );
    /// Something the user should know meanwhile (a worker lost, a run
    /// re-queued), in one line.
    fn note(&self, line: &str);
}

/// How often a run is tried in all on workers (a run that a worker failed
/// for a reason of its own is re-queued at most twice).
pub const MAX_ATTEMPTS: usize = 3;

/// The bookkeeping after each finished run: the watcher, the progress
/// record and the campaign page.
pub(crate) struct Tally<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) campaign: &'a faultline_rundir::CampaignDir,
    pub(crate) watch: &'a dyn CampaignWatch,
    pub(crate) total: usize,
    pub(crate) progress: ProgressRecord,
    pub(crate) planned: &'a dyn Fn(&PlannedRun) -> f64,
}

impl Tally<'_> {
    pub(crate) fn finished(&mut self, i: usize, run: &PlannedRun, results: &RunResults) {
        let p = &mut self.progress;
        p.done += 1;
        self.watch.run_finished(i, p.done, self.total, run, results);
        p.updated_unix_ms = unix_ms();
        p.done_planned_s += (self.planned)(run);
        p.remaining_planned_s = (p.remaining_planned_s - (self.planned)(run)).max(0.0);
        p.last_run = Some(run.dir.clone());
        p.last_line = Some(results.line());
        // Keep the campaign page current as runs finish: the page first,
        // then the progress a watching browser polls for.
        let _ = faultline_results::write_campaign_report_partial(self.dir, Some(p));
        let _ = p.write(self.campaign);
    }
}
