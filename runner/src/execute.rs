//! Running a campaign into the store: every planned run in turn, the
//! campaign's index (`campaign.json`) first, its page kept current as runs
//! finish, and a summary at the end. What a person sees meanwhile (progress
//! bars, one line per run) is the caller's, through [`CampaignWatch`].

use std::path::{Path, PathBuf};

use anyhow::Context;
use faultline_checker::Verdict;
use faultline_nemesis::process::NodeCommand;
use faultline_results::expect::Judgement;
use faultline_results::{CampaignIndex, CampaignRun, CampaignSetting, CampaignSummary, RunResults};
use faultline_rundir::records::{unix_ms, CampaignState, ProgressRecord};

use crate::campaign::{CampaignConfig, PlannedRun};
use crate::run::{run_one, Progress};
use crate::store::create_campaign_dir;

/// What the caller is told as a campaign goes.
pub trait CampaignWatch {
    /// The campaign starts: its directory, its runs and about how long they take.
    fn started(&self, name: &str, dir: &Path, runs: &[PlannedRun], approx_secs: f64);
    /// Run `i` (from 0) starts; the returned progress, if any, is ticked
    /// through the run.
    fn run_started(&self, i: usize, run: &PlannedRun) -> Option<Progress>;
    /// Run `i` ended with these results.
    fn run_finished(&self, i: usize, total: usize, run: &PlannedRun, results: &RunResults);
}

/// A campaign that ran to its end.
pub struct CampaignOutcome {
    /// Its directory in the store.
    pub dir: PathBuf,
    /// Its page.
    pub page: PathBuf,
    /// Its verdicts.
    pub summary: CampaignSummary,
}

/// The campaign under way in this process, for [`after_interrupt`].
static ACTIVE: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// After a Ctrl-C or SIGTERM stopped a campaign: rewrite its page from the
/// runs that finished, the interrupted one marked as such (best effort: the
/// process is about to exit).
pub fn after_interrupt() {
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

/// Run a campaign named `name` into a new directory of `store`.
pub async fn run_campaign(
    config: &CampaignConfig,
    name: &str,
    store: &Path,
    node_bin: &NodeCommand,
    watch: &dyn CampaignWatch,
) -> anyhow::Result<CampaignOutcome> {
    let runs = config.runs()?;
    if runs
        .iter()
        .any(|r| r.spec.net == faultline_nemesis::net::NetBackend::Kernel)
    {
        // Refuse what this kernel cannot make before any run starts.
        let netem = faultline_nemesis::net::kernel::netns::netem_available()
            .map_err(|e| anyhow::anyhow!("probing the kernel for netem: {e}"))?;
        for r in &runs {
            r.plan.check_kernel_faults(netem).with_context(|| {
                format!(
                    "setting {}, fault {}",
                    crate::store::shown(&r.spec.setting),
                    crate::store::shown(&r.fault)
                )
            })?;
        }
    }
    // A target that cannot be built here (etcd missing or too old, say)
    // is said before anything starts: one build per target the runs use.
    let mut seen = Vec::new();
    for r in &runs {
        if !seen.contains(&r.spec.target) {
            seen.push(r.spec.target);
            crate::run::system(&r.spec, node_bin)?;
        }
    }
    let dir = create_campaign_dir(store, name)?;
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.clone());
    let index = CampaignIndex {
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
                    election_timeout: Some(s.timeouts(target).0),
                }
            })
            .collect(),
        faults: config.all_faults(),
        runs: runs
            .iter()
            .map(|r| CampaignRun {
                dir: r.dir.clone(),
                setting: r.spec.setting.clone(),
                fault: r.fault.clone(),
                repeat: r.repeat,
                seed: r.spec.seed,
                expect: r.spec.expect,
            })
            .collect(),
    };
    std::fs::write(
        faultline_rundir::CampaignDir::new(&dir).campaign(),
        serde_json::to_vec_pretty(&index)?,
    )?;
    let approx: f64 = runs
        .iter()
        .map(|r| r.spec.time_limit_s + RUN_OVERHEAD_S)
        .sum();
    watch.started(name, &dir, &runs, approx);
    let planned = |r: &PlannedRun| r.spec.time_limit_s + RUN_OVERHEAD_S;
    let mut progress = ProgressRecord {
        state: CampaignState::Running,
        pid: std::process::id(),
        total: runs.len(),
        done: 0,
        started_unix_ms: unix_ms(),
        updated_unix_ms: unix_ms(),
        done_planned_s: 0.0,
        remaining_planned_s: approx,
        last_run: None,
        last_line: None,
    };
    let campaign_dir = faultline_rundir::CampaignDir::new(&dir);
    progress
        .write(&campaign_dir)
        .with_context(|| format!("writing {}", campaign_dir.progress().display()))?;
    // The page exists (every run listed as to come) from the start.
    let _ = faultline_results::write_campaign_report_partial(&dir, 0, Some(&progress));
    for (i, run) in runs.iter().enumerate() {
        let ticks = watch.run_started(i, run);
        let results = run_one(
            &run.spec,
            &run.plan,
            &dir.join(&run.dir),
            node_bin,
            ticks.as_ref(),
        )
        .await
        .with_context(|| format!("run {}", run.dir))?;
        watch.run_finished(i, runs.len(), run, &results);
        progress.done = i + 1;
        progress.updated_unix_ms = unix_ms();
        progress.done_planned_s += planned(run);
        progress.remaining_planned_s = (progress.remaining_planned_s - planned(run)).max(0.0);
        progress.last_run = Some(run.dir.clone());
        progress.last_line = Some(run_line(&results));
        // Keep the campaign page current as runs finish: the page first,
        // then the progress a watching browser polls for.
        let _ = faultline_results::write_campaign_report_partial(&dir, i + 1, Some(&progress));
        let _ = progress.write(&campaign_dir);
    }
    let summary = faultline_results::write_campaign_report(&dir)?;
    progress.state = CampaignState::Finished;
    progress.updated_unix_ms = unix_ms();
    let _ = progress.write(&campaign_dir);
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(CampaignOutcome {
        page: dir.join("index.html"),
        dir,
        summary,
    })
}

