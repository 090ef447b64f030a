//! Running a campaign into the store: every planned run in turn, the
//! campaign's index (`campaign.json`) first, its page kept current as runs
//! finish, and a summary at the end. What a person sees meanwhile (progress
//! bars, one line per run) is the caller's, through [`CampaignWatch`].

use std::path::{Path, PathBuf};

use anyhow::Context;
use faultline_nemesis::process::NodeCommand;
use faultline_results::{CampaignIndex, CampaignRun, CampaignSetting, CampaignSummary};
use faultline_rundir::placement::{write_whole, Attempt, CampaignPlacement, Mode, Resume};
use faultline_rundir::records::{read_record, unix_ms, CampaignState, ProgressRecord};

use crate::campaign::{CampaignConfig, PlannedRun};
use crate::dispatch::{dispatch, Shared, Slot};
use crate::run::run_one;
use crate::store::create_campaign_dir;
use crate::tally::Tally;

pub use crate::tally::{CampaignWatch, MAX_ATTEMPTS};

/// A campaign that ran to its end.
pub struct CampaignOutcome {
    /// Its directory in the store.
    pub dir: PathBuf,
    /// Its page.
    pub page: PathBuf,
    /// Its verdicts.
    pub summary: CampaignSummary,
}

/// Where a campaign's runs run.
pub enum Placement {
    /// One at a time, in this process (the default).
    Here,
    /// Up to `jobs` at once, each in a child process `exe run-spec`.
    Jobs {
        /// Runs at once.
        jobs: usize,
        /// This program (`faultline`).
        exe: PathBuf,
    },
    /// One at a time on each worker host, over SSH.
    Workers {
        /// The inventory's hosts.
        hosts: Vec<faultline_hosts::inventory::Host>,
        /// This program (`faultline`), copied to each worker.
        exe: PathBuf,
    },
}

/// The campaign under way in this process, for [`after_interrupt`].
static ACTIVE: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// After a Ctrl-C or SIGTERM stopped a campaign: stop the runs under way
/// in child processes, then rewrite its page from the runs that finished,
/// the interrupted ones marked as such (best effort: the process is about
/// to exit).
pub fn after_interrupt() {
    crate::child::stop_children(std::time::Duration::from_secs(20));
    let dir = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(dir) = dir {
        let campaign = faultline_rundir::CampaignDir::new(&dir);
        if let Ok(Some(mut p)) = ProgressRecord::read(&campaign) {
            p.state = CampaignState::Interrupted;
            p.updated_unix_ms = unix_ms();
            let _ = p.write(&campaign);
        }
        if let Err(e) = faultline_results::write_campaign_report(&dir) {
            eprintln!("faultline: warning: rewriting the campaign page: {e:#}");
        } else {
            eprintln!(
                "faultline: the campaign's page lists the finished runs: {}",
                dir.join("index.html").display()
            );
        }
    }
}

/// Seconds a run takes beyond its time limit (start-up, heal, final reads).
const RUN_OVERHEAD_S: f64 = 4.0;

