//! Synthetic list-append histories: a correct in-memory store that runs
//! each transaction atomically at an instant between its invocation and
//! its completion (so every history it gives is strictly serializable),
//! and the anomalies of each class planted into such a history, for the
//! tests and the benchmark.

use super::{Columns, Mop, Txn, TxnOutcome};

/// The shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Transactions.
    pub txns: usize,
    /// Keys.
    pub keys: usize,
    /// Most micro-operations per transaction (at least 1).
    pub max_mops: usize,
    /// Concurrent processes.
    pub processes: usize,
    /// Share of micro-operations that are appends.
    pub appends: f64,
    /// Appends to one key before its slot moves on to a fresh key (as
    /// Jepsen's `max-writes-per-key`): keeps every list short.
    pub max_writes_per_key: usize,
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// A strictly serializable history of `shape` from `seed`: processes run
/// transactions back to back; each takes effect at a seeded instant within
/// its span; 2 % fail (not applied) and 2 % end unknown (applied or not,
/// their reads unknown).
pub fn correct(shape: Shape, seed: u64) -> Vec<Txn> {
    correct_columns(shape, seed).to_txns()
}

/// A planned transaction of [`correct_columns`].
struct Planned {
    process: u64,
    invoke: u64,
    complete: u64,
    outcome: TxnOutcome,
    /// Where its micro-operations end in the plan's list.
    end: u32,
}

/// A planned micro-operation: a key, and the value appended or (for a
/// read, `< 0` until the store has run) the length read.
#[derive(Clone, Copy)]
struct Step {
    key: u32,
    read: bool,
    value: i64,
}

/// Keys per final read of [`correct_columns`].
const FINAL_READ_KEYS: usize = 1_000;

