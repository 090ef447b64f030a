//! Fault schedules: the plan (quiet, fault, quiet, fault, ... from a seed)
//! and running it against a [`Testbed`], with combined faults staggered or
//! started together and crash loops restarting their nodes on time.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fault::{Class, Fault};
use crate::testbed::{Applied, Testbed};
use faultline_rundir::records::NemesisRecord;

/// How faults are scheduled.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// The kinds to choose from.
    pub faults: Vec<Fault>,
    /// How long each fault lasts, seconds.
    pub fault_secs: f64,
    /// How long each quiet period lasts, seconds.
    pub quiet_secs: f64,
    /// Random durations (0.5x..1.5x) and a random kind each time, instead of
    /// fixed durations and the kinds in turn.
    pub random: bool,
    /// Seed of the plan.
    pub seed: u64,
}

/// One fault of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// Start, ms after the run's start.
    pub start_ms: u64,
    /// Heal, ms after the run's start.
    pub end_ms: u64,
    /// What.
    pub fault: Fault,
}

/// The plan for a run of `time_limit`: quiet, fault, quiet, fault, ...; every
/// fault heals before the time limit. Same config and seed, same plan.
pub fn plan(cfg: &ScheduleConfig, time_limit: Duration) -> Vec<PlannedFault> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5C4E_D01E);
    let limit = time_limit.as_millis() as u64;
    let mut out = Vec::new();
    if cfg.faults.is_empty() {
        return out;
    }
    let mut t = 0u64;
    let mut turn = 0usize;
    let scale = |rng: &mut ChaCha8Rng, secs: f64| -> u64 {
        let f = if cfg.random {
            rng.gen_range(0.5..1.5)
        } else {
            1.0
        };
        (secs * f * 1000.0).max(1.0) as u64
    };
    loop {
        t += scale(&mut rng, cfg.quiet_secs);
        let d = scale(&mut rng, cfg.fault_secs);
        if t + d > limit {
            break;
        }
        let fault = if cfg.random {
            cfg.faults[rng.gen_range(0..cfg.faults.len())].clone()
        } else {
            cfg.faults[turn % cfg.faults.len()].clone()
        };
        turn += 1;
        out.push(PlannedFault {
            start_ms: t,
            end_ms: t + d,
            fault,
        });
        t += d;
    }
    out
}

/// A fault as it ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecutedFault {
    /// Its name.
    pub name: String,
    /// Its family (`partition`, `loss`, `pause`, ...).
    pub family: String,
    /// When it started, ms after the run's start.
    pub start_ms: u64,
    /// When it healed.
    pub end_ms: u64,
    /// The nodes it hit.
    pub nodes: Vec<String>,
    /// The recorded value.
    pub value: Value,
    /// Set when applying or healing failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where nemesis events go: `(f, value)`; the workload's recorder stamps them.
pub type EventSink<'a> = &'a (dyn Fn(&str, Value) + Sync);

/// Run `plan` against the testbed, timed from `start`. Returns what ran.
pub async fn run_schedule(
    tb: &mut Testbed,
    plan: &[PlannedFault],
    start: Instant,
    sink: EventSink<'_>,
) -> Vec<ExecutedFault> {
    let mut ran = Vec::new();
    let at = |ms: u64| tokio::time::Instant::from_std(start + Duration::from_millis(ms));
    for p in plan {
        // A combined fault starts its parts one slice apart (or all at once) and heals them
        // together at the end, the last first.
        let (parts, together): (Vec<Fault>, bool) = match p.fault.class() {
            Class::Combined { parts, together } => (parts.to_vec(), together),
            Class::Partition(_)
            | Class::Figure8
            | Class::Message(..)
            | Class::Process(_)
            | Class::Disk(..)
            | Class::Membership { .. } => (vec![p.fault.clone()], false),
        };
        let slice = if together {
            0
        } else {
            (p.end_ms - p.start_ms) / parts.len() as u64
        };
        let mut active: Vec<(Applied, u64)> = Vec::new();
        // Crash loops among the active parts: (index in `active`, period, next kill).
        let mut loops: Vec<(usize, u64, u64)> = Vec::new();
        for (k, part) in parts.iter().enumerate() {
            let part_at = p.start_ms + k as u64 * slice;
            crash_loops(tb, &active, &mut loops, part_at, start, sink).await;
            tokio::time::sleep_until(at(part_at)).await;
            let started = start.elapsed().as_millis() as u64;
            match tb.apply(part).await {
                Ok(applied) => {
                    let (start_f, _) = applied.event_names();
                    sink(
                        &start_f,
                        record(NemesisRecord {
                            fault: applied.name.clone(),
                            nodes: applied.nodes.clone(),
                            detail: Some(applied.value.clone()),
                            error: None,
                        }),
                    );
                    if let Fault::Restart { every_ms, .. } = applied.fault {
                        loops.push((active.len(), every_ms, started + every_ms));
                    }
                    active.push((applied, started));
                }
                Err(e) => ran.push(ExecutedFault {
                    name: part.to_string(),
                    family: part.family().name().into(),
                    start_ms: started,
                    end_ms: started,
                    nodes: vec![],
                    value: Value::Null,
                    error: Some(format!("{e:#}")),
                }),
            }
        }
        crash_loops(tb, &active, &mut loops, p.end_ms, start, sink).await;
        tokio::time::sleep_until(at(p.end_ms)).await;
        let mut healed = Vec::new();
        for (applied, started) in active.into_iter().rev() {
            let (_, stop_f) = applied.event_names();
            let (detail, error) = match tb.heal(&applied).await {
                Ok(v) => (v, None),
                Err(e) => (Value::Null, Some(format!("{e:#}"))),
            };
            sink(
                &stop_f,
                record(NemesisRecord {
                    fault: applied.name.clone(),
                    nodes: applied.nodes.clone(),
                    detail: (!detail.is_null()).then_some(detail),
                    error: error.clone(),
                }),
            );
            healed.push(ExecutedFault {
                name: applied.name.clone(),
                family: applied.fault.family().name().into(),
                start_ms: started,
                end_ms: start.elapsed().as_millis() as u64,
                nodes: applied.nodes,
                value: applied.value,
                error,
            });
        }
        healed.reverse();
        ran.extend(healed);
    }
    ran
}

