//! A campaign's page: the overall verdict, the bug-hunt table when the
//! campaign runs known-bug variants, the settings, which setting did best
//! under each fault, the comparison table, the plots and every run.

use faultline_checker::Verdict;
use maud::{html, Markup};

use super::{num, page, table, verdict_banner};
use crate::campaign::CampaignSetting;

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
) -> String {
    let bad = rows
        .iter()
        .filter(|r| r.valid == Verdict::NotLinearizable)
        .count();
    let unk = rows.iter().filter(|r| r.valid == Verdict::Unknown).count();
    let (v, why) = if bad > 0 {
        (
            Verdict::NotLinearizable,
            format!("{bad} of {} runs are not linearizable", rows.len()),
        )
    } else if unk > 0 {
        (
            Verdict::Unknown,
            format!("{unk} of {} runs are undecided", rows.len()),
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
        h2 { "Which setting did best under each fault" }
        (best_per_fault(settings, faults, rows))
        h2 { "Comparison" }
        p class="small" {
            "Per setting and fault kind, averaged over repeats: availability (share of 100 ms buckets with an ok operation), time without a working leader per fault window (no node that leads and that a majority of voters heard from within two heartbeats, from the nodes' status), time from heal to the first ok operation, p99 latency, and verdicts. Click a header to sort."
        }
        (comparison(settings, faults, rows))
        h2 { "Plots" }
        @for (file, alt) in [
            ("campaign-availability.svg", "availability"),
            ("campaign-leaderless.svg", "time without a leader"),
            ("campaign-p99.svg", "p99 latency"),
        ] {
            img src=(file) alt=(alt);
        }
        h2 { "Runs" }
        (runs_table(rows))
    };
    page(&format!("faultline campaign {name}"), body, true)
}

fn cell<'a>(rows: &'a [RunRow], setting: &str, fault: &str) -> Vec<&'a RunRow> {
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

fn best_per_fault(settings: &[CampaignSetting], faults: &[String], rows: &[RunRow]) -> Markup {
    html! {
        ul {
            @for f in faults {
                @let best = settings
                    .iter()
                    .map(|s| {
                        let c = cell(rows, &s.name, f);
                        (
                            &s.name,
                            mean(c.iter().map(|r| r.availability)),
                            mean(c.iter().map(|r| r.leaderless_ms)),
                        )
                    })
                    .filter(|(_, a, _)| !a.is_nan())
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.2.total_cmp(&a.2)));
                @if let Some((s, a, l)) = best {
                    li {
                        b { (f) } ": " b { (s) }
                        (format!(" (availability {:.1} %, {:.0} ms without a leader per fault)", a * 100.0, l))
                    }
                }
            }
        }
    }
}

fn comparison(settings: &[CampaignSetting], faults: &[String], rows: &[RunRow]) -> Markup {
    html! {
        table class="sortable" {
            thead { tr {
                th class="l" { "setting" }
                @for f in faults {
                    @for m in ["avail %", "no leader ms", "recover ms", "p99 ms", "verdict"] {
                        th { (f) br; span class="small" { (m) } }
                    }
                }
            } }
            tbody {
                @for s in settings {
                    tr {
                        td class="l" { (s.name) }
                        @for f in faults {
                            @let c = cell(rows, &s.name, f);
                            @let avail = mean(c.iter().map(|r| r.availability * 100.0));
                            @let nl = mean(c.iter().map(|r| r.leaderless_ms));
                            @let rec = mean(c.iter().filter_map(|r| r.recovery_ms));
                            @let p99 = mean(c.iter().map(|r| r.p99_ms));
                            @let ok = c.iter().filter(|r| r.valid == Verdict::Linearizable).count();
                            @let badn = c.iter().filter(|r| r.valid == Verdict::NotLinearizable).count();
                            td data-v=(avail) { (num(avail, 1)) }
                            td data-v=(nl) { (num(nl, 0)) }
                            td data-v=(rec) { (num(rec, 0)) }
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
