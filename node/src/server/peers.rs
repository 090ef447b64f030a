//! Peer connections: the listener that takes frames from other nodes, and
//! one outbound task per peer that keeps a connection to its address (in a
//! faultline run, the proxy of that link), reconnecting with back-off.
//! Every connection opens with a [`PeerFrame::Hello`] naming the sender and
//! its cluster; the listener closes a connection that does not, or that
//! comes from another cluster, with one log line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::protocol::{self, PeerFrame};
use crate::raft::NodeId;

use super::limits::{accept_loop, BudgetedCodec, FrameBudget, PARTIAL_FRAME_BYTES};
use super::{Event, NodeLoop, OUTBOUND_QUEUE};

impl NodeLoop {
    pub(super) fn connect_peer(&mut self, peer: NodeId, addr: SocketAddr) {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let hello = protocol::encode(&PeerFrame::Hello {
            cluster: self.config.cluster_id.clone(),
            from: self.config.id.clone(),
        });
        self.links
            .spawn(send_to_peer(peer.clone(), addr, rx, hello));
        self.outbound.insert(peer, tx);
    }

    /// Open links to members that a configuration entry added, at the
    /// address it records (unless `--peer` named one).
    pub(super) fn ensure_peers(&mut self) {
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
                Some(Ok(addr)) if crate::netpolicy::allowed(addr).is_ok() => {
                    self.connect_peer(id, addr)
                }
                Some(_) => {
                    tracing::warn!(%id, "member has no usable address (loopback, or the run's private range); not connecting")
                }
                None => {
                    tracing::warn!(%id, "no address known for member; start this node with --peer {id}=ADDR")
                }
            }
        }
    }

    pub(super) fn send_peer(&self, peer: &str, frame: PeerFrame) {
        if let Some(tx) = self.outbound.get(peer) {
            // A full queue means the peer is unreachable: drop, as a network would.
            let _ = tx.try_send(frame);
        }
    }
}

pub(super) async fn accept_peers(
    listener: TcpListener,
    events: mpsc::Sender<Event>,
    cluster: String,
) {
    let budget = FrameBudget::new(PARTIAL_FRAME_BYTES);
    accept_loop(listener, "peer", move |stream, addr| {
        let (codec, closed) = budget.codec();
        serve_peer(stream, addr, codec, closed, events.clone(), cluster.clone())
    })
    .await
}

/// One inbound peer connection: its greeting first, then messages.
async fn serve_peer(
    stream: TcpStream,
    addr: SocketAddr,
    codec: BudgetedCodec,
    closed: Arc<Notify>,
    events: mpsc::Sender<Event>,
    cluster: String,
) {
    let mut frames = FramedRead::new(stream, codec);
    let mut greeted = false;
    loop {
        let frame = tokio::select! {
            f = frames.next() => f,
            () = closed.notified() => {
                tracing::warn!(peer = %addr, "closing peer connection: it holds the most bytes of unfinished frames and all peer connections together hold more than {} MiB", PARTIAL_FRAME_BYTES >> 20);
                return;
            }
        };
        let Some(frame) = frame else { return };
        let decoded = frame
            .map_err(|e| protocol::describe_frame_error(&e))
            .and_then(|f| protocol::decode::<PeerFrame>(&f).map_err(|e| e.to_string()));
        let f = match decoded {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(peer = %addr, "closing peer connection: {e}");
                return;
            }
        };
        match (greeted, f) {
            (
                false,
                PeerFrame::Hello {
                    cluster: theirs, ..
                },
            ) if theirs == cluster => greeted = true,
            (
                false,
                PeerFrame::Hello {
                    cluster: theirs,
                    from,
                },
            ) => {
                let theirs = faultline_rundir::quote::quoted(&theirs);
                let from = faultline_rundir::quote::quoted(&from);
                if let Some(held) = super::limits::may_log(&format!("cluster {from} {theirs}")) {
                    tracing::warn!(peer = %addr, held_back = held, "closing peer connection: {from} belongs to cluster {theirs}, not '{cluster}' (said at most once per {} s; {held} more since)", super::limits::REPEAT_LOG_EVERY.as_secs());
                }
                return;
            }
            (false, _) => {
                if let Some(held) = super::limits::may_log(&format!("no greeting {}", addr.ip())) {
                    tracing::warn!(peer = %addr, held_back = held, "closing peer connection: its first message is not a greeting naming the cluster (said at most once per {} s; {held} more since)", super::limits::REPEAT_LOG_EVERY.as_secs());
                }
                return;
            }
            (true, PeerFrame::Hello { .. }) => {}
            (true, f) => {
                if events.send(Event::Peer(f)).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn send_to_peer(
    peer: NodeId,
    addr: SocketAddr,
    mut rx: mpsc::Receiver<PeerFrame>,
    hello: bytes::Bytes,
) {
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
        if out.feed(hello.clone()).await.is_err() {
            continue;
        }
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
