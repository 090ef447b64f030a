//! A deterministic in-memory cluster of Raft cores, for tests and the core
//! benchmark. (Over 600 lines: the cluster's controls — crash, restart,
//! cut, partition, propose, run — are one harness API that tests read as a
//! whole; its disks and its safety checks are `disk` and `invariants`.)
//!
//! Every message goes through a simulated network driven by one seeded RNG:
//! it can be dropped, duplicated, delayed (and so reordered), or blocked by a
//! partition. Nodes can crash and restart from exactly what they persisted.
//! After every input the cluster checks the five Raft safety properties and
//! panics, naming the seed, the moment one fails:
//! election safety, leader append-only, log matching, leader completeness and
//! state-machine safety (plus monotonic terms, one vote per term, and
//! committed entries never changing).
//!
//! ```
//! use faultline_node::sim::Cluster;
//! use faultline_node::raft::Config;
//! let mut c = Cluster::new(3, Cluster::fast_config(), 7);
//! let leader = c.run_until_leader(1_000).expect("a leader");
//! let (index, _) = c.propose(&leader, b"x".to_vec()).unwrap();
//! assert!(c.run_until(1_000, |c| c.committed_everywhere(index)));
//! ```

mod disk;
mod invariants;
pub mod seeds;

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::raft::{
    Anomaly, Config, Configuration, Entry, EntryData, HardState, MembershipChange, Message, NodeId,
    ProposeError, Raft, Ready, Role, Snapshot,
};

/// How the simulated network treats each message.
#[derive(Clone, Debug, PartialEq)]
pub struct NetConfig {
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Fewest ticks a message takes.
    pub delay_min: u64,
    /// Most ticks a message takes; a spread between min and max reorders.
    pub delay_max: u64,
}

/// How the simulated disks write.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum DiskMode {
    /// Each Ready is durable before the next input (`Raft::take_ready`).
    #[default]
    Synchronous,
    /// Writes complete in order, each up to `max_delay` ticks after it was
    /// issued, while the server goes on (`Raft::take_ready_async`, as the
    /// real node does). A crash loses the writes not yet complete.
    Background {
        /// Most ticks a write takes.
        max_delay: u64,
    },
}

/// A write issued and not yet durable.
struct PendingWrite {
    due: u64,
    hard: Option<HardState>,
    snapshot: Option<Snapshot>,
    truncate_from: Option<u64>,
    compact_to: Option<u64>,
    entries: Vec<Entry>,
    /// Sent once the write is durable.
    messages: Vec<Message>,
    /// Its last entry, reported to the core once durable.
    last: Option<(u64, u64)>,
}

impl NetConfig {
    /// Every message arrives after one tick, in order.
    pub fn reliable() -> Self {
        NetConfig {
            drop: 0.0,
            duplicate: 0.0,
            delay_min: 1,
            delay_max: 1,
        }
    }

    /// The simulations' standard unreliable network: 10 % of messages lost,
    /// 5 % delivered twice, and delays of 1 to 6 ticks (so messages reorder).
    pub fn lossy() -> Self {
        NetConfig {
            drop: 0.1,
            duplicate: 0.05,
            delay_min: 1,
            delay_max: 6,
        }
    }
}

/// One simulated server: its core (absent while crashed) and its stable storage.
struct SimNode {
    raft: Option<Raft>,
    /// The configuration it boots with until its log holds one.
    initial: Configuration,
    /// Durable: what a restart finds.
    hard: HardState,
    snapshot: Option<Snapshot>,
    /// The stored entries, in index order (after the compacted prefix).
    log: Vec<Entry>,
    /// The term and vote as last handed out for writing.
    issued_hard: HardState,
    /// `chain[i]` is a hash of the prefix `1..=i` of the log as handed out
    /// for writing (the core's log); `chain[0] = 0`.
    chain: Vec<u64>,
    /// Writes not yet durable, oldest first.
    writes: std::collections::VecDeque<PendingWrite>,
    /// What the state machine has applied since the last restart.
    applied: Vec<Entry>,
    /// The state machine: the last index applied and a hash of every entry
    /// up to it (what a snapshot holds).
    sm: SimState,
    /// Snapshots taken and installed.
    snapshots: (u64, u64),
    /// Role and term after the last input, for the append-only check.
    last_role: (Role, u64),
    /// Highest commit index seen since the last restart.
    last_commit: u64,
    restarts: u64,
}

