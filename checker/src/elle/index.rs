//! What the checker looks up: each key's appends sorted by value (so the
//! writer of an element is a binary search in a few dozen entries, not a
//! hash of a string), each key's order (its longest ok read), and the
//! facts about an order that every read of a prefix of it shares: where
//! its first repeated element is, and which of its elements a failed
//! transaction wrote.

use super::columns::{Columns, View};
use super::{Map, TxnOutcome};

/// One append: its value, the transaction, and the value's position in
/// its key's order (`u32::MAX`: not in it, or not the key's first append
/// of that value).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Appended {
    pub value: i64,
    pub txn: u32,
    pub pos: u32,
}

const NONE: u32 = u32::MAX;

/// The lookups (see the module's comment).
pub(crate) struct Index<'a> {
    pub c: &'a Columns,
    /// Where each key's appends start in `appends` (one more at the end).
    starts: Vec<u32>,
    /// Appends sorted by key, then value, then transaction.
    appends: Vec<Appended>,
    /// Each key's order: its longest ok read.
    orders: Vec<&'a [i64]>,
    /// The transaction that read each key's order (`u32::MAX`: none).
    pub longest: Vec<u32>,
    /// How much of each key's shared list its order starts with: a read
    /// stored as a prefix of the shared list is a prefix of the order
    /// exactly when it is no longer than this.
    agree: Vec<u32>,
    /// Where each key's order first repeats an element (`u32::MAX`: it
    /// does not).
    dup_at: Vec<u32>,
    /// (key, position) of the order elements whose writer failed.
    failed_at: Vec<(u32, u32)>,
    /// (key, value, transaction, its last append to the key) for each
    /// append its transaction followed with another to the same key:
    /// what a read must not end at (G1b). Sorted.
    intermediate: Vec<(u32, i64, u32, i64)>,
}

impl<'a> Index<'a> {
    /// The index of `c`; an error naming both when two appends of one
    /// value to one key make the history unusable (see
    /// [`appends_by_key`]).
    pub fn new(c: &'a Columns) -> Result<Index<'a>, String> {
        let keys = c.keys();
        let (starts, mut appends) = appends_by_key(c)?;
        let (orders, longest, agree) = orders(c);
        let mut dup_at = vec![NONE; keys];
        let mut failed_at = Vec::new();
        let mut unwritten: Vec<(i64, u32)> = Vec::new();
        for k in 0..keys {
            let slice = &mut appends[starts[k] as usize..starts[k + 1] as usize];
            unwritten.clear();
            for (i, &v) in orders[k].iter().enumerate() {
                let i = i as u32;
                let at = slice.partition_point(|a| a.value < v);
                let Some(a) = slice.get_mut(at).filter(|a| a.value == v) else {
                    unwritten.push((v, i));
                    continue;
                };
                if a.pos == NONE {
                    a.pos = i;
                } else {
                    dup_at[k] = dup_at[k].min(i);
                }
                if c.outcome(a.txn as usize) == TxnOutcome::Fail {
                    failed_at.push((k as u32, i));
                }
            }
            unwritten.sort_unstable();
            for w in unwritten.windows(2) {
                if w[0].0 == w[1].0 {
                    dup_at[k] = dup_at[k].min(w[1].1);
                }
            }
        }
        Ok(Index {
            c,
            starts,
            appends,
            orders,
            longest,
            agree,
            dup_at,
            failed_at,
            intermediate: intermediate(c),
        })
    }

    /// What transaction `t` appended to `k` last, when that is not `v`
    /// (`v` being one of its appends to `k`).
    pub fn appended_after(&self, k: u32, v: i64, t: usize) -> Option<i64> {
        let at = self
            .intermediate
            .partition_point(|e| (e.0, e.1, e.2) < (k, v, t as u32));
        self.intermediate
            .get(at)
            .filter(|e| (e.0, e.1, e.2) == (k, v, t as u32))
            .map(|e| e.3)
    }

    /// Key `k`'s appends.
    pub fn appends(&self, k: u32) -> &[Appended] {
        &self.appends[self.starts[k as usize] as usize..self.starts[k as usize + 1] as usize]
    }

    /// The first append of `v` to `k`.
    pub fn first(&self, k: u32, v: i64) -> Option<&Appended> {
        let slice = self.appends(k);
        let at = slice.partition_point(|a| a.value < v);
        slice.get(at).filter(|a| a.value == v)
    }

    /// Who appended `v` to `k` first.
    pub fn writer(&self, k: u32, v: i64) -> Option<usize> {
        self.first(k, v).map(|a| a.txn as usize)
    }

    /// Where `v` is in `k`'s order.
    pub fn pos(&self, k: u32, v: i64) -> Option<usize> {
        self.first(k, v)
            .map(|a| a.pos)
            .filter(|p| *p != NONE)
            .map(|p| p as usize)
    }

    /// Key `k`'s order.
    pub fn order(&self, k: u32) -> &'a [i64] {
        self.orders[k as usize]
    }

