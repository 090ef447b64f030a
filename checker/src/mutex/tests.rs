//! The mutex model on hand-written lock histories (a double acquire, a
//! release by a non-holder, crashed acquires that may or may not have
//! taken effect) and on thousands of small generated ones against an
//! exhaustive search over every order and every subset of `info`
//! operations.

use super::*;
use crate::gen::Rng;
use crate::history::Outcome;
use std::time::Duration;

fn budget() -> Budget {
    Budget {
        deadline: Instant::now() + Duration::from_secs(10),
        max_configs: 1 << 20,
    }
}

/// A history from (process, type, f, token) lines, times 10 ns apart.
fn hist(events: &[(u64, &str, &str, Option<i64>)]) -> Vec<Op> {
    let text: String = events
        .iter()
        .enumerate()
        .map(|(i, (p, t, f, v))| {
            format!(
                "{{\"time\":{},\"process\":{p},\"type\":\"{t}\",\"f\":\"{f}\",\"key\":\"L\",\"value\":{}}}\n",
                (i + 1) * 10,
                v.map_or("null".to_string(), |x| x.to_string())
            )
        })
        .collect();
    crate::read_jsonl(text.as_bytes())
        .unwrap()
        .ops
        .into_iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .collect()
}

#[test]
fn a_double_acquire_names_both_holders() {
    let ops = hist(&[
        (1, "invoke", "acquire", None),
        (1, "ok", "acquire", Some(5)),
        (2, "invoke", "acquire", None),
        (2, "ok", "acquire", Some(6)),
        (1, "invoke", "release", Some(5)),
        (1, "ok", "release", Some(5)),
    ]);
    let r = check_lock("L", ops, budget());
    assert_eq!(r.valid, Verdict::NotLinearizable);
    let c = r.counterexample.unwrap();
    assert_eq!(c.kind, WitnessKind::TwoHolders);
    assert!(
        c.explanation.contains("process 1") && c.explanation.contains("process 2"),
        "{}",
        c.explanation
    );
    assert_eq!(c.witness.len(), 3, "{:?}", c.witness);
}

#[test]
fn a_release_by_a_non_holder_is_named() {
    let ops = hist(&[
        (1, "invoke", "acquire", None),
        (1, "ok", "acquire", None),
        (2, "invoke", "release", None),
        (2, "ok", "release", None),
    ]);
    let r = check_lock("L", ops, budget());
    assert_eq!(r.valid, Verdict::NotLinearizable);
    let c = r.counterexample.unwrap();
    assert_eq!(c.kind, WitnessKind::ReleaseByNonHolder, "{}", c.explanation);
    assert!(c.explanation.contains("process 2"), "{}", c.explanation);
}

#[test]
fn crashed_acquires_may_or_may_not_have_taken_the_lock() {
    // Process 1's acquire ended info: if it took the lock, nobody could
    // have acquired it after; the search may leave it out.
    let ops = hist(&[
        (1, "invoke", "acquire", None),
        (1, "info", "acquire", None),
        (2, "invoke", "acquire", None),
        (2, "ok", "acquire", None),
        (2, "invoke", "release", None),
        (2, "ok", "release", None),
    ]);
    assert_eq!(check_lock("L", ops, budget()).valid, Verdict::Linearizable);
    // A crashed release keeps or frees the lock: another acquire may
    // follow.
    let ops = hist(&[
        (1, "invoke", "acquire", None),
        (1, "ok", "acquire", None),
        (1, "invoke", "release", None),
        (1, "info", "release", None),
        (2, "invoke", "acquire", None),
        (2, "ok", "acquire", None),
    ]);
    assert_eq!(check_lock("L", ops, budget()).valid, Verdict::Linearizable);
    // Handing the lock on, one after the other, and concurrent acquires
    // of which one waits for the other's release.
    let ops = hist(&[
        (1, "invoke", "acquire", None),
        (1, "ok", "acquire", None),
        (2, "invoke", "acquire", None),
        (1, "invoke", "release", None),
        (1, "ok", "release", None),
        (2, "ok", "acquire", None),
    ]);
    assert_eq!(check_lock("L", ops, budget()).valid, Verdict::Linearizable);
}

/// Every subset of the info operations, every order real time allows.
fn brute(ops: &[Op]) -> bool {
    let infos: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].outcome == Outcome::Info)
        .collect();
    (0..(1u32 << infos.len())).any(|mask| {
        let chosen: Vec<usize> = (0..ops.len())
            .filter(|&i| match infos.iter().position(|&x| x == i) {
                Some(b) => mask & (1 << b) != 0,
                None => true,
            })
            .collect();
        let mut used = vec![false; ops.len()];
        permute(ops, &chosen, &mut used, 0, None)
    })
}

