//! The anomalies that are not cycles, read by read: incompatible orders,
//! duplicated elements, aborted (G1a) and intermediate (G1b) reads, reads
//! of elements nobody appended (garbage), internal inconsistency, reads of
//! a transaction's own later appends (future reads), lost appends and
//! non-monotonic reads.

use super::columns::View;
use super::index::Index;
use super::{show, Anomaly, Found, Map, TxnOutcome};

/// An anomaly outside cycles: its class, transactions and words.
fn outside(class: &str, txns: Vec<usize>, explanation: String) -> Anomaly {
    Anomaly {
        class: class.into(),
        txns,
        edges: Vec::new(),
        explanation,
    }
}

/// Every such anomaly of the history.
pub(crate) fn check(ix: &Index<'_>, found: &mut Found) {
    let c = ix.c;
    let mut own: Map<u32, Vec<i64>> = Map::default();
    // (key, element) read though never appended → a transaction that read it.
    let mut garbage: Map<(u32, i64), usize> = Map::default();
    // This transaction's latest read of each key, and whether it is a
    // prefix of the key's order (a future read).
    let mut last_read: Map<u32, (&[i64], bool)> = Map::default();
    for t in 0..c.len() {
        if c.outcome(t) != TxnOutcome::Ok {
            continue;
        }
        // This transaction's appends so far, per key, when it also reads
        // (internal consistency).
        let both = c.mops(t).any(|m| matches!(m, View::Append(..)))
            && c.mops(t).any(|m| matches!(m, View::Read(..)));
        own.clear();
        last_read.clear();
        for (m, shared) in c.mops_flagged(t) {
            match m {
                View::Append(k, v) if both => {
                    if let Some(&(list, prefix)) = last_read.get(&k) {
                        future_read(ix, t, k, v, list, prefix, found);
                    }
                    own.entry(k).or_default().push(v);
                }
                View::Append(..) | View::Read(_, None) => {}
                View::Read(k, Some(list)) => {
                    let prefix = ix.agrees(k, list, shared);
                    if both {
                        last_read.insert(k, (list, prefix));
                    }
                    read(ix, t, k, list, prefix, found);
                    if !prefix {
                        // A prefix of the order is looked at once, below.
                        for &v in list.iter().filter(|v| ix.writer(k, **v).is_none()) {
                            garbage.entry((k, v)).or_insert(t);
                        }
                    }
                    if let Some(mine) = own.get(&k) {
                        internal(ix, t, k, list, mine, found);
                    }
                }
            }
        }
    }
    garbage_reads(ix, garbage, found);
    lost_appends(ix, found);
    non_monotonic(ix, found);
}

/// Elements read that no transaction of the history appended to their
/// key, each (key, element) once: in each key's order (read by the
/// transaction that read the order) and in `elsewhere`, the reads that
/// disagree with it.
fn garbage_reads(ix: &Index<'_>, mut elsewhere: Map<(u32, i64), usize>, found: &mut Found) {
    let c = ix.c;
    for k in 0..c.keys() as u32 {
        for &v in ix.order(k) {
            if ix.writer(k, v).is_none() {
                elsewhere.insert((k, v), ix.longest[k as usize] as usize);
            }
        }
    }
    let mut all: Vec<((u32, i64), usize)> = elsewhere.into_iter().collect();
    all.sort_unstable();
    for ((k, v), t) in all {
        const CLASS: &str = "garbage-read";
        if !found.keeps(CLASS) {
            found.add(outside(CLASS, vec![t], String::new()));
            continue;
        }
        let key = c.name(k);
        let list = c
            .reads(t)
            .find(|(rk, l, _)| *rk == k && l.contains(&v))
            .map_or_else(String::new, |(_, l, _)| format!(" = {}", show(l)));
        found.add(outside(
            CLASS,
            vec![t],
            format!(
                "T{t} read {key}{list}, which holds {v}, but no transaction appended {v} to {key} (a read of a value nobody wrote)"
            ),
        ));
    }
}

