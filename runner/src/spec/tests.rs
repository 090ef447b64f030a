use super::*;

#[test]
fn the_default_spec_is_valid_and_its_mix_flag_says_the_same() {
    let spec = RunSpec::default();
    assert!(!validate(&spec).unwrap().is_empty());
    assert_eq!(parse_mix(defaults::MIX_FLAG).unwrap(), defaults::MIX);
}

#[test]
fn durations_must_be_finite_positive_and_sane() {
    for (limit, interval) in [
        (f64::INFINITY, 5.0),
        (1e300, 5.0),
        (0.0, 5.0),
        (-1.0, 5.0),
        (30.0, f64::NAN),
    ] {
        let spec = RunSpec {
            time_limit_s: limit,
            fault_interval_s: interval,
            ..RunSpec::default()
        };
        let e = format!("{:#}", validate(&spec).unwrap_err());
        assert!(e.contains("give a number of seconds"), "{e}");
    }
    let zero_heartbeat = RunSpec {
        heartbeat_ms: 0,
        ..RunSpec::default()
    };
    let e = format!("{:#}", validate(&zero_heartbeat).unwrap_err());
    assert!(
        e.contains("--heartbeat must be between 1 and 300000 ms"),
        "{e}"
    );
    let zero_timeout = RunSpec {
        op_timeout_ms: 0,
        ..RunSpec::default()
    };
    assert!(validate(&zero_timeout).is_err());
}

#[test]
fn a_run_too_short_for_one_fault_is_refused_unless_it_has_none() {
    let short = RunSpec {
        time_limit_s: 3.0,
        ..RunSpec::default()
    };
    let e = format!("{:#}", validate(&short).unwrap_err());
    assert!(
        e.contains("time limit 3 s leaves no room for one 5 s fault window"),
        "{e}"
    );
    let quiet = RunSpec {
        nemesis: String::new(),
        ..short
    };
    assert!(validate(&quiet).unwrap().is_empty());
}

#[test]
fn the_kernel_backend_refuses_what_it_cannot_make() {
    let fig8 = RunSpec {
        nodes: 5,
        nemesis: "figure-8".into(),
        net: NetBackend::Kernel,
        ..RunSpec::default()
    };
    let e = format!("{:#}", validate(&fig8).unwrap_err());
    assert!(
        e.contains("only the proxy can") && e.contains("--net proxy"),
        "{e}"
    );
    let delay = RunSpec {
        nemesis: "delay:50".into(),
        net: NetBackend::Kernel,
        ..RunSpec::default()
    };
    assert!(validate(&delay).is_ok());
    let e = format!(
        "{:#}",
        RunPlan::new(&delay)
            .unwrap()
            .check_kernel_faults(false)
            .unwrap_err()
    );
    assert!(e.contains("sch_netem") && e.contains("--net proxy"), "{e}");
    assert!(RunPlan::new(&delay)
        .unwrap()
        .check_kernel_faults(true)
        .is_ok());
    let proxy = RunSpec {
        nemesis: "delay:50".into(),
        ..RunSpec::default()
    };
    assert!(RunPlan::new(&proxy)
        .unwrap()
        .check_kernel_faults(false)
        .is_ok());
}

#[test]
fn etcd_gets_its_own_flags_and_refuses_what_it_has_no_equivalent_for() {
    let etcd = RunSpec {
        target: TargetKind::Etcd,
        nemesis: "crash-leader".into(),
        election_timeout: "1000..2000".parse::<MillisRange>().unwrap(),
        heartbeat_ms: 100,
        pre_vote: true,
        ..RunSpec::default()
    };
    assert!(validate(&etcd).is_ok());
    assert_eq!(
        member_args(&etcd).unwrap().join(" "),
        "--election-timeout 1000 --heartbeat-interval 100 --pre-vote"
    );
    let e = effective(&etcd).unwrap();
    assert_eq!(e.election_timeout, "1000..2000");
    assert!(e.passed.unwrap().contains("[1000, 2000)"));
    let err = |s: RunSpec| format!("{:#}", validate(&s).unwrap_err());
    let partition = RunSpec {
        nemesis: "partition-leader".into(),
        ..etcd.clone()
    };
    assert!(err(partition.clone()).contains("use --net kernel"));
    assert!(validate(&RunSpec {
        net: NetBackend::Kernel,
        ..partition
    })
    .is_ok());
    assert!(err(RunSpec {
        nemesis: "membership".into(),
        ..etcd.clone()
    })
    .contains("not supported on etcd"));
    assert!(err(RunSpec {
        tick_ms: Some(1),
        ..etcd.clone()
    })
    .contains("tick is not supported on etcd"));
    assert!(err(RunSpec {
        heartbeat_ms: 300,
        ..etcd.clone()
    })
    .contains("at least 5 heartbeats"));
    assert!(err(RunSpec {
        read_mode: ReadMode::Serializable,
        ..RunSpec::default()
    })
    .contains("etcd's"));
}

