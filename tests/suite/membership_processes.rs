//! Membership changes on real processes, from the command line: a fresh node
//! joins a 3-node cluster with `faultline kv add-member`, serves reads, and
//! the leader is removed with `remove-member`; the rest elect a new leader
//! and keep every acknowledged write. Every wait is bounded; every process
//! is killed and reaped when the cluster is dropped.

use crate::common;
use common::DEADLINE;

use std::process::Command;
use std::time::{Duration, Instant};

use faultline_nemesis::cluster::{ClusterSpec, LocalCluster};
use faultline_nemesis::process::process_exists;
use faultline_node::change::members_at;
use faultline_node::raft::Role;

/// `faultline kv --node ADDR ARGS...`: (exit code, stdout, stderr).
fn kv(addr: std::net::SocketAddr, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::faultline_bin())
        .arg("kv")
        .arg("--node")
        .arg(addr.to_string())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `kv` until it exits 0 (bounded): the cluster may be between leaders.
fn kv_ok(addr: std::net::SocketAddr, args: &[&str]) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (code, out, err) = kv(addr, args);
        if code == 0 {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "kv {args:?} never succeeded: exit {code}\n{out}\n{err}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_and_the_leader_leaves_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ClusterSpec {
        nodes: 3,
        dir: dir.path().to_path_buf(),
        target: faultline_sut::faultline(common::node_bin()),
        node_args: vec![
            "--election-timeout".into(),
            "300..600".into(),
            "--heartbeat".into(),
            "50".into(),
        ],
        namespaces: Default::default(),
        hosts: Default::default(),
    };
    let mut cluster = LocalCluster::start_with_spares(&spec, 1).unwrap();
    cluster.wait_ready(DEADLINE).await.unwrap();
    let leader = cluster.wait_leader(DEADLINE).await.unwrap();
    let addr = |c: &LocalCluster, id: &str| c.client_addr(id).unwrap();
    kv_ok(addr(&cluster, "n1"), &["put", "a", "1"]);

    // n4 starts empty, outside the configuration, and is added.
    cluster.node_mut("n4").unwrap().start_fresh().unwrap();
    cluster.set_active("n4", true);
    let n4_peer = cluster.listen_addr("n4").unwrap().to_string();
    let out = kv_ok(addr(&cluster, "n2"), &["add-member", "n4", &n4_peer]);
    assert!(out.contains("change complete"), "{out}");
    assert!(out.contains("voters n1,n2,n3,n4"), "{out}");
    // It holds what was written before it existed, and serves through the leader.
    assert_eq!(kv_ok(addr(&cluster, "n4"), &["get", "a"]).trim(), "1");
    kv_ok(addr(&cluster, "n4"), &["put", "b", "2"]);

    // Refusals are definite (exit 4) and say why.
    let (code, _, err) = kv(addr(&cluster, "n1"), &["add-member", "n2", &n4_peer]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("already a member"), "{err}");
    let (code, _, err) = kv(addr(&cluster, "n1"), &["add-member", "n9", "10.0.0.1:5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("loopback"), "{err}");

    // Remove the leader, asking a node that stays.
    let stays = ["n1", "n2", "n3", "n4"]
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    let out = kv_ok(addr(&cluster, stays), &["remove-member", &leader]);
    assert!(out.contains("change complete"), "{out}");
    let m = members_at(addr(&cluster, stays), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(m.voters.len(), 3);
    assert!(!m.voters.contains(&leader));
    // The old leader stepped down; the others elect one of themselves.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let s = cluster
            .status(stays, Duration::from_secs(1))
            .await
            .ok()
            .and_then(|s| s.leader);
        if s.as_ref().is_some_and(|l| *l != leader) {
            break;
        }
        assert!(Instant::now() < deadline, "no new leader without {leader}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old = cluster
        .status(&leader, Duration::from_secs(1))
        .await
        .unwrap();
    assert_ne!(old.role, Role::Leader, "the removed leader stepped down");
    assert_eq!(kv_ok(addr(&cluster, stays), &["get", "a"]).trim(), "1");
    assert_eq!(kv_ok(addr(&cluster, stays), &["get", "b"]).trim(), "2");
    let json = kv_ok(addr(&cluster, stays), &["members", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["voters"].as_array().unwrap().len(), 3);

    let pids = cluster.pids();
    assert_eq!(pids.len(), 4);
    drop(cluster);
    for pid in pids {
        assert!(!process_exists(pid), "process {pid} left behind");
    }
}