/// One ok read's own anomalies (`prefix`: it is a prefix of its key's
/// order).
fn read(ix: &Index<'_>, t: usize, k: u32, list: &[i64], prefix: bool, found: &mut Found) {
    let c = ix.c;
    let key = c.name(k);
    if !prefix {
        let lt = ix.longest[k as usize] as usize;
        found.add(outside(
            "incompatible-order",
            vec![t, lt],
            format!(
                "T{t} read {key} = {} and T{lt} read {key} = {}: neither is a prefix of the other, so no order of appends explains both",
                show(list),
                show(ix.order(k))
            ),
        ));
    }
    if let Some(v) = ix.repeated(k, list, prefix) {
        found.add(outside(
            "duplicate-elements",
            vec![t],
            format!("T{t} read {key} = {}: {v} appears twice", show(list)),
        ));
    }
    for (v, w) in ix.failed_in(k, list, prefix) {
        found.add(outside(
            "G1a",
            vec![t, w],
            format!(
                "T{t} read {key} = {}, which holds {v}, appended by T{w}, which failed (an aborted read)",
                show(list)
            ),
        ));
    }
    // The last element read: its writer's final append to this key,
    // unless the reader is the writer itself.
    let Some(&v) = list.last() else { return };
    let Some(w) = ix.writer(k, v) else { return };
    if let (true, Some(last)) = (w != t, ix.appended_after(k, v, w)) {
        found.add(outside(
            "G1b",
            vec![t, w],
            format!(
                "T{t} read {key} = {}, ending at {v}, an intermediate state of T{w}, which went on to append {last} to {key} (an intermediate read)",
                show(list),
            ),
        ));
    }
}

/// `t` appends `v` to `k` after reading `list` of `k`: a read that already
/// held `v` saw the transaction's own future write.
fn future_read(
    ix: &Index<'_>,
    t: usize,
    k: u32,
    v: i64,
    list: &[i64],
    prefix: bool,
    found: &mut Found,
) {
    // In a prefix of the order, `v` is held exactly when its place in the
    // order is inside the list: no scan of a long list per append.
    let held = if prefix {
        ix.pos(k, v).is_some_and(|p| p < list.len())
    } else {
        list.contains(&v)
    };
    if held {
        let key = ix.c.name(k);
        found.add(outside(
            "future-read",
            vec![t],
            format!(
                "T{t} read {key} = {}, which holds {v}, and then appended {v} to {key} itself (a read of its own future write)",
                show(list)
            ),
        ));
    }
}

/// A read of `t` that does not end with the appends `t` made to its key
/// before it (`mine`).
fn internal(ix: &Index<'_>, t: usize, k: u32, list: &[i64], mine: &[i64], found: &mut Found) {
    if !list.ends_with(mine) {
        let key = ix.c.name(k);
        found.add(outside(
            "internal",
            vec![t],
            format!(
                "T{t} appended {} to {key} and then read {key} = {}, which does not end with them",
                show(mine),
                show(list)
            ),
        ));
    }
}

/// An acknowledged append absent from every read, though a read of its
/// key began after the append's transaction completed.
fn lost_appends(ix: &Index<'_>, found: &mut Found) {
    let c = ix.c;
    // Per key, the ok read that began last: (invoke time, reader).
    let mut latest: Vec<Option<(u64, usize)>> = vec![None; c.keys()];
    for t in (0..c.len()).filter(|t| c.outcome(*t) == TxnOutcome::Ok) {
        for (k, _, _) in c.reads(t) {
            let e = &mut latest[k as usize];
            if e.is_none_or(|(at, _)| c.invoke(t) > at) {
                *e = Some((c.invoke(t), t));
            }
        }
    }
    for k in 0..c.keys() as u32 {
        let Some((began, reader)) = latest[k as usize] else {
            continue;
        };
        let appends = ix.appends(k);
        for (i, a) in appends.iter().enumerate() {
            if i > 0 && appends[i - 1].value == a.value {
                continue; // not the value's first append
            }
            let w = a.txn as usize;
            let done = match (c.outcome(w), c.completed(w)) {
                (TxnOutcome::Ok, Some(done)) => done,
                _ => continue,
            };
            if ix.pos(k, a.value).is_none() && began > done {
                found.add(outside(
                    "lost-append",
                    vec![w, reader],
                    format!(
                        "T{w} appended {} to {} and completed, and no read ever showed it, though T{reader} read {} after that",
                        a.value,
                        c.name(k),
                        c.name(k)
                    ),
                ));
            }
        }
    }
}

