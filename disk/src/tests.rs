use super::*;

fn disk() -> Disk<MemStore> {
    Disk::new(MemStore::default())
}

fn content(d: &Disk<MemStore>, name: &str) -> Option<Vec<u8>> {
    let ino = d.lookup(name)?;
    Some(d.store().read_at(ino, 0, d.store().len(ino) as usize))
}

#[test]
fn a_power_loss_undoes_exactly_the_writes_not_fsynced() {
    let mut d = disk();
    let a = d.create("a").unwrap();
    let b = d.create("b").unwrap();
    d.fsync_dir("").unwrap();
    d.write(a, 0, b"durable").unwrap();
    d.fsync(a).unwrap();
    d.write(a, 7, b" and lost").unwrap();
    d.write(b, 0, b"all lost").unwrap();
    assert_eq!(d.bytes_not_durable(), 17);
    let loss = d.power_loss();
    assert_eq!(loss.bytes, 17);
    assert_eq!(content(&d, "a").unwrap(), b"durable");
    assert_eq!(content(&d, "b").unwrap(), b"");
    assert_eq!(d.bytes_not_durable(), 0);
}

#[test]
fn overwrites_and_truncates_come_back_as_they_were() {
    let mut d = disk();
    let a = d.create("a").unwrap();
    d.fsync_dir("").unwrap();
    d.write(a, 0, b"0123456789").unwrap();
    d.fsync(a).unwrap();
    d.write(a, 2, b"xx").unwrap();
    d.truncate(a, 4).unwrap();
    d.write(a, 8, b"yy").unwrap();
    d.truncate(a, 20).unwrap();
    d.power_loss();
    assert_eq!(content(&d, "a").unwrap(), b"0123456789");
}

#[test]
fn a_new_name_is_durable_only_once_its_directory_is_fsynced() {
    let mut d = disk();
    let f = d.create("wal").unwrap();
    d.write(f, 0, b"entry").unwrap();
    d.fsync(f).unwrap();
    let loss = d.power_loss();
    assert_eq!(
        d.lookup("wal"),
        None,
        "the file was fsynced, its name was not"
    );
    assert_eq!(loss.names, ["wal"]);
    let f = d.create("wal").unwrap();
    d.write(f, 0, b"entry").unwrap();
    d.fsync(f).unwrap();
    d.fsync_dir("").unwrap();
    d.power_loss();
    assert_eq!(content(&d, "wal").unwrap(), b"entry");
}

#[test]
fn a_rename_without_a_directory_fsync_is_undone() {
    let mut d = disk();
    d.mkdir("snap").unwrap();
    d.fsync_dir("").unwrap();
    let old = d.create("snap/current").unwrap();
    d.write(old, 0, b"old").unwrap();
    d.fsync(old).unwrap();
    d.fsync_dir("snap").unwrap();
    let new = d.create("snap/tmp").unwrap();
    d.write(new, 0, b"new").unwrap();
    d.fsync(new).unwrap();
    d.rename("snap/tmp", "snap/current").unwrap();
    assert_eq!(content(&d, "snap/current").unwrap(), b"new");
    let loss = d.power_loss();
    assert_eq!(content(&d, "snap/current").unwrap(), b"old");
    assert_eq!(d.lookup("snap/tmp"), None);
    assert_eq!(loss.names, ["snap/current"]);
    // With the directory fsynced, the rename stays.
    let new = d.create("snap/tmp").unwrap();
    d.write(new, 0, b"new").unwrap();
    d.fsync(new).unwrap();
    d.rename("snap/tmp", "snap/current").unwrap();
    d.fsync_dir("snap").unwrap();
    d.power_loss();
    assert_eq!(content(&d, "snap/current").unwrap(), b"new");
}

#[test]
fn an_unlink_without_a_directory_fsync_is_undone() {
    let mut d = disk();
    let f = d.create("x").unwrap();
    d.write(f, 0, b"kept").unwrap();
    d.fsync(f).unwrap();
    d.fsync_dir("").unwrap();
    d.unlink("x").unwrap();
    assert_eq!(d.lookup("x"), None);
    d.power_loss();
    assert_eq!(content(&d, "x").unwrap(), b"kept");
}