/// The simulated state machine: a hash chain over the applied entries, so
/// two servers agree on it exactly when they applied the same prefix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct SimState {
    index: u64,
    hash: u64,
}

/// Counters of what the network did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages the nodes sent.
    pub sent: u64,
    /// Messages delivered (duplicates count twice).
    pub delivered: u64,
    /// Messages lost to `drop`, partitions or crashed receivers.
    pub dropped: u64,
}

/// The global record the safety checks compare each node against.
#[derive(Default)]
struct Invariants {
    /// Election safety: the one leader of each term.
    leaders: HashMap<u64, NodeId>,
    /// Log matching: the prefix hash of every (index, term) ever stored.
    prefixes: HashMap<(u64, u64), u64>,
    /// The committed prefix, as chain hashes: `committed[i - 1]` covers `1..=i`.
    committed: Vec<u64>,
    /// For leader completeness: the highest commit index observed in each term.
    commit_seen_in_term: BTreeMap<u64, u64>,
    /// State-machine safety: what was applied at each index.
    applied: Vec<(u64, EntryData)>,
}

/// A cluster of Raft cores on a simulated network.
pub struct Cluster {
    ids: Vec<NodeId>,
    nodes: BTreeMap<NodeId, SimNode>,
    config: Config,
    conf: Configuration,
    now: u64,
    next_seq: u64,
    /// In-flight messages by (delivery time, sequence number).
    in_flight: BTreeMap<(u64, u64), Message>,
    rng: ChaCha8Rng,
    seed: u64,
    /// The network's behaviour; change it at any time.
    pub net: NetConfig,
    /// How the disks write; change it at any time.
    pub disk: DiskMode,
    blocked: HashSet<(NodeId, NodeId)>,
    inv: Invariants,
    /// What the network did so far.
    pub stats: NetStats,
    /// Servers whose stable log a test cut on purpose ([`Cluster::lose_tail`]).
    lost_on_purpose: HashSet<NodeId>,
    /// Losses of acknowledged entries that followers confirmed to leaders.
    pub confirmed_losses: u64,
}

fn chain_hash(prev: u64, e: &Entry) -> u64 {
    // FNV-1a over (prev, term, index, data): cheap and good enough to tell
    // prefixes apart in tests.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ prev;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&e.term.to_le_bytes());
    eat(&e.index.to_le_bytes());
    match &e.data {
        EntryData::Noop => eat(&[0]),
        EntryData::Command(c) => {
            eat(&[1]);
            eat(c);
        }
        EntryData::Config(m) => {
            eat(&[2]);
            eat(&bincode::serialize(m).expect("a membership serializes"));
        }
    }
    h
}

impl Cluster {
    /// Timeouts that make simulated elections quick: 10..20 ticks, heartbeat 3.
    pub fn fast_config() -> Config {
        Config {
            election_timeout_min_ticks: 10,
            election_timeout_max_ticks: 20,
            heartbeat_ticks: 3,
            ..Config::default()
        }
    }

    /// `n` fresh servers `n1..nN` with `config`, on a reliable network.
    pub fn new(n: usize, config: Config, seed: u64) -> Self {
        Self::with_state(config, seed, vec![(HardState::default(), Vec::new()); n])
    }

