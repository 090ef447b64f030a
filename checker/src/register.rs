//! What the register's structure allows before (and instead of) the general
//! search, when every written value is unique per key (as faultline's
//! workload guarantees; Jepsen histories with small value domains fall
//! through to the general search unchanged).
//!
//! - A read (or cas) of a value that nothing wrote is impossible.
//! - A read that completed before the only write of its value was invoked is impossible.
//! - An `info` write or cas whose value nobody observed can be taken never
//!   to have happened: leaving it out never makes another operation
//!   impossible, so it is dropped from the search.
//! - Each write must precede every operation that observed its value, so its
//!   completion can be moved up to the earliest observer's completion; an
//!   observed `info` write thereby becomes an ordinary bounded operation.
//! - For histories of reads and writes only, the zone test of Gibbons and
//!   Korach refutes in O(n log n): each value's cluster (its write and its
//!   reads) spans a "forward zone" from its earliest completion to its latest
//!   invocation; two overlapping forward zones, or a backward zone inside a
//!   forward one, cannot be linearized.
//!
//! Each step only removes orders that no linearization could use, so the
//! general search on the prepared operations gives the same verdict (the
//! tests check both paths agree).

use std::collections::HashMap;

use crate::history::{Op, OpKind, Outcome};

/// A proof, found without search, that a key's history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refutation {
    /// One sentence.
    pub explanation: String,
    /// The operations involved (ids).
    pub ops: Vec<usize>,
}

/// The operations ready for the search, or a refutation.
#[derive(Debug)]
pub struct Prepared {
    /// What the search must still order, when it differs from the input
    /// (`None`: the input as it is — with repeated values nothing is
    /// rewritten, and a copy of a long history would double its memory).
    pub ops: Option<Vec<Op>>,
    /// Set when the history is certainly not linearizable.
    pub refutation: Option<Refutation>,
    /// Whether written values were unique (the structure above applied).
    pub unique_values: bool,
    /// Info operations dropped as never observed.
    pub dropped_infos: usize,
}

fn secs(t: Option<u64>) -> String {
    t.map_or("(no time)".to_string(), |t| {
        format!("{:.3} s", t as f64 / 1e9)
    })
}

