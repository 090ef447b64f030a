//! Synthetic register histories, for tests and benchmarks: concurrent
//! processes on an atomic register whose operations take effect at a random
//! instant inside their intervals, with `info` and `fail` outcomes, every
//! written value unique per key — or, with [`GenConfig::values`], drawn from
//! a handful (Jepsen's register workload: 1..=V). Optionally one anomaly is
//! planted, which makes the history certainly not linearizable: with unique
//! values a stale read; with few values a read of V+1, a value whose only
//! write is invoked long after that read returned.

use std::io::Write;

use serde_json::json;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Operations to invoke.
    pub ops: usize,
    /// Keys.
    pub keys: usize,
    /// Concurrent processes.
    pub processes: usize,
    /// Share of operations that end `info`.
    pub info_rate: f64,
    /// Shares of read, write and cas (normalized).
    pub mix: (f64, f64, f64),
    /// Plant one anomaly (the history is then not linearizable).
    pub stale_read: bool,
    /// Written values drawn from `1..=V` (and cas arguments too) instead of
    /// unique ones.
    pub values: Option<i64>,
    /// Seed.
    pub seed: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            ops: 1000,
            keys: 1,
            processes: 5,
            info_rate: 0.01,
            mix: (0.5, 0.3, 0.2),
            stale_read: false,
            values: None,
            seed: 1,
        }
    }
}

/// A tiny seeded RNG (splitmix64), so the checker needs no RNG crate.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0xA076_1D64_78BD_642F)
    }
    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Invoked,
    Applied,
}

struct Proc {
    id: u64,
    phase: Phase,
    key: usize,
    f: &'static str,
    value: serde_json::Value,
    result: serde_json::Value,
    ok: bool,
    call_pos: u64,
    /// For a planted stale read: the value to report.
    planted: Option<i64>,
}

