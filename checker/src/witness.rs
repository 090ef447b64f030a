//! Witnesses: for a key found not linearizable, the few operations that
//! cannot all be explained together, named by kind, with a sentence a
//! person can check against the file.
//!
//! When every written value of the key is unique, the register's structure
//! names them directly (each kind below is a set that no order can explain,
//! whatever else the history holds):
//!
//! - *read of a value never written*: a read (or a cas's expected value) of
//!   a value that no operation wrote;
//! - *read from the future*: a read of a value whose only write was invoked
//!   after the read completed;
//! - *stale read*: a read of `v`, the write of `v`, and a write of another
//!   value that began after `v`'s write completed and completed before the
//!   read began (or a read of the initial null after any write completed);
//! - *lost write*: the same shape, when the value in the middle was
//!   acknowledged and never observed by anyone;
//! - *impossible cas*: a successful cas whose expected value the register
//!   cannot have held, for one of the reasons above.
//!
//! Otherwise (values repeat, or the structure gives no short answer) the
//! search's own evidence is reduced: operations are dropped one at a time
//! while the rest stays unexplainable, as far as a budget allows, and the
//! result is said to be a reduced, not a minimal, set.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::history::{Op, OpKind, Outcome, NEVER};
use crate::jit;
use crate::search::{Budget, SearchResult};

/// What kind of anomaly a witness shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WitnessKind {
    /// A read returned a value that was already overwritten before it began.
    StaleRead,
    /// A read returned a value written only after it completed.
    FutureRead,
    /// A read returned a value no operation wrote.
    NeverWritten,
    /// An acknowledged write that no later read could see.
    LostWrite,
    /// A successful cas whose expected value the register cannot have held.
    ImpossibleCas,
    /// No short structural answer: the search's evidence, reduced.
    NotLinearizable,
    /// A lock held by two clients at once.
    TwoHolders,
    /// A lock released by a client that did not hold it.
    ReleaseByNonHolder,
}

impl WitnessKind {
    /// Its name in words ("stale read").
    pub fn words(self) -> &'static str {
        match self {
            WitnessKind::StaleRead => "stale read",
            WitnessKind::FutureRead => "read from the future",
            WitnessKind::NeverWritten => "read of a value never written",
            WitnessKind::LostWrite => "lost write",
            WitnessKind::ImpossibleCas => "impossible cas",
            WitnessKind::NotLinearizable => "not linearizable",
            WitnessKind::TwoHolders => "two holders",
            WitnessKind::ReleaseByNonHolder => "release by a non-holder",
        }
    }
}

/// The operations that cannot all be explained together.
#[derive(Clone, Debug)]
pub struct Witness {
    /// What they show.
    pub kind: WitnessKind,
    /// The operations, in invocation order (as in the file).
    pub ops: Vec<Op>,
    /// One sentence, every claim of which is true of the file.
    pub explanation: String,
    /// Whether no operation can be left out (false for a reduced set whose
    /// reduction the budget cut short, or that was not tried).
    pub minimal: bool,
}

/// One operation of a witness, as `check --json` and `results.json` give it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WitnessOp {
    /// The line of its invoke in the file, from 1.
    pub line: usize,
    /// Its process.
    pub process: u64,
    /// `read`, `write` or `cas`.
    #[serde(rename = "type")]
    pub kind: OpKind,
    /// `ok`, `fail` or `info`.
    pub outcome: Outcome,
    /// What it read (a read), wrote (a write) or `[expected, new]` (a cas).
    pub value: serde_json::Value,
    /// Its invocation, ns since the history began.
    pub invoke_ns: u64,
    /// Its completion (none: it never completed).
    pub complete_ns: Option<u64>,
    /// The node it went to, if recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl From<&Op> for WitnessOp {
    fn from(o: &Op) -> Self {
        use serde_json::json;
        WitnessOp {
            line: o.line,
            process: o.process,
            kind: o.kind,
            outcome: o.outcome,
            value: match o.kind {
                OpKind::Read => json!(o.result),
                OpKind::Write => json!(o.arg),
                OpKind::Cas => json!([o.arg, o.arg2]),
                OpKind::Txn => serde_json::Value::Null,
                OpKind::Acquire => json!(o.result),
                OpKind::Release => json!(o.arg),
            },
            invoke_ns: o.call_time,
            complete_ns: o.ret_time,
            node: o.node.clone(),
        }
    }
}

