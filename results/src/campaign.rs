//! A campaign's page from its stored files: `campaign.json` (the index the
//! runner writes), each run's `results.json`, the comparison of timeout
//! settings per fault, and the campaign's own `results.json` and plots.

use crate::RunResults;
use std::path::Path;

use anyhow::Context;
use faultline_checker::Verdict;
use faultline_rundir::records::ProgressRecord;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cells::Figure;
use crate::expect::{Expect, Judgement};
use crate::stats::Summary;
use crate::{html, plots};

/// A setting of a campaign, as stored in `campaign.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignSetting {
    /// Its name.
    pub name: String,
    /// Its timeouts, in words.
    pub description: String,
    /// The UNSAFE known-bug variant its nodes run, if any (a bug hunt).
    #[serde(default)]
    pub unsafe_bug: Option<String>,
    /// Its election timeout range, ms, as written (`150..300`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_timeout: Option<String>,
}

fn plain_dir<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let dir = String::deserialize(d)?;
    if faultline_rundir::plain_name(&dir) {
        Ok(dir)
    } else {
        Err(serde::de::Error::custom(format!(
            "run directory {} is not a plain name inside the campaign",
            faultline_rundir::quote::quoted(&dir)
        )))
    }
}

/// One run of a campaign, as stored in `campaign.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignRun {
    /// Its directory, relative to the campaign's: a plain name, refused
    /// otherwise when the file is read (a `dir` of `../x` or `/x` would
    /// make a report write outside the store).
    #[serde(deserialize_with = "plain_dir")]
    pub dir: String,
    /// Setting name.
    pub setting: String,
    /// Fault kind (as given).
    pub fault: String,
    /// Repeat number, from 1.
    pub repeat: usize,
    /// Its seed.
    pub seed: u64,
    /// What it is expected to show (a positive control expects to be caught).
    #[serde(default)]
    pub expect: Expect,
}

/// `campaign.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignIndex {
    /// The campaign's name.
    pub name: String,
    /// Settings, in order.
    pub settings: Vec<CampaignSetting>,
    /// Fault kinds, in order.
    pub faults: Vec<String>,
    /// Runs.
    pub runs: Vec<CampaignRun>,
}

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
}

