//! The list-append checker on hand-written histories (one per anomaly
//! class, and valid ones that must pass) and on generated ones: a correct
//! store's histories pass, and each planted class is found and named.

use super::gen::{correct, plant, Shape, PLANTABLE};
use super::*;

pub(super) fn t(
    process: u64,
    invoke: u64,
    complete: Option<u64>,
    outcome: TxnOutcome,
    mops: Vec<Mop>,
) -> Txn {
    Txn {
        process,
        invoke_ns: invoke,
        complete_ns: complete,
        outcome,
        mops,
        line: 0,
    }
}

pub(super) fn ap(k: &str, v: i64) -> Mop {
    Mop::Append {
        key: k.into(),
        value: v,
    }
}

pub(super) fn rd(k: &str, v: &[i64]) -> Mop {
    Mop::Read {
        key: k.into(),
        value: Some(v.to_vec()),
    }
}

/// The checker on a history whose appends are unique (every one here).
pub(super) fn check(h: &[Txn], model: Consistency) -> ElleReport {
    super::check(h, model).unwrap()
}

fn classes(r: &ElleReport) -> Vec<&str> {
    r.anomalies.iter().map(|a| a.class.as_str()).collect()
}

const SMALL: Shape = Shape {
    txns: 300,
    keys: 5,
    max_mops: 4,
    processes: 6,
    appends: 0.5,
    max_writes_per_key: 16,
};

#[test]
fn concurrent_appends_in_either_order_and_unknown_outcomes_are_valid() {
    use TxnOutcome::*;
    for order in [[1, 2], [2, 1]] {
        let h = vec![
            t(0, 0, Some(10), Ok, vec![ap("x", 1)]),
            t(1, 0, Some(10), Ok, vec![ap("x", 2)]),
            // Crashed: may or may not have appended 3.
            t(2, 0, None, Info, vec![ap("x", 3)]),
            t(3, 20, Some(21), Ok, vec![rd("x", &order)]),
        ];
        let r = check(&h, Consistency::StrictSerializable);
        assert!(r.valid, "{r:?}");
    }
    // The unknown one was applied after all: still valid.
    let h = vec![
        t(0, 0, Some(10), Ok, vec![ap("x", 1)]),
        t(2, 0, None, Info, vec![ap("x", 3)]),
        t(3, 20, Some(21), Ok, vec![rd("x", &[1, 3]), rd("y", &[])]),
    ];
    assert!(check(&h, Consistency::StrictSerializable).valid);
}

#[test]
fn every_planted_class_is_found_and_named_alone() {
    for class in PLANTABLE {
        let mut h = Vec::new();
        plant(&mut h, class);
        let model = Consistency::StrictSerializable;
        let r = check(&h, model);
        assert!(!r.valid, "{class} not found");
        assert!(
            classes(&r).contains(&class),
            "{class}: found {:?}",
            classes(&r)
        );
    }
}

#[test]
fn a_stale_read_is_serializable_but_not_strictly() {
    let mut h = Vec::new();
    plant(&mut h, "G-single-realtime");
    assert!(!check(&h, Consistency::StrictSerializable).valid);
    let r = check(&h, Consistency::Serializable);
    assert!(r.valid, "{r:?}");
}

#[test]
fn a_process_that_misses_its_own_append_breaks_session_order_only() {
    // Process 1 appends x 1, then reads x without it; another process's
    // read (concurrent with both) is what makes the order of x known.
    let h = vec![
        t(1, 0, Some(10), TxnOutcome::Ok, vec![ap("x", 1)]),
        t(1, 20, Some(30), TxnOutcome::Ok, vec![rd("x", &[])]),
        t(2, 0, Some(40), TxnOutcome::Ok, vec![rd("x", &[1])]),
    ];
    let r = check(&h, Consistency::Serializable);
    assert!(r.valid, "{r:?}");
    let r = check(&h, Consistency::StrongSessionSerializable);
    assert_eq!(classes(&r), ["G-single-process"], "{r:?}");
    let a = &r.anomalies[0];
    assert!(a.edges.iter().any(|e| e.kind == EdgeKind::Process), "{a:?}");
    assert!(a.explanation.contains("in process 1"), "{}", a.explanation);
    let r = check(&h, Consistency::StrictSerializable);
    assert_eq!(classes(&r), ["G-single-realtime"], "{r:?}");
}

