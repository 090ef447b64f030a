//! The client listener: one task per connection decodes requests, hands
//! them to the Raft loop and writes the answers back.

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::protocol::{self, ClientEnvelope, ClientReply};

use super::{Event, ReplyTo};

pub(super) async fn accept_clients(listener: TcpListener, events: mpsc::UnboundedSender<Event>) {
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
