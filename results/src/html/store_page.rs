//! The store's front page (what `faultline serve` shows at `/`): every
//! campaign, lone run and comparison, newest first, a campaign under way
//! with its progress, and a form to compare two campaigns. Only ever
//! served: its list refreshes itself from `/api/front`.

use maud::{html, Markup, PreEscaped};

use super::page;
use crate::store_index::{EntryKind, EntryState, StoreEntry};

/// Refresh the list every three seconds, and sort it again after.
const FRONT_SCRIPT: &str = r#"
(function(){
  function poll(){
    fetch('/api/front',{cache:'no-store'}).then(function(r){return r.ok?r.text():null;}).then(function(t){
      var e=document.getElementById('entries');
      if(t!==null && e && e.innerHTML!==t){ e.innerHTML=t; if(window.bindSort) bindSort(); }
    }).catch(function(){}).finally(function(){ setTimeout(poll,3000); });
  }
  setTimeout(poll,3000);
})();
"#;

fn when(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64).map_or_else(
        || "–".into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn duration(s: Option<f64>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s < 90.0 => format!("{s:.0} s"),
        Some(s) if s < 5400.0 => format!("{:.0} min", s / 60.0),
        Some(s) => format!("{:.1} h", s / 3600.0),
    }
}

/// The list of entries (the part of the page that refreshes).
pub fn store_entries(entries: &[StoreEntry]) -> String {
    let body: Markup = html! {
        @if entries.is_empty() {
            p { "The store is empty: run " code { "faultline demo" } " or " code { "faultline campaign FILE" } "." }
        } @else {
            table class="sortable" id="entries-table" {
                thead { tr {
                    th class="l" { "name" } th class="l" { "kind" } th class="l" { "started" } th class="l" { "target" }
                    th class="l" { "network" } th class="l" { "settings × faults × repeats" } th { "runs" }
                    th class="l" { "verdict" } th { "duration" } th class="l" { "progress" }
                } }
                tbody {
                    @for e in entries {
                        tr data-dir=(e.dir) {
                            td class="l" { a href={ "/" (e.link) } { (e.name) } br; span class="small" { (e.dir) } }
                            td class="l" { (match e.kind { EntryKind::Campaign => "campaign", EntryKind::Run => "run", EntryKind::Comparison => "comparison" }) }
                            td class="l" data-v=(e.started_unix_ms) { (when(e.started_unix_ms)) }
                            td class="l" { (e.target.as_deref().unwrap_or("–")) }
                            td class="l" { (e.net.as_deref().unwrap_or("–")) }
                            td class="l" {
                                @if e.kind != EntryKind::Comparison { (e.settings) " × " (e.faults) " × " (e.repeats) } @else { "–" }
                            }
                            td { @if e.kind != EntryKind::Comparison { (e.done) " of " (e.runs) } @else { "–" } }
                            td class={ "l verdict " (e.colour) } {
                                @match e.state {
                                    EntryState::Running => "running",
                                    _ => {
                                        @if let Some(v) = e.verdict { (crate::campaign::verdict_word(v)) }
                                        @if let Some(j) = &e.judgement { @if e.verdict.is_some() { " — " } (j) }
                                        @if e.verdict.is_none() && e.judgement.is_none() { "–" }
                                    }
                                }
                            }
                            td data-v=(e.duration_s.unwrap_or(f64::NAN)) { (duration(e.duration_s)) }
                            td class="l progress" {
                                @match e.state {
                                    EntryState::Running => {
                                        b { (e.done) " of " (e.runs) " runs done" }
                                        @if let Some(s) = e.seconds_left { ", about " (duration(Some(s))) " left" }
                                        @if let Some(l) = &e.last_line { br; span class="small" { "last: " (l) } }
                                    }
                                    EntryState::Interrupted => "interrupted (Ctrl-C or SIGTERM)",
                                    EntryState::Stopped if e.kind != EntryKind::Comparison => "stopped: its controller is gone, or it never finished",
                                    _ => "",
                                }
                                @if let Some(err) = &e.error { br; span class="small" { (err) } }
                            }
                        }
                    }
                }
            }
        }
    };
    body.into_string()
}

/// The front page of the store at `store` (shown as given).
pub fn store_page(store: &str, entries: &[StoreEntry]) -> String {
    let comparable: Vec<&StoreEntry> = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Campaign | EntryKind::Run))
        .collect();
    let body = html! {
        h1 { "faultline store: " (store) }
        p class="small" {
            "Every campaign, lone run and comparison in the store, newest first. A campaign under way shows its progress; this list and a running campaign's own page fill in as runs finish. Click a header to sort."
        }
        h2 { "Compare two campaigns" }
        @if comparable.len() < 2 {
            p class="small" { "Two campaigns are needed to compare." }
        } @else {
            form method="post" action="/compare" {
                label { "A " select name="a" {
                    @for e in &comparable { option value=(e.dir) { (e.dir) } }
                } }
                " "
                label { "B " select name="b" {
                    @for (i, e) in comparable.iter().enumerate() {
                        option value=(e.dir) selected[i == 1] { (e.dir) }
                    }
                } }
                " "
                label { "pairs " input type="text" name="pairs" placeholder="A_SETTING=B_SETTING, …" size="24"; }
                " "
                button type="submit" { "compare" }
            }
            p class="small" { "Settings are paired by name unless you pair them; the comparison is written into the store beside A." }
        }
        h2 { "Campaigns and runs" }
        div id="entries" { (PreEscaped(store_entries(entries))) }
        script { (PreEscaped(FRONT_SCRIPT)) }
    };
    page(&format!("faultline store {store}"), body, true)
}
