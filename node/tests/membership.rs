//! Membership changes by joint consensus on the deterministic simulated
//! network. The cluster checks the Raft safety properties after every step
//! and panics with the seed on a violation.
//!
//! Replay one seed: `FAULTLINE_SEED=N cargo test -p faultline-node --test membership random`.

use std::collections::BTreeSet;

use faultline_node::raft::{MembershipChange, ProposeError, RefusalKind, Role};
use faultline_node::sim::seeds::{run_seeds, seeds, Seeds};
use faultline_node::sim::{Cluster, DiskMode, NetConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn change(add: &[&str], remove: &[&str]) -> MembershipChange {
    MembershipChange {
        add: add
            .iter()
            .map(|id| (id.to_string(), "127.0.0.1:1".to_string()))
            .collect(),
        remove: remove.iter().map(|id| id.to_string()).collect(),
    }
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Whether the current leader's configuration is `voters`, committed, with
/// no change under way.
fn settled_on(c: &Cluster, voters: &BTreeSet<String>) -> bool {
    let Some(l) = c.stable_leader() else {
        return false;
    };
    let r = c.raft(&l).expect("live leader");
    let m = r.membership();
    !m.in_transition()
        && m.config.incoming == *voters
        && r.membership_index() <= r.commit_index()
        && r.membership_index() > 0
}

/// Ask whoever leads for `ch` until it is accepted; returns its index.
fn request(c: &mut Cluster, ch: &MembershipChange, max_ticks: u64) -> u64 {
    let deadline = c.now() + max_ticks;
    while c.now() < deadline {
        if let Some(l) = c.stable_leader() {
            match c.propose_membership(&l, ch) {
                Ok(i) => return i,
                Err(ProposeError::Membership(e)) if e.kind == RefusalKind::Busy => {}
                Err(e) => panic!("change refused: {e:?}"),
            }
        }
        c.tick();
    }
    panic!(
        "seed {}: no leader accepted {ch:?} within {max_ticks} ticks",
        c.seed()
    );
}

/// Propose commands at whoever leads, every few ticks, for `ticks` ticks.
fn run_with_load(c: &mut Cluster, ticks: u64, tag: &str) {
    for t in 0..ticks {
        if t % 5 == 0 {
            if let Some(l) = c.leader() {
                let _ = c.propose(&l, format!("{tag}-{t}").into_bytes());
            }
        }
        c.tick();
    }
}

#[test]
fn grow_three_to_five_and_back_under_loss() {
    for seed in 0..10 {
        let mut c = Cluster::new(3, Cluster::fast_config(), seed);
        c.net = NetConfig::lossy();
        c.run_until_leader(500).expect("a leader");
        c.add_server("n4");
        c.add_server("n5");
        request(&mut c, &change(&["n4", "n5"], &[]), 500);
        let five = set(&["n1", "n2", "n3", "n4", "n5"]);
        let mut done = false;
        for _ in 0..60 {
            run_with_load(&mut c, 50, "grow");
            if settled_on(&c, &five) {
                done = true;
                break;
            }
        }
        assert!(done, "seed {seed}: 3 -> 5 did not complete");
        // The new servers hold the whole log and vote now.
        for id in ["n4", "n5"] {
            assert!(c.raft(id).unwrap().configuration().contains(id));
        }
        request(&mut c, &change(&[], &["n4", "n5"]), 500);
        let three = set(&["n1", "n2", "n3"]);
        assert!(
            c.run_until(3000, |c| settled_on(c, &three)),
            "seed {seed}: 5 -> 3 did not complete"
        );
    }
}

#[test]
fn replacing_the_leader_makes_it_step_down_and_the_rest_carry_on() {
    for seed in 0..10 {
        let mut c = Cluster::new(3, Cluster::fast_config(), seed);
        c.net = NetConfig::lossy();
        let old = c.run_until_leader(500).expect("a leader");
        c.add_server("n4");
        let remaining: Vec<String> = ["n1", "n2", "n3", "n4"]
            .iter()
            .filter(|id| **id != old)
            .map(|s| s.to_string())
            .collect();
        let ch = MembershipChange {
            remove: set(&[old.as_str()]),
            ..change(&["n4"], &[])
        };
        request(&mut c, &ch, 500);
        let target: BTreeSet<String> = remaining.iter().cloned().collect();
        let mut done = false;
        for _ in 0..100 {
            run_with_load(&mut c, 30, "replace");
            if settled_on(&c, &target) {
                done = true;
                break;
            }
        }
        assert!(done, "seed {seed}: replacing the leader did not complete");
        let new = c.stable_leader().unwrap();
        assert_ne!(new, old, "seed {seed}");
        assert_ne!(
            c.raft(&old).unwrap().role(),
            Role::Leader,
            "seed {seed}: the removed leader stepped down"
        );
        // Commands keep committing without the old leader.
        let (index, _) = c.propose(&new, b"after".to_vec()).unwrap();
        assert!(c.run_until(1000, |c| remaining
            .iter()
            .filter(|id| c.raft(id).unwrap().commit_index() >= index)
            .count()
            >= 2));
    }
}

#[test]
fn a_learner_that_cannot_catch_up_never_stalls_commits_and_can_be_dropped() {
    let mut c = Cluster::new(3, Cluster::fast_config(), 5);
    let l = c.run_until_leader(500).unwrap();
    c.add_server("n4");
    c.isolate("n4");
    request(&mut c, &change(&["n4"], &[]), 200);
    // Commits go on with the old voters while n4 is unreachable.
    for i in 0..5 {
        let (index, _) = c.propose(&l, format!("x{i}").into_bytes()).unwrap();
        assert!(c.run_until(200, |c| c.raft(&l).unwrap().commit_index() >= index));
    }
    let m = c.raft(&l).unwrap().membership().clone();
    assert_eq!(m.learners, set(&["n4"]), "n4 is still a learner");
    assert!(!m.is_joint(), "no joint step before the learner caught up");
    // A second change is refused while this one is under way...
    match c.propose_membership(&l, &change(&[], &["n3"])) {
        Err(ProposeError::Membership(e)) if e.kind == RefusalKind::Busy => {
            let msg = e.message;
            assert!(msg.contains("one change at a time"), "{msg}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // ...but dropping the learner is allowed, and ends the change.
    c.propose_membership(&l, &change(&[], &["n4"])).unwrap();
    let three = set(&["n1", "n2", "n3"]);
    assert!(c.run_until(500, |c| settled_on(c, &three)));
    assert!(c.raft(&l).unwrap().progress("n4").is_none());
}

#[test]
fn a_removed_server_left_running_does_not_disrupt_the_cluster() {
    let mut c = Cluster::new(4, Cluster::fast_config(), 11);
    let l = c.run_until_leader(500).unwrap();
    let victim = c.ids().iter().find(|id| **id != l).cloned().unwrap();
    request(&mut c, &change(&[], &[victim.as_str()]), 200);
    let target: BTreeSet<String> = c
        .ids()
        .iter()
        .filter(|id| **id != victim)
        .cloned()
        .collect();
    assert!(c.run_until(1000, |c| settled_on(c, &target)));
    let term = c.raft(&l).unwrap().term();
    // The removed server hears nothing more, times out and campaigns again
    // and again; nobody listens while the leader is heard from.
    c.run(2000);
    assert_eq!(c.stable_leader().as_deref(), Some(l.as_str()));
    assert_eq!(
        c.raft(&l).unwrap().term(),
        term,
        "the leader was never deposed"
    );
    assert!(
        c.raft(&victim).unwrap().term() > term,
        "the removed server did campaign"
    );
}

#[test]
fn the_one_step_variant_splits_the_brain_where_joint_consensus_does_not() {
    // Leader n1 is cut off together with two fresh servers; it is asked to
    // grow the cluster to five. In one step, n1 + n4 + n5 are a majority of
    // the new five while n2 + n3 are a majority of the old three.
    let scenario = |one_step: bool, seed: u64| {
        let mut config = Cluster::fast_config();
        config.unsafe_one_step_membership = one_step;
        let mut c = Cluster::new(3, config, seed);
        let l = c.run_until_leader(500).unwrap();
        let (i, _) = c.propose(&l, b"before".to_vec()).unwrap();
        assert!(c.run_until(200, |c| c.committed_everywhere(i)));
        c.add_server("n4");
        c.add_server("n5");
        let others: Vec<String> = ["n1", "n2", "n3"]
            .iter()
            .filter(|id| **id != l)
            .map(|s| s.to_string())
            .collect();
        let side_a = [l.as_str(), "n4", "n5"];
        let side_b: Vec<&str> = others.iter().map(String::as_str).collect();
        c.partition(&[&side_a, &side_b]);
        let _ = c.propose_membership(&l, &change(&["n4", "n5"], &[]));
        for t in 0..1500u64 {
            if t % 7 == 0 {
                for id in c.ids().to_vec() {
                    if c.raft(&id).is_some_and(|r| r.role() == Role::Leader) {
                        let _ = c.propose(&id, format!("{id}-{t}").into_bytes());
                    }
                }
            }
            c.tick();
        }
        c.heal();
        c.run(1000);
    };
    for seed in 0..5 {
        scenario(false, seed); // joint consensus: safe
    }
    let caught = (0..5)
        .filter(|seed| {
            std::panic::catch_unwind(|| scenario(true, *seed))
                .err()
                .and_then(|p| p.downcast_ref::<String>().cloned())
                .is_some_and(|msg| msg.contains("safety violation"))
        })
        .count();
    assert_eq!(caught, 5, "the one-step variant breaks safety every time");
}

/// Every server's view, for failure messages.
fn describe(c: &Cluster) -> String {
    let mut out = String::new();
    for id in c.ids() {
        if let Some(r) = c.raft(id) {
            out.push_str(&format!(
                "\n  {id}: {:?} term {} leader {:?} commit {} last {} config@{} {}",
                r.role(),
                r.term(),
                r.leader(),
                r.commit_index(),
                r.log().last_index(),
                r.membership_index(),
                r.membership().describe()
            ));
        }
    }
    out
}

/// Random membership changes, partitions, crashes and loss, with the safety
/// properties checked at every step; at the end the network heals and one
/// last change must complete.
fn random_run(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3E3B);
    // Every other seed takes snapshots at tiny thresholds, so that
    // configurations (joint, with learners) travel in InstallSnapshot.
    let config = if seed % 2 == 1 {
        faultline_node::raft::Config {
            snapshot_entries: 3,
            snapshot_trailing: seed % 3,
            snapshot_chunk_bytes: 5,
            ..Cluster::fast_config()
        }
    } else {
        Cluster::fast_config()
    };
    let mut c = Cluster::new(3, config, seed);
    c.net = NetConfig::lossy();
    if rng.gen_bool(0.5) {
        c.disk = DiskMode::Background {
            max_delay: rng.gen_range(0..6),
        };
    }
    let mut next_id = 4;
    for step in 0..40 {
        // Load.
        if let Some(l) = c.leader() {
            let _ = c.propose(&l, format!("s{step}").into_bytes());
        }
        match rng.gen_range(0..10) {
            0..=3 => {
                if let Some(l) = c.stable_leader() {
                    let voters: Vec<String> = c
                        .raft(&l)
                        .unwrap()
                        .configuration()
                        .incoming
                        .iter()
                        .cloned()
                        .collect();
                    // Changes of one or two servers at once, and replacements:
                    // with two at a time only joint consensus keeps majorities
                    // overlapping.
                    let k = rng.gen_range(1..=2usize);
                    let mut add = Vec::new();
                    let mut remove = Vec::new();
                    let kind = rng.gen_range(0..3);
                    if kind != 1 || voters.len() < 3 + k {
                        for _ in 0..k {
                            let id = format!("n{next_id}");
                            next_id += 1;
                            c.add_server(&id);
                            add.push(id);
                        }
                    }
                    if kind != 0 && voters.len() + add.len() >= 3 + k {
                        let mut v = voters.clone();
                        for _ in 0..k {
                            remove.push(v.swap_remove(rng.gen_range(0..v.len())));
                        }
                    }
                    let add: Vec<&str> = add.iter().map(String::as_str).collect();
                    let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
                    let _ = c.propose_membership(&l, &change(&add, &remove));
                }
            }
            4 => {
                // A random split into two sides.
                let ids = c.ids().to_vec();
                let side: Vec<&str> = ids
                    .iter()
                    .filter(|_| rng.gen_bool(0.5))
                    .map(String::as_str)
                    .collect();
                let rest: Vec<&str> = ids
                    .iter()
                    .map(String::as_str)
                    .filter(|id| !side.contains(id))
                    .collect();
                c.partition(&[&side, &rest]);
            }
            5 => {
                let ids = c.ids().to_vec();
                let id = ids[rng.gen_range(0..ids.len())].clone();
                c.crash(&id);
                c.run(rng.gen_range(5..40));
                c.restart(&id);
            }
            _ => c.heal(),
        }
        c.run(rng.gen_range(10..80));
    }
    // Liveness after the storm: heal, restart everyone, finish any change
    // under way, then one more change must complete.
    c.heal();
    for id in c.ids().to_vec() {
        c.restart(&id);
    }
    c.net = NetConfig::reliable();
    let settled = c.run_until(5000, |c| {
        c.stable_leader().is_some_and(|l| {
            let r = c.raft(&l).unwrap();
            !r.membership().in_transition() && r.membership_index() <= r.commit_index()
        })
    });
    assert!(
        settled,
        "seed {seed}: no leader with a settled configuration: {}",
        describe(&c)
    );
    let id = format!("n{next_id}");
    c.add_server(&id);
    // An accepted change can still be lost with its leader (its entry was
    // not committed); like any client, ask again until it takes.
    let mut done = false;
    for _ in 0..5 {
        request(&mut c, &change(&[id.as_str()], &[]), 2000);
        done = c.run_until(3000, |c| {
            c.stable_leader().is_some_and(|l| {
                let r = c.raft(&l).unwrap();
                let m = r.membership();
                (m.config.incoming.contains(&id) && !m.in_transition())
                    || (!m.members().contains(&id) && !m.in_transition())
            })
        });
        let l = c.stable_leader();
        if done && l.is_some_and(|l| c.raft(&l).unwrap().configuration().incoming.contains(&id)) {
            break;
        }
        done = false;
    }
    assert!(
        done,
        "seed {seed}: the last change did not complete: {}",
        describe(&c)
    );
}

#[test]
fn random_membership_changes_under_faults_stay_safe() {
    match seeds(200) {
        Seeds::Replay(seed) => random_run(seed),
        Seeds::Range(n) => {
            run_seeds(n, "--test membership random", random_run);
        }
    }
}
