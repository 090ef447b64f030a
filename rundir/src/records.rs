//! The records the run's files hold besides the history's client events
//! (whose contract is `docs/history-format.md`): the nemesis events of the
//! history, the schedule file, and the nodes' own log lines that the
//! reports read. Writers build these types and readers parse them, so a
//! field cannot be written under one name and read under another;
//! `docs/run-files.md` names every field, and a test keeps it so.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether a nemesis event starts or ends a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The fault starts.
    Start,
    /// The fault ends.
    Stop,
}

/// The history's names of a fault's start and end events, by family
/// (`loss` → `start-loss` / `stop-loss`), and the special pairs.
pub fn event_names(family: &str) -> (String, String) {
    match family {
        "pause" => ("pause".into(), "resume".into()),
        "crash" | "membership" | "combined" => ("kill".into(), "restart".into()),
        f => (format!("start-{f}"), format!("stop-{f}")),
    }
}

/// The events that pair without a `start-`/`stop-` prefix.
const PAIRS: &[(&str, &str)] = &[
    ("pause", "resume"),
    ("kill", "restart"),
    ("remove-node", "add-node"),
];

/// Which phase a nemesis event's `f` is, if it is a fault's start or end.
pub fn phase(f: &str) -> Option<Phase> {
    if f.starts_with("start-") || PAIRS.iter().any(|(s, _)| *s == f) {
        Some(Phase::Start)
    } else if f.starts_with("stop-") || PAIRS.iter().any(|(_, e)| *e == f) {
        Some(Phase::Stop)
    } else {
        None
    }
}

/// The `value` of a nemesis event in the history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NemesisRecord {
    /// The fault's name (`partition-leader`, `loss:0.2@all`, ...).
    pub fault: String,
    /// The nodes it hit.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// What the fault did, by kind (the groups of a partition, the node a
    /// membership change added, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// Why starting or healing it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `schedule.json`: the schedule's settings, what was planned, what ran,
/// and when the run started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScheduleRecord<C, P, E> {
    /// The schedule's settings.
    pub config: C,
    /// The fault windows planned.
    pub planned: P,
    /// The faults as they ran.
    pub executed: E,
    /// The run's start, ns since the Unix epoch, as a string (JSON readers
    /// may not keep 64-bit integers exact).
    pub started_unix_ns: String,
}

/// `links.json`: one record per directed link.
/// A snapshot of a link's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Messages delivered (duplicates count twice).
    pub passed: u64,
    /// Messages dropped (loss, partition, full queue, receiver down).
    pub dropped: u64,
    /// Messages duplicated.
    pub duplicated: u64,
    /// Messages delivered later than they arrived (delay, jitter, reorder).
    pub delayed: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Messages the link's message filter dropped or shortened.
    #[serde(default)]
    pub filtered: u64,
    /// Bytes dropped (the kernel backend counts them; the proxy does not).
    #[serde(default)]
    pub dropped_bytes: u64,
    /// What the counts count: messages (the proxy) or packets (the kernel).
    #[serde(default)]
    pub counted: Counted,
}

/// The unit of a link's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Counted {
    /// Whole frames of the node's protocol (the proxy).
    #[default]
    Messages,
    /// IP packets (the kernel backend's nftables counters).
    Packets,
}

/// A node's structured log line (faultline's node writes JSON lines with
/// tracing's layout): what the reports read of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// When, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The record's target: [`ROLE`], [`SNAPSHOT`], [`LOST_ENTRIES`],
    /// [`PANIC`], or another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Its fields.
    #[serde(default)]
    pub fields: LogFields,
}

/// The fields of a [`LogLine`] that the reports read (each present on some
/// targets only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFields {
    /// The line's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// [`SNAPSHOT`]: what happened, [`SNAPSHOT_TAKEN`] or
    /// [`SNAPSHOT_INSTALLED`] (readers count by this, never by the
    /// message's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// [`ROLE`]: the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// [`ROLE`]: its new role (`Leader`, `Follower`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// [`ROLE`]: the term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// [`SNAPSHOT`]: the last index the snapshot covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// [`LOST_ENTRIES`]: the node that lost them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follower: Option<String>,
    /// [`LOST_ENTRIES`]: the first index lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// [`LOST_ENTRIES`]: the last index lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
    /// [`PANIC`]: where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The target of a node's role changes.
