//! The network between the nodes: every directed link's proxy, and the
//! shapes of partitions built from per-link rules.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::addrs::NodeAddrs;
use crate::net::proxy::{start_link, Link, LinkRules, LinkStats};

/// All N·(N−1) links of a cluster.
pub struct Network {
    links: BTreeMap<(String, String), Arc<Link>>,
    ids: Vec<String>,
}

fn link_seed(seed: u64, from: &str, to: &str) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for b in from.bytes().chain([0xff]).chain(to.bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Network {
    /// Start a proxy for every ordered pair of `nodes`; link decisions are
    /// seeded from `seed`.
    pub async fn start(nodes: &[NodeAddrs], seed: u64) -> std::io::Result<Network> {
        let mut links = BTreeMap::new();
        for a in nodes {
            for b in nodes {
                if a.id != b.id {
                    let link =
                        start_link(&a.id, &b.id, b.listen, link_seed(seed, &a.id, &b.id)).await?;
                    links.insert((a.id.clone(), b.id.clone()), link);
                }
            }
        }
        Ok(Network {
            links,
            ids: nodes.iter().map(|n| n.id.clone()).collect(),
        })
    }

    /// Where node `from` reaches node `to`, for every link.
    pub fn addresses(&self) -> std::collections::HashMap<(String, String), SocketAddr> {
        self.links
            .iter()
            .map(|(k, l)| (k.clone(), l.addr()))
            .collect()
    }

    /// Deliver to node `to` at `addr` from now on, on every link into it.
    pub fn set_upstream(&self, to: &str, addr: SocketAddr) {
        for ((_, t), l) in &self.links {
            if t == to {
                l.set_upstream(addr);
            }
        }
    }

    /// The node ids.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// One link.
    pub fn link(&self, from: &str, to: &str) -> Option<&Arc<Link>> {
        self.links.get(&(from.to_string(), to.to_string()))
    }

    /// Set the rules of one link.
    pub fn set(&self, from: &str, to: &str, rules: LinkRules) {
        if let Some(l) = self.link(from, to) {
            l.set_rules(rules);
        }
    }

    /// Change every link touching any of `nodes` (both directions) with `f`.
    pub fn update_touching(&self, nodes: &BTreeSet<String>, f: impl Fn(&mut LinkRules)) {
        for ((a, b), l) in &self.links {
            if nodes.contains(a) || nodes.contains(b) {
                let mut r = l.rules();
                f(&mut r);
                l.set_rules(r);
            }
        }
    }

    /// Block every link between different groups; links inside a group pass.
    /// Nodes in no group are cut off from everyone.
    pub fn partition(&self, groups: &[Vec<String>]) {
        let group_of = |id: &str| groups.iter().position(|g| g.iter().any(|x| x == id));
        for ((a, b), l) in &self.links {
            let blocked = match (group_of(a), group_of(b)) {
                (Some(x), Some(y)) => x != y,
                _ => true,
            };
            let mut r = l.rules();
            r.blocked = blocked;
            l.set_rules(r);
        }
    }

    /// Block exactly the links `(from, to)` for which `cut` says so.
    pub fn block_where(&self, cut: impl Fn(&str, &str) -> bool) {
        for ((a, b), l) in &self.links {
            let mut r = l.rules();
            r.blocked = cut(a, b);
            l.set_rules(r);
        }
    }

    /// Every link passes everything again.
    pub fn heal(&self) {
        for l in self.links.values() {
            l.set_rules(LinkRules::pass());
        }
    }

    /// Every link's counters.
    pub fn stats(&self) -> Vec<LinkStats> {
        self.links.values().map(|l| l.stats()).collect()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for l in self.links.values() {
            l.stop();
        }
    }
}
