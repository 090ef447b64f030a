//! The HTML pages: self-contained (no network fetches, no scripts from
//! elsewhere), readable from a file, and every string taken from a history,
//! a log or a file name escaped.

use std::fmt::Write as _;

use faultline_checker::history::Op;
use faultline_checker::{Counterexample, Verdict};
use serde_json::Value;

use crate::analysis::RunResults;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:14px} td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3;cursor:pointer} td.l,th.l{text-align:left}
.banner{padding:14px 18px;border-radius:6px;font-size:18px;margin:12px 0}
.ok{background:#e3f5e8;border:1px solid #2e8b57} .bad{background:#fbe4e4;border:1px solid #c81e1e} .unk{background:#fff2d9;border:1px solid #e69100}
.small{font-size:13px;color:#555} img{max-width:100%;border:1px solid #eee;margin:6px 0}
td.good{background:#e3f5e8} td.poor{background:#fbe4e4} code{background:#f6f6f6;padding:1px 4px}
"#;

/// A tiny sorter for tables with class `sortable`: click a header to sort by
/// that column (numbers by value, the rest as text).
const SORT_SCRIPT: &str = r#"
<script>
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var rows=Array.from(t.tBodies[0].rows), asc=th.dataset.asc!=='1'; th.dataset.asc=asc?'1':'0';
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v||a.cells[i].textContent, y=b.cells[i].dataset.v||b.cells[i].textContent;
        var nx=parseFloat(x), ny=parseFloat(y);
        var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
        return asc?c:-c;});
      rows.forEach(function(r){t.tBodies[0].appendChild(r);});
    });
  });
});
</script>
"#;

fn page(title: &str, body: &str, script: bool) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n{}</body></html>\n",
        esc(title),
        if script { SORT_SCRIPT } else { "" }
    )
}

fn verdict_banner(v: Verdict, why: &str) -> String {
    let (class, text) = match v {
        Verdict::Linearizable => (
            "ok",
            "LINEARIZABLE: every operation is explained by some order consistent with real time.",
        ),
        Verdict::NotLinearizable => (
            "bad",
            "NOT LINEARIZABLE: the cluster returned results no correct register could.",
        ),
        Verdict::Unknown => (
            "unk",
            "UNKNOWN: the checker ran out of its budget before deciding.",
        ),
    };
    format!(
        "<div class=\"banner {class}\"><b>{}</b>{}</div>",
        esc(text),
        if why.is_empty() {
            String::new()
        } else {
            format!("<br>{}", esc(why))
        }
    )
}

fn f1(x: f64) -> String {
    format!("{x:.1}")
}

fn opt_ms(x: Option<f64>) -> String {
    x.map_or("never".to_string(), |v| format!("{v:.0}"))
}