/// [`correct`]'s history, built in columns (as the benchmark's millions
/// of transactions need), in the order of invocation as a history file
/// has them.
pub fn correct_columns(shape: Shape, seed: u64) -> Columns {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let procs = shape.processes.max(1);
    let keys = shape.keys.max(1);
    let per_key = shape.max_writes_per_key.max(1) as i64;
    let mut out = Columns::new();
    // Each slot's current key (`k<slot>` then `k<slot>.<generation>`), and
    // the values appended to it so far.
    let mut slot_key: Vec<u32> = (0..keys).map(|k| out.key(&format!("k{k}"))).collect();
    let mut generation = vec![0u32; keys];
    let mut clock = vec![0u64; procs];
    // Each slot's process number: after a transaction that ended unknown
    // the slot goes on under a fresh one (as the history format asks).
    let mut pid: Vec<u64> = (0..procs as u64).collect();
    let mut fresh = procs as u64;
    let mut next_value = vec![0i64; keys];
    let mut plan: Vec<Planned> = Vec::with_capacity(shape.txns);
    let mut steps: Vec<Step> = Vec::with_capacity(shape.txns * (shape.max_mops + 1) / 2);
    let mut points: Vec<(u64, u32)> = Vec::with_capacity(shape.txns);
    for i in 0..shape.txns {
        let p = i % procs;
        let invoke = clock[p] + 1 + rng.below(5);
        let dur = 1 + rng.below(40);
        let complete = invoke + dur;
        clock[p] = complete;
        let m = 1 + rng.below(shape.max_mops.max(1) as u64) as usize;
        for _ in 0..m {
            let k = rng.below(keys as u64) as usize;
            if rng.chance(shape.appends) {
                if next_value[k] == per_key {
                    generation[k] += 1;
                    next_value[k] = 0;
                    slot_key[k] = out.key(&format!("k{k}.{}", generation[k]));
                }
                next_value[k] += 1;
                steps.push(Step {
                    key: slot_key[k],
                    read: false,
                    value: next_value[k],
                });
            } else {
                steps.push(Step {
                    key: slot_key[k],
                    read: true,
                    value: -1,
                });
            }
        }
        let outcome = match rng.below(100) {
            0 | 1 => TxnOutcome::Fail,
            2 | 3 => TxnOutcome::Info,
            _ => TxnOutcome::Ok,
        };
        points.push((invoke + rng.below(dur + 1), i as u32));
        let process = pid[p];
        if outcome == TxnOutcome::Info {
            pid[p] = fresh;
            fresh += 1;
        }
        plan.push(Planned {
            process,
            invoke,
            complete,
            outcome,
            end: steps.len() as u32,
        });
    }
    // Run the store: each transaction at its instant. Lists only grow, so
    // a read is the length of its key's list then.
    points.sort_unstable();
    let mut store: Vec<Vec<i64>> = vec![Vec::new(); out.keys()];
    let span = |i: usize| (if i == 0 { 0 } else { plan[i - 1].end as usize })..plan[i].end as usize;
    for &(_, i) in &points {
        let t = &plan[i as usize];
        let applied = match t.outcome {
            TxnOutcome::Ok => true,
            TxnOutcome::Fail => false,
            TxnOutcome::Info => rng.chance(0.5),
        };
        let ok = t.outcome == TxnOutcome::Ok;
        for s in &mut steps[span(i as usize)] {
            let list = &mut store[s.key as usize];
            match s.read {
                false if applied => list.push(s.value),
                false => {}
                true if ok => s.value = list.len() as i64,
                true => {}
            }
        }
    }
    drop(points);
    // Into columns in the order of invocation.
    let mut order: Vec<u32> = (0..plan.len() as u32).collect();
    order.sort_unstable_by_key(|&i| (plan[i as usize].invoke, i));
    for i in order {
        let t = &plan[i as usize];
        for s in &steps[span(i as usize)] {
            match (s.read, s.value) {
                (false, v) => out.append(s.key, v),
                (true, len) if len >= 0 => {
                    out.read(s.key, Some(&store[s.key as usize][..len as usize]))
                }
                (true, _) => out.read(s.key, None),
            }
        }
        let complete = (t.outcome != TxnOutcome::Info).then_some(t.complete);
        out.finish(t.process, t.invoke, complete, t.outcome, None);
    }
    // Final reads of every key, after everything, so each order is known:
    // 1,000 keys a transaction, one after another, so that no line of the
    // history written out is longer than a reader takes.
    let mut at = clock.iter().max().copied().unwrap_or(0) + 10;
    for chunk in (0..out.keys() as u32)
        .collect::<Vec<_>>()
        .chunks(FINAL_READ_KEYS)
    {
        for &k in chunk {
            out.read(k, Some(&store[k as usize]));
        }
        out.finish(fresh, at, Some(at + 1), TxnOutcome::Ok, None);
        at += 2;
    }
    out
}

/// The anomaly classes [`plant`] can plant, each the class the checker
/// must name.
pub const PLANTABLE: [&str; 14] = [
    "G0",
    "G1a",
    "G1b",
    "G1c",
    "G-single",
    "G-single-realtime",
    "G2",
    "incompatible-order",
    "duplicate-elements",
    "garbage-read",
    "lost-append",
    "internal",
    "future-read",
    "non-monotonic-read",
];

