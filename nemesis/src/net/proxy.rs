//! The per-link proxy: one per directed link i→j, inside the controller.
//!
//! Node i is told that peer j lives at the proxy's address. The proxy reads
//! whole length-delimited frames (the node's framing) and decides for each
//! message, by the link's current [`LinkRules`] and the link's own seeded
//! RNG, whether to pass it, drop it, delay it, duplicate it or hold it back
//! so that later messages overtake it. A blocked link drops every message
//! silently while its TCP connections stay up, as with a cut cable: also
//! those still delayed on it when it was cut. A link may also drop or
//! shorten messages by what they carry ([`MessageFilter`], as etcd's raft
//! tests ignore one message type), which is how a step of a scripted
//! scenario such as Figure 8 is made to happen whatever the machine's speed.
//!
//! Rules change at runtime without reconnecting anything. Node i only ever
//! writes on its connection to j (j answers on its own connection to i,
//! through the proxy of link j→i), so one direction per link is all there is.

use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};

/// What a link does to each message. The default passes everything at once.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkRules {
    /// Drop every message (a partition).
    pub blocked: bool,
    /// Probability of dropping a message.
    pub loss: f64,
    /// Fixed delay added to every message.
    pub delay: Duration,
    /// Extra random delay, uniform in `0..=jitter`.
    pub jitter: Duration,
    /// Probability of delivering a message twice.
    pub duplicate: f64,
    /// Probability of holding a message back (uniform 5..50 ms more), so
    /// that messages sent after it arrive first.
    pub reorder: f64,
    /// Drop or shorten messages by what they carry (decided when a message
    /// enters the link, before loss and delay).
    #[serde(default)]
    pub filter: Option<MessageFilter>,
}

/// What a link does to messages by their content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageFilter {
    /// Pass only elections: vote and pre-vote requests and their answers.
    /// Appends, heartbeats and forwarded client requests are dropped (and
    /// so is anything that does not decode as a peer message).
    VotesOnly,
    /// Shorten every AppendEntries to its entries of this term or older: the
    /// message still arrives, as if the leader had sent fewer entries (its
    /// prevLogIndex check and commit index hold as sent; a follower commits
    /// no further than the last entry it got). Everything else passes.
    EntriesUpToTerm(u64),
}

impl MessageFilter {
    /// The peer frame that goes on, shortened or as it came; `None`: it is
    /// dropped. The second value says whether the filter changed anything.
    pub fn apply(&self, frame: Bytes) -> (Option<Bytes>, bool) {
        use faultline_node::protocol::{decode, encode, PeerFrame};
        use faultline_node::raft::MessageBody;
        let decoded = decode::<PeerFrame>(&frame);
        match self {
            MessageFilter::VotesOnly => match decoded {
                Ok(PeerFrame::Raft(m))
                    if matches!(
                        m.body,
                        MessageBody::RequestVote { .. } | MessageBody::RequestVoteResponse { .. }
                    ) =>
                {
                    (Some(frame), false)
                }
                _ => (None, true),
            },
            MessageFilter::EntriesUpToTerm(max) => match decoded {
                Ok(PeerFrame::Raft(mut m)) => match &mut m.body {
                    MessageBody::AppendEntries { entries, .. }
                        if entries.iter().any(|e| e.term > *max) =>
                    {
                        entries.retain(|e| e.term <= *max);
                        (Some(encode(&PeerFrame::Raft(m))), true)
                    }
                    _ => (Some(frame), false),
                },
                _ => (Some(frame), false),
            },
        }
    }
}

impl LinkRules {
    /// Every message passes at once.
    pub fn pass() -> Self {
        LinkRules::default()
    }
}

/// Messages queued on a link before the proxy stops reading from the sender
/// (a paused or stalled receiver must not make the controller's memory grow
/// without bound; the sender's own queue then fills and it drops, as a node
/// does when a peer is unreachable).
const LINK_QUEUE: usize = 16_384;

/// What a link did so far.
#[derive(Debug, Default)]
pub struct LinkCounters {
    passed: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    delayed: AtomicU64,
    bytes: AtomicU64,
    filtered: AtomicU64,
}

pub use faultline_rundir::records::{Counted, LinkStats};

