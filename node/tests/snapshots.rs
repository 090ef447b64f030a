//! Snapshots and log compaction (Raft §7) on the deterministic simulated
//! network, at tiny thresholds so that they happen constantly. The cluster
//! checks the Raft safety properties after every step, and checks every
//! installed snapshot against the committed prefix; it panics with the
//! seed on a violation.
//!
//! Replay one seed of the randomized test:
//! `FAULTLINE_SEED=N cargo test -p faultline-node --test snapshots random`.

use std::collections::BTreeSet;

use faultline_node::raft::{Config, MembershipChange, ProposeError, RefusalKind};
use faultline_node::sim::seeds::{run_seeds, seeds, Seeds};
use faultline_node::sim::{Cluster, DiskMode, NetConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A snapshot every 5 applied entries, none kept behind, 3-byte chunks (the
/// simulated state machine is 16 bytes: six chunks per snapshot).
fn tiny() -> Config {
    Config {
        snapshot_entries: 5,
        snapshot_trailing: 0,
        snapshot_chunk_bytes: 3,
        ..Cluster::fast_config()
    }
}

/// Propose `n` commands through whoever leads, ticking in between; returns
/// the highest index proposed.
fn write(c: &mut Cluster, n: usize, tag: &str) -> u64 {
    let mut last = 0;
    let mut done = 0;
    for t in 0..n * 50 + 1000 {
        if done == n {
            break;
        }
        if let Some(l) = c.stable_leader() {
            if let Ok((i, _)) = c.propose(&l, format!("{tag}-{t}").into_bytes()) {
                last = i;
                done += 1;
            }
        }
        c.tick();
    }
    assert_eq!(done, n, "seed {}: only {done} of {n} proposed", c.seed());
    last
}

/// Propose through whoever leads until one command is applied in the term
/// it was proposed and every live server committed it (a proposal to a
/// leader that is deposed before it commits is retried).
fn commit_everywhere(c: &mut Cluster, tag: &str, max_ticks: u64) -> bool {
    let deadline = c.now() + max_ticks;
    while c.now() < deadline {
        if let Some(l) = c.stable_leader() {
            if let Ok((i, t)) = c.propose(&l, tag.as_bytes().to_vec()) {
                c.run_until(300, |c| {
                    c.committed_everywhere(i) || c.applied_term(i).is_some_and(|x| x != t)
                });
                if c.applied_term(i) == Some(t) && c.committed_everywhere(i) {
                    return true;
                }
            }
        }
        c.tick();
    }
    false
}

#[test]
fn a_follower_that_missed_several_snapshots_catches_up_by_installing_one() {
    let mut c = Cluster::new(3, tiny(), 11);
    let l = c.run_until_leader(500).expect("a leader");
    let f = c.ids().iter().find(|id| **id != l).unwrap().clone();
    c.crash(&f);
    let last = write(&mut c, 40, "x");
    assert!(c.run_until(500, |c| c.raft(&l).unwrap().commit_index() >= last));
    let leader_log = c.raft(&l).unwrap().log();
    assert!(
        leader_log.first_index() > 20,
        "the leader compacted: its log starts at {}",
        leader_log.first_index()
    );
    assert!(c.snapshot_counts(&l).0 >= 5, "{:?}", c.snapshot_counts(&l));
    c.restart(&f);
    assert!(c.run_until(2000, |c| c.committed_everywhere(last)));
    assert!(
        c.snapshot_counts(&f).1 >= 1,
        "{f} caught up without a snapshot: {:?}",
        c.snapshot_counts(&f)
    );
    let r = c.raft(&f).unwrap();
    assert!(r.status().snapshot_index > 0);
    assert!(r.log().first_index() > 1, "{f} holds only the tail");
    // After a restart it starts from its stored snapshot and replays only
    // the tail.
    c.crash(&f);
    c.restart(&f);
    let (snap, _) = c.stored_snapshot(&f).expect("stored");
    assert_eq!(c.raft(&f).unwrap().commit_index(), snap);
    assert!(c.persisted_log(&f).iter().all(|e| e.index > snap - 1));
    let more = write(&mut c, 10, "y");
    assert!(c.run_until(2000, |c| c.committed_everywhere(more)));
}

#[test]
fn installs_survive_loss_duplication_reordering_and_crashes_mid_transfer() {
    for seed in 0..30 {
        let mut c = Cluster::new(3, tiny(), seed);
        c.net = NetConfig {
            drop: 0.15,
            duplicate: 0.1,
            delay_min: 1,
            delay_max: 8,
        };
        c.disk = DiskMode::Background { max_delay: 4 };
        let l = c.run_until_leader(2000).expect("a leader");
        let f = c.ids().iter().find(|id| **id != l).unwrap().clone();
        c.isolate(&f);
        write(&mut c, 30, "a");
        c.heal();
        // Crash the follower over and over while the chunks are in flight.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..5 {
            c.run(rng.gen_range(1..12));
            c.crash(&f);
            c.run(rng.gen_range(1..5));
            c.restart(&f);
        }
        assert!(
            commit_everywhere(&mut c, "b", 5000),
            "seed {seed}: {f} never caught up"
        );
    }
}

#[test]
fn a_crash_before_a_snapshot_is_durable_restarts_from_the_one_before() {
    for seed in 0..20 {
        let mut c = Cluster::new(3, tiny(), seed);
        // Writes take up to 10 ticks: a crash right after a snapshot is
        // taken loses it (and the compaction) together.
        c.disk = DiskMode::Background { max_delay: 10 };
        c.run_until_leader(2000).expect("a leader");
        let mut crashed = 0;
        for round in 0..60 {
            write(&mut c, 1, &format!("r{round}"));
            for id in c.ids().to_vec() {
                let taken = c.snapshot_counts(&id).0;
                let stored = c.stored_snapshot(&id).map_or(0, |s| s.0);
                let in_core = c.raft(&id).map_or(0, |r| r.status().snapshot_index);
                if taken > 0 && in_core > stored {
                    // Taken, not yet on disk: crash now.
                    c.crash(&id);
                    c.restart(&id);
                    crashed += 1;
                }
            }
        }
        assert!(
            crashed > 0,
            "seed {seed}: never caught a snapshot in flight"
        );
        assert!(commit_everywhere(&mut c, "end", 5000), "seed {seed}");
    }
}

#[test]
fn a_change_in_progress_travels_in_snapshots_to_a_server_that_needs_it() {
    let set = |ids: &[&str]| -> BTreeSet<String> { ids.iter().map(|s| s.to_string()).collect() };
    let mut c = Cluster::new(3, tiny(), 3);
    let l = c.run_until_leader(500).expect("a leader");
    c.add_server("n4");
    c.isolate("n4");
    let add = MembershipChange {
        add: [("n4".to_string(), "127.0.0.1:1".to_string())].into(),
        remove: set(&["n3"]),
    };
    let deadline = c.now() + 500;
    loop {
        match c.propose_membership(&l, &add) {
            Ok(_) => break,
            Err(ProposeError::Membership(e)) if e.kind == RefusalKind::Busy => c.tick(),
            Err(e) => panic!("{e:?}"),
        }
        assert!(c.now() < deadline);
    }
    // Many snapshots while n4 is a learner that cannot catch up: the
    // snapshots record the configuration with the learner.
    let last = write(&mut c, 30, "l");
    assert!(c.run_until(500, |c| c.raft(&l).unwrap().commit_index() >= last));
    let snap = c.raft(&l).unwrap().snapshot().unwrap().meta.clone();
    assert_eq!(snap.membership.learners, set(&["n4"]), "{snap:?}");
    assert!(c.raft(&l).unwrap().log().first_index() > snap.membership_index);
    // n4 comes in: it can only get the configuration from the snapshot.
    c.heal();
    let four = set(&["n1", "n2", "n4"]);
    assert!(
        c.run_until(3000, |c| {
            c.raft("n4")
                .is_some_and(|r| r.status().snapshots_installed > 0)
                && c.stable_leader().is_some_and(|l| {
                    let r = c.raft(&l).unwrap();
                    let m = r.membership();
                    !m.in_transition()
                        && m.config.incoming == four
                        && r.membership_index() <= r.commit_index()
                })
        }),
        "the change did not complete through the snapshot"
    );
    let r = c.raft("n4").unwrap();
    assert_eq!(r.membership().config.incoming, four);
}

/// Random faults, crashes, restarts and membership-free load with
/// snapshots at random tiny thresholds, over many seeds.
fn random_run(seed: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5A5A);
    let n = [3, 5][rng.gen_range(0..2)];
    let config = Config {
        snapshot_entries: rng.gen_range(1..8),
        snapshot_trailing: rng.gen_range(0..3),
        snapshot_chunk_bytes: rng.gen_range(1..17),
        pre_vote: rng.gen_bool(0.5),
        max_entries_per_message: rng.gen_range(1..6),
        ..Cluster::fast_config()
    };
    let mut c = Cluster::new(n, config, seed);
    c.net = NetConfig::lossy();
    if rng.gen_bool(0.5) {
        c.disk = DiskMode::Background {
            max_delay: rng.gen_range(0..8),
        };
    }
    let ids = c.ids().to_vec();
    for step in 0..50 {
        match rng.gen_range(0..8) {
            0 => c.isolate(&ids[rng.gen_range(0..n)]),
            1 => c.heal(),
            2 => c.crash(&ids[rng.gen_range(0..n)]),
            3 => {
                for id in &ids {
                    c.restart(id);
                }
            }
            _ => {}
        }
        for k in 0..rng.gen_range(0..5) {
            if let Some(l) = c.leader() {
                let _ = c.propose(&l, format!("{step}-{k}").into_bytes());
            }
        }
        c.run(rng.gen_range(1..20));
    }
    c.heal();
    for id in &ids {
        c.restart(id);
    }
    c.net = NetConfig::reliable();
    assert!(
        commit_everywhere(&mut c, "live", 5000),
        "seed {seed}: not every server caught up after healing: {:#?}",
        ids.iter()
            .map(|id| c.raft(id).map(|r| (
                r.status(),
                r.progress("n1").cloned(),
                r.progress("n2").cloned(),
                r.progress("n3").cloned()
            )))
            .collect::<Vec<_>>()
    );
    ids.iter().map(|id| c.snapshot_counts(id).1).sum()
}

/// Seeds that once found a bug, replayed on every run: 4313 found an
/// "already have it" answer to a snapshot sent before the write that gave
/// the follower its commit index was durable.
#[test]
fn seeds_that_found_bugs_stay_clean() {
    random_run(4313);
}

#[test]
fn randomized_snapshots_stay_safe_over_many_seeds() {
    let n = match seeds(1000) {
        Seeds::Replay(seed) => {
            println!("snapshots installed: {}", random_run(seed));
            return;
        }
        Seeds::Range(n) => n,
    };
    let runs = run_seeds(n, "--test snapshots random", random_run);
    let installed = runs.iter().filter(|i| **i > 0).count() as u64;
    assert!(
        installed * 2 >= n,
        "only {installed} of {n} runs installed a snapshot"
    );
}
