//! What a run is expected to show, and whether it did: a campaign's
//! positive controls (a known-bug variant, etcd's serializable reads) are
//! expected to be caught, and pass when they are, the way a test framework's
//! expected failures do (pytest's strict `xfail`); an unexpected pass of a
//! control fails the campaign just as an unexpected violation does.

use faultline_checker::Verdict;
use serde::{Deserialize, Serialize};

/// A run's expectation (`expect = "…"` in a campaign file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// Every history linearizable and no safety violation in the logs.
    #[default]
    Linearizable,
    /// Caught: a history that is not linearizable, or a safety violation
    /// in the nodes' logs.
    NotLinearizable,
    /// Caught by the log audit: a safety violation in the nodes' logs.
    Unsafe,
}

impl Expect {
    /// Its name, as in a campaign file.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Linearizable => "linearizable",
            Expect::NotLinearizable => "not-linearizable",
            Expect::Unsafe => "unsafe",
        }
    }

    /// Whether this expects the run to be caught (a positive control).
    pub fn is_control(self) -> bool {
        match self {
            Expect::Linearizable => false,
            Expect::NotLinearizable | Expect::Unsafe => true,
        }
    }

    /// How a run with this expectation ended: its verdict (the checker's
    /// and the log audit's together) and whether the log audit found a
    /// safety violation.
    pub fn judge(self, valid: Verdict, unsafe_in_logs: bool) -> Judgement {
        match (self, valid) {
            (Expect::Linearizable, Verdict::Linearizable) => Judgement::AsExpected,
            (Expect::Linearizable, Verdict::NotLinearizable) => Judgement::Unexpected,
            (Expect::NotLinearizable, Verdict::NotLinearizable) => Judgement::AsExpected,
            (Expect::NotLinearizable, Verdict::Linearizable) => Judgement::Unexpected,
            (Expect::Unsafe, _) if unsafe_in_logs => Judgement::AsExpected,
            (Expect::Unsafe, Verdict::Linearizable | Verdict::NotLinearizable) => {
                Judgement::Unexpected
            }
            (_, Verdict::Unknown) => Judgement::Undecided,
        }
    }

    /// What an unexpected outcome of this expectation is, in words.
    pub fn miss(self) -> &'static str {
        match self {
            Expect::Linearizable => "a violation where none was expected",
            Expect::NotLinearizable => "positive control not caught",
            Expect::Unsafe => "positive control not caught: no safety violation in the logs",
        }
    }

    /// The expectation in words, for a page.
    pub fn words(self) -> &'static str {
        match self {
            Expect::Linearizable => "linearizable",
            Expect::NotLinearizable => "caught (not linearizable)",
            Expect::Unsafe => "caught (unsafe in the logs)",
        }
    }
}

impl std::str::FromStr for Expect {
    type Err = String;
    fn from_str(s: &str) -> Result<Expect, String> {
        [
            Expect::Linearizable,
            Expect::NotLinearizable,
            Expect::Unsafe,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
        .ok_or_else(|| {
            format!(
                "{} is not linearizable, not-linearizable or unsafe",
                faultline_rundir::quote::quoted(s)
            )
        })
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run against its expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Judgement {
    /// It showed what was expected.
    AsExpected,
    /// It did not: a violation of a correct setting, or a control not caught.
    Unexpected,
    /// Its verdict is unknown (the checker's budget, or a run cut short).
    Undecided,
}

impl Judgement {
    /// The exit status of a run (or campaign) judged so: 0 as expected,
    /// 1 not, 3 undecided (the one place this is decided).
    pub fn exit_code(self) -> u8 {
        match self {
            Judgement::AsExpected => 0,
            Judgement::Unexpected => 1,
            Judgement::Undecided => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_expectation_against_every_verdict() {
        use Judgement::*;
        use Verdict::*;
        let l = Expect::Linearizable;
        let n = Expect::NotLinearizable;
        let u = Expect::Unsafe;
        assert_eq!(l.judge(Linearizable, false), AsExpected);
        assert_eq!(l.judge(NotLinearizable, false), Unexpected);
        assert_eq!(l.judge(NotLinearizable, true), Unexpected);
        assert_eq!(l.judge(Unknown, false), Undecided);
        assert_eq!(n.judge(NotLinearizable, false), AsExpected);
        assert_eq!(n.judge(NotLinearizable, true), AsExpected);
        assert_eq!(n.judge(Linearizable, false), Unexpected);
        assert_eq!(n.judge(Unknown, false), Undecided);
        assert_eq!(u.judge(NotLinearizable, true), AsExpected);
        assert_eq!(u.judge(NotLinearizable, false), Unexpected);
        assert_eq!(u.judge(Linearizable, false), Unexpected);
        assert_eq!(u.judge(Unknown, true), AsExpected);
        assert_eq!(u.judge(Unknown, false), Undecided);
        let parsed: Expect = serde_json::from_str("\"not-linearizable\"").unwrap();
        assert_eq!(parsed, n);
    }
}
