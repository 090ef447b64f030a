//! The classic Raft scenarios on the deterministic simulated network, and a
//! randomized run over many seeds. The cluster checks the five safety
//! properties after every step and panics with the seed on a violation.
//!
//! Replay one seed: `FAULTLINE_SEED=N cargo test -p faultline-node --test simulation randomized`.
//! More seeds: `FAULTLINE_SIM_SEEDS=20000 cargo test ...`.
//!
//! Over 600 lines: the scenarios share one harness and read as a list of
//! what the cluster must survive.

use faultline_node::raft::{Config, EntryData, Role};
use faultline_node::sim::seeds::{run_seeds, seeds, Seeds};
use faultline_node::sim::{Cluster, DiskMode, NetConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cluster(n: usize, seed: u64) -> Cluster {
    Cluster::new(n, Cluster::fast_config(), seed)
}

fn committed_on_majority(c: &Cluster, index: u64) -> bool {
    let n = c
        .ids()
        .iter()
        .filter(|id| c.raft(id).is_some_and(|r| r.commit_index() >= index))
        .count();
    n > c.ids().len() / 2
}

/// Propose through whoever leads until a majority has committed it.
fn commit_one(c: &mut Cluster, data: &[u8], max_ticks: u64) -> Option<u64> {
    let deadline = c.now() + max_ticks;
    while c.now() < deadline {
        if let Some(l) = c.stable_leader() {
            if let Ok((index, term)) = c.propose(&l, data.to_vec()) {
                let ok = c.run_until(200, |c| {
                    committed_on_majority(c, index)
                        || c.raft(&l)
                            .is_none_or(|r| r.term() != term || r.role() != Role::Leader)
                });
                if ok && committed_on_majority(c, index) && c.applied_term(index) == Some(term) {
                    return Some(index);
                }
            }
        }
        c.tick();
    }
    None
}

#[test]
fn initial_election() {
    for seed in 0..20 {
        let mut c = cluster(3, seed);
        let l = c.run_until_leader(200).expect("a leader within 200 ticks");
        let term = c.raft(&l).unwrap().term();
        for id in c.ids().to_vec() {
            assert_eq!(c.raft(&id).unwrap().term(), term, "seed {seed}");
        }
        // With no failures the leader stays.
        c.run(200);
        assert_eq!(c.leader(), Some(l), "seed {seed}");
    }
}

#[test]
fn followers_report_how_long_their_leader_has_been_silent() {
    let mut c = cluster(3, 4);
    let l = c.run_until_leader(200).unwrap();
    c.run(20);
    let silence = |c: &Cluster, id: &str| c.raft(id).unwrap().status().leader_silence_ticks;
    assert_eq!(silence(&c, &l), Some(0));
    // The leader counts the ticks it has led; nobody else says it leads.
    let led = c.raft(&l).unwrap().status().leading_ticks.unwrap();
    c.run(5);
    if c.leader().as_ref() == Some(&l) {
        assert_eq!(c.raft(&l).unwrap().status().leading_ticks, Some(led + 5));
    }
    let followers: Vec<_> = c.ids().iter().filter(|id| **id != l).cloned().collect();
    // Heartbeats every 3 ticks (and delivery within a few) keep it short.
    for f in &followers {
        assert_eq!(c.raft(f).unwrap().status().leading_ticks, None);
        let s = silence(&c, f).expect("a follower knows its leader");
        assert!(s <= 6, "{f} silent for {s} ticks");
    }
    // Cut off from the leader, a follower's silence grows tick by tick
    // until its election timeout (at least 10 ticks) ends its belief.
    let f = &followers[0];
    c.isolate(f);
    c.run(3); // what was already on its way arrives
    let mut last = silence(&c, f).unwrap();
    for _ in 0..100 {
        c.run(1);
        match silence(&c, f) {
            Some(s) => {
                assert_eq!(s, last + 1, "{f} heard from a leader it is cut off from");
                last = s;
            }
            None => break,
        }
    }
    assert!(
        last >= 9,
        "{f} gave up its leader after {last} silent ticks"
    );
    assert_eq!(silence(&c, f), None);
}

#[test]
fn reelection_after_the_leader_is_cut_off() {
    let mut c = cluster(3, 1);
    let old = c.run_until_leader(200).unwrap();
    c.isolate(&old);
    let new = c.run_until(300, |c| c.stable_leader().is_some_and(|l| l != old));
    assert!(new, "the majority elects a new leader");
    let new = c.stable_leader().unwrap();
    // The old leader rejoins: it must not disturb the new leader, and follows.
    c.heal();
    assert!(c.run_until(300, |c| {
        c.raft(&old)
            .is_some_and(|r| r.role() == Role::Follower && r.leader().is_some())
    }));
    assert!(c.stable_leader().is_some());
    let _ = new;
}

#[test]
fn no_leader_is_elected_without_a_majority() {
    let mut c = cluster(5, 2);
    let l = c.run_until_leader(300).unwrap();
    // Cut the leader and two others off: nobody has a majority.
    let others: Vec<_> = c.ids().iter().filter(|i| **i != l).cloned().collect();
    c.isolate(&l);
    c.isolate(&others[0]);
    c.isolate(&others[1]);
    c.run(50);
    let lead_term = c.raft(&l).unwrap().term();
    c.run(1000);
    for id in c.ids().to_vec() {
        let r = c.raft(&id).unwrap();
        if r.role() == Role::Leader {
            assert_eq!(id, l, "only the old leader may still believe it leads");
            assert_eq!(r.term(), lead_term);
        }
    }
    c.heal();
    assert!(c.run_until_leader(1000).is_some());
}

#[test]
fn many_elections_under_churn() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut c = cluster(7, 3);
    let mut leaders = 0;
    for round in 0..60 {
        c.heal();
        for _ in 0..rng.gen_range(0..4) {
            let a = format!("n{}", rng.gen_range(1..=7));
            c.isolate(&a);
        }
        c.run(rng.gen_range(10..60));
        if c.stable_leader().is_some() {
            leaders += 1;
        }
        if round % 10 == 0 {
            c.heal();
            assert!(c.run_until_leader(1000).is_some(), "round {round}");
        }
    }
    assert!(leaders > 10, "only {leaders} rounds had a leader");
}