/// An anomaly in a few words: its kind, the key, and when the witness's
/// last operation completed ("stale read on k0 at 243.7 ms").
pub fn headline(kind: WitnessKind, key: &str, last_ns: Option<u64>) -> String {
    match last_ns {
        Some(t) => format!("{} on {key} at {}", kind.words(), readable_time(t)),
        None => format!("{} on {key}", kind.words()),
    }
}

/// A duration since the start of the history in a readable unit.
pub fn readable_time(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

/// `process 9's cas 2→3` and where it stands in the file.
fn whose(o: &Op) -> String {
    let what = match o.kind {
        OpKind::Read if o.outcome == Outcome::Ok => format!("read of {}", v(o.result)),
        OpKind::Read => "read".to_string(),
        OpKind::Write => format!("write {}", v(o.arg)),
        OpKind::Cas => format!("cas {}→{}", v(o.arg), v(o.arg2)),
        OpKind::Txn => format!("transaction on {}", o.key),
        OpKind::Acquire => "acquire".to_string(),
        OpKind::Release => "release".to_string(),
    };
    format!("process {}'s {what}{}", o.process, via(o))
}

fn via(o: &Op) -> String {
    o.node
        .as_ref()
        .map_or(String::new(), |n| format!(" (via {n})"))
}

fn v(x: Option<i64>) -> String {
    x.map_or("null".to_string(), |v| v.to_string())
}

fn done(o: &Op) -> String {
    match o.ret_time {
        Some(t) => format!("completed at {} (line {})", readable_time(t), o.line),
        None => format!(
            "invoked at {} (line {}), never completed",
            readable_time(o.call_time),
            o.line
        ),
    }
}

/// What an operation observed of the register, if it observed anything:
/// an ok read's result, an ok cas's expected value.
fn observed(o: &Op) -> Option<Option<i64>> {
    match (o.kind, o.outcome) {
        (OpKind::Read, Outcome::Ok) => Some(o.result),
        (OpKind::Cas, Outcome::Ok) => Some(o.arg),
        _ => None,
    }
}

/// The structural witness of a key whose written values are unique, from
/// its operations as read from the file (fails left out); `None` when the
/// values repeat or no short witness exists.
pub fn structural(key: &str, ops: &[Op]) -> Option<Witness> {
    let mut writer: HashMap<i64, &Op> = HashMap::new();
    for o in ops {
        if let Some(x) = o.writes() {
            if writer.insert(x, o).is_some() {
                return None;
            }
        }
    }
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for o in ops {
        if let Some(Some(x)) = observed(o) {
            *seen.entry(x).or_default() += 1;
        }
    }
    // Acknowledged writes by invocation, with the earliest completion from
    // each position on: all acknowledged writes, and those never observed.
    let mut acked: Vec<&Op> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && o.writes().is_some())
        .collect();
    acked.sort_by_key(|o| o.call);
    let suffix_min = |only_lost: bool| -> Vec<Option<usize>> {
        let mut out = vec![None; acked.len() + 1];
        for i in (0..acked.len()).rev() {
            let lost = acked[i].writes().is_some_and(|x| !seen.contains_key(&x));
            let here = (!only_lost || lost).then_some(i);
            out[i] = match (here, out[i + 1]) as (Option<usize>, Option<usize>) {
                (Some(a), Some(b)) if acked[b].ret < acked[a].ret => Some(b),
                (Some(a), _) => Some(a),
                (None, b) => b,
            };
        }
        out
    };
    let any_min = suffix_min(false);
    let lost_min = suffix_min(true);
    // The acknowledged write (other than `not`) that began after position
    // `after` and completed before position `before`, preferring one whose
    // value nobody observed.
    let replaced = |after: u64, before: u64, not: Option<i64>| -> Option<&Op> {
        let start = acked.partition_point(|o| o.call <= after);
        for table in [&lost_min, &any_min] {
            if let Some(i) = table[start] {
                let w = acked[i];
                if w.ret < before && w.writes() != not {
                    return Some(w);
                }
            }
        }
        None
    };
    let mut observers: Vec<&Op> = ops.iter().filter(|o| observed(o).is_some()).collect();
    observers.sort_by_key(|o| o.ret);
    for r in observers {
        let Some(got) = observed(r) else { continue };
        let cas = r.kind == OpKind::Cas;
        let subject = if cas {
            format!(
                "impossible cas: process {}'s cas {}→{} on {key}{} succeeded at {} (line {}), but",
                r.process,
                v(r.arg),
                v(r.arg2),
                via(r),
                readable_time(r.ret_time.unwrap_or(r.call_time)),
                r.line
            )
        } else {
            format!(
                "process {} read {key} = {}{} at {} (line {}), but",
                r.process,
                v(got),
                via(r),
                readable_time(r.ret_time.unwrap_or(r.call_time)),
                r.line
            )
        };
        let kind = |k: WitnessKind| if cas { WitnessKind::ImpossibleCas } else { k };
        let witness = |k: WitnessKind, mut set: Vec<&Op>, text: String| {
            set.sort_by_key(|o| o.call);
            let prefix = if cas {
                String::new()
            } else {
                format!("{}: ", k.words())
            };
            Some(Witness {
                kind: kind(k),
                ops: set.into_iter().cloned().collect(),
                explanation: format!("{prefix}{subject} {text}"),
                minimal: true,
            })
        };
        match got {
            None => {
                if let Some(w2) = replaced(0, r.call, None).filter(|w| w.call < NEVER) {
                    let k = if lost(w2, &seen) {
                        WitnessKind::LostWrite
                    } else {
                        WitnessKind::StaleRead
                    };
                    return witness(
                        k,
                        vec![w2, r],
                        format!(
                            "{} had {}, before the read began{}.",
                            whose(w2),
                            done(w2),
                            never_seen(w2, &seen)
                        ),
                    );
                }
            }
            Some(x) => {
                let Some(&w) = writer.get(&x) else {
                    return witness(
                        WitnessKind::NeverWritten,
                        vec![r],
                        format!("no operation wrote {x}."),
                    );
                };
                if r.ret < w.call {
                    return witness(
                        WitnessKind::FutureRead,
                        vec![r, w],
                        format!(
                            "{x} was written only by {}, invoked at {} (line {}), after {} completed.",
                            whose(w),
                            readable_time(w.call_time),
                            w.line,
                            if cas { "the cas" } else { "the read" }
                        ),
                    );
                }
                if w.ret != NEVER {
                    if let Some(w2) = replaced(w.ret, r.call, Some(x)) {
                        let k = if lost(w2, &seen) {
                            WitnessKind::LostWrite
                        } else {
                            WitnessKind::StaleRead
                        };
                        return witness(
                            k,
                            vec![w, w2, r],
                            format!(
                                "{} had {}, before {} began, and {x} had been written before that, by {} {}{}.",
                                whose(w2),
                                done(w2),
                                if cas { "the cas" } else { "the read" },
                                whose(w),
                                done(w),
                                never_seen(w2, &seen)
                            ),
                        );
                    }
                }
            }
        }
    }
    None
}

