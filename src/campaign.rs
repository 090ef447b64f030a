//! `faultline run`, `faultline campaign`, `faultline demo` and
//! `faultline report`: runs and campaigns into the store, and their reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use faultline_checker::Verdict;
use faultline_results::{CampaignIndex, CampaignRun, CampaignSetting};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::run::{exit_code, run_one, Progress, RunSpec};

/// Settings shared by every run of a campaign (all optional).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedRun {
    /// Nodes (default 3).
    #[serde(default = "d_nodes")]
    pub nodes: usize,
    /// Seconds per run (default 20).
    #[serde(default = "d_time_limit")]
    pub time_limit: f64,
    /// Seconds per fault and per quiet period (default 4).
    #[serde(default = "d_interval")]
    pub fault_interval: f64,
    /// Random schedule (default false: alternate).
    #[serde(default)]
    pub random_schedule: bool,
    /// Shares of read, write and cas (default [50, 30, 20]).
    #[serde(default = "crate::run::default_mix")]
    pub mix: [f64; 3],
    /// Key choice: "uniform" or "zipf" (default uniform).
    #[serde(default = "d_key_dist")]
    pub key_dist: faultline_workloads::register::KeyDist,
    /// Clients pick a random node per operation (default: stick to one).
    #[serde(default)]
    pub random_node: bool,
    /// Keys (default 5).
    #[serde(default = "d_keys")]
    pub keys: usize,
    /// Client processes (default 10).
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// Target ops/s (default 100).
    #[serde(default = "d_rate")]
    pub rate: f64,
    /// Base seed; run i uses seed + i (default 1).
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Client timeout per operation, ms (default 1000).
    #[serde(default = "d_op_timeout")]
    pub op_timeout: u64,
}

fn d_key_dist() -> faultline_workloads::register::KeyDist {
    faultline_workloads::register::KeyDist::Uniform
}
fn d_nodes() -> usize {
    3
}
fn d_time_limit() -> f64 {
    20.0
}
fn d_interval() -> f64 {
    4.0
}
fn d_keys() -> usize {
    5
}
fn d_concurrency() -> usize {
    10
}
fn d_rate() -> f64 {
    100.0
}
fn d_seed() -> u64 {
    1
}
fn d_op_timeout() -> u64 {
    1000
}

impl Default for SharedRun {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

/// One named timeout setting.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// Its name in the reports.
    pub name: String,
    /// Election timeout range, ms, e.g. "150..300".
    #[serde(default = "d_election")]
    pub election_timeout: String,
    /// Heartbeat interval, ms.
    #[serde(default = "d_heartbeat")]
    pub heartbeat: u64,
    /// Pre-vote.
    #[serde(default)]
    pub pre_vote: bool,
    /// Check-quorum.
    #[serde(default)]
    pub check_quorum: bool,
    /// UNSAFE: a known-bug variant of the node (see the README).
    #[serde(default)]
    pub unsafe_bug: Option<String>,
    /// Most log entries per AppendEntries (the node's default, 256, when absent).
    #[serde(default)]
    pub max_append_entries: Option<u64>,
    /// Fault kinds for this setting only (default: the campaign's).
    #[serde(default)]
    pub faults: Option<Vec<String>>,
    /// Workload and cluster shape for this setting only (default: the
    /// campaign's `[run]`): a bug may need its own exposure.
    #[serde(default)]
    pub nodes: Option<usize>,
    /// Keys for this setting only.
    #[serde(default)]
    pub keys: Option<usize>,
    /// Client processes for this setting only.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Target ops/s for this setting only.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Client timeout per operation, ms, for this setting only.
    #[serde(default)]
    pub op_timeout: Option<u64>,
    /// Shares of read, write and cas for this setting only.
    #[serde(default)]
    pub mix: Option<[f64; 3]>,
    /// Seconds per run for this setting only.
    #[serde(default)]
    pub time_limit: Option<f64>,
    /// Seconds per fault and per quiet period for this setting only.
    #[serde(default)]
    pub fault_interval: Option<f64>,
}

fn d_election() -> String {
    "150..300".into()
}
fn d_heartbeat() -> u64 {
    50
}

