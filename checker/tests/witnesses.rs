//! Witnesses name the operations that really conflict: on generated
//! histories with exactly one injected anomaly of each kind (the generator
//! knows the culprit), the witness holds the culprit every time and, for
//! the unique-value register, at most four operations; with repeated values
//! the search's evidence is reduced to a set that is still unexplainable.

use faultline_checker::gen::Rng;
use faultline_checker::witness::WitnessKind;
use faultline_checker::{check_history, read_jsonl, Options, Verdict};
use serde_json::json;

/// One operation of a generated history.
#[derive(Clone, Debug)]
struct G {
    process: u64,
    f: &'static str,
    invoke: Option<i64>,
    cas: Option<(i64, i64)>,
    result: Option<i64>,
    call: u64,
    ret: u64,
}

/// A linearizable history of one register: `n` operations by `procs`
/// processes, each taking effect at one instant inside its interval,
/// written values unique (1, 2, 3, ...).
fn generate(seed: u64, n: usize, procs: u64) -> Vec<G> {
    let mut rng = Rng::new(seed);
    let mut state: Option<i64> = None;
    let mut next_value = 1;
    let mut t = 0u64;
    // Per process: the op under way and whether it took effect.
    let mut open: Vec<Option<(G, bool)>> = vec![None; procs as usize];
    let mut done: Vec<G> = Vec::new();
    let mut started = 0;
    while done.len() < n {
        t += 1;
        let p = rng.below(procs as usize);
        match open[p].take() {
            None if started < n => {
                started += 1;
                let g = match rng.below(10) {
                    0..=3 => G {
                        process: p as u64,
                        f: "read",
                        invoke: None,
                        cas: None,
                        result: None,
                        call: t,
                        ret: 0,
                    },
                    4..=7 => {
                        next_value += 1;
                        G {
                            process: p as u64,
                            f: "write",
                            invoke: Some(next_value),
                            cas: None,
                            result: None,
                            call: t,
                            ret: 0,
                        }
                    }
                    _ => {
                        next_value += 1;
                        let e = state.unwrap_or(0);
                        G {
                            process: p as u64,
                            f: "cas",
                            invoke: None,
                            cas: Some((e, next_value)),
                            result: None,
                            call: t,
                            ret: 0,
                        }
                    }
                };
                open[p] = Some((g, false));
            }
            None => {}
            Some((mut g, false)) => {
                match g.f {
                    "read" => g.result = state,
                    "write" => state = g.invoke,
                    _ => {
                        let (e, new) = g.cas.unwrap();
                        if state == Some(e) {
                            state = Some(new);
                        } else {
                            // A cas that would not match is made a read.
                            g.f = "read";
                            g.cas = None;
                            g.result = state;
                        }
                    }
                }
                open[p] = Some((g, true));
            }
            Some((mut g, true)) => {
                g.ret = t;
                done.push(g);
            }
        }
    }
    done
}

fn to_jsonl(ops: &[G]) -> String {
    let mut events: Vec<(u64, serde_json::Value)> = Vec::new();
    for o in ops {
        let value = match o.f {
            "read" => json!(null),
            "write" => json!(o.invoke),
            _ => json!([o.cas.unwrap().0, o.cas.unwrap().1]),
        };
        let done_value = match o.f {
            "read" => json!(o.result),
            _ => value.clone(),
        };
        events.push((
            o.call * 1000,
            json!({"process": o.process, "type": "invoke", "f": o.f, "key": "k", "value": value}),
        ));
        events.push((
            o.ret * 1000 + 1,
            json!({"process": o.process, "type": "ok", "f": o.f, "key": "k", "value": done_value}),
        ));
    }
    events.sort_by_key(|(t, _)| *t);
    events
        .into_iter()
        .map(|(t, mut e)| {
            e["time"] = json!(t);
            format!("{e}\n")
        })
        .collect()
}

