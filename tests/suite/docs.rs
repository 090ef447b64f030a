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
    let records = [
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
