//! Campaigns and reports as a user runs them: a 2-setting x 2-fault
//! campaign of short runs, its pages and plots; a stored history with a
//! known anomaly; and `faultline report` reproducing the pages.
//!
//! Over 600 lines: each test is a whole campaign as a user runs it, with the
//! pages and files it must leave.

use crate::common;
use common::faultline;

use std::path::{Path, PathBuf};

/// Tags open and close in order (void elements excepted), and nothing is
/// left open: enough to catch broken markup and unescaped strings.
fn assert_well_formed_html(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>"), "{}", path.display());
    let void = ["meta", "br", "img", "hr", "input", "link"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = text.as_str();
    // Skip script and style bodies.
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        if rest.starts_with("!DOCTYPE") || rest.starts_with("!--") {
            continue;
        }
        let end = rest
            .find('>')
            .unwrap_or_else(|| panic!("unclosed tag in {}", path.display()));
        let tag = &rest[..end];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        rest = &rest[end + 1..];
        if name.is_empty() || void.contains(&name.as_str()) || tag.ends_with('/') {
            continue;
        }
        if closing {
            let top = stack.pop().unwrap_or_default();
            assert_eq!(top, name, "mismatched </{name}> in {}", path.display());
        } else {
            stack.push(name.clone());
            if name == "script" || name == "style" {
                let close = format!("</{name}>");
                let j = rest.find(&close).expect("closed");
                rest = &rest[j..];
            }
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?} in {}", path.display());
}

fn assert_valid_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not valid XML: {e}", path.display()));
    assert_eq!(
        doc.root_element().tag_name().name(),
        "svg",
        "{}",
        path.display()
    );
}

fn svgs_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect()
}

const CAMPAIGN: &str = r#"
name = "ci"
repeats = 1
faults = ["partition-leader", "pause-leader"]
[run]
nodes = 3
time_limit = 4
fault_interval = 1
keys = 3
concurrency = 4
rate = 60
seed = 3
[[setting]]
name = "fast"
election_timeout = "100..200"
heartbeat = 30
[[setting]]
name = "prevote"
election_timeout = "300..600"
heartbeat = 60
pre_vote = true
check_quorum = true
"#;