/// The culprit's invoke line in the JSONL text.
fn line_of(text: &str, o: &G) -> usize {
    let want = o.call * 1000;
    text.lines()
        .position(|l| l.contains(&format!("\"time\":{want},")))
        .expect("the culprit is in the file")
        + 1
}

/// Check `ops`, expecting a witness of `kinds` that holds `culprit`.
fn expect_witness(ops: &[G], culprit: &G, kinds: &[WitnessKind], max_ops: usize) {
    let text = to_jsonl(ops);
    let h = read_jsonl(text.as_bytes()).unwrap();
    for fast_path in [true, false] {
        let r = check_history(
            &h,
            &Options {
                fast_path,
                ..Options::default()
            },
        );
        assert_eq!(r.valid, Verdict::NotLinearizable, "{text}");
        let c = r.failures[0].counterexample.as_ref().unwrap();
        let lines: Vec<usize> = c.witness.iter().map(|o| o.line).collect();
        let culprit_line = line_of(&text, culprit);
        assert!(
            lines.contains(&culprit_line),
            "culprit on line {culprit_line} missing from {lines:?}: {}",
            c.explanation
        );
        assert!(kinds.contains(&c.kind), "{:?}: {}", c.kind, c.explanation);
        assert!(
            c.witness.len() <= max_ops,
            "{} operations: {}",
            c.witness.len(),
            c.explanation
        );
        for l in &lines {
            assert!(
                c.explanation.contains(&format!("line {l}")),
                "{}",
                c.explanation
            );
        }
    }
}

const SEEDS: u64 = 60;

#[test]
fn an_injected_stale_read_is_named() {
    let mut named = 0;
    for seed in 0..SEEDS {
        let mut ops = generate(seed, 60, 4);
        // A read that began after a write completed that in turn began after
        // another write of `old` completed: make it return `old`.
        let writes: Vec<G> = ops.iter().filter(|o| o.f == "write").cloned().collect();
        let pick = ops.iter().position(|r| {
            r.f == "read"
                && writes.iter().any(|w| {
                    writes
                        .iter()
                        .any(|w2| w.ret < w2.call && w2.ret < r.call && w2.invoke != r.result)
                })
        });
        let Some(i) = pick else { continue };
        let r = ops[i].clone();
        let old = writes
            .iter()
            .find(|w| {
                writes.iter().any(|w2| w.ret < w2.call && w2.ret < r.call) && w.invoke != r.result
            })
            .unwrap()
            .invoke;
        ops[i].result = old;
        let culprit = ops[i].clone();
        expect_witness(
            &ops,
            &culprit,
            &[WitnessKind::StaleRead, WitnessKind::LostWrite],
            3,
        );
        named += 1;
    }
    assert!(
        named >= SEEDS / 2,
        "only {named} histories had a place for the anomaly"
    );
}

#[test]
fn an_injected_read_from_the_future_is_named() {
    let mut named = 0;
    for seed in 0..SEEDS {
        let mut ops = generate(seed, 60, 4);
        let pick = ops.iter().enumerate().find_map(|(i, r)| {
            let w = ops.iter().find(|w| w.f == "write" && w.call > r.ret)?;
            (r.f == "read").then_some((i, w.invoke))
        });
        let Some((i, v)) = pick else { continue };
        ops[i].result = v;
        let culprit = ops[i].clone();
        expect_witness(&ops, &culprit, &[WitnessKind::FutureRead], 2);
        named += 1;
    }
    assert!(named >= SEEDS / 2, "{named}");
}

#[test]
fn an_injected_read_of_a_value_never_written_is_named() {
    for seed in 0..SEEDS {
        let mut ops = generate(seed, 60, 4);
        let Some(i) = ops.iter().position(|o| o.f == "read") else {
            continue;
        };
        ops[i].result = Some(999_999);
        let culprit = ops[i].clone();
        expect_witness(&ops, &culprit, &[WitnessKind::NeverWritten], 1);
    }
}

