//! Locks: a key whose operations are `acquire` and `release` is checked
//! against a mutex — at most one holder at a time, and a lock released
//! only by the process that holds it — by the same search as registers
//! ([`crate::search`]), with a counterexample that names the two clients
//! that held the lock at once (or the release by a client that did not
//! hold it).
//!
//! An `info` acquire may have taken the lock at any point after its
//! invocation, or never; its process is retired, so a lock it took is
//! never given back in the history (the search may leave such an acquire
//! out).

use std::time::Instant;

use crate::check::{Counterexample, KeyResult, Verdict};
use crate::history::{Op, OpKind, Outcome};
use crate::model::Model;
use crate::search::{self, Budget, GiveUp, SearchResult};
use crate::witness::{readable_time, WitnessKind, WitnessOp};

/// A mutex: free, or held by one process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mutex;

impl Model for Mutex {
    type State = Option<u64>;

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, state: &Option<u64>, op: &Op) -> Option<Option<u64>> {
        match op.kind {
            OpKind::Acquire => state.is_none().then_some(Some(op.process)),
            OpKind::Release => (*state == Some(op.process)).then_some(None),
            _ => None,
        }
    }

    fn describe(&self, state: &Option<u64>) -> String {
        match state {
            Some(p) => format!("held by process {p}"),
            None => "free".to_string(),
        }
    }
}

/// Whether `ops` are a lock's (acquires and releases only).
pub fn is_lock(ops: &[Op]) -> bool {
    !ops.is_empty()
        && ops
            .iter()
            .all(|o| matches!(o.kind, OpKind::Acquire | OpKind::Release))
}

/// Check one lock's operations (fails already removed).
pub fn check_lock(key: &str, ops: Vec<Op>, budget: Budget) -> KeyResult {
    let start = Instant::now();
    let n = ops.len();
    let (valid, reason, counterexample) = match search::check(&Mutex, &ops, budget, false) {
        SearchResult::Linearizable => (Verdict::Linearizable, None, None),
        SearchResult::Unknown(g) => (
            Verdict::Unknown,
            Some(match g {
                GiveUp::Time => format!(
                    "the time budget ran out while searching {n} lock operations (raise --budget-secs)"
                ),
                GiveUp::Memory { configs } => format!(
                    "the memory budget ran out after {configs} configurations of {n} lock operations (raise --max-memory-mb)"
                ),
            }),
            None,
        ),
        SearchResult::NotLinearizable(f) => {
            (Verdict::NotLinearizable, None, Some(counterexample(key, &ops, &f)))
        }
    };
    KeyResult {
        key: key.to_string(),
        ops: n,
        valid,
        method: "search".into(),
        reason,
        counterexample,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    }
}

/// The time an operation completed, or its invocation for one that never did.
fn end(o: &Op) -> u64 {
    o.ret_time.unwrap_or(o.call_time)
}

/// Two holders at once: an ok acquire of process p, and an ok acquire of
/// another process that completed after p's and before p began to give
/// the lock back (p's next release, or never). Returns (p's acquire, the
/// other's acquire, p's release if any).
fn two_holders(ops: &[Op]) -> Option<(&Op, &Op, Option<&Op>)> {
    let acquires: Vec<&Op> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Acquire && o.outcome == Outcome::Ok)
        .collect();
    let mut best: Option<(&Op, &Op, Option<&Op>)> = None;
    for a in &acquires {
        let released = ops
            .iter()
            .filter(|r| r.kind == OpKind::Release && r.process == a.process && r.call > a.ret)
            .min_by_key(|r| r.call);
        let held_until = released.map_or(u64::MAX, |r| r.call);
        for b in &acquires {
            if b.process != a.process && b.ret > a.ret && b.ret < held_until {
                // The earliest such overlap is the clearest.
                if best.is_none_or(|(_, bb, _)| end(b) < end(bb)) {
                    best = Some((a, b, released));
                }
            }
        }
    }
    best
}

