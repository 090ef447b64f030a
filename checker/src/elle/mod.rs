//! An Elle-style checker for list-append transactions (Kingsbury and
//! Alvaro, "Elle: Inferring Isolation Anomalies from Experimental
//! Observations", VLDB 2020). Every read returns a key's whole list, and
//! every appended value is unique per key, so the order of the appends to
//! a key can be read off the history (the longest read; every other read
//! must be a prefix of it) instead of searched for. Anomalies then become
//! cycles in a graph of transactions:
//!
//! - **ww**: T1 appended the element just before T2's in a key's order;
//! - **wr**: T2 read a list whose last element T1 appended;
//! - **rw**: T1 read a list, and T2 appended the element just after it;
//! - **rt** (strict serializability only): T1 completed before T2 began.
//!
//! A cycle of ww edges only is G0 (dirty write); of ww and wr, G1c
//! (circular information flow); with exactly one rw edge, G-single (read
//! skew); with more, G2 (write skew and the like). A cycle that needs an rt
//! edge gets the `-realtime` suffix: serializable, not strictly so. Besides
//! cycles: G1a (a read of a failed transaction's append), G1b (a read of an
//! append that its own transaction followed with another to the same key),
//! incompatible orders (two reads neither a prefix of the other), duplicated
//! elements, lost appends (acknowledged, absent from a read that began after
//! it ended), internal inconsistency (a transaction that does not see its
//! own earlier appends) and non-monotonic reads of one process.
//!
//! The work is linear in the history's size plus the reads' lengths: one
//! pass for the orders, one for the edges, Tarjan's strongly connected
//! components, then a breadth-first search for a shortest cycle of each
//! class inside each component (bounded per component).

pub mod gen;
mod graph;
pub mod history;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A fast, non-cryptographic hasher for the checker's maps (the
/// multiply-rotate of rustc's FxHasher): histories are not adversarial
/// inputs to a hash table, and the default SipHash dominated the profile.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A hash map with [`Fx`].
pub(crate) type Map<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

use serde::{Deserialize, Serialize};

pub use graph::{Edge, EdgeKind};

/// One micro-operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mop {
    /// Append `value` to `key`'s list.
    Append {
        /// The key.
        key: String,
        /// The value (unique per key).
        value: i64,
    },
    /// Read `key`'s list: `None` when unknown (not completed ok).
    Read {
        /// The key.
        key: String,
        /// The list read.
        value: Option<Vec<i64>>,
    },
}

impl Mop {
    /// Its key.
    pub fn key(&self) -> &str {
        match self {
            Mop::Append { key, .. } | Mop::Read { key, .. } => key,
        }
    }
}

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxnOutcome {
    /// Committed; its reads are known.
    Ok,
    /// Certainly did not commit.
    Fail,
    /// Unknown: it may have committed.
    Info,
}

/// One transaction of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// The client process.
    pub process: u64,
    /// When it was invoked, ns.
    pub invoke_ns: u64,
    /// When it completed, ns (none: never, for `info`).
    pub complete_ns: Option<u64>,
    /// How it ended.
    pub outcome: TxnOutcome,
    /// Its micro-operations, in order; the reads of an `ok` transaction
    /// carry their lists.
    pub mops: Vec<Mop>,
    /// Its line in the history file (the completion's, or the invoke's).
    pub line: usize,
}

/// The consistency model a history is judged against (strict
/// serializable by default).
pub use faultline_rundir::spec::Consistency;

/// One anomaly found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Its class: `G0`, `G1a`, `G1b`, `G1c`, `G-single`, `G2` (a cycle
    /// needing real time adds `-realtime`), `incompatible-order`,
    /// `duplicate-elements`, `lost-append`, `internal`, `non-monotonic-read`.
    pub class: String,
    /// The transactions involved (indexes into the history's list), in
    /// the cycle's order for a cycle.
    pub txns: Vec<usize>,
    /// For a cycle: the edge from each transaction to the next (the last
    /// back to the first).
    pub edges: Vec<Edge>,
    /// In words.
    pub explanation: String,
}

/// What the checker found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElleReport {
    /// No anomaly of the model.
    pub valid: bool,
    /// Every anomaly, at most [`MAX_PER_CLASS`] of each class.
    pub anomalies: Vec<Anomaly>,
    /// How many of each class were found (before the cap).
    pub counts: std::collections::BTreeMap<String, usize>,
    /// Transactions, edges and non-trivial components, for the record.
    pub txns: usize,
    /// Edges of the dependency graph.
    pub edges: usize,
    /// Strongly connected components with more than one transaction.
    pub cyclic_components: usize,
}

/// The most anomalies of one class kept in a report.
pub const MAX_PER_CLASS: usize = 8;

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

/// A list as the explanations write it: `[1 2 3]`, long ones cut.
pub fn show(list: &[i64]) -> String {
    const MAX: usize = 8;
    let mut s: Vec<String> = list.iter().take(MAX).map(|v| v.to_string()).collect();
    if list.len() > MAX {
        s.push(format!("… ({} in all)", list.len()));
    }
    format!("[{}]", s.join(" "))
}
