//! A follower forwards client requests to the leader and matches the
//! leader's answers to them by a forward id. An answer can still be on its
//! way (a slow link) when the follower crashes and restarts; it must not
//! answer a new request of the new incarnation. One real `faultline-node`
//! process; the test plays its leader over the peer protocol. The node is
//! killed when the test ends, whatever the outcome; every wait is bounded.

use crate::common;
use common::DEADLINE;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use faultline_nemesis::process::{free_port, NodeProcess, NodeSpec};
use faultline_node::client::Client;
use faultline_node::kv::Applied;
use faultline_node::protocol::{codec, decode, encode, ClientRequest, ClientResponse, PeerFrame};
use faultline_node::raft::{Message, MessageBody};

/// Tell the node that `n1` leads term 1 (an empty AppendEntries).
async fn heartbeat(
    node: SocketAddr,
) -> FramedWrite<TcpStream, tokio_util::codec::LengthDelimitedCodec> {
    let deadline = Instant::now() + DEADLINE;
    let stream = loop {
        if let Ok(s) = TcpStream::connect(node).await {
            break s;
        }
        assert!(Instant::now() < deadline, "node's peer port never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut w = FramedWrite::new(stream, codec());
    // Every peer connection opens with a greeting from the node's cluster.
    w.send(encode(&PeerFrame::Hello {
        cluster: "default".into(),
        from: "n1".into(),
    }))
    .await
    .unwrap();
    w.send(encode(&PeerFrame::Raft(Message {
        from: "n1".into(),
        to: "n2".into(),
        term: 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: Vec::new(),
            leader_commit: 0,
        },
    })))
    .await
    .unwrap();
    w
}

/// Wait until the node follows `n1`, sending heartbeats meanwhile.
async fn follow(node: SocketAddr, client: SocketAddr) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let _w = heartbeat(node).await;
        if let Ok(c) = Client::connect(client, Duration::from_secs(1)).await {
            if let Ok(ClientResponse::Status(s)) = c.call(ClientRequest::Status).await {
                if s.leader.as_deref() == Some("n1") {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "the node never followed n1");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ask for key `k` through the node in the background.
fn get(client: SocketAddr) -> tokio::task::JoinHandle<Option<ClientResponse>> {
    tokio::spawn(async move {
        let c = Client::connect(client, Duration::from_secs(5)).await.ok()?;
        c.call(ClientRequest::Get { key: "k".into() }).await.ok()
    })
}

async fn next_forward(rx: &mut mpsc::UnboundedReceiver<u64>) -> u64 {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("the node forwarded nothing in time")
        .expect("the accept loop ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_answer_from_before_a_restart_does_not_answer_a_new_request() {
    let dir = tempfile::tempdir().unwrap();
    // The test is n1 (the leader); n3 is never started.
    let leader = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (listen, client) = (
        SocketAddr::from(([127, 0, 0, 1], free_port().unwrap())),
        SocketAddr::from(([127, 0, 0, 1], free_port().unwrap())),
    );
    let n3 = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let spec = NodeSpec {
        id: "n2".into(),
        listen,
        client,
        peers: vec![
            ("n1".into(), leader.local_addr().unwrap()),
            ("n3".into(), n3),
        ],
        data_dir: dir.path().join("n2"),
        log_file: dir.path().join("n2.log"),
        // Never campaign during the test.
        extra_args: vec!["--election-timeout".into(), "60000..60001".into()],
        voters: vec!["n1".into(), "n2".into(), "n3".into()],
        netns: None,
        host: None,
    };
    let bin: faultline_nemesis::process::NodeCommand = common::node_bin().into();
    let mut node = NodeProcess::start(&faultline_sut::faultline(bin), spec).unwrap();

    // Every request the node forwards to us, by forward id.
    let (tx, mut forwarded) = mpsc::unbounded_channel::<u64>();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = leader.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut frames = FramedRead::new(s, codec());
                while let Some(Ok(f)) = frames.next().await {
                    if let Ok(PeerFrame::Forward { id, .. }) = decode::<PeerFrame>(&f) {
                        let _ = tx.send(id);
                    }
                }
            });
        }
    });
    // A request forwarded by the first incarnation, never answered...
    follow(listen, client).await;
    let first = get(client);
    let old_id = next_forward(&mut forwarded).await;
    // ...and the node crashes and comes back on its data.
    node.restart().unwrap();
    assert_eq!(first.await.unwrap(), None, "the first client lost its node");
    follow(listen, client).await;
    let second = get(client);
    let new_id = next_forward(&mut forwarded).await;

    // The late answer to the old request arrives first; then the real one.
    let mut w = heartbeat(listen).await;
    for (id, v) in [(old_id, 191), (new_id, 7)] {
        w.send(encode(&PeerFrame::ForwardReply {
            id,
            result: Ok(Applied::Value(Some(v))),
        }))
        .await
        .unwrap();
    }
    let answer = tokio::time::timeout(DEADLINE, second)
        .await
        .expect("no answer in time")
        .unwrap();
    assert_eq!(
        answer,
        Some(ClientResponse::Ok(Some(7))),
        "the new request got the answer meant for the old one (forward ids {old_id} and {new_id})"
    );
    accept.abort();
    drop(node); // killed and reaped
}
