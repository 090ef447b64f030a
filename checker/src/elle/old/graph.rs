//! The dependency graph of a list-append history, its strongly connected
//! components (Tarjan's, without recursion), and a shortest cycle of each
//! class in each component (breadth-first, on the edge kinds the class
//! allows).

use std::collections::VecDeque;


use super::{Found, OrdersView};
use crate::elle::{Anomaly, Consistency, Map, Mop, Txn, TxnOutcome, Edge, EdgeKind};
const DATA: u8 = 7;
fn kbit(k: EdgeKind) -> u8 { match k { EdgeKind::Ww => 1, EdgeKind::Wr => 2, EdgeKind::Rw => 4, EdgeKind::Rt => 8, EdgeKind::Process => 16 } }
const ALL: [EdgeKind; 5] = [EdgeKind::Ww, EdgeKind::Wr, EdgeKind::Rw, EdgeKind::Rt, EdgeKind::Process];

/// A compact graph: for each transaction its out-edges, each with the
/// kinds it carries (bits). What explains an edge (its key and value) is
/// worked out again only for the edges of a cycle reported.
pub(crate) struct Graph {
    /// Out-edges: (target, kind bits). Nodes below `real` are the
    /// transactions; those above are points of the real-time line.
    out: Vec<Vec<(u32, u8)>>,
    /// How many nodes are transactions.
    real: usize,
    edges: usize,
    /// The order edges the model adds (real time, or process order; none
    /// for serializability) and the suffix of the classes that need them.
    order: (u8, &'static str),
}

impl Graph {
    fn add(&mut self, from: usize, to: usize, kind: EdgeKind) {
        if from == to {
            return;
        }
        let t = to as u32;
        let list = &mut self.out[from];
        match list.iter_mut().find(|(x, _)| *x == t) {
            Some((_, bits)) if *bits & kbit(kind) != 0 => return,
            Some((_, bits)) => *bits |= kbit(kind),
            None => list.push((t, kbit(kind))),
        }
        self.edges += 1;
    }

    /// Edges in the graph (one per kind between two transactions).
    pub(crate) fn edge_count(&self) -> usize {
        self.edges
    }
}

/// Whether a transaction takes part: it committed, or may have and its
/// appends were seen.
fn member(t: &Txn) -> bool {
    matches!(t.outcome, TxnOutcome::Ok | TxnOutcome::Info)
}

/// Build the graph of `txns` from each key's order.
pub(crate) fn build(
    txns: &[Txn],
    orders: &OrdersView<'_>,
    writer: &Map<(&str, i64), usize>,
    model: Consistency,
) -> Graph {
    let mut g = Graph {
        out: vec![Vec::new(); txns.len()],
        real: txns.len(),
        edges: 0,
        order: match model {
            Consistency::StrictSerializable => (kbit(EdgeKind::Rt), "-realtime"),
            Consistency::StrongSessionSerializable => (kbit(EdgeKind::Process), "-process"),
            Consistency::Serializable => (0, ""),
        },
    };
    let writer_of = |k: &str, v: i64| writer.get(&(k, v)).copied().filter(|w| member(&txns[*w]));
    // ww: consecutive elements of each key's order.
    for (&k, order) in orders {
        for pair in order.windows(2) {
            if let (Some(a), Some(b)) = (writer_of(k, pair[0]), writer_of(k, pair[1])) {
                g.add(a, b, EdgeKind::Ww);
            }
        }
    }
    // wr and rw, read by read.
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome != TxnOutcome::Ok {
            continue;
        }
        for m in &txn.mops {
            let Mop::Read {
                key,
                value: Some(list),
            } = m
            else {
                continue;
            };
            if let Some(&last) = list.last() {
                if let Some(w) = writer_of(key, last) {
                    g.add(w, t, EdgeKind::Wr);
                }
            }
            let next = orders
                .get(key.as_str())
                .and_then(|o| o.get(list.len()).copied());
            if let Some(v) = next {
                if let Some(w) = writer_of(key, v) {
                    g.add(t, w, EdgeKind::Rw);
                }
            }
        }
    }
    match model {
        Consistency::StrictSerializable => realtime(txns, &mut g),
        Consistency::StrongSessionSerializable => process_order(txns, &mut g),
        Consistency::Serializable => {}
    }
    g
}

