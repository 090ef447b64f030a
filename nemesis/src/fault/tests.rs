//! The fault grammar's tests: names, parsing and printing, validation.

use super::*;

#[test]
fn the_name_table_is_in_the_kinds_order_and_each_kind_prints_its_name() {
    for (i, (k, name)) in NAMES.iter().enumerate() {
        assert_eq!(*k as usize, i, "{name}");
        assert_eq!(Kind::from_name(name), Some(*k));
        let f: Fault = name.parse().unwrap();
        assert_eq!(f.kind(), Some(*k), "{name}");
        assert!(f.to_string().starts_with(name), "{name} prints as {f}");
    }
}

#[test]
fn every_listed_kind_parses_on_five_nodes() {
    for k in KINDS {
        parse_list(k, 5).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
}

#[test]
fn names_parse_and_print_back() {
    for s in [
        "partition-node",
        "partition-leader",
        "partition-halves",
        "partition-bridge",
        "partition-ring",
        "one-way-in",
        "one-way-out",
        "lag",
        "lag@n3",
        "lag+crash-leader",
        "loss:0.2@all",
        "delay:100:50@all",
        "duplicate:0.2@leader",
        "reorder:0.3@n2",
        "pause@node",
        "pause-leader",
        "pause-minority",
        "crash-leader",
        "crash-minority",
        "crash-all",
        "crash@n1",
        "restart:300@leader",
        "restart:500@node",
        "partition-bridge@leader",
        "partition-bridge@n2",
        "figure-8",
        "membership",
        "membership-split",
        "partition-leader+crash-leader",
        "loss:0.2@all+pause-leader",
        "partition-bridge@leader&delay:300:0@leader&restart:150@leader",
        "lose-unsynced@all",
        "lose-unsynced@leader+partition-halves",
        "torn-write@minority",
        "corrupt:bitflip@minority",
        "corrupt:truncate@n2",
        "disk-full@leader",
        "fsync-error@follower",
        "slow-disk:200@leader",
        "lose-unsynced@majority",
    ] {
        let f: Fault = s.parse().unwrap();
        assert_eq!(f.to_string(), s);
    }
    assert_eq!(
        "partition".parse::<Fault>().unwrap(),
        Fault::PartitionHalves
    );
    assert_eq!(
        "loss".parse::<Fault>().unwrap(),
        Fault::Loss {
            p: 0.2,
            target: Target::All
        }
    );
}

#[test]
fn impossible_settings_are_refused() {
    let err = |s: &str, n: usize| parse_list(s, n).unwrap_err();
    assert!(err("flood", 3).contains("unknown fault 'flood'"));
    assert!(err("loss:1.5", 3).contains("not between 0 and 1"));
    assert!(err("partition-leader", 1).contains("at least 2 nodes"));
    assert!(err("partition-bridge", 2).contains("at least 3"));
    assert!(parse_list("partition-bridge@leader", 3).is_ok());
    assert!(err("partition-bridge@all", 3).contains("the bridge is one node"));
    assert!(err("partition-bridge:3", 3).contains("takes no parameters"));
    assert!(err("restart:10", 3).contains("more often than every 50 ms"));
    assert!(err("figure-8", 3).contains("exactly 5 nodes"));
    assert!(parse_list("figure-8", 5).is_ok());
    assert!(err("figure-8@n1", 5).contains("no target"));
    assert!(err("figure-8:200", 5).contains("no parameter"));
    assert!(err("restart:100:5", 3).contains("too many parameters"));
    assert!(err("restart@n4", 3).contains("not a node"));
    assert!(err("crash@n7", 3).contains("not a node"));
    assert!(err("loss:x", 3).contains("not a number"));
    assert!(err("pause-leader:3", 3).contains("takes no parameters"));
    assert!(parse_list("partition-leader,pause-leader,loss:0.2", 3).is_ok());
    assert!(err("partition-leader+", 3).contains("empty part"));
    assert!(err("partition-leader&", 3).contains("empty part around '&'"));
    assert!(err("partition-leader+pause&crash", 3).contains("not both"));
    assert!(err("partition-leader+crash@n9", 3).contains("not a node"));
    assert!(parse_list("partition-leader+crash-leader,pause", 5).is_ok());
    assert!(err("lag", 2).contains("without the lagging follower"));
    assert!(err("lag:5", 3).contains("takes no parameters"));
    assert!(err("lag@leader", 3).contains("holds back one follower"));
    assert!(err("lag@all", 3).contains("holds back one follower"));
    assert!(err("lag@n4", 3).contains("not a node"));
    assert!(parse_list("lag@n2,lag@n3,crash-leader", 3).is_ok());
    assert!(err("corrupt:zero", 3).contains("bitflip or truncate"));
    assert!(err("lose-unsynced:3", 3).contains("only a target"));
    assert!(err("slow-disk:0", 3).contains("between 1 and 60000"));
    assert!(err("slow-disk:x", 3).contains("whole number"));
    assert!(err("disk-full@n5", 3).contains("not a node"));
    assert!(err("fsync-error@follower", 1).contains("no follower"));
}
