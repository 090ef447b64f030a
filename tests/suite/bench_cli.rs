//! `faultline bench node` end to end on a small load: both modes run on a
//! real cluster, print their figures and the ratio, and leave no data behind.

use crate::common;
use common::faultline_in;

use std::time::Duration;

/// The writes/s figure of the line that starts with `mode:`.
fn writes_per_s(stdout: &str, mode: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{mode}:")))
        .unwrap_or_else(|| panic!("no {mode} line in:\n{stdout}"));
    line.split_whitespace()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no figure in {line:?}"))
}

#[test]
fn bench_node_runs_both_modes_side_by_side_on_shared_connections() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "node",
        "--duration",
        "1",
        "--clients",
        "8",
        "--conns",
        "2",
    ];
    let (code, out, err) = faultline_in(dir.path(), &args, Duration::from_secs(120));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("3 nodes, 8 clients on 2 connections, 1 s per mode"),
        "{out}"
    );
    let group = writes_per_s(&out, "faultline (group commit)");
    let single = writes_per_s(&out, "faultline (fsync per entry)");
    assert!(group > 0.0 && single > 0.0, "{out}");
    let ratio_line = out
        .lines()
        .find(|l| l.starts_with("faultline (group commit) / faultline (fsync per entry):"))
        .unwrap_or_else(|| panic!("no ratio in:\n{out}"));
    assert!(ratio_line.contains("x writes/s, p99"), "{ratio_line}");
    // The clusters' data directories are removed afterwards.
    let left: Vec<_> = walk(&dir.path().join("store/bench-node"));
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn bench_soak_measures_memory_disk_and_restart_with_and_without_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "soak",
        "--duration",
        "3",
        "--baseline-duration",
        "2",
        "--clients",
        "8",
        "--conns",
        "2",
        "--snapshot-entries",
        "500",
    ];
    let (code, out, err) = faultline_in(dir.path(), &args, Duration::from_secs(180));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let with = writes_per_s(&out, "snapshot every 500 entries");
    let without = writes_per_s(&out, "no snapshots");
    assert!(with > 0.0 && without > 0.0, "{out}");
    for what in [
        "peak RSS MiB: n1 ",
        "peak data directory MiB: n1 ",
        "restarted: answers in ",
        "with / without snapshots: ",
        "goals: peak RSS ",
    ] {
        assert_eq!(
            out.matches(what).count(),
            if what.starts_with("with") || what.starts_with("goals") {
                1
            } else {
                2
            },
            "{what} in:\n{out}"
        );
    }
    // The restarted node of the snapshot mode started from its snapshot.
    let restart = out
        .lines()
        .find(|l| l.contains("restarted:") && !l.contains("at 0)"))
        .unwrap_or_else(|| panic!("no restart from a snapshot in:\n{out}"));
    assert!(restart.contains("serving again in"), "{restart}");
    let left: Vec<_> = walk(&dir.path().join("store/bench-soak"));
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn bench_node_refuses_zero_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = faultline_in(
        dir.path(),
        &["bench", "node", "--conns", "0"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--conns"), "{err}");
}

/// The list-append benchmark's file row: the history written, checked by
/// `faultline check` in a process of its own, and the file removed.
#[test]
fn bench_check_append_from_a_file_checks_it_and_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = faultline_in(
        dir.path(),
        &["bench", "check-append", "3000", "40", "3", "0.6", "--file"],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.starts_with("append file: 3001 txns") && out.contains("faultline check valid"),
        "{out}"
    );
    assert!(out.contains("its peak RSS"), "{out}");
    let scratch = dir.path().join("store").join("bench-check-append");
    assert_eq!(walk(&scratch), Vec::<std::path::PathBuf>::new());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        found.push(e.path());
    }
    found
}