    /// Servers `n1..nN` that start from the given persisted term, vote and
    /// log (for hand-built scenarios such as the paper's Figure 8).
    pub fn with_state(config: Config, seed: u64, states: Vec<(HardState, Vec<Entry>)>) -> Self {
        let n = states.len();
        let ids: Vec<NodeId> = (1..=n).map(|i| format!("n{i}")).collect();
        let conf = Configuration::new(ids.iter().cloned());
        let mut c = Cluster {
            ids: ids.clone(),
            nodes: BTreeMap::new(),
            lost_on_purpose: HashSet::new(),
            confirmed_losses: 0,
            config,
            conf,
            now: 0,
            next_seq: 0,
            in_flight: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            net: NetConfig::reliable(),
            disk: DiskMode::Synchronous,
            blocked: HashSet::new(),
            inv: Invariants::default(),
            stats: NetStats::default(),
        };
        for (id, (hard, log)) in ids.into_iter().zip(states) {
            let mut chain = vec![0];
            for e in &log {
                let h = chain_hash(*chain.last().expect("chain[0]"), e);
                chain.push(h);
                if c.inv
                    .prefixes
                    .insert((e.index, e.term), h)
                    .is_some_and(|prev| prev != h)
                {
                    panic!(
                        "the given logs break log matching at ({}, {})",
                        e.index, e.term
                    );
                }
            }
            let node = SimNode {
                raft: None,
                initial: c.conf.clone(),
                issued_hard: hard.clone(),
                hard,
                snapshot: None,
                log,
                chain,
                writes: Default::default(),
                applied: Vec::new(),
                sm: SimState::default(),
                snapshots: (0, 0),
                last_role: (Role::Follower, 0),
                last_commit: 0,
                restarts: 0,
            };
            c.nodes.insert(id.clone(), node);
            c.boot(&id);
        }
        c
    }

    /// The seed this cluster replays from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The servers' ids.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// Ticks since the start.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The core of a live server.
    pub fn raft(&self, id: &str) -> Option<&Raft> {
        self.nodes.get(id).and_then(|n| n.raft.as_ref())
    }

    /// What a server persisted.
    pub fn persisted_log(&self, id: &str) -> &[Entry] {
        &self.nodes[id].log
    }

    /// What a server's state machine applied since its last restart.
    pub fn applied(&self, id: &str) -> &[Entry] {
        &self.nodes[id].applied
    }

    /// The snapshot a server stored, if any: its (index, term).
    pub fn stored_snapshot(&self, id: &str) -> Option<(u64, u64)> {
        self.nodes[id]
            .snapshot
            .as_ref()
            .map(|s| (s.meta.index, s.meta.term))
    }

    /// Snapshots a server took and installed, over all its lives.
    pub fn snapshot_counts(&self, id: &str) -> (u64, u64) {
        self.nodes[id].snapshots
    }

    /// Whether the server is up.
    pub fn is_up(&self, id: &str) -> bool {
        self.raft(id).is_some()
    }

    fn boot(&mut self, id: &str) {
        let seed = self
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(self.rng.gen::<u64>());
        let node = self.nodes.get_mut(id).expect("known id");
        node.raft = Some(Raft::restore(
            id.to_string(),
            self.config.clone(),
            node.initial.clone(),
            node.hard.clone(),
            node.snapshot.clone(),
            node.log.clone(),
            seed,
        ));
        node.applied.clear();
        // What was not durable is gone.
        node.writes.clear();
        node.issued_hard = node.hard.clone();
        // The state machine starts from the snapshot, the log after it.
        let base = node.snapshot.as_ref().map_or(0, |s| s.meta.index);
        node.sm = match &node.snapshot {
            Some(s) => bincode::deserialize(&s.data).expect("the sim's own snapshot"),
            None => SimState::default(),
        };
        node.last_commit = base;
        node.chain = vec![0];
        node.chain
            .extend_from_slice(&self.inv.committed[..base as usize]);
        for e in node.log.iter().filter(|e| e.index > base) {
            if e.index != node.chain.len() as u64 {
                let what = format!(
                    "{id}: stored log has a gap: entry {} after {}",
                    e.index,
                    node.chain.len() - 1
                );
                self.fail(what);
            }
            let h = chain_hash(*node.chain.last().expect("chain[0]"), e);
            node.chain.push(h);
        }
        node.last_role = (Role::Follower, node.hard.term);
    }

