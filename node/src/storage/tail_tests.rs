//! The log's tail after a crash or after damage (a torn append is cut off;
//! damage of a durable record stops the node; durable entries gone from
//! the log are reported as lost), and data files that are not regular files.
use std::os::unix::fs::symlink;

use super::*;
use crate::raft::EntryData;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        data: EntryData::Command(format!("value-{index}").into_bytes()),
    }
}

/// A directory with entries 1..=n, and the offset of each record.
fn filled(n: u64) -> (tempfile::TempDir, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    s.persist(
        Some(&HardState {
            term: 1,
            vote: None,
        }),
        &LogWrite {
            entries: (1..=n).map(|i| entry(i, 1)).collect(),
            ..Default::default()
        },
    )
    .unwrap();
    let offsets = s.offsets.clone();
    (dir, offsets)
}

fn poke(path: &Path, at: u64, f: impl FnOnce(u8) -> u8) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, at).unwrap();
    file.write_all_at(&[f(b[0])], at).unwrap();
}

#[test]
fn a_bit_flip_in_the_last_durable_record_is_damage_not_a_torn_write() {
    let (dir, offsets) = filled(10);
    let log = dir.path().join("log");
    let len = fs::metadata(&log).unwrap().len();
    poke(&log, len - 3, |b| b ^ 0x10);
    let err = Storage::open(dir.path(), SyncMode::GroupCommit)
        .err()
        .expect("damage must stop the node")
        .to_string();
    assert!(err.contains(&format!("offset {}", offsets[9])), "{err}");
    assert!(err.contains("damage, not a torn write"), "{err}");
    // Nothing was cut.
    assert_eq!(fs::metadata(&log).unwrap().len(), len);
}

#[test]
fn a_flipped_length_bit_in_the_last_record_is_damage() {
    let (dir, offsets) = filled(10);
    let log = dir.path().join("log");
    // Bit 20 of the length: the record now "runs past the end of the file".
    poke(&log, offsets[9] + 2, |b| b ^ 0x10);
    let err = Storage::open(dir.path(), SyncMode::GroupCommit)
        .err()
        .expect("damage must stop the node")
        .to_string();
    assert!(err.contains("flipped bit"), "{err}");
}

#[test]
fn durable_entries_cut_off_at_a_record_boundary_are_reported_lost() {
    let (dir, offsets) = filled(10);
    let log = dir.path().join("log");
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(offsets[8])
        .unwrap();
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.entries.len(), 8);
    assert_eq!(r.lost, Some((9, 10)));
    // The loss is remembered until the log holds entry 10 again.
    let (mut s, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.lost, Some((9, 10)));
    s.persist(
        None,
        &LogWrite {
            entries: vec![entry(9, 2)],
            ..Default::default()
        },
    )
    .unwrap();
    drop(s);
    let (mut s, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.lost, Some((10, 10)));
    s.persist(
        None,
        &LogWrite {
            entries: vec![entry(10, 2), entry(11, 2)],
            ..Default::default()
        },
    )
    .unwrap();
    drop(s);
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.lost, None);
    assert_eq!(r.entries.len(), 11);
}

#[test]
fn durable_entries_cut_off_inside_a_record_are_reported_lost() {
    let (dir, offsets) = filled(10);
    let log = dir.path().join("log");
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(offsets[6] + 5)
        .unwrap();
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.entries.len(), 6);
    assert_eq!(r.lost, Some((7, 10)));
}

#[test]
fn a_truncation_by_the_leader_is_not_a_loss() {
    let (dir, _) = filled(10);
    {
        let (mut s, _) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
        s.persist(
            None,
            &LogWrite {
                truncate_from: Some(6),
                entries: vec![],
                ..Default::default()
            },
        )
        .unwrap();
    }
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.entries.len(), 5);
    assert_eq!(r.lost, None);
}

#[test]
fn without_a_mark_a_zeroed_sector_is_torn_and_written_garbage_is_damage() {
    // Records large enough to span a sector.
    let dir = tempfile::tempdir().unwrap();
    let big = |i: u64| Entry {
        term: 1,
        index: i,
        data: EntryData::Command(vec![7u8; 2000]),
    };
    {
        let (mut s, _) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
        s.persist(
            Some(&HardState {
                term: 1,
                vote: None,
            }),
            &LogWrite {
                entries: (1..=3).map(big).collect(),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let log = dir.path().join("log");
    let len = fs::metadata(&log).unwrap().len();
    fs::remove_file(dir.path().join(durable_mark::FILE)).unwrap();
    let saved = fs::read(&log).unwrap();
    // A sector of the last record never written: torn.
    let file = OpenOptions::new().write(true).open(&log).unwrap();
    let sector = (len - 1000) / 512 * 512;
    file.write_all_at(&[0u8; 512], sector).unwrap();
    drop(file);
    let (_, r) = Storage::open(dir.path(), SyncMode::GroupCommit).unwrap();
    assert_eq!(r.entries.len(), 2);
    assert!(r.torn_tail.is_some());
    // Written bytes that do not check out: damage.
    fs::write(&log, &saved).unwrap();
    fs::remove_file(dir.path().join(durable_mark::FILE)).unwrap();
    poke(&log, len - 1000, |b| b ^ 1);
    assert!(Storage::open(dir.path(), SyncMode::GroupCommit).is_err());
}

#[test]
fn data_files_that_are_not_regular_files_are_refused_without_reading() {
    for name in ["meta", "cluster", "snapshot", "log", durable_mark::FILE] {
        let (dir, _) = filled(3);
        let path = dir.path().join(name);
        let _ = fs::remove_file(&path);
        symlink("/dev/zero", &path).unwrap();
        let opened = Storage::open(dir.path(), SyncMode::GroupCommit)
            .and_then(|_| claim_cluster(dir.path(), "c"));
        let err = opened.expect_err(name).to_string();
        assert!(err.contains("character device"), "{name}: {err}");
        assert!(err.contains(name), "{err}");

        fs::remove_file(&path).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        // A FIFO without a writer would block a plain open or read forever.
        let opened = Storage::open(dir.path(), SyncMode::GroupCommit)
            .and_then(|_| claim_cluster(dir.path(), "c"));
        let err = opened.expect_err(name).to_string();
        assert!(err.contains("FIFO"), "{name}: {err}");
    }
}

/// Grow `name` in `dir` to 1 TiB (sparse: reading it would take the
/// machine's memory) and open the storage: the error it must give.
fn open_with_sparse_tail(dir: &Path, name: &str) -> String {
    OpenOptions::new()
        .write(true)
        .open(dir.join(name))
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    Storage::open(dir, SyncMode::GroupCommit)
        .err()
        .expect("must refuse")
        .to_string()
}

#[test]
fn oversized_files_are_refused_by_their_size_not_read_whole() {
    let (dir, _) = filled(3);
    let err = open_with_sparse_tail(dir.path(), "meta");
    assert!(err.contains("at most"), "{err}");
}

#[test]
fn a_snapshot_with_a_huge_tail_is_refused_without_reading_it() {
    let (dir, _) = filled(3);
    let snap = crate::raft::Snapshot {
        meta: crate::raft::SnapshotMeta {
            index: 2,
            term: 1,
            membership: Default::default(),
            membership_index: 0,
        },
        data: std::sync::Arc::new(vec![1, 2, 3]),
    };
    snapshot_file::write(dir.path(), &snap).unwrap();
    let err = open_with_sparse_tail(dir.path(), "snapshot");
    assert!(err.contains("unexpected bytes after the data"), "{err}");
}
