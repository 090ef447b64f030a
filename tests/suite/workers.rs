//! Campaigns spread over worker hosts (`--workers`) and local cores
//! (`--jobs`), and finished later (`--resume`). The workers are real
//! `sshd` servers in network namespaces of the test's own sealed network
//! (tests/common/sshd.rs); the faultline under test runs in that network's
//! control namespace, so they are all it can reach.
//!
//! Over 600 lines: the workers' tests share one sealed network of sshd
//! servers and its set-up, which is most of the file.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::sshd::SshHosts;
use common::{faultline_bin, finish, json, start, DEADLINE, POLL};
use serde_json::Value;

/// Twelve short runs: the correct node under two faults, a positive
/// control (caught every time: a stale read while the leader is cut off)
/// and a faster setting under crashes of the leader.
const TWELVE: &str = r#"
name = "spread"
repeats = 3
faults = ["partition-leader", "pause-leader"]

[run]
nodes = 3
time_limit = 2
fault_interval = 0.5
keys = 5
concurrency = 6
rate = 100
seed = 21

[[setting]]
name = "correct"

[[setting]]
name = "stale-read"
unsafe_bug = "stale-read"
expect = "not-linearizable"
faults = ["partition-leader"]

[[setting]]
name = "fast"
election_timeout = "60..120"
heartbeat = 20
faults = ["crash-leader"]
"#;

/// The campaign directory a `--json` summary names.
fn campaign_of(stdout: &str) -> PathBuf {
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    PathBuf::from(v["campaign"].as_str().unwrap())
}

/// Per run of a campaign: its planned schedule and its verdict; every run
/// directory holds all its files.
fn outcomes(campaign: &Path) -> BTreeMap<String, (Value, Value)> {
    let index = json(&campaign.join("campaign.json"));
    let mut out = BTreeMap::new();
    for r in index["runs"].as_array().unwrap() {
        let name = r["dir"].as_str().unwrap().to_string();
        let run = campaign.join(&name);
        for f in [
            "history.jsonl",
            "results.json",
            "schedule.json",
            "spec.json",
            "status.jsonl",
            "links.json",
            "index.html",
        ] {
            assert!(run.join(f).is_file(), "{} lacks {f}", run.display());
        }
        assert!(
            run.join("nodes").is_dir(),
            "{} lacks its node logs",
            run.display()
        );
        let planned = json(&run.join("schedule.json"))["planned"].clone();
        let valid = json(&run.join("results.json"))["valid"].clone();
        out.insert(name, (planned, valid));
    }
    out
}

