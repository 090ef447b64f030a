use super::*;

#[test]
fn a_setting_without_timeouts_gets_its_targets_defaults() {
    let c = CampaignConfig::parse(
        "faults = [\"crash-leader\"]\n[[setting]]\nname = \"e\"\ntarget = \"etcd\"\n[[setting]]\nname = \"f\"\n",
        "test",
    )
    .unwrap();
    let runs = c.runs().expect("etcd's own defaults validate");
    assert_eq!(
        runs[0].plan.stored.election_timeout.to_string(),
        "1000..2000"
    );
    assert_eq!(runs[0].plan.stored.heartbeat_ms, 100);
    assert_eq!(runs[1].plan.stored.election_timeout.to_string(), "150..300");
    assert_eq!(runs[1].plan.stored.heartbeat_ms, 50);
}

#[test]
fn hosts_in_run_or_in_a_setting_put_its_runs_on_the_hosts_network() {
    let c = CampaignConfig::parse(
        "faults = [\"partition-leader\"]\n[run]\nhosts = \"h.toml\"\n[[setting]]\nname = \"a\"\n",
        "test",
    )
    .unwrap();
    let runs = c.runs().unwrap();
    assert_eq!(
        runs[0].plan.stored.net,
        faultline_nemesis::net::NetBackend::Hosts
    );
    assert_eq!(runs[0].plan.stored.hosts.as_deref(), Some("h.toml"));
    let mut moved = c.clone();
    moved.resolve_paths(std::path::Path::new("/etc/campaigns"));
    assert_eq!(
        moved.runs().unwrap()[0].plan.stored.hosts.as_deref(),
        Some("/etc/campaigns/h.toml")
    );
    let c = CampaignConfig::parse(
        "faults = [\"loss:0.1\"]\n[[setting]]\nname = \"here\"\n[[setting]]\nname = \"there\"\nhosts = \"h.toml\"\n",
        "test",
    )
    .unwrap();
    let runs = c.runs().unwrap();
    assert_eq!(
        runs[0].plan.stored.net,
        faultline_nemesis::net::NetBackend::Proxy
    );
    assert_eq!(
        runs[1].plan.stored.net,
        faultline_nemesis::net::NetBackend::Hosts
    );
    let refused = |text: &str| {
        format!(
            "{:#}",
            CampaignConfig::parse(text, "test")
                .unwrap()
                .runs()
                .unwrap_err()
        )
    };
    let e =
        refused("faults = [\"delay:50\"]\n[run]\nhosts = \"h.toml\"\n[[setting]]\nname = \"a\"\n");
    assert!(e.contains("not offered on --hosts"), "{e}");
    let e = refused("faults = [\"crash-leader\"]\n[run]\nhosts = \"h.toml\"\n[[setting]]\nname = \"a\"\nnet = \"kernel\"\n");
    assert!(e.contains("does not go with --net kernel"), "{e}");
    let e =
        refused("faults = [\"crash-leader\"]\n[run]\nnet = \"hosts\"\n[[setting]]\nname = \"a\"\n");
    assert!(e.contains("needs an inventory"), "{e}");
    let e = refused("faults = [\"partition-leader\"]\n[run]\nhosts = \"h.toml\"\ntarget = \"maelstrom\"\nbin = \"/bin/true\"\n[[setting]]\nname = \"a\"\n");
    assert!(e.contains("--hosts is not supported on maelstrom"), "{e}");
}

#[test]
fn a_setting_with_several_disk_models_runs_once_per_model() {
    use faultline_rundir::spec::DiskModel;
    let c = CampaignConfig::parse(
        r#"
faults = ["lose-unsynced@all"]
[run]
time_limit = 10
fault_interval = 2
disk_model = ["posix", "journaled"]
[[setting]]
name = "default"
[[setting]]
name = "lazy"
disk_model = "names-durable"
"#,
        "test",
    )
    .unwrap();
    let names: Vec<&str> = c.settings.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["default@posix", "default@journaled", "lazy"]);
    let runs = c.runs().unwrap();
    let models: Vec<DiskModel> = runs.iter().map(|r| r.plan.disk_model).collect();
    assert_eq!(
        models,
        [
            DiskModel::Posix,
            DiskModel::Journaled,
            DiskModel::NamesDurable
        ]
    );
    let bad = CampaignConfig::parse("[run]\ndisk_model = \"ext4\"\n", "bad.toml").unwrap_err();
    assert!(
        format!("{bad:#}")
            .contains("'ext4' is not a disk model (posix, journaled or names-durable)"),
        "{bad:#}"
    );
    let twice = CampaignConfig::parse("[run]\ndisk_model = [\"posix\", \"posix\"]\n", "t.toml")
        .unwrap_err();
    assert!(format!("{twice:#}").contains("listed twice"), "{twice:#}");
}

