//! A counterexample drawn as a timeline over the smallest window that shows
//! its witness: one lane per process, each operation a bar from invoke to
//! completion; the witness's operations red with a heavy outline and
//! labelled with their line, the rest of what ran beside them faded (the
//! end of the longest linearizable prefix grey, the others blue), and
//! operations that never completed dashed.

use faultline_checker::history::Op;
use faultline_checker::witness::readable_time;
use faultline_checker::Counterexample;
use maud::{html, PreEscaped};

/// The drawing as an inline SVG element (empty without operations).
pub fn counterexample_svg(c: &Counterexample) -> String {
    let lines: Vec<usize> = c.witness.iter().map(|o| o.line).collect();
    let in_witness = |o: &Op| lines.contains(&o.line);
    // The window: the witness's span, with a little room on each side.
    let w_start = c.witness.iter().map(|o| o.invoke_ns).min();
    let w_end = c
        .witness
        .iter()
        .map(|o| o.complete_ns.unwrap_or(o.invoke_ns))
        .max();
    let ops: Vec<Op> = match (w_start, w_end) {
        (Some(a), Some(b)) => {
            let pad = (b - a) / 10 + 1;
            let (a, b) = (a.saturating_sub(pad), b + pad);
            c.timeline
                .iter()
                .filter(|o| in_witness(o) || (o.call_time < b && o.ret_time.is_none_or(|r| r > a)))
                .take(40)
                .cloned()
                .collect()
        }
        _ => c.timeline.clone(),
    };
    let ops: &[Op] = &ops;
    if ops.is_empty() {
        return String::new();
    }
    let failing: Vec<usize> = c.failing.iter().map(|o| o.id).collect();
    let prefix: Vec<usize> = c.prefix_tail.iter().map(|o| o.id).collect();
    let mut procs: Vec<u64> = ops.iter().map(|o| o.process).collect();
    procs.sort_unstable();
    procs.dedup();
    let t0 = ops.iter().map(|o| o.call_time).min().unwrap_or(0);
    let t1 = ops
        .iter()
        .map(|o| o.ret_time.unwrap_or(o.call_time))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let span = (t1 - t0) as f64 * 1.15;
    let (w, lane_h, left) = (1000.0, 34.0, 90.0);
    let h = 40.0 + lane_h * procs.len() as f64;
    let x = |t: u64| left + (t.saturating_sub(t0)) as f64 / span * (w - left - 10.0);
    // (fill, outline, outline width, opacity)
    let colours = |o: &Op| {
        if in_witness(o) {
            ("#f4b4b4", "#c81e1e", "2.5", "1")
        } else if failing.contains(&o.id) {
            ("#f4b4b4", "#c81e1e", "1", "0.45")
        } else if prefix.contains(&o.id) {
            ("#dddddd", "#888888", "1", "0.45")
        } else {
            ("#cfe0f5", "#1f77b4", "1", "0.45")
        }
    };
    let fixed = |v: f64| PreEscaped(format!("{v:.1}"));
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(h) font-family="sans-serif" font-size="11" {
            text x=(left) y="14" { (readable_time(t0)) }
            text x=((w + left) / 2.0) y="14" text-anchor="middle" font-weight="bold" fill="#c81e1e" { (c.kind.words()) }
            text x=(w - 10.0) y="14" text-anchor="end" { (readable_time(t0 + span as u64)) }
            @for (lane, p) in procs.iter().enumerate() {
                @let y = 24.0 + lane as f64 * lane_h;
                text x="4" y=(y + 18.0) { "process " (p) }
                @for o in ops.iter().filter(|o| o.process == *p) {
                    @let x0 = x(o.call_time);
                    @let x1 = o.ret_time.map_or(w - 10.0, x).max(x0 + 3.0);
                    @let (fill, stroke, width, opacity) = colours(o);
                    rect x=(fixed(x0)) y=(fixed(y + 4.0)) width=(fixed(x1 - x0)) height="22"
                        fill=(fill) stroke=(stroke) stroke-width=(width) opacity=(opacity)
                        stroke-dasharray=[o.ret_time.is_none().then_some("4 3")] {
                        title { (o.describe()) " (line " (o.line) ")" }
                    }
                    text x=(fixed(x0 + 3.0)) y=(fixed(y + 19.0)) opacity=(opacity) {
                        (o.describe())
                        @if in_witness(o) { " · line " (o.line) }
                    }
                }
            }
        }
    }
    .into_string()
}
