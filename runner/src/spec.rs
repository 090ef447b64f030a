//! What defines one run — [`RunSpec`], stored as `spec.json` — with the one
//! set of default values that `faultline run`, campaign files and presets
//! all use ([`defaults`]), its validation, and its typed conversion into
//! the node's settings and the workload's configuration.

use std::time::Duration;

use faultline_nemesis::fault::{parse_list, Fault};
use faultline_nemesis::net::{hosts_refusal, kernel_refusal, NetBackend};
use faultline_nemesis::schedule::{plan, ScheduleConfig};
#[cfg(test)]
use faultline_rundir::spec::MillisRange;
use faultline_rundir::spec::Workload;
use faultline_sut::etcd::ReadMode;
use faultline_sut::{TargetKind, TargetKindExt};
use faultline_workloads::append::TxnShape;
use faultline_workloads::lock::LockShape;
use faultline_workloads::register::{KeyDist, RegisterConfig};
use serde::{Deserialize, Serialize};

pub use faultline_rundir::spec::{defaults, Effective, RunSpec};

/// A run spec after its one validation: everything a run consumes,
/// typed, so that nothing after [`RunPlan::new`] reads the spec, parses a
/// string or validates again. It is what a campaign hands a run in a child
/// process or on a worker, as it is (JSON on the child's stdin).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunPlan {
    /// The spec as `spec.json` records it (the run adds the target's
    /// version); read by nothing else.
    pub stored: RunSpec,
    /// Members at the start.
    pub nodes: usize,
    /// The run's seed.
    pub seed: u64,
    /// The system under test.
    pub target: TargetKind,
    /// How etcd serves reads.
    pub read_mode: ReadMode,
    /// For the maelstrom target: the program and its arguments.
    pub program: Option<(String, Vec<String>)>,
    /// The inventory the members run on (`--hosts`).
    pub hosts: Option<std::path::PathBuf>,
    /// The main phase's length.
    pub time_limit: Duration,
    /// The faults, parsed.
    pub faults: Vec<Fault>,
    /// Their schedule's settings.
    pub schedule: ScheduleConfig,
    /// The flags every member gets (for faultline's node, with the run's
    /// cluster id).
    pub member_args: Vec<String>,
    /// The cluster id in those flags, which the run's clients name too
    /// (faultline's node only).
    pub cluster_id: Option<String>,
    /// What the members really use (also in `stored`).
    pub effective: Effective,
    /// The workload.
    pub register: RegisterConfig,
    /// The network backend.
    pub net: NetBackend,
    /// What the disk layer takes to be durable (runs with disk faults).
    pub disk_model: faultline_rundir::spec::DiskModel,
}

impl RunPlan {
    /// Validate `spec` once and turn it into what a run consumes.
    pub fn new(spec: &RunSpec) -> anyhow::Result<RunPlan> {
        // One cluster id for the whole run: in the members' flags and in
        // every client's greeting, so a client of another run (a stale
        // controller's) is turned away.
        // (A target without cluster ids ignores it.)
        let cluster_id = Some(faultline_node::settings::fresh_cluster_id());
        let settings = faultline_sut::settings::TargetSettings {
            cluster_id: cluster_id.as_deref(),
            ..target_settings(spec)
        };
        let (faults, effective) = validate_with(spec, &settings)?;
        let member_args = spec
            .target
            .member_args(&settings)
            .map_err(anyhow::Error::msg)?;
        Ok(RunPlan {
            stored: RunSpec {
                effective: Some(effective.clone()),
                ..spec.clone()
            },
            nodes: spec.nodes,
            seed: spec.seed,
            target: spec.target,
            read_mode: spec.read_mode,
            program: spec.bin.clone().map(|b| (b, spec.args.clone())),
            hosts: spec.hosts.as_ref().map(std::path::PathBuf::from),
            time_limit: Duration::from_secs_f64(spec.time_limit_s),
            schedule: schedule(spec, faults.clone()),
            faults,
            member_args,
            cluster_id,
            effective,
            register: register_config(spec),
            net: spec.net,
            disk_model: spec.disk_model,
        })
    }

    /// On the kernel backend: refuse the faults this machine's kernel
    /// cannot make (netem), before anything starts. `netem` says whether
    /// the kernel has it.
    pub fn check_kernel_faults(&self, netem: bool) -> anyhow::Result<()> {
        if self.net != NetBackend::Kernel {
            return Ok(());
        }
        match self.faults.iter().find_map(|f| kernel_refusal(f, netem)) {
            Some(why) => anyhow::bail!("{why}"),
            None => Ok(()),
        }
    }
}

