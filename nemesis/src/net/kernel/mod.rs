//! The kernel network backend (`--net kernel`): each node in a network
//! namespace of its own with one address of the run's private range,
//! joined to the controller's bridge by a veth pair; faults are nftables
//! drop rules in the receiving node's namespace ([`nft`]) and, where the
//! kernel has it, `tc netem` on the sending node's interface ([`netem`]).
//!
//! The same rules serve a run on the hosts of an inventory (`--hosts`,
//! [`KernelNet::on_hosts`]): there each node's table is `inet
//! faultline_RUN` on its host, written with `nft -f -` over ssh; only
//! member-to-member traffic matches a rule, so the control node's ssh and
//! its clients are never cut.
//!
//! The controller itself must first move into a namespace of its own
//! ([`netns::enter_private_network`]), so that the bridge, the veths and
//! the nodes' namespaces all hang off a namespace that no other process
//! shares, has no route to any other network, and vanishes with the
//! controller (the nodes die with it: `PR_SET_PDEATHSIG`).

pub mod netem;
pub mod netns;
pub mod nft;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use faultline_node::netpolicy;

use crate::addrs::NodeAddrs;
use crate::net::proxy::{Counted, LinkStats};
use netem::Shape;
use netns::{run_here, Namespace};

/// A node's peer port inside its namespace.
pub const PEER_PORT: u16 = 7000;
/// A node's client port inside its namespace.
pub const CLIENT_PORT: u16 = 7001;
/// The bridge's name in the controller's namespace.
pub const BRIDGE: &str = "flbr0";
/// The interface name inside every node's namespace.
pub const NODE_DEV: &str = "eth0";

static IN_USE: AtomicBool = AtomicBool::new(false);

struct Slot {
    id: String,
    ip: IpAddr,
    site: Site,
    /// The bridge end of its veth (namespaces only).
    host_dev: Option<String>,
}

/// Where a node's rules are: its namespace here, or its host.
enum Site {
    Ns(Arc<Namespace>),
    Host(Arc<crate::hosts::RunHost>),
}

impl Site {
    /// Run `program args…` there with `input` on its stdin.
    fn run(&self, program: &str, args: &[&str], input: Option<&str>) -> Result<String, String> {
        match self {
            Site::Ns(ns) => ns.run(program, args, input),
            Site::Host(h) => {
                let mut line = faultline_hosts::ssh::quote(program);
                for a in args {
                    line.push(' ');
                    line.push_str(&faultline_hosts::ssh::quote(a));
                }
                h.sh_with(&format!("{program} {}", args.join(" ")), &line, input)
                    .map_err(|e| format!("{e:#}"))
            }
        }
    }
}

/// The private network of one run, or the rules on a run's hosts.
pub struct KernelNet {
    slots: Vec<Slot>,
    /// The nftables table of the run (family inet).
    table: String,
    /// Whether this run built the bridge and namespaces here (not hosts).
    bridge: bool,
    netem: bool,
    /// Per fault tag: the slots that got drop rules.
    ruled: Mutex<BTreeMap<u64, BTreeSet<String>>>,
    /// Per fault tag: the slots whose interface got a netem shape.
    shaped: Mutex<BTreeMap<u64, BTreeSet<String>>>,
}

impl KernelNet {
    /// Build the bridge and one namespace per node slot (`ids`, in slot
    /// order), each with its address, its veth and its nftables table.
    pub fn start(ids: &[String]) -> anyhow::Result<KernelNet> {
        if !netpolicy::is_sealed() {
            bail!("the kernel network backend needs the controller in a network namespace of its own (faultline enters one before a --net kernel run starts)");
        }
        if IN_USE.swap(true, Ordering::SeqCst) {
            bail!("one kernel network at a time per process");
        }
        let mut net = KernelNet {
            slots: Vec::new(),
            table: nft::TABLE.to_string(),
            bridge: true,
            netem: false,
            ruled: Mutex::default(),
            shaped: Mutex::default(),
        };
        net.build(ids)?;
        net.netem = netns::netem_available().unwrap_or(false);
        Ok(net)
    }