/// After the history: one process writes `a`, then `b`; then another reads
/// `a`. The write of `b` was acknowledged and never seen: lost.
#[test]
fn an_injected_lost_write_is_named() {
    for seed in 0..SEEDS {
        let mut ops = generate(seed, 60, 4);
        let end = ops.iter().map(|o| o.ret).max().unwrap_or(0);
        let a = 1_000_001;
        let b = 1_000_002;
        let w = |v: i64, t: u64| G {
            process: 10,
            f: "write",
            invoke: Some(v),
            cas: None,
            result: None,
            call: t,
            ret: t + 1,
        };
        ops.push(w(a, end + 1));
        let lost = w(b, end + 3);
        ops.push(lost.clone());
        ops.push(G {
            process: 11,
            f: "read",
            invoke: None,
            cas: None,
            result: Some(a),
            call: end + 5,
            ret: end + 6,
        });
        expect_witness(&ops, &lost, &[WitnessKind::LostWrite], 3);
    }
}

/// After the history: writes of `a` then `b`; then a cas a→c succeeds.
#[test]
fn an_injected_impossible_cas_is_named() {
    for seed in 0..SEEDS {
        let mut ops = generate(seed, 60, 4);
        let end = ops.iter().map(|o| o.ret).max().unwrap_or(0);
        let (a, b, c) = (2_000_001, 2_000_002, 2_000_003);
        let w = |v: i64, t: u64| G {
            process: 10,
            f: "write",
            invoke: Some(v),
            cas: None,
            result: None,
            call: t,
            ret: t + 1,
        };
        ops.push(w(a, end + 1));
        ops.push(w(b, end + 3));
        // b is read, so the cas is the one to blame.
        ops.push(G {
            process: 12,
            f: "read",
            invoke: None,
            cas: None,
            result: Some(b),
            call: end + 5,
            ret: end + 6,
        });
        let cas = G {
            process: 11,
            f: "cas",
            invoke: None,
            cas: Some((a, c)),
            result: None,
            call: end + 7,
            ret: end + 8,
        };
        ops.push(cas.clone());
        expect_witness(&ops, &cas, &[WitnessKind::ImpossibleCas], 3);
    }
}

/// Values repeat (two writes of 1): no structural answer, so the search's
/// evidence is reduced to operations that still cannot all be explained.
#[test]
fn with_repeated_values_the_evidence_is_reduced() {
    let text = r#"{"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":1}
{"time":2,"process":0,"type":"ok","f":"write","key":"k","value":1}
{"time":3,"process":0,"type":"invoke","f":"write","key":"k","value":2}
{"time":4,"process":0,"type":"ok","f":"write","key":"k","value":2}
{"time":5,"process":1,"type":"invoke","f":"write","key":"k","value":1}
{"time":6,"process":1,"type":"ok","f":"write","key":"k","value":1}
{"time":7,"process":1,"type":"invoke","f":"write","key":"k","value":3}
{"time":8,"process":1,"type":"ok","f":"write","key":"k","value":3}
{"time":9,"process":2,"type":"invoke","f":"read","key":"k","value":null}
{"time":10,"process":2,"type":"ok","f":"read","key":"k","value":1}
"#;
    let h = read_jsonl(text.as_bytes()).unwrap();
    let r = check_history(&h, &Options::default());
    assert_eq!(r.valid, Verdict::NotLinearizable);
    let c = r.failures[0].counterexample.as_ref().unwrap();
    assert_eq!(c.kind, WitnessKind::NotLinearizable);
    let lines: Vec<usize> = c.witness.iter().map(|o| o.line).collect();
    // The read, the write of 3 that replaced 1, and a write of 1 before it.
    assert!(
        lines.contains(&9) && lines.contains(&7),
        "{lines:?}: {}",
        c.explanation
    );
    assert!(c.witness.len() <= 3, "{lines:?}");
    assert!(
        c.explanation.contains("cannot all be explained together"),
        "{}",
        c.explanation
    );
}
