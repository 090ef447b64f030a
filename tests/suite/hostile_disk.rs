//! A node's data directory made hostile while it was stopped: files that
//! are not regular files, and a log that lost entries the node had made
//! durable. Each test fails without the defence it checks; every process is
//! killed when its cluster or guard is dropped.

use crate::common;
use common::DEADLINE;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_nemesis::cluster::{ClusterSpec, LocalCluster};
use faultline_nemesis::process::free_port;
use faultline_node::protocol::{ClientRequest, ClientResponse};

/// A node process of its own, killed when dropped.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(data: &Path, log: &Path) -> Node {
    let port = || format!("127.0.0.1:{}", free_port().unwrap());
    let child = Command::new(common::node_bin())
        .args(["--id", "n1", "--listen", &port(), "--client", &port()])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Node(child)
}

/// Wait (bounded) for the node to exit; its exit code.
fn exit_code(node: &mut Node, what: &str) -> Option<i32> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(s) = node.0.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the node is still running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn data_files_that_are_fifos_or_devices_stop_the_node_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind) in [
        ("meta", "fifo"),
        ("cluster", "fifo"),
        ("snapshot", "fifo"),
        ("log", "zero"),
        ("snapshot", "zero"),
    ] {
        let data = dir.path().join(format!("{name}-{kind}"));
        std::fs::create_dir_all(&data).unwrap();
        let path = data.join(name);
        if kind == "fifo" {
            assert!(Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success());
        } else {
            std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        }
        let log = dir.path().join(format!("{name}-{kind}.log"));
        let mut node = start_node(&data, &log);
        // Without the check a FIFO blocks the start forever and /dev/zero is
        // read until the memory runs out.
        assert_eq!(exit_code(&mut node, name), Some(1), "{name} {kind}");
        let err = std::fs::read_to_string(&log).unwrap();
        let line = err
            .lines()
            .find(|l| l.contains("faultline-node: error"))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(line.contains("not a regular file"), "{line}");
        assert!(line.contains(&path.display().to_string()), "{line}");
    }
}

fn spec(dir: &Path) -> ClusterSpec {
    ClusterSpec {
        nodes: 3,
        dir: dir.to_path_buf(),
        target: faultline_sut::faultline(common::node_bin()),
        node_args: vec![
            "--election-timeout".into(),
            "150..300".into(),
            "--heartbeat".into(),
            "50".into(),
        ],
        namespaces: Default::default(),
        hosts: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_durable_entries_neither_votes_nor_campaigns_until_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(&spec(dir.path())).unwrap();
    cluster.wait_ready(DEADLINE).await.unwrap();
    let leader = cluster.wait_leader(DEADLINE).await.unwrap();
    for i in 0..20 {
        let put = common::call(
            &cluster,
            &leader,
            ClientRequest::Put {
                key: format!("k{i}"),
                value: i,
            },
        )
        .await;
        assert!(matches!(put, ClientResponse::Ok(_)), "{put:?}");
    }
    let ids = cluster.ids();
    let lossy = ids.iter().find(|i| **i != leader).unwrap().clone();
    let others: Vec<String> = ids.iter().filter(|i| **i != lossy).cloned().collect();
    // The node's durable mark follows its log in the background (at most
    // every 10 ms): wait until it covers the whole log, so that what the
    // cut below removes is what the node durably knew it had.
    let last = common_status(&cluster, &lossy).await.last_log_index;
    let mark = dir.path().join("nodes").join(&lossy).join("durable");
    common::until("the durable mark covers the log", || async {
        std::fs::read(&mark).is_ok_and(|b| {
            b.len() == 16 && u64::from_le_bytes(b[8..16].try_into().unwrap()) >= last
        })
    })
    .await;
    for id in &ids {
        cluster.node_mut(id).unwrap().kill();
    }
    // Cut the node's log to 700 bytes: entries it had fsynced are gone.
    let log = dir.path().join("nodes").join(&lossy).join("log");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(700)
        .unwrap();
    cluster.node_mut(&lossy).unwrap().restart().unwrap();
    let before = common_status(&cluster, &lossy).await.term;
    // Alone, its election timer fires every 150-300 ms: for 3 s it must not
    // campaign (its term stays).
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if let Ok(s) = cluster.status(&lossy, Duration::from_secs(2)).await {
            assert_eq!(s.term, before, "the node campaigned before catching up");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text =
        std::fs::read_to_string(dir.path().join("nodes").join(format!("{lossy}.log"))).unwrap();
    assert!(
        text.contains("this node lost acknowledged entries")
            && text.contains("neither vote nor campaign"),
        "{text}"
    );
    // The others elect a leader without its vote; it catches up and the
    // cluster serves with it.
    for id in &others {
        cluster.node_mut(id).unwrap().restart().unwrap();
    }
    let leader = cluster.wait_leader(DEADLINE).await.unwrap();
    assert_ne!(leader, lossy);
    let put = common::call(
        &cluster,
        &leader,
        ClientRequest::Put {
            key: "after".into(),
            value: 1,
        },
    )
    .await;
    assert!(matches!(put, ClientResponse::Ok(_)), "{put:?}");
    common::until("the node caught up", || async {
        cluster
            .status(&lossy, Duration::from_secs(2))
            .await
            .is_ok_and(|s| s.last_log_index >= 21)
    })
    .await;
}

async fn common_status(cluster: &LocalCluster, id: &str) -> faultline_node::protocol::NodeStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(s) = cluster.status(id, Duration::from_secs(2)).await {
            return s;
        }
        assert!(Instant::now() < deadline, "{id} never answered its status");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
