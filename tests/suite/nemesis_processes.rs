//! Faults on real node processes behind the link proxies. Every wait polls
//! with a generous deadline; every process is gone when a test ends.

use crate::common;
use common::{until, DEADLINE};

use std::time::{Duration, Instant};

use faultline_nemesis::fault::{Fault, Target};
use faultline_nemesis::process::process_exists;
use faultline_nemesis::testbed::{Testbed, TestbedSpec};
use faultline_node::client::Client;
use faultline_node::protocol::{ClientRequest, ClientResponse};

fn spec(dir: &std::path::Path, seed: u64) -> TestbedSpec {
    TestbedSpec {
        nodes: 3,
        spares: 0,
        dir: dir.to_path_buf(),
        target: faultline_sut::faultline(common::node_bin()),
        node_args: vec![
            "--election-timeout".into(),
            "300..600".into(),
            "--heartbeat".into(),
            "50".into(),
        ],
        seed,
        net: faultline_nemesis::net::NetBackend::Proxy,
        hosts: None,
        disk: None,
    }
}

/// Wait until the three nodes answer and follow one leader.
async fn every_node_back_under_one_leader(tb: &Testbed) {
    until("every node is back and follows one leader", || async {
        tb.cluster.current_leader().await.is_some()
            && futures::future::join_all(
                ["n1", "n2", "n3"].map(|id| tb.cluster.status(id, Duration::from_secs(1))),
            )
            .await
            .iter()
            .all(|s| s.is_ok())
    })
    .await;
}

