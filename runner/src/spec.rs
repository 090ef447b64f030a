//! What defines one run — [`RunSpec`], stored as `spec.json` — with the one
//! set of default values that `faultline run`, campaign files and presets
//! all use ([`defaults`]), its validation, and its typed conversion into
//! the node's settings and the workload's configuration.

use std::time::Duration;

use faultline_nemesis::fault::{parse_list, Fault};
use faultline_nemesis::net::{hosts_refusal, kernel_refusal, NetBackend};
use faultline_nemesis::schedule::{plan, ScheduleConfig};
use faultline_node::settings::NodeSettings;
use faultline_sut::etcd::ReadMode;
use faultline_sut::TargetKind;
use faultline_workloads::register::{KeyDist, RegisterConfig};
use serde::{Deserialize, Serialize};

/// The default of every run setting. `faultline run`'s flags, a campaign's
/// `[run]` and `[[setting]]` tables and the presets all start from these.
pub mod defaults {
    /// Nodes.
    pub const NODES: usize = 3;
    /// Fault kinds.
    pub const NEMESIS: &str = "partition-leader";
    /// Seconds of each fault and of each quiet period.
    pub const FAULT_INTERVAL_S: f64 = 5.0;
    /// Seconds of workload and faults.
    pub const TIME_LIMIT_S: f64 = 30.0;
    /// The workload.
    pub const WORKLOAD: &str = "register";
    /// Keys.
    pub const KEYS: usize = 5;
    /// Client processes.
    pub const CONCURRENCY: usize = 10;
    /// Target operations per second, all clients together.
    pub const RATE: f64 = 100.0;
    /// Election timeout range, ms (faultline's node; each target has its
    /// own: [`faultline_sut::TargetKind::default_timeouts`]).
    pub const ELECTION_TIMEOUT: &str = "150..300";
    /// Heartbeat interval, ms (faultline's node).
    pub const HEARTBEAT_MS: u64 = 50;
    /// Client timeout per operation, ms.
    pub const OP_TIMEOUT_MS: u64 = 1000;
    /// Shares of read, write and cas operations.
    pub const MIX: [f64; 3] = [50.0, 30.0, 20.0];
    /// The same, as `faultline run --mix` writes it.
    pub const MIX_FLAG: &str = "50,30,20";
    /// A campaign's base seed (`faultline run` picks a random one instead).
    pub const SEED: u64 = 1;
}

/// Everything that defines a run; stored as `spec.json`, so a run can be
/// repeated from it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSpec {
    /// The timeout setting's name (campaigns compare these).
    pub setting: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Fault kinds, comma-separated (empty: no faults).
    pub nemesis: String,
    /// Length of each fault and of each quiet period, seconds.
    pub fault_interval_s: f64,
    /// Random fault durations and kinds from the seed, instead of alternating.
    pub random_schedule: bool,
    /// The workload (`register`).
    pub workload: String,
    /// Keys.
    pub keys: usize,
    /// Concurrent client processes.
    pub concurrency: usize,
    /// Target ops/s (0: as fast as possible).
    pub rate: f64,
    /// Length of the main phase, seconds.
    pub time_limit_s: f64,
    /// Election timeout range, ms.
    pub election_timeout: String,
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Pre-vote on.
    pub pre_vote: bool,
    /// Check-quorum on.
    pub check_quorum: bool,
    /// The run's seed: the fault schedule, link decisions and operations follow from it.
    pub seed: u64,
    /// Per-operation client timeout, ms.
    pub op_timeout_ms: u64,
    /// Shares of read, write and cas operations.
    #[serde(default = "default_mix")]
    pub mix: [f64; 3],
    /// How clients choose keys.
    #[serde(default)]
    pub key_dist: KeyDist,
    /// Clients pick a random node per operation instead of sticking to one.
    #[serde(default)]
    pub random_node: bool,
    /// UNSAFE known-bug variants the nodes run with (empty: the correct node).
    #[serde(default)]
    pub unsafe_bug: Vec<String>,
    /// Most entries per AppendEntries (the node's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_append_entries: Option<u64>,
    /// The nodes' clock tick, ms (the node's default, 5, when absent): the
    /// resolution of every timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_ms: Option<u64>,
    /// Applied entries between snapshots, 0 for none (the node's default,
    /// 10,000, when absent; for etcd, its --snapshot-count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_entries: Option<u64>,
    /// The network backend: the proxy on every link, or the kernel's
    /// network in per-node namespaces.
    #[serde(default)]
    pub net: NetBackend,
    /// The system under test: faultline's node or etcd.
    #[serde(default)]
    pub target: TargetKind,
    /// How etcd serves reads (`serializable`: from a member's local state,
    /// a positive control that the bench catches stale reads).
    #[serde(default)]
    pub read_mode: ReadMode,
    /// What the run is expected to show: linearizable, or — for a positive
    /// control — caught.
    #[serde(default)]
    pub expect: faultline_results::expect::Expect,
    /// For the maelstrom target: the node program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// For the maelstrom target: the program's arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Crash faults on a target whose restart forgets everything.
    #[serde(default)]
    pub allow_amnesia: bool,
    /// The inventory of hosts the members run on (`--hosts`; the network
    /// backend is then `hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
    /// The tested system's version (written by the run; ignored when read).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// What the nodes really use: the timeouts rounded up to whole ticks
    /// (written by the run; ignored when read).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub effective: Option<Effective>,
}

