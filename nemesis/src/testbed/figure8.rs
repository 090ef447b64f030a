//! The Raft paper's Figure 8, played step by step on five nodes by shaping
//! the links (votes only, entries up to a term) from the nodes' status; see
//! `docs/faults.md` for what each step makes happen and why.

use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_node::protocol::NodeStatus;
use faultline_node::raft::Role;
use serde_json::{json, Value};

use super::{sorted, Testbed};
use crate::net::network::Network;
use crate::net::proxy::{LinkRules, MessageFilter};

impl Testbed {
    /// [`Fault::Figure8`], step by step. Returns the nodes left cut off (V
    /// and F) and what each step saw; a step that waits in vain ends the
    /// fault with an error (the links stay as they are until the heal).
    pub(super) async fn figure8(&mut self) -> anyhow::Result<(Vec<String>, Value)> {
        const STEP: Duration = Duration::from_secs(15);
        let l = self
            .leader()
            .await
            .context("figure-8: no leader to start from")?;
        let t_l = self.cluster.status(&l, Duration::from_secs(1)).await?.term;
        let mut rest: Vec<String> = self.shuffled().into_iter().filter(|i| *i != l).collect();
        let f = rest.remove(0);
        let all: Vec<String> = self.proxy_net()?.ids().to_vec();
        let shape = |net: &Network, open: &dyn Fn(&str, &str) -> Option<LinkRules>| {
            for a in &all {
                for b in &all {
                    if a != b {
                        let cut = LinkRules {
                            blocked: true,
                            ..LinkRules::pass()
                        };
                        net.set(a, b, open(a, b).unwrap_or(cut));
                    }
                }
            }
        };
        let pair = |a: &str, b: &str, x: &str, y: &str| (a == x && b == y) || (a == y && b == x);
        let among =
            |g: &[String], a: &str, b: &str| g.iter().any(|i| i == a) && g.iter().any(|i| i == b);
        let lf = [l.clone(), f.clone()];

        // 1. L and F alone: L's clients leave an uncommitted tail on both.
        shape(self.proxy_net()?, &|a, b| {
            pair(a, b, &l, &f).then(LinkRules::pass)
        });
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // 2. The other three elect W over links that carry only votes: W's
        // first entry (and every later one) reaches nobody, however long
        // the controller takes to see that W leads. Only one of the three
        // can win: a winner needs both others, and once it holds an entry
        // of its term neither of them has, it refuses them its vote.
        let votes_only = LinkRules {
            filter: Some(MessageFilter::VotesOnly),
            ..LinkRules::pass()
        };
        shape(self.proxy_net()?, &|a, b| {
            if pair(a, b, &l, &f) {
                Some(LinkRules::pass())
            } else {
                among(&rest, a, b).then(|| votes_only.clone())
            }
        });
        let (w, w_status) = self
            .first_leader(&rest, t_l, STEP)
            .await
            .context("figure-8 step 2: the other three elected no leader")?;
        let pq: Vec<String> = rest.iter().filter(|i| **i != w).cloned().collect();

        // 3. L, F and P: V, one of L and F, is elected. (No delay on P's
        // links: with 200 ms each way, P's own campaigns outbid L's and F's
        // terms again and again, and step 3 often found no leader in 15 s.)
        // P gets L's old entries but none of V's own term until either V's
        // commit index moves (a leader counting old entries' replicas) or
        // V has tried to send P an entry of its own term and P's answers to
        // the old ones have had time to come back (a correct leader); then
        // V's own entries may pass too (a correct V commits with them), and
        // P is cut off as soon as V's commit index moves.
        let (p, q) = (pq[0].clone(), pq[1].clone());
        let to_p = |filter: Option<MessageFilter>, a: &str, b: &str| {
            if pair(a, b, &l, &f) {
                Some(LinkRules::pass())
            } else if b == p && (a == l || a == f) {
                Some(LinkRules {
                    filter,
                    ..LinkRules::pass()
                })
            } else if a == p && (b == l || b == f) {
                Some(LinkRules::pass())
            } else {
                None
            }
        };
        let old_only = Some(MessageFilter::EntriesUpToTerm(t_l));
        shape(self.proxy_net()?, &|a, b| to_p(old_only, a, b));
        let proxies = self.proxy_net()?;
        let held_back = || {
            lf.iter()
                .filter_map(|a| proxies.link(a, &p))
                .map(|k| k.stats().filtered)
                .sum::<u64>()
        };
        let filtered_before = held_back();
        // L and F could commit nothing since step 1 (two of five): what
        // either knows committed now is where V's commit index starts.
        let mut commit_before = None;
        for id in &lf {
            if let Ok(s) = self.cluster.status(id, Duration::from_secs(1)).await {
                commit_before = commit_before.max(Some(s.commit_index));
            }
        }
        let commit_before = commit_before
            .context("figure-8 step 3: neither L nor F answered its status request")?;
        let (v, v_status) = self
            .first_leader(&lf, w_status.term, STEP)
            .await
            .context("figure-8 step 3: neither L nor F was elected with P")?;
        let answers = Duration::from_secs(5);
        let mut commit = commit_before;
        let mut lifted = false;
        let mut lift_at: Option<Instant> = None;
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            if let Ok(s) = self.cluster.status(&v, Duration::from_millis(100)).await {
                if s.commit_index > commit_before {
                    commit = s.commit_index;
                    break;
                }
            }
            if !lifted {
                if lift_at.is_none() && held_back() > filtered_before {
                    lift_at = Some(Instant::now() + answers);
                }
                if lift_at.is_some_and(|t| Instant::now() >= t) {
                    shape(self.proxy_net()?, &|a, b| to_p(None, a, b));
                    lifted = true;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shape(self.proxy_net()?, &|a, b| {
            pair(a, b, &l, &f).then(LinkRules::pass)
        });

        // 4. W, P and Q meet again; V and F stay cut off until the heal.
        let wpq = [w.clone(), p.clone(), q.clone()];
        shape(self.proxy_net()?, &|a, b| {
            (pair(a, b, &l, &f) || among(&wpq, a, b)).then(LinkRules::pass)
        });
        let last = self.first_leader(&wpq, v_status.term, STEP).await;
        let value = json!({
            "old_leader": l, "follower": f, "first": w, "first_term": w_status.term,
            "second": v, "second_term": v_status.term, "third": p,
            "commit_before": commit_before, "commit_after": commit,
            "own_entries_held_back": !lifted,
            "last": last.as_ref().map(|(id, s)| json!({"leader": id, "term": s.term})),
        });
        Ok((sorted(lf.to_vec()), value))
    }

    /// The first of `ids` to say it leads a term above `above_term`, polled
    /// every 10 ms for at most `within`.
    pub(super) async fn first_leader(
        &self,
        ids: &[String],
        above_term: u64,
        within: Duration,
    ) -> Option<(String, NodeStatus)> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let polls = futures::future::join_all(ids.iter().map(|id| async move {
                (
                    id.clone(),
                    self.cluster.status(id, Duration::from_millis(100)).await,
                )
            }))
            .await;
            for (id, s) in polls {
                if let Ok(s) = s {
                    if s.role == Role::Leader && s.term > above_term {
                        return Some((id, s));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}
