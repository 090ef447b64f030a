//! Two campaigns side by side: the cells they share (the same fault, and
//! settings matched by name or paired by the user), each figure as A vs B
//! with the difference and whether it is clear by the campaign page's
//! interval rule, the verdicts side by side, and the cells only one of them
//! ran. Written as `compare.json`, an `index.html` and two plots into a
//! directory of its own.

use std::path::{Path, PathBuf};

use anyhow::Context;
use faultline_checker::Verdict;
use serde::{Deserialize, Serialize};

use crate::campaign::{load_campaign, LoadedCampaign};
use crate::cells::{Cell, Figure};
use crate::expect::Judgement;
use crate::rows::RunRow;
use crate::stats::{clearly_better, Summary};
use faultline_rundir::spec::{NetBackend, RunSpec, TargetKind};
use faultline_rundir::RunDir;

/// The file that marks a comparison's directory.
pub const COMPARE_JSON: &str = "compare.json";

/// One side of a comparison.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Side {
    /// `A` or `B`.
    pub label: String,
    /// The campaign's directory, as given.
    pub dir: String,
    /// The directory's own name (`demo-20261202-134618`).
    pub dir_name: String,
    /// The campaign's name.
    pub name: String,
    /// The system under test of its first run (`faultline`, `etcd`, …).
    pub target: TargetKind,
    /// Its network backend.
    pub net: NetBackend,
    /// Cluster size.
    pub nodes: Option<usize>,
    /// Runs planned.
    pub runs: usize,
    /// Runs finished.
    pub finished: usize,
    /// Its settings, with their timeouts in words.
    pub settings: Vec<(String, String)>,
}

/// How one figure of a shared cell compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Call {
    /// A's 95 % interval of the median is clear of B's, on the better side.
    ABetter,
    /// B's is clear of A's, on the better side.
    BBetter,
    /// The intervals overlap.
    NoClearDifference,
    /// A side has fewer than [`crate::stats::MIN_SAMPLES`] windows: no
    /// call is made.
    TooFewSamples,
    /// One side has no sample of this figure.
    NotComparable,
}

impl Call {
    /// In words.
    pub fn words(self) -> &'static str {
        match self {
            Call::ABetter => "A clearly better",
            Call::BBetter => "B clearly better",
            Call::NoClearDifference => "no clear difference",
            Call::TooFewSamples => "too few windows to call",
            Call::NotComparable => "not comparable (no samples on one side)",
        }
    }
}

/// One figure of a shared cell, A vs B.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FigurePair {
    /// The figure.
    pub figure: Figure,
    /// A's summary over its fault windows.
    pub a: Option<Summary>,
    /// B's.
    pub b: Option<Summary>,
    /// B's median minus A's.
    pub difference: Option<f64>,
    /// Whether that difference is clear.
    pub call: Call,
    /// When it is not: about how many windows per side would likely make
    /// the call ([`crate::stats::windows_needed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_needed: Option<usize>,
}

/// A cell's runs by verdict and against their expectations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    /// Runs finished.
    pub runs: usize,
    /// Linearizable.
    pub linearizable: usize,
    /// Not linearizable.
    pub not_linearizable: usize,
    /// Unknown (cut short, or the checker's budget ran out).
    pub unknown: usize,
    /// Runs that did not show what they expected.
    pub unexpected: usize,
}

impl Verdicts {
    fn of(rows: &[&RunRow]) -> Verdicts {
        let mut v = Verdicts::default();
        for r in rows.iter().filter(|r| r.cut_short.is_none()) {
            v.runs += 1;
            match r.valid {
                Verdict::Linearizable => v.linearizable += 1,
                Verdict::NotLinearizable => v.not_linearizable += 1,
                Verdict::Unknown => v.unknown += 1,
            }
            if r.judgement() == Judgement::Unexpected {
                v.unexpected += 1;
            }
        }
        v
    }

    /// In words: `3 linearizable, 1 NOT linearizable (1 unexpected)`.
    pub fn words(&self) -> String {
        if self.runs == 0 {
            return "no finished run".into();
        }
        let mut parts = Vec::new();
        for (n, w) in [
            (self.linearizable, "linearizable"),
            (self.not_linearizable, "NOT linearizable"),
            (self.unknown, "unknown"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {w}"));
            }
        }
        let mut out = parts.join(", ");
        if self.unexpected > 0 {
            out.push_str(&format!(" ({} unexpected)", self.unexpected));
        }
        out
    }
}