#[test]
fn basic_agreement() {
    let mut c = cluster(5, 4);
    for i in 0..20u8 {
        let index = commit_one(&mut c, &[i], 500).expect("commits");
        for id in c.ids().to_vec() {
            let applied = c.applied(&id);
            assert!(applied.len() as u64 >= index);
        }
    }
}

#[test]
fn agreement_despite_a_failed_follower() {
    let mut c = cluster(3, 5);
    let l = c.run_until_leader(200).unwrap();
    commit_one(&mut c, b"a", 500).unwrap();
    let f = c.ids().iter().find(|i| **i != l).unwrap().clone();
    c.crash(&f);
    let i = commit_one(&mut c, b"b", 500).expect("two of three commit");
    c.restart(&f);
    assert!(
        c.run_until(500, |c| c.committed_everywhere(i)),
        "the restarted follower catches up"
    );
}

#[test]
fn no_commit_without_a_majority() {
    let mut c = cluster(5, 6);
    let l = c.run_until_leader(300).unwrap();
    commit_one(&mut c, b"a", 500).unwrap();
    let followers: Vec<_> = c.ids().iter().filter(|i| **i != l).cloned().collect();
    for f in &followers[..3] {
        c.crash(f);
    }
    let (index, _) = c.propose(&l, b"b".to_vec()).unwrap();
    c.run(500);
    assert!(c.raft(&l).unwrap().commit_index() < index);
    for f in &followers[..3] {
        c.restart(f);
    }
    assert!(c.run_until(1000, |c| c.committed_anywhere(index)
        || c.committed_everywhere(index)));
}

