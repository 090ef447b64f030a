#![allow(dead_code, clippy::all)]
mod graph;
use super::{MAX_PER_CLASS, Anomaly, Consistency, ElleReport, Mop, Txn, TxnOutcome, Map, Fx, show};
use std::hash::BuildHasherDefault;
/// A key's appends in the order the reads show, and who wrote each.
struct KeyOrder {
    /// The longest list read.
    order: Vec<i64>,
    /// Value → its position in `order`.
    position: Map<i64, usize>,
}

/// Check `txns` against `model`.
pub fn check(txns: &[Txn], model: Consistency) -> ElleReport {
    let mut found = Found::default();
    // Who appended each (key, value): the first transaction that did.
    let mut writer: Map<(&str, i64), usize> = Map::default();
    // Each transaction's last append to each key (for G1b).
    let mut last_append: Map<(usize, &str), i64> = Map::default();
    for (t, txn) in txns.iter().enumerate() {
        for m in &txn.mops {
            if let Mop::Append { key, value } = m {
                writer.entry((key.as_str(), *value)).or_insert(t);
                last_append.insert((t, key.as_str()), *value);
            }
        }
    }
    let orders = key_orders(txns, &mut found);
    internal_and_reads(txns, &orders, &writer, &last_append, &mut found);
    lost_appends(txns, &orders, &writer, &mut found);
    non_monotonic(txns, &orders, &mut found);
    let view = orders_view(&orders);
    let g = graph::build(txns, &view, &writer, model);
    let ctx = graph::Context {
        txns,
        orders: &view,
        writer: &writer,
    };
    let (edges, cyclic) = (g.edge_count(), g.cycles(&ctx, &mut found));
    let counts = found.counts.clone();
    ElleReport {
        valid: found.anomalies.is_empty(),
        anomalies: found.anomalies,
        counts,
        txns: txns.len(),
        edges,
        cyclic_components: cyclic,
    }
}

/// Anomalies as they are found, capped per class.
#[derive(Default)]
pub(crate) struct Found {
    anomalies: Vec<Anomaly>,
    counts: std::collections::BTreeMap<String, usize>,
}

impl Found {
    pub(crate) fn add(&mut self, a: Anomaly) {
        let n = self.counts.entry(a.class.clone()).or_insert(0);
        *n += 1;
        if *n <= MAX_PER_CLASS {
            self.anomalies.push(a);
        }
    }
}

/// A key's order as the graph needs it.
pub(crate) type OrdersView<'a> = Map<&'a str, &'a [i64]>;

fn orders_view(orders: &Map<String, KeyOrder>) -> OrdersView<'_> {
    orders
        .iter()
        .map(|(k, o)| (k.as_str(), o.order.as_slice()))
        .collect()
}

fn ok_reads(txns: &[Txn]) -> impl Iterator<Item = (usize, &str, &[i64])> {
    txns.iter()
        .enumerate()
        .filter(|(_, t)| t.outcome == TxnOutcome::Ok)
        .flat_map(|(i, t)| {
            t.mops.iter().filter_map(move |m| match m {
                Mop::Read {
                    key,
                    value: Some(v),
                } => Some((i, key.as_str(), v.as_slice())),
                _ => None,
            })
        })
}