#[test]
fn a_torn_write_keeps_only_a_prefix_of_the_last_write() {
    for seed in 0..50 {
        let mut d = disk();
        let f = d.create("log").unwrap();
        d.fsync_dir("").unwrap();
        d.write(f, 0, b"head").unwrap();
        d.fsync(f).unwrap();
        d.write(f, 4, b"AAAA").unwrap();
        d.write(f, 8, b"BBBBBBBBBB").unwrap();
        let loss = d.torn(seed, Tear::PrefixOfLast);
        let (name, kept) = loss.torn.clone().unwrap();
        assert_eq!(name, "log");
        assert!(kept < 10, "{kept}");
        let c = content(&d, "log").unwrap();
        // What reached the disk: the durable head, the earlier write lost
        // (zeros: a hole), a prefix of the last one.
        let mut want = b"head".to_vec();
        if kept > 0 {
            want.extend_from_slice(&[0; 4]);
            want.extend(std::iter::repeat_n(b'B', kept as usize));
        }
        assert_eq!(c, want, "seed {seed}");
    }
}

#[test]
fn a_torn_write_back_keeps_a_subset_of_the_pending_pages() {
    let mut d = disk();
    let f = d.create("db").unwrap();
    d.fsync_dir("").unwrap();
    d.write(f, 0, &vec![1u8; 4 * PAGE as usize]).unwrap();
    d.fsync(f).unwrap();
    d.write(f, 0, &vec![2u8; 4 * PAGE as usize]).unwrap();
    // Which pages reached the disk is the seed's choice; each page is
    // whole (new or old), and the loss says how many bytes were kept.
    let loss = d.torn(5, Tear::PageSubset);
    let c = content(&d, "db").unwrap();
    assert_eq!(c.len(), 4 * PAGE as usize);
    let kept_pages = (0..4).filter(|p| c[(*p * PAGE) as usize] == 2).count() as u64;
    for p in 0..4 {
        let page = &c[(p * PAGE) as usize..((p + 1) * PAGE) as usize];
        assert!(
            page.iter().all(|b| *b == 1) || page.iter().all(|b| *b == 2),
            "page {p} is torn inside"
        );
    }
    assert_eq!(loss.torn.unwrap().1, kept_pages * PAGE);
}

#[test]
fn a_full_disk_fails_writes_with_enospc_and_changes_nothing() {
    let mut d = disk();
    let f = d.create("f").unwrap();
    d.switches.disk_full = true;
    assert_eq!(d.write(f, 0, b"x"), Err(Errno::NoSpace));
    assert_eq!(d.store().len(f), 0);
    assert_eq!(d.counters.injected, 1);
    d.switches.disk_full = false;
    assert_eq!(d.write(f, 0, b"x"), Ok(1));
}

#[test]
fn after_a_failed_fsync_the_next_one_succeeds_and_the_data_is_still_lost() {
    let mut d = disk();
    let f = d.create("wal").unwrap();
    d.fsync_dir("").unwrap();
    d.write(f, 0, b"acked?").unwrap();
    d.switches.fsync_error = true;
    assert_eq!(d.fsync(f), Err(Errno::Io));
    d.switches.fsync_error = false;
    // The retry "works": the program thinks its data is safe.
    assert_eq!(d.fsync(f), Ok(()));
    assert_eq!(content(&d, "wal").unwrap(), b"acked?");
    d.power_loss();
    assert_eq!(content(&d, "wal").unwrap(), b"");
}

#[test]
fn a_durable_write_over_a_dropped_one_survives_the_power_loss() {
    let mut d = disk();
    let f = d.create("f").unwrap();
    d.fsync_dir("").unwrap();
    d.write(f, 0, b"aaaa").unwrap();
    d.switches.fsync_error = true;
    let _ = d.fsync(f);
    d.switches.fsync_error = false;
    d.write(f, 0, b"bb").unwrap();
    d.fsync(f).unwrap();
    d.power_loss();
    // The dropped write's bytes beyond the durable one are gone; the
    // durable one stays. (The file's length is the dropped write's old
    // length: 0, extended by the durable write: 2.)
    assert_eq!(&content(&d, "f").unwrap()[..2], b"bb");
}

