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
//!
//! Files: [`raft_loop`] drives the core and turns each Ready into sends,
//! writes and applies; [`storage_writer`] is the group-committing storage
//! thread; [`requests`] routes, forwards and answers client requests and
//! applies committed entries; [`peers`] accepts and keeps the peer
//! connections; [`clients`] accepts client connections.

mod clients;
mod limits;
mod peers;
mod raft_loop;
mod requests;
mod storage_writer;

use clients::accept_clients;
use peers::accept_peers;
use storage_writer::storage_thread;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::bugs::UnsafeBug;
use crate::kv::Store;
use crate::protocol::{ClientError, ClientRequest, PeerFrame};
use crate::raft::{self, Configuration, NodeId, Raft, Role};
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
    /// The cluster's name, in every peer greeting.
    pub cluster_id: String,
    /// Start even if the term/vote record is missing or older than the log.
    pub accept_lost_vote: bool,
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
        tx: mpsc::UnboundedSender<clients::Outgoing>,
        id: u64,
        /// The request's in-flight permit, released once its reply is written.
        permit: tokio::sync::OwnedSemaphorePermit,
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
    let cluster = config.cluster_id.clone();
    let opening = tokio::task::spawn_blocking(move || {
        let opened = Storage::open(&dir, sync)?;
        crate::storage::claim_cluster(&dir, &cluster)?;
        Ok::<_, crate::storage::StorageError>(opened)
    });
    // A shutdown signal is answered at every stage, opening the data
    // directory included (a slow or stuck disk must not hold the node).
    let mut shutdown = std::pin::pin!(shutdown);
    let opened = tokio::select! {
        opened = opening => opened,
        () = &mut shutdown => {
            tracing::info!(id = %config.id, "shutting down while opening the data directory");
            return Ok(());
        }
    };
    let (mut storage, recovered) = opened
        .context("storage task")?
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
    // UNSAFE ack-before-fsync, ignore-fsync-error, no-dir-fsync: see the
    // variants.
    storage.enable_bugs(&config.bugs);
    if !config.accept_lost_vote && !config.bugs.contains(&UnsafeBug::VolatileLog) {
        recovered.check_term_record(&config.data_dir)?;
    }
    // UNSAFE volatile-log: nothing survives a restart.
    let recovered = if config.bugs.contains(&UnsafeBug::VolatileLog) {
        crate::storage::Recovered {
            hard_state: Default::default(),
            snapshot: None,
            entries: Vec::new(),
            torn_tail: None,
            meta_found: false,
            lost: None,
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
        snapshot = recovered.snapshot.as_ref().map_or(0, |s| s.meta.index),
        entries = recovered.entries.len(),
        "recovered from {}",
        config.data_dir.display()
    );
    // The state machine starts from the snapshot; the log's tail follows.
    let store = match &recovered.snapshot {
        Some(s) => Store::from_snapshot(&s.data).map_err(|e| {
            anyhow::anyhow!(
                "{}: the snapshot up to {}: {e}",
                config.data_dir.join("snapshot").display(),
                s.meta.index
            )
        })?,
        None => Store::default(),
    };
    // Every node of a run gets the same --seed; mix in the node's id so their
    // election timeouts differ (identical streams would split every vote).
    let seed = match config.seed {
        Some(s) => config.id.bytes().fold(s ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        }),
        None => rand::random(),
    };
    let lost = recovered.lost;
    let mut raft = Raft::restore(
        config.id.clone(),
        config.raft.clone(),
        Configuration::new(config.voters.iter().cloned()),
        recovered.hard_state,
        recovered.snapshot,
        recovered.entries,
        seed,
    );
    if let Some((from, to)) = lost {
        let id = &config.id;
        tracing::error!(
            target: faultline_rundir::records::LOST_ENTRIES,
            id = %id,
            follower = %id,
            from,
            to,
            "this node lost acknowledged entries {from}-{to}: they were durable before it stopped, but its log ends at {} (its disk lost fsynced data); it will neither vote nor campaign until it holds a leader's log past {to}",
            from - 1
        );
        raft.recover_lost_entries(to);
    }

    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    // Unbounded: the loop must never block on it. The storage thread folds
    // every write queued during one fsync into the next, so it holds what
    // one fsync's time of events produced, and those are bounded above.
    let (writes_tx, writes_rx) = std::sync::mpsc::channel();
    let storage_events = events_tx.clone();
    std::thread::Builder::new()
        .name("storage".into())
        .spawn(move || storage_thread(storage, writes_rx, storage_events))
        .context("starting the storage thread")?;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(accept_peers(
        peer_listener,
        events_tx.clone(),
        config.cluster_id.clone(),
    ));
    tasks.spawn(accept_clients(
        client_listener,
        config.cluster_id.as_str().into(),
        events_tx.clone(),
    ));
    let mut node = NodeLoop {
        raft,
        writes: writes_tx,
        in_flight: Default::default(),
        next_write: 0,
        store,
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

/// Events queued for the Raft loop (peers' messages, clients' requests,
/// the storage thread's results) before their senders wait: a peer or a
/// client connection then stops reading (back-pressure on its TCP
/// stream), the storage thread blocks until the loop catches up. 1,024
/// events is a few milliseconds of the loop's work under load.
const EVENT_QUEUE: usize = 1024;

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