/// One directed link's proxy.
pub struct Link {
    from: String,
    to: String,
    addr: SocketAddr,
    rules: Mutex<LinkRules>,
    rng: Mutex<ChaCha8Rng>,
    counters: LinkCounters,
    /// The link's accept and delivery tasks, ended by [`Link::stop`].
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// The receiver's real peer address (it moves when the receiver is
    /// restarted on other ports).
    upstream: Mutex<SocketAddr>,
    /// The sender's greeting (the first frame of its connection): not a
    /// message, so no fault touches it; it opens every connection the link
    /// makes to the receiver.
    hello: Mutex<Option<Bytes>>,
}

impl Link {
    /// Where node `from` must send to reach node `to`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The link's current rules.
    pub fn rules(&self) -> LinkRules {
        self.rules.lock().expect("not poisoned").clone()
    }

    /// Replace the link's rules; applies to the next message.
    pub fn set_rules(&self, rules: LinkRules) {
        *self.rules.lock().expect("not poisoned") = rules;
    }

    /// Deliver to `addr` from now on (the receiver moved to another port).
    pub fn set_upstream(&self, addr: SocketAddr) {
        *self.upstream.lock().expect("not poisoned") = addr;
    }

    fn upstream(&self) -> SocketAddr {
        *self.upstream.lock().expect("not poisoned")
    }

    /// Stop the link's tasks (its listener closes).
    pub fn stop(&self) {
        for t in self.tasks.lock().expect("not poisoned").drain(..) {
            t.abort();
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LinkStats {
        let c = &self.counters;
        LinkStats {
            from: self.from.clone(),
            to: self.to.clone(),
            passed: c.passed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            duplicated: c.duplicated.load(Ordering::Relaxed),
            delayed: c.delayed.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            filtered: c.filtered.load(Ordering::Relaxed),
            dropped_bytes: 0,
            counted: Counted::Messages,
        }
    }

    /// Decide what happens to one message: what goes on (the filter may
    /// shorten it) and the delays of each copy to deliver (empty: dropped).
    fn decide(&self, frame: Bytes) -> (Bytes, Vec<Duration>) {
        let rules = self.rules();
        let mut rng = self.rng.lock().expect("not poisoned");
        let frame = match rules.filter {
            Some(f) if !rules.blocked => {
                let (out, changed) = f.apply(frame);
                if changed {
                    self.counters.filtered.fetch_add(1, Ordering::Relaxed);
                }
                out
            }
            _ => Some(frame),
        };
        let lost = |rng: &mut ChaCha8Rng| rules.loss > 0.0 && rng.gen_bool(rules.loss.min(1.0));
        let frame = match frame {
            Some(f) if !rules.blocked && !lost(&mut rng) => f,
            _ => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return (Bytes::new(), Vec::new());
            }
        };
        let copies = if rules.duplicate > 0.0 && rng.gen_bool(rules.duplicate.min(1.0)) {
            self.counters.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        let delays = (0..copies)
            .map(|_| {
                let mut d = rules.delay;
                if !rules.jitter.is_zero() {
                    d += Duration::from_micros(rng.gen_range(0..=rules.jitter.as_micros() as u64));
                }
                if rules.reorder > 0.0 && rng.gen_bool(rules.reorder.min(1.0)) {
                    d += Duration::from_millis(rng.gen_range(5..=50));
                }
                d
            })
            .collect();
        (frame, delays)
    }
}

/// Start the proxy for link `from`→`to`, forwarding to `upstream` (the
/// receiver's real peer address). `seed` fixes the link's decisions.
pub async fn start_link(
    from: &str,
    to: &str,
    upstream: SocketAddr,
    seed: u64,
) -> std::io::Result<Arc<Link>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let link = Arc::new(Link {
        from: from.to_string(),
        to: to.to_string(),
        addr: listener.local_addr()?,
        rules: Mutex::new(LinkRules::pass()),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        counters: LinkCounters::default(),
        tasks: Mutex::new(Vec::new()),
        upstream: Mutex::new(upstream),
        hello: Mutex::new(None),
    });
    let (tx, rx) = mpsc::channel::<(Instant, Bytes)>(LINK_QUEUE);
    let delivery = tokio::spawn(deliver(link.clone(), rx));
    let l = link.clone();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, most likely: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(receive(l.clone(), stream, tx.clone()));
        }
    });
    link.tasks
        .lock()
        .expect("not poisoned")
        .extend([delivery.abort_handle(), accept.abort_handle()]);
    Ok(link)
}