/// Random operations against a plain reference: after a power loss, every
/// durable name holds exactly what its file held at its last good fsync.
#[test]
fn random_histories_lose_exactly_what_was_not_durable() {
    use rand::{Rng, SeedableRng};
    for seed in 0..2000u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut d = disk();
        // Reference: per file, its content at the last good fsync.
        let mut synced: BTreeMap<Ino, Vec<u8>> = BTreeMap::new();
        let names = ["a", "b", "c"];
        for n in names {
            let ino = d.create(n).unwrap();
            synced.insert(ino, Vec::new());
        }
        d.fsync_dir("").unwrap();
        for _ in 0..rng.gen_range(1..30) {
            let n = names[rng.gen_range(0..names.len())];
            let ino = d.lookup(n).unwrap();
            match rng.gen_range(0..10) {
                0..=5 => {
                    let off = rng.gen_range(0..64);
                    let len = rng.gen_range(1..32);
                    let byte: u8 = rng.gen();
                    d.write(ino, off, &vec![byte; len]).unwrap();
                }
                6 => d.truncate(ino, rng.gen_range(0..80)).unwrap(),
                7 => {
                    d.switches.fsync_error = true;
                    let _ = d.fsync(ino);
                    d.switches.fsync_error = false;
                }
                _ => {
                    d.fsync(ino).unwrap();
                    let now = d.store().read_at(ino, 0, d.store().len(ino) as usize);
                    synced.insert(ino, now);
                }
            }
        }
        // What fsync after a dropped write made durable is only what the
        // newer writes covered; skip histories with a failed fsync for the
        // exact comparison (covered by the tests above).
        let had_error = d.counters.injected > 0;
        d.power_loss();
        if had_error {
            continue;
        }
        for n in names {
            let ino = d.lookup(n).unwrap();
            let c = d.store().read_at(ino, 0, d.store().len(ino) as usize);
            assert_eq!(&c, &synced[&ino], "seed {seed}, file {n}");
        }
    }
}

#[test]
fn a_renamed_directory_takes_its_files_along_once_its_parent_is_fsynced() {
    let mut d = disk();
    d.mkdir("wal.tmp").unwrap();
    let f = d.create("wal.tmp/0.wal").unwrap();
    d.write(f, 0, b"seg").unwrap();
    d.fsync(f).unwrap();
    d.fsync_dir("wal.tmp").unwrap();
    d.fsync_dir("").unwrap();
    d.rename("wal.tmp", "wal").unwrap();
    assert_eq!(d.names(), vec!["wal/0.wal".to_string()]);
    // Not durable yet: the power loss brings back the old name.
    d.power_loss();
    assert!(d.is_dir("wal.tmp") && !d.is_dir("wal"));
    assert_eq!(content(&d, "wal.tmp/0.wal").as_deref(), Some(&b"seg"[..]));
    d.rename("wal.tmp", "wal").unwrap();
    d.fsync_dir("").unwrap();
    d.power_loss();
    assert!(d.is_dir("wal") && !d.is_dir("wal.tmp"));
    assert_eq!(content(&d, "wal/0.wal").as_deref(), Some(&b"seg"[..]));
    // A directory with something in it is not removed, nor replaced.
    assert_eq!(d.rmdir("wal"), Err(Errno::NotEmpty));
    d.mkdir("other").unwrap();
    d.create("other/x").unwrap();
    assert_eq!(d.rename("wal", "other"), Err(Errno::NotEmpty));
}

