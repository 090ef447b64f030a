//! A local cluster of `faultline-node` processes on free loopback ports.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use faultline_node::client::AddressBook;
use faultline_node::leadership::{NodeSample, StatusRound};
use faultline_node::protocol::NodeStatus;

use crate::process::{NodeProcess, NodeSpec, ProcState};
use faultline_sut::Target;
use std::sync::Arc;

/// What to start.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// How many nodes start as the initial voters (ids `n1..nN`); any further
    /// addresses given to [`LocalCluster::start_with_links`] are spare slots,
    /// not started, that membership changes can fill.
    pub nodes: usize,
    /// The run directory: node data in `nodes/<id>/`, logs in `nodes/<id>.log`.
    pub dir: PathBuf,
    /// The system the nodes run (faultline's node, etcd).
    pub target: Arc<dyn Target>,
    /// Flags passed to every node (timeouts and such).
    pub node_args: Vec<String>,
    /// Per slot: the network namespace its node starts in (the kernel
    /// backend); a slot not listed starts where the controller is.
    pub namespaces:
        std::collections::BTreeMap<String, std::sync::Arc<crate::net::kernel::netns::Namespace>>,
    /// Per slot: the host its node runs on (`--hosts`); a slot not listed
    /// runs on this machine.
    pub hosts: std::collections::BTreeMap<String, Arc<crate::hosts::RunHost>>,
}

pub use crate::addrs::{allocate, direct_links, NodeAddrs};

/// A running cluster; dropping it kills every node.
pub struct LocalCluster {
    nodes: Vec<NodeProcess>,
    /// Per slot: whether it is in use (a member, or joining). Spare slots
    /// and removed servers are not.
    active: Vec<bool>,
    dir: PathBuf,
    /// Every slot's client address, as the workload and the poller see it.
    book: AddressBook,
    /// The system the nodes run.
    target: Arc<dyn Target>,
}

impl LocalCluster {
    /// Start `spec.nodes` nodes that talk to each other directly.
    pub fn start(spec: &ClusterSpec) -> anyhow::Result<Self> {
        Self::start_with_spares(spec, 0)
    }

    /// Start `spec.nodes` nodes that talk to each other directly, plus
    /// `spares` slots that every node knows (`--peer`) but that are not
    /// started: [`NodeProcess::start_fresh`] one, then add it by a
    /// membership change.
    pub fn start_with_spares(spec: &ClusterSpec, spares: usize) -> anyhow::Result<Self> {
        let addrs = allocate(spec.nodes + spares)?;
        Self::start_with_links(spec, &addrs, &direct_links(&addrs))
    }

