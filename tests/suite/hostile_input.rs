//! Real node processes against hostile clients, peers and disks: a client
//! that never reads its replies, unfinished giant frames, no file
//! descriptors left, a lost term/vote record, a node of another cluster, and
//! a follower whose disk lost acknowledged entries. Each test fails without
//! the defence it checks; every process is killed when its cluster or guard
//! is dropped.

use crate::common;
use common::DEADLINE;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_nemesis::cluster::{ClusterSpec, LocalCluster};
use faultline_nemesis::process::free_port;
use faultline_node::client::Client;
use faultline_node::protocol::{self, ClientEnvelope, ClientRequest, ClientResponse};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn spec(dir: &Path, election: &str) -> ClusterSpec {
    ClusterSpec {
        nodes: 3,
        dir: dir.to_path_buf(),
        target: faultline_sut::faultline(common::node_bin()),
        node_args: vec![
            "--election-timeout".into(),
            election.into(),
            "--heartbeat".into(),
            "50".into(),
        ],
        namespaces: Default::default(),
        hosts: Default::default(),
    }
}

/// A process's resident memory, MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A process's CPU time so far, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15; after the ") " split, 12 and 13.
    fields
        .get(11)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
}

/// Write `key` and read it back through `addr`, retrying while the cluster
/// has no leader; fails the test after [`DEADLINE`].
async fn put_and_get(addr: SocketAddr, key: &str, value: i64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(c) = Client::connect(addr, Duration::from_secs(2)).await {
            let put = c
                .call(ClientRequest::Put {
                    key: key.into(),
                    value,
                })
                .await;
            if matches!(put, Ok(ClientResponse::Ok(_))) {
                let got = c.call(ClientRequest::Get { key: key.into() }).await;
                if let Ok(ClientResponse::Ok(v)) = got {
                    assert_eq!(v, Some(value), "{key} read back");
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{addr} never took a write of {key}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 3-node cluster with a leader, and one of its nodes: (cluster, id,
/// client address, process id).
async fn one_node_of_a_cluster(dir: &Path) -> (LocalCluster, String, SocketAddr, u32) {
    let mut cluster = LocalCluster::start(&spec(dir, "300..600")).unwrap();
    cluster.wait_ready(DEADLINE).await.unwrap();
    cluster.wait_leader(DEADLINE).await.unwrap();
    let id = cluster.ids()[0].clone();
    let addr = cluster.client_addr(&id).unwrap();
    let pid = cluster.node_mut(&id).unwrap().pid().unwrap();
    (cluster, id, addr, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_replies_costs_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, _id, addr, pid) = one_node_of_a_cluster(dir.path()).await;
    let before = rss_mib(pid);
    // 500,000 pipelined status requests; the replies are never read. Without
    // back-pressure the node queued every reply (189 MB measured); with it,
    // it stops reading and the writes below block.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut batch = Vec::new();
    for id in 0..500_000u64 {
        let frame = protocol::encode(&ClientEnvelope {
            id,
            request: ClientRequest::Status,
        });
        batch.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        batch.extend_from_slice(&frame);
    }
    let sent = tokio::time::timeout(Duration::from_secs(5), s.write_all(&batch)).await;
    assert!(
        sent.is_err(),
        "the node read every request although no reply was read"
    );
    // Well-behaved clients are still served meanwhile.
    put_and_get(addr, "k", 7).await;
    let after = rss_mib(pid);
    assert!(
        after < before + 60.0,
        "the node grew from {before:.0} to {after:.0} MiB"
    );
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_giant_frames_are_capped_and_the_largest_holder_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, id, addr, pid) = one_node_of_a_cluster(dir.path()).await;
    let before = rss_mib(pid);
    // Ten connections, each 15 MiB into a frame announced as 16 MiB - 1:
    // 150 MiB in all, never finished.
    let chunk = vec![0u8; 1 << 20];
    let mut conns = Vec::new();
    let mut closed = 0;
    for _ in 0..10 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut ok = s
            .write_all(&((16u32 << 20) - 1).to_be_bytes())
            .await
            .is_ok();
        for _ in 0..15 {
            if !ok {
                break;
            }
            ok = tokio::time::timeout(Duration::from_secs(5), s.write_all(&chunk))
                .await
                .is_ok_and(|r| r.is_ok());
        }
        if !ok {
            closed += 1;
        }
        conns.push(s);
    }
    put_and_get(addr, "k", 8).await;
    let after = rss_mib(pid);
    assert!(
        after < before + 110.0,
        "the node grew from {before:.0} to {after:.0} MiB holding unfinished frames"
    );
    let log = std::fs::read_to_string(dir.path().join("nodes").join(format!("{id}.log"))).unwrap();
    assert!(
        log.contains("unfinished frames") || closed > 0,
        "no connection was closed although 150 MiB of unfinished frames arrived"
    );
    drop(conns);
}

/// A node process of its own, killed when dropped.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start one single-node cluster on free ports with extra flags, stderr to
/// `log`; through `prlimit` when `nofile` is given.
fn start_node(data: &Path, log: &Path, extra: &[&str], nofile: Option<u32>) -> (Node, SocketAddr) {
    let client = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(common::node_bin());
            c
        }
        None => Command::new(common::node_bin()),
    };
    cmd.args(["--id", "n1", "--listen", &listen.to_string()])
        .args(["--client", &client.to_string(), "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    (Node(cmd.spawn().unwrap()), client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_does_not_spin_a_core() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("n1.log");
    let (node, client) = start_node(&dir.path().join("n1"), &log, &[], Some(40));
    put_and_get(client, "k", 1).await;
    // Hold 60 connections: the node runs out of descriptors and accept fails.
    let mut held = Vec::new();
    for _ in 0..60 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(client)).await
        {
            held.push(s);
        }
    }
    let pid = node.0.id();
    let t0 = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(pid) - t0;
    // A spinning accept loop burns the whole 2 s (200 ticks).
    assert!(
        used < 60,
        "the node used {used} ticks of CPU in 2 s while out of descriptors"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.matches("cannot accept client connections").count();
    assert!(
        (1..=5).contains(&lines),
        "{lines} accept-error lines in 2 s:\n{text}"
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_term_record_is_gone_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("n1");
    let log = dir.path().join("n1.log");
    {
        let (_node, client) = start_node(&data, &log, &[], None);
        put_and_get(client, "k", 1).await;
    }
    std::fs::remove_file(data.join("meta")).unwrap();
    let (mut node, _) = start_node(&data, &log, &[], None);
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(s) = node.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the node started without its term record"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.contains("meta: the term/vote record is missing"),
        "{err}"
    );
    assert!(err.contains("--unsafe-accept-lost-vote"), "{err}");
    // Told explicitly, it starts and serves.
    let (_node, client) = start_node(&data, &log, &["--unsafe-accept-lost-vote"], None);
    put_and_get(client, "k", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_is_turned_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = spec(&dir.path().join("b"), "1000..2000");
    b.node_args
        .extend(["--cluster-id".into(), "cluster-b".into()]);
    let mut cluster = LocalCluster::start(&b).unwrap();
    cluster.wait_ready(DEADLINE).await.unwrap();
    let leader = cluster.wait_leader(DEADLINE).await.unwrap();
    // A node of cluster A whose peers are B's nodes: it campaigns at them.
    let peers: Vec<String> = cluster
        .ids()
        .iter()
        .filter(|id| **id != "n1")
        .map(|id| format!("--peer={id}={}", cluster.listen_addr(id).unwrap()))
        .collect();
    let mut args: Vec<&str> = peers.iter().map(String::as_str).collect();
    args.extend([
        "--cluster-id",
        "cluster-a",
        "--election-timeout",
        "100..150",
    ]);
    let intruder_log = dir.path().join("intruder.log");
    let (_intruder, _) = start_node(&dir.path().join("a-n1"), &intruder_log, &args, None);
    let logs: Vec<PathBuf> = ["n2", "n3"]
        .iter()
        .map(|id| dir.path().join("b").join("nodes").join(format!("{id}.log")))
        .collect();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let refused = logs.iter().any(|l| {
            std::fs::read_to_string(l)
                .is_ok_and(|t| t.contains("belongs to cluster 'cluster-a', not 'cluster-b'"))
        });
        if refused {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B's nodes never turned A's node away"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // B keeps its leader's term (the intruder's higher-term vote requests
    // never reached its core) and serves writes.
    let addr = cluster.client_addr(&leader).unwrap();
    put_and_get(addr, "k", 3).await;
    let status = cluster
        .status(&leader, Duration::from_secs(2))
        .await
        .unwrap();
    let intruder = std::fs::read_to_string(&intruder_log).unwrap();
    let terms: Vec<u64> = cluster_terms(&cluster).await;
    assert!(
        terms.iter().all(|t| *t == status.term),
        "B's terms moved: {terms:?}\n{intruder}"
    );
    // The intruder retries every few milliseconds; each of B's logs says
    // so at most once per 10 s (it said so 43 times in 6 s before).
    tokio::time::sleep(Duration::from_secs(3)).await;
    for l in &logs {
        let text = std::fs::read_to_string(l).unwrap_or_default();
        let lines = text.matches("belongs to cluster 'cluster-a'").count();
        assert!(
            lines <= 2,
            "{lines} lines about the intruder in {}",
            l.display()
        );
    }
    // A client of another run (a stale controller's) is turned away too;
    // one naming this cluster, or none (`faultline kv`), is served.
    let stale = Client::connect_in(addr, Duration::from_secs(5), Some("cluster-a"))
        .await
        .unwrap();
    let got = stale
        .call(ClientRequest::Put {
            key: "k".into(),
            value: 99,
        })
        .await;
    assert!(got.is_err(), "a client of cluster A was served: {got:?}");
    let own = Client::connect_in(addr, Duration::from_secs(5), Some("cluster-b"))
        .await
        .unwrap();
    assert_eq!(
        own.call(ClientRequest::Get { key: "k".into() })
            .await
            .unwrap(),
        ClientResponse::Ok(Some(3)),
        "the stale client's write must not have landed"
    );
    let leader_log = dir
        .path()
        .join("b")
        .join("nodes")
        .join(format!("{leader}.log"));
    let text = std::fs::read_to_string(&leader_log).unwrap_or_default();
    assert!(
        text.contains("closing client connection: it belongs to cluster 'cluster-a'"),
        "{text}"
    );
}

async fn cluster_terms(cluster: &LocalCluster) -> Vec<u64> {
    let mut out = Vec::new();
    for id in cluster.ids() {
        if let Ok(s) = cluster.status(&id, Duration::from_secs(2)).await {
            out.push(s.term);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_lost_acknowledged_entries_is_caught_up_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(&spec(dir.path(), "1500..3000")).unwrap();
    cluster.wait_ready(DEADLINE).await.unwrap();
    let leader = cluster.wait_leader(DEADLINE).await.unwrap();
    let addr = cluster.client_addr(&leader).unwrap();
    for i in 0..20 {
        put_and_get(addr, &format!("k{i}"), i).await;
    }
    let follower = cluster.ids().into_iter().find(|i| *i != leader).unwrap();
    let other = cluster
        .ids()
        .into_iter()
        .find(|i| *i != leader && *i != follower)
        .unwrap();
    let term = cluster
        .status(&leader, Duration::from_secs(2))
        .await
        .unwrap()
        .term;
    // The follower's durable mark follows its log in the background (at
    // most every 10 ms): wait until it covers the whole log, so that the
    // cut below removes entries the node knew were durable (on a loaded
    // machine the kill came first, and nothing looked lost).
    let last = cluster
        .status(&follower, Duration::from_secs(2))
        .await
        .unwrap()
        .last_log_index;
    let mark = dir.path().join("nodes").join(&follower).join("durable");
    common::until("the durable mark covers the log", || async {
        std::fs::read(&mark).is_ok_and(|b| {
            b.len() == 16 && u64::from_le_bytes(b[8..16].try_into().unwrap()) >= last
        })
    })
    .await;
    // Stop the follower and cut the end off its log: the torn tail is cut
    // at the restart, and entries it had acknowledged are gone.
    cluster.node_mut(&follower).unwrap().kill();
    let log = dir.path().join("nodes").join(&follower).join("log");
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    cluster.node_mut(&follower).unwrap().restart().unwrap();
    // With the third node stopped, the leader needs the follower: a write
    // commits only once it has caught up, in the same term.
    cluster.node_mut(&other).unwrap().kill();
    put_and_get(addr, "after", 99).await;
    let now = cluster
        .status(&leader, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(now.term, term, "caught up in the same term");
    let text =
        std::fs::read_to_string(dir.path().join("nodes").join(format!("{follower}.log"))).unwrap();
    assert!(
        text.contains("this node lost acknowledged entries"),
        "{text}"
    );
    let findings = faultline_results::audit::audit(&dir.path().join("nodes"), None);
    assert!(
        findings
            .iter()
            .any(|f| f.kind == "lost-entries" && f.nodes == vec![follower.clone()]),
        "{findings:?}"
    );
}
