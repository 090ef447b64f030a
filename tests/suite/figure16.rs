//! The Raft paper's Figure 16 on real processes, the quick preset as a user
//! runs it: every election timeout range gets its trials, and the page
//! carries the distribution plot and the table with the paper's figures.

use crate::common;

use std::time::Duration;

#[test]
fn figure_16_quick_measures_every_range_and_draws_the_plot() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &[
            "campaign",
            "--preset",
            "figure-16-quick",
            "--json",
            "--store",
            store.to_str().unwrap(),
        ],
        Duration::from_secs(600),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let elections = v["elections"].as_array().unwrap();
    assert_eq!(elections.len(), 10, "{out}");
    // Every crash is a trial, or missed when the nemesis's answer to "who
    // leads" was out of date by the time it crashed that node.
    for e in elections {
        let (trials, missed) = (e["trials"].as_u64().unwrap(), e["missed"].as_u64().unwrap());
        assert_eq!(trials + missed, 3, "{e}");
    }
    // The ranges with some spread elect a leader after (nearly) every crash
    // of the leader, before the next crash 2 s later. How fast is the
    // preset's measurement, not this test's: on a shared machine a stalled
    // fsync of a term or vote holds an election up for as long as it lasts
    // (a 12-24 trial of 1,054 ms was seen under CI's load). Election times
    // within bounds are held in ticks by the deterministic simulation.
    for setting in ["150-300", "12-24"] {
        let e = elections.iter().find(|e| e["setting"] == setting).unwrap();
        assert!(e["no_leader"].as_u64().unwrap() <= 1, "{e}");
        if e["trials"].as_u64().unwrap() > e["no_leader"].as_u64().unwrap() {
            let max = e["max_ms"].as_f64().unwrap();
            assert!(max > 0.0 && max < 2000.0, "{e}");
        }
    }
    let camp = std::path::PathBuf::from(v["campaign"].as_str().unwrap());
    let page = std::fs::read_to_string(camp.join("index.html")).unwrap();
    assert!(page.contains("Time to elect a new leader after the leader crashed"));
    assert!(
        page.contains("287 ms on average"),
        "the paper's figure beside 150-155"
    );
    let svg = std::fs::read_to_string(camp.join("campaign-elections.svg")).unwrap();
    assert!(svg.contains("log scale") && svg.contains("150-155"));
}