/// Write a history as JSON Lines to `out`; returns the number of events.
pub fn generate(cfg: &GenConfig, mut out: impl Write) -> std::io::Result<u64> {
    let mut rng = Rng::new(cfg.seed);
    let mut state: Vec<Option<i64>> = vec![None; cfg.keys.max(1)];
    let mut next_value: Vec<i64> = vec![0; cfg.keys.max(1)];
    // Per key: completed ok writes (value, call position, return position).
    let mut done_writes: Vec<Vec<(i64, u64, u64)>> = vec![Vec::new(); cfg.keys.max(1)];
    let mut next_proc = cfg.processes as u64;
    let mut procs: Vec<Proc> = (0..cfg.processes.max(1))
        .map(|i| Proc {
            id: i as u64,
            phase: Phase::Idle,
            key: 0,
            f: "read",
            value: json!(null),
            result: json!(null),
            ok: true,
            call_pos: 0,
            planted: None,
        })
        .collect();
    let (r, w, _) = cfg.mix;
    let total = cfg.mix.0 + cfg.mix.1 + cfg.mix.2;
    let mut invoked = 0usize;
    let mut pos: u64 = 0;
    let mut planted = !cfg.stale_read;
    // Few values: the impossible read's value, and whether its one write
    // (invoked after nine tenths of the operations) is still to come.
    let beyond = cfg.values.map(|v| v.max(1) + 1);
    let mut late_write = cfg.stale_read && beyond.is_some();
    let line = |out: &mut dyn Write, pos: &mut u64, v: serde_json::Value| -> std::io::Result<()> {
        *pos += 1;
        writeln!(out, "{v}")
    };
    loop {
        let busy = procs.iter().any(|p| p.phase != Phase::Idle);
        if invoked >= cfg.ops && !busy {
            break;
        }
        let i = rng.below(procs.len());
        let p = &mut procs[i];
        let time = pos * 1000;
        match p.phase {
            Phase::Idle => {
                if invoked >= cfg.ops {
                    continue;
                }
                invoked += 1;
                p.key = rng.below(state.len());
                let x = rng.unit() * total;
                let k = p.key;
                let few = cfg.values.map(|v| v.max(1) as usize);
                let (f, value) = if late_write && invoked * 10 >= cfg.ops * 9 {
                    late_write = false;
                    ("write", json!(beyond))
                } else if let Some(v) = few {
                    let mut pick = || 1 + rng.below(v) as i64;
                    if x < r {
                        ("read", json!(null))
                    } else if x < r + w {
                        ("write", json!(pick()))
                    } else {
                        let (e, n) = (pick(), pick());
                        ("cas", json!([e, n]))
                    }
                } else if x < r {
                    ("read", json!(null))
                } else if x < r + w {
                    next_value[k] += 1;
                    ("write", json!(next_value[k]))
                } else {
                    next_value[k] += 1;
                    // Expect the current value most of the time, so some cas succeed.
                    let expect = if rng.unit() < 0.7 {
                        state[k].unwrap_or(0)
                    } else {
                        next_value[k] + 1_000_000
                    };
                    ("cas", json!([expect, next_value[k]]))
                };
                p.f = f;
                p.value = value.clone();
                p.phase = Phase::Invoked;
                p.call_pos = pos + 1;
                p.planted = None;
                line(
                    &mut out,
                    &mut pos,
                    json!({"time": time, "process": p.id, "type": "invoke", "f": f, "key": format!("k{k}"), "value": value}),
                )?;
            }
            Phase::Invoked => {
                let k = p.key;
                if rng.unit() < cfg.info_rate / 2.0 {
                    // Never takes effect: the client gives up (info).
                    line(
                        &mut out,
                        &mut pos,
                        json!({"time": time, "process": p.id, "type": "info", "f": p.f, "key": format!("k{k}"), "value": p.value.clone()}),
                    )?;
                    p.phase = Phase::Idle;
                    p.id = next_proc;
                    next_proc += 1;
                    continue;
                }
                // Take effect now, atomically.
                match p.f {
                    "read" => {
                        p.result = json!(state[k]);
                        p.ok = true;
                        if !planted && beyond.is_some() {
                            if invoked * 3 >= cfg.ops {
                                p.planted = beyond;
                                planted = true;
                            }
                        } else if !planted {
                            // A stale read: a value whose write completed before a
                            // later write that completed before this read began.
                            let ws = &done_writes[k];
                            if let Some(j) = (1..ws.len()).rev().find(|&j| {
                                ws[j].2 < p.call_pos && ws.iter().take(j).any(|w0| w0.2 < ws[j].1)
                            }) {
                                if let Some(w0) = ws.iter().take(j).rfind(|w0| w0.2 < ws[j].1) {
                                    if Some(w0.0) != state[k] {
                                        p.planted = Some(w0.0);
                                        planted = true;
                                    }
                                }
                            }
                        }
                    }
                    "write" => {
                        state[k] = p.value.as_i64();
                        p.ok = true;
                    }
                    _ => {
                        let e = p.value[0].as_i64();
                        p.ok = state[k] == e;
                        if p.ok {
                            state[k] = p.value[1].as_i64();
                        }
                    }
                }
                p.phase = Phase::Applied;
            }
            Phase::Applied => {
                let k = p.key;
                // A planted read must be seen.
                let info = p.planted.is_none() && rng.unit() < cfg.info_rate;
                let (ty, value) = if info {
                    ("info", p.value.clone())
                } else if !p.ok {
                    ("fail", p.value.clone())
                } else if p.f == "read" {
                    ("ok", p.planted.map_or(p.result.clone(), |v| json!(v)))
                } else {
                    ("ok", p.value.clone())
                };
                if ty == "ok" && p.f == "write" {
                    done_writes[k].push((p.value.as_i64().unwrap_or(0), p.call_pos, pos + 1));
                }
                line(
                    &mut out,
                    &mut pos,
                    json!({"time": time, "process": p.id, "type": ty, "f": p.f, "key": format!("k{k}"), "value": value}),
                )?;
                p.phase = Phase::Idle;
                if info {
                    p.id = next_proc;
                    next_proc += 1;
                }
            }
        }
    }
    Ok(pos)
}
