//! `faultline run`'s workload flags: which workload, and the append and
//! lock workloads' own settings.

use clap::Args;
use faultline_rundir::spec::{defaults, Workload};

/// The workload flags.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// The workload: register (read/write/cas, checked for
    /// linearizability), append (list-append transactions, checked by
    /// their dependency graph against --consistency) or lock (locks with
    /// leases, checked against a mutex; --fenced, --lock-ttl, --lock-pauses).
    #[arg(long, default_value = defaults::WORKLOAD)]
    pub workload: Workload,
    /// Append workload: most micro-operations per transaction [default: 4].
    #[arg(long)]
    pub txn_len: Option<usize>,
    /// Append workload: most keys per transaction; above 1 needs a target
    /// with multi-key transactions [default: 1].
    #[arg(long)]
    pub txn_keys: Option<usize>,
    /// Append workload: the model the history is judged against:
    /// strict-serializable, serializable or strong-session-serializable
    /// [default: strict-serializable].
    #[arg(long)]
    pub consistency: Option<faultline_rundir::spec::Consistency>,
    /// Lock workload: the lease's time to live, ms [default: 3000].
    #[arg(long)]
    pub lock_ttl: Option<u64>,
    /// Lock workload: each holder's writes carry the lock's token and the
    /// store refuses a lower token than it has seen.
    #[arg(long)]
    pub fenced: bool,
    /// Lock workload: the share of holds (0 to 1) in which the holder's
    /// client freezes for 1.5 × the TTL (no renewals), then carries on.
    #[arg(long, default_value_t = 0.0)]
    pub lock_pauses: f64,
}

impl WorkloadArgs {
    /// A workload's own flags, given for another workload, are refused
    /// rather than ignored.
    pub fn refuse_other_workloads_flags(&self) -> anyhow::Result<()> {
        if self.workload != Workload::Append {
            anyhow::ensure!(
                self.txn_len.is_none() && self.txn_keys.is_none() && self.consistency.is_none(),
                "--txn-len, --txn-keys and --consistency are for the append workload (--workload append); this run's workload is {}",
                self.workload
            );
        }
        if self.workload != Workload::Lock {
            anyhow::ensure!(
                self.lock_ttl.is_none() && !self.fenced && self.lock_pauses == 0.0,
                "--lock-ttl, --fenced and --lock-pauses are for the lock workload (--workload lock); this run's workload is {}",
                self.workload
            );
        }
        Ok(())
    }
}