pub const ROLE: &str = "faultline::role";
/// The target of a node's snapshots taken and installed.
pub const SNAPSHOT: &str = "faultline::snapshot";
/// [`SNAPSHOT`]'s `event` when the node took a snapshot of its own state.
pub const SNAPSHOT_TAKEN: &str = "taken";
/// [`SNAPSHOT`]'s `event` when the node installed a leader's snapshot.
pub const SNAPSHOT_INSTALLED: &str = "installed";
/// The target of a node's report that it lost acknowledged entries.
pub const LOST_ENTRIES: &str = "faultline::lost_entries";
/// The target of a node's panic.
pub const PANIC: &str = "faultline::panic";

impl LogLine {
    /// The line parsed, if it is a JSON object.
    pub fn parse(line: &str) -> Option<LogLine> {
        serde_json::from_str(line).ok()
    }

    /// Whether its target is `t`.
    pub fn is(&self, t: &str) -> bool {
        self.target.as_deref() == Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_name_has_its_phase() {
        for family in [
            "partition",
            "loss",
            "delay",
            "duplicate",
            "reorder",
            "pause",
            "crash",
            "membership",
        ] {
            let (s, e) = event_names(family);
            assert_eq!(phase(&s), Some(Phase::Start), "{s}");
            assert_eq!(phase(&e), Some(Phase::Stop), "{e}");
        }
        assert_eq!(phase("remove-node"), Some(Phase::Start));
        assert_eq!(phase("add-node"), Some(Phase::Stop));
        assert_eq!(phase("start-membership-split"), Some(Phase::Start));
        assert_eq!(phase("schedule"), None);
    }

    #[test]
    fn a_campaign_is_live_only_while_its_own_controller_runs() {
        let me = std::process::id();
        let start = process_start(me).expect("this process runs");
        let mut p = ProgressRecord {
            state: CampaignState::Running,
            pid: me,
            pid_start: Some(start),
            total: 1,
            done: 0,
            started_unix_ms: 0,
            updated_unix_ms: 0,
            done_planned_s: 0.0,
            remaining_planned_s: 0.0,
            last_run: None,
            last_line: None,
        };
        assert!(p.live());
        // The same pid, reused by another process after the controller died.
        p.pid_start = Some(start + 1);
        assert!(!p.live());
        p.pid_start = None;
        assert!(p.live(), "an older record: the pid alone decides");
        p.state = CampaignState::Finished;
        assert!(!p.live());
    }
}

/// `progress.json`: how far a campaign has come, rewritten (whole, by a
/// rename) when it starts, after each run and when it ends, so a reader
/// never sees half a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    /// Where the campaign stands.
    pub state: CampaignState,
    /// The controller's process id (a `running` campaign whose controller
    /// is gone was killed).
    pub pid: u32,
    /// When that process started (clock ticks after boot, field 22 of
    /// `/proc/PID/stat`): a pid reused by another process after the
    /// controller died does not make the campaign look alive. Absent in
    /// records from before it was kept (then the pid alone decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// Runs in all.
    pub total: usize,
    /// Runs finished.
    pub done: usize,
    /// When the campaign started, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// When this record was written, ms since the Unix epoch.
    pub updated_unix_ms: u64,
    /// The planned seconds of the finished runs (their time limits and a
    /// start-up allowance).
    pub done_planned_s: f64,
    /// The planned seconds of the runs still to come.
    pub remaining_planned_s: f64,
    /// The last finished run's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// The last finished run's line, as the terminal showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_line: Option<String>,
}

/// Where a campaign stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignState {
    /// Its controller is running it.
    Running,
    /// Every run ended.
    Finished,
    /// Ctrl-C or SIGTERM stopped it.
    Interrupted,
}

impl ProgressRecord {
    /// Write it into `dir`'s `progress.json` whole: to a temporary file,
    /// then renamed over the old one.
    pub fn write(&self, dir: &crate::CampaignDir) -> std::io::Result<()> {
        crate::placement::write_whole(&dir.progress(), self)
    }

    /// `dir`'s `progress.json`; none when the campaign has none (one from
    /// before the file existed).
    pub fn read(dir: &crate::CampaignDir) -> Result<Option<ProgressRecord>, String> {
        read_record(&dir.progress())
    }

    /// Whether the campaign is under way now: its record says running and
    /// its controller, on this machine, is alive.
    pub fn live(&self) -> bool {
        if self.state != CampaignState::Running {
            return false;
        }
        match (process_start(self.pid), self.pid_start) {
            (None, _) => false,
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
        }
    }