#[test]
fn a_small_campaign_produces_every_page_and_plot_and_report_reproduces_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ci.toml");
    std::fs::write(&file, CAMPAIGN).unwrap();
    let store = dir.path().join("store");
    let (code, out, err) = faultline(&[
        "campaign",
        file.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["valid"], serde_json::json!(true));
    assert_eq!(summary["runs"], 4);
    let camp = PathBuf::from(summary["campaign"].as_str().unwrap());
    assert!(
        store.join("latest").join("index.html").exists(),
        "store/latest points to the campaign"
    );
    let page = std::fs::read_to_string(camp.join("index.html")).unwrap();
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(camp.join("campaign.json")).unwrap())
            .unwrap();
    let runs = index["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_well_formed_html(&camp.join("index.html"));
    for p in svgs_in(&camp) {
        assert_valid_svg(&p);
    }
    assert!(svgs_in(&camp).len() >= 3);
    for r in runs {
        let d = r["dir"].as_str().unwrap();
        assert!(
            page.contains(&format!("href=\"{d}/index.html\"")),
            "{d} missing from the campaign page"
        );
        let run = camp.join(d);
        for f in [
            "history.jsonl",
            "results.json",
            "schedule.json",
            "spec.json",
            "index.html",
            "nodes/n1.log",
        ] {
            assert!(run.join(f).exists(), "{d}/{f} missing");
        }
        // What the nodes really use, after rounding to their tick.
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("spec.json")).unwrap()).unwrap();
        assert!(spec["effective"]["tick_ms"].as_u64().is_some(), "{spec}");
        assert_well_formed_html(&run.join("index.html"));
        let svgs = svgs_in(&run);
        assert_eq!(svgs.len(), 4, "{d}: {svgs:?}");
        for p in svgs {
            assert_valid_svg(&p);
        }
        // Isolating or pausing the leader leaves the cluster without a
        // working leader for a while in every fault window: its followers
        // stop hearing from it at once, whatever their timeouts.
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
                .unwrap();
        let faults = results["faults"].as_array().unwrap();
        assert!(!faults.is_empty(), "{d}: no fault windows");
        for f in faults {
            let without = f["leaderless_ms"].as_f64().unwrap();
            assert!(without > 0.0, "{d}: {f} had a working leader throughout");
        }
        // The stored history passes the checker on its own.
        let (code, out, _) = faultline(&["check", run.join("history.jsonl").to_str().unwrap()]);
        assert_eq!(code, 0, "{out}");
    }
    // faultline report rebuilds the same pages from the stored files.
    let before = std::fs::read_to_string(camp.join("index.html")).unwrap();
    let run0 = camp.join(runs[0]["dir"].as_str().unwrap());
    let run_before = std::fs::read_to_string(run0.join("index.html")).unwrap();
    std::fs::remove_file(camp.join("index.html")).unwrap();
    std::fs::remove_file(run0.join("index.html")).unwrap();
    std::fs::remove_file(run0.join("latency.svg")).unwrap();
    let (code, out, err) = faultline(&["report", camp.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("index.html"));
    assert_eq!(
        std::fs::read_to_string(camp.join("index.html")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_to_string(run0.join("index.html")).unwrap(),
        run_before
    );
    assert!(run0.join("latency.svg").exists());
    // Every file of every run is where the run directory's contract says,
    // and the typed ones read back as the records they were written as ...
    for r in runs {
        let rd = faultline_rundir::RunDir::new(camp.join(r["dir"].as_str().unwrap()));
        for f in faultline_rundir::RUN_FILES {
            assert!(rd.path().join(f).exists(), "{f}");
        }
        assert!(rd.node_log("n1").exists() && rd.node_data("n1").is_dir());
        let typed: faultline_results::RunResults =
            serde_json::from_str(&std::fs::read_to_string(rd.results()).unwrap()).unwrap();
        assert_eq!(typed.valid, faultline_checker::Verdict::Linearizable);
        assert!(typed.availability.share > 0.0);
        let _: faultline_runner::spec::RunSpec =
            serde_json::from_str(&std::fs::read_to_string(rd.spec()).unwrap()).unwrap();
        let links: Vec<faultline_nemesis::net::proxy::LinkStats> =
            serde_json::from_str(&std::fs::read_to_string(rd.links()).unwrap()).unwrap();
        assert!(!links.is_empty());
        let schedule: faultline_rundir::records::ScheduleRecord<
            faultline_nemesis::schedule::ScheduleConfig,
            Vec<faultline_nemesis::schedule::PlannedFault>,
            Vec<faultline_nemesis::schedule::ExecutedFault>,
        > = serde_json::from_str(&std::fs::read_to_string(rd.schedule()).unwrap()).unwrap();
        assert!(!schedule.executed.is_empty());
        assert!(schedule.started_unix_ns.parse::<u128>().is_ok());
        let status = faultline_results::run_files::read_status(&rd.status()).unwrap();
        assert!(!status.is_empty());
        let history = faultline_checker::read_jsonl(std::io::BufReader::new(
            std::fs::File::open(rd.history()).unwrap(),
        ))
        .unwrap();
        assert!(!history.ops.is_empty());
    }
    // The campaign said where it stood as it went, and ends finished.
    let progress: faultline_rundir::records::ProgressRecord = serde_json::from_str(
        &std::fs::read_to_string(faultline_rundir::CampaignDir::new(&camp).progress()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        progress.state,
        faultline_rundir::records::CampaignState::Finished
    );
    assert_eq!((progress.done, progress.total), (4, 4));
    assert!(progress.last_line.unwrap().contains("per fault window"));
    // Every figure says what it is: the runs table's time without a leader
    // in all and per window; a run's settings in words, not JSON.
    assert!(
        before.contains("no leader ms, whole run")
            && before.contains("no leader ms, median per window")
    );
    assert!(!run_before.contains("{&quot;"), "a setting shown as JSON");
    // A campaign compared with itself: every cell shared, no clear
    // difference anywhere; bad pairs and a bad directory are one line each.
    let out_dir = dir.path().join("cmp");
    let (code, out, err) = faultline(&[
        "compare",
        camp.to_str().unwrap(),
        camp.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let c: faultline_results::compare::Comparison =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("compare.json")).unwrap())
            .unwrap();
    assert_eq!(c.shared.len(), 4, "two settings x two faults");
    assert!(c.only_a.is_empty() && c.only_b.is_empty());
    for cell in &c.shared {
        assert_eq!(cell.verdicts_a, cell.verdicts_b);
        for f in &cell.figures {
            assert!(
                matches!(
                    f.call,
                    faultline_results::compare::Call::NoClearDifference
                        | faultline_results::compare::Call::TooFewSamples
                        | faultline_results::compare::Call::NotComparable
                ),
                "{f:?}"
            );
            assert!(f.difference.is_none_or(|d| d == 0.0), "{f:?}");
        }
    }
    assert_well_formed_html(&out_dir.join("index.html"));
    for p in svgs_in(&out_dir) {
        assert_valid_svg(&p);
    }
    let (code, _, err) = faultline(&[
        "compare",
        camp.to_str().unwrap(),
        camp.to_str().unwrap(),
        "--pair",
        "nope=fast",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("campaign A has no setting \"nope\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (code, _, err) = faultline(&["compare", store.to_str().unwrap(), camp.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("campaign.json"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // serve binds to loopback only, and says so in one line.
    let (code, _, err) = faultline(&[
        "serve",
        "--store",
        store.to_str().unwrap(),
        "--bind",
        "0.0.0.0",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("only to loopback"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // ... and a field renamed in a run whose history is gone (what report
    // cannot rebuild) stops the report with the file and the field named,
    // instead of a zero in the campaign table.
    let d0 = runs[0]["dir"].as_str().unwrap();
    std::fs::remove_file(camp.join(d0).join("history.jsonl")).unwrap();
    let results = camp.join(d0).join("results.json");
    let text = std::fs::read_to_string(&results).unwrap();
    std::fs::write(
        &results,
        text.replacen("\"availability\"", "\"availabilty\"", 1),
    )
    .unwrap();
    let (code, out, err) = faultline(&["report", camp.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains(&format!("{d0}/results.json")) && err.contains("missing field `availability`"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_stored_history_with_an_anomaly_is_reported_not_linearizable_with_its_counterexample() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("history.jsonl"),
        r#"{"time":1000000,"process":0,"type":"invoke","f":"write","key":"k1","value":1}
{"time":2000000,"process":0,"type":"ok","f":"write","key":"k1","value":1}
{"time":3000000,"process":"nemesis","type":"info","f":"start-partition","value":{"fault":"partition-leader","nodes":["n1"]}}
{"time":4000000,"process":0,"type":"invoke","f":"write","key":"k1","value":2}
{"time":5000000,"process":0,"type":"ok","f":"write","key":"k1","value":2}
{"time":6000000,"process":1,"type":"invoke","f":"read","key":"k1","value":null}
{"time":7000000,"process":1,"type":"ok","f":"read","key":"k1","value":1}
{"time":8000000,"process":"nemesis","type":"info","f":"stop-partition","value":{"fault":"partition-leader","nodes":["n1"]}}
"#,
    )
    .unwrap();
    std::fs::write(
        run.join("spec.json"),
        r#"{"setting":"<b>x</b>","time_limit_s":0.01}"#,
    )
    .unwrap();
    let (code, out, err) = faultline(&["report", run.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let page = std::fs::read_to_string(run.join("index.html")).unwrap();
    assert!(page.contains("NOT LINEARIZABLE"));
    assert!(page.contains("Counterexample on key k1"));
    assert!(page.contains("#c81e1e"), "the failing operation is drawn");
    assert!(!page.contains("<b>x</b>"), "strings from files are escaped");
    assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"));
    assert_well_formed_html(&run.join("index.html"));
    for p in svgs_in(&run) {
        assert_valid_svg(&p);
    }
}

#[test]
fn bad_settings_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let huge = "x".repeat(100_000);
    let huge_loss = format!("loss:{}", "9".repeat(100_000));
    for (args, want) in [
        (
            vec!["run", "--election-timeout", "300..100", "--store", s],
            "empty range",
        ),
        (
            vec![
                "run",
                "--election-timeout",
                "100..200",
                "--heartbeat",
                "150",
                "--store",
                s,
            ],
            "heartbeat",
        ),
        (
            vec!["run", "--nemesis", "meteor", "--store", s],
            "unknown fault 'meteor'",
        ),
        (
            vec!["run", "--nemesis", "loss:1.5", "--store", s],
            "not between 0 and 1",
        ),
        (
            vec![
                "run",
                "--nodes",
                "1",
                "--nemesis",
                "partition-leader",
                "--store",
                s,
            ],
            "at least 2 nodes",
        ),
        (
            vec!["run", "--time-limit", "inf", "--store", s],
            "--time-limit inf: give a number of seconds",
        ),
        (
            vec!["run", "--time-limit", "1e300", "--store", s],
            "--time-limit 1e300: give a number of seconds",
        ),
        (
            vec!["run", "--fault-interval", "0", "--store", s],
            "--fault-interval 0: give a number of seconds",
        ),
        (
            vec!["run", "--heartbeat", "0", "--store", s],
            "--heartbeat must be between 1 and 300000 ms",
        ),
        (
            vec!["run", "--time-limit", "3", "--store", s],
            "time limit 3 s leaves no room for one 5 s fault window",
        ),
        // Every number has an upper bound, checked before anything starts.
        (
            vec!["run", "--keys", "10000000000", "--store", s],
            "--keys must be between 1 and 1000000",
        ),
        (
            vec!["run", "--concurrency", "10000", "--store", s],
            "--concurrency must be between 1 and 1000",
        ),
        (
            vec!["run", "--rate", "1e12", "--store", s],
            "--rate 1000000000000 must be between 0",
        ),
        (
            vec![
                "run",
                "--election-timeout",
                "18446744073709551615..18446744073709551615",
                "--store",
                s,
            ],
            "a timeout of more than 300000 ms",
        ),
        // A huge value is echoed cut, not whole.
        (
            vec!["run", "--nemesis", &huge, "--store", s],
            "(100000 bytes)",
        ),
        (vec!["run", "--nemesis", &huge_loss, "--store", s], "bytes)"),
    ] {
        let (code, _, err) = faultline(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        // One error line (a line naming the seed may come before it).
        assert_eq!(
            err.lines().filter(|l| l.contains("error")).count(),
            1,
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // The list of known fault kinds alone is about 450 bytes.
        assert!(
            err.len() < 800,
            "{} bytes of error for {}",
            err.len(),
            args[1]
        );
    }
    assert!(
        !store.exists() || std::fs::read_dir(&store).unwrap().count() == 0,
        "nothing was started or stored"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "faults = [\"partition-leader\"]\n[[setting]]\nname = \"a\"\nheartbeat = \"x\"\n",
    )
    .unwrap();
    let (code, _, err) = faultline(&["campaign", bad.to_str().unwrap(), "--store", s]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml"), "{err}");
    // Campaign fields are held to the same bounds as the flags.
    std::fs::write(
        &bad,
        "faults = [\"partition-leader\"]\n[run]\ntime_limit = 1e300\n[[setting]]\nname = \"a\"\n",
    )
    .unwrap();
    let (code, _, err) = faultline(&["campaign", bad.to_str().unwrap(), "--store", s]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--time-limit 1e300"), "{err}");
    // Campaign files that would abort, collide in the store or garble the
    // terminal: refused in one line before anything starts.
    let long = "n".repeat(300);
    for (toml, want) in [
        (
            "repeats = 1000000000\nfaults = [\"partition-leader\"]\n[[setting]]\nname = \"a\"\n".to_string(),
            "repeats must be between 1 and 1000",
        ),
        (
            "faults = [\"partition-leader\"]\n[[setting]]\nname = \"a/b\"\n[[setting]]\nname = \"a b\"\n".to_string(),
            "would share the run directory",
        ),
        (
            "faults = [\"partition-leader\", \"partition-leader\"]\n[[setting]]\nname = \"a\"\n".to_string(),
            "lists fault 'partition-leader' twice",
        ),
        (
            format!("faults = [\"partition-leader\"]\n[[setting]]\nname = \"{long}\"\n"),
            "has 300 characters; at most 64",
        ),
        (
            "faults = [\"partition-leader\"]\n[[setting]]\nname = \"\"\n".to_string(),
            "must not be empty",
        ),
        (
            "name = \"\"\nfaults = [\"partition-leader\"]\n[[setting]]\nname = \"a\"\n".to_string(),
            "must not be empty",
        ),
        (
            "faults = [\"partition-leader\"]\n[[setting]]\nname = \"a\"\nexpect = \"not-linearizable\"\n".to_string(),
            "runs faultline's correct node, so it may not expect \"not-linearizable\"",
        ),
        (
            "faults = [\"partition-leader\"]\n[[setting]]\nname = \"a\"\nunsafe_bug = \"stale-read\"\n[setting.expect_by_fault]\n\"crash-all\" = \"linearizable\"\n".to_string(),
            "expect_by_fault names fault 'crash-all', which the setting does not run",
        ),
        (
            "faults = [\"partition-leader\"]\n[[setting]]\nname = \"evil\\u202Etxt\"\n".to_string(),
            "'evil\\u{202e}txt' holds a control or text-direction character",
        ),
    ] {
        std::fs::write(&bad, &toml).unwrap();
        let (code, _, err) = faultline(&["campaign", bad.to_str().unwrap(), "--store", s]);
        assert_eq!(code, 2, "{toml}: {err}");
        assert!(err.contains(want), "{toml}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!err.contains('\u{202e}'), "raw override printed: {err}");
    }
    assert!(
        !store.exists() || std::fs::read_dir(&store).unwrap().count() == 0,
        "nothing was started or stored"
    );
}

/// A run ends at its time limit whatever the rate: with 0.01 ops/s a
/// client's next slot lies 1,000 s away.
#[test]
fn a_run_ends_at_its_time_limit_whatever_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let started = std::time::Instant::now();
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &[
            "run",
            "--time-limit",
            "2",
            "--fault-interval",
            "0.5",
            "--rate",
            "0.01",
            "--store",
            store.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(120),
    );
    assert!(code == 0 || code == 3, "{out}{err}");
    // Start-up, heal and final reads take a few seconds; a far slot 1,000.
    assert!(started.elapsed().as_secs() < 100, "{:?}", started.elapsed());
    // A run is a campaign of one setting: its page says there is nothing
    // to compare, not "which setting did best: —".
    let page = std::fs::read_to_string(store.join("latest").join("index.html")).unwrap();
    assert!(
        page.contains("one setting: there is nothing to compare"),
        "{page}"
    );
}

/// An `--etcd-bin` that hangs on --version, or is a directory: one line.
#[test]
fn bad_etcd_binaries_are_refused_in_one_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let hang = dir.path().join("hang.sh");
    std::fs::write(&hang, "#!/bin/sh\nsleep 3600\n").unwrap();
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.path().join("store");
    for (bin, want) in [
        (hang.clone(), "did not finish within 10 s"),
        (dir.path().to_path_buf(), "is a directory"),
    ] {
        let (code, out, err) = common::faultline_in(
            dir.path(),
            &[
                "run",
                "--target",
                "etcd",
                "--nemesis",
                "pause-leader",
                "--etcd-bin",
                bin.to_str().unwrap(),
                "--store",
                store.to_str().unwrap(),
            ],
            std::time::Duration::from_secs(60),
        );
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains(want), "{err}");
        assert_eq!(
            err.lines().filter(|l| l.contains("error")).count(),
            1,
            "{err}"
        );
    }
}
