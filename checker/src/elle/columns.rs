//! A list-append history in columns, as the checker works on it: keys
//! interned to numbers, one array per field of a transaction, the
//! micro-operations of all transactions in one array, and the lists read
//! stored once per key. A history of ten million transactions in
//! [`Txn`]s (a `String` per key of every micro-operation, a `Vec` per
//! read) would not fit in the checker's memory budget; in columns it
//! takes about 50 bytes a transaction.
//!
//! Reads share storage: each key keeps the longest list that the ok
//! reads so far agree on (each a prefix of the next), and a read that
//! agrees with it is stored as a length. Only a read that disagrees (an
//! incompatible order, already an anomaly) keeps a list of its own.

use super::{Map, Mop, Txn, TxnOutcome};

/// One micro-operation: its key, and either the value appended or where
/// the list read is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cell {
    pub key: u32,
    /// [`APPEND`], [`UNKNOWN`], or the length of the list read.
    len: u32,
    /// The value appended; for a read, [`SHARED`] (a prefix of the key's
    /// shared list) or the list's start in [`Columns::lists`].
    value: i64,
}

const APPEND: u32 = u32::MAX;
const UNKNOWN: u32 = u32::MAX - 1;
const SHARED: i64 = -1;

/// A micro-operation as the checker reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum View<'a> {
    /// `append(key, value)`.
    Append(u32, i64),
    /// `read(key)`: the list, when known.
    Read(u32, Option<&'a [i64]>),
}

/// A staged micro-operation of the transaction being built.
#[derive(Clone, Copy)]
enum Staged {
    Append(u32, i64),
    /// A read: its key and its list's place in `staged_lists`, if known.
    Read(u32, Option<(usize, usize)>),
}

/// A history in columns (see the module's comment).
#[derive(Default)]
pub struct Columns {
    /// Each key's name, by number.
    names: Vec<String>,
    ids: Map<String, u32>,
    process: Vec<u64>,
    invoke: Vec<u64>,
    /// `u64::MAX` when it never completed.
    complete: Vec<u64>,
    outcome: Vec<TxnOutcome>,
    /// Where each transaction's micro-operations are in `cells` (a
    /// transaction begun but not finished has none yet: a reader places
    /// them when it completes).
    spans: Vec<(u32, u32)>,
    cells: Vec<Cell>,
    /// The lists of reads that disagree with their key's shared list.
    lists: Vec<i64>,
    /// Per key: the longest list its ok reads agree on.
    shared: Vec<Vec<i64>>,
    /// Each transaction's line in its file (empty: its index).
    lines: Vec<u64>,
    /// The transaction being built.
    staged: Vec<Staged>,
    staged_lists: Vec<i64>,
}

impl std::fmt::Debug for Columns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Columns({} transactions, {} keys)",
            self.len(),
            self.keys()
        )
    }
}

impl Columns {
    /// An empty history.
    pub fn new() -> Columns {
        Columns::default()
    }

