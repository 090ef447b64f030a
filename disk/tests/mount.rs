//! The layer mounted for real: what a program sees through it, what a
//! power loss leaves, injected errors, and that no mount outlives the
//! process that made it. Needs root, `/dev/fuse` and `fusermount3`;
//! without them each test says why and passes, except under `CI=true`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use faultline_disk::fs::{check_prerequisites, is_mounted, Mounted};
use faultline_disk::{Damage, Switches};

fn can_mount() -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    match (root, check_prerequisites()) {
        (true, Ok(())) => true,
        (false, _) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: mounting the disk layer needs root");
            false
        }
        (_, Err(e)) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: {e}");
            false
        }
        (root, e) => panic!("CI must be able to mount the disk layer (root: {root}, {e:?})"),
    }
}

fn write_file(path: &Path, data: &[u8], sync: bool) {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
    if sync {
        f.sync_all().unwrap();
    }
}

fn sync_dir(path: &Path) {
    fs::File::open(path).unwrap().sync_all().unwrap();
}

#[test]
fn a_power_loss_through_the_mount_leaves_exactly_what_was_fsynced() {
    if !can_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut m = Mounted::mount(&data, &tmp.path().join("backing")).unwrap();
    assert!(is_mounted(m.mountpoint()));
    let data = m.mountpoint().to_path_buf();
    write_file(&data.join("kept"), b"fsynced", true);
    fs::create_dir(data.join("wal.tmp")).unwrap();
    write_file(&data.join("wal.tmp/seg"), b"segment", true);
    sync_dir(&data.join("wal.tmp"));
    sync_dir(&data);
    // Not durable: a write without fsync, a new name, a directory rename.
    let f = OpenOptions::new()
        .write(true)
        .open(data.join("kept"))
        .unwrap();
    f.write_all_at(b"CHANGED", 0).unwrap();
    drop(f);
    write_file(&data.join("lost"), b"never fsynced", false);
    fs::rename(data.join("wal.tmp"), data.join("wal")).unwrap();
    assert_eq!(fs::read(data.join("kept")).unwrap(), b"CHANGED");
    // What a read through mmap sees.
    let f = fs::File::open(data.join("kept")).unwrap();
    // SAFETY: a private read-only map of a 7-byte file, read within it.
    let seen = unsafe {
        use std::os::fd::AsRawFd;
        let p = libc::mmap(
            std::ptr::null_mut(),
            7,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let v = std::slice::from_raw_parts(p as *const u8, 7).to_vec();
        libc::munmap(p, 7);
        v
    };
    assert_eq!(seen, b"CHANGED");
    drop(f);
    let stats = m.stats();
    assert!(stats.not_durable >= 20, "{stats:?}");

    let loss = m.power_loss();
    assert!(loss.bytes >= 20, "{loss:?}");
    assert_eq!(fs::read(data.join("kept")).unwrap(), b"fsynced");
    assert!(!data.join("lost").exists());
    assert_eq!(fs::read(data.join("wal.tmp/seg")).unwrap(), b"segment");
    assert!(!data.join("wal").exists());

    // Injected errors reach the program.
    m.set_switches(Switches {
        disk_full: true,
        fsync_error: false,
    });
    let f = OpenOptions::new()
        .write(true)
        .open(data.join("kept"))
        .unwrap();
    let e = f.write_all_at(b"x", 7).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    m.set_switches(Switches {
        disk_full: false,
        fsync_error: true,
    });
    f.write_all_at(b"more", 7).unwrap();
    let e = f.sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    m.set_switches(Switches::default());
    f.sync_all().expect("the retry succeeds (fsyncgate)");
    drop(f);
    m.power_loss();
    assert_eq!(
        fs::read(data.join("kept")).unwrap(),
        b"fsynced",
        "the EIO lost the write"
    );
    assert!(m.stats().counters.injected >= 2);

    // Damage while nothing has the file open.
    let c = m.corrupt(3, Damage::Truncate).expect("a file");
    assert_eq!(fs::metadata(data.join(&c.file)).unwrap().len(), c.offset);

    let seen: Vec<Vec<u8>> = ["kept", "wal.tmp/seg"]
        .iter()
        .map(|n| fs::read(data.join(n)).unwrap())
        .collect();
    m.unmount().unwrap();
    assert!(!is_mounted(&data));
    // Left in place as last seen, without the layer.
    for (n, before) in ["kept", "wal.tmp/seg"].iter().zip(&seen) {
        assert_eq!(&fs::read(data.join(n)).unwrap(), before, "{n}");
    }
    assert!(!tmp.path().join("backing").exists());
}

#[test]
fn a_slow_disk_makes_fsync_slower() {
    if !can_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let m = Mounted::mount(&tmp.path().join("d"), &tmp.path().join("b")).unwrap();
    m.set_slow(Duration::from_millis(300));
    let started = Instant::now();
    write_file(&m.mountpoint().join("f"), b"x", true);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// Not a test on its own: the child that mounts and waits to be killed,
/// which `no_mount_outlives_a_process_killed_with_sigkill` runs (ignored
/// otherwise, so it never passes without having done anything).
#[test]
#[ignore = "the child process of no_mount_outlives_a_process_killed_with_sigkill"]
fn child_mounts_and_waits() {
    let dir = std::env::var("FAULTLINE_DISK_CHILD").expect(
        "run by no_mount_outlives_a_process_killed_with_sigkill, which sets FAULTLINE_DISK_CHILD",
    );
    let dir = Path::new(&dir);
    let m = Mounted::mount(&dir.join("data"), &dir.join("backing")).unwrap();
    write_file(&m.mountpoint().join("f"), b"x", false);
    fs::write(dir.join("ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn no_mount_outlives_a_process_killed_with_sigkill() {
    if !can_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_mounts_and_waits",
            "--ignored",
            "--nocapture",
        ])
        .env("FAULTLINE_DISK_CHILD", tmp.path())
        .spawn()
        .unwrap();
    let data = tmp.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tmp.path().join("ready").exists() {
        assert!(Instant::now() < deadline, "the child never mounted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(is_mounted(&data));
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while is_mounted(&data) {
        assert!(Instant::now() < deadline, "the mount outlived its process");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn o_dsync_writes_and_msync_are_durable_and_sync_file_range_is_not() {
    if !can_mount() {
        return;
    }
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let m = Mounted::mount(&tmp.path().join("d"), &tmp.path().join("b")).unwrap();
    let data = m.mountpoint().to_path_buf();
    write_file(&data.join("dsync"), b"", true);
    write_file(&data.join("range"), b"", true);
    sync_dir(&data);
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .open(data.join("dsync"))
        .unwrap();
    f.write_all_at(b"kept", 0).unwrap();
    drop(f);
    let f = OpenOptions::new()
        .write(true)
        .open(data.join("range"))
        .unwrap();
    f.write_all_at(b"lost", 0).unwrap();
    // SAFETY: a valid descriptor; the call only reads its arguments.
    let r = unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            0,
            0,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )
    };
    assert_eq!(r, 0);
    drop(f);
    // A shared writable map, msync(MS_SYNC)ed.
    write_file(&data.join("mapped"), b"....", true);
    sync_dir(&data);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(data.join("mapped"))
        .unwrap();
    // SAFETY: a shared map of the 4-byte file, written within it, synced
    // and unmapped before the file is closed.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(b"msyn".as_ptr(), p as *mut u8, 4);
        assert_eq!(libc::msync(p, 4, libc::MS_SYNC), 0);
        libc::munmap(p, 4);
    }
    drop(f);
    m.power_loss();
    assert_eq!(fs::read(data.join("dsync")).unwrap(), b"kept");
    assert_eq!(fs::read(data.join("range")).unwrap(), b"");
    assert_eq!(fs::read(data.join("mapped")).unwrap(), b"msyn");
}

/// A name longer than 255 bytes is refused with ENAMETOOLONG, as a real
/// filesystem refuses it; and when the unmount cannot leave a name in the
/// data directory (here one that already exists under the mount), the
/// others are still left there, the backing directory keeps the data,
/// and `left_behind` says which.
#[test]
fn long_names_are_refused_and_the_link_back_does_what_it_can() {
    if !can_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backing = tmp.path().join("backing");
    fs::create_dir_all(&data).unwrap();
    // Under the mount, hidden while it is there.
    fs::write(data.join("clash"), b"under the mount").unwrap();
    let mut m = Mounted::mount(&data, &backing).unwrap();
    let at = m.mountpoint().to_path_buf();
    let long = "n".repeat(256);
    let e = fs::write(at.join(&long), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{e}");
    let e = fs::create_dir(at.join(&long)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{e}");
    write_file(&at.join("n".repeat(255)), b"fits", true);
    write_file(&at.join("clash"), b"through the layer", true);
    write_file(&at.join("other"), b"other", true);
    let e = fs::rename(at.join("other"), at.join(&long)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{e}");
    m.unmount().unwrap();
    assert!(!is_mounted(&data));
    assert_eq!(fs::read(data.join("other")).unwrap(), b"other");
    assert_eq!(fs::read(data.join("n".repeat(255))).unwrap(), b"fits");
    let left = m.left_behind().expect("the clash is said");
    assert!(
        left.contains("1 of 3 name(s)") && left.contains("'clash'"),
        "{left}"
    );
    // Its data is not lost: the backing directory stays.
    assert!(backing.exists(), "{left}");
}

/// The explanation of a lost name, through a real mount: a file created in
/// a directory and fsynced, the directory renamed and its parent fsynced —
/// the directory itself was never fsynced, so the file's name is lost, and
/// the power loss says so.
#[test]
fn a_lost_name_through_the_mount_is_explained_by_the_missing_fsync() {
    if !can_mount() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut m = Mounted::mount(&tmp.path().join("data"), &tmp.path().join("backing")).unwrap();
    let data = m.mountpoint().to_path_buf();
    fs::create_dir(data.join("member")).unwrap();
    sync_dir(&data);
    fs::create_dir(data.join("member/wal.tmp")).unwrap();
    write_file(&data.join("member/wal.tmp/0.wal"), b"segment", true);
    // Another directory's fsync does not make the entry durable.
    sync_dir(&data);
    fs::rename(data.join("member/wal.tmp"), data.join("member/wal")).unwrap();
    sync_dir(&data.join("member"));
    let loss = m.power_loss();
    assert_eq!(loss.names, ["member/wal/0.wal"], "{loss:?}");
    let why = &loss.why[0];
    assert!(
        why.contains("created at ")
            && why.contains("`member/wal.tmp/` never fsynced after it")
            && why.contains("`member/wal.tmp` renamed to `member/wal` at ")
            && why.contains("`member/` fsynced at ")
            && why.contains("— the entry made in `member/wal.tmp/`"),
        "{why}"
    );
    assert!(!data.join("member/wal/0.wal").exists());
    m.unmount().unwrap();
}