/// An ok acquire by a process that already held the lock (an earlier ok
/// acquire of its own with no release taking effect in between): a lock
/// is not re-entrant, so the first hold must have ended without a release
/// (a lease that ran out, say). Returns (the earlier acquire, the later).
fn reacquired(ops: &[Op]) -> Option<(&Op, &Op)> {
    let ok = |o: &&Op| o.outcome == Outcome::Ok;
    ops.iter()
        .filter(|b| b.kind == OpKind::Acquire)
        .filter(ok)
        .find_map(|b| {
            let a = ops
                .iter()
                .filter(|a| a.kind == OpKind::Acquire && a.process == b.process && a.ret < b.call)
                .filter(ok)
                .max_by_key(|a| a.ret)?;
            let released = ops.iter().any(|r| {
                r.kind == OpKind::Release
                    && r.process == b.process
                    && r.call > a.ret
                    && r.call < b.ret
            });
            (!released).then_some((a, b))
        })
}

/// A release that succeeded though its process held no lock it took and
/// had not given back.
fn release_by_non_holder(ops: &[Op]) -> Option<&Op> {
    ops.iter()
        .filter(|r| r.kind == OpKind::Release && r.outcome == Outcome::Ok)
        .find(|r| {
            let took = ops
                .iter()
                .filter(|a| a.kind == OpKind::Acquire && a.process == r.process && a.call < r.call)
                .count();
            let gave = ops
                .iter()
                .filter(|x| x.kind == OpKind::Release && x.process == r.process && x.call < r.call)
                .count();
            took <= gave
        })
}

fn counterexample(key: &str, ops: &[Op], f: &search::Failure) -> Counterexample {
    let at = |t: Option<u64>| t.map_or("never".to_string(), readable_time);
    let (kind, witness, explanation): (WitnessKind, Vec<&Op>, String) = if let Some((a, b, r)) =
        two_holders(ops)
    {
        let until = match r {
            Some(r) => format!(
                "had not released it (its next release that took effect began at {})",
                readable_time(r.call_time)
            ),
            None => "never released it (no release of it took effect)".to_string(),
        };
        let mut w = vec![a, b];
        w.extend(r);
        (
                WitnessKind::TwoHolders,
                w,
                format!(
                    "process {} acquired {key} (completed at {}) and {until}, yet process {} acquired it too (completed at {}): two holders at once",
                    a.process,
                    at(a.ret_time),
                    b.process,
                    at(b.ret_time)
                ),
            )
    } else if let Some((a, b)) = reacquired(ops) {
        (
            WitnessKind::TwoHolders,
            vec![a, b],
            format!(
                "process {} acquired {key} (completed at {}) and, with no release of it taking effect, acquired it again (completed at {}): its first hold ended without a release (a lease that ran out), unknown to it",
                a.process,
                at(a.ret_time),
                at(b.ret_time)
            ),
        )
    } else if let Some(r) = release_by_non_holder(ops) {
        (
                WitnessKind::ReleaseByNonHolder,
                vec![r],
                format!(
                    "process {} released {key} at {} without holding it (it had no acquire of its own outstanding)",
                    r.process,
                    at(r.ret_time)
                ),
            )
    } else {
        let stuck = &ops[f.stuck];
        (
                WitnessKind::NotLinearizable,
                vec![stuck],
                format!(
                    "process {}'s {} of {key} (completed at {}) fits no order of the lock's operations with one holder at a time",
                    stuck.process,
                    stuck.kind.name(),
                    at(stuck.ret_time)
                ),
            )
    };
    let (lo, hi) = (
        witness.iter().map(|o| o.call_time).min().unwrap_or(0),
        witness.iter().map(|o| end(o)).max().unwrap_or(0),
    );
    let timeline: Vec<Op> = ops
        .iter()
        .filter(|o| o.call_time <= hi && o.ret_time.is_none_or(|r| r >= lo))
        .take(40)
        .cloned()
        .collect();
    Counterexample {
        explanation,
        kind,
        witness: witness.iter().map(|o| WitnessOp::from(*o)).collect(),
        minimal: true,
        prefix_len: f.prefix.len(),
        prefix_tail: f
            .prefix
            .iter()
            .rev()
            .take(20)
            .rev()
            .map(|&i| ops[i].clone())
            .collect(),
        failing: vec![ops[f.stuck].clone()],
        concurrent: Vec::new(),
        timeline,
    }
}

#[cfg(test)]
mod tests;
