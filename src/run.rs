//! One test run, wired from the crates: start the testbed (nodes behind
//! link proxies), record the workload and the nemesis into one history, heal
//! and read every key, stop everything, then check and report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_checker::Verdict;
use faultline_nemesis::cluster::status_at;
use faultline_nemesis::fault::{parse_list, Fault};
use faultline_nemesis::testbed::{self, ScheduleConfig, Testbed, TestbedSpec};
use faultline_node::cli::{raft_config, MillisRange};
use faultline_node::client::AddressBook;
use faultline_results::analysis::{NodeSample, StatusRound};
use faultline_results::RunResults;
use faultline_workloads::recorder::Recorder;
use faultline_workloads::register::{KeyDist, RegisterConfig, RegisterWorkload};
use serde::{Deserialize, Serialize};

/// Everything that defines a run; stored as `spec.json`, so a run can be
/// repeated from it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSpec {
    /// The timeout setting's name (campaigns compare these).
    pub setting: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Fault kinds, comma-separated (empty: no faults).
    pub nemesis: String,
    /// Length of each fault and of each quiet period, seconds.
    pub fault_interval_s: f64,
    /// Random fault durations and kinds from the seed, instead of alternating.
    pub random_schedule: bool,
    /// The workload (`register`).
    pub workload: String,
    /// Keys.
    pub keys: usize,
    /// Concurrent client processes.
    pub concurrency: usize,
    /// Target ops/s (0: as fast as possible).
    pub rate: f64,
    /// Length of the main phase, seconds.
    pub time_limit_s: f64,
    /// Election timeout range, ms.
    pub election_timeout: String,
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Pre-vote on.
    pub pre_vote: bool,
    /// Check-quorum on.
    pub check_quorum: bool,
    /// The run's seed: the fault schedule, link decisions and operations follow from it.
    pub seed: u64,
    /// Per-operation client timeout, ms.
    pub op_timeout_ms: u64,
    /// Shares of read, write and cas operations.
    #[serde(default = "default_mix")]
    pub mix: [f64; 3],
    /// How clients choose keys.
    #[serde(default = "default_key_dist")]
    pub key_dist: KeyDist,
    /// Clients pick a random node per operation instead of sticking to one.
    #[serde(default)]
    pub random_node: bool,
    /// UNSAFE known-bug variants the nodes run with (empty: the correct node).
    #[serde(default)]
    pub unsafe_bug: Vec<String>,
    /// Most entries per AppendEntries (the node's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_append_entries: Option<u64>,
}

impl RunSpec {
    /// Check every setting; returns the parsed faults.
    pub fn validate(&self) -> anyhow::Result<Vec<Fault>> {
        anyhow::ensure!(
            (1..=9).contains(&self.nodes),
            "--nodes must be between 1 and 9 (got {})",
            self.nodes
        );
        anyhow::ensure!(
            self.workload == "register",
            "unknown workload '{}' (known: register)",
            self.workload
        );
        anyhow::ensure!(self.time_limit_s > 0.0, "--time-limit must be positive");
        anyhow::ensure!(
            self.fault_interval_s > 0.0,
            "--fault-interval must be positive"
        );
        let range: MillisRange = self
            .election_timeout
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--election-timeout: {e}"))?;
        raft_config(
            range,
            self.heartbeat_ms,
            5,
            self.pre_vote,
            self.check_quorum,
        )
        .map_err(|e| anyhow::anyhow!("setting '{}': {e}", self.setting))?;
        self.register_config()
            .validate()
            .map_err(|e| anyhow::anyhow!(e))?;
        if let Some(m) = self.max_append_entries {
            anyhow::ensure!(
                (1..=1_000_000).contains(&m),
                "setting '{}': max_append_entries must be between 1 and 1000000 (got {m})",
                self.setting
            );
        }
        for b in &self.unsafe_bug {
            b.parse::<faultline_node::bugs::UnsafeBug>()
                .map_err(|e| anyhow::anyhow!("--unsafe-bug: {e}"))?;
        }
        parse_list(&self.nemesis, self.nodes).map_err(|e| anyhow::anyhow!("--nemesis: {e}"))
    }

    fn register_config(&self) -> RegisterConfig {
        RegisterConfig {
            keys: self.keys,
            concurrency: self.concurrency,
            rate: self.rate,
            key_dist: self.key_dist,
            mix: (self.mix[0], self.mix[1], self.mix[2]),
            random_node: self.random_node,
            timeout: Duration::from_millis(self.op_timeout_ms),
            seed: self.seed,
        }
    }

    fn node_args(&self) -> Vec<String> {
        let mut a = vec![
            "--election-timeout".to_string(),
            self.election_timeout.clone(),
            "--heartbeat".to_string(),
            self.heartbeat_ms.to_string(),
            "--request-timeout".to_string(),
            self.op_timeout_ms.to_string(),
            "--seed".to_string(),
            self.seed.to_string(),
        ];
        if self.pre_vote {
            a.push("--pre-vote".into());
        }
        if self.check_quorum {
            a.push("--check-quorum".into());
        }
        if let Some(m) = self.max_append_entries {
            a.push("--max-append-entries".into());
            a.push(m.to_string());
        }
        for b in &self.unsafe_bug {
            a.push("--unsafe-bug".into());
            a.push(b.clone());
        }
        a
    }
}

/// The default operation mix: 50 % reads, 30 % writes, 20 % cas.
pub fn default_mix() -> [f64; 3] {
    [0.5, 0.3, 0.2]
}

fn default_key_dist() -> KeyDist {
    KeyDist::Uniform
}