#[test]
fn an_old_leader_rejoining_has_its_uncommitted_entries_overwritten() {
    let mut c = cluster(5, 7);
    let old = c.run_until_leader(300).unwrap();
    commit_one(&mut c, b"base", 500).unwrap();
    c.isolate(&old);
    let mut stale = Vec::new();
    for i in 0..5u8 {
        stale.push(c.propose(&old, vec![100 + i]).unwrap().0);
    }
    assert!(c.run_until(500, |c| c.stable_leader().is_some_and(|l| l != old)));
    for i in 0..3u8 {
        commit_one(&mut c, &[i], 500).unwrap();
    }
    c.heal();
    let last = commit_one(&mut c, b"after", 1000).unwrap();
    assert!(c.run_until(1000, |c| c.committed_everywhere(last)));
    // None of the stale entries survived in the old leader's log.
    let log = c.persisted_log(&old);
    for e in log {
        if let EntryData::Command(d) = &e.data {
            assert!(
                d.first().is_none_or(|b| *b < 100),
                "stale entry {e:?} survived"
            );
        }
    }
}

#[test]
fn fast_backoff_over_fifty_divergent_entries() {
    let mut c = cluster(3, 8);
    let old = c.run_until_leader(200).unwrap();
    commit_one(&mut c, b"base", 500).unwrap();
    c.isolate(&old);
    for i in 0..50u8 {
        c.propose(&old, vec![200, i]).unwrap();
    }
    assert!(c.run_until(500, |c| c.stable_leader().is_some_and(|l| l != old)));
    let new = c.stable_leader().unwrap();
    for i in 0..50u8 {
        c.propose(&new, vec![1, i]).unwrap();
    }
    c.run(50);
    let sent_before = c.stats.sent;
    c.heal();
    let target = c.raft(&new).unwrap().log().last_index();
    assert!(c.run_until(200, |c| c.committed_everywhere(target)));
    // With the conflict hint the leader skips the whole divergent term in one
    // round trip instead of fifty: the catch-up takes few messages.
    let used = c.stats.sent - sent_before;
    assert!(used < 120, "catch-up took {used} messages");
    assert_eq!(c.persisted_log(&old), c.persisted_log(&new));
}

#[test]
fn figure_8_under_an_unreliable_network() {
    // In the manner of the MIT 6.824 test: crash and restart leaders while
    // proposing, on a lossy network; committed entries must never be lost.
    for seed in 0..10 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut c = cluster(5, 100 + seed);
        c.net = NetConfig::lossy();
        for round in 0..100u32 {
            if let Some(l) = c.leader() {
                let _ = c.propose(&l, round.to_le_bytes().to_vec());
            }
            c.run(rng.gen_range(1..30));
            if rng.gen_bool(0.5) {
                if let Some(l) = c.leader() {
                    c.crash(&l);
                }
            }
            let down: Vec<_> = c.ids().iter().filter(|i| !c.is_up(i)).cloned().collect();
            let up = c.ids().len() - down.len();
            if up < 3 {
                let pick = &down[rng.gen_range(0..down.len())];
                c.restart(pick);
            }
        }
        for id in c.ids().to_vec() {
            c.restart(&id);
        }
        c.net = NetConfig::reliable();
        assert!(commit_one(&mut c, b"final", 2000).is_some(), "seed {seed}");
    }
}

#[test]
fn persistence_across_crash_and_restart_one_at_a_time_and_all_at_once() {
    let mut c = cluster(3, 9);
    let mut last = 0;
    for i in 0..5u8 {
        last = commit_one(&mut c, &[i], 500).unwrap();
    }
    for id in c.ids().to_vec() {
        c.crash(&id);
        c.restart(&id);
        last = commit_one(&mut c, b"one", 1000).unwrap();
    }
    for id in c.ids().to_vec() {
        c.crash(&id);
    }
    for id in c.ids().to_vec() {
        c.restart(&id);
        // Nothing applied yet after a restart: commit is volatile.
        assert!(c.applied(&id).is_empty());
    }
    let after = commit_one(&mut c, b"after", 1000).unwrap();
    assert!(after > last);
    for id in c.ids().to_vec() {
        assert!(c.run_until(500, |c| c.applied(&id).len() as u64 >= after));
        let applied: Vec<_> = c.applied(&id).iter().map(|e| e.data.clone()).collect();
        assert_eq!(applied.len() as u64, c.applied(&id).last().unwrap().index);
    }
}

