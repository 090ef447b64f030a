//! The kernel network backend on real node processes: each node in a
//! network namespace of its own, faults by nftables. This binary enters a
//! network namespace of its own on its main thread before any other thread
//! starts (it runs without the test harness, see Cargo.toml), then runs
//! each case in turn; every wait polls with a generous deadline.
//!
//! Without root, `ip` or `nft` it says so and passes, except under
//! `CI=true`, where it fails.

mod common;
use common::{until, DEADLINE};

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use faultline_nemesis::fault::{Fault, Target};
use faultline_nemesis::net::proxy::LinkStats;
use faultline_nemesis::net::{Net, NetBackend};
use faultline_nemesis::testbed::{Testbed, TestbedSpec};
use faultline_node::client::Client;
use faultline_node::protocol::{ClientRequest, ClientResponse};
use faultline_node::raft::Role;

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
        net: NetBackend::Kernel,
        hosts: None,
        disk: None,
    }
}

fn stats(tb: &Testbed) -> BTreeMap<(String, String), LinkStats> {
    tb.net
        .stats()
        .into_iter()
        .map(|l| ((l.from.clone(), l.to.clone()), l))
        .collect()
}

fn kernel(tb: &Testbed) -> &faultline_nemesis::net::kernel::KernelNet {
    match &tb.net {
        Net::Kernel(k) => k,
        Net::Proxy(_) | Net::Direct => panic!("the testbed does not run on the kernel network"),
    }
}

async fn call(tb: &Testbed, id: &str, req: ClientRequest) -> Option<ClientResponse> {
    let addr = tb.cluster.client_addr(id)?;
    let c = Client::connect(addr, Duration::from_secs(3)).await.ok()?;
    c.call(req).await.ok()
}

/// The node every other node of `among` follows, which says it leads.
async fn leader_among(tb: &Testbed, among: &[String]) -> Option<String> {
    let mut leader = None;
    for id in among {
        let s = tb.cluster.status(id, Duration::from_secs(1)).await.ok()?;
        match (&leader, s.leader) {
            (None, Some(l)) => leader = Some(l),
            (Some(a), Some(b)) if *a == b => {}
            _ => return None,
        }
    }
    let l = leader?;
    let s = tb.cluster.status(&l, Duration::from_secs(1)).await.ok()?;
    (s.role == Role::Leader && among.contains(&l)).then_some(l)
}

async fn a_partitioned_leader_is_replaced_and_no_acknowledged_write_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 1)).await.unwrap();
    let old = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    // Writes before the fault, acknowledged by the first leader.
    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..5 {
        let key = format!("before{i}");
        until("a write before the partition", || async {
            matches!(
                call(
                    &tb,
                    &old,
                    ClientRequest::Put {
                        key: key.clone(),
                        value: i
                    }
                )
                .await,
                Some(ClientResponse::Ok(_))
            )
        })
        .await;
        acked.insert(key, i);
    }
    let applied = tb.apply(&Fault::PartitionLeader).await.unwrap();
    assert_eq!(applied.nodes, vec![old.clone()]);
    let rest: Vec<String> = tb.cluster.ids().into_iter().filter(|i| *i != old).collect();
    until(
        "the majority elects a new leader over the bridge",
        || async { leader_among(&tb, &rest).await.is_some() },
    )
    .await;
    let new = leader_among(&tb, &rest).await.unwrap();
    assert_ne!(new, old);
    for i in 0..5 {
        let key = format!("during{i}");
        until("a write through the new leader", || async {
            matches!(
                call(
                    &tb,
                    &new,
                    ClientRequest::Put {
                        key: key.clone(),
                        value: 100 + i
                    }
                )
                .await,
                Some(ClientResponse::Ok(_))
            )
        })
        .await;
        acked.insert(key, 100 + i);
    }
    let before = stats(&tb);
    assert!(
        rest.iter()
            .any(|r| before[&(old.clone(), r.clone())].dropped > 0
                || before[&(r.clone(), old.clone())].dropped > 0),
        "the partition's rules dropped nothing: {before:?}"
    );
    tb.heal(&applied).await.unwrap();
    for id in tb.cluster.ids() {
        assert!(
            kernel(&tb).fault_rules(&id).unwrap().is_empty(),
            "rules left in {id}"
        );
    }
    until("one leader of all three after the heal", || async {
        leader_among(&tb, &tb.cluster.ids()).await.is_some()
    })
    .await;
    let leader = leader_among(&tb, &tb.cluster.ids()).await.unwrap();
    for (key, value) in &acked {
        let got = call(&tb, &leader, ClientRequest::Get { key: key.clone() }).await;
        assert!(
            matches!(got, Some(ClientResponse::Ok(Some(v))) if v == *value),
            "{key}: acknowledged {value}, read {got:?}"
        );
    }
    println!(
        "kernel_net: a partitioned leader is replaced and no acknowledged write is lost ... ok"
    );
}