impl Setting {
    fn describe(&self) -> String {
        let mut s = format!(
            "election timeout {} ms, heartbeat {} ms",
            self.election_timeout, self.heartbeat
        );
        if self.pre_vote {
            s.push_str(", pre-vote");
        }
        if self.check_quorum {
            s.push_str(", check-quorum");
        }
        if let Some(m) = self.max_append_entries {
            s.push_str(&format!(", at most {m} entries per AppendEntries"));
        }
        if let Some(b) = &self.unsafe_bug {
            s.push_str(&format!(", UNSAFE bug {b}"));
        }
        // Run overrides, so the page says what differs from [run].
        let mut extra = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                s.push_str(&format!(", {name} {v}"));
            }
        };
        extra("nodes", self.nodes.map(|v| v.to_string()));
        extra("keys", self.keys.map(|v| v.to_string()));
        extra("clients", self.concurrency.map(|v| v.to_string()));
        extra("rate", self.rate.map(|v| format!("{v} ops/s")));
        extra("op timeout", self.op_timeout.map(|v| format!("{v} ms")));
        extra(
            "mix",
            self.mix
                .map(|m| format!("{}/{}/{} read/write/cas", m[0], m[1], m[2])),
        );
        extra("time limit", self.time_limit.map(|v| format!("{v} s")));
        extra(
            "fault interval",
            self.fault_interval.map(|v| format!("{v} s")),
        );
        s
    }
}

/// A campaign file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Its name (default: the file's stem).
    #[serde(default)]
    pub name: Option<String>,
    /// Repeats of every (setting, fault) pair (default 1).
    #[serde(default = "d_repeats")]
    pub repeats: usize,
    /// Fault kinds; each entry is one column (a `--nemesis` list, so "a,b" combines).
    pub faults: Vec<String>,
    /// Shared run settings.
    #[serde(default)]
    pub run: SharedRun,
    /// The timeout settings to compare.
    #[serde(rename = "setting")]
    pub settings: Vec<Setting>,
}

fn d_repeats() -> usize {
    1
}

impl CampaignConfig {
    /// The built-in demo: three contrasting timeout settings under leader
    /// isolation, leader pause and 20 % message loss, on 3 nodes.
    pub fn demo() -> CampaignConfig {
        toml::from_str(DEMO).expect("the built-in demo campaign parses")
    }

