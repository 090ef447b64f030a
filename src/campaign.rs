//! `faultline run`, `faultline campaign`, `faultline demo` and
//! `faultline report`: their flags, progress bars and printing. What a run
//! and a campaign do is the runner crate's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use faultline_checker::Verdict;
use faultline_results::RunResults;
use faultline_runner::campaign::{CampaignConfig, PlannedRun, Setting, SharedRun};
use faultline_runner::execute::{rebuild_report, run_campaign, CampaignWatch, Placement};
use faultline_runner::presets;
use faultline_runner::run::Progress;
use faultline_runner::spec::{defaults, parse_key_dist, parse_mix};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Progress bars for a campaign: one for the runs, one per run under way
/// (several with `--jobs` or `--workers`), and a line per finished run.
struct Bars {
    multi: MultiProgress,
    runs: ProgressBar,
    under_way: std::sync::Mutex<std::collections::HashMap<usize, ProgressBar>>,
    tally: std::sync::Mutex<[u32; 3]>,
}

impl Bars {
    fn new() -> Bars {
        let multi = MultiProgress::new();
        let runs = multi.add(ProgressBar::new(0));
        runs.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}")
                .expect("valid template"),
        );
        Bars {
            multi,
            runs,
            under_way: Default::default(),
            tally: std::sync::Mutex::new([0; 3]),
        }
    }

    fn finish(&self) {
        for (_, bar) in self
            .under_way
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            bar.finish_and_clear();
        }
        self.runs.finish_and_clear();
    }
}

impl CampaignWatch for Bars {
    fn started(&self, name: &str, dir: &Path, runs: &[PlannedRun], todo: usize, approx_secs: f64) {
        self.runs.set_length(runs.len() as u64);
        self.runs.set_position((runs.len() - todo) as u64);
        let left = if todo == runs.len() {
            String::new()
        } else {
            format!(", {todo} left to run")
        };
        self.multi.suspend(|| {
            eprintln!(
                "faultline: campaign '{name}': {} runs{left} (about {approx_secs:.0} s) into {}",
                runs.len(),
                dir.display()
            )
        });
    }

    fn run_started(&self, i: usize, run: &PlannedRun) -> Option<Progress> {
        let bar = self.multi.add(ProgressBar::new(1000));
        bar.set_style(ProgressStyle::with_template("{bar:30} {msg}").expect("valid template"));
        // A run tried again (re-queued from a worker) replaces its old bar.
        let old = self
            .under_way
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(i, bar.clone());
        if let Some(old) = old {
            old.finish_and_clear();
            self.multi.remove(&old);
        }
        let limit = run.plan.time_limit.as_secs_f64();
        let label = format!("{} / {}", run.plan.stored.setting, run.fault);
        Some(Progress {
            tick: Box::new(move |t, ok, fail, info| {
                bar.set_position(((t / limit).min(1.0) * 1000.0) as u64);
                bar.set_message(format!(
                    "{label}: {t:.1}/{limit:.0} s  ok {ok} fail {fail} info {info}"
                ));
            }),
        })
    }

    fn run_finished(
        &self,
        i: usize,
        done: usize,
        total: usize,
        run: &PlannedRun,
        results: &RunResults,
    ) {
        if let Some(bar) = self
            .under_way
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&i)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        match results.valid {
            Verdict::Linearizable => tally[0] += 1,
            Verdict::NotLinearizable => tally[1] += 1,
            Verdict::Unknown => tally[2] += 1,
        }
        self.runs.set_position(done as u64);
        self.runs.set_message(format!(
            "linearizable {}, NOT linearizable {}, unknown {}",
            tally[0], tally[1], tally[2]
        ));
        self.multi.suspend(|| {
            eprintln!(
                "[{done}/{total}] {} / {}: {}",
                run.plan.stored.setting,
                run.fault,
                results.line()
            )
        });
    }

    fn note(&self, line: &str) {
        self.multi.suspend(|| eprintln!("faultline: {line}"));
    }
}

