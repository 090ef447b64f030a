//! A campaign's page from its stored files: `campaign.json` (the index the
//! runner writes), each run's `results.json`, the comparison of timeout
//! settings per fault, and the campaign's own `results.json` and plots.

use std::path::Path;

use anyhow::Context;
use faultline_checker::Verdict;
use faultline_rundir::records::ProgressRecord;
use serde::{Deserialize, Serialize};

use crate::cells::Figure;
use crate::expect::{Expect, Judgement};
use crate::stats::Summary;
use crate::{html, plots};

use crate::rows::run_row;
pub use crate::rows::{verdict_word, RunRow};
pub use faultline_rundir::campaign::{CampaignIndex, CampaignRun, CampaignSetting};

/// The campaign's own `results.json`: its verdict against expectations,
/// every run's figures and the comparison's cells (written by the report,
/// read by the store's front page).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignResults {
    /// The campaign's name.
    pub name: String,
    /// Overall verdict.
    pub valid: Verdict,
    /// Runs whose outcome was not what they expected (`DIR: what happened`).
    pub unexpected: Vec<String>,
    /// Runs whose verdict is unknown.
    pub undecided: Vec<String>,
    /// Positive controls that were caught.
    pub controls_caught: usize,
    /// Every run, in the campaign's order.
    pub runs: Vec<CampaignRunResult>,
    /// Settings × faults.
    pub cells: Vec<Vec<crate::cells::Cell>>,
    /// Election times after crashes of the leader, per setting.
    pub elections: Vec<crate::elections::ElectionTimes>,
}

/// One run in the campaign's `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignRunResult {
    /// Its directory.
    pub dir: String,
    /// Setting name.
    pub setting: String,
    /// Fault kind.
    pub fault: String,
    /// Repeat number.
    pub repeat: usize,
    /// Verdict.
    pub valid: Verdict,
    /// What it was expected to show (from its `spec.json`).
    pub expect: Expect,
    /// The verdict against that.
    pub judgement: Judgement,
    /// Availability share.
    pub availability: f64,
    /// Median time without a working leader per fault window, ms.
    pub leaderless_ms: f64,
    /// Time without a working leader over the whole run, ms.
    pub leaderless_total_ms: f64,
    /// Median heal → first ok, ms.
    pub recovery_ms: Option<f64>,
    /// p99 latency of ok ops, ms.
    pub p99_ms: f64,
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
    let record = CampaignResults {
        name: index.name.clone(),
        valid: summary.valid,
        unexpected: summary.unexpected.clone(),
        undecided: summary.undecided.clone(),
        controls_caught: summary.controls_caught,
        runs: rows
            .iter()
            .map(|r| CampaignRunResult {
                dir: r.dir.clone(),
                setting: r.setting.clone(),
                fault: r.fault.clone(),
                repeat: r.repeat,
                valid: r.valid,
                expect: r.expect,
                judgement: r.judgement(),
                availability: r.availability,
                leaderless_ms: r.leaderless_ms,
                leaderless_total_ms: r.leaderless_total_ms,
                recovery_ms: r.recovery_ms,
                p99_ms: r.p99_ms,
            })
            .collect(),
        cells,
        elections: summary.elections.clone(),
    };
    std::fs::write(
        faultline_rundir::CampaignDir::new(dir).results(),
        serde_json::to_vec_pretty(&record)?,
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