/// Process edges: each process's transactions that took part, one to the
/// next in invocation order.
fn process_order(txns: &[Txn], g: &mut Graph) {
    let mut last: Map<u64, usize> = Map::default();
    for (i, t) in txns.iter().enumerate().filter(|(_, t)| member(t)) {
        if let Some(prev) = last.insert(t.process, i) {
            g.add(prev, i, EdgeKind::Process);
        }
    }
}

/// Real time as a line of points: each completion adds a point after the
/// previous one, with an edge from the transaction to it; each invocation
/// gets an edge from the latest point. A path from T to U through the
/// line exists exactly when T completed before U began, so every
/// real-time order is in the graph with three edges per transaction,
/// however many ran at once (an edge from each concurrent transaction
/// would be quadratic in the concurrency). At one instant invocations come
/// first: a completion and an invocation at the same nanosecond are
/// concurrent (no path).
fn realtime(txns: &[Txn], g: &mut Graph) {
    // (time, 0 for an invocation, 1 for a completion, index)
    let mut events: Vec<(u64, u8, u32)> = Vec::new();
    for (i, t) in txns.iter().enumerate().filter(|(_, t)| member(t)) {
        events.push((t.invoke_ns, 0, i as u32));
        if let (TxnOutcome::Ok, Some(c)) = (t.outcome, t.complete_ns) {
            events.push((c, 1, i as u32));
        }
    }
    events.sort_unstable();
    let mut latest: Option<usize> = None;
    for (_, kind, i) in events {
        let i = i as usize;
        if kind == 0 {
            if let Some(p) = latest {
                g.add(p, i, EdgeKind::Rt);
            }
        } else {
            let point = g.out.len();
            g.out.push(Vec::new());
            g.add(i, point, EdgeKind::Rt);
            if let Some(p) = latest {
                g.add(p, point, EdgeKind::Rt);
            }
            latest = Some(point);
        }
    }
}

impl Graph {
    /// Find the cycles: every strongly connected component with more than
    /// one transaction yields its most specific anomaly (G0, then G1c,
    /// then G-single, then G2; real time last). Returns how many such
    /// components there were.
    pub(crate) fn cycles(&self, ctx: &Context<'_>, found: &mut Found) -> usize {
        let comps = self.components();
        let mut cyclic = 0;
        let real = self.real as u32;
        for comp in comps
            .iter()
            .filter(|c| c.iter().filter(|v| **v < real).count() > 1)
        {
            cyclic += 1;
            let inside: std::collections::HashSet<u32> = comp.iter().copied().collect();
            let (ord, suffix) = self.order;
            let (ww, wr) = (kbit(EdgeKind::Ww), kbit(EdgeKind::Wr));
            let classes: [(&str, u8, bool); 8] = [
                ("G0", ww, false),
                ("G1c", ww | wr, false),
                ("G-single", ww | wr, true),
                ("G2", DATA, false),
                ("G0", ww | ord, false),
                ("G1c", ww | wr | ord, false),
                ("G-single", ww | wr | ord, true),
                ("G2", DATA | ord, false),
            ];
            for (n, (class, allowed, one_rw)) in classes.into_iter().enumerate() {
                let cycle = if one_rw {
                    self.cycle_with_one_rw(&inside, allowed)
                } else {
                    self.shortest_cycle(&inside, allowed)
                };
                if let Some(c) = cycle {
                    let class = if n < 4 {
                        class.to_string()
                    } else {
                        format!("{class}{suffix}")
                    };
                    found.add(self.anomaly(&class, &c, ctx));
                    break;
                }
            }
        }
        cyclic
    }

