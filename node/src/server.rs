//! The node process: the Raft core driven by a tokio runtime.
//!
//! One task (the Raft loop) owns the core, the storage and the state
//! machine. Everything else talks to it through one channel: the peer
//! listener (frames from other nodes), the client listener (requests), and a
//! ticker. After each batch of inputs the loop takes the core's Ready, sends
//! the messages that may leave at once, applies committed entries, answers
//! the clients whose entries they were, and hands the Ready's write to the
//! storage thread. That thread writes in order and folds everything that
//! queued up during one fsync into the next (group commit); when a write is
//! durable, the answers that waited for it (votes, append acknowledgements)
//! go out and the core learns that its own copy counts. The loop never
//! blocks on the disk, so a leader's fsync, its followers' fsyncs and the
//! next batch of requests all overlap.
//!
//! Each peer has an outbound task that keeps a TCP connection to the peer's
//! address (in a faultline run, the proxy of that link) and reconnects with
//! back-off; messages that cannot be sent are dropped, which Raft tolerates.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::bugs::UnsafeBug;
use crate::kv::{Command, Outcome, Proposal, RequestId, Store};
use crate::protocol::{
    self, ClientEnvelope, ClientError, ClientReply, ClientRequest, ClientResponse, MembersInfo,
    NodeStatus, PeerFrame,
};
use crate::raft::{
    self, Configuration, Entry, EntryData, MembershipChange, MessageBody, NodeId, Raft, Role,
};
use crate::storage::{Storage, SyncMode};

/// Everything a node needs to run.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id.
    pub id: NodeId,
    /// Where to accept peer connections.
    pub listen: SocketAddr,
    /// Where to accept client connections.
    pub client: SocketAddr,
    /// The other servers and where to reach them (these addresses win over
    /// the ones a configuration entry records).
    pub peers: Vec<(NodeId, SocketAddr)>,
    /// The initial voters (empty for a node that joins an existing cluster).
    pub voters: Vec<NodeId>,
    /// Where the log and metadata live.
    pub data_dir: PathBuf,
    /// The core's settings, in ticks.
    pub raft: raft::Config,
    /// The length of one tick.
    pub tick: Duration,
    /// How long a client request may wait for its entry to commit.
    pub request_timeout: Duration,
    /// Group commit or one fsync per entry.
    pub sync: SyncMode,
    /// Seed for the election-timeout RNG (random when absent).
    pub seed: Option<u64>,
    /// UNSAFE known-bug variants switched on (empty for a correct node).
    pub bugs: Vec<crate::bugs::UnsafeBug>,
}

/// Where an answer goes.
enum ReplyTo {
    /// A client connection on this node.
    Client {
        tx: mpsc::UnboundedSender<ClientReply>,
        id: u64,
    },
    /// A follower that forwarded the request.
    Peer { origin: NodeId, id: u64 },
}

/// An input to the Raft loop.
enum Event {
    Peer(PeerFrame),
    Client {
        request: ClientRequest,
        reply: ReplyTo,
    },
    /// The storage thread made every write up to `seq` durable, or failed.
    Persisted {
        seq: u64,
        result: Result<(), String>,
    },
}

/// One Ready's write, for the storage thread.
struct Write {
    seq: u64,
    hard: Option<raft::HardState>,
    log: raft::LogWrite,
}

/// A write handed to the storage thread and not yet durable, with what must
/// wait for it.
struct InFlight {
    seq: u64,
    /// Votes and append answers: they promise what is on disk.
    messages: Vec<raft::Message>,
    /// The write's last entry (index, term), reported to the core once durable.
    last: Option<(u64, u64)>,
}

/// The storage thread: writes in order, and everything that queued up while
/// one fsync ran shares the next (group commit).
fn storage_thread(
    mut storage: Storage,
    writes: std::sync::mpsc::Receiver<Write>,
    events: mpsc::UnboundedSender<Event>,
) {
    while let Ok(first) = writes.recv() {
        let (mut seq, mut hard, mut log) = (first.seq, first.hard, first.log);
        while let Ok(w) = writes.try_recv() {
            seq = w.seq;
            hard = w.hard.or(hard);
            log.merge(w.log);
        }
        let result = storage
            .persist(hard.as_ref(), &log)
            .map_err(|e| e.to_string());
        let failed = result.is_err();
        if events.send(Event::Persisted { seq, result }).is_err() || failed {
            return;
        }
    }
}

