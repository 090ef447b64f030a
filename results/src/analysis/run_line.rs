//! A run's results in words: the one line a campaign prints per run, and
//! what the run was expected to show.

use super::RunResults;
use faultline_checker::Verdict;

impl RunResults {
    /// One line that says how a run ended: its verdict, any safety finding in
    /// the nodes' logs, availability, time without a leader (in all, and the
    /// median per fault window, as the campaign's tables show it) and p99
    /// latency.
    pub fn line(&self) -> String {
        let mut verdict = match (&self.txns, self.checker.valid) {
            (Some(t), Verdict::Linearizable) => t.consistency.to_string(),
            (Some(t), Verdict::NotLinearizable) => {
                format!("NOT {}", t.consistency.to_string().to_uppercase())
            }
            (_, Verdict::Linearizable) => "linearizable".into(),
            (_, Verdict::NotLinearizable) => "NOT LINEARIZABLE".into(),
            (_, Verdict::Unknown) => "unknown".into(),
        };
        if let Some(h) = self.txns.as_ref().and_then(|t| t.headline()) {
            verdict.push_str(&format!(" ({h})"));
        }
        if let Some(f) = self.checker.failures.first() {
            if let Some(c) = &f.counterexample {
                verdict.push_str(&format!(" ({})", c.headline(&f.key)));
            }
        }
        if let Some(l) = &self.locks {
            if let Some(s) = l.stale_writes.first() {
                verdict.push_str(&format!(
                    "; a stale holder (token {}) wrote {} at {:.1} s after token {}'s write",
                    s.token,
                    s.key,
                    s.invoke_ns as f64 / 1e9,
                    s.newer_token
                ));
            }
            if l.fenced {
                if let Some(c) = l
                    .mutex
                    .first()
                    .and_then(|m| m.counterexample.as_ref().map(|c| (m, c)))
                {
                    verdict.push_str(&format!(
                        "; fenced, so set aside: {}",
                        c.1.headline(&c.0.key)
                    ));
                }
            }
        }
        if let Some(f) = self.findings.first() {
            verdict.push_str(&format!(
                "; UNSAFE in the nodes' logs: {}{}",
                f.message,
                match self.findings.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                }
            ));
        }
        format!(
            "{verdict}; availability {:.1} % of the run, without a leader {}, p99 latency {:.1} ms",
            self.availability.share * 100.0,
            self.leaderless_words(),
            self.latency.get("all").map_or(0.0, |p| p.p99)
        )
    }

    /// What the run was expected to show: its spec's `expect` (the one
    /// place it is stored), linearizable for a history without a spec.
    pub fn expect(&self) -> crate::expect::Expect {
        self.spec.as_ref().map(|s| s.expect).unwrap_or_default()
    }

    /// The run against its expectation: the verdict, with the log audit's
    /// safety violations counting as caught.
    pub fn judgement(&self) -> crate::expect::Judgement {
        crate::expect::judge(self.expect(), self.valid, !self.findings.is_empty())
    }

    /// Time without a working leader, ms: the median over the fault
    /// windows; none when the run had no fault window.
    pub fn leaderless_per_window(&self) -> Option<f64> {
        crate::stats::median(self.faults.iter().map(|f| f.leaderless_ms))
    }

    /// Time without a working leader in words, each figure saying what it
    /// is: `412 ms in all, median 70 ms per fault window (6 windows)`.
    pub fn leaderless_words(&self) -> String {
        let total = format!("{:.0} ms in all", self.elections.leaderless_ms);
        match self.leaderless_per_window() {
            Some(m) => format!(
                "{total}, median {m:.0} ms per fault window ({} windows)",
                self.faults.len()
            ),
            None => total,
        }
    }
}