/// A cell both campaigns ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SharedCell {
    /// The fault column.
    pub fault: String,
    /// A's setting.
    pub setting_a: String,
    /// B's setting.
    pub setting_b: String,
    /// Fault windows pooled on each side.
    pub windows: (usize, usize),
    /// Every figure, in [`Figure::ALL`]'s order.
    pub figures: Vec<FigurePair>,
    /// A's runs.
    pub verdicts_a: Verdicts,
    /// B's runs.
    pub verdicts_b: Verdicts,
}

/// A cell only one campaign ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoneCell {
    /// The setting.
    pub setting: String,
    /// The fault column.
    pub fault: String,
    /// Its runs.
    pub verdicts: Verdicts,
    /// Why it has no partner: the other campaign has no such fault, or no
    /// setting paired with this one.
    pub why: String,
}

/// `compare.json`: the whole comparison.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    /// The first campaign.
    pub a: Side,
    /// The second.
    pub b: Side,
    /// The settings paired, A's name with B's.
    pub pairs: Vec<(String, String)>,
    /// How they were paired: `by name`, `chosen`, or `the only setting of each`.
    pub paired_by: String,
    /// The cells both ran.
    pub shared: Vec<SharedCell>,
    /// Cells only A ran.
    pub only_a: Vec<LoneCell>,
    /// Cells only B ran.
    pub only_b: Vec<LoneCell>,
}

/// Parse a `--pair A_SETTING=B_SETTING` flag.
pub fn parse_pair(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
            Ok((a.trim().to_string(), b.trim().to_string()))
        }
        _ => anyhow::bail!("a pair is A_SETTING=B_SETTING (got {s:?})"),
    }
}

/// Which settings to compare: the pairs chosen (each name checked), else
/// the settings both campaigns name, else — when each has exactly one —
/// that one of each.
fn pair_settings(
    a: &[String],
    b: &[String],
    chosen: &[(String, String)],
) -> anyhow::Result<(Vec<(String, String)>, String)> {
    if !chosen.is_empty() {
        for (x, y) in chosen {
            anyhow::ensure!(
                a.contains(x),
                "campaign A has no setting {x:?} (it has {})",
                a.join(", ")
            );
            anyhow::ensure!(
                b.contains(y),
                "campaign B has no setting {y:?} (it has {})",
                b.join(", ")
            );
        }
        return Ok((chosen.to_vec(), "chosen".into()));
    }
    let same: Vec<(String, String)> = a
        .iter()
        .filter(|s| b.contains(s))
        .map(|s| (s.clone(), s.clone()))
        .collect();
    if !same.is_empty() {
        return Ok((same, "by name".into()));
    }
    if a.len() == 1 && b.len() == 1 {
        return Ok((
            vec![(a[0].clone(), b[0].clone())],
            "the only setting of each".into(),
        ));
    }
    Ok((Vec::new(), "by name (none shared)".into()))
}

fn side(label: &str, dir: &Path, c: &LoadedCampaign) -> anyhow::Result<Side> {
    let spec = c
        .index
        .runs
        .iter()
        .find_map(|r| RunSpec::read(&RunDir::new(dir.join(&r.dir))).transpose())
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok(Side {
        label: label.to_string(),
        dir: dir.display().to_string(),
        dir_name: dir
            .file_name()
            .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into()),
        name: c.index.name.clone(),
        target: spec.as_ref().map(|s| s.target).unwrap_or_default(),
        net: spec.as_ref().map(|s| s.net).unwrap_or_default(),
        nodes: spec.as_ref().map(|s| s.nodes),
        runs: c.rows.len(),
        finished: c.rows.iter().filter(|r| r.cut_short.is_none()).count(),
        settings: c
            .index
            .settings
            .iter()
            .map(|s| (s.name.clone(), s.description.clone()))
            .collect(),
    })
}

fn cell<'a>(c: &'a LoadedCampaign, setting: &str, fault: &str) -> Option<&'a Cell> {
    let si = c.index.settings.iter().position(|s| s.name == setting)?;
    let fi = c.index.faults.iter().position(|f| f == fault)?;
    c.cells.get(si)?.get(fi)
}

fn rows_of<'a>(c: &'a LoadedCampaign, setting: &str, fault: &str) -> Vec<&'a RunRow> {
    c.rows
        .iter()
        .filter(|r| r.setting == setting && r.fault == fault)
        .collect()
}