#[test]
fn a_partitioned_minority_with_pre_vote_does_not_raise_terms() {
    let config = Config {
        pre_vote: true,
        check_quorum: true,
        ..Cluster::fast_config()
    };
    let mut c = Cluster::new(5, config, 10);
    let l = c.run_until_leader(300).unwrap();
    let f = c.ids().iter().find(|i| **i != l).unwrap().clone();
    let term = c.raft(&l).unwrap().term();
    c.isolate(&f);
    c.run(500);
    assert_eq!(
        c.raft(&f).unwrap().term(),
        term,
        "pre-vote keeps the isolated node's term"
    );
    c.heal();
    c.run(200);
    assert_eq!(
        c.leader(),
        Some(l),
        "the rejoining node did not disrupt the leader"
    );
}

/// With background writes, a leader whose own write is slow must not count
/// its copy: if it did, an entry acknowledged by the one follower that heard
/// of it would commit on one disk of three, and a leader crash plus that
/// follower's isolation would let the other two elect a leader without it
/// (leader completeness fails).
#[test]
fn with_slow_disks_a_leader_commits_only_what_a_majority_has_on_disk() {
    let mut raced = 0;
    for seed in 0..40 {
        let mut c = cluster(3, seed);
        c.disk = DiskMode::Background { max_delay: 0 };
        let leader = c.run_until_leader(1000).expect("a leader");
        commit_one(&mut c, b"warm-up", 1000).expect("a commit");
        // Only one follower hears of the new entry.
        let others: Vec<String> = c
            .ids()
            .iter()
            .filter(|id| **id != leader)
            .cloned()
            .collect();
        c.cut_one_way(&leader, &others[1]);
        c.disk = DiskMode::Background { max_delay: 40 };
        let (index, _) = c
            .propose(&leader, b"x".to_vec())
            .expect("the leader takes it");
        let on_disk = |c: &Cluster, id: &str| c.persisted_log(id).iter().any(|e| e.index == index);
        let mut committed = false;
        for _ in 0..200 {
            c.tick();
            if on_disk(&c, &others[0]) && !on_disk(&c, &leader) {
                // The follower was faster than the leader's own disk.
                raced += 1;
                assert!(
                    !c.committed_anywhere(index),
                    "seed {seed}: committed on one disk of three"
                );
            }
            if c.committed_anywhere(index) {
                committed = true;
                break;
            }
        }
        if !committed {
            continue;
        }
        // Crash the leader at once (writes still in flight are lost), cut
        // off every follower that has the entry on disk, restart the leader.
        c.crash(&leader);
        let holders: Vec<String> = c
            .ids()
            .iter()
            .filter(|id| **id != leader)
            .filter(|id| c.persisted_log(id).iter().any(|e| e.index == index))
            .cloned()
            .collect();
        c.heal();
        for h in &holders {
            c.isolate(h);
        }
        c.disk = DiskMode::Background { max_delay: 0 };
        c.restart(&leader);
        // The two without the entry may elect a leader; the cluster checks
        // leader completeness and state-machine safety at every step.
        c.run(300);
    }
    // The scenario did happen: a follower's disk beat the leader's.
    assert!(
        raced > 0,
        "no follower wrote the entry before its leader did"
    );
}

/// In half the runs, snapshots at tiny thresholds (every 2 to 9 applied
/// entries, 0 to 3 entries kept behind, chunks of 1 to 19 bytes), so that
/// compaction and chunked InstallSnapshot happen all the time.
fn snapshots(rng: &mut ChaCha8Rng, config: Config) -> Config {
    if !rng.gen_bool(0.5) {
        return config;
    }
    Config {
        snapshot_entries: rng.gen_range(2..10),
        snapshot_trailing: rng.gen_range(0..4),
        snapshot_chunk_bytes: rng.gen_range(1..20),
        ..config
    }
}