async fn total_loss_of_one_node_stops_its_peer_traffic_and_the_counters_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 2)).await.unwrap();
    tb.cluster.wait_leader(DEADLINE).await.unwrap();
    let applied = tb
        .apply(&Fault::Loss {
            p: 1.0,
            target: Target::Node("n1".into()),
        })
        .await
        .unwrap();
    let start = stats(&tb);
    let touches_n1 = |(a, b): &(String, String)| a == "n1" || b == "n1";
    // n1 hears nothing, so it campaigns and its requests go nowhere; the
    // leader of the other two keeps sending to n1 (a follower of theirs may
    // have nothing to send n1).
    until(
        "packets from n1 to each node, and to n1, are dropped",
        || async {
            let now = stats(&tb);
            let grew = |k: &(String, String)| now[k].dropped > start[k].dropped;
            ["n2", "n3"]
                .iter()
                .all(|o| grew(&("n1".into(), o.to_string())))
                && ["n2", "n3"]
                    .iter()
                    .any(|o| grew(&(o.to_string(), "n1".into())))
        },
    )
    .await;
    let end = stats(&tb);
    for (k, l) in &end {
        if touches_n1(k) {
            assert_eq!(
                l.passed, start[k].passed,
                "{k:?} let packets in during total loss"
            );
            assert!(
                l.dropped == 0 || l.dropped_bytes > 0,
                "{k:?} counted no bytes dropped"
            );
        }
    }
    // n2 and n3 still talk to each other.
    until("n2 and n3 still exchange packets", || async {
        let now = stats(&tb);
        let k = ("n2".to_string(), "n3".to_string());
        now[&k].passed > end[&k].passed
    })
    .await;
    tb.heal(&applied).await.unwrap();
    until("n1 is heard again after the heal", || async {
        let now = stats(&tb);
        let k = ("n1".to_string(), "n2".to_string());
        now[&k].passed > end[&k].passed
    })
    .await;
    println!(
        "kernel_net: total loss of one node stops its peer traffic and the counters show it ... ok"
    );
}

async fn a_one_way_partition_blocks_only_its_direction_and_heal_removes_only_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 3)).await.unwrap();
    let leader = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    // A second fault underneath, on another link, to see that the heal of
    // the first leaves it.
    let loss = tb
        .apply(&Fault::Loss {
            p: 0.01,
            target: Target::Node(leader.clone()),
        })
        .await
        .unwrap();
    // Every node's rules, as (node, comment), in order.
    let rules = |tb: &Testbed| -> Vec<(String, String)> {
        tb.cluster
            .ids()
            .iter()
            .flat_map(|id| {
                let mut r: Vec<(String, String)> = kernel(tb)
                    .fault_rules(id)
                    .unwrap()
                    .into_iter()
                    .map(|c| (id.clone(), c))
                    .collect();
                r.sort();
                r
            })
            .collect()
    };
    let loss_only = rules(&tb);
    assert!(
        loss_only.iter().any(|(id, _)| *id == leader),
        "the loss left no rule in the leader's namespace: {loss_only:?}"
    );
    let one_way = tb.apply(&Fault::OneWayIn).await.unwrap();
    assert_eq!(one_way.nodes, vec![leader.clone()]);
    let start = stats(&tb);
    let others: Vec<String> = tb
        .cluster
        .ids()
        .into_iter()
        .filter(|i| *i != leader)
        .collect();
    until(
        "the leader's packets still arrive while nothing reaches it",
        || async {
            let now = stats(&tb);
            others.iter().all(|o| {
                let out = (leader.clone(), o.clone());
                let inn = (o.clone(), leader.clone());
                now[&out].passed > start[&out].passed && now[&inn].dropped > start[&inn].dropped
            })
        },
    )
    .await;
    let now = stats(&tb);
    for o in &others {
        let inn = (o.clone(), leader.clone());
        assert_eq!(
            now[&inn].passed, start[&inn].passed,
            "{inn:?} let packets in"
        );
    }
    let tags = |tb: &Testbed| -> Vec<String> {
        let mut all: Vec<String> = tb
            .cluster
            .ids()
            .iter()
            .flat_map(|id| kernel(tb).fault_rules(id).unwrap())
            .collect();
        all.sort();
        all.dedup();
        all
    };
    assert_eq!(
        tags(&tb),
        vec![
            format!("fault-{}", loss.tag),
            format!("fault-{}", one_way.tag)
        ]
    );
    tb.heal(&one_way).await.unwrap();
    // Exactly the loss's rules are left, in every namespace (the leader's,
    // which held both faults' rules, included).
    assert_eq!(rules(&tb), loss_only);
    tb.heal(&loss).await.unwrap();
    assert!(tags(&tb).is_empty());
    println!("kernel_net: a one-way partition blocks only its direction; a heal removes only its rules ... ok");
}