/// Prepare one key's operations (no `fail` ones) for the search.
pub fn prepare(ops: &[Op], key: &str) -> Prepared {
    let mut writer: HashMap<i64, usize> = HashMap::new();
    let mut unique = true;
    for (i, o) in ops.iter().enumerate() {
        if let Some(v) = o.writes() {
            if writer.insert(v, i).is_some() {
                unique = false;
            }
        }
    }
    let observed = |o: &Op| -> Option<Option<i64>> {
        match (o.kind, o.outcome) {
            (OpKind::Read, Outcome::Ok) => Some(o.result),
            (OpKind::Cas, Outcome::Ok) => Some(o.arg),
            _ => None,
        }
    };
    // Impossible observations hold whatever the uniqueness.
    for o in ops {
        if let Some(Some(v)) = observed(o) {
            if !writer.contains_key(&v) {
                let what = if o.kind == OpKind::Read {
                    "read"
                } else {
                    "cas"
                };
                return refuted(
                    unique,
                    Refutation {
                        explanation: format!(
                            "{what} of {key} at {} observed {v}, but no operation ever wrote {v}",
                            secs(o.ret_time)
                        ),
                        ops: vec![o.id],
                    },
                );
            }
        }
    }
    if !unique {
        // An observation that returned before any write of its value was even
        // invoked (with few distinct values, the others would have to be
        // searched exhaustively to show it).
        let mut first_write: HashMap<i64, usize> = HashMap::new();
        for (i, o) in ops.iter().enumerate() {
            if let Some(v) = o.writes() {
                let e = first_write.entry(v).or_insert(i);
                if o.call < ops[*e].call {
                    *e = i;
                }
            }
        }
        for o in ops {
            if let Some(Some(v)) = observed(o) {
                let w = &ops[first_write[&v]];
                if o.ret < w.call {
                    let what = if o.kind == OpKind::Read {
                        "read"
                    } else {
                        "cas"
                    };
                    return refuted(
                        false,
                        Refutation {
                            explanation: format!(
                                "{what} of {key} returned {v} at {}, before the first write of {v} was even invoked at {}",
                                secs(o.ret_time),
                                secs(Some(w.call_time))
                            ),
                            ops: vec![o.id, w.id],
                        },
                    );
                }
            }
        }
        return Prepared {
            ops: None,
            refutation: None,
            unique_values: false,
            dropped_infos: 0,
        };
    }
    for o in ops {
        if let Some(Some(v)) = observed(o) {
            let w = &ops[writer[&v]];
            if o.ret < w.call {
                return refuted(true, Refutation {
                    explanation: format!(
                        "{} of {key} returned {v} at {}, before the only write of {v} was even invoked at {}",
                        if o.kind == OpKind::Read { "read" } else { "cas" },
                        secs(o.ret_time),
                        secs(Some(w.call_time))
                    ),
                    ops: vec![o.id, w.id],
                });
            }
        }
    }
    // Info reads constrain nothing and change nothing.
    let mut ops: Vec<Op> = ops
        .iter()
        .filter(|o| !(o.kind == OpKind::Read && o.outcome == Outcome::Info))
        .cloned()
        .collect();
    // Earliest observer completion per value. An info cas whose new value
    // was observed did happen, so it observed its expected value before
    // that: follow such chains to a fixpoint.
    let mut first_seen: HashMap<i64, u64> = HashMap::new();
    for o in &ops {
        if let Some(Some(v)) = observed(o) {
            let e = first_seen.entry(v).or_insert(u64::MAX);
            *e = (*e).min(o.ret);
        }
    }
    for _ in 0..=ops.len() {
        let mut changed = false;
        for o in ops
            .iter()
            .filter(|o| o.kind == OpKind::Cas && o.outcome == Outcome::Info)
        {
            let (Some(e), Some(n)) = (o.arg, o.arg2) else {
                continue;
            };
            if let Some(&seen) = first_seen.get(&n) {
                let cur = first_seen.entry(e).or_insert(u64::MAX);
                if seen < *cur {
                    *cur = seen;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let before = ops.len();
    ops.retain(|o| {
        o.outcome != Outcome::Info || o.writes().is_some_and(|v| first_seen.contains_key(&v))
    });
    let dropped_infos = before - ops.len();
    for o in &mut ops {
        if let Some(v) = o.writes() {
            if let Some(&seen) = first_seen.get(&v) {
                if o.outcome == Outcome::Info || seen < o.ret {
                    o.outcome = Outcome::Ok;
                    o.ret = seen;
                }
            }
        }
    }
    let refutation = if ops.iter().all(|o| o.kind != OpKind::Cas) {
        zones(&ops, key)
    } else {
        None
    };
    Prepared {
        ops: Some(ops),
        refutation,
        unique_values: true,
        dropped_infos,
    }
}

fn refuted(unique: bool, r: Refutation) -> Prepared {
    Prepared {
        ops: None,
        refutation: Some(r),
        unique_values: unique,
        dropped_infos: 0,
    }
}

struct Cluster {
    value: Option<i64>,
    writer: Option<usize>,
    min_end: u64,
    min_end_op: Option<usize>,
    max_start: u64,
    max_start_op: Option<usize>,
}

/// The zone test for read/write registers with unique values.
fn zones(ops: &[Op], key: &str) -> Option<Refutation> {
    let mut clusters: HashMap<Option<i64>, Cluster> = HashMap::new();
    let new = |value| Cluster {
        value,
        writer: None,
        min_end: u64::MAX,
        min_end_op: None,
        max_start: 0,
        max_start_op: None,
    };
    // The initial value: a virtual write completed before everything.
    let init = clusters.entry(None).or_insert_with(|| new(None));
    init.min_end = 0;
    for (i, o) in ops.iter().enumerate() {
        let v = match o.kind {
            OpKind::Write => o.arg,
            OpKind::Read => o.result,
            OpKind::Cas | OpKind::Txn | OpKind::Acquire | OpKind::Release => return None,
        };
        let c = clusters.entry(v).or_insert_with(|| new(v));
        if o.kind == OpKind::Write {
            c.writer = Some(i);
        }
        if o.ret < c.min_end {
            c.min_end = o.ret;
            c.min_end_op = Some(i);
        }
        if o.call >= c.max_start {
            c.max_start = o.call;
            c.max_start_op = Some(i);
        }
    }
    let mut forward: Vec<&Cluster> = clusters
        .values()
        .filter(|c| c.min_end < c.max_start)
        .collect();
    forward.sort_by_key(|c| c.min_end);
    let name = |c: &Cluster| match c.value {
        Some(v) => format!("{v}"),
        None => "null (the initial value)".to_string(),
    };
    let time_of = |i: Option<usize>, end: bool| {
        i.map(|i| {
            if end {
                secs(ops[i].ret_time)
            } else {
                secs(Some(ops[i].call_time))
            }
        })
        .unwrap_or_else(|| "the start".into())
    };
    let ids = |a: &Cluster, b: &Cluster| {
        [
            a.min_end_op,
            a.max_start_op,
            b.min_end_op,
            b.max_start_op,
            a.writer,
            b.writer,
        ]
        .into_iter()
        .flatten()
        .map(|i| ops[i].id)
        .collect::<Vec<_>>()
    };
    // Two forward zones overlap.
    for w in forward.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.min_end < a.max_start {
            return Some(Refutation {
                explanation: format!(
                    "on {key}, value {} was already observed or written by {} and still had to be current after {}, \
                     while value {} likewise had to be current between {} and {}: the two cannot both hold",
                    name(a),
                    time_of(a.min_end_op, true),
                    time_of(a.max_start_op, false),
                    name(b),
                    time_of(b.min_end_op, true),
                    time_of(b.max_start_op, false)
                ),
                ops: ids(a, b),
            });
        }
    }
    // A backward zone inside a forward zone.
    for b in clusters.values().filter(|c| c.min_end >= c.max_start) {
        for f in &forward {
            if std::ptr::eq(*f, b) {
                continue;
            }
            if f.min_end < b.max_start && b.min_end < f.max_start {
                if let (Some(r), Some(w)) = (f.max_start_op, b.writer) {
                    if ops[r].kind == OpKind::Read && ops[w].ret < ops[r].call {
                        return Some(Refutation {
                            explanation: format!(
                                "read of {key} returned {} at {}, but write {} completed at {} (before the read began), after {} had been written or read at {}, and nothing wrote {} after it",
                                name(f),
                                secs(ops[r].ret_time),
                                name(b),
                                secs(ops[w].ret_time),
                                name(f),
                                time_of(f.min_end_op, true),
                                name(f)
                            ),
                            ops: ids(f, b),
                        });
                    }
                }
                return Some(Refutation {
                    explanation: format!(
                        "on {key}, value {} had to be current from {} until after {}, but value {} was written and observed entirely inside that window (from {} to {})",
                        name(f),
                        time_of(f.min_end_op, true),
                        time_of(f.max_start_op, false),
                        name(b),
                        time_of(b.max_start_op, false),
                        time_of(b.min_end_op, true)
                    ),
                    ops: ids(f, b),
                });
            }
        }
    }
    None
}
