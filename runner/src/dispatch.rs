//! Runs of a campaign at once: a queue of runs and a set of slots (local
//! child processes, or worker hosts), one run per slot at a time. A run a
//! worker failed goes back into the queue; a lost worker takes no more.

use std::path::Path;

use faultline_nemesis::process::NodeCommand;
use faultline_results::RunResults;
use faultline_rundir::placement::{write_whole, Attempt, CampaignPlacement, Requeue, RunPlacement};
use faultline_rundir::records::read_record;

use crate::campaign::PlannedRun;
use crate::run::Progress;
use crate::tally::{Tally, MAX_ATTEMPTS};

/// What every run of a parallel campaign shares.
pub(crate) struct Shared<'a> {
    pub(crate) exe: &'a Path,
    pub(crate) node_bin: &'a NodeCommand,
    pub(crate) dir: &'a Path,
    pub(crate) shared_cores: bool,
    pub(crate) own_loopback: bool,
}

/// Where one run at a time goes: a local child process (on its CPU set,
/// if pinned) or a worker.
pub(crate) enum Slot<'a> {
    Local { cpus: Option<Vec<usize>> },
    Remote(&'a crate::workers::Worker),
}

impl Slot<'_> {
    fn name(&self) -> &str {
        match self {
            Slot::Local { .. } => "here",
            Slot::Remote(w) => &w.name,
        }
    }
}

/// A run waiting for a slot, with its failed attempts.
struct Task {
    i: usize,
    attempts: Vec<Attempt>,
}

/// How a run in a slot ended.
enum End {
    Verdict(Box<RunResults>),
    /// Failed for a reason of its own; the slot may take the next run.
    Failed(String),
    /// The slot is gone (its worker stopped answering).
    Lost(String),
}

async fn execute(
    ctx: &Shared<'_>,
    slot: &Slot<'_>,
    run: &PlannedRun,
    task: &Task,
    ticks: Option<Progress>,
) -> End {
    match slot {
        Slot::Local { cpus } => {
            let placement = RunPlacement {
                ran_on: "here".into(),
                host: None,
                cpus: cpus.clone(),
                shared_cores: ctx.shared_cores,
                attempts: task.attempts.clone(),
            };
            let dir = ctx.dir.join(&run.dir);
            let ended = crate::child::run_local(
                ctx.exe,
                &crate::child::Job {
                    plan: run.plan.clone(),
                    placement: Some(placement),
                },
                &dir,
                ctx.node_bin,
                cpus.as_deref(),
                ctx.own_loopback,
                ticks.as_ref(),
            )
            .await;
            match ended {
                Ok(end) if crate::child::is_verdict(end.code) => {
                    match read_record::<RunResults>(&faultline_rundir::RunDir::new(&dir).results())
                    {
                        Ok(Some(r)) => End::Verdict(Box::new(r)),
                        Ok(None) => End::Failed("the run ended without results.json".into()),
                        Err(e) => End::Failed(e),
                    }
                }
                Ok(end) => End::Failed(match end.code {
                    Some(c) => format!("exit {c}: {}", end.last_error),
                    None => format!("killed by a signal: {}", end.last_error),
                }),
                Err(e) => End::Failed(format!("{e:#}")),
            }
        }
        Slot::Remote(w) => match w.run(ctx.dir, run, &task.attempts, ticks.as_ref()).await {
            crate::workers::WorkerEnd::Verdict(r) => End::Verdict(r),
            crate::workers::WorkerEnd::Failed(e) => End::Failed(e),
            crate::workers::WorkerEnd::Lost(e) => End::Lost(e),
        },
    }
}