impl RunRow {
    /// The run against its expectation.
    pub fn judgement(&self) -> Judgement {
        self.expect.judge(self.valid, self.unsafe_in_logs)
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
fn run_row(dir: &Path, run: &CampaignRun) -> anyhow::Result<RunRow> {
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
    let anomaly = r.checker.failures.first().and_then(|f| {
        let c = f.counterexample.as_ref()?;
        let last = c
            .witness
            .iter()
            .map(|o| o.complete_ns.unwrap_or(o.invoke_ns))
            .max();
        Some(faultline_checker::witness::headline(c.kind, &f.key, last))
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
        expect: run.expect,
        unsafe_in_logs: !r.findings.is_empty(),
        cut_short: r.interrupted.map(|s| format!("interrupted: {s}")),
        first_anomaly_s,
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
        cut_short: Some(why.into()),
    }
}

/// The campaign's overall verdict and where its page is.
#[derive(Clone, Debug, Serialize)]
pub struct CampaignSummary {
    /// Overall verdict.
    pub valid: Verdict,
    /// Runs that are not linearizable.
    pub invalid_runs: Vec<String>,
    /// Runs whose verdict is unknown.
    pub unknown_runs: Vec<String>,
    /// Runs in all.
    pub runs: usize,
    /// Election times after crashes of the leader, per setting (the Raft
    /// paper's Figure 16); empty when the campaign crashed no leader.
    pub elections: Vec<crate::elections::ElectionTimes>,
    /// Runs whose outcome was not what they expected, each as
    /// `DIR: what happened`, in the campaign's order.
    pub unexpected: Vec<String>,
    /// Runs whose verdict is unknown (their expectation undecided).
    pub undecided: Vec<String>,
    /// Positive controls (runs expected to be caught) that were caught.
    pub controls_caught: usize,
    /// Runs expected linearizable that were.
    pub clean: usize,
}

impl CampaignSummary {
    /// The campaign's exit status: 0 when every run is as expected, 1 when
    /// any is not, 3 when none is unexpected but some are undecided.
    pub fn exit_code(&self) -> u8 {
        let worst = if !self.unexpected.is_empty() {
            Judgement::Unexpected
        } else if !self.undecided.is_empty() {
            Judgement::Undecided
        } else {
            Judgement::AsExpected
        };
        worst.exit_code()
    }
}

/// Every run's row, and the comparison's cells.
fn rows_and_cells(
    dir: &Path,
    index: &CampaignIndex,
) -> anyhow::Result<(Vec<RunRow>, Vec<Vec<crate::cells::Cell>>)> {
    let rows: Vec<RunRow> = index
        .runs
        .iter()
        .map(|r| run_row(dir, r))
        .collect::<anyhow::Result<_>>()?;
    let settings: Vec<String> = index.settings.iter().map(|s| s.name.clone()).collect();
    // A run cut short would bias the comparison: only whole runs count.
    let whole: Vec<RunRow> = rows
        .iter()
        .filter(|r| r.cut_short.is_none())
        .cloned()
        .collect();
    let cells = crate::cells::cells(&settings, &index.faults, &whole);
    Ok((rows, cells))
}

/// A campaign read back from the store: its index, every run's row (runs
/// not finished marked cut short) and the comparison's cells.
pub struct LoadedCampaign {
    /// `campaign.json`.
    pub index: CampaignIndex,
    /// Every run's row, in the campaign's order.
    pub rows: Vec<RunRow>,
    /// Settings × faults, from the whole runs only.
    pub cells: Vec<Vec<crate::cells::Cell>>,
}

/// A campaign's `campaign.json` (every run directory a plain name).
pub fn read_index(path: &Path) -> anyhow::Result<CampaignIndex> {
    faultline_rundir::records::read_record(path)
        .map_err(anyhow::Error::msg)?
        .with_context(|| format!("reading {}: no such file", path.display()))
}

/// Read a campaign directory (one still running too: its unfinished runs
/// are cut short and left out of the cells).
pub fn load_campaign(dir: &Path) -> anyhow::Result<LoadedCampaign> {
    let path = faultline_rundir::CampaignDir::new(dir).campaign();
    let index = read_index(&path)?;
    let (rows, cells) = rows_and_cells(dir, &index)?;
    Ok(LoadedCampaign { index, rows, cells })
}

/// The campaign's box plots of the cells so far.
fn draw_plots(
    dir: &Path,
    index: &CampaignIndex,
    cells: &[Vec<crate::cells::Cell>],
) -> anyhow::Result<()> {
    let settings: Vec<String> = index.settings.iter().map(|s| s.name.clone()).collect();
    let err = |e: Box<dyn std::error::Error>| anyhow::anyhow!("drawing the campaign plots: {e}");
    for (file, figure) in [
        ("campaign-availability.svg", Figure::Availability),
        ("campaign-leaderless.svg", Figure::Leaderless),
        ("campaign-recovery.svg", Figure::HealToOk),
    ] {
        let summaries: Vec<Vec<Option<Summary>>> = cells
            .iter()
            .map(|row| row.iter().map(|c| c.summary(figure).cloned()).collect())
            .collect();
        plots::grouped_boxes(
            &dir.join(file),
            &format!(
                "{}: each fault window one sample; median, quartiles, 95 % interval",
                figure.title()
            ),
            &index.faults,
            &settings,
            &summaries,
            figure == Figure::Availability,
        )
        .map_err(err)?;
    }
    Ok(())
}

/// Write a campaign's page from `campaign.json` and its runs' `results.json`.
pub fn write_campaign_report(dir: &Path) -> anyhow::Result<CampaignSummary> {
    let LoadedCampaign { index, rows, cells } = load_campaign(dir)?;
    draw_plots(dir, &index, &cells)?;
    let err = |e: Box<dyn std::error::Error>| anyhow::anyhow!("drawing the campaign plots: {e}");
    let settings: Vec<(String, Option<String>)> = index
        .settings
        .iter()
        .map(|s| (s.name.clone(), s.election_timeout.clone()))
        .collect();
    let elections = crate::elections::election_times(&settings, &rows);
    if !elections.is_empty() {
        let series: Vec<(String, Vec<f64>, usize, usize)> = elections
            .iter()
            .map(|e| {
                let place = index
                    .settings
                    .iter()
                    .position(|s| s.name == e.setting)
                    .unwrap_or(0);
                (e.setting.clone(), e.samples.clone(), e.crashes, place)
            })
            .collect();
        plots::election_cdf(&dir.join("campaign-elections.svg"), &series).map_err(err)?;
    }
    write_page(dir, &index, &rows, &cells, &elections, None)?;
    let invalid_runs: Vec<String> = rows
        .iter()
        .filter(|r| r.valid == Verdict::NotLinearizable)
        .map(|r| r.dir.clone())
        .collect();
    let unknown_runs: Vec<String> = rows
        .iter()
        .filter(|r| r.valid == Verdict::Unknown)
        .map(|r| r.dir.clone())
        .collect();
    let valid = if !invalid_runs.is_empty() {
        Verdict::NotLinearizable
    } else if !unknown_runs.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    };
    let judged = |j: Judgement| rows.iter().filter(move |r| r.judgement() == j);
    let summary = CampaignSummary {
        valid,
        invalid_runs,
        unknown_runs,
        runs: rows.len(),
        elections,
        unexpected: judged(Judgement::Unexpected)
            .map(|r| format!("{}: {}", r.dir, r.expect.miss()))
            .collect(),
        undecided: judged(Judgement::Undecided)
            .map(|r| r.dir.clone())
            .collect(),
        controls_caught: judged(Judgement::AsExpected)
            .filter(|r| r.expect.is_control())
            .count(),
        clean: judged(Judgement::AsExpected)
            .filter(|r| !r.expect.is_control())
            .count(),
    };
    let runs_json: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"dir": r.dir, "setting": r.setting, "fault": r.fault, "repeat": r.repeat, "valid": r.valid,
                   "expect": r.expect, "judgement": r.judgement(),
                   "availability": r.availability, "leaderless_ms": r.leaderless_ms, "leaderless_total_ms": r.leaderless_total_ms, "recovery_ms": r.recovery_ms, "p99_ms": r.p99_ms})
        })
        .collect();
    std::fs::write(
        faultline_rundir::CampaignDir::new(dir).results(),
        serde_json::to_vec_pretty(
            &json!({"name": index.name, "valid": summary.valid, "unexpected": summary.unexpected,
                    "undecided": summary.undecided, "controls_caught": summary.controls_caught, "runs": runs_json, "cells": cells, "elections": summary.elections}),
        )?,
    )?;
    Ok(summary)
}