    /// Start a fresh server `id` that knows no configuration: it waits to be
    /// added to the cluster (see [`Cluster::propose_membership`]).
    pub fn add_server(&mut self, id: &str) {
        assert!(!self.nodes.contains_key(id), "{id} exists already");
        self.ids.push(id.to_string());
        self.nodes.insert(
            id.to_string(),
            SimNode {
                raft: None,
                initial: Configuration::default(),
                hard: HardState::default(),
                snapshot: None,
                log: Vec::new(),
                issued_hard: HardState::default(),
                chain: vec![0],
                writes: Default::default(),
                applied: Vec::new(),
                sm: SimState::default(),
                snapshots: (0, 0),
                last_role: (Role::Follower, 0),
                last_commit: 0,
                restarts: 0,
            },
        );
        self.boot(id);
    }

    /// Ask `id` to change the membership, and process the result.
    pub fn propose_membership(
        &mut self,
        id: &str,
        change: &MembershipChange,
    ) -> Result<u64, ProposeError> {
        let Some(raft) = self.nodes.get_mut(id).and_then(|n| n.raft.as_mut()) else {
            return Err(ProposeError::NotLeader { leader: None });
        };
        let r = raft.propose_membership(change);
        self.process(id);
        r
    }

    /// Stop a server at once; its stable storage stays.
    pub fn crash(&mut self, id: &str) {
        if let Some(n) = self.nodes.get_mut(id) {
            n.raft = None;
        }
    }

    /// Cut the last `n` entries off a crashed server's stable log, as a disk
    /// that loses fsynced data would (outside Raft's fault model: the
    /// entries may have been acknowledged).
    pub fn lose_tail(&mut self, id: &str, n: usize) {
        if let Some(node) = self.nodes.get_mut(id).filter(|n| n.raft.is_none()) {
            let keep = node.log.len().saturating_sub(n);
            node.log.truncate(keep);
            node.chain.truncate(keep + 1);
            self.lost_on_purpose.insert(id.to_string());
        }
    }

    /// Start a crashed server again from its stable storage.
    pub fn restart(&mut self, id: &str) {
        if self.nodes.get(id).is_some_and(|n| n.raft.is_none()) {
            self.nodes.get_mut(id).expect("known").restarts += 1;
            self.boot(id);
        }
    }

    /// Lose every message `id` sent that has not arrived yet.
    pub fn drop_in_flight_from(&mut self, id: &str) {
        let before = self.in_flight.len();
        self.in_flight.retain(|_, m| m.from != id);
        self.stats.dropped += (before - self.in_flight.len()) as u64;
    }

    /// Block every message from `from` to `to`.
    pub fn cut_one_way(&mut self, from: &str, to: &str) {
        self.blocked.insert((from.to_string(), to.to_string()));
    }

    /// Block both directions between `a` and `b`.
    pub fn cut(&mut self, a: &str, b: &str) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Cut `id` off from everyone.
    pub fn isolate(&mut self, id: &str) {
        for other in self.ids.clone() {
            if other != id {
                self.cut(id, &other);
            }
        }
    }

    /// Split the cluster into groups that cannot talk to each other.
    pub fn partition(&mut self, groups: &[&[&str]]) {
        for (i, g) in groups.iter().enumerate() {
            for h in &groups[i + 1..] {
                for a in g.iter() {
                    for b in h.iter() {
                        self.cut(a, b);
                    }
                }
            }
        }
    }

