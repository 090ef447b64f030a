//! The client listener: one task per connection decodes requests, hands
//! them to the Raft loop and writes the answers back. A connection has at
//! most [`MAX_IN_FLIGHT`] requests whose replies are not yet written (then
//! the node stops reading from it), and its partly received frames count
//! against the listener's [`FrameBudget`].

use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::protocol::{self, ClientEnvelope, ClientReply, ClientRequest, ClientResponse};

use super::limits::{accept_loop, BudgetedCodec, FrameBudget, MAX_IN_FLIGHT, PARTIAL_FRAME_BYTES};
use super::{Event, ReplyTo};

/// A reply on its way to the writer, with the request's in-flight permit
/// (released once the reply is written).
pub(super) type Outgoing = (ClientReply, OwnedSemaphorePermit);

pub(super) async fn accept_clients(
    listener: TcpListener,
    cluster: Arc<str>,
    events: mpsc::Sender<Event>,
) {
    let budget = FrameBudget::new(PARTIAL_FRAME_BYTES);
    accept_loop(listener, "client", move |stream, addr| {
        let (codec, closed) = budget.codec();
        serve(stream, addr, codec, closed, cluster.clone(), events.clone())
    })
    .await
}

async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    codec: BudgetedCodec,
    closed: Arc<Notify>,
    cluster: Arc<str>,
    events: mpsc::Sender<Event>,
) {
    let (read, write) = stream.into_split();
    // Unbounded, yet never more than MAX_IN_FLIGHT replies: each carries
    // one of the connection's in-flight permits, and no request is read
    // without one.
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let writer = tokio::spawn(async move {
        let mut out = FramedWrite::new(write, protocol::codec());
        // Write every reply that is ready, then flush once: one syscall for
        // a batch of answers under load. Each permit is released once its
        // reply is written.
        while let Some(reply) = rx.recv().await {
            let mut batch = vec![reply];
            while let Ok(r) = rx.try_recv() {
                batch.push(r);
            }
            for (r, _permit) in &batch {
                if out.feed(protocol::encode(r)).await.is_err() {
                    return;
                }
            }
            if SinkExt::<bytes::Bytes>::flush(&mut out).await.is_err() {
                return;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut frames = FramedRead::new(read, codec);
    loop {
        // Back-pressure: no more reading until a reply is written.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let frame = tokio::select! {
            f = frames.next() => f,
            () = closed.notified() => {
                tracing::warn!(client = %addr, "closing client connection: it holds the most bytes of unfinished frames and all connections together hold more than {} MiB", PARTIAL_FRAME_BYTES >> 20);
                break;
            }
        };
        let Some(frame) = frame else { break };
        let env = match frame
            .map_err(|e| protocol::describe_frame_error(&e))
            .and_then(|f| protocol::decode::<ClientEnvelope>(&f).map_err(|e| e.to_string()))
        {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(client = %addr, "closing client connection: {e}");
                break;
            }
        };
        if let ClientRequest::Hello { cluster: theirs } = &env.request {
            if **theirs != *cluster {
                let theirs = faultline_rundir::quote::quoted(theirs);
                if let Some(held) = super::limits::may_log(&format!("client cluster {}", addr.ip()))
                {
                    tracing::warn!(client = %addr, held_back = held, "closing client connection: it belongs to cluster {theirs}, not this one (a client of another run; said at most once per {} s; {held} more since)", super::limits::REPEAT_LOG_EVERY.as_secs());
                }
                break;
            }
            let answer = ClientReply {
                id: env.id,
                response: ClientResponse::Ok(None),
            };
            if tx.send((answer, permit)).is_err() {
                break;
            }
            continue;
        }
        let reply = ReplyTo::Client {
            tx: tx.clone(),
            id: env.id,
            permit,
        };
        let request = env.request;
        if events.send(Event::Client { request, reply }).await.is_err() {
            break;
        }
    }
    drop(tx);
    // Let answers already on their way reach the client.
    let _ = writer.await;
}
