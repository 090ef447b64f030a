//! The short bug hunt in CI: known-bug variants of the node must be caught,
//! and the correct node must pass under the same faults. The exposures are
//! chosen to trigger every time: stale-read under leader isolation (the old
//! leader and lagging followers answer from local state), volatile-log under
//! a crash of every node (acknowledged writes vanish, reads return null),
//! one-step-membership under membership-split (the cut-off leader grows the
//! cluster by two fresh nodes in one step and commits with them alone, while
//! the old majority elects another leader: split brain). The correct node
//! also runs the membership faults.

mod common;

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
        Some(1),
        "the variants make the campaign fail\n{stdout}\n{stderr}"
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
        for id in ["n2", "n3"] {
            assert!(
                run["snapshots"][id]["installed"].as_u64() >= Some(1),
                "{id} lagged but installed no snapshot: {}",
                run["snapshots"]
            );
        }
    }
    let page = std::fs::read_to_string(camp.join("index.html")).unwrap();
    assert!(page.contains("Bug hunt"));
}
