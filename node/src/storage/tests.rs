//! The storage's tests: reopening, truncation, torn and corrupt records,
//! the term/vote record, snapshots and compaction.
use super::*;
use crate::raft::EntryData;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        data: EntryData::Command(format!("value-{index}").into_bytes()),
    }
}

fn fill(dir: &Path, n: u64) {
    let (mut s, _) = Storage::open(dir, SyncMode::GroupCommit).unwrap();
    let entries: Vec<Entry> = (1..=n).map(|i| entry(i, 1)).collect();
    s.persist(
        Some(&HardState {
            term: 3,
            vote: Some("n2".into()),
        }),
        &LogWrite {
            truncate_from: None,
            entries,
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn entries_and_hard_state_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10);
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.entries.len(), 10);
    assert_eq!(r.entries[9], entry(10, 1));
    assert_eq!(
        r.hard_state,
        HardState {
            term: 3,
            vote: Some("n2".into())
        }
    );
    assert!(r.torn_tail.is_none());
}

#[test]
fn truncation_removes_the_suffix_durably() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10);
    {
        let (mut s, _) = Storage::open(dir.path(), SyncMode::PerEntry).unwrap();
        s.persist(
            None,
            &LogWrite {
                truncate_from: Some(4),
                entries: vec![entry(4, 2), entry(5, 2)],
                ..Default::default()
            },
        )
        .unwrap();
    }
    let (s, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(s.len(), 5);
    assert_eq!(r.entries[3].term, 2);
    assert_eq!(r.entries[4], entry(5, 2));
}

#[test]
fn a_half_written_record_past_the_durable_mark_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10);
    let path = dir.path().join("log");
    let len = fs::metadata(&path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    // A record whose write was cut short by a crash: never acknowledged.
    f.write_all_at(&[40, 0, 0, 0, 1, 2, 3, 4, 9, 9], len)
        .unwrap();
    drop(f);
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.entries.len(), 10, "every durable entry is kept");
    assert_eq!(r.torn_tail, Some((len, 10)));
    assert!(r.lost.is_none());
    // The cut is durable: reopening finds a clean log.
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.entries.len(), 10);
    assert!(r.torn_tail.is_none());
}

#[test]
fn garbage_in_the_middle_stops_with_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10);
    let path = dir.path().join("log");
    let (s, _) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    let third = s.offsets[2];
    drop(s);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xFF; 12], third + 3).unwrap();
    drop(f);
    let err = Storage::open(dir.path(), SyncMode::GroupCommit)
        .err()
        .expect("must refuse");
    let msg = err.to_string();
    assert!(msg.contains("log"), "{msg}");
    assert!(msg.contains(&format!("offset {third}")), "{msg}");
    // Nothing was cut: the file is as it was.
    assert!(fs::metadata(&path).unwrap().len() > third + 100);
}

#[test]
fn a_lost_term_record_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 3);
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    r.check_term_record(dir.path()).unwrap();
    fs::remove_file(dir.path().join("meta")).unwrap();
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    let err = r.check_term_record(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("meta: the term/vote record is missing"),
        "{err}"
    );
    assert!(err.contains("--unsafe-accept-lost-vote"), "{err}");
    // A fresh directory has no record and no log: nothing lost.
    let fresh = tempfile::tempdir().unwrap();
    let (_, r) = Storage::open(fresh.path(), SyncMode::GroupCommit).unwrap();
    r.check_term_record(fresh.path()).unwrap();
}

fn snapshot_at(index: u64) -> Snapshot {
    Snapshot {
        meta: crate::raft::SnapshotMeta {
            index,
            term: 1,
            ..Default::default()
        },
        data: std::sync::Arc::new(vec![7; 100]),
    }
}

#[test]
fn a_snapshot_compacts_the_log_and_a_restart_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10);
    {
        let (mut s, _) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
        s.persist(
            None,
            &LogWrite {
                snapshot: Some(snapshot_at(8)),
                compact_to: Some(6),
                entries: vec![entry(11, 1), entry(12, 1)],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((s.first_index(), s.len()), (7, 6));
    }
    let (mut s, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.snapshot, Some(snapshot_at(8)));
    let got: Vec<u64> = r.entries.iter().map(|e| e.index).collect();
    assert_eq!(got, vec![9, 10, 11, 12], "only what follows the snapshot");
    // A compaction past the end leaves an empty log that appends follow.
    s.persist(
        None,
        &LogWrite {
            snapshot: Some(snapshot_at(20)),
            compact_to: Some(20),
            entries: vec![entry(21, 2)],
            ..Default::default()
        },
    )
    .unwrap();
    drop(s);
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.snapshot.unwrap().meta.index, 20);
    assert_eq!(r.entries, vec![entry(21, 2)]);
    // A gap is refused, not written.
    let (mut s, _) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    let err = s
        .persist(
            None,
            &LogWrite {
                entries: vec![entry(30, 2)],
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("gap"), "{err}");
}

/// A snapshot taken with trailing entries (compacting below it) while
/// the writer is behind: the entries it covers that are not stored yet are
/// still written, so the next append follows the log without a gap.
#[test]
fn a_snapshot_ahead_of_the_stored_log_leaves_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10);
    let (mut s, _) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    s.persist(
        None,
        &LogWrite {
            snapshot: Some(snapshot_at(14)),
            compact_to: Some(5),
            entries: (11..=16).map(|i| entry(i, 1)).collect(),
            ..Default::default()
        },
    )
    .unwrap();
    s.persist(
        None,
        &LogWrite {
            entries: vec![entry(17, 1)],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((s.first_index(), s.len()), (6, 12));
    drop(s);
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.snapshot.unwrap().meta.index, 14);
    let got: Vec<u64> = r.entries.iter().map(|e| e.index).collect();
    assert_eq!(got, vec![15, 16, 17]);
}

#[test]
fn a_crash_between_the_snapshot_and_the_compaction_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10);
    // The snapshot reached the disk; the compaction's copy did not get
    // renamed (a torn log.tmp is left behind).
    snapshot_file::write(dir.path(), &snapshot_at(8)).unwrap();
    fs::write(dir.path().join("log.tmp"), b"half a log").unwrap();
    let (s, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert!(!dir.path().join("log.tmp").exists());
    assert_eq!(s.first_index(), 1, "the whole old log is still there");
    let got: Vec<u64> = r.entries.iter().map(|e| e.index).collect();
    assert_eq!(got, vec![9, 10]);
}

#[test]
fn a_log_that_starts_past_its_snapshot_is_refused_with_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
        s.persist(
            None,
            &LogWrite {
                snapshot: Some(snapshot_at(5)),
                compact_to: Some(5),
                entries: vec![entry(6, 1), entry(7, 1)],
                ..Default::default()
            },
        )
        .unwrap();
    }
    // The snapshot is lost: entries 1-5 are nowhere.
    fs::remove_file(dir.path().join("snapshot")).unwrap();
    let err = Storage::open(dir.path(), SyncMode::GroupCommit)
        .err()
        .expect("must refuse")
        .to_string();
    assert!(
        err.contains("log: corrupt record at byte offset 0"),
        "{err}"
    );
    assert!(err.contains("entries 1-5 are missing"), "{err}");
}

#[test]
fn a_corrupt_meta_record_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 1);
    let path = dir.path().join("meta");
    let mut data = fs::read(&path).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xFF;
    fs::write(&path, data).unwrap();
    let err = Storage::open(dir.path(), SyncMode::GroupCommit)
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("meta"), "{err}");
}
