//! SIGINT and SIGTERM stop a `faultline-node` cleanly: exit status 0, and
//! what it acknowledged is there when it starts again on its data directory.
//! One real single-voter node; killed when the test ends, whatever the
//! outcome; every wait is bounded.

use crate::common;
use common::DEADLINE;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_nemesis::process::free_port;
use faultline_node::client::Client;
use faultline_node::protocol::{ClientRequest, ClientResponse};

/// The node process, SIGKILLed on drop if it is still there.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, client: SocketAddr) -> Node {
    let listen = format!("127.0.0.1:{}", free_port().unwrap());
    let child = Command::new(common::node_bin())
        .args(["--id", "n1", "--listen", &listen, "--client"])
        .arg(client.to_string())
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Node(child)
}

/// Send one request, retrying (bounded) until the node leads and answers.
async fn call(client: SocketAddr, request: ClientRequest) -> Option<i64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(c) = Client::connect(client, Duration::from_secs(2)).await {
            if let Ok(ClientResponse::Ok(value)) = c.call(request.clone()).await {
                return value;
            }
        }
        assert!(Instant::now() < deadline, "no answer to {request:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Send `signal` and wait (bounded) for the exit status.
fn stop_with(node: &mut Node, signal: &str) -> std::process::ExitStatus {
    let pid = node.0.id().to_string();
    let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after {signal}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigint_and_sigterm_stop_the_node_cleanly_and_keep_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let client: SocketAddr = format!("127.0.0.1:{}", free_port().unwrap())
        .parse()
        .unwrap();

    let mut node = start(dir.path(), client);
    let put = ClientRequest::Put {
        key: "k".into(),
        value: 7,
    };
    call(client, put).await;
    let status = stop_with(&mut node, "-INT");
    assert_eq!(status.code(), Some(0), "after SIGINT: {status}");

    let mut node = start(dir.path(), client);
    let got = call(client, ClientRequest::Get { key: "k".into() }).await;
    assert_eq!(got, Some(7));
    let status = stop_with(&mut node, "-TERM");
    assert_eq!(status.code(), Some(0), "after SIGTERM: {status}");
}