#[test]
fn corruption_is_on_the_disk_itself_and_survives_a_power_loss() {
    let mut d = disk();
    let f = d.create("log").unwrap();
    d.write(f, 0, &[0u8; 64]).unwrap();
    d.fsync(f).unwrap();
    d.fsync_dir("").unwrap();
    // A pending write over the flipped byte, then lost.
    let c = d.corrupt(7, Damage::BitFlip).expect("a file to damage");
    assert_eq!((c.file.as_str(), c.len), ("log", 64));
    let flipped = content(&d, "log").unwrap();
    assert_eq!(flipped.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
    d.write(f, 0, &[9u8; 64]).unwrap();
    d.power_loss();
    assert_eq!(content(&d, "log").unwrap(), flipped);
    let c = d.corrupt(8, Damage::Truncate).unwrap();
    assert_eq!(content(&d, "log").unwrap().len() as u64, c.offset);
    assert!(c.offset < 64);
}

/// A member that makes a huge sparse file and cuts it (`truncate -s 10G
/// big; truncate -s 0 big`) costs no memory: the holes are kept as their
/// length, and a power loss brings the length back.
#[test]
fn cutting_a_huge_sparse_file_holds_no_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Disk::new(crate::store::FileStore::new(dir.path()).unwrap());
    let big = d.create("big").unwrap();
    d.fsync_dir("").unwrap();
    d.write(big, 0, b"head").unwrap();
    d.truncate(big, 10 << 30).unwrap();
    d.write(big, 5 << 30, b"middle").unwrap();
    d.fsync(big).unwrap();
    assert_eq!(d.undo_held(), 0);
    d.truncate(big, 0).unwrap();
    // Two pages of data, not ten gigabytes.
    assert!(d.undo_held() <= 2 * UNDO_CHUNK, "{}", d.undo_held());
    assert_eq!(d.store().len(big), 0);
    d.power_loss();
    assert_eq!(d.store().len(big), 10 << 30);
    assert_eq!(d.store().read_at(big, 0, 4), b"head");
    assert_eq!(d.store().read_at(big, 5 << 30, 6), b"middle");
    assert_eq!(d.undo_held(), 0);
}

/// Undo records are bounded: a cut of more data than
/// [`UNDO_LIMIT`] fails with ENOSPC (the member's own error), and so does
/// a write that would overwrite past the bound.
#[test]
fn undo_records_past_the_bound_fail_the_members_own_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Disk::new(crate::store::FileStore::new(dir.path()).unwrap());
    let f = d.create("f").unwrap();
    d.fsync_dir("").unwrap();
    let chunk = vec![7u8; 1 << 20];
    let mut at = 0;
    while at <= UNDO_LIMIT {
        d.write(f, at, &chunk).unwrap();
        at += chunk.len() as u64;
    }
    d.fsync(f).unwrap();
    assert_eq!(d.truncate(f, 0), Err(Errno::NoSpace));
    assert_eq!(d.store().len(f), at, "a refused cut changes nothing");
    assert_eq!(d.undo_held(), 0);
    // Overwrites not yet durable, up to the bound, then ENOSPC.
    let mut over = 0;
    let mut refused = false;
    while over < at {
        match d.write(f, over, &chunk) {
            Ok(_) => over += chunk.len() as u64,
            Err(e) => {
                assert_eq!(e, Errno::NoSpace);
                refused = true;
                break;
            }
        }
    }
    assert!(refused && d.undo_held() <= UNDO_LIMIT);
    d.fsync(f).unwrap();
    assert_eq!(d.undo_held(), 0);
}

fn disk_under(model: DiskModel) -> Disk<MemStore> {
    Disk::with_model(MemStore::default(), model)
}

