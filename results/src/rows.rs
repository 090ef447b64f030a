//! One row per run of a campaign, read from the run's `results.json` (or
//! marked not run): what the campaign's tables, cells, election times and
//! comparisons are made of.

use std::path::Path;

use anyhow::Context;
use faultline_checker::Verdict;

use crate::expect::{Expect, Judgement};
use crate::RunResults;
use faultline_rundir::campaign::CampaignRun;

/// One row of the campaign's per-run list.
#[derive(Clone, Debug)]
pub struct RunRow {
    /// Link (relative).
    pub dir: String,
    /// Setting name.
    pub setting: String,
    /// Fault kind.
    pub fault: String,
    /// Repeat number.
    pub repeat: usize,
    /// Verdict.
    pub valid: Verdict,
    /// Availability share.
    pub availability: f64,
    /// Time without a working leader, ms: the median over the run's fault
    /// windows (the whole run's total when it had no fault window).
    pub leaderless_ms: f64,
    /// Time without a working leader over the whole run, ms (every window
    /// and every quiet period together).
    pub leaderless_total_ms: f64,
    /// Heal → first ok, ms: the median over the run's fault windows.
    pub recovery_ms: Option<f64>,
    /// p99 latency of ok ops, ms.
    pub p99_ms: f64,
    /// ok/fail/info.
    pub counts: (u64, u64, u64),
    /// When the first operation that could not be linearized completed, s.
    pub first_anomaly_s: Option<f64>,
    /// The first counterexample in a few words ("stale read on k0 at 243.7 ms").
    pub anomaly: Option<String>,
    /// Its fault windows, each one sample of every compared figure.
    pub windows: Vec<crate::analysis::FaultStats>,
    /// Why the run did not finish, if it did not (interrupted, or never
    /// run): its verdict is at best unknown and its figures are left out
    /// of the comparison.
    pub cut_short: Option<String>,
    /// What the run was expected to show.
    pub expect: Expect,
    /// Whether the nodes' logs show a safety violation.
    pub unsafe_in_logs: bool,
    /// The disk model its members' data directories were judged by (runs
    /// with disk faults only).
    pub disk_model: Option<faultline_rundir::spec::DiskModel>,
}

impl RunRow {
    /// The run against its expectation.
    pub fn judgement(&self) -> Judgement {
        crate::expect::judge(self.expect, self.valid, self.unsafe_in_logs)
    }
}

/// A verdict in the words the pages use.
pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "NOT linearizable",
        Verdict::Unknown => "unknown",
    }
}

/// Read a run's `results.json` into a campaign row. The file is read as
/// the typed [`RunResults`] it was written as: a missing or renamed field
/// is an error naming the file and the field, never a zero in the table.
pub(crate) fn run_row(dir: &Path, run: &CampaignRun) -> anyhow::Result<RunRow> {
    let path = faultline_rundir::CampaignDir::new(dir)
        .run(&run.dir)
        .results();
    let text = match faultline_rundir::read::read_text(&path).map_err(anyhow::Error::msg)? {
        Some(t) => t,
        // The campaign stopped before this run ended (Ctrl-C, a killed
        // controller): it has no results, and says so.
        None => return Ok(not_run(run, &dir.join(&run.dir))),
    };
    let r: RunResults =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    let leaderless = r
        .leaderless_per_window()
        .unwrap_or(r.elections.leaderless_ms);
    let recovery = crate::stats::median(r.faults.iter().filter_map(|f| f.recovery_ms));
    let counts = r
        .counts
        .values()
        .fold((0, 0, 0), |a, c| (a.0 + c.ok, a.1 + c.fail, a.2 + c.info));
    let txn_anomaly = r
        .txns
        .as_ref()
        .and_then(|t| t.headline().map(|h| format!("{h} (not {})", t.consistency)));
    let anomaly = txn_anomaly.or_else(|| {
        r.checker.failures.first().and_then(|f| {
            let c = f.counterexample.as_ref()?;
            let last = c
                .witness
                .iter()
                .map(|o| o.complete_ns.unwrap_or(o.invoke_ns))
                .max();
            Some(faultline_checker::witness::headline(c.kind, &f.key, last))
        })
    });
    let first_anomaly_s = r
        .checker
        .failures
        .iter()
        .filter_map(|f| {
            let op = f.counterexample.as_ref()?.failing.first()?;
            Some(op.ret_time.unwrap_or(op.call_time))
        })
        .map(|ns| ns as f64 / 1e9)
        .chain(r.txns.as_ref().and_then(|t| t.first_at_s()))
        .chain(r.findings.iter().filter_map(|f| f.at_s))
        .min_by(f64::total_cmp);
    Ok(RunRow {
        anomaly,
        dir: run.dir.clone(),
        setting: run.setting.clone(),
        fault: run.fault.clone(),
        repeat: run.repeat,
        valid: r.valid,
        availability: r.availability.share,
        leaderless_ms: leaderless,
        leaderless_total_ms: r.elections.leaderless_ms,
        recovery_ms: recovery,
        p99_ms: r.latency.get("all").map_or(0.0, |p| p.p99),
        counts,
        // The run's own record of it (`spec.json`); the campaign's plan
        // holds it only for runs that never ran, which are undecided
        // whatever they expected.
        expect: r.expect(),
        unsafe_in_logs: !r.findings.is_empty(),
        cut_short: r.interrupted.map(|s| format!("interrupted: {s}")),
        first_anomaly_s,
        disk_model: r.disk.as_ref().map(|d| d.model),
        windows: r.faults,
    })
}

/// The row of a run without results: interrupted before its history could
/// be checked, or never started.
fn not_run(run: &CampaignRun, dir: &Path) -> RunRow {
    let why = if faultline_rundir::RunDir::new(dir).history().exists() {
        "interrupted before it ended (run `faultline report` on the campaign to check its history as far as it goes)"
    } else {
        "not run: the campaign stopped before this run"
    };
    RunRow {
        windows: Vec::new(),
        anomaly: None,
        dir: run.dir.clone(),
        setting: run.setting.clone(),
        fault: run.fault.clone(),
        repeat: run.repeat,
        valid: Verdict::Unknown,
        availability: 0.0,
        leaderless_ms: 0.0,
        leaderless_total_ms: 0.0,
        recovery_ms: None,
        p99_ms: 0.0,
        counts: (0, 0, 0),
        first_anomaly_s: None,
        expect: run.expect,
        unsafe_in_logs: false,
        disk_model: None,
        cut_short: Some(why.into()),
    }
}