    /// Start nodes at `addrs`, where node `i` reaches peer `j` at `links[(i, j)]`
    /// (a proxy's address, in a faultline run).
    pub fn start_with_links(
        spec: &ClusterSpec,
        addrs: &[NodeAddrs],
        links: &HashMap<(String, String), SocketAddr>,
    ) -> anyhow::Result<Self> {
        let rd = faultline_rundir::RunDir::new(&spec.dir);
        let nodes_dir = rd.nodes();
        std::fs::create_dir_all(&nodes_dir)
            .with_context(|| format!("creating {}", nodes_dir.display()))?;
        let mut cluster = LocalCluster {
            nodes: Vec::new(),
            active: Vec::new(),
            dir: spec.dir.clone(),
            book: AddressBook::new(addrs.iter().map(|a| (a.id.clone(), a.client))),
            target: spec.target.clone(),
        };
        let voters: Vec<String> = addrs
            .iter()
            .take(spec.nodes)
            .map(|a| a.id.clone())
            .collect();
        for (slot, a) in addrs.iter().enumerate() {
            let peers = addrs
                .iter()
                .filter(|b| b.id != a.id)
                .map(|b| {
                    let via = links
                        .get(&(a.id.clone(), b.id.clone()))
                        .copied()
                        .unwrap_or(b.listen);
                    (b.id.clone(), via)
                })
                .collect();
            let node_spec = NodeSpec {
                id: a.id.clone(),
                listen: a.listen,
                client: a.client,
                peers,
                data_dir: rd.node_data(&a.id),
                log_file: rd.node_log(&a.id),
                extra_args: spec.node_args.clone(),
                netns: spec.namespaces.get(&a.id).cloned(),
                host: spec.hosts.get(&a.id).cloned(),
                voters: if addrs.len() > spec.nodes {
                    voters.clone()
                } else {
                    Vec::new()
                },
            };
            let p = if slot < spec.nodes {
                NodeProcess::start(&spec.target, node_spec)
                    .with_context(|| format!("starting node {}", a.id))?
            } else {
                NodeProcess::not_started(&spec.target, node_spec)
            };
            cluster.nodes.push(p);
            cluster.active.push(slot < spec.nodes);
        }
        Ok(cluster)
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ids of the slots in use (members, or joining), in order.
    pub fn ids(&self) -> Vec<String> {
        self.nodes
            .iter()
            .zip(&self.active)
            .filter(|(_, a)| **a)
            .map(|(n, _)| n.id().to_string())
            .collect()
    }

    /// Every slot's id, spare ones included.
    pub fn slot_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id().to_string()).collect()
    }

    /// The slots not in use, in order.
    pub fn free_slots(&self) -> Vec<String> {
        self.nodes
            .iter()
            .zip(&self.active)
            .filter(|(_, a)| !**a)
            .map(|(n, _)| n.id().to_string())
            .collect()
    }

    /// Mark a slot in use or free.
    pub fn set_active(&mut self, id: &str, active: bool) {
        if let Some(i) = self.nodes.iter().position(|n| n.id() == id) {
            self.active[i] = active;
        }
    }

    /// A node's peer address.
    pub fn listen_addr(&self, id: &str) -> Option<SocketAddr> {
        self.nodes
            .iter()
            .find(|n| n.id() == id)
            .map(|n| n.spec().listen)
    }

    /// A node's client address.
    pub fn client_addr(&self, id: &str) -> Option<SocketAddr> {
        self.nodes
            .iter()
            .find(|n| n.id() == id)
            .map(|n| n.spec().client)
    }

    /// The client address of every slot in use, in order.
    pub fn client_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.nodes
            .iter()
            .zip(&self.active)
            .filter(|(_, a)| **a)
            .map(|(n, _)| (n.id().to_string(), n.spec().client))
            .collect()
    }

    /// Every slot's client address, spare ones included.
    pub fn all_client_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.nodes
            .iter()
            .map(|n| (n.id().to_string(), n.spec().client))
            .collect()
    }

    /// The slots' client addresses, kept current when a node moves.
    pub fn address_book(&self) -> AddressBook {
        self.book.clone()
    }

    /// Run node `id` on these ports from its next start on.
    pub fn move_node(&mut self, id: &str, listen: SocketAddr, client: SocketAddr) {
        if let Some(p) = self.node_mut(id) {
            p.set_addrs(listen, client);
            self.book.set(id, client);
        }
    }

    /// A node's process, to crash, pause or restart it.
    pub fn node_mut(&mut self, id: &str) -> Option<&mut NodeProcess> {
        self.nodes.iter_mut().find(|n| n.id() == id)
    }

    /// The processes of the slots in use.
    pub fn nodes_mut(&mut self) -> impl Iterator<Item = &mut NodeProcess> {
        self.nodes
            .iter_mut()
            .zip(&self.active)
            .filter(|(_, a)| **a)
            .map(|(n, _)| n)
    }

    /// The pids of every live node process.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.pid()).collect()
    }

    /// Ask one node for its status.
    pub async fn status(&self, id: &str, timeout: Duration) -> anyhow::Result<NodeStatus> {
        let addr = self
            .client_addr(id)
            .with_context(|| format!("no node {id}"))?;
        self.target.status(addr, timeout).await
    }

    /// The system the nodes run.
    pub fn target(&self) -> &Arc<dyn Target> {
        &self.target
    }

    /// Wait until every running node answers its status request.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for i in 0..self.nodes.len() {
            if !self.active[i] {
                continue;
            }
            let id = self.nodes[i].id().to_string();
            loop {
                if self.nodes[i].state() == ProcState::Down {
                    let p = &self.nodes[i];
                    let log = match &p.spec().host {
                        Some(h) => format!("{}/nodes/{id}.log on host {}", h.run_dir, h.name()),
                        None => p.spec().log_file.display().to_string(),
                    };
                    bail!(
                        "node {id} exited during start-up; the end of {log}: {}",
                        p.log_tail(3)
                    );
                }
                if self.status(&id, Duration::from_millis(500)).await.is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("node {id} did not answer its status request within {timeout:?}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Wait until a majority of nodes name the same leader in the same term,
    /// and that leader says it leads; returns its id.
    pub async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.current_leader().await {
                return Ok(l);
            }
            if Instant::now() > deadline {
                bail!("no leader elected within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every node's status now, asked of all at once (a node that does not
    /// answer within `timeout` is absent from the round).
    pub async fn status_round(&self, timeout: Duration) -> StatusRound {
        let polls = self.ids().into_iter().map(|id| async move {
            let s = self.status(&id, timeout).await.ok();
            (id, s.as_ref().map(NodeSample::from))
        });
        StatusRound {
            t_ms: 0,
            nodes: futures::future::join_all(polls).await.into_iter().collect(),
        }
    }

    /// The working leader right now, if any (see [`faultline_node::leadership`]).
    pub async fn current_leader(&self) -> Option<String> {
        self.status_round(Duration::from_millis(300))
            .await
            .agreed_leader(None)
            .map(|(id, _)| id)
    }

    /// Kill every node (SIGKILL) and reap it.
    pub fn shutdown(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }
}