    /// Whether a read of `k` (`shared`: stored as a prefix of the key's
    /// shared list) is a prefix of the order.
    pub fn agrees(&self, k: u32, list: &[i64], shared: bool) -> bool {
        if shared {
            list.len() <= self.agree[k as usize] as usize
        } else {
            self.order(k).starts_with(list)
        }
    }

    /// The first element `list` repeats, if any (`prefix`: the list is a
    /// prefix of its key's order, whose facts answer at once).
    pub fn repeated(&self, k: u32, list: &[i64], prefix: bool) -> Option<i64> {
        if prefix {
            let d = self.dup_at[k as usize];
            return (d != NONE && (d as usize) < list.len()).then(|| list[d as usize]);
        }
        let mut seen: Vec<(i64, usize)> = list.iter().enumerate().map(|(i, v)| (*v, i)).collect();
        seen.sort_unstable();
        seen.windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[1].1)
            .min()
            .map(|i| list[i])
    }

    /// The elements of `list` whose first writer failed, in the list's
    /// order, with that writer.
    pub fn failed_in(&self, k: u32, list: &[i64], prefix: bool) -> Vec<(i64, usize)> {
        if prefix {
            let from = self.failed_at.partition_point(|f| f.0 < k);
            return self.failed_at[from..]
                .iter()
                .take_while(|f| f.0 == k && (f.1 as usize) < list.len())
                .filter_map(|f| {
                    let v = list[f.1 as usize];
                    Some((v, self.writer(k, v)?))
                })
                .collect();
        }
        list.iter()
            .filter_map(|&v| {
                let w = self.writer(k, v)?;
                (self.c.outcome(w) == TxnOutcome::Fail).then_some((v, w))
            })
            .collect()
    }
}

/// The appends that their transactions followed with another to the same
/// key, each with the last (see [`Index::appended_after`]).
fn intermediate(c: &Columns) -> Vec<(u32, i64, u32, i64)> {
    let mut out = Vec::new();
    let mut last: Map<u32, i64> = Map::default();
    for t in 0..c.len() {
        let appends = c.mops(t).filter(|m| matches!(m, View::Append(..)));
        if appends.clone().nth(1).is_none() {
            continue;
        }
        last.clear();
        for m in appends.clone() {
            if let View::Append(k, v) = m {
                last.insert(k, v);
            }
        }
        for m in appends {
            if let View::Append(k, v) = m {
                if last[&k] != v {
                    out.push((k, v, t as u32, last[&k]));
                }
            }
        }
    }
    out.sort_unstable();
    out
}