#[test]
fn a_cycle_names_its_transactions_and_edges() {
    let mut h = Vec::new();
    plant(&mut h, "G2");
    let r = check(&h, Consistency::Serializable);
    let a = r.anomalies.iter().find(|a| a.class == "G2").unwrap();
    assert_eq!(a.txns.len(), 2, "{a:?}");
    assert!(a.edges.iter().all(|e| e.kind == EdgeKind::Rw), "{a:?}");
    // The words, without the class (which every reader shows beside them).
    assert!(a.explanation.starts_with('T'), "{}", a.explanation);
    assert!(a.explanation.contains("without"), "{}", a.explanation);
    let mut h = Vec::new();
    plant(&mut h, "G1c");
    let r = check(&h, Consistency::Serializable);
    let a = r.anomalies.iter().find(|a| a.class == "G1c").unwrap();
    assert!(a.edges.iter().all(|e| e.kind == EdgeKind::Wr), "{a:?}");
}

#[test]
fn a_correct_stores_histories_pass() {
    for seed in 0..300 {
        let h = correct(SMALL, seed);
        for model in [
            Consistency::StrictSerializable,
            Consistency::Serializable,
            Consistency::StrongSessionSerializable,
        ] {
            let r = check(&h, model);
            assert!(r.valid, "seed {seed}, {model:?}: {:?}", r.anomalies);
        }
    }
}

#[test]
fn each_class_planted_in_a_correct_history_is_found() {
    for seed in 0..200 {
        for class in PLANTABLE {
            let mut h = correct(SMALL, seed);
            plant(&mut h, class);
            let r = check(&h, Consistency::StrictSerializable);
            assert!(
                classes(&r).contains(&class),
                "seed {seed}: {class} planted, found {:?}",
                classes(&r)
            );
        }
    }
}

#[test]
fn a_bigger_history_checks_quickly_and_the_figures_add_up() {
    let shape = Shape {
        txns: 50_000,
        keys: 100,
        ..SMALL
    };
    let h = correct(shape, 7);
    let r = check(&h, Consistency::StrictSerializable);
    assert!(r.valid, "{:?}", r.anomalies);
    assert_eq!(r.txns, h.len());
    assert!(r.edges > h.len(), "{}", r.edges);
}

/// A completion and an invocation at the same nanosecond are concurrent:
/// no real-time edge between them (the checker must not assume an order
/// the clock did not show).
#[test]
fn one_instant_is_not_real_time_order() {
    use TxnOutcome::Ok;
    let h = vec![
        t(0, 0, Some(10), Ok, vec![rd("x", &[1])]),
        t(1, 10, Some(20), Ok, vec![ap("x", 1)]),
    ];
    let r = check(&h, Consistency::StrictSerializable);
    assert!(r.valid, "{r:?}");
    // One nanosecond later it is an order, and the read was impossible.
    let h = vec![
        t(0, 0, Some(10), Ok, vec![rd("x", &[1])]),
        t(1, 11, Some(20), Ok, vec![ap("x", 1)]),
    ];
    assert!(!check(&h, Consistency::StrictSerializable).valid);
}

