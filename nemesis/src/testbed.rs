//! The testbed: a cluster of node processes behind a proxy on every link,
//! the faults applied to it, and the schedule that alternates faults and quiet.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cluster::{allocate, ClusterSpec, LocalCluster};
use crate::fault::{Fault, Target};
use crate::network::Network;
use crate::process::ProcState;
use crate::proxy::LinkRules;

/// What to start.
#[derive(Clone, Debug)]
pub struct TestbedSpec {
    /// Number of nodes.
    pub nodes: usize,
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
}

impl Applied {
    /// History `f` of the start and the end of this fault.
    pub fn event_names(&self) -> (&'static str, &'static str) {
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
        let addrs = allocate(spec.nodes)?;
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
        })
    }

    /// The leader, asked of every node now: the one a majority follows, else
    /// any node that says it leads (highest term).
    pub async fn leader(&self) -> Option<String> {
        if let Some(l) = self.cluster.current_leader().await {
            return Some(l);
        }
        let mut best: Option<(u64, String)> = None;
        for id in self.cluster.ids() {
            if let Ok(s) = self.cluster.status(&id, Duration::from_millis(300)).await {
                if s.role == "leader" && best.as_ref().is_none_or(|(t, _)| s.term > *t) {
                    best = Some((s.term, id));
                }
            }
        }
        best.map(|(_, id)| id)
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
            Fault::PartitionBridge => {
                let s = self.shuffled();
                let half = (n - 1) / 2;
                let bridge = s[n - 1].clone();
                let a: BTreeSet<String> = s[..half].iter().cloned().collect();
                let b: BTreeSet<String> = s[half..n - 1].iter().cloned().collect();
                self.net.block_where(|x, y| {
                    (a.contains(x) && b.contains(y)) || (b.contains(x) && a.contains(y))
                });
                let value = json!({"halves": [a, b], "bridge": bridge});
                (vec![bridge], value)
            }
            Fault::PartitionRing => {
                let ring = self.shuffled();
                let majority = n / 2 + 1;
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
        };
        Ok(Applied {
            fault: fault.clone(),
            name: fault.to_string(),
            nodes,
            value,
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

    /// End a fault.
    pub async fn heal(&mut self, applied: &Applied) -> anyhow::Result<()> {
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
                    if let Some(p) = self.cluster.node_mut(id) {
                        p.restart().with_context(|| format!("restarting {id}"))?;
                    }
                }
            }
            _ => self.net.heal(),
        }
        Ok(())
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
        tokio::time::sleep_until(at(p.start_ms)).await;
        let started = start.elapsed().as_millis() as u64;
        let applied = match tb.apply(&p.fault).await {
            Ok(a) => a,
            Err(e) => {
                ran.push(ExecutedFault {
                    name: p.fault.to_string(),
                    family: p.fault.family().into(),
                    start_ms: started,
                    end_ms: started,
                    nodes: vec![],
                    value: Value::Null,
                    error: Some(format!("{e:#}")),
                });
                continue;
            }
        };
        let (start_f, stop_f) = applied.event_names();
        sink(
            start_f,
            json!({"fault": applied.name, "nodes": applied.nodes, "detail": applied.value}),
        );
        tokio::time::sleep_until(at(p.end_ms)).await;
        let error = tb.heal(&applied).await.err().map(|e| format!("{e:#}"));
        sink(
            stop_f,
            json!({"fault": applied.name, "nodes": applied.nodes}),
        );
        ran.push(ExecutedFault {
            name: applied.name.clone(),
            family: p.fault.family().into(),
            start_ms: started,
            end_ms: start.elapsed().as_millis() as u64,
            nodes: applied.nodes,
            value: applied.value,
            error,
        });
    }
    ran
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
