//! What a run's setting asks of its target, and what each target makes of
//! it: the flags its members get, what it really runs with, and whether it
//! can run with that at all. The runner hands a [`TargetSettings`] over and
//! never asks which target it is.

use faultline_node::bugs::UnsafeBug;
use faultline_node::settings::NodeSettings;
use faultline_rundir::spec::MillisRange;

use crate::{etcd, TargetKind};

/// A setting as the user wrote it (after the target's defaults were filled in).
#[derive(Clone, Copy, Debug)]
pub struct TargetSettings<'a> {
    /// The setting's name, for messages.
    pub setting: &'a str,
    /// Election timeout range, ms.
    pub election_timeout: MillisRange,
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Pre-vote on.
    pub pre_vote: bool,
    /// Check-quorum on.
    pub check_quorum: bool,
    /// Applied entries between snapshots.
    pub snapshot_entries: Option<u64>,
    /// The node's clock tick, ms.
    pub tick_ms: Option<u64>,
    /// Most entries per AppendEntries.
    pub max_append_entries: Option<u64>,
    /// Known-bug variants, by name.
    pub unsafe_bugs: &'a [String],
    /// The run's seed.
    pub seed: u64,
    /// Client timeout per operation, ms (the node's own request timeout).
    pub op_timeout_ms: u64,
    /// A program's arguments.
    pub args: &'a [String],
    /// The run's cluster id (faultline's node: its peers and clients must
    /// name it); none: a fresh one.
    pub cluster_id: Option<&'a str>,
    /// How reads are served.
    pub read_mode: faultline_rundir::spec::ReadMode,
}

pub use faultline_rundir::spec::Effective;

/// faultline's node's settings for `s`.
pub fn node_settings(s: &TargetSettings<'_>) -> Result<NodeSettings, String> {
    let election_timeout = s.election_timeout;
    let unsafe_bugs = s
        .unsafe_bugs
        .iter()
        .map(|b| b.parse::<UnsafeBug>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--unsafe-bug: {e}"))?;
    Ok(NodeSettings {
        election_timeout,
        heartbeat_ms: s.heartbeat_ms,
        request_timeout_ms: s.op_timeout_ms,
        max_append_entries: s.max_append_entries,
        snapshot_entries: s.snapshot_entries,
        pre_vote: s.pre_vote,
        check_quorum: s.check_quorum,
        seed: Some(s.seed),
        unsafe_bugs,
        cluster_id: Some(
            s.cluster_id
                .map_or_else(faultline_node::settings::fresh_cluster_id, str::to_string),
        ),
        tick_ms: s
            .tick_ms
            .unwrap_or(faultline_rundir::spec::defaults::TICK_MS),
        ..NodeSettings::default()
    })
}

fn node_effective(s: &TargetSettings<'_>) -> Result<Effective, String> {
    let settings = node_settings(s)?;
    let raft = settings
        .raft_config()
        .map_err(|e| format!("setting '{}': {e}", s.setting))?;
    let t = settings.tick_ms;
    Ok(Effective {
        passed: None,
        tick_ms: t,
        election_timeout: format!(
            "{}..{}",
            raft.election_timeout_min_ticks * t,
            raft.election_timeout_max_ticks * t
        ),
        heartbeat_ms: raft.heartbeat_ticks * t,
    })
}

/// The flags every member of `kind` gets for `s`.
pub(crate) fn member_args(kind: TargetKind, s: &TargetSettings<'_>) -> Result<Vec<String>, String> {
    match kind {
        TargetKind::Faultline => Ok(node_settings(s)?.to_args()),
        TargetKind::Etcd => etcd::member_args(
            s.election_timeout,
            s.heartbeat_ms,
            s.pre_vote,
            s.snapshot_entries,
        ),
        // Its settings are its arguments, which the target passes.
        TargetKind::Maelstrom => Ok(Vec::new()),
        // Its Raft timings are fixed; everything else is in its command.
        TargetKind::Nats => Ok(Vec::new()),
    }
}

/// What the members of `kind` will really use with `s`.
pub(crate) fn effective(kind: TargetKind, s: &TargetSettings<'_>) -> Result<Effective, String> {
    use faultline_rundir::spec::ReadMode;
    let reads = match (kind, s.read_mode) {
        (_, ReadMode::Linearizable)
        | (TargetKind::Etcd, ReadMode::Serializable)
        | (TargetKind::Nats, ReadMode::Direct) => Ok(()),
        (TargetKind::Etcd, m) => Err(format!(
            "read_mode = \"{m}\" is not supported on etcd: its reads are linearizable or serializable"
        )),
        (TargetKind::Nats, m) => Err(format!(
            "read_mode = \"{m}\" is not supported on nats: its reads are linearizable (by the stream's leader) or direct (by any replica)"
        )),
        (_, m) => Err(format!("read_mode = \"{m}\" is not supported on {kind}")),
    };
    reads.map_err(|e| format!("setting '{}': {e}", s.setting))?;
    match kind {
        TargetKind::Faultline => node_effective(s),
        TargetKind::Etcd => {
            let (t, h) = etcd::timeouts(s.election_timeout, s.heartbeat_ms)?;
            Ok(Effective {
                    passed: Some(format!(
                        "{} (etcd draws each election timeout from [{t}, {}) ms; check-quorum is always on in etcd)",
                        member_args(kind, s)?.join(" "),
                        2 * t
                    )),
                    tick_ms: h,
                    election_timeout: format!("{t}..{}", 2 * t),
                    heartbeat_ms: h,
                })
        }
        TargetKind::Maelstrom => {
            let args: Vec<String> = s
                .args
                .iter()
                .map(|a| faultline_rundir::quote::quoted(a))
                .collect();
            Ok(Effective {
                passed: Some(format!(
                    "the program's own settings: {}",
                    if args.is_empty() {
                        "(no arguments)".to_string()
                    } else {
                        args.join(" ")
                    }
                )),
                tick_ms: 0,
                election_timeout: "(the program's own)".into(),
                heartbeat_ms: 0,
            })
        }
        TargetKind::Nats => {
            let (e, h) = crate::TargetKindExt::default_timeouts(kind);
            Ok(Effective {
                passed: Some(format!(
                    "nothing: nats-server's Raft timings are fixed in its code (elections after {}-{} s, a heartbeat every {} s)",
                    e.min / 1000,
                    e.max / 1000,
                    h / 1000
                )),
                tick_ms: h,
                election_timeout: e.to_string(),
                heartbeat_ms: h,
            })
        }
    }
}
