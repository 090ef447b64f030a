//! Two campaigns compared: what each is, the cells both ran figure by
//! figure (A, B, the difference and whether it is clear), their verdicts
//! side by side, and the cells only one of them ran.

use maud::{html, Markup};

use super::{cell_text, page, table};
use crate::cells::Figure;
use crate::compare::{Call, Comparison, LoneCell, Side};

/// The comparison page; `links` are the two campaigns' pages, relative to
/// the comparison's directory.
pub fn compare_page(c: &Comparison, links: &(String, String)) -> String {
    let body = html! {
        h1 { "faultline: " (c.a.name) " (A) vs " (c.b.name) " (B)" }
        (sides(&c.a, &c.b, links))
        p {
            b { "Settings paired " (c.paired_by) ": " }
            @if c.pairs.is_empty() { "none — no setting of A matched one of B; pair them with --pair A_SETTING=B_SETTING." }
            @for (i, (a, b)) in c.pairs.iter().enumerate() {
                @if i > 0 { ", " }
                (a) " ↔ " (b)
            }
        }
        h2 { "Cells both campaigns ran" }
        p class="small" {
            "Each figure as its median over the cell's fault windows [95 % interval of that median] and n, the windows (every repeat's pooled), for A and for B; then B − A (of the medians), and the call by the same rule as a campaign page: a side is clearly better only when each side has at least 5 windows and its interval does not overlap the other's; otherwise there is no clear difference, with about how many windows per side would likely decide it. Time without a working leader, start → first ok and heal → first ok: lower is better; availability: higher. Click a header to sort."
        }
        @if c.shared.is_empty() {
            p { "None." }
        } @else {
            (figures_table(c))
            h2 { "Verdicts side by side" }
            (table(
                &["fault", "setting (A ↔ B)", "A", "B"],
                &c.shared.iter().map(|s| vec![
                    s.fault.clone(),
                    pair_words(&s.setting_a, &s.setting_b),
                    s.verdicts_a.words(),
                    s.verdicts_b.words(),
                ]).collect::<Vec<_>>(),
            ))
            h2 { "Plots" }
            @for (file, figure) in crate::compare::PLOTS {
                img src=(file) alt={ (figure.title()) ", A vs B" };
            }
        }
        h2 { "Cells only one campaign ran" }
        (lone("A", &c.only_a))
        (lone("B", &c.only_b))
    };
    page(
        &format!("faultline: {} vs {}", c.a.name, c.b.name),
        body,
        true,
    )
}

fn pair_words(a: &str, b: &str) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a} ↔ {b}")
    }
}

fn sides(a: &Side, b: &Side, links: &(String, String)) -> Markup {
    let row = |s: &Side, link: &str| {
        html! {
            tr {
                td class="l" { b { (s.label) } }
                td class="l" { a href=(link) { (s.dir_name) } }
                td class="l" { (s.name) }
                td class="l" { (s.target) }
                td class="l" { (s.net) }
                td { (s.nodes.map_or("–".to_string(), |n| n.to_string())) }
                td { (s.finished) " of " (s.runs) }
                td class="l" {
                    @for (i, (name, about)) in s.settings.iter().enumerate() {
                        @if i > 0 { br; }
                        (name) ": " (about)
                    }
                }
            }
        }
    };
    html! {
        table {
            thead { tr {
                th class="l" { "" } th class="l" { "campaign" } th class="l" { "name" } th class="l" { "target" }
                th class="l" { "network" } th { "nodes" } th { "runs finished" } th class="l" { "settings" }
            } }
            tbody { (row(a, &links.0)) (row(b, &links.1)) }
        }
        @if a.target != b.target || a.net != b.net {
            p class="small" {
                "The two differ in "
                @if a.target != b.target { "target (" (a.target) " vs " (b.target) ")" }
                @if a.target != b.target && a.net != b.net { " and " }
                @if a.net != b.net { "network backend (" (a.net) " vs " (b.net) ")" }
                ": a difference below may come from that as much as from the settings."
            }
        }
    }
}

fn figures_table(c: &Comparison) -> Markup {
    let diff = |f: Figure, d: f64| {
        let unit = if f == Figure::Availability { " pp" } else { "" };
        let digits = if d.abs() < 10.0 { 1 } else { 0 };
        format!("{d:+.digits$}{unit}")
    };
    html! {
        table class="sortable" {
            thead { tr {
                th class="l" { "fault" } th class="l" { "setting (A ↔ B)" } th class="l" { "figure, median per window" }
                th { "A" } th { "B" } th { "B − A" } th class="l" { "call" }
            } }
            tbody {
                @for s in &c.shared {
                    @for p in &s.figures {
                        tr {
                            td class="l" { (s.fault) }
                            td class="l" { (pair_words(&s.setting_a, &s.setting_b)) }
                            td class="l" { (p.figure.title()) }
                            td data-v=(p.a.as_ref().map_or(f64::NAN, |x| x.median)) { @match &p.a { Some(x) => (cell_text(x)), None => "–" } }
                            td data-v=(p.b.as_ref().map_or(f64::NAN, |x| x.median)) { @match &p.b { Some(x) => (cell_text(x)), None => "–" } }
                            td data-v=(p.difference.unwrap_or(f64::NAN)) { @match p.difference { Some(d) => (diff(p.figure, d)), None => "–" } }
                            td class=(match p.call { Call::ABetter | Call::BBetter => "good l", _ => "l" }) {
                                (p.call.words())
                                @if let Some(w) = p.windows_needed {
                                    " (about " (w) " windows per side would be needed)"
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn lone(label: &str, cells: &[LoneCell]) -> Markup {
    html! {
        p { b { "Only in " (label) ": " } @if cells.is_empty() { "none." } }
        @if !cells.is_empty() {
            (table(
                &["fault", "setting", "runs", "why it has no partner"],
                &cells.iter().map(|l| vec![l.fault.clone(), l.setting.clone(), l.verdicts.words(), l.why.clone()]).collect::<Vec<_>>(),
            ))
        }
    }
}