async fn receive(link: Arc<Link>, stream: TcpStream, tx: mpsc::Sender<(Instant, Bytes)>) {
    use faultline_node::protocol::{decode, PeerFrame};
    let mut frames = FramedRead::new(stream, faultline_node::protocol::codec());
    let mut first = true;
    while let Some(Ok(frame)) = frames.next().await {
        let frame = frame.freeze();
        if std::mem::take(&mut first) && matches!(decode(&frame), Ok(PeerFrame::Hello { .. })) {
            *link.hello.lock().expect("not poisoned") = Some(frame);
            continue;
        }
        let now = Instant::now();
        let (frame, delays) = link.decide(frame);
        for d in delays {
            if !d.is_zero() {
                link.counters.delayed.fetch_add(1, Ordering::Relaxed);
            }
            // A full queue pushes back on the sender's TCP connection rather
            // than dropping: a healthy link must not lose messages.
            if tx.send((now + d, frame.clone())).await.is_err() {
                link.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A message waiting for its delivery time; the heap pops the earliest.
struct Due(Instant, u64, Bytes);

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.0, o.1).cmp(&(self.0, self.1))
    }
}

async fn deliver(link: Arc<Link>, mut rx: mpsc::Receiver<(Instant, Bytes)>) {
    let mut heap: BinaryHeap<Due> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut out: Option<FramedWrite<TcpStream, tokio_util::codec::LengthDelimitedCodec>> = None;
    let mut connected_to = link.upstream();
    let mut retry_at = Instant::now();
    loop {
        // Wait for the next message or the next delivery time.
        let next_due = heap.peek().map(|d| d.0);
        tokio::select! {
            m = rx.recv() => match m {
                Some((at, b)) => { seq += 1; heap.push(Due(at, seq, b)); }
                None => return,
            },
            _ = async { match next_due { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {}
        }
        while let Ok((at, b)) = rx.try_recv() {
            seq += 1;
            heap.push(Due(at, seq, b));
        }
        let now = Instant::now();
        let mut wrote = false;
        let upstream = link.upstream();
        if upstream != connected_to {
            out = None;
            connected_to = upstream;
        }
        if heap.peek().is_some_and(|d| d.0 <= now)
            && out.as_ref().is_some_and(|w| closed(w.get_ref()))
        {
            // The receiver went away (crashed or restarted) since the last
            // write: a write now would vanish into the dead connection, so a
            // message due while the receiver is up again would be lost.
            out = None;
        }
        // A link cut since a message entered it loses the message, as a cut
        // cable loses what is on the wire (a delayed message is on the wire).
        let cut = link.rules().blocked;
        while heap.peek().is_some_and(|d| d.0 <= now) {
            let Due(_, _, bytes) = heap.pop().expect("peeked");
            if cut {
                link.counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if out.is_none() && now >= retry_at {
                match tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(upstream))
                    .await
                {
                    Ok(Ok(s)) => {
                        let _ = s.set_nodelay(true);
                        let mut w = FramedWrite::new(s, faultline_node::protocol::codec());
                        let hello = link.hello.lock().expect("not poisoned").clone();
                        let greeted = match hello {
                            Some(h) => matches!(
                                tokio::time::timeout(Duration::from_secs(1), w.feed(h)).await,
                                Ok(Ok(()))
                            ),
                            None => true,
                        };
                        if greeted {
                            out = Some(w);
                        }
                    }
                    _ => retry_at = now + Duration::from_millis(50),
                }
            }
            let Some(w) = out.as_mut() else {
                // The receiver is down: the message is lost, as on a network.
                link.counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let n = bytes.len() as u64;
            let fed = tokio::time::timeout(Duration::from_secs(1), w.feed(bytes)).await;
            if !matches!(fed, Ok(Ok(()))) {
                link.counters.dropped.fetch_add(1, Ordering::Relaxed);
                out = None;
                continue;
            }
            wrote = true;
            link.counters.passed.fetch_add(1, Ordering::Relaxed);
            link.counters.bytes.fetch_add(n, Ordering::Relaxed);
        }
        if wrote {
            if let Some(w) = out.as_mut() {
                // A receiver that stopped reading (paused) must not stall the
                // link forever: give up on the connection after a while.
                let flushed =
                    tokio::time::timeout(Duration::from_secs(1), SinkExt::<Bytes>::flush(w)).await;
                if !matches!(flushed, Ok(Ok(()))) {
                    out = None;
                }
            }
        }
    }
}

/// Whether the receiver closed `stream`. It never writes on it, so anything
/// readable is its end of file (or a reset).
fn closed(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    match stream.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}
