//! What a run is expected to show, and whether it did: a campaign's
//! positive controls (a known-bug variant, etcd's serializable reads) are
//! expected to be caught, and pass when they are, the way a test framework's
//! expected failures do (pytest's strict `xfail`); an unexpected pass of a
//! control fails the campaign just as an unexpected violation does.

use faultline_checker::Verdict;
use serde::{Deserialize, Serialize};

pub use faultline_rundir::spec::Expect;

/// How a run expected to show `expect` ended: its verdict (the checker's
/// and the log audit's together) and whether the log audit found a safety
/// violation (the one place this is decided).
pub fn judge(expect: Expect, valid: Verdict, unsafe_in_logs: bool) -> Judgement {
    match (expect, valid) {
        (Expect::Linearizable, Verdict::Linearizable) => Judgement::AsExpected,
        (Expect::Linearizable, Verdict::NotLinearizable) => Judgement::Unexpected,
        (Expect::NotLinearizable, Verdict::NotLinearizable) => Judgement::AsExpected,
        (Expect::NotLinearizable, Verdict::Linearizable) => Judgement::Unexpected,
        (Expect::Either, Verdict::Linearizable | Verdict::NotLinearizable) => Judgement::AsExpected,
        (Expect::Unsafe, _) if unsafe_in_logs => Judgement::AsExpected,
        (Expect::Unsafe, Verdict::Linearizable | Verdict::NotLinearizable) => Judgement::Unexpected,
        (_, Verdict::Unknown) => Judgement::Undecided,
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
        assert_eq!(judge(l, Linearizable, false), AsExpected);
        assert_eq!(judge(l, NotLinearizable, false), Unexpected);
        assert_eq!(judge(l, NotLinearizable, true), Unexpected);
        assert_eq!(judge(l, Unknown, false), Undecided);
        assert_eq!(judge(n, NotLinearizable, false), AsExpected);
        assert_eq!(judge(n, NotLinearizable, true), AsExpected);
        assert_eq!(judge(n, Linearizable, false), Unexpected);
        assert_eq!(judge(n, Unknown, false), Undecided);
        assert_eq!(judge(u, NotLinearizable, true), AsExpected);
        assert_eq!(judge(u, NotLinearizable, false), Unexpected);
        assert_eq!(judge(u, Linearizable, false), Unexpected);
        assert_eq!(judge(u, Unknown, true), AsExpected);
        assert_eq!(judge(u, Unknown, false), Undecided);
    }
}
