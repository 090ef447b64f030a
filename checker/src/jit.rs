//! The register's search when values repeat (Jepsen's register workload:
//! values 1–5, dozens of processes, crashed operations): just-in-time
//! linearization (Lowe, "Testing for linearizability", 2017) with the
//! register's own shortcuts.
//!
//! The search walks the history's events in order. Nothing is linearized
//! when it is invoked; an operation is linearized when its completion is
//! reached and it has not been yet — directly, or after a *chain* of other
//! pending operations that puts the register in a state where it can
//! happen. Any linearization can be rearranged so that every operation
//! sits as late as it may: at its own completion, or just before the next
//! operation, which then sits at a completion; so trying only those
//! placements loses no linearization, and a choice is made only where a
//! completion forces it, which is where it can be checked at once.
//!
//! The register's shortcuts, each of which only drops orders that another
//! order tried covers:
//! - *Observers first*: an ok read (or an ok cas from a value to itself)
//!   that can be linearized now — the register holds its value — is
//!   linearized now, as soon as it is invoked or the value appears.
//! - *Symmetry*: of pending operations with the same effect only the one
//!   that completes first is tried (its deadline is the tighter); of crashed
//!   (`info`) ones, the one invoked first (the others are interchangeable).
//! - *Absorbed writes*: a write immediately followed by another write has
//!   no visible effect. Instead of trying every set of pending writes to
//!   hide before each write (2^k chains), a write that reaches its
//!   completion may be *absorbed* — placed, after the fact, just before a
//!   visible write that took effect after it was invoked, which changes
//!   nothing anyone saw. So chains never put a write right before a write,
//!   and the configuration carries when the last visible write took
//!   effect. Crashed writes never need it: they may simply never happen.
//!
//! Configurations (event, set of linearized operations as a 128-bit
//! Zobrist hash, register state, chain flags) are cached with the latest
//! visible write's event; one reached again with no later write cannot do
//! better and is not explored twice.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::history::{Op, OpKind, Outcome};
use crate::search::{settle, Budget, Failure, GiveUp, Run, SearchResult};

type Value = Option<i64>;

/// What an operation does to the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Effect {
    /// Needs the value and leaves it (an ok read; an ok cas from v to v).
    Observe(Value),
    /// Stores a value whatever the register held.
    Write(Value),
    /// Needs the first value, stores the second (they differ).
    Cas(Value, Value),
}

impl Effect {
    fn of(op: &Op) -> Option<Effect> {
        match (op.kind, op.outcome) {
            (OpKind::Read, Outcome::Ok) => Some(Effect::Observe(op.result)),
            (OpKind::Read, _) => None,
            (OpKind::Write, _) => Some(Effect::Write(op.arg)),
            (OpKind::Cas, Outcome::Ok) if op.arg == op.arg2 => Some(Effect::Observe(op.arg)),
            // A crashed cas to the value it expects changes nothing.
            (OpKind::Cas, _) if op.arg == op.arg2 => None,
            (OpKind::Cas, _) => Some(Effect::Cas(op.arg, op.arg2)),
            // Never here: `check_history` refuses transaction histories.
            (OpKind::Txn | OpKind::Acquire | OpKind::Release, _) => None,
        }
    }

    fn step(self, state: Value) -> Option<Value> {
        match self {
            Effect::Observe(v) => (state == v).then_some(state),
            Effect::Write(v) => Some(v),
            Effect::Cas(a, b) => (state == a).then_some(b),
        }
    }

    fn is_write(self) -> bool {
        matches!(self, Effect::Write(_))
    }
}

/// The history, indexed for the search.
struct Plan {
    /// Per operation kept: its index in the caller's slice.
    orig: Vec<usize>,
    effect: Vec<Effect>,
    info: Vec<bool>,
    /// Event index of the invocation, and of the completion (NONE for crashed ones).
    call: Vec<u32>,
    ret: Vec<u32>,
    /// Events in order: operation << 1 | 1 for a completion.
    events: Vec<u32>,
    /// Per ok operation: its effect class (for symmetry).
    class: Vec<u32>,
    /// Per crashed operation: its class; per class, its members by invocation.
    info_class: Vec<u32>,
    info_members: Vec<Vec<u32>>,
    info_effect: Vec<Effect>,
    zobrist: Vec<u128>,
}

const NONE: u32 = u32::MAX;