    /// The number of `name` (a new one when first seen).
    pub fn key(&mut self, name: &str) -> u32 {
        if let Some(&k) = self.ids.get(name) {
            return k;
        }
        let k = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), k);
        self.shared.push(Vec::new());
        k
    }

    /// Stage `append(key, value)` for the next transaction.
    pub fn append(&mut self, key: u32, value: i64) {
        self.staged.push(Staged::Append(key, value));
    }

    /// Stage `read(key)` with its list (none: unknown) for the next
    /// transaction.
    pub fn read(&mut self, key: u32, list: Option<&[i64]>) {
        let at = list.map(|l| {
            let start = self.staged_lists.len();
            self.staged_lists.extend_from_slice(l);
            (start, l.len())
        });
        self.staged.push(Staged::Read(key, at));
    }

    /// Stage `mops` for the next transaction, their keys by name.
    pub fn stage(&mut self, mops: &[Mop]) {
        for m in mops {
            match m {
                Mop::Append { key, value } => {
                    let k = self.key(key);
                    self.append(k, *value);
                }
                Mop::Read { key, value } => {
                    let k = self.key(key);
                    self.read(k, value.as_deref());
                }
            }
        }
    }

    /// Add a transaction whose micro-operations were staged. `line`: its
    /// line in a file, when it has one.
    pub fn finish(
        &mut self,
        process: u64,
        invoke_ns: u64,
        complete_ns: Option<u64>,
        outcome: TxnOutcome,
        line: Option<u64>,
    ) {
        let t = self.begin(process, invoke_ns, line);
        self.complete(t, complete_ns, outcome, line);
    }

    /// Add a transaction as it is invoked, to be completed later with
    /// [`Columns::complete`]: a history keeps invocation order though the
    /// micro-operations (and the lists read) come with the completion.
    pub fn begin(&mut self, process: u64, invoke_ns: u64, line: Option<u64>) -> usize {
        let t = self.invoke.len();
        self.process.push(process);
        self.invoke.push(invoke_ns);
        self.complete.push(u64::MAX);
        self.outcome.push(TxnOutcome::Info);
        self.spans.push((0, 0));
        self.set_line(t, line);
        t
    }

    /// Complete transaction `t` with the staged micro-operations.
    pub fn complete(
        &mut self,
        t: usize,
        complete_ns: Option<u64>,
        outcome: TxnOutcome,
        line: Option<u64>,
    ) {
        let staged = std::mem::take(&mut self.staged);
        let lists = std::mem::take(&mut self.staged_lists);
        let start = self.cells.len() as u32;
        for s in &staged {
            let cell = match *s {
                Staged::Append(key, value) => Cell {
                    key,
                    len: APPEND,
                    value,
                },
                Staged::Read(key, None) => Cell {
                    key,
                    len: UNKNOWN,
                    value: 0,
                },
                Staged::Read(key, Some((start, len))) => {
                    self.stored_read(key, &lists[start..start + len], outcome == TxnOutcome::Ok)
                }
            };
            self.cells.push(cell);
        }
        self.staged = staged;
        self.staged.clear();
        self.staged_lists = lists;
        self.staged_lists.clear();
        self.spans[t] = (start, self.cells.len() as u32);
        self.complete[t] = complete_ns.unwrap_or(u64::MAX);
        self.outcome[t] = outcome;
        self.set_line(t, line);
    }

    fn set_line(&mut self, t: usize, line: Option<u64>) {
        let Some(l) = line else { return };
        while self.lines.len() <= t {
            self.lines.push(self.lines.len() as u64);
        }
        self.lines[t] = l;
    }

    /// Where a read's list goes: as a length of its key's shared list
    /// when an ok read agrees with it (extending it when longer), else a
    /// list of its own.
    fn stored_read(&mut self, key: u32, list: &[i64], ok: bool) -> Cell {
        let len = list.len() as u32;
        let shared = &mut self.shared[key as usize];
        if ok && list.len() < UNKNOWN as usize {
            if shared.starts_with(list) {
                return Cell {
                    key,
                    len,
                    value: SHARED,
                };
            }
            if list.starts_with(shared) {
                let have = shared.len();
                shared.extend_from_slice(&list[have..]);
                return Cell {
                    key,
                    len,
                    value: SHARED,
                };
            }
        }
        let start = self.lists.len() as i64;
        self.lists.extend_from_slice(list);
        Cell {
            key,
            len,
            value: start,
        }
    }

    /// Transactions.
    pub fn len(&self) -> usize {
        self.invoke.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.invoke.is_empty()
    }

    /// Keys.
    pub(crate) fn keys(&self) -> usize {
        self.names.len()
    }

    /// Key `k`'s name.
    pub(crate) fn name(&self, k: u32) -> &str {
        &self.names[k as usize]
    }

    pub(crate) fn process(&self, t: usize) -> u64 {
        self.process[t]
    }

    pub(crate) fn invoke(&self, t: usize) -> u64 {
        self.invoke[t]
    }

    /// When `t` completed, if it did.
    pub(crate) fn completed(&self, t: usize) -> Option<u64> {
        Some(self.complete[t]).filter(|c| *c != u64::MAX)
    }

    pub(crate) fn outcome(&self, t: usize) -> TxnOutcome {
        self.outcome[t]
    }

    /// Transaction `t`'s line in its file (its index when it has none).
    pub fn line(&self, t: usize) -> u64 {
        self.lines.get(t).copied().unwrap_or(t as u64)
    }

    /// `t`'s micro-operations.
    pub(crate) fn mops(&self, t: usize) -> impl Iterator<Item = View<'_>> + Clone {
        let (start, end) = self.spans[t];
        self.cells[start as usize..end as usize]
            .iter()
            .map(|c| self.view(c))
    }

    fn view(&self, c: &Cell) -> View<'_> {
        match (c.len, c.value) {
            (APPEND, v) => View::Append(c.key, v),
            (UNKNOWN, _) => View::Read(c.key, None),
            (len, SHARED) => View::Read(c.key, Some(&self.shared[c.key as usize][..len as usize])),
            (len, start) => {
                let start = start as usize;
                View::Read(c.key, Some(&self.lists[start..start + len as usize]))
            }
        }
    }

    /// `t`'s micro-operations, each with whether it is a read stored as
    /// a prefix of its key's shared list.
    pub(crate) fn mops_flagged(&self, t: usize) -> impl Iterator<Item = (View<'_>, bool)> {
        let (start, end) = self.spans[t];
        self.cells[start as usize..end as usize].iter().map(|c| {
            (
                self.view(c),
                c.len != APPEND && c.len != UNKNOWN && c.value == SHARED,
            )
        })
    }

    /// `t`'s reads whose lists are known, with whether each agrees with
    /// its key's shared list (a prefix of it).
    pub(crate) fn reads(&self, t: usize) -> impl Iterator<Item = (u32, &[i64], bool)> + '_ {
        let (start, end) = self.spans[t];
        self.cells[start as usize..end as usize]
            .iter()
            .filter(|c| c.len != APPEND && c.len != UNKNOWN)
            .map(|c| {
                let View::Read(k, Some(l)) = self.view(c) else {
                    unreachable!("a known read")
                };
                (k, l, c.value == SHARED)
            })
    }

    /// Key `k`'s shared list: the longest its agreeing ok reads show.
    pub(crate) fn shared(&self, k: u32) -> &[i64] {
        &self.shared[k as usize]
    }

    /// Every micro-operation of every transaction, with its transaction.
    pub(crate) fn all_cells(&self) -> impl Iterator<Item = (usize, View<'_>)> + '_ {
        (0..self.len()).flat_map(move |t| self.mops(t).map(move |m| (t, m)))
    }

    /// The history of `txns`.
    pub fn from_txns(txns: &[Txn]) -> Columns {
        let mut c = Columns::new();
        for t in txns {
            c.stage(&t.mops);
            c.finish(
                t.process,
                t.invoke_ns,
                t.complete_ns,
                t.outcome,
                Some(t.line as u64),
            );
        }
        c
    }

    /// The history as [`Txn`]s (each `line` its file's, or its index).
    pub fn to_txns(&self) -> Vec<Txn> {
        (0..self.len()).map(|t| self.txn(t)).collect()
    }

    /// Transaction `t` as a [`Txn`] (its `line` its file's, or its index).
    pub fn txn(&self, t: usize) -> Txn {
        Txn {
            process: self.process(t),
            invoke_ns: self.invoke(t),
            complete_ns: self.completed(t),
            outcome: self.outcome(t),
            mops: self
                .mops(t)
                .map(|m| match m {
                    View::Append(k, value) => Mop::Append {
                        key: self.name(k).to_string(),
                        value,
                    },
                    View::Read(k, l) => Mop::Read {
                        key: self.name(k).to_string(),
                        value: l.map(<[i64]>::to_vec),
                    },
                })
                .collect(),
            line: self.line(t) as usize,
        }
    }
}
