//! The network backend of a run: the proxy on every link ([`Network`]) or
//! the kernel's network in per-node namespaces ([`KernelNet`]). The
//! testbed's faults speak to [`Net`]; which faults each backend can make
//! is decided here ([`kernel_refusal`]) before a run starts.

pub mod kernel;
pub mod network;
pub mod proxy;

use std::collections::BTreeSet;

use crate::fault::{Class, Fault, Rule};
use crate::net::kernel::netem::Shape;
use crate::net::kernel::{netem_missing, KernelNet};
use crate::net::network::Network;
use crate::net::proxy::{LinkRules, LinkStats};

pub use faultline_rundir::spec::NetBackend;

/// Why `fault` cannot run on the kernel backend (`None`: it can).
/// `netem` says whether the kernel has `tc netem`.
pub fn kernel_refusal(fault: &Fault, netem: bool) -> Option<String> {
    match fault.class() {
        Class::Combined { parts, .. } => parts.iter().find_map(|p| kernel_refusal(p, netem)),
        Class::Figure8 => Some(
            "figure-8 needs to read Raft messages (it lets only votes, or only entries up to a term, through a link), which only the proxy can: use --net proxy".into(),
        ),
        Class::Membership { split: true } => Some(
            "membership-split reroutes a cut-off leader's links while new servers join, which only the proxy does: use --net proxy".into(),
        ),
        Class::Message(Rule::Delay { .. }, _) if !netem => Some(netem_missing("delay")),
        Class::Message(Rule::Duplicate(_), _) if !netem => Some(netem_missing("duplicate")),
        Class::Message(Rule::Reorder(_), _) if !netem => Some(netem_missing("reorder")),
        Class::Message(..)
        | Class::Partition(_)
        | Class::Process(_)
        | Class::Disk(..)
        | Class::Membership { split: false } => None,
    }
}

/// Why `fault` cannot run on the hosts of an inventory (`None`: it can):
/// what needs the proxy, membership changes (which need spare hosts) and
/// netem's shapes (not offered on hosts).
pub fn hosts_refusal(fault: &Fault) -> Option<String> {
    match fault.class() {
        Class::Combined { parts, .. } => parts.iter().find_map(hosts_refusal),
        Class::Figure8 => Some(
            "figure-8 needs to read Raft messages, which only the proxy can: use --net proxy on this machine".into(),
        ),
        Class::Membership { .. } => Some(format!(
            "{fault} is not offered on --hosts (it needs spare hosts to join): run it on this machine"
        )),
        Class::Message(Rule::Delay { .. } | Rule::Duplicate(_) | Rule::Reorder(_), _) => Some(format!(
            "{fault} is not offered on --hosts (netem would replace the root qdisc of each host's own interface): loss:P, partitions and process faults are; run it on this machine"
        )),
        Class::Disk(..) => Some(format!(
            "{fault} is not offered on --hosts yet (the disk layer is mounted on this machine): run it here"
        )),
        Class::Message(..) | Class::Partition(_) | Class::Process(_) => None,
    }
}

/// The network of a running testbed.
pub enum Net {
    /// The per-link proxies.
    Proxy(Network),
    /// The kernel's network (or the rules on a run's hosts).
    Kernel(KernelNet),
    /// Nodes that reach each other directly on loopback (a system whose
    /// members cannot be put behind link proxies, on the proxy backend):
    /// process faults only.
    Direct,
}

impl Net {
    /// Which backend this is.
    pub fn backend(&self) -> NetBackend {
        match self {
            Net::Proxy(_) => NetBackend::Proxy,
            Net::Kernel(_) => NetBackend::Kernel,
            Net::Direct => NetBackend::Proxy,
        }
    }

    /// The proxies, where the backend is the proxy.
    pub fn proxy(&self) -> Option<&Network> {
        match self {
            Net::Proxy(n) => Some(n),
            Net::Kernel(_) | Net::Direct => None,
        }
    }

    /// Cut every link between different groups (nodes in no group are cut
    /// off from everyone); `ids` are all the slots.
    pub fn partition(
        &self,
        ids: &[String],
        groups: &[Vec<String>],
        tag: u64,
    ) -> anyhow::Result<()> {
        let group_of = |id: &str| groups.iter().position(|g| g.iter().any(|x| x == id));
        self.block_where(ids, tag, |a, b| match (group_of(a), group_of(b)) {
            (Some(x), Some(y)) => x != y,
            _ => true,
        })
    }

    /// Cut exactly the links `(from, to)` for which `cut` says so.
    pub fn block_where(
        &self,
        ids: &[String],
        tag: u64,
        cut: impl Fn(&str, &str) -> bool,
    ) -> anyhow::Result<()> {
        match self {
            Net::Proxy(n) => {
                n.block_where(cut);
                Ok(())
            }
            Net::Kernel(k) => k.drop_links(tag, &links_where(ids, cut), None),
            Net::Direct => anyhow::bail!("{DIRECT}"),
        }
    }