/// Run a campaign with progress bars; print where its report is (or a JSON
/// summary); the exit status says whether every run showed what it
/// expected (0), one did not (1, named on the last line), or some are
/// undecided (3).
async fn run_and_print(
    config: &CampaignConfig,
    name: &str,
    store: &Path,
    json: bool,
    placement: &Placement,
    resume: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let bars = Bars::new();
    let outcome = run_campaign(
        config,
        name,
        store,
        &crate::node_binary()?,
        &bars,
        placement,
        resume,
    )
    .await;
    bars.finish();
    let outcome = outcome?;
    let s = &outcome.summary;
    if json {
        use faultline_rundir::summary::{CampaignLine, ElectionLine};
        let line = CampaignLine {
            campaign: outcome.dir.clone(),
            report: outcome.page.clone(),
            valid: s.valid,
            runs: s.runs,
            not_linearizable: s.invalid_runs.clone(),
            unknown: s.unknown_runs.clone(),
            unexpected: s.unexpected.clone(),
            undecided: s.undecided.clone(),
            controls_caught: s.controls_caught,
            exit: s.exit_code(),
            elections: s
                .elections
                .iter()
                .map(|e| ElectionLine {
                    setting: e.setting.clone(),
                    election_timeout: e.election_timeout.clone(),
                    trials: e.crashes,
                    no_leader: e.no_leader,
                    missed: e.missed,
                    mean_ms: e.mean,
                    median_ms: e.median,
                    p99_ms: e.p99,
                    max_ms: e.max,
                    paper: e.paper.clone(),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string(&line)?);
    } else {
        println!(
            "report: {}",
            faultline_rundir::quote::escaped_path(&outcome.page)
        );
    }
    if let Some(first) = s.unexpected.first() {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let more = match s.unexpected.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        eprintln!("faultline: UNEXPECTED: {first}{more}");
    }
    Ok(ExitCode::from(s.exit_code()))
}

/// `faultline run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = defaults::NODES)]
    nodes: usize,
    /// The network the nodes talk over: `proxy` (faultline's proxy on every
    /// link, loopback) or `kernel` (each node in a network namespace of its
    /// own, faults by nftables; needs root, `ip` and `nft`; see docs/faults.md).
    #[arg(long, default_value = "proxy")]
    pub net: faultline_nemesis::net::NetBackend,
    /// Run the members on the hosts of this inventory, one per host, over
    /// ssh (docs/hosts.md); network faults are then nftables rules on
    /// each host. Only the hosts it lists are contacted.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<String>,
    /// The system under test: `faultline` (its own node), `etcd` (found on
    /// PATH or given by --bin; network faults need --net kernel; see
    /// docs/etcd.md), `nats` (nats-server with JetStream, found on PATH or
    /// given by --bin; needs --net kernel for network faults; see
    /// docs/nats.md) or `maelstrom` (any program that speaks Maelstrom's
    /// protocol, given by --bin; see docs/maelstrom.md).
    #[arg(long, default_value = "faultline")]
    pub target: faultline_sut::TargetKind,
    /// The program to run: for --target maelstrom the node program (its
    /// arguments follow `--`); for etcd and nats their server, when not
    /// the one on PATH.
    #[arg(long)]
    bin: Option<String>,
    /// For --target maelstrom: run crash faults although a restart loses
    /// the node's memory (a lost write after it is then expected).
    #[arg(long)]
    allow_amnesia: bool,
    /// What the disk layer takes to be durable after a power loss, for
    /// disk faults: posix (a name is durable once its directory is
    /// fsynced), journaled (any fsync also makes every earlier name change
    /// durable, as ext4 and XFS do) or names-durable (names at once, only
    /// data cached, as LazyFS); docs/faults.md.
    #[arg(long, default_value = "posix")]
    disk_model: faultline_rundir::spec::DiskModel,
    /// For --target maelstrom: the program's arguments.
    #[arg(last = true)]
    args: Vec<String>,
    /// Reads: `linearizable`; for etcd `serializable` (from a member's local
    /// state), for nats `direct` (from any replica): the positive controls,
    /// which the checker must catch.
    #[arg(long, default_value = "linearizable")]
    read_mode: faultline_sut::etcd::ReadMode,
    /// Fault kinds, comma-separated, e.g. partition-leader,pause-leader,loss:0.2
    /// (docs/faults.md lists every kind; empty for none).
    #[arg(long, default_value = defaults::NEMESIS)]
    nemesis: String,
    /// Seconds of each fault and of each quiet period between faults.
    #[arg(long, default_value_t = defaults::FAULT_INTERVAL_S)]
    fault_interval: f64,
    /// Random fault durations and kinds (from the seed) instead of alternating.
    #[arg(long)]
    random_schedule: bool,
    #[command(flatten)]
    workload: crate::workload_args::WorkloadArgs,
    /// Keys (independent registers).
    #[arg(long, default_value_t = defaults::KEYS)]
    keys: usize,
    /// Shares of read, write and cas operations, READ,WRITE,CAS.
    #[arg(long, default_value = defaults::MIX_FLAG, value_parser = parse_mix)]
    mix: [f64; 3],
    /// Key choice: uniform, or zipf (a few hot keys).
    #[arg(long, default_value = "uniform", value_parser = parse_key_dist)]
    key_dist: faultline_workloads::register::KeyDist,
    /// Clients pick a random node per operation instead of sticking to one.
    #[arg(long)]
    random_node: bool,
    /// Concurrent client processes.
    #[arg(long, default_value_t = defaults::CONCURRENCY)]
    concurrency: usize,
    /// Target operations per second, all clients together (0: as fast as possible).
    #[arg(long, default_value_t = defaults::RATE)]
    rate: f64,
    /// Seconds of workload and faults (then a heal and a final read of every key).
    #[arg(long, default_value_t = defaults::TIME_LIMIT_S)]
    time_limit: f64,
    /// Randomized election timeout range, ms [default: 150..300; for etcd,
    /// its own default 1000..2000].
    #[arg(long)]
    election_timeout: Option<faultline_rundir::spec::MillisRange>,
    /// Leader heartbeat interval, ms [default: 50; for etcd, its own default 100].
    #[arg(long)]
    heartbeat: Option<u64>,
    /// Nodes campaign with a pre-vote round first.
    #[arg(long)]
    pre_vote: bool,
    /// Leaders step down without a majority's contact.
    #[arg(long)]
    check_quorum: bool,
    /// Seed for the fault schedule, link decisions and operations (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Client timeout per operation, ms.
    #[arg(long, default_value_t = defaults::OP_TIMEOUT_MS)]
    op_timeout: u64,
    /// Most log entries per AppendEntries (the node's default: 256).
    #[arg(long)]
    max_append_entries: Option<u64>,
    /// Take a snapshot and compact the log every N applied entries, 0 for
    /// never (the node's default: 10000; for etcd, its --snapshot-count).
    #[arg(long)]
    snapshot_entries: Option<u64>,
    /// UNSAFE: run the nodes with a known bug, to see faultline catch it.
    #[arg(long, help = bug_help())]
    unsafe_bug: Option<String>,
    /// What the run is expected to show: `linearizable`, or for a positive
    /// control `not-linearizable` or `unsafe` (a safety violation in the
    /// nodes' logs). Default: a failure with --unsafe-bug or a
    /// --read-mode other than linearizable, linearizable otherwise. The exit status is
    /// 0 when the run showed what it expected.
    #[arg(long)]
    expect: Option<faultline_results::expect::Expect>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    json: bool,
}

/// Run `faultline run`: a one-run campaign.
pub async fn run_cmd(a: RunArgs) -> anyhow::Result<ExitCode> {
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
    });
    a.workload.refuse_other_workloads_flags()?;
    if a.seed.is_none() {
        eprintln!("faultline: seed {seed} (pass --seed {seed} to repeat this run)");
    }
    let config = CampaignConfig {
        name: Some("run".into()),
        repeats: 1,
        faults: vec![a.nemesis.clone()],
        run: SharedRun {
            nodes: a.nodes,
            time_limit: a.time_limit,
            fault_interval: a.fault_interval,
            random_schedule: a.random_schedule,
            mix: a.mix,
            key_dist: a.key_dist,
            random_node: a.random_node,
            keys: a.keys,
            concurrency: a.concurrency,
            rate: a.rate,
            seed,
            op_timeout: a.op_timeout,
            net: match (&a.hosts, a.net) {
                (Some(_), faultline_nemesis::net::NetBackend::Proxy) => {
                    faultline_nemesis::net::NetBackend::Hosts
                }
                (_, net) => net,
            },
            hosts: a.hosts.clone(),
            target: a.target,
            read_mode: a.read_mode,
            bin: a.bin.clone(),
            args: a.args.clone(),
            allow_amnesia: a.allow_amnesia,
            disk_model: faultline_runner::campaign::DiskModels::One(a.disk_model),
            workload: a.workload.workload,
            txn_len: a.workload.txn_len,
            txn_keys: a.workload.txn_keys,
            consistency: a.workload.consistency,
            lock_ttl: a.workload.lock_ttl,
            fenced: a.workload.fenced,
            lock_pauses: a.workload.lock_pauses,
        },
        settings: vec![Setting {
            name: "run".into(),
            // The target's own defaults where none is given (in
            // `Setting::timeouts`).
            election_timeout: a.election_timeout,
            heartbeat: a.heartbeat,
            pre_vote: a.pre_vote,
            check_quorum: a.check_quorum,
            unsafe_bug: a.unsafe_bug.clone(),
            max_append_entries: a.max_append_entries,
            snapshot_entries: a.snapshot_entries,
            tick: None,
            faults: None,
            net: None,
            hosts: None,
            target: None,
            bin: None,
            args: None,
            read_mode: None,
            workload: None,
            lock_ttl: None,
            fenced: None,
            lock_pauses: None,
            disk_model: None,
            nodes: None,
            keys: None,
            concurrency: None,
            rate: None,
            op_timeout: None,
            mix: None,
            time_limit: None,
            fault_interval: None,
            // None: the one default rule (`Setting::expectation`).
            expect: a.expect,
            expect_by_fault: Default::default(),
            expect_by_model: Default::default(),
            model_of: None,
        }],
    };
    run_and_print(&config, "run", &a.store, a.json, &Placement::Here, None).await
}

