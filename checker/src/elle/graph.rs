//! The dependency graph of a list-append history, its strongly connected
//! components (Tarjan's, without recursion), and a shortest cycle of each
//! class in each component (breadth-first, on the edge kinds the class
//! allows).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use serde::{Deserialize, Serialize};

use super::columns::View;
use super::index::Index;
use super::{Anomaly, Consistency, Found, Map, TxnOutcome};

/// What one edge says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// Write-write: the later append follows the earlier in a key's order.
    Ww,
    /// Write-read: the reader saw the writer's append last.
    Wr,
    /// Read-write (anti-dependency): the writer's append follows what the
    /// reader saw.
    Rw,
    /// Real time: the first completed before the second began.
    Rt,
    /// Process order: the same process ran the first, then the second.
    Process,
}

impl EdgeKind {
    const fn bit(self) -> u8 {
        match self {
            EdgeKind::Ww => 1,
            EdgeKind::Wr => 2,
            EdgeKind::Rw => 4,
            EdgeKind::Rt => 8,
            EdgeKind::Process => 16,
        }
    }

    const ALL: [EdgeKind; 5] = [
        EdgeKind::Ww,
        EdgeKind::Wr,
        EdgeKind::Rw,
        EdgeKind::Rt,
        EdgeKind::Process,
    ];
}

/// The data edges' bits (ww, wr, rw).
const DATA: u8 = 7;

/// One edge of a cycle: its kind and, for a data edge, the key and value
/// that make it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// The kind.
    pub kind: EdgeKind,
    /// The key (none for real time).
    pub key: Option<String>,
    /// The element: the one appended (ww, rw) or read last (wr).
    pub value: Option<i64>,
}

/// The graph in compressed rows: node `v`'s out-edges are
/// `to[starts[v]..starts[v + 1]]`, each with the kinds it carries (bits).
/// What explains an edge (its key and value) is worked out again only for
/// the edges of a cycle reported.
pub(crate) struct Graph {
    starts: Vec<u32>,
    to: Vec<u32>,
    bits: Vec<u8>,
    /// How many nodes are transactions: those above are points of the
    /// real-time line.
    real: usize,
    edges: usize,
    /// The order edges the model adds (real time, or process order; none
    /// for serializability) and the suffix of the classes that need them.
    order: (u8, &'static str),
}

impl Graph {
    /// Edges in the graph (one per kind between two nodes).
    pub(crate) fn edge_count(&self) -> usize {
        self.edges
    }

    /// `v`'s out-edges: (target, kind bits).
    fn out(&self, v: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let (a, b) = (
            self.starts[v as usize] as usize,
            self.starts[v as usize + 1] as usize,
        );
        self.to[a..b]
            .iter()
            .copied()
            .zip(self.bits[a..b].iter().copied())
    }