async fn put(tb: &Testbed, id: &str, key: &str, value: i64) -> bool {
    let Some(addr) = tb.cluster.client_addr(id) else {
        return false;
    };
    let Ok(c) = Client::connect(addr, Duration::from_secs(3)).await else {
        return false;
    };
    matches!(
        c.call(ClientRequest::Put {
            key: key.into(),
            value
        })
        .await,
        Ok(ClientResponse::Ok(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolating_the_leader_elects_a_new_one_and_the_old_one_steps_down_after_heal() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 1)).await.unwrap();
    let old = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    let applied = tb.apply(&Fault::PartitionLeader).await.unwrap();
    assert_eq!(applied.nodes, vec![old.clone()]);
    until("a new leader in the majority", || async {
        tb.cluster.current_leader().await.is_some_and(|l| l != old)
    })
    .await;
    let new = tb.cluster.current_leader().await.unwrap();
    until("a write through the new leader", || put(&tb, &new, "k", 1)).await;
    tb.heal(&applied).await.unwrap();
    until("the old leader steps down and follows", || async {
        tb.cluster
            .status(&old, Duration::from_secs(1))
            .await
            .is_ok_and(|s| {
                s.role == faultline_node::raft::Role::Follower
                    && s.leader.is_some()
                    && s.leader.as_deref() != Some(old.as_str())
            })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_resumes_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 2)).await.unwrap();
    let leader = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    let victim = tb.cluster.ids().into_iter().find(|i| *i != leader).unwrap();
    let applied = tb
        .apply(&Fault::Pause {
            target: Target::Node(victim.clone()),
        })
        .await
        .unwrap();
    assert!(
        tb.cluster
            .status(&victim, Duration::from_millis(500))
            .await
            .is_err(),
        "a paused node does not answer"
    );
    for i in 0..10 {
        let key = format!("p{i}");
        until("a write while one node is paused", || {
            put(&tb, &leader, &key, i)
        })
        .await;
    }
    let target = tb
        .cluster
        .status(&leader, Duration::from_secs(2))
        .await
        .unwrap()
        .commit_index;
    tb.heal(&applied).await.unwrap();
    until("the resumed node catches up", || async {
        tb.cluster
            .status(&victim, Duration::from_secs(1))
            .await
            .is_ok_and(|s| s.applied_index >= target)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_restarts_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 3)).await.unwrap();
    let leader = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    for i in 0..5 {
        let key = format!("c{i}");
        until("a write", || put(&tb, &leader, &key, i)).await;
    }
    let victim = tb.cluster.ids().into_iter().find(|i| *i != leader).unwrap();
    let before = tb
        .cluster
        .status(&victim, Duration::from_secs(2))
        .await
        .unwrap();
    let applied = tb
        .apply(&Fault::Crash {
            target: Target::Node(victim.clone()),
        })
        .await
        .unwrap();
    assert!(tb
        .cluster
        .status(&victim, Duration::from_millis(500))
        .await
        .is_err());
    tb.heal(&applied).await.unwrap();
    until("the restarted node answers with its log", || async {
        tb.cluster
            .status(&victim, Duration::from_secs(1))
            .await
            .is_ok_and(|s| s.last_log_index >= before.last_log_index)
    })
    .await;
    let log =
        std::fs::read_to_string(dir.path().join("nodes").join(format!("{victim}.log"))).unwrap();
    assert!(log.matches("recovered from").count() >= 2, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_port_was_taken_moves_and_the_address_book_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 5)).await.unwrap();
    let leader = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    until("a write", || put(&tb, &leader, "m", 1)).await;
    let victim = tb.cluster.ids().into_iter().find(|i| *i != leader).unwrap();
    let book = tb.cluster.address_book();
    let old = book.get(&victim).unwrap();
    let applied = tb
        .apply(&Fault::Crash {
            target: Target::Node(victim.clone()),
        })
        .await
        .unwrap();
    // Another program takes the crashed node's client port meanwhile.
    let squatter = std::net::TcpListener::bind(old).unwrap();
    tb.heal(&applied).await.unwrap();
    let new = book.get(&victim).unwrap();
    assert_ne!(new, old, "{victim} did not move");
    assert_eq!(tb.cluster.client_addr(&victim), Some(new));
    until(
        "the moved node answers as itself and has the write",
        || async {
            tb.cluster
                .status(&victim, Duration::from_secs(1))
                .await
                .is_ok_and(|s| s.id == victim && s.applied_index >= 2)
        },
    )
    .await;
    // Its peers reach it through the link proxies, which followed it too.
    until("a write through the moved node", || {
        put(&tb, &victim, "m", 2)
    })
    .await;
    drop(squatter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_cut_is_one_way() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 4)).await.unwrap();
    let leader = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    let applied = tb.apply(&Fault::OneWayIn).await.unwrap();
    assert_eq!(applied.nodes, vec![leader.clone()]);
    let other = tb.cluster.ids().into_iter().find(|i| *i != leader).unwrap();
    let out_before = tb
        .net
        .proxy()
        .unwrap()
        .link(&leader, &other)
        .unwrap()
        .stats();
    let in_before = tb
        .net
        .proxy()
        .unwrap()
        .link(&other, &leader)
        .unwrap()
        .stats();
    until(
        "heartbeats still flow out while answers are dropped",
        || async {
            let out = tb
                .net
                .proxy()
                .unwrap()
                .link(&leader, &other)
                .unwrap()
                .stats();
            let inn = tb
                .net
                .proxy()
                .unwrap()
                .link(&other, &leader)
                .unwrap()
                .stats();
            out.passed > out_before.passed + 5
                && inn.dropped > in_before.dropped + 5
                && inn.passed == in_before.passed
        },
    )
    .await;
    // The followers still hear the leader, so they do not elect another.
    let s = tb
        .cluster
        .status(&other, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(s.leader.as_deref(), Some(leader.as_str()));
    tb.heal(&applied).await.unwrap();
    until("a write after the heal", || put(&tb, &leader, "w", 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_outlives_the_testbed_even_paused_or_after_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 5)).await.unwrap();
    let ids = tb.cluster.ids();
    tb.apply(&Fault::Pause {
        target: Target::Node(ids[0].clone()),
    })
    .await
    .unwrap();
    let pids = tb.cluster.pids();
    assert_eq!(pids.len(), 3);
    drop(tb);
    for p in pids {
        assert!(!process_exists(p), "process {p} survived");
    }
    // A panic while the testbed is alive still tears it down.
    let dir2 = tempfile::tempdir().unwrap();
    let tb = Testbed::start(&spec(dir2.path(), 6)).await.unwrap();
    let pids = tb.cluster.pids();
    let r = tokio::task::spawn_blocking(move || {
        let _held = tb;
        panic!("boom");
    })
    .await;
    assert!(r.is_err());
    for p in pids {
        assert!(!process_exists(p), "process {p} survived a panic");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_membership_fault_removes_a_voter_and_adds_a_fresh_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&TestbedSpec {
        spares: 1,
        ..spec(dir.path(), 6)
    })
    .await
    .unwrap();
    assert_eq!(tb.cluster.ids(), vec!["n1", "n2", "n3"]);
    assert_eq!(tb.cluster.free_slots(), vec!["n4"]);
    let leader = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    until("a first write", || put(&tb, &leader, "m", 1)).await;
    let applied = tb.apply(&Fault::Membership).await.unwrap();
    let removed = applied.nodes[0].clone();
    assert_eq!(applied.value["removed"], serde_json::json!(removed));
    let voters: Vec<String> = serde_json::from_value(applied.value["voters"].clone()).unwrap();
    assert_eq!(voters.len(), 2);
    assert!(!voters.contains(&removed));
    assert!(!tb.cluster.ids().contains(&removed), "its slot is free");
    assert!(
        tb.cluster
            .status(&removed, Duration::from_millis(500))
            .await
            .is_err(),
        "the removed node is stopped"
    );
    let detail = tb.heal(&applied).await.unwrap();
    let added = detail["added"].as_str().unwrap().to_string();
    assert_eq!(added, "n4", "the free slot other than the one just freed");
    let voters: Vec<String> = serde_json::from_value(detail["voters"].clone()).unwrap();
    assert_eq!(voters.len(), 3);
    assert!(voters.contains(&added));
    // The fresh node holds the data written before it existed.
    let target = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    let commit = tb
        .cluster
        .status(&target, Duration::from_secs(2))
        .await
        .unwrap()
        .commit_index;
    until("the added node catches up", || async {
        tb.cluster
            .status(&added, Duration::from_secs(1))
            .await
            .is_ok_and(|s| s.applied_index >= commit && s.voters.contains(&added))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_combined_fault_applies_every_part_and_heals_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 7)).await.unwrap();
    let leader = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    let fault: Fault = "partition-leader+crash@n1".parse().unwrap();
    let applied = tb.apply(&fault).await.unwrap();
    assert_eq!(applied.parts.len(), 2);
    assert_eq!(applied.parts[0].nodes, vec![leader.clone()]);
    assert!(applied.nodes.contains(&"n1".to_string()));
    assert!(
        tb.cluster
            .status("n1", Duration::from_millis(500))
            .await
            .is_err(),
        "n1 is down"
    );
    tb.heal(&applied).await.unwrap();
    every_node_back_under_one_leader(&tb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_keeps_its_halves_apart_and_a_crash_loop_restarts_its_node_again_and_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 8)).await.unwrap();
    let leader = tb.cluster.wait_leader(DEADLINE).await.unwrap();

    // partition-bridge@leader on three nodes: the two followers cannot hear
    // each other; the leader hears both.
    let bridge = tb
        .apply(&"partition-bridge@leader".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(bridge.nodes, vec![leader.clone()]);
    let others: Vec<String> = tb
        .cluster
        .ids()
        .into_iter()
        .filter(|i| *i != leader)
        .collect();
    let blocked = |a: &str, b: &str| tb.net.proxy().unwrap().link(a, b).unwrap().rules().blocked;
    assert!(blocked(&others[0], &others[1]) && blocked(&others[1], &others[0]));
    for o in &others {
        assert!(!blocked(&leader, o) && !blocked(o, &leader));
    }
    tb.heal(&bridge).await.unwrap();

    // restart:200@n2 for 1.5 s: killed and started again every 200 ms.
    let victim = "n2";
    let plan = vec![faultline_nemesis::schedule::PlannedFault {
        start_ms: 0,
        end_ms: 1500,
        fault: "restart:200@n2".parse().unwrap(),
    }];
    let events = std::sync::Mutex::new(Vec::<String>::new());
    let sink = |f: &str, _v: serde_json::Value| events.lock().unwrap().push(f.to_string());
    let ran =
        faultline_nemesis::schedule::run_schedule(&mut tb, &plan, Instant::now(), &sink).await;
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].error, None);
    assert_eq!(*events.lock().unwrap(), ["kill", "restart"]);
    let log =
        std::fs::read_to_string(dir.path().join("nodes").join(format!("{victim}.log"))).unwrap();
    // The first start, the kill at the fault's start, and at least three more
    // rounds (seven fit in 1.5 s when start-ups are quick).
    let starts = log.matches("recovered from").count();
    assert!(starts >= 5, "{victim} started only {starts} times:\n{log}");
    every_node_back_under_one_leader(&tb).await;
}

