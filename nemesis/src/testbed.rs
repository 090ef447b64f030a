//! The testbed: a cluster of node processes behind a proxy on every link,
//! the faults applied to it, and the schedule that alternates faults and quiet.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cluster::{allocate, ClusterSpec, LocalCluster};
use faultline_node::change::{change_members, leader_view, ChangeFailed, ChangeOptions};
use faultline_node::client::Client;
use faultline_node::protocol::{ClientRequest, ClientResponse, MembersInfo, NodeStatus};
use faultline_node::raft::quorum::majority;
use faultline_node::raft::Role;

/// How long one step of a membership fault may take.
const MEMBERSHIP_DEADLINE: Duration = Duration::from_secs(20);
use crate::fault::{Fault, Target};
use crate::network::Network;
use crate::process::{free_port, ProcState};
use crate::proxy::{LinkRules, MessageFilter};

/// What to start.
#[derive(Clone, Debug)]
pub struct TestbedSpec {
    /// Number of nodes (the initial voters).
    pub nodes: usize,
    /// Spare slots for membership faults: wired through proxies, started
    /// only when a membership change adds them.
    pub spares: usize,
    /// The run directory.
    pub dir: PathBuf,
    /// How to run a node (the `faultline-node` binary).
    pub node_bin: crate::process::NodeCommand,
    /// Flags for every node.
    pub node_args: Vec<String>,
    /// Seeds the links' decisions and the nemesis' choices.
    pub seed: u64,
}

/// A running cluster with its network.
pub struct Testbed {
    /// The node processes.
    pub cluster: LocalCluster,
    /// The proxies.
    pub net: Network,
    rng: ChaCha8Rng,
    /// The slot a membership fault freed last (reused last).
    last_removed: Option<String>,
}

/// A fault as it was applied: what to undo at heal, and what to record.
#[derive(Clone, Debug, Serialize)]
pub struct Applied {
    /// The fault.
    pub fault: Fault,
    /// Its name (`partition-leader`, `loss:0.2@all`, ...).
    pub name: String,
    /// The nodes it hit.
    pub nodes: Vec<String>,
    /// What the history records as the event's value.
    pub value: Value,
    /// For a combined fault: its parts as applied, in order.
    #[serde(skip)]
    pub parts: Vec<Applied>,
}

impl Applied {
    /// History `f` of the start and the end of this fault.
    pub fn event_names(&self) -> (&'static str, &'static str) {
        match self.fault {
            Fault::Membership => return ("remove-node", "add-node"),
            Fault::MembershipSplit => return ("start-membership-split", "stop-membership-split"),
            _ => {}
        }
        match self.fault.family() {
            "partition" => ("start-partition", "stop-partition"),
            "loss" => ("start-loss", "stop-loss"),
            "delay" => ("start-delay", "stop-delay"),
            "duplicate" => ("start-duplicate", "stop-duplicate"),
            "reorder" => ("start-reorder", "stop-reorder"),
            "pause" => ("pause", "resume"),
            _ => ("kill", "restart"),
        }
    }
}

