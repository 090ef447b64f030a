//! The general search, in the manner of Wing & Gong and Lowe ("Testing for
//! linearizability", 2017): depth-first over the history's calls in
//! real-time order, linearizing a call only when it is minimal (no pending
//! return precedes it), with a cache of (set of linearized calls, model
//! state) so that no configuration is explored twice, and backtracking.
//!
//! The set of linearized calls is represented by a 128-bit Zobrist hash (an
//! XOR of one random number per call) instead of a bitset, so a cache entry
//! costs a few dozen bytes whatever the history's length.
//!
//! Symmetry: operations equal in kind, arguments, result and outcome (ok or
//! info) — and, for a lock's, process — have the same effect on every model here, so among those that
//! could be linearized now, only the one whose return comes first is tried
//! (for infos, which never return: the one invoked first). Any order that
//! linearizes another one now stays valid with the two swapped, since the
//! first-returning one's deadline is the tighter. With few distinct values
//! this keeps the search from enumerating which of many interchangeable
//! operations — two crashed writes of the same value, say — came first.
//!
//! Observers first: an operation that only observes the state (an ok read)
//! and can be linearized now is linearized now, and nothing else is tried
//! in its place. Any order that linearizes it later, where the state is
//! the same, stays valid with it moved here: it changes nothing in
//! between, and nothing linearizable now must precede it.

use std::collections::HashSet;
use std::time::Instant;

use crate::history::{Op, OpKind, Outcome, NEVER};
use crate::model::Model;

/// Limits on one search.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Give up at this instant.
    pub deadline: Instant,
    /// Give up when the cache holds this many configurations.
    pub max_configs: usize,
}

/// Why a search gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// Out of time.
    Time,
    /// Out of memory budget.
    Memory {
        /// Configurations cached.
        configs: usize,
    },
}

/// What the search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchResult {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    NotLinearizable(Failure),
    /// The budget ran out.
    Unknown(GiveUp),
}

/// The deepest point the search reached before every order failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The longest linearizable prefix found: indexes into the ops, in order.
    pub prefix: Vec<usize>,
    /// The operation whose completion came before it could be linearized
    /// after that prefix.
    pub stuck: usize,
    /// Calls that were pending (invoked, not linearized) at that point.
    pub pending: Vec<usize>,
}

#[derive(Clone, Copy)]
struct Node {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
    /// For a call: the index of its return node.
    ret: usize,
}

const HEAD: usize = 0;
const NIL: usize = usize::MAX;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One random 128-bit number per operation, for hashing sets of them by XOR.
pub(crate) fn zobrist(n: usize, seed: u64) -> Vec<u128> {
    let mut seed = seed ^ n as u64;
    (0..n)
        .map(|_| ((splitmix(&mut seed) as u128) << 64) | splitmix(&mut seed) as u128)
        .collect()
}

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [Op],
    nodes: Vec<Node>,
    zobrist: Vec<u128>,
    /// With pruning: how many unlinearized ops require each state.
    required: Option<std::collections::HashMap<M::State, usize>>,
    /// Per op: its symmetry class, and its place in the class's members.
    class: Vec<(usize, usize)>,
    /// Per class: its members, in order of (return, call, index).
    members: Vec<Vec<usize>>,
    /// Per op: whether it is linearized now.
    done: Vec<bool>,
}

/// The effective return position of an op (infos never return).
fn ret_of(op: &Op) -> u64 {
    if op.outcome == Outcome::Info {
        NEVER
    } else {
        op.ret
    }
}

/// Group interchangeable operations (see the module's notes): one sort by
/// (effect, return, call), then a class per run of equal effects.
fn symmetry_classes(ops: &[Op]) -> (Vec<(usize, usize)>, Vec<Vec<usize>>) {
    // A lock's operations act for their process (the holder is a process):
    // two acquires of different processes are not interchangeable.
    let effect = |o: &Op| {
        (
            o.kind as u8,
            o.arg,
            o.arg2,
            o.result,
            o.outcome == Outcome::Info,
            matches!(o.kind, OpKind::Acquire | OpKind::Release).then_some(o.process),
        )
    };
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_unstable_by_key(|&i| (effect(&ops[i]), ret_of(&ops[i]), ops[i].call, i));
    let mut class = vec![(0usize, 0usize); ops.len()];
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if k == 0 || effect(&ops[order[k - 1]]) != effect(&ops[i]) {
            members.push(Vec::new());
        }
        let c = members.len() - 1;
        class[i] = (c, members[c].len());
        members[c].push(i);
    }
    (class, members)
}