    /// Tarjan's strongly connected components, iteratively.
    fn components(&self) -> Vec<Vec<u32>> {
        let n = self.out.len();
        let mut index = vec![u32::MAX; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut comps = Vec::new();
        let mut next = 0u32;
        for root in 0..n {
            if index[root] != u32::MAX {
                continue;
            }
            // (node, next out-edge to look at)
            let mut call: Vec<(u32, usize)> = vec![(root as u32, 0)];
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root as u32);
            on_stack[root] = true;
            while let Some(&mut (v, ref mut e)) = call.last_mut() {
                let vi = v as usize;
                if let Some(&(w, _)) = self.out[vi].get(*e) {
                    *e += 1;
                    let wi = w as usize;
                    if index[wi] == u32::MAX {
                        index[wi] = next;
                        low[wi] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[wi] = true;
                        call.push((w, 0));
                    } else if on_stack[wi] {
                        low[vi] = low[vi].min(index[wi]);
                    }
                    continue;
                }
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    let p = parent as usize;
                    low[p] = low[p].min(low[vi]);
                }
                if low[vi] == index[vi] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    comps.push(comp);
                }
            }
        }
        comps
    }

    /// The shortest cycle inside `inside` using only `allowed` kinds:
    /// breadth-first from each member (bounded), the shortest found.
    fn shortest_cycle(
        &self,
        inside: &std::collections::HashSet<u32>,
        allowed: u8,
    ) -> Option<Vec<(u32, u8)>> {
        let mut best: Option<Vec<(u32, u8)>> = None;
        let real = self.real as u32;
        for &start in inside.iter().filter(|v| **v < real).take(MAX_STARTS) {
            if let Some(c) = self.path(start, start, inside, allowed) {
                if best.as_ref().is_none_or(|b| c.len() < b.len()) {
                    best = Some(c);
                }
                if best.as_ref().is_some_and(|b| b.len() <= 2) {
                    break;
                }
            }
        }
        best
    }

    /// A cycle with exactly one rw edge and otherwise `allowed` kinds.
    fn cycle_with_one_rw(
        &self,
        inside: &std::collections::HashSet<u32>,
        allowed: u8,
    ) -> Option<Vec<(u32, u8)>> {
        let mut tried = 0;
        for &a in inside {
            for &(b, bits) in &self.out[a as usize] {
                if bits & kbit(EdgeKind::Rw) == 0 || !inside.contains(&b) {
                    continue;
                }
                tried += 1;
                if tried > MAX_STARTS {
                    return None;
                }
                // rw a → b, then back from b to a without rw.
                if let Some(mut back) = self.path(b, a, inside, allowed) {
                    let mut c = vec![(a, kbit(EdgeKind::Rw))];
                    c.append(&mut back);
                    return Some(c);
                }
            }
        }
        None
    }

    /// A shortest path from `from` to `to` (a cycle when they are equal),
    /// as (node, kind of the edge leaving it) pairs starting at `from`.
    fn path(
        &self,
        from: u32,
        to: u32,
        inside: &std::collections::HashSet<u32>,
        allowed: u8,
    ) -> Option<Vec<(u32, u8)>> {
        let mut prev: Map<u32, (u32, u8)> = Map::default();
        let mut queue = VecDeque::from([from]);
        while let Some(v) = queue.pop_front() {
            for &(w, bits) in &self.out[v as usize] {
                let usable = bits & allowed;
                if usable == 0 || !inside.contains(&w) {
                    continue;
                }
                // Prefer the data edge's kind when several apply.
                let kind = ALL
                    .into_iter()
                    .map(kbit)
                    .find(|b| usable & b != 0)
                    .unwrap_or(usable);
                if w == to {
                    let mut rev = vec![(v, kind)];
                    let mut at = v;
                    while at != from {
                        let (p, k) = prev[&at];
                        rev.push((p, k));
                        at = p;
                    }
                    rev.reverse();
                    return Some(rev);
                }
                if w != from && !prev.contains_key(&w) {
                    prev.insert(w, (v, kind));
                    queue.push_back(w);
                }
            }
        }
        None
    }

    fn anomaly(&self, class: &str, cycle: &[(u32, u8)], ctx: &Context<'_>) -> Anomaly {
        // Points of the real-time line are not transactions: a stretch of
        // them between two transactions is one rt edge.
        let real = self.real as u32;
        let first = cycle.iter().position(|(v, _)| *v < real).unwrap_or(0);
        let mut compact: Vec<(u32, u8)> = Vec::new();
        for k in 0..cycle.len() {
            let (v, bit) = cycle[(first + k) % cycle.len()];
            if v < real {
                compact.push((v, bit));
            } else if let Some(last) = compact.last_mut() {
                last.1 = kbit(EdgeKind::Rt);
            }
        }
        let cycle = compact.as_slice();
        let mut edges = Vec::new();
        let mut words = Vec::new();
        for (i, &(v, bit)) in cycle.iter().enumerate() {
            let w = cycle[(i + 1) % cycle.len()].0;
            let kind = ALL
                .into_iter()
                .find(|k| kbit(*k) == bit)
                .unwrap_or(EdgeKind::Rt);
            let why = ctx.why(v as usize, w as usize, kind);
            words.push(match (kind, &why) {
                (EdgeKind::Ww, Some((k, x))) => {
                    format!("T{v} appended to {k} just before T{w} appended {x}")
                }
                (EdgeKind::Wr, Some((k, x))) => {
                    format!("T{w} read {k} ending at {x}, which T{v} appended")
                }
                (EdgeKind::Rw, Some((k, x))) => {
                    format!("T{v} read {k} without {x}, which T{w} appended next")
                }
                (EdgeKind::Process, _) => {
                    format!(
                        "T{w} followed T{v} in process {}",
                        ctx.txns[v as usize].process
                    )
                }
                _ => format!("T{v} completed before T{w} began"),
            });
            edges.push(Edge {
                kind,
                key: why.as_ref().map(|(k, _)| k.clone()),
                value: why.map(|(_, x)| x),
            });
        }
        Anomaly {
            class: class.to_string(),
            txns: cycle.iter().map(|(v, _)| *v as usize).collect(),
            edges,
            explanation: format!("{class}: {}; a cycle", words.join("; ")),
        }
    }
}

