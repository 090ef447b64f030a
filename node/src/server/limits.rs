//! What keeps a node alive when its connections misbehave or its process
//! runs out of file descriptors:
//!
//! - [`accept_loop`]: an accept error (for example `EMFILE`) is logged once
//!   per interval and the loop backs off, instead of spinning a core;
//! - [`MAX_IN_FLIGHT`]: a client connection has at most this many requests
//!   whose replies are not yet written; beyond it the node stops reading
//!   from that connection (back-pressure), so a client that pipelines
//!   requests and never reads the replies costs bounded memory;
//! - [`FrameBudget`]: the bytes of partly received frames, summed over a
//!   listener's connections, stay under a cap; when a connection pushes the
//!   sum over it, the connection holding the most is closed with one log line.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

/// Requests of one client connection that may wait for their replies to be
/// written before the node stops reading from it.
pub(super) const MAX_IN_FLIGHT: usize = 1024;

/// Bytes of partly received frames that one listener's connections may
/// hold together (a frame may be up to 16 MiB).
pub(super) const PARTIAL_FRAME_BYTES: usize = 64 << 20;

/// Accept connections on `listener` for ever, handing each to `handle` on a
/// task of its own. An accept error is logged at most once a second (with
/// how many were not logged) and the loop waits before trying again, from
/// 5 ms doubling to 1 s; one success resets the wait.
pub(super) async fn accept_loop<F, Fut>(listener: TcpListener, what: &'static str, mut handle: F)
where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = Duration::from_millis(5);
    let mut last_log: Option<Instant> = None;
    let mut unlogged = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                backoff = Duration::from_millis(5);
                let _ = stream.set_nodelay(true);
                tokio::spawn(handle(stream, addr));
            }
            Err(e) => {
                if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::error!(
                        listener = what,
                        not_logged = unlogged,
                        "cannot accept {what} connections: {e}; retrying in {} ms",
                        backoff.as_millis()
                    );
                    last_log = Some(Instant::now());
                    unlogged = 0;
                } else {
                    unlogged += 1;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// The partly received bytes of one listener's connections, and the means
/// to close the connection that holds the most when their sum is too large.
pub(super) struct FrameBudget {
    cap: usize,
    next_id: AtomicU64,
    held: Mutex<HashMap<u64, (usize, Arc<Notify>)>>,
}

impl FrameBudget {
    /// A budget of `cap` bytes.
    pub(super) fn new(cap: usize) -> Arc<FrameBudget> {
        Arc::new(FrameBudget {
            cap,
            next_id: AtomicU64::new(0),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A codec for a new connection, and what fires when that connection
    /// must close to bring the sum under the cap.
    pub(super) fn codec(self: &Arc<Self>) -> (BudgetedCodec, Arc<Notify>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let closed = Arc::new(Notify::new());
        self.lock().insert(id, (0, closed.clone()));
        let codec = BudgetedCodec {
            inner: crate::protocol::codec(),
            budget: self.clone(),
            id,
        };
        (codec, closed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (usize, Arc<Notify>)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connection `id` now holds `bytes`; over the cap, the largest holder
    /// is told to close (and counts as holding nothing from then on).
    fn set(&self, id: u64, bytes: usize) {
        let mut held = self.lock();
        if let Some(h) = held.get_mut(&id) {
            h.0 = bytes;
        }
        let total: usize = held.values().map(|(b, _)| b).sum();
        if total > self.cap {
            if let Some((_, (b, closed))) = held.iter_mut().max_by_key(|(_, (b, _))| *b) {
                *b = 0;
                closed.notify_one();
            }
        }
    }

    fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// The bytes held now, summed (for tests).
    #[cfg(test)]
    fn total(&self) -> usize {
        self.lock().values().map(|(b, _)| b).sum()
    }
}

/// The node's frame codec, reporting to a [`FrameBudget`] how many bytes of
/// partly received frames its connection holds.
pub(super) struct BudgetedCodec {
    inner: LengthDelimitedCodec,
    budget: Arc<FrameBudget>,
    id: u64,
}

impl Decoder for BudgetedCodec {
    type Item = BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, std::io::Error> {
        let frame = self.inner.decode(src)?;
        self.budget.set(self.id, src.len());
        Ok(frame)
    }
}

impl Drop for BudgetedCodec {
    fn drop(&mut self) {
        self.budget.forget(self.id);
    }
}

/// How often one repeated warning (the same kind, from the same source)
/// is logged: a node of another cluster that retries every few
/// milliseconds must not flood the log.
pub(super) const REPEAT_LOG_EVERY: Duration = Duration::from_secs(10);
/// The most distinct repeated warnings remembered (older ones are forgotten).
const REPEAT_KEYS: usize = 1024;

/// Whether the warning `key` may be logged now: `Some(n)` with the number
/// of times it was held back since it was last logged, or `None` to hold
/// it back (at most once per [`REPEAT_LOG_EVERY`] per key).
pub(super) fn may_log(key: &str) -> Option<u64> {
    static SEEN: Mutex<Option<HashMap<String, (Instant, u64)>>> = Mutex::new(None);
    let mut guard = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let seen = guard.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    match seen.get_mut(key) {
        Some((last, held)) if now.duration_since(*last) < REPEAT_LOG_EVERY => {
            *held += 1;
            None
        }
        Some((last, held)) => {
            *last = now;
            Some(std::mem::take(held))
        }
        None => {
            if seen.len() >= REPEAT_KEYS {
                seen.clear();
            }
            seen.insert(key.to_string(), (now, 0));
            Some(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_holder_is_closed_when_the_sum_passes_the_cap() {
        let budget = FrameBudget::new(100);
        let (mut a, a_closed) = budget.codec();
        let (mut b, b_closed) = budget.codec();
        // a holds 56 bytes of a frame announced as 1000 bytes long (the
        // codec has consumed the 4-byte length).
        let mut sa = BytesMut::from(&1000u32.to_be_bytes()[..]);
        sa.extend_from_slice(&[0u8; 56]);
        assert!(a.decode(&mut sa).unwrap().is_none());
        assert_eq!(budget.total(), 56);
        // b holds 46: the sum passes 100, and a, the largest, must close.
        let mut sb = BytesMut::from(&1000u32.to_be_bytes()[..]);
        sb.extend_from_slice(&[0u8; 46]);
        assert!(b.decode(&mut sb).unwrap().is_none());
        let a_told = a_closed.notified();
        let b_told = b_closed.notified();
        tokio::pin!(a_told, b_told);
        assert!(futures::FutureExt::now_or_never(a_told.as_mut()).is_some());
        assert!(futures::FutureExt::now_or_never(b_told.as_mut()).is_none());
        assert_eq!(budget.total(), 46);
        drop(b);
        assert_eq!(budget.total(), 0);
    }
}
