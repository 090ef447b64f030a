//! Any program that speaks Maelstrom's protocol (jepsen-io/maelstrom, the
//! workbench of the "Gossip Glomers"): JSON messages, one per line, on its
//! stdin and stdout. Each member runs as `faultline maelstrom-host`, which
//! starts the program as its child and is its network ([`host`]); the
//! hosts' peer links go through faultline's link proxies, so every message
//! fault works on these nodes unchanged. Clients speak the `lin-kv`
//! workload ([`client`]).
//!
//! Maelstrom nodes have no status request, so the leader is inferred from
//! the traffic the hosts route ([`infer_leader`]): faultline polls every
//! host for when it last heard from each node.

pub mod client;
pub mod echo;
pub mod host;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use faultline_node::protocol::NodeStatus;
use faultline_node::raft::Role;
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::{KvClient, Member, Program, Target, TargetKind};

/// Maelstrom's services, which a node may address as destinations.
pub const SERVICES: &[&str] = &["lin-kv", "seq-kv", "lww-kv", "lin-tso"];

/// How long ago a node's message must have arrived to count for the
/// leader rule.
pub const LEADER_WINDOW_MS: u64 = 1000;

/// What a host says of itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HostStatus {
    /// The node.
    pub id: String,
    /// Milliseconds since the node answered init.
    pub up_ms: u64,
    /// Per node: milliseconds since a message from it last arrived here.
    pub heard_ms: BTreeMap<String, u64>,
    /// Per node: milliseconds since a message from it whose type names an
    /// append or a heartbeat last arrived here.
    pub leaderish_ms: BTreeMap<String, u64>,
    /// Messages the node sent to a name nobody has.
    pub unknown_dest: u64,
}

/// The leader by the traffic, or `None` where the rule cannot tell.
///
/// 1. A node whose append or heartbeat messages (a type containing
///    `append` or `heartbeat`, in any case) arrived within the last
///    [`LEADER_WINDOW_MS`] at enough other nodes to make a majority with
///    it; of several, the one heard from most recently.
/// 2. When no node sent such messages in the window: the node whose
///    messages of any type arrived at the most other nodes, enough to make
///    a majority with it, if no other node reached as many (a single node
///    leads itself).
///
/// `statuses` are the hosts that answered; `n` the cluster's size.
pub fn infer_leader(statuses: &[HostStatus], n: usize) -> Option<String> {
    let majority = n / 2 + 1;
    let ids: Vec<&str> = statuses.iter().map(|s| s.id.as_str()).collect();
    let reach = |l: &str, leaderish: bool| -> (usize, u64) {
        let mut count = 0;
        let mut freshest = u64::MAX;
        for s in statuses.iter().filter(|s| s.id != l) {
            let table = if leaderish {
                &s.leaderish_ms
            } else {
                &s.heard_ms
            };
            if let Some(&ms) = table.get(l) {
                if ms <= LEADER_WINDOW_MS {
                    count += 1;
                    freshest = freshest.min(ms);
                }
            }
        }
        (count, freshest)
    };
    let mut best: Option<(&str, u64)> = None;
    let mut any_leaderish = false;
    for &l in &ids {
        let (count, freshest) = reach(l, true);
        any_leaderish |= count > 0;
        if count + 1 >= majority && best.is_none_or(|(_, f)| freshest < f) {
            best = Some((l, freshest));
        }
    }
    if let Some((l, _)) = best {
        return Some(l.to_string());
    }
    if any_leaderish {
        return None;
    }
    let counts: Vec<(&str, usize)> = ids.iter().map(|&l| (l, reach(l, false).0)).collect();
    let top = counts.iter().map(|c| c.1).max()?;
    let at_top: Vec<&str> = counts.iter().filter(|c| c.1 == top).map(|c| c.0).collect();
    (top + 1 >= majority && at_top.len() == 1).then(|| at_top[0].to_string())
}