/// A proposal waiting for its entry to be applied.
struct Pending {
    term: u64,
    reply: ReplyTo,
    deadline: Instant,
}

/// Run a node until `shutdown` resolves or storage fails.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let peer_listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the peer address {}", config.listen))?;
    let client_listener = TcpListener::bind(config.client)
        .await
        .with_context(|| format!("binding the client address {}", config.client))?;
    serve(config, peer_listener, client_listener, shutdown).await
}

/// Run a node on listeners the caller bound (tests bind `127.0.0.1:0`).
pub async fn serve(
    config: NodeConfig,
    peer_listener: TcpListener,
    client_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let dir = config.data_dir.clone();
    let sync = config.sync;
    let (storage, recovered) = tokio::task::spawn_blocking(move || Storage::open(&dir, sync))
        .await
        .context("storage task")?
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
    // UNSAFE volatile-log: nothing survives a restart.
    let recovered = if config.bugs.contains(&UnsafeBug::VolatileLog) {
        crate::storage::Recovered {
            hard_state: Default::default(),
            entries: Vec::new(),
            torn_tail: None,
        }
    } else {
        recovered
    };
    if !config.bugs.is_empty() {
        let names: Vec<&str> = config.bugs.iter().map(|b| b.name()).collect();
        tracing::warn!(id = %config.id, bugs = %names.join(","), "UNSAFE known-bug variants are on");
    }
    tracing::info!(
        id = %config.id,
        term = recovered.hard_state.term,
        entries = recovered.entries.len(),
        "recovered from {}",
        config.data_dir.display()
    );
    // Every node of a run gets the same --seed; mix in the node's id so their
    // election timeouts differ (identical streams would split every vote).
    let seed = match config.seed {
        Some(s) => config.id.bytes().fold(s ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        }),
        None => rand::random(),
    };
    let raft = Raft::new(
        config.id.clone(),
        config.raft.clone(),
        Configuration::new(config.voters.iter().cloned()),
        recovered.hard_state,
        recovered.entries,
        seed,
    );

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (writes_tx, writes_rx) = std::sync::mpsc::channel();
    let storage_events = events_tx.clone();
    std::thread::Builder::new()
        .name("storage".into())
        .spawn(move || storage_thread(storage, writes_rx, storage_events))
        .context("starting the storage thread")?;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(accept_peers(peer_listener, events_tx.clone()));
    tasks.spawn(accept_clients(client_listener, events_tx.clone()));
    let mut node = NodeLoop {
        raft,
        writes: writes_tx,
        in_flight: Default::default(),
        next_write: 0,
        store: Store::default(),
        pending: BTreeMap::new(),
        forwards: HashMap::new(),
        // Random per incarnation: a reply to a request forwarded before a
        // restart can still arrive after it (the link delays it), and must
        // not answer a new request that happens to reuse its id.
        next_forward: rand::random::<u64>() >> 1,
        session: rand::random(),
        next_seq: 0,
        outbound: HashMap::new(),
        links: tokio::task::JoinSet::new(),
        peers_for_config: None,
        config,
        last_soft: (Role::Follower, 0, None),
    };
    for (peer, addr) in node.config.peers.clone() {
        node.connect_peer(peer, addr);
    }
    node.ensure_peers();
    let result = node.run(events_rx, shutdown).await;
    node.fail_all(ClientError::ShuttingDown);
    node.links.abort_all();
    tasks.abort_all();
    result
}

/// Messages queued for one peer before new ones are dropped.
const OUTBOUND_QUEUE: usize = 8192;
/// Inputs handled in one batch before the Ready is processed.
const BATCH: usize = 4096;

struct NodeLoop {
    raft: Raft,
    /// To the storage thread.
    writes: std::sync::mpsc::Sender<Write>,
    /// Writes not yet durable, oldest first.
    in_flight: std::collections::VecDeque<InFlight>,
    next_write: u64,
    store: Store,
    /// Leader: proposals by log index.
    pending: BTreeMap<u64, Pending>,
    /// Follower: requests forwarded to the leader, by forward id (ids start
    /// at a random point in each incarnation).
    forwards: HashMap<u64, (ReplyTo, Instant)>,
    next_forward: u64,
    session: u64,
    next_seq: u64,
    outbound: HashMap<NodeId, mpsc::Sender<PeerFrame>>,
    /// The outbound peer tasks.
    links: tokio::task::JoinSet<()>,
    /// The configuration entry whose members have outbound links.
    peers_for_config: Option<u64>,
    config: NodeConfig,
    last_soft: (Role, u64, Option<NodeId>),
}