#[test]
fn twelve_runs_on_three_workers_match_the_same_campaign_here_and_with_two_jobs() {
    let Some(hosts) = SshHosts::start("workers", 3) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let file = w.join("spread.toml");
    std::fs::write(&file, TWELVE).unwrap();
    let f = file.to_str().unwrap();
    let limit = Duration::from_secs(400);

    let store = w.join("here");
    let mut cmd = Command::new(faultline_bin());
    cmd.args(["campaign", f, "--json", "--store", store.to_str().unwrap()]);
    let (code, out, err) = finish(start(cmd, w, "here"), w, "here", limit);
    assert_eq!(code, 0, "{err}");
    let here = campaign_of(&out);

    let store = w.join("jobs");
    let mut cmd = Command::new(faultline_bin());
    cmd.args([
        "campaign",
        f,
        "--jobs",
        "2",
        "--json",
        "--store",
        store.to_str().unwrap(),
    ]);
    let (code, out, err) = finish(start(cmd, w, "jobs"), w, "jobs", limit);
    assert_eq!(code, 0, "{err}");
    let jobs = campaign_of(&out);

    let store = w.join("workers");
    let inv = hosts.inventory.to_str().unwrap().to_string();
    let cmd = hosts.faultline(&[
        "campaign",
        f,
        "--workers",
        &inv,
        "--json",
        "--store",
        store.to_str().unwrap(),
    ]);
    let (code, out, err) = finish(start(cmd, w, "workers"), w, "workers", limit);
    assert_eq!(code, 0, "{err}");
    let spread = campaign_of(&out);

    let (a, b, c) = (outcomes(&here), outcomes(&jobs), outcomes(&spread));
    assert_eq!(a.len(), 12);
    for (name, (planned, valid)) in &a {
        assert_eq!(
            b[name].0, *planned,
            "{name}: --jobs 2 planned another schedule"
        );
        assert_eq!(
            c[name].0, *planned,
            "{name}: the workers planned another schedule"
        );
        assert_eq!(b[name].1, *valid, "{name}: --jobs 2 gave another verdict");
        assert_eq!(
            c[name].1, *valid,
            "{name}: the workers gave another verdict"
        );
        let expected = !name.starts_with("stale-read");
        assert_eq!(*valid, Value::Bool(expected), "{name}");
    }

    // Each run says where it ran; the workers shared the work.
    let mut used = std::collections::BTreeSet::new();
    for name in c.keys() {
        let p = json(&spread.join(name).join("placement.json"));
        let on = p["ran_on"].as_str().unwrap().to_string();
        assert!(["w1", "w2", "w3"].contains(&on.as_str()), "{name}: {p}");
        let page = std::fs::read_to_string(spread.join(name).join("index.html")).unwrap();
        assert!(
            page.contains(&format!("worker {on}")),
            "{name}'s page names no worker"
        );
        used.insert(on);
    }
    assert!(used.len() >= 2, "one worker ran everything: {used:?}");
    let page = std::fs::read_to_string(spread.join("index.html")).unwrap();
    assert!(
        page.contains("Ran on 3 worker hosts"),
        "the campaign page says nothing of its workers"
    );
    let jp = json(&jobs.join("placement.json"));
    assert_eq!(jp["mode"], "jobs");
    assert_eq!(jp["jobs"], 2);
    let page = std::fs::read_to_string(jobs.join("index.html")).unwrap();
    if jp["shared_cores"] == Value::Bool(true) {
        assert!(
            page.contains("The runs shared cores"),
            "the page hides shared cores"
        );
    }

    // The workers keep their binaries and nothing of the campaign, and no
    // run's process is left on them.
    let camp = spread.file_name().unwrap();
    for (i, h) in hosts.hosts.iter().enumerate() {
        assert!(h.workdir.join("bin/faultline").is_file());
        assert!(
            !h.workdir.join("runs").join(camp).exists(),
            "{} keeps the campaign",
            h.name
        );
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = faultline_processes(&hosts, i);
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{} still runs {left:?}", h.name);
            std::thread::sleep(POLL);
        }
    }
}

#[test]
fn a_worker_that_stops_answering_has_its_run_requeued_and_the_campaign_finishes() {
    let Some(hosts) = SshHosts::start("workers-lost", 2) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // w9's address is on the test's network, but nothing answers there.
    let mut inv = std::fs::read_to_string(&hosts.inventory).unwrap();
    let first = inv.split("\n\n").next().unwrap().to_string();
    inv.push_str(
        &first
            .replace("\"w1\"", "\"w9\"")
            .replace("10.98.0.11", "10.98.0.99"),
    );
    let inv_path = w.join("workers.toml");
    std::fs::write(&inv_path, inv).unwrap();
    let file = w.join("four.toml");
    std::fs::write(
        &file,
        "name = \"four\"\nrepeats = 4\nfaults = [\"partition-leader\"]\n[run]\nnodes = 3\ntime_limit = 4\nfault_interval = 1\nkeys = 5\nconcurrency = 4\nrate = 60\nseed = 5\n[[setting]]\nname = \"correct\"\n",
    )
    .unwrap();
    let store = w.join("store");
    let cmd = hosts.faultline(&[
        "campaign",
        file.to_str().unwrap(),
        "--workers",
        inv_path.to_str().unwrap(),
        "--json",
        "--store",
        store.to_str().unwrap(),
    ]);
    let child = start(cmd, w, "lost");
    // Once a run is under way on w1, w1's sshd stops answering.
    let runs = hosts.hosts[0].workdir.join("runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    let under_way = |runs: &Path| -> bool {
        std::fs::read_dir(runs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|c| {
                std::fs::read_dir(c.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|r| r.path().join("history.jsonl").exists())
            })
    };
    while !under_way(&runs) {
        assert!(Instant::now() < deadline, "no run started on w1");
        std::thread::sleep(POLL);
    }
    hosts.signal_sshd(0, libc::SIGSTOP);
    let (code, out, err) = finish(child, w, "lost", Duration::from_secs(300));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("worker w9 left out"), "{err}");
    assert!(err.contains("worker w1 lost"), "{err}");
    let camp = campaign_of(&out);
    let p = json(&camp.join("placement.json"));
    let lost: Vec<&str> = p["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["on"].as_str().unwrap())
        .collect();
    assert!(lost.contains(&"w1") && lost.contains(&"w9"), "{p}");
    let requeued = p["requeued"].as_array().unwrap();
    assert!(requeued.iter().any(|r| r["failure"]["on"] == "w1"), "{p}");
    // Every run has its result; the re-queued one ran on w2 and says so.
    let runs = outcomes(&camp);
    assert_eq!(runs.len(), 4);
    let moved = requeued[0]["run"].as_str().unwrap();
    let rp = json(&camp.join(moved).join("placement.json"));
    assert_eq!(rp["ran_on"], "w2", "{rp}");
    assert_eq!(rp["attempts"][0]["on"], "w1", "{rp}");
    let page = std::fs::read_to_string(camp.join("index.html")).unwrap();
    assert!(
        page.contains("Runs re-queued"),
        "the campaign page hides the re-queued run"
    );
}

