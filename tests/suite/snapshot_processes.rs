//! Snapshots on real node processes: a follower that was down while the
//! cluster wrote past several snapshots catches up by InstallSnapshot, and
//! every acknowledged write is readable through it, before and after it
//! restarts from its own snapshot.

use crate::common;
use common::{call, DEADLINE, POLL};

use std::time::{Duration, Instant};

use faultline_nemesis::cluster::{ClusterSpec, LocalCluster};
use faultline_node::protocol::{ClientRequest, ClientResponse, NodeStatus};

/// Poll `id`'s status until `ok` holds (bounded by DEADLINE).
async fn wait_status(
    cluster: &LocalCluster,
    id: &str,
    what: &str,
    ok: impl Fn(&NodeStatus) -> bool,
) -> NodeStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(s) = cluster.status(id, Duration::from_secs(1)).await {
            if ok(&s) {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{id}: {what} within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_several_snapshots_catches_up_by_install_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ClusterSpec {
        nodes: 3,
        dir: dir.path().to_path_buf(),
        target: faultline_sut::faultline(common::node_bin()),
        node_args: [
            "--election-timeout",
            "300..600",
            "--heartbeat",
            "50",
            "--snapshot-entries",
            "40",
            "--snapshot-trailing",
            "5",
            // Small chunks: the transfer takes several messages.
            "--snapshot-chunk-bytes",
            "256",
        ]
        .map(String::from)
        .to_vec(),
        namespaces: Default::default(),
        hosts: Default::default(),
    };
    let mut cluster = LocalCluster::start(&spec).unwrap();
    cluster.wait_ready(DEADLINE).await.unwrap();
    let leader = cluster.wait_leader(DEADLINE).await.unwrap();
    let ids = cluster.ids();
    let lagger = ids.iter().find(|i| **i != leader).unwrap().clone();
    let other = ids
        .iter()
        .find(|i| **i != leader && **i != lagger)
        .unwrap()
        .clone();
    call(&cluster, &leader, put("before", 1)).await;
    wait_status(&cluster, &lagger, "applied the first write", |s| {
        s.applied_index >= 2
    })
    .await;
    cluster.node_mut(&lagger).unwrap().kill();

    // 300 writes: several snapshots past the stopped follower's log.
    for i in 0..300 {
        let via = if i % 2 == 0 { &leader } else { &other };
        assert_eq!(
            call(&cluster, via, put(&format!("k{}", i % 120), i)).await,
            ClientResponse::Ok(Some(i))
        );
    }
    let s = cluster
        .status(&leader, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(s.snapshots_taken >= 3, "{s:?}");
    assert!(s.first_index > 200, "the leader compacted its log: {s:?}");

    cluster.node_mut(&lagger).unwrap().restart().unwrap();
    let target = s.commit_index;
    let caught = wait_status(&cluster, &lagger, "caught up by a snapshot", |s| {
        s.applied_index >= target && s.snapshots_installed >= 1
    })
    .await;
    assert!(caught.snapshot_index > 200, "{caught:?}");
    assert!(caught.first_index > 200, "{caught:?}");
    assert!(
        has_snapshot_file(dir.path(), &lagger),
        "{lagger} stored the snapshot"
    );
    for k in 0..120 {
        let latest = (0..300).filter(|i| i % 120 == k).max().unwrap();
        assert_eq!(
            call(&cluster, &lagger, get(&format!("k{k}"))).await,
            ClientResponse::Ok(Some(latest))
        );
    }
    assert_eq!(
        call(&cluster, &lagger, get("before")).await,
        ClientResponse::Ok(Some(1))
    );

    // Restarted once more, it starts from its own snapshot and the tail.
    cluster.node_mut(&lagger).unwrap().kill();
    cluster.node_mut(&lagger).unwrap().restart().unwrap();
    let back = wait_status(&cluster, &lagger, "back", |s| s.applied_index >= target).await;
    assert!(back.snapshot_index > 200, "{back:?}");
    assert_eq!(
        call(&cluster, &lagger, get("k7")).await,
        ClientResponse::Ok(Some(247))
    );

    // A damaged snapshot file: the node refuses to start, naming the file
    // and the offset, instead of starting without what it held.
    cluster.node_mut(&lagger).unwrap().kill();
    let snap = snapshot_file(dir.path(), &lagger).expect("a snapshot file");
    let mut bytes = std::fs::read(&snap).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::write(&snap, bytes).unwrap();
    let out = std::process::Command::new(common::node_bin())
        .args([
            "--id",
            &lagger,
            "--listen",
            "127.0.0.1:0",
            "--client",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(snap.parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("snapshot: corrupt record at byte offset")
            && err.contains("data checksum mismatch"),
        "{err}"
    );
    drop(cluster);
}

fn snapshot_file(root: &std::path::Path, id: &str) -> Option<std::path::PathBuf> {
    walk(root).into_iter().find(|p| {
        p.file_name().is_some_and(|n| n == "snapshot")
            && p.components().any(|c| c.as_os_str() == id)
    })
}

fn has_snapshot_file(root: &std::path::Path, id: &str) -> bool {
    snapshot_file(root, id).is_some()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn put(key: &str, value: i64) -> ClientRequest {
    ClientRequest::Put {
        key: key.into(),
        value,
    }
}

fn get(key: &str) -> ClientRequest {
    ClientRequest::Get { key: key.into() }
}