impl Testbed {
    /// Start proxies and nodes, and wait until every node answers.
    pub async fn start(spec: &TestbedSpec) -> anyhow::Result<Testbed> {
        // A port found free can be taken by another program before the node
        // binds it; the node then exits at once. Try again on fresh ports.
        let mut last_err = None;
        for _ in 0..3 {
            match Self::start_once(spec).await {
                Ok(tb) => return Ok(tb),
                Err(e) => {
                    tracing::warn!("starting the testbed failed, retrying on other ports: {e:#}");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.expect("three attempts"))
    }

    async fn start_once(spec: &TestbedSpec) -> anyhow::Result<Testbed> {
        let addrs = allocate(spec.nodes + spec.spares)?;
        let net = Network::start(&addrs, spec.seed)
            .await
            .context("starting the link proxies")?;
        let cspec = ClusterSpec {
            nodes: spec.nodes,
            dir: spec.dir.clone(),
            node_bin: spec.node_bin.clone(),
            node_args: spec.node_args.clone(),
        };
        let mut cluster = LocalCluster::start_with_links(&cspec, &addrs, &net.addresses())?;
        cluster.wait_ready(Duration::from_secs(30)).await?;
        Ok(Testbed {
            cluster,
            net,
            rng: ChaCha8Rng::seed_from_u64(spec.seed ^ 0x4E3E_5155),
            last_removed: None,
        })
    }

    /// The leader, asked of every node now: the working leader, else any
    /// node that says it leads (highest term); see
    /// [`faultline_node::leadership`].
    pub async fn leader(&self) -> Option<String> {
        let round = self.cluster.status_round(Duration::from_millis(300)).await;
        round
            .agreed_leader(None)
            .or_else(|| round.claimed_leader())
            .map(|(id, _)| id)
    }

    fn random_node(&mut self) -> String {
        let ids = self.cluster.ids();
        ids[self.rng.gen_range(0..ids.len())].clone()
    }

    fn shuffled(&mut self) -> Vec<String> {
        let mut ids = self.cluster.ids();
        ids.shuffle(&mut self.rng);
        ids
    }

    async fn resolve(&mut self, t: &Target) -> Vec<String> {
        match t {
            Target::All => self.cluster.ids(),
            Target::Node(id) => vec![id.clone()],
            Target::RandomNode => vec![self.random_node()],
            Target::Minority => {
                let k = (self.cluster.ids().len() - 1) / 2;
                let mut ids = self.shuffled();
                ids.truncate(k.max(1));
                ids.sort();
                ids
            }
            Target::Leader => match self.leader().await {
                Some(l) => vec![l],
                None => vec![self.random_node()],
            },
        }
    }

    /// Start a fault.
    pub async fn apply(&mut self, fault: &Fault) -> anyhow::Result<Applied> {
        if let Fault::Combined { parts, .. } = fault {
            return self.apply_parts(fault, parts).await;
        }
        let ids = self.cluster.ids();
        let n = ids.len();
        let (nodes, value) = match fault {
            Fault::PartitionNode | Fault::PartitionLeader => {
                let leader = self.leader().await;
                let victim = match (fault, &leader) {
                    (Fault::PartitionLeader, Some(l)) => l.clone(),
                    _ => self.random_node(),
                };
                let rest: Vec<String> = ids.iter().filter(|i| **i != victim).cloned().collect();
                let groups = vec![vec![victim.clone()], rest];
                self.net.partition(&groups);
                (vec![victim], json!(groups))
            }
            Fault::PartitionHalves => {
                let mut s = self.shuffled();
                let minority: Vec<String> = s.drain(..(n - 1) / 2).collect();
                let groups = vec![sorted(minority), sorted(s)];
                self.net.partition(&groups);
                (groups[0].clone(), json!(groups))
            }
            Fault::PartitionBridge { bridge } => {
                let bridge = match self.resolve(bridge).await.into_iter().next() {
                    Some(b) => b,
                    None => self.random_node(),
                };
                let s: Vec<String> = self
                    .shuffled()
                    .into_iter()
                    .filter(|i| *i != bridge)
                    .collect();
                let half = (n - 1) / 2;
                let a: BTreeSet<String> = s[..half].iter().cloned().collect();
                let b: BTreeSet<String> = s[half..].iter().cloned().collect();
                self.net.block_where(|x, y| {
                    (a.contains(x) && b.contains(y)) || (b.contains(x) && a.contains(y))
                });
                let value = json!({"halves": [a, b], "bridge": bridge});
                (vec![bridge], value)
            }
            Fault::PartitionRing => {
                let ring = self.shuffled();
                let majority = majority(n);
                let reach = majority / 2; // each node sees `reach` neighbours on each side
                let reach = if 2 * reach + 1 < majority {
                    reach + 1
                } else {
                    reach
                };
                let pos = |id: &str| ring.iter().position(|x| x == id).unwrap_or(0);
                self.net.block_where(|x, y| {
                    let d = pos(x).abs_diff(pos(y));
                    d.min(n - d) > reach
                });
                (
                    ring.clone(),
                    json!({"ring": ring, "each_sees_neighbours": reach}),
                )
            }
            Fault::OneWayIn | Fault::OneWayOut => {
                let leader = match self.leader().await {
                    Some(l) => l,
                    None => self.random_node(),
                };
                let inbound = matches!(fault, Fault::OneWayIn);
                self.net
                    .block_where(|x, y| if inbound { y == leader } else { x == leader });
                let others: Vec<String> = ids.iter().filter(|i| **i != leader).cloned().collect();
                let value = if inbound {
                    json!({"cut_from": others, "cut_to": [leader.clone()]})
                } else {
                    json!({"cut_from": [leader.clone()], "cut_to": others})
                };
                (vec![leader], value)
            }
            Fault::Loss { p, target } => self.message_fault(target, |r| r.loss = *p).await,
            Fault::Delay {
                ms,
                jitter_ms,
                target,
            } => {
                let (ms, jitter) = (
                    Duration::from_millis(*ms),
                    Duration::from_millis(*jitter_ms),
                );
                self.message_fault(target, |r| {
                    r.delay = ms;
                    r.jitter = jitter;
                })
                .await
            }
            Fault::Duplicate { p, target } => {
                self.message_fault(target, |r| r.duplicate = *p).await
            }
            Fault::Reorder { p, target } => self.message_fault(target, |r| r.reorder = *p).await,
            Fault::Pause { target } => {
                let nodes = self.resolve(target).await;
                for id in &nodes {
                    if let Some(p) = self.cluster.node_mut(id) {
                        p.pause().with_context(|| format!("pausing {id}"))?;
                    }
                }
                (nodes.clone(), json!(nodes))
            }
            Fault::Crash { target } => {
                let nodes = self.resolve(target).await;
                for id in &nodes {
                    if let Some(p) = self.cluster.node_mut(id) {
                        p.kill();
                    }
                }
                (nodes.clone(), json!(nodes))
            }
            Fault::Figure8 => self.figure8().await?,
            Fault::Restart { target, .. } => {
                let nodes = self.resolve(target).await;
                self.restart_now(&nodes).await?;
                (nodes.clone(), json!(nodes))
            }
            Fault::Membership => {
                if ids.len() < 2 {
                    anyhow::bail!(
                        "membership: only {} node(s) left; not removing any",
                        ids.len()
                    );
                }
                let victim = self.random_node();
                let info = self
                    .change_members(Vec::new(), vec![victim.clone()], MEMBERSHIP_DEADLINE)
                    .await
                    .with_context(|| format!("removing {victim}"))?;
                if let Some(p) = self.cluster.node_mut(&victim) {
                    p.kill();
                }
                self.cluster.set_active(&victim, false);
                self.last_removed = Some(victim.clone());
                (
                    vec![victim.clone()],
                    json!({"removed": victim, "voters": info.voters, "config_index": info.config_index}),
                )
            }
            Fault::MembershipSplit => {
                let free = self.cluster.free_slots();
                if free.len() < 2 {
                    anyhow::bail!(
                        "membership-split needs two free node slots; {} free ({})",
                        free.len(),
                        free.join(",")
                    );
                }
                let leader = self.leader().await.context("no leader to cut off")?;
                let fresh: Vec<String> = free[..2].to_vec();
                for s in &fresh {
                    self.start_fresh(s).await?;
                }
                let mut side = vec![leader.clone()];
                side.extend(fresh.iter().cloned());
                let others: Vec<String> = ids.iter().filter(|i| **i != leader).cloned().collect();
                let groups = vec![sorted(side.clone()), others];
                self.net.partition(&groups);
                // Ask the cut-off leader to grow the cluster by both at once.
                let add: Vec<(String, String)> = fresh
                    .iter()
                    .filter_map(|s| Some((s.clone(), self.cluster.listen_addr(s)?.to_string())))
                    .collect();
                let answer = match self.cluster.client_addr(&leader) {
                    Some(addr) => match Client::connect(addr, Duration::from_secs(1)).await {
                        Ok(c) => match c
                            .call(ClientRequest::ChangeMembers {
                                add,
                                remove: Vec::new(),
                            })
                            .await
                        {
                            Ok(ClientResponse::Changed { index }) => {
                                format!("committed at {index}")
                            }
                            Ok(ClientResponse::Error(e)) => e.to_string(),
                            Ok(other) => format!("{other:?}"),
                            Err(e) => e.to_string(),
                        },
                        Err(e) => e.to_string(),
                    },
                    None => "leader has no client address".into(),
                };
                (
                    side,
                    json!({"leader": leader, "fresh": fresh, "groups": groups, "answer": answer}),
                )
            }
            Fault::Combined { .. } => unreachable!("handled above"),
        };
        Ok(Applied {
            fault: fault.clone(),
            name: fault.to_string(),
            nodes,
            value,
            parts: Vec::new(),
        })
    }

    /// [`Fault::Figure8`], step by step. Returns the nodes left cut off (V
    /// and F) and what each step saw; a step that waits in vain ends the
    /// fault with an error (the links stay as they are until the heal).
    async fn figure8(&mut self) -> anyhow::Result<(Vec<String>, Value)> {
        const STEP: Duration = Duration::from_secs(15);
        let l = self
            .leader()
            .await
            .context("figure-8: no leader to start from")?;
        let t_l = self.cluster.status(&l, Duration::from_secs(1)).await?.term;
        let mut rest: Vec<String> = self.shuffled().into_iter().filter(|i| *i != l).collect();
        let f = rest.remove(0);
        let all: Vec<String> = self.net.ids().to_vec();
        let shape = |net: &Network, open: &dyn Fn(&str, &str) -> Option<LinkRules>| {
            for a in &all {
                for b in &all {
                    if a != b {
                        let cut = LinkRules {
                            blocked: true,
                            ..LinkRules::pass()
                        };
                        net.set(a, b, open(a, b).unwrap_or(cut));
                    }
                }
            }
        };
        let pair = |a: &str, b: &str, x: &str, y: &str| (a == x && b == y) || (a == y && b == x);
        let among =
            |g: &[String], a: &str, b: &str| g.iter().any(|i| i == a) && g.iter().any(|i| i == b);
        let lf = [l.clone(), f.clone()];

        // 1. L and F alone: L's clients leave an uncommitted tail on both.
        shape(&self.net, &|a, b| pair(a, b, &l, &f).then(LinkRules::pass));
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // 2. The other three elect W over links that carry only votes: W's
        // first entry (and every later one) reaches nobody, however long
        // the controller takes to see that W leads. Only one of the three
        // can win: a winner needs both others, and once it holds an entry
        // of its term neither of them has, it refuses them its vote.
        let votes_only = LinkRules {
            filter: Some(MessageFilter::VotesOnly),
            ..LinkRules::pass()
        };
        shape(&self.net, &|a, b| {
            if pair(a, b, &l, &f) {
                Some(LinkRules::pass())
            } else {
                among(&rest, a, b).then(|| votes_only.clone())
            }
        });
        let (w, w_status) = self
            .first_leader(&rest, t_l, STEP)
            .await
            .context("figure-8 step 2: the other three elected no leader")?;
        let pq: Vec<String> = rest.iter().filter(|i| **i != w).cloned().collect();

        // 3. L, F and P: V, one of L and F, is elected. (No delay on P's
        // links: with 200 ms each way, P's own campaigns outbid L's and F's
        // terms again and again, and step 3 often found no leader in 15 s.)
        // P gets L's old entries but none of V's own term until either V's
        // commit index moves (a leader counting old entries' replicas) or
        // V has tried to send P an entry of its own term and P's answers to
        // the old ones have had time to come back (a correct leader); then
        // V's own entries may pass too (a correct V commits with them), and
        // P is cut off as soon as V's commit index moves.
        let (p, q) = (pq[0].clone(), pq[1].clone());
        let to_p = |filter: Option<MessageFilter>, a: &str, b: &str| {
            if pair(a, b, &l, &f) {
                Some(LinkRules::pass())
            } else if b == p && (a == l || a == f) {
                Some(LinkRules {
                    filter,
                    ..LinkRules::pass()
                })
            } else if a == p && (b == l || b == f) {
                Some(LinkRules::pass())
            } else {
                None
            }
        };
        let old_only = Some(MessageFilter::EntriesUpToTerm(t_l));
        shape(&self.net, &|a, b| to_p(old_only, a, b));
        let held_back = || {
            lf.iter()
                .filter_map(|a| self.net.link(a, &p))
                .map(|k| k.stats().filtered)
                .sum::<u64>()
        };
        let filtered_before = held_back();
        // L and F could commit nothing since step 1 (two of five): what
        // either knows committed now is where V's commit index starts.
        let mut commit_before = None;
        for id in &lf {
            if let Ok(s) = self.cluster.status(id, Duration::from_secs(1)).await {
                commit_before = commit_before.max(Some(s.commit_index));
            }
        }
        let commit_before = commit_before
            .context("figure-8 step 3: neither L nor F answered its status request")?;
        let (v, v_status) = self
            .first_leader(&lf, w_status.term, STEP)
            .await
            .context("figure-8 step 3: neither L nor F was elected with P")?;
        let answers = Duration::from_secs(5);
        let mut commit = commit_before;
        let mut lifted = false;
        let mut lift_at: Option<Instant> = None;
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            if let Ok(s) = self.cluster.status(&v, Duration::from_millis(100)).await {
                if s.commit_index > commit_before {
                    commit = s.commit_index;
                    break;
                }
            }
            if !lifted {
                if lift_at.is_none() && held_back() > filtered_before {
                    lift_at = Some(Instant::now() + answers);
                }
                if lift_at.is_some_and(|t| Instant::now() >= t) {
                    shape(&self.net, &|a, b| to_p(None, a, b));
                    lifted = true;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shape(&self.net, &|a, b| pair(a, b, &l, &f).then(LinkRules::pass));

        // 4. W, P and Q meet again; V and F stay cut off until the heal.
        let wpq = [w.clone(), p.clone(), q.clone()];
        shape(&self.net, &|a, b| {
            (pair(a, b, &l, &f) || among(&wpq, a, b)).then(LinkRules::pass)
        });
        let last = self.first_leader(&wpq, v_status.term, STEP).await;
        let value = json!({
            "old_leader": l, "follower": f, "first": w, "first_term": w_status.term,
            "second": v, "second_term": v_status.term, "third": p,
            "commit_before": commit_before, "commit_after": commit,
            "own_entries_held_back": !lifted,
            "last": last.as_ref().map(|(id, s)| json!({"leader": id, "term": s.term})),
        });
        Ok((sorted(lf.to_vec()), value))
    }

    /// The first of `ids` to say it leads a term above `above_term`, polled
    /// every 10 ms for at most `within`.
    async fn first_leader(
        &self,
        ids: &[String],
        above_term: u64,
        within: Duration,
    ) -> Option<(String, NodeStatus)> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let polls = futures::future::join_all(ids.iter().map(|id| async move {
                (
                    id.clone(),
                    self.cluster.status(id, Duration::from_millis(100)).await,
                )
            }))
            .await;
            for (id, s) in polls {
                if let Ok(s) = s {
                    if s.role == Role::Leader && s.term > above_term {
                        return Some((id, s));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Kill `nodes` and start them again at once on their data; waits until
    /// each answers.
    async fn restart_now(&mut self, nodes: &[String]) -> anyhow::Result<()> {
        for id in nodes {
            if let Some(p) = self.cluster.node_mut(id) {
                p.kill();
            }
            self.launch(id, false)
                .await
                .with_context(|| format!("restarting {id}"))?;
        }
        Ok(())
    }

    /// One more round of a crash loop ([`Fault::Restart`]): the nodes it hit
    /// are killed and restarted again. Other faults: nothing to do.
    pub async fn restart_again(&mut self, applied: &Applied) -> anyhow::Result<()> {
        if matches!(applied.fault, Fault::Restart { .. }) {
            self.restart_now(&applied.nodes).await?;
        }
        Ok(())
    }

    /// Start every part of a combined fault now, in order (the schedule
    /// staggers them instead; see [`run_schedule`]).
    async fn apply_parts(&mut self, fault: &Fault, parts: &[Fault]) -> anyhow::Result<Applied> {
        let mut applied: Vec<Applied> = Vec::new();
        for p in parts {
            match Box::pin(self.apply(p)).await {
                Ok(a) => applied.push(a),
                Err(e) => {
                    for a in applied.iter().rev() {
                        let _ = Box::pin(self.heal(a)).await;
                    }
                    return Err(e.context(format!("starting {p}")));
                }
            }
        }
        let mut nodes: Vec<String> = applied.iter().flat_map(|a| a.nodes.clone()).collect();
        nodes.sort();
        nodes.dedup();
        Ok(Applied {
            fault: fault.clone(),
            name: fault.to_string(),
            nodes,
            value: Value::Array(applied.iter().map(|a| a.value.clone()).collect()),
            parts: applied,
        })
    }

    async fn message_fault(
        &mut self,
        target: &Target,
        f: impl Fn(&mut LinkRules),
    ) -> (Vec<String>, Value) {
        let nodes: BTreeSet<String> = self.resolve(target).await.into_iter().collect();
        self.net.update_touching(&nodes, f);
        let nodes: Vec<String> = nodes.into_iter().collect();
        (nodes.clone(), json!(nodes))
    }

    /// End a fault. Returns what the history's end event records beyond the
    /// fault's name (`null` for most faults; the added node for `membership`).
    pub async fn heal(&mut self, applied: &Applied) -> anyhow::Result<Value> {
        if !applied.parts.is_empty() {
            // The last part first; every part is healed even if one fails.
            let mut first_err = None;
            let mut details = Vec::new();
            for a in applied.parts.iter().rev() {
                match Box::pin(self.heal(a)).await {
                    Ok(v) => details.push(v),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            return match first_err {
                Some(e) => Err(e),
                None => Ok(Value::Array(details)),
            };
        }
        match applied.fault {
            Fault::Pause { .. } => {
                for id in &applied.nodes {
                    if let Some(p) = self.cluster.node_mut(id) {
                        p.resume().with_context(|| format!("resuming {id}"))?;
                    }
                }
            }
            Fault::Crash { .. } => {
                for id in &applied.nodes {
                    self.launch(id, false)
                        .await
                        .with_context(|| format!("restarting {id}"))?;
                }
            }
            Fault::Membership => {
                let mut free = self.cluster.free_slots();
                // Reuse the slot just freed only when there is no other.
                if free.len() > 1 {
                    free.retain(|s| Some(s) != self.last_removed.as_ref());
                }
                let slot = free
                    .first()
                    .cloned()
                    .context("membership: no free node slot")?;
                self.start_fresh(&slot).await?;
                let addr = self
                    .cluster
                    .listen_addr(&slot)
                    .context("slot without address")?
                    .to_string();
                if let Err(e) = self
                    .change_members(vec![(slot.clone(), addr)], Vec::new(), MEMBERSHIP_DEADLINE)
                    .await
                {
                    // Leave the slot free rather than half-joined.
                    let _ = self
                        .change_members(Vec::new(), vec![slot.clone()], Duration::from_secs(5))
                        .await;
                    if let Some(p) = self.cluster.node_mut(&slot) {
                        p.kill();
                    }
                    self.cluster.set_active(&slot, false);
                    return Err(e.context(format!("adding {slot}")));
                }
                let voters = self.leader_members().await.map(|m| m.voters);
                return Ok(json!({"added": slot, "voters": voters}));
            }
            Fault::MembershipSplit => {
                self.net.heal();
                let fresh: Vec<String> = applied.nodes[1..].to_vec();
                // Let the cluster settle, then take out whichever fresh node got in.
                let deadline = Instant::now() + MEMBERSHIP_DEADLINE;
                let mut view = None;
                while Instant::now() < deadline {
                    if let Some(m) = self.leader_members().await {
                        let settled = m.committed && !m.changing;
                        view = Some(m);
                        if settled {
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let remove: Vec<String> = view
                    .map(|m| {
                        fresh
                            .iter()
                            .filter(|s| m.voters.contains(s) || m.learners.contains(s))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let result = if remove.is_empty() {
                    Ok(())
                } else {
                    self.change_members(Vec::new(), remove, MEMBERSHIP_DEADLINE)
                        .await
                        .map(|_| ())
                };
                for s in &fresh {
                    if let Some(p) = self.cluster.node_mut(s) {
                        p.kill();
                    }
                    self.cluster.set_active(s, false);
                }
                result.context("dropping the fresh nodes again")?;
            }
            // A crash loop leaves each node running after its last round and
            // touched no link: nothing to undo (healing every link here would
            // end the other parts of a combined fault early).
            Fault::Restart { .. } => {}
            _ => self.net.heal(),
        }
        Ok(Value::Null)
    }

    /// Start a new server (empty data directory, `--join`) in a free slot
    /// and wait until it answers.
    async fn start_fresh(&mut self, slot: &str) -> anyhow::Result<()> {
        self.cluster.set_active(slot, true);
        self.launch(slot, true).await
    }

    /// Start the node in `slot` (fresh: on an empty data directory, to join)
    /// and wait until it answers as itself. Its ports were found free when
    /// the testbed started, but another program may have taken one since
    /// (a spare slot waits long): if the node exits at start-up, it moves to
    /// new free ports, and the links into it follow.
    async fn launch(&mut self, slot: &str, fresh: bool) -> anyhow::Result<()> {
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                let client = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                tracing::warn!(%slot, %listen, %client, "node could not start on its ports ({last}); moving it");
                self.cluster.move_node(slot, listen, client);
                self.net.set_upstream(slot, listen);
            }
            let p = self
                .cluster
                .node_mut(slot)
                .with_context(|| format!("no slot {slot}"))?;
            if fresh { p.start_fresh() } else { p.restart() }
                .with_context(|| format!("starting {slot}"))?;
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let down = self
                    .cluster
                    .node_mut(slot)
                    .is_none_or(|p| p.state() == ProcState::Down);
                if down {
                    last = "it exited at start-up".into();
                    break;
                }
                // The answer must come from this node, not from another
                // program that took its client port.
                if let Ok(s) = self.cluster.status(slot, Duration::from_millis(300)).await {
                    if s.id == slot {
                        return Ok(());
                    }
                }
                if Instant::now() > deadline {
                    anyhow::bail!("{slot} did not answer within 15 s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        anyhow::bail!("{slot} could not start: {last}")
    }

    /// The configuration as the leader knows it.
    async fn leader_members(&self) -> Option<MembersInfo> {
        leader_view(&self.cluster.client_addrs(), Duration::from_millis(500))
            .await
            .ok()
    }

    /// Change the membership through whichever node will take the request,
    /// and wait until a node shows the change complete, retrying while
    /// another change is in progress, there is no leader, or an accepted
    /// change was lost with its leader (see [`faultline_node::change`]).
    pub async fn change_members(
        &self,
        add: Vec<(String, String)>,
        remove: Vec<String>,
        within: Duration,
    ) -> anyhow::Result<MembersInfo> {
        // Nodes to ask: the ones that stay.
        let askable: Vec<(String, SocketAddr)> = self
            .cluster
            .client_addrs()
            .into_iter()
            .filter(|(id, _)| !remove.contains(id) && !add.iter().any(|(a, _)| a == id))
            .collect();
        let opts = ChangeOptions {
            within,
            call_timeout: Duration::from_secs(3),
            retry: true,
        };
        match change_members(&askable, &add, &remove, opts).await {
            Ok(done) => Ok(done.members),
            Err(e @ ChangeFailed::Refused(_)) => {
                anyhow::bail!("the cluster refused the change: {e}")
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Heal the network, resume paused nodes, restart dead ones.
    pub fn heal_all(&mut self) -> anyhow::Result<()> {
        self.net.heal();
        for p in self.cluster.nodes_mut() {
            match p.state() {
                ProcState::Paused => p.resume().with_context(|| format!("resuming {}", p.id()))?,
                ProcState::Down => p
                    .restart()
                    .with_context(|| format!("restarting {}", p.id()))?,
                ProcState::Running => {}
            }
        }
        Ok(())
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// How faults are scheduled.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// The kinds to choose from.
    pub faults: Vec<Fault>,
    /// How long each fault lasts, seconds.
    pub fault_secs: f64,
    /// How long each quiet period lasts, seconds.
    pub quiet_secs: f64,
    /// Random durations (0.5x..1.5x) and a random kind each time, instead of
    /// fixed durations and the kinds in turn.
    pub random: bool,
    /// Seed of the plan.
    pub seed: u64,
}

/// One fault of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// Start, ms after the run's start.
    pub start_ms: u64,
    /// Heal, ms after the run's start.
    pub end_ms: u64,
    /// What.
    pub fault: Fault,
}

/// The plan for a run of `time_limit`: quiet, fault, quiet, fault, ...; every
/// fault heals before the time limit. Same config and seed, same plan.
pub fn plan(cfg: &ScheduleConfig, time_limit: Duration) -> Vec<PlannedFault> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5C4E_D01E);
    let limit = time_limit.as_millis() as u64;
    let mut out = Vec::new();
    if cfg.faults.is_empty() {
        return out;
    }
    let mut t = 0u64;
    let mut turn = 0usize;
    let scale = |rng: &mut ChaCha8Rng, secs: f64| -> u64 {
        let f = if cfg.random {
            rng.gen_range(0.5..1.5)
        } else {
            1.0
        };
        (secs * f * 1000.0).max(1.0) as u64
    };
    loop {
        t += scale(&mut rng, cfg.quiet_secs);
        let d = scale(&mut rng, cfg.fault_secs);
        if t + d > limit {
            break;
        }
        let fault = if cfg.random {
            cfg.faults[rng.gen_range(0..cfg.faults.len())].clone()
        } else {
            cfg.faults[turn % cfg.faults.len()].clone()
        };
        turn += 1;
        out.push(PlannedFault {
            start_ms: t,
            end_ms: t + d,
            fault,
        });
        t += d;
    }
    out
}

/// A fault as it ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecutedFault {
    /// Its name.
    pub name: String,
    /// Its family (`partition`, `loss`, `pause`, ...).
    pub family: String,
    /// When it started, ms after the run's start.
    pub start_ms: u64,
    /// When it healed.
    pub end_ms: u64,
    /// The nodes it hit.
    pub nodes: Vec<String>,
    /// The recorded value.
    pub value: Value,
    /// Set when applying or healing failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where nemesis events go: `(f, value)`; the workload's recorder stamps them.
pub type EventSink<'a> = &'a (dyn Fn(&str, Value) + Sync);

/// Run `plan` against the testbed, timed from `start`. Returns what ran.
pub async fn run_schedule(
    tb: &mut Testbed,
    plan: &[PlannedFault],
    start: Instant,
    sink: EventSink<'_>,
) -> Vec<ExecutedFault> {
    let mut ran = Vec::new();
    let at = |ms: u64| tokio::time::Instant::from_std(start + Duration::from_millis(ms));
    for p in plan {
        // A combined fault starts its parts one slice apart (or all at once) and heals them
        // together at the end, the last first.
        let (parts, together): (Vec<Fault>, bool) = match &p.fault {
            Fault::Combined { parts, together } => (parts.clone(), *together),
            f => (vec![f.clone()], false),
        };
        let slice = if together {
            0
        } else {
            (p.end_ms - p.start_ms) / parts.len() as u64
        };
        let mut active: Vec<(Applied, u64)> = Vec::new();
        // Crash loops among the active parts: (index in `active`, period, next kill).
        let mut loops: Vec<(usize, u64, u64)> = Vec::new();
        for (k, part) in parts.iter().enumerate() {
            let part_at = p.start_ms + k as u64 * slice;
            crash_loops(tb, &active, &mut loops, part_at, start, sink).await;
            tokio::time::sleep_until(at(part_at)).await;
            let started = start.elapsed().as_millis() as u64;
            match tb.apply(part).await {
                Ok(applied) => {
                    let (start_f, _) = applied.event_names();
                    sink(
                        start_f,
                        json!({"fault": applied.name, "nodes": applied.nodes, "detail": applied.value}),
                    );
                    if let Fault::Restart { every_ms, .. } = applied.fault {
                        loops.push((active.len(), every_ms, started + every_ms));
                    }
                    active.push((applied, started));
                }
                Err(e) => ran.push(ExecutedFault {
                    name: part.to_string(),
                    family: part.family().into(),
                    start_ms: started,
                    end_ms: started,
                    nodes: vec![],
                    value: Value::Null,
                    error: Some(format!("{e:#}")),
                }),
            }
        }
        crash_loops(tb, &active, &mut loops, p.end_ms, start, sink).await;
        tokio::time::sleep_until(at(p.end_ms)).await;
        let mut healed = Vec::new();
        for (applied, started) in active.into_iter().rev() {
            let (_, stop_f) = applied.event_names();
            let (detail, error) = match tb.heal(&applied).await {
                Ok(v) => (v, None),
                Err(e) => (Value::Null, Some(format!("{e:#}"))),
            };
            let mut event = json!({"fault": applied.name, "nodes": applied.nodes});
            if !detail.is_null() {
                event["detail"] = detail;
            }
            if let Some(e) = &error {
                event["error"] = json!(e);
            }
            sink(stop_f, event);
            healed.push(ExecutedFault {
                name: applied.name.clone(),
                family: applied.fault.family().into(),
                start_ms: started,
                end_ms: start.elapsed().as_millis() as u64,
                nodes: applied.nodes,
                value: applied.value,
                error,
            });
        }
        healed.reverse();
        ran.extend(healed);
    }
    ran
}

/// Run the crash loops among `active` until `until_ms` (after `start`):
/// each kills and restarts its nodes whenever its period is up. A restart
/// that fails is recorded in the history and ends that loop.
async fn crash_loops(
    tb: &mut Testbed,
    active: &[(Applied, u64)],
    loops: &mut Vec<(usize, u64, u64)>,
    until_ms: u64,
    start: Instant,
    sink: EventSink<'_>,
) {
    let at = |ms: u64| tokio::time::Instant::from_std(start + Duration::from_millis(ms));
    // Bounded: every round moves one loop's next kill forward by its period
    // (at least 50 ms), so there are at most (until - now) / 50 rounds per loop.
    while let Some(k) = (0..loops.len())
        .filter(|&k| loops[k].2 < until_ms)
        .min_by_key(|&k| loops[k].2)
    {
        let (i, every, due) = loops[k];
        tokio::time::sleep_until(at(due)).await;
        let applied = &active[i].0;
        match tb.restart_again(applied).await {
            Ok(()) => {
                // A slow start-up pushes the next kill back, not forward.
                let now = start.elapsed().as_millis() as u64;
                loops[k].2 = (due + every).max(now + every / 2);
            }
            Err(e) => {
                sink(
                    "restart",
                    json!({"fault": applied.name, "nodes": applied.nodes, "error": format!("{e:#}")}),
                );
                loops.remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_repeat_from_their_seed_and_end_before_the_limit() {
        let cfg = ScheduleConfig {
            faults: vec![
                Fault::PartitionLeader,
                Fault::Pause {
                    target: Target::Leader,
                },
            ],
            fault_secs: 5.0,
            quiet_secs: 5.0,
            random: true,
            seed: 42,
        };
        let a = plan(&cfg, Duration::from_secs(60));
        assert_eq!(a, plan(&cfg, Duration::from_secs(60)));
        assert!(!a.is_empty());
        assert!(a
            .iter()
            .all(|p| p.end_ms <= 60_000 && p.start_ms < p.end_ms));
        assert!(a.windows(2).all(|w| w[0].end_ms < w[1].start_ms));
        let other = plan(
            &ScheduleConfig {
                seed: 43,
                ..cfg.clone()
            },
            Duration::from_secs(60),
        );
        assert_ne!(a, other);
        let fixed = plan(
            &ScheduleConfig {
                random: false,
                ..cfg
            },
            Duration::from_secs(30),
        );
        assert_eq!(
            fixed
                .iter()
                .map(|p| (p.start_ms, p.end_ms))
                .collect::<Vec<_>>(),
            vec![(5000, 10000), (15000, 20000), (25000, 30000)]
        );
        assert_eq!(
            fixed[1].fault,
            Fault::Pause {
                target: Target::Leader
            }
        );
    }
}
