//! An in-process stand-in for a node, speaking the node's client protocol:
//! a single linearizable register store that answers at once, or a broken
//! one that answers too late or hangs up. For tests and the workload benchmark.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_node::kv::{Applied as KvOutcome, Command, Proposal, RequestId, Store};
use faultline_node::protocol::{self, ClientEnvelope, ClientReply, ClientRequest, ClientResponse};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_util::codec::{FramedRead, FramedWrite};

/// How the fake node behaves.
#[derive(Clone, Copy, Debug)]
pub enum Behavior {
    /// Apply each request at once and answer.
    Immediate,
    /// Apply at once, answer after this long.
    Late(Duration),
    /// Apply, then close the connection without answering.
    CloseAfterReceive,
}

/// Serve on a free loopback port until the runtime stops; returns the address.
pub async fn serve(behavior: Behavior) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let store = Arc::new(Mutex::new(Store::default()));
    tokio::spawn(async move {
        let mut seq = 0u64;
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let store = store.clone();
            seq += 1;
            let session = seq;
            tokio::spawn(async move {
                let (r, w) = stream.into_split();
                let mut frames = FramedRead::new(r, protocol::codec());
                let mut out = FramedWrite::new(w, protocol::codec());
                let mut n = 0u64;
                while let Some(Ok(frame)) = frames.next().await {
                    let Ok(env) = protocol::decode::<ClientEnvelope>(&frame) else {
                        return;
                    };
                    n += 1;
                    let command = match env.request {
                        ClientRequest::Get { key } => Command::Get { key },
                        ClientRequest::Put { key, value } => Command::Put { key, value },
                        ClientRequest::Cas { key, expected, new } => {
                            Command::Cas { key, expected, new }
                        }
                        ClientRequest::Txn { ops } => Command::Txn { ops },
                        ClientRequest::Status
                        | ClientRequest::Members
                        | ClientRequest::ChangeMembers { .. }
                        | ClientRequest::Hello { .. } => continue,
                    };
                    let outcome = store.lock().expect("store").apply(&Proposal {
                        id: RequestId { session, seq: n },
                        command,
                    });
                    let response = match outcome {
                        KvOutcome::Value(v) => ClientResponse::Ok(v),
                        KvOutcome::CasMismatch { actual } => ClientResponse::CasMismatch { actual },
                        KvOutcome::Txn(r) => ClientResponse::Txn(r),
                        KvOutcome::Duplicate | KvOutcome::Membership { .. } => continue,
                    };
                    match behavior {
                        Behavior::CloseAfterReceive => return,
                        Behavior::Late(d) => tokio::time::sleep(d).await,
                        Behavior::Immediate => {}
                    }
                    if out
                        .send(protocol::encode(&ClientReply {
                            id: env.id,
                            response,
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}
