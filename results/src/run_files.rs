//! A run directory's stored files, read once: `spec.json` (as the
//! runner wrote it, [`RunSpec`]), `history.jsonl`, `status.jsonl`, `links.json` and the
//! run's start time from `schedule.json`. The analysis, the plots and the
//! page all work from one [`RunFiles`].

use std::path::{Path, PathBuf};

use anyhow::Context;
use faultline_checker::History;
use faultline_node::leadership::StatusRound;
use faultline_rundir::spec::RunSpec;

/// A run directory, loaded.
pub struct RunFiles {
    /// The directory.
    pub dir: PathBuf,
    /// `spec.json` (none when missing: a history checked on its own).
    pub spec: Option<RunSpec>,
    /// `links.json` (null when missing).
    pub links: Vec<faultline_rundir::records::LinkStats>,
    /// `history.jsonl` (for a run of list-append transactions, one
    /// operation of kind `txn` per transaction).
    pub history: History,
    /// The run's list-append transactions (`--workload append`, or a
    /// history whose first client line is a `txn`); none for registers.
    pub txns: Option<Vec<faultline_checker::elle::Txn>>,
    /// `status.jsonl` (empty when missing).
    pub status: Vec<StatusRound>,
    /// The run's wall-clock start, ns since the epoch (from `schedule.json`).
    pub started_unix_ns: Option<u128>,
    /// Every "became leader" line of the nodes' logs: (ns since the run's
    /// start on this machine's clock, node, term), in time order; empty
    /// without the run's start time or logs.
    pub leader_starts: Vec<(u64, String, u64)>,
    /// Whether the run ended: its controller writes `schedule.json` last,
    /// after every process stopped. A run directory without it was cut
    /// short (Ctrl-C, a killed controller).
    pub complete: bool,
    /// `placement.json`: where a campaign placed the run (none when it ran
    /// in the controller's own process).
    pub placement: Option<faultline_rundir::placement::RunPlacement>,
    /// `hosts.json`: the hosts a `--hosts` run's members ran on, with
    /// their clock offsets.
    pub hosts: Option<faultline_rundir::records::HostsRecord>,
    /// `disk.json`: what each member's disk layer counted and what every
    /// disk fault did (a run with disk faults only).
    pub disk: Option<faultline_rundir::records::DiskRecord>,
}

impl RunFiles {
    /// Read a run directory; a missing `history.jsonl` is an error, other
    /// missing files are empty.
    pub fn load(dir: &Path) -> anyhow::Result<RunFiles> {
        let rd = faultline_rundir::RunDir::new(dir);
        let spec = RunSpec::read(&rd).map_err(anyhow::Error::msg)?;
        let links: Vec<faultline_rundir::records::LinkStats> =
            faultline_rundir::records::read_record(&rd.links())
                .map_err(anyhow::Error::msg)?
                .unwrap_or_default();
        let hist_path = rd.history();
        let (f, _) = faultline_rundir::read::open_regular(&hist_path)
            .with_context(|| format!("opening {}", hist_path.display()))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, f);
        let appends = spec
            .as_ref()
            .is_some_and(|s| s.workload == faultline_rundir::spec::Workload::Append)
            || faultline_checker::elle::history::starts_with_txn(&mut reader);
        std::io::Seek::rewind(&mut reader)
            .with_context(|| format!("reading {}", hist_path.display()))?;
        let (history, txns) = if appends {
            let h = faultline_checker::elle::history::read_jsonl_full(reader)
                .map_err(|e| anyhow::anyhow!("{}: {e}", hist_path.display()))?;
            let txns = h.columns.to_txns();
            let history = crate::analysis::txns::as_history(&h, &txns);
            (history, Some(txns))
        } else {
            let history = faultline_checker::read_jsonl(reader)
                .map_err(|e| anyhow::anyhow!("{}: {e}", hist_path.display()))?;
            (history, None)
        };
        let status = read_status(&rd.status())?;
        use serde::de::IgnoredAny;
        let schedule: Option<
            faultline_rundir::records::ScheduleRecord<IgnoredAny, IgnoredAny, IgnoredAny>,
        > = faultline_rundir::records::read_record(&rd.schedule()).map_err(anyhow::Error::msg)?;
        let complete = schedule.is_some();
        let started_unix_ns = schedule.and_then(|v| v.started_unix_ns.parse::<u128>().ok());
        let hosts: Option<faultline_rundir::records::HostsRecord> =
            faultline_rundir::records::read_record(&rd.hosts()).map_err(anyhow::Error::msg)?;
        // A member's log is stamped by its host's clock: moved onto this
        // machine's by the offset measured at the run's start.
        let offsets: std::collections::BTreeMap<String, f64> = hosts
            .iter()
            .flat_map(|h| &h.hosts)
            .filter_map(|e| Some((e.node.clone(), e.clock_offset_ms?)))
            .collect();
        let leader_starts = started_unix_ns
            .map(|start| leader_starts(&rd.nodes(), start, &offsets))
            .unwrap_or_default();
        Ok(RunFiles {
            dir: dir.to_path_buf(),
            spec,
            links,
            history,
            txns,
            status,
            started_unix_ns,
            leader_starts,
            complete,
            placement: faultline_rundir::records::read_record(&rd.placement())
                .map_err(anyhow::Error::msg)?,
            hosts,
            disk: faultline_rundir::records::read_record(&rd.disk()).map_err(anyhow::Error::msg)?,
        })
    }
}

/// Read `status.jsonl` (missing file: no rounds).
pub fn read_status(path: &Path) -> anyhow::Result<Vec<StatusRound>> {
    // Parsed line by line as read: the last line may be torn (a writer
    // killed mid-line), so a bad line is an error only once another
    // follows it.
    let mut out = Vec::new();
    let mut pending: Option<(usize, usize, serde_json::Error)> = None;
    let mut failed: Option<anyhow::Error> = None;
    let mut n = 0;
    faultline_rundir::read::for_each_line(path, |l| {
        n += 1;
        if failed.is_some() || l.trim().is_empty() {
            return;
        }
        if let Some((line, _, e)) = pending.take() {
            failed = Some(anyhow::Error::new(e).context(format!("{} line {line}", path.display())));
            return;
        }
        match serde_json::from_str(l) {
            Ok(r) => out.push(r),
            Err(e) => pending = Some((n, l.len(), e)),
        }
    })
    .map_err(anyhow::Error::msg)?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some((line, len, _)) = pending {
        eprintln!(
            "faultline: warning: {} line {line}: a torn last line ({len} bytes) was skipped",
            path.display(),
        );
    }
    Ok(out)
}

/// The moments nodes became leader, from their logs (`nodes/*.log`).
fn leader_starts(
    nodes: &Path,
    start_unix_ns: u128,
    offsets_ms: &std::collections::BTreeMap<String, f64>,
) -> Vec<(u64, String, u64)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(nodes) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let file_id = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = faultline_rundir::read::for_each_line(&p, |line| {
            let Some((Some(ts), id, term)) = crate::audit::leader_line(line) else {
                return;
            };
            let shift = offsets_ms.get(&file_id).map_or(0, |ms| (ms * 1e6) as i128);
            let ts = (ts as i128 - shift).max(0) as u128;
            if let Some(t) = ts.checked_sub(start_unix_ns) {
                out.push((t as u64, id.unwrap_or_else(|| file_id.clone()), term));
            }
        });
    }
    out.sort();
    out
}
