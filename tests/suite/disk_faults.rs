//! Disk faults on real processes, through the FUSE layer under each
//! member's data directory: the correct node under every kind (nothing
//! acknowledged lost, no false alarm), the ack-before-fsync variant caught,
//! etcd's outcome recorded, and no mount left after a normal end, Ctrl-C or
//! SIGKILL of the controller. Needs root, `/dev/fuse` and `fusermount3`:
//! without them each test says why and passes, except under `CI=true`.

use crate::common;
use common::mounts_under;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{faultline_bin, finish, json, run_dir, start};

fn disk_layer_available(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let why = if !root {
        Some("needs root to mount FUSE".to_string())
    } else {
        faultline_disk::fs::check_prerequisites().err()
    };
    match why {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: CI must run the disk faults: {why}")
        }
        Some(why) => {
            eprintln!("{test}: skipped: {why}");
            false
        }
    }
}

fn run(tmp: &Path, tag: &str, args: &[&str], limit: Duration) -> (i32, String, String) {
    let store = tmp.join(tag);
    let mut cmd = Command::new(faultline_bin());
    cmd.arg("run")
        .args(args)
        .arg("--store")
        .arg(&store)
        .process_group(0);
    let child = start(cmd, tmp, tag);
    finish(child, tmp, tag, limit)
}

use std::os::unix::process::CommandExt;

#[test]
fn the_correct_node_loses_nothing_acknowledged_under_every_disk_fault() {
    if !disk_layer_available("every disk fault") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let faults = [
        "lose-unsynced@all",
        "lose-unsynced@leader+partition-halves",
        "torn-write@minority",
        "corrupt:bitflip@minority",
        "disk-full@leader",
        "fsync-error@follower",
        "slow-disk:200@leader",
    ];
    let (code, out, err) = run(
        tmp.path(),
        "correct",
        &[
            "--nemesis",
            &faults.join(","),
            "--time-limit",
            "32",
            "--fault-interval",
            "2",
            "--seed",
            "5",
        ],
        Duration::from_secs(180),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains(": linearizable;"), "{err}");
    let dir = run_dir(&tmp.path().join("correct"));
    let disk = json(&dir.join("disk.json"));
    let events = disk["events"].as_array().unwrap();
    for f in faults {
        let name = f.split('+').next().unwrap();
        assert!(
            events
                .iter()
                .any(|e| e["fault"].as_str().unwrap().starts_with(name)),
            "{name} left no event: {disk}"
        );
    }
    // A correct node fsyncs before it answers: a power loss drops nothing
    // it wrote before the kill... except what it had not acknowledged.
    let bitflip = events
        .iter()
        .find(|e| e["fault"] == "corrupt:bitflip@minority")
        .unwrap();
    assert!(bitflip["corrupted"]["file"].is_string(), "{bitflip}");
    assert!(bitflip["corrupted"]["offset"].is_u64(), "{bitflip}");
    for n in ["n1", "n2", "n3"] {
        assert!(disk["nodes"][n]["fsyncs"].as_u64().unwrap() > 0, "{disk}");
        // The files are left in place, without the layer.
        assert!(dir.join("nodes").join(n).join("meta").is_file(), "{n}");
        assert!(!dir.join("nodes").join(format!(".{n}.disk")).exists());
    }
    let injected: u64 = events
        .iter()
        .filter(|e| e["fault"] == "disk-full@leader" || e["fault"] == "fsync-error@follower")
        .map(|e| e["injected"].as_u64().unwrap_or(0))
        .sum();
    assert!(injected > 0, "no error reached a member: {disk}");
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(page.contains("id=\"disk\""), "no disk table");
    assert!(
        page.contains("one bit flipped in"),
        "no corruption on the page"
    );
    assert!(mounts_under(tmp.path()).is_empty());
}

#[test]
fn ack_before_fsync_is_caught_by_a_power_loss_of_every_member() {
    if !disk_layer_available("ack-before-fsync") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        tmp.path(),
        "bug",
        &[
            "--unsafe-bug",
            "ack-before-fsync",
            "--nemesis",
            "lose-unsynced@all",
            "--time-limit",
            "14",
            "--fault-interval",
            "2",
            "--seed",
            "1",
        ],
        Duration::from_secs(120),
    );
    // A positive control: caught is as expected.
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("NOT LINEARIZABLE"), "{err}");
    let dir = run_dir(&tmp.path().join("bug"));
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        page.contains("during: lose-unsynced@all"),
        "the counterexample does not name the window that lost the write"
    );
    let disk = json(&dir.join("disk.json"));
    let dropped: u64 = disk["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["dropped_bytes"].as_u64().unwrap_or(0))
        .sum();
    assert!(dropped > 0, "the power losses dropped nothing: {disk}");
    assert!(mounts_under(tmp.path()).is_empty());
}

