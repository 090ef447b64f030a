//! Checking a whole history: per-key decomposition (P-compositionality),
//! keys in parallel across the machine's cores, a time and memory budget,
//! and counterexamples with a one-sentence explanation.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::history::{History, Op, OpKind, Outcome};
use crate::model::{Model, Register};
use crate::register::{self, Refutation};
use crate::search::{self, Budget, GiveUp, SearchResult};
use crate::witness::{self, Witness, WitnessKind, WitnessOp};

/// How much a check may spend.
#[derive(Clone, Debug)]
pub struct Options {
    /// Wall-clock budget for the whole history; keys not decided by then are `unknown`.
    pub budget: Duration,
    /// Memory budget for the search caches, bytes, shared by the worker threads.
    pub max_memory: u64,
    /// Worker threads (default: the machine's cores).
    pub threads: usize,
    /// Use the register's structure before searching (on by default; off to
    /// test that both paths agree).
    pub fast_path: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: Duration::from_secs(60),
            max_memory: 1 << 30,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            fast_path: true,
        }
    }
}

/// Bytes one cached configuration costs, with the hash table's overhead.
const BYTES_PER_CONFIG: u64 = 80;

pub use faultline_rundir::summary::Verdict;

/// Why a key's history is not linearizable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Counterexample {
    /// One sentence, naming the witness's operations (process, value, time,
    /// line); every claim in it is true of the file.
    pub explanation: String,
    /// What the witness shows: `stale-read`, `future-read`,
    /// `never-written`, `lost-write`, `impossible-cas`, or
    /// `not-linearizable` (no short structural answer).
    pub kind: WitnessKind,
    /// The operations that cannot all be explained together.
    pub witness: Vec<WitnessOp>,
    /// Whether no operation of the witness can be left out (false for a
    /// reduced set).
    pub minimal: bool,
    /// How many operations the longest linearizable prefix holds.
    pub prefix_len: usize,
    /// Its last operations (at most 20), in linearization order.
    pub prefix_tail: Vec<Op>,
    /// The operations that could not be linearized after the prefix.
    pub failing: Vec<Op>,
    /// The operations concurrent with them.
    pub concurrent: Vec<Op>,
    /// Everything above, for drawing a timeline (one lane per process).
    pub timeline: Vec<Op>,
}

impl Counterexample {
    /// The anomaly in a few words, for one-line summaries ("stale read on
    /// k0 at 243.7 ms").
    pub fn headline(&self, key: &str) -> String {
        let last = self
            .witness
            .iter()
            .filter_map(|o| o.complete_ns.or(Some(o.invoke_ns)))
            .max();
        crate::witness::headline(self.kind, key, last)
    }
}

/// The result for one key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyResult {
    /// The key.
    pub key: String,
    /// Operations on it (fails excluded).
    pub ops: usize,
    /// The verdict.
    pub valid: Verdict,
    /// How it was decided: `precheck`, `zones` or `search`.
    pub method: Cow<'static, str>,
    /// For an unknown verdict: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a failed one: the counterexample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    /// Milliseconds spent.
    pub elapsed_ms: f64,
}

/// The result for a whole history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// `true`, `false` or `"unknown"`.
    pub valid: Verdict,
    /// Operations (fails included).
    pub ops: usize,
    /// Keys.
    pub keys: usize,
    /// Keys that are not linearizable, with counterexamples.
    pub failures: Vec<KeyResult>,
    /// Keys whose verdict is unknown, with reasons.
    pub unknown: Vec<KeyResult>,
    /// Milliseconds spent.
    pub elapsed_ms: f64,
    /// Why the verdict is unknown when no key is to blame (an empty history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One key and its operations, for a worker to take.
type KeyOps = (String, Vec<Op>);

