//! Client requests inside the Raft loop: served by the leader, forwarded
//! to it by a follower, proposed and answered once their entry is applied
//! (or refused, timed out, or lost with leadership), and the committed
//! entries applied to the state machine.

use std::net::SocketAddr;
use std::time::Instant;

use crate::bugs::UnsafeBug;
use crate::kv::{Applied, Command, MicroOp, Proposal, RequestId, MAX_TXN_OPS};
use crate::protocol::{
    ClientError, ClientReply, ClientRequest, ClientResponse, MembersInfo, NodeStatus, PeerFrame,
};
use crate::raft::{self, Entry, EntryData, MembershipChange, NodeId, Role};

use super::{NodeLoop, Pending, ReplyTo};

impl NodeLoop {
    pub(super) fn client_request(&mut self, request: ClientRequest, reply: ReplyTo) {
        let command = match request {
            ClientRequest::Status => {
                let status = NodeStatus::new(self.raft.status(), self.config.tick);
                self.send_reply(reply, ClientResponse::Status(status));
                return;
            }
            ClientRequest::Members => {
                let info = MembersInfo::new(
                    self.config.id.clone(),
                    self.raft.leader().cloned(),
                    self.raft.membership(),
                    self.raft.membership_index(),
                    self.raft.commit_index(),
                );
                self.send_reply(reply, ClientResponse::Members(info));
                return;
            }
            ClientRequest::ChangeMembers { add, remove } => {
                let mut change = MembershipChange::default();
                for (id, addr) in add {
                    match addr.parse::<SocketAddr>() {
                        Ok(a) if crate::netpolicy::allowed(a).is_ok() => {
                            change.add.insert(id, addr);
                        }
                        _ => {
                            let e =
                                format!("peer address '{addr}' of {id} is not a loopback IP:PORT (or, in a kernel-network run, an address of its private range)");
                            self.answer(reply, Err(ClientError::BadRequest(e)));
                            return;
                        }
                    }
                }
                change.remove = remove.into_iter().collect();
                self.route_change(change, reply);
                return;
            }
            // UNSAFE stale-read: answer from local state, no log, no leadership check.
            ClientRequest::Get { key } if self.config.bugs.contains(&UnsafeBug::StaleRead) => {
                let v = self.store.local_read(&key);
                self.send_reply(reply, ClientResponse::Ok(v));
                return;
            }
            // Answered where the connection is read; one that gets here
            // (a forwarded request) is acknowledged.
            ClientRequest::Hello { .. } => {
                self.send_reply(reply, ClientResponse::Ok(None));
                return;
            }
            ClientRequest::Txn { ops } if ops.is_empty() || ops.len() > MAX_TXN_OPS => {
                let e = format!(
                    "a transaction of {} micro-operations (1 to {MAX_TXN_OPS})",
                    ops.len()
                );
                self.answer(reply, Err(ClientError::BadRequest(e)));
                return;
            }
            // UNSAFE stale-read: a read-only transaction answered from local
            // state, like a read.
            ClientRequest::Txn { ops }
                if self.config.bugs.contains(&UnsafeBug::StaleRead)
                    && ops.iter().all(|o| matches!(o, MicroOp::Read { .. })) =>
            {
                let lists = ops
                    .iter()
                    .map(|o| Some(self.store.local_list(o.key())))
                    .collect();
                self.send_reply(reply, ClientResponse::Txn(lists));
                return;
            }
            ClientRequest::Txn { ops } => Command::Txn { ops },
            ClientRequest::Get { key } => Command::Get { key },
            ClientRequest::Put { key, value } => Command::Put { key, value },
            ClientRequest::Cas { key, expected, new } => Command::Cas { key, expected, new },
        };
        self.next_seq += 1;
        let proposal = Proposal {
            id: RequestId {
                session: self.session,
                seq: self.next_seq,
            },
            command,
        };
        if self.raft.role() == Role::Leader {
            self.propose(proposal, reply);
            return;
        }
        self.forward(reply, |origin, id| PeerFrame::Forward {
            origin,
            id,
            proposal,
        });
    }

    /// Propose a membership change here if leading, else forward it.
    pub(super) fn route_change(&mut self, change: MembershipChange, reply: ReplyTo) {
        if self.raft.role() == Role::Leader {
            self.propose_change(change, reply);
            return;
        }
        self.forward(reply, |origin, id| PeerFrame::ForwardChange {
            origin,
            id,
            change,
        });
    }

    /// Hand a request to the leader this node knows (`frame` gets this node's
    /// id and the forward's handle; the answer comes back as a
    /// `ForwardReply`), or answer that no leader is known.
    pub(super) fn forward(&mut self, reply: ReplyTo, frame: impl FnOnce(NodeId, u64) -> PeerFrame) {
        match self.raft.leader().cloned() {
            Some(leader) if leader != self.config.id => {
                self.next_forward = self.next_forward.wrapping_add(1);
                let id = self.next_forward;
                self.forwards
                    .insert(id, (reply, Instant::now() + self.config.request_timeout));
                let frame = frame(self.config.id.clone(), id);
                self.send_peer(&leader, frame);
            }
            _ => self.answer(reply, Err(ClientError::NoLeader)),
        }
    }