#[test]
fn etcd_under_power_loss_and_corruption_is_recorded() {
    if !disk_layer_available("etcd disk") || !common::etcd_available("etcd disk") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        tmp.path(),
        "etcd",
        &[
            "--target",
            "etcd",
            "--nemesis",
            "lose-unsynced@node,corrupt:bitflip@node",
            "--time-limit",
            "12",
            "--fault-interval",
            "3",
            "--op-timeout",
            "1000",
        ],
        Duration::from_secs(180),
    );
    // What etcd does is a result: a verdict (0, 1), never a bench error.
    assert!(code == 0 || code == 1, "{code}\n{out}\n{err}");
    let dir = run_dir(&tmp.path().join("etcd"));
    let disk = json(&dir.join("disk.json"));
    let events = disk["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{disk}");
    assert!(events[1]["corrupted"]["file"]
        .as_str()
        .is_some_and(|f| f.starts_with("member/")));
    assert!(mounts_under(tmp.path()).is_empty());
}

fn wait_for_mounts(dir: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while mounts_under(dir).len() < n {
        assert!(
            Instant::now() < deadline,
            "the run never mounted its layers"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn no_mount_is_left_after_ctrl_c_or_sigkill_of_the_controller() {
    if !disk_layer_available("teardown") {
        return;
    }
    for (tag, sig) in [("int", libc::SIGINT), ("kill", libc::SIGKILL)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(faultline_bin());
        cmd.args([
            "run",
            "--nemesis",
            "disk-full@leader",
            "--time-limit",
            "60",
            "--fault-interval",
            "2",
            "--store",
        ])
        .arg(tmp.path().join("s"))
        .process_group(0);
        let child = start(cmd, tmp.path(), tag);
        wait_for_mounts(tmp.path(), 3);
        // Ctrl-C reaches the whole foreground group; a SIGKILL, the
        // controller alone.
        let pid = if sig == libc::SIGINT {
            -(child.id() as i32)
        } else {
            child.id() as i32
        };
        // SAFETY: signalling the run's own process (group).
        unsafe { libc::kill(pid, sig) };
        let (code, _, err) = finish(child, tmp.path(), tag, Duration::from_secs(60));
        assert_ne!(code, 0, "{tag}: {err}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !mounts_under(tmp.path()).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{tag}: mounts left: {:?}; fusermount3 processes: {}; the run said: {err}",
                mounts_under(tmp.path()),
                String::from_utf8_lossy(
                    &Command::new("pgrep")
                        .args(["-a", "fusermount3"])
                        .output()
                        .unwrap()
                        .stdout
                )
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // No member outlives it either.
        let out = Command::new("pgrep")
            .args(["-f", &tmp.path().to_string_lossy()])
            .output()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut left = String::from_utf8_lossy(&out.stdout).to_string();
        while !left.trim().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let out = Command::new("pgrep")
                .args(["-f", &tmp.path().to_string_lossy()])
                .output()
                .unwrap();
            left = String::from_utf8_lossy(&out.stdout).to_string();
        }
        assert!(left.trim().is_empty(), "{tag}: processes left: {left}");
    }
}

#[test]
fn without_fusermount3_a_disk_fault_is_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(faultline_bin());
    cmd.args([
        "run",
        "--nemesis",
        "disk-full@leader",
        "--time-limit",
        "6",
        "--fault-interval",
        "1",
        "--store",
    ])
    .arg(tmp.path().join("s"))
    .env("PATH", "/nonexistent");
    let child = start(cmd, tmp.path(), "nofuse");
    let (code, _, err) = finish(child, tmp.path(), "nofuse", Duration::from_secs(60));
    assert_eq!(code, 2, "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("fusermount3") && last.contains("fuse3 package"),
        "{err}"
    );
    assert!(!tmp.path().join("s").exists(), "a store was made: {err}");
}

#[test]
fn ignore_fsync_error_is_caught() {
    if !disk_layer_available("disk bug variants") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        tmp.path(),
        "ignore-fsync-error",
        &[
            "--unsafe-bug",
            "ignore-fsync-error",
            "--nemesis",
            "fsync-error@all+lose-unsynced@all",
            "--time-limit",
            "14",
            "--fault-interval",
            "2",
            "--seed",
            "1",
        ],
        Duration::from_secs(120),
    );
    // A positive control: caught is as expected.
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("NOT LINEARIZABLE") || err.contains("UNSAFE in the nodes' logs"),
        "ignore-fsync-error was not caught: {err}"
    );
    assert!(mounts_under(tmp.path()).is_empty());
}

