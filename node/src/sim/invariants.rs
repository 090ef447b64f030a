//! The Raft safety properties, checked after every step: election safety,
//! leader append-only, log matching, leader completeness and state-machine
//! safety (and monotonic terms and commit indexes). A violation stops the
//! simulation with its seed, so it replays exactly.

use super::*;

impl Cluster {
    pub(super) fn fail(&self, what: String) -> ! {
        panic!(
            "safety violation at tick {}: {what}\nreplay: seed {} (FAULTLINE_SEED={} cargo test -p faultline-node)",
            self.now, self.seed, self.seed
        );
    }

    /// A snapshot installed from a leader holds exactly the committed
    /// prefix up to its index; the state machine becomes it.
    pub(super) fn check_restore(&mut self, id: &str, s: &Snapshot) {
        let i = s.meta.index as usize;
        let state: SimState = match bincode::deserialize(&s.data) {
            Ok(st) => st,
            Err(e) => self.fail(format!("{id} installed an undecodable snapshot: {e}")),
        };
        if state.index != s.meta.index || i > self.inv.committed.len() {
            self.fail(format!(
                "{id} installed a snapshot of index {} holding state up to {} ({} committed)",
                s.meta.index,
                state.index,
                self.inv.committed.len()
            ));
        }
        if state.hash != self.inv.committed[i - 1] {
            self.fail(format!(
                "state-machine safety: {id} installed a snapshot up to {i} whose state differs from the committed prefix"
            ));
        }
        if self.inv.prefixes.get(&(s.meta.index, s.meta.term)) != Some(&state.hash) {
            self.fail(format!(
                "{id} installed a snapshot claiming ({}, term {}), which is not the committed entry",
                s.meta.index, s.meta.term
            ));
        }
        if state.index < self.nodes[id].sm.index {
            self.fail(format!(
                "state-machine safety: {id} installed a snapshot up to {} over a state machine that had applied up to {}: it moved backwards",
                state.index, self.nodes[id].sm.index
            ));
        }
        let node = self.nodes.get_mut(id).expect("known");
        node.sm = state;
        node.snapshots.1 += 1;
    }

    pub(super) fn check_apply(&mut self, id: &str, e: &Entry) {
        let node = &self.nodes[id];
        let expected_index = node.sm.index + 1;
        if e.index != expected_index {
            self.fail(format!(
                "{id} applied index {} out of order (expected {expected_index})",
                e.index
            ));
        }
        let i = e.index as usize;
        if i <= self.inv.applied.len() {
            let (t, d) = &self.inv.applied[i - 1];
            if *t != e.term || *d != e.data {
                self.fail(format!(
                    "state-machine safety: {id} applied ({}, term {}) where another server applied term {t}",
                    e.index, e.term
                ));
            }
        } else {
            self.inv.applied.push((e.term, e.data.clone()));
        }
    }

    pub(super) fn check_after(&mut self, id: &str) {
        // Split the borrows: the node (read and a few fields written) and
        // the global record.
        let Cluster { nodes, inv, .. } = self;
        let node = nodes.get_mut(id).expect("known");
        let Some(raft) = node.raft.as_ref() else {
            return;
        };
        let (role, term, commit) = (raft.role(), raft.term(), raft.commit_index());
        node.last_role = (role, term);
        let mut problems = Vec::new();
        if commit < node.last_commit {
            problems.push(format!(
                "{id}: commit index went back from {} to {commit}",
                node.last_commit
            ));
        }
        node.last_commit = commit;
        let chain = &node.chain;
        if chain.len() as u64 != raft.log().last_index() + 1 {
            problems.push(format!("{id}: persisted log and core log differ in length"));
        }
        // Committed entries never change.
        let known = inv.committed.len();
        let c = commit as usize;
        if c > 0 {
            let upto = c.min(known);
            if upto > 0 && chain.get(upto) != Some(&inv.committed[upto - 1]) {
                problems.push(format!(
                    "{id}: committed prefix up to {upto} differs from the cluster's"
                ));
            } else if c > known {
                inv.committed.extend_from_slice(&chain[known + 1..=c]);
            }
            let seen = inv.commit_seen_in_term.entry(term).or_insert(0);
            *seen = (*seen).max(commit);
        }
        if role == Role::Leader {
            match inv.leaders.get(&term) {
                Some(other) if other != id => problems.push(format!(
                    "election safety: {other} and {id} both lead term {term}"
                )),
                Some(_) => {}
                None => {
                    inv.leaders.insert(term, id.to_string());
                }
            }
            // Leader completeness: everything committed in an earlier term is
            // in this leader's log.
            if let Some(&must) = self
                .inv
                .commit_seen_in_term
                .range(..term)
                .map(|(_, c)| c)
                .max()
            {
                let m = must as usize;
                if chain.len() <= m || chain[m] != self.inv.committed[m - 1] {
                    problems.push(format!(
                        "leader completeness: leader {id} of term {term} lacks committed entries up to {must}"
                    ));
                }
            }
        }
        if let Some(p) = problems.into_iter().next() {
            self.fail(p);
        }
    }
}
