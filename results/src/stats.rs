//! Statistics of samples, with the confidence a comparison needs: for a set
//! of samples (one per fault window), n, the median, the interquartile
//! range and a 95 % confidence interval of the median from a seeded
//! bootstrap (so a report rebuilt from the same files shows the same
//! numbers); and the rule that names a setting best only when its interval
//! is clearly better than every other setting's.

use faultline_checker::gen::Rng;
use serde::{Deserialize, Serialize};

/// Resamples of the bootstrap.
pub const RESAMPLES: usize = 2000;

/// A summary of samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// The median.
    pub median: f64,
    /// The first quartile.
    pub q1: f64,
    /// The third quartile.
    pub q3: f64,
    /// The 95 % confidence interval of the median: low end.
    pub ci_low: f64,
    /// The 95 % confidence interval of the median: high end.
    pub ci_high: f64,
}

/// The `q`-quantile of sorted samples, interpolating linearly.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The median of `samples` (NaNs left out); none without samples.
pub fn median(samples: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut s: Vec<f64> = samples.into_iter().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    Some(quantile(&s, 0.5))
}

/// Summarize `samples` (NaNs left out); `seed` fixes the bootstrap. None
/// without samples.
pub fn summarize(samples: &[f64], seed: u64) -> Option<Summary> {
    let mut s: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let mut rng = Rng::new(seed);
    let mut medians: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let mut r: Vec<f64> = (0..s.len()).map(|_| s[rng.below(s.len())]).collect();
            r.sort_by(f64::total_cmp);
            quantile(&r, 0.5)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    Some(Summary {
        n: s.len(),
        median: quantile(&s, 0.5),
        q1: quantile(&s, 0.25),
        q3: quantile(&s, 0.75),
        ci_low: quantile(&medians, 0.025),
        ci_high: quantile(&medians, 0.975),
    })
}

/// Whether lower or higher is better for a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Less is better (time without a leader, recovery time).
    Lower,
    /// More is better (availability).
    Higher,
}

/// The fewest samples (fault windows) a side needs before any call is
/// made: the bootstrap interval of one sample has no width, and of two to
/// four it is as wide as the samples themselves, so an interval that does
/// not overlap another says nothing yet.
pub const MIN_SAMPLES: usize = 5;

/// Whether `a` is clearly better than `b`: each has at least
/// [`MIN_SAMPLES`], their confidence intervals do not overlap, and `a`'s
/// lies on the better side.
pub fn clearly_better(a: &Summary, b: &Summary, better: Better) -> bool {
    if a.n < MIN_SAMPLES || b.n < MIN_SAMPLES {
        return false;
    }
    match better {
        Better::Lower => a.ci_high < b.ci_low,
        Better::Higher => a.ci_low > b.ci_high,
    }
}

/// About how many windows per side would likely separate `a` from `b`
/// (the interval narrows as 1/√n), never fewer than [`MIN_SAMPLES`]; none
/// when their medians are equal and each side has enough samples already.
pub fn windows_needed(a: &Summary, b: &Summary) -> Option<usize> {
    let n = a.n.min(b.n);
    let gap = (a.median - b.median).abs();
    let half = |s: &Summary| (s.ci_high - s.ci_low) / 2.0;
    if gap > 0.0 {
        let k = ((half(a) + half(b)) / gap).powi(2);
        Some(
            ((n as f64) * k)
                .ceil()
                .max(n as f64 + 1.0)
                .max(MIN_SAMPLES as f64) as usize,
        )
    } else if n < MIN_SAMPLES {
        Some(MIN_SAMPLES)
    } else {
        None
    }
}

/// The verdict of a comparison between settings for one figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Winner {
    /// This setting is clearly better than every other.
    Clear {
        /// Its index among the compared settings.
        setting: usize,
    },
    /// No setting is clearly better than all the others.
    NoClearDifference {
        /// The fewest samples of any compared setting.
        n: usize,
        /// About how many windows per setting would likely separate the
        /// best median from the runner-up (the interval narrows as 1/√n);
        /// none when their medians are equal.
        windows_needed: Option<usize>,
    },
}

/// The rule: a setting wins only when its 95 % interval of the median is
/// clearly better than each other setting's; otherwise no clear difference,
/// with an estimate of the windows it would likely take.
pub fn winner(cells: &[Option<Summary>], better: Better) -> Option<Winner> {
    let present: Vec<(usize, &Summary)> = cells
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .collect();
    if present.len() < 2 {
        return None;
    }
    for &(i, a) in &present {
        if present
            .iter()
            .all(|&(j, b)| i == j || clearly_better(a, b, better))
        {
            return Some(Winner::Clear { setting: i });
        }
    }
    let n = present.iter().map(|(_, s)| s.n).min().unwrap_or(0);
    let mut by_median = present.clone();
    by_median.sort_by(|(_, a), (_, b)| match better {
        Better::Lower => a.median.total_cmp(&b.median),
        Better::Higher => b.median.total_cmp(&a.median),
    });
    let (a, b) = (by_median[0].1, by_median[1].1);
    Some(Winner::NoClearDifference {
        n,
        windows_needed: windows_needed(a, b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_samples_give_known_figures() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 1).unwrap();
        assert_eq!(s.n, 9);
        assert_eq!(s.median, 5.0);
        assert_eq!((s.q1, s.q3), (3.0, 7.0));
        assert!(s.ci_low <= 5.0 && 5.0 <= s.ci_high, "{s:?}");
        assert!(s.ci_low >= 2.0 && s.ci_high <= 8.0, "{s:?}");
        // Seeded: the same samples give the same interval.
        assert_eq!(
            summarize(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 1).unwrap(),
            s
        );
        // One sample: everything is that sample.
        let one = summarize(&[4.0], 3).unwrap();
        assert_eq!((one.median, one.ci_low, one.ci_high), (4.0, 4.0, 4.0));
        assert_eq!(summarize(&[f64::NAN], 3), None);
    }

    #[test]
    fn a_winner_is_named_only_with_clear_intervals() {
        let fast: Vec<f64> = (0..20).map(|i| 100.0 + (i % 5) as f64).collect();
        let slow: Vec<f64> = (0..20).map(|i| 300.0 + (i % 5) as f64).collect();
        let cells = [summarize(&fast, 1), summarize(&slow, 2)];
        assert_eq!(
            winner(&cells, Better::Lower),
            Some(Winner::Clear { setting: 0 })
        );
        assert_eq!(
            winner(&cells, Better::Higher),
            Some(Winner::Clear { setting: 1 })
        );
        // Overlapping intervals: no winner, and more windows suggested.
        let a: Vec<f64> = (0..6).map(|i| 100.0 + 40.0 * (i % 3) as f64).collect();
        let b: Vec<f64> = (0..6).map(|i| 110.0 + 40.0 * (i % 3) as f64).collect();
        let cells = [summarize(&a, 1), summarize(&b, 2)];
        match winner(&cells, Better::Lower) {
            Some(Winner::NoClearDifference { n, windows_needed }) => {
                assert_eq!(n, 6);
                assert!(windows_needed.is_some_and(|w| w > 6), "{windows_needed:?}");
            }
            other => panic!("{other:?}"),
        }
        // One setting alone is no comparison.
        assert_eq!(winner(&cells[..1], Better::Lower), None);
    }
}
