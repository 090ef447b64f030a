//! Where a cluster's members listen: ids and free loopback ports, and the
//! direct links between them (no proxy). Below the cluster, the process
//! layer and the hosts, which all name members by these addresses.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

use anyhow::{bail, Context};

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

/// Allocate ids and free loopback ports for `n` nodes. The port after
/// each client port is kept free too: a target may listen there (NATS
/// serves its monitoring endpoint at the client port + 1).
pub fn allocate(n: usize) -> anyhow::Result<Vec<NodeAddrs>> {
    let mut seen = std::collections::HashSet::new();
    let mut port = |count: u16| -> anyhow::Result<u16> {
        for _ in 0..100 {
            let p = free_ports(count).context("finding a free port on 127.0.0.1")?;
            if (0..count).all(|k| seen.insert(p + k)) {
                return Ok(p);
            }
        }
        bail!("could not find enough free ports on 127.0.0.1")
    };
    (1..=n)
        .map(|i| {
            Ok(NodeAddrs {
                id: format!("n{i}"),
                listen: SocketAddr::from(([127, 0, 0, 1], port(1)?)),
                client: SocketAddr::from(([127, 0, 0, 1], port(2)?)),
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

/// A port on 127.0.0.1 that was free a moment ago, chosen at random below
/// the kernel's ephemeral range (32768 and up), so that sockets bound to
/// port 0 meanwhile (the link proxies, clients) cannot take it before the
/// node that it is meant for binds it.
pub fn free_port() -> io::Result<u16> {
    free_ports(1)
}

/// `count` consecutive ports on 127.0.0.1 that were free a moment ago (the
/// first is returned), chosen as [`free_port`] chooses one.
pub fn free_ports(count: u16) -> io::Result<u16> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    // The generator's state and every port handed out so far: concurrent
    // callers (tests run in parallel threads) never get the same port.
    static STATE: Mutex<Option<(u64, HashSet<u16>)>> = Mutex::new(None);
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let (x, handed) = guard.get_or_insert_with(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        (
            (t ^ ((std::process::id() as u64) << 32)) | 1,
            HashSet::new(),
        )
    });
    // A long campaign hands out many: forget the old ones (their runs are
    // over) rather than run out of the range.
    if handed.len() > 4_000 {
        handed.clear();
    }
    for _ in 0..200 {
        // xorshift64*
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let port = 20_000 + (r % 12_000) as u16;
        let free =
            |p: u16| !handed.contains(&p) && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if (0..count.max(1)).all(|k| free(port + k)) {
            for k in 0..count.max(1) {
                handed.insert(port + k);
            }
            return Ok(port);
        }
    }
    if count <= 1 {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        return Ok(l.local_addr()?.port());
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no {count} consecutive free ports between 20000 and 32000"),
    ))
}