/// The (setting, fault) pairs a campaign planned runs for, in its order.
fn planned_cells(c: &LoadedCampaign) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in &c.index.runs {
        let k = (r.setting.clone(), r.fault.clone());
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// How figure `f` compares between two summaries.
pub fn call(f: Figure, a: Option<&Summary>, b: Option<&Summary>) -> Call {
    match (a, b) {
        (Some(a), Some(b)) if a.n.min(b.n) < crate::stats::MIN_SAMPLES => Call::TooFewSamples,
        (Some(a), Some(b)) if clearly_better(a, b, f.better()) => Call::ABetter,
        (Some(a), Some(b)) if clearly_better(b, a, f.better()) => Call::BBetter,
        (Some(_), Some(_)) => Call::NoClearDifference,
        _ => Call::NotComparable,
    }
}

/// Compare campaign `a` with campaign `b`.
pub fn compare(a: &Path, b: &Path, chosen: &[(String, String)]) -> anyhow::Result<Comparison> {
    let ca = load_campaign(a).with_context(|| format!("campaign A ({})", a.display()))?;
    let cb = load_campaign(b).with_context(|| format!("campaign B ({})", b.display()))?;
    let names = |c: &LoadedCampaign| -> Vec<String> {
        c.index.settings.iter().map(|s| s.name.clone()).collect()
    };
    let same = same_dir(a, b);
    let by_model = crate::by_model::model_pairs((a, &ca), (b, &cb), same);
    let (pairs, paired_by) = if chosen.is_empty() && same && !by_model.is_empty() {
        (
            by_model,
            "by disk model (the campaign with itself)".to_string(),
        )
    } else {
        match pair_settings(&names(&ca), &names(&cb), chosen)? {
            (p, _) if p.is_empty() && !by_model.is_empty() => (by_model, "by disk model".into()),
            found => found,
        }
    };
    let planned_a = planned_cells(&ca);
    let planned_b = planned_cells(&cb);
    let mut shared = Vec::new();
    let mut matched_a = Vec::new();
    let mut matched_b = Vec::new();
    for (sa, sb) in &pairs {
        for (setting, fault) in planned_a.iter().filter(|(s, _)| s == sa) {
            if !planned_b.contains(&(sb.clone(), fault.clone())) {
                continue;
            }
            matched_a.push((setting.clone(), fault.clone()));
            matched_b.push((sb.clone(), fault.clone()));
            let (xa, xb) = (cell(&ca, sa, fault), cell(&cb, sb, fault));
            let figures = Figure::ALL
                .iter()
                .map(|&f| {
                    let (a, b) = (xa.and_then(|c| c.summary(f)), xb.and_then(|c| c.summary(f)));
                    FigurePair {
                        figure: f,
                        difference: a.zip(b).map(|(a, b)| b.median - a.median),
                        call: call(f, a, b),
                        windows_needed: match call(f, a, b) {
                            Call::NoClearDifference | Call::TooFewSamples => a
                                .zip(b)
                                .and_then(|(a, b)| crate::stats::windows_needed(a, b)),
                            Call::ABetter | Call::BBetter | Call::NotComparable => None,
                        },
                        a: a.cloned(),
                        b: b.cloned(),
                    }
                })
                .collect();
            shared.push(SharedCell {
                fault: fault.clone(),
                setting_a: sa.clone(),
                setting_b: sb.clone(),
                windows: (xa.map_or(0, |c| c.windows), xb.map_or(0, |c| c.windows)),
                figures,
                verdicts_a: Verdicts::of(&rows_of(&ca, sa, fault)),
                verdicts_b: Verdicts::of(&rows_of(&cb, sb, fault)),
            });
        }
    }
    let lone = |c: &LoadedCampaign,
                planned: &[(String, String)],
                matched: &[(String, String)],
                other: &LoadedCampaign,
                other_label: &str,
                paired: &dyn Fn(&str) -> bool| {
        planned
            .iter()
            .filter(|k| !matched.contains(k))
            .map(|(s, f)| LoneCell {
                setting: s.clone(),
                fault: f.clone(),
                verdicts: Verdicts::of(&rows_of(c, s, f)),
                why: if !paired(s) {
                    format!("no setting of {other_label} is paired with {s}")
                } else if !other.index.faults.contains(f) {
                    format!("{other_label} has no fault {f}")
                } else {
                    format!("{other_label} ran {f} with none of the settings paired with {s}")
                },
            })
            .collect::<Vec<_>>()
    };
    let mut only_a = lone(&ca, &planned_a, &matched_a, &cb, "B", &|s| {
        pairs.iter().any(|(x, _)| x == s)
    });
    let mut only_b = lone(&cb, &planned_b, &matched_b, &ca, "A", &|s| {
        pairs.iter().any(|(_, y)| y == s)
    });
    if same {
        // One campaign on both sides: a cell of a paired setting is on one
        // side or the other, and a setting paired with nothing is listed
        // once, on A's side.
        let paired = |s: &str| pairs.iter().any(|(x, y)| x == s || y == s);
        only_a.retain(|c| !paired(&c.setting));
        only_b.clear();
    }
    Ok(Comparison {
        a: side("A", a, &ca)?,
        b: side("B", b, &cb)?,
        pairs,
        paired_by,
        shared,
        only_a,
        only_b,
    })
}

/// Whether two paths name one directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Where `faultline compare` writes by default: beside campaign A, in
/// `compare-<A>-vs-<B>` (`compare-<A>-by-model` for a campaign compared
/// with itself).
pub fn default_out(a: &Path, b: &Path) -> PathBuf {
    let name = |p: &Path| {
        p.file_name()
            .map_or_else(|| "campaign".into(), |n| n.to_string_lossy().into_owned())
    };
    let parent = a
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if same_dir(a, b) {
        return parent.join(format!("compare-{}-by-model", name(a)));
    }
    parent.join(format!("compare-{}-vs-{}", name(a), name(b)))
}

/// The path from directory `from` to `to`, for a link (both made absolute).
pub fn relative_link(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|c| c.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (from, to) = (abs(from), abs(to));
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut out: Vec<String> = vec!["..".to_string(); f.len() - common];
    out.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

/// The comparison's plots: file and figure.
pub const PLOTS: [(&str, Figure); 2] = [
    ("compare-leaderless.svg", Figure::Leaderless),
    ("compare-availability.svg", Figure::Availability),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn settings_pair_by_name_else_the_only_ones_else_as_chosen() {
        let (p, by) = pair_settings(&s(&["fast", "slow"]), &s(&["slow", "x"]), &[]).unwrap();
        assert_eq!(p, vec![("slow".to_string(), "slow".to_string())]);
        assert_eq!(by, "by name");
        let (p, _) = pair_settings(&s(&["run"]), &s(&["etcd"]), &[]).unwrap();
        assert_eq!(p, vec![("run".to_string(), "etcd".to_string())]);
        let (p, _) = pair_settings(&s(&["a", "b"]), &s(&["c", "d"]), &[]).unwrap();
        assert!(p.is_empty());
        let chosen = vec![("a".to_string(), "d".to_string())];
        assert_eq!(
            pair_settings(&s(&["a"]), &s(&["d"]), &chosen).unwrap().0,
            chosen
        );
        let e = pair_settings(&s(&["a"]), &s(&["c"]), &chosen).unwrap_err();
        assert!(
            e.to_string().contains("campaign B has no setting \"d\""),
            "{e}"
        );
        assert!(parse_pair("a=b").is_ok());
        assert!(parse_pair("ab").is_err());
        assert!(parse_pair("=b").is_err());
    }

    fn summary(median: f64, lo: f64, hi: f64) -> Summary {
        Summary {
            n: 10,
            median,
            q1: lo,
            q3: hi,
            ci_low: lo,
            ci_high: hi,
        }
    }

    #[test]
    fn a_difference_is_clear_only_when_the_intervals_do_not_overlap() {
        let low = summary(10.0, 8.0, 12.0);
        let high = summary(50.0, 40.0, 60.0);
        let near = summary(11.0, 9.0, 13.0);
        // Lower is better for time without a leader, higher for availability.
        assert_eq!(
            call(Figure::Leaderless, Some(&low), Some(&high)),
            Call::ABetter
        );
        assert_eq!(
            call(Figure::Leaderless, Some(&high), Some(&low)),
            Call::BBetter
        );
        assert_eq!(
            call(Figure::Availability, Some(&low), Some(&high)),
            Call::BBetter
        );
        assert_eq!(
            call(Figure::Leaderless, Some(&low), Some(&near)),
            Call::NoClearDifference
        );
        assert_eq!(
            call(Figure::Leaderless, None, Some(&near)),
            Call::NotComparable
        );
    }

    #[test]
    fn one_window_a_side_makes_no_call_and_says_how_many_would() {
        // 89.47 % vs 90.0 %, one run each: zero-width intervals that do not
        // overlap, and still no call.
        let one = |m: f64| Summary {
            n: 1,
            median: m,
            q1: m,
            q3: m,
            ci_low: m,
            ci_high: m,
        };
        let (a, b) = (one(0.8947), one(0.90));
        assert_eq!(
            call(Figure::Availability, Some(&a), Some(&b)),
            Call::TooFewSamples
        );
        let need = crate::stats::windows_needed(&a, &b).unwrap();
        assert!(need >= crate::stats::MIN_SAMPLES, "{need}");
        let w = crate::stats::winner(&[Some(a), Some(b)], crate::stats::Better::Higher);
        assert!(
            matches!(w, Some(crate::stats::Winner::NoClearDifference { n: 1, windows_needed: Some(x) }) if x >= 5),
            "{w:?}"
        );
    }
}