impl Plan {
    fn new(ops: &[Op]) -> Plan {
        let kept: Vec<usize> = (0..ops.len())
            .filter(|&i| Effect::of(&ops[i]).is_some())
            .collect();
        let n = kept.len();
        let effect: Vec<Effect> = kept
            .iter()
            .map(|&i| Effect::of(&ops[i]).expect("kept"))
            .collect();
        let info: Vec<bool> = kept
            .iter()
            .map(|&i| ops[i].outcome == Outcome::Info)
            .collect();
        // (position, is completion, op): invocations before completions at
        // one position.
        let mut evs: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n);
        for (k, &i) in kept.iter().enumerate() {
            evs.push((ops[i].call, false, k as u32));
            if !info[k] {
                evs.push((ops[i].ret, true, k as u32));
            }
        }
        evs.sort_unstable();
        let mut call = vec![0u32; n];
        let mut ret = vec![NONE; n];
        let events: Vec<u32> = evs
            .iter()
            .enumerate()
            .map(|(e, &(_, is_ret, k))| {
                if is_ret {
                    ret[k as usize] = e as u32;
                } else {
                    call[k as usize] = e as u32;
                }
                (k << 1) | u32::from(is_ret)
            })
            .collect();
        let mut classes: HashMap<Effect, u32> = HashMap::new();
        let mut info_classes: HashMap<Effect, u32> = HashMap::new();
        let mut class = vec![NONE; n];
        let mut info_class = vec![NONE; n];
        let mut info_members: Vec<Vec<u32>> = Vec::new();
        let mut info_effect = Vec::new();
        // By invocation, so each crashed class lists its members in order.
        let mut by_call: Vec<u32> = (0..n as u32).collect();
        by_call.sort_unstable_by_key(|&k| call[k as usize]);
        for k in by_call {
            let k = k as usize;
            if info[k] {
                let next = info_classes.len() as u32;
                let c = *info_classes.entry(effect[k]).or_insert(next);
                if c == next {
                    info_members.push(Vec::new());
                    info_effect.push(effect[k]);
                }
                info_class[k] = c;
                info_members[c as usize].push(k as u32);
            } else {
                let next = classes.len() as u32;
                class[k] = *classes.entry(effect[k]).or_insert(next);
            }
        }
        let zobrist = crate::search::zobrist(n, 0x717);
        Plan {
            orig: kept,
            effect,
            info,
            call,
            ret,
            events,
            class,
            info_class,
            info_members,
            info_effect,
            zobrist,
        }
    }
}

/// A cached configuration.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    hash: u128,
    at: u32,
    state: Value,
    flags: u8,
}

impl std::hash::Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // The Zobrist hash is already random: fold the rest into it.
        let s = self.state.map_or(0x51, |v| v as u64 ^ 0x9E37_79B9);
        h.write_u64(
            (self.hash as u64)
                ^ (self.at as u64).wrapping_mul(0xff51_afd7_ed55_8ccd)
                ^ s.wrapping_mul(0xc4ce_b9fe_1a85_ec53)
                ^ self.flags as u64,
        );
    }
}

/// Passes the one `u64` a [`Key`] writes through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Flag: the chain's last step was a write (the next may not be one).
const AFTER_WRITE: u8 = 1;
/// Flag: the frame starts a chain (absorbing is possible).
const START: u8 = 2;

/// A completion that forces a choice, and how far its choices have gone.
#[derive(Clone, Copy)]
struct Frame {
    at: u32,
    op: u32,
    state: Value,
    hash: u128,
    last_write: u32,
    log_len: u32,
    next: u32,
    flags: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Move {
    Apply,
    Absorb,
    Chain(u32),
    ChainInfo(u32),
}

struct Search<'a> {
    p: &'a Plan,
    lin: Vec<bool>,
    /// Per crashed class: how many of its members (from the first) are used.
    used: Vec<u32>,
    /// Ok operations invoked and not yet completed (linearized or not).
    inflight: Vec<u32>,
    slot: Vec<u32>,
    /// Events processed.
    now: u32,
    state: Value,
    hash: u128,
    /// One past the event at which the last visible write took effect (0: none).
    last_write: u32,
    /// Linearized operations in order; absorbed ones flagged.
    log: Vec<(u32, bool)>,
    candidates: Vec<(u32, u32, u32)>,
}

/// Check one key's operations (`fail` ones removed) against a register.
pub fn check(ops: &[Op], budget: Budget) -> SearchResult {
    let plan = Plan::new(ops);
    settle(|snapshot_at| Search::new(&plan).run(budget, snapshot_at))
}

