//! What a run's analysis computes, from its stored files only:
//! `history.jsonl` (operations and fault events), `status.jsonl` (the
//! controller's polls of every node's role and term), `links.json` (proxy
//! counters) and `spec.json` (the settings).

use std::collections::BTreeMap;

use faultline_checker::history::{OpKind, Outcome};
use faultline_checker::{check_history, History, Options, Report, Verdict};
use faultline_rundir::spec::RunSpec;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::run_files::RunFiles;

pub use faultline_node::leadership::StatusRound;

mod leaderless;
mod windows;

use faultline_node::raft::Role;
use leaderless::{leaderless_gaps, FRESH_SLACK_MS};
pub use windows::{fault_windows, FaultWindow};
pub mod locks;
mod run_line;
pub mod txns;

/// Width of an availability bucket.
pub const BUCKET_MS: u64 = 100;

/// Outcome counts of one operation type.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    /// Took effect.
    pub ok: u64,
    /// Did not.
    pub fail: u64,
    /// Unknown.
    pub info: u64,
}

/// Latency percentiles of ok operations, milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// How many.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// Availability over the run's main phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Availability {
    /// Share of 100 ms buckets with at least one ok completion.
    pub share: f64,
    /// The longest stretch with no ok completion, ms.
    pub longest_gap_ms: f64,
    /// Where it started, seconds.
    pub longest_gap_start_s: f64,
}

/// One fault window and what it did to the cluster.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultStats {
    /// Its name, e.g. `partition-leader`.
    pub name: String,
    /// Start, seconds into the run.
    pub start_s: f64,
    /// Heal, seconds into the run.
    pub end_s: f64,
    /// The nodes it hit.
    pub nodes: Vec<String>,
    /// From the start to the first ok operation invoked after it, ms (none: never).
    pub down_ms: Option<f64>,
    /// From the heal to the first ok operation invoked after it, ms.
    pub recovery_ms: Option<f64>,
    /// Time without a leader from the start until the next fault (or the end), ms.
    pub leaderless_ms: f64,
    /// Share of the window's 100 ms buckets with an ok completion.
    #[serde(default)]
    pub availability: Option<f64>,
    /// Operations that ended `fail` during the window.
    #[serde(default)]
    pub failed: u64,
    /// Operations that ended `info` (unknown) during the window.
    #[serde(default)]
    pub unknown: u64,
    /// For a crash of the leader: from the crash to the moment another node
    /// became leader (its own log line; both on this machine's clock), ms;
    /// none when no other node became leader before the next fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_ms: Option<f64>,
    /// For a crash of the leader: the node crashed was no longer the
    /// leader (by the nodes' own lines, another node had become leader in a
    /// later term — the nemesis's answer to "who leads" was out of date).
    /// Not a trial of the election time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_leader: bool,
}

/// One node's stretch as leader.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LeaderSpan {
    /// The node.
    pub node: String,
    /// Its term.
    pub term: u64,
    /// From, seconds.
    pub start_s: f64,
    /// To, seconds.
    pub end_s: f64,
}

/// Elections seen by polling.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Elections {
    /// Times the agreed leader changed.
    pub leader_changes: u64,
    /// The highest term seen.
    pub max_term: u64,
    /// Total time with no leader a majority follows, ms (main phase).
    pub leaderless_ms: f64,
    /// Who led when, per node.
    pub spans: Vec<LeaderSpan>,
}