pub use faultline_sut::settings::Effective;

/// A run spec after its one validation: the typed values a run consumes,
/// so that nothing after [`RunSpec::plan`] parses the spec's strings or
/// validates it again.
#[derive(Clone, Debug)]
pub struct RunPlan {
    /// The faults, parsed.
    pub faults: Vec<Fault>,
    /// Their schedule's settings.
    pub schedule: ScheduleConfig,
    /// The flags every member gets (for faultline's node, with a fresh
    /// cluster id of its own).
    pub member_args: Vec<String>,
    /// The cluster id in those flags, which the run's clients name too
    /// (faultline's node only).
    pub cluster_id: Option<String>,
    /// What the members really use, for `spec.json`.
    pub effective: Effective,
    /// The workload.
    pub register: RegisterConfig,
    /// The network backend.
    pub net: NetBackend,
}

impl RunPlan {
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

fn default_mix() -> [f64; 3] {
    defaults::MIX
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            setting: "run".into(),
            nodes: defaults::NODES,
            nemesis: defaults::NEMESIS.into(),
            fault_interval_s: defaults::FAULT_INTERVAL_S,
            random_schedule: false,
            workload: defaults::WORKLOAD.into(),
            keys: defaults::KEYS,
            concurrency: defaults::CONCURRENCY,
            rate: defaults::RATE,
            time_limit_s: defaults::TIME_LIMIT_S,
            election_timeout: defaults::ELECTION_TIMEOUT.into(),
            heartbeat_ms: defaults::HEARTBEAT_MS,
            pre_vote: false,
            check_quorum: false,
            seed: defaults::SEED,
            op_timeout_ms: defaults::OP_TIMEOUT_MS,
            mix: defaults::MIX,
            key_dist: KeyDist::Uniform,
            random_node: false,
            unsafe_bug: Vec::new(),
            max_append_entries: None,
            snapshot_entries: None,
            tick_ms: None,
            net: NetBackend::Proxy,
            target: TargetKind::Faultline,
            read_mode: ReadMode::Linearizable,
            expect: Default::default(),
            bin: None,
            args: Vec::new(),
            allow_amnesia: false,
            hosts: None,
            target_version: None,
            effective: None,
        }
    }
}

impl RunSpec {
    /// Validate the spec once and turn it into what a run consumes.
    pub fn plan(&self) -> anyhow::Result<RunPlan> {
        let faults = self.validate()?;
        // One cluster id for the whole run: in the members' flags and in
        // every client's greeting, so a client of another run (a stale
        // controller's) is turned away.
        let cluster_id =
            (self.target == TargetKind::Faultline).then(faultline_node::settings::fresh_cluster_id);
        let member_args = self
            .target
            .member_args(&faultline_sut::settings::TargetSettings {
                cluster_id: cluster_id.as_deref(),
                ..self.target_settings()
            })
            .map_err(anyhow::Error::msg)?;
        Ok(RunPlan {
            schedule: self.schedule(faults.clone()),
            faults,
            member_args,
            cluster_id,
            effective: self.effective()?,
            register: self.register_config(),
            net: self.net,
        })
    }

