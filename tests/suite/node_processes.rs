//! Three real `faultline-node` processes on free loopback ports: election,
//! reads and writes through the leader and a follower, a crashed leader, and
//! the old leader catching up after a restart on its data directory.
//! Every wait polls with a generous deadline; every process is killed and
//! reaped when the cluster is dropped, whatever the outcome.

use crate::common;
use common::{call, DEADLINE};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use faultline_nemesis::cluster::{ClusterSpec, LocalCluster};
use faultline_nemesis::process::process_exists;
use faultline_node::protocol::{ClientRequest, ClientResponse};

fn spec(dir: &std::path::Path) -> ClusterSpec {
    ClusterSpec {
        nodes: 3,
        dir: dir.to_path_buf(),
        target: faultline_sut::faultline(common::node_bin()),
        node_args: vec![
            "--election-timeout".into(),
            "300..600".into(),
            "--heartbeat".into(),
            "50".into(),
        ],
        namespaces: Default::default(),
        hosts: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_survives_a_leader_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(&spec(dir.path())).unwrap();
    let pids = cluster.pids();
    cluster.wait_ready(DEADLINE).await.unwrap();
    let leader = cluster.wait_leader(DEADLINE).await.unwrap();
    let ids = cluster.ids();
    let follower = ids.iter().find(|i| **i != leader).unwrap().clone();

    // Writes and reads through the leader and through a follower.
    assert_eq!(
        call(
            &cluster,
            &leader,
            ClientRequest::Put {
                key: "a".into(),
                value: 1
            }
        )
        .await,
        ClientResponse::Ok(Some(1))
    );
    assert_eq!(
        call(
            &cluster,
            &follower,
            ClientRequest::Put {
                key: "b".into(),
                value: 2
            }
        )
        .await,
        ClientResponse::Ok(Some(2))
    );
    assert_eq!(
        call(&cluster, &follower, ClientRequest::Get { key: "a".into() }).await,
        ClientResponse::Ok(Some(1))
    );
    assert_eq!(
        call(&cluster, &leader, ClientRequest::Get { key: "b".into() }).await,
        ClientResponse::Ok(Some(2))
    );
    assert_eq!(
        call(
            &cluster,
            &leader,
            ClientRequest::Get {
                key: "never".into()
            }
        )
        .await,
        ClientResponse::Ok(None)
    );
    assert_eq!(
        call(
            &cluster,
            &follower,
            ClientRequest::Cas {
                key: "a".into(),
                expected: 7,
                new: 8
            }
        )
        .await,
        ClientResponse::CasMismatch { actual: Some(1) }
    );
    assert_eq!(
        call(
            &cluster,
            &follower,
            ClientRequest::Cas {
                key: "a".into(),
                expected: 1,
                new: 3
            }
        )
        .await,
        ClientResponse::Ok(Some(3))
    );
    for i in 0..20 {
        let via = &ids[i % ids.len()];
        call(
            &cluster,
            via,
            ClientRequest::Put {
                key: format!("k{i}"),
                value: i as i64,
            },
        )
        .await;
    }

    // kill -9 the leader: a new one is elected and every acknowledged write is readable.
    let old = cluster.wait_leader(DEADLINE).await.unwrap();
    cluster.node_mut(&old).unwrap().kill();
    let survivor = ids.iter().find(|i| **i != old).unwrap().clone();
    let deadline = Instant::now() + DEADLINE;
    let new_leader = loop {
        if let Some(l) = cluster.current_leader().await {
            if l != old {
                break l;
            }
        }
        assert!(Instant::now() < deadline, "no new leader after the crash");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(new_leader, old);
    assert_eq!(
        call(&cluster, &survivor, ClientRequest::Get { key: "a".into() }).await,
        ClientResponse::Ok(Some(3))
    );
    assert_eq!(
        call(&cluster, &survivor, ClientRequest::Get { key: "b".into() }).await,
        ClientResponse::Ok(Some(2))
    );
    for i in 0..20 {
        assert_eq!(
            call(
                &cluster,
                &survivor,
                ClientRequest::Get {
                    key: format!("k{i}")
                }
            )
            .await,
            ClientResponse::Ok(Some(i as i64))
        );
    }
    call(
        &cluster,
        &survivor,
        ClientRequest::Put {
            key: "after".into(),
            value: 9,
        },
    )
    .await;

    // The old leader restarts on its data directory and catches up.
    cluster.node_mut(&old).unwrap().restart().unwrap();
    let target = cluster
        .status(&new_leader, Duration::from_secs(2))
        .await
        .unwrap()
        .commit_index;
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(s) = cluster.status(&old, Duration::from_secs(1)).await {
            if s.applied_index >= target && s.role == faultline_node::raft::Role::Follower {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the restarted node did not catch up to {target}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        call(
            &cluster,
            &old,
            ClientRequest::Get {
                key: "after".into()
            }
        )
        .await,
        ClientResponse::Ok(Some(9))
    );

    let all_pids: Vec<u32> = pids.into_iter().chain(cluster.pids()).collect();
    drop(cluster);
    for pid in all_pids {
        assert!(
            !process_exists(pid),
            "node process {pid} outlived the cluster"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_corrupt_data_directory_with_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nodes").join("n1");
    std::fs::create_dir_all(&data).unwrap();
    // Two garbage "records", the first one damaged: corruption before intact data.
    let mut bytes = vec![0xFFu8; 64];
    bytes.extend_from_slice(&std::fs::read(write_one_record(dir.path())).unwrap());
    std::fs::write(data.join("log"), bytes).unwrap();
    let out = std::process::Command::new(common::node_bin())
        .args([
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:0",
            "--client",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt record at byte offset 0"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.contains("error:")).count(),
        1,
        "{err}"
    );
}

/// A log file holding one valid record, made by the node's own storage.
fn write_one_record(dir: &std::path::Path) -> PathBuf {
    use faultline_node::raft::{Entry, EntryData, LogWrite};
    use faultline_node::storage::{Storage, SyncMode};
    let d = dir.join("one");
    let (mut s, _) = Storage::open(&d, SyncMode::GroupCommit).unwrap();
    let write = LogWrite {
        truncate_from: None,
        entries: vec![Entry {
            term: 1,
            index: 1,
            data: EntryData::Noop,
        }],
        ..Default::default()
    };
    s.persist(None, &write).unwrap();
    d.join("log")
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    let out = std::process::Command::new(common::node_bin())
        .args([
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:0",
            "--client",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/x",
            "--election-timeout",
            "300..100",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empty range"), "{err}");
    let out = std::process::Command::new(common::node_bin())
        .args([
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:0",
            "--client",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/x",
            "--heartbeat",
            "500",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("heartbeat"));
    // Names and peer lists that cannot be right.
    let base = [
        "--listen",
        "127.0.0.1:0",
        "--client",
        "127.0.0.1:0",
        "--data-dir",
        "/tmp/x",
    ];
    for (extra, want) in [
        (vec!["--id", ""], "--id '' is not a name"),
        (
            vec![
                "--id",
                "n1",
                "--peer",
                "n2=127.0.0.1:1",
                "--peer",
                "n2=127.0.0.1:2",
            ],
            "--peer n2 is given twice",
        ),
        (
            vec!["--id", "n1", "--peer", "n1=127.0.0.1:1"],
            "names this node itself",
        ),
        (
            vec!["--id", "n1", "--heartbeat", "0"],
            "--heartbeat must be between 1 and 300000 ms",
        ),
        (
            vec!["--id", "n1", "--cluster-id", "a b"],
            "--cluster-id 'a b' is not a name",
        ),
    ] {
        let out = std::process::Command::new(common::node_bin())
            .args(base)
            .args(&extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_close_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.nodes = 1;
    let mut cluster = LocalCluster::start(&s).unwrap();
    cluster.wait_ready(DEADLINE).await.unwrap();
    cluster.wait_leader(DEADLINE).await.unwrap();
    let addr = cluster.client_addr("n1").unwrap();
    // Garbage inside a well-formed frame, then a frame header claiming 1 GiB.
    for bytes in [
        vec![0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef],
        vec![0x40, 0, 0, 0, 1, 2, 3],
    ] {
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw.write_all(&bytes).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(DEADLINE, raw.read(&mut buf))
            .await
            .expect("the node closes the connection");
        assert_eq!(n.unwrap_or(0), 0, "the connection is closed, not answered");
    }
    // Everyone else is still served.
    assert_eq!(
        call(
            &cluster,
            "n1",
            ClientRequest::Put {
                key: "x".into(),
                value: 1
            }
        )
        .await,
        ClientResponse::Ok(Some(1))
    );
    drop(cluster);
    let log = std::fs::read_to_string(dir.path().join("nodes").join("n1.log")).unwrap();
    assert_eq!(log.matches("closing client connection").count(), 2, "{log}");
}
