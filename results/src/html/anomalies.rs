//! A list-append run's anomalies on its page: each one's class, its
//! explanation, a drawing of its transactions (one lane per process, each
//! transaction a bar from invoke to completion, an arrow per dependency
//! edge labelled with its kind) and the table of those transactions with
//! their micro-operations and lines.

use faultline_checker::elle::{Anomaly, EdgeKind, Mop, Txn, TxnOutcome};
use faultline_checker::witness::readable_time;
use maud::{html, Markup, PreEscaped};

use crate::analysis::txns::TxnResults;

/// The anomalies section (empty for a valid history).
pub fn anomalies(t: &TxnResults) -> Markup {
    let r = &t.report;
    html! {
        h2 { "Transactions" }
        p {
            (r.txns) " transactions judged against " b { (t.consistency) } ": "
            (r.edges) " dependency edges, " (r.cyclic_components) " strongly connected component(s) with a cycle."
            @if !r.counts.is_empty() {
                " Found: "
                (r.counts.iter().map(|(c, n)| format!("{c} ×{n}")).collect::<Vec<_>>().join(", "))
                "."
            }
        }
        p class="small" { "Edge kinds: ww, the next append to a key; wr, a read whose last element the other appended; rw, an append that followed what a read saw; rt, one completed before the other began; process, the same process ran one after the other. docs/workloads.md draws each class." }
        @for a in &r.anomalies {
            h3 { (a.class) }
            p { (a.explanation) }
            @let txns: Vec<(usize, &Txn)> = a.txns.iter().filter_map(|i| t.named.get(i).map(|x| (*i, x))).collect();
            @if !a.edges.is_empty() && txns.len() == a.txns.len() {
                div class="scroll" { (PreEscaped(cycle_svg(a, &txns))) }
            }
            table {
                tr { th { "T" } th { "process" } th { "invoked" } th { "completed" } th { "outcome" } th class="l" { "micro-operations" } th { "line" } }
                @for (i, x) in &txns {
                    tr {
                        td { "T" (i) } td { (x.process) } td { (readable_time(x.invoke_ns)) }
                        td { (x.complete_ns.map_or("never".into(), readable_time)) }
                        td { (outcome_word(x.outcome)) }
                        td class="l" { code { (mops_words(&x.mops)) } }
                        td { (x.line) }
                    }
                }
            }
        }
    }
}

fn outcome_word(o: TxnOutcome) -> &'static str {
    match o {
        TxnOutcome::Ok => "ok",
        TxnOutcome::Fail => "fail",
        TxnOutcome::Info => "info",
    }
}

/// `append k1 3; r k1 [1 2 3]`; a long list as its last elements and its
/// length (`r k1 [… 251 252 253] (253)`).
pub fn mops_words(mops: &[Mop]) -> String {
    const TAIL: usize = 6;
    let ints = |l: &[i64]| l.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
    mops.iter()
        .map(|m| match m {
            Mop::Append { key, value } => format!("append {key} {value}"),
            Mop::Read {
                key,
                value: Some(l),
            } if l.len() > TAIL => {
                format!("r {key} [… {}] ({})", ints(&l[l.len() - TAIL..]), l.len())
            }
            Mop::Read {
                key,
                value: Some(l),
            } => format!("r {key} [{}]", ints(l)),
            Mop::Read { key, value: None } => format!("r {key} ?"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn edge_word(k: EdgeKind) -> &'static str {
    match k {
        EdgeKind::Ww => "ww",
        EdgeKind::Wr => "wr",
        EdgeKind::Rw => "rw",
        EdgeKind::Rt => "rt",
        EdgeKind::Process => "process",
    }
}

/// The cycle drawn: a lane per process, a bar per transaction, an arrow
/// from each transaction to the next labelled with the edge's kind (and
/// its key and element).
fn cycle_svg(a: &Anomaly, txns: &[(usize, &Txn)]) -> String {
    let mut procs: Vec<u64> = txns.iter().map(|(_, t)| t.process).collect();
    procs.sort_unstable();
    procs.dedup();
    let t0 = txns.iter().map(|(_, t)| t.invoke_ns).min().unwrap_or(0);
    let end = |t: &Txn| t.complete_ns.unwrap_or(t.invoke_ns);
    let t1 = txns
        .iter()
        .map(|(_, t)| end(t))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let (w, lane_h, left) = (1000.0, 46.0, 90.0);
    let h = 30.0 + lane_h * procs.len() as f64;
    let span = (t1 - t0) as f64 * 1.1;
    let x = |ns: u64| left + ns.saturating_sub(t0) as f64 / span * (w - left - 20.0);
    let y = |p: u64| 20.0 + lane_h * procs.iter().position(|q| *q == p).unwrap_or(0) as f64;
    let mid = |t: &Txn| {
        (
            (x(t.invoke_ns) + x(end(t)).max(x(t.invoke_ns) + 6.0)) / 2.0,
            y(t.process) + 10.0,
        )
    };
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(h) viewBox={ "0 0 " (w) " " (h) } font-family="sans-serif" font-size="11" {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#c81e1e" {}
                }
            }
            @for p in &procs {
                text x="4" y=(y(*p) + 14.0) { "process " (p) }
                line x1=(left) x2=(w - 10.0) y1=(y(*p) + 10.0) y2=(y(*p) + 10.0) stroke="#eee" {}
            }
            @for (i, t) in txns {
                @let (x0, x1) = (x(t.invoke_ns), x(end(t)).max(x(t.invoke_ns) + 6.0));
                rect x=(x0) y=(y(t.process)) width=(x1 - x0) height="20" fill="#f4b4b4" stroke="#c81e1e" stroke-width="2"
                    stroke-dasharray=[(t.outcome != TxnOutcome::Ok).then_some("4 3")] {
                    title { "T" (i) ": " (mops_words(&t.mops)) }
                }
                text x=(x0 + 3.0) y=(y(t.process) + 14.0) { "T" (i) }
            }
            @for (n, e) in a.edges.iter().enumerate() {
                @let from = txns[n].1;
                @let to = txns[(n + 1) % txns.len()].1;
                @let ((ax, ay), (bx, by)) = (mid(from), mid(to));
                @let bend = if n % 2 == 0 { -16.0 } else { 16.0 };
                path d=(format!("M {ax} {ay} Q {} {} {bx} {by}", (ax + bx) / 2.0, (ay + by) / 2.0 + bend * 2.0))
                    fill="none" stroke="#c81e1e" stroke-width="1.5" marker-end="url(#arrow)" {}
                text x=((ax + bx) / 2.0 + 3.0) y=((ay + by) / 2.0 + bend - 2.0) fill="#c81e1e" {
                    (edge_word(e.kind))
                    @if let (Some(k), Some(v)) = (&e.key, e.value) { " " (k) " " (v) }
                }
            }
        }
    }
    .into_string()
}
