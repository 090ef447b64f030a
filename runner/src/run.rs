//! One test run: start the testbed (nodes behind link proxies), record the
//! workload and the nemesis into one history, heal and read every key, stop
//! everything, then check and report. Its files are described in
//! `docs/campaigns.md` (the store layout).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_nemesis::fault::Fault;
use faultline_nemesis::process::NodeCommand;
use faultline_nemesis::schedule;
use faultline_nemesis::testbed::{Testbed, TestbedSpec};
use faultline_results::RunResults;
use faultline_rundir::placement::{write_whole, RunPlacement};
use faultline_sut::{Target, TargetKindExt};
use faultline_workloads::recorder::Recorder;
use faultline_workloads::register::RegisterWorkload;

use crate::observer::Observer;
use crate::spec::{RunPlan, RunSpec};

/// Live numbers for a progress display.
pub struct Progress {
    /// Called about every 200 ms with (seconds elapsed, ok, fail, info).
    pub tick: Box<dyn Fn(f64, u64, u64, u64) + Send + Sync>,
}

/// The system a run tests ([`faultline_sut::TargetKindExt::build`]).
pub fn system(plan: &RunPlan, node_bin: &NodeCommand) -> anyhow::Result<Arc<dyn Target>> {
    let (bin, args) = match &plan.program {
        Some((bin, args)) => (Some(bin.as_str()), args.as_slice()),
        None => (None, &[][..]),
    };
    plan.target
        .build(&faultline_sut::Build {
            node: node_bin.clone(),
            read_mode: plan.read_mode,
            bin,
            args,
            cluster: plan.cluster_id.as_deref(),
        })
        .map_err(anyhow::Error::msg)
}

/// Run one test into `dir` and write its report: `plan` what its spec
/// validated into ([`RunPlan::new`]), `placement` where a campaign placed
/// it (stored for its page).
pub async fn run_one(
    plan: &RunPlan,
    dir: &Path,
    node_bin: &NodeCommand,
    progress: Option<&Progress>,
    placement: Option<&RunPlacement>,
) -> anyhow::Result<RunResults> {
    let target = system(plan, node_bin)?;
    crate::store::create_run_dir(dir)?;
    let rd = faultline_rundir::RunDir::new(dir);
    if let Some(p) = placement {
        write_whole(&rd.placement(), p).context("writing placement.json")?;
    }
    let stored = RunSpec {
        target_version: Some(target.version()),
        ..plan.stored.clone()
    };
    std::fs::write(rd.spec(), serde_json::to_vec_pretty(&stored)?)?;
    let mut tb = Testbed::start(&TestbedSpec {
        nodes: plan.nodes,
        spares: plan
            .faults
            .iter()
            .map(Fault::spares_needed)
            .max()
            .unwrap_or(0),
        dir: dir.to_path_buf(),
        target: target.clone(),
        node_args: plan.member_args.clone(),
        seed: plan.seed,
        net: plan.net,
        hosts: plan.hosts.clone(),
        disk: plan
            .faults
            .iter()
            .any(Fault::needs_disk_layer)
            .then_some(plan.disk_model),
    })
    .await?;
    // What the workload needs before it starts (NATS: its KV stream).
    target
        .prepare(
            &tb.cluster
                .client_addrs()
                .into_iter()
                .map(|(_, a)| a)
                .collect::<Vec<_>>(),
            Duration::from_secs(30),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    if target.capabilities().reports_leader {
        tb.cluster
            .wait_leader(Duration::from_secs(30))
            .await
            .context("the cluster did not elect a first leader")?;
    } else if tb
        .cluster
        .wait_leader(Duration::from_secs(10))
        .await
        .is_err()
    {
        // Inferred from traffic: a node that does not replicate has none,
        // and its run still says what its clients saw.
        eprintln!(
            "faultline: no leader could be inferred from the nodes' traffic within 10 s; starting anyway (leader-aware faults pick a node by the seed)"
        );
    }

    let start = Instant::now();
    let started_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let recorder = Recorder::create(&rd.history(), start).context("creating the history")?;
    let addrs = tb.cluster.client_addrs();
    let observer = Observer::start(
        target.clone(),
        tb.cluster.address_book(),
        rd.status(),
        start,
    );
    let limit = plan.time_limit;
    let workload = Arc::new(
        RegisterWorkload::new(plan.register.clone(), addrs, recorder.clone())
            .following(tb.cluster.address_book())
            .on(target.clone()),
    );
    let w = workload.clone();
    let load = tokio::spawn(async move { w.run(start + limit).await });

    // A host that stops answering ends the run (its faults could no
    // longer be applied or healed).
    let watched: Vec<Arc<faultline_nemesis::hosts::RunHost>> = tb
        .hosts
        .as_ref()
        .map(|h| h.hosts().to_vec())
        .unwrap_or_default();
    let schedule = plan.schedule.clone();
    let planned = schedule::plan(&schedule, limit);
    let rec = recorder.clone();
    let sink = move |f: &str, v: serde_json::Value| rec.nemesis(f, v);
    let counts = workload.counts.clone();
    let mut load = load;
    let main = async {
        let ran = schedule::run_schedule(&mut tb, &planned, start, &sink).await;
        let _ = (&mut load).await;
        ran
    };
    let lost = async {
        loop {
            if let Some(why) = watched.iter().find_map(|h| h.lost()) {
                return why;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let main = async {
        tokio::select! {
            ran = main => Ok(ran),
            why = lost => Err(why),
        }
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
    let executed = match executed {
        Ok(ran) => ran,
        Err(why) => {
            load.abort();
            let at = start.elapsed().as_secs_f64();
            drop(tb);
            let _ = recorder.finish();
            anyhow::bail!(
                "{why}: the run stopped at {at:.1} s (its history so far is in {})",
                rd.history().display()
            );
        }
    };

    // Final phase: heal everything, wait for a leader, read every key.
    tb.heal_all()?;
    let settle = if target.capabilities().reports_leader {
        30
    } else {
        5
    };
    let _ = tb.cluster.wait_leader(Duration::from_secs(settle)).await;
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
    observer.stop().await;
    let links = tb.net.stats();
    drop(tb); // every node process is killed and reaped here
    recorder.finish().context("writing the history")?;
    std::fs::write(rd.links(), serde_json::to_vec_pretty(&links)?)?;
    std::fs::write(
        rd.schedule(),
        serde_json::to_vec_pretty(&faultline_rundir::records::ScheduleRecord {
            config: schedule,
            planned,
            executed,
            // A string: JSON readers may not keep 64-bit integers exact.
            started_unix_ns: started_unix_ns.to_string(),
        })?,
    )?;
    faultline_results::write_run_report(dir, &faultline_checker::Options::default())
}