fn permute(
    ops: &[Op],
    chosen: &[usize],
    used: &mut [bool],
    placed: usize,
    state: Option<u64>,
) -> bool {
    if placed == chosen.len() {
        return true;
    }
    for &i in chosen {
        if used[i]
            || chosen
                .iter()
                .any(|&j| !used[j] && j != i && ops[j].ret < ops[i].call)
        {
            continue;
        }
        if let Some(next) = Mutex.step(&state, &ops[i]) {
            used[i] = true;
            if permute(ops, chosen, used, placed + 1, next) {
                return true;
            }
            used[i] = false;
        }
    }
    false
}

#[test]
fn generated_lock_histories_agree_with_an_exhaustive_search() {
    let mut rng = Rng::new(47);
    let mut verdicts = [0usize; 2];
    for case in 0..3000 {
        let n = 2 + rng.below(7);
        let procs = 1 + rng.below(3);
        let mut events: Vec<(u64, &str, &str, Option<i64>)> = Vec::new();
        let mut open: Vec<Option<&str>> = vec![None; procs];
        let mut pid: Vec<u64> = (0..procs as u64).collect();
        let mut fresh = procs as u64;
        let mut invoked = 0;
        for _ in 0..200 {
            if invoked >= n && open.iter().all(Option::is_none) {
                break;
            }
            let p = rng.below(procs);
            match open[p].take() {
                None if invoked < n => {
                    invoked += 1;
                    let f = if rng.below(2) == 0 {
                        "acquire"
                    } else {
                        "release"
                    };
                    events.push((pid[p], "invoke", f, None));
                    open[p] = Some(f);
                }
                None => {}
                Some(f) => {
                    let ty = ["ok", "ok", "ok", "fail", "info"][rng.below(5)];
                    events.push((pid[p], ty, f, None));
                    if ty == "info" {
                        pid[p] = fresh;
                        fresh += 1;
                    }
                }
            }
        }
        let ops = hist(&events);
        if ops.is_empty() {
            continue;
        }
        let want = brute(&ops);
        verdicts[want as usize] += 1;
        let got = check_lock("L", ops, budget());
        let want_v = if want {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        };
        assert_eq!(got.valid, want_v, "case {case}: {events:?}");
        if !want {
            assert!(got.counterexample.is_some());
        }
    }
    assert!(
        verdicts[0] > 300 && verdicts[1] > 300,
        "both verdicts well represented: {verdicts:?}"
    );
}

#[test]
fn knossos_mutex_histories_in_edn_are_read_and_judged() {
    // The shape of Knossos' data/mutex files: :acquire and :release with
    // nil values, one lock.
    let good = r#"{:process 0, :type :invoke, :f :acquire, :value nil}
{:process 0, :type :ok, :f :acquire, :value nil}
{:process 1, :type :invoke, :f :acquire, :value nil}
{:process 0, :type :invoke, :f :release, :value nil}
{:process 0, :type :ok, :f :release, :value nil}
{:process 1, :type :ok, :f :acquire, :value nil}
"#;
    let bad = r#"{:process 0, :type :invoke, :f :acquire, :value nil}
{:process 0, :type :ok, :f :acquire, :value nil}
{:process 1, :type :invoke, :f :acquire, :value nil}
{:process 1, :type :ok, :f :acquire, :value nil}
"#;
    for (text, want) in [
        (good, Verdict::Linearizable),
        (bad, Verdict::NotLinearizable),
    ] {
        let h = crate::read_edn(text).unwrap();
        assert!(h.ops.iter().all(|o| o.key == "lock"), "{:?}", h.ops);
        let r = crate::check_history(&h, &crate::Options::default());
        assert_eq!(r.valid, want, "{r:?}");
    }
    // A key with a lock's and a register's operations is not judged.
    let mixed = "{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"acquire\",\"key\":\"k\",\"value\":null}\n{\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"acquire\",\"key\":\"k\",\"value\":null}\n{\"time\":3,\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":1}\n{\"time\":4,\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"key\":\"k\",\"value\":1}\n";
    let r = crate::check_history(
        &crate::read_jsonl(mixed.as_bytes()).unwrap(),
        &crate::Options::default(),
    );
    assert_eq!(r.valid, Verdict::Unknown);
}

#[test]
fn a_process_that_takes_the_lock_again_without_a_release_is_named() {
    let ops = hist(&[
        (1, "invoke", "acquire", None),
        (1, "ok", "acquire", Some(1)),
        (1, "invoke", "release", Some(1)),
        (1, "fail", "release", Some(1)),
        (1, "invoke", "acquire", None),
        (1, "ok", "acquire", Some(2)),
    ]);
    let r = check_lock("L", ops, budget());
    assert_eq!(r.valid, Verdict::NotLinearizable);
    let c = r.counterexample.unwrap();
    assert_eq!(c.kind, WitnessKind::TwoHolders);
    assert!(
        c.explanation.contains("acquired it again"),
        "{}",
        c.explanation
    );
}