/// Check every key of `history` against the register model.
pub fn check_history(history: &History, opts: &Options) -> Report {
    let start = Instant::now();
    if history.ops.iter().any(|o| o.kind == OpKind::Txn) {
        // Transactions are judged by their dependency graph (`elle`), never
        // as registers.
        return Report {
            valid: Verdict::Unknown,
            ops: history.ops.len(),
            keys: 0,
            failures: Vec::new(),
            unknown: Vec::new(),
            elapsed_ms: 0.0,
            reason: Some("a history of list-append transactions is judged by the list-append checker, not as registers".into()),
        };
    }
    let deadline = start + opts.budget;
    let keys = history.by_key();
    let n_keys = keys.len();
    let key_ops: Vec<usize> = keys.iter().map(|(_, ops)| ops.len()).collect();
    // Each worker takes its key's operations (no second copy of a long history).
    let keys: Vec<Mutex<Option<KeyOps>>> = keys.into_iter().map(|k| Mutex::new(Some(k))).collect();
    let threads = opts.threads.max(1).min(keys.len().max(1));
    let max_configs = (opts.max_memory / BYTES_PER_CONFIG / threads as u64).max(1024) as usize;
    let budget = Budget {
        deadline,
        max_configs,
    };
    // Largest keys first, so one huge key does not start last.
    let mut order: Vec<usize> = (0..n_keys).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(key_ops[i]));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<KeyResult>>> = Mutex::new(vec![None; n_keys]);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = order.get(k) else { break };
                let Some((key, ops)) = keys[i].lock().expect("no panics while locked").take()
                else {
                    continue;
                };
                // A key none of whose operations completed ok proves
                // nothing: every one of them may never have happened.
                let r = if ops.iter().any(|o| o.outcome == Outcome::Ok) {
                    check_key(&key, ops, budget, opts.fast_path)
                } else {
                    KeyResult {
                        key,
                        ops: ops.len(),
                        valid: Verdict::Unknown,
                        method: "none".into(),
                        reason: Some(
                            "no operation on this key completed ok: nothing on it could be checked"
                                .into(),
                        ),
                        counterexample: None,
                        elapsed_ms: 0.0,
                    }
                };
                results.lock().expect("no panics while locked")[i] = Some(r);
            });
        }
    });
    let results: Vec<KeyResult> = results
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .flatten()
        .collect();
    let failures: Vec<KeyResult> = results
        .iter()
        .filter(|r| r.valid == Verdict::NotLinearizable)
        .cloned()
        .collect();
    let unknown: Vec<KeyResult> = results
        .iter()
        .filter(|r| r.valid == Verdict::Unknown)
        .cloned()
        .collect();
    // A history that recorded no operation proves nothing: a CI gate must
    // not read it as a pass.
    let empty = history.ops.iter().all(|o| o.outcome != Outcome::Ok);
    let valid = if !failures.is_empty() {
        Verdict::NotLinearizable
    } else if !unknown.is_empty() || empty {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    };
    let reason = empty.then(|| {
        if history.ops.is_empty() {
            "the history holds no client operation: nothing was checked".to_string()
        } else {
            "no operation of the history completed ok (each failed or timed out): nothing could be checked".to_string()
        }
    });
    Report {
        valid,
        ops: history.ops.len(),
        keys: n_keys,
        failures,
        unknown,
        elapsed_ms: ms(start),
        reason,
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Check one key's operations (fails already removed).
pub fn check_key(key: &str, ops: Vec<Op>, budget: Budget, fast_path: bool) -> KeyResult {
    if crate::mutex::is_lock(&ops) {
        return crate::mutex::check_lock(key, ops, budget);
    }
    let start = Instant::now();
    if ops
        .iter()
        .any(|o| matches!(o.kind, OpKind::Acquire | OpKind::Release | OpKind::Txn))
    {
        return KeyResult {
            key: key.to_string(),
            ops: ops.len(),
            valid: Verdict::Unknown,
            method: "none".into(),
            reason: Some(format!(
                "key {key} mixes a lock's (or a transaction's) operations with a register's: no one model judges them"
            )),
            counterexample: None,
            elapsed_ms: 0.0,
        };
    }
    let n = ops.len();
    let mut unique = false;
    let (prepared, method) = if fast_path {
        let p = register::prepare(&ops, key);
        if let Some(r) = p.refutation {
            let searched = p.ops.as_deref().unwrap_or(&ops);
            let method = if searched.iter().all(|o| o.kind != OpKind::Cas) && r.ops.len() > 2 {
                "zones"
            } else {
                "precheck"
            };
            return KeyResult {
                key: key.to_string(),
                ops: n,
                valid: Verdict::NotLinearizable,
                method: method.into(),
                reason: None,
                counterexample: Some(with_witness(key, &ops, None, from_refutation(&ops, r))),
                elapsed_ms: ms(start),
            };
        }
        unique = p.unique_values;
        let prepared: Cow<[Op]> = match p.ops {
            Some(v) => Cow::Owned(v),
            None => Cow::Borrowed(&ops),
        };
        (prepared, "search")
    } else {
        (Cow::Borrowed(&ops[..]), "search")
    };
    let result = if unique {
        search::check(&Register, &prepared, budget, true)
    } else {
        crate::jit::check(&prepared, budget)
    };
    let (valid, reason, counterexample) = match result {
        SearchResult::Linearizable => (Verdict::Linearizable, None, None),
        SearchResult::Unknown(g) => {
            let why = match g {
                GiveUp::Time => format!(
                    "the time budget ran out while searching {} operations ({}; raise --budget-secs)",
                    prepared.len(),
                    what_makes_it_hard(&prepared)
                ),
                GiveUp::Memory { configs } => format!(
                    "the memory budget ran out after caching {configs} configurations of {} operations ({}; raise --max-memory-mb)",
                    prepared.len(),
                    what_makes_it_hard(&prepared)
                ),
            };
            (Verdict::Unknown, Some(why), None)
        }
        SearchResult::NotLinearizable(f) => {
            let stuck = original(&ops, prepared[f.stuck].id);
            let c = from_failure(key, &prepared, &ops, f);
            (
                Verdict::NotLinearizable,
                None,
                Some(with_witness(key, &ops, stuck.as_ref(), c)),
            )
        }
    };
    KeyResult {
        key: key.to_string(),
        ops: n,
        valid,
        method: method.into(),
        reason,
        counterexample,
        elapsed_ms: ms(start),
    }
}

/// The witness of a failed key: the structure's when values are unique,
/// else the search's evidence reduced around the operation it got stuck on;
/// failing both, the search's own account, said to be no short witness.
fn with_witness(
    key: &str,
    ops: &[Op],
    stuck: Option<&Op>,
    mut c: Counterexample,
) -> Counterexample {
    let found: Option<Witness> = witness::structural(key, ops)
        .or_else(|| stuck.and_then(|s| witness::reduced(key, ops, s, Duration::from_secs(1))));
    match found {
        Some(w) => {
            c.explanation = w.explanation;
            c.kind = w.kind;
            c.minimal = w.minimal;
            c.witness = w.ops.iter().map(WitnessOp::from).collect();
            // The drawing shows the witness, with what ran beside it.
            let mut failing = w.ops;
            for o in &c.failing {
                if !failing.iter().any(|f| f.id == o.id) {
                    failing.push(o.clone());
                }
            }
            c.timeline = timeline(&c.prefix_tail, &failing, &c.concurrent);
        }
        None => {
            c.witness = c.failing.iter().map(WitnessOp::from).collect();
            c.minimal = false;
            c.explanation = format!(
                "{} (no short set of operations that shows it was found within the budget)",
                c.explanation
            );
        }
    }
    c
}

/// What makes a key's search hard, in words: its time range, how many
/// processes and how many of them at once, the operations that never
/// completed (each stays concurrent with everything after it), and how
/// many distinct values were written (few values, many equal states).
fn what_makes_it_hard(ops: &[Op]) -> String {
    let first = ops.iter().map(|o| o.call_time).min().unwrap_or(0);
    let last = ops
        .iter()
        .map(|o| o.ret_time.unwrap_or(o.call_time))
        .max()
        .unwrap_or(0);
    let processes: std::collections::HashSet<u64> = ops.iter().map(|o| o.process).collect();
    let crashed = ops
        .iter()
        .filter(|o| o.ret == crate::history::NEVER)
        .count();
    let values: std::collections::HashSet<i64> = ops.iter().filter_map(|o| o.writes()).collect();
    // The most operations open at one moment (crashed ones never close).
    let mut edges: Vec<(u64, i64)> = ops
        .iter()
        .flat_map(|o| [(o.call, 1), (o.ret, -1)])
        .collect();
    edges.sort();
    let (mut open, mut most) = (0i64, 0i64);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    format!(
        "from {} to {}, {} processes, up to {most} operations at once, {crashed} that never completed, {} distinct values written",
        crate::witness::readable_time(first),
        crate::witness::readable_time(last),
        processes.len(),
        values.len()
    )
}

fn original(ops: &[Op], id: usize) -> Option<Op> {
    ops.iter().find(|o| o.id == id).cloned()
}

fn concurrent_with(ops: &[Op], failing: &[Op]) -> Vec<Op> {
    let ids: Vec<usize> = failing.iter().map(|o| o.id).collect();
    let mut out: Vec<Op> = ops
        .iter()
        .filter(|o| !ids.contains(&o.id))
        .filter(|o| failing.iter().any(|f| o.call < f.ret && f.call < o.ret))
        .take(50)
        .cloned()
        .collect();
    out.sort_by_key(|o| o.call);
    out
}

fn timeline(prefix_tail: &[Op], failing: &[Op], concurrent: &[Op]) -> Vec<Op> {
    let mut all: Vec<Op> = prefix_tail
        .iter()
        .chain(failing)
        .chain(concurrent)
        .cloned()
        .collect();
    all.sort_by_key(|o| (o.call, o.id));
    all.dedup_by_key(|o| o.id);
    all
}

fn from_refutation(ops: &[Op], r: Refutation) -> Counterexample {
    let failing: Vec<Op> = r.ops.iter().filter_map(|&id| original(ops, id)).collect();
    let concurrent = concurrent_with(ops, &failing);
    let tl = timeline(&[], &failing, &concurrent);
    Counterexample {
        explanation: r.explanation,
        kind: WitnessKind::NotLinearizable,
        witness: Vec::new(),
        minimal: false,
        prefix_len: 0,
        prefix_tail: vec![],
        failing,
        concurrent,
        timeline: tl,
    }
}

fn secs(t: Option<u64>) -> String {
    t.map_or("(no time)".to_string(), |t| {
        format!("{:.3} s", t as f64 / 1e9)
    })
}

fn from_failure(key: &str, prepared: &[Op], all: &[Op], f: search::Failure) -> Counterexample {
    let prefix: Vec<&Op> = f.prefix.iter().map(|&i| &prepared[i]).collect();
    let mut state = Register.init();
    let mut last_writer: Option<&Op> = None;
    for op in &prefix {
        if let Some(s) = Register.step(&state, op) {
            if op.kind != OpKind::Read {
                last_writer = Some(op);
            }
            state = s;
        }
    }
    let stuck = &prepared[f.stuck];
    let stuck_orig = original(all, stuck.id).unwrap_or_else(|| stuck.clone());
    let held = Register.describe(&state);
    let explanation = match stuck.kind {
        OpKind::Txn | OpKind::Acquire | OpKind::Release => format!(
            "a {} on {key} cannot be judged as a register operation",
            stuck.kind.name()
        ),
        OpKind::Read => {
            let got = stuck.result.map_or("null".to_string(), |v| v.to_string());
            // The last write of the prefix holds a value other than the one
            // read, and it finished before the read started: a stale read.
            match last_writer {
                Some(w) if w.ret < stuck.call && w.writes() != stuck.result => format!(
                    "read of {key} returned {got} at {}, but {} completed at {} (before the read began) and nothing wrote {got} after it",
                    secs(stuck_orig.ret_time),
                    w.describe(),
                    secs(original(all, w.id).and_then(|o| o.ret_time))
                ),
                _ => format!(
                    "read of {key} returned {got} at {}, but no order of the operations lets it: after the longest linearizable prefix ({} operations) the register held {held}",
                    secs(stuck_orig.ret_time),
                    prefix.len()
                ),
            }
        }
        OpKind::Cas => format!(
            "{} on {key} succeeded at {}, but no order of the operations lets it: after the longest linearizable prefix ({} operations) the register held {held}",
            stuck.describe(),
            secs(stuck_orig.ret_time),
            prefix.len()
        ),
        OpKind::Write => format!(
            "{} on {key}, completed at {}, cannot be placed in any order consistent with the reads around it (the register held {held} after the longest linearizable prefix of {} operations)",
            stuck.describe(),
            secs(stuck_orig.ret_time),
            prefix.len()
        ),
    };
    let prefix_tail: Vec<Op> = prefix
        .iter()
        .rev()
        .take(20)
        .rev()
        .filter_map(|o| original(all, o.id))
        .collect();
    let failing = vec![stuck_orig];
    let mut concurrent: Vec<Op> = f
        .pending
        .iter()
        .filter_map(|&i| original(all, prepared[i].id))
        .collect();
    concurrent.extend(concurrent_with(all, &failing));
    concurrent.sort_by_key(|o| (o.call, o.id));
    concurrent.dedup_by_key(|o| o.id);
    concurrent.truncate(50);
    let tl = timeline(&prefix_tail, &failing, &concurrent);
    Counterexample {
        explanation,
        kind: WitnessKind::NotLinearizable,
        witness: Vec::new(),
        minimal: false,
        prefix_len: prefix.len(),
        prefix_tail,
        failing,
        concurrent,
        timeline: tl,
    }
}