#[test]
fn the_three_models_differ_exactly_where_they_should() {
    use DiskModel::*;
    for model in [Posix, Journaled, NamesDurable] {
        // A rename without a directory fsync, then another file's fsync:
        // lost under posix, kept where the journal or the model keeps names.
        let mut d = disk_under(model);
        let cur = d.create("current").unwrap();
        let other = d.create("other").unwrap();
        d.fsync_dir("").unwrap();
        d.write(cur, 0, b"old").unwrap();
        d.fsync(cur).unwrap();
        let tmp = d.create("tmp").unwrap();
        d.write(tmp, 0, b"new").unwrap();
        d.fsync(tmp).unwrap();
        d.rename("tmp", "current").unwrap();
        d.write(other, 0, b"x").unwrap();
        d.fsync(other).unwrap();
        d.power_loss();
        let want: &[u8] = if model == Posix { b"old" } else { b"new" };
        assert_eq!(content(&d, "current").unwrap(), want, "{model}");

        // Data never fsynced: lost under all three.
        let mut d = disk_under(model);
        let f = d.create("f").unwrap();
        d.fsync_dir("").unwrap();
        d.write(f, 0, b"unsynced").unwrap();
        d.power_loss();
        assert_eq!(content(&d, "f").unwrap(), b"", "{model}");

        // A name nothing ever fsynced: only names-durable keeps it.
        let mut d = disk_under(model);
        d.create("lonely").unwrap();
        d.power_loss();
        assert_eq!(
            d.lookup("lonely").is_some(),
            model == NamesDurable,
            "{model}"
        );

        // etcd's first WAL segment: created in wal.tmp, the file fsynced,
        // wal.tmp never fsynced, renamed to wal, the parent fsynced. Under
        // posix the segment's name is lost; the journal commits it with
        // the segment's own fsync.
        let mut d = disk_under(model);
        d.mkdir("wal.tmp").unwrap();
        let seg = d.create("wal.tmp/0.wal").unwrap();
        d.write(seg, 0, b"seg").unwrap();
        d.fsync(seg).unwrap();
        d.rename("wal.tmp", "wal").unwrap();
        d.fsync_dir("").unwrap();
        d.power_loss();
        assert!(d.is_dir("wal"), "{model}");
        let kept = content(&d, "wal/0.wal");
        if model == Posix {
            assert_eq!(kept, None, "{model}");
        } else {
            assert_eq!(kept.as_deref(), Some(&b"seg"[..]), "{model}");
        }
    }
}

#[test]
fn random_histories_under_every_model_lose_exactly_what_the_model_says() {
    use rand::{Rng, SeedableRng};
    use DiskModel::*;
    for model in [Posix, Journaled, NamesDurable] {
        for seed in 0..2000u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut d = disk_under(model);
            // Reference: per file, its content at its last fsync; the names
            // now, and the names as the model makes them durable.
            let mut synced: BTreeMap<Ino, Vec<u8>> = BTreeMap::new();
            let mut now: BTreeMap<String, Ino> = BTreeMap::new();
            let mut durable: BTreeMap<String, Ino> = BTreeMap::new();
            let pool = ["a", "b", "c", "d"];
            for _ in 0..rng.gen_range(1..40) {
                let n = pool[rng.gen_range(0..pool.len())];
                let mut names_changed = false;
                let mut fsynced = false;
                match (rng.gen_range(0..12), now.get(n).copied()) {
                    (0 | 1, _) => {
                        let ino = d.create(n).unwrap();
                        now.insert(n.to_string(), ino);
                        synced.insert(ino, Vec::new());
                        names_changed = true;
                    }
                    (2, Some(_)) => {
                        let to = pool[rng.gen_range(0..pool.len())];
                        if to != n {
                            d.rename(n, to).unwrap();
                            let ino = now.remove(n).unwrap();
                            now.insert(to.to_string(), ino);
                            names_changed = true;
                        }
                    }
                    (3, Some(_)) => {
                        d.unlink(n).unwrap();
                        now.remove(n);
                        names_changed = true;
                    }
                    (4, _) => {
                        d.fsync_dir("").unwrap();
                        durable = now.clone();
                    }
                    (5..=8, Some(ino)) => {
                        let off = rng.gen_range(0..64);
                        let len = rng.gen_range(1..32);
                        let byte: u8 = rng.gen();
                        d.write(ino, off, &vec![byte; len]).unwrap();
                    }
                    (9, Some(ino)) => d.truncate(ino, rng.gen_range(0..80)).unwrap(),
                    (_, Some(ino)) => {
                        d.fsync(ino).unwrap();
                        let c = d.store().read_at(ino, 0, d.store().len(ino) as usize);
                        synced.insert(ino, c);
                        fsynced = true;
                    }
                    (_, None) => {}
                }
                if (names_changed && model == NamesDurable) || (fsynced && model == Journaled) {
                    durable = now.clone();
                }
            }
            d.power_loss();
            let names: Vec<String> = durable.keys().cloned().collect();
            assert_eq!(d.names(), names, "{model}, seed {seed}: the names");
            for (n, ino) in &durable {
                let got = content(&d, n).unwrap();
                assert_eq!(&got, &synced[ino], "{model}, seed {seed}: {n}'s data");
            }
        }
    }
}