/// Everything a run's page shows; written as `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResults {
    /// The run's settings as stored (none: a history checked without
    /// them).
    #[serde(default)]
    pub spec: Option<RunSpec>,
    /// `true`, `false` or `"unknown"`: `false` when the history is not
    /// linearizable or the nodes' logs show a safety violation.
    pub valid: Verdict,
    /// Safety violations in the nodes' own logs (two leaders of one term, a
    /// node that stopped on its own); see [`crate::audit`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::audit::Finding>,
    /// The checker's report (counterexamples included).
    pub checker: Report,
    /// Length of the main phase, seconds.
    pub duration_s: f64,
    /// Counts per operation type.
    pub counts: BTreeMap<String, Counts>,
    /// ok operations per second in the main phase.
    pub throughput: f64,
    /// Latency percentiles per operation type, and `all`.
    pub latency: BTreeMap<String, Percentiles>,
    /// Availability.
    pub availability: Availability,
    /// Per fault.
    pub faults: Vec<FaultStats>,
    /// Elections.
    pub elections: Elections,
    /// Proxy counters per link.
    pub links: Vec<faultline_rundir::records::LinkStats>,
    /// Snapshots each node took and installed, from the nodes' logs
    /// (empty: none, or a system that does not log them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub snapshots: BTreeMap<String, crate::snapshots::NodeSnapshots>,
    /// Why the run did not finish (Ctrl-C, a killed controller), if it did
    /// not: its history is checked as far as it goes, but a clean check of
    /// a cut-short run is not a pass (its verdict is at best unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    /// A torn last line of `history.jsonl` that was skipped (what a killed
    /// writer leaves): its line number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_history_line: Option<usize>,
    /// Where a campaign placed it (`placement.json`): a worker, a CPU
    /// set, shared cores; none for a run in the controller's own process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<faultline_rundir::placement::RunPlacement>,
    /// The hosts a `--hosts` run's members ran on (`hosts.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<faultline_rundir::records::HostsRecord>,
    /// Entries lost by members whose files the nemesis damaged: their own
    /// check noticed (not a violation; the run page lists them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disk_noted: Vec<crate::audit::Finding>,
    /// The disk layer's counts and what the disk faults did (`disk.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<faultline_rundir::records::DiskRecord>,
    /// For a run of list-append transactions: the list-append checker's
    /// verdict (then `checker` carries its verdict and counts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txns: Option<txns::TxnResults>,
    /// For a run of the lock workload: the locks' verdicts, fenced or not,
    /// and any write a protected register took from a stale holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locks: Option<locks::LockResults>,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let q = |x: f64| h.value_at_quantile(x) as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: h.max() as f64 / 1000.0,
    }
}

fn kind_name(k: OpKind) -> &'static str {
    k.name()
}

/// The share of `[from, to)`'s 100 ms buckets in which an operation
/// completed ok (none for a window shorter than one bucket).
fn window_availability(h: &History, from: u64, to: u64) -> Option<f64> {
    let bucket = BUCKET_MS * 1_000_000;
    let n = (to.saturating_sub(from) / bucket) as usize;
    if n == 0 {
        return None;
    }
    let mut hit = vec![false; n];
    for o in h.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        if let Some(t) = o.ret_time.filter(|t| (from..to).contains(t)) {
            if let Some(b) = hit.get_mut(((t - from) / bucket) as usize) {
                *b = true;
            }
        }
    }
    Some(hit.iter().filter(|b| **b).count() as f64 / n as f64)
}

/// Operations that ended with `outcome` within `[from, to)`.
fn ended_within(h: &History, outcome: Outcome, from: u64, to: u64) -> u64 {
    h.ops
        .iter()
        .filter(|o| o.outcome == outcome)
        .filter(|o| o.ret_time.is_some_and(|t| (from..to).contains(&t)))
        .count() as u64
}

