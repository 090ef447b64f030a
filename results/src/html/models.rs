//! A campaign's findings per disk model: for each setting and fault run
//! under more than one model, what each model's runs showed side by side,
//! and a sentence where the models disagree ("lost write under posix,
//! none under journaled").

use faultline_checker::Verdict;
use faultline_rundir::spec::DiskModel;
use maud::{html, Markup};

use crate::by_model::{base_setting, models_of};
use crate::rows::RunRow;

/// What one model's runs of a (setting, fault) showed.
#[derive(Debug, Default)]
pub(crate) struct ModelCell<'a> {
    /// Finished runs.
    pub runs: usize,
    /// Of them, not linearizable.
    pub caught: usize,
    /// Of them, unknown.
    pub unknown: usize,
    /// The first caught run.
    pub first: Option<&'a RunRow>,
}

/// One line of the table: a base setting and a fault, and each model's
/// cell in [`models_of`]'s order.
pub(crate) struct ModelLine<'a> {
    pub setting: String,
    pub fault: String,
    pub cells: Vec<ModelCell<'a>>,
}

/// Group the runs judged by a disk model by (base setting, fault).
pub(crate) fn model_lines<'a>(rows: &'a [RunRow], models: &[DiskModel]) -> Vec<ModelLine<'a>> {
    let mut lines: Vec<ModelLine<'a>> = Vec::new();
    for r in rows.iter().filter(|r| r.cut_short.is_none()) {
        let Some(m) = r.disk_model else { continue };
        let Some(mi) = models.iter().position(|x| *x == m) else {
            continue;
        };
        let base = base_setting(&r.setting, m);
        let li = match lines
            .iter()
            .position(|l| l.setting == base && l.fault == r.fault)
        {
            Some(i) => i,
            None => {
                lines.push(ModelLine {
                    setting: base.to_string(),
                    fault: r.fault.clone(),
                    cells: models.iter().map(|_| ModelCell::default()).collect(),
                });
                lines.len() - 1
            }
        };
        let c = &mut lines[li].cells[mi];
        c.runs += 1;
        // Caught: not linearizable, or a safety violation in the logs.
        match (r.valid, r.unsafe_in_logs) {
            (Verdict::NotLinearizable, _) | (_, true) => {
                c.caught += 1;
                c.first.get_or_insert(r);
            }
            (Verdict::Unknown, false) => c.unknown += 1,
            (Verdict::Linearizable, false) => {}
        }
    }
    lines
}

/// The sentence for a line whose models disagree, if they do: which
/// models lost data (and the first counterexample's kind) and which kept
/// it.
pub(crate) fn disagreement(line: &ModelLine, models: &[DiskModel]) -> Option<String> {
    let ran: Vec<(DiskModel, &ModelCell)> = models
        .iter()
        .zip(&line.cells)
        .filter(|(_, c)| c.runs > 0)
        .map(|(m, c)| (*m, c))
        .collect();
    let caught: Vec<&(DiskModel, &ModelCell)> = ran.iter().filter(|(_, c)| c.caught > 0).collect();
    let clean: Vec<&(DiskModel, &ModelCell)> = ran
        .iter()
        .filter(|(_, c)| c.caught == 0 && c.unknown == 0)
        .collect();
    if caught.is_empty() || clean.is_empty() {
        return None;
    }
    let kind = |c: &ModelCell| match c.first {
        Some(r) => match r.anomaly.as_deref().and_then(|a| a.split(" on ").next()) {
            Some(k) => k.to_string(),
            None if r.unsafe_in_logs => "a safety violation in the nodes' logs".to_string(),
            None => "not linearizable".to_string(),
        },
        None => "not linearizable".to_string(),
    };
    let under = |v: &[&(DiskModel, &ModelCell)]| {
        v.iter()
            .map(|(m, _)| m.name())
            .collect::<Vec<_>>()
            .join(" and ")
    };
    Some(format!(
        "{} under {}: {} under {}, none under {}",
        line.setting,
        line.fault,
        kind(caught[0].1),
        under(&caught),
        under(&clean)
    ))
}

/// The section, when the campaign's runs were judged by more than one
/// disk model.
pub(crate) fn by_model_section(rows: &[RunRow]) -> Option<Markup> {
    let models = models_of(rows);
    if models.len() < 2 {
        return None;
    }
    // Only what ran under more than one model is compared.
    let lines: Vec<ModelLine> = model_lines(rows, &models)
        .into_iter()
        .filter(|l| l.cells.iter().filter(|c| c.runs > 0).count() > 1)
        .collect();
    let sentences: Vec<String> = lines
        .iter()
        .filter_map(|l| disagreement(l, &models))
        .collect();
    Some(html! {
        h2 { "Findings by disk model" }
        p class="small" {
            "The same setting and fault under each disk model the campaign ran (docs/faults.md, \"Disk models\"): posix makes a name durable only when its directory is fsynced; journaled also when any file of the member's filesystem is fsynced later, as ext4 and XFS do; names-durable keeps every name at once and loses only unsynced file data, as LazyFS does. A finding that appears under one model only is a finding about that kind of filesystem."
        }
        @if sentences.is_empty() {
            p { "The models agree: no setting and fault was caught under one model and clean under another." }
        } @else {
            ul { @for s in &sentences { li { b { (s) } } } }
        }
        table class="sortable" {
            thead { tr {
                th class="l" { "setting" } th class="l" { "fault" }
                @for m in &models { th class="l" { (m.name()) } }
            } }
            tbody {
                @for l in &lines {
                    tr {
                        td class="l" { (l.setting) }
                        td class="l" { (l.fault) }
                        @for c in &l.cells {
                            @if c.runs == 0 {
                                td class="l" { "–" }
                            } @else {
                                td class=(if c.caught > 0 { "l poor" } else { "l" }) {
                                    @if c.caught > 0 {
                                        (format!("caught in {} of {}", c.caught, c.runs))
                                    } @else {
                                        (format!("linearizable in {} of {}", c.runs - c.unknown, c.runs))
                                    }
                                    @if c.unknown > 0 { (format!(", {} unknown", c.unknown)) }
                                    @if let Some(r) = c.first {
                                        br; a href={ (r.dir) "/index.html" } { (r.anomaly.as_deref().unwrap_or(&r.dir)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}