/// Figure 8 on five nodes, with a writer that keeps proposing through every
/// node meanwhile (the old leader's tail comes from it). Returns what the
/// fault recorded and the findings of the log audit after the heal.
async fn figure_8(bug: Option<&str>, seed: u64) -> (serde_json::Value, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path(), seed);
    spec.nodes = 5;
    spec.node_args = vec!["--election-timeout".into(), "800..1600".into()];
    if let Some(b) = bug {
        spec.node_args.extend(["--unsafe-bug".into(), b.into()]);
    }
    let mut tb = Testbed::start(&spec).await.unwrap();
    tb.cluster.wait_leader(DEADLINE).await.unwrap();
    let addrs = tb.cluster.client_addrs();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let writer = tokio::spawn(async move {
        let mut i = 0i64;
        // Bounded: at most 100 000 requests, each at most 300 ms.
        while !s.load(std::sync::atomic::Ordering::Relaxed) && i < 100_000 {
            let (_, addr) = &addrs[i as usize % addrs.len()];
            if let Ok(c) = Client::connect(*addr, Duration::from_millis(300)).await {
                let put = c.call(ClientRequest::Put {
                    key: "f".into(),
                    value: i,
                });
                let _ = tokio::time::timeout(Duration::from_millis(300), put).await;
            }
            i += 1;
        }
    });
    let applied = tb.apply(&"figure-8".parse().unwrap()).await.unwrap();
    tb.heal(&applied).await.unwrap();
    let nodes = dir.path().join("nodes");
    let findings = || -> Vec<String> {
        faultline_results::audit::audit(&nodes, None)
            .into_iter()
            .map(|f| f.message)
            .collect()
    };
    if bug.is_none() {
        // Give the heal time to reach every node.
        until("a leader after the heal", || async {
            tb.cluster.current_leader().await.is_some()
        })
        .await;
    } else {
        // The buggy V and F stop on the heal; P too if it learned of V's
        // commit before it was cut off (then it stops in step 4, and the
        // cluster is left without a majority).
        until(
            "a node stopped on an overwrite of a committed entry",
            || async {
                findings()
                    .iter()
                    .any(|f| f.contains("asked to overwrite committed entry"))
            },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    (applied.value, findings())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure_8_stays_safe_on_the_correct_node_and_catches_commit_old_term() {
    let (v, findings) = figure_8(None, 9).await;
    assert!(findings.is_empty(), "{findings:?}\n{v}");
    // The correct second leader committed only with its own entry on the
    // third node, which therefore won the last step.
    assert!(
        v["commit_after"].as_u64() > v["commit_before"].as_u64(),
        "{v}"
    );
    assert_eq!(v["last"]["leader"], v["third"], "{v}");
    assert_eq!(v["own_entries_held_back"], false, "{v}");

    let (v, findings) = figure_8(Some("commit-old-term"), 9).await;
    // The buggy leader committed while its own entries were held back.
    assert_eq!(v["own_entries_held_back"], true, "{v}");
    assert!(
        findings
            .iter()
            .any(|f| f.contains("asked to overwrite committed entry")),
        "{findings:?}\n{v}"
    );
    // In step 4 the new majority (W, P and the fifth node) elects a leader
    // without V and F; usually W, whose last term is the highest, but on a
    // loaded machine W can lose its leadership to a node it has caught up
    // before the nemesis looks, so only "not V and not F" is certain.
    let last = &v["last"]["leader"];
    assert!(
        last.is_string() && *last != v["second"] && *last != v["follower"],
        "{v}"
    );
}