    fn build(&mut self, ids: &[String]) -> anyhow::Result<()> {
        let _ = run_here("ip", &["link", "del", BRIDGE], None);
        let bridge_cidr = format!("{}/{}", netpolicy::bridge_ip(), netpolicy::PRIVATE_PREFIX);
        let e = |r: Result<String, String>| r.map_err(anyhow::Error::msg);
        e(run_here(
            "ip",
            &["-batch", "-"],
            Some(&format!(
                "link add {BRIDGE} type bridge\naddr add {bridge_cidr} dev {BRIDGE}\nlink set {BRIDGE} up\n"
            )),
        )
        .or_else(|_| {
            run_here("ip", &["link", "add", BRIDGE, "type", "bridge"], None)?;
            run_here("ip", &["addr", "add", &bridge_cidr, "dev", BRIDGE], None)?;
            run_here("ip", &["link", "set", BRIDGE, "up"], None)
        }))
        .context("creating the run's bridge")?;
        let all: Vec<(String, Ipv4Addr)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), netpolicy::slot_ip(i + 1)))
            .collect();
        for (i, (id, ip)) in all.iter().enumerate() {
            let ns = Arc::new(Namespace::new().context("creating a node's network namespace")?);
            let host_dev = format!("flv{}", i + 1);
            let _ = run_here("ip", &["link", "del", &host_dev], None);
            e(run_here(
                "ip",
                &[
                    "link",
                    "add",
                    &host_dev,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    NODE_DEV,
                    "netns",
                    &ns.path(),
                ],
                None,
            ))
            .with_context(|| format!("creating {id}'s veth pair"))?;
            e(run_here(
                "ip",
                &["link", "set", &host_dev, "master", BRIDGE, "up"],
                None,
            ))
            .with_context(|| format!("joining {id}'s veth to the bridge"))?;
            let cidr = format!("{ip}/{}", netpolicy::PRIVATE_PREFIX);
            e(ns.run(
                "ip",
                &["-batch", "-"],
                Some(&format!(
                    "link set lo up\naddr add {cidr} dev {NODE_DEV}\nlink set {NODE_DEV} up\n"
                )),
            ))
            .with_context(|| format!("configuring {id}'s interface"))?;
            let peers: Vec<(String, IpAddr)> = all
                .iter()
                .filter(|(p, _)| p != id)
                .map(|(p, a)| (p.clone(), IpAddr::V4(*a)))
                .collect();
            e(ns.run(
                "nft",
                &["-f", "-"],
                Some(&nft::base_ruleset(&self.table, &peers)),
            ))
            .with_context(|| format!("creating {id}'s nftables table"))?;
            self.slots.push(Slot {
                id: id.clone(),
                ip: IpAddr::V4(*ip),
                site: Site::Ns(ns),
                host_dev: Some(host_dev),
            });
        }
        Ok(())
    }

    /// The rules of a run on hosts: table `inet faultline_RUN` on each
    /// host of `hosts` (slot `n1` on the first, and so on), counting each
    /// peer's packets; dropped at the end of the run.
    pub fn on_hosts(hosts: &crate::hosts::HostsRun) -> anyhow::Result<KernelNet> {
        let mut net = KernelNet {
            slots: Vec::new(),
            table: nft::host_table(&hosts.run),
            bridge: false,
            netem: false,
            ruled: Mutex::default(),
            shaped: Mutex::default(),
        };
        let all: Vec<(String, IpAddr)> = hosts
            .addrs()
            .into_iter()
            .map(|a| (a.id, a.listen.ip()))
            .collect();
        for (h, (id, ip)) in hosts.hosts().iter().zip(&all) {
            let peers: Vec<(String, IpAddr)> =
                all.iter().filter(|(p, _)| p != id).cloned().collect();
            let site = Site::Host(h.clone());
            site.run(
                "nft",
                &["-f", "-"],
                Some(&nft::base_ruleset(&net.table, &peers)),
            )
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("creating {id}'s nftables table on host {}", h.name()))?;
            net.slots.push(Slot {
                id: id.clone(),
                ip: *ip,
                site,
                host_dev: None,
            });
        }
        Ok(net)
    }

    /// Every slot's addresses (peer port [`PEER_PORT`], client port
    /// [`CLIENT_PORT`] on the slot's own address).
    pub fn addrs(&self) -> Vec<NodeAddrs> {
        self.slots
            .iter()
            .map(|s| NodeAddrs {
                id: s.id.clone(),
                listen: SocketAddr::from((s.ip, PEER_PORT)),
                client: SocketAddr::from((s.ip, CLIENT_PORT)),
            })
            .collect()
    }

    /// The namespace of slot `id`, to start its node in.
    pub fn namespace(&self, id: &str) -> Option<Arc<Namespace>> {
        match &self.slot(id)?.site {
            Site::Ns(ns) => Some(ns.clone()),
            Site::Host(_) => None,
        }
    }

    /// The slot ids.
    pub fn ids(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.id.clone()).collect()
    }

    /// Whether this kernel has `tc netem`.
    pub fn has_netem(&self) -> bool {
        self.netem
    }

    fn slot(&self, id: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id == id)
    }

    /// Drop the packets of each directed link `(from, to)`: all of them,
    /// or with probability `p`; the rules carry fault `tag`.
    pub fn drop_links(
        &self,
        tag: u64,
        links: &[(String, String)],
        p: Option<f64>,
    ) -> anyhow::Result<()> {
        let mut by_receiver: BTreeMap<&str, String> = BTreeMap::new();
        for (from, to) in links {
            let src = self.slot(from).with_context(|| format!("no node {from}"))?;
            self.slot(to).with_context(|| format!("no node {to}"))?;
            by_receiver
                .entry(to.as_str())
                .or_default()
                .push_str(&nft::drop_rule(&self.table, tag, from, src.ip, p));
        }
        // Every receiver at once: on hosts each is an ssh round trip, and
        // a fault should start everywhere at about the same time.
        let added: Vec<(&str, anyhow::Result<String>)> = std::thread::scope(|scope| {
            let running: Vec<_> = by_receiver
                .iter()
                .map(|(to, rules)| {
                    let slot = self.slot(to).expect("checked above");
                    (
                        *to,
                        scope.spawn(move || slot.site.run("nft", &["-f", "-"], Some(rules))),
                    )
                })
                .collect();
            running
                .into_iter()
                .map(|(to, t)| {
                    let r = t
                        .join()
                        .unwrap_or_else(|_| Err("the nft thread panicked".into()))
                        .map_err(anyhow::Error::msg);
                    (to, r)
                })
                .collect()
        });
        let mut first_err = None;
        for (to, r) in added {
            match r {
                Ok(_) => {
                    self.ruled
                        .lock()
                        .expect("not poisoned")
                        .entry(tag)
                        .or_default()
                        .insert(to.to_string());
                }
                Err(e) => {
                    first_err.get_or_insert(e.context(format!("adding drop rules for {to}")));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Shape the peer traffic of the links touching `nodes` (both
    /// directions) with netem; refused where the kernel lacks it.
    pub fn shape(&self, tag: u64, nodes: &BTreeSet<String>, shape: &Shape) -> anyhow::Result<()> {
        if !self.netem {
            bail!("{}", netem_missing(shape_name(shape)));
        }
        for s in &self.slots {
            let dests: Vec<Ipv4Addr> = self
                .slots
                .iter()
                .filter(|d| d.id != s.id && (nodes.contains(&s.id) || nodes.contains(&d.id)))
                .filter_map(|d| match d.ip {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
                .collect();
            if dests.is_empty() {
                continue;
            }
            let already = self
                .shaped
                .lock()
                .expect("not poisoned")
                .values()
                .any(|v| v.contains(&s.id));
            if already {
                bail!("{} already has a netem shape: one delay, duplicate or reorder fault at a time on the kernel backend", s.id);
            }
            for cmd in netem::shape_commands(NODE_DEV, &dests, shape) {
                let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
                s.site
                    .run("tc", &args, None)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("shaping {}'s traffic", s.id))?;
            }
            self.shaped
                .lock()
                .expect("not poisoned")
                .entry(tag)
                .or_default()
                .insert(s.id.clone());
        }
        Ok(())
    }

    /// Remove exactly the rules and shapes of fault `tag`.
    pub fn heal(&self, tag: u64) -> anyhow::Result<()> {
        let ruled = self
            .ruled
            .lock()
            .expect("not poisoned")
            .remove(&tag)
            .unwrap_or_default();
        let shaped = self
            .shaped
            .lock()
            .expect("not poisoned")
            .remove(&tag)
            .unwrap_or_default();
        let comment = nft::tag_comment(tag);
        let mut first_err = None;
        let deleted: Vec<anyhow::Result<()>> = std::thread::scope(|scope| {
            let running: Vec<_> = self
                .slots
                .iter()
                .filter(|s| ruled.contains(&s.id))
                .map(|s| scope.spawn(|| self.delete_rules(s, Some(&comment))))
                .collect();
            running
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("the nft thread panicked")))
                })
                .collect()
        });
        for e in deleted.into_iter().filter_map(Result::err) {
            first_err.get_or_insert(e);
        }
        for s in self.slots.iter().filter(|s| shaped.contains(&s.id)) {
            let args = netem::clear_command(NODE_DEV);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Err(e) = s.site.run("tc", &args, None) {
                first_err.get_or_insert(anyhow::anyhow!("clearing {}'s shape: {e}", s.id));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn delete_rules(&self, s: &Slot, comment: Option<&str>) -> anyhow::Result<()> {
        let json = self.list_fault_chain(s)?;
        let handles = nft::rule_handles(&json, comment).map_err(anyhow::Error::msg)?;
        if !handles.is_empty() {
            s.site
                .run(
                    "nft",
                    &["-f", "-"],
                    Some(&nft::delete_rules(&self.table, &handles)),
                )
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("removing {}'s fault rules", s.id))?;
        }
        Ok(())
    }

    /// The comments of the fault rules now in slot `id`'s namespace (one
    /// `fault-TAG` per rule), to check what a heal left.
    pub fn fault_rules(&self, id: &str) -> anyhow::Result<Vec<String>> {
        let s = self.slot(id).with_context(|| format!("no node {id}"))?;
        let json = self.list_fault_chain(s)?;
        nft::rule_comments(&json).map_err(anyhow::Error::msg)
    }

    /// Remove every fault's rules and shapes.
    pub fn heal_all(&self) -> anyhow::Result<()> {
        let tags: Vec<u64> = {
            let r = self.ruled.lock().expect("not poisoned");
            let s = self.shaped.lock().expect("not poisoned");
            r.keys().chain(s.keys()).copied().collect()
        };
        let mut first_err = None;
        for t in tags {
            if let Err(e) = self.heal(t) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Every directed link's packets and bytes let in and dropped, from
    /// the nftables counters of the receiving node's namespace.
    pub fn stats(&self) -> Vec<LinkStats> {
        let mut out = Vec::new();
        for to in &self.slots {
            let counters = to
                .site
                .run(
                    "nft",
                    &["-j", "list", "counters", "table", "inet", &self.table],
                    None,
                )
                .ok()
                .and_then(|j| nft::counters(&j).ok())
                .unwrap_or_default();
            let get = |name: String| {
                counters
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .map_or((0, 0), |(_, p, b)| (*p, *b))
            };
            for from in self.slots.iter().filter(|f| f.id != to.id) {
                let (seen, seen_bytes) = get(format!("seen_{}", from.id));
                let (dropped, dropped_bytes) = get(format!("drop_{}", from.id));
                out.push(LinkStats {
                    from: from.id.clone(),
                    to: to.id.clone(),
                    passed: seen,
                    dropped,
                    bytes: seen_bytes,
                    dropped_bytes,
                    counted: Counted::Packets,
                    ..LinkStats::default()
                });
            }
        }
        out.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
        out
    }
}

impl KernelNet {
    /// `nft -j list chain inet TABLE faults` where a slot's rules are.
    fn list_fault_chain(&self, s: &Slot) -> anyhow::Result<String> {
        s.site
            .run(
                "nft",
                &["-j", "list", "chain", "inet", &self.table, "faults"],
                None,
            )
            .map_err(anyhow::Error::msg)
    }
}

impl Drop for KernelNet {
    fn drop(&mut self) {
        for s in &self.slots {
            match (&s.site, &s.host_dev) {
                (Site::Ns(_), Some(dev)) => {
                    let _ = run_here("ip", &["link", "del", dev], None);
                }
                (Site::Host(h), _) if h.lost().is_none() => {
                    let _ = s
                        .site
                        .run("nft", &["delete", "table", "inet", &self.table], None);
                }
                _ => {}
            }
        }
        if self.bridge {
            let _ = run_here("ip", &["link", "del", BRIDGE], None);
            IN_USE.store(false, Ordering::SeqCst);
        }
    }
}

fn shape_name(shape: &Shape) -> &'static str {
    match shape {
        Shape::Delay { .. } => "delay",
        Shape::Duplicate { .. } => "duplicate",
        Shape::Reorder { .. } => "reorder",
    }
}

/// The one-line refusal of a netem fault on a kernel without netem.
pub fn netem_missing(fault: &str) -> String {
    format!(
        "{fault} on --net kernel needs the kernel's netem qdisc (sch_netem), which this kernel lacks ('tc qdisc add … netem': Specified qdisc kind is unknown); use --net proxy for {fault}"
    )
}
