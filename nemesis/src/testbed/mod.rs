//! The testbed: a cluster of node processes on a network — a proxy on
//! every link, or the kernel's network in per-node namespaces
//! ([`crate::net`]) — and the faults applied to it. This file holds what a testbed is, how it
//! starts, how a fault's target resolves to nodes, and the dispatch of
//! [`Testbed::apply`] and [`Testbed::heal`] to one file per family:
//! [`partition`] (link cuts), [`message`] (loss, delay, duplication,
//! reordering), [`process`] (pause, crash, restart), [`membership`] and
//! [`figure8`]. The schedule that alternates faults and quiet periods is
//! [`crate::schedule`].

mod disk;
mod figure8;
mod membership;
mod message;
mod partition;
mod process;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::{allocate, direct_links, ClusterSpec, LocalCluster};
use crate::fault::{Class, Fault, Shape, Target};
use crate::net::kernel::KernelNet;
use crate::net::network::Network;
use crate::net::{Net, NetBackend};
use crate::process::ProcState;

/// The program a target starts its members with (copied to, or looked
/// for on, the hosts of a `--hosts` run).
fn member_program(target: &std::sync::Arc<dyn faultline_sut::Target>) -> PathBuf {
    let probe = target.command(&faultline_sut::Member {
        id: "n1",
        listen: ([127, 0, 0, 1], 1).into(),
        client: ([127, 0, 0, 1], 2).into(),
        peers: &[],
        data_dir: std::path::Path::new("."),
        settings: &[],
        voters: &[],
        join: false,
    });
    PathBuf::from(probe.get_program())
}

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
    /// The system the nodes run (faultline's node, etcd).
    pub target: std::sync::Arc<dyn faultline_sut::Target>,
    /// Flags for every node.
    pub node_args: Vec<String>,
    /// Seeds the links' decisions and the nemesis' choices.
    pub seed: u64,
    /// The network backend.
    pub net: NetBackend,
    /// The inventory of a `--hosts` run.
    pub hosts: Option<PathBuf>,
    /// Put the disk layer (FUSE) under every member's data directory,
    /// following this model (for disk faults, or to measure what it
    /// costs); none: no layer.
    pub disk: Option<faultline_rundir::spec::DiskModel>,
}

/// A running cluster with its network.
pub struct Testbed {
    /// The node processes.
    pub cluster: LocalCluster,
    /// The network: the proxies, or the kernel's.
    pub net: Net,
    rng: ChaCha8Rng,
    /// The tag of the fault being applied (every fault gets a new one; the
    /// kernel backend marks that fault's rules with it).
    tag: u64,
    /// The slot a membership fault freed last (reused last).
    last_removed: Option<String>,
    /// The disk layers under the members, when the run has disk faults;
    /// after the cluster, so that the members are gone when they unmount.
    pub disks: Option<crate::disk::Disks>,
    /// A `--hosts` run's hosts; last, so that the nodes and the rules are
    /// gone before the run ends on each host.
    pub hosts: Option<crate::hosts::HostsRun>,
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
    /// The tag of its network rules.
    #[serde(skip)]
    pub tag: u64,
}

