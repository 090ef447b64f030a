//! Membership faults: `membership` removes a voter and later adds a fresh
//! server in a free slot; `membership-split` cuts the leader off with two
//! fresh servers and asks it to add both at once (what a one-step change
//! gets wrong). Both go through [`faultline_node::change`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_node::change::{change_members, leader_view, ChangeFailed, ChangeOptions};
use faultline_node::client::Client;
use faultline_node::protocol::{ClientRequest, ClientResponse, MembersInfo};
use serde_json::{json, Value};

use super::{sorted, Applied, Testbed};

/// How long one step of a membership fault may take.
const MEMBERSHIP_DEADLINE: Duration = Duration::from_secs(20);

impl Testbed {
    /// Start a membership fault; returns the nodes it hit and what the
    /// history records.
    /// `split`: membership-split (else membership).
    pub(super) async fn membership_fault(
        &mut self,
        split: bool,
    ) -> anyhow::Result<(Vec<String>, Value)> {
        let ids = self.cluster.ids();
        Ok(match split {
            false => {
                if ids.len() < 2 {
                    anyhow::bail!(
                        "membership: only {} node(s) left; not removing any",
                        ids.len()
                    );
                }
                let victim = self.random_node();
                let info = self
                    .change_members(Vec::new(), vec![victim.clone()], MEMBERSHIP_DEADLINE)
                    .await
                    .with_context(|| format!("removing {victim}"))?;
                if let Some(p) = self.cluster.node_mut(&victim) {
                    p.kill();
                }
                self.cluster.set_active(&victim, false);
                self.last_removed = Some(victim.clone());
                (
                    vec![victim.clone()],
                    json!({"removed": victim, "voters": info.voters, "config_index": info.config_index}),
                )
            }
            true => {
                let free = self.cluster.free_slots();
                if free.len() < 2 {
                    anyhow::bail!(
                        "membership-split needs two free node slots; {} free ({})",
                        free.len(),
                        free.join(",")
                    );
                }
                let leader = self.leader().await.context("no leader to cut off")?;
                let fresh: Vec<String> = free[..2].to_vec();
                for s in &fresh {
                    self.start_fresh(s).await?;
                }
                let mut side = vec![leader.clone()];
                side.extend(fresh.iter().cloned());
                let others: Vec<String> = ids.iter().filter(|i| **i != leader).cloned().collect();
                let groups = vec![sorted(side.clone()), others];
                let slots = self.cluster.slot_ids();
                self.net.partition(&slots, &groups, self.tag)?;
                // Ask the cut-off leader to grow the cluster by both at once.
                let add: Vec<(String, String)> = fresh
                    .iter()
                    .filter_map(|s| Some((s.clone(), self.cluster.listen_addr(s)?.to_string())))
                    .collect();
                let answer = match self.cluster.client_addr(&leader) {
                    Some(addr) => match Client::connect(addr, Duration::from_secs(1)).await {
                        Ok(c) => match c
                            .call(ClientRequest::ChangeMembers {
                                add,
                                remove: Vec::new(),
                            })
                            .await
                        {
                            Ok(ClientResponse::Changed { index }) => {
                                format!("committed at {index}")
                            }
                            Ok(ClientResponse::Error(e)) => e.to_string(),
                            Ok(other) => format!("{other:?}"),
                            Err(e) => e.to_string(),
                        },
                        Err(e) => e.to_string(),
                    },
                    None => "leader has no client address".into(),
                };
                (
                    side,
                    json!({"leader": leader, "fresh": fresh, "groups": groups, "answer": answer}),
                )
            }
        })
    }

    /// End a membership fault; returns what the history's end event records.
    pub(super) async fn heal_membership(
        &mut self,
        applied: &Applied,
        split: bool,
    ) -> anyhow::Result<Value> {
        match split {
            false => {
                let mut free = self.cluster.free_slots();
                // Reuse the slot just freed only when there is no other.
                if free.len() > 1 {
                    free.retain(|s| Some(s) != self.last_removed.as_ref());
                }
                let slot = free
                    .first()
                    .cloned()
                    .context("membership: no free node slot")?;
                self.start_fresh(&slot).await?;
                let addr = self
                    .cluster
                    .listen_addr(&slot)
                    .context("slot without address")?
                    .to_string();
                if let Err(e) = self
                    .change_members(vec![(slot.clone(), addr)], Vec::new(), MEMBERSHIP_DEADLINE)
                    .await
                {
                    // Leave the slot free rather than half-joined.
                    let _ = self
                        .change_members(Vec::new(), vec![slot.clone()], Duration::from_secs(5))
                        .await;
                    if let Some(p) = self.cluster.node_mut(&slot) {
                        p.kill();
                    }
                    self.cluster.set_active(&slot, false);
                    return Err(e.context(format!("adding {slot}")));
                }
                let voters = self.leader_members().await.map(|m| m.voters);
                return Ok(json!({"added": slot, "voters": voters}));
            }
            true => {
                self.net.heal(applied.tag)?;
                let fresh: Vec<String> = applied.nodes[1..].to_vec();
                // Let the cluster settle, then take out whichever fresh node got in.
                let deadline = Instant::now() + MEMBERSHIP_DEADLINE;
                let mut view = None;
                while Instant::now() < deadline {
                    if let Some(m) = self.leader_members().await {
                        let settled = m.committed && !m.changing;
                        view = Some(m);
                        if settled {
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let remove: Vec<String> = view
                    .map(|m| {
                        fresh
                            .iter()
                            .filter(|s| m.voters.contains(s) || m.learners.contains(s))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let result = if remove.is_empty() {
                    Ok(())
                } else {
                    self.change_members(Vec::new(), remove, MEMBERSHIP_DEADLINE)
                        .await
                        .map(|_| ())
                };
                for s in &fresh {
                    if let Some(p) = self.cluster.node_mut(s) {
                        p.kill();
                    }
                    self.cluster.set_active(s, false);
                }
                result.context("dropping the fresh nodes again")?;
            }
        }
        Ok(Value::Null)
    }

    /// The configuration as the leader knows it.
    pub(super) async fn leader_members(&self) -> Option<MembersInfo> {
        leader_view(&self.cluster.client_addrs(), Duration::from_millis(500))
            .await
            .ok()
    }

    /// Change the membership through whichever node will take the request,
    /// and wait until a node shows the change complete, retrying while
    /// another change is in progress, there is no leader, or an accepted
    /// change was lost with its leader (see [`faultline_node::change`]).
    pub async fn change_members(
        &self,
        add: Vec<(String, String)>,
        remove: Vec<String>,
        within: Duration,
    ) -> anyhow::Result<MembersInfo> {
        // Nodes to ask: the ones that stay.
        let askable: Vec<(String, SocketAddr)> = self
            .cluster
            .client_addrs()
            .into_iter()
            .filter(|(id, _)| !remove.contains(id) && !add.iter().any(|(a, _)| a == id))
            .collect();
        let opts = ChangeOptions {
            within,
            call_timeout: Duration::from_secs(3),
            retry: true,
        };
        match change_members(&askable, &add, &remove, opts).await {
            Ok(done) => Ok(done.members),
            Err(e @ ChangeFailed::Refused(_)) => {
                anyhow::bail!("the cluster refused the change: {e}")
            }
            Err(e) => Err(e.into()),
        }
    }
}