/// Ask one host for its status.
pub async fn host_status(addr: SocketAddr, timeout: Duration) -> anyhow::Result<HostStatus> {
    let fut = async {
        let s = TcpStream::connect(addr).await?;
        let mut f = Framed::new(s, host::codec());
        f.send(Bytes::from_static(br#"{"status":true}"#)).await?;
        let frame = f.next().await.context("the host closed the connection")??;
        anyhow::Ok(serde_json::from_slice::<HostStatus>(&frame)?)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("no status from {addr} within {timeout:?}"))?
}

/// A Maelstrom program as a target.
pub struct Maelstrom {
    host: Program,
    program: PathBuf,
    args: Vec<String>,
    /// Every member's id and client address (learnt as they are started).
    members: Mutex<BTreeMap<String, SocketAddr>>,
    /// The latest view of who leads, kept briefly so one status round does
    /// not poll every host once per node.
    view: Mutex<Option<(Instant, Vec<HostStatus>)>>,
    /// A counter that rises whenever the inferred leader changes (the
    /// "term" of the statuses).
    generation: Mutex<(Option<String>, u64)>,
    next_client: AtomicU64,
}

impl Maelstrom {
    /// The program (with its arguments) hosted by `host` (faultline's own
    /// binary and `maelstrom-host`).
    pub fn new(host: Program, program: PathBuf, args: Vec<String>) -> Maelstrom {
        Maelstrom {
            host,
            program,
            args,
            members: Mutex::new(BTreeMap::new()),
            view: Mutex::new(None),
            generation: Mutex::new((None, 0)),
            next_client: AtomicU64::new(1),
        }
    }

    fn members(&self) -> BTreeMap<String, SocketAddr> {
        self.members.lock().expect("not poisoned").clone()
    }

    async fn view(&self, timeout: Duration) -> Vec<HostStatus> {
        if let Some((t, v)) = &*self.view.lock().expect("not poisoned") {
            if t.elapsed() < Duration::from_millis(50) {
                return v.clone();
            }
        }
        let polls = self
            .members()
            .into_values()
            .map(|a| async move { host_status(a, timeout).await.ok() });
        let v: Vec<HostStatus> = futures::future::join_all(polls)
            .await
            .into_iter()
            .flatten()
            .collect();
        *self.view.lock().expect("not poisoned") = Some((Instant::now(), v.clone()));
        v
    }
}

impl Target for Maelstrom {
    fn kind(&self) -> TargetKind {
        TargetKind::Maelstrom
    }

    fn version(&self) -> String {
        let mut s = format!("{} (Maelstrom protocol)", crate::shown_path(&self.program));
        for a in &self.args {
            s.push(' ');
            s.push_str(&faultline_rundir::quote::quoted(a));
        }
        s
    }

    fn command(&self, m: &Member<'_>) -> std::process::Command {
        self.members
            .lock()
            .expect("not poisoned")
            .insert(m.id.to_string(), m.client);
        let mut cmd = std::process::Command::new(&self.host.program);
        cmd.args(&self.host.args);
        m.address_args(&mut cmd);
        cmd.arg("--").arg(&self.program).args(&self.args);
        cmd
    }

    fn connect<'a>(
        &'a self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Box<dyn KvClient>, String>> {
        async move {
            let id = format!("c{}", self.next_client.fetch_add(1, Ordering::Relaxed));
            let others: Vec<SocketAddr> = self
                .members()
                .into_values()
                .filter(|a| *a != addr)
                .collect();
            client::MaelstromClient::connect(id, addr, &others, timeout)
                .await
                .map(|c| Box::new(c) as Box<dyn KvClient>)
        }
        .boxed()
    }

    fn status<'a>(
        &'a self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<NodeStatus>> {
        async move {
            // The asked host must answer itself (a paused one does not).
            let me = host_status(addr, timeout).await?;
            let members = self.members();
            let view = self.view(timeout).await;
            let leader = infer_leader(&view, members.len().max(1));
            let term = {
                let mut g = self.generation.lock().expect("not poisoned");
                if leader.is_some() && g.0 != leader {
                    *g = (leader.clone(), g.1 + 1);
                }
                g.1
            };
            let role = if leader.as_deref() == Some(me.id.as_str()) {
                Role::Leader
            } else {
                Role::Follower
            };
            let heard = leader.as_ref().and_then(|l| {
                if *l == me.id {
                    Some(0)
                } else {
                    me.heard_ms.get(l).copied()
                }
            });
            Ok(NodeStatus {
                id: me.id.clone(),
                role,
                term,
                leader,
                commit_index: 0,
                applied_index: 0,
                last_log_index: 0,
                voters: members.keys().cloned().collect(),
                outgoing: Vec::new(),
                learners: Vec::new(),
                config_index: 0,
                leader_heard_ms: heard,
                leading_ms: None,
                quorum_heard_ms: None,
                snapshot_index: 0,
                snapshot_term: 0,
                first_index: 0,
                snapshots_taken: 0,
                snapshots_installed: 0,
            })
        }
        .boxed()
    }
}

