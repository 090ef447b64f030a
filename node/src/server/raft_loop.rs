//! The Raft loop: one task owns the core, the storage handle and the state
//! machine; it takes inputs in batches, then processes the core's Ready
//! (messages out, writes to the storage thread, committed entries applied).

use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::bugs::UnsafeBug;
use crate::kv::Store;
use crate::protocol::{ClientError, PeerFrame};
use crate::raft::Anomaly;
use crate::raft::{self, MessageBody, NodeId, Role};

use super::{Event, InFlight, NodeLoop, ReplyTo, Write, BATCH};

impl NodeLoop {
    pub(super) async fn run(
        &mut self,
        mut events: mpsc::Receiver<Event>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(self.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_tick = Instant::now();
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = ticker.tick() => {
                    // Count real time, so that a node resumed after SIGSTOP
                    // sees its timers expired, as a real paused server would.
                    let elapsed = last_tick.elapsed();
                    let ticks = (elapsed.as_nanos() / self.config.tick.as_nanos().max(1)) as u64;
                    for _ in 0..ticks.min(100_000) {
                        self.raft.tick();
                    }
                    last_tick += self.config.tick * ticks as u32;
                    self.expire(Instant::now());
                }
                ev = events.recv() => match ev {
                    Some(ev) => self.handle(ev)?,
                    None => return Ok(()),
                },
            }
            for _ in 0..BATCH {
                match events.try_recv() {
                    Ok(ev) => self.handle(ev)?,
                    Err(_) => break,
                }
            }
            // Let the connections that are ready read their requests first,
            // so that they share this round's messages and write.
            tokio::task::yield_now().await;
            for _ in 0..BATCH {
                match events.try_recv() {
                    Ok(ev) => self.handle(ev)?,
                    Err(_) => break,
                }
            }
            self.process_ready()?;
            self.ensure_peers();
        }
    }

    pub(super) fn handle(&mut self, ev: Event) -> anyhow::Result<()> {
        match ev {
            Event::Persisted { seq, result } => {
                if let Err(e) = result {
                    anyhow::bail!(
                        "storage failed; the node stops rather than answer what it cannot make durable: {e}"
                    );
                }
                let mut done = InFlight {
                    seq,
                    messages: Vec::new(),
                    last: None,
                };
                while self.in_flight.front().is_some_and(|w| w.seq <= seq) {
                    let w = self.in_flight.pop_front().expect("checked");
                    done.messages.extend(w.messages);
                    done.last = w.last.or(done.last);
                }
                self.persisted(done);
            }
            Event::Peer(PeerFrame::Raft(m)) => self.raft.step(m),
            Event::Peer(PeerFrame::Forward {
                origin,
                id,
                proposal,
            }) => {
                self.propose(proposal, ReplyTo::Peer { origin, id });
            }
            Event::Peer(PeerFrame::ForwardChange { origin, id, change }) => {
                self.propose_change(change, ReplyTo::Peer { origin, id });
            }
            Event::Peer(PeerFrame::ForwardReply { id, result }) => {
                if let Some((reply, _)) = self.forwards.remove(&id) {
                    self.answer(reply, result);
                }
            }
            Event::Client { request, reply } => self.client_request(request, reply),
            // Greetings end at the connection that received them.
            Event::Peer(PeerFrame::Hello { .. }) => {}
            Event::Peer(PeerFrame::CheckAcknowledged {
                leader,
                term,
                acknowledged,
            }) => {
                if let Some(has) = self.raft.check_acknowledged(term, acknowledged) {
                    let id = self.config.id.clone();
                    tracing::error!(
                        target: faultline_rundir::records::LOST_ENTRIES,
                        id = %id,
                        follower = %id,
                        %leader,
                        from = has + 1,
                        to = acknowledged,
                        "this node lost acknowledged entries {}-{acknowledged}: it had acknowledged them to leader {leader} in term {term}, but its log ends at {has} (its disk lost fsynced data)",
                        has + 1
                    );
                    self.send_peer(
                        &leader,
                        PeerFrame::LostEntries {
                            follower: id,
                            term,
                            acknowledged,
                            has,
                        },
                    );
                }
            }
            Event::Peer(PeerFrame::LostEntries {
                follower,
                term,
                acknowledged,
                has,
            }) => {
                tracing::warn!(
                    id = %self.config.id,
                    %follower,
                    "{follower} lost acknowledged entries {}-{acknowledged}; replicating to it from {}",
                    has + 1,
                    has + 1
                );
                self.raft.follower_lost_entries(&follower, term, has);
            }
        }
        Ok(())
    }

    /// A write is durable: what waited for it may go, and a leader may now
    /// count its own copy of the entries.
    pub(super) fn persisted(&mut self, w: InFlight) {
        // Several appends often share one fsync; of their successful answers
        // to the same leader in the same term, the one with the highest
        // match index says everything the others say.
        let mut messages = w.messages;
        let success = |m: &raft::Message| match m.body {
            MessageBody::AppendEntriesResponse {
                success: true,
                match_index,
                ..
            } => Some(match_index),
            _ => None,
        };
        let mut best: HashMap<(NodeId, u64), (u64, usize)> = HashMap::new();
        for (i, m) in messages.iter().enumerate() {
            if let Some(matched) = success(m) {
                let b = best.entry((m.to.clone(), m.term)).or_insert((matched, i));
                if matched >= b.0 {
                    *b = (matched, i);
                }
            }
        }
        let mut i = 0;
        messages.retain(|m| {
            i += 1;
            success(m).is_none() || best.get(&(m.to.clone(), m.term)).map(|b| b.1) == Some(i - 1)
        });
        for m in messages {
            let to = m.to.clone();
            self.send_peer(&to, PeerFrame::Raft(m));
        }
        if let Some((index, term)) = w.last {
            self.raft.on_persisted(index, term);
        }
    }

    pub(super) fn expire(&mut self, now: Instant) {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(i, _)| *i)
            .collect();
        for i in late {
            let p = self.pending.remove(&i).expect("listed");
            self.answer(p.reply, Err(ClientError::Timeout));
        }
        let late: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(i, _)| *i)
            .collect();
        for i in late {
            let (reply, _) = self.forwards.remove(&i).expect("listed");
            self.answer(reply, Err(ClientError::Timeout));
        }
    }

    pub(super) fn fail_all(&mut self, err: ClientError) {
        for (_, p) in std::mem::take(&mut self.pending) {
            self.answer(p.reply, Err(err.clone()));
        }
        for (_, (reply, _)) in std::mem::take(&mut self.forwards) {
            self.answer(reply, Err(err.clone()));
        }
    }

    pub(super) fn process_ready(&mut self) -> anyhow::Result<()> {
        let rd = self.raft.take_ready_async();
        for a in &rd.anomalies {
            self.report(a);
        }
        // A leader's appends leave before its own write is durable (Raft
        // thesis §10.2.1): followers write in parallel with the leader, and
        // the core counts the leader's own copy only once its write is done.
        for m in rd.messages {
            let to = m.to.clone();
            self.send_peer(&to, PeerFrame::Raft(m));
        }
        // A snapshot from the leader replaces the state machine first
        // (UNSAFE install-keeps-state: it does not).
        if let Some(s) = &rd.restore {
            if !self.config.bugs.contains(&UnsafeBug::InstallKeepsState) {
                self.store = Store::from_snapshot(&s.data).map_err(|e| {
                    anyhow::anyhow!(
                        "the snapshot up to {} from the leader does not decode: {e}",
                        s.meta.index
                    )
                })?;
            }
            tracing::info!(
                target: faultline_rundir::records::SNAPSHOT,
                event = faultline_rundir::records::SNAPSHOT_INSTALLED,
                id = %self.config.id,
                index = s.meta.index,
                term = s.meta.term,
                bytes = s.data.len(),
                "installed a snapshot from the leader"
            );
        }
        // Committed entries are on a majority's disks: apply them now.
        self.apply_committed(rd.committed);
        let has_write = rd.hard_state.is_some() || !rd.log.is_empty();
        let last = rd.log.entries.last().map(|e| (e.index, e.term)).or(rd
            .log
            .snapshot
            .as_ref()
            .map(|s| (s.meta.index, s.meta.term)));
        if !has_write || self.config.bugs.contains(&UnsafeBug::VolatileLog) {
            // Nothing new to write (or, UNSAFE volatile-log, nothing ever
            // reaches the disk): the answers wait only for earlier writes.
            let w = InFlight {
                seq: 0,
                messages: rd.persisted_messages,
                last,
            };
            // (With volatile-log nothing is ever in flight; without a write
            // there is no entry to report, so only the answers wait.)
            match self.in_flight.back_mut() {
                Some(prev) => prev.messages.extend(w.messages),
                None => self.persisted(w),
            }
        } else {
            // UNSAFE forget-vote: the term is stored, the vote is not.
            let hard = rd.hard_state.map(|h| {
                if self.config.bugs.contains(&UnsafeBug::ForgetVote) {
                    raft::HardState {
                        term: h.term,
                        vote: None,
                    }
                } else {
                    h
                }
            });
            self.next_write += 1;
            let seq = self.next_write;
            self.writes
                .send(Write {
                    seq,
                    hard,
                    log: rd.log,
                })
                .ok()
                .context("the storage thread stopped")?;
            self.in_flight.push_back(InFlight {
                seq,
                messages: rd.persisted_messages,
                last,
            });
        }
        if self.raft.snapshot_due() {
            let index = self.raft.take_snapshot(self.store.to_snapshot());
            tracing::info!(
                target: faultline_rundir::records::SNAPSHOT,
                event = faultline_rundir::records::SNAPSHOT_TAKEN,
                id = %self.config.id,
                index,
                first_index = self.raft.log().first_index(),
                "took a snapshot"
            );
        }
        let soft = (
            self.raft.role(),
            self.raft.term(),
            self.raft.leader().cloned(),
        );
        if soft != self.last_soft {
            if soft.0 != Role::Leader && !self.pending.is_empty() {
                // Entries we proposed may or may not survive the next leader.
                let pending = std::mem::take(&mut self.pending);
                for (_, p) in pending {
                    self.answer(p.reply, Err(ClientError::LeadershipLost));
                }
            }
            if soft.2 != self.last_soft.2 && !self.forwards.is_empty() {
                // Requests forwarded to the previous leader may never be
                // answered; tell their clients now (outcome unknown) rather
                // than at the timeout, so they can move on to the new leader.
                for (_, (reply, _)) in std::mem::take(&mut self.forwards) {
                    self.answer(reply, Err(ClientError::LeadershipLost));
                }
            }
            tracing::info!(
                target: faultline_rundir::records::ROLE,
                id = %self.config.id,
                role = ?soft.0,
                term = soft.1,
                leader = soft.2.as_deref().unwrap_or(""),
                "role changed"
            );
            self.last_soft = soft;
        }
        Ok(())
    }

    /// Follow up what the core noticed outside Raft's fault model.
    fn report(&self, a: &Anomaly) {
        match a {
            Anomaly::SuspectedLoss {
                follower,
                acknowledged,
                term,
            } => self.send_peer(
                follower,
                PeerFrame::CheckAcknowledged {
                    leader: self.config.id.clone(),
                    term: *term,
                    acknowledged: *acknowledged,
                },
            ),
        }
    }
}
