//! Tests of the analysis on hand-made histories and status polls.

use super::*;
use faultline_node::leadership::NodeSample;

#[test]
fn nemesis_events_pair_into_windows_including_membership_changes() {
    let jsonl = r#"{"time":1000,"process":"nemesis","type":"info","f":"remove-node","value":{"fault":"membership","nodes":["n2"]}}
{"time":2000,"process":"nemesis","type":"info","f":"start-partition","value":{"fault":"partition-leader","nodes":["n1"]}}
{"time":3000,"process":"nemesis","type":"info","f":"add-node","value":{"fault":"membership","nodes":["n2"],"detail":{"added":"n4"}}}
{"time":4000,"process":"nemesis","type":"info","f":"stop-partition","value":{"fault":"partition-leader","nodes":["n1"]}}
{"time":5000,"process":"nemesis","type":"info","f":"kill","value":{"fault":"crash-leader","nodes":["n3"]}}
"#;
    let h = faultline_checker::history::read_jsonl(jsonl.as_bytes()).unwrap();
    let w = fault_windows(&h, 9000);
    let got: Vec<(&str, u64, u64)> = w
        .iter()
        .map(|w| (w.name.as_str(), w.start, w.end))
        .collect();
    assert_eq!(
        got,
        vec![
            ("membership", 1000, 3000),
            ("partition-leader", 2000, 4000),
            ("crash-leader", 5000, 9000),
        ]
    );
    assert_eq!(w[0].nodes, vec!["n2"]);
}

/// A run's results from its status polls alone (an empty history).
fn analyse_polls(spec: Option<RunSpec>, status: &[StatusRound], end_ms: u64) -> RunResults {
    let h = faultline_checker::history::read_jsonl(&b""[..]).unwrap();
    let checked = faultline_checker::check_history(&h, &faultline_checker::Options::default());
    compute(spec, Vec::new(), &h, status, checked, end_ms * 1_000_000)
}

/// (node, role, term, leader, heard_ms)
type Sample<'a> = (&'a str, &'a str, u64, Option<&'a str>, Option<u64>);

fn round(t_ms: u64, samples: &[Sample]) -> StatusRound {
    StatusRound {
        t_ms,
        nodes: samples
            .iter()
            .map(|(id, role, term, leader, heard_ms)| {
                let sample = NodeSample {
                    role: serde_json::from_value(serde_json::json!(role)).expect("a role name"),
                    term: *term,
                    leader: leader.map(str::to_string),
                    voters: vec!["n1".into(), "n2".into(), "n3".into()],
                    heard_ms: *heard_ms,
                    leading_ms: None,
                    quorum_heard_ms: None,
                };
                (id.to_string(), Some(sample))
            })
            .collect(),
    }
}

#[test]
fn a_leader_whose_followers_stopped_hearing_from_it_no_longer_leads() {
    let fresh = round(
        0,
        &[
            ("n1", "leader", 2, Some("n1"), Some(0)),
            ("n2", "follower", 2, Some("n1"), Some(40)),
            ("n3", "follower", 2, Some("n1"), Some(90)),
        ],
    );
    assert_eq!(fresh.agreed_leader(Some(250)), Some(("n1".into(), 2)));
    // Cut off: both followers still name n1 but have not heard from it.
    let cut = round(
        300,
        &[
            ("n1", "leader", 2, Some("n1"), Some(0)),
            ("n2", "follower", 2, Some("n1"), Some(300)),
            ("n3", "follower", 2, Some("n1"), Some(310)),
        ],
    );
    assert_eq!(cut.agreed_leader(Some(250)), None);
    // Without a freshness bound (or in files without heard_ms) belief counts.
    assert_eq!(cut.agreed_leader(None), Some(("n1".into(), 2)));
    // One fresh follower and the leader make a majority of three.
    let one = round(
        400,
        &[
            ("n1", "leader", 2, Some("n1"), Some(0)),
            ("n2", "follower", 2, Some("n1"), Some(20)),
            ("n3", "follower", 2, Some("n1"), Some(400)),
        ],
    );
    assert_eq!(one.agreed_leader(Some(250)), Some(("n1".into(), 2)));
}

