//! The HTML pages, built with maud templates (every string taken from a
//! history, a log or a file name is escaped by the template engine, and a
//! page's structure reads as nested elements): self-contained, with no
//! network fetches and no scripts from elsewhere, readable from a file.
//!
//! [`run_page`] is one run's page, [`campaign_page`] a campaign's, and
//! [`counterexample_svg`] draws a counterexample as a timeline. At a
//! phone's width the page itself never scrolls sideways: wide tables and
//! drawings scroll inside their own box.

mod anomalies;
mod campaign_page;
mod compare_page;
mod counterexample;
mod locks;
mod models;
mod run_page;
mod store_page;

use faultline_checker::Verdict;
use maud::{html, Markup, PreEscaped, DOCTYPE};

pub use campaign_page::campaign_page;
pub use compare_page::compare_page;
pub use counterexample::counterexample_svg;
pub use run_page::run_page;
pub use store_page::{store_entries, store_page};

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px;overflow-wrap:break-word}
@media (max-width:600px){body{margin:10px}}
table{display:block;max-width:100%;overflow-x:auto;width:max-content}
.scroll{max-width:100%;overflow-x:auto}
h1{font-size:22px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:14px} td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3;cursor:pointer} td.l,th.l{text-align:left}
.banner{padding:14px 18px;border-radius:6px;font-size:18px;margin:12px 0}
.ok{background:#e3f5e8;border:1px solid #2e8b57} .run{background:#e4ecfb;border:1px solid #2b5fc8} .cmp{background:#f3f3f3} .bad{background:#fbe4e4;border:1px solid #c81e1e} .unk{background:#fff2d9;border:1px solid #e69100}
.small{font-size:13px;color:#555} img{max-width:100%;height:auto;border:1px solid #eee;margin:6px 0}
td.good{background:#e3f5e8} td.poor{background:#fbe4e4} code{background:#f6f6f6;padding:1px 4px}
"#;

/// The pages' script: a tiny sorter for tables with class `sortable`
/// (click a header to sort by that column, numbers by value, the rest as
/// text), and, on a campaign page served over HTTP while the campaign runs
/// (an element `#live`), a poll of `progress.json` that swaps in the
/// rewritten page when a run finishes. Opened from disk, only the sorter
/// runs.
const SCRIPT: &str = r#"
function bindSort(){
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
}
bindSort();
(function(){
  if(!/^https?:$/.test(location.protocol)) return;
  var tries=0;
  function live(){ return document.getElementById('live'); }
  function poll(){
    var l=live(); if(!l) return;
    fetch('progress.json',{cache:'no-store'}).then(function(r){return r.ok?r.json():null;}).then(function(p){
      if(!p) return;
      if(String(p.done)===l.dataset.done && p.state==='running') return;
      if(++tries>30) return;
      return fetch(location.pathname,{cache:'no-store'}).then(function(r){return r.text();}).then(function(t){
        var d=new DOMParser().parseFromString(t,'text/html');
        document.body.innerHTML=d.body.innerHTML; bindSort();
        // The plots were redrawn: fetch them again, not from the cache.
        document.querySelectorAll('img').forEach(function(i){ i.src=i.getAttribute('src').split('?')[0]+'?v='+p.done+'-'+p.state; });
        var n=live(); if(!n || n.dataset.done!==String(p.done)) return; tries=0;
      });
    }).catch(function(){}).finally(function(){ if(live()) setTimeout(poll,2000); });
  }
  setTimeout(poll,2000);
})();
"#;

/// A whole page: `body` inside the shared style, with the pages' script
/// when `sortable`.
fn page(title: &str, body: Markup, sortable: bool) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No icon to fetch: a browser's request for /favicon.ico
                // would fail on every page.
                link rel="icon" href="data:,";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (body)
                @if sortable {
                    script { (PreEscaped(SCRIPT)) }
                }
            }
        }
    }
    .into_string()
}

