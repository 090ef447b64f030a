//! `tc netem` for delay, duplication and reordering on the kernel backend,
//! where the kernel has the netem qdisc (`sch_netem`). Only the peer
//! traffic of a node is shaped: its interface gets a `prio` qdisc whose
//! every priority goes to band 2, a netem qdisc on band 3, and one u32
//! filter per peer address that sends packets to that peer into band 3.
//! Client traffic (to the controller's bridge address) passes unshaped.

use std::net::Ipv4Addr;

/// What netem does to the shaped packets.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// Delay every packet by `ms`, ± `jitter_ms`.
    Delay {
        /// Mean delay, ms.
        ms: u64,
        /// Jitter, ms.
        jitter_ms: u64,
    },
    /// Duplicate a share `p` of the packets.
    Duplicate {
        /// Probability, 0..=1.
        p: f64,
    },
    /// Send a share `p` of the packets at once and delay the rest by
    /// 10 ms, so that they overtake each other.
    Reorder {
        /// Probability, 0..=1.
        p: f64,
    },
}

fn percent(p: f64) -> String {
    format!("{}%", ((p.clamp(0.0, 1.0) * 10_000.0).round() / 100.0))
}

/// The `tc` argument lists that put `shape` on the packets that leave
/// `dev` for any of `peers`, in order.
pub fn shape_commands(dev: &str, peers: &[Ipv4Addr], shape: &Shape) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let mut cmds = vec![s(&[
        "qdisc", "add", "dev", dev, "root", "handle", "1:", "prio", "bands", "3", "priomap", "1",
        "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1",
    ])];
    let mut netem = s(&[
        "qdisc", "add", "dev", dev, "parent", "1:3", "handle", "30:", "netem",
    ]);
    match shape {
        Shape::Delay { ms, jitter_ms } => {
            netem.extend(s(&["delay", &format!("{ms}ms")]));
            if *jitter_ms > 0 {
                netem.push(format!("{jitter_ms}ms"));
            }
        }
        Shape::Duplicate { p } => netem.extend(s(&["duplicate", &percent(*p)])),
        Shape::Reorder { p } => netem.extend(s(&["delay", "10ms", "reorder", &percent(*p), "50%"])),
    }
    cmds.push(netem);
    for ip in peers {
        cmds.push(s(&[
            "filter",
            "add",
            "dev",
            dev,
            "parent",
            "1:",
            "protocol",
            "ip",
            "prio",
            "1",
            "u32",
            "match",
            "ip",
            "dst",
            &format!("{ip}/32"),
            "flowid",
            "1:3",
        ]));
    }
    cmds
}

/// The `tc` arguments that remove every shape from `dev`.
pub fn clear_command(dev: &str) -> Vec<String> {
    ["qdisc", "del", "dev", dev, "root"]
        .iter()
        .map(|x| x.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delay_shapes_only_the_packets_to_the_peers() {
        let peers = [Ipv4Addr::new(10, 99, 0, 12), Ipv4Addr::new(10, 99, 0, 13)];
        let cmds = shape_commands(
            "eth0",
            &peers,
            &Shape::Delay {
                ms: 50,
                jitter_ms: 10,
            },
        );
        let lines: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            lines,
            [
                "qdisc add dev eth0 root handle 1: prio bands 3 priomap 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
                "qdisc add dev eth0 parent 1:3 handle 30: netem delay 50ms 10ms",
                "filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.99.0.12/32 flowid 1:3",
                "filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.99.0.13/32 flowid 1:3",
            ]
        );
        assert_eq!(clear_command("eth0").join(" "), "qdisc del dev eth0 root");
    }

    #[test]
    fn duplicate_and_reorder_give_percentages() {
        let dup = shape_commands("eth0", &[], &Shape::Duplicate { p: 0.25 });
        assert_eq!(
            dup[1].join(" "),
            "qdisc add dev eth0 parent 1:3 handle 30: netem duplicate 25%"
        );
        let re = shape_commands("eth0", &[], &Shape::Reorder { p: 0.125 });
        assert_eq!(
            re[1].join(" "),
            "qdisc add dev eth0 parent 1:3 handle 30: netem delay 10ms reorder 12.5% 50%"
        );
        let plain = shape_commands(
            "eth0",
            &[],
            &Shape::Delay {
                ms: 5,
                jitter_ms: 0,
            },
        );
        assert_eq!(plain[1].last().unwrap(), "5ms");
    }
}
