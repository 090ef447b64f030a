//! Partitions: which links a partition fault cuts. Every shape cuts links
//! between node ids in the proxies (or, in a network backend, the rules
//! that stand for them), and healing opens the links again (the proxy: every link; the kernel: the
//! rules of that fault).

use std::collections::BTreeSet;

use faultline_node::raft::majority;
use serde_json::{json, Value};

use std::time::{Duration, Instant};

use super::{sorted, Applied, Testbed};
use crate::fault::{Shape, LAG_WAIT_MS};

impl Testbed {
    /// Start a partition fault; returns the nodes it hit and what the
    /// history records.
    pub(super) async fn partition(
        &mut self,
        shape: Shape<'_>,
    ) -> anyhow::Result<(Vec<String>, Value)> {
        let ids = self.cluster.ids();
        let slots = self.cluster.slot_ids();
        let tag = self.tag;
        let n = ids.len();
        match shape {
            Shape::Isolate { leader: of_leader } => {
                let leader = if of_leader { self.leader().await } else { None };
                let victim = match leader {
                    Some(l) => l,
                    None => self.random_node(),
                };
                let rest: Vec<String> = ids.iter().filter(|i| **i != victim).cloned().collect();
                let groups = vec![vec![victim.clone()], rest];
                self.net.partition(&slots, &groups, tag)?;
                Ok((vec![victim], json!(groups)))
            }
            Shape::Halves => {
                let mut s = self.shuffled();
                let minority: Vec<String> = s.drain(..(n - 1) / 2).collect();
                let groups = vec![sorted(minority), sorted(s)];
                self.net.partition(&slots, &groups, tag)?;
                Ok((groups[0].clone(), json!(groups)))
            }
            Shape::Bridge(bridge) => {
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
            Shape::Ring => {
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
            Shape::OneWay { inbound } => {
                let leader = match self.leader().await {
                    Some(l) => l,
                    None => self.random_node(),
                };
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
            Shape::Lag(target) => {
                let leader = self.leader().await;
                let victim = match target {
                    crate::fault::Target::Node(id) => id.clone(),
                    // A random follower: the leader cannot fall behind itself.
                    _ => {
                        let followers: Vec<String> = ids
                            .iter()
                            .filter(|i| Some(*i) != leader.as_ref())
                            .cloned()
                            .collect();
                        let pick = self.random_index(followers.len());
                        followers[pick].clone()
                    }
                };
                let last = self
                    .cluster
                    .status(&victim, Duration::from_millis(500))
                    .await
                    .map(|s| s.last_log_index)
                    .ok();
                let rest: Vec<String> = ids.iter().filter(|i| **i != victim).cloned().collect();
                self.net
                    .partition(&slots, &[vec![victim.clone()], rest], tag)?;
                Ok((
                    vec![victim.clone()],
                    // Whether the victim led when it was cut off: then it
                    // is not a lagging follower, and it may need no snapshot.
                    json!({"lagging": victim, "last_log_index": last, "leader": leader}),
                ))
            }
        }
    }

    /// Before a `lag` fault heals: wait (polling, at most
    /// [`LAG_WAIT_MS`]) until the leader's log starts past the lagging
    /// node's last entry, so that catching up needs its snapshot. Returns
    /// what the history's end event records: whether that happened, and
    /// how long the wait took.
    pub(super) async fn wait_compacted_past(&mut self, applied: &Applied) -> Value {
        let victim = applied.value["lagging"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let behind = applied.value["last_log_index"].as_u64();
        let started = Instant::now();
        let limit = Duration::from_millis(LAG_WAIT_MS);
        let mut seen = None;
        loop {
            let round = self.cluster.status_round(Duration::from_millis(300)).await;
            if let Some((leader, _)) = round.agreed_leader(None) {
                if let Ok(s) = self
                    .cluster
                    .status(&leader, Duration::from_millis(300))
                    .await
                {
                    seen = Some((leader, s.first_index, s.snapshot_index));
                    // first_index 0: the system does not say (etcd).
                    let past = match behind {
                        Some(b) => s.first_index > b + 1,
                        None => s.snapshot_index > 0,
                    };
                    if past || s.first_index == 0 {
                        break;
                    }
                }
            }
            if started.elapsed() >= limit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let waited_ms = started.elapsed().as_millis() as u64;
        let (leader, first, snap) = seen.unwrap_or_default();
        let compacted_past = match behind {
            Some(b) if first > 0 => Some(first > b + 1),
            _ => None,
        };
        if compacted_past == Some(false) {
            tracing::warn!(
                "lag@{victim}: the leader did not compact past its log within {LAG_WAIT_MS} ms; \
                 healing without forcing a snapshot (lower the nodes' --snapshot-entries)"
            );
        }
        json!({
            "lagging": victim,
            "compacted_past": compacted_past,
            "leader": leader,
            "leader_first_index": first,
            "leader_snapshot_index": snap,
            "waited_ms": waited_ms,
        })
    }
}