    /// Check every setting; returns the parsed faults.
    pub fn validate(&self) -> anyhow::Result<Vec<Fault>> {
        anyhow::ensure!(
            (1..=9).contains(&self.nodes),
            "--nodes must be between 1 and 9 (got {})",
            self.nodes
        );
        anyhow::ensure!(
            self.workload == defaults::WORKLOAD,
            "unknown workload {} (known: register)",
            crate::store::shown(&self.workload)
        );
        if let Some(n) = self.snapshot_entries {
            anyhow::ensure!(
                n <= faultline_node::cli::MAX_SNAPSHOT_ENTRIES,
                "snapshot_entries {n} is above {}",
                faultline_node::cli::MAX_SNAPSHOT_ENTRIES
            );
        }
        if let Some(t) = self.tick_ms {
            anyhow::ensure!(
                (1..=faultline_node::cli::MAX_TICK_MS).contains(&t),
                "--tick must be between 1 and {} ms (got {t})",
                faultline_node::cli::MAX_TICK_MS
            );
        }
        seconds("--time-limit", self.time_limit_s)?;
        seconds("--fault-interval", self.fault_interval_s)?;
        anyhow::ensure!(
            self.op_timeout_ms as f64 <= MAX_SECONDS * 1000.0,
            "--op-timeout {} ms is longer than a week",
            self.op_timeout_ms
        );
        self.register_config()
            .validate()
            .map_err(|e| anyhow::anyhow!(e))?;
        let faults =
            parse_list(&self.nemesis, self.nodes).map_err(|e| anyhow::anyhow!("--nemesis: {e}"))?;
        self.validate_target(&faults)?;
        if faults.iter().any(Fault::needs_disk_layer)
            && faults.iter().any(|f| f.spares_needed() > 0)
        {
            anyhow::bail!(
                "membership faults start fresh members on wiped data directories, which the disk layer of disk faults is mounted over: run them in separate runs"
            );
        }
        match (&self.hosts, self.net) {
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
        if self.net == NetBackend::Kernel {
            // Netem is probed where the run starts (`check_kernel_faults`);
            // what no kernel can do is refused here.
            if let Some(why) = faults.iter().find_map(|f| kernel_refusal(f, true)) {
                anyhow::bail!("{why}");
            }
        }
        if !faults.is_empty() && plan(&self.schedule(faults.clone()), self.time_limit()).is_empty()
        {
            anyhow::bail!(
                "time limit {} s leaves no room for one {} s fault window (each fault follows a quiet period of the same length): lengthen --time-limit or shorten --fault-interval",
                self.time_limit_s,
                self.fault_interval_s
            );
        }
        Ok(faults)
    }

    /// The main phase's length.
    pub fn time_limit(&self) -> Duration {
        Duration::from_secs_f64(self.time_limit_s)
    }

    /// The fault schedule's settings for these faults.
    pub fn schedule(&self, faults: Vec<Fault>) -> ScheduleConfig {
        ScheduleConfig {
            faults,
            fault_secs: self.fault_interval_s,
            quiet_secs: self.fault_interval_s,
            random: self.random_schedule,
            seed: self.seed,
        }
    }

    /// What the nodes will really use (the timeouts in whole ticks).
    pub fn effective(&self) -> anyhow::Result<Effective> {
        self.target
            .effective(&self.target_settings())
            .map_err(anyhow::Error::msg)
    }

    /// The flags every member of this run gets.
    pub fn member_args(&self) -> anyhow::Result<Vec<String>> {
        self.target
            .member_args(&self.target_settings())
            .map_err(anyhow::Error::msg)
    }

    /// The setting as the target reads it.
    pub fn target_settings(&self) -> faultline_sut::settings::TargetSettings<'_> {
        faultline_sut::settings::TargetSettings {
            setting: &self.setting,
            election_timeout: &self.election_timeout,
            heartbeat_ms: self.heartbeat_ms,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            snapshot_entries: self.snapshot_entries,
            tick_ms: self.tick_ms,
            max_append_entries: self.max_append_entries,
            unsafe_bugs: &self.unsafe_bug,
            seed: self.seed,
            op_timeout_ms: self.op_timeout_ms,
            args: &self.args,
            cluster_id: None,
        }
    }

