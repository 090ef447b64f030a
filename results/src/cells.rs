//! The comparison's cells: one per (timeout setting, fault column) of a
//! campaign. Each fault window of each run of a cell is one sample of every
//! figure; a cell pools the windows of all its repeats and summarizes each
//! figure with n, the median, the interquartile range and a 95 % bootstrap
//! interval of the median ([`crate::stats`]).

use serde::{Deserialize, Serialize};

use crate::analysis::FaultStats;
use crate::rows::RunRow;
use crate::stats::{summarize, Better, Summary};

/// A figure compared across settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Figure {
    /// Time without a working leader from a fault's start to the next fault, ms.
    Leaderless,
    /// From a fault's start to the first ok operation invoked after it, ms.
    StartToOk,
    /// From a fault's heal to the first ok operation invoked after it, ms.
    HealToOk,
    /// Share of the window's 100 ms buckets with an ok operation, %.
    Availability,
    /// Operations that ended `fail` during the window.
    Failed,
    /// Operations whose outcome is unknown (`info`), ended during the window.
    Unknown,
}

impl Figure {
    /// Every figure, in the page's order.
    pub const ALL: [Figure; 6] = [
        Figure::Leaderless,
        Figure::StartToOk,
        Figure::HealToOk,
        Figure::Availability,
        Figure::Failed,
        Figure::Unknown,
    ];

    /// Its name on the page.
    pub fn title(self) -> &'static str {
        match self {
            Figure::Leaderless => "time without a working leader (ms)",
            Figure::StartToOk => "start → first ok (ms)",
            Figure::HealToOk => "heal → first ok (ms)",
            Figure::Availability => "availability in the window (%)",
            Figure::Failed => "failed ops in the window",
            Figure::Unknown => "unknown ops in the window",
        }
    }

    /// Which way is better.
    pub fn better(self) -> Better {
        match self {
            Figure::Availability => Better::Higher,
            _ => Better::Lower,
        }
    }

    /// This figure's sample from one window (none where it does not apply:
    /// no ok operation came after the fault, or the window was shorter than
    /// a bucket).
    pub fn sample(self, w: &FaultStats) -> Option<f64> {
        match self {
            Figure::Leaderless => Some(w.leaderless_ms),
            Figure::StartToOk => w.down_ms,
            Figure::HealToOk => w.recovery_ms,
            Figure::Availability => w.availability.map(|a| a * 100.0),
            Figure::Failed => Some(w.failed as f64),
            Figure::Unknown => Some(w.unknown as f64),
        }
    }
}

/// One cell: its samples and their summaries, figure by figure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    /// The setting.
    pub setting: String,
    /// The fault column.
    pub fault: String,
    /// Fault windows pooled from every repeat.
    pub windows: usize,
    /// Per figure (in [`Figure::ALL`]'s order): the samples and their summary.
    pub figures: Vec<(Figure, Vec<f64>, Option<Summary>)>,
}

impl Cell {
    /// The summary of `f`.
    pub fn summary(&self, f: Figure) -> Option<&Summary> {
        self.figures
            .iter()
            .find(|(g, _, _)| *g == f)
            .and_then(|(_, _, s)| s.as_ref())
    }
}

/// The cells of a campaign, settings × faults, in order. The bootstrap's
/// seed follows from the cell's place and the figure, so a page rebuilt
/// from the same files shows the same intervals.
pub fn cells(settings: &[String], faults: &[String], rows: &[RunRow]) -> Vec<Vec<Cell>> {
    settings
        .iter()
        .enumerate()
        .map(|(si, s)| {
            faults
                .iter()
                .enumerate()
                .map(|(fi, f)| {
                    let windows: Vec<&FaultStats> = rows
                        .iter()
                        .filter(|r| &r.setting == s && &r.fault == f)
                        .flat_map(|r| r.windows.iter())
                        .collect();
                    let figures = Figure::ALL
                        .iter()
                        .enumerate()
                        .map(|(gi, g)| {
                            let samples: Vec<f64> =
                                windows.iter().filter_map(|w| g.sample(w)).collect();
                            let seed = ((si as u64) << 32) ^ ((fi as u64) << 8) ^ gi as u64;
                            let summary = summarize(&samples, seed);
                            (*g, samples, summary)
                        })
                        .collect();
                    Cell {
                        setting: s.clone(),
                        fault: f.clone(),
                        windows: windows.len(),
                        figures,
                    }
                })
                .collect()
        })
        .collect()
}
