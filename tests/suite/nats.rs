//! NATS JetStream under the bench, on real nats-server processes (3
//! members, kernel backend): leader faults reach a verdict with real
//! traffic; packet loss, which cannot stale the stream's leader, stays
//! linearizable; direct reads (from any replica) are caught; a power loss
//! of every member reaches a verdict; Ctrl-C leaves no nats-server process
//! and no mount. What nats-server does under a leader fault is recorded
//! (printed), not asserted: its leader serves reads from its own state
//! without asking a quorum, so a stale read there may be a finding about
//! nats-server, not a mapping error (docs/nats.md). The workload has no
//! compare-and-set here: nats-server 2.9.10's conditional publish races
//! (nats-server issue 4320), which the `nats` preset shows. Skipped (one
//! line) without nats-server, root, `ip` or `nft`, except under `CI=true`.

use crate::common;
use common::mounts_under;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

fn available(test: &str) -> bool {
    common::nats_available(test) && common::kernel_backend_available(test)
}

/// The processes whose command line mentions `needle`.
fn pids_mentioning(needle: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-f", needle])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("pgrep"))
        .map(str::to_string)
        .collect()
}

#[test]
fn nats_reaches_verdicts_under_leader_faults_and_its_direct_reads_are_caught() {
    if !available("nats") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nats.toml"),
        r#"
name = "nats-test"
faults = ["partition-leader", "pause-leader", "crash-leader"]
[run]
time_limit = 14
fault_interval = 4
target = "nats"
net = "kernel"
mix = [50, 50, 0]
op_timeout = 2000
seed = 1
[[setting]]
name = "leader-faults"
[[setting]]
name = "loss"
faults = ["loss:0.2"]
[[setting]]
name = "direct"
read_mode = "direct"
faults = ["partition-leader"]
# Two windows, each with a quiet stretch after it: a member that was cut
# off answers direct gets from its own state before it has caught up
# (caught in 4 of 4 seeds with this shape on 2026-12-06; with one window
# that ends the run, not in 1 of 1).
time_limit = 36
fault_interval = 8
expect = "not-linearizable"
"#,
    )
    .unwrap();
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &[
            "campaign",
            "nats.toml",
            "--store",
            "store",
            "--json",
            "--jobs",
            "3",
        ],
        Duration::from_secs(600),
    );
    // 0, or 1 when a leader fault showed nats-server not linearizable.
    assert!(code == 0 || code == 1, "{code}\n{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["runs"], 5, "{v}");
    let campaign = dir.path().join(v["campaign"].as_str().unwrap());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(campaign.join("results.json")).unwrap())
            .unwrap();
    for r in results["runs"].as_array().unwrap() {
        let (setting, fault) = (r["setting"].as_str().unwrap(), r["fault"].as_str().unwrap());
        let run = campaign.join(r["dir"].as_str().unwrap());
        let res: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
                .unwrap();
        // Every run decided, with real traffic through nats-server.
        let ok: u64 = res["counts"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["ok"].as_u64().unwrap_or(0))
            .sum();
        assert!(ok > 20, "{setting} / {fault}: {ok} ok operations");
        let valid = &res["valid"];
        assert!(
            valid == true || valid == false,
            "{setting} / {fault}: {valid}"
        );
        let spec = std::fs::read_to_string(run.join("spec.json")).unwrap();
        assert!(spec.contains("\"target_version\": \"2."), "{spec}");
        assert!(run.join("nodes/n1/jetstream").is_dir(), "no JetStream data");
        println!("nats {setting} / {fault}: valid {valid}");
        match setting {
            "loss" => assert_eq!(valid, true, "loss cannot stale the leader: {res}"),
            "direct" => assert_eq!(valid, false, "direct reads not caught: {err}"),
            _ => {}
        }
    }
    // The stream's leader was found: the leader faults hit a member and
    // the leader timeline has a leader.
    let availability: Vec<f64> = results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["setting"] == "loss")
        .filter_map(|r| r["availability"].as_f64())
        .collect();
    assert!(availability.iter().all(|a| *a > 0.5), "{availability:?}");
    // Nothing of nats-server outlives the campaign.
    assert!(
        pids_mentioning(&dir.path().to_string_lossy()).is_empty(),
        "{:?}",
        pids_mentioning(&dir.path().to_string_lossy())
    );
}

