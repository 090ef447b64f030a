//! The log's rules, one sentence of the paper each: the prevLog check and
//! its conflict hint, a conflicting suffix replaced, commit by counting
//! only current-term entries, and nextIndex backing off.

use super::*;

#[test]
fn append_entries_is_rejected_when_prev_log_term_does_not_match_with_a_conflict_hint() {
    let mut r = Raft::new(
        "n1".into(),
        Config {
            election_timeout_min_ticks: 10,
            election_timeout_max_ticks: 20,
            heartbeat_ticks: 3,
            ..Config::default()
        },
        Configuration::new(ids(3)),
        HardState {
            term: 4,
            vote: None,
        },
        entries(&[1, 2, 2, 2]),
        1,
    );
    r.step(msg(
        "n2",
        "n1",
        4,
        MessageBody::AppendEntries {
            prev_log_index: 4,
            prev_log_term: 3,
            entries: vec![],
            leader_commit: 0,
        },
    ));
    let rd = r.take_ready();
    match &rd.persisted_messages[0].body {
        MessageBody::AppendEntriesResponse {
            success,
            reject_index,
            hint,
            ..
        } => {
            assert!(!success);
            assert_eq!(*reject_index, 4);
            assert_eq!(
                hint,
                &Some(ConflictHint {
                    term: Some(2),
                    first_index: 2
                })
            );
        }
        b => panic!("unexpected {b:?}"),
    }
    // Shorter log: the hint is our last index + 1.
    r.step(msg(
        "n2",
        "n1",
        4,
        MessageBody::AppendEntries {
            prev_log_index: 9,
            prev_log_term: 4,
            entries: vec![],
            leader_commit: 0,
        },
    ));
    let rd = r.take_ready();
    assert!(matches!(
        &rd.persisted_messages[0].body,
        MessageBody::AppendEntriesResponse {
            hint: Some(ConflictHint {
                term: None,
                first_index: 5
            }),
            ..
        }
    ));
}

#[test]
fn a_conflicting_suffix_is_deleted_and_new_entries_appended() {
    let mut r = Raft::new(
        "n1".into(),
        Config {
            election_timeout_min_ticks: 10,
            election_timeout_max_ticks: 20,
            heartbeat_ticks: 3,
            ..Config::default()
        },
        Configuration::new(ids(3)),
        HardState {
            term: 4,
            vote: None,
        },
        entries(&[1, 2, 2, 2]),
        1,
    );
    let new = vec![
        Entry {
            term: 3,
            index: 3,
            data: EntryData::Noop,
        },
        Entry {
            term: 3,
            index: 4,
            data: EntryData::Noop,
        },
        Entry {
            term: 3,
            index: 5,
            data: EntryData::Noop,
        },
    ];
    r.step(msg(
        "n2",
        "n1",
        4,
        MessageBody::AppendEntries {
            prev_log_index: 2,
            prev_log_term: 2,
            entries: new.clone(),
            leader_commit: 5,
        },
    ));
    let rd = r.take_ready();
    assert_eq!(rd.log.truncate_from, Some(3));
    assert_eq!(rd.log.entries, new);
    // commitIndex = min(leaderCommit, index of last new entry)
    assert_eq!(r.commit_index(), 5);
    // A reordered, older copy of a prefix does not truncate anything.
    r.step(msg(
        "n2",
        "n1",
        4,
        MessageBody::AppendEntries {
            prev_log_index: 2,
            prev_log_term: 2,
            entries: new[..1].to_vec(),
            leader_commit: 3,
        },
    ));
    let rd = r.take_ready();
    assert_eq!(rd.log, LogWrite::default());
    assert_eq!(r.log().last_index(), 5);
}

#[test]
fn commit_only_counts_from_what_the_message_proved_to_match() {
    // The follower holds stale entries past the match point; leader_commit
    // must not commit them.
    let mut r = Raft::new(
        "n1".into(),
        Config {
            election_timeout_min_ticks: 10,
            election_timeout_max_ticks: 20,
            heartbeat_ticks: 3,
            ..Config::default()
        },
        Configuration::new(ids(3)),
        HardState {
            term: 4,
            vote: None,
        },
        entries(&[1, 1, 2, 2]),
        1,
    );
    r.step(msg(
        "n2",
        "n1",
        4,
        MessageBody::AppendEntries {
            prev_log_index: 2,
            prev_log_term: 1,
            entries: vec![],
            leader_commit: 4,
        },
    ));
    assert_eq!(r.commit_index(), 2);
}

