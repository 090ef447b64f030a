//! A lock run's section of its page: fenced or not, each lock that had two
//! holders at once with the fault windows between their acquires, and
//! every write a protected register took from a stale holder.

use faultline_checker::witness::{readable_time, WitnessKind};
use faultline_checker::Counterexample;
use maud::{html, Markup};

use crate::analysis::locks::LockResults;
use crate::analysis::FaultStats;

/// The faults that were on between the first holder's acquire and the
/// second's, in words (empty: none).
pub fn faults_between(c: &Counterexample, faults: &[FaultStats]) -> String {
    if c.kind != WitnessKind::TwoHolders || c.witness.len() < 2 {
        return String::new();
    }
    let from = c.witness[0].complete_ns.unwrap_or(c.witness[0].invoke_ns) as f64 / 1e9;
    let to = c.witness[1].complete_ns.unwrap_or(c.witness[1].invoke_ns) as f64 / 1e9;
    let hit = super::faults_within(faults, from, to);
    if hit.is_empty() {
        format!("No fault of the cluster was on between the two acquires ({from:.1}–{to:.1} s): the clients' own pauses, or the lease's timing alone, gave the lock away.")
    } else {
        format!(
            "Between the two acquires ({from:.1}–{to:.1} s): {}.",
            hit.join("; ")
        )
    }
}

/// The banner of a lock run.
pub fn banner(v: faultline_checker::Verdict, l: &LockResults, why: &str) -> Markup {
    use faultline_checker::Verdict;
    let (class, text) = match (v, l.fenced) {
        (Verdict::Linearizable, false) => ("ok", "SAFE: one holder at a time, and the protected registers linearizable with no write from a stale holder."),
        (Verdict::Linearizable, true) => ("ok", "SAFE (fenced): the protected registers linearizable, and no write from a stale holder taken."),
        (Verdict::NotLinearizable, false) => ("bad", "NOT SAFE: the lock had two holders at once, or a protected register took a write it should not have."),
        (Verdict::NotLinearizable, true) => ("bad", "NOT SAFE despite fencing: a protected register took a stale holder's write, or is not linearizable."),
        (Verdict::Unknown, _) => ("unk", "UNKNOWN: the checker ran out of its budget before deciding."),
    };
    super::banner(class, text, why)
}

/// The section.
pub fn locks(l: &LockResults, faults: &[FaultStats]) -> Markup {
    html! {
        h2 { "Locks" }
        p {
            @if l.fenced {
                "Fenced: every holder's write carried the lock's token and the store refused a token lower than it had seen. The run is judged by the protected registers; the locks' own verdicts are set aside below (a lease lock cannot promise one holder at a time in an asynchronous network)."
            } @else {
                "Unfenced: holders wrote the protected registers plainly. The run is judged by the locks (one holder at a time) and the registers."
            }
        }
        @if l.fenced {
            @for m in &l.mutex {
                @if let Some(c) = &m.counterexample {
                    p { b { "Set aside — " (m.key) ": " (c.kind.words()) ". " } (c.explanation) " " (faults_between(c, faults)) }
                }
            }
        }
        @if l.stale_writes.is_empty() {
            p { "No protected register took a write from a stale holder." }
        } @else {
            p class="poor" { b { (l.stale_writes.len()) " write(s) by a stale holder" } ": each an ok write whose token is lower than that of a write the register had already completed." }
            table {
                tr { th { "register" } th { "line" } th { "process" } th { "token" } th { "began" } th { "after token" } th { "its line" } th { "completed" } }
                @for s in l.stale_writes.iter().take(20) {
                    tr {
                        td { (s.key) } td { (s.line) } td { (s.process) } td { (s.token) } td { (readable_time(s.invoke_ns)) }
                        td { (s.newer_token) } td { (s.newer_line) } td { (readable_time(s.newer_complete_ns)) }
                    }
                }
            }
        }
    }
}
