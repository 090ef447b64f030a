//! The simulated disks: a Ready's write issued, completed in order (at once,
//! or up to a few ticks later in the background, as the real node writes),
//! and lost if the server crashes before it completes.

use super::*;

impl Cluster {
    /// Finish the writes of `id` that are due.
    pub(super) fn complete_writes(&mut self, id: &str) {
        loop {
            let node = self.nodes.get_mut(id).expect("known");
            if node.raft.is_none() || node.writes.front().is_none_or(|w| w.due > self.now) {
                return;
            }
            let w = node.writes.pop_front().expect("checked");
            self.complete(id, w);
            // The core may commit now that its own copy is durable.
            self.process(id);
        }
    }

    /// A write is durable: store it, send what waited for it, tell the core.
    pub(super) fn complete(&mut self, id: &str, w: PendingWrite) {
        let node = self.nodes.get_mut(id).expect("known");
        if let Some(h) = w.hard {
            node.hard = h;
        }
        if let Some(s) = w.snapshot {
            node.snapshot = Some(s);
        }
        if let Some(from) = w.truncate_from {
            node.log.retain(|e| e.index < from);
        }
        let base = w.compact_to.unwrap_or(0);
        if base > 0 {
            node.log.retain(|e| e.index > base);
        }
        for e in w.entries {
            if e.index > base {
                node.log.push(e);
            }
        }
        if let (Some((index, term)), Some(raft)) = (w.last, node.raft.as_mut()) {
            raft.on_persisted(index, term);
        }
        for m in w.messages {
            self.send(m);
        }
    }

    /// Check a Ready's write as it is handed out, and track the log it leaves.
    pub(super) fn issue(&mut self, id: &str, ready: &Ready) {
        let node = self.nodes.get_mut(id).expect("known");
        let raft = node.raft.as_ref().expect("live");
        let (role, term) = (raft.role(), raft.term());
        let mut problems = Vec::new();
        if let Some(hs) = &ready.hard_state {
            if hs.term < node.issued_hard.term {
                problems.push(format!(
                    "{id}: term went back from {} to {}",
                    node.issued_hard.term, hs.term
                ));
            }
            if hs.term == node.issued_hard.term
                && node.issued_hard.vote.is_some()
                && hs.vote != node.issued_hard.vote
            {
                problems.push(format!(
                    "{id}: voted twice in term {}: {:?} then {:?}",
                    hs.term, node.issued_hard.vote, hs.vote
                ));
            }
            node.issued_hard = hs.clone();
        }
        if let Some(s) = &ready.restore {
            // An installed snapshot: the log up to its index is the
            // cluster's committed prefix (checked in `check_restore`); a
            // log that did not hold its last entry was replaced.
            let i = s.meta.index as usize;
            let known = self.inv.committed.len();
            if i > known {
                let what = format!(
                    "{id} installed a snapshot up to {i}, but only {known} entries are committed"
                );
                self.fail(what);
            }
            if node.chain.get(i) != Some(&self.inv.committed[i - 1]) {
                node.chain = vec![0];
                node.chain.extend_from_slice(&self.inv.committed[..i]);
            }
        }
        if let Some(from) = ready.log.truncate_from {
            if node.last_role == (Role::Leader, term) && role == Role::Leader {
                problems.push(format!(
                    "leader append-only: leader {id} of term {term} truncated its log from {from}"
                ));
            }
            node.chain.truncate(from as usize);
        }
        for e in &ready.log.entries {
            if e.index != node.chain.len() as u64 {
                problems.push(format!(
                    "{id}: appended index {} after {}",
                    e.index,
                    node.chain.len() - 1
                ));
            }
            let h = chain_hash(*node.chain.last().expect("chain[0]"), e);
            node.chain.push(h);
            match self.inv.prefixes.get(&(e.index, e.term)) {
                Some(prev) if *prev != h => problems.push(format!(
                    "log matching: {id} holds ({}, term {}) with a prefix that differs from another server's",
                    e.index, e.term
                )),
                Some(_) => {}
                None => {
                    self.inv.prefixes.insert((e.index, e.term), h);
                }
            }
        }
        if let Some(p) = problems.into_iter().next() {
            self.fail(p);
        }
    }
}