/// Run the crash loops among `active` until `until_ms` (after `start`):
/// each kills and restarts its nodes whenever its period is up. A restart
/// that fails is recorded in the history and ends that loop.
async fn crash_loops(
    tb: &mut Testbed,
    active: &[(Applied, u64)],
    loops: &mut Vec<(usize, u64, u64)>,
    until_ms: u64,
    start: Instant,
    sink: EventSink<'_>,
) {
    let at = |ms: u64| tokio::time::Instant::from_std(start + Duration::from_millis(ms));
    // Bounded: every round moves one loop's next kill forward by its period
    // (at least 50 ms), so there are at most (until - now) / 50 rounds per loop.
    while let Some(k) = (0..loops.len())
        .filter(|&k| loops[k].2 < until_ms)
        .min_by_key(|&k| loops[k].2)
    {
        let (i, every, due) = loops[k];
        tokio::time::sleep_until(at(due)).await;
        let applied = &active[i].0;
        match tb.restart_again(applied).await {
            Ok(()) => {
                // A slow start-up pushes the next kill back, not forward.
                let now = start.elapsed().as_millis() as u64;
                loops[k].2 = (due + every).max(now + every / 2);
            }
            Err(e) => {
                sink(
                    "restart",
                    record(NemesisRecord {
                        fault: applied.name.clone(),
                        nodes: applied.nodes.clone(),
                        detail: None,
                        error: Some(format!("{e:#}")),
                    }),
                );
                loops.remove(k);
            }
        }
    }
}

/// A nemesis event's value, as the history records it.
fn record(r: NemesisRecord) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Target;

    #[test]
    fn plans_repeat_from_their_seed_and_end_before_the_limit() {
        let cfg = ScheduleConfig {
            faults: vec![
                Fault::PartitionLeader,
                Fault::Pause {
                    target: Target::Leader,
                },
            ],
            fault_secs: 5.0,
            quiet_secs: 5.0,
            random: true,
            seed: 42,
        };
        let a = plan(&cfg, Duration::from_secs(60));
        assert_eq!(a, plan(&cfg, Duration::from_secs(60)));
        assert!(!a.is_empty());
        assert!(a
            .iter()
            .all(|p| p.end_ms <= 60_000 && p.start_ms < p.end_ms));
        assert!(a.windows(2).all(|w| w[0].end_ms < w[1].start_ms));
        let other = plan(
            &ScheduleConfig {
                seed: 43,
                ..cfg.clone()
            },
            Duration::from_secs(60),
        );
        assert_ne!(a, other);
        let fixed = plan(
            &ScheduleConfig {
                random: false,
                ..cfg
            },
            Duration::from_secs(30),
        );
        assert_eq!(
            fixed
                .iter()
                .map(|p| (p.start_ms, p.end_ms))
                .collect::<Vec<_>>(),
            vec![(5000, 10000), (15000, 20000), (25000, 30000)]
        );
        assert_eq!(
            fixed[1].fault,
            Fault::Pause {
                target: Target::Leader
            }
        );
    }
}