impl Applied {
    /// History `f` of the start and the end of this fault.
    pub fn event_names(&self) -> (String, String) {
        match self.fault.class() {
            Class::Membership { split: false } => ("remove-node".into(), "add-node".into()),
            Class::Membership { split: true } => {
                faultline_rundir::records::event_names("membership-split")
            }
            Class::Partition(_)
            | Class::Figure8
            | Class::Message(..)
            | Class::Process(_)
            | Class::Disk(..)
            | Class::Combined { .. } => {
                faultline_rundir::records::event_names(self.fault.family().name())
            }
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
                // Only a port taken meanwhile is worth another try; a node
                // that fails for itself fails again.
                Err(e) if !format!("{e:#}").to_ascii_lowercase().contains("in use") => {
                    return Err(e)
                }
                Err(e) => {
                    tracing::warn!("starting the testbed failed, retrying on other ports: {e:#}");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.expect("three attempts"))
    }

    async fn start_once(spec: &TestbedSpec) -> anyhow::Result<Testbed> {
        let mut cspec = ClusterSpec {
            nodes: spec.nodes,
            dir: spec.dir.clone(),
            target: spec.target.clone(),
            node_args: spec.node_args.clone(),
            namespaces: Default::default(),
            hosts: Default::default(),
        };
        let mut hosts = None;
        let disks = if let Some(model) = spec.disk {
            anyhow::ensure!(
                spec.net != NetBackend::Hosts,
                "disk faults are not offered on --hosts yet: run them on this machine"
            );
            let ids: Vec<String> = (1..=spec.nodes + spec.spares)
                .map(|i| format!("n{i}"))
                .collect();
            Some(crate::disk::Disks::mount(&spec.dir, &ids, model)?)
        } else {
            None
        };
        let (mut cluster, net) = match spec.net {
            NetBackend::Proxy if !spec.target.capabilities().behind_link_proxy => {
                // Its members find each other at one advertised address
                // each: no proxy can sit between them.
                let addrs = allocate(spec.nodes + spec.spares)?;
                let cluster =
                    LocalCluster::start_with_links(&cspec, &addrs, &direct_links(&addrs))?;
                (cluster, Net::Direct)
            }
            NetBackend::Proxy => {
                let addrs = allocate(spec.nodes + spec.spares)?;
                let net = Network::start(&addrs, spec.seed)
                    .await
                    .context("starting the link proxies")?;
                let cluster = LocalCluster::start_with_links(&cspec, &addrs, &net.addresses())?;
                (cluster, Net::Proxy(net))
            }
            NetBackend::Kernel => {
                let ids: Vec<String> = (1..=spec.nodes + spec.spares)
                    .map(|i| format!("n{i}"))
                    .collect();
                let net = KernelNet::start(&ids).context("building the run's kernel network")?;
                let addrs = net.addrs();
                cspec.node_args.extend(
                    spec.target
                        .capabilities()
                        .sealed_net_args
                        .iter()
                        .map(|a| a.to_string()),
                );
                cspec.namespaces = ids
                    .iter()
                    .filter_map(|id| Some((id.clone(), net.namespace(id)?)))
                    .collect();
                let cluster =
                    LocalCluster::start_with_links(&cspec, &addrs, &direct_links(&addrs))?;
                (cluster, Net::Kernel(net))
            }
            NetBackend::Hosts => {
                let inventory = spec
                    .hosts
                    .as_ref()
                    .context("the hosts backend needs an inventory (--hosts FILE)")?;
                let caps = spec.target.capabilities();
                let run = crate::hosts::HostsRun::start(
                    inventory,
                    spec.nodes + spec.spares,
                    &spec.dir,
                    &member_program(&spec.target),
                    caps.copied_to_hosts,
                )
                .await?;
                let addrs = run.addrs();
                let net = KernelNet::on_hosts(&run)?;
                if let Some(flag) = caps.host_addr_flag {
                    for a in &addrs {
                        cspec.node_args.push(flag.to_string());
                        cspec.node_args.push(a.listen.ip().to_string());
                    }
                }
                cspec.hosts = addrs
                    .iter()
                    .map(|a| a.id.clone())
                    .zip(run.hosts().iter().cloned())
                    .collect();
                hosts = Some(run);
                let cluster =
                    LocalCluster::start_with_links(&cspec, &addrs, &direct_links(&addrs))?;
                (cluster, Net::Kernel(net))
            }
        };
        if let Err(e) = cluster.wait_ready(Duration::from_secs(30)).await {
            // The nodes first, then the rules, then the hosts.
            drop(cluster);
            drop(net);
            drop(disks);
            drop(hosts);
            return Err(e);
        }
        Ok(Testbed {
            cluster,
            net,
            rng: ChaCha8Rng::seed_from_u64(spec.seed ^ 0x4E3E_5155),
            tag: 0,
            last_removed: None,
            disks,
            hosts,
        })
    }

    /// The proxies, for the faults that only they can make.
    fn proxy_net(&self) -> anyhow::Result<&Network> {
        self.net
            .proxy()
            .context("this fault needs the proxy network backend (--net proxy)")
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

    fn random_index(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n.max(1))
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
            Target::Majority => {
                let k = self.cluster.ids().len() / 2 + 1;
                let mut ids = self.shuffled();
                ids.truncate(k);
                ids.sort();
                ids
            }
            Target::Leader => match self.leader().await {
                Some(l) => vec![l],
                None => vec![self.random_node()],
            },
            Target::Follower => {
                let leader = self.leader().await;
                let others: Vec<String> = self
                    .shuffled()
                    .into_iter()
                    .filter(|id| Some(id) != leader.as_ref())
                    .collect();
                match others.first() {
                    Some(id) => vec![id.clone()],
                    None => vec![self.random_node()],
                }
            }
        }
    }

    /// Start a fault.
    pub async fn apply(&mut self, fault: &Fault) -> anyhow::Result<Applied> {
        self.tag += 1;
        let tag = self.tag;
        let (nodes, value) = match fault.class() {
            Class::Combined { parts, .. } => return self.apply_parts(fault, parts).await,
            Class::Figure8 => self.figure8().await?,
            Class::Partition(shape) => self.partition(shape).await?,
            Class::Message(rule, target) => self.message(rule, target).await?,
            Class::Process(p) => self.process_fault(p).await?,
            Class::Membership { split } => self.membership_fault(split).await?,
            Class::Disk(op, target) => self.disk_fault(op, target, &fault.to_string()).await?,
        };
        Ok(Applied {
            fault: fault.clone(),
            name: fault.to_string(),
            nodes,
            value,
            parts: Vec::new(),
            tag,
        })
    }

    /// Start every part of a combined fault now, in order (the schedule
    /// staggers them instead; see [`crate::schedule::run_schedule`]).
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
            tag: 0,
        })
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
        match applied.fault.class() {
            Class::Partition(Shape::Lag(_)) => {
                let value = self.wait_compacted_past(applied).await;
                self.net.heal(applied.tag)?;
                return Ok(value);
            }
            Class::Process(p) => self.heal_process(applied, p).await?,
            Class::Membership { split } => return self.heal_membership(applied, split).await,
            Class::Disk(..) => return self.heal_disk(applied).await,
            // A combined fault with no parts applied (it never started) has
            // only its network rules to drop, as the others.
            Class::Partition(_) | Class::Figure8 | Class::Message(..) | Class::Combined { .. } => {
                self.net.heal(applied.tag)?
            }
        }
        Ok(Value::Null)
    }

    /// Heal the network, resume paused nodes, restart dead ones.
    pub fn heal_all(&mut self) -> anyhow::Result<()> {
        self.net.heal_all()?;
        if let Some(d) = &self.disks {
            for (_, m) in d.all() {
                m.set_switches(Default::default());
                m.set_slow(Duration::ZERO);
            }
        }
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