fn lost(w: &Op, seen: &HashMap<i64, usize>) -> bool {
    w.writes().is_some_and(|x| !seen.contains_key(&x))
}

fn never_seen(w: &Op, seen: &HashMap<i64, usize>) -> String {
    match w.writes() {
        Some(x) if !seen.contains_key(&x) => {
            format!("; no operation ever observed {x}: the write was lost")
        }
        _ => String::new(),
    }
}

/// The search's evidence, reduced. Starting from the operations around the
/// one the search got stuck on (`stuck`, an index into `ops`) — the fewest
/// of the latest operations up to its completion that are not linearizable
/// together — drop each operation whose absence keeps the rest
/// unexplainable, within `within`. `None` when no such set of at most a few
/// thousand operations was found in time.
pub fn reduced(key: &str, ops: &[Op], stuck: &Op, within: Duration) -> Option<Witness> {
    let deadline = Instant::now() + within;
    let before: Vec<&Op> = {
        let mut v: Vec<&Op> = ops.iter().filter(|o| o.call < stuck.ret).collect();
        v.sort_by_key(|o| o.call);
        v
    };
    let mut window = 32usize;
    let candidates = loop {
        let from = before.len().saturating_sub(window);
        let set: Vec<Op> = before[from..].iter().map(|o| (*o).clone()).collect();
        if not_linearizable(&set, within) == Some(true) {
            break set;
        }
        if from == 0 || window >= 4096 || Instant::now() > deadline {
            return None;
        }
        window *= 4;
    };
    Some(reduce(key, candidates, deadline, within))
}