/// One randomized run: random faults, proposals, crashes; the cluster checks
/// the safety properties after every step, and the run must end live.
/// Returns the snapshots taken and installed.
fn random_run(seed: u64) -> (u64, u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = [3, 5, 5, 7][rng.gen_range(0..4)];
    let config = Config {
        pre_vote: rng.gen_bool(0.5),
        check_quorum: rng.gen_bool(0.5),
        max_entries_per_message: rng.gen_range(1..8),
        ..snapshots(&mut rng, Cluster::fast_config())
    };
    let mut c = Cluster::new(n, config, seed);
    c.net = NetConfig {
        drop: rng.gen_range(0.0..0.2),
        duplicate: rng.gen_range(0.0..0.1),
        delay_min: 1,
        delay_max: rng.gen_range(1..8),
    };
    // Half the runs write in the background, as the real node does: a
    // leader's appends leave before its own write, and crashes lose writes
    // still in flight.
    if rng.gen_bool(0.5) {
        c.disk = DiskMode::Background {
            max_delay: rng.gen_range(0..6),
        };
    }
    let ids = c.ids().to_vec();
    let mut value = 0u32;
    for _ in 0..40 {
        match rng.gen_range(0..10) {
            0 => c.isolate(&ids[rng.gen_range(0..n)]),
            1 => c.cut_one_way(&ids[rng.gen_range(0..n)], &ids[rng.gen_range(0..n)]),
            2 | 3 => c.heal(),
            4 => c.crash(&ids[rng.gen_range(0..n)]),
            5 => {
                for id in &ids {
                    c.restart(id);
                }
            }
            _ => {}
        }
        for _ in 0..rng.gen_range(0..4) {
            value += 1;
            let target = if rng.gen_bool(0.8) {
                c.leader()
            } else {
                Some(ids[rng.gen_range(0..n)].clone())
            };
            if let Some(t) = target {
                let _ = c.propose(&t, value.to_le_bytes().to_vec());
            }
        }
        c.run(rng.gen_range(1..25));
    }
    c.heal();
    for id in &ids {
        c.restart(id);
    }
    c.net = NetConfig::reliable();
    assert!(
        commit_one(&mut c, b"live", 3000).is_some(),
        "seed {seed}: no progress after healing"
    );
    ids.iter()
        .map(|id| c.snapshot_counts(id))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[test]
fn randomized_safety_over_many_seeds() {
    let n = match seeds(2000) {
        Seeds::Replay(seed) => {
            println!("snapshots (taken, installed): {:?}", random_run(seed));
            return;
        }
        Seeds::Range(n) => n,
    };
    let runs = run_seeds(n, "--test simulation randomized", random_run);
    let with_installs = runs.iter().filter(|(_, installed)| *installed > 0).count() as u64;
    // Snapshots are on in half the runs; most of those must have sent
    // some, or the checks above say nothing about InstallSnapshot.
    assert!(
        with_installs * 5 >= n,
        "only {with_installs} of {n} runs installed a snapshot"
    );
}

/// The known-bug variant `skip-prev-check` is a real safety bug: the same
/// randomized runs find a violation of the Raft properties within a few
/// hundred seeds (so the checks above are not vacuous).
#[test]
fn the_skip_prev_check_variant_breaks_safety_in_simulation() {
    let found = (0..500u64).find(|&seed| {
        std::panic::catch_unwind(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let config = Config {
                unsafe_skip_prev_check: true,
                max_entries_per_message: 2,
                ..Cluster::fast_config()
            };
            let mut c = Cluster::new(5, config, seed);
            c.net = NetConfig::lossy();
            let ids = c.ids().to_vec();
            for v in 0..60u32 {
                match rng.gen_range(0..6) {
                    0 => c.isolate(&ids[rng.gen_range(0..5)]),
                    1 => c.heal(),
                    _ => {}
                }
                if let Some(l) = c.leader() {
                    let _ = c.propose(&l, v.to_le_bytes().to_vec());
                }
                c.run(rng.gen_range(1..20));
            }
        })
        .is_err()
    });
    assert!(found.is_some(), "no violation found in 500 seeds");
}

