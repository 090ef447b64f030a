//! The documentation keeps up with the code: every fault kind, preset and
//! known-bug variant that exists in the code has its entry in its page, the
//! pages link only to files that exist, and nothing points outside the
//! repository.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn page(name: &str) -> String {
    let path = root().join("docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `text` names `name` as code: `` `name` ``, `` `name[...` `` or
/// `` `name:...` ``.
fn names(text: &str, name: &str) -> bool {
    ["`", "[", ":", "@"]
        .iter()
        .any(|after| text.contains(&format!("`{name}{after}")))
}

#[test]
fn every_fault_kind_is_in_the_faults_page() {
    let text = page("faults.md");
    let missing: Vec<&str> = faultline_nemesis::fault::KINDS
        .iter()
        .copied()
        .filter(|k| !names(&text, k))
        .collect();
    assert!(missing.is_empty(), "docs/faults.md lacks {missing:?}");
}

#[test]
fn every_preset_is_in_the_campaigns_page() {
    let text = page("campaigns.md");
    let missing: Vec<&str> = faultline_runner::presets::PRESETS
        .iter()
        .map(|p| p.name)
        .filter(|p| !names(&text, p))
        .collect();
    assert!(missing.is_empty(), "docs/campaigns.md lacks {missing:?}");
}

#[test]
fn every_bug_variant_is_in_the_bug_hunt_page() {
    let text = page("bug-hunt.md");
    let missing: Vec<&str> = faultline_node::bugs::ALL
        .iter()
        .map(|b| b.name())
        .filter(|b| !names(&text, b))
        .collect();
    assert!(missing.is_empty(), "docs/bug-hunt.md lacks {missing:?}");
}

/// The README and every page: relative links lead to files that exist, and
/// nothing refers to a path outside the repository.
#[test]
fn links_stay_inside_the_repository_and_lead_somewhere() {
    let mut files = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        files.push(e.unwrap().path());
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains("../"),
            "{} refers to a path outside the repository",
            f.display()
        );
        let dir = f.parent().unwrap_or(Path::new("."));
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let target = &rest[..rest.find(')').unwrap_or(0)];
            let file = target.split('#').next().unwrap_or("");
            if file.is_empty() {
                continue;
            }
            assert!(
                !file.contains("://"),
                "{} links outside the repository: {target}",
                f.display()
            );
            assert!(
                dir.join(file).exists(),
                "{} links to {target}, which does not exist",
                f.display()
            );
        }
    }
}

#[test]
fn the_readme_stays_short() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = text.lines().count();
    assert!(
        lines <= 120,
        "README.md has {lines} lines; reference belongs in docs/"
    );
}

/// The JSON keys `value` (an object, or objects nested in it) carries.
fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
    if let Some(m) = value.as_object() {
        for (k, v) in m {
            out.push(k.clone());
            keys(v, out);
        }
    }
}