/// The longest a run's time limit, fault interval or client time-out may be:
/// a week.
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Check a number of seconds from a flag or a campaign field: finite,
/// positive and at most [`MAX_SECONDS`].
fn seconds(flag: &str, v: f64) -> anyhow::Result<()> {
    let shown = if v.is_finite() && v.abs() >= 1e9 {
        format!("{v:e}")
    } else {
        v.to_string()
    };
    anyhow::ensure!(
        v.is_finite() && v > 0.0 && v <= MAX_SECONDS,
        "{flag} {shown}: give a number of seconds above 0 and at most {MAX_SECONDS:.0}"
    );
    Ok(())
}

/// Check every setting; returns the parsed faults.
#[cfg(test)]
fn validate(spec: &RunSpec) -> anyhow::Result<Vec<Fault>> {
    validate_with(spec, &target_settings(spec)).map(|(faults, _)| faults)
}

/// Check every setting, the target's as `settings` says; returns the
/// parsed faults and what the members will really use.
fn validate_with(
    spec: &RunSpec,
    settings: &faultline_sut::settings::TargetSettings<'_>,
) -> anyhow::Result<(Vec<Fault>, Effective)> {
    anyhow::ensure!(
        (1..=9).contains(&spec.nodes),
        "--nodes must be between 1 and 9 (got {})",
        spec.nodes
    );
    if spec.workload != Workload::Append {
        anyhow::ensure!(
            spec.txn_len.is_none() && spec.txn_keys.is_none(),
            "txn_len and txn_keys are for the append workload (--workload append)"
        );
    }
    if spec.workload != Workload::Lock {
        anyhow::ensure!(
            spec.lock_ttl_ms.is_none() && !spec.lock_fenced && spec.lock_pauses == 0.0,
            "lock_ttl, fenced and lock_pauses are for the lock workload (--workload lock)"
        );
    }
    if let Some(n) = spec.snapshot_entries {
        anyhow::ensure!(
            n <= faultline_node::cli::MAX_SNAPSHOT_ENTRIES,
            "snapshot_entries {n} is above {}",
            faultline_node::cli::MAX_SNAPSHOT_ENTRIES
        );
    }
    if let Some(t) = spec.tick_ms {
        anyhow::ensure!(
            (1..=faultline_node::cli::MAX_TICK_MS).contains(&t),
            "--tick must be between 1 and {} ms (got {t})",
            faultline_node::cli::MAX_TICK_MS
        );
    }
    seconds("--time-limit", spec.time_limit_s)?;
    seconds("--fault-interval", spec.fault_interval_s)?;
    anyhow::ensure!(
        spec.op_timeout_ms as f64 <= MAX_SECONDS * 1000.0,
        "--op-timeout {} ms is longer than a week",
        spec.op_timeout_ms
    );
    register_config(spec)
        .validate()
        .map_err(|e| anyhow::anyhow!(e))?;
    let faults =
        parse_list(&spec.nemesis, spec.nodes).map_err(|e| anyhow::anyhow!("--nemesis: {e}"))?;
    let effective = validate_target(spec, settings, &faults)?;
    if spec.disk_model != faultline_rundir::spec::DiskModel::Posix
        && !faults.iter().any(Fault::needs_disk_layer)
    {
        anyhow::bail!(
            "disk_model {} changes only what a disk fault's power loss undoes: give a disk fault (lose-unsynced, torn-write, …) or leave the model out",
            spec.disk_model
        );
    }
    if faults.iter().any(Fault::needs_disk_layer) && faults.iter().any(|f| f.spares_needed() > 0) {
        anyhow::bail!(
            "membership faults start fresh members on wiped data directories, which the disk layer of disk faults is mounted over: run them in separate runs"
        );
    }
    match (&spec.hosts, spec.net) {
        (Some(_), NetBackend::Hosts) => {
            if let Some(why) = faults.iter().find_map(hosts_refusal) {
                anyhow::bail!("{why}");
            }
        }
        (Some(_), other) => anyhow::bail!(
            "--hosts runs the members on the hosts, over their own network: it does not go with --net {other}"
        ),
        (None, NetBackend::Hosts) => {
            anyhow::bail!("the hosts network needs an inventory: --hosts FILE (docs/hosts.md)")
        }
        (None, _) => {}
    }
    if spec.net == NetBackend::Kernel {
        // Netem is probed where the run starts (`check_kernel_faults`);
        // what no kernel can do is refused here.
        if let Some(why) = faults.iter().find_map(|f| kernel_refusal(f, true)) {
            anyhow::bail!("{why}");
        }
    }
    let time_limit = Duration::from_secs_f64(spec.time_limit_s);
    if !faults.is_empty() && plan(&schedule(spec, faults.clone()), time_limit).is_empty() {
        anyhow::bail!(
            "time limit {} s leaves no room for one {} s fault window (each fault follows a quiet period of the same length): lengthen --time-limit or shorten --fault-interval",
            spec.time_limit_s,
            spec.fault_interval_s
        );
    }
    Ok((faults, effective))
}

