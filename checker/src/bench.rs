//! `faultline bench check`: the checker on generated register histories
//! (read/write/cas, unique values), checked from a file. Each case runs in a
//! process of its own (the command line spawns one per case) so that its
//! peak memory is its own.

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use crate::gen::{generate, GenConfig};
use crate::{check_history, Options, Verdict};

/// One generated history to check.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Operations.
    pub ops: usize,
    /// Keys.
    pub keys: usize,
    /// Concurrent processes.
    pub processes: usize,
    /// Share of operations that end `info`.
    pub info: f64,
    /// With one injected anomaly (not linearizable).
    pub stale: bool,
    /// Values drawn from `1..=V` instead of unique ones (the hard class).
    pub values: Option<i64>,
}

/// The bench's cases: ops × keys × processes at 1 % info, then the hard
/// single-key cases with both verdicts. `quick` leaves out the 1 M rows.
pub fn cases(quick: bool) -> Vec<Case> {
    let mut cases = Vec::new();
    let sizes: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    let case = |ops, keys, processes, info, stale| Case {
        ops,
        keys,
        processes,
        info,
        stale,
        values: None,
    };
    for &ops in sizes {
        for keys in [1, 100, 1000] {
            for procs in [5, 20, 50] {
                cases.push(case(ops, keys, procs, 0.01, false));
            }
        }
    }
    for ops in [1_200, 5_000, 20_000] {
        for stale in [false, true] {
            cases.push(case(ops, 1, 10, 0.03, stale));
        }
    }
    cases.push(case(100_000, 1, 10, 0.01, false));
    cases.push(case(100_000, 1, 10, 0.01, true));
    cases.extend(hard_cases(quick));
    cases
}

/// The hard class: one key, values 1–5, read 40 % / write 40 % / cas 20 %,
/// 10 / 30 / 50 processes, 0 or 5 % info, both verdicts; 1k, 10k and 100k
/// operations, and a soak's worth: 1M operations of 50 processes at 5 %
/// info (`quick`: no 100k and no 1M).
pub fn hard_cases(quick: bool) -> Vec<Case> {
    let sizes: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    let mut out = Vec::new();
    for &ops in sizes {
        for processes in [10, 30, 50] {
            for info in [0.0, 0.05] {
                for stale in [false, true] {
                    out.push(Case {
                        ops,
                        keys: 1,
                        processes,
                        info,
                        stale,
                        values: Some(5),
                    });
                }
            }
        }
    }
    if !quick {
        for stale in [false, true] {
            out.push(Case {
                ops: 1_000_000,
                keys: 1,
                processes: 50,
                info: 0.05,
                stale,
                values: Some(5),
            });
        }
    }
    out
}

/// The table's heading.
pub fn header() -> String {
    format!(
        "faultline bench check: generated register histories (read/write/cas; values unique, or 1-5 in the hard class), checked from a file\n{:>9} {:>5} {:>5} {:>5} {:>6} {:>6} {:>10} {:>12} {:>10} {:>9}",
        "ops", "keys", "procs", "info", "values", "stale", "verdict", "ops/s", "seconds", "peak MiB"
    )
}

/// Generate `case` into `dir/history.jsonl`, read it back and check it;
/// returns the table row (this process's peak memory included).
pub fn run_case(case: Case, dir: &Path) -> Result<String, Box<dyn Error>> {
    let path = faultline_rundir::RunDir::new(dir).history();
    {
        let f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let cfg = GenConfig {
            ops: case.ops,
            keys: case.keys,
            processes: case.processes,
            info_rate: if case.values.is_some() {
                case.info / 1.5
            } else {
                case.info
            },
            stale_read: case.stale,
            seed: 7,
            values: case.values,
            // The hard class's mix: read 40 %, write 40 %, cas 20 %; its info
            // share is the whole share (half never take effect).
            mix: if case.values.is_some() {
                (0.4, 0.4, 0.2)
            } else {
                GenConfig::default().mix
            },
        };
        generate(&cfg, f)?;
    }
    let start = Instant::now();
    let history = crate::read_jsonl(std::io::BufReader::new(std::fs::File::open(&path)?))?;
    let report = check_history(&history, &Options::default());
    let secs = start.elapsed().as_secs_f64();
    drop(history);
    let verdict = match report.valid {
        Verdict::Linearizable => "valid",
        Verdict::NotLinearizable => "INVALID",
        Verdict::Unknown => "unknown",
    };
    Ok(format!(
        "{:>9} {:>5} {:>5} {:>4.0}% {:>6} {:>6} {:>10} {:>12.0} {:>10.3} {:>9.0}",
        case.ops,
        case.keys,
        case.processes,
        case.info * 100.0,
        case.values
            .map_or("unique".to_string(), |v| format!("1-{v}")),
        case.stale,
        verdict,
        case.ops as f64 / secs,
        secs,
        peak_rss_mib()
    ))
}

/// This process's peak resident memory, MiB (0 where /proc is missing).
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