/// Plant an anomaly of `class` (one of [`PLANTABLE`]) after the end of
/// `txns`, on keys of its own (`planted-…`), by transactions of processes
/// of their own.
pub fn plant(txns: &mut Vec<Txn>, class: &str) {
    let start = txns
        .iter()
        .flat_map(|t| [Some(t.invoke_ns), t.complete_ns])
        .flatten()
        .max()
        .unwrap_or(0)
        + 100;
    let base = txns.iter().map(|t| t.process).max().unwrap_or(0) + 1;
    let (x, y) = ("planted-x".to_string(), "planted-y".to_string());
    let ap = |k: &str, v: i64| Mop::Append {
        key: k.to_string(),
        value: v,
    };
    let rd = |k: &str, v: &[i64]| Mop::Read {
        key: k.to_string(),
        value: Some(v.to_vec()),
    };
    // (process offset, invoke, complete, outcome, mops)
    let mut add = |p: u64, at: u64, end: Option<u64>, outcome: TxnOutcome, mops: Vec<Mop>| {
        let line = txns.len();
        txns.push(Txn {
            process: base + p,
            invoke_ns: start + at,
            complete_ns: end.map(|e| start + e),
            outcome,
            mops,
            line,
        });
    };
    use TxnOutcome::{Fail, Ok};
    match class {
        // ww both ways: T1 before T2 on x, T2 before T1 on y.
        "G0" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1), ap(&y, 2)]);
            add(1, 0, Some(10), Ok, vec![ap(&x, 2), ap(&y, 1)]);
            add(2, 20, Some(21), Ok, vec![rd(&x, &[1, 2]), rd(&y, &[1, 2])]);
        }
        // A failed transaction's append, read.
        "G1a" => {
            add(0, 0, Some(10), Fail, vec![ap(&x, 1)]);
            add(1, 20, Some(21), Ok, vec![rd(&x, &[1])]);
        }
        // A read of the first of a transaction's two appends to a key.
        "G1b" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1), ap(&x, 2)]);
            add(1, 5, Some(15), Ok, vec![rd(&x, &[1])]);
            add(2, 20, Some(21), Ok, vec![rd(&x, &[1, 2])]);
        }
        // Each reads the other's append: wr both ways.
        "G1c" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1), rd(&y, &[1])]);
            add(1, 0, Some(10), Ok, vec![ap(&y, 1), rd(&x, &[1])]);
        }
        // Read skew: T2 sees T1's append to x but not to y, concurrently.
        "G-single" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1), ap(&y, 1)]);
            add(1, 0, Some(10), Ok, vec![rd(&x, &[1]), rd(&y, &[])]);
            add(2, 20, Some(21), Ok, vec![rd(&y, &[1])]);
        }
        // A stale read: begun after the append completed, without it.
        "G-single-realtime" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1)]);
            add(1, 20, Some(30), Ok, vec![rd(&x, &[])]);
            add(2, 40, Some(41), Ok, vec![rd(&x, &[1])]);
        }
        // Write skew: each read what the other appends to, on one snapshot.
        "G2" => {
            add(0, 0, Some(10), Ok, vec![rd(&x, &[]), ap(&y, 1)]);
            add(1, 0, Some(10), Ok, vec![rd(&y, &[]), ap(&x, 1)]);
            add(2, 20, Some(21), Ok, vec![rd(&x, &[1]), rd(&y, &[1])]);
        }
        "incompatible-order" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1)]);
            add(1, 0, Some(10), Ok, vec![ap(&x, 2)]);
            add(2, 0, Some(10), Ok, vec![ap(&x, 3)]);
            add(3, 20, Some(21), Ok, vec![rd(&x, &[1, 2])]);
            add(4, 20, Some(21), Ok, vec![rd(&x, &[1, 3])]);
        }
        "duplicate-elements" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1)]);
            add(1, 20, Some(21), Ok, vec![rd(&x, &[1, 1])]);
        }
        // A read of an element nobody appended.
        "garbage-read" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1)]);
            add(1, 20, Some(21), Ok, vec![rd(&x, &[1, 7])]);
        }
        "lost-append" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1)]);
            add(1, 0, Some(10), Ok, vec![ap(&x, 2)]);
            add(2, 20, Some(21), Ok, vec![rd(&x, &[2])]);
        }
        "internal" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1), rd(&x, &[])]);
            add(1, 20, Some(21), Ok, vec![rd(&x, &[1])]);
        }
        // A read of the transaction's own later append.
        "future-read" => {
            add(0, 0, Some(10), Ok, vec![rd(&x, &[1]), ap(&x, 1)]);
            add(1, 20, Some(21), Ok, vec![rd(&x, &[1])]);
        }
        // One process reads two elements, then one.
        "non-monotonic-read" => {
            add(0, 0, Some(10), Ok, vec![ap(&x, 1), ap(&x, 2)]);
            add(1, 20, Some(21), Ok, vec![rd(&x, &[1, 2])]);
            add(1, 30, Some(31), Ok, vec![rd(&x, &[1])]);
        }
        other => panic!("no way to plant {other}"),
    }
}

