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
//! elements, garbage reads (an element no transaction appended to its
//! key), lost appends (acknowledged, absent from a read that began after
//! it ended), internal inconsistency (a transaction that does not see its
//! own earlier appends), future reads (one that sees its own later append)
//! and non-monotonic reads of one process.
//!
//! The work is linear in the history's size plus the reads' lengths: the
//! history in columns ([`columns`]: keys as numbers, each key's agreeing
//! reads stored once), an index of each key's appends and order
//! (`index.rs`), one pass for the anomalies that are not cycles
//! (`reads.rs`), the graph in compressed rows, Tarjan's strongly connected
//! components, then a breadth-first search for a shortest cycle of each
//! class inside each component (bounded per component). About 2 M
//! single-key transactions a second and 120 bytes each
//! (docs/benchmarks.md).

pub mod columns;
pub mod gen;
mod graph;
pub mod history;
mod index;
mod reads;
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

pub use columns::Columns;
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
    /// `duplicate-elements`, `garbage-read`, `lost-append`, `internal`,
    /// `future-read`, `non-monotonic-read`.
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

/// Check `txns` against `model`; an error when the history cannot be
/// judged (a value appended to a key twice).
pub fn check(txns: &[Txn], model: Consistency) -> Result<ElleReport, String> {
    check_columns(&Columns::from_txns(txns), model)
}

/// Check a history in columns against `model` (what [`check`] does after
/// putting its transactions in columns).
pub fn check_columns(c: &Columns, model: Consistency) -> Result<ElleReport, String> {
    let mut found = Found::default();
    let ix = index::Index::new(c)?;
    reads::check(&ix, &mut found);
    let g = graph::build(&ix, model);
    let (edges, cyclic) = (g.edge_count(), g.cycles(&ix, &mut found));
    let counts = found.counts.clone();
    Ok(ElleReport {
        valid: found.anomalies.is_empty(),
        anomalies: found.anomalies,
        counts,
        txns: c.len(),
        edges,
        cyclic_components: cyclic,
    })
}

/// Anomalies as they are found, capped per class.
#[derive(Default)]
pub(crate) struct Found {
    anomalies: Vec<Anomaly>,
    counts: std::collections::BTreeMap<String, usize>,
}

impl Found {
    /// Whether the next anomaly of `class` would be kept (its words are
    /// worth making).
    pub(crate) fn keeps(&self, class: &str) -> bool {
        self.counts.get(class).is_none_or(|n| *n < MAX_PER_CLASS)
    }

    pub(crate) fn add(&mut self, a: Anomaly) {
        let n = self.counts.entry(a.class.clone()).or_insert(0);
        *n += 1;
        if *n <= MAX_PER_CLASS {
            self.anomalies.push(a);
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
