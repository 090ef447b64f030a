//! What a run's analysis computes, from its stored files only:
//! `history.jsonl` (operations and fault events), `status.jsonl` (the
//! controller's polls of every node's role and term), `links.json` (proxy
//! counters) and `spec.json` (the settings).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use faultline_checker::history::{OpKind, Outcome};
use faultline_checker::{check_history, History, Options, Report, Verdict};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use faultline_node::leadership::{NodeSample, StatusRound};
use faultline_node::raft::Role;

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
#[derive(Clone, Debug, Serialize)]
pub struct RunResults {
    /// The run's settings as stored.
    pub spec: Value,
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
    pub links: Value,
}

/// The stretches without a working leader, ns, between the first and the
/// last status poll; `agreed` is each poll's working leader. A leader works
/// from when it became leader (`leading_ms`, but not before the poll ahead
/// of the one that first shows it) for as long as the polls show it working;
/// at the first poll that does not, the silences its followers report say
/// when a majority last heard from it, and it worked until a heartbeat after
/// that (even if polls in between still counted it). Polls without
/// silences (`heartbeat_ms` unknown, older files) end it at that poll.
fn leaderless_gaps(
    status: &[StatusRound],
    agreed: &[(u64, Option<(String, u64)>)],
    heartbeat_ms: Option<u64>,
) -> Vec<(u64, u64)> {
    const MS: u64 = 1_000_000;
    // The current working leader: who, since when, and the last poll that
    // showed it working (its time, its index).
    let mut current: Option<(&(String, u64), u64, u64, usize)> = None;
    let mut worked: Vec<(u64, u64)> = Vec::new();
    for (i, (t, l)) in agreed.iter().enumerate() {
        let t = *t;
        if let (Some((who, _, last, last_i)), Some(x)) = (&mut current, l) {
            if *who == x {
                (*last, *last_i) = (t, i);
                continue;
            }
        }
        if let Some(((id, term), since, last, last_i)) = current.take() {
            // The silences of this poll, or (its followers gone to another
            // leader) of the last poll that showed it working.
            let until = match heartbeat_ms {
                None => t,
                Some(hb) => [(t, i), (last, last_i)]
                    .iter()
                    .find_map(|&(at, k)| {
                        status[k]
                            .majority_silence(id, *term)
                            .map(|silent| (at + hb * MS).saturating_sub(silent * MS))
                    })
                    .unwrap_or(last)
                    .clamp(since, t),
            };
            worked.push((since, until));
        }
        if let Some(x) = l {
            let leading = status[i]
                .nodes
                .get(&x.0)
                .and_then(|s| s.as_ref())
                .and_then(|s| s.leading_ms)
                .unwrap_or(0);
            let before = if i > 0 { agreed[i - 1].0 } else { t };
            current = Some((x, t.saturating_sub(leading * MS).max(before), t, i));
        }
    }
    if let Some((_, since, last, _)) = current {
        worked.push((since, last));
    }
    // The complement of the union of `worked` over the polled time.
    let (Some(first), Some(end)) = (agreed.first().map(|a| a.0), agreed.last().map(|a| a.0)) else {
        return Vec::new();
    };
    worked.sort_unstable();
    let mut gaps = Vec::new();
    let mut covered_to = first;
    for (a, b) in worked {
        if a > covered_to {
            gaps.push((covered_to, a));
        }
        covered_to = covered_to.max(b);
    }
    if end > covered_to {
        gaps.push((covered_to, end));
    }
    gaps
}

/// Added to two heartbeat intervals before a follower's leader counts as
/// unheard: ticks, timers and scheduling on a loaded machine are late.
const FRESH_SLACK_MS: u64 = 50;

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
    match k {
        OpKind::Read => "read",
        OpKind::Write => "write",
        OpKind::Cas => "cas",
    }
}