#[test]
fn every_field_of_the_run_files_records_is_in_the_run_files_page() {
    use faultline_rundir::records::*;
    let text = page("run-files.md");
    let full = LogLine {
        timestamp: Some("t".into()),
        target: Some(ROLE.into()),
        fields: LogFields {
            message: Some("m".into()),
            event: Some("taken".into()),
            id: Some("n1".into()),
            role: Some("Leader".into()),
            term: Some(1),
            index: Some(1),
            follower: Some("n2".into()),
            from: Some(1),
            to: Some(2),
            location: Some("l".into()),
        },
    };
    let attempt = faultline_rundir::placement::Attempt {
        on: "w1".into(),
        error: "e".into(),
    };
    let requeue = faultline_rundir::placement::Requeue {
        run: "r".into(),
        attempt: 1,
        failure: attempt.clone(),
    };
    let spec = faultline_rundir::spec::RunSpec {
        max_append_entries: Some(1),
        tick_ms: Some(1),
        snapshot_entries: Some(1),
        bin: Some("b".into()),
        args: vec!["a".into()],
        hosts: Some("h".into()),
        target_version: Some("v".into()),
        effective: Some(faultline_rundir::spec::Effective {
            passed: Some("p".into()),
            tick_ms: 1,
            election_timeout: "1..2".into(),
            heartbeat_ms: 1,
        }),
        ..Default::default()
    };
    let campaign_results = faultline_results::campaign::CampaignResults {
        name: "c".into(),
        valid: faultline_checker::Verdict::Linearizable,
        unexpected: vec![],
        undecided: vec![],
        controls_caught: 0,
        runs: vec![faultline_results::campaign::CampaignRunResult {
            dir: "d".into(),
            setting: "s".into(),
            fault: "f".into(),
            repeat: 1,
            valid: faultline_checker::Verdict::Linearizable,
            expect: Default::default(),
            judgement: faultline_results::expect::Judgement::AsExpected,
            availability: 1.0,
            leaderless_ms: 0.0,
            leaderless_total_ms: 0.0,
            recovery_ms: Some(1.0),
            p99_ms: 1.0,
        }],
        cells: vec![],
        elections: vec![],
    };
    let line = faultline_rundir::summary::CampaignLine {
        campaign: "c".into(),
        report: "r".into(),
        valid: faultline_checker::Verdict::Linearizable,
        runs: 1,
        not_linearizable: vec![],
        unknown: vec![],
        unexpected: vec![],
        undecided: vec![],
        controls_caught: 0,
        exit: 0,
        elections: vec![faultline_rundir::summary::ElectionLine {
            setting: "s".into(),
            election_timeout: Some("1..2".into()),
            trials: 1,
            no_leader: 0,
            missed: 0,
            mean_ms: Some(1.0),
            median_ms: Some(1.0),
            p99_ms: Some(1.0),
            max_ms: Some(1.0),
            paper: Some("p".into()),
        }],
    };
    let compare_line = faultline_rundir::summary::CompareLine {
        report: "r".into(),
        shared: 1,
        clear_differences: 0,
        only_a: 0,
        only_b: 0,
        pairs: vec![],
    };
    let records = [
        serde_json::to_value(line).unwrap(),
        serde_json::to_value(compare_line).unwrap(),
        serde_json::to_value(spec).unwrap(),
        serde_json::to_value(campaign_results).unwrap(),
        serde_json::to_value(NemesisRecord {
            fault: "f".into(),
            nodes: vec![],
            detail: Some(serde_json::json!(null)),
            error: Some("e".into()),
        })
        .unwrap(),
        serde_json::to_value(ScheduleRecord {
            config: (),
            planned: (),
            executed: (),
            started_unix_ns: "0".into(),
        })
        .unwrap(),
        serde_json::to_value(LinkStats::default()).unwrap(),
        serde_json::to_value(ProgressRecord {
            state: CampaignState::Running,
            pid: 1,
            pid_start: Some(1),
            total: 2,
            done: 1,
            started_unix_ms: 0,
            updated_unix_ms: 1,
            done_planned_s: 1.0,
            remaining_planned_s: 1.0,
            last_run: Some("r".into()),
            last_line: Some("l".into()),
        })
        .unwrap(),
        serde_json::to_value(full).unwrap(),
        serde_json::to_value(faultline_rundir::placement::CampaignPlacement {
            mode: faultline_rundir::placement::Mode::Workers,
            jobs: 2,
            cores: 2,
            pinned: false,
            shared_cores: false,
            workers: vec!["w1".into()],
            lost: vec![attempt.clone()],
            requeued: vec![requeue.clone()],
            failed: vec![requeue],
            resumed: vec![faultline_rundir::placement::Resume {
                at_unix_ms: 1,
                runs: 1,
                set_aside: vec!["x".into()],
            }],
        })
        .unwrap(),
        serde_json::to_value(HostsRecord {
            run: "r".into(),
            inventory: "i".into(),
            setup_s: 1.0,
            teardown_s: Some(1.0),
            hosts: vec![HostEntry {
                node: "n1".into(),
                host: "h1".into(),
                ssh: "s".into(),
                address: "a".into(),
                clock_offset_ms: Some(1.0),
                clock_uncertainty_ms: Some(1.0),
                copied: true,
                setup_s: 1.0,
                teardown_s: Some(1.0),
            }],
        })
        .unwrap(),
        serde_json::to_value(faultline_rundir::records::DiskRecord {
            model: faultline_rundir::spec::DiskModel::Journaled,
            nodes: [(
                "n1".to_string(),
                faultline_rundir::records::DiskCounters {
                    bytes_written: 1,
                    fsyncs: 1,
                    injected: 1,
                    not_durable: 1,
                    left_behind: Some("x".into()),
                },
            )]
            .into(),
            events: vec![faultline_rundir::records::DiskEvent {
                fault: "f".into(),
                node: "n1".into(),
                dropped_bytes: Some(1),
                names_undone: vec!["a".into()],
                why: vec!["w".into()],
                torn: Some(("a".into(), 1)),
                corrupted: Some(faultline_rundir::records::Damaged {
                    file: "a".into(),
                    offset: 1,
                    len: 2,
                    how: "bitflip".into(),
                }),
                injected: Some(1),
                stopped: Some("x".into()),
            }],
        })
        .unwrap(),
        serde_json::to_value(faultline_rundir::placement::RunPlacement {
            ran_on: "w1".into(),
            host: Some("h".into()),
            cpus: Some(vec![0]),
            shared_cores: true,
            attempts: vec![attempt],
        })
        .unwrap(),
    ];
    let mut missing = Vec::new();
    for r in &records {
        let mut ks = Vec::new();
        keys(r, &mut ks);
        for k in ks {
            if !text.contains(&format!("`{k}`")) {
                missing.push(k);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/run-files.md does not name {missing:?}"
    );
}

/// Every Rust file of the repository, outside `target/`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The project's rule for file size: none over 800 lines, and a file over
/// 600 says why at its top ("Over 600 lines: …" in its `//!` comment).
#[test]
fn no_file_is_over_800_lines_and_one_over_600_says_why() {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    assert!(files.len() > 100, "found only {} files", files.len());
    let mut wrong = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines = text.lines().count();
        let header: String = text
            .lines()
            .take_while(|l| l.starts_with("//!") || l.starts_with("#!"))
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let shown = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
        if lines > 800 {
            wrong.push(format!("{shown}: {lines} lines (at most 800)"));
        } else if lines > 600 && !header.contains("over 600 lines") {
            wrong.push(format!(
                "{shown}: {lines} lines and no \"Over 600 lines: why\" at its top"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