/// Parse `R,W,C` shares of reads, writes and cas (any positive scale).
pub fn parse_mix(s: &str) -> Result<[f64; 3], String> {
    let parts: Vec<f64> = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .map_err(|_| format!("'{p}' in --mix {s} is not a number"))
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [r, w, c] if *r >= 0.0 && *w >= 0.0 && *c >= 0.0 && r + w + c > 0.0 => Ok([*r, *w, *c]),
        _ => Err(format!(
            "--mix {s}: give three non-negative shares READ,WRITE,CAS, not all zero"
        )),
    }
}

/// Live numbers for a progress display.
pub struct Progress {
    /// Called about every 200 ms with (seconds elapsed, ok, fail, info).
    pub tick: Box<dyn Fn(f64, u64, u64, u64) + Send + Sync>,
}

/// Run one test into `dir` and write its report.
pub async fn run_one(
    spec: &RunSpec,
    dir: &Path,
    progress: Option<&Progress>,
) -> anyhow::Result<RunResults> {
    let faults = spec.validate()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("spec.json"), serde_json::to_vec_pretty(spec)?)?;
    let mut tb = Testbed::start(&TestbedSpec {
        nodes: spec.nodes,
        spares: faults.iter().map(Fault::spares_needed).max().unwrap_or(0),
        dir: dir.to_path_buf(),
        node_bin: crate::node_binary()?,
        node_args: spec.node_args(),
        seed: spec.seed,
    })
    .await?;
    tb.cluster
        .wait_leader(Duration::from_secs(30))
        .await
        .context("the cluster did not elect a first leader")?;

    let start = Instant::now();
    let started_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let recorder =
        Recorder::create(&dir.join("history.jsonl"), start).context("creating history.jsonl")?;
    let addrs = tb.cluster.client_addrs();
    let stop_polling = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(poll_status(
        tb.cluster.address_book(),
        dir.join("status.jsonl"),
        start,
        stop_polling.clone(),
    ));
    let limit = Duration::from_secs_f64(spec.time_limit_s);
    let workload = Arc::new(
        RegisterWorkload::new(spec.register_config(), addrs, recorder.clone())
            .following(tb.cluster.address_book()),
    );
    let w = workload.clone();
    let load = tokio::spawn(async move { w.run(start + limit).await });

    let schedule = ScheduleConfig {
        faults,
        fault_secs: spec.fault_interval_s,
        quiet_secs: spec.fault_interval_s,
        random: spec.random_schedule,
        seed: spec.seed,
    };
    let plan = testbed::plan(&schedule, limit);
    let rec = recorder.clone();
    let sink = move |f: &str, v: serde_json::Value| rec.nemesis(f, v);
    let counts = workload.counts.clone();
    let mut load = load;
    let main = async {
        let ran = testbed::run_schedule(&mut tb, &plan, start, &sink).await;
        let _ = (&mut load).await;
        ran
    };
    let executed = match progress {
        Some(p) => {
            let ticker = async {
                loop {
                    (p.tick)(
                        start.elapsed().as_secs_f64(),
                        counts.ok.load(Ordering::Relaxed),
                        counts.fail.load(Ordering::Relaxed),
                        counts.info.load(Ordering::Relaxed),
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            };
            tokio::select! {
                ran = main => ran,
                () = ticker => unreachable!("the ticker never ends"),
            }
        }
        None => main.await,
    };

    // Final phase: heal everything, wait for a leader, read every key.
    tb.heal_all()?;
    let _ = tb.cluster.wait_leader(Duration::from_secs(30)).await;
    let missing = workload
        .final_reads(Instant::now() + Duration::from_secs(20))
        .await;
    if !missing.is_empty() {
        eprintln!(
            "faultline: warning: final reads did not succeed for {} keys: {}",
            missing.len(),
            missing.join(", ")
        );
    }
    stop_polling.store(true, Ordering::Relaxed);
    let _ = poller.await;
    let links = tb.net.stats();
    drop(tb); // every node process is killed and reaped here
    recorder.finish().context("writing history.jsonl")?;
    std::fs::write(dir.join("links.json"), serde_json::to_vec_pretty(&links)?)?;
    std::fs::write(
        dir.join("schedule.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "config": schedule,
            "planned": plan,
            "executed": executed,
            // A string: JSON readers may not keep 64-bit integers exact.
            "started_unix_ns": started_unix_ns.to_string(),
        }))?,
    )?;
    faultline_results::write_run_report(dir, &faultline_checker::Options::default())
}

/// Poll every node's status every 100 ms into `status.jsonl`, at the
/// addresses `book` has at the time.
async fn poll_status(book: AddressBook, path: PathBuf, start: Instant, stop: Arc<AtomicBool>) {
    use std::io::Write;
    let Ok(file) = std::fs::File::create(&path) else {
        return;
    };
    let mut out = std::io::BufWriter::new(file);
    while !stop.load(Ordering::Relaxed) {
        let t_ms = start.elapsed().as_millis() as u64;
        let addrs = book.entries();
        let polls = addrs.iter().map(|(id, addr)| async move {
            let s = status_at(*addr, Duration::from_millis(80)).await.ok();
            (id.clone(), s.as_ref().map(NodeSample::from))
        });
        let nodes: BTreeMap<String, Option<NodeSample>> =
            futures::future::join_all(polls).await.into_iter().collect();
        if let Ok(line) = serde_json::to_string(&StatusRound { t_ms, nodes }) {
            let _ = writeln!(out, "{line}");
        }
        let next = Duration::from_millis(100).saturating_sub(Duration::from_millis(
            start.elapsed().as_millis() as u64 - t_ms,
        ));
        tokio::time::sleep(next).await;
    }
    let _ = out.flush();
}

/// The exit status for a verdict (0 linearizable, 1 not, 3 unknown).
pub fn exit_code(v: Verdict) -> u8 {
    crate::check_cmd::exit_code(v)
}