    /// What this run asks of its target — settings, backend, faults —
    /// against what the target can do ([`faultline_sut::Capabilities`]);
    /// each refusal names the capability missing.
    fn validate_target(&self, faults: &[Fault]) -> anyhow::Result<()> {
        use faultline_sut::Capability as C;
        let kind = self.target;
        let caps = kind.capabilities();
        let s = crate::store::shown(&self.setting);
        let need = |what: &str, c: C| -> anyhow::Result<()> {
            anyhow::ensure!(caps.has(c), "setting {s}: {}", kind.refuse(what, c));
            Ok(())
        };
        if self.tick_ms.is_some() {
            need("tick", C::NodeKnobs)?;
        }
        if self.max_append_entries.is_some() {
            need("max_append_entries", C::NodeKnobs)?;
        }
        if !self.unsafe_bug.is_empty() {
            need("unsafe_bug", C::NodeKnobs)?;
        }
        if self.pre_vote {
            need("pre_vote", C::PreVote)?;
        }
        if self.check_quorum {
            need("check_quorum", C::CheckQuorum)?;
        }
        if self.snapshot_entries.is_some() {
            need("snapshot_entries", C::SnapshotInterval)?;
        }
        if self.read_mode != ReadMode::Linearizable {
            need("read_mode = \"serializable\"", C::ReadModes)?;
        }
        if self.bin.is_some() || !self.args.is_empty() {
            need("bin and args", C::Program)?;
        }
        if caps.program {
            self.check_program()?;
        }
        if self.net == NetBackend::Kernel {
            need("--net kernel", C::SealedNamespace)?;
        }
        if self.net == NetBackend::Hosts {
            need("--hosts", C::OnHosts)?;
        }
        kind.check_settings(&self.target_settings())
            .map_err(|e| anyhow::anyhow!("setting {s}: {e}"))?;
        faults.iter().try_for_each(|f| {
            self.fault_needs(f)
                .into_iter()
                .try_for_each(|c| need(&f.to_string(), c))
        })
    }

    /// The capabilities fault `f` needs of the target on this run's backend.
    fn fault_needs(&self, f: &Fault) -> Vec<faultline_sut::Capability> {
        use faultline_nemesis::fault::{Class, Shape};
        use faultline_sut::Capability as C;
        let links = (self.net == NetBackend::Proxy).then_some(C::BehindLinkProxy);
        match f.class() {
            Class::Combined { parts, .. } => {
                parts.iter().flat_map(|p| self.fault_needs(p)).collect()
            }
            Class::Membership { .. } => vec![C::MembershipChanges],
            Class::Process(_) if self.allow_amnesia => Vec::new(),
            Class::Process(p) => match p {
                faultline_nemesis::fault::Proc::Pause(_) => Vec::new(),
                faultline_nemesis::fault::Proc::Crash(_)
                | faultline_nemesis::fault::Proc::Restart { .. } => vec![C::Durable],
            },
            Class::Figure8 => links.into_iter().chain([C::ScriptedScenarios]).collect(),
            Class::Partition(Shape::Lag(_)) => {
                links.into_iter().chain([C::ReportsSnapshots]).collect()
            }
            Class::Partition(_) | Class::Message(..) => links.into_iter().collect(),
            // The layer sits under any program's data directory; a target
            // that keeps nothing there has nothing for it to break.
            Class::Disk(..) => vec![C::Durable],
        }
    }

