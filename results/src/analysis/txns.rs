//! A run of list-append transactions (`--workload append`): its history
//! as the statistics and plots read it (one operation per transaction,
//! `txn`), and its verdict from the list-append checker against the
//! run's consistency model, with the transactions each anomaly names kept
//! for the run page.

use std::collections::BTreeMap;

use faultline_checker::elle::history::TxnHistory;
use faultline_checker::elle::{self, Consistency, ElleReport, Txn, TxnOutcome};
use faultline_checker::history::{OpKind, Outcome, NEVER};
use faultline_checker::{History, Op, Report, Verdict};
use serde::{Deserialize, Serialize};

/// The list-append checker's verdict on a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxnResults {
    /// The model the history was judged against.
    pub consistency: Consistency,
    /// What the checker found.
    pub report: ElleReport,
    /// The transactions the anomalies name, by their index in the history.
    pub named: BTreeMap<usize, Txn>,
}

impl TxnResults {
    /// The first anomaly in a few words ("G-single-realtime on k1, k3 at
    /// 12.4 s"); none for a valid history.
    pub fn headline(&self) -> Option<String> {
        let a = self.report.anomalies.first()?;
        let mut keys: Vec<&str> = a.edges.iter().filter_map(|e| e.key.as_deref()).collect();
        if keys.is_empty() {
            keys = a
                .txns
                .iter()
                .filter_map(|t| self.named.get(t))
                .flat_map(|t| t.mops.iter().map(|m| m.key()))
                .collect();
        }
        keys.sort_unstable();
        keys.dedup();
        let at = a
            .txns
            .iter()
            .filter_map(|t| self.named.get(t))
            .map(|t| t.complete_ns.unwrap_or(t.invoke_ns))
            .max();
        let mut s = a.class.clone();
        if !keys.is_empty() {
            s.push_str(&format!(" on {}", keys.join(", ")));
        }
        if let Some(ns) = at {
            s.push_str(&format!(" at {:.1} s", ns as f64 / 1e9));
        }
        Some(s)
    }
}

impl TxnResults {
    /// When the earliest anomaly was complete (its last transaction's
    /// completion), seconds.
    pub fn first_at_s(&self) -> Option<f64> {
        self.report
            .anomalies
            .iter()
            .filter_map(|a| {
                a.txns
                    .iter()
                    .filter_map(|t| self.named.get(t))
                    .map(|t| t.complete_ns.unwrap_or(t.invoke_ns))
                    .max()
            })
            .min()
            .map(|ns| ns as f64 / 1e9)
    }
}

/// The transactions as register-history operations of kind `txn`, for the
/// statistics, availability and plots (never for the register checker).
pub fn as_history(h: &TxnHistory, txns: &[Txn]) -> History {
    let ops = txns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut keys: Vec<&str> = t.mops.iter().map(|m| m.key()).collect();
            keys.dedup();
            Op {
                id: i,
                process: t.process,
                kind: OpKind::Txn,
                key: keys.join(","),
                arg: None,
                arg2: None,
                result: None,
                outcome: match t.outcome {
                    TxnOutcome::Ok => Outcome::Ok,
                    TxnOutcome::Fail => Outcome::Fail,
                    TxnOutcome::Info => Outcome::Info,
                },
                call: 2 * i as u64,
                ret: match t.outcome {
                    TxnOutcome::Info => NEVER,
                    _ => 2 * i as u64 + 1,
                },
                call_time: t.invoke_ns,
                ret_time: t.complete_ns,
                line: t.line,
                node: None,
            }
        })
        .collect();
    History {
        ops,
        nemesis: h.nemesis.clone(),
        events: h.events,
        torn_last_line: h.torn_last_line,
    }
}

/// Judge `txns` against `consistency`: the report in the register
/// checker's shape (for the verdict, the counts and the campaign's
/// tables) and the list-append checker's own.
pub fn judge(txns: &[Txn], consistency: Consistency) -> (Report, TxnResults) {
    let t0 = std::time::Instant::now();
    // A history that cannot be judged (a value appended to a key twice)
    // is undecided, and says why.
    let (report, unusable) = match elle::check(txns, consistency) {
        Ok(r) => (r, None),
        Err(e) => (
            elle::ElleReport {
                txns: txns.len(),
                ..Default::default()
            },
            Some(format!("the history cannot be judged: {e}")),
        ),
    };
    let mut named = BTreeMap::new();
    for a in &report.anomalies {
        for &t in &a.txns {
            if let Some(txn) = txns.get(t) {
                named.insert(t, txn.clone());
            }
        }
    }
    let mut keys: Vec<&str> = txns
        .iter()
        .flat_map(|t| t.mops.iter().map(|m| m.key()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let committed = txns.iter().any(|t| t.outcome == TxnOutcome::Ok);
    let valid = if !committed || unusable.is_some() {
        Verdict::Unknown
    } else if report.valid {
        Verdict::Linearizable
    } else {
        Verdict::NotLinearizable
    };
    let checker = Report {
        valid,
        ops: txns.len(),
        keys: keys.len(),
        failures: Vec::new(),
        unknown: Vec::new(),
        elapsed_ms: t0.elapsed().as_secs_f64() * 1e3,
        reason: unusable
            .or_else(|| (!committed).then(|| "no transaction committed: nothing to judge".into())),
    };
    (
        checker,
        TxnResults {
            consistency,
            report,
            named,
        },
    )
}