/// The `faultline` processes (a run's controller, its nodes) in host `i`.
fn faultline_processes(hosts: &SshHosts, i: usize) -> Vec<String> {
    hosts
        .processes(i)
        .into_iter()
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default())
        .filter(|c| c.starts_with("faultline"))
        .collect()
}

#[test]
fn ctrl_c_stops_every_workers_run_and_leaves_a_readable_store() {
    let Some(hosts) = SshHosts::start("workers-ctrl-c", 2) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let file = w.join("long.toml");
    std::fs::write(
        &file,
        "name = \"long\"\nrepeats = 4\nfaults = [\"pause-leader\"]\n[run]\nnodes = 3\ntime_limit = 120\nfault_interval = 1\nkeys = 5\nconcurrency = 4\nrate = 40\nseed = 3\n[[setting]]\nname = \"correct\"\n",
    )
    .unwrap();
    let store = w.join("store");
    let inv = hosts.inventory.to_str().unwrap().to_string();
    let cmd = hosts.faultline(&[
        "campaign",
        file.to_str().unwrap(),
        "--workers",
        &inv,
        "--store",
        store.to_str().unwrap(),
    ]);
    let child = start(cmd, w, "ctrl-c");
    // Interrupt once both workers run a cluster.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(0..2).all(|i| {
        faultline_processes(&hosts, i)
            .iter()
            .any(|c| c.starts_with("faultline-n"))
    }) {
        assert!(
            Instant::now() < deadline,
            "the workers never started their runs"
        );
        std::thread::sleep(POLL);
    }
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, _, err) = finish(child, w, "ctrl-c", Duration::from_secs(90));
    assert_eq!(code, 130, "{err}");
    for (i, h) in hosts.hosts.iter().enumerate() {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = faultline_processes(&hosts, i);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} still runs {left:?} after Ctrl-C",
                h.name
            );
            std::thread::sleep(POLL);
        }
    }
    let camp = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("campaign.json").exists())
        .unwrap();
    assert_eq!(json(&camp.join("progress.json"))["state"], "interrupted");
    assert!(camp.join("index.html").is_file());
    let (code, _, err) = common::faultline(&["report", camp.to_str().unwrap()]);
    assert!(code == 0 || code == 3, "the store is not readable: {err}");
}

