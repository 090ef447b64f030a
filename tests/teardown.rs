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