/// Appends grouped by key (counted, then placed), each key's sorted by
/// value and transaction. A value appended to a key twice (by two
/// transactions, or twice by one) is an error: the order of appends is
/// read off the lists only when each element names one append — as Elle
/// refuses such a history (`:duplicate-appends`), so does this checker.
fn appends_by_key(c: &Columns) -> Result<(Vec<u32>, Vec<Appended>), String> {
    let keys = c.keys();
    let mut starts = vec![0u32; keys + 1];
    for (_, m) in c.all_cells() {
        if let View::Append(k, _) = m {
            starts[k as usize + 1] += 1;
        }
    }
    for k in 0..keys {
        starts[k + 1] += starts[k];
    }
    let mut next: Vec<u32> = starts[..keys].to_vec();
    let empty = Appended {
        value: 0,
        txn: 0,
        pos: NONE,
    };
    let mut appends = vec![empty; starts[keys] as usize];
    for (t, m) in c.all_cells() {
        if let View::Append(k, value) = m {
            let at = &mut next[k as usize];
            appends[*at as usize] = Appended {
                value,
                txn: t as u32,
                pos: NONE,
            };
            *at += 1;
        }
    }
    for k in 0..keys {
        let slice = &mut appends[starts[k] as usize..starts[k + 1] as usize];
        slice.sort_unstable_by_key(|a| (a.value, a.txn));
        if let Some(w) = slice.windows(2).find(|w| w[0].value == w[1].value) {
            let (a, b) = (w[0].txn as usize, w[1].txn as usize);
            let by = if a == b {
                format!("twice by one transaction (line {})", c.line(a))
            } else {
                format!(
                    "by two transactions (lines {} and {})",
                    c.line(a),
                    c.line(b)
                )
            };
            return Err(format!(
                "value {} appended to key {} {by}: a list-append history needs each value appended to a key at most once (the order of appends is read off the lists)",
                w[0].value,
                c.name(k as u32)
            ));
        }
    }
    Ok((starts, appends))
}

/// Each key's order (the longest ok read, the first of that length), who
/// read it, and how much of the shared list it starts with.
#[allow(clippy::type_complexity)]
fn orders(c: &Columns) -> (Vec<&[i64]>, Vec<u32>, Vec<u32>) {
    let keys = c.keys();
    let mut orders: Vec<&[i64]> = (0..keys as u32).map(|k| c.shared(k)).collect();
    let mut longest = vec![NONE; keys];
    // The first ok read of a list of its own longer than the shared one.
    let mut own: Vec<Option<(u32, &[i64])>> = vec![None; keys];
    for t in 0..c.len() {
        if c.outcome(t) != TxnOutcome::Ok {
            continue;
        }
        for (k, list, shared) in c.reads(t) {
            let ki = k as usize;
            if shared {
                if longest[ki] == NONE && list.len() == orders[ki].len() {
                    longest[ki] = t as u32;
                }
            } else if list.len() > own[ki].map_or(0, |o| o.1.len()) {
                own[ki] = Some((t as u32, list));
            }
        }
    }
    let mut agree = vec![0u32; keys];
    for k in 0..keys {
        let shared = orders[k];
        if let Some((t, list)) = own[k] {
            let first = longest[k] == NONE || t < longest[k];
            if list.len() > shared.len() || (list.len() == shared.len() && first) {
                orders[k] = list;
                longest[k] = t;
            }
        }
        agree[k] = shared
            .iter()
            .zip(orders[k])
            .take_while(|(a, b)| a == b)
            .count() as u32;
    }
    (orders, longest, agree)
}

#[cfg(test)]
mod tests {
    use super::super::{Columns, TxnOutcome};
    use super::Index;

    /// `mops` per transaction: (key, value) appends, all ok.
    fn history(txns: &[&[(&str, i64)]]) -> Columns {
        let mut c = Columns::new();
        for (t, appends) in txns.iter().enumerate() {
            for (k, v) in appends.iter() {
                let k = c.key(k);
                c.append(k, *v);
            }
            c.finish(t as u64, 1, Some(2), TxnOutcome::Ok, Some(t as u64 + 1));
        }
        c
    }

    #[test]
    fn a_value_appended_to_a_key_twice_makes_the_history_unusable() {
        let err = |c: &Columns| Index::new(c).err().unwrap_or_default();
        let two = history(&[&[("x", 1)], &[("y", 1)], &[("x", 1)]]);
        assert!(
            err(&two).starts_with("value 1 appended to key x by two transactions (lines 1 and 3)"),
            "{}",
            err(&two)
        );
        let one = history(&[&[("x", 1), ("x", 2), ("x", 1)]]);
        assert!(
            err(&one).starts_with("value 1 appended to key x twice by one transaction (line 1)"),
            "{}",
            err(&one)
        );
        // The same value on two keys is fine.
        assert!(Index::new(&history(&[&[("x", 1)], &[("y", 1)]])).is_ok());
    }
}
