//! Ctrl-C tears everything down: after SIGINT to `faultline cluster` or to a
//! `faultline run` in the middle of a pause fault, no node process this
//! run started is left, paused ones included.

mod common;

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