    /// Every fault kind of the campaign, in order of first appearance
    /// (the campaign's list is used only by settings without their own).
    fn all_faults(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.settings {
            for f in s.faults.as_ref().unwrap_or(&self.faults) {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
        }
        out
    }

    /// Every run's spec, validated, with its setting, fault and repeat.
    fn runs(&self) -> anyhow::Result<Vec<(RunSpec, String, usize)>> {
        anyhow::ensure!(!self.settings.is_empty(), "the campaign has no [[setting]]");
        anyhow::ensure!(
            !self.faults.is_empty() || self.settings.iter().all(|s| s.faults.is_some()),
            "the campaign has no faults"
        );
        anyhow::ensure!(self.repeats >= 1, "repeats must be at least 1");
        let mut names = std::collections::HashSet::new();
        for s in &self.settings {
            anyhow::ensure!(names.insert(&s.name), "two settings are named '{}'", s.name);
        }
        let mut out = Vec::new();
        let mut i = 0u64;
        for s in &self.settings {
            for f in s.faults.as_ref().unwrap_or(&self.faults) {
                for r in 1..=self.repeats {
                    let spec = RunSpec {
                        setting: s.name.clone(),
                        nodes: s.nodes.unwrap_or(self.run.nodes),
                        nemesis: f.clone(),
                        fault_interval_s: s.fault_interval.unwrap_or(self.run.fault_interval),
                        random_schedule: self.run.random_schedule,
                        workload: "register".into(),
                        keys: s.keys.unwrap_or(self.run.keys),
                        concurrency: s.concurrency.unwrap_or(self.run.concurrency),
                        rate: s.rate.unwrap_or(self.run.rate),
                        time_limit_s: s.time_limit.unwrap_or(self.run.time_limit),
                        election_timeout: s.election_timeout.clone(),
                        heartbeat_ms: s.heartbeat,
                        pre_vote: s.pre_vote,
                        check_quorum: s.check_quorum,
                        seed: self.run.seed + i,
                        op_timeout_ms: s.op_timeout.unwrap_or(self.run.op_timeout),
                        unsafe_bug: s.unsafe_bug.iter().cloned().collect(),
                        mix: s.mix.unwrap_or(self.run.mix),
                        key_dist: self.run.key_dist,
                        random_node: self.run.random_node,
                        max_append_entries: s.max_append_entries,
                    };
                    spec.validate()
                        .with_context(|| format!("setting '{}', fault '{f}'", s.name))?;
                    out.push((spec, f.clone(), r));
                    i += 1;
                }
            }
        }
        Ok(out)
    }
}

/// The demo campaign, also the README's full example of the format.
pub const DEMO: &str = r#"
name = "demo"
repeats = 1
faults = ["partition-leader", "pause-leader", "loss:0.2"]

[run]
nodes = 3
time_limit = 16        # seconds per run
fault_interval = 3     # seconds of fault, then seconds of quiet
keys = 5
concurrency = 8
rate = 80              # operations per second, all clients together
seed = 1
op_timeout = 1000      # ms

[[setting]]
name = "fast"
election_timeout = "60..120"
heartbeat = 20

[[setting]]
name = "default"
election_timeout = "150..300"
heartbeat = 50

[[setting]]
name = "slow+prevote+cq"
election_timeout = "400..800"
heartbeat = 100
pre_vote = true
check_quorum = true
"#;

/// The bug hunt: every known-bug variant under the faults most likely to
/// expose it, and the correct node under all of them.
pub const BUG_HUNT: &str = r#"
name = "bug-hunt"
repeats = 5
faults = []

[run]
nodes = 3
time_limit = 20
fault_interval = 2
keys = 10
concurrency = 10
rate = 150
seed = 100

[[setting]]
name = "correct"
faults = ["partition-leader", "crash-all", "partition-halves,crash-leader", "crash-minority,partition-leader", "membership-split,membership"]

[[setting]]
name = "stale-read"
unsafe_bug = "stale-read"
faults = ["partition-leader"]

[[setting]]
name = "ack-before-commit"
unsafe_bug = "ack-before-commit"
faults = ["partition-leader"]

[[setting]]
name = "volatile-log"
unsafe_bug = "volatile-log"
faults = ["crash-all"]

# A double vote needs a voter that restarts between two candidates' requests
# of one term, before the first winner's entries reach it. At once, the
# leader becomes the bridge between two nodes that cannot hear each other,
# its links get slow (300 ms each way), and it crashes and restarts every
# 150 ms: both others campaign in the same term and both need its vote, and
# each vote it gives takes 600 ms to be followed by the winner's first
# entry, long enough for a restart to wipe the vote before the other
# candidate's request arrives. Elections of 1-1.6 s keep the candidates
# waiting for those slow answers; five rounds in 40 s.
[[setting]]
name = "forget-vote"
unsafe_bug = "forget-vote"
faults = ["partition-bridge@leader&delay:300:0@leader&restart:150@leader"]
election_timeout = "1000..1600"
op_timeout = 2000
time_limit = 40
fault_interval = 4

[[setting]]
name = "correct-crash-loop"
faults = ["partition-bridge@leader&delay:300:0@leader&restart:150@leader"]
election_timeout = "1000..1600"
op_timeout = 2000
time_limit = 40
fault_interval = 4

# The paper's Figure 8, played step by step by the nemesis (see the README):
# a leader's old entries reach a majority while the links hold back its own
# new entry, and the buggy leader commits them then; a leader elected next
# without them overwrites them, and the nodes that applied them stop on
# their assertion, which the log audit reports.
[[setting]]
name = "commit-old-term"
unsafe_bug = "commit-old-term"
faults = ["figure-8"]
nodes = 5
election_timeout = "800..1600"
time_limit = 30
fault_interval = 12

[[setting]]
name = "correct-figure-8"
faults = ["figure-8"]
nodes = 5
election_timeout = "800..1600"
time_limit = 30
fault_interval = 12

# The old leader, cut off while its clients keep proposing, gets a long
# uncommitted tail; a later leader (the first one is crashed meanwhile) probes
# it far past that tail, and the buggy follower accepts at the tail's end,
# keeping its stale entries in place of committed ones. Five nodes so that a
# majority survives both faults; many keys so that the lost writes are not
# overwritten before a divergent node leads or the final reads see them.
[[setting]]
name = "skip-prev-check"
unsafe_bug = "skip-prev-check"
faults = ["partition-leader+crash-leader"]
nodes = 5
keys = 1000
concurrency = 30
op_timeout = 100
rate = 300
mix = [60, 20, 20]
time_limit = 40
fault_interval = 3

[[setting]]
name = "correct-5-nodes"
faults = ["partition-leader+crash-leader"]
nodes = 5
keys = 1000
concurrency = 30
op_timeout = 100
rate = 300
mix = [60, 20, 20]
time_limit = 40
fault_interval = 3

[[setting]]
name = "one-step-membership"
unsafe_bug = "one-step-membership"
faults = ["membership-split"]
"#;

/// Membership changes under faults: the correct node under the membership
/// nemesis alone and combined with partitions, crashes and pauses, and the
/// one-step-membership variant under the fault that exposes it.
pub const MEMBERSHIP: &str = r#"
name = "membership"
repeats = 2
faults = []

[run]
nodes = 3
time_limit = 20
fault_interval = 2
keys = 10
concurrency = 10
rate = 150
seed = 300

[[setting]]
name = "correct"
faults = ["membership", "membership-split", "membership,partition-halves", "membership,crash-minority", "membership-split,pause-leader"]

[[setting]]
name = "one-step-membership"
unsafe_bug = "one-step-membership"
faults = ["membership-split"]
"#;

/// The short bug hunt that CI runs: the cheapest exposures that trigger
/// every time, and the correct node under the same faults.
pub const BUG_HUNT_CI: &str = r#"
name = "bug-hunt-ci"
repeats = 1
faults = []

[run]
nodes = 3
time_limit = 6
fault_interval = 1.5
keys = 10
concurrency = 10
rate = 150
seed = 7

[[setting]]
name = "correct"
faults = ["partition-leader", "crash-all", "membership-split,membership"]

[[setting]]
name = "stale-read"
unsafe_bug = "stale-read"
faults = ["partition-leader"]

[[setting]]
name = "volatile-log"
unsafe_bug = "volatile-log"
faults = ["crash-all"]

[[setting]]
name = "one-step-membership"
unsafe_bug = "one-step-membership"
faults = ["membership-split"]
"#;

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// UTC time as `YYYYmmdd-HHMMSS`, for directory names.
fn stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Run a campaign into `store`; prints the report's path; exit status by verdict.
pub async fn run_campaign(
    config: &CampaignConfig,
    name: &str,
    store: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let runs = config.runs()?;
    let dir = store.join(format!("{}-{}", slug(name), stamp()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let index = CampaignIndex {
        name: name.to_string(),
        settings: config
            .settings
            .iter()
            .map(|s| CampaignSetting {
                name: s.name.clone(),
                description: s.describe(),
                unsafe_bug: s.unsafe_bug.clone(),
            })
            .collect(),
        faults: config.all_faults(),
        runs: runs
            .iter()
            .map(|(spec, fault, r)| CampaignRun {
                dir: format!("{}__{}__{}", slug(&spec.setting), slug(fault), r),
                setting: spec.setting.clone(),
                fault: fault.clone(),
                repeat: *r,
                seed: spec.seed,
            })
            .collect(),
    };
    std::fs::write(
        dir.join("campaign.json"),
        serde_json::to_vec_pretty(&index)?,
    )?;
    point_latest(store, &dir);
    let total_secs: f64 = runs.iter().map(|(s, _, _)| s.time_limit_s + 4.0).sum();
    eprintln!(
        "faultline: campaign '{name}': {} runs (about {:.0} s) into {}",
        runs.len(),
        total_secs,
        dir.display()
    );
    let multi = MultiProgress::new();
    let bar = multi.add(ProgressBar::new(runs.len() as u64));
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}").expect("valid template"),
    );
    let run_bar = multi.add(ProgressBar::new(1000));
    run_bar.set_style(ProgressStyle::with_template("{bar:30} {msg}").expect("valid template"));
    let (mut ok_runs, mut bad_runs, mut unknown_runs) = (0, 0, 0);
    for (i, ((spec, fault, _), meta)) in runs.iter().zip(&index.runs).enumerate() {
        let label = format!("{} / {}", spec.setting, fault);
        let rb = run_bar.clone();
        let limit = spec.time_limit_s;
        let l2 = label.clone();
        let progress = Progress {
            tick: Box::new(move |t, ok, fail, info| {
                rb.set_position(((t / limit).min(1.0) * 1000.0) as u64);
                rb.set_message(format!(
                    "{l2}: {t:.1}/{limit:.0} s  ok {ok} fail {fail} info {info}"
                ));
            }),
        };
        let results = run_one(spec, &dir.join(&meta.dir), Some(&progress))
            .await
            .with_context(|| format!("run {}", meta.dir))?;
        match results.valid {
            Verdict::Linearizable => ok_runs += 1,
            Verdict::NotLinearizable => bad_runs += 1,
            Verdict::Unknown => unknown_runs += 1,
        }
        bar.inc(1);
        bar.set_message(format!(
            "linearizable {ok_runs}, NOT linearizable {bad_runs}, unknown {unknown_runs}"
        ));
        let mut verdict = match results.checker.valid {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "NOT LINEARIZABLE",
            Verdict::Unknown => "unknown",
        }
        .to_string();
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
        multi.suspend(|| {
            eprintln!(
                "[{}/{}] {label}: {verdict}; availability {:.1} %, {:.0} ms without a leader, p99 {:.1} ms",
                i + 1,
                runs.len(),
                results.availability.share * 100.0,
                results.elections.leaderless_ms,
                results.latency.get("all").map_or(0.0, |p| p.p99)
            )
        });
        // Keep the campaign page current as runs finish.
        let _ = faultline_results::write_campaign_report_partial(&dir, i + 1);
    }
    run_bar.finish_and_clear();
    bar.finish_and_clear();
    let summary = faultline_results::write_campaign_report(&dir)?;
    let page = dir.join("index.html");
    if json {
        println!(
            "{}",
            serde_json::json!({"campaign": dir, "report": page, "valid": summary.valid, "runs": summary.runs,
            "not_linearizable": summary.invalid_runs, "unknown": summary.unknown_runs})
        );
    } else {
        println!("report: {}", page.display());
    }
    Ok(ExitCode::from(exit_code(summary.valid)))
}

fn point_latest(store: &Path, dir: &Path) {
    let link = store.join("latest");
    let _ = std::fs::remove_file(&link);
    if let Some(name) = dir.file_name() {
        let _ = std::os::unix::fs::symlink(name, &link);
    }
}

/// `faultline run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Fault kinds, comma-separated, e.g. partition-leader,pause-leader,loss:0.2
    /// (see the README for every kind; empty for none).
    #[arg(long, default_value = "partition-leader")]
    nemesis: String,
    /// Seconds of each fault and of each quiet period between faults.
    #[arg(long, default_value_t = 5.0)]
    fault_interval: f64,
    /// Random fault durations and kinds (from the seed) instead of alternating.
    #[arg(long)]
    random_schedule: bool,
    /// The workload.
    #[arg(long, default_value = "register")]
    workload: String,
    /// Keys (independent registers).
    #[arg(long, default_value_t = 5)]
    keys: usize,
    /// Shares of read, write and cas operations, READ,WRITE,CAS.
    #[arg(long, default_value = "50,30,20", value_parser = crate::run::parse_mix)]
    mix: [f64; 3],
    /// Key choice: uniform, or zipf (a few hot keys).
    #[arg(long, default_value = "uniform", value_parser = parse_key_dist)]
    key_dist: faultline_workloads::register::KeyDist,
    /// Clients pick a random node per operation instead of sticking to one.
    #[arg(long)]
    random_node: bool,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Target operations per second, all clients together (0: as fast as possible).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of workload and faults (then a heal and a final read of every key).
    #[arg(long, default_value_t = 30.0)]
    time_limit: f64,
    /// Randomized election timeout range, ms.
    #[arg(long, default_value = "150..300")]
    election_timeout: String,
    /// Leader heartbeat interval, ms.
    #[arg(long, default_value_t = 50)]
    heartbeat: u64,
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
    #[arg(long, default_value_t = 1000)]
    op_timeout: u64,
    /// Most log entries per AppendEntries (the node's default: 256).
    #[arg(long)]
    max_append_entries: Option<u64>,
    /// UNSAFE: run the nodes with a known bug, to see faultline catch it
    /// (stale-read, forget-vote, commit-old-term, volatile-log,
    /// skip-prev-check, ack-before-commit, one-step-membership).
    #[arg(long)]
    unsafe_bug: Option<String>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    json: bool,
}