/// The counterexample drawn as a timeline: one lane per process, each
/// operation a bar from invoke to completion, the failing ones red.
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
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">");
    let _ = write!(s, "<text x=\"{left}\" y=\"14\">{:.3} s</text><text x=\"{}\" y=\"14\" text-anchor=\"end\">{:.3} s</text>", t0 as f64 / 1e9, w - 10.0, (t0 as f64 + span) / 1e9);
    for (lane, p) in procs.iter().enumerate() {
        let y = 24.0 + lane as f64 * lane_h;
        let _ = write!(s, "<text x=\"4\" y=\"{}\">process {p}</text>", y + 18.0);
        for o in ops.iter().filter(|o| o.process == *p) {
            let x0 = x(o.call_time);
            let x1 = o.ret_time.map_or(w - 10.0, x).max(x0 + 3.0);
            let (fill, stroke) = if failing.contains(&o.id) {
                ("#f4b4b4", "#c81e1e")
            } else if prefix.contains(&o.id) {
                ("#dddddd", "#888888")
            } else {
                ("#cfe0f5", "#1f77b4")
            };
            let dash = if o.ret_time.is_none() {
                " stroke-dasharray=\"4 3\""
            } else {
                ""
            };
            let _ = write!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"22\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}><title>{}</title></rect>",
                y + 4.0,
                x1 - x0,
                esc(&format!("{} (line {})", o.describe(), o.line))
            );
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x0 + 3.0,
                y + 19.0,
                esc(&o.describe())
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for (i, h) in headers.iter().enumerate() {
        let _ = write!(
            s,
            "<th{}>{}</th>",
            if i == 0 { " class=\"l\"" } else { "" },
            esc(h)
        );
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let _ = write!(
                s,
                "<td{}>{}</td>",
                if i == 0 { " class=\"l\"" } else { "" },
                esc(c)
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// The run page.
pub fn run_page(r: &RunResults, title: &str, node_logs: &[String]) -> String {
    let mut b = String::new();
    let _ = write!(b, "<h1>faultline run: {}</h1>", esc(title));
    let why = r
        .checker
        .failures
        .iter()
        .filter_map(|f| f.counterexample.as_ref().map(|c| c.explanation.clone()))
        .next()
        .unwrap_or_else(|| {
            r.checker
                .unknown
                .first()
                .and_then(|u| u.reason.clone())
                .unwrap_or_default()
        });
    b.push_str(&verdict_banner(r.checker.valid, &why));
    if !r.findings.is_empty() {
        let _ = write!(
            b,
            "<div class=\"banner bad\"><b>UNSAFE: the nodes' own logs show {} safety violation(s).</b><ul>",
            r.findings.len()
        );
        for f in &r.findings {
            let _ = write!(
                b,
                "<li>{}{}: {}</li>",
                esc(&f.kind),
                f.at_s.map_or(String::new(), |s| format!(" at {s:.1} s")),
                esc(&f.message)
            );
        }
        b.push_str("</ul></div>");
    }
    b.push_str("<h2>Settings</h2>");
    let rows: Vec<Vec<String>> = r
        .spec
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    vec![
                        k.clone(),
                        match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        },
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    b.push_str(&table(&["setting", "value"], &rows));
    let _ = write!(b, "<p class=\"small\">Replay: the run's seed and settings above reproduce its fault schedule.</p>");
    b.push_str("<h2>Plots</h2>");
    for (file, alt) in [
        ("latency.svg", "latency"),
        ("throughput.svg", "throughput"),
        ("quantiles.svg", "latency quantiles"),
        ("leaders.svg", "leader timeline"),
    ] {
        let _ = write!(b, "<img src=\"{file}\" alt=\"{alt}\">");
    }
    b.push_str("<h2>Statistics</h2>");
    let rows: Vec<Vec<String>> = r
        .counts
        .iter()
        .map(|(f, c)| {
            vec![
                f.clone(),
                c.ok.to_string(),
                c.fail.to_string(),
                c.info.to_string(),
            ]
        })
        .collect();
    b.push_str(&table(&["operation", "ok", "fail", "info"], &rows));
    let rows: Vec<Vec<String>> = r
        .latency
        .iter()
        .map(|(f, p)| {
            vec![
                f.clone(),
                p.count.to_string(),
                f1(p.p50),
                f1(p.p90),
                f1(p.p99),
                f1(p.p999),
                f1(p.max),
            ]
        })
        .collect();
    b.push_str(&table(
        &[
            "latency of ok ops (ms)",
            "count",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
        ],
        &rows,
    ));
    b.push_str(&table(
        &["availability", "value"],
        &[
            vec!["ok throughput (ops/s)".into(), f1(r.throughput)],
            vec![
                "100 ms buckets with an ok op".into(),
                format!("{:.1} %", r.availability.share * 100.0),
            ],
            vec![
                "longest stretch without an ok op".into(),
                format!(
                    "{:.0} ms from {:.1} s",
                    r.availability.longest_gap_ms, r.availability.longest_gap_start_s
                ),
            ],
            vec![
                "time without a leader".into(),
                format!("{:.0} ms", r.elections.leaderless_ms),
            ],
            vec![
                "leader changes".into(),
                r.elections.leader_changes.to_string(),
            ],
            vec!["highest term".into(), r.elections.max_term.to_string()],
        ],
    ));
    b.push_str("<h2>Faults</h2>");
    let rows: Vec<Vec<String>> = r
        .faults
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                format!("{:.1}–{:.1}", f.start_s, f.end_s),
                f.nodes.join(", "),
                opt_ms(f.down_ms),
                opt_ms(f.recovery_ms),
                format!("{:.0}", f.leaderless_ms),
            ]
        })
        .collect();
    b.push_str(&table(
        &[
            "fault",
            "window (s)",
            "nodes",
            "start → first ok (ms)",
            "heal → first ok (ms)",
            "without leader (ms)",
        ],
        &rows,
    ));
    if let Some(links) = r.links.as_array() {
        b.push_str("<h2>Links</h2>");
        let rows: Vec<Vec<String>> = links
            .iter()
            .map(|l| {
                let g = |k: &str| {
                    l.get(k)
                        .map(|v| {
                            v.as_u64().map_or_else(
                                || v.as_str().unwrap_or("").to_string(),
                                |n| n.to_string(),
                            )
                        })
                        .unwrap_or_default()
                };
                vec![
                    format!("{} → {}", g("from"), g("to")),
                    g("passed"),
                    g("dropped"),
                    g("duplicated"),
                    g("delayed"),
                    g("bytes"),
                ]
            })
            .collect();
        b.push_str(&table(
            &[
                "link",
                "passed",
                "dropped",
                "duplicated",
                "delayed",
                "bytes",
            ],
            &rows,
        ));
    }
    for f in &r.checker.failures {
        if let Some(c) = &f.counterexample {
            let _ = write!(
                b,
                "<h2>Counterexample on key {}</h2><p>{}</p>",
                esc(&f.key),
                esc(&c.explanation)
            );
            let _ = write!(
                b,
                "<p class=\"small\">Grey: the end of the longest linearizable prefix ({} operations). Red: could not be linearized after it. Blue: concurrent. Dashed: never completed (info).</p>",
                c.prefix_len
            );
            b.push_str(&counterexample_svg(c));
        }
    }
    for u in &r.checker.unknown {
        let _ = write!(
            b,
            "<p>Key {}: unknown: {}</p>",
            esc(&u.key),
            esc(u.reason.as_deref().unwrap_or(""))
        );
    }
    b.push_str("<h2>Files</h2><ul>");
    for f in [
        "history.jsonl",
        "results.json",
        "schedule.json",
        "spec.json",
        "status.jsonl",
        "links.json",
    ] {
        let _ = write!(b, "<li><a href=\"{f}\">{f}</a></li>");
    }
    for l in node_logs {
        let _ = write!(
            b,
            "<li><a href=\"nodes/{}\">nodes/{}</a></li>",
            esc(l),
            esc(l)
        );
    }
    b.push_str("</ul>");
    page(&format!("faultline run {title}"), &b, false)
}

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
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "NOT linearizable",
        Verdict::Unknown => "unknown",
    }
}