/// Analyse a run directory's files: check the history, measure it, and
/// audit the nodes' logs.
pub fn analyze(files: &RunFiles, check: &Options) -> RunResults {
    let history = &files.history;
    let (checker, txn_results) = match &files.txns {
        Some(t) => {
            let model = files
                .spec
                .as_ref()
                .map(|s| s.consistency)
                .unwrap_or_default();
            let (checker, r) = txns::judge(t, model);
            (checker, Some(r))
        }
        None => (check_history(history, check), None),
    };
    let (checker, lock_results) = if locks::is_lock_history(history) {
        let fenced = files.spec.as_ref().is_some_and(|s| s.lock_fenced);
        let (c, l) = locks::judge(history, checker, fenced);
        (c, Some(l))
    } else {
        (checker, None)
    };
    // The main phase ends at the time limit; the final reads come after.
    let limit_ns = files.spec.as_ref().map(|s| (s.time_limit_s * 1e9) as u64);
    let last = history.last_op_time();
    let end = limit_ns.unwrap_or(last).max(1);
    let mut results = compute(
        files.spec.clone(),
        files.links.clone(),
        history,
        &files.status,
        checker,
        end,
    );
    // Elections after a crashed leader, from the nodes' own "became
    // leader" lines, up to the next fault.
    let windows = fault_windows(history, end);
    windows::election_trials(&windows, &files.leader_starts, &mut results.faults);
    // The run's wall-clock start places log findings in the run.
    let nodes = faultline_rundir::RunDir::new(&files.dir).nodes();
    results.findings = crate::audit::audit(&nodes, files.started_unix_ns);
    // A member whose files the nemesis damaged (corrupt:…) and that then
    // lacks entries it had acknowledged lost them to the damage, not to a
    // bug: its own check says so, and it does not vote until it has them
    // again. Noted on the page, not a violation.
    if let Some(d) = &files.disk {
        let damaged: std::collections::BTreeSet<&str> = d
            .events
            .iter()
            .filter(|e| e.corrupted.is_some())
            .map(|e| e.node.as_str())
            .collect();
        let (noted, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut results.findings)
            .into_iter()
            .partition(|f| {
                f.kind == "lost-entries" && f.nodes.iter().all(|n| damaged.contains(n.as_str()))
            });
        results.findings = kept;
        results.disk_noted = noted;
    }
    results.snapshots = crate::snapshots::count(&nodes);
    results.txns = txn_results;
    results.locks = lock_results;
    if !results.findings.is_empty() {
        results.valid = Verdict::NotLinearizable;
    }
    results.torn_history_line = history.torn_last_line.map(|(line, _)| line);
    results.placement = files.placement.clone();
    results.hosts = files.hosts.clone();
    results.disk = files.disk.clone();
    if !files.complete {
        let last = history.last_op_time() as f64 / 1e9;
        results.interrupted = Some(format!(
            "the run was cut short (interrupted, or its controller was killed) after {last:.1} s{}",
            files
                .spec
                .as_ref()
                .map_or(String::new(), |s| format!(" of {} s", s.time_limit_s))
        ));
        if results.valid == Verdict::Linearizable {
            results.valid = Verdict::Unknown;
        }
    }
    results
}