impl<'a> Search<'a> {
    fn new(p: &'a Plan) -> Self {
        let n = p.effect.len();
        Search {
            p,
            lin: vec![false; n],
            used: vec![0; p.info_members.len()],
            inflight: Vec::new(),
            slot: vec![NONE; n],
            now: 0,
            state: None,
            hash: 0,
            last_write: 0,
            log: Vec::new(),
            candidates: Vec::new(),
        }
    }

    fn linearize(&mut self, k: u32, absorbed: bool) {
        self.lin[k as usize] = true;
        self.hash ^= self.p.zobrist[k as usize];
        self.log.push((k, absorbed));
        if self.p.info[k as usize] {
            self.used[self.p.info_class[k as usize] as usize] += 1;
        }
    }

    fn undo_to(&mut self, len: u32) {
        while self.log.len() > len as usize {
            let (k, _) = self.log.pop().expect("longer than len");
            self.lin[k as usize] = false;
            if self.p.info[k as usize] {
                self.used[self.p.info_class[k as usize] as usize] -= 1;
            }
        }
    }

    fn add_inflight(&mut self, k: u32) {
        self.slot[k as usize] = self.inflight.len() as u32;
        self.inflight.push(k);
    }

    fn remove_inflight(&mut self, k: u32) {
        let s = self.slot[k as usize] as usize;
        self.inflight.swap_remove(s);
        if let Some(&moved) = self.inflight.get(s) {
            self.slot[moved as usize] = s as u32;
        }
        self.slot[k as usize] = NONE;
    }

    /// Move the event cursor back to `at` (the log is undone separately).
    fn rewind(&mut self, at: u32) {
        while self.now > at {
            self.now -= 1;
            let ev = self.p.events[self.now as usize];
            let k = ev >> 1;
            if ev & 1 == 1 {
                self.add_inflight(k);
            } else if !self.p.info[k as usize] {
                self.remove_inflight(k);
            }
        }
    }

    /// Linearize every pending observer of the current state; whether there was one.
    fn observers(&mut self) -> bool {
        let mut seen = false;
        for i in 0..self.inflight.len() {
            let k = self.inflight[i];
            if !self.lin[k as usize] && self.p.effect[k as usize] == Effect::Observe(self.state) {
                self.linearize(k, false);
                seen = true;
            }
        }
        seen
    }

    /// Process events up to the next completion of an operation not yet
    /// linearized; `None` at the end of the history.
    fn advance(&mut self) -> Option<u32> {
        while (self.now as usize) < self.p.events.len() {
            let ev = self.p.events[self.now as usize];
            let k = ev >> 1;
            if ev & 1 == 0 {
                if !self.p.info[k as usize] {
                    self.add_inflight(k);
                    if self.p.effect[k as usize] == Effect::Observe(self.state) {
                        self.linearize(k, false);
                    }
                }
            } else if self.lin[k as usize] {
                self.remove_inflight(k);
            } else {
                return Some(k);
            }
            self.now += 1;
        }
        None
    }

    /// Linearize `k` at the completion `at`; whether it was a write that no
    /// observer saw (yet).
    fn apply(&mut self, k: u32, at: u32) -> bool {
        let e = self.p.effect[k as usize];
        self.state = e.step(self.state).expect("only legal moves are made");
        if e.is_write() {
            self.last_write = at + 1;
        }
        self.linearize(k, false);
        let seen = self.observers();
        e.is_write() && !seen
    }

    /// The first move of `f` numbered `from` or later, with its number
    /// (the configuration is `f`'s): 0 linearizes the operation itself, 1
    /// absorbs it, 2 and on extend the chain.
    fn next_move(&mut self, f: &Frame, from: u32) -> Option<(Move, u32)> {
        let o = f.op as usize;
        let after_write = f.flags & AFTER_WRITE != 0;
        let e = self.p.effect[o];
        if from == 0 && e.step(self.state).is_some() && !(after_write && e.is_write()) {
            return Some((Move::Apply, 0));
        }
        if from <= 1 && f.flags & START != 0 && e.is_write() && self.last_write > self.p.call[o] + 1
        {
            return Some((Move::Absorb, 1));
        }
        let skip = from.saturating_sub(2) as usize;
        // Pending ok operations that change the state, one per class (the
        // first to complete), in a fixed order; then crashed classes.
        self.candidates.clear();
        for &k in &self.inflight {
            let ku = k as usize;
            if ku == o || self.lin[ku] {
                continue;
            }
            let ek = self.p.effect[ku];
            if matches!(ek, Effect::Observe(_))
                || (after_write && ek.is_write())
                || ek.step(self.state).is_none()
            {
                continue;
            }
            self.candidates.push((self.p.class[ku], self.p.ret[ku], k));
        }
        self.candidates.sort_unstable();
        self.candidates.dedup_by_key(|c| c.0);
        let n = self.candidates.len();
        if let Some(&(_, _, k)) = self.candidates.get(skip) {
            return Some((Move::Chain(k), skip as u32 + 2));
        }
        let mut j = 0usize;
        for c in 0..self.p.info_members.len() {
            let ec = self.p.info_effect[c];
            if (after_write && ec.is_write()) || ec.step(self.state).is_none() {
                continue;
            }
            let Some(&k) = self.p.info_members[c].get(self.used[c] as usize) else {
                continue;
            };
            if self.p.call[k as usize] >= f.at {
                continue;
            }
            if n + j >= skip {
                return Some((Move::ChainInfo(c as u32), (n + j) as u32 + 2));
            }
            j += 1;
        }
        None
    }