/// Per setting: how often runs of a known-bug variant were caught, and how
/// often the correct node passed.
fn bug_hunt_table(settings: &[crate::CampaignSetting], rows: &[RunRow]) -> String {
    let mut b = String::from(
        "<h2>Bug hunt</h2><p class=\"small\">Each UNSAFE variant should be caught in its runs (not linearizable, or a safety violation in the nodes' logs); the correct node should never be.</p>\
         <table class=\"sortable\"><thead><tr><th class=\"l\">setting</th><th class=\"l\">variant</th><th>runs</th><th>caught</th><th>rate %</th><th>first anomaly (s into the run)</th><th class=\"l\">counterexample</th></tr></thead><tbody>",
    );
    for s in settings {
        let runs: Vec<&RunRow> = rows.iter().filter(|r| r.setting == s.name).collect();
        let caught: Vec<&&RunRow> = runs
            .iter()
            .filter(|r| r.valid == Verdict::NotLinearizable)
            .collect();
        let first = caught
            .iter()
            .filter_map(|r| r.first_anomaly_s)
            .fold(f64::INFINITY, f64::min);
        let link = caught.first().map_or(String::from("–"), |r| {
            format!("<a href=\"{}/index.html\">{}</a>", esc(&r.dir), esc(&r.dir))
        });
        let rate = if runs.is_empty() {
            0.0
        } else {
            caught.len() as f64 * 100.0 / runs.len() as f64
        };
        let (variant, good) = match &s.unsafe_bug {
            Some(v) => (v.clone(), rate >= 90.0),
            None => ("none (correct node)".to_string(), caught.is_empty()),
        };
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"{}\">{}</td><td>{:.0}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            esc(&s.name),
            esc(&variant),
            runs.len(),
            if good { "good" } else { "poor" },
            caught.len(),
            rate,
            if first.is_finite() { format!("{first:.1}") } else { "–".into() },
            link
        );
    }
    b.push_str("</tbody></table>");
    b
}