/// The fault schedule's settings for these faults.
fn schedule(spec: &RunSpec, faults: Vec<Fault>) -> ScheduleConfig {
    ScheduleConfig {
        faults,
        fault_secs: spec.fault_interval_s,
        quiet_secs: spec.fault_interval_s,
        random: spec.random_schedule,
        seed: spec.seed,
    }
}

/// What the nodes will really use (the timeouts in whole ticks).
#[cfg(test)]
fn effective(spec: &RunSpec) -> anyhow::Result<Effective> {
    spec.target
        .effective(&target_settings(spec))
        .map_err(anyhow::Error::msg)
}

/// The flags every member of this run gets.
#[cfg(test)]
fn member_args(spec: &RunSpec) -> anyhow::Result<Vec<String>> {
    spec.target
        .member_args(&target_settings(spec))
        .map_err(anyhow::Error::msg)
}

/// The setting as the target reads it.
fn target_settings(spec: &RunSpec) -> faultline_sut::settings::TargetSettings<'_> {
    faultline_sut::settings::TargetSettings {
        setting: &spec.setting,
        election_timeout: spec.election_timeout,
        heartbeat_ms: spec.heartbeat_ms,
        pre_vote: spec.pre_vote,
        check_quorum: spec.check_quorum,
        snapshot_entries: spec.snapshot_entries,
        tick_ms: spec.tick_ms,
        max_append_entries: spec.max_append_entries,
        unsafe_bugs: &spec.unsafe_bug,
        seed: spec.seed,
        op_timeout_ms: spec.op_timeout_ms,
        args: &spec.args,
        cluster_id: None,
        read_mode: spec.read_mode,
    }
}

/// What this run asks of its target — settings, backend, faults —
/// against what the target can do ([`faultline_sut::Capabilities`]);
/// each refusal names the capability missing.
fn validate_target(
    spec: &RunSpec,
    settings: &faultline_sut::settings::TargetSettings<'_>,
    faults: &[Fault],
) -> anyhow::Result<Effective> {
    use faultline_sut::Capability as C;
    let kind = spec.target;
    let caps = kind.capabilities();
    let s = crate::store::shown(&spec.setting);
    let need = |what: &str, c: C| -> anyhow::Result<()> {
        anyhow::ensure!(caps.has(c), "setting {s}: {}", kind.refuse(what, c));
        Ok(())
    };
    if spec.tick_ms.is_some() {
        need("tick", C::NodeKnobs)?;
    }
    if spec.max_append_entries.is_some() {
        need("max_append_entries", C::NodeKnobs)?;
    }
    if !spec.unsafe_bug.is_empty() {
        need("unsafe_bug", C::NodeKnobs)?;
    }
    if spec.pre_vote {
        need("pre_vote", C::PreVote)?;
    }
    if spec.check_quorum {
        need("check_quorum", C::CheckQuorum)?;
    }
    if spec.snapshot_entries.is_some() {
        need("snapshot_entries", C::SnapshotInterval)?;
    }
    if spec.read_mode != ReadMode::Linearizable {
        need(&format!("read_mode = \"{}\"", spec.read_mode), C::ReadModes)?;
    }
    if !spec.args.is_empty() {
        need("args", C::Program)?;
    }
    if spec.bin.is_some() {
        need("bin", C::NamedProgram)?;
    }
    if caps.program {
        check_program(spec)?;
    }
    if spec.net == NetBackend::Kernel {
        need("--net kernel", C::SealedNamespace)?;
    }
    if spec.workload == Workload::Lock {
        need("--workload lock", C::Locks)?;
    }
    if spec.workload == Workload::Append {
        need("--workload append", C::ListAppend)?;
        if let Some(n) = spec.txn_keys.filter(|n| *n > 1) {
            need(&format!("--txn-keys {n}"), C::Transactions)?;
        }
    }
    if spec.net == NetBackend::Hosts {
        need("--hosts", C::OnHosts)?;
    }
    let effective = kind
        .effective(settings)
        .map_err(|e| anyhow::anyhow!("setting {s}: {e}"))?;
    faults.iter().try_for_each(|f| {
        fault_needs(spec, f)
            .into_iter()
            .try_for_each(|c| need(&f.to_string(), c))
    })?;
    Ok(effective)
}

