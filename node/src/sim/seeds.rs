//! Seeds for the randomized simulation tests: `FAULTLINE_SEED=N` replays
//! one seed, `FAULTLINE_SIM_SEEDS=K` runs seeds `0..K` instead of a test's
//! default count, and a failing seed is reported with the command that
//! replays it.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Which seeds a randomized test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeds {
    /// One seed, from `FAULTLINE_SEED`.
    Replay(u64),
    /// Seeds `0..n`: `FAULTLINE_SIM_SEEDS`, or the test's default.
    Range(u64),
}

/// The seeds asked for by the environment, or `0..default`. Panics on a
/// `FAULTLINE_SEED` that is not a number (a test's input, not a user's).
pub fn seeds(default: u64) -> Seeds {
    if let Ok(s) = std::env::var("FAULTLINE_SEED") {
        return Seeds::Replay(s.parse().expect("FAULTLINE_SEED is a number"));
    }
    Seeds::Range(
        std::env::var("FAULTLINE_SIM_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

/// Run `run` on seeds `0..n` and return each result. The first seed that
/// panics ends the test with its message and the command that replays it:
/// `cargo test -p faultline-node ARGS` with `FAULTLINE_SEED` set.
pub fn run_seeds<T>(n: u64, args: &str, run: impl Fn(u64) -> T) -> Vec<T> {
    (0..n)
        .map(|seed| match catch_unwind(AssertUnwindSafe(|| run(seed))) {
            Ok(r) => r,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                match msg {
                    Some(m) => panic!(
                        "seed {seed} failed: {m}\nreplay: FAULTLINE_SEED={seed} cargo test -p faultline-node {args}"
                    ),
                    None => resume_unwind(e),
                }
            }
        })
        .collect()
}
