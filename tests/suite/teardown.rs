//! Ctrl-C tears everything down: after SIGINT to `faultline cluster` or to a
//! `faultline run` in the middle of a pause fault, no node process this
//! run started is left, paused ones included.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Pids of processes whose command line mentions `needle`.
fn pids_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')));
        if cmd.contains(needle) && !zombie {
            out.push(pid);
        }
    }
    out
}

fn state_of(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.split(") ").nth(1)?.chars().next()
}

fn sigint(pid: u32) {
    // SAFETY: sending a signal touches no memory.
    unsafe {
        libc_kill(pid as i32, 2);
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn wait_gone(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = pids_mentioning(needle);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node processes left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn dir_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn ctrl_c_on_faultline_cluster_stops_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("c");
    let mut child = Command::new(common::faultline_bin())
        .args(["cluster", "--nodes", "3", "--dir", &dir_str(&data)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("Ctrl-C stops every node") {
            break;
        }
    }
    assert!(seen.contains("n3  client 127.0.0.1:"), "{seen}");
    let needle = dir_str(&data.join("nodes"));
    assert_eq!(pids_mentioning(&needle).len(), 3, "three nodes run");
    sigint(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    wait_gone(&needle);
}

#[test]
fn ctrl_c_during_a_run_with_a_paused_node_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut child = Command::new(common::faultline_bin())
        .args([
            "run",
            "--nemesis",
            "pause",
            "--fault-interval",
            "1",
            "--time-limit",
            "30",
            "--seed",
            "4",
            "--store",
            &dir_str(&store),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let needle = dir_str(&store);
    // Wait until one node is stopped by the pause fault.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pids = pids_mentioning(&needle);
        if pids.iter().any(|p| state_of(*p) == Some('T')) {
            break;
        }
        assert!(Instant::now() < deadline, "no node was paused: {pids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    sigint(child.id());
    let _ = child.wait().unwrap();
    wait_gone(&needle);
}

/// The network namespace of `pid`, as `net:[INODE]`.
fn netns_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Pids of the processes in any of the namespaces `ns`.
fn pids_in(ns: &[String]) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| netns_of(*pid).is_some_and(|n| ns.contains(&n)))
        .filter(|pid| state_of(*pid).is_some_and(|s| s != 'Z'))
        .collect()
}

fn host_network() -> (String, String, String) {
    let run = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    (
        run(&["ip", "netns", "list"]),
        run(&["ip", "-o", "link", "show"])
            .lines()
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            .collect::<Vec<_>>()
            .join(","),
        run(&["nft", "list", "tables"]),
    )
}

enum End {
    Normal,
    CtrlC,
    Kill,
}

/// Start `faultline run --net kernel`, see its controller and nodes in
/// namespaces of their own, end it as `end` says, and check that no
/// process, namespace, link or nftables table of the run is left.
fn kernel_run_leaves_nothing(end: End, seed: &str) {
    if !common::kernel_backend_available("teardown (kernel)") {
        return;
    }
    let before = host_network();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let limit = if matches!(end, End::Normal) {
        "6"
    } else {
        "60"
    };
    let mut child = Command::new(common::faultline_bin())
        .args([
            "run",
            "--net",
            "kernel",
            "--nemesis",
            "partition-leader",
            "--fault-interval",
            "1",
            "--time-limit",
            limit,
            "--seed",
            seed,
            "--store",
            &dir_str(&store),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let needle = dir_str(&store);
    let mine = netns_of(std::process::id()).unwrap();
    // Wait until three nodes run, each in a namespace of its own, and the
    // controller in another.
    let deadline = Instant::now() + Duration::from_secs(40);
    let namespaces = loop {
        let controller = netns_of(child.id());
        let nodes: Vec<u32> = pids_mentioning(&needle)
            .into_iter()
            .filter(|p| *p != child.id())
            .collect();
        let mut ns: Vec<String> = nodes.iter().filter_map(|p| netns_of(*p)).collect();
        ns.sort();
        ns.dedup();
        if let Some(c) = controller.filter(|c| *c != mine) {
            if ns.len() == 3 && !ns.contains(&c) && !ns.contains(&mine) {
                ns.push(c);
                break ns;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the run's namespaces never showed: {nodes:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    match end {
        End::Normal => {
            let deadline = Instant::now() + Duration::from_secs(120);
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "the run did not end");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        End::CtrlC => {
            sigint(child.id());
            let _ = child.wait().unwrap();
        }
        End::Kill => {
            let _ = child.kill();
            let _ = child.wait().unwrap();
        }
    }
    wait_gone(&needle);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = pids_in(&namespaces);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes left in the run's namespaces: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(host_network(), before, "the machine's own network changed");
}

#[test]
fn a_kernel_run_that_ends_leaves_no_process_namespace_or_link() {
    kernel_run_leaves_nothing(End::Normal, "11");
}

#[test]
fn ctrl_c_on_a_kernel_run_leaves_no_process_namespace_or_link() {
    kernel_run_leaves_nothing(End::CtrlC, "12");
}

#[test]
fn sigkill_of_a_kernel_run_leaves_no_process_namespace_or_link() {
    kernel_run_leaves_nothing(End::Kill, "13");
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal touches no memory.
    unsafe {
        libc_kill(pid as i32, sig);
    }
}

/// A stand-in `etcd` that answers `--version` and otherwise starts a child
/// of its own (`sleep MARK`) and waits: what a wrapper script does.
fn wrapper_etcd(dir: &Path, mark: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("etcd-wrapper.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'etcd Version: 3.5.0'; exit 0; fi\nsleep {mark} &\nsleep {mark}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Whether this machine mounts a cgroup v2 hierarchy (on these machines,
/// `/sys/fs/cgroup/unified` beside the v1 controllers).
fn cgroup2_here() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.contains(" - cgroup2 ")))
}

/// `faultline run --target etcd` with the stand-in `bin` (stderr piped),
/// once `n` processes mentioning `needle` (the members' children) run.
fn start_members_of(dir: &Path, bin: &Path, needle: &str, n: usize) -> std::process::Child {
    let child = Command::new(common::faultline_bin())
        .args(["run", "--target", "etcd", "--nemesis", "pause-leader"])
        .arg("--etcd-bin")
        .arg(bin)
        .arg("--store")
        .arg(dir.join("store"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids_mentioning(needle).len() < n {
        assert!(Instant::now() < deadline, "the members did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn sigint_or_sigterm_during_start_up_kills_the_members_children_too() {
    for (sig, mark) in [(2, 3517u32), (15, 3519u32)] {
        let dir = tempfile::tempdir().unwrap();
        let bin = wrapper_etcd(dir.path(), mark);
        let needle = format!("sleep {mark}");
        // The members never answer: wait until all three started their child.
        let mut child = start_members_of(dir.path(), &bin, &needle, 6);
        signal(child.id(), sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + sig), "{status:?}");
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(err.contains("interrupted by SIG"), "{err}");
        // Without the handler the scripts died and their children lived on.
        wait_gone(&needle);
    }
}

#[test]
fn ctrl_c_mid_campaign_leaves_a_store_that_report_reads_and_marks_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "name = \"cut\"\nfaults = [\"pause-leader\"]\nrepeats = 2\n[run]\ntime_limit = 30\nfault_interval = 1\nrate = 50\n[[setting]]\nname = \"a\"\n",
    )
    .unwrap();
    let mut child = Command::new(common::faultline_bin())
        .arg("campaign")
        .arg(&file)
        .arg("--store")
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first run has recorded some operations.
    let deadline = Instant::now() + Duration::from_secs(60);
    let history = loop {
        let found = std::fs::read_dir(&store).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path().join("a__pause-leader__1").join("history.jsonl"))
                .find(|h| std::fs::read_to_string(h).is_ok_and(|t| t.lines().count() > 20))
        });
        if let Some(h) = found {
            break h;
        }
        assert!(Instant::now() < deadline, "the first run never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    sigint(child.id());
    assert_eq!(child.wait().unwrap().code(), Some(130));
    wait_gone(&dir_str(&store));
    let run = history.parent().unwrap().to_path_buf();
    let campaign = run.parent().unwrap().to_path_buf();
    // What a killed writer leaves: torn last lines.
    for f in ["history.jsonl", "status.jsonl"] {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(run.join(f))
            .unwrap();
        std::io::Write::write_all(&mut file, b"{\"time\":99999999999,\"ty").unwrap();
    }
    let (code, out, err) = common::faultline(&["report", &dir_str(&campaign)]);
    // Cut short is not a pass: unknown (3), not linearizable (0).
    assert_eq!(code, 3, "{out}{err}");
    let results = std::fs::read_to_string(run.join("results.json")).unwrap();
    assert!(results.contains("\"interrupted\""), "{results}");
    let page = std::fs::read_to_string(run.join("index.html")).unwrap();
    assert!(page.contains("INTERRUPTED"), "the run page does not say so");
    assert!(
        page.contains("torn line"),
        "the run page does not name the torn line"
    );
    let page = std::fs::read_to_string(campaign.join("index.html")).unwrap();
    assert!(
        page.contains("interrupted"),
        "the campaign page does not say so"
    );
    assert!(
        page.contains("not run"),
        "the second run is not listed as not run"
    );
}

/// A member's descendant that leaves its process group and session (fork,
/// setsid, fork again: a daemon) is killed with the run all the same —
/// at its normal end, and on Ctrl-C and SIGTERM.
#[test]
fn a_members_daemonized_descendant_does_not_outlive_the_run() {
    use std::os::unix::fs::PermissionsExt;
    // Ctrl-C and SIGTERM: a stand-in etcd whose child escapes.
    for (sig, mark) in [(2, 3611u32), (15, 3613u32)] {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("etcd-daemon.sh");
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'etcd Version: 3.5.0'; exit 0; fi\nsetsid sh -c 'sleep {mark} & exit 0' &\nsetsid env -i sh -c 'sleep {} & exit 0' &\nsleep 3600\n",
                mark + 100
            ),
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let needle = format!("sleep {mark}");
        let mut child = start_members_of(dir.path(), &bin, &needle, 3);
        signal(child.id(), sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + sig), "{status:?}");
        wait_gone(&needle);
        // One that also cleared its environment: only the member's cgroup
        // finds it, where the machine has a cgroup v2 hierarchy.
        let cleared = format!("sleep {}", mark + 100);
        if cgroup2_here() {
            wait_gone(&cleared);
        } else {
            for p in pids_mentioning(&cleared) {
                signal(p, 9);
            }
            eprintln!("no cgroup v2 hierarchy here: a descendant that clears its environment is not tracked");
        }
    }
    // The normal end of a run: a Maelstrom node that daemonizes a sleeper.
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !python {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is needed under CI=true"
        );
        eprintln!("skipped the Maelstrom half: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/maelstrom/escape.py");
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &[
            "run",
            "--target",
            "maelstrom",
            "--bin",
            node.to_str().unwrap(),
            "--nemesis=",
            "--time-limit",
            "3",
        ],
        Duration::from_secs(120),
    );
    assert!([0, 1, 3].contains(&code), "{code}: {out}{err}");
    // The node's environment carries ESCAPE_MARK's default: 3607.
    wait_gone("sleep 3607");
}