    pub(super) fn propose_change(&mut self, change: MembershipChange, reply: ReplyTo) {
        match self.raft.propose_membership(&change) {
            Ok(index) => {
                tracing::info!(
                    target: "faultline::membership",
                    id = %self.config.id,
                    index,
                    membership = %self.raft.membership().describe(),
                    "membership change proposed"
                );
                let term = self.raft.term();
                self.await_commit(index, term, reply);
            }
            Err(e) => self.answer(reply, Err(refused(e))),
        }
    }

    /// Answer `reply` once the entry at `index` of `term` is applied (or
    /// when the request times out or leadership is lost).
    pub(super) fn await_commit(&mut self, index: u64, term: u64, reply: ReplyTo) {
        let deadline = Instant::now() + self.config.request_timeout;
        self.pending.insert(
            index,
            Pending {
                term,
                reply,
                deadline,
            },
        );
    }

    pub(super) fn propose(&mut self, proposal: Proposal, reply: ReplyTo) {
        let bytes = bincode::serialize(&proposal).expect("proposals always serialize");
        let early_ack = match &proposal.command {
            Command::Put { value, .. }
                if self.config.bugs.contains(&UnsafeBug::AckBeforeCommit) =>
            {
                Some(*value)
            }
            _ => None,
        };
        match self.raft.propose(bytes) {
            Ok((_, _)) if early_ack.is_some() => {
                // UNSAFE ack-before-commit: acknowledge once it is in our own log.
                self.answer(reply, Ok(Applied::Value(early_ack)));
            }
            Ok((index, term)) => self.await_commit(index, term, reply),
            Err(e) => self.answer(reply, Err(refused(e))),
        }
    }

    pub(super) fn answer(&mut self, reply: ReplyTo, result: Result<Applied, ClientError>) {
        match reply {
            ReplyTo::Peer { origin, id } => {
                self.send_peer(&origin, PeerFrame::ForwardReply { id, result })
            }
            reply => {
                let response = match result {
                    Ok(Applied::Value(v)) => ClientResponse::Ok(v),
                    Ok(Applied::CasMismatch { actual }) => ClientResponse::CasMismatch { actual },
                    Ok(Applied::Membership { index }) => ClientResponse::Changed { index },
                    Ok(Applied::Txn(r)) => ClientResponse::Txn(r),
                    // The first copy of this request was applied and answered
                    // already; this one changed nothing and is not news.
                    Ok(Applied::Duplicate) => ClientResponse::Error(ClientError::Timeout),
                    Err(e) => ClientResponse::Error(e),
                };
                self.send_reply(reply, response);
            }
        }
    }

    pub(super) fn send_reply(&self, reply: ReplyTo, response: ClientResponse) {
        match reply {
            ReplyTo::Client { tx, id, permit } => {
                let _ = tx.send((ClientReply { id, response }, permit));
            }
            ReplyTo::Peer { origin, id } => {
                let result = match response {
                    ClientResponse::Error(e) => Err(e),
                    _ => Err(ClientError::BadRequest("status cannot be forwarded".into())),
                };
                self.send_peer(&origin, PeerFrame::ForwardReply { id, result });
            }
        }
    }

    /// Apply committed entries to the state machine and answer the clients
    /// whose entries they were.
    pub(super) fn apply_committed(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            let outcome = match &entry.data {
                EntryData::Noop => None,
                EntryData::Config(m) => {
                    tracing::info!(
                        target: "faultline::membership",
                        id = %self.config.id,
                        index = entry.index,
                        membership = %m.describe(),
                        "configuration committed"
                    );
                    Some(Applied::Membership { index: entry.index })
                }
                EntryData::Command(bytes) => match bincode::deserialize::<Proposal>(bytes) {
                    Ok(p) => Some(self.store.apply(&p)),
                    Err(e) => {
                        tracing::error!(index = entry.index, "undecodable command in the log: {e}");
                        None
                    }
                },
            };
            if let Some(p) = self.pending.remove(&entry.index) {
                let result = match outcome {
                    // Our entry committed at this index.
                    Some(o) if p.term == entry.term => Ok(o),
                    // Another leader's entry took the index, so ours did not
                    // commit there; we still say unknown rather than fail,
                    // which is always safe for the checker.
                    _ => Err(ClientError::LeadershipLost),
                };
                self.answer(p.reply, result);
            }
        }
    }
}

/// The client's view of a proposal the core refused (nothing entered the log).
fn refused(e: raft::ProposeError) -> ClientError {
    match e {
        raft::ProposeError::NotLeader { leader } => ClientError::NotLeader { leader },
        raft::ProposeError::Membership(e) => ClientError::ChangeRefused {
            kind: e.kind,
            message: e.message,
        },
    }
}
