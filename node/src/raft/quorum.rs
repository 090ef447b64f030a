//! Quorum arithmetic: majorities of one configuration and joint majorities of
//! two (Raft paper §6). Small pure functions, tested by tables.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::id::NodeId;

/// The outcome of an election so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted.
    Won,
    /// A majority refused: the election cannot be won.
    Lost,
    /// Not decided yet.
    Pending,
}

/// The smallest number of voters that is a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// The highest index that a majority of `voters` has stored, given each
/// voter's match index. An empty set imposes no constraint (`u64::MAX`), so
/// that the joint rule below can take the minimum of both halves.
pub fn committed_index(voters: &BTreeSet<NodeId>, matched: impl Fn(&NodeId) -> u64) -> u64 {
    if voters.is_empty() {
        return u64::MAX;
    }
    let mut indexes: Vec<u64> = voters.iter().map(matched).collect();
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    indexes[majority(voters.len()) - 1]
}

/// The result of an election among `voters` given the answers in `votes`
/// (`true` granted, `false` refused; voters missing from the map have not answered).
pub fn vote_result(voters: &BTreeSet<NodeId>, votes: &HashMap<NodeId, bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut granted, mut refused) = (0, 0);
    for v in voters {
        match votes.get(v) {
            Some(true) => granted += 1,
            Some(false) => refused += 1,
            None => {}
        }
    }
    let need = majority(voters.len());
    if granted >= need {
        VoteResult::Won
    } else if voters.len() - refused < need {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

/// Whether the servers in `active` include a majority of `voters`.
pub fn is_quorum(voters: &BTreeSet<NodeId>, active: &BTreeSet<NodeId>) -> bool {
    voters.is_empty() || voters.intersection(active).count() >= majority(voters.len())
}

/// The cluster's voting configuration. During a joint-consensus change both
/// `incoming` and `outgoing` are set and every decision needs a majority of
/// each; otherwise `outgoing` is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    /// The voters of the new (or only) configuration.
    pub incoming: BTreeSet<NodeId>,
    /// The voters of the old configuration while a change is in progress.
    pub outgoing: BTreeSet<NodeId>,
}

impl Configuration {
    /// A simple (non-joint) configuration of `voters`.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Configuration {
            incoming: voters.into_iter().collect(),
            outgoing: BTreeSet::new(),
        }
    }

    /// Every voter of either half.
    pub fn voters(&self) -> BTreeSet<NodeId> {
        self.incoming.union(&self.outgoing).cloned().collect()
    }

    /// Whether `id` votes in this configuration.
    pub fn contains(&self, id: &str) -> bool {
        self.incoming.contains(id) || self.outgoing.contains(id)
    }

    /// The highest index stored by a majority of both halves.
    pub fn committed_index(&self, matched: impl Fn(&NodeId) -> u64) -> u64 {
        let a = committed_index(&self.incoming, &matched);
        let b = committed_index(&self.outgoing, &matched);
        a.min(b)
    }

    /// The election result: won only when both halves are won.
    pub fn vote_result(&self, votes: &HashMap<NodeId, bool>) -> VoteResult {
        match (
            vote_result(&self.incoming, votes),
            vote_result(&self.outgoing, votes),
        ) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }

    /// Whether `active` holds a majority of both halves.
    pub fn is_quorum(&self, active: &BTreeSet<NodeId>) -> bool {
        is_quorum(&self.incoming, active) && is_quorum(&self.outgoing, active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<NodeId> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn majority_table() {
        for (n, m) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)] {
            assert_eq!(majority(n), m, "majority of {n}");
        }
    }

    #[test]
    fn committed_index_table() {
        // (voters, match indexes in voter order, expected)
        let cases: &[(&[&str], &[u64], u64)] = &[
            (&["a"], &[5], 5),
            (&["a", "b", "c"], &[5, 3, 1], 3),
            (&["a", "b", "c"], &[0, 0, 7], 0),
            (&["a", "b", "c", "d"], &[9, 9, 2, 2], 2),
            (&["a", "b", "c", "d", "e"], &[1, 2, 3, 4, 5], 3),
        ];
        for (ids, idx, want) in cases {
            let voters = set(ids);
            let m: HashMap<NodeId, u64> = ids
                .iter()
                .zip(idx.iter())
                .map(|(a, b)| (a.to_string(), *b))
                .collect();
            assert_eq!(
                committed_index(&voters, |id| m[id]),
                *want,
                "{ids:?} {idx:?}"
            );
        }
        assert_eq!(committed_index(&set(&[]), |_| 0), u64::MAX);
    }

    #[test]
    fn joint_commit_needs_both_majorities() {
        let c = Configuration {
            incoming: set(&["a", "b", "c"]),
            outgoing: set(&["c", "d", "e"]),
        };
        let m: HashMap<&str, u64> = [("a", 9), ("b", 9), ("c", 4), ("d", 4), ("e", 1)].into();
        // incoming majority has 9, outgoing majority only 4.
        assert_eq!(c.committed_index(|id| m[id.as_str()]), 4);
    }

    #[test]
    fn vote_result_table() {
        let voters = set(&["a", "b", "c"]);
        let v = |pairs: &[(&str, bool)]| -> HashMap<NodeId, bool> {
            pairs.iter().map(|(a, b)| (a.to_string(), *b)).collect()
        };
        assert_eq!(
            vote_result(&voters, &v(&[("a", true)])),
            VoteResult::Pending
        );
        assert_eq!(
            vote_result(&voters, &v(&[("a", true), ("b", true)])),
            VoteResult::Won
        );
        assert_eq!(
            vote_result(&voters, &v(&[("a", true), ("b", false)])),
            VoteResult::Pending
        );
        assert_eq!(
            vote_result(&voters, &v(&[("b", false), ("c", false)])),
            VoteResult::Lost
        );
        let even = set(&["a", "b", "c", "d"]);
        assert_eq!(
            vote_result(&even, &v(&[("a", true), ("b", true)])),
            VoteResult::Pending
        );
        assert_eq!(
            vote_result(&even, &v(&[("c", false), ("d", false)])),
            VoteResult::Lost
        );
    }

    #[test]
    fn joint_vote_needs_both_halves() {
        let c = Configuration {
            incoming: set(&["a", "b", "c"]),
            outgoing: set(&["a", "d", "e"]),
        };
        let v = |pairs: &[(&str, bool)]| -> HashMap<NodeId, bool> {
            pairs.iter().map(|(a, b)| (a.to_string(), *b)).collect()
        };
        assert_eq!(
            c.vote_result(&v(&[("a", true), ("b", true)])),
            VoteResult::Pending
        );
        assert_eq!(
            c.vote_result(&v(&[("a", true), ("b", true), ("d", true)])),
            VoteResult::Won
        );
        assert_eq!(
            c.vote_result(&v(&[("d", false), ("e", false)])),
            VoteResult::Lost
        );
        assert!(!c.is_quorum(&set(&["a", "b", "c"])));
        assert!(c.is_quorum(&set(&["a", "b", "e"])));
    }
}