    /// Seconds still to go, estimated from the runs' planned durations
    /// scaled by how long the finished ones really took.
    pub fn seconds_left(&self) -> f64 {
        let elapsed = self.updated_unix_ms.saturating_sub(self.started_unix_ms) as f64 / 1e3;
        if self.done == 0 || self.done_planned_s <= 0.0 {
            self.remaining_planned_s
        } else {
            self.remaining_planned_s * (elapsed / self.done_planned_s)
        }
    }
}

/// A JSON record from `path`: none when the file is not there, an error
/// naming the file when it cannot be read or parsed, is not a regular
/// file or is over its kind's size ([`crate::read::record_limit`]).
pub fn read_record<T: for<'de> Deserialize<'de>>(
    path: &std::path::Path,
) -> Result<Option<T>, String> {
    match crate::read::read_text(path)? {
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("reading {}: {e}", path.display())),
        None => Ok(None),
    }
}

/// When process `pid` started, in clock ticks after boot (field 22 of
/// `/proc/PID/stat`); none when it is not running (a zombie counts as not
/// running).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (the state).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// Now, ms since the Unix epoch (the unit of [`ProgressRecord`]'s times).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a run on hosts stores about them (`hosts.json` in the run
/// directory), for the run page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostsRecord {
    /// The run's id on the hosts (its directory, marker and nft table).
    pub run: String,
    /// The inventory file.
    pub inventory: String,
    /// One entry per member.
    pub hosts: Vec<HostEntry>,
    /// Seconds to set up (connect, check markers, copy the node, clocks).
    pub setup_s: f64,
    /// Seconds to end the run on the hosts (kill what is left, copy the
    /// members' files back, remove the run's directory and marker).
    #[serde(default)]
    pub teardown_s: Option<f64>,
}

/// One member's host, as the run page shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostEntry {
    /// The member's id.
    pub node: String,
    /// The host's name in the inventory.
    pub host: String,
    /// Its ssh destination.
    pub ssh: String,
    /// The address its member listened on.
    pub address: String,
    /// Its clock minus the control node's, ms.
    pub clock_offset_ms: Option<f64>,
    /// The uncertainty of that (half the round trip), ms.
    pub clock_uncertainty_ms: Option<f64>,
    /// Whether the node was copied at this run's setup.
    pub copied: bool,
    /// Seconds this host's setup took (marker, copy, clock).
    #[serde(default)]
    pub setup_s: f64,
    /// Seconds this host's teardown took.
    #[serde(default)]
    pub teardown_s: Option<f64>,
}

/// What one disk fault did to one member.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskEvent {
    /// The fault, as `--nemesis` names it.
    pub fault: String,
    /// The member.
    pub node: String,
    /// Bytes of writes a power loss dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_bytes: Option<u64>,
    /// Names a power loss brought back or took away.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names_undone: Vec<String>,
    /// Why the power loss took what it took: per name undone, the calls
    /// that would have made it durable and the one missing; per file whose
    /// data was undone, the range, its last write and its last fsync
    /// (bounded; times in seconds since the layer was mounted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
    /// A torn write: the file, and how many of its pending bytes were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn: Option<(String, u64)>,
    /// Damage: the file, the byte flipped or the new length, the old
    /// length, and `bitflip` or `truncate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupted: Option<Damaged>,
    /// Errors the layer returned in the window (ENOSPC, EIO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<u64>,
    /// The member did not come back: why (the last lines of its log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// One damaged file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Damaged {
    /// The file, under the member's data directory.
    pub file: String,
    /// The byte whose bit was flipped, or the length it was cut to.
    pub offset: u64,
    /// Its length before.
    pub len: u64,
    /// `bitflip` or `truncate`.
    pub how: String,
}

/// Per member, at the end of the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskCounters {
    /// Bytes written through the layer.
    pub bytes_written: u64,
    /// Successful fsyncs (files and directories).
    pub fsyncs: u64,
    /// Errors injected (ENOSPC, EIO) and corruptions.
    pub injected: u64,
    /// Bytes written and not durable at the end.
    pub not_durable: u64,
    /// What the unmount could not leave in the member's data directory
    /// (names it could not link back; their data stays in the backing
    /// directory), in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_behind: Option<String>,
}

/// `disk.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskRecord {
    /// What the layer took to be durable ([`crate::spec::DiskModel`]).
    #[serde(default)]
    pub model: crate::spec::DiskModel,
    /// Per member.
    pub nodes: std::collections::BTreeMap<String, DiskCounters>,
    /// What every disk fault did, in order.
    pub events: Vec<DiskEvent>,
}