/// Parse `faultline maelstrom-host`'s `--peer ID=ADDR`.
pub fn parse_peer(s: &str) -> anyhow::Result<(String, SocketAddr)> {
    let Some((id, addr)) = s.split_once('=') else {
        bail!(
            "--peer {}: give ID=ADDRESS",
            faultline_rundir::quote::quoted(s)
        );
    };
    let addr: SocketAddr = addr.parse().with_context(|| {
        format!(
            "--peer {}: not an address",
            faultline_rundir::quote::quoted(s)
        )
    })?;
    Ok((id.to_string(), addr))
}

/// Bodies seen by the tests of the leader rule.
#[doc(hidden)]
pub fn status_for_tests(id: &str, heard: &[(&str, u64)], leaderish: &[(&str, u64)]) -> HostStatus {
    let table = |t: &[(&str, u64)]| -> BTreeMap<String, u64> {
        t.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    HostStatus {
        id: id.into(),
        up_ms: 1,
        heard_ms: table(heard),
        leaderish_ms: table(leaderish),
        unknown_dest: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: &str, heard: &[(&str, u64)], lead: &[(&str, u64)]) -> HostStatus {
        status_for_tests(id, heard, lead)
    }

    #[test]
    fn the_node_whose_appends_reach_a_majority_leads() {
        let v = vec![
            st("n1", &[("n2", 10), ("n3", 10)], &[]),
            st("n2", &[("n1", 5)], &[("n1", 5)]),
            st("n3", &[("n1", 7)], &[("n1", 7)]),
        ];
        assert_eq!(infer_leader(&v, 3).as_deref(), Some("n1"));
        // n1 cut off: its appends are stale everywhere; n2 now sends them to n3.
        let v = vec![
            st("n1", &[], &[]),
            st("n2", &[("n1", 3000), ("n3", 4)], &[("n1", 3000)]),
            st("n3", &[("n1", 3000), ("n2", 6)], &[("n1", 3000), ("n2", 6)]),
        ];
        assert_eq!(infer_leader(&v, 3).as_deref(), Some("n2"));
        // Appends reaching only a minority of five: no leader.
        let v = vec![
            st("n1", &[], &[]),
            st("n2", &[("n1", 3)], &[("n1", 3)]),
            st("n3", &[], &[]),
            st("n4", &[], &[]),
            st("n5", &[], &[]),
        ];
        assert_eq!(infer_leader(&v, 5), None);
    }

    #[test]
    fn without_appends_the_node_that_reaches_most_leads_if_it_is_alone_there() {
        // One node: it leads itself.
        assert_eq!(
            infer_leader(&[st("n1", &[], &[])], 1).as_deref(),
            Some("n1")
        );
        // n1 talks to both, the others only to n1.
        let v = vec![
            st("n1", &[("n2", 10), ("n3", 10)], &[]),
            st("n2", &[("n1", 5)], &[]),
            st("n3", &[("n1", 7)], &[]),
        ];
        assert_eq!(infer_leader(&v, 3).as_deref(), Some("n1"));
        // Everyone talks to everyone: cannot tell.
        let v = vec![
            st("n1", &[("n2", 1), ("n3", 1)], &[]),
            st("n2", &[("n1", 1), ("n3", 1)], &[]),
            st("n3", &[("n1", 1), ("n2", 1)], &[]),
        ];
        assert_eq!(infer_leader(&v, 3), None);
        // Nobody talks (nodes that do not replicate): cannot tell.
        let v = vec![st("n1", &[], &[]), st("n2", &[], &[]), st("n3", &[], &[])];
        assert_eq!(infer_leader(&v, 3), None);
    }
}