/// The capabilities fault `f` needs of the target on this run's backend.
fn fault_needs(spec: &RunSpec, f: &Fault) -> Vec<faultline_sut::Capability> {
    use faultline_nemesis::fault::{Class, Shape};
    use faultline_sut::Capability as C;
    let links = (spec.net == NetBackend::Proxy).then_some(C::BehindLinkProxy);
    match f.class() {
        Class::Combined { parts, .. } => parts.iter().flat_map(|p| fault_needs(spec, p)).collect(),
        Class::Membership { .. } => vec![C::MembershipChanges],
        Class::Process(_) if spec.allow_amnesia => Vec::new(),
        Class::Process(p) => match p {
            faultline_nemesis::fault::Proc::Pause(_) => Vec::new(),
            faultline_nemesis::fault::Proc::Crash(_)
            | faultline_nemesis::fault::Proc::Restart { .. } => vec![C::Durable],
        },
        Class::Figure8 => links.into_iter().chain([C::ScriptedScenarios]).collect(),
        Class::Partition(Shape::Lag(_)) => links.into_iter().chain([C::ReportsSnapshots]).collect(),
        Class::Partition(_) | Class::Message(..) => links.into_iter().collect(),
        // The layer sits under any program's data directory; a target
        // that keeps nothing there has nothing for it to break.
        Class::Disk(..) => vec![C::Durable],
    }
}

/// For a target that is a program of the user's: one to run.
fn check_program(spec: &RunSpec) -> anyhow::Result<()> {
    let s = crate::store::shown(&spec.setting);
    let Some(bin) = &spec.bin else {
        anyhow::bail!(
            "setting {s}: the {} target needs a program: --bin PATH (or bin = \"PATH\")",
            spec.target
        );
    };
    let shown_bin = crate::store::shown(bin);
    let meta = std::fs::metadata(bin)
        .map_err(|e| anyhow::anyhow!("setting {s}: --bin {shown_bin}: {e}"))?;
    use std::os::unix::fs::PermissionsExt;
    anyhow::ensure!(
        meta.is_file() && meta.permissions().mode() & 0o111 != 0,
        "setting {s}: --bin {shown_bin} is not an executable file"
    );
    Ok(())
}

/// The workload's configuration for this run.
fn register_config(spec: &RunSpec) -> RegisterConfig {
    RegisterConfig {
        keys: spec.keys,
        concurrency: spec.concurrency,
        rate: spec.rate,
        key_dist: spec.key_dist,
        mix: (spec.mix[0], spec.mix[1], spec.mix[2]),
        random_node: spec.random_node,
        timeout: Duration::from_millis(spec.op_timeout_ms),
        seed: spec.seed,
        txn: (spec.workload == Workload::Append).then(|| TxnShape {
            max_len: spec.txn_len.unwrap_or(defaults::TXN_LEN),
            max_keys: spec.txn_keys.unwrap_or(defaults::TXN_KEYS),
        }),
        lock: (spec.workload == Workload::Lock).then(|| LockShape {
            ttl: Duration::from_millis(spec.lock_ttl_ms.unwrap_or(defaults::LOCK_TTL_MS)),
            fenced: spec.lock_fenced,
            pauses: spec.lock_pauses,
        }),
    }
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

/// Parse a key distribution: `uniform` or `zipf`.
pub fn parse_key_dist(s: &str) -> Result<KeyDist, String> {
    match s {
        "uniform" => Ok(KeyDist::Uniform),
        "zipf" | "zipfian" => Ok(KeyDist::Zipf),
        other => Err(format!("'{other}' is not uniform or zipf")),
    }
}

#[cfg(test)]
mod tests;
