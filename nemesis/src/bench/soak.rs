//! `faultline bench soak`: a real cluster written at full rate for a long
//! time, with snapshots and log compaction and without, side by side: each
//! node's peak resident memory and data directory size next to the
//! writes/s, and how long a node restarted at the end takes to answer and
//! to serve again (load its snapshot, replay its log's tail, catch up).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_node::settings::NodeSettings;
use hdrhistogram::Histogram;

use crate::cluster::{ClusterSpec, LocalCluster};
use crate::process::NodeCommand;

/// The goals the issue set for a 10-minute soak.
const RSS_GOAL_MIB: f64 = 200.0;
const RESTART_GOAL_MS: u64 = 1000;
/// A node past this resident size ends its mode early (without snapshots
/// memory grows without bound; the machine must survive the comparison).
const RSS_GUARD_MIB: f64 = 4096.0;

/// What the soak is asked to do.
pub struct SoakPlan {
    /// Seconds of writing with snapshots.
    pub duration: u64,
    /// Seconds of writing without (at most `duration`).
    pub baseline_duration: u64,
    /// Concurrent clients, and the connections they share.
    pub clients: usize,
    /// Connections the clients share.
    pub conns: usize,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Applied entries between snapshots.
    pub snapshot_entries: u64,
}

struct ModeFigures {
    label: String,
    writes: u64,
    errors: u64,
    secs: f64,
    hist: Histogram<u64>,
    /// Peak resident memory per node, MiB.
    peak_rss: BTreeMap<String, f64>,
    /// Largest data directory size seen per node, MiB.
    peak_disk: BTreeMap<String, f64>,
    stopped_early: Option<String>,
    restart: Option<Restart>,
}

struct Restart {
    node: String,
    /// From the spawn to its first status answer.
    answers_ms: u64,
    /// From the spawn until it has applied everything committed before it
    /// was killed and knows the leader: serving again.
    serving_ms: u64,
    snapshot_index: u64,
}

