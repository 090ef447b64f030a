//! Time to elect a new leader after the leader crashed — the Raft paper's
//! Figure 16, on real processes. Every `crash-leader` window whose crash was
//! followed by another node's "became leader" line is one trial; a setting
//! pools its trials over all runs. The page draws one cumulative
//! distribution per setting and a table of mean, median, p99 and max, with
//! the paper's own figures beside the ranges the paper reports.

use serde::{Deserialize, Serialize};

use crate::rows::RunRow;

/// The election times of one setting.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ElectionTimes {
    /// The setting.
    pub setting: String,
    /// Its election timeout range, ms, as written.
    pub election_timeout: Option<String>,
    /// Crashes of the leader in all (trials).
    pub crashes: usize,
    /// Crashes of a node that was no longer the leader when it was crashed
    /// (the nemesis's answer to "who leads" was out of date): not trials.
    #[serde(default)]
    pub missed: usize,
    /// Crashes after which no other node became leader before the next fault.
    pub no_leader: usize,
    /// Election times, ms, sorted.
    pub samples: Vec<f64>,
    /// Their mean, ms.
    pub mean: Option<f64>,
    /// Their median, ms.
    pub median: Option<f64>,
    /// Their 99th percentile, ms.
    pub p99: Option<f64>,
    /// The longest, ms.
    pub max: Option<f64>,
    /// What the paper reports for this range, if it does.
    pub paper: Option<String>,
}

/// What the paper's text says of its Figure 16, by election timeout range.
pub fn paper_figure(range: &str) -> Option<&'static str> {
    match range.replace(' ', "").as_str() {
        "150..155" => Some("287 ms on average"),
        "150..200" => Some("worst case 513 ms over 1,000 trials"),
        "12..24" => Some("35 ms on average, longest 152 ms"),
        "150..150" => Some("over 10 s (split votes)"),
        _ => None,
    }
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i).copied()
}

/// The election times of every setting — given as (name, election
/// timeout range) — that crashed its leader (none: the campaign crashed no
/// leader).
pub fn election_times(
    settings: &[(String, Option<String>)],
    rows: &[RunRow],
) -> Vec<ElectionTimes> {
    settings
        .iter()
        .filter_map(|(name, election_timeout)| {
            let mut windows: Vec<&crate::analysis::FaultStats> = rows
                .iter()
                .filter(|r| r.setting == *name)
                .flat_map(|r| r.windows.iter())
                .filter(|w| w.name.starts_with("crash-leader"))
                .collect();
            if windows.is_empty() {
                return None;
            }
            let missed = windows.iter().filter(|w| w.not_leader).count();
            windows.retain(|w| !w.not_leader);
            let mut samples: Vec<f64> = windows.iter().filter_map(|w| w.election_ms).collect();
            samples.sort_by(f64::total_cmp);
            let mean =
                (!samples.is_empty()).then(|| samples.iter().sum::<f64>() / samples.len() as f64);
            Some(ElectionTimes {
                setting: name.clone(),
                election_timeout: election_timeout.clone(),
                crashes: windows.len(),
                missed,
                no_leader: windows.len() - samples.len(),
                mean,
                median: quantile(&samples, 0.5),
                p99: quantile(&samples, 0.99),
                max: samples.last().copied(),
                paper: election_timeout
                    .as_deref()
                    .and_then(paper_figure)
                    .map(str::to_string),
                samples,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_figures_are_found_by_range() {
        assert_eq!(paper_figure("150..155"), Some("287 ms on average"));
        assert_eq!(
            paper_figure("12..24"),
            Some("35 ms on average, longest 152 ms")
        );
        assert_eq!(paper_figure("150..300"), None);
    }
}