async fn a_crashed_node_restarts_in_its_namespace_and_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = Testbed::start(&spec(dir.path(), 4)).await.unwrap();
    let leader = tb.cluster.wait_leader(DEADLINE).await.unwrap();
    let crash = tb
        .apply(&Fault::Crash {
            target: Target::Leader,
        })
        .await
        .unwrap();
    assert_eq!(crash.nodes, vec![leader.clone()]);
    let rest: Vec<String> = tb
        .cluster
        .ids()
        .into_iter()
        .filter(|i| *i != leader)
        .collect();
    until("a new leader while the old one is down", || async {
        leader_among(&tb, &rest).await.is_some()
    })
    .await;
    tb.heal(&crash).await.unwrap();
    until("the restarted node follows the new leader", || async {
        tb.cluster
            .status(&leader, Duration::from_secs(1))
            .await
            .is_ok_and(|s| s.leader.is_some() && s.role == Role::Follower)
    })
    .await;
    println!("kernel_net: a crashed node restarts in its namespace and rejoins ... ok");
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases = [
        "a_partitioned_leader_is_replaced_and_no_acknowledged_write_is_lost",
        "total_loss_of_one_node_stops_its_peer_traffic_and_the_counters_show_it",
        "a_one_way_partition_blocks_only_its_direction_and_heal_removes_only_its_rules",
        "a_crashed_node_restarts_in_its_namespace_and_rejoins",
    ];
    if args.iter().any(|a| a == "--list") {
        // `cargo test -- --list` asks every test binary for its tests.
        for c in cases {
            println!("{c}: test");
        }
        return ExitCode::SUCCESS;
    }
    // `cargo test NAME` passes NAME on: run only the cases it names.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = |c: &str| filters.is_empty() || filters.iter().any(|f| c.contains(f.as_str()));
    if !cases.iter().any(|c| wanted(c)) {
        return ExitCode::SUCCESS;
    }
    if !common::kernel_backend_available("kernel_net") {
        return ExitCode::SUCCESS;
    }
    if let Err(e) = faultline_nemesis::net::kernel::netns::enter_private_network() {
        eprintln!("kernel_net: cannot enter a network namespace of its own: {e}");
        return ExitCode::FAILURE;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if wanted(cases[0]) {
            a_partitioned_leader_is_replaced_and_no_acknowledged_write_is_lost().await;
        }
        if wanted(cases[1]) {
            total_loss_of_one_node_stops_its_peer_traffic_and_the_counters_show_it().await;
        }
        if wanted(cases[2]) {
            a_one_way_partition_blocks_only_its_direction_and_heal_removes_only_its_rules().await;
        }
        if wanted(cases[3]) {
            a_crashed_node_restarts_in_its_namespace_and_rejoins().await;
        }
    });
    ExitCode::SUCCESS
}