    /// A message fault on every link touching `nodes` (both directions).
    pub fn message(
        &self,
        ids: &[String],
        nodes: &BTreeSet<String>,
        rule: Rule,
        tag: u64,
    ) -> anyhow::Result<()> {
        match self {
            Net::Proxy(n) => {
                n.update_touching(nodes, |r: &mut LinkRules| match rule {
                    Rule::Loss(p) => r.loss = p,
                    Rule::Delay { ms, jitter_ms } => {
                        r.delay = std::time::Duration::from_millis(ms);
                        r.jitter = std::time::Duration::from_millis(jitter_ms);
                    }
                    Rule::Duplicate(p) => r.duplicate = p,
                    Rule::Reorder(p) => r.reorder = p,
                });
                Ok(())
            }
            Net::Kernel(k) => {
                let shape = match rule {
                    Rule::Loss(p) => {
                        let links = links_where(ids, |a, b| nodes.contains(a) || nodes.contains(b));
                        return k.drop_links(tag, &links, Some(p));
                    }
                    Rule::Delay { ms, jitter_ms } => Shape::Delay { ms, jitter_ms },
                    Rule::Duplicate(p) => Shape::Duplicate { p },
                    Rule::Reorder(p) => Shape::Reorder { p },
                };
                k.shape(tag, nodes, &shape)
            }
            Net::Direct => anyhow::bail!("{DIRECT}"),
        }
    }

    /// End the network fault `tag`. The proxy opens every link; the
    /// kernel removes exactly that fault's rules.
    pub fn heal(&self, tag: u64) -> anyhow::Result<()> {
        match self {
            Net::Proxy(n) => {
                n.heal();
                Ok(())
            }
            Net::Kernel(k) => k.heal(tag),
            Net::Direct => Ok(()),
        }
    }

    /// End every network fault.
    pub fn heal_all(&self) -> anyhow::Result<()> {
        match self {
            Net::Proxy(n) => {
                n.heal();
                Ok(())
            }
            Net::Kernel(k) => k.heal_all(),
            Net::Direct => Ok(()),
        }
    }

    /// Every directed link's counters.
    pub fn stats(&self) -> Vec<LinkStats> {
        match self {
            Net::Proxy(n) => n.stats(),
            Net::Kernel(k) => k.stats(),
            Net::Direct => Vec::new(),
        }
    }
}

const DIRECT: &str = "these nodes reach each other directly: network faults need --net kernel";

fn links_where(ids: &[String], cut: impl Fn(&str, &str) -> bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in ids {
        for b in ids {
            if a != b && cut(a, b) {
                out.push((a.clone(), b.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::parse_list;

    #[test]
    fn the_kernel_refuses_message_reading_faults_and_netem_faults_without_netem() {
        let refused = |s: &str, netem: bool| {
            let f = parse_list(s, 5).unwrap();
            kernel_refusal(&f[0], netem)
        };
        assert!(refused("figure-8", true).unwrap().contains("--net proxy"));
        assert!(refused("membership-split", true)
            .unwrap()
            .contains("--net proxy"));
        let e = refused("delay:50", false).unwrap();
        assert!(e.contains("sch_netem") && e.contains("--net proxy"), "{e}");
        assert!(refused("delay:50", true).is_none());
        assert!(refused("partition-leader+duplicate:0.1", false).is_some());
        for ok in [
            "partition-leader",
            "loss:0.2",
            "one-way-in",
            "crash-leader",
            "pause:leader",
            "partition-ring&loss:0.1@n1",
        ] {
            assert!(refused(ok, false).is_none(), "{ok}");
        }
        assert_eq!("kernel".parse::<NetBackend>().unwrap(), NetBackend::Kernel);
        assert!("tc"
            .parse::<NetBackend>()
            .unwrap_err()
            .contains("proxy, kernel or hosts"));
    }

    #[test]
    fn hosts_take_partitions_loss_and_process_faults_only() {
        let refused = |s: &str| hosts_refusal(&parse_list(s, 5).unwrap()[0]);
        for ok in [
            "partition-leader",
            "loss:0.2",
            "one-way-in",
            "crash-leader",
            "pause:leader",
            "partition-ring&loss:0.1@n1",
        ] {
            assert!(refused(ok).is_none(), "{ok}");
        }
        for no in [
            "figure-8",
            "membership",
            "delay:50",
            "partition-leader+reorder:0.1",
        ] {
            assert!(refused(no).unwrap().contains("this machine"), "{no}");
        }
    }
}
