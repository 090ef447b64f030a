//! `faultline bench report`: how long the analysis and pages of a large run
//! take.

use std::path::Path;
use std::time::Instant;

use faultline_checker::gen::{generate, GenConfig};

/// Analysis and report of a generated history of `ops` operations, written
/// under `dir` (removed at the end); returns the line to print.
pub fn report(dir: &Path, ops: usize) -> anyhow::Result<String> {
    {
        let f = std::io::BufWriter::new(std::fs::File::create(
            faultline_rundir::RunDir::new(dir).history(),
        )?);
        generate(
            &GenConfig {
                ops,
                keys: 100,
                processes: 20,
                info_rate: 0.01,
                seed: 3,
                ..GenConfig::default()
            },
            f,
        )?;
    }
    let t = Instant::now();
    let r = crate::write_run_report(dir, &faultline_checker::Options::default())?;
    let secs = t.elapsed().as_secs_f64();
    let line = format!(
        "faultline bench report: analysis and report of a {ops}-operation history (100 keys, 20 processes): {secs:.1} s (verdict {:?}, {} KB of HTML and SVG)",
        r.valid,
        ["index.html", "latency.svg", "throughput.svg", "quantiles.svg", "leaders.svg"].iter().filter_map(|f| std::fs::metadata(dir.join(f)).ok()).map(|m| m.len()).sum::<u64>() / 1024
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(line)
}
