//! `--net kernel` from the command line: what it refuses before anything
//! starts, and a campaign of the correct node on the kernel backend that
//! must find every run linearizable. Skipped (with a line saying why)
//! without root, `ip` or `nft`, except under `CI=true`.

use crate::common;

use std::time::Duration;

#[test]
fn faults_the_kernel_backend_cannot_make_are_refused_in_one_line() {
    if !common::kernel_backend_available("kernel_cli") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_string_lossy().into_owned();
    let (code, _, err) = common::faultline(&[
        "run",
        "--net",
        "kernel",
        "--nodes",
        "5",
        "--nemesis",
        "figure-8",
        "--seed",
        "1",
        "--store",
        &store,
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("only the proxy can") && err.contains("--net proxy"),
        "{err}"
    );

    let netem = faultline_nemesis::net::kernel::netns::netem_available().unwrap();
    let (code, _, err) = common::faultline(&[
        "run",
        "--net",
        "kernel",
        "--nemesis",
        "delay:50",
        "--time-limit",
        "10",
        "--seed",
        "1",
        "--store",
        &store,
    ]);
    if netem {
        println!("kernel_cli: this kernel has netem; the refusal of delay is not tested here");
        assert_eq!(code, 0, "{err}");
    } else {
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("sch_netem") && err.contains("--net proxy"),
            "{err}"
        );
    }
    // Nothing was stored for a refused run.
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none() || netem);

    let (code, _, err) = common::faultline(&["run", "--net", "bridge", "--store", &store]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not a network backend (proxy, kernel or hosts)"),
        "{err}"
    );
}

#[test]
fn missing_tools_are_named_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::faultline_bin())
        .args(["run", "--net", "kernel", "--store"])
        .arg(dir.path())
        .env("PATH", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("needs 'ip'") && err.contains("iproute2"),
        "{err}"
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn the_correct_node_on_the_kernel_backend_is_linearizable_under_every_fault() {
    if !common::kernel_backend_available("kernel_cli") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kernel.toml"),
        r#"
name = "kernel"
faults = ["partition-leader", "partition-halves", "loss:0.2", "crash-leader"]
[run]
time_limit = 8
fault_interval = 2
net = "kernel"
[[setting]]
name = "default"
"#,
    )
    .unwrap();
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &["campaign", "kernel.toml", "--store", "store", "--json"],
        Duration::from_secs(400),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["runs"], 4, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["not_linearizable"], serde_json::json!([]), "{v}");
    assert_eq!(v["unknown"], serde_json::json!([]), "{v}");
    // Every run stored the kernel's packet counters and says which network it used.
    let campaign = std::path::PathBuf::from(v["campaign"].as_str().unwrap());
    let campaign = if campaign.is_absolute() {
        campaign
    } else {
        dir.path().join(campaign)
    };
    let mut runs = 0;
    for e in std::fs::read_dir(&campaign).unwrap().flatten() {
        if !e.path().is_dir() {
            continue;
        }
        runs += 1;
        let links = std::fs::read_to_string(e.path().join("links.json")).unwrap();
        assert!(links.contains("\"counted\": \"packets\""), "{links}");
        let page = std::fs::read_to_string(e.path().join("index.html")).unwrap();
        assert!(
            page.contains("Network: </b>kernel"),
            "the run page does not name the network"
        );
    }
    assert_eq!(runs, 4);
}