/// The paper's Figure 8, built by hand: S1 and S2 hold an entry of term 2 at
/// index 2, S5 one of term 3. A leader elected in term 4 among S1..S4 must
/// not commit the term-2 entry by counting replicas, because S5 can still
/// win an election and overwrite it. With the `commit-old-term` variant it
/// does, and the simulation's safety checks catch the committed entry being
/// overwritten; the correct core never commits it early.
fn figure_8(seed: u64, unsafe_commit_old_term: bool) -> bool {
    use faultline_node::raft::{Entry, HardState};
    let e = |index: u64, term: u64| Entry {
        term,
        index,
        data: EntryData::Command(vec![index as u8, term as u8]),
    };
    let hs = HardState {
        term: 3,
        vote: None,
    };
    let states = vec![
        (hs.clone(), vec![e(1, 1), e(2, 2)]),
        (hs.clone(), vec![e(1, 1), e(2, 2)]),
        (hs.clone(), vec![e(1, 1)]),
        (hs.clone(), vec![e(1, 1)]),
        (hs, vec![e(1, 1), e(2, 3)]),
    ];
    let config = Config {
        unsafe_commit_old_term,
        max_entries_per_message: 1,
        ..Cluster::fast_config()
    };
    std::panic::catch_unwind(move || {
        let mut c = Cluster::with_state(config, seed, states);
        c.isolate("n5");
        let leader = c.run_until_leader(2_000).expect("S1 or S2 leads in term 4");
        // Crash the leader the moment it commits index 2, losing what it has
        // not delivered yet (the rest of its term-4 entries).
        c.run_until(2_000, |c| {
            c.raft(&leader).is_some_and(|r| r.commit_index() >= 2)
        });
        c.crash(&leader);
        c.drop_in_flight_from(&leader);
        c.heal();
        c.run(3_000);
    })
    .is_err()
}

#[test]
fn figure_8_commit_old_term_variant_is_caught_and_the_correct_core_is_safe() {
    let caught = (0..30).filter(|&seed| figure_8(seed, true)).count();
    assert!(
        caught > 0,
        "the commit-old-term variant never lost a committed entry in 30 seeds"
    );
    eprintln!("figure 8: caught in {caught} of 30 seeds");
    for seed in 0..30 {
        assert!(
            !figure_8(seed, false),
            "seed {seed}: the correct core broke safety in Figure 8"
        );
    }
}

/// Outside Raft's fault model, but a real node must cope: a follower whose
/// disk lost entries it had acknowledged is found out (the leader suspects
/// it from the follower's answers, the follower confirms from its own log)
/// and caught up in the same term, instead of being probed at the old match
/// point for ever.
#[test]
fn a_follower_that_lost_acknowledged_entries_catches_up_in_the_same_term() {
    let mut c = cluster(3, 11);
    let leader = c.run_until_leader(1_000).expect("a leader");
    let term = c.raft(&leader).unwrap().term();
    let mut last = 0;
    for i in 0..10u8 {
        last = c.propose(&leader, vec![i]).unwrap().0;
    }
    assert!(c.run_until(1_000, |c| c.committed_everywhere(last)));
    let follower = c.ids().iter().find(|id| **id != leader).unwrap().clone();
    c.crash(&follower);
    c.lose_tail(&follower, 3);
    c.restart(&follower);
    assert_eq!(c.raft(&follower).unwrap().log().last_index(), last - 3);
    let caught_up = c.run_until(2_000, |c| {
        c.raft(&follower)
            .is_some_and(|r| r.log().last_index() == last && r.commit_index() == last)
    });
    assert!(
        caught_up,
        "the follower stayed behind: {:?}",
        c.raft(&follower).map(|r| r.log().last_index())
    );
    assert_eq!(
        c.confirmed_losses, 1,
        "the follower confirmed its loss once"
    );
    assert_eq!(
        c.raft(&leader).unwrap().term(),
        term,
        "caught up in the same term"
    );
}
