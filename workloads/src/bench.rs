//! `faultline bench workload`: how fast the workload records operations.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::fake::{serve, Behavior};
use crate::recorder::Recorder;
use crate::register::{RegisterConfig, RegisterWorkload};

/// The workload generator and history recorder against an in-process
/// stand-in node that answers at once: operations per second recorded, with
/// the history written under `dir` (removed at the end).
pub async fn workload(dir: &Path, secs: u64, concurrency: usize) -> anyhow::Result<String> {
    let addr = serve(Behavior::Immediate).await?;
    let path = faultline_rundir::RunDir::new(dir).history();
    let rec = Recorder::create(&path, Instant::now())?;
    let config = RegisterConfig {
        keys: 100,
        concurrency,
        rate: 0.0,
        ..RegisterConfig::default()
    };
    let w = RegisterWorkload::new(config, vec![("n1".into(), addr)], rec.clone());
    let t = Instant::now();
    w.run(Instant::now() + Duration::from_secs(secs)).await;
    let elapsed = t.elapsed().as_secs_f64();
    rec.finish()?;
    let ops = w.counts.ok.load(std::sync::atomic::Ordering::Relaxed)
        + w.counts.fail.load(std::sync::atomic::Ordering::Relaxed)
        + w.counts.info.load(std::sync::atomic::Ordering::Relaxed);
    let bytes = std::fs::metadata(&path)?.len();
    let line = format!(
        "faultline bench workload: {concurrency} processes against an in-process node that answers at once: {ops} operations in {elapsed:.1} s = {:.0} ops/s recorded ({} events, {:.1} MB of history)",
        ops as f64 / elapsed,
        rec.count(),
        bytes as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(line)
}