/// Each key's order: its longest read; a read that is not a prefix of it
/// is an incompatible order; a read listing a value twice, duplicated
/// elements.
fn key_orders(txns: &[Txn], found: &mut Found) -> Map<String, KeyOrder> {
    let mut longest: Map<&str, (usize, &[i64])> = Map::default();
    for (t, key, list) in ok_reads(txns) {
        let e = longest.entry(key).or_insert((t, list));
        if list.len() > e.1.len() {
            *e = (t, list);
        }
    }
    for (t, key, list) in ok_reads(txns) {
        let (lt, l) = longest[key];
        if !l.starts_with(list) {
            found.add(Anomaly {
                class: "incompatible-order".into(),
                txns: vec![t, lt],
                edges: Vec::new(),
                explanation: format!(
                    "T{t} read {key} = {} and T{lt} read {key} = {}: neither is a prefix of the other, so no order of appends explains both",
                    show(list),
                    show(l)
                ),
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(list.len());
        if let Some(v) = list.iter().find(|v| !seen.insert(**v)) {
            found.add(Anomaly {
                class: "duplicate-elements".into(),
                txns: vec![t],
                edges: Vec::new(),
                explanation: format!("T{t} read {key} = {}: {v} appears twice", show(list)),
            });
        }
    }
    longest
        .into_iter()
        .map(|(k, (_, l))| {
            let position = l.iter().enumerate().map(|(i, v)| (*v, i)).collect();
            (
                k.to_string(),
                KeyOrder {
                    order: l.to_vec(),
                    position,
                },
            )
        })
        .collect()
}

/// G1a, G1b and internal consistency, read by read.
fn internal_and_reads(
    txns: &[Txn],
    orders: &Map<String, KeyOrder>,
    writer: &Map<(&str, i64), usize>,
    last_append: &Map<(usize, &str), i64>,
    found: &mut Found,
) {
    // The appends of failed transactions: what a read must not show (G1a).
    let failed: std::collections::HashSet<(&str, i64), BuildHasherDefault<Fx>> = txns
        .iter()
        .filter(|t| t.outcome == TxnOutcome::Fail)
        .flat_map(|t| &t.mops)
        .filter_map(|m| match m {
            Mop::Append { key, value } => Some((key.as_str(), *value)),
            Mop::Read { .. } => None,
        })
        .collect();
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome != TxnOutcome::Ok {
            continue;
        }
        // This transaction's own appends so far, per key.
        let mut own: Map<&str, Vec<i64>> = Map::default();
        for m in &txn.mops {
            match m {
                Mop::Append { key, value } => own.entry(key).or_default().push(*value),
                Mop::Read {
                    key,
                    value: Some(list),
                } => {
                    if let Some(mine) = own.get(key.as_str()) {
                        if !list.ends_with(mine) {
                            found.add(Anomaly {
                                class: "internal".into(),
                                txns: vec![t],
                                edges: Vec::new(),
                                explanation: format!(
                                    "T{t} appended {} to {key} and then read {key} = {}, which does not end with them",
                                    show(mine),
                                    show(list)
                                ),
                            });
                        }
                    }
                    for v in list
                        .iter()
                        .filter(|v| failed.contains(&(key.as_str(), **v)))
                    {
                        let Some(&w) = writer.get(&(key.as_str(), *v)) else {
                            continue;
                        };
                        if txns[w].outcome == TxnOutcome::Fail {
                            found.add(Anomaly {
                                class: "G1a".into(),
                                txns: vec![t, w],
                                edges: Vec::new(),
                                explanation: format!(
                                    "T{t} read {key} = {}, which holds {v}, appended by T{w}, which failed (an aborted read)",
                                    show(list)
                                ),
                            });
                        }
                    }
                    // The last element read: its writer's final append to
                    // this key, unless the reader is the writer itself.
                    if let Some(&v) = list.last() {
                        if let Some(&w) = writer.get(&(key.as_str(), v)) {
                            let last = last_append.get(&(w, key.as_str())).copied();
                            if w != t && last.is_some_and(|l| l != v) {
                                found.add(Anomaly {
                                    class: "G1b".into(),
                                    txns: vec![t, w],
                                    edges: Vec::new(),
                                    explanation: format!(
                                        "T{t} read {key} = {}, ending at {v}, an intermediate state of T{w}, which went on to append {} to {key} (an intermediate read)",
                                        show(list),
                                        last.unwrap_or_default()
                                    ),
                                });
                            }
                        }
                    }
                    let _ = orders;
                }
                Mop::Read { value: None, .. } => {}
            }
        }
    }
}

/// An acknowledged append absent from a read of its key that began after
/// the append's transaction completed.
fn lost_appends(
    txns: &[Txn],
    orders: &Map<String, KeyOrder>,
    writer: &Map<(&str, i64), usize>,
    found: &mut Found,
) {
    // Per key, the ok reads' (invoke time, length read, reader), latest first.
    let mut reads: Map<&str, Vec<(u64, usize, usize)>> = Map::default();
    for (t, key, list) in ok_reads(txns) {
        reads
            .entry(key)
            .or_default()
            .push((txns[t].invoke_ns, list.len(), t));
    }
    for v in reads.values_mut() {
        v.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
    }
    for (&(key, value), &w) in writer {
        let txn = &txns[w];
        let (TxnOutcome::Ok, Some(done)) = (txn.outcome, txn.complete_ns) else {
            continue;
        };
        let Some(rs) = reads.get(key) else { continue };
        let pos = orders
            .get(key)
            .and_then(|o| o.position.get(&value).copied());
        // The latest read that began after the append ended and does not
        // include it.
        let missed = rs
            .iter()
            .take_while(|r| r.0 > done)
            .find(|r| pos.is_none_or(|p| r.1 <= p));
        if let (Some(&(_, _, reader)), None) = (missed, pos) {
            found.add(Anomaly {
                class: "lost-append".into(),
                txns: vec![w, reader],
                edges: Vec::new(),
                explanation: format!(
                    "T{w} appended {value} to {key} and completed, and no read ever showed it, though T{reader} read {key} after that"
                ),
            });
        }
    }
}

/// A process that read a key's list and later a shorter prefix of it.
fn non_monotonic(txns: &[Txn], orders: &Map<String, KeyOrder>, found: &mut Found) {
    let mut last: Map<(u64, &str), (usize, usize)> = Map::default();
    let mut by_time: Vec<(usize, &str, &[i64])> = ok_reads(txns).collect();
    by_time.sort_by_key(|(t, _, _)| (txns[*t].invoke_ns, *t));
    for (t, key, list) in by_time {
        if !orders.contains_key(key) {
            continue;
        }
        let p = txns[t].process;
        if let Some(&(before, len)) = last.get(&(p, key)) {
            if list.len() < len {
                found.add(Anomaly {
                    class: "non-monotonic-read".into(),
                    txns: vec![before, t],
                    edges: Vec::new(),
                    explanation: format!(
                        "process {p} read {len} elements of {key} in T{before}, then only {} in T{t}",
                        list.len()
                    ),
                });
            }
        }
        let e = last.entry((p, key)).or_insert((t, list.len()));
        if list.len() >= e.1 {
            *e = (t, list.len());
        }
    }
}


#[cfg(test)]
mod differential {
    use crate::elle::gen::{correct, plant, Shape, PLANTABLE};
    use crate::elle::*;

    struct R(u64);
    impl R {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn mutate(h: &mut [Txn], r: &mut R) {
        let n = h.len();
        for _ in 0..(r.next() % 4) {
            let t = (r.next() as usize) % n;
            match r.next() % 6 {
                0 => h[t].outcome = [TxnOutcome::Ok, TxnOutcome::Fail, TxnOutcome::Info][(r.next() % 3) as usize],
                1 => {
                    for m in &mut h[t].mops {
                        if let Mop::Read { value: Some(l), .. } = m {
                            if !l.is_empty() {
                                let i = (r.next() as usize) % l.len();
                                l.remove(i);
                            }
                        }
                    }
                }
                2 => {
                    for m in &mut h[t].mops {
                        if let Mop::Read { value: Some(l), .. } = m {
                            if l.len() > 1 {
                                l.swap(0, 1);
                            }
                        }
                    }
                }
                3 => {
                    for m in &mut h[t].mops {
                        if let Mop::Read { value: Some(l), .. } = m {
                            l.push((r.next() % 5) as i64);
                        }
                    }
                }
                4 => {
                    let d = r.next() % 30;
                    h[t].invoke_ns += d;
                    if let Some(c) = h[t].complete_ns.as_mut() {
                        *c += d + r.next() % 30;
                    }
                }
                _ => {
                    for m in &mut h[t].mops {
                        if let Mop::Read { value: Some(l), .. } = m {
                            l.truncate(l.len() / 2);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn old_and_new_agree() {
        let mut r = R(88172645463325252);
        let models = [
            Consistency::StrictSerializable,
            Consistency::Serializable,
            Consistency::StrongSessionSerializable,
        ];
        let mut differ = 0;
        let mut invalid = 0;
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for seed in 0..3000u64 {
            let shape = Shape {
                txns: 20 + (seed % 60) as usize,
                keys: 1 + (seed % 4) as usize,
                max_mops: 1 + (seed % 4) as usize,
                processes: 1 + (seed % 5) as usize,
                appends: 0.5,
                max_writes_per_key: 3 + (seed % 8) as usize,
            };
            let mut h = correct(shape, seed);
            if seed % 3 == 0 {
                plant(&mut h, PLANTABLE[(seed as usize / 3) % PLANTABLE.len()]);
            }
            if seed % 2 == 1 {
                mutate(&mut h, &mut r);
            }
            for m in models {
                let a = super::check(&h, m);
                let b = check(&h, m);
                invalid += usize::from(!b.valid);
                for (c, n) in &b.counts { *seen.entry(c.clone()).or_default() += n; }
                if (a.valid, &a.counts, a.cyclic_components) != (b.valid, &b.counts, b.cyclic_components) {
                    differ += 1;
                    if differ < 5 {
                        eprintln!("seed {seed} {m:?}: old {:?} {} new {:?} {}", a.counts, a.cyclic_components, b.counts, b.cyclic_components);
                    }
                }
            }
        }
        eprintln!("invalid {invalid} classes {seen:?}");
        assert_eq!(differ, 0);
    }
}
