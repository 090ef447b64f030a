//! A campaign's page: the overall verdict, the bug-hunt table when the
//! campaign runs known-bug variants, the settings, which setting did best
//! under each fault, the comparison table, the plots and every run.

use faultline_checker::Verdict;
use maud::{html, Markup};

use super::{num, page, table, verdict_banner};
use crate::campaign::CampaignSetting;
use crate::cells::{Cell, Figure};
use crate::elections::ElectionTimes;
use crate::stats::{winner, Summary, Winner};

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
    /// Mean time without a leader per fault window, ms.
    pub leaderless_ms: f64,
    /// Mean heal → first ok, ms.
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
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "NOT linearizable",
        Verdict::Unknown => "unknown",
    }
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The campaign page.
pub fn campaign_page(
    name: &str,
    settings: &[CampaignSetting],
    faults: &[String],
    rows: &[RunRow],
    cells: &[Vec<Cell>],
    elections: &[ElectionTimes],
) -> String {
    let bad = rows
        .iter()
        .filter(|r| r.valid == Verdict::NotLinearizable)
        .count();
    let unk = rows.iter().filter(|r| r.valid == Verdict::Unknown).count();
    let cut = rows.iter().filter(|r| r.cut_short.is_some()).count();
    let (v, why) = if bad > 0 {
        (
            Verdict::NotLinearizable,
            format!("{bad} of {} runs are not linearizable", rows.len()),
        )
    } else if unk > 0 {
        (
            Verdict::Unknown,
            match cut {
                0 => format!("{unk} of {} runs are undecided", rows.len()),
                _ => format!(
                    "{unk} of {} runs are undecided, {cut} of them cut short (interrupted or never run)",
                    rows.len()
                ),
            },
        )
    } else {
        (
            Verdict::Linearizable,
            format!("all {} runs are linearizable", rows.len()),
        )
    };
    let described: Vec<Vec<String>> = settings
        .iter()
        .map(|s| vec![s.name.clone(), s.description.clone()])
        .collect();
    let body = html! {
        h1 { "faultline campaign: " (name) }
        (verdict_banner(v, &why))
        @if settings.iter().any(|s| s.unsafe_bug.is_some()) {
            (bug_hunt_table(settings, rows))
        }
        h2 { "Settings" }
        (table(&["setting", "timeouts"], &described))
        @if !elections.is_empty() {
            (election_section(elections))
        }
        h2 { "Which setting did best under each fault" }
        p class="small" {
            "Every fault window is one sample; a cell pools the windows of all its repeats. A setting is named only when its 95 % confidence interval of the median (a seeded bootstrap) is clearly better — not overlapping — than every other setting's for that fault; otherwise the page says there is no clear difference, and about how many windows per setting would likely be needed to tell (the interval narrows as 1/√n)."
        }
        (best_per_fault(settings, faults, cells))
        h2 { "Comparison" }
        p class="small" {
            "Per setting and fault, each figure as median [95 % interval of the median] and n, the number of fault windows. Time without a working leader counts every stretch in which no leader had a majority of its voters following it and hearing from it within two heartbeats (from the nodes' status). Then the p99 latency of ok operations (mean over runs) and the runs' verdicts. Click a header to sort."
        }
        (comparison(settings, faults, rows, cells))
        h2 { "Plots" }
        @for (file, alt) in [
            ("campaign-availability.svg", "availability"),
            ("campaign-leaderless.svg", "time without a working leader"),
            ("campaign-recovery.svg", "heal to first ok"),
        ] {
            img src=(file) alt=(alt);
        }
        h2 { "Runs" }
        (runs_table(rows))
    };
    page(&format!("faultline campaign {name}"), body, true)
}