/// One line that says how a run ended: its verdict, any safety finding in
/// the nodes' logs, availability, time without a leader (in all, and the
/// median per fault window, as the campaign's tables show it) and p99
/// latency.
pub fn run_line(results: &RunResults) -> String {
    let mut verdict = match results.checker.valid {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "NOT LINEARIZABLE",
        Verdict::Unknown => "unknown",
    }
    .to_string();
    if let Some(f) = results.checker.failures.first() {
        if let Some(c) = &f.counterexample {
            verdict.push_str(&format!(" ({})", c.headline(&f.key)));
        }
    }
    if let Some(f) = results.findings.first() {
        verdict.push_str(&format!(
            "; UNSAFE in the nodes' logs: {}{}",
            f.message,
            match results.findings.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            }
        ));
    }
    format!(
        "{verdict}; availability {:.1} % of the run, without a leader {}, p99 latency {:.1} ms",
        results.availability.share * 100.0,
        results.leaderless_words(),
        results.latency.get("all").map_or(0.0, |p| p.p99)
    )
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
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let index: CampaignIndex =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for r in &index.runs {
            // A run the campaign never reached has nothing to rebuild; the
            // campaign page lists it as not run.
            if !campaign.run(&r.dir).history().exists() {
                continue;
            }
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
        let code = match r.expect.judge(r.valid, !r.findings.is_empty()) {
            Judgement::AsExpected => 0,
            Judgement::Unexpected => 1,
            Judgement::Undecided => 3,
        };
        let miss = (code == 1).then(|| r.expect.miss().to_string());
        Ok((page, code, miss))
    } else {
        anyhow::bail!(
            "{} holds neither campaign.json nor history.jsonl",
            dir.display()
        )
    }
}