/// Whether a missing directory fsync loses data depends on the filesystem:
/// `no-dir-fsync` is caught under the strict `posix` model, and cannot be
/// under `journaled` or `names-durable`, where the names it never fsyncs
/// are durable anyway. One campaign runs it under the three (one seed, so
/// one schedule of faults): the page says which models lost data, and
/// `faultline compare` on the campaign alone pairs posix with each other
/// model. The correct node loses nothing under the other two models.
#[test]
fn no_dir_fsync_is_caught_under_posix_only_and_the_correct_node_under_none() {
    if !disk_layer_available("disk models") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for model in ["journaled", "names-durable"] {
        let tag = format!("correct-{model}");
        let (code, out, err) = run(
            tmp.path(),
            &tag,
            &[
                "--disk-model",
                model,
                "--nemesis",
                "lose-unsynced@all",
                "--time-limit",
                "12",
                "--fault-interval",
                "3",
                "--seed",
                "7",
            ],
            Duration::from_secs(120),
        );
        assert_eq!(code, 0, "{tag}: {out}\n{err}");
        assert!(
            err.contains("] run / lose-unsynced@all: linearizable"),
            "{tag}: {err}"
        );
        let disk = json(&run_dir(&tmp.path().join(&tag)).join("disk.json"));
        assert_eq!(disk["model"], model, "{tag}");
    }

    let file = tmp.path().join("models.toml");
    std::fs::write(
        &file,
        r#"name = "models"
faults = ["lose-unsynced@follower"]
[run]
time_limit = 14
fault_interval = 2
seed = 1
[[setting]]
name = "no-dir-fsync"
unsafe_bug = "no-dir-fsync"
snapshot_entries = 50
disk_model = ["posix", "journaled", "names-durable"]
expect_by_model = { journaled = "linearizable", names-durable = "linearizable" }
"#,
    )
    .unwrap();
    let store = tmp.path().join("camp");
    let mut cmd = Command::new(faultline_bin());
    cmd.args(["campaign", "--json"])
        .arg(&file)
        .arg("--store")
        .arg(&store)
        .process_group(0);
    let child = start(cmd, tmp.path(), "models");
    let (code, out, err) = finish(child, tmp.path(), "models", Duration::from_secs(240));
    // Caught under posix, clean under the other two: each as expected.
    assert_eq!(code, 0, "{out}\n{err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let camp = std::path::PathBuf::from(summary["campaign"].as_str().unwrap());
    let page = std::fs::read_to_string(camp.join("index.html")).unwrap();
    assert!(page.contains("Findings by disk model"), "{page}");
    assert!(
        page.contains("no-dir-fsync under lose-unsynced@follower:")
            && page.contains("under posix, none under journaled and names-durable"),
        "{page}"
    );
    let (code, out, err) = {
        let mut cmd = Command::new(faultline_bin());
        cmd.args(["compare", "--json"]).arg(&camp).process_group(0);
        let child = start(cmd, tmp.path(), "compare");
        finish(child, tmp.path(), "compare", Duration::from_secs(60))
    };
    assert_eq!(code, 0, "{out}\n{err}");
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        line["pairs"],
        serde_json::json!([
            ["no-dir-fsync@posix", "no-dir-fsync@journaled"],
            ["no-dir-fsync@posix", "no-dir-fsync@names-durable"]
        ]),
        "{line}"
    );
    let c = json(
        &std::path::PathBuf::from(line["report"].as_str().unwrap())
            .parent()
            .unwrap()
            .join("compare.json"),
    );
    for cell in c["shared"].as_array().unwrap() {
        assert_eq!(cell["verdicts_a"]["not_linearizable"], 1, "{cell}");
        assert_eq!(cell["verdicts_b"]["linearizable"], 1, "{cell}");
    }
    assert_eq!(c["shared"].as_array().unwrap().len(), 2, "{c}");
    assert!(c["only_a"].as_array().unwrap().is_empty(), "{c}");
    assert!(mounts_under(tmp.path()).is_empty());
}

/// etcd under a power loss of every member, under two disk models: each
/// run reaches a verdict, and every name the layer undid is explained.
#[test]
fn etcd_under_a_coordinated_power_loss_is_decided_and_explained_under_two_models() {
    if !disk_layer_available("etcd disk models") || !common::etcd_available("etcd disk models") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for model in ["posix", "journaled"] {
        let tag = format!("etcd-{model}");
        let (code, out, err) = run(
            tmp.path(),
            &tag,
            &[
                "--target",
                "etcd",
                "--disk-model",
                model,
                "--nemesis",
                "lose-unsynced@all",
                "--time-limit",
                "12",
                "--fault-interval",
                "3",
                "--seed",
                "1",
            ],
            Duration::from_secs(180),
        );
        // What etcd does is a result: a verdict (0, 1), never a bench error.
        assert!(code == 0 || code == 1, "{tag}: {code}\n{out}\n{err}");
        println!("{tag}: exit {code}");
        let disk = json(&run_dir(&tmp.path().join(&tag)).join("disk.json"));
        assert_eq!(disk["model"], model, "{disk}");
        for e in disk["events"].as_array().unwrap() {
            let undone = e["names_undone"].as_array().map_or(0, Vec::len);
            let why = e["why"].as_array().map_or(0, Vec::len);
            assert!(
                why >= undone.min(20),
                "{tag}: {undone} names undone, {why} explained: {e}"
            );
        }
    }
    assert!(mounts_under(tmp.path()).is_empty());
}