/// The runs of one setting under several models share their seeds (the
/// same fault schedule), and each model may carry its own expectation.
#[test]
fn runs_that_differ_only_by_model_share_seeds_and_expect_per_model() {
    use faultline_rundir::spec::Expect;
    let c = CampaignConfig::parse(
        r#"
faults = ["lose-unsynced@follower", "lose-unsynced@all"]
repeats = 2
[run]
time_limit = 10
fault_interval = 2
[[setting]]
name = "bug"
unsafe_bug = "no-dir-fsync"
disk_model = ["posix", "journaled", "names-durable"]
expect_by_model = { journaled = "linearizable", names-durable = "linearizable" }
[[setting]]
name = "plain"
"#,
        "test",
    )
    .unwrap();
    let runs = c.runs().unwrap();
    let seed_of = |setting: &str, fault: &str, repeat: usize| {
        runs.iter()
            .find(|r| r.plan.stored.setting == setting && r.fault == fault && r.repeat == repeat)
            .map(|r| r.plan.seed)
            .unwrap()
    };
    for f in ["lose-unsynced@follower", "lose-unsynced@all"] {
        for r in [1, 2] {
            let s = seed_of("bug@posix", f, r);
            assert_eq!(s, seed_of("bug@journaled", f, r));
            assert_eq!(s, seed_of("bug@names-durable", f, r));
        }
    }
    // Different faults and repeats still differ, and so do other settings.
    let mut distinct: Vec<u64> = runs
        .iter()
        .filter(|r| r.plan.stored.setting == "bug@posix")
        .map(|r| r.plan.seed)
        .chain(
            runs.iter()
                .filter(|r| r.plan.stored.setting == "plain")
                .map(|r| r.plan.seed),
        )
        .collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 8, "{distinct:?}");
    let expect_of = |setting: &str| {
        runs.iter()
            .find(|r| r.plan.stored.setting == setting)
            .map(|r| r.plan.stored.expect)
            .unwrap()
    };
    assert_eq!(expect_of("bug@posix"), Expect::NotLinearizable);
    assert_eq!(expect_of("bug@journaled"), Expect::Linearizable);
    assert_eq!(expect_of("bug@names-durable"), Expect::Linearizable);
    assert_eq!(expect_of("plain"), Expect::Linearizable);
    let e = CampaignConfig::parse(
        "faults = []\n[[setting]]\nname = \"a\"\nexpect_by_model = { journaled = \"linearizable\" }\n",
        "e.toml",
    )
    .unwrap_err();
    assert!(
        format!("{e:#}").contains(
            "e.toml: setting a: expect_by_model names disk model journaled, which the setting does not run under"
        ),
        "{e:#}"
    );
}

#[test]
fn the_run_tables_workload_settings_go_to_that_workloads_settings_only() {
    let c = CampaignConfig::parse(
        "faults = [\"partition-leader\"]\n[run]\ntxn_keys = 2\nconsistency = \"serializable\"\nlock_ttl = 2000\nfenced = true\n\
         [[setting]]\nname = \"reg\"\n[[setting]]\nname = \"app\"\nworkload = \"append\"\n\
         [[setting]]\nname = \"lock\"\nworkload = \"lock\"\n",
        "test",
    )
    .unwrap();
    let runs = c.runs().expect("a campaign may mix workloads");
    let spec = |i: usize| &runs[i].plan.stored;
    assert_eq!((spec(0).txn_keys, spec(0).lock_ttl_ms), (None, None));
    assert!(!spec(0).lock_fenced);
    assert_eq!((spec(1).txn_keys, spec(1).lock_ttl_ms), (Some(2), None));
    assert_eq!(
        spec(1).consistency,
        faultline_rundir::spec::Consistency::Serializable
    );
    assert_eq!((spec(2).txn_keys, spec(2).lock_ttl_ms), (None, Some(2000)));
    assert!(spec(2).lock_fenced);
    // Set for a workload no setting runs: refused, not ignored.
    for (shared, says) in [
        ("consistency = \"serializable\"", "for the append workload"),
        ("lock_pauses = 0.5", "for the lock workload"),
    ] {
        let text = format!(
            "faults = [\"partition-leader\"]\n[run]\n{shared}\n[[setting]]\nname = \"reg\"\n"
        );
        let e = CampaignConfig::parse(&text, "test")
            .unwrap()
            .runs()
            .unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
        assert!(e.to_string().contains("no setting runs it"), "{e}");
    }
}