/// `faultline campaign` flags.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// The campaign file (TOML; docs/campaigns.md describes the format).
    #[arg(required_unless_present = "preset", conflicts_with = "preset")]
    file: Option<PathBuf>,
    /// A built-in campaign instead of a file (listed from the presets'
    /// table, so none is missing).
    #[arg(long, help = preset_help())]
    preset: Option<String>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    json: bool,
    /// Run up to N runs at once on this machine, each in a process (and,
    /// as root, a loopback) of its own, pinned to its own cores when there
    /// are at least 2 per run; docs/campaigns.md says what shared cores do
    /// to timing figures.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Run the runs on the worker hosts of this inventory over SSH, one at a
    /// time per worker (docs/campaigns.md: the format, what a worker needs).
    #[arg(long, value_name = "INVENTORY", conflicts_with = "jobs")]
    pub workers: Option<PathBuf>,
    /// Finish this campaign directory of the store: run only its runs that
    /// are missing or were interrupted (give the campaign file it started with).
    #[arg(long, value_name = "STORE/CAMPAIGN")]
    resume: Option<PathBuf>,
}

impl CampaignArgs {
    /// Whether this process itself runs the campaign's runs (not child
    /// processes or workers), so that it must enter a kernel-backend
    /// network first.
    pub fn runs_here(&self) -> bool {
        self.workers.is_none() && self.jobs <= 1
    }
}

