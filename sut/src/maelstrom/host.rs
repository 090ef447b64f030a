//! The host of one Maelstrom node: `faultline maelstrom-host`. It starts the
//! node's program as its child (in the host's own process group, so pausing
//! or killing the member stops both), speaks Maelstrom's protocol on the
//! child's stdin and stdout — one JSON message per line — and is the node's
//! network: every message the node prints is routed by its `dest` alone,
//!
//! - to another node: as one frame on the TCP link to that node's host,
//!   which in a run is the link proxy of that directed link, so every
//!   message fault of the proxy backend applies unchanged;
//! - to a client (`c…`): on the connection of the client that said hello
//!   with that id here (clients say hello at every host, since a node may
//!   answer a request another node was asked);
//! - anywhere else (a Maelstrom service such as `lin-kv`, or a name nobody
//!   has): counted and logged; a request to a service gets error 10 (not
//!   supported) back, so the node does not wait forever.
//!
//! On its client port the host takes length-delimited JSON frames:
//! `{"hello":"c3"}` then `{"body":{…}}` (a request of client c3 to this
//! node), or `{"status":true}` (answered with what the host has heard from
//! whom, for the leader rule in [`super`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, FramedRead, LengthDelimitedCodec};

use super::{HostStatus, SERVICES};

/// What the host is given on its command line.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// This node's id.
    pub id: String,
    /// Where peers' messages arrive.
    pub listen: SocketAddr,
    /// Where clients connect.
    pub client: SocketAddr,
    /// Every other node and where this one reaches it.
    pub peers: Vec<(String, SocketAddr)>,
    /// The program and its arguments.
    pub program: Vec<String>,
    /// How long the node may take to answer `init`.
    pub init_timeout: Duration,
}

/// The longest line the host takes from a node (16 MiB).
const MAX_LINE: usize = 16 << 20;

/// The most bytes waiting in any one of the host's queues (to the node's
/// stdin, to one peer link, to one client). A message that would go over
/// is dropped and counted, as a congested network drops it: a node that
/// sends without reading its stdin costs bounded memory, not the
/// controller's.
pub const QUEUE_BYTES: usize = 64 << 20;

/// The most of the node's stderr the host passes on to the member's log;
/// past it, one line says the rest was cut, and the rest is read and
/// discarded (the node never blocks on it).
pub const STDERR_CAP: u64 = 64 << 20;

/// A queue bounded by the bytes waiting in it ([`QUEUE_BYTES`]).
#[derive(Clone)]
struct Queue {
    tx: mpsc::UnboundedSender<Bytes>,
    bytes: Arc<std::sync::atomic::AtomicUsize>,
}

/// The receiving end of a [`Queue`].
struct QueueRx {
    rx: mpsc::UnboundedReceiver<Bytes>,
    bytes: Arc<std::sync::atomic::AtomicUsize>,
}

fn queue() -> (Queue, QueueRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    (
        Queue {
            tx,
            bytes: bytes.clone(),
        },
        QueueRx { rx, bytes },
    )
}

/// What [`Queue::push`] did.
#[derive(Debug, PartialEq, Eq)]
enum Pushed {
    Queued,
    /// Dropped: the queue holds [`QUEUE_BYTES`] already.
    Full,
    /// Dropped: nobody reads the queue any more.
    Closed,
}

impl Queue {
    fn push(&self, m: Bytes) -> Pushed {
        use std::sync::atomic::Ordering;
        let n = m.len().max(1);
        let before = self.bytes.fetch_add(n, Ordering::AcqRel);
        if before + n > QUEUE_BYTES {
            self.bytes.fetch_sub(n, Ordering::AcqRel);
            return Pushed::Full;
        }
        match self.tx.send(m) {
            Ok(()) => Pushed::Queued,
            Err(_) => {
                self.bytes.fetch_sub(n, Ordering::AcqRel);
                Pushed::Closed
            }
        }
    }
}

impl QueueRx {
    async fn recv(&mut self) -> Option<Bytes> {
        let m = self.rx.recv().await?;
        self.taken(&m);
        Some(m)
    }
    fn try_recv(&mut self) -> Option<Bytes> {
        let m = self.rx.try_recv().ok()?;
        self.taken(&m);
        Some(m)
    }
    fn taken(&self, m: &Bytes) {
        self.bytes
            .fetch_sub(m.len().max(1), std::sync::atomic::Ordering::AcqRel);
    }
}