/// The Raft paper's Figure 16 on these processes: the distribution per
/// setting, and its figures beside the paper's.
fn election_section(elections: &[ElectionTimes]) -> Markup {
    let ms = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.0}"));
    html! {
        h2 { "Time to elect a new leader after the leader crashed" }
        p class="small" {
            "Each crash of the leader is one trial, measured from the crash to the moment another node logged that it became leader (both on this machine's clock), as in the Raft paper's Figure 16. A crash with no new leader before the next fault counts in \"no leader\"."
        }
        img src="campaign-elections.svg" alt="cumulative distribution of election times";
        table class="sortable" {
            thead { tr {
                th class="l" { "setting" } th class="l" { "election timeout (ms)" } th { "trials" }
                th { "no leader" } th { "mean ms" } th { "median ms" } th { "p99 ms" } th { "max ms" }
                th class="l" { "the paper (LogCabin)" }
            } }
            tbody {
                @for e in elections {
                    tr {
                        td class="l" { (e.setting) }
                        td class="l" { (e.election_timeout.as_deref().unwrap_or("–")) }
                        td { (e.crashes) }
                        td { (e.no_leader) }
                        td { (ms(e.mean)) }
                        td { (ms(e.median)) }
                        td { (ms(e.p99)) }
                        td { (ms(e.max)) }
                        td class="l" { (e.paper.unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn cell_rows<'a>(rows: &'a [RunRow], setting: &str, fault: &str) -> Vec<&'a RunRow> {
    rows.iter()
        .filter(|r| r.setting == setting && r.fault == fault)
        .collect()
}

/// Per setting: how often runs of a known-bug variant were caught, and how
/// often the correct node passed.
fn bug_hunt_table(settings: &[CampaignSetting], rows: &[RunRow]) -> Markup {
    html! {
        h2 { "Bug hunt" }
        p class="small" {
            "Each UNSAFE variant should be caught in its runs (not linearizable, or a safety violation in the nodes' logs); the correct node should never be."
        }
        table class="sortable" {
            thead { tr {
                th class="l" { "setting" } th class="l" { "variant" } th { "runs" } th { "caught" }
                th { "rate %" } th { "first anomaly (s into the run)" } th class="l" { "counterexample" }
            } }
            tbody {
                @for s in settings {
                    @let runs: Vec<&RunRow> = rows.iter().filter(|r| r.setting == s.name).collect();
                    @let caught: Vec<&&RunRow> = runs.iter().filter(|r| r.valid == Verdict::NotLinearizable).collect();
                    @let first = caught.iter().filter_map(|r| r.first_anomaly_s).fold(f64::INFINITY, f64::min);
                    @let rate = if runs.is_empty() { 0.0 } else { caught.len() as f64 * 100.0 / runs.len() as f64 };
                    @let (variant, good) = match &s.unsafe_bug {
                        Some(v) => (v.clone(), rate >= 90.0),
                        None => ("none (correct node)".to_string(), caught.is_empty()),
                    };
                    tr {
                        td class="l" { (s.name) }
                        td class="l" { (variant) }
                        td { (runs.len()) }
                        td class=(if good { "good" } else { "poor" }) { (caught.len()) }
                        td { (format!("{rate:.0}")) }
                        td { @if first.is_finite() { (format!("{first:.1}")) } @else { "–" } }
                        td class="l" {
                            @if let Some(r) = caught.first() {
                                a href={ (r.dir) "/index.html" } { (r.anomaly.as_deref().unwrap_or(&r.dir)) }
                            } @else { "–" }
                        }
                    }
                }
            }
        }
    }
}

fn best_per_fault(settings: &[CampaignSetting], faults: &[String], cells: &[Vec<Cell>]) -> Markup {
    let names: Vec<&str> = settings.iter().map(|s| s.name.as_str()).collect();
    html! {
        ul {
            @for (fi, f) in faults.iter().enumerate() {
                li {
                    b { (f) } ": "
                    @for (k, figure) in [Figure::Leaderless, Figure::Availability].into_iter().enumerate() {
                        @if k > 0 { "; " }
                        (figure.title()) " — "
                        @let column: Vec<Option<Summary>> = cells.iter().map(|row| row.get(fi).and_then(|c| c.summary(figure)).cloned()).collect();
                        @match winner(&column, figure.better()) {
                            Some(Winner::Clear { setting }) => {
                                b { (names.get(setting).copied().unwrap_or("?")) }
                                @if let Some(s) = &column[setting] { (format!(" ({})", cell_text(s))) }
                            }
                            Some(Winner::NoClearDifference { n, windows_needed }) => {
                                "no clear difference (n = " (n) ")"
                                @if let Some(w) = windows_needed { (format!("; about {w} windows per setting would likely tell")) }
                            }
                            None => "–",
                        }
                    }
                }
            }
        }
    }
}

/// `median [low, high] n` for a table cell.
fn cell_text(s: &Summary) -> String {
    let d = if s.median.abs() < 10.0 { 1 } else { 0 };
    format!(
        "{:.d$} [{:.d$}, {:.d$}] n={}",
        s.median, s.ci_low, s.ci_high, s.n
    )
}

fn comparison(
    settings: &[CampaignSetting],
    faults: &[String],
    rows: &[RunRow],
    cells: &[Vec<Cell>],
) -> Markup {
    let shown = [
        (Figure::Leaderless, "no leader ms"),
        (Figure::HealToOk, "heal → ok ms"),
        (Figure::Availability, "avail %"),
    ];
    html! {
        table class="sortable" {
            thead { tr {
                th class="l" { "setting" }
                @for f in faults {
                    @for (_, m) in shown {
                        th { (f) br; span class="small" { (m) } }
                    }
                    th { (f) br; span class="small" { "p99 ms" } }
                    th { (f) br; span class="small" { "verdict" } }
                }
            } }
            tbody {
                @for (si, s) in settings.iter().enumerate() {
                    tr {
                        td class="l" { (s.name) }
                        @for (fi, f) in faults.iter().enumerate() {
                            @let cell = cells.get(si).and_then(|r| r.get(fi));
                            @for (figure, _) in shown {
                                @let sum = cell.and_then(|c| c.summary(figure));
                                td data-v=(sum.map_or(f64::NAN, |s| s.median)) {
                                    @match sum { Some(s) => (cell_text(s)), None => "–" }
                                }
                            }
                            @let c = cell_rows(rows, &s.name, f);
                            @let p99 = mean(c.iter().map(|r| r.p99_ms));
                            @let ok = c.iter().filter(|r| r.valid == Verdict::Linearizable).count();
                            @let badn = c.iter().filter(|r| r.valid == Verdict::NotLinearizable).count();
                            td data-v=(p99) { (num(p99, 1)) }
                            td class=[(badn > 0).then_some("poor")] data-v=(badn) {
                                @if badn > 0 { (badn) "/" (c.len()) " NOT lin." } @else { (ok) "/" (c.len()) " ok" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn runs_table(rows: &[RunRow]) -> Markup {
    html! {
        table class="sortable" {
            thead { tr {
                th class="l" { "run" } th class="l" { "setting" } th class="l" { "fault" } th { "repeat" }
                th class="l" { "verdict" } th { "avail %" } th { "no leader ms" } th { "p99 ms" }
                th { "ok" } th { "fail" } th { "info" }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td class="l" { a href={ (r.dir) "/index.html" } { (r.dir) } }
                        td class="l" { (r.setting) }
                        td class="l" { (r.fault) }
                        td { (r.repeat) }
                        td class=(if r.valid == Verdict::NotLinearizable { "poor l" } else { "l" }) {
                            (verdict_word(r.valid))
                            @if let Some(a) = &r.anomaly { ": " (a) }
                            @if let Some(c) = &r.cut_short { " — " (c) }
                        }
                        td { (format!("{:.1}", r.availability * 100.0)) }
                        td { (format!("{:.0}", r.leaderless_ms)) }
                        td { (format!("{:.1}", r.p99_ms)) }
                        td { (r.counts.0) }
                        td { (r.counts.1) }
                        td { (r.counts.2) }
                    }
                }
            }
        }
    }
}