/// Whether every value that an operation of `set` observed was written by
/// an operation of `set`.
fn writes_cover_observations(set: &[Op]) -> bool {
    set.iter().all(|o| match observed(o) {
        Some(Some(x)) => set.iter().any(|w| w.writes() == Some(x)),
        _ => true,
    })
}

fn not_linearizable(set: &[Op], within: Duration) -> Option<bool> {
    let budget = Budget {
        deadline: Instant::now() + Duration::from_millis(200).min(within),
        max_configs: 200_000,
    };
    match jit::check(set, budget) {
        SearchResult::NotLinearizable(_) => Some(true),
        SearchResult::Linearizable => Some(false),
        SearchResult::Unknown(_) => None,
    }
}

/// Drop from `candidates` (not linearizable together) each operation whose
/// absence keeps the rest unexplainable, until `deadline`.
fn reduce(key: &str, candidates: Vec<Op>, deadline: Instant, within: Duration) -> Witness {
    let stuck = |set: &[Op]| not_linearizable(set, within);
    let mut set = candidates;
    set.sort_by_key(|o| o.call);
    let mut complete = true;
    {
        let mut i = 0;
        while i < set.len() {
            if Instant::now() > deadline {
                complete = false;
                break;
            }
            let mut without = set.clone();
            without.remove(i);
            // The set must show a conflict of order, not a value with no
            // write in it: keep a write that some kept observation needs.
            if !writes_cover_observations(&without) {
                i += 1;
                continue;
            }
            match stuck(&without) {
                Some(true) => set = without,
                Some(false) => i += 1,
                None => {
                    complete = false;
                    i += 1;
                }
            }
        }
    }
    let list: Vec<String> = set
        .iter()
        .take(8)
        .map(|o| format!("{} {}", whose(o), done(o)))
        .collect();
    let more = set.len().saturating_sub(8);
    Witness {
        kind: WitnessKind::NotLinearizable,
        explanation: format!(
            "not linearizable: these {} operations on {key} cannot all be explained together ({}): {}{}.",
            set.len(),
            if complete {
                "no one of them can be left out"
            } else {
                "a reduced set, not a minimal one"
            },
            list.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        ),
        ops: set,
        minimal: complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::read_jsonl;

    fn key_ops(jsonl: &str) -> Vec<Op> {
        let h = read_jsonl(jsonl.as_bytes()).unwrap();
        h.by_key().into_iter().next().unwrap().1
    }

    #[test]
    fn times_read_in_sensible_units() {
        assert_eq!(readable_time(500), "0.5 µs");
        assert_eq!(readable_time(243_700_000), "243.7 ms");
        assert_eq!(readable_time(2_500_000_000), "2.500 s");
    }

    #[test]
    fn the_issues_stale_read_names_the_read_not_the_cas() {
        // A write of 2, a cas 2->3 that completes, then a read of 2.
        let ops = key_ops(
            r#"{"time":1000000,"process":1,"type":"invoke","f":"write","key":"k0","value":2}
{"time":2000000,"process":1,"type":"ok","f":"write","key":"k0","value":2}
{"time":3000000,"process":9,"type":"invoke","f":"cas","key":"k0","value":[2,3]}
{"time":232500000,"process":9,"type":"ok","f":"cas","key":"k0","value":[2,3]}
{"time":233000000,"process":7,"type":"invoke","f":"read","key":"k0","value":null,"node":"n2"}
{"time":243700000,"process":7,"type":"ok","f":"read","key":"k0","value":2,"node":"n2"}
{"time":250000000,"process":8,"type":"invoke","f":"read","key":"k0","value":null}
{"time":251000000,"process":8,"type":"ok","f":"read","key":"k0","value":3}
"#,
        );
        let w = structural("k0", &ops).unwrap();
        assert_eq!(w.kind, WitnessKind::StaleRead);
        assert_eq!(w.ops.len(), 3);
        assert_eq!(
            w.explanation,
            "stale read: process 7 read k0 = 2 (via n2) at 243.7 ms (line 5), but process 9's cas 2→3 had completed at 232.5 ms (line 3), before the read began, and 2 had been written before that, by process 1's write 2 completed at 2.0 ms (line 1)."
        );
    }
}