#[test]
fn a_lost_name_is_explained_by_the_fsync_that_was_missing() {
    // etcd's first WAL segment, as it makes it.
    let mut d = disk();
    d.mkdir("member").unwrap();
    d.fsync_dir("").unwrap();
    d.mkdir("member/wal.tmp").unwrap();
    let seg = d.create("member/wal.tmp/0.wal").unwrap();
    d.write(seg, 0, b"seg").unwrap();
    d.fsync(seg).unwrap();
    // Another directory's fsync does not make the entry durable.
    d.fsync_dir("").unwrap();
    d.rename("member/wal.tmp", "member/wal").unwrap();
    d.fsync_dir("member").unwrap();
    let f = d.create("member/data").unwrap();
    d.fsync_dir("member").unwrap();
    d.write(f, 4, b"unsynced").unwrap();
    let loss = d.power_loss();
    assert_eq!(loss.names, ["member/wal/0.wal"]);
    let why = &loss.why[0];
    assert!(why.starts_with("`member/wal/0.wal`: created at "), "{why}");
    assert!(
        why.contains("in `member/wal.tmp/`; `member/wal.tmp/` never fsynced after it"),
        "{why}"
    );
    assert!(
        why.contains("`member/wal.tmp` renamed to `member/wal` at ")
            && why.contains("`member/` fsynced at "),
        "{why}"
    );
    assert!(
        why.contains("— the entry made in `member/wal.tmp/` (created at "),
        "{why}"
    );
    let data = &loss.why[1];
    assert!(
        data.starts_with("`member/data`: 8 bytes in [4, 12) were not durable; its last write at ")
            && data.ends_with("its last fsync never"),
        "{data}"
    );
    // Under the journaled model the segment's own fsync made its name
    // durable: nothing to explain but the data.
    let mut d = disk_under(DiskModel::Journaled);
    d.mkdir("wal.tmp").unwrap();
    let seg = d.create("wal.tmp/0.wal").unwrap();
    d.fsync(seg).unwrap();
    d.rename("wal.tmp", "wal").unwrap();
    d.fsync_dir("").unwrap();
    let loss = d.power_loss();
    assert!(loss.names.is_empty() && loss.why.is_empty(), "{loss:?}");
}

#[test]
fn a_removal_that_comes_back_is_explained_and_the_log_is_bounded() {
    let mut d = disk();
    let f = d.create("x").unwrap();
    d.fsync(f).unwrap();
    d.fsync_dir("").unwrap();
    d.unlink("x").unwrap();
    let loss = d.power_loss();
    assert_eq!(loss.names, ["x"]);
    assert!(
        loss.why[0].contains("removed at ")
            && loss.why[0].contains("the top directory was never fsynced after it"),
        "{:?}",
        loss.why
    );
    // More calls than the log keeps: the explanation says it was cut.
    let f = d.create("y").unwrap();
    for i in 0..(why::CALL_LOG_LIMIT as u64 + 10) {
        d.write(f, i, b"z").unwrap();
    }
    let loss = d.power_loss();
    assert_eq!(loss.names, ["y"]);
    assert!(
        loss.why[0].contains("no create or rename of it in the call log (the log keeps the last"),
        "{:?}",
        loss.why
    );
    assert!(why::capped(vec!["a".into(); 30]).len() == why::EXPLANATIONS_LIMIT + 1);
}