/// What a cycle's edges are explained from: the history, each key's
/// order, and who appended what.
pub(crate) struct Context<'a> {
    pub txns: &'a [Txn],
    pub orders: &'a OrdersView<'a>,
    pub writer: &'a Map<(&'a str, i64), usize>,
}

impl Context<'_> {
    /// The key and value behind edge `v → w` of `kind`.
    fn why(&self, v: usize, w: usize, kind: EdgeKind) -> Option<(String, i64)> {
        let wrote = |t: usize, k: &str, x: i64| self.writer.get(&(k, x)) == Some(&t);
        let reads = |t: usize| {
            self.txns[t].mops.iter().filter_map(|m| match m {
                Mop::Read {
                    key,
                    value: Some(l),
                } => Some((key.as_str(), l.as_slice())),
                _ => None,
            })
        };
        match kind {
            EdgeKind::Ww => self.txns[w].mops.iter().find_map(|m| {
                let Mop::Append { key, value } = m else {
                    return None;
                };
                let order = self.orders.get(key.as_str())?;
                let p = order.iter().position(|x| x == value)?;
                (p > 0 && wrote(v, key, order[p - 1])).then(|| (key.clone(), *value))
            }),
            EdgeKind::Wr => reads(w).find_map(|(k, l)| {
                let x = *l.last()?;
                wrote(v, k, x).then(|| (k.to_string(), x))
            }),
            EdgeKind::Rw => reads(v).find_map(|(k, l)| {
                let x = *self.orders.get(k)?.get(l.len())?;
                wrote(w, k, x).then(|| (k.to_string(), x))
            }),
            EdgeKind::Rt | EdgeKind::Process => None,
        }
    }
}

/// The most starting points (or rw edges) tried per component.
const MAX_STARTS: usize = 256;
