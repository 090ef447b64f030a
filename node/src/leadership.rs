//! Who leads a cluster, judged from outside by its nodes' status answers.
//!
//! This is the one definition of a *working leader* that every part of
//! faultline uses: the nemesis (to aim leader faults and to wait for a
//! leader), the runner's observer (which writes these rounds to
//! `status.jsonl`) and the analysis (time without a leader). A leader works
//! while a majority of its voters follow it in its term and, when silences
//! are known, heard from it recently; a node that merely says it leads is a
//! *claimed* leader, which is what a fault aimed "at the leader" hits when
//! no leader works.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::NodeStatus;
use crate::raft::majority;
use crate::raft::Role;

/// One node's answer to one status poll, as `status.jsonl` stores it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeSample {
    /// Its role.
    pub role: Role,
    /// Term.
    pub term: u64,
    /// The leader it follows.
    pub leader: Option<String>,
    /// The voters of its configuration (absent in older files: then every
    /// polled node counts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub voters: Vec<String>,
    /// Milliseconds since it last heard from `leader` (0 on the leader;
    /// absent without a leader, and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard_ms: Option<u64>,
    /// On a leader: milliseconds since it became leader (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leading_ms: Option<u64>,
    /// On a leader: milliseconds since a majority of its voters last
    /// answered it (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_heard_ms: Option<u64>,
}

impl From<&NodeStatus> for NodeSample {
    fn from(s: &NodeStatus) -> Self {
        NodeSample {
            role: s.role,
            term: s.term,
            leader: s.leader.clone(),
            voters: s.voters.clone(),
            heard_ms: s.leader_heard_ms,
            leading_ms: s.leading_ms,
            quorum_heard_ms: s.quorum_heard_ms,
        }
    }
}

/// One polling round: every node's answer (absent: did not answer).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StatusRound {
    /// Milliseconds since the run's start.
    pub t_ms: u64,
    /// Answers by node.
    pub nodes: BTreeMap<String, Option<NodeSample>>,
}

impl StatusRound {
    /// The working leader and its term: a node that says it leads, that a
    /// majority of its voters (itself included) follow in its term and heard
    /// from within `fresh_ms`, and that itself heard from a majority within
    /// `fresh_ms` — one that can commit (when `fresh_ms` is given; samples
    /// without the silences count). A leader cut off from the others keeps
    /// its followers' belief until their election timeouts, and one that
    /// only sends (one-way) keeps it for ever; their silence, and its own,
    /// tell that it no longer leads.
    pub fn agreed_leader(&self, fresh_ms: Option<u64>) -> Option<(String, u64)> {
        for (id, s) in &self.nodes {
            let Some(s) = s else { continue };
            if s.role != Role::Leader {
                continue;
            }
            if let (Some(fresh), Some(q)) = (fresh_ms, s.quorum_heard_ms) {
                if q > fresh {
                    continue;
                }
            }
            // A majority of the leader's voters follow it (of every polled
            // node when the poll did not record voters).
            let counts = |o: &str| s.voters.is_empty() || s.voters.iter().any(|v| v == o);
            let followers = self
                .nodes
                .iter()
                .filter(|(oid, _)| counts(oid))
                .filter_map(|(_, o)| o.as_ref())
                .filter(|o| o.term == s.term && o.leader.as_deref() == Some(id.as_str()))
                .filter(|o| match (fresh_ms, o.heard_ms) {
                    (Some(fresh), Some(heard)) => heard <= fresh,
                    _ => true,
                })
                .count();
            let n = if s.voters.is_empty() {
                self.nodes.len()
            } else {
                s.voters.len()
            };
            if followers >= majority(n) {
                return Some((id.clone(), s.term));
            }
        }
        None
    }

    /// A node that says it leads, of the highest term: the leader to aim a
    /// fault at when no leader works (for example while it is cut off).
    pub fn claimed_leader(&self) -> Option<(String, u64)> {
        self.nodes
            .iter()
            .filter_map(|(id, s)| Some((id, s.as_ref()?)))
            .filter(|(_, s)| s.role == Role::Leader)
            .max_by_key(|(_, s)| s.term)
            .map(|(id, s)| (id.clone(), s.term))
    }

    /// How long ago a majority of `leader`'s voters last heard from it in
    /// `term`, ms: the silence that the majority's last member reports (the
    /// leader's own answer counts as 0). None without a majority naming it.
    pub fn majority_silence(&self, leader: &str, term: u64) -> Option<u64> {
        let naming = |s: &&NodeSample| s.term == term && s.leader.as_deref() == Some(leader);
        let samples: Vec<(&String, &NodeSample)> = self
            .nodes
            .iter()
            .filter_map(|(id, s)| s.as_ref().filter(naming).map(|s| (id, s)))
            .collect();
        let voters = samples
            .iter()
            .map(|(_, s)| &s.voters)
            .find(|v| !v.is_empty());
        let n = voters.map_or(self.nodes.len(), Vec::len);
        let mut silences: Vec<u64> = samples
            .iter()
            .filter(|(id, _)| voters.is_none_or(|v| v.contains(id)))
            .map(|(id, s)| {
                if *id == leader {
                    0
                } else {
                    s.heard_ms.unwrap_or(0)
                }
            })
            .collect();
        silences.sort_unstable();
        silences.get(majority(n) - 1).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(role: Role, term: u64, leader: Option<&str>, heard_ms: Option<u64>) -> NodeSample {
        NodeSample {
            role,
            term,
            leader: leader.map(str::to_string),
            voters: vec!["n1".into(), "n2".into(), "n3".into()],
            heard_ms,
            leading_ms: None,
            quorum_heard_ms: None,
        }
    }

    #[test]
    fn a_leader_works_only_while_a_majority_follows_it() {
        let mut r = StatusRound::default();
        r.nodes.insert(
            "n1".into(),
            Some(sample(Role::Leader, 2, Some("n1"), Some(0))),
        );
        r.nodes.insert(
            "n2".into(),
            Some(sample(Role::Follower, 2, Some("n1"), Some(30))),
        );
        r.nodes.insert("n3".into(), None);
        assert_eq!(r.agreed_leader(Some(100)), Some(("n1".into(), 2)));
        assert_eq!(r.majority_silence("n1", 2), Some(30));
        // The one follower stopped hearing from it: it claims, it does not work.
        r.nodes.insert(
            "n2".into(),
            Some(sample(Role::Follower, 2, Some("n1"), Some(500))),
        );
        assert_eq!(r.agreed_leader(Some(100)), None);
        assert_eq!(r.claimed_leader(), Some(("n1".into(), 2)));
        // A follower of another term does not count.
        r.nodes
            .insert("n2".into(), Some(sample(Role::Candidate, 3, None, None)));
        assert_eq!(r.agreed_leader(None), None);
    }

    #[test]
    fn a_leader_that_hears_no_majority_does_not_work() {
        // One-way: both followers hear the leader, the leader hears nobody.
        let mut r = StatusRound::default();
        let mut leader = sample(Role::Leader, 2, Some("n1"), Some(0));
        leader.quorum_heard_ms = Some(900);
        r.nodes.insert("n1".into(), Some(leader.clone()));
        for f in ["n2", "n3"] {
            r.nodes.insert(
                f.into(),
                Some(sample(Role::Follower, 2, Some("n1"), Some(20))),
            );
        }
        assert_eq!(r.agreed_leader(Some(150)), None);
        leader.quorum_heard_ms = Some(40);
        r.nodes.insert("n1".into(), Some(leader));
        assert_eq!(r.agreed_leader(Some(150)), Some(("n1".into(), 2)));
    }
}