/// Run the soak and print the figures. Data under `base` (removed at the end).
pub async fn soak(node_bin: &NodeCommand, base: &Path, plan: &SoakPlan) -> anyhow::Result<()> {
    println!(
        "faultline bench soak: {} nodes, {} clients on {} connections, fsync on; {} s with a snapshot every {} entries, then {} s without snapshots (data in {})",
        plan.nodes, plan.clients, plan.conns, plan.duration, plan.snapshot_entries,
        plan.baseline_duration, base.display()
    );
    let with = mode(
        node_bin,
        &base.join("snapshots"),
        plan,
        plan.snapshot_entries,
        plan.duration,
    )
    .await?;
    print_mode(&with);
    let without = mode(
        node_bin,
        &base.join("no-snapshots"),
        plan,
        0,
        plan.baseline_duration,
    )
    .await?;
    print_mode(&without);
    let rate = |f: &ModeFigures| f.writes as f64 / f.secs.max(1e-9);
    let ratio = rate(&with) / rate(&without).max(1e-9);
    let peak = with.peak_rss.values().cloned().fold(0.0, f64::max);
    let disk = with.peak_disk.values().cloned().fold(0.0, f64::max);
    println!(
        "with / without snapshots: {:.3}x writes/s ({:+.1} %)",
        ratio,
        (ratio - 1.0) * 100.0
    );
    println!(
        "goals: peak RSS {peak:.0} MiB per node (goal < {RSS_GOAL_MIB:.0}): {}; writes/s within 10 % of no snapshots: {}; data directory at most {disk:.0} MiB per node; restart serving in {} (goal < {RESTART_GOAL_MS} ms): {}",
        met(peak < RSS_GOAL_MIB),
        met(ratio >= 0.9),
        with.restart
            .as_ref()
            .map_or("-".to_string(), |r| format!("{} ms", r.serving_ms)),
        met(with
            .restart
            .as_ref()
            .is_some_and(|r| r.serving_ms < RESTART_GOAL_MS)),
    );
    let _ = std::fs::remove_dir_all(base);
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn print_mode(f: &ModeFigures) {
    let list = |m: &BTreeMap<String, f64>| {
        m.iter()
            .map(|(id, v)| format!("{id} {v:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "{:>32}: {:>9.0} writes/s over {:.0} s  p50 {:.2} ms  p99 {:.2} ms  ({} writes, {} errors)",
        f.label,
        f.writes as f64 / f.secs.max(1e-9),
        f.secs,
        f.hist.value_at_quantile(0.5) as f64 / 1000.0,
        f.hist.value_at_quantile(0.99) as f64 / 1000.0,
        f.writes,
        f.errors
    );
    println!("{:>32}  peak RSS MiB: {}", "", list(&f.peak_rss));
    println!(
        "{:>32}  peak data directory MiB: {}",
        "",
        list(&f.peak_disk)
    );
    if let Some(why) = &f.stopped_early {
        println!("{:>32}  stopped early: {why}", "");
    }
    match &f.restart {
        Some(r) => println!(
            "{:>32}  {} restarted: answers in {} ms, serving again in {} ms (from its snapshot at {})",
            "", r.node, r.answers_ms, r.serving_ms, r.snapshot_index
        ),
        None => println!("{:>32}  restart: not measured", ""),
    }
}

async fn mode(
    node_bin: &NodeCommand,
    dir: &Path,
    plan: &SoakPlan,
    snapshot_entries: u64,
    secs: u64,
) -> anyhow::Result<ModeFigures> {
    let target = faultline_sut::faultline(node_bin.clone());
    let args = NodeSettings {
        request_timeout_ms: 10_000,
        snapshot_entries: Some(snapshot_entries),
        ..NodeSettings::default()
    }
    .to_args();
    let spec = ClusterSpec {
        nodes: plan.nodes,
        dir: dir.to_path_buf(),
        target: target.clone(),
        node_args: args,
        namespaces: Default::default(),
        hosts: Default::default(),
    };
    let mut cluster = LocalCluster::start(&spec)?;
    cluster.wait_ready(Duration::from_secs(30)).await?;
    let leader = cluster.wait_leader(Duration::from_secs(30)).await?;
    let addr = cluster.client_addr(&leader).context("leader address")?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = crate::bench::spawn_load(
        target.clone(),
        addr,
        plan.clients,
        plan.conns,
        secs,
        stop.clone(),
    );
    let mut peak_rss: BTreeMap<String, f64> = BTreeMap::new();
    let mut peak_disk: BTreeMap<String, f64> = BTreeMap::new();
    let mut stopped_early = None;
    let ids = cluster.ids();
    while !load.is_finished() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for id in &ids {
            let Some(node) = cluster.node_mut(id) else {
                continue;
            };
            let data_dir = node.spec().data_dir.clone();
            if let Some(rss) = node.pid().and_then(peak_rss_mib) {
                let p = peak_rss.entry(id.clone()).or_insert(0.0);
                *p = p.max(rss);
                if rss > RSS_GUARD_MIB && stopped_early.is_none() {
                    stopped_early = Some(format!(
                        "{id} reached {rss:.0} MiB resident (guard {RSS_GUARD_MIB:.0} MiB)"
                    ));
                    stop.store(true, Ordering::Relaxed);
                }
            }
            let d = dir_mib(&data_dir);
            let p = peak_disk.entry(id.clone()).or_insert(0.0);
            *p = p.max(d);
        }
    }
    let (hist, writes, errors, secs) = load
        .join()
        .map_err(|_| anyhow::anyhow!("the load thread panicked"))??;
    let restart = restart_a_follower(&mut cluster, &leader).await.ok();
    cluster.shutdown();
    Ok(ModeFigures {
        label: if snapshot_entries > 0 {
            format!("snapshot every {snapshot_entries} entries")
        } else {
            "no snapshots".to_string()
        },
        writes,
        errors,
        secs,
        hist,
        peak_rss,
        peak_disk,
        stopped_early,
        restart,
    })
}

/// Kill a follower, start it again on its data, and time it.
async fn restart_a_follower(cluster: &mut LocalCluster, leader: &str) -> anyhow::Result<Restart> {
    let node = cluster
        .ids()
        .into_iter()
        .find(|i| i != leader)
        .context("no follower")?;
    let commit = cluster
        .status(leader, Duration::from_secs(5))
        .await?
        .commit_index;
    let p = cluster.node_mut(&node).context("follower")?;
    p.kill();
    let t = Instant::now();
    p.restart()?;
    let deadline = t + Duration::from_secs(300);
    let mut answers_ms = None;
    loop {
        if let Ok(s) = cluster.status(&node, Duration::from_millis(200)).await {
            answers_ms.get_or_insert(t.elapsed().as_millis() as u64);
            if s.applied_index >= commit && s.leader.is_some() {
                return Ok(Restart {
                    node,
                    answers_ms: answers_ms.unwrap_or(0),
                    serving_ms: t.elapsed().as_millis() as u64,
                    snapshot_index: s.snapshot_index,
                });
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "{node} did not catch up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The process's peak resident memory (VmHWM), MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The size of every file under `dir`, MiB.
fn dir_mib(dir: &Path) -> f64 {
    fn walk(d: &Path) -> u64 {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(dir) as f64 / (1024.0 * 1024.0)
}