#[test]
fn a_leader_commits_only_entries_of_its_current_term_by_counting_replicas() {
    // Figure 8: an entry of an earlier term stored on a majority is not
    // committed by counting; it is committed only with an entry of the current term.
    let config = Config {
        election_timeout_min_ticks: 10,
        election_timeout_max_ticks: 20,
        heartbeat_ticks: 3,
        ..Config::default()
    };
    let mut r = Raft::new(
        "n1".into(),
        config,
        Configuration::new(ids(3)),
        HardState {
            term: 2,
            vote: None,
        },
        entries(&[1, 2]),
        1,
    );
    elect(&mut r); // term 3, no-op at index 3
    r.take_ready(); // the no-op is on the leader's disk
    let t = r.term();
    assert_eq!(r.log().last_index(), 3);
    // n2 acknowledges index 2 (term 2): a majority stores it, but it is of an older term.
    r.step(msg(
        "n2",
        "n1",
        t,
        MessageBody::AppendEntriesResponse {
            success: true,
            match_index: 2,
            reject_index: 0,
            hint: None,
        },
    ));
    assert_eq!(r.commit_index(), 0);
    // n2 acknowledges the no-op of the current term: everything up to it commits.
    r.step(msg(
        "n2",
        "n1",
        t,
        MessageBody::AppendEntriesResponse {
            success: true,
            match_index: 3,
            reject_index: 0,
            hint: None,
        },
    ));
    assert_eq!(r.commit_index(), 3);
}

#[test]
fn the_leader_backs_off_next_index_using_the_conflict_hint() {
    let config = Config {
        election_timeout_min_ticks: 10,
        election_timeout_max_ticks: 20,
        heartbeat_ticks: 3,
        ..Config::default()
    };
    let mut r = Raft::new(
        "n1".into(),
        config,
        Configuration::new(ids(3)),
        HardState {
            term: 5,
            vote: None,
        },
        entries(&[1, 1, 1, 4, 4, 5, 5]),
        1,
    );
    elect(&mut r);
    r.take_ready();
    let t = r.term();
    assert_eq!(r.progress("n2").unwrap().next_index, 8);
    // Follower has term 2 at index 8 starting at 4: the leader has no term 2, so it jumps to 4.
    r.step(msg(
        "n2",
        "n1",
        t,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            reject_index: 7,
            hint: Some(ConflictHint {
                term: Some(2),
                first_index: 4,
            }),
        },
    ));
    assert_eq!(r.progress("n2").unwrap().next_index, 4);
    let rd = r.take_ready();
    assert!(matches!(
        &rd.messages[0].body,
        MessageBody::AppendEntries {
            prev_log_index: 3,
            ..
        }
    ));
    // A shorter follower log: jump to its end.
    r.step(msg(
        "n3",
        "n1",
        t,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            reject_index: 7,
            hint: Some(ConflictHint {
                term: None,
                first_index: 2,
            }),
        },
    ));
    assert_eq!(r.progress("n3").unwrap().next_index, 2);
    // The follower holds term 4 where the leader has it: resume after the leader's last term-4 entry.
    let mut r2 = Raft::new(
        "n1".into(),
        Config {
            election_timeout_min_ticks: 10,
            election_timeout_max_ticks: 20,
            heartbeat_ticks: 3,
            ..Config::default()
        },
        Configuration::new(ids(3)),
        HardState {
            term: 5,
            vote: None,
        },
        entries(&[1, 1, 1, 4, 4, 5, 5]),
        1,
    );
    elect(&mut r2);
    let t2 = r2.term();
    r2.step(msg(
        "n2",
        "n1",
        t2,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            reject_index: 7,
            hint: Some(ConflictHint {
                term: Some(4),
                first_index: 4,
            }),
        },
    ));
    assert_eq!(r2.progress("n2").unwrap().next_index, 6);
}

#[test]
fn a_stale_rejection_does_not_move_next_index_back() {
    let mut r = new_raft("n1", 3);
    elect(&mut r);
    let t = r.term();
    r.step(msg(
        "n2",
        "n1",
        t,
        MessageBody::AppendEntriesResponse {
            success: true,
            match_index: 1,
            reject_index: 0,
            hint: None,
        },
    ));
    let before = r.progress("n2").unwrap().clone();
    r.step(msg(
        "n2",
        "n1",
        t,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            reject_index: 0,
            hint: Some(ConflictHint {
                term: None,
                first_index: 1,
            }),
        },
    ));
    assert_eq!(r.progress("n2").unwrap().next_index, before.next_index);
    assert_eq!(r.progress("n2").unwrap().match_index, 1);
}

#[test]
fn proposals_are_refused_by_followers_with_a_leader_hint() {
    let mut r = new_raft("n1", 3);
    r.step(msg(
        "n2",
        "n1",
        1,
        MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
        },
    ));
    assert_eq!(
        r.propose(b"x".to_vec()),
        Err(ProposeError::NotLeader {
            leader: Some("n2".into())
        })
    );
}