    /// For a target that is a program of the user's: one to run.
    fn check_program(&self) -> anyhow::Result<()> {
        let s = crate::store::shown(&self.setting);
        let Some(bin) = &self.bin else {
            anyhow::bail!(
                "setting {s}: the {} target needs a program: --bin PATH (or bin = \"PATH\")",
                self.target
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

    /// The nodes' settings for this run (faultline's node).
    pub fn node_settings(&self) -> anyhow::Result<NodeSettings> {
        faultline_sut::settings::node_settings(&self.target_settings()).map_err(anyhow::Error::msg)
    }

    /// The workload's configuration for this run.
    pub fn register_config(&self) -> RegisterConfig {
        RegisterConfig {
            keys: self.keys,
            concurrency: self.concurrency,
            rate: self.rate,
            key_dist: self.key_dist,
            mix: (self.mix[0], self.mix[1], self.mix[2]),
            random_node: self.random_node,
            timeout: Duration::from_millis(self.op_timeout_ms),
            seed: self.seed,
        }
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
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_is_valid_and_its_mix_flag_says_the_same() {
        let spec = RunSpec::default();
        assert!(!spec.validate().unwrap().is_empty());
        assert_eq!(parse_mix(defaults::MIX_FLAG).unwrap(), defaults::MIX);
    }

    #[test]
    fn durations_must_be_finite_positive_and_sane() {
        for (limit, interval) in [
            (f64::INFINITY, 5.0),
            (1e300, 5.0),
            (0.0, 5.0),
            (-1.0, 5.0),
            (30.0, f64::NAN),
        ] {
            let spec = RunSpec {
                time_limit_s: limit,
                fault_interval_s: interval,
                ..RunSpec::default()
            };
            let e = format!("{:#}", spec.validate().unwrap_err());
            assert!(e.contains("give a number of seconds"), "{e}");
        }
        let zero_heartbeat = RunSpec {
            heartbeat_ms: 0,
            ..RunSpec::default()
        };
        let e = format!("{:#}", zero_heartbeat.validate().unwrap_err());
        assert!(
            e.contains("--heartbeat must be between 1 and 300000 ms"),
            "{e}"
        );
        let zero_timeout = RunSpec {
            op_timeout_ms: 0,
            ..RunSpec::default()
        };
        assert!(zero_timeout.validate().is_err());
    }

    #[test]
    fn a_run_too_short_for_one_fault_is_refused_unless_it_has_none() {
        let short = RunSpec {
            time_limit_s: 3.0,
            ..RunSpec::default()
        };
        let e = format!("{:#}", short.validate().unwrap_err());
        assert!(
            e.contains("time limit 3 s leaves no room for one 5 s fault window"),
            "{e}"
        );
        let quiet = RunSpec {
            nemesis: String::new(),
            ..short
        };
        assert!(quiet.validate().unwrap().is_empty());
    }

    #[test]
    fn the_kernel_backend_refuses_what_it_cannot_make() {
        let fig8 = RunSpec {
            nodes: 5,
            nemesis: "figure-8".into(),
            net: NetBackend::Kernel,
            ..RunSpec::default()
        };
        let e = format!("{:#}", fig8.validate().unwrap_err());
        assert!(
            e.contains("only the proxy can") && e.contains("--net proxy"),
            "{e}"
        );
        let delay = RunSpec {
            nemesis: "delay:50".into(),
            net: NetBackend::Kernel,
            ..RunSpec::default()
        };
        assert!(delay.validate().is_ok());
        let e = format!(
            "{:#}",
            delay
                .plan()
                .unwrap()
                .check_kernel_faults(false)
                .unwrap_err()
        );
        assert!(e.contains("sch_netem") && e.contains("--net proxy"), "{e}");
        assert!(delay.plan().unwrap().check_kernel_faults(true).is_ok());
        let proxy = RunSpec {
            nemesis: "delay:50".into(),
            ..RunSpec::default()
        };
        assert!(proxy.plan().unwrap().check_kernel_faults(false).is_ok());
    }

    #[test]
    fn etcd_gets_its_own_flags_and_refuses_what_it_has_no_equivalent_for() {
        let etcd = RunSpec {
            target: TargetKind::Etcd,
            nemesis: "crash-leader".into(),
            election_timeout: "1000..2000".into(),
            heartbeat_ms: 100,
            pre_vote: true,
            ..RunSpec::default()
        };
        assert!(etcd.validate().is_ok());
        assert_eq!(
            etcd.member_args().unwrap().join(" "),
            "--election-timeout 1000 --heartbeat-interval 100 --pre-vote"
        );
        let e = etcd.effective().unwrap();
        assert_eq!(e.election_timeout, "1000..2000");
        assert!(e.passed.unwrap().contains("[1000, 2000)"));
        let err = |s: RunSpec| format!("{:#}", s.validate().unwrap_err());
        let partition = RunSpec {
            nemesis: "partition-leader".into(),
            ..etcd.clone()
        };
        assert!(err(partition.clone()).contains("use --net kernel"));
        assert!(RunSpec {
            net: NetBackend::Kernel,
            ..partition
        }
        .validate()
        .is_ok());
        assert!(err(RunSpec {
            nemesis: "membership".into(),
            ..etcd.clone()
        })
        .contains("not supported on etcd"));
        assert!(err(RunSpec {
            tick_ms: Some(1),
            ..etcd.clone()
        })
        .contains("tick is not supported on etcd"));
        assert!(err(RunSpec {
            heartbeat_ms: 300,
            ..etcd.clone()
        })
        .contains("at least 5 heartbeats"));
        assert!(err(RunSpec {
            read_mode: ReadMode::Serializable,
            ..RunSpec::default()
        })
        .contains("etcd's"));
    }

    #[test]
    fn each_refusal_names_the_capability_the_target_lacks() {
        let m = RunSpec {
            target: TargetKind::Maelstrom,
            bin: Some("/bin/sh".into()),
            nemesis: "partition-leader,pause-leader,loss:0.2".into(),
            ..RunSpec::default()
        };
        assert!(m.validate().is_ok());
        let err = |s: RunSpec| format!("{:#}", s.validate().unwrap_err());
        let crash = RunSpec {
            nemesis: "crash-leader".into(),
            ..m.clone()
        };
        assert!(err(crash.clone()).contains("total amnesia"));
        assert!(RunSpec {
            allow_amnesia: true,
            ..crash
        }
        .validate()
        .is_ok());
        for (nemesis, words) in [
            ("membership", "membership changes go through"),
            ("figure-8", "scripted scenario"),
            ("lag", "needs a snapshot"),
            ("partition-leader+crash", "total amnesia"),
        ] {
            let nodes = if nemesis == "figure-8" { 5 } else { 3 };
            let e = err(RunSpec {
                nemesis: nemesis.into(),
                nodes,
                ..m.clone()
            });
            assert!(
                e.contains("not supported on maelstrom") && e.contains(words),
                "{nemesis}: {e}"
            );
        }
        assert!(err(RunSpec {
            net: NetBackend::Kernel,
            nemesis: String::new(),
            ..m.clone()
        })
        .contains("--net kernel is not supported on maelstrom"));
        assert!(err(RunSpec {
            bin: None,
            ..m.clone()
        })
        .contains("needs a program"));
        assert!(err(RunSpec {
            bin: Some("/nonexistent".into()),
            ..m.clone()
        })
        .contains("/nonexistent"));
        assert!(err(RunSpec {
            pre_vote: true,
            ..m.clone()
        })
        .contains("pre_vote is not supported on maelstrom"));
        assert!(err(RunSpec {
            bin: Some("/bin/sh".into()),
            ..RunSpec::default()
        })
        .contains("bin and args is not supported on faultline"));
    }

    #[test]
    fn the_effective_timeouts_are_rounded_to_ticks() {
        let spec = RunSpec {
            election_timeout: "151..153".into(),
            heartbeat_ms: 12,
            ..RunSpec::default()
        };
        let e = spec.effective().unwrap();
        assert_eq!(e.tick_ms, 5);
        assert_eq!(e.election_timeout, "155..155");
        assert_eq!(e.heartbeat_ms, 15);
    }

    #[test]
    fn a_bad_timeout_or_bug_is_refused_by_name() {
        let bad = RunSpec {
            election_timeout: "40..40".into(),
            ..RunSpec::default()
        };
        let e = format!("{:#}", bad.validate().unwrap_err());
        assert!(e.contains("setting 'run'"), "{e}");
        let bad = RunSpec {
            unsafe_bug: vec!["no-such-bug".into()],
            ..RunSpec::default()
        };
        assert!(format!("{:#}", bad.validate().unwrap_err()).contains("--unsafe-bug"));
        let bad = RunSpec {
            max_append_entries: Some(0),
            ..RunSpec::default()
        };
        assert!(format!("{:#}", bad.validate().unwrap_err()).contains("max_append_entries"));
    }
}