impl NodeLoop {
    fn connect_peer(&mut self, peer: NodeId, addr: SocketAddr) {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        self.links.spawn(send_to_peer(peer.clone(), addr, rx));
        self.outbound.insert(peer, tx);
    }

    /// Open links to members that a configuration entry added, at the
    /// address it records (unless `--peer` named one).
    fn ensure_peers(&mut self) {
        let index = self.raft.membership_index();
        if self.peers_for_config == Some(index) {
            return;
        }
        self.peers_for_config = Some(index);
        let m = self.raft.membership().clone();
        for id in m.members() {
            if id == self.config.id || self.outbound.contains_key(&id) {
                continue;
            }
            match m.addresses.get(&id).map(|a| a.parse::<SocketAddr>()) {
                Some(Ok(addr)) if addr.ip().is_loopback() => self.connect_peer(id, addr),
                Some(_) => {
                    tracing::warn!(%id, "member has no usable loopback address; not connecting")
                }
                None => {
                    tracing::warn!(%id, "no address known for member; start this node with --peer {id}=ADDR")
                }
            }
        }
    }

    async fn run(
        &mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
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

    fn handle(&mut self, ev: Event) -> anyhow::Result<()> {
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
        }
        Ok(())
    }

    /// A write is durable: what waited for it may go, and a leader may now
    /// count its own copy of the entries.
    fn persisted(&mut self, w: InFlight) {
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

    fn client_request(&mut self, request: ClientRequest, reply: ReplyTo) {
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
                        Ok(a) if a.ip().is_loopback() => {
                            change.add.insert(id, addr);
                        }
                        _ => {
                            let e =
                                format!("peer address '{addr}' of {id} is not a loopback IP:PORT");
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
    fn route_change(&mut self, change: MembershipChange, reply: ReplyTo) {
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
    fn forward(&mut self, reply: ReplyTo, frame: impl FnOnce(NodeId, u64) -> PeerFrame) {
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

    fn propose_change(&mut self, change: MembershipChange, reply: ReplyTo) {
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
    fn await_commit(&mut self, index: u64, term: u64, reply: ReplyTo) {
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

    fn propose(&mut self, proposal: Proposal, reply: ReplyTo) {
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
                self.answer(reply, Ok(Outcome::Value(early_ack)));
            }
            Ok((index, term)) => self.await_commit(index, term, reply),
            Err(e) => self.answer(reply, Err(refused(e))),
        }
    }

    fn answer(&mut self, reply: ReplyTo, result: Result<Outcome, ClientError>) {
        match reply {
            ReplyTo::Peer { origin, id } => {
                self.send_peer(&origin, PeerFrame::ForwardReply { id, result })
            }
            reply => {
                let response = match result {
                    Ok(Outcome::Value(v)) => ClientResponse::Ok(v),
                    Ok(Outcome::CasMismatch { actual }) => ClientResponse::CasMismatch { actual },
                    Ok(Outcome::Membership { index }) => ClientResponse::Changed { index },
                    // The first copy of this request was applied and answered
                    // already; this one changed nothing and is not news.
                    Ok(Outcome::Duplicate) => ClientResponse::Error(ClientError::Timeout),
                    Err(e) => ClientResponse::Error(e),
                };
                self.send_reply(reply, response);
            }
        }
    }

    fn send_reply(&self, reply: ReplyTo, response: ClientResponse) {
        match reply {
            ReplyTo::Client { tx, id } => {
                let _ = tx.send(ClientReply { id, response });
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

    fn send_peer(&self, peer: &str, frame: PeerFrame) {
        if let Some(tx) = self.outbound.get(peer) {
            // A full queue means the peer is unreachable: drop, as a network would.
            let _ = tx.try_send(frame);
        }
    }

    fn expire(&mut self, now: Instant) {
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

    fn fail_all(&mut self, err: ClientError) {
        for (_, p) in std::mem::take(&mut self.pending) {
            self.answer(p.reply, Err(err.clone()));
        }
        for (_, (reply, _)) in std::mem::take(&mut self.forwards) {
            self.answer(reply, Err(err.clone()));
        }
    }

    fn process_ready(&mut self) -> anyhow::Result<()> {
        let rd = self.raft.take_ready_async();
        // A leader's appends leave before its own write is durable (Raft
        // thesis §10.2.1): followers write in parallel with the leader, and
        // the core counts the leader's own copy only once its write is done.
        for m in rd.messages {
            let to = m.to.clone();
            self.send_peer(&to, PeerFrame::Raft(m));
        }
        // Committed entries are on a majority's disks: apply them now.
        self.apply_committed(rd.committed);
        let has_write =
            rd.hard_state.is_some() || rd.log.truncate_from.is_some() || !rd.log.entries.is_empty();
        let last = rd.log.entries.last().map(|e| (e.index, e.term));
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
                target: "faultline::role",
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

    /// Apply committed entries to the state machine and answer the clients
    /// whose entries they were.
    fn apply_committed(&mut self, entries: Vec<Entry>) {
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
                    Some(Outcome::Membership { index: entry.index })
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

async fn accept_peers(listener: TcpListener, events: mpsc::UnboundedSender<Event>) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let events = events.clone();
        tokio::spawn(async move {
            let mut frames = FramedRead::new(stream, protocol::codec());
            while let Some(frame) = frames.next().await {
                let decoded = frame
                    .map_err(|e| e.to_string())
                    .and_then(|f| protocol::decode::<PeerFrame>(&f).map_err(|e| e.to_string()));
                match decoded {
                    Ok(f) => {
                        if events.send(Event::Peer(f)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(peer = %addr, "closing peer connection: {e}");
                        return;
                    }
                }
            }
        });
    }
}

async fn accept_clients(listener: TcpListener, events: mpsc::UnboundedSender<Event>) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let events = events.clone();
        tokio::spawn(async move {
            let (read, write) = stream.into_split();
            let (tx, mut rx) = mpsc::unbounded_channel::<ClientReply>();
            let writer = tokio::spawn(async move {
                let mut out = FramedWrite::new(write, protocol::codec());
                // Write every reply that is ready, then flush once: one
                // syscall for a batch of answers under load.
                while let Some(reply) = rx.recv().await {
                    let mut batch = vec![reply];
                    while let Ok(r) = rx.try_recv() {
                        batch.push(r);
                    }
                    for r in &batch {
                        if out.feed(protocol::encode(r)).await.is_err() {
                            return;
                        }
                    }
                    if SinkExt::<bytes::Bytes>::flush(&mut out).await.is_err() {
                        return;
                    }
                }
            });
            let mut frames = FramedRead::new(read, protocol::codec());
            while let Some(frame) = frames.next().await {
                let env = match frame
                    .map_err(|e| e.to_string())
                    .and_then(|f| protocol::decode::<ClientEnvelope>(&f).map_err(|e| e.to_string()))
                {
                    Ok(env) => env,
                    Err(e) => {
                        tracing::warn!(client = %addr, "closing client connection: {e}");
                        break;
                    }
                };
                let reply = ReplyTo::Client {
                    tx: tx.clone(),
                    id: env.id,
                };
                if events
                    .send(Event::Client {
                        request: env.request,
                        reply,
                    })
                    .is_err()
                {
                    break;
                }
            }
            drop(tx);
            // Let answers already on their way reach the client.
            let _ = writer.await;
        });
    }
}

async fn send_to_peer(peer: NodeId, addr: SocketAddr, mut rx: mpsc::Receiver<PeerFrame>) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(_) => {
                // Unreachable: drop what queued up meanwhile and retry later.
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        let _ = stream.set_nodelay(true);
        let mut out = FramedWrite::new(stream, protocol::codec());
        loop {
            let Some(frame) = rx.recv().await else { return };
            let mut batch = vec![frame];
            while let Ok(f) = rx.try_recv() {
                batch.push(f);
                if batch.len() >= 256 {
                    break;
                }
            }
            let mut failed = false;
            for f in &batch {
                if out.feed(protocol::encode(f)).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed || SinkExt::<bytes::Bytes>::flush(&mut out).await.is_err() {
                tracing::debug!(%peer, "peer connection lost; reconnecting");
                break;
            }
        }
    }
}
