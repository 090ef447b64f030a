use super::*;

/// The clean-up script run here with `sh`, as a host runs it: a bind
/// mount whose path has a space (mountinfo writes it `a\040b`) is
/// unmounted, the directory removed, and nothing behind the mount.
#[test]
fn removing_a_run_never_deletes_through_a_mount() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        assert!(
            std::env::var("CI").is_err(),
            "CI runs as root: this test needs mount"
        );
        eprintln!("skipped: bind mounts need root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let work = d.path().join("work");
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("precious"), "keep me").unwrap();
    let mnt = work.join("runs/rtest/a b");
    let nested = work.join("runs/rtest/x");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(work.join(MARKER), "run=rtest\n").unwrap();
    let bind = |target: &Path| {
        let ok = std::process::Command::new("mount")
            .arg("--bind")
            .arg(&outside)
            .arg(target)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount --bind");
    };
    bind(&mnt);
    bind(&nested);
    // A mount inside a mount: deepest first.
    std::fs::create_dir_all(mnt.join("inner")).unwrap();
    bind(&mnt.join("inner"));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(remove_script(work.to_str().unwrap(), "rtest"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    // Whatever happened, never leave the test's mounts behind.
    for m in [mnt.join("inner"), mnt.clone(), nested.clone()] {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&m)
            .status();
    }
    assert_eq!(
        said,
        "3 0 removed",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!mounted.contains(work.to_str().unwrap()), "{mounted}");
    assert_eq!(
        std::fs::read_to_string(outside.join("precious")).unwrap(),
        "keep me"
    );
    assert!(!work.join("runs").exists() && !work.join(MARKER).exists());
}
