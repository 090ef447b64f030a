//! An async client for the node's client protocol. Requests on one
//! connection are multiplexed by id, so many may be outstanding at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::protocol::{self, ClientEnvelope, ClientReply, ClientRequest, ClientResponse};

/// Why a call got no answer from the node.
#[derive(Debug, Error)]
pub enum CallError {
    /// Could not connect: the request was never sent (a definite failure).
    // The OS error is part of the message, not a `source` (see storage).
    #[error("cannot connect to {addr}: {cause}")]
    Connect {
        /// The node.
        addr: SocketAddr,
        /// The cause.
        cause: std::io::Error,
    },
    /// The connection broke after the request may have been sent (unknown outcome).
    #[error("connection to {0} lost")]
    ConnectionLost(SocketAddr),
    /// No answer in time (unknown outcome).
    #[error("no answer from {0} in time")]
    Timeout(SocketAddr),
}

impl CallError {
    /// Whether the request certainly did not reach the node.
    pub fn is_definite(&self) -> bool {
        matches!(self, CallError::Connect { .. })
    }
}

/// Whether faultline may connect to `addr`: loopback, or a run's private
/// range inside its sealed namespace (see [`crate::netpolicy`]), so that no
/// packet of a test leaves the machine. Checked before anything is sent;
/// the error says why.
pub fn local_address(addr: SocketAddr) -> Result<(), String> {
    crate::netpolicy::allowed(addr)
}

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<ClientResponse>>>>;

/// Where each node takes client connections, shared between whoever moves a
/// node to other ports (the nemesis, when another program took one of them)
/// and whoever talks to the nodes (the workload, the status poller).
#[derive(Clone, Debug, Default)]
pub struct AddressBook(Arc<Mutex<Vec<(String, SocketAddr)>>>);

impl AddressBook {
    /// A book with these (node, client address) entries, in this order.
    pub fn new(entries: impl IntoIterator<Item = (String, SocketAddr)>) -> Self {
        AddressBook(Arc::new(Mutex::new(entries.into_iter().collect())))
    }

    /// Where `id` takes client connections now.
    pub fn get(&self, id: &str) -> Option<SocketAddr> {
        let entries = self.0.lock().expect("not poisoned");
        entries.iter().find(|(n, _)| n == id).map(|(_, a)| *a)
    }

    /// `id` takes client connections at `addr` from now on.
    pub fn set(&self, id: &str, addr: SocketAddr) {
        let mut entries = self.0.lock().expect("not poisoned");
        match entries.iter_mut().find(|(n, _)| n == id) {
            Some(e) => e.1 = addr,
            None => entries.push((id.to_string(), addr)),
        }
    }

    /// Every entry, in order.
    pub fn entries(&self) -> Vec<(String, SocketAddr)> {
        self.0.lock().expect("not poisoned").clone()
    }
}

/// A connection to one node.
pub struct Client {
    addr: SocketAddr,
    next_id: AtomicU64,
    tx: mpsc::UnboundedSender<ClientEnvelope>,
    waiters: Waiters,
    timeout: Duration,
}

impl Client {
    /// Connect to the node at `addr`; every call waits at most `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Client, CallError> {
        Client::connect_in(addr, timeout, None).await
    }

    /// [`Client::connect`], naming `cluster` first when given: a node of
    /// another cluster closes the connection (a client of an old run never
    /// writes into the next run's cluster on the same ports).
    pub async fn connect_in(
        addr: SocketAddr,
        timeout: Duration,
        cluster: Option<&str>,
    ) -> Result<Client, CallError> {
        if let Err(why) = local_address(addr) {
            return Err(CallError::Connect {
                addr,
                cause: std::io::Error::new(std::io::ErrorKind::PermissionDenied, why),
            });
        }
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| CallError::Connect {
                addr,
                cause: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|cause| CallError::Connect { addr, cause })?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let waiters: Waiters = Arc::default();
        let (tx, mut rx) = mpsc::unbounded_channel::<ClientEnvelope>();
        tokio::spawn(async move {
            let mut out = FramedWrite::new(write, protocol::codec());
            while let Some(env) = rx.recv().await {
                let mut batch = vec![env];
                while let Ok(e) = rx.try_recv() {
                    batch.push(e);
                }
                for e in &batch {
                    if out.feed(protocol::encode(e)).await.is_err() {
                        return;
                    }
                }
                if SinkExt::<bytes::Bytes>::flush(&mut out).await.is_err() {
                    return;
                }
            }
        });
        let w = waiters.clone();
        tokio::spawn(async move {
            let mut frames = FramedRead::new(read, protocol::codec());
            while let Some(Ok(frame)) = frames.next().await {
                let Ok(reply) = protocol::decode::<ClientReply>(&frame) else {
                    break;
                };
                if let Some(waiter) = w.lock().expect("not poisoned").remove(&reply.id) {
                    let _ = waiter.send(reply.response);
                }
            }
            // Connection gone: wake every waiter (their senders drop).
            w.lock().expect("not poisoned").clear();
        });
        if let Some(cluster) = cluster {
            // Sent before any request; its answer (id 0) has no waiter.
            let _ = tx.send(ClientEnvelope {
                id: 0,
                request: ClientRequest::Hello {
                    cluster: cluster.to_string(),
                },
            });
        }
        Ok(Client {
            addr,
            next_id: AtomicU64::new(1),
            tx,
            waiters,
            timeout,
        })
    }

    /// The node's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Send one request and wait for its answer.
    pub async fn call(&self, request: ClientRequest) -> Result<ClientResponse, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().expect("not poisoned").insert(id, tx);
        if self.tx.send(ClientEnvelope { id, request }).is_err() {
            self.waiters.lock().expect("not poisoned").remove(&id);
            return Err(CallError::ConnectionLost(self.addr));
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(CallError::ConnectionLost(self.addr)),
            Err(_) => {
                self.waiters.lock().expect("not poisoned").remove(&id);
                Err(CallError::Timeout(self.addr))
            }
        }
    }
}
