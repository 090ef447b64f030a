//! Cluster membership as log data, and the steps of a change by joint
//! consensus (Raft paper §6).
//!
//! A change `{add, remove}` goes through up to three configuration entries,
//! each proposed by the leader once the previous one is committed:
//!
//! 1. **learners** (only when servers are added): the new servers join as
//!    non-voting learners; the voters do not change, so commits never stall
//!    while they catch up;
//! 2. **joint** `C_old,new`: every decision needs a majority of the old
//!    voters *and* of the new ones; proposed once every learner has caught up;
//! 3. **final** `C_new`: the new voters alone.
//!
//! A server uses the latest configuration in its log, committed or not.
//! [`Membership::begin`] and [`Membership::next_step`] are pure functions of
//! the current configuration, so a new leader simply carries on a change its
//! predecessor started.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::id::NodeId;
use super::quorum::Configuration;

/// A cluster configuration as stored in a log entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The voters (two sets while joint).
    pub config: Configuration,
    /// Servers catching up before they become voters.
    pub learners: BTreeSet<NodeId>,
    /// Voters that the change in progress removes once the learners are in.
    pub removing: BTreeSet<NodeId>,
    /// Peer addresses of the members, for servers that do not know them.
    pub addresses: BTreeMap<NodeId, String>,
}

/// A requested change: servers to add (with their peer addresses) and to remove.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    /// New servers and their peer addresses.
    pub add: BTreeMap<NodeId, String>,
    /// Voters to remove, or learners to drop from a change in progress.
    pub remove: BTreeSet<NodeId>,
}

/// What kind of refusal a [`ChangeError`] is: what the one who asked should
/// do next. Callers match on the kind, never on the message's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalKind {
    /// The cluster cannot take a change now (another is in progress, or a
    /// new leader has not committed an entry of its term yet): ask again.
    Busy,
    /// The change asks for what already holds (adding a member, removing a
    /// server that is not one): an earlier request may have gone through.
    AlreadyDone,
    /// The change makes no sense and never will (it adds and removes nobody,
    /// would leave no voters, or names a server without an address).
    Invalid,
}

/// Why a change was refused. The configuration did not change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeError {
    /// What to do next.
    pub kind: RefusalKind,
    /// What a person reads.
    pub message: String,
}