    fn nodes(&self) -> usize {
        self.starts.len() - 1
    }
}

/// Whether a transaction takes part: it committed, or may have and its
/// appends were seen.
fn member(o: TxnOutcome) -> bool {
    matches!(o, TxnOutcome::Ok | TxnOutcome::Info)
}

/// Build the graph from each key's order: every edge is produced twice,
/// once to count each node's out-edges and once to place them, so no list
/// of all edges is ever held; then each node's edges are sorted and the
/// kinds between two nodes merged.
pub(crate) fn build(ix: &Index<'_>, model: Consistency) -> Graph {
    let n = ix.c.len();
    let mut degree: Vec<u32> = vec![0; n + 1];
    let points = each_edge(ix, model, &mut |from, _, _| {
        let from = from as usize;
        if from >= degree.len() {
            degree.resize(from + 1, 0);
        }
        degree[from] += 1;
    });
    degree.resize(n + points + 1, 0);
    // Prefix sums: `starts[v]` is where v's edges begin.
    let mut starts = degree;
    let mut sum = 0u32;
    for d in starts.iter_mut() {
        let here = *d;
        *d = sum;
        sum += here;
    }
    let mut next = starts.clone();
    let mut to = vec![0u32; sum as usize];
    let mut bits = vec![0u8; sum as usize];
    each_edge(ix, model, &mut |from, t, kind| {
        let at = &mut next[from as usize];
        to[*at as usize] = t;
        bits[*at as usize] = kind.bit();
        *at += 1;
    });
    drop(next);
    // Merge each node's edges to one target, compacting in place.
    let mut w = 0usize;
    let mut edges = 0usize;
    let mut row: Vec<(u32, u8)> = Vec::new();
    for v in 0..starts.len() - 1 {
        let (a, b) = (starts[v] as usize, starts[v + 1] as usize);
        starts[v] = w as u32;
        row.clear();
        row.extend(to[a..b].iter().copied().zip(bits[a..b].iter().copied()));
        row.sort_unstable_by_key(|e| e.0);
        for (i, &(t, k)) in row.iter().enumerate() {
            if i > 0 && row[i - 1].0 == t {
                bits[w - 1] |= k;
                continue;
            }
            to[w] = t;
            bits[w] = k;
            w += 1;
        }
    }
    *starts.last_mut().expect("one more than the nodes") = w as u32;
    to.truncate(w);
    bits.truncate(w);
    for b in &bits {
        edges += b.count_ones() as usize;
    }
    Graph {
        starts,
        to,
        bits,
        real: n,
        edges,
        order: match model {
            Consistency::StrictSerializable => (EdgeKind::Rt.bit(), "-realtime"),
            Consistency::StrongSessionSerializable => (EdgeKind::Process.bit(), "-process"),
            Consistency::Serializable => (0, ""),
        },
    }
}

/// Produce every edge (from, to, kind), the same ones in the same order
/// each time; returns how many points the real-time line has.
fn each_edge(
    ix: &Index<'_>,
    model: Consistency,
    emit: &mut impl FnMut(u32, u32, EdgeKind),
) -> usize {
    let c = ix.c;
    let mut edge = |from: usize, to: usize, kind: EdgeKind| {
        if from != to {
            emit(from as u32, to as u32, kind);
        }
    };
    let writer_of = |k: u32, v: i64| ix.writer(k, v).filter(|w| member(c.outcome(*w)));
    // ww: consecutive elements of each key's order.
    for k in 0..c.keys() as u32 {
        let mut prev: Option<usize> = None;
        for (i, &v) in ix.order(k).iter().enumerate() {
            let w = writer_of(k, v);
            if let (Some(a), Some(b), true) = (prev, w, i > 0) {
                edge(a, b, EdgeKind::Ww);
            }
            prev = w;
        }
    }
    // wr and rw, read by read.
    for t in (0..c.len()).filter(|t| c.outcome(*t) == TxnOutcome::Ok) {
        for (k, list, _) in c.reads(t) {
            if let Some(w) = list.last().and_then(|&last| writer_of(k, last)) {
                edge(w, t, EdgeKind::Wr);
            }
            if let Some(w) = ix.order(k).get(list.len()).and_then(|&v| writer_of(k, v)) {
                edge(t, w, EdgeKind::Rw);
            }
        }
    }
    match model {
        Consistency::StrictSerializable => realtime(ix, &mut edge),
        Consistency::StrongSessionSerializable => {
            // Each process's transactions that took part, one to the next
            // in the history's order.
            let mut last: Map<u64, usize> = Map::default();
            for t in (0..c.len()).filter(|t| member(c.outcome(*t))) {
                if let Some(prev) = last.insert(c.process(t), t) {
                    edge(prev, t, EdgeKind::Process);
                }
            }
            0
        }
        Consistency::Serializable => 0,
    }
}

/// Real time as a line of points: a completion adds a point after the
/// latest one (or joins the latest, when no invocation came between),
/// with an edge from the transaction to it; each invocation gets an edge
/// from the latest point. A path from T to U through the line exists
/// exactly when T completed before U began, so every real-time order is in
/// the graph with at most three edges per transaction, however many ran at
/// once (an edge from each concurrent transaction would be quadratic in
/// the concurrency). At one instant invocations come first: a completion
/// and an invocation at the same nanosecond are concurrent (no path).
/// Invocations are taken in the history's order (sorted first if it is
/// not), completions from a heap of those still running. Returns the
/// number of points.
fn realtime(ix: &Index<'_>, edge: &mut impl FnMut(usize, usize, EdgeKind)) -> usize {
    let c = ix.c;
    let n = c.len();
    let mut invoked: Vec<u32> = (0..n as u32)
        .filter(|t| member(c.outcome(*t as usize)))
        .collect();
    if invoked
        .windows(2)
        .any(|w| c.invoke(w[0] as usize) > c.invoke(w[1] as usize))
    {
        invoked.sort_by_key(|t| (c.invoke(*t as usize), *t));
    }
    let mut running: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
    let mut line = Line {
        first: n,
        points: 0,
        latest: None,
        since: false,
    };
    for t in invoked {
        let at = c.invoke(t as usize);
        while let Some(&Reverse((done, u))) = running.peek() {
            if done >= at {
                break;
            }
            running.pop();
            line.completed(u as usize, edge);
        }
        if let Some(p) = line.latest {
            edge(p, t as usize, EdgeKind::Rt);
            line.since = true;
        }
        if let (TxnOutcome::Ok, Some(done)) = (c.outcome(t as usize), c.completed(t as usize)) {
            running.push(Reverse((done, t)));
        }
    }
    line.points
}

/// The real-time line as it is drawn.
struct Line {
    /// The first point's node.
    first: usize,
    points: usize,
    /// The latest point, and whether an invocation came after it.
    latest: Option<usize>,
    since: bool,
}

impl Line {
    /// Transaction `t` completed.
    fn completed(&mut self, t: usize, edge: &mut impl FnMut(usize, usize, EdgeKind)) {
        match self.latest {
            Some(p) if !self.since => edge(t, p, EdgeKind::Rt),
            before => {
                let p = self.first + self.points;
                self.points += 1;
                edge(t, p, EdgeKind::Rt);
                if let Some(b) = before {
                    edge(b, p, EdgeKind::Rt);
                }
                self.latest = Some(p);
                self.since = false;
            }
        }
    }
}

impl Graph {
    /// Find the cycles: every strongly connected component with more than
    /// one transaction yields its most specific anomaly (G0, then G1c,
    /// then G-single, then G2; real time last). Returns how many such
    /// components there were.
    pub(crate) fn cycles(&self, ix: &Index<'_>, found: &mut Found) -> usize {
        let comps = self.components();
        let mut cyclic = 0;
        for comp in &comps {
            cyclic += 1;
            let inside: std::collections::HashSet<u32> = comp.iter().copied().collect();
            let (ord, suffix) = self.order;
            let (ww, wr) = (EdgeKind::Ww.bit(), EdgeKind::Wr.bit());
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
                    found.add(self.anomaly(&class, &c, ix));
                    break;
                }
            }
        }
        cyclic
    }

    /// Tarjan's strongly connected components, iteratively; only those
    /// with more than one transaction are kept.
    fn components(&self) -> Vec<Vec<u32>> {
        let n = self.nodes();
        let real = self.real as u32;
        let mut index = vec![u32::MAX; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut comps = Vec::new();
        let mut comp = Vec::new();
        let mut next = 0u32;
        // (node, where its next out-edge to look at is)
        let mut call: Vec<(u32, u32)> = Vec::new();
        for root in 0..n {
            if index[root] != u32::MAX {
                continue;
            }
            call.push((root as u32, self.starts[root]));
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root as u32);
            on_stack[root] = true;
            while let Some(&mut (v, ref mut e)) = call.last_mut() {
                let vi = v as usize;
                if *e < self.starts[vi + 1] {
                    let w = self.to[*e as usize];
                    *e += 1;
                    let wi = w as usize;
                    if index[wi] == u32::MAX {
                        index[wi] = next;
                        low[wi] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[wi] = true;
                        call.push((w, self.starts[wi]));
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
                    comp.clear();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if comp.iter().filter(|w| **w < real).count() > 1 {
                        comps.push(comp.clone());
                    }
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
            for (b, bits) in self.out(a) {
                if bits & EdgeKind::Rw.bit() == 0 || !inside.contains(&b) {
                    continue;
                }
                tried += 1;
                if tried > MAX_STARTS {
                    return None;
                }
                // rw a → b, then back from b to a without rw.
                if let Some(mut back) = self.path(b, a, inside, allowed) {
                    let mut c = vec![(a, EdgeKind::Rw.bit())];
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
            for (w, bits) in self.out(v) {
                let usable = bits & allowed;
                if usable == 0 || !inside.contains(&w) {
                    continue;
                }
                // Prefer the data edge's kind when several apply.
                let kind = EdgeKind::ALL
                    .into_iter()
                    .map(EdgeKind::bit)
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

    fn anomaly(&self, class: &str, cycle: &[(u32, u8)], ix: &Index<'_>) -> Anomaly {
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
                last.1 = EdgeKind::Rt.bit();
            }
        }
        let cycle = compact.as_slice();
        let mut edges = Vec::new();
        let mut words = Vec::new();
        for (i, &(v, bit)) in cycle.iter().enumerate() {
            let w = cycle[(i + 1) % cycle.len()].0;
            let kind = EdgeKind::ALL
                .into_iter()
                .find(|k| k.bit() == bit)
                .unwrap_or(EdgeKind::Rt);
            let why = why(ix, v as usize, w as usize, kind);
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
                    format!("T{w} followed T{v} in process {}", ix.c.process(v as usize))
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
            explanation: format!("{}; a cycle", words.join("; ")),
        }
    }
}

/// The key and value behind edge `v → w` of `kind`.
fn why(ix: &Index<'_>, v: usize, w: usize, kind: EdgeKind) -> Option<(String, i64)> {
    let c = ix.c;
    let wrote = |t: usize, k: u32, x: i64| ix.writer(k, x) == Some(t);
    let found = match kind {
        EdgeKind::Ww => c.mops(w).find_map(|m| {
            let View::Append(k, x) = m else {
                return None;
            };
            let p = ix.pos(k, x)?;
            (p > 0 && wrote(v, k, ix.order(k)[p - 1])).then_some((k, x))
        }),
        EdgeKind::Wr => c.reads(w).find_map(|(k, l, _)| {
            let x = *l.last()?;
            wrote(v, k, x).then_some((k, x))
        }),
        EdgeKind::Rw => c.reads(v).find_map(|(k, l, _)| {
            let x = *ix.order(k).get(l.len())?;
            wrote(w, k, x).then_some((k, x))
        }),
        EdgeKind::Rt | EdgeKind::Process => None,
    };
    found.map(|(k, x)| (c.name(k).to_string(), x))
}

/// The most starting points (or rw edges) tried per component.
const MAX_STARTS: usize = 256;