    fn snapshot(&self, f: &Frame) -> Failure {
        let prefix = self
            .log
            .iter()
            .filter(|(_, absorbed)| !absorbed)
            .map(|&(k, _)| self.p.orig[k as usize])
            .collect();
        let mut pending: Vec<usize> = self
            .inflight
            .iter()
            .filter(|&&k| !self.lin[k as usize] && k != f.op)
            .map(|&k| self.p.orig[k as usize])
            .collect();
        pending.sort_unstable();
        Failure {
            prefix,
            stuck: self.p.orig[f.op as usize],
            pending,
        }
    }

    fn run(mut self, budget: Budget, snapshot_at: Option<u64>) -> Run {
        let mut cache: HashMap<Key, u32, BuildHasherDefault<PassThrough>> = HashMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        let (mut best_at, mut best_step) = (0u32, 0u64);
        let mut step: u64 = 0;
        // A configuration just reached: a new frame at the next choice, or
        // (flags set) a chain continuing at the same completion.
        let mut arrive: Option<(u32, u8)> = Some((0, START));
        loop {
            step += 1;
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
            if let Some((op, flags)) = arrive.take() {
                let op = if flags & START != 0 {
                    match self.advance() {
                        None => return Run::Done,
                        Some(op) => op,
                    }
                } else {
                    op
                };
                let key = Key {
                    hash: self.hash,
                    at: self.now,
                    state: self.state,
                    flags,
                };
                let fresh = match cache.get_mut(&key) {
                    Some(w) if *w >= self.last_write => false,
                    Some(w) => {
                        *w = self.last_write;
                        true
                    }
                    None => {
                        cache.insert(key, self.last_write);
                        true
                    }
                };
                if fresh {
                    if self.now > best_at {
                        best_at = self.now;
                        best_step = step;
                    }
                    stack.push(Frame {
                        at: self.now,
                        op,
                        state: self.state,
                        hash: self.hash,
                        last_write: self.last_write,
                        log_len: self.log.len() as u32,
                        next: 0,
                        flags,
                    });
                    if snapshot_at == Some(step) {
                        let f = stack.last().expect("just pushed");
                        return Run::Snapshot(self.snapshot(f));
                    }
                }
            }
            // Try the next move of the deepest frame, from its configuration.
            let Some(f) = stack.last_mut() else {
                return Run::Failed {
                    best_step: best_step.max(1),
                };
            };
            let (at, op, from) = (f.at, f.op, f.next);
            self.undo_to(f.log_len);
            self.rewind(at);
            self.state = f.state;
            self.hash = f.hash;
            self.last_write = f.last_write;
            let frame = Frame { next: from, ..*f };
            let Some((m, number)) = self.next_move(&frame, from) else {
                stack.pop();
                continue;
            };
            stack.last_mut().expect("still there").next = number + 1;
            match m {
                Move::Apply => {
                    let _ = self.apply(op, at);
                    arrive = Some((0, START));
                }
                Move::Absorb => {
                    self.linearize(op, true);
                    arrive = Some((0, START));
                }
                Move::Chain(_) | Move::ChainInfo(_) => {
                    let k = match m {
                        Move::Chain(k) => k,
                        Move::ChainInfo(c) => {
                            self.p.info_members[c as usize][self.used[c as usize] as usize]
                        }
                        _ => unreachable!("a chain move"),
                    };
                    let w = self.apply(k, at);
                    // The new state may have let the operation itself go
                    // as an observer: the chain is then complete.
                    arrive = if self.lin[op as usize] {
                        Some((0, START))
                    } else {
                        Some((op, if w { AFTER_WRITE } else { 0 }))
                    };
                }
            }
        }
    }
}
