//! Results for faultline, from stored files only (so it can rebuild any
//! report later, and analyse runs of other systems that write the same
//! files): the analysis of a run (`results.json`), its plots and its HTML
//! page, and the campaign page that compares timeout settings per fault.
//!
//! A run directory holds `history.jsonl`, `status.jsonl`, `links.json`,
//! `spec.json` and `schedule.json`; [`write_run_report`] adds
//! `results.json`, `latency.svg`, `throughput.svg`, `quantiles.svg`,
//! `leaders.svg` and `index.html`. A campaign directory holds
//! `campaign.json` and one run directory per run; [`write_campaign_report`]
//! adds `results.json`, the campaign plots and `index.html`.
#![deny(missing_docs)]

pub mod analysis;
pub mod audit;
pub mod bench;
pub mod by_model;
pub mod campaign;
pub mod cells;
pub mod compare;
pub mod compare_report;
pub mod elections;
pub mod expect;
pub mod html;
pub mod plots;
pub mod rows;
pub mod run_files;
pub mod snapshots;
pub mod stats;
pub mod store_index;

use std::path::Path;

use anyhow::Context;
use faultline_checker::Options;

pub use analysis::RunResults;
pub use campaign::{
    write_campaign_report, write_campaign_report_partial, CampaignIndex, CampaignRun,
    CampaignSetting, CampaignSummary,
};
use run_files::RunFiles;

/// Analyse a run directory and write its report; returns the analysis.
pub fn write_run_report(dir: &Path, check: &Options) -> anyhow::Result<RunResults> {
    let files = RunFiles::load(dir)?;
    let results = analysis::analyze(&files, check);
    std::fs::write(
        faultline_rundir::RunDir::new(dir).results(),
        serde_json::to_vec_pretty(&results)?,
    )
    .context("writing results.json")?;
    let history = &files.history;
    let end_ns = (results.duration_s * 1e9) as u64;
    let windows = analysis::fault_windows(history, end_ns);
    let err = |what: &str| {
        let what = what.to_string();
        move |e: Box<dyn std::error::Error>| anyhow::anyhow!("drawing {what}: {e}")
    };
    plots::latency(
        &dir.join("latency.svg"),
        history,
        &windows,
        results.duration_s,
    )
    .map_err(err("latency.svg"))?;
    plots::throughput(
        &dir.join("throughput.svg"),
        history,
        &windows,
        results.duration_s,
    )
    .map_err(err("throughput.svg"))?;
    plots::quantiles(
        &dir.join("quantiles.svg"),
        history,
        &windows,
        results.duration_s,
    )
    .map_err(err("quantiles.svg"))?;
    let mut nodes: Vec<String> = files
        .status
        .first()
        .map(|r| r.nodes.keys().cloned().collect())
        .unwrap_or_default();
    nodes.sort_by_key(|n| (n.len(), n.clone()));
    let last = history.last_op_time();
    let xmax = (last as f64 / 1e9).max(results.duration_s) * 1.02;
    plots::leaders(&dir.join("leaders.svg"), &results, &nodes, &windows, xmax)
        .map_err(err("leaders.svg"))?;
    let mut logs: Vec<String> = std::fs::read_dir(faultline_rundir::RunDir::new(dir).nodes())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".log"))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    let title = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::write(
        dir.join("index.html"),
        html::run_page(&results, &title, &logs),
    )
    .context("writing index.html")?;
    Ok(results)
}