/// A coloured banner (`class`: ok, bad or unk) saying `text`, with `why`
/// under it.
fn banner(class: &str, text: &str, why: &str) -> Markup {
    html! {
        div class={ "banner " (class) } {
            b { (text) }
            @if !why.is_empty() {
                br;
                (why)
            }
        }
    }
}

/// The banner that says a register run's verdict.
fn verdict_banner(v: Verdict, why: &str) -> Markup {
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
    banner(class, text, why)
}

/// The banner of a list-append run: `consistency` held or not.
fn txn_banner(v: Verdict, consistency: faultline_rundir::spec::Consistency, why: &str) -> Markup {
    let model = consistency.to_string().to_uppercase();
    let (class, text) = match v {
        Verdict::Linearizable => (
            "ok",
            format!("{model}: no anomaly — every dependency the reads show fits one order of the transactions the model allows."),
        ),
        Verdict::NotLinearizable => (
            "bad",
            format!("NOT {model}: the transactions' dependencies form a cycle or an anomaly the model forbids."),
        ),
        Verdict::Unknown => ("unk", "UNKNOWN: nothing committed to judge.".to_string()),
    };
    banner(class, &text, why)
}

/// The fault windows open at some point in `[from_s, to_s]`, each as
/// `name (start–end s, nodes)`.
fn faults_within(faults: &[crate::analysis::FaultStats], from_s: f64, to_s: f64) -> Vec<String> {
    faults
        .iter()
        .filter(|w| w.start_s < to_s && w.end_s > from_s)
        .map(|w| {
            format!(
                "{} ({:.1}–{:.1} s, {})",
                w.name,
                w.start_s,
                w.end_s,
                w.nodes.join(", ")
            )
        })
        .collect()
}

/// A plain table: the first column left-aligned, the rest right-aligned.
fn table(headers: &[&str], rows: &[Vec<String>]) -> Markup {
    let left = |i: usize| (i == 0).then_some("l");
    html! {
        table {
            thead {
                tr {
                    @for (i, h) in headers.iter().enumerate() {
                        th class=[left(i)] { (h) }
                    }
                }
            }
            tbody {
                @for row in rows {
                    tr {
                        @for (i, c) in row.iter().enumerate() {
                            td class=[left(i)] { (c) }
                        }
                    }
                }
            }
        }
    }
}

/// `median [low, high] n=N` for a table cell.
fn cell_text(s: &crate::stats::Summary) -> String {
    let d = if s.median.abs() < 10.0 { 1 } else { 0 };
    format!(
        "{:.d$} [{:.d$}, {:.d$}] n={}",
        s.median, s.ci_low, s.ci_high, s.n
    )
}

/// One decimal.
fn f1(x: f64) -> String {
    format!("{x:.1}")
}

/// Whole milliseconds, or "never".
fn opt_ms(x: Option<f64>) -> String {
    x.map_or("never".to_string(), |v| format!("{v:.0}"))
}

/// `d` decimals, or "–" for a number that is not there (NaN).
fn num(x: f64, d: usize) -> String {
    if x.is_nan() {
        "–".to_string()
    } else {
        format!("{x:.d$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_files_is_escaped_in_tables_and_banners() {
        let hostile = "<script>\"x\" & 'y'</script>";
        let t = table(&["a"], &[vec![hostile.to_string()]]).into_string();
        assert!(!t.contains("<script>"), "{t}");
        assert!(
            t.contains("&lt;script&gt;&quot;x&quot; &amp; 'y'&lt;/script&gt;"),
            "{t}"
        );
        let b = verdict_banner(Verdict::Unknown, hostile).into_string();
        assert!(!b.contains("<script>"), "{b}");
        let p = page(hostile, html! { p { "body" } }, true);
        assert!(p.starts_with("<!DOCTYPE html>"));
        assert!(p.contains("<title>&lt;script&gt;"), "{p}");
        assert!(
            p.contains("table.sortable"),
            "the sorter is there when asked for"
        );
    }
}