fn parse_key_dist(s: &str) -> Result<faultline_workloads::register::KeyDist, String> {
    match s {
        "uniform" => Ok(faultline_workloads::register::KeyDist::Uniform),
        "zipf" | "zipfian" => Ok(faultline_workloads::register::KeyDist::Zipf),
        other => Err(format!("'{other}' is not uniform or zipf")),
    }
}

/// Run `faultline run`: a one-run campaign.
pub async fn run_cmd(a: RunArgs) -> anyhow::Result<ExitCode> {
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
    });
    if a.seed.is_none() {
        eprintln!("faultline: seed {seed} (pass --seed {seed} to repeat this run)");
    }
    anyhow::ensure!(
        a.workload == "register",
        "unknown workload '{}' (known: register)",
        a.workload
    );
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
        },
        settings: vec![Setting {
            name: "run".into(),
            election_timeout: a.election_timeout.clone(),
            heartbeat: a.heartbeat,
            pre_vote: a.pre_vote,
            check_quorum: a.check_quorum,
            unsafe_bug: a.unsafe_bug.clone(),
            max_append_entries: a.max_append_entries,
            faults: None,
            nodes: None,
            keys: None,
            concurrency: None,
            rate: None,
            op_timeout: None,
            mix: None,
            time_limit: None,
            fault_interval: None,
        }],
    };
    run_campaign(&config, "run", &a.store, a.json).await
}

