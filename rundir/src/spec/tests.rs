use super::*;

#[test]
fn names_parse_print_and_serialise_alike() {
    for t in TargetKind::ALL {
        assert_eq!(t.name().parse::<TargetKind>(), Ok(*t));
        assert_eq!(
            serde_json::to_string(t).unwrap(),
            format!("\"{}\"", t.name())
        );
    }
    assert_eq!("faultline-node".parse(), Ok(TargetKind::Faultline));
    assert_eq!("zipfian".parse(), Ok(KeyDist::Zipf));
    let e = "raft".parse::<TargetKind>().unwrap_err();
    assert_eq!(
        e,
        "'raft' is not a target (faultline, etcd, maelstrom or nats)"
    );
    let parsed: Expect = serde_json::from_str("\"not-linearizable\"").unwrap();
    assert_eq!(parsed, Expect::NotLinearizable);
}

#[test]
fn a_millis_range_is_checked_where_it_is_read() {
    assert_eq!(
        "150..300".parse::<MillisRange>(),
        Ok(MillisRange { min: 150, max: 300 })
    );
    assert_eq!(
        "150ms..300ms".parse::<MillisRange>(),
        Ok(MillisRange { min: 150, max: 300 })
    );
    assert_eq!(
        "200".parse::<MillisRange>(),
        Ok(MillisRange { min: 200, max: 200 })
    );
    assert!("300..150".parse::<MillisRange>().is_err());
    assert!("0..10".parse::<MillisRange>().is_err());
    assert!("a..b".parse::<MillisRange>().is_err());
    let e = serde_json::from_str::<MillisRange>("\"300..150\"").unwrap_err();
    assert!(e.to_string().contains("empty range"), "{e}");
    assert_eq!(
        serde_json::to_string(&defaults::ELECTION_TIMEOUT).unwrap(),
        "\"150..300\""
    );
}

#[test]
fn a_spec_reads_back_as_written_and_a_missing_field_is_its_default() {
    let spec = RunSpec {
        target: TargetKind::Etcd,
        max_append_entries: Some(7),
        effective: Some(Effective {
            passed: Some("x".into()),
            tick_ms: 5,
            election_timeout: "150..300".into(),
            heartbeat_ms: 50,
        }),
        ..RunSpec::default()
    };
    let text = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<RunSpec>(&text).unwrap(), spec);
    let partial: RunSpec = serde_json::from_str(r#"{"nodes": 5, "target": "etcd"}"#).unwrap();
    assert_eq!((partial.nodes, partial.target), (5, TargetKind::Etcd));
    assert_eq!(partial.time_limit_s, defaults::TIME_LIMIT_S);
    let e = serde_json::from_str::<RunSpec>(r#"{"target": "raft"}"#).unwrap_err();
    assert!(e.to_string().contains("raft"), "{e}");
    assert_eq!(spec.rows().len(), 40);
}

#[test]
fn the_settings_table_shows_a_workloads_defaults_and_a_dash_for_the_others() {
    let row = |spec: &RunSpec, name: &str| {
        spec.rows()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .unwrap()
    };
    let append = RunSpec {
        workload: Workload::Append,
        txn_keys: Some(2),
        ..RunSpec::default()
    };
    assert_eq!(row(&append, "txn_len"), defaults::TXN_LEN.to_string());
    assert_eq!(row(&append, "txn_keys"), "2");
    assert_eq!(row(&append, "consistency"), "strict-serializable");
    assert_eq!(row(&append, "lock_ttl_ms"), "–");
    let lock = RunSpec {
        workload: Workload::Lock,
        ..RunSpec::default()
    };
    assert_eq!(row(&lock, "lock_ttl_ms"), defaults::LOCK_TTL_MS.to_string());
    for name in ["txn_len", "txn_keys", "consistency"] {
        assert_eq!(row(&lock, name), "–", "{name}");
        assert_eq!(row(&RunSpec::default(), name), "–", "{name}");
    }
}
