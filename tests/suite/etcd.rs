//! etcd under the bench, on real etcd processes (3 members): linearizable
//! under partition-leader (kernel backend) and crash-leader; serializable
//! reads caught under partition-leader; nothing left behind; the side by
//! side write benchmark. Skipped (one line) without etcd, root, `ip` or
//! `nft`, except under `CI=true`.

use crate::common;

use std::time::Duration;

fn v_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_default()
}

#[test]
fn etcd_is_linearizable_under_faults_and_its_serializable_reads_are_caught() {
    if !common::etcd_available("etcd") || !common::kernel_backend_available("etcd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("etcd.toml"),
        r#"
name = "etcd-test"
faults = ["partition-leader", "crash-leader"]
[run]
time_limit = 12
fault_interval = 3
target = "etcd"
net = "kernel"
[[setting]]
name = "linearizable"
election_timeout = "500..1000"
heartbeat = 50
[[setting]]
name = "serializable"
election_timeout = "500..1000"
heartbeat = 50
read_mode = "serializable"
faults = ["partition-leader"]
expect = "not-linearizable"
"#,
    )
    .unwrap();
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &["campaign", "etcd.toml", "--store", "store", "--json"],
        Duration::from_secs(400),
    );
    // Exit 0: the serializable run is not linearizable, as its control expects.
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(v_of(&out)["controls_caught"], 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["runs"], 3, "{v}");
    let invalid: Vec<String> = v["not_linearizable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(invalid.len(), 1, "{v}");
    assert!(invalid[0].contains("serializable"), "{v}");
    assert_eq!(v["unknown"], serde_json::json!([]), "{v}");
    // Every run names etcd and its version; the data stayed inside the run.
    let campaign = dir.path().join(v["campaign"].as_str().unwrap());
    for e in std::fs::read_dir(&campaign).unwrap().flatten() {
        if !e.path().is_dir() {
            continue;
        }
        let spec = std::fs::read_to_string(e.path().join("spec.json")).unwrap();
        assert!(spec.contains("\"target\": \"etcd\""), "{spec}");
        assert!(spec.contains("\"target_version\": \"3."), "{spec}");
        assert!(
            e.path().join("nodes/n1/member").is_dir(),
            "no etcd data in the run"
        );
        let page = std::fs::read_to_string(e.path().join("index.html")).unwrap();
        assert!(page.contains("etcd 3."), "the run page does not name etcd");
    }
    let mut top: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["etcd.toml", "store"], "files outside the store");
    // faultline's node beside etcd under the same fault, on the other
    // network backend: `faultline compare` lines up the cell they share
    // (the settings paired by hand), lists the rest, and says the targets
    // and the backends differ.
    std::fs::write(
        dir.path().join("node.toml"),
        r#"
name = "node-test"
faults = ["partition-leader"]
[run]
time_limit = 12
fault_interval = 3
[[setting]]
name = "default"
election_timeout = "500..1000"
heartbeat = 50
"#,
    )
    .unwrap();
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &["campaign", "node.toml", "--store", "store", "--json"],
        Duration::from_secs(400),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let node = dir.path().join(v_of(&out)["campaign"].as_str().unwrap());
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &[
            "compare",
            campaign.to_str().unwrap(),
            node.to_str().unwrap(),
            "--pair",
            "linearizable=default",
            "--out",
            "etcd-vs-node",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let c: faultline_results::compare::Comparison = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("etcd-vs-node/compare.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (c.a.target.name(), c.b.target.name()),
        ("etcd", "faultline")
    );
    assert_eq!((c.a.net.name(), c.b.net.name()), ("kernel", "proxy"));
    assert_eq!(c.shared.len(), 1, "{:?}", c.shared);
    assert_eq!(
        (
            c.shared[0].setting_a.as_str(),
            c.shared[0].setting_b.as_str()
        ),
        ("linearizable", "default")
    );
    assert!(c.shared[0].windows.0 > 0 && c.shared[0].windows.1 > 0);
    let lone: Vec<(&str, &str)> = c
        .only_a
        .iter()
        .map(|l| (l.setting.as_str(), l.fault.as_str()))
        .collect();
    assert_eq!(
        lone,
        [
            ("linearizable", "crash-leader"),
            ("serializable", "partition-leader")
        ]
    );
    let page = std::fs::read_to_string(dir.path().join("etcd-vs-node/index.html")).unwrap();
    assert!(
        page.contains("target (etcd vs faultline)")
            && page.contains("network backend (kernel vs proxy)"),
        "the page says what differs besides the settings"
    );
    std::fs::remove_dir_all(dir.path().join("etcd-vs-node")).unwrap();
    std::fs::remove_file(dir.path().join("node.toml")).unwrap();
    // The control with linearizable reads is not caught: the campaign fails.
    std::fs::write(
        dir.path().join("control.toml"),
        r#"
name = "etcd-control"
faults = ["partition-leader"]
[run]
time_limit = 12
fault_interval = 3
target = "etcd"
net = "kernel"
[[setting]]
name = "serializable"
election_timeout = "500..1000"
heartbeat = 50
read_mode = "linearizable"
expect = "not-linearizable"
"#,
    )
    .unwrap();
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &["campaign", "control.toml", "--store", "store", "--json"],
        Duration::from_secs(400),
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.trim()
            .lines()
            .last()
            .is_some_and(|l| l.contains("positive control not caught")),
        "{err}"
    );
    // No etcd process of this campaign is left.
    let needle = dir.path().to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')));
        assert!(zombie || !cmd.contains(&needle), "left running: {cmd}");
    }
}