/// `faultline campaign` flags.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// The campaign file (TOML; see the README).
    #[arg(required_unless_present = "preset", conflicts_with = "preset")]
    file: Option<PathBuf>,
    /// A built-in campaign instead of a file: demo, bug-hunt (every known-bug
    /// variant and the correct node, 5 repeats, about 20 minutes),
    /// bug-hunt-ci (the short version CI runs) or membership (membership
    /// changes under faults, about 5 minutes).
    #[arg(long)]
    preset: Option<String>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    json: bool,
}

/// Run `faultline campaign FILE` or `faultline campaign --preset NAME`.
pub async fn campaign_cmd(a: CampaignArgs) -> anyhow::Result<ExitCode> {
    let (config, name): (CampaignConfig, String) = match (&a.file, a.preset.as_deref()) {
        (_, Some(p)) => {
            let text = match p {
                "demo" => DEMO,
                "bug-hunt" => BUG_HUNT,
                "bug-hunt-ci" => BUG_HUNT_CI,
                "membership" => MEMBERSHIP,
                other => {
                    anyhow::bail!(
                        "unknown preset '{other}' (known: demo, bug-hunt, bug-hunt-ci, membership)"
                    )
                }
            };
            (
                toml::from_str(text).expect("built-in campaigns parse"),
                p.to_string(),
            )
        }
        (Some(file), None) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let config: CampaignConfig = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim()))?;
            let name = config.name.clone().unwrap_or_else(|| {
                file.file_stem()
                    .map_or("campaign".into(), |s| s.to_string_lossy().into_owned())
            });
            (config, name)
        }
        (None, None) => anyhow::bail!("give a campaign file or --preset"),
    };
    run_campaign(&config, &name, &a.store, a.json).await
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
    run_campaign(&CampaignConfig::demo(), "demo", &a.store, a.json).await
}