/// Check `ops` (one key's operations; `fail` ones already removed) against `model`.
///
/// With `states_never_recur` (a register whose written values are unique),
/// an operation that leaves the current state is not tried while some
/// unlinearized operation still requires that state (see
/// [`Model::requires`]): the state can never come back, so that branch
/// could only fail. This keeps valid histories with many concurrent
/// processes from wandering into dead ends.
pub fn check<M: Model>(
    model: &M,
    ops: &[Op],
    budget: Budget,
    states_never_recur: bool,
) -> SearchResult {
    settle(|snapshot_at| Search::new(model, ops, states_never_recur).run(budget, snapshot_at))
}

/// How one pass of a search ended.
pub(crate) enum Run {
    /// Every operation placed.
    Done,
    /// No order works; the deepest prefix was reached at this step.
    Failed { best_step: u64 },
    /// The budget ran out.
    GaveUp(GiveUp),
    /// The picture taken at the step asked for.
    Snapshot(Failure),
}

/// A search's result from `run`, a deterministic pass that stops at the
/// step it is given (if any): when no order works, a second pass replays up
/// to the step that reached the deepest prefix and takes its picture
/// (cheaper than copying the stack at every new depth).
pub(crate) fn settle(run: impl Fn(Option<u64>) -> Run) -> SearchResult {
    match run(None) {
        Run::Done => SearchResult::Linearizable,
        Run::GaveUp(g) => SearchResult::Unknown(g),
        Run::Failed { best_step } => match run(Some(best_step)) {
            Run::Snapshot(f) => SearchResult::NotLinearizable(f),
            // The replay is the same run; were it not, say so plainly
            // rather than invent a prefix.
            _ => SearchResult::NotLinearizable(Failure {
                prefix: vec![],
                stuck: 0,
                pending: vec![],
            }),
        },
        Run::Snapshot(_) => unreachable!("no snapshot requested"),
    }
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &'a [Op], prune: bool) -> Self {
        // Events: (position, is return, op). Info ops return after everything.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, false, i));
            let ret = if op.outcome == Outcome::Info {
                NEVER
            } else {
                op.ret
            };
            events.push((ret, true, i));
        }
        // Calls sort before returns at the same position (tightened returns
        // can tie); infos keep their op order after everything.
        events.sort_unstable_by_key(|&(p, r, i)| (p, r, i));
        let mut nodes = Vec::with_capacity(events.len() + 1);
        nodes.push(Node {
            op: NIL,
            is_call: false,
            prev: NIL,
            next: NIL,
            ret: NIL,
        });
        let mut ret_node = vec![NIL; ops.len()];
        for (k, &(_, is_ret, op)) in events.iter().enumerate() {
            let idx = k + 1;
            nodes.push(Node {
                op,
                is_call: !is_ret,
                prev: idx - 1,
                next: if k + 1 < events.len() { idx + 1 } else { NIL },
                ret: NIL,
            });
            if is_ret {
                ret_node[op] = idx;
            }
        }
        nodes[HEAD].next = if events.is_empty() { NIL } else { 1 };
        for n in nodes.iter_mut().skip(1) {
            if n.is_call {
                n.ret = ret_node[n.op];
            }
        }
        let zobrist = zobrist(ops.len(), 0x5EED);
        let required = prune.then(|| {
            let mut m = std::collections::HashMap::new();
            for op in ops {
                if let Some(st) = model.requires(op) {
                    *m.entry(st).or_insert(0usize) += 1;
                }
            }
            m
        });
        // With unique values the register's pruning already keeps the
        // search near-linear; the classes would only cost time there.
        let (class, members) = if prune {
            (vec![(0, 0); ops.len()], Vec::new())
        } else {
            symmetry_classes(ops)
        };
        Search {
            model,
            ops,
            nodes,
            zobrist,
            required,
            class,
            members,
            done: vec![false; ops.len()],
        }
    }

    /// The frontier: the position of the first return in the list (a call
    /// before it can be linearized now).
    fn frontier(&self) -> u64 {
        let mut n = self.nodes[HEAD].next;
        while n != NIL && self.nodes[n].is_call {
            n = self.nodes[n].next;
        }
        if n == NIL {
            NEVER
        } else {
            ret_of(&self.ops[self.nodes[n].op])
        }
    }

    /// Whether an interchangeable operation that returns first (see the
    /// module's notes) could be linearized instead of `i` now.
    fn dominated(&self, i: usize, frontier: u64) -> bool {
        let (c, pos) = self.class[i];
        if pos == 0 {
            return false;
        }
        let members = &self.members[c];
        // Unlinearized ok members all return at or after the frontier:
        // start there.
        let start = members[..pos].partition_point(|&j| ret_of(&self.ops[j]) < frontier);
        members[start..pos]
            .iter()
            .any(|&j| !self.done[j] && self.ops[j].call < frontier)
    }

    fn mark(&mut self, i: usize, done: bool) {
        self.done[i] = done;
    }

    /// Whether linearizing `op` (moving `state` to `next`) leaves behind an
    /// operation that needed `state`.
    fn strands_others(&self, op: &Op, state: &M::State, next: &M::State) -> bool {
        let Some(req) = &self.required else {
            return false;
        };
        if next == state {
            return false;
        }
        let waiting = req.get(state).copied().unwrap_or(0);
        let mine = usize::from(self.model.requires(op).as_ref() == Some(state));
        waiting > mine
    }

    fn take(&mut self, op: &Op, delta: isize) {
        if let Some(req) = self.required.as_mut() {
            if let Some(st) = self.model.requires(op) {
                let c = req.entry(st).or_insert(0);
                *c = (*c as isize + delta) as usize;
            }
        }
    }

    fn lift(&mut self, call: usize) {
        let ret = self.nodes[call].ret;
        for n in [call, ret] {
            let (p, q) = (self.nodes[n].prev, self.nodes[n].next);
            self.nodes[p].next = q;
            if q != NIL {
                self.nodes[q].prev = p;
            }
        }
    }

    fn unlift(&mut self, call: usize) {
        let ret = self.nodes[call].ret;
        for n in [ret, call] {
            let (p, q) = (self.nodes[n].prev, self.nodes[n].next);
            self.nodes[p].next = n;
            if q != NIL {
                self.nodes[q].prev = n;
            }
        }
    }

    fn is_info_return(&self, n: usize) -> bool {
        let node = &self.nodes[n];
        !node.is_call && self.ops[node.op].outcome == Outcome::Info
    }

    /// A call that can be linearized now and only observes the state as it
    /// is: to be linearized now, with nothing else tried instead.
    fn forced(&self, state: &M::State, frontier: u64) -> Option<usize> {
        let mut n = self.nodes[HEAD].next;
        while n != NIL && self.nodes[n].is_call {
            let op = &self.ops[self.nodes[n].op];
            if op.outcome == Outcome::Ok
                && self.model.observes_only(op)
                && self.model.step(state, op).as_ref() == Some(state)
                && !self.dominated(self.nodes[n].op, frontier)
            {
                return Some(n);
            }
            n = self.nodes[n].next;
        }
        None
    }

    fn run(mut self, budget: Budget, snapshot_at: Option<u64>) -> Run {
        let mut state = self.model.init();
        let mut hash: u128 = 0;
        let mut cache: HashSet<(u128, M::State)> = HashSet::new();
        // (call node, state before it, linearized as an observer first)
        let mut stack: Vec<(usize, M::State, bool)> = Vec::new();
        let mut entry = self.nodes[HEAD].next;
        let (mut best_depth, mut best_step) = (0usize, 0u64);
        let mut step: u64 = 0;
        // At a configuration not yet looked at (right after a push).
        let mut fresh = true;
        // The current configuration's frontier, once computed.
        let mut frontier: Option<u64> = None;
        loop {
            step += 1;
            if snapshot_at == Some(step) {
                return Run::Snapshot(self.snapshot(&stack, entry));
            }
            if step.is_multiple_of(4096) {
                if std::time::Instant::now() > budget.deadline {
                    return Run::GaveUp(GiveUp::Time);
                }
                if cache.len() > budget.max_configs {
                    return Run::GaveUp(GiveUp::Memory {
                        configs: cache.len(),
                    });
                }
            }
            if entry == NIL || self.is_info_return(entry) {
                // Every ok operation is linearized; the rest are infos that
                // may take effect later or never.
                return Run::Done;
            }
            // What to linearize next: an observer that can go now, else the
            // next candidate in the list; or, failing all, backtrack.
            let mut pick = None;
            let mut backtrack = false;
            let node = self.nodes[entry];
            if node.is_call && self.class[node.op].1 > 0 && frontier.is_none() {
                frontier = Some(self.frontier());
            }
            if std::mem::take(&mut fresh) {
                let f = *frontier.get_or_insert_with(|| self.frontier());
                if let Some(n) = self.forced(&state, f) {
                    pick = Some((n, true));
                    backtrack = true; // if it was explored already
                }
            }
            if pick.is_none() {
                if !node.is_call {
                    backtrack = true;
                } else if !self.dominated(node.op, frontier.unwrap_or(NEVER)) {
                    pick = Some((entry, false));
                }
            }
            if let Some((call, forced)) = pick {
                let op = &self.ops[self.nodes[call].op];
                if let Some(next_state) = self
                    .model
                    .step(&state, op)
                    .filter(|n| !self.strands_others(op, &state, n))
                {
                    let next_hash = hash ^ self.zobrist[self.nodes[call].op];
                    if cache.insert((next_hash, next_state.clone())) {
                        self.take(op, -1);
                        stack.push((call, std::mem::replace(&mut state, next_state), forced));
                        hash = next_hash;
                        self.lift(call);
                        self.mark(self.nodes[call].op, true);
                        if stack.len() > best_depth {
                            best_depth = stack.len();
                            // The picture is taken at the start of the next step.
                            best_step = step + 1;
                        }
                        entry = self.nodes[HEAD].next;
                        fresh = true;
                        frontier = None;
                        continue;
                    }
                }
            }
            if !backtrack {
                entry = node.next;
                continue;
            }
            // This configuration fails: undo the last choice, and go on
            // with the candidate after it — unless it was an observer
            // linearized first, whose failure is its configuration's.
            loop {
                let Some((call, prev_state, forced)) = stack.pop() else {
                    return Run::Failed {
                        best_step: best_step.max(1),
                    };
                };
                state = prev_state;
                let op = self.nodes[call].op;
                hash ^= self.zobrist[op];
                self.take(&self.ops[op], 1);
                self.unlift(call);
                self.mark(op, false);
                frontier = None;
                if !forced {
                    entry = self.nodes[call].next;
                    break;
                }
            }
        }
    }

    fn snapshot(&self, stack: &[(usize, M::State, bool)], _entry: usize) -> Failure {
        let prefix: Vec<usize> = stack.iter().map(|(c, _, _)| self.nodes[*c].op).collect();
        // The first pending return in the list is the operation that could
        // not be placed; the calls before it were the candidates.
        let mut pending = Vec::new();
        let mut stuck = None;
        let mut n = self.nodes[HEAD].next;
        while n != NIL {
            let node = self.nodes[n];
            if node.is_call {
                pending.push(node.op);
            } else {
                stuck = Some(node.op);
                break;
            }
            n = node.next;
        }
        let stuck = stuck.unwrap_or_else(|| pending.first().copied().unwrap_or(0));
        pending.retain(|&p| p != stuck);
        Failure {
            prefix,
            stuck,
            pending,
        }
    }
}
