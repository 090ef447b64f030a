//! A campaign's page: the overall verdict, the bug-hunt table when the
//! campaign runs known-bug variants, the settings, which setting did best
//! under each fault, the comparison table, the plots and every run.

use faultline_checker::Verdict;
use maud::{html, Markup};

use super::{cell_text, num, page, table};
use crate::cells::{Cell, Figure};
use crate::elections::ElectionTimes;
use crate::expect::{Expect, Judgement};
use crate::rows::{verdict_word, RunRow};
use crate::stats::{winner, Summary, Winner};
use faultline_rundir::campaign::{CampaignIndex, CampaignSetting};
use faultline_rundir::placement::{CampaignPlacement, Mode, Requeue};
use faultline_rundir::records::ProgressRecord;

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
    index: &CampaignIndex,
    rows: &[RunRow],
    cells: &[Vec<Cell>],
    elections: &[ElectionTimes],
    progress: Option<&ProgressRecord>,
    placement: Option<&CampaignPlacement>,
) -> String {
    let (name, settings, faults) = (&index.name, &index.settings, &index.faults);
    let described: Vec<Vec<String>> = settings
        .iter()
        .map(|s| vec![s.name.clone(), s.description.clone()])
        .collect();
    let body = html! {
        h1 { "faultline campaign: " (name) }
        @if let Some(p) = progress {
            (running_banner(p))
        }
        @if let Some(p) = placement {
            (placement_section(p))
        }
        (expectation_banner(rows))
        @if rows.iter().any(|r| r.expect.is_control()) {
            (detection_table(settings, rows))
        }
        @if let Some(m) = super::models::by_model_section(rows) {
            (m)
        }
        h2 { "Settings" }
        (table(&["setting", "timeouts"], &described))
        @if !elections.is_empty() {
            (election_section(elections))
        }
        h2 { "Which setting did best under each fault" }
        @if settings.len() < 2 {
            p { "This campaign has one setting: there is nothing to compare it with. A campaign of two or more settings (timeouts, pre-vote, …) under the same faults says which did best." }
        } @else {
            p class="small" {
                "Every fault window is one sample; a cell pools the windows of all its repeats. A setting is named only when each setting has at least 5 windows and its 95 % confidence interval of the median (a seeded bootstrap) is clearly better — not overlapping — than every other setting's for that fault; otherwise the page says there is no clear difference, and about how many windows per setting would likely be needed to tell (the interval narrows as 1/√n)."
            }
            (best_per_fault(settings, faults, cells))
        }
        h2 { "Comparison" }
        p class="small" {
            "Per setting and fault, each figure as its median over the fault windows [95 % interval of that median] and n, the number of fault windows (every repeat's windows pooled). Time without a working leader counts every stretch in which no leader had a majority of its voters following it and hearing from it within two heartbeats (from the nodes' status). Then the p99 latency of ok operations (mean over runs) and the runs' verdicts. Click a header to sort."
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

/// A campaign under way: how far it has come, its last run and about how
/// long it has left. The element's `data-done` is what the page's script
/// compares with `progress.json` to know when to fill in (served over
/// HTTP; a page opened from disk stays as it is).
/// Where the runs ran: local jobs and whether they shared cores, workers
/// and what they failed, resumptions.
fn placement_section(p: &CampaignPlacement) -> Markup {
    let failures = |list: &[Requeue]| -> Vec<Vec<String>> {
        list.iter()
            .map(|r| {
                vec![
                    r.run.clone(),
                    r.attempt.to_string(),
                    r.failure.on.clone(),
                    r.failure.error.clone(),
                ]
            })
            .collect()
    };
    html! {
        div id="placement" {
            @match p.mode {
                Mode::Here => {}
                Mode::Jobs => p {
                    b { "Ran " (p.jobs) " runs at once on this machine (" (p.cores) " cores). " }
                    @if p.pinned {
                        "Each run (its controller and its members) was pinned to cores of its own."
                    } @else if p.shared_cores {
                        span class="poor" { "The runs shared cores" }
                        " (pinning needs 2 cores per run): timing figures — latency, time without a leader, elections — may have moved against runs one at a time; verdicts do not."
                    }
                },
                Mode::Workers => p {
                    b { "Ran on " (p.workers.len()) " worker hosts, one run at a time each: " }
                    (p.workers.join(", ")) "."
                },
            }
            @for l in &p.lost {
                p class="poor" { "Worker " (l.on) " was lost or left out: " (l.error) }
            }
            @if !p.requeued.is_empty() {
                p { b { "Runs re-queued" } " after a worker failed them (not a verdict; a verdict is never retried):" }
                (table(&["run", "attempt", "failed on", "why"], &failures(&p.requeued)))
            }
            @if !p.failed.is_empty() {
                p class="poor" { b { "Runs given up" } " after failing on every try (no result):" }
                (table(&["run", "attempt", "failed on", "why"], &failures(&p.failed)))
            }
            @for r in &p.resumed {
                p class="small" {
                    "Resumed: " (r.runs) " runs missing or interrupted were run again"
                    @if !r.set_aside.is_empty() {
                        "; the interrupted copies are kept in " code { ".interrupted/" }
                    }
                    "."
                }
            }
        }
    }
}

fn running_banner(p: &ProgressRecord) -> Markup {
    let left = p.seconds_left();
    let left = if left >= 90.0 {
        format!("{:.0} min", left / 60.0)
    } else {
        format!("{left:.0} s")
    };
    html! {
        div id="live" class="banner unk" data-done=(p.done) data-total=(p.total) {
            b { "RUNNING: " (p.done) " of " (p.total) " runs done" }
            ", about " (left) " left (estimated from the runs' planned durations, scaled by how long the finished ones took)."
            @if let (Some(dir), Some(line)) = (&p.last_run, &p.last_line) {
                br;
                span class="small" { "Last: " a href={ (dir) "/index.html" } { (dir) } ": " (line) }
            }
            br;
            span class="small" { "Served by " code { "faultline serve" } ", this page fills in as runs finish; opened from disk, reload it." }
        }
    }
}

/// The Raft paper's Figure 16 on these processes: the distribution per
/// setting, and its figures beside the paper's.
fn election_section(elections: &[ElectionTimes]) -> Markup {
    let ms = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.0}"));
    html! {
        h2 { "Time to elect a new leader after the leader crashed" }
        p class="small" {
            "Each crash of the leader is one trial, measured from the crash to the moment another node logged that it became leader (both on this machine's clock), as in the Raft paper's Figure 16. A crash with no new leader before the next fault counts in \"no leader\"; a crash of a node that was no longer the leader (another node had become leader in a later term, by the nodes' own lines) is not a trial and counts in \"missed\"."
        }
        img src="campaign-elections.svg" alt="cumulative distribution of election times";
        table class="sortable" {
            thead { tr {
                th class="l" { "setting" } th class="l" { "election timeout (ms)" } th { "trials" }
                th { "no leader" } th { "missed" } th { "mean ms" } th { "median ms" } th { "p99 ms" } th { "max ms" }
                th class="l" { "the paper (LogCabin)" }
            } }
            tbody {
                @for e in elections {
                    tr {
                        td class="l" { (e.setting) }
                        td class="l" { (e.election_timeout.as_deref().unwrap_or("–")) }
                        td { (e.crashes) }
                        td { (e.no_leader) }
                        td { (e.missed) }
                        td { (ms(e.mean)) }
                        td { (ms(e.median)) }
                        td { (ms(e.p99)) }
                        td { (ms(e.max)) }
                        td class="l" { (e.paper.as_deref().unwrap_or("")) }
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

/// The distinct expectations of a setting's runs.
fn expectations_of(rows: &[RunRow], setting: &str) -> Vec<Expect> {
    let mut out: Vec<Expect> = rows
        .iter()
        .filter(|r| r.setting == setting)
        .map(|r| r.expect)
        .collect();
    out.sort_by_key(|e| e.as_str());
    out.dedup();
    out
}

/// Per setting (and per fault where expectations differ): its
/// expectation, how many runs were caught, and whether that is what was
/// expected — the positive controls' detection and the correct settings'
/// clean runs side by side.
fn detection_table(settings: &[CampaignSetting], rows: &[RunRow]) -> Markup {
    html! {
        h2 { "Bug hunt: detection" }
        p class="small" {
            "A positive control (a known-bug variant, or etcd's serializable reads) is expected to be caught in its runs (not linearizable, or a safety violation in the nodes' logs): caught, it shows that the bench sees such a bug. A correct setting is expected never to be caught. A run that went against its expectation fails the campaign."
        }
        table class="sortable" {
            thead { tr {
                th class="l" { "setting" } th class="l" { "variant" } th class="l" { "expected" } th { "runs" } th { "caught" }
                th { "as expected" } th { "first anomaly (s into the run)" } th class="l" { "counterexample" }
            } }
            tbody {
                @for s in settings {
                    @for e in expectations_of(rows, &s.name) {
                    @let runs: Vec<&RunRow> = rows.iter().filter(|r| r.setting == s.name && r.expect == e).collect();
                    @let caught: Vec<&&RunRow> = runs.iter().filter(|r| r.valid == Verdict::NotLinearizable).collect();
                    @let first = caught.iter().filter_map(|r| r.first_anomaly_s).fold(f64::INFINITY, f64::min);
                    @let met = runs.iter().filter(|r| r.judgement() == Judgement::AsExpected).count();
                    @let good = met == runs.len();
                    @let variant = s.unsafe_bug.clone().unwrap_or_else(|| if e.is_control() { "control".to_string() } else { "none (correct)".to_string() });
                    tr {
                        td class="l" { (s.name) }
                        td class="l" { (variant) }
                        td class="l" { (e.words()) }
                        td { (runs.len()) }
                        td { (caught.len()) " of " (runs.len()) }
                        td class=(if good { "good" } else { "poor" }) { (met) " of " (runs.len()) }
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
                        (figure.title()) ", median per window — "
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

fn comparison(
    settings: &[CampaignSetting],
    faults: &[String],
    rows: &[RunRow],
    cells: &[Vec<Cell>],
) -> Markup {
    let shown = [
        (Figure::Leaderless, "no leader ms, median per window"),
        (Figure::HealToOk, "heal → ok ms, median per window"),
        (Figure::Availability, "avail %, median per window"),
    ];
    html! {
        table class="sortable" {
            thead { tr {
                th class="l" { "setting" }
                @for f in faults {
                    @for (_, m) in shown {
                        th { (f) br; span class="small" { (m) } }
                    }
                    th { (f) br; span class="small" { "p99 ms, mean of runs" } }
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

/// The campaign's banner: every run against its expectation, what went
/// unexpectedly named first.
fn expectation_banner(rows: &[RunRow]) -> Markup {
    let of = |j: Judgement| rows.iter().filter(move |r| r.judgement() == j);
    let unexpected: Vec<&RunRow> = of(Judgement::Unexpected).collect();
    let undecided = of(Judgement::Undecided).count();
    let cut = rows.iter().filter(|r| r.cut_short.is_some()).count();
    let clean = of(Judgement::AsExpected)
        .filter(|r| !r.expect.is_control())
        .count();
    let caught = of(Judgement::AsExpected)
        .filter(|r| r.expect.is_control())
        .count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut met = vec![format!("{} linearizable", plural(clean, "run", "runs"))];
    if caught > 0 {
        met.push(format!(
            "{} caught",
            plural(caught, "positive control", "positive controls")
        ));
    }
    if !unexpected.is_empty() {
        html! {
            div class="banner bad" {
                b { "UNEXPECTED: " (unexpected.len()) " of " (rows.len()) " runs did not show what they expected." }
                ul {
                    @for r in unexpected.iter().take(10) {
                        li { a href={ (r.dir) "/index.html" } { (r.dir) } ": " (r.expect.miss())
                            " (expected " (r.expect.words()) ", got " (verdict_word(r.valid)) ")" }
                    }
                }
                "As expected: " (met.join(", ")) "."
            }
        }
    } else if undecided > 0 {
        html! {
            div class="banner unk" {
                b { "UNDECIDED: " (undecided) " of " (rows.len()) " runs" }
                @if cut > 0 { " (" (cut) " cut short: interrupted or never run)" }
                "; none went against its expectation. As expected: " (met.join(", ")) "."
            }
        }
    } else {
        html! {
            div class="banner ok" {
                b { "AS EXPECTED: " (met.join(", ")) "." }
                @if caught > 0 {
                    br;
                    "A positive control is a run expected to be caught (a known-bug variant, serializable reads): caught, it shows the bench would see such a bug."
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
                th class="l" { "verdict" } th class="l" { "expected" } th { "avail % of the run" } th { "no leader ms, whole run" } th { "no leader ms, median per window" } th { "p99 ms" }
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
                        @let j = r.judgement();
                        td class=(match j { Judgement::Unexpected => "poor l", Judgement::AsExpected => "good l", Judgement::Undecided => "l" }) {
                            (r.expect.words()) ": "
                            (match j { Judgement::AsExpected => "as expected", Judgement::Unexpected => "UNEXPECTED", Judgement::Undecided => "undecided" })
                        }
                        td { (format!("{:.1}", r.availability * 100.0)) }
                        td { (format!("{:.0}", r.leaderless_total_ms)) }
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