/// Processes whose command line names `dir` (a run's controller and its
/// nodes, whose data directories are inside it).
fn processes_under(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

#[test]
fn ctrl_c_with_two_jobs_leaves_a_readable_store_and_resume_runs_only_the_rest() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let text = "name = \"six\"\nrepeats = 3\nfaults = [\"partition-leader\", \"pause-leader\"]\n[run]\nnodes = 3\ntime_limit = 3\nfault_interval = 0.5\nkeys = 5\nconcurrency = 4\nrate = 60\nseed = 9\n[[setting]]\nname = \"correct\"\n";
    let file = w.join("six.toml");
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap();
    let store = w.join("store");
    let s = store.to_str().unwrap();
    let mut cmd = Command::new(faultline_bin());
    cmd.args(["campaign", f, "--jobs", "2", "--store", s]);
    let child = start(cmd, w, "cut");
    // Interrupt once two runs are done (the others are then under way or to come).
    let deadline = Instant::now() + Duration::from_secs(180);
    let camp = loop {
        let found = std::fs::read_dir(&store)
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| {
                let p = e.path().join("progress.json");
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
                (v["done"].as_u64()? >= 2).then(|| e.path())
            });
        if let Some(c) = found {
            break c;
        }
        assert!(Instant::now() < deadline, "two runs never finished");
        std::thread::sleep(POLL);
    };
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, _, err) = finish(child, w, "cut", Duration::from_secs(90));
    assert_eq!(code, 130, "{err}");
    assert!(
        processes_under(&camp).is_empty(),
        "runs outlived the controller"
    );
    assert_eq!(json(&camp.join("progress.json"))["state"], "interrupted");
    assert!(camp.join("index.html").is_file());
    let index = json(&camp.join("campaign.json"));
    let names: Vec<String> = index["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dir"].as_str().unwrap().to_string())
        .collect();
    let done: BTreeMap<String, std::time::SystemTime> = names
        .iter()
        .filter_map(|n| {
            let m = std::fs::metadata(camp.join(n).join("results.json")).ok()?;
            Some((n.clone(), m.modified().unwrap()))
        })
        .collect();
    assert!(done.len() >= 2 && done.len() < 6, "{done:?}");
    let page = std::fs::read_to_string(camp.join("index.html")).unwrap();
    for n in done.keys() {
        assert!(
            page.contains(n.as_str()),
            "the page lacks the finished run {n}"
        );
    }

    // A campaign file that plans other runs is refused, in one line.
    let other = w.join("other.toml");
    std::fs::write(&other, text.replace("seed = 9", "seed = 10")).unwrap();
    let c = camp.to_str().unwrap();
    let mut cmd = Command::new(faultline_bin());
    cmd.args([
        "campaign",
        other.to_str().unwrap(),
        "--jobs",
        "2",
        "--store",
        s,
        "--resume",
        c,
    ]);
    let (code, _, err) = finish(start(cmd, w, "other"), w, "other", Duration::from_secs(60));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("give the campaign file it was started with"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let mut cmd = Command::new(faultline_bin());
    cmd.args(["campaign", f, "--jobs", "2", "--store", s, "--resume", c]);
    let (code, _, err) = finish(
        start(cmd, w, "resume"),
        w,
        "resume",
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "{err}");
    let left = 6 - done.len();
    assert!(
        err.contains(&format!("6 runs, {left} left to run")),
        "{err}"
    );
    let ran = err.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(ran, left, "{err}");
    for (n, t) in &done {
        let now = std::fs::metadata(camp.join(n).join("results.json"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(now, *t, "{n} ran again");
    }
    assert_eq!(outcomes(&camp).len(), 6);
    assert_eq!(json(&camp.join("progress.json"))["state"], "finished");
    let p = json(&camp.join("placement.json"));
    assert_eq!(p["resumed"][0]["runs"], left as u64, "{p}");
}

#[test]
fn a_bad_inventory_or_jobs_value_is_one_line_and_exit_2() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let inv = w.join("workers.toml");
    std::fs::write(
        &inv,
        "[[host]]\nname = \"a\"\nssh = \"-oProxyCommand=evil\"\n",
    )
    .unwrap();
    let (code, _, err) = common::faultline(&[
        "campaign",
        "--preset",
        "demo",
        "--workers",
        inv.to_str().unwrap(),
        "--store",
        w.join("s").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("workers.toml") && err.contains("starts with '-'"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (code, _, err) = common::faultline(&["campaign", "--preset", "demo", "--jobs", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(!w.join("s").exists(), "a refused campaign made a store");
}

/// Not a test: the wall times docs/benchmarks.md reports. Run it with
/// `cargo test --release --test workers -- --ignored --nocapture measure`
/// on a quiet machine (as root, with OpenSSH installed).
#[test]
#[ignore]
fn measure_wall_times_here_with_jobs_and_on_workers() {
    let Some(hosts) = SshHosts::start("measure", 3) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let all = std::fs::read_to_string(&hosts.inventory).unwrap();
    let inventory = |n: usize| {
        let p = w.join(format!("workers-{n}.toml"));
        let text: Vec<&str> = all
            .split("\n\n")
            .filter(|s| !s.trim().is_empty())
            .take(n)
            .collect();
        std::fs::write(&p, text.join("\n\n")).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (w1, w2, w3) = (inventory(1), inventory(2), inventory(3));
    let limit = Duration::from_secs(1800);
    println!("| preset | placement | wall time, s |\n|---|---|---|");
    for preset in ["figure-16-quick", "bug-hunt-ci"] {
        let modes: Vec<(&str, Vec<&str>, bool)> = vec![
            ("here, one run at a time", vec![], false),
            ("here, --jobs 2", vec!["--jobs", "2"], false),
            ("1 worker", vec!["--workers", &w1], true),
            ("2 workers", vec!["--workers", &w2], true),
            ("3 workers", vec!["--workers", &w3], true),
        ];
        for (label, extra, remote) in modes {
            let store = w.join(format!("{preset}-{}", label.replace([' ', ',', '-'], "_")));
            let mut args = vec![
                "campaign",
                "--preset",
                preset,
                "--store",
                store.to_str().unwrap(),
            ];
            args.extend(extra);
            let cmd = if remote {
                hosts.faultline(&args)
            } else {
                let mut c = Command::new(faultline_bin());
                c.args(&args);
                c
            };
            let t0 = Instant::now();
            let (code, _, err) = finish(start(cmd, w, "measure"), w, "measure", limit);
            let secs = t0.elapsed().as_secs_f64();
            let ready: Vec<&str> = err.lines().filter(|l| l.contains("ready in")).collect();
            println!(
                "| {preset} | {label} | {secs:.0} (exit {code}) | {}",
                ready.join("; ")
            );
        }
    }
}

#[test]
fn hosts_check_reports_a_host_without_nft_and_a_host_with_a_wrong_key_one_line_each() {
    // w2's logins get a PATH without sbin, where nft lives.
    let Some(hosts) = SshHosts::start_with("hosts-check", &["", "SetEnv PATH=/usr/bin:/bin"])
    else {
        return;
    };
    let all = std::fs::read_to_string(&hosts.inventory).unwrap();
    let first = all.split("\n\n").next().unwrap().to_string();
    let wrong = hosts.wrong_key();
    let bad = first
        .replace("\"w1\"", "\"w1-wrong-key\"")
        .lines()
        .map(|l| {
            if l.starts_with("identity") {
                format!("identity = \"{}\"", wrong.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let inv = hosts.dir.path().join("check.toml");
    std::fs::write(&inv, format!("{all}\n{bad}\n")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cmd = hosts.faultline(&["hosts", "check", inv.to_str().unwrap()]);
    let (code, out, err) = finish(
        start(cmd, work.path(), "check"),
        work.path(),
        "check",
        Duration::from_secs(120),
    );
    assert_eq!(code, 2, "{out}\n{err}");
    let problems: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(problems.len(), 2, "one line per problem: {err}");
    assert!(
        problems
            .iter()
            .any(|l| l.contains("host w2") && l.contains("no nft")),
        "{err}"
    );
    assert!(
        problems
            .iter()
            .any(|l| l.contains("host w1-wrong-key") && l.contains("Permission denied")),
        "{err}"
    );
    // The good host's line says what it found.
    let w1 = out
        .lines()
        .find(|l| l.starts_with("w1:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        w1.contains("nft /")
            && w1.contains("(usable)")
            && w1.contains("MB")
            && w1.contains("clock"),
        "{w1}"
    );
}