#[test]
fn time_without_a_leader_counts_from_the_followers_silence() {
    let spec = Some(RunSpec {
        heartbeat_ms: 100,
        ..RunSpec::default()
    });
    let led = |t| {
        round(
            t,
            &[
                ("n1", "leader", 1, Some("n1"), Some(0)),
                ("n2", "follower", 1, Some("n1"), Some(50)),
                ("n3", "follower", 1, Some("n1"), Some(50)),
            ],
        )
    };
    let silent = |t, heard| {
        round(
            t,
            &[
                ("n1", "leader", 1, Some("n1"), Some(0)),
                ("n2", "follower", 1, Some("n1"), Some(heard)),
                ("n3", "follower", 1, Some("n1"), Some(heard)),
            ],
        )
    };
    let new = |t| {
        let mut r = round(
            t,
            &[
                ("n1", "leader", 1, Some("n1"), Some(0)),
                ("n2", "leader", 2, Some("n2"), Some(0)),
                ("n3", "follower", 2, Some("n2"), Some(10)),
            ],
        );
        if let Some(Some(n2)) = r.nodes.get_mut("n2") {
            n2.leading_ms = Some(30);
        }
        r
    };
    // Heard at 150 ms for the last time: the polls at 300 and 400 ms
    // still count n1 (silences 150, 250: within two heartbeats and
    // 50 ms), the one at 500 ms does not, and its silences put the end
    // a heartbeat after 150 ms. n2 leads from 670 ms (30 ms before the
    // poll at 700): 420 ms without a working leader.
    let status = vec![
        led(0),
        led(100),
        led(200),
        silent(300, 150),
        silent(400, 250),
        silent(500, 350),
        silent(600, 450),
        new(700),
        new(800),
    ];
    let r = analyse_polls(spec, &status, 900);
    assert_eq!(r.elections.leaderless_ms, 420.0);
    assert_eq!(r.elections.leader_changes, 1);
    // Older files (no heartbeat, no silences): poll by poll, as before.
    let plain: Vec<StatusRound> = status
        .iter()
        .cloned()
        .map(|mut r| {
            for s in r.nodes.values_mut().flatten() {
                s.heard_ms = None;
                s.leading_ms = None;
            }
            r
        })
        .collect();
    let r = analyse_polls(None, &plain, 900);
    assert_eq!(r.elections.leaderless_ms, 0.0);
}

#[test]
fn a_leader_whose_followers_moved_on_ended_when_they_last_heard_from_it() {
    // Heartbeats every 50 ms; n1 is cut off at about 960 ms. At 1100 ms
    // its followers still count it (silence 140 <= 150), at 1200 ms they
    // follow n2, leader for 45 ms: without a leader from a heartbeat
    // after 960 ms to 1155 ms.
    let spec = Some(RunSpec {
        heartbeat_ms: 50,
        ..RunSpec::default()
    });
    let old = |t, heard| {
        round(
            t,
            &[
                ("n1", "leader", 1, Some("n1"), Some(0)),
                ("n2", "follower", 1, Some("n1"), Some(heard)),
                ("n3", "follower", 1, Some("n1"), Some(heard)),
            ],
        )
    };
    let mut new = round(
        1200,
        &[
            ("n1", "leader", 1, Some("n1"), Some(0)),
            ("n2", "leader", 2, Some("n2"), Some(0)),
            ("n3", "follower", 2, Some("n2"), Some(20)),
        ],
    );
    if let Some(Some(n2)) = new.nodes.get_mut("n2") {
        n2.leading_ms = Some(45);
    }
    let status = vec![old(1000, 15), old(1100, 140), new];
    let r = analyse_polls(spec, &status, 1300);
    assert_eq!(r.elections.leaderless_ms, 145.0);
}