/// The campaign page.
pub fn campaign_page(
    name: &str,
    all_settings: &[crate::CampaignSetting],
    faults: &[String],
    rows: &[RunRow],
) -> String {
    let settings: Vec<(String, String)> = all_settings
        .iter()
        .map(|s| (s.name.clone(), s.description.clone()))
        .collect();
    let settings = settings.as_slice();
    let mut b = String::new();
    let _ = write!(b, "<h1>faultline campaign: {}</h1>", esc(name));
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
    b.push_str(&verdict_banner(v, &why));
    if all_settings.iter().any(|s| s.unsafe_bug.is_some()) {
        b.push_str(&bug_hunt_table(all_settings, rows));
    }
    b.push_str("<h2>Settings</h2>");
    let srows: Vec<Vec<String>> = settings
        .iter()
        .map(|(n, d)| vec![n.clone(), d.clone()])
        .collect();
    b.push_str(&table(&["setting", "timeouts"], &srows));

    // Which setting did best under each fault.
    let mean = |v: Vec<f64>| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let cell = |s: &str, f: &str| -> Vec<&RunRow> {
        rows.iter()
            .filter(|r| r.setting == s && r.fault == f)
            .collect()
    };
    b.push_str("<h2>Which setting did best under each fault</h2><ul>");
    for f in faults {
        let best = settings
            .iter()
            .map(|(s, _)| {
                let c = cell(s, f);
                (
                    s.clone(),
                    mean(c.iter().map(|r| r.availability).collect()),
                    mean(c.iter().map(|r| r.leaderless_ms).collect()),
                )
            })
            .filter(|(_, a, _)| !a.is_nan())
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.2.total_cmp(&a.2)));
        if let Some((s, a, l)) = best {
            let _ = write!(b, "<li><b>{}</b>: <b>{}</b> (availability {:.1} %, {:.0} ms without a leader per fault)</li>", esc(f), esc(&s), a * 100.0, l);
        }
    }
    b.push_str("</ul>");

    b.push_str("<h2>Comparison</h2><p class=\"small\">Per setting and fault kind, averaged over repeats: availability (share of 100 ms buckets with an ok operation), time without a working leader per fault window (no node that leads and that a majority of voters heard from within two heartbeats, from the nodes&#39; status), time from heal to the first ok operation, p99 latency, and verdicts. Click a header to sort.</p>");
    b.push_str("<table class=\"sortable\"><thead><tr><th class=\"l\">setting</th>");
    for f in faults {
        for m in ["avail %", "no leader ms", "recover ms", "p99 ms", "verdict"] {
            let _ = write!(
                b,
                "<th>{}<br><span class=\"small\">{}</span></th>",
                esc(f),
                m
            );
        }
    }
    b.push_str("</tr></thead><tbody>");
    for (s, _) in settings {
        let _ = write!(b, "<tr><td class=\"l\">{}</td>", esc(s));
        for f in faults {
            let c = cell(s, f);
            let avail = mean(c.iter().map(|r| r.availability * 100.0).collect());
            let nl = mean(c.iter().map(|r| r.leaderless_ms).collect());
            let rec = mean(c.iter().filter_map(|r| r.recovery_ms).collect());
            let p99 = mean(c.iter().map(|r| r.p99_ms).collect());
            let ok = c
                .iter()
                .filter(|r| r.valid == Verdict::Linearizable)
                .count();
            let badn = c
                .iter()
                .filter(|r| r.valid == Verdict::NotLinearizable)
                .count();
            let num = |x: f64, d: usize| {
                if x.is_nan() {
                    "–".to_string()
                } else {
                    format!("{x:.d$}")
                }
            };
            let verdict = if badn > 0 {
                format!("{badn}/{} NOT lin.", c.len())
            } else {
                format!("{ok}/{} ok", c.len())
            };
            let vclass = if badn > 0 { " class=\"poor\"" } else { "" };
            let _ = write!(
                b,
                "<td data-v=\"{avail}\">{}</td><td data-v=\"{nl}\">{}</td><td data-v=\"{rec}\">{}</td><td data-v=\"{p99}\">{}</td><td{vclass} data-v=\"{badn}\">{}</td>",
                num(avail, 1),
                num(nl, 0),
                num(rec, 0),
                num(p99, 1),
                esc(&verdict)
            );
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table>");
    b.push_str("<h2>Plots</h2>");
    for (file, alt) in [
        ("campaign-availability.svg", "availability"),
        ("campaign-leaderless.svg", "time without a leader"),
        ("campaign-p99.svg", "p99 latency"),
    ] {
        let _ = write!(b, "<img src=\"{file}\" alt=\"{alt}\">");
    }
    b.push_str("<h2>Runs</h2><table class=\"sortable\"><thead><tr><th class=\"l\">run</th><th class=\"l\">setting</th><th class=\"l\">fault</th><th>repeat</th><th class=\"l\">verdict</th><th>avail %</th><th>no leader ms</th><th>p99 ms</th><th>ok</th><th>fail</th><th>info</th></tr></thead><tbody>");
    for r in rows {
        let class = if r.valid == Verdict::NotLinearizable {
            " class=\"poor l\""
        } else {
            " class=\"l\""
        };
        let _ = write!(
            b,
            "<tr><td class=\"l\"><a href=\"{}/index.html\">{}</a></td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td{class}>{}</td><td>{:.1}</td><td>{:.0}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.dir),
            esc(&r.dir),
            esc(&r.setting),
            esc(&r.fault),
            r.repeat,
            verdict_word(r.valid),
            r.availability * 100.0,
            r.leaderless_ms,
            r.p99_ms,
            r.counts.0,
            r.counts.1,
            r.counts.2
        );
    }
    b.push_str("</tbody></table>");
    page(&format!("faultline campaign {name}"), &b, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
