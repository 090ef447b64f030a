//! A run of the lock workload (`--workload lock`): the locks' histories
//! are judged against a mutex and the protected registers as registers
//! (both by the checker, key by key); here, the writes the protected
//! registers took from a stale holder — an ok write whose token is lower
//! than that of an ok write that completed before it began — and, for a
//! fenced run, the locks' own verdicts set aside: fencing promises that
//! the protected register is safe, not that the lease lock never had two
//! holders (it cannot), so a fenced run is judged by its registers.

use faultline_checker::history::{OpKind, Outcome};
use faultline_checker::{History, KeyResult, Report, Verdict};
use serde::{Deserialize, Serialize};

/// What the lock workload's own analysis found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockResults {
    /// The holders' writes were fenced.
    pub fenced: bool,
    /// The locks whose acquires and releases fit no mutex (two holders at
    /// once, a release by a non-holder). In an unfenced run these are the
    /// checker's failures too; in a fenced one they are set aside here.
    pub mutex: Vec<KeyResult>,
    /// Writes a protected register took from a holder older than one
    /// whose write it had already taken.
    pub stale_writes: Vec<StaleWrite>,
}

/// One write by a stale holder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StaleWrite {
    /// The protected register.
    pub key: String,
    /// The write's line, process, token and invocation time (ns).
    pub line: usize,
    /// Its process.
    pub process: u64,
    /// Its holder's token.
    pub token: i64,
    /// When it began.
    pub invoke_ns: u64,
    /// The newer holder's write it came after: its line, token and
    /// completion (ns).
    pub newer_line: usize,
    /// The newer holder's token.
    pub newer_token: i64,
    /// When the newer write completed.
    pub newer_complete_ns: u64,
}

/// Whether `h` is a lock workload's history.
pub fn is_lock_history(h: &History) -> bool {
    h.ops.iter().any(|o| o.kind == OpKind::Acquire)
}

/// The stale writes of every protected register (values `token << 32 | n`).
pub fn stale_writes(h: &History) -> Vec<StaleWrite> {
    let mut out = Vec::new();
    let mut keys: Vec<&str> = h
        .ops
        .iter()
        .filter(|o| o.kind == OpKind::Write && o.key.ends_with(".data"))
        .map(|o| o.key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let mut done: Vec<(u64, i64, usize)> = h
            .ops
            .iter()
            .filter(|o| o.key == key && o.kind == OpKind::Write && o.outcome == Outcome::Ok)
            .filter_map(|o| Some((o.ret_time?, o.arg? >> 32, o.line)))
            .collect();
        done.sort_unstable();
        // At each completion, the highest token (and its write's line)
        // among the writes completed so far: a running maximum.
        let mut best: Vec<(u64, i64, usize)> = Vec::with_capacity(done.len());
        let mut top = (i64::MIN, 0usize);
        for &(t, tok, line) in &done {
            if tok > top.0 {
                top = (tok, line);
            }
            best.push((t, top.0, top.1));
        }
        for o in h
            .ops
            .iter()
            .filter(|o| o.key == key && o.kind == OpKind::Write && o.outcome == Outcome::Ok)
        {
            let Some(v) = o.arg else { continue };
            let token = v >> 32;
            let before = best.partition_point(|(t, _, _)| *t < o.call_time);
            if before == 0 {
                continue;
            }
            let (t, newer, line) = best[before - 1];
            if newer > token {
                out.push(StaleWrite {
                    key: key.to_string(),
                    line: o.line,
                    process: o.process,
                    token,
                    invoke_ns: o.call_time,
                    newer_line: line,
                    newer_token: newer,
                    newer_complete_ns: t,
                });
            }
        }
    }
    out
}

/// Judge a lock run: set a fenced run's lock verdicts aside, add the
/// stale writes; returns the checker's report as the run's verdict sees it.
pub fn judge(h: &History, mut checker: Report, fenced: bool) -> (Report, LockResults) {
    let locks: std::collections::HashSet<&str> = h
        .ops
        .iter()
        .filter(|o| o.kind == OpKind::Acquire)
        .map(|o| o.key.as_str())
        .collect();
    let mutex: Vec<KeyResult> = checker
        .failures
        .iter()
        .filter(|f| locks.contains(f.key.as_str()))
        .cloned()
        .collect();
    if fenced {
        checker.failures.retain(|f| !locks.contains(f.key.as_str()));
        if checker.failures.is_empty() && checker.valid == Verdict::NotLinearizable {
            checker.valid = if checker.unknown.is_empty() {
                Verdict::Linearizable
            } else {
                Verdict::Unknown
            };
        }
    }
    let stale = stale_writes(h);
    if !stale.is_empty() {
        checker.valid = Verdict::NotLinearizable;
    }
    (
        checker,
        LockResults {
            fenced,
            mutex,
            stale_writes: stale,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(lines: &[(u64, &str, &str, &str, &str)]) -> History {
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, (p, t, f, k, v))| {
                format!(
                    "{{\"time\":{},\"process\":{p},\"type\":\"{t}\",\"f\":\"{f}\",\"key\":\"{k}\",\"value\":{v}}}\n",
                    (i + 1) * 10
                )
            })
            .collect();
        faultline_checker::read_jsonl(text.as_bytes()).unwrap()
    }

    #[test]
    fn a_write_by_an_older_holder_after_a_newer_ones_is_stale() {
        let t = |tok: i64, n: i64| ((tok << 32) | n).to_string();
        let (a1, b1, a2) = (t(1, 1), t(2, 1), t(1, 2));
        let h = history(&[
            (10, "invoke", "write", "k0.data", &a1),
            (10, "ok", "write", "k0.data", &a1),
            (11, "invoke", "write", "k0.data", &b1),
            (11, "ok", "write", "k0.data", &b1),
            // Token 1 again, after token 2's write completed: stale.
            (12, "invoke", "write", "k0.data", &a2),
            (12, "ok", "write", "k0.data", &a2),
        ]);
        let s = stale_writes(&h);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].token, s[0].newer_token, s[0].line), (1, 2, 5));
        // In order, nothing is stale.
        let h = history(&[
            (10, "invoke", "write", "k0.data", &a1),
            (10, "ok", "write", "k0.data", &a1),
            (12, "invoke", "write", "k0.data", &a2),
            (12, "ok", "write", "k0.data", &a2),
            (11, "invoke", "write", "k0.data", &b1),
            (11, "ok", "write", "k0.data", &b1),
        ]);
        assert!(stale_writes(&h).is_empty());
    }
}