#[test]
fn each_refusal_names_the_capability_the_target_lacks() {
    let m = RunSpec {
        target: TargetKind::Maelstrom,
        bin: Some("/bin/sh".into()),
        nemesis: "partition-leader,pause-leader,loss:0.2".into(),
        ..RunSpec::default()
    };
    assert!(validate(&m).is_ok());
    let err = |s: RunSpec| format!("{:#}", validate(&s).unwrap_err());
    let crash = RunSpec {
        nemesis: "crash-leader".into(),
        ..m.clone()
    };
    assert!(err(crash.clone()).contains("total amnesia"));
    assert!(validate(&RunSpec {
        allow_amnesia: true,
        ..crash
    })
    .is_ok());
    for (nemesis, words) in [
        ("membership", "membership changes go through"),
        ("figure-8", "scripted scenario"),
        ("lag", "needs a snapshot"),
        ("partition-leader+crash", "total amnesia"),
    ] {
        let nodes = if nemesis == "figure-8" { 5 } else { 3 };
        let e = err(RunSpec {
            nemesis: nemesis.into(),
            nodes,
            ..m.clone()
        });
        assert!(
            e.contains("not supported on maelstrom") && e.contains(words),
            "{nemesis}: {e}"
        );
    }
    assert!(err(RunSpec {
        net: NetBackend::Kernel,
        nemesis: String::new(),
        ..m.clone()
    })
    .contains("--net kernel is not supported on maelstrom"));
    assert!(err(RunSpec {
        bin: None,
        ..m.clone()
    })
    .contains("needs a program"));
    assert!(err(RunSpec {
        bin: Some("/nonexistent".into()),
        ..m.clone()
    })
    .contains("/nonexistent"));
    assert!(err(RunSpec {
        pre_vote: true,
        ..m.clone()
    })
    .contains("pre_vote is not supported on maelstrom"));
    assert!(err(RunSpec {
        bin: Some("/bin/sh".into()),
        ..RunSpec::default()
    })
    .contains("bin is not supported on faultline: its program is faultline itself"));
    assert!(err(RunSpec {
        args: vec!["-x".into()],
        target: TargetKind::Etcd,
        ..RunSpec::default()
    })
    .contains("args is not supported on etcd"));
    // Each production target takes its own read modes only.
    assert!(err(RunSpec {
        read_mode: ReadMode::Direct,
        target: TargetKind::Etcd,
        net: NetBackend::Kernel,
        ..RunSpec::default()
    })
    .contains("read_mode = \"direct\" is not supported on etcd"));
    assert!(err(RunSpec {
        read_mode: ReadMode::Serializable,
        target: TargetKind::Nats,
        net: NetBackend::Kernel,
        ..RunSpec::default()
    })
    .contains("read_mode = \"serializable\" is not supported on nats"));
    assert!(err(RunSpec {
        read_mode: ReadMode::Direct,
        ..RunSpec::default()
    })
    .contains("read_mode = \"direct\" is not supported on faultline"));
    // NATS: its timings are its own, and its routes cannot be proxied.
    assert!(err(RunSpec {
        target: TargetKind::Nats,
        pre_vote: true,
        net: NetBackend::Kernel,
        ..RunSpec::default()
    })
    .contains("pre_vote is not supported on nats: nats-server's Raft timings are fixed"));
    assert!(err(RunSpec {
        target: TargetKind::Nats,
        nemesis: "partition-leader".into(),
        ..RunSpec::default()
    })
    .contains("use --net kernel"));
}

#[test]
fn the_effective_timeouts_are_rounded_to_ticks() {
    let spec = RunSpec {
        election_timeout: "151..153".parse::<MillisRange>().unwrap(),
        heartbeat_ms: 12,
        ..RunSpec::default()
    };
    let e = effective(&spec).unwrap();
    assert_eq!(e.tick_ms, 5);
    assert_eq!(e.election_timeout, "155..155");
    assert_eq!(e.heartbeat_ms, 15);
}

#[test]
fn a_bad_timeout_or_bug_is_refused_by_name() {
    let bad = RunSpec {
        election_timeout: "40..40".parse::<MillisRange>().unwrap(),
        ..RunSpec::default()
    };
    let e = format!("{:#}", validate(&bad).unwrap_err());
    assert!(e.contains("setting 'run'"), "{e}");
    let bad = RunSpec {
        unsafe_bug: vec!["no-such-bug".into()],
        ..RunSpec::default()
    };
    assert!(format!("{:#}", validate(&bad).unwrap_err()).contains("--unsafe-bug"));
    let bad = RunSpec {
        max_append_entries: Some(0),
        ..RunSpec::default()
    };
    assert!(format!("{:#}", validate(&bad).unwrap_err()).contains("max_append_entries"));
}

#[test]
fn a_disk_model_without_a_disk_fault_is_refused() {
    use faultline_rundir::spec::DiskModel;
    let e = format!(
        "{:#}",
        validate(&RunSpec {
            disk_model: DiskModel::Journaled,
            ..RunSpec::default()
        })
        .unwrap_err()
    );
    assert!(
        e.contains("disk_model journaled") && e.contains("give a disk fault"),
        "{e}"
    );
    let plan = RunPlan::new(&RunSpec {
        disk_model: DiskModel::NamesDurable,
        nemesis: "lose-unsynced@all".into(),
        ..RunSpec::default()
    })
    .unwrap();
    assert_eq!(plan.disk_model, DiskModel::NamesDurable);
    assert_eq!(plan.stored.disk_model, DiskModel::NamesDurable);
}
