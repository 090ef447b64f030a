//! The history readers take files from anywhere: on arbitrary bytes, and on
//! valid histories with bytes flipped, cut or inserted, they return a
//! history or one error — never a panic or an abort. A bounded number of
//! cases runs in every test run; `PROPTEST_CASES=100000` runs more.

use faultline_checker::{check_history, read_edn, read_jsonl, Options};
use proptest::prelude::*;

const JSONL: &str = r#"{"time":1200,"process":0,"type":"invoke","f":"write","key":"k1","value":3,"node":"n1"}
{"time":1500,"process":1,"type":"invoke","f":"read","key":"k1","value":null,"node":"n2"}
{"time":5300,"process":0,"type":"ok","f":"write","key":"k1","value":3,"node":"n1"}
{"time":6100,"process":1,"type":"ok","f":"read","key":"k1","value":3,"node":"n2"}
{"time":7000,"process":"nemesis","type":"info","f":"start-partition","value":{"fault":"partition-leader","nodes":["n1"]}}
{"time":7400,"process":2,"type":"invoke","f":"cas","key":"k1","value":[3,4],"node":"n1"}
{"time":1007400,"process":2,"type":"info","f":"cas","key":"k1","value":[3,4],"node":"n1","error":"timeout"}
"#;

const EDN: &str = r#"[{:process 0, :type :invoke, :f :write, :value [:k 1]}
{:process 1, :type :invoke, :f :read, :value [:k nil]}
{:process 0, :type :ok, :f :write, :value [:k 1]}
{:process 1, :type :ok, :f :read, :value [:k 1]}
{:process :nemesis, :type :info, :f :start, :value #{:n1}}
{:process 2, :type :invoke, :f :cas, :value [:k [1 2]]}
{:process 2, :type :info, :f :cas, :value [:k [1 2]]}]"#;

/// A valid input with one edit: a byte replaced, removed or inserted, or the
/// input cut short.
fn mutated(valid: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (0..len, any::<u8>(), 0..4u8).prop_map(move |(at, b, op)| {
        let mut v = valid.as_bytes().to_vec();
        match op {
            0 => v[at] = b,
            1 => {
                v.remove(at);
            }
            2 => v.insert(at, b),
            _ => v.truncate(at),
        }
        v
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Parse and, when that succeeds, check: neither may panic.
fn read_and_check_jsonl(bytes: &[u8]) {
    if let Ok(h) = read_jsonl(bytes) {
        let _ = check_history(&h, &Options::default());
    }
}

fn read_and_check_edn(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(h) = read_edn(text) {
            let _ = check_history(&h, &Options::default());
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn jsonl_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_and_check_jsonl(&bytes);
    }

    #[test]
    fn jsonl_survives_an_edited_history(bytes in mutated(JSONL)) {
        read_and_check_jsonl(&bytes);
    }

    #[test]
    fn edn_survives_any_text(text in "[\\[\\]{}()#:_ a-z0-9\"\\\\,;.-]{0,256}") {
        read_and_check_edn(text.as_bytes());
    }

    #[test]
    fn edn_survives_an_edited_history(bytes in mutated(EDN)) {
        read_and_check_edn(&bytes);
    }

    /// Long runs of discards, tags and openers (what overflowed the stack).
    #[test]
    fn edn_survives_deep_prefixes(
        parts in proptest::collection::vec(
            proptest::sample::select(vec!["#_", "#t ", "[", "{", "(", "#{", "#_[", "^m "]), 1..8),
        reps in 100usize..3000,
    ) {
        let text = format!("{}1", parts.concat().repeat(reps));
        read_and_check_edn(text.as_bytes());
    }
}

#[test]
fn the_seeds_are_valid_histories() {
    assert!(read_jsonl(JSONL.as_bytes()).is_ok());
    assert!(read_edn(EDN).is_ok());
}
