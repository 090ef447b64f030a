//! The list-append workload (`--workload append`) on real processes of
//! each target that runs it: faultline's node stays strict serializable
//! under a partition, a pause and a crash of the leader, and its
//! stale-read variant is caught; etcd (multi-key transactions) runs to a
//! verdict; a Maelstrom node written for `txn-list-append` is judged (the
//! project's correct one passes, the one without replication is caught);
//! NATS refuses the workload in one line.

use crate::common;
use common::{faultline_in, json, run_dir};

use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(240);

fn run(store: &Path, args: &[&str]) -> (i32, String, String) {
    let fixed = ["--workload", "append", "--seed", "7", "--rate", "80"];
    common::run_in_store(store, &fixed, args, LIMIT)
}

/// The run's results: its list-append report, after checking the history
/// holds committed transactions with reads.
fn results(store: &Path) -> serde_json::Value {
    let dir = run_dir(store);
    let r = json(&dir.join("results.json"));
    assert!(
        r["counts"]["txn"]["ok"].as_u64().unwrap() > 20,
        "too few committed transactions to judge: {}",
        r["counts"]
    );
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(
        history.contains(r#""type":"ok","value":[["r","#)
            || history.contains(r#""type":"ok","value":[["append""#),
        "no committed transaction in the history"
    );
    r
}

#[test]
fn faultlines_node_stays_strict_serializable_under_partition_pause_and_crash() {
    let store = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        store.path(),
        &[
            "--nemesis",
            "partition-leader,pause-leader,crash-leader",
            "--time-limit",
            "12",
            "--fault-interval",
            "2",
            "--txn-keys",
            "2",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let r = results(store.path());
    assert_eq!(r["valid"], true, "{}", r["txns"]);
    assert_eq!(r["txns"]["consistency"], "strict-serializable");
    assert!(r["txns"]["report"]["edges"].as_u64().unwrap() > 0);
    let faults: Vec<String> = r["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap_or_default().to_string())
        .collect();
    for f in ["partition-leader", "pause-leader", "crash-leader"] {
        assert!(
            faults.iter().any(|x| x.starts_with(f)),
            "{f} not in {faults:?}"
        );
    }
    assert!(err.contains("strict-serializable"), "{err}");
}

#[test]
fn the_stale_read_variant_is_caught_by_its_transactions() {
    let store = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        store.path(),
        &[
            "--nemesis",
            "partition-leader",
            "--time-limit",
            "10",
            "--fault-interval",
            "3",
            "--unsafe-bug",
            "stale-read",
        ],
    );
    // Expected to be caught (the default for a known-bug variant): exit 0.
    assert_eq!(code, 0, "{out}\n{err}");
    let r = results(store.path());
    assert_eq!(r["valid"], false, "{}", r["txns"]);
    let a = &r["txns"]["report"]["anomalies"][0];
    assert!(!a["class"].as_str().unwrap().is_empty(), "{a}");
    assert!(
        err.contains("NOT STRICT-SERIALIZABLE"),
        "the verdict line names the model: {err}"
    );
    // The page shows the anomaly's transactions and edges.
    let page = std::fs::read_to_string(run_dir(store.path()).join("index.html")).unwrap();
    assert!(page.contains("NOT STRICT-SERIALIZABLE"), "no banner");
    assert!(page.contains(a["class"].as_str().unwrap()), "no class");
    assert!(page.contains("<svg"), "no drawing");
}

#[test]
fn etcd_runs_multi_key_transactions_to_a_verdict() {
    if !common::etcd_available("append on etcd")
        || !common::kernel_backend_available("append on etcd")
    {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        store.path(),
        &[
            "--target",
            "etcd",
            "--net",
            "kernel",
            "--nemesis",
            "partition-leader",
            "--time-limit",
            "10",
            "--fault-interval",
            "3",
            "--txn-keys",
            "2",
        ],
    );
    let r = results(store.path());
    println!("etcd append verdict: {} (exit {code})", r["valid"]);
    assert!(r["valid"] == true || r["valid"] == false, "{out}\n{err}");
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let history = std::fs::read_to_string(run_dir(store.path()).join("history.jsonl")).unwrap();
    // Multi-key transactions committed.
    assert!(
        history
            .lines()
            .any(|l| l.contains(r#""type":"ok""#) && l.contains(r#""k"#) && {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let keys: std::collections::BTreeSet<&str> = v["value"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|m| m[1].as_str())
                    .collect();
                keys.len() > 1
            }),
        "no committed multi-key transaction"
    );
}

#[test]
fn a_maelstrom_txn_list_append_node_is_judged() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var("CI").as_deref() != Ok("true"));
        return;
    }
    let node = |n: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/maelstrom")
            .join(n)
            .display()
            .to_string()
    };
    let good = tempfile::tempdir().unwrap();
    let primary = node("primary.py");
    let (code, out, err) = run(
        good.path(),
        &[
            "--target",
            "maelstrom",
            "--bin",
            &primary,
            "--nemesis",
            "partition-leader",
            "--time-limit",
            "6",
            "--fault-interval",
            "2",
            "--txn-keys",
            "3",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(results(good.path())["valid"], true);
    let bad = tempfile::tempdir().unwrap();
    let local = node("local.py");
    let (code, out, err) = run(
        bad.path(),
        &[
            "--target",
            "maelstrom",
            "--bin",
            &local,
            "--nemesis",
            "",
            "--time-limit",
            "5",
            "--random-node",
        ],
    );
    assert_eq!(
        code, 1,
        "an unreplicated store is not serializable: {out}\n{err}"
    );
    assert_eq!(results(bad.path())["valid"], false);
}

#[test]
fn nats_and_bad_shapes_are_refused_in_one_line() {
    let store = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["--target", "nats", "--net", "kernel"],
            "--workload append is not supported on nats",
        ),
        (vec!["--txn-len", "0"], "--txn-len must be between 1 and 64"),
        (vec!["--txn-keys", "9"], "--txn-keys must be between 1"),
    ] {
        let (code, out, err) = run(store.path(), &args);
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    let (code, _, err) = faultline_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &[
            "run",
            "--txn-len",
            "3",
            "--store",
            &store.path().display().to_string(),
        ],
        LIMIT,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--txn-len, --txn-keys and --consistency are for the append workload"),
        "{err}"
    );
    let (code, _, err) = faultline_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["run", "--workload", "lock", "--consistency", "serializable"],
        LIMIT,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "--consistency are for the append workload (--workload append); this run's workload is lock"
        ) && err.trim().lines().count() == 1,
        "{err}"
    );
}