/// Run a campaign named `name` into a new directory of `store` (or, with
/// `resume`, the runs left in that campaign directory), placed as
/// `placement` says.
pub async fn run_campaign(
    config: &CampaignConfig,
    name: &str,
    store: &Path,
    node_bin: &NodeCommand,
    watch: &dyn CampaignWatch,
    placement: &Placement,
    resume: Option<&Path>,
) -> anyhow::Result<CampaignOutcome> {
    let runs = config.runs()?;
    // What this machine cannot run is said before anything starts; on
    // workers, each worker's run says it.
    if !matches!(placement, Placement::Workers { .. }) {
        check_here(&runs, node_bin)?;
    }
    let (dir, todo, set_aside) = match resume {
        Some(dir) => {
            let left = crate::resume::leftover(dir, &runs)?;
            (dir.to_path_buf(), left.todo, Some(left.set_aside))
        }
        None => {
            let dir = create_campaign_dir(store, name)?;
            std::fs::write(
                faultline_rundir::CampaignDir::new(&dir).campaign(),
                serde_json::to_vec_pretty(&index(config, name, &runs))?,
            )?;
            (dir, (0..runs.len()).collect(), None)
        }
    };
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.clone());
    let campaign_dir = faultline_rundir::CampaignDir::new(&dir);
    let mut record = placement_record(placement, &campaign_dir, set_aside, todo.len());
    write_whole(&campaign_dir.placement(), &record)
        .with_context(|| format!("writing {}", campaign_dir.placement().display()))?;
    let planned = |r: &PlannedRun| r.plan.time_limit.as_secs_f64() + RUN_OVERHEAD_S;
    let remaining: f64 = todo.iter().map(|&i| planned(&runs[i])).sum();
    watch.started(
        name,
        &dir,
        &runs,
        todo.len(),
        remaining / record.jobs.max(1) as f64,
    );
    let mut tally = Tally {
        dir: &dir,
        campaign: &campaign_dir,
        watch,
        total: runs.len(),
        progress: ProgressRecord {
            state: CampaignState::Running,
            pid: std::process::id(),
            pid_start: faultline_rundir::records::process_start(std::process::id()),
            total: runs.len(),
            done: runs.len() - todo.len(),
            started_unix_ms: unix_ms(),
            updated_unix_ms: unix_ms(),
            done_planned_s: 0.0,
            remaining_planned_s: remaining,
            last_run: None,
            last_line: None,
        },
        planned: &planned,
    };
    tally
        .progress
        .write(&campaign_dir)
        .with_context(|| format!("writing {}", campaign_dir.progress().display()))?;
    // The page exists (every run listed as to come) from the start.
    let _ = faultline_results::write_campaign_report_partial(&dir, Some(&tally.progress));
    match placement {
        Placement::Here => {
            for &i in &todo {
                let run = &runs[i];
                let ticks = watch.run_started(i, run);
                let results = run_one(
                    &run.plan,
                    &dir.join(&run.dir),
                    node_bin,
                    ticks.as_ref(),
                    None,
                )
                .await
                .with_context(|| format!("run {}", run.dir))?;
                tally.finished(i, run, &results);
            }
        }
        Placement::Jobs { jobs, exe } => {
            let sets = record
                .pinned
                .then(|| crate::child::cpu_sets(&crate::child::available_cpus(), *jobs))
                .flatten();
            let slots: Vec<Slot> = (0..*jobs)
                .map(|k| Slot::Local {
                    cpus: sets.as_ref().map(|s| s[k].clone()),
                })
                .collect();
            let ctx = Shared {
                exe,
                node_bin,
                dir: &dir,
                shared_cores: record.shared_cores,
                own_loopback: faultline_nemesis::net::kernel::netns::Namespace::new().is_ok(),
            };
            let ran = dispatch(&ctx, slots, &runs, &todo, &mut tally, &mut record).await;
            stopped_short(ran, &dir, &mut tally.progress)?;
        }
        Placement::Workers { hosts, exe } => {
            // Every worker is set up at once (uploads take a while each).
            let ready = futures::future::join_all(
                hosts
                    .iter()
                    .map(|h| crate::workers::Worker::prepare(h, exe, node_bin)),
            )
            .await;
            let mut workers = Vec::new();
            for (h, prepared) in hosts.iter().zip(ready) {
                match prepared {
                    Ok(w) => {
                        watch.note(&format!(
                            "worker {} ready in {:.1} s ({})",
                            w.name,
                            w.setup.as_secs_f64(),
                            match w.uploaded {
                                0 => "its binaries were current".to_string(),
                                n => format!("copied {:.1} MB", n as f64 / 1e6),
                            }
                        ));
                        workers.push(w);
                    }
                    Err(e) => {
                        watch.note(&format!("worker {} left out: {e:#}", h.name));
                        record.lost.push(Attempt {
                            on: h.name.clone(),
                            error: format!("{e:#}"),
                        });
                    }
                }
            }
            let _ = write_whole(&campaign_dir.placement(), &record);
            if workers.is_empty() {
                let why = anyhow::anyhow!(
                    "no worker could be set up (the first: {})",
                    record.lost.first().map_or("", |a| a.error.as_str())
                );
                stopped_short(Err(why), &dir, &mut tally.progress)?;
            }
            let ctx = Shared {
                exe,
                node_bin,
                dir: &dir,
                shared_cores: false,
                own_loopback: false,
            };
            let slots: Vec<Slot> = workers.iter().map(Slot::Remote).collect();
            let ran = dispatch(&ctx, slots, &runs, &todo, &mut tally, &mut record).await;
            for w in workers {
                w.close(&dir).await;
            }
            stopped_short(ran, &dir, &mut tally.progress)?;
        }
    }
    let summary = faultline_results::write_campaign_report(&dir)?;
    tally.progress.state = CampaignState::Finished;
    tally.progress.updated_unix_ms = unix_ms();
    let _ = tally.progress.write(&campaign_dir);
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(CampaignOutcome {
        page: dir.join("index.html"),
        dir,
        summary,
    })
}