/// Run `todo` over `slots`, one run per slot at a time. A run a worker
/// failed (not a verdict) goes back into the queue, preferably for another
/// worker, at most [`MAX_ATTEMPTS`] tries in all; a lost worker takes no
/// more runs. A local run that fails ends the campaign, as it does here.
pub(crate) async fn dispatch(
    ctx: &Shared<'_>,
    slots: Vec<Slot<'_>>,
    runs: &[PlannedRun],
    todo: &[usize],
    tally: &mut Tally<'_>,
    record: &mut CampaignPlacement,
) -> anyhow::Result<()> {
    use futures::stream::{FuturesUnordered, StreamExt};
    let campaign = faultline_rundir::CampaignDir::new(ctx.dir);
    let mut queue: std::collections::VecDeque<Task> = todo
        .iter()
        .map(|&i| Task {
            i,
            attempts: Vec::new(),
        })
        .collect();
    let mut idle: Vec<usize> = (0..slots.len()).rev().collect();
    let mut live = slots.len();
    let mut inflight = FuturesUnordered::new();
    loop {
        // Hand out runs: a slot takes the first run it has not failed yet;
        // when nothing else runs, any run (it has nowhere else to go).
        let mut k = 0;
        while k < idle.len() && !queue.is_empty() {
            let s = idle[k];
            let name = slots[s].name();
            let pick = queue
                .iter()
                .position(|t| !t.attempts.iter().any(|a| a.on == name))
                .or((inflight.is_empty() && live == idle.len()).then_some(0));
            match pick {
                Some(p) => {
                    let task = queue.remove(p).expect("a queued run");
                    idle.swap_remove(k);
                    let run = &runs[task.i];
                    let ticks = tally.watch.run_started(task.i, run);
                    let slot = &slots[s];
                    inflight.push(async move {
                        let end = execute(ctx, slot, run, &task, ticks).await;
                        (s, task, end)
                    });
                }
                None => k += 1,
            }
        }
        let Some((s, mut task, end)) = inflight.next().await else {
            break;
        };
        let run = &runs[task.i];
        let on = slots[s].name().to_string();
        let failure = match end {
            End::Verdict(r) => {
                tally.finished(task.i, run, &r);
                idle.push(s);
                continue;
            }
            End::Failed(e) => {
                if let Slot::Local { .. } = slots[s] {
                    anyhow::bail!("run {}: {e}", run.dir);
                }
                idle.push(s);
                e
            }
            End::Lost(e) => {
                live -= 1;
                tally
                    .watch
                    .note(&format!("worker {on} lost: {e}; it takes no more runs"));
                record.lost.push(Attempt {
                    on: on.clone(),
                    error: e.clone(),
                });
                e
            }
        };
        task.attempts.push(Attempt {
            on: on.clone(),
            error: failure.clone(),
        });
        let entry = Requeue {
            run: run.dir.clone(),
            attempt: task.attempts.len(),
            failure: Attempt { on, error: failure },
        };
        if task.attempts.len() < MAX_ATTEMPTS && live > 0 {
            tally.watch.note(&format!(
                "run {} failed on {} (attempt {}): {}; re-queued",
                run.dir, entry.failure.on, entry.attempt, entry.failure.error
            ));
            record.requeued.push(entry);
            queue.push_back(task);
        } else {
            tally.watch.note(&format!(
                "run {} failed on {} (attempt {}): {}; given up",
                run.dir, entry.failure.on, entry.attempt, entry.failure.error
            ));
            record.failed.push(entry);
        }
        let _ = write_whole(&campaign.placement(), record);
        if live == 0 {
            break;
        }
    }
    let _ = write_whole(&campaign.placement(), record);
    let left: Vec<&str> = queue.iter().map(|t| runs[t.i].dir.as_str()).collect();
    anyhow::ensure!(
        left.is_empty() && record.failed.is_empty(),
        "{} runs have no result ({}{}): {}; the campaign page lists the others, and the same campaign with --resume {} runs the rest",
        left.len() + record.failed.len(),
        record
            .failed
            .iter()
            .map(|f| f.run.as_str())
            .chain(left.iter().copied())
            .take(3)
            .collect::<Vec<_>>()
            .join(", "),
        if left.len() + record.failed.len() > 3 { ", …" } else { "" },
        if live == 0 {
            "every worker was lost".to_string()
        } else {
            record.failed.first().map_or(String::new(), |f| f.failure.error.clone())
        },
        ctx.dir.display()
    );
    Ok(())
}