    /// Remove every partition.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Propose a command at `id` and process the result.
    pub fn propose(&mut self, id: &str, command: Vec<u8>) -> Result<(u64, u64), ProposeError> {
        let Some(raft) = self.nodes.get_mut(id).and_then(|n| n.raft.as_mut()) else {
            return Err(ProposeError::NotLeader { leader: None });
        };
        let r = raft.propose(command);
        self.process(id);
        r
    }

    /// Advance time by one tick: tick every live server, then deliver every
    /// message due by now.
    pub fn tick(&mut self) {
        self.now += 1;
        for id in self.ids.clone() {
            self.complete_writes(&id);
        }
        for id in self.ids.clone() {
            if let Some(raft) = self.nodes.get_mut(&id).and_then(|n| n.raft.as_mut()) {
                raft.tick();
                self.process(&id);
            }
        }
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let msg = entry.remove();
            self.deliver(msg);
        }
    }

    /// Tick until `pred` holds (true) or `max_ticks` pass (false).
    pub fn run_until(&mut self, max_ticks: u64, mut pred: impl FnMut(&Cluster) -> bool) -> bool {
        for _ in 0..max_ticks {
            if pred(self) {
                return true;
            }
            self.tick();
        }
        pred(self)
    }

    /// Tick `n` times.
    pub fn run(&mut self, n: u64) {
        for _ in 0..n {
            self.tick();
        }
    }

    /// The live leader of the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.raft.as_ref().map(|r| (id, r)))
            .filter(|(_, r)| r.role() == Role::Leader)
            .max_by_key(|(_, r)| r.term())
            .map(|(id, _)| id.clone())
    }

    /// Tick until some server leads and a majority of live servers follow it
    /// in its term, or give up after `max_ticks`.
    pub fn run_until_leader(&mut self, max_ticks: u64) -> Option<NodeId> {
        let ok = self.run_until(max_ticks, |c| c.stable_leader().is_some());
        if ok {
            self.stable_leader()
        } else {
            None
        }
    }

    /// A leader that a quorum of its configuration acknowledges in its term.
    pub fn stable_leader(&self) -> Option<NodeId> {
        let l = self.leader()?;
        let leader = self.raft(&l)?;
        let term = leader.term();
        let followers: std::collections::BTreeSet<NodeId> = self
            .nodes
            .iter()
            .filter_map(|(id, n)| n.raft.as_ref().map(|r| (id, r)))
            .filter(|(_, r)| r.term() == term && r.leader() == Some(&l))
            .map(|(id, _)| id.clone())
            .collect();
        leader.configuration().is_quorum(&followers).then_some(l)
    }

    /// Whether every live server has committed `index`.
    pub fn committed_everywhere(&self, index: u64) -> bool {
        self.nodes
            .values()
            .filter_map(|n| n.raft.as_ref())
            .all(|r| r.commit_index() >= index)
    }

    /// The term of the entry some server applied at `index`, if any did.
    pub fn applied_term(&self, index: u64) -> Option<u64> {
        let i = usize::try_from(index).ok()?.checked_sub(1)?;
        self.inv.applied.get(i).map(|(t, _)| *t)
    }

    /// Whether any server has committed `index`.
    pub fn committed_anywhere(&self, index: u64) -> bool {
        self.inv.committed.len() as u64 >= index
    }

    fn deliver(&mut self, msg: Message) {
        let to = msg.to.clone();
        let Some(raft) = self.nodes.get_mut(&to).and_then(|n| n.raft.as_mut()) else {
            self.stats.dropped += 1;
            return;
        };
        self.stats.delivered += 1;
        raft.step(msg);
        self.process(&to);
    }

    fn send(&mut self, msg: Message) {
        self.stats.sent += 1;
        if self.blocked.contains(&(msg.from.clone(), msg.to.clone()))
            || self.rng.gen_bool(self.net.drop)
        {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.rng.gen_bool(self.net.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self
                .rng
                .gen_range(self.net.delay_min..=self.net.delay_max.max(self.net.delay_min));
            self.next_seq += 1;
            self.in_flight
                .insert((self.now + delay, self.next_seq), msg.clone());
        }
    }

    /// Persist (or start writing), send and apply a server's Ready,
    /// checking every property.
    fn process(&mut self, id: &str) {
        let background = match self.disk {
            DiskMode::Synchronous => None,
            DiskMode::Background { max_delay } => Some(max_delay),
        };
        let ready: Ready = match self.nodes.get_mut(id).and_then(|n| n.raft.as_mut()) {
            Some(r) if background.is_some() => r.take_ready_async(),
            Some(r) => r.take_ready(),
            None => return,
        };
        self.issue(id, &ready);
        let Ready {
            hard_state,
            log,
            messages,
            persisted_messages,
            restore,
            committed,
            anomalies,
        } = ready;
        if let Some(s) = restore {
            self.check_restore(id, &s);
        }
        // The servers' own exchange about a suspected loss, as the node
        // does it: the follower's answer comes from its current state.
        for a in anomalies {
            let Anomaly::SuspectedLoss {
                follower,
                acknowledged,
                term,
            } = a;
            let confirmed = self
                .raft(&follower)
                .and_then(|f| f.check_acknowledged(term, acknowledged));
            if let Some(has) = confirmed {
                // Simulated disks never lose what they acknowledged, unless
                // a test cut a log on purpose.
                if !self.lost_on_purpose.contains(&follower) {
                    self.fail(format!(
                        "{follower} lost acknowledged entries {}-{acknowledged}",
                        has + 1
                    ));
                }
                self.confirmed_losses += 1;
                if let Some(l) = self.nodes.get_mut(id).and_then(|n| n.raft.as_mut()) {
                    l.follower_lost_entries(&follower, term, has);
                }
            }
        }
        for m in messages {
            self.send(m);
        }
        for e in committed {
            self.check_apply(id, &e);
            let node = self.nodes.get_mut(id).expect("known");
            node.sm = SimState {
                index: e.index,
                hash: chain_hash(node.sm.hash, &e),
            };
            node.applied.push(e);
        }
        let has_write = hard_state.is_some() || !log.is_empty();
        let last = log
            .entries
            .last()
            .map(|e| (e.index, e.term))
            .or(log.snapshot.as_ref().map(|s| (s.meta.index, s.meta.term)));
        let write = PendingWrite {
            due: 0,
            hard: hard_state,
            snapshot: log.snapshot,
            compact_to: log.compact_to,
            truncate_from: log.truncate_from,
            entries: log.entries,
            messages: persisted_messages,
            last,
        };
        match background {
            None => self.complete(id, write),
            Some(max_delay) => {
                let delay = self.rng.gen_range(0..=max_delay);
                let node = self.nodes.get_mut(id).expect("known");
                if !has_write {
                    // Answers that promise nothing new still wait for the
                    // writes before them.
                    match node.writes.back_mut() {
                        Some(prev) => prev.messages.extend(write.messages),
                        None => {
                            for m in write.messages {
                                self.send(m);
                            }
                        }
                    }
                } else {
                    let after = node.writes.back().map_or(0, |w| w.due);
                    node.writes.push_back(PendingWrite {
                        due: (self.now + delay).max(after),
                        ..write
                    });
                }
            }
        }
        self.check_after(id);
        // Take a snapshot once the threshold is passed (stored with the
        // next Ready's write, as the node does).
        let node = self.nodes.get_mut(id).expect("known");
        if let Some(raft) = node.raft.as_mut().filter(|r| r.snapshot_due()) {
            assert_eq!(raft.applied_index(), node.sm.index, "{id}: applied");
            let data = bincode::serialize(&node.sm).expect("serializes");
            if raft.take_snapshot(data) > 0 {
                node.snapshots.0 += 1;
            }
        }
    }
}