#[test]
fn histories_written_and_read_back_check_the_same() {
    for seed in 0..20 {
        let mut h = correct(SMALL, seed);
        if seed % 2 == 1 {
            plant(&mut h, PLANTABLE[(seed as usize / 2) % PLANTABLE.len()]);
        }
        let mut text = Vec::new();
        super::history::write_jsonl(&h, &mut text).unwrap();
        let back = super::history::read_jsonl(text.as_slice()).unwrap();
        assert_eq!(back.len(), h.len());
        let (a, b) = (
            check(&h, Consistency::StrictSerializable),
            check(&back, Consistency::StrictSerializable),
        );
        assert_eq!(a.counts, b.counts, "seed {seed}");
    }
}

/// A history is for this checker when its first client line is a
/// transaction, however long that line is.
#[test]
fn a_transaction_history_is_known_by_its_first_client_line() {
    use super::history::starts_with_txn;
    let nemesis = r#"{"time":0,"process":"nemesis","type":"info","f":"start","value":null}"#;
    let mops: Vec<String> = (0..100_000)
        .map(|i| format!(r#"["append","k{i}",1]"#))
        .collect();
    let wide = format!(
        r#"{{"time":1,"process":0,"type":"invoke","f":"txn","value":[{}]}}"#,
        mops.join(",")
    );
    assert!(wide.len() > 2 << 20);
    assert!(starts_with_txn(format!("{nemesis}\n\n{wide}\n").as_bytes()));
    let register = r#"{"time":1,"process":0,"type":"invoke","f":"write","key":"x","value":1}"#;
    assert!(!starts_with_txn(
        format!("{nemesis}\n{register}\n").as_bytes()
    ));
    assert!(!starts_with_txn("not json\n".as_bytes()));
    assert!(!starts_with_txn("".as_bytes()));
}

/// Wide transactions: a read inside one is judged against that
/// transaction's own appends before it, and a read that ends at an
/// append another wide transaction went on to follow is intermediate —
/// found whatever the width (the work is linear in it).
#[test]
fn wide_transactions_are_judged_micro_operation_by_micro_operation() {
    use TxnOutcome::*;
    let n = 20_000;
    let mut writer = Vec::new();
    for i in 0..n {
        writer.push(ap(&format!("a{i}"), 1));
        writer.push(ap(&format!("a{i}"), 2));
    }
    let mut own: Vec<Mop> = (0..n).map(|i| ap(&format!("b{i}"), 1)).collect();
    own.extend((0..n).map(|i| rd(&format!("b{i}"), if i == 7 { &[] } else { &[1] })));
    let reader: Vec<Mop> = (0..n)
        .map(|i| rd(&format!("a{i}"), if i == 3 { &[1] } else { &[1, 2] }))
        .collect();
    let h = vec![
        t(0, 0, Some(10), Ok, writer),
        t(1, 0, Some(10), Ok, own),
        t(2, 20, Some(30), Ok, reader),
    ];
    let r = check(&h, Consistency::Serializable);
    assert_eq!(r.counts.get("internal"), Some(&1), "{:?}", r.counts);
    assert_eq!(r.counts.get("G1b"), Some(&1), "{:?}", r.counts);
    assert!(r
        .anomalies
        .iter()
        .any(|a| a.class == "internal" && a.explanation.contains("b7")));
    assert!(r
        .anomalies
        .iter()
        .any(|a| a.class == "G1b" && a.explanation.contains("a3")));
}

/// A line over the limit is refused by number, not read into memory.
#[test]
fn an_oversized_line_is_refused_naming_it() {
    let first = r#"{"time":1,"process":0,"type":"invoke","f":"txn","value":[["r","x",null]]}"#;
    let mut text = format!("{first}\n");
    text.push_str(r#"{"time":2,"process":0,"type":"ok","f":"txn","value":[["r","x",["#);
    while text.len() < super::history::MAX_LINE + 200 {
        text.push_str("1,");
    }
    text.push_str("1]]]}\n");
    let err = super::history::read_jsonl(text.as_bytes()).unwrap_err();
    assert!(err.starts_with("line 2: longer than"), "{err}");
}

/// A read that disagrees with a longer one is an incompatible order
/// whichever came first (the first read seen is stored as the key's
/// shared list, the other as a list of its own).
#[test]
fn a_shorter_read_that_disagrees_is_caught_in_either_order() {
    use TxnOutcome::*;
    let appends = [1, 2, 3, 4].map(|v| t(v as u64, 0, Some(10), Ok, vec![ap("x", v)]));
    let short = t(10, 20, Some(21), Ok, vec![rd("x", &[1, 2])]);
    let long = t(11, 20, Some(21), Ok, vec![rd("x", &[1, 3, 4])]);
    for reads in [[short.clone(), long.clone()], [long, short]] {
        let h: Vec<Txn> = appends.iter().cloned().chain(reads).collect();
        let r = check(&h, Consistency::Serializable);
        assert!(classes(&r).contains(&"incompatible-order"), "{r:?}");
    }
}

/// The usual lines are read without a JSON value; the rest (escapes,
/// numbers as keys written differently, nemesis lines, extra fields) by
/// the general reader: both give the same transactions.
#[test]
fn every_kind_of_line_reads_the_same_by_either_path() {
    let lines = [
        r#"{"time":1,"process":0,"type":"invoke","f":"txn","value":[["append","x",1],["r","y",null]]}"#,
        r#"{"time":2,"process":"nemesis","type":"info","f":"start","value":{"any":"thing"}}"#,
        r#"{"time":3,"process":1,"type":"invoke","f":"txn","value":[["r","q\"uo",null],["append",7,2]],"node":"n1"}"#,
        r#"{"time":4,"process":0,"type":"ok","f":"txn","value":[["append","x",1],["r","y",[]]]}"#,
        r#"{"process":1,"time":5,"f":"txn","type":"ok","value":[["r","q\"uo",[1]],["append",7,2]]}"#,
    ];
    assert!(super::history::fast_line_reads(lines[0]));
    assert!(!super::history::fast_line_reads(lines[1]), "nemesis");
    assert!(!super::history::fast_line_reads(lines[2]), "escaped key");
    let text = lines.join("\n") + "\n";
    let h = super::history::read_jsonl(text.as_bytes()).unwrap();
    let expect = vec![
        Txn {
            line: 4,
            ..t(
                0,
                1,
                Some(4),
                TxnOutcome::Ok,
                vec![ap("x", 1), rd("y", &[])],
            )
        },
        Txn {
            line: 5,
            ..t(
                1,
                3,
                Some(5),
                TxnOutcome::Ok,
                vec![rd("q\"uo", &[1]), ap("7", 2)],
            )
        },
    ];
    assert_eq!(h, expect);
    // A bad line the fast path declines is named by the general reader.
    let bad = r#"{"time":1,"process":0,"type":"invoke","f":"txn","value":[["append","x",1.5]]}"#;
    let err = super::history::read_jsonl(bad.as_bytes()).unwrap_err();
    assert!(err.contains("line 1") && err.contains("1.5"), "{err}");
}

/// A committed read of `nil` (EDN) or `null` (JSON) is of the empty list,
/// as Elle reads Jepsen's histories: a read of an empty key begun after an
/// append completed is caught (as a lost append: no read ever showed it).
#[test]
fn a_committed_read_of_nil_is_the_empty_list() {
    let edn = r#"{:type :invoke, :f :txn, :value [[:append 1 1]], :process 0, :time 1}
{:type :ok, :f :txn, :value [[:append 1 1]], :process 0, :time 2}
{:type :invoke, :f :txn, :value [[:r 1 nil]], :process 1, :time 3}
{:type :ok, :f :txn, :value [[:r 1 nil]], :process 1, :time 4}
"#;
    let json = r#"{"time":1,"process":0,"type":"invoke","f":"txn","value":[["append","1",1]]}
{"time":2,"process":0,"type":"ok","f":"txn","value":[["append","1",1]]}
{"time":3,"process":1,"type":"invoke","f":"txn","value":[["r","1",null]]}
{"time":4,"process":1,"type":"ok","f":"txn","value":[["r","1",null]]}
"#;
    for h in [
        super::history::read_edn(edn).unwrap(),
        super::history::read_jsonl(json.as_bytes()).unwrap(),
    ] {
        assert_eq!(h[1].mops, [rd("1", &[])]);
        let r = check(&h, Consistency::StrictSerializable);
        assert_eq!(classes(&r), ["lost-append"], "{r:?}");
    }
}

/// Jepsen's EDN form: integer keys, `:append` and `:r`; a write skew.
#[test]
fn jepsen_edn_append_histories_are_read() {
    let text = r#"
{:type :invoke, :f :txn, :value [[:r 1 nil] [:append 2 1]], :process 0, :time 10}
{:type :invoke, :f :txn, :value [[:r 2 nil] [:append 1 1]], :process 1, :time 11}
{:type :ok, :f :txn, :value [[:r 1 []] [:append 2 1]], :process 0, :time 20}
{:type :ok, :f :txn, :value [[:r 2 []] [:append 1 1]], :process 1, :time 21}
{:type :info, :f :start-partition, :value nil, :process :nemesis, :time 25}
{:type :invoke, :f :txn, :value [[:r 1 nil] [:r 2 nil]], :process 2, :time 30}
{:type :ok, :f :txn, :value [[:r 1 [1]] [:r 2 [1]]], :process 2, :time 31}
"#;
    assert!(super::history::is_txn_edn(text));
    let h = super::history::read_edn(text).unwrap();
    assert_eq!(h.len(), 3);
    let r = check(&h, Consistency::Serializable);
    assert_eq!(classes(&r), ["G2"], "{r:?}");
    let bad = "{:type :invoke, :f :txn, :value [[:put 1 1]], :process 0}";
    let e = super::history::read_edn(bad).unwrap_err();
    assert!(
        e.contains("line 1: a micro-operation is :append or :r"),
        "{e}"
    );
    assert!(!super::history::is_txn_edn(
        "{:type :invoke, :f :read, :value nil, :process 0}"
    ));
}

#[test]
fn real_time_costs_a_few_edges_per_transaction_however_many_overlap() {
    // n transactions that all complete before n others begin: every one of
    // the first precedes every one of the second (n² real-time orders).
    let n = 2000u64;
    let mut h = Vec::new();
    for i in 0..n {
        h.push(t(
            i,
            i,
            Some(10_000 + i),
            TxnOutcome::Ok,
            vec![ap("x", i as i64 + 1)],
        ));
    }
    let all: Vec<i64> = (1..=n as i64).collect();
    for i in 0..n {
        h.push(t(
            n + i,
            20_000 + i,
            Some(30_000 + i),
            TxnOutcome::Ok,
            vec![rd("x", &all)],
        ));
    }
    let r = check(&h, Consistency::StrictSerializable);
    assert!(r.valid, "{:?}", r.anomalies);
    assert!(
        r.edges < 10 * 2 * n as usize,
        "{} edges for {} transactions",
        r.edges,
        2 * n
    );
    // A read in the second group that misses an append of the first is a
    // real-time cycle, found through the line of points.
    h.push(t(
        3 * n,
        40_000,
        Some(40_001),
        TxnOutcome::Ok,
        vec![rd("x", &all[..5])],
    ));
    let r = check(&h, Consistency::StrictSerializable);
    assert_eq!(
        r.counts.keys().collect::<Vec<_>>(),
        ["G-single-realtime"],
        "{r:?}"
    );
    let a = &r.anomalies[0];
    assert_eq!(a.txns.len(), a.edges.len());
    assert!(a.txns.iter().all(|t| *t < h.len()), "{a:?}");
}

/// A small generator for the mutations below (xorshift).
struct R(u64);
impl R {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Damage a history at a few random places: an outcome changed, a read
/// with an element dropped, two swapped, one added or half cut, a
/// transaction moved later.
fn mutate(h: &mut [Txn], r: &mut R) {
    let n = h.len();
    for _ in 0..(r.next() % 4) {
        let t = (r.next() as usize) % n;
        match r.next() % 6 {
            0 => {
                h[t].outcome =
                    [TxnOutcome::Ok, TxnOutcome::Fail, TxnOutcome::Info][(r.next() % 3) as usize]
            }
            1 => {
                for m in &mut h[t].mops {
                    if let Mop::Read { value: Some(l), .. } = m {
                        if !l.is_empty() {
                            let i = (r.next() as usize) % l.len();
                            l.remove(i);
                        }
                    }
                }
            }
            2 => {
                for m in &mut h[t].mops {
                    if let Mop::Read { value: Some(l), .. } = m {
                        if l.len() > 1 {
                            l.swap(0, 1);
                        }
                    }
                }
            }
            3 => {
                for m in &mut h[t].mops {
                    if let Mop::Read { value: Some(l), .. } = m {
                        l.push((r.next() % 5) as i64);
                    }
                }
            }
            4 => {
                let d = r.next() % 30;
                h[t].invoke_ns += d;
                if let Some(c) = h[t].complete_ns.as_mut() {
                    *c += d + r.next() % 30;
                }
            }
            _ => {
                for m in &mut h[t].mops {
                    if let Mop::Read { value: Some(l), .. } = m {
                        l.truncate(l.len() / 2);
                    }
                }
            }
        }
    }
}

/// Generated, planted and damaged histories, and the same shuffled.
fn assorted(n: u64) -> impl Iterator<Item = Vec<Txn>> {
    let mut r = R(88_172_645_463_325_252);
    (0..n).map(move |seed| {
        let shape = Shape {
            txns: 20 + (seed % 60) as usize,
            keys: 1 + (seed % 4) as usize,
            max_mops: 1 + (seed % 4) as usize,
            processes: 1 + (seed % 5) as usize,
            appends: 0.5,
            max_writes_per_key: 3 + (seed % 8) as usize,
        };
        let mut h = correct(shape, seed);
        if seed % 3 == 0 {
            plant(&mut h, PLANTABLE[(seed as usize / 3) % PLANTABLE.len()]);
        }
        if seed % 2 == 1 {
            mutate(&mut h, &mut r);
        }
        h
    })
}

#[test]
fn columns_give_back_every_history_they_were_given() {
    for (i, h) in assorted(2000).enumerate() {
        let h: Vec<Txn> = h
            .into_iter()
            .enumerate()
            .map(|(line, t)| Txn { line, ..t })
            .collect();
        assert_eq!(Columns::from_txns(&h).to_txns(), h, "history {i}");
    }
}

#[test]
fn the_order_of_the_list_changes_no_verdict() {
    let mut r = R(7);
    let mut invalid = 0;
    for h in assorted(1500) {
        let mut shuffled = h.clone();
        for i in (1..shuffled.len()).rev() {
            let j = (r.next() as usize) % (i + 1);
            shuffled.swap(i, j);
        }
        for model in [
            Consistency::StrictSerializable,
            Consistency::Serializable,
            Consistency::StrongSessionSerializable,
        ] {
            let (a, b) = (check(&h, model), check(&shuffled, model));
            invalid += usize::from(!a.valid);
            if model == Consistency::StrongSessionSerializable {
                // Process order is the list's order: only the rest agree.
                continue;
            }
            assert_eq!(a.valid, b.valid, "{model:?}");
            // Which read sets a key's order, when reads disagree, is the
            // first of the longest: counts may differ only then.
            if !a.counts.contains_key("incompatible-order") {
                assert_eq!(a.counts, b.counts, "{model:?}");
            }
        }
    }
    assert!(invalid > 1000, "the damage made anomalies: {invalid}");
}