/// Run `faultline campaign FILE` or `faultline campaign --preset NAME`.
pub async fn campaign_cmd(a: CampaignArgs) -> anyhow::Result<ExitCode> {
    let (config, name) = load_campaign(&a)?;
    if !a.runs_here() && config.uses_hosts() {
        anyhow::bail!(
            "this campaign runs members on hosts (hosts = …): such runs go one at a time from this control node, so leave out --jobs and --workers"
        );
    }
    let exe = || std::env::current_exe().context("finding this program to start its runs");
    let placement = match (&a.workers, a.jobs) {
        (Some(inv), _) => Placement::Workers {
            hosts: faultline_hosts::inventory::load(inv)?,
            exe: exe()?,
        },
        (None, 1) => Placement::Here,
        (None, jobs) => Placement::Jobs {
            jobs: jobs as usize,
            exe: exe()?,
        },
    };
    run_and_print(
        &config,
        &name,
        &a.store,
        a.json,
        &placement,
        a.resume.as_deref(),
    )
    .await
}

/// The campaign `faultline campaign` names, and its name.
pub fn load_campaign(a: &CampaignArgs) -> anyhow::Result<(CampaignConfig, String)> {
    Ok(match (&a.file, a.preset.as_deref()) {
        (_, Some(p)) => (presets::load(p)?, p.to_string()),
        (Some(file), None) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut config = CampaignConfig::parse(&text, &file.display().to_string())?;
            config.resolve_paths(file.parent().unwrap_or(std::path::Path::new("")));
            let name = config.name.clone().unwrap_or_else(|| {
                file.file_stem()
                    .map_or("campaign".into(), |s| s.to_string_lossy().into_owned())
            });
            (config, name)
        }
        (None, None) => anyhow::bail!("give a campaign file or --preset"),
    })
}

/// `faultline demo` flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    json: bool,
}

/// Run the built-in demo campaign.
pub async fn demo_cmd(a: DemoArgs) -> anyhow::Result<ExitCode> {
    run_and_print(
        &presets::load("demo")?,
        "demo",
        &a.store,
        a.json,
        &Placement::Here,
        None,
    )
    .await
}

/// `faultline report` flags.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A campaign directory (with campaign.json) or a run directory (with history.jsonl).
    dir: PathBuf,
}

/// Rebuild a run's or a campaign's pages from its stored files.
pub fn report_cmd(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let (page, code, miss) = rebuild_report(&a.dir)?;
    println!("report: {}", faultline_rundir::quote::escaped_path(&page));
    if let Some(m) = miss {
        eprintln!("faultline: UNEXPECTED: {m}");
    }
    Ok(ExitCode::from(code))
}

/// `--preset`'s help: every built-in campaign with what it is for, from
/// the presets' own table.
pub fn preset_help() -> String {
    let list: Vec<String> = presets::PRESETS
        .iter()
        .map(|p| format!("{} ({})", p.name, p.about))
        .collect();
    format!(
        "A built-in campaign instead of a file: {}; docs/campaigns.md has each",
        list.join("; ")
    )
}

/// `--unsafe-bug`'s help: every known-bug variant, from the node's table.
pub fn bug_help() -> String {
    let names: Vec<&str> = faultline_node::bugs::ALL.iter().map(|b| b.name()).collect();
    format!(
        "UNSAFE: run the nodes with a known bug, to see faultline catch it ({}); docs/bug-hunt.md has each",
        names.join(", ")
    )
}
