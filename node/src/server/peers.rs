//! Peer connections: the listener that takes frames from other nodes, and
//! one outbound task per peer that keeps a connection to its address (in a
//! faultline run, the proxy of that link), reconnecting with back-off.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::protocol::{self, PeerFrame};
use crate::raft::NodeId;

use super::{Event, NodeLoop, OUTBOUND_QUEUE};

impl NodeLoop {
    pub(super) fn connect_peer(&mut self, peer: NodeId, addr: SocketAddr) {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        self.links.spawn(send_to_peer(peer.clone(), addr, rx));
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

    pub(super) fn send_peer(&self, peer: &str, frame: PeerFrame) {
        if let Some(tx) = self.outbound.get(peer) {
            // A full queue means the peer is unreachable: drop, as a network would.
            let _ = tx.try_send(frame);
        }
    }
}

pub(super) async fn accept_peers(listener: TcpListener, events: mpsc::UnboundedSender<Event>) {
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
