//! `faultline bench core`: the pure Raft core's throughput in simulation.

use std::time::Instant;

use crate::sim::Cluster;

/// Proposals committed per second through a 3-node in-memory cluster of
/// the pure core, every safety check on; returns the line to print.
pub fn core(proposals: u64) -> String {
    let mut c = Cluster::new(3, Cluster::fast_config(), 1);
    let leader = c
        .run_until_leader(10_000)
        .expect("the simulated cluster elects a leader");
    let start = Instant::now();
    let batch = 64;
    let mut proposed = 0u64;
    let mut last_index = 0;
    while proposed < proposals {
        for _ in 0..batch {
            proposed += 1;
            last_index = c
                .propose(&leader, proposed.to_le_bytes().to_vec())
                .expect("leader")
                .0;
        }
        c.tick();
    }
    c.run_until(100_000, |c| c.committed_everywhere(last_index));
    let secs = start.elapsed().as_secs_f64();
    format!(
        "faultline bench core: {proposals} proposals committed on 3 in-memory nodes in {secs:.2} s = {:.0} proposals/s (with every safety check on)",
        proposals as f64 / secs
    )
}