/// A power loss of every member (within nats-server's two-minute flush
/// window) reaches a verdict, whichever; then Ctrl-C in the middle of a
/// run with the disk layer mounted leaves no nats-server and no mount.
#[test]
fn a_coordinated_power_loss_is_decided_and_ctrl_c_leaves_nothing() {
    if !available("nats power loss") {
        return;
    }
    if unsafe { libc::geteuid() } != 0 || faultline_disk::fs::check_prerequisites().is_err() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run the disk faults"
        );
        println!("nats power loss: skipped: needs root and fuse3");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = common::faultline_in(
        tmp.path(),
        &[
            "run",
            "--target",
            "nats",
            "--net",
            "kernel",
            "--nemesis",
            "lose-unsynced@all",
            "--time-limit",
            "12",
            "--fault-interval",
            "4",
            "--mix",
            "50,50,0",
            "--seed",
            "1",
            "--store",
            "s",
            "--json",
        ],
        Duration::from_secs(300),
    );
    // What nats-server does is a result: a verdict (0 or 1), never an error.
    assert!(code == 0 || code == 1, "{code}\n{out}\n{err}");
    let line: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    println!("nats lose-unsynced@all: {line}");
    let run = common::run_dir(&tmp.path().join("s"));
    let disk = common::json(&run.join("disk.json"));
    let events = disk["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "every member lost power: {disk}");
    assert!(mounts_under(tmp.path()).is_empty());

    let mut cmd = Command::new(common::faultline_bin());
    cmd.args([
        "run",
        "--target",
        "nats",
        "--net",
        "kernel",
        "--nemesis",
        "slow-disk@leader",
        "--time-limit",
        "60",
        "--fault-interval",
        "2",
        "--store",
    ])
    .arg(tmp.path().join("c"))
    .process_group(0);
    let child = common::start(cmd, tmp.path(), "ctrl-c");
    let needle = tmp.path().join("c").to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while mounts_under(&tmp.path().join("c")).len() < 3
        || pids_mentioning(&format!("nats-server.*{needle}")).len() < 3
    {
        assert!(Instant::now() < deadline, "the members did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the run's own process group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let (code, _, err) = common::finish(child, tmp.path(), "ctrl-c", Duration::from_secs(60));
    assert_ne!(code, 0, "{err}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(mounts_under(tmp.path()).is_empty() && pids_mentioning(&needle).is_empty()) {
        assert!(
            Instant::now() < deadline,
            "left: mounts {:?}, processes {:?}",
            mounts_under(tmp.path()),
            pids_mentioning(&needle)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Without nats-server: one line naming the package, exit 2, no store.
#[test]
fn a_missing_nats_server_is_one_line_naming_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(common::faultline_bin())
        .args([
            "run",
            "--target",
            "nats",
            "--nemesis",
            "crash-leader",
            "--store",
        ])
        .arg(tmp.path().join("s"))
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        last.contains("nats-server not found on PATH")
            && last.contains("apt-get install nats-server"),
        "{err}"
    );
    assert!(!tmp.path().join("s").exists(), "a store was made: {err}");
    // And one that is not there, named by --bin.
    let out = Command::new(common::faultline_bin())
        .args(["run", "--target", "nats", "--nemesis", "crash-leader"])
        .args(["--bin", "/nonexistent/nats-server", "--store"])
        .arg(tmp.path().join("s"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/nonexistent/nats-server") && err.trim().lines().count() <= 2,
        "{err}"
    );
}