/// The analysis proper, on parsed inputs; `end` is the main phase's end, ns.
pub fn compute(
    spec: Option<RunSpec>,
    links: Vec<faultline_rundir::records::LinkStats>,
    h: &History,
    status: &[StatusRound],
    checker: Report,
    end: u64,
) -> RunResults {
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let mut hists: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let new_hist = || Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    let mut ok_times: Vec<u64> = Vec::new();
    for o in &h.ops {
        let c = counts.entry(kind_name(o.kind).to_string()).or_default();
        match o.outcome {
            Outcome::Ok => c.ok += 1,
            Outcome::Fail => c.fail += 1,
            Outcome::Info => c.info += 1,
        }
        if o.outcome == Outcome::Ok {
            if let Some(r) = o.ret_time {
                let us = (r.saturating_sub(o.call_time) / 1000).max(1);
                let _ = hists
                    .entry(kind_name(o.kind).to_string())
                    .or_insert_with(new_hist)
                    .record(us);
                let _ = hists
                    .entry("all".to_string())
                    .or_insert_with(new_hist)
                    .record(us);
                if r <= end {
                    ok_times.push(r);
                }
            }
        }
    }
    ok_times.sort_unstable();
    let latency = hists
        .iter()
        .map(|(k, v)| (k.clone(), percentiles(v)))
        .collect();
    let duration_s = end as f64 / 1e9;
    let throughput = ok_times.len() as f64 / duration_s.max(1e-9);

    // Availability: buckets with an ok completion, and the longest gap.
    let buckets = (end / (BUCKET_MS * 1_000_000)).max(1);
    let mut filled = vec![false; buckets as usize];
    for t in &ok_times {
        let b = (t / (BUCKET_MS * 1_000_000)).min(buckets - 1) as usize;
        filled[b] = true;
    }
    let share = filled.iter().filter(|x| **x).count() as f64 / buckets as f64;
    let (mut gap, mut gap_start, mut prev) = (0u64, 0u64, 0u64);
    for &t in ok_times.iter().chain(std::iter::once(&end)) {
        if t.saturating_sub(prev) > gap {
            gap = t - prev;
            gap_start = prev;
        }
        prev = prev.max(t);
    }
    let availability = Availability {
        share,
        longest_gap_ms: ms(gap),
        longest_gap_start_s: gap_start as f64 / 1e9,
    };

    // Leaders from the polls. A follower counts towards its leader while it
    // heard from it within two heartbeat intervals (one lost or late
    // heartbeat is not a lost leader) and FRESH_SLACK_MS.
    let heartbeat_ms = spec.as_ref().map(|s| s.heartbeat_ms);
    let fresh_ms = heartbeat_ms.map(|hb| 2 * hb + FRESH_SLACK_MS);
    let agreed: Vec<(u64, Option<(String, u64)>)> = status
        .iter()
        .map(|r| (r.t_ms * 1_000_000, r.agreed_leader(fresh_ms)))
        .collect();
    let gaps = leaderless_gaps(status, &agreed, heartbeat_ms);
    let leaderless_between = |from: u64, to: u64| -> f64 {
        let total: u64 = gaps
            .iter()
            .map(|&(a, b)| b.min(to).saturating_sub(a.max(from)))
            .sum();
        ms(total)
    };
    let mut elections = Elections {
        leaderless_ms: leaderless_between(0, end),
        ..Elections::default()
    };
    let mut last_leader: Option<String> = None;
    for (_, l) in &agreed {
        if let Some((id, term)) = l {
            if last_leader.as_ref() != Some(id) {
                if last_leader.is_some() {
                    elections.leader_changes += 1;
                }
                last_leader = Some(id.clone());
            }
            elections.max_term = elections.max_term.max(*term);
        }
    }
    // Spans where each node said it led.
    let mut open: BTreeMap<String, LeaderSpan> = BTreeMap::new();
    for r in status {
        let t = r.t_ms as f64 / 1000.0;
        for (id, s) in &r.nodes {
            if let Some(s) = s {
                elections.max_term = elections.max_term.max(s.term);
            }
            let leading = s
                .as_ref()
                .filter(|s| s.role == Role::Leader)
                .map(|s| s.term);
            // A span goes on while the node leads in the same term; any
            // change closes it, and leading again opens a new one.
            if let Some(span) = open.get_mut(id) {
                if leading == Some(span.term) {
                    span.end_s = t;
                    continue;
                }
                elections.spans.extend(open.remove(id));
            }
            if let Some(term) = leading {
                let span = LeaderSpan {
                    node: id.clone(),
                    term,
                    start_s: t,
                    end_s: t,
                };
                open.insert(id.clone(), span);
            }
        }
    }
    elections.spans.extend(open.into_values());
    elections
        .spans
        .sort_by(|a, b| a.start_s.total_cmp(&b.start_s));

    // Faults.
    let windows = fault_windows(h, end);
    let first_ok_after = |t: u64| -> Option<f64> {
        h.ops
            .iter()
            .filter(|o| o.outcome == Outcome::Ok && o.call_time >= t)
            .filter_map(|o| o.ret_time)
            .min()
            .map(|r| ms(r - t))
    };
    let faults = windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let next = windows.get(i + 1).map_or(end, |n| n.start).max(w.end);
            FaultStats {
                name: w.name.clone(),
                start_s: w.start as f64 / 1e9,
                end_s: w.end as f64 / 1e9,
                nodes: w.nodes.clone(),
                down_ms: first_ok_after(w.start),
                recovery_ms: first_ok_after(w.end),
                leaderless_ms: leaderless_between(w.start, next),
                availability: window_availability(h, w.start, w.end),
                election_ms: None,
                not_leader: false,
                failed: ended_within(h, Outcome::Fail, w.start, w.end),
                unknown: ended_within(h, Outcome::Info, w.start, w.end),
            }
        })
        .collect();
    RunResults {
        spec,
        valid: checker.valid,
        findings: Vec::new(),
        checker,
        duration_s,
        counts,
        throughput,
        latency,
        availability,
        faults,
        elections,
        links,
        snapshots: BTreeMap::new(),
        interrupted: None,
        torn_history_line: None,
        placement: None,
        hosts: None,
        disk_noted: Vec::new(),
        disk: None,
        txns: None,
        locks: None,
    }
}

#[cfg(test)]
mod tests;