/// A campaign that could not run every run still leaves its page (the
/// finished runs) and says it stopped.
fn stopped_short(
    ran: anyhow::Result<()>,
    dir: &Path,
    progress: &mut ProgressRecord,
) -> anyhow::Result<()> {
    if ran.is_err() {
        progress.state = CampaignState::Interrupted;
        progress.updated_unix_ms = unix_ms();
        let _ = progress.write(&faultline_rundir::CampaignDir::new(dir));
        let _ = faultline_results::write_campaign_report(dir);
        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
    ran
}

/// Refuse, before any run starts, what this machine cannot run: kernel
/// faults its kernel lacks, disk faults without FUSE, a target that cannot
/// be built here (etcd missing or too old, say).
fn check_here(runs: &[PlannedRun], node_bin: &NodeCommand) -> anyhow::Result<()> {
    // An inventory that cannot carry the run is refused before the store
    // directory is made.
    let mut checked: Vec<(&Path, usize)> = Vec::new();
    for r in runs {
        if let Some(inv) = r.plan.hosts.as_deref() {
            if !checked.contains(&(inv, r.plan.nodes)) {
                faultline_nemesis::hosts::members(inv, r.plan.nodes)?;
                checked.push((inv, r.plan.nodes));
            }
        }
    }
    if runs
        .iter()
        .any(|r| r.plan.net == faultline_nemesis::net::NetBackend::Kernel)
    {
        let netem = faultline_nemesis::net::kernel::netns::netem_available()
            .map_err(|e| anyhow::anyhow!("probing the kernel for netem: {e}"))?;
        for r in runs {
            r.plan.check_kernel_faults(netem).with_context(|| {
                format!(
                    "setting {}, fault {}",
                    crate::store::shown(&r.plan.stored.setting),
                    crate::store::shown(&r.fault)
                )
            })?;
        }
    }
    if runs.iter().any(|r| {
        r.plan
            .faults
            .iter()
            .any(faultline_nemesis::fault::Fault::needs_disk_layer)
    }) {
        faultline_nemesis::disk::check_prerequisites().map_err(anyhow::Error::msg)?;
    }
    let mut seen = Vec::new();
    for r in runs {
        if !seen.contains(&r.plan.target) {
            seen.push(r.plan.target);
            crate::run::system(&r.plan, node_bin)?;
        }
    }
    Ok(())
}

/// The campaign's `campaign.json`.
fn index(config: &CampaignConfig, name: &str, runs: &[PlannedRun]) -> CampaignIndex {
    CampaignIndex {
        name: name.to_string(),
        settings: config
            .settings
            .iter()
            .map(|s| {
                let target = s.target.unwrap_or(config.run.target);
                CampaignSetting {
                    name: s.name.clone(),
                    description: s.describe(target),
                    unsafe_bug: s.unsafe_bug.clone(),
                    election_timeout: Some(s.timeouts(target).0.to_string()),
                }
            })
            .collect(),
        faults: config.all_faults(),
        runs: runs
            .iter()
            .map(|r| CampaignRun {
                dir: r.dir.clone(),
                setting: r.plan.stored.setting.clone(),
                fault: r.fault.clone(),
                repeat: r.repeat,
                seed: r.plan.seed,
                expect: r.plan.stored.expect,
            })
            .collect(),
    }
}

/// The campaign's `placement.json` as it starts (a resumption keeps the
/// earlier record's history and adds itself).
fn placement_record(
    placement: &Placement,
    campaign: &faultline_rundir::CampaignDir,
    set_aside: Option<Vec<String>>,
    todo: usize,
) -> CampaignPlacement {
    let cores = crate::child::available_cpus().len();
    let (mode, jobs, workers) = match placement {
        Placement::Here => (Mode::Here, 1, Vec::new()),
        Placement::Jobs { jobs, .. } => (Mode::Jobs, *jobs, Vec::new()),
        Placement::Workers { hosts, .. } => (
            Mode::Workers,
            hosts.len(),
            hosts.iter().map(|h| h.name.clone()).collect(),
        ),
    };
    let pinned = mode == Mode::Jobs
        && crate::child::cpu_sets(&(0..cores).collect::<Vec<_>>(), jobs).is_some();
    let earlier: Option<CampaignPlacement> = read_record(&campaign.placement()).ok().flatten();
    let mut resumed = earlier.as_ref().map_or(Vec::new(), |e| e.resumed.clone());
    if let Some(set_aside) = set_aside {
        resumed.push(Resume {
            at_unix_ms: unix_ms(),
            runs: todo,
            set_aside,
        });
    }
    CampaignPlacement {
        mode,
        jobs,
        cores,
        pinned,
        shared_cores: mode == Mode::Jobs && !pinned && jobs > 1,
        workers,
        lost: Vec::new(),
        requeued: earlier.as_ref().map_or(Vec::new(), |e| e.requeued.clone()),
        failed: Vec::new(),
        resumed,
    }
}

/// Rebuild the pages of a campaign directory (with `campaign.json`) or of
/// one run directory (with `history.jsonl`) from their stored files; returns
/// the page and the exit status: 0 when every run showed what it expected,
/// 1 when one did not (then the first such run, in words), 3 undecided.
pub fn rebuild_report(dir: &Path) -> anyhow::Result<(PathBuf, u8, Option<String>)> {
    let opts = faultline_checker::Options::default();
    let page = dir.join("index.html");
    let campaign = faultline_rundir::CampaignDir::new(dir);
    if campaign.campaign().exists() {
        let path = campaign.campaign();
        let index = faultline_results::campaign::read_index(&path)?;
        for r in &index.runs {
            // A run the campaign never reached has nothing to rebuild; the
            // campaign page lists it as not run.
            if !campaign.run(&r.dir).history().exists() {
                continue;
            }
            // A run directory that is a link could lead the pages out of
            // the store: refused, as a `dir` that is not a plain name is.
            let meta = std::fs::symlink_metadata(dir.join(&r.dir))
                .with_context(|| format!("run {}", r.dir))?;
            anyhow::ensure!(
                meta.is_dir(),
                "{}: run directory {} is a link or not a directory; the report writes only inside the store",
                path.display(),
                faultline_rundir::quote::quoted(&r.dir)
            );
            faultline_results::write_run_report(&dir.join(&r.dir), &opts)
                .with_context(|| format!("run {}", r.dir))?;
        }
        let summary = faultline_results::write_campaign_report(dir)?;
        Ok((
            page,
            summary.exit_code(),
            summary.unexpected.first().cloned(),
        ))
    } else if faultline_rundir::RunDir::new(dir).history().exists() {
        let r = faultline_results::write_run_report(dir, &opts)?;
        let code = r.judgement().exit_code();
        let miss = (code == 1).then(|| r.expect().miss().to_string());
        Ok((page, code, miss))
    } else {
        anyhow::bail!(
            "{} holds neither campaign.json nor history.jsonl",
            dir.display()
        )
    }
}