/// One benchmark row: a correct history of `shape` generated, then
/// checked (strict serializability); the row says how long each took and
/// the process's peak memory (run each row in a process of its own).
pub fn bench_row(shape: Shape) -> String {
    let t0 = std::time::Instant::now();
    let h = correct_columns(shape, 1);
    let gen_s = t0.elapsed().as_secs_f64();
    let appends: usize = (0..h.len())
        .flat_map(|t| h.mops(t))
        .filter(|m| matches!(m, super::columns::View::Append(..)))
        .count();
    let t1 = std::time::Instant::now();
    let r = match super::check_columns(&h, super::Consistency::StrictSerializable) {
        Ok(r) => r,
        Err(e) => return format!("append: the generated history cannot be judged: {e}"),
    };
    let secs = t1.elapsed().as_secs_f64();
    format!(
        "append: {} txns of 1-{} micro-ops ({} appends) over {} keys: {} in {:.2} s ({:.0} txns/s; generated in {:.2} s), {} edges, peak RSS {:.0} MiB",
        h.len(),
        shape.max_mops,
        appends,
        shape.keys,
        if r.valid { "valid" } else { "ANOMALIES" },
        secs,
        h.len() as f64 / secs.max(1e-9),
        gen_s,
        r.edges,
        crate::bench::peak_rss_mib()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elle::{check, Consistency, Mop, Txn};

    /// The benchmark's history in columns, written one transaction at a time
    /// and read back, is the same history; its final reads cover every key's
    /// whole list, 1,000 keys at most a line.
    #[test]
    fn a_generated_history_in_columns_is_written_whole_in_lines_of_bounded_keys() {
        let shape = Shape {
            txns: 30_000,
            keys: 50,
            max_mops: 2,
            processes: 8,
            appends: 0.9,
            max_writes_per_key: 4,
        };
        let c = correct_columns(shape, 7);
        let mut text = Vec::new();
        crate::elle::history::write_jsonl_columns(&c, &mut text).unwrap();
        let back = crate::elle::history::read_jsonl(text.as_slice()).unwrap();
        let strip =
            |v: Vec<Txn>| -> Vec<Txn> { v.into_iter().map(|t| Txn { line: 0, ..t }).collect() };
        let (want, got) = (strip(c.to_txns()), strip(back));
        assert_eq!(want, got);
        // Many more keys than one final read takes.
        let keys: std::collections::BTreeSet<&str> = want
            .iter()
            .flat_map(|t| t.mops.iter().map(|m| m.key()))
            .collect();
        assert!(keys.len() > 2_500, "{} keys", keys.len());
        // The final reads: wider than any other transaction.
        let finals: Vec<&Txn> = want
            .iter()
            .filter(|t| t.mops.len() > shape.max_mops)
            .collect();
        assert!(finals
            .iter()
            .all(|t| t.mops.iter().all(|m| matches!(m, Mop::Read { .. }))));
        assert_eq!(finals.len(), keys.len().div_ceil(1_000));
        assert!(finals.iter().all(|t| t.mops.len() <= 1_000));
        let read: std::collections::BTreeSet<&str> = finals
            .iter()
            .flat_map(|t| t.mops.iter().map(|m| m.key()))
            .collect();
        assert_eq!(read, keys);
        assert!(check(&want, Consistency::StrictSerializable).unwrap().valid);
    }
}
