//! A counterexample drawn as a timeline: one lane per process, each
//! operation a bar from invoke to completion; the operations that could not
//! be linearized red, the end of the longest linearizable prefix grey, the
//! rest blue, and operations that never completed dashed.

use faultline_checker::history::Op;
use faultline_checker::Counterexample;
use maud::{html, PreEscaped};

/// The drawing as an inline SVG element (empty without operations).
pub fn counterexample_svg(c: &Counterexample) -> String {
    let ops: &[Op] = &c.timeline;
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
    let colours = |o: &Op| {
        if failing.contains(&o.id) {
            ("#f4b4b4", "#c81e1e")
        } else if prefix.contains(&o.id) {
            ("#dddddd", "#888888")
        } else {
            ("#cfe0f5", "#1f77b4")
        }
    };
    let fixed = |v: f64| PreEscaped(format!("{v:.1}"));
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(h) font-family="sans-serif" font-size="11" {
            text x=(left) y="14" { (format!("{:.3} s", t0 as f64 / 1e9)) }
            text x=(w - 10.0) y="14" text-anchor="end" { (format!("{:.3} s", (t0 as f64 + span) / 1e9)) }
            @for (lane, p) in procs.iter().enumerate() {
                @let y = 24.0 + lane as f64 * lane_h;
                text x="4" y=(y + 18.0) { "process " (p) }
                @for o in ops.iter().filter(|o| o.process == *p) {
                    @let x0 = x(o.call_time);
                    @let x1 = o.ret_time.map_or(w - 10.0, x).max(x0 + 3.0);
                    @let (fill, stroke) = colours(o);
                    rect x=(fixed(x0)) y=(fixed(y + 4.0)) width=(fixed(x1 - x0)) height="22"
                        fill=(fill) stroke=(stroke)
                        stroke-dasharray=[o.ret_time.is_none().then_some("4 3")] {
                        title { (o.describe()) " (line " (o.line) ")" }
                    }
                    text x=(fixed(x0 + 3.0)) y=(fixed(y + 19.0)) { (o.describe()) }
                }
            }
        }
    }
    .into_string()
}