/// A fault window read back from the history's nemesis events.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// The fault's name.
    pub name: String,
    /// Start, ns.
    pub start: u64,
    /// End, ns (the run's end if it never healed).
    pub end: u64,
    /// The nodes it hit.
    pub nodes: Vec<String>,
}

/// Pair start and stop events (`start-X`/`stop-X`, `pause`/`resume`,
/// `kill`/`restart`, `remove-node`/`add-node`) into windows, in start order.
pub fn fault_windows(h: &History, end: u64) -> Vec<FaultWindow> {
    let mut open: Vec<FaultWindow> = Vec::new();
    let mut done = Vec::new();
    for e in &h.nemesis {
        let name = e
            .value
            .get("fault")
            .and_then(Value::as_str)
            .unwrap_or(&e.f)
            .to_string();
        let nodes: Vec<String> = e
            .value
            .get("nodes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let is_start =
            e.f.starts_with("start-") || matches!(e.f.as_str(), "pause" | "kill" | "remove-node");
        let is_stop =
            e.f.starts_with("stop-") || matches!(e.f.as_str(), "resume" | "restart" | "add-node");
        if is_start {
            open.push(FaultWindow {
                name,
                start: e.time,
                end,
                nodes,
            });
        } else if is_stop {
            if let Some(i) = open.iter().position(|w| w.name == name) {
                let mut w = open.remove(i);
                w.end = e.time;
                done.push(w);
            }
        }
    }
    done.extend(open);
    done.sort_by_key(|w| w.start);
    done
}

/// Read `status.jsonl` (missing file: no rounds).
pub fn read_status(path: &Path) -> anyhow::Result<Vec<StatusRound>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// Analyse a run directory's files.
pub fn analyze(dir: &Path, check: &Options) -> anyhow::Result<RunResults> {
    let spec: Value = read_json(&dir.join("spec.json"))?.unwrap_or(Value::Null);
    let links: Value = read_json(&dir.join("links.json"))?.unwrap_or(Value::Null);
    let hist_path = dir.join("history.jsonl");
    let f = std::fs::File::open(&hist_path)
        .with_context(|| format!("opening {}", hist_path.display()))?;
    let history = faultline_checker::read_jsonl(std::io::BufReader::new(f))
        .map_err(|e| anyhow::anyhow!("{}: {e}", hist_path.display()))?;
    let status = read_status(&dir.join("status.jsonl"))?;
    let checker = check_history(&history, check);
    // The main phase ends at the time limit; the final reads come after.
    let limit_ns = spec
        .get("time_limit_s")
        .and_then(Value::as_f64)
        .map(|s| (s * 1e9) as u64);
    let last = history
        .ops
        .iter()
        .filter_map(|o| o.ret_time.or(Some(o.call_time)))
        .max()
        .unwrap_or(0);
    let end = limit_ns.unwrap_or(last).max(1);
    let mut results = compute(spec, links, &history, &status, checker, end);
    // The run's wall-clock start places log findings in the run.
    let started = read_json(&dir.join("schedule.json"))?
        .and_then(|v| v["started_unix_ns"].as_str()?.parse::<u128>().ok());
    results.findings = crate::audit::audit(&dir.join("nodes"), started);
    if !results.findings.is_empty() {
        results.valid = Verdict::NotLinearizable;
    }
    Ok(results)
}

fn read_json(path: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(
            serde_json::from_str(&t).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The analysis proper, on parsed inputs; `end` is the main phase's end, ns.
pub fn compute(
    spec: Value,
    links: Value,
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
    let fresh_ms = spec["heartbeat_ms"]
        .as_u64()
        .map(|hb| 2 * hb + FRESH_SLACK_MS);
    let agreed: Vec<(u64, Option<(String, u64)>)> = status
        .iter()
        .map(|r| (r.t_ms * 1_000_000, r.agreed_leader(fresh_ms)))
        .collect();
    let gaps = leaderless_gaps(status, &agreed, spec["heartbeat_ms"].as_u64());
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_events_pair_into_windows_including_membership_changes() {
        let jsonl = r#"{"time":1000,"process":"nemesis","type":"info","f":"remove-node","value":{"fault":"membership","nodes":["n2"]}}
{"time":2000,"process":"nemesis","type":"info","f":"start-partition","value":{"fault":"partition-leader","nodes":["n1"]}}
{"time":3000,"process":"nemesis","type":"info","f":"add-node","value":{"fault":"membership","nodes":["n2"],"detail":{"added":"n4"}}}
{"time":4000,"process":"nemesis","type":"info","f":"stop-partition","value":{"fault":"partition-leader","nodes":["n1"]}}
{"time":5000,"process":"nemesis","type":"info","f":"kill","value":{"fault":"crash-leader","nodes":["n3"]}}
"#;
        let h = faultline_checker::history::read_jsonl(jsonl.as_bytes()).unwrap();
        let w = fault_windows(&h, 9000);
        let got: Vec<(&str, u64, u64)> = w
            .iter()
            .map(|w| (w.name.as_str(), w.start, w.end))
            .collect();
        assert_eq!(
            got,
            vec![
                ("membership", 1000, 3000),
                ("partition-leader", 2000, 4000),
                ("crash-leader", 5000, 9000),
            ]
        );
        assert_eq!(w[0].nodes, vec!["n2"]);
    }

    /// A run's results from its status polls alone (an empty history).
    fn analyse_polls(spec: Value, status: &[StatusRound], end_ms: u64) -> RunResults {
        let h = faultline_checker::history::read_jsonl(&b""[..]).unwrap();
        let checked = faultline_checker::check_history(&h, &faultline_checker::Options::default());
        compute(spec, Value::Null, &h, status, checked, end_ms * 1_000_000)
    }

    /// (node, role, term, leader, heard_ms)
    type Sample<'a> = (&'a str, &'a str, u64, Option<&'a str>, Option<u64>);

    fn round(t_ms: u64, samples: &[Sample]) -> StatusRound {
        StatusRound {
            t_ms,
            nodes: samples
                .iter()
                .map(|(id, role, term, leader, heard_ms)| {
                    let sample = NodeSample {
                        role: serde_json::from_value(serde_json::json!(role)).expect("a role name"),
                        term: *term,
                        leader: leader.map(str::to_string),
                        voters: vec!["n1".into(), "n2".into(), "n3".into()],
                        heard_ms: *heard_ms,
                        leading_ms: None,
                    };
                    (id.to_string(), Some(sample))
                })
                .collect(),
        }
    }

    #[test]
    fn a_leader_whose_followers_stopped_hearing_from_it_no_longer_leads() {
        let fresh = round(
            0,
            &[
                ("n1", "leader", 2, Some("n1"), Some(0)),
                ("n2", "follower", 2, Some("n1"), Some(40)),
                ("n3", "follower", 2, Some("n1"), Some(90)),
            ],
        );
        assert_eq!(fresh.agreed_leader(Some(250)), Some(("n1".into(), 2)));
        // Cut off: both followers still name n1 but have not heard from it.
        let cut = round(
            300,
            &[
                ("n1", "leader", 2, Some("n1"), Some(0)),
                ("n2", "follower", 2, Some("n1"), Some(300)),
                ("n3", "follower", 2, Some("n1"), Some(310)),
            ],
        );
        assert_eq!(cut.agreed_leader(Some(250)), None);
        // Without a freshness bound (or in files without heard_ms) belief counts.
        assert_eq!(cut.agreed_leader(None), Some(("n1".into(), 2)));
        // One fresh follower and the leader make a majority of three.
        let one = round(
            400,
            &[
                ("n1", "leader", 2, Some("n1"), Some(0)),
                ("n2", "follower", 2, Some("n1"), Some(20)),
                ("n3", "follower", 2, Some("n1"), Some(400)),
            ],
        );
        assert_eq!(one.agreed_leader(Some(250)), Some(("n1".into(), 2)));
    }

    #[test]
    fn time_without_a_leader_counts_from_the_followers_silence() {
        let spec = serde_json::json!({"heartbeat_ms": 100});
        let led = |t| {
            round(
                t,
                &[
                    ("n1", "leader", 1, Some("n1"), Some(0)),
                    ("n2", "follower", 1, Some("n1"), Some(50)),
                    ("n3", "follower", 1, Some("n1"), Some(50)),
                ],
            )
        };
        let silent = |t, heard| {
            round(
                t,
                &[
                    ("n1", "leader", 1, Some("n1"), Some(0)),
                    ("n2", "follower", 1, Some("n1"), Some(heard)),
                    ("n3", "follower", 1, Some("n1"), Some(heard)),
                ],
            )
        };
        let new = |t| {
            let mut r = round(
                t,
                &[
                    ("n1", "leader", 1, Some("n1"), Some(0)),
                    ("n2", "leader", 2, Some("n2"), Some(0)),
                    ("n3", "follower", 2, Some("n2"), Some(10)),
                ],
            );
            if let Some(Some(n2)) = r.nodes.get_mut("n2") {
                n2.leading_ms = Some(30);
            }
            r
        };
        // Heard at 150 ms for the last time: the polls at 300 and 400 ms
        // still count n1 (silences 150, 250: within two heartbeats and
        // 50 ms), the one at 500 ms does not, and its silences put the end
        // a heartbeat after 150 ms. n2 leads from 670 ms (30 ms before the
        // poll at 700): 420 ms without a working leader.
        let status = vec![
            led(0),
            led(100),
            led(200),
            silent(300, 150),
            silent(400, 250),
            silent(500, 350),
            silent(600, 450),
            new(700),
            new(800),
        ];
        let r = analyse_polls(spec, &status, 900);
        assert_eq!(r.elections.leaderless_ms, 420.0);
        assert_eq!(r.elections.leader_changes, 1);
        // Older files (no heartbeat, no silences): poll by poll, as before.
        let plain: Vec<StatusRound> = status
            .iter()
            .cloned()
            .map(|mut r| {
                for s in r.nodes.values_mut().flatten() {
                    s.heard_ms = None;
                    s.leading_ms = None;
                }
                r
            })
            .collect();
        let r = analyse_polls(serde_json::json!({}), &plain, 900);
        assert_eq!(r.elections.leaderless_ms, 0.0);
    }

    #[test]
    fn a_leader_whose_followers_moved_on_ended_when_they_last_heard_from_it() {
        // Heartbeats every 50 ms; n1 is cut off at about 960 ms. At 1100 ms
        // its followers still count it (silence 140 <= 150), at 1200 ms they
        // follow n2, leader for 45 ms: without a leader from a heartbeat
        // after 960 ms to 1155 ms.
        let spec = serde_json::json!({"heartbeat_ms": 50});
        let old = |t, heard| {
            round(
                t,
                &[
                    ("n1", "leader", 1, Some("n1"), Some(0)),
                    ("n2", "follower", 1, Some("n1"), Some(heard)),
                    ("n3", "follower", 1, Some("n1"), Some(heard)),
                ],
            )
        };
        let mut new = round(
            1200,
            &[
                ("n1", "leader", 1, Some("n1"), Some(0)),
                ("n2", "leader", 2, Some("n2"), Some(0)),
                ("n3", "follower", 2, Some("n2"), Some(20)),
            ],
        );
        if let Some(Some(n2)) = new.nodes.get_mut("n2") {
            n2.leading_ms = Some(45);
        }
        let status = vec![old(1000, 15), old(1100, 140), new];
        let r = analyse_polls(spec, &status, 1300);
        assert_eq!(r.elections.leaderless_ms, 145.0);
    }
}