/// Write the campaign page from the finished runs only (those with their
/// `results.json`: runs at once, or a resumption, finish out of order), to
/// keep the page current while a campaign runs; with the campaign's
/// progress, the page says how far it has come and, served over HTTP,
/// fills in by itself as runs finish.
pub fn write_campaign_report_partial(
    dir: &Path,
    progress: Option<&ProgressRecord>,
) -> anyhow::Result<()> {
    let campaign = faultline_rundir::CampaignDir::new(dir);
    let path = campaign.campaign();
    let mut index = read_index(&path)?;
    index
        .runs
        .retain(|r| campaign.run(&r.dir).results().exists());
    let (rows, cells) = rows_and_cells(dir, &index)?;
    draw_plots(dir, &index, &cells)?;
    write_page(dir, &index, &rows, &cells, &[], progress)
}

/// Write the campaign's `index.html`.
fn write_page(
    dir: &Path,
    index: &CampaignIndex,
    rows: &[RunRow],
    cells: &[Vec<crate::cells::Cell>],
    elections: &[crate::elections::ElectionTimes],
    progress: Option<&ProgressRecord>,
) -> anyhow::Result<()> {
    let placement: Option<faultline_rundir::placement::CampaignPlacement> =
        faultline_rundir::records::read_record(
            &faultline_rundir::CampaignDir::new(dir).placement(),
        )
        .map_err(anyhow::Error::msg)?;
    let page = html::campaign_page(index, rows, cells, elections, progress, placement.as_ref());
    std::fs::write(dir.join("index.html"), page).context("writing the campaign's index.html")
}
