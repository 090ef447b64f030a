//! The short bug hunt in CI: known-bug variants of the node must be caught,
//! and the correct node must pass under the same faults. The exposures are
//! chosen to trigger every time: stale-read under leader isolation (the old
//! leader and lagging followers answer from local state), volatile-log under
//! a crash of every node (acknowledged writes vanish, reads return null),
//! one-step-membership under membership-split (the cut-off leader grows the
//! cluster by two fresh nodes in one step and commits with them alone, while
//! the old majority elects another leader: split brain). The correct node
//! also runs the membership faults.

use crate::common;

use std::process::Command;

#[test]
fn known_bugs_are_caught_and_the_correct_node_passes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = Command::new(common::faultline_bin())
        .args([
            "campaign",
            "--preset",
            "bug-hunt-ci",
            "--json",
            "--store",
            store.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "every variant caught and the correct node clean is as expected\n{stdout}\n{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let camp = std::path::PathBuf::from(summary["campaign"].as_str().unwrap());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(camp.join("results.json")).unwrap()).unwrap();
    let runs = results["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8);
    for r in runs {
        let setting = r["setting"].as_str().unwrap();
        let valid = &r["valid"];
        if setting.starts_with("correct") {
            assert_eq!(
                valid,
                &serde_json::json!(true),
                "false alarm on the correct node: {r}\n{stderr}"
            );
        } else {
            assert_eq!(
                valid,
                &serde_json::json!(false),
                "variant {setting} was not caught: {r}\n{stderr}"
            );
        }
    }
    // Every lag forced an InstallSnapshot: each lagged follower installed one.
    for r in runs
        .iter()
        .filter(|r| r["fault"].as_str().unwrap().contains("lag"))
    {
        let dir = camp.join(r["dir"].as_str().unwrap());
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        // A lag whose victim was the leader at that moment isolates a
        // leader, not a follower (the schedule is seeded, who leads is not).
        let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
        let followers: Vec<String> = history
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["f"] == "start-partition")
            .map(|e| e["value"]["detail"].clone())
            .filter(|d| d["lagging"].is_string() && d["leader"] != d["lagging"])
            .filter_map(|d| d["lagging"].as_str().map(String::from))
            .collect();
        // (Under load both named nodes can lead in turn when cut off —
        // seen in CI: lag@n2 isolated leader n2, n3 took over, lag@n3
        // isolated it — and then no follower lagged in that run.)
        for id in followers {
            assert!(
                run["snapshots"][id.as_str()]["installed"].as_u64() >= Some(1),
                "{id} lagged but installed no snapshot: {}",
                run["snapshots"]
            );
        }
    }
    let page = std::fs::read_to_string(camp.join("index.html")).unwrap();
    assert!(page.contains("Bug hunt: detection"));
    assert!(page.contains("AS EXPECTED: 4 runs linearizable, 4 positive controls caught"));
    assert_eq!(summary["controls_caught"], 4);
}

/// A campaign file with a correct setting and a known-bug variant: caught
/// under the fault that exposes it, the campaign passes (exit 0); with that
/// fault replaced by one that cannot expose it, the variant is not caught
/// and the campaign fails (exit 1), naming it on its last line.
#[test]
fn a_control_that_is_caught_passes_and_one_that_is_not_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let campaign = |bug_fault: &str| {
        let file = dir.path().join(format!("c-{bug_fault}.toml"));
        std::fs::write(
            &file,
            format!(
                "name = \"controls\"\nfaults = [\"crash-all\"]\n[run]\ntime_limit = 6\nfault_interval = 1.5\nkeys = 10\nrate = 150\nseed = 7\n\
                 [[setting]]\nname = \"correct\"\n\
                 [[setting]]\nname = \"volatile-log\"\nunsafe_bug = \"volatile-log\"\nfaults = [\"{bug_fault}\"]\n"
            ),
        )
        .unwrap();
        let out = Command::new(common::faultline_bin())
            .arg("campaign")
            .arg(&file)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = campaign("crash-all");
    assert_eq!(code, Some(0), "{out}{err}");
    let page = std::fs::read_to_string(out.trim().strip_prefix("report: ").unwrap()).unwrap();
    assert!(
        page.contains("AS EXPECTED: 1 run linearizable, 1 positive control caught"),
        "{out}{err}"
    );
    // volatile-log loses writes only when every node restarts.
    let (code, out, err) = campaign("pause-leader");
    assert_eq!(code, Some(1), "{out}{err}");
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("volatile-log__pause-leader__1: positive control not caught"),
        "{err}"
    );
    let page = std::fs::read_to_string(out.trim().strip_prefix("report: ").unwrap()).unwrap();
    assert!(page.contains("UNEXPECTED: 1 of 2 runs"), "{out}");
}