/// A process that read a key's list and later a shorter prefix of it.
fn non_monotonic(ix: &Index<'_>, found: &mut Found) {
    let c = ix.c;
    // The ok transactions in invocation order (the history's order, unless
    // it is not sorted).
    let mut by_time: Vec<u32> = (0..c.len() as u32)
        .filter(|t| c.outcome(*t as usize) == TxnOutcome::Ok)
        .collect();
    if by_time
        .windows(2)
        .any(|w| c.invoke(w[0] as usize) > c.invoke(w[1] as usize))
    {
        by_time.sort_by_key(|t| (c.invoke(*t as usize), *t));
    }
    // (process, key) → the longest read so far: (reader, length).
    let mut last: Map<(u64, u32), (usize, usize)> = Map::default();
    for t in by_time {
        let t = t as usize;
        let p = c.process(t);
        for (k, list, _) in c.reads(t) {
            let e = last.entry((p, k)).or_insert((t, list.len()));
            if list.len() < e.1 {
                found.add(outside(
                    "non-monotonic-read",
                    vec![e.0, t],
                    format!(
                        "process {p} read {} elements of {} in T{}, then only {} in T{t}",
                        e.1,
                        c.name(k),
                        e.0,
                        list.len()
                    ),
                ));
            } else {
                *e = (t, list.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ap, check, rd, t};
    use super::super::{Consistency, Txn, TxnOutcome};

    #[test]
    fn a_read_of_the_transactions_own_later_append_is_a_future_read() {
        use TxnOutcome::*;
        for list in [&[1][..], &[1, 5], &[5, 1]] {
            // [5 1] disagrees with x's order: looked up by a scan.
            let h = vec![
                t(0, 0, Some(10), Ok, vec![rd("x", list), ap("x", 1)]),
                t(1, 0, Some(10), Ok, vec![ap("x", 5)]),
                t(2, 20, Some(21), Ok, vec![rd("x", &[1, 5])]),
            ];
            let r = check(&h, Consistency::Serializable);
            assert_eq!(r.counts.get("future-read"), Some(&1), "{list:?}: {r:?}");
        }
        // Read before its append without it, or after it with it: fine.
        let h = vec![t(
            0,
            0,
            Some(10),
            Ok,
            vec![rd("x", &[]), ap("x", 1), rd("x", &[1])],
        )];
        assert!(check(&h, Consistency::StrictSerializable).valid);
    }

    #[test]
    fn an_element_nobody_appended_to_its_key_is_a_garbage_read_once() {
        use TxnOutcome::*;
        // 5 was appended, but to y; 7 never; both read twice, once in a read
        // that disagrees with x's order ([1 5 7]).
        let h = vec![
            t(0, 0, Some(10), Ok, vec![ap("x", 1), ap("y", 5)]),
            t(1, 20, Some(21), Ok, vec![rd("x", &[1, 5, 7])]),
            t(2, 20, Some(21), Ok, vec![rd("x", &[1, 5])]),
            t(3, 20, Some(21), Ok, vec![rd("x", &[7, 5])]),
        ];
        let garbage = |h: &[Txn], n: usize| {
            let r = check(h, Consistency::Serializable);
            assert_eq!(r.counts.get("garbage-read"), Some(&n), "{r:?}");
            r.anomalies
                .into_iter()
                .find(|a| a.class == "garbage-read")
                .unwrap()
        };
        let a = garbage(&h, 2);
        assert_eq!(a.txns, [1]);
        assert!(
            a.explanation.contains("no transaction appended 5 to x"),
            "{a:?}"
        );
        // Only in the read that disagrees: found there.
        let h = vec![
            t(0, 0, Some(10), Ok, vec![ap("x", 1)]),
            t(1, 20, Some(21), Ok, vec![rd("x", &[1])]),
            t(2, 20, Some(21), Ok, vec![rd("x", &[9])]),
        ];
        assert_eq!(garbage(&h, 1).txns, [2]);
    }
}
