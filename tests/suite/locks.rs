//! The lock workload (`--workload lock`) on real processes: faultline's
//! fenced lease lock keeps its protected register safe under pauses and
//! partitions with the holders' clients pausing past their leases; the
//! unfenced one is caught under client pauses (the positive control);
//! etcd's lock runs to a verdict; Maelstrom and bad flags are refused in
//! one line; `check` reads a Knossos-style mutex history.

use crate::common;
use common::{faultline_in, json, run_dir};

use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(240);

fn run(store: &Path, args: &[&str]) -> (i32, String, String) {
    let fixed = [
        "--workload",
        "lock",
        "--seed",
        "5",
        "--keys",
        "1",
        "--concurrency",
        "4",
        "--fault-interval",
        "3",
    ];
    common::run_in_store(store, &fixed, args, LIMIT)
}

fn history(store: &Path) -> String {
    std::fs::read_to_string(run_dir(store).join("history.jsonl")).unwrap()
}

#[test]
fn the_fenced_lock_keeps_its_register_safe_under_pauses_and_partitions() {
    let store = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        store.path(),
        &[
            "--fenced",
            "--lock-ttl",
            "1000",
            "--lock-pauses",
            "0.5",
            "--nemesis",
            "pause-leader,partition-leader",
            "--time-limit",
            "12",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let r = json(&run_dir(store.path()).join("results.json"));
    assert_eq!(r["valid"], true, "{}", r["checker"]);
    assert_eq!(r["locks"]["fenced"], true);
    assert_eq!(r["locks"]["stale_writes"].as_array().unwrap().len(), 0);
    let h = history(store.path());
    assert!(
        h.matches(r#""type":"ok","f":"acquire""#).count()
            + h.matches(r#""f":"acquire","key":"k0","node""#).count()
            > 0
    );
    assert!(
        r["counts"]["acquire"]["ok"].as_u64().unwrap() >= 5,
        "{}",
        r["counts"]
    );
    // Fencing was put to work: a paused holder's write was refused.
    assert!(
        h.contains("fenced: the register holds token"),
        "no write was fenced off"
    );
}

#[test]
fn the_unfenced_lock_is_caught_under_client_pauses() {
    let store = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        store.path(),
        &[
            "--lock-ttl",
            "1000",
            "--nemesis",
            "client-pause",
            "--time-limit",
            "10",
            "--expect",
            "not-linearizable",
        ],
    );
    assert_eq!(code, 0, "caught, as expected: {out}\n{err}");
    let r = json(&run_dir(store.path()).join("results.json"));
    assert_eq!(r["valid"], false);
    let l = &r["locks"];
    assert_eq!(l["fenced"], false);
    // A stale holder's write, and the lock's own counterexample.
    assert!(!l["stale_writes"].as_array().unwrap().is_empty(), "{l}");
    let m = &l["mutex"][0]["counterexample"];
    assert_eq!(m["kind"], "two-holders", "{m}");
    assert!(
        m["explanation"].as_str().unwrap().contains("acquired"),
        "{m}"
    );
    let page = std::fs::read_to_string(run_dir(store.path()).join("index.html")).unwrap();
    assert!(
        page.contains("write(s) by a stale holder"),
        "the page lists stale writes"
    );
    assert!(
        page.contains("No fault of the cluster was on between the two acquires"),
        "the page says what lay between"
    );
}

#[test]
fn etcds_lock_runs_to_a_verdict() {
    if !common::etcd_available("locks on etcd")
        || !common::kernel_backend_available("locks on etcd")
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
            "--lock-ttl",
            "2000",
            "--nemesis",
            "partition-leader",
            "--time-limit",
            "10",
            "--expect",
            "either",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let r = json(&run_dir(store.path()).join("results.json"));
    println!(
        "etcd lock under partition-leader: valid {} ({} stale writes)",
        r["valid"],
        r["locks"]["stale_writes"].as_array().unwrap().len()
    );
    assert!(r["valid"] == true || r["valid"] == false, "{}", r["valid"]);
    assert!(
        r["counts"]["acquire"]["ok"].as_u64().unwrap() >= 2,
        "{}",
        r["counts"]
    );
}

#[test]
fn refusals_are_one_line_and_check_reads_a_knossos_mutex_history() {
    let store = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["--target", "maelstrom", "--bin", "/bin/true"],
            "lin-kv workload has no lock",
        ),
        (
            vec!["--lock-pauses", "2"],
            "--lock-pauses is a share of holds",
        ),
        (vec!["--lock-ttl", "5"], "--lock-ttl must be between 100 ms"),
    ] {
        let (code, out, err) = run(store.path(), &args);
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    let s = store.path().display().to_string();
    let (code, _, err) = faultline_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["run", "--fenced", "--store", &s],
        LIMIT,
    );
    assert_eq!(code, 2);
    assert!(err.contains("are for the lock workload"), "{err}");
    let edn = store.path().join("mutex.edn");
    std::fs::write(
        &edn,
        "{:process 0, :type :invoke, :f :acquire, :value nil}\n{:process 0, :type :ok, :f :acquire, :value nil}\n{:process 1, :type :invoke, :f :acquire, :value nil}\n{:process 1, :type :ok, :f :acquire, :value nil}\n",
    )
    .unwrap();
    let (code, out, err) = faultline_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["check", "--format", "edn", &edn.display().to_string()],
        LIMIT,
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("two holders"), "{out}");
}