/// A line a node printed, for an error message: at most 200 characters
/// (a whole message is worth seeing, unlike a flag's value), with every
/// character that could garble a terminal line escaped as the project's
/// own messages escape them ([`faultline_rundir::quote::hidden_char`]).
pub(crate) fn shown_line(line: &str) -> String {
    let mut s: String = line
        .chars()
        .take(200)
        .flat_map(|c| {
            if faultline_rundir::quote::hidden_char(c) {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if line.chars().count() > 200 {
        s.push('…');
    }
    s
}

struct Shared {
    id: String,
    /// Clients connected here, by id.
    clients: Mutex<HashMap<String, Queue>>,
    /// When a message from each node last arrived, and one that looked like
    /// a leader's (append / heartbeat).
    heard: Mutex<HashMap<String, (Instant, Option<Instant>)>>,
    /// Messages to names nobody has.
    unknown: std::sync::atomic::AtomicU64,
    /// When the last warning about them was logged.
    warned: Mutex<Option<Instant>>,
    /// Rate-limited warnings of other kinds: when each was last logged and
    /// how many happened since.
    limited: Mutex<HashMap<&'static str, (Instant, u64)>>,
    started: Instant,
}

impl Shared {
    /// Log `what` (a warning of kind `kind`) at most once a second, with
    /// how many of its kind were not logged since.
    fn warn_limited(&self, kind: &'static str, what: impl FnOnce() -> String) {
        let mut l = self.limited.lock().expect("not poisoned");
        let now = Instant::now();
        let e = l.entry(kind).or_insert((now - Duration::from_secs(2), 0));
        if now.duration_since(e.0) >= Duration::from_secs(1) {
            let held = std::mem::take(&mut e.1);
            e.0 = now;
            let more = if held > 0 {
                format!(" ({held} more like it since the last such line)")
            } else {
                String::new()
            };
            eprintln!("maelstrom-host {}: {}{more}", self.id, what());
        } else {
            e.1 += 1;
        }
    }

    /// Push `m` on `q` (towards `to`); a drop is counted and said, rate
    /// limited.
    fn push(&self, q: &Queue, to: &str, m: Bytes) {
        if q.push(m) == Pushed::Full {
            self.warn_limited("queue full", || {
                format!(
                    "a message to {} was dropped: {} MiB wait in its queue already (the receiver does not keep up)",
                    shown_line(to),
                    QUEUE_BYTES >> 20
                )
            });
        }
    }

    fn warn_unknown(&self, dest: &str) {
        let n = self
            .unknown
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut w = self.warned.lock().expect("not poisoned");
        if w.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
            *w = Some(Instant::now());
            eprintln!(
                "maelstrom-host {}: a message to {} was dropped: no node or client has that name ({n} so far)",
                self.id,
                shown_line(dest)
            );
        }
    }
}

/// Whether a message's type is a leader's (AppendEntries, heartbeats).
pub fn leaderish(msg_type: &str) -> bool {
    let t = msg_type.to_ascii_lowercase();
    t.contains("append") || t.contains("heartbeat")
}

/// Run the host until the node exits or the host is killed.
pub async fn run(cfg: HostConfig) -> anyhow::Result<()> {
    let peer_listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening for peers on {}", cfg.listen))?;
    let client_listener = TcpListener::bind(cfg.client)
        .await
        .with_context(|| format!("listening for clients on {}", cfg.client))?;
    let Some((program, args)) = cfg.program.split_first() else {
        bail!("no program to run");
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", shown_line(program)))?;
    let mut stdin = child.stdin.take().context("the node's stdin")?;
    let stderr = child.stderr.take().context("the node's stderr")?;
    tokio::spawn(pass_stderr(stderr, cfg.id.clone()));
    let stdout = child.stdout.take().context("the node's stdout")?;
    let mut lines = BufReader::with_capacity(1 << 16, stdout);

    // init, and nothing else, until init_ok.
    let mut ids: Vec<String> = cfg.peers.iter().map(|(p, _)| p.clone()).collect();
    ids.push(cfg.id.clone());
    ids.sort_by_key(|s| (s.len(), s.clone()));
    let init = json!({"src": "c0", "dest": cfg.id, "body": {"type": "init", "msg_id": 1, "node_id": cfg.id, "node_ids": ids}});
    stdin.write_all(format!("{init}\n").as_bytes()).await?;
    stdin.flush().await?;
    let id = cfg.id.clone();
    let first = tokio::time::timeout(cfg.init_timeout, read_line(&mut lines)).await;
    let line = match first {
        Err(_) => bail!(
            "node {id} did not answer init within {:?} (a Maelstrom node prints {{\"type\":\"init_ok\"}} on stdout)",
            cfg.init_timeout
        ),
        Ok(Ok(None)) => bail!("node {id} closed its stdout before answering init (it exited?)"),
        Ok(Err(e)) => bail!("node {id}: reading its stdout: {e}"),
        Ok(Ok(Some(l))) => l,
    };
    let ok = serde_json::from_str::<Value>(&line)
        .ok()
        .filter(|m| m["body"]["type"] == "init_ok" && m["body"]["in_reply_to"] == json!(1));
    if ok.is_none() {
        bail!(
            "node {id} answered init with a line that is not init_ok: {}",
            shown_line(&line)
        );
    }
    eprintln!("maelstrom-host {id}: init_ok");

    let shared = Arc::new(Shared {
        id: id.clone(),
        clients: Mutex::new(HashMap::new()),
        heard: Mutex::new(HashMap::new()),
        unknown: Default::default(),
        warned: Mutex::new(None),
        limited: Mutex::new(HashMap::new()),
        started: Instant::now(),
    });
    // Everything for the node's stdin goes through one queue.
    let (to_node, mut node_rx) = queue();
    tokio::spawn(async move { write_stdin(&mut stdin, &mut node_rx).await });
    // One sender per peer link, connecting (again) as needed.
    let mut links: HashMap<String, Queue> = HashMap::new();
    for (peer, addr) in &cfg.peers {
        let (tx, rx) = queue();
        links.insert(peer.clone(), tx);
        tokio::spawn(peer_link(*addr, rx));
    }
    tokio::spawn(accept_peers(peer_listener, shared.clone(), to_node.clone()));
    tokio::spawn(accept_clients(
        client_listener,
        shared.clone(),
        to_node.clone(),
    ));

    // Route what the node prints.
    loop {
        let line = match read_line(&mut lines).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                let status = child.wait().await?;
                bail!("node {id} closed its stdout ({status})");
            }
            Err(e) => bail!("node {id}: reading its stdout: {e}"),
        };
        if line.trim().is_empty() {
            continue;
        }
        let msg: Value = match serde_json::from_str(&line) {
            Ok(m @ Value::Object(_)) => m,
            _ => {
                shared.warn_limited("not json", || {
                    format!(
                        "the node printed a line that is not a JSON message, dropped: {}",
                        shown_line(&line)
                    )
                });
                continue;
            }
        };
        let Some(dest) = msg["dest"].as_str() else {
            shared.warn_limited("no dest", || {
                format!("a message without dest, dropped: {}", shown_line(&line))
            });
            continue;
        };
        let bytes = Bytes::from(line);
        if dest == id {
            shared.push(&to_node, dest, bytes);
        } else if let Some(link) = links.get(dest) {
            shared.push(link, dest, bytes);
        } else if let Some(c) = shared
            .clients
            .lock()
            .expect("not poisoned")
            .get(dest)
            .cloned()
        {
            shared.push(&c, dest, bytes);
        } else if SERVICES.contains(&dest) {
            shared.warn_unknown(dest);
            if let Some(msg_id) = msg["body"]["msg_id"].as_u64() {
                let reply = json!({"src": dest, "dest": id, "body": {"type": "error", "in_reply_to": msg_id, "code": 10, "text": format!("faultline does not provide Maelstrom's {dest} service")}});
                shared.push(&to_node, &id, Bytes::from(reply.to_string()));
            }
        } else {
            shared.warn_unknown(dest);
        }
    }
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    loop {
        let n = (&mut *r)
            .take((MAX_LINE + 1 - buf.len()) as u64)
            .read_until(b'\n', &mut buf)
            .await?;
        if n == 0 {
            return Ok((!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.ends_with(b"\n") {
            buf.pop();
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_LINE {
            return Err(std::io::Error::other("a line longer than 16 MiB"));
        }
    }
}

/// Pass the node's stderr on to the host's (the member's log), at most
/// [`STDERR_CAP`] bytes; then one line says the rest was cut, and the rest
/// is read and dropped.
async fn pass_stderr(mut from: tokio::process::ChildStderr, id: String) {
    let mut to = tokio::io::stderr();
    let mut passed = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if passed < STDERR_CAP {
            let keep = (n as u64).min(STDERR_CAP - passed) as usize;
            let _ = to.write_all(&buf[..keep]).await;
            passed += keep as u64;
            if passed >= STDERR_CAP {
                let note = format!(
                    "\nmaelstrom-host {id}: the node's stderr was cut here, at {} MiB; the rest is not kept\n",
                    STDERR_CAP >> 20
                );
                let _ = to.write_all(note.as_bytes()).await;
            }
        }
    }
}

async fn write_stdin(stdin: &mut ChildStdin, rx: &mut QueueRx) {
    let mut out = Vec::with_capacity(1 << 16);
    while let Some(m) = rx.recv().await {
        out.clear();
        out.extend_from_slice(&m);
        out.push(b'\n');
        // Take what else is queued: one write for a burst.
        while out.len() < (1 << 16) {
            match rx.try_recv() {
                Some(m) => {
                    out.extend_from_slice(&m);
                    out.push(b'\n');
                }
                None => break,
            }
        }
        if stdin.write_all(&out).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

/// Send frames to a peer's host (through its link proxy in a run),
/// connecting again after a failure; what cannot be sent is dropped, as a
/// network would.
async fn peer_link(addr: SocketAddr, mut rx: QueueRx) {
    let mut conn: Option<Framed<TcpStream, LengthDelimitedCodec>> = None;
    let mut last_try: Option<Instant> = None;
    while let Some(m) = rx.recv().await {
        if conn.is_none() && last_try.is_none_or(|t| t.elapsed() > Duration::from_millis(50)) {
            last_try = Some(Instant::now());
            if let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await
            {
                let _ = s.set_nodelay(true);
                conn = Some(Framed::new(s, codec()));
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut ok = c.feed(m).await.is_ok();
        while ok {
            match rx.try_recv() {
                Some(m) => ok = c.feed(m).await.is_ok(),
                None => break,
            }
        }
        if !ok || SinkExt::<Bytes>::flush(c).await.is_err() {
            conn = None;
        }
    }
}

/// The frame codec of peer links and client connections.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_LINE)
        .new_codec()
}

async fn accept_peers(l: TcpListener, shared: Arc<Shared>, to_node: Queue) {
    while let Ok((s, _)) = l.accept().await {
        let _ = s.set_nodelay(true);
        let shared = shared.clone();
        let to_node = to_node.clone();
        tokio::spawn(async move {
            let mut frames = FramedRead::new(s, codec());
            while let Some(Ok(f)) = frames.next().await {
                let f = f.freeze();
                if let Ok(m) = serde_json::from_slice::<Value>(&f) {
                    if let Some(src) = m["src"].as_str() {
                        let now = Instant::now();
                        let lead = m["body"]["type"].as_str().is_some_and(leaderish);
                        let mut h = shared.heard.lock().expect("not poisoned");
                        let e = h.entry(src.to_string()).or_insert((now, None));
                        e.0 = now;
                        if lead {
                            e.1 = Some(now);
                        }
                    }
                }
                let to = shared.id.clone();
                shared.push(&to_node, &to, f);
            }
        });
    }
}

async fn accept_clients(l: TcpListener, shared: Arc<Shared>, to_node: Queue) {
    while let Ok((s, _)) = l.accept().await {
        let _ = s.set_nodelay(true);
        let shared = shared.clone();
        let to_node = to_node.clone();
        tokio::spawn(async move {
            let _ = serve_client(s, shared, to_node).await;
        });
    }
}

async fn serve_client(s: TcpStream, shared: Arc<Shared>, to_node: Queue) -> anyhow::Result<()> {
    let mut framed = Framed::new(s, codec());
    let Some(first) = framed.next().await.transpose()? else {
        return Ok(());
    };
    let first: Value = serde_json::from_slice(&first)?;
    if first.get("status").is_some() {
        let now = Instant::now();
        let ms = |t: Instant| now.duration_since(t).as_millis() as u64;
        let heard = shared.heard.lock().expect("not poisoned").clone();
        let st = HostStatus {
            id: shared.id.clone(),
            up_ms: ms(shared.started),
            heard_ms: heard.iter().map(|(k, v)| (k.clone(), ms(v.0))).collect(),
            leaderish_ms: heard
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), ms(v.1?))))
                .collect(),
            unknown_dest: shared.unknown.load(std::sync::atomic::Ordering::Relaxed),
        };
        framed.send(Bytes::from(serde_json::to_vec(&st)?)).await?;
        return Ok(());
    }
    let Some(cid) = first["hello"].as_str().map(str::to_string) else {
        bail!("a client's first frame is neither hello nor status");
    };
    let (tx, mut rx) = queue();
    shared
        .clients
        .lock()
        .expect("not poisoned")
        .insert(cid.clone(), tx);
    let (mut sink, mut stream) = framed.split();
    let id = shared.id.clone();
    let reader = async {
        while let Some(Ok(f)) = stream.next().await {
            let Ok(v) = serde_json::from_slice::<Value>(&f) else {
                continue;
            };
            let msg = json!({"src": cid, "dest": id, "body": v["body"]});
            shared.push(&to_node, &id, Bytes::from(msg.to_string()));
        }
    };
    let writer = async {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = reader => {}
        () = writer => {}
    }
    shared.clients.lock().expect("not poisoned").remove(&cid);
    Ok(())
}