#[test]
fn bench_node_puts_faultline_beside_etcd() {
    if !common::etcd_available("etcd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &[
            "bench",
            "node",
            "--target",
            "etcd",
            "--duration",
            "1",
            "--clients",
            "8",
            "--conns",
            "2",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("faultline (group commit):"), "{out}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("etcd 3.")),
        "{out}"
    );
    assert!(out.contains("faultline (group commit) / etcd 3."), "{out}");
}

#[test]
fn a_missing_etcd_is_one_line_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::faultline_bin())
        .args([
            "run",
            "--target",
            "etcd",
            "--nemesis",
            "crash",
            "--seed",
            "1",
            "--store",
        ])
        .arg(dir.path())
        .env("PATH", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("etcd not found on PATH: install the etcd-server package"),
        "{err}"
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    let (code, _, err) = common::faultline(&[
        "run",
        "--target",
        "etcd",
        "--etcd-bin",
        "/nonexistent/etcd",
        "--nemesis",
        "crash",
        "--seed",
        "1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--etcd-bin '/nonexistent/etcd': no such file"),
        "{err}"
    );
}

#[test]
fn a_member_that_fails_to_start_shows_its_logs_last_lines() {
    // A stand-in "etcd" that knows its version but cannot start.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("etcd");
    std::fs::write(
        &fake,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'etcd Version: 3.4.99'; exit 0; fi\necho 'first line' >&2\necho 'fatal: cannot bind the peer port' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let store = dir.path().join("store");
    let run = || {
        common::faultline(&[
            "run",
            "--target",
            "etcd",
            "--etcd-bin",
            fake.to_str().unwrap(),
            "--nemesis",
            "crash",
            "--seed",
            "1",
            "--store",
            store.to_str().unwrap(),
        ])
    };
    let (code, _, err) = run();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exited during start-up"), "{err}");
    assert!(err.contains("fatal: cannot bind the peer port"), "{err}");
    // An etcd too old for the v3 JSON gateway is refused in one line.
    std::fs::write(&fake, "#!/bin/sh\necho 'etcd Version: 3.2.1'\n").unwrap();
    let (code, _, err) = run();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("etcd 3.2.1") && err.contains("not supported"),
        "{err}"
    );
}