#[test]
fn a_crash_of_a_node_that_no_longer_led_is_not_an_election_trial() {
    let s = 1_000_000_000u64;
    let jsonl = format!(
        r#"{{"time":{},"process":"nemesis","type":"info","f":"kill","value":{{"fault":"crash-leader","nodes":["n1"]}}}}
{{"time":{},"process":"nemesis","type":"info","f":"restart","value":{{"fault":"crash-leader","nodes":["n1"]}}}}
{{"time":{},"process":"nemesis","type":"info","f":"kill","value":{{"fault":"crash-leader","nodes":["n2"]}}}}
{{"time":{},"process":"nemesis","type":"info","f":"restart","value":{{"fault":"crash-leader","nodes":["n2"]}}}}
{{"time":{},"process":"nemesis","type":"info","f":"kill","value":{{"fault":"crash-leader","nodes":["n4"]}}}}
{{"time":{},"process":"nemesis","type":"info","f":"restart","value":{{"fault":"crash-leader","nodes":["n4"]}}}}
"#,
        s,
        2 * s,
        3 * s,
        4 * s,
        5 * s,
        6 * s
    );
    let h = faultline_checker::history::read_jsonl(jsonl.as_bytes()).unwrap();
    let checked = faultline_checker::check_history(&h, &faultline_checker::Options::default());
    let end = 7 * s;
    let mut r = compute(None, Vec::new(), &h, &[], checked, end);
    let windows = fault_windows(&h, end);
    let line = |t_ms: u64, id: &str, term: u64| (t_ms * 1_000_000, id.to_string(), term);
    let starts = [
        line(500, "n1", 1),
        // The leader n1 crashed at 1 s: n2 leads 20 ms later.
        line(1_020, "n2", 2),
        // n2 was deposed before its crash at 3 s (n3 leads in term 3), so
        // n4's election at 3.1 s has nothing to do with that crash.
        line(2_500, "n3", 3),
        line(3_100, "n4", 4),
        // n4 crashed at 5 s while it led, and nobody took over.
    ];
    windows::election_trials(&windows, &starts, &mut r.faults);
    let got: Vec<(Option<f64>, bool)> = r
        .faults
        .iter()
        .map(|f| (f.election_ms, f.not_leader))
        .collect();
    assert_eq!(got, vec![(Some(20.0), false), (None, true), (None, false)]);
    // Without any "became leader" line before a crash, it is the leader's.
    let checked = faultline_checker::check_history(&h, &faultline_checker::Options::default());
    let mut r2 = compute(None, Vec::new(), &h, &[], checked, end);
    windows::election_trials(&windows, &[line(1_030, "n3", 2)], &mut r2.faults);
    assert_eq!(
        (r2.faults[0].election_ms, r2.faults[0].not_leader),
        (Some(30.0), false)
    );
}

#[test]
fn a_list_append_history_with_a_value_appended_twice_is_undecided_and_says_why() {
    use faultline_checker::elle::{Mop, Txn, TxnOutcome};
    let txn = |process, mops| Txn {
        process,
        invoke_ns: 1,
        complete_ns: Some(2),
        outcome: TxnOutcome::Ok,
        mops,
        line: process as usize + 1,
    };
    let ap = || Mop::Append {
        key: "x".into(),
        value: 1,
    };
    let h = [txn(0, vec![ap()]), txn(1, vec![ap()])];
    let (report, _) = txns::judge(&h, faultline_rundir::spec::Consistency::StrictSerializable);
    assert_eq!(report.valid, Verdict::Unknown);
    let why = report.reason.unwrap_or_default();
    assert!(
        why.starts_with(
            "the history cannot be judged: value 1 appended to key x by two transactions"
        ),
        "{why}"
    );
}
