//! Partitions: which links a partition fault cuts. Every shape cuts links
//! between node ids in the proxies (or, in a network backend, the rules
//! that stand for them), and healing opens the links again (the proxy: every link; the kernel: the
//! rules of that fault).

use std::collections::BTreeSet;

use faultline_node::raft::quorum::majority;
use serde_json::{json, Value};

use super::{sorted, Testbed};
use crate::fault::Fault;

impl Testbed {
    /// Start a partition fault; returns the nodes it hit and what the
    /// history records.
    pub(super) async fn partition(
        &mut self,
        fault: &Fault,
    ) -> anyhow::Result<(Vec<String>, Value)> {
        let ids = self.cluster.ids();
        let slots = self.cluster.slot_ids();
        let tag = self.tag;
        let n = ids.len();
        match fault {
            Fault::PartitionNode | Fault::PartitionLeader => {
                let leader = self.leader().await;
                let victim = match (fault, &leader) {
                    (Fault::PartitionLeader, Some(l)) => l.clone(),
                    _ => self.random_node(),
                };
                let rest: Vec<String> = ids.iter().filter(|i| **i != victim).cloned().collect();
                let groups = vec![vec![victim.clone()], rest];
                self.net.partition(&slots, &groups, tag)?;
                Ok((vec![victim], json!(groups)))
            }
            Fault::PartitionHalves => {
                let mut s = self.shuffled();
                let minority: Vec<String> = s.drain(..(n - 1) / 2).collect();
                let groups = vec![sorted(minority), sorted(s)];
                self.net.partition(&slots, &groups, tag)?;
                Ok((groups[0].clone(), json!(groups)))
            }
            Fault::PartitionBridge { bridge } => {
                let bridge = match self.resolve(bridge).await.into_iter().next() {
                    Some(b) => b,
                    None => self.random_node(),
                };
                let s: Vec<String> = self
                    .shuffled()
                    .into_iter()
                    .filter(|i| *i != bridge)
                    .collect();
                let half = (n - 1) / 2;
                let a: BTreeSet<String> = s[..half].iter().cloned().collect();
                let b: BTreeSet<String> = s[half..].iter().cloned().collect();
                self.net.block_where(&slots, tag, |x, y| {
                    (a.contains(x) && b.contains(y)) || (b.contains(x) && a.contains(y))
                })?;
                let value = json!({"halves": [a, b], "bridge": bridge});
                Ok((vec![bridge], value))
            }
            Fault::PartitionRing => {
                let ring = self.shuffled();
                let majority = majority(n);
                let reach = majority / 2; // each node sees `reach` neighbours on each side
                let reach = if 2 * reach + 1 < majority {
                    reach + 1
                } else {
                    reach
                };
                let pos = |id: &str| ring.iter().position(|x| x == id).unwrap_or(0);
                self.net.block_where(&slots, tag, |x, y| {
                    // A spare slot (not in the ring) stays cut off.
                    match (
                        ring.iter().position(|i| i == x),
                        ring.iter().position(|i| i == y),
                    ) {
                        (Some(_), Some(_)) => {
                            let d = pos(x).abs_diff(pos(y));
                            d.min(n - d) > reach
                        }
                        _ => true,
                    }
                })?;
                Ok((
                    ring.clone(),
                    json!({"ring": ring, "each_sees_neighbours": reach}),
                ))
            }
            Fault::OneWayIn | Fault::OneWayOut => {
                let leader = match self.leader().await {
                    Some(l) => l,
                    None => self.random_node(),
                };
                let inbound = matches!(fault, Fault::OneWayIn);
                self.net.block_where(&slots, tag, |x, y| {
                    if inbound {
                        y == leader
                    } else {
                        x == leader
                    }
                })?;
                let others: Vec<String> = ids.iter().filter(|i| **i != leader).cloned().collect();
                let value = if inbound {
                    json!({"cut_from": others, "cut_to": [leader.clone()]})
                } else {
                    json!({"cut_from": [leader.clone()], "cut_to": others})
                };
                Ok((vec![leader], value))
            }
            other => unreachable!("{other} is not a partition"),
        }
    }
}
