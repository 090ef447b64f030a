//! Where a cluster's members listen: ids and free loopback ports, and the
//! direct links between them (no proxy). Below the cluster, the process
//! layer and the hosts, which all name members by these addresses.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{bail, Context};

use crate::process::free_port;

/// The addresses of one node.
#[derive(Clone, Debug)]
pub struct NodeAddrs {
    /// The node's id.
    pub id: String,
    /// Where it accepts peer traffic.
    pub listen: SocketAddr,
    /// Where it accepts clients.
    pub client: SocketAddr,
}

/// Allocate ids and free loopback ports for `n` nodes.
pub fn allocate(n: usize) -> anyhow::Result<Vec<NodeAddrs>> {
    let mut seen = std::collections::HashSet::new();
    let mut port = || -> anyhow::Result<u16> {
        for _ in 0..100 {
            let p = free_port().context("finding a free port on 127.0.0.1")?;
            if seen.insert(p) {
                return Ok(p);
            }
        }
        bail!("could not find enough free ports on 127.0.0.1")
    };
    (1..=n)
        .map(|i| {
            Ok(NodeAddrs {
                id: format!("n{i}"),
                listen: SocketAddr::from(([127, 0, 0, 1], port()?)),
                client: SocketAddr::from(([127, 0, 0, 1], port()?)),
            })
        })
        .collect()
}

/// Every node reaching every other at its own peer address (no proxy).
pub fn direct_links(addrs: &[NodeAddrs]) -> HashMap<(String, String), SocketAddr> {
    addrs
        .iter()
        .flat_map(|a| {
            addrs
                .iter()
                .filter(move |b| b.id != a.id)
                .map(move |b| ((a.id.clone(), b.id.clone()), b.listen))
        })
        .collect()
}