/// `faultline report` flags.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A campaign directory (with campaign.json) or a run directory (with history.jsonl).
    dir: PathBuf,
}

/// Rebuild a run's or a campaign's pages from its stored files.
pub fn report_cmd(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let dir = &a.dir;
    let opts = faultline_checker::Options::default();
    if dir.join("campaign.json").exists() {
        let text = std::fs::read_to_string(dir.join("campaign.json"))?;
        let index: CampaignIndex = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", dir.join("campaign.json").display()))?;
        for r in &index.runs {
            faultline_results::write_run_report(&dir.join(&r.dir), &opts)
                .with_context(|| format!("run {}", r.dir))?;
        }
        let summary = faultline_results::write_campaign_report(dir)?;
        println!("report: {}", dir.join("index.html").display());
        Ok(ExitCode::from(exit_code(summary.valid)))
    } else if dir.join("history.jsonl").exists() {
        let r = faultline_results::write_run_report(dir, &opts)?;
        println!("report: {}", dir.join("index.html").display());
        Ok(ExitCode::from(exit_code(r.valid)))
    } else {
        anyhow::bail!(
            "{} holds neither campaign.json nor history.jsonl",
            dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_campaign_parses_and_validates() {
        for (name, text) in [
            ("demo", DEMO),
            ("bug-hunt", BUG_HUNT),
            ("bug-hunt-ci", BUG_HUNT_CI),
            ("membership", MEMBERSHIP),
        ] {
            let c: CampaignConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let runs = c.runs().unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!runs.is_empty(), "{name}");
        }
    }
}