impl ChangeError {
    /// A [`RefusalKind::Busy`] refusal.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(RefusalKind::Busy, message)
    }

    fn new(kind: RefusalKind, message: impl Into<String>) -> Self {
        ChangeError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn list(ids: &BTreeSet<NodeId>) -> String {
    ids.iter().cloned().collect::<Vec<_>>().join(",")
}

impl Membership {
    /// A simple configuration of `voters`, with no addresses.
    pub fn from_config(config: Configuration) -> Self {
        Membership {
            config,
            ..Default::default()
        }
    }

    /// Whether decisions need two majorities.
    pub fn is_joint(&self) -> bool {
        !self.config.outgoing.is_empty()
    }

    /// Whether a change is under way (learners, removals pending, or joint).
    pub fn in_transition(&self) -> bool {
        self.is_joint() || !self.learners.is_empty() || !self.removing.is_empty()
    }

    /// Voters and learners: every server the leader replicates to.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut m = self.config.voters();
        m.extend(self.learners.iter().cloned());
        m
    }

    /// A one-line description: `voters n1,n2,n3`, `joint n1,n2,n3 / n1,n2`, `+ learners n4`.
    pub fn describe(&self) -> String {
        let mut s = if self.is_joint() {
            format!(
                "joint {} / {}",
                list(&self.config.outgoing),
                list(&self.config.incoming)
            )
        } else {
            format!("voters {}", list(&self.config.incoming))
        };
        if !self.learners.is_empty() {
            s.push_str(&format!(" + learners {}", list(&self.learners)));
        }
        if !self.removing.is_empty() {
            s.push_str(&format!(" - removing {}", list(&self.removing)));
        }
        s
    }

    fn pruned(mut self) -> Self {
        let keep = self.members();
        self.addresses.retain(|id, _| keep.contains(id));
        self
    }

    /// The first configuration entry of `change`. `one_step` is the UNSAFE
    /// variant: the new voters at once, no learners and no joint step.
    pub fn begin(&self, change: &MembershipChange, one_step: bool) -> Result<Self, ChangeError> {
        if change.add.is_empty() && change.remove.is_empty() {
            return Err(ChangeError::new(
                RefusalKind::Invalid,
                "the change adds and removes nobody",
            ));
        }
        if self.in_transition() {
            // The one change allowed meanwhile: drop learners that cannot
            // catch up (a cancelled addition).
            if change.add.is_empty() && change.remove.is_subset(&self.learners) {
                let mut next = self.clone();
                next.learners.retain(|l| !change.remove.contains(l));
                return Ok(next.pruned());
            }
            return Err(ChangeError::busy(format!(
                "a membership change is in progress ({}); one change at a time",
                self.describe()
            )));
        }
        let voters = &self.config.incoming;
        if let Some(id) = change.add.keys().find(|id| self.members().contains(*id)) {
            return Err(ChangeError::new(
                RefusalKind::AlreadyDone,
                format!("{id} is already a member"),
            ));
        }
        if let Some(id) = change.remove.iter().find(|id| !voters.contains(*id)) {
            return Err(ChangeError::new(
                RefusalKind::AlreadyDone,
                format!("{id} is not a member"),
            ));
        }
        if let Some((id, _)) = change.add.iter().find(|(_, a)| a.is_empty()) {
            return Err(ChangeError::new(
                RefusalKind::Invalid,
                format!("{id} has no peer address"),
            ));
        }
        let mut target: BTreeSet<NodeId> = voters.clone();
        target.extend(change.add.keys().cloned());
        target.retain(|id| !change.remove.contains(id));
        if target.is_empty() {
            return Err(ChangeError::new(
                RefusalKind::Invalid,
                "the change would leave no voters",
            ));
        }
        let mut addresses = self.addresses.clone();
        addresses.extend(change.add.iter().map(|(k, v)| (k.clone(), v.clone())));
        let next = if one_step {
            Membership {
                config: Configuration::new(target),
                learners: BTreeSet::new(),
                removing: BTreeSet::new(),
                addresses,
            }
        } else if !change.add.is_empty() {
            Membership {
                config: self.config.clone(),
                learners: change.add.keys().cloned().collect(),
                removing: change.remove.clone(),
                addresses,
            }
        } else {
            Membership {
                config: Configuration {
                    incoming: target,
                    outgoing: voters.clone(),
                },
                learners: BTreeSet::new(),
                removing: BTreeSet::new(),
                addresses,
            }
        };
        Ok(next.pruned())
    }

    /// The entry that follows this one once it is committed (and, when it
    /// has learners, once they have caught up); `None` when no change is
    /// under way.
    pub fn next_step(&self) -> Option<Self> {
        if self.is_joint() {
            return Some(
                Membership {
                    config: Configuration::new(self.config.incoming.clone()),
                    learners: BTreeSet::new(),
                    removing: BTreeSet::new(),
                    addresses: self.addresses.clone(),
                }
                .pruned(),
            );
        }
        if self.learners.is_empty() && self.removing.is_empty() {
            return None;
        }
        let old = self.config.incoming.clone();
        let mut new: BTreeSet<NodeId> = old.union(&self.learners).cloned().collect();
        new.retain(|id| !self.removing.contains(id));
        if new.is_empty() {
            // Every learner was dropped and the removals would leave nobody.
            return Some(Membership::from_config(self.config.clone()).with(&self.addresses));
        }
        Some(Membership {
            config: Configuration {
                incoming: new,
                outgoing: old,
            },
            learners: BTreeSet::new(),
            removing: BTreeSet::new(),
            addresses: self.addresses.clone(),
        })
    }

    fn with(mut self, addresses: &BTreeMap<NodeId, String>) -> Self {
        self.addresses = addresses.clone();
        self.pruned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<NodeId> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn three() -> Membership {
        let mut m = Membership::from_config(Configuration::new(set(&["n1", "n2", "n3"])));
        for id in ["n1", "n2", "n3"] {
            m.addresses.insert(id.into(), format!("{id}:1"));
        }
        m
    }

    fn add(ids: &[&str]) -> MembershipChange {
        MembershipChange {
            add: ids
                .iter()
                .map(|i| (i.to_string(), format!("{i}:1")))
                .collect(),
            remove: BTreeSet::new(),
        }
    }

    fn remove(ids: &[&str]) -> MembershipChange {
        MembershipChange {
            add: BTreeMap::new(),
            remove: set(ids),
        }
    }

    #[test]
    fn adding_goes_learner_then_joint_then_final() {
        let m = three();
        let l = m.begin(&add(&["n4", "n5"]), false).unwrap();
        assert_eq!(l.config, m.config, "learners do not change the voters");
        assert_eq!(l.learners, set(&["n4", "n5"]));
        assert!(l.in_transition() && !l.is_joint());
        let j = l.next_step().unwrap();
        assert_eq!(j.config.outgoing, set(&["n1", "n2", "n3"]));
        assert_eq!(j.config.incoming, set(&["n1", "n2", "n3", "n4", "n5"]));
        assert!(j.learners.is_empty());
        let f = j.next_step().unwrap();
        assert!(!f.in_transition());
        assert_eq!(f.config.incoming, set(&["n1", "n2", "n3", "n4", "n5"]));
        assert_eq!(f.addresses.len(), 5);
        assert_eq!(f.next_step(), None);
    }

    #[test]
    fn removing_goes_joint_then_final_and_forgets_the_address() {
        let j = three().begin(&remove(&["n1"]), false).unwrap();
        assert_eq!(j.config.incoming, set(&["n2", "n3"]));
        assert_eq!(j.config.outgoing, set(&["n1", "n2", "n3"]));
        assert!(j.addresses.contains_key("n1"), "still a voter while joint");
        let f = j.next_step().unwrap();
        assert_eq!(f.config, Configuration::new(set(&["n2", "n3"])));
        assert!(!f.addresses.contains_key("n1"));
    }

    #[test]
    fn replacing_adds_learners_first_and_removes_in_the_joint_step() {
        let change = MembershipChange {
            remove: set(&["n3"]),
            ..add(&["n4"])
        };
        let l = three().begin(&change, false).unwrap();
        assert_eq!(l.config.incoming, set(&["n1", "n2", "n3"]));
        assert_eq!(l.removing, set(&["n3"]));
        let j = l.next_step().unwrap();
        assert_eq!(j.config.incoming, set(&["n1", "n2", "n4"]));
        assert_eq!(j.config.outgoing, set(&["n1", "n2", "n3"]));
    }

    #[test]
    fn one_change_at_a_time_except_dropping_a_learner() {
        let l = three().begin(&add(&["n4", "n5"]), false).unwrap();
        let err = l.begin(&add(&["n6"]), false).unwrap_err();
        assert_eq!(err.kind, RefusalKind::Busy, "{err}");
        assert!(err.to_string().contains("one change at a time"));
        let j = l.next_step().unwrap();
        assert_eq!(
            j.begin(&remove(&["n1"]), false).map_err(|e| e.kind),
            Err(RefusalKind::Busy)
        );
        // Cancel one learner, then the other: back to no change at all.
        let c = l.begin(&remove(&["n5"]), false).unwrap();
        assert_eq!(c.learners, set(&["n4"]));
        assert!(!c.addresses.contains_key("n5"));
        let c = c.begin(&remove(&["n4"]), false).unwrap();
        assert!(!c.in_transition());
        assert_eq!(c.next_step(), None);
    }

    #[test]
    fn nonsense_changes_are_refused() {
        let m = three();
        let refusal = |c: MembershipChange, kind: RefusalKind| match m.begin(&c, false) {
            Err(e) if e.kind == kind => e.message,
            other => panic!("{other:?}"),
        };
        let bad = |c: MembershipChange| refusal(c, RefusalKind::Invalid);
        assert!(refusal(add(&["n2"]), RefusalKind::AlreadyDone).contains("already a member"));
        assert!(refusal(remove(&["n9"]), RefusalKind::AlreadyDone).contains("not a member"));
        assert!(bad(remove(&["n1", "n2", "n3"])).contains("no voters"));
        assert!(bad(MembershipChange::default()).contains("nobody"));
        let mut c = add(&["n4"]);
        c.add.insert("n4".into(), String::new());
        assert!(bad(c).contains("no peer address"));
    }

    #[test]
    fn the_unsafe_one_step_variant_skips_learners_and_joint() {
        let f = three().begin(&add(&["n4", "n5"]), true).unwrap();
        assert!(!f.in_transition());
        assert_eq!(f.config.incoming, set(&["n1", "n2", "n3", "n4", "n5"]));
    }
}
