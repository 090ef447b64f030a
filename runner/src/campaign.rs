//! A campaign: a matrix of timeout settings × faults × repeats, read from
//! TOML (`docs/campaigns.md` describes the format), and the runs it
//! expands to. Every field a file leaves out takes its value from
//! [`crate::spec::defaults`].

use serde::Deserialize;

use crate::spec::{RunPlan, RunSpec};
use crate::store::run_dir_name;
use faultline_results::expect::Expect;
use faultline_rundir::spec::{MillisRange, Workload};
use faultline_sut::TargetKindExt;

mod models;
mod shared;
pub use models::DiskModels;
pub use shared::SharedRun;

/// The fault name that means the lock workload's client pause (no fault
/// in the cluster; the holders' clients freeze for 1.5 × the TTL).
pub const CLIENT_PAUSE: &str = "client-pause";

/// The share of holds paused under [`CLIENT_PAUSE`] when the setting names
/// none.
pub const DEFAULT_CLIENT_PAUSES: f64 = 0.5;

/// One named timeout setting.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// Its name in the reports.
    pub name: String,
    /// Election timeout range, ms, e.g. "150..300" (default: the target's
    /// own, 150..300 for faultline's node, 1000..2000 for etcd).
    #[serde(default)]
    pub election_timeout: Option<MillisRange>,
    /// Heartbeat interval, ms (default: the target's own, 50 or 100).
    #[serde(default)]
    pub heartbeat: Option<u64>,
    /// Pre-vote.
    #[serde(default)]
    pub pre_vote: bool,
    /// Check-quorum.
    #[serde(default)]
    pub check_quorum: bool,
    /// UNSAFE: a known-bug variant of the node (see `docs/bug-hunt.md`).
    #[serde(default)]
    pub unsafe_bug: Option<String>,
    /// Most log entries per AppendEntries (the node's default, 256, when absent).
    #[serde(default)]
    pub max_append_entries: Option<u64>,
    /// The nodes' clock tick, ms (the node's default, 5, when absent).
    #[serde(default)]
    pub tick: Option<u64>,
    /// Applied entries between snapshots, 0 for none (faultline's node:
    /// 10,000 when absent; etcd: its --snapshot-count).
    #[serde(default)]
    pub snapshot_entries: Option<u64>,
    /// Fault kinds for this setting only (default: the campaign's).
    #[serde(default)]
    pub faults: Option<Vec<String>>,
    /// The network backend for this setting only ("proxy" or "kernel";
    /// default: the campaign's `[run]`).
    #[serde(default)]
    pub net: Option<faultline_nemesis::net::NetBackend>,
    /// The inventory of hosts for this setting only (docs/hosts.md).
    #[serde(default)]
    pub hosts: Option<String>,
    /// The system under test for this setting only ("faultline", "etcd"
    /// or "maelstrom").
    #[serde(default)]
    pub target: Option<faultline_sut::TargetKind>,
    /// For target "maelstrom": the node program for this setting only.
    #[serde(default)]
    pub bin: Option<String>,
    /// For target "maelstrom": the program's arguments for this setting
    /// only (how settings differ, e.g. `["--election-timeout", "300"]`).
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// etcd's reads for this setting only ("linearizable" or "serializable").
    #[serde(default)]
    pub read_mode: Option<faultline_sut::etcd::ReadMode>,
    /// The workload for this setting only ("register", "append" or "lock").
    #[serde(default)]
    pub workload: Option<faultline_rundir::spec::Workload>,
    /// Lock workload: the lease's TTL for this setting only, ms.
    #[serde(default)]
    pub lock_ttl: Option<u64>,
    /// Lock workload: fenced writes for this setting only.
    #[serde(default)]
    pub fenced: Option<bool>,
    /// Lock workload: the share of holds with a client pause, for this
    /// setting only.
    #[serde(default)]
    pub lock_pauses: Option<f64>,
    /// The disk model for this setting only, or a list of them (default:
    /// the campaign's). A setting with several becomes one setting per
    /// model, named `NAME@MODEL`, so the page shows each finding per model.
    #[serde(default)]
    pub disk_model: Option<DiskModels>,
    /// Workload and cluster shape for this setting only (default: the
    /// campaign's `[run]`): a bug may need its own exposure.
    #[serde(default)]
    pub nodes: Option<usize>,
    /// Keys for this setting only.
    #[serde(default)]
    pub keys: Option<usize>,
    /// Client processes for this setting only.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Target ops/s for this setting only.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Client timeout per operation, ms, for this setting only.
    #[serde(default)]
    pub op_timeout: Option<u64>,
    /// Shares of read, write and cas for this setting only.
    #[serde(default)]
    pub mix: Option<[f64; 3]>,
    /// Seconds per run for this setting only.
    #[serde(default)]
    pub time_limit: Option<f64>,
    /// Seconds per fault and per quiet period for this setting only.
    #[serde(default)]
    pub fault_interval: Option<f64>,
    /// What its runs are expected to show: "linearizable", or for a
    /// positive control "not-linearizable" or "unsafe" (a safety violation
    /// in the nodes' logs). Default: a failure for an `unsafe_bug`
    /// setting, linearizable otherwise.
    #[serde(default)]
    pub expect: Option<Expect>,
    /// The expectation of this setting's runs under particular faults
    /// (fault → expectation), where a fault makes the difference.
    #[serde(default)]
    pub expect_by_fault: std::collections::BTreeMap<String, Expect>,
    /// The expectation of this setting's runs under particular disk models
    /// (model → expectation), where the model makes the difference: a
    /// missing directory fsync is caught under posix, and cannot be under
    /// journaled or names-durable.
    #[serde(default)]
    pub expect_by_model: std::collections::BTreeMap<String, Expect>,
    /// For a setting made from one that lists several disk models: that
    /// setting's name (its runs share their seeds with its other models').
    #[serde(skip)]
    pub model_of: Option<String>,
}

impl Setting {
    /// Its election timeout range and heartbeat, the target's defaults
    /// where it names none.
    pub fn timeouts(&self, target: faultline_sut::TargetKind) -> (MillisRange, u64) {
        let (e, h) = target.default_timeouts();
        (
            self.election_timeout.unwrap_or(e),
            self.heartbeat.unwrap_or(h),
        )
    }

    /// Whether this setting runs faultline's own node without a known-bug
    /// variant: the node that is meant to be correct, which may not expect
    /// to be caught. (Another target's settings may: etcd's serializable
    /// reads are a positive control.) `target` is the target its runs use
    /// (its own, or the campaign's).
    pub fn is_correct(&self, target: faultline_sut::TargetKind) -> bool {
        self.unsafe_bug.is_none() && target.capabilities().meant_correct
    }

    /// What its runs under `fault` are expected to show, reading as
    /// `read_mode` says (the setting's own or the campaign's): what the
    /// setting says for that fault, else for all its faults, else the one
    /// default rule — a known-bug variant or etcd's serializable reads (a
    /// positive control each) are expected to be caught, anything else to
    /// be linearizable.
    pub fn expectation(&self, fault: &str, read_mode: faultline_sut::etcd::ReadMode) -> Expect {
        let control = self.unsafe_bug.is_some() || read_mode.may_be_stale();
        self.expect_by_fault
            .get(fault)
            .copied()
            .or(self.expect)
            .unwrap_or(if control {
                Expect::NotLinearizable
            } else {
                Expect::Linearizable
            })
    }

    /// Refuse expectations that make no sense: a correct setting expecting
    /// to be caught, a per-fault expectation for a fault it does not run.
    fn check_expectations(
        &self,
        faults: &[String],
        target: faultline_sut::TargetKind,
        unfenced_lock: bool,
    ) -> anyhow::Result<()> {
        let name = crate::store::shown(&self.name);
        for f in self.expect_by_fault.keys() {
            anyhow::ensure!(
                faults.contains(f),
                "setting {name}: expect_by_fault names fault {}, which the setting does not run",
                crate::store::shown(f)
            );
        }
        if self.is_correct(target) && !unfenced_lock {
            if let Some(e) = faults
                .iter()
                .map(|f| self.expectation(f, faultline_sut::etcd::ReadMode::Linearizable))
                .find(|e| e.is_control())
            {
                anyhow::bail!(
                    "setting {name} runs faultline's correct node, so it may not expect \"{e}\": only a known-bug variant (unsafe_bug) is a positive control there"
                );
            }
        }
        Ok(())
    }

    /// The setting in words, for the campaign page (what differs from `[run]`
    /// included); `target` is the target its runs use.
    pub fn describe(&self, target: faultline_sut::TargetKind) -> String {
        let (election, heartbeat) = self.timeouts(target);
        let mut s = format!("election timeout {election} ms, heartbeat {heartbeat} ms");
        if self.pre_vote {
            s.push_str(", pre-vote");
        }
        if self.check_quorum {
            s.push_str(", check-quorum");
        }
        if let Some(m) = self.max_append_entries {
            s.push_str(&format!(", at most {m} entries per AppendEntries"));
        }
        if let Some(t) = self.tick {
            s.push_str(&format!(", tick {t} ms"));
        }
        if let Some(n) = self.snapshot_entries {
            s.push_str(&format!(", a snapshot every {n} entries"));
        }
        if let Some(b) = &self.unsafe_bug {
            s.push_str(&format!(", UNSAFE bug {b}"));
        }
        if let Some(n) = self.net {
            s.push_str(&format!(", {n} network"));
        }
        if let Some(t) = self.target {
            s.push_str(&format!(", target {t}"));
        }
        if let Some(w) = self.read_mode.and_then(|m| m.words()) {
            s.push_str(&format!(", {w}"));
        }
        // Run overrides, so the page says what differs from [run].
        let mut extra = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                s.push_str(&format!(", {name} {v}"));
            }
        };
        extra("nodes", self.nodes.map(|v| v.to_string()));
        extra("keys", self.keys.map(|v| v.to_string()));
        extra("clients", self.concurrency.map(|v| v.to_string()));
        extra("rate", self.rate.map(|v| format!("{v} ops/s")));
        extra("op timeout", self.op_timeout.map(|v| format!("{v} ms")));
        extra(
            "mix",
            self.mix
                .map(|m| format!("{}/{}/{} read/write/cas", m[0], m[1], m[2])),
        );
        extra("time limit", self.time_limit.map(|v| format!("{v} s")));
        extra(
            "fault interval",
            self.fault_interval.map(|v| format!("{v} s")),
        );
        s
    }
}

/// A campaign file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Its name (default: the file's stem).
    #[serde(default)]
    pub name: Option<String>,
    /// Repeats of every (setting, fault) pair (default 1).
    #[serde(default = "d_repeats")]
    pub repeats: usize,
    /// Fault kinds; each entry is one column (a `--nemesis` list, so "a,b" combines).
    pub faults: Vec<String>,
    /// Shared run settings.
    #[serde(default)]
    pub run: SharedRun,
    /// The timeout settings to compare.
    #[serde(rename = "setting")]
    pub settings: Vec<Setting>,
}

fn d_repeats() -> usize {
    1
}

/// The most repeats of one (setting, fault) pair.
pub const MAX_REPEATS: usize = 1_000;
/// The most runs in one campaign.
pub const MAX_RUNS: usize = 10_000;

/// One run of a campaign: its spec, the fault column it belongs to, its
/// repeat (from 1) and its directory's name.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// What its spec validated into (the spec itself in `plan.stored`).
    pub plan: RunPlan,
    /// The campaign's fault entry.
    pub fault: String,
    /// Which repeat.
    pub repeat: usize,
    /// Its directory inside the campaign's.
    pub dir: String,
}

impl CampaignConfig {
    /// A campaign from TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<CampaignConfig> {
        let c: CampaignConfig = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{origin}: {}", e.to_string().trim()))?;
        models::one_model_per_setting(c).map_err(|e| anyhow::anyhow!("{origin}: {e}"))
    }

    /// Every fault kind of the campaign, in order of first appearance
    /// (the campaign's list is used only by settings without their own).
    pub fn all_faults(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.settings {
            for f in s.faults.as_ref().unwrap_or(&self.faults) {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
        }
        out
    }

    /// Take the inventories' relative paths (`hosts = …`) from `base`,
    /// the campaign file's directory.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        let resolve = |p: &mut Option<String>| {
            if let Some(path) = p.as_mut() {
                if std::path::Path::new(path.as_str()).is_relative() {
                    *path = base.join(path.as_str()).display().to_string();
                }
            }
        };
        resolve(&mut self.run.hosts);
        for s in &mut self.settings {
            resolve(&mut s.hosts);
        }
    }

    /// Whether any run's members run on the hosts of an inventory.
    pub fn uses_hosts(&self) -> bool {
        self.run.hosts.is_some() || self.settings.iter().any(|s| s.hosts.is_some())
    }

    /// Whether any run of the campaign uses the kernel network backend.
    pub fn uses_kernel_net(&self) -> bool {
        self.run.net == faultline_nemesis::net::NetBackend::Kernel
            || self
                .settings
                .iter()
                .any(|s| s.net == Some(faultline_nemesis::net::NetBackend::Kernel))
    }

    /// A workload's settings in the `[run]` table need a setting that runs
    /// that workload: otherwise they would be ignored.
    fn shared_settings_have_a_workload(&self) -> anyhow::Result<()> {
        let runs = |w: Workload| {
            self.settings
                .iter()
                .any(|s| s.workload.unwrap_or(self.run.workload) == w)
        };
        let r = &self.run;
        for (set, workload, names) in [
            (
                r.txn_len.is_some() || r.txn_keys.is_some() || r.consistency.is_some(),
                Workload::Append,
                "txn_len, txn_keys and consistency",
            ),
            (
                r.lock_ttl.is_some() || r.fenced || r.lock_pauses != 0.0,
                Workload::Lock,
                "lock_ttl, fenced and lock_pauses",
            ),
        ] {
            anyhow::ensure!(
                !set || runs(workload),
                "[run] sets {names}, which are for the {workload} workload, and no setting runs it (workload = \"{workload}\")"
            );
        }
        Ok(())
    }

    /// Every run's spec, validated, with its setting, fault and repeat.
    pub fn runs(&self) -> anyhow::Result<Vec<PlannedRun>> {
        anyhow::ensure!(!self.settings.is_empty(), "the campaign has no [[setting]]");
        anyhow::ensure!(
            !self.faults.is_empty() || self.settings.iter().all(|s| s.faults.is_some()),
            "the campaign has no faults"
        );
        anyhow::ensure!(
            (1..=MAX_REPEATS).contains(&self.repeats),
            "repeats must be between 1 and {MAX_REPEATS} (got {})",
            self.repeats
        );
        if let Some(name) = &self.name {
            crate::store::check_name("campaign name", name)?;
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.settings {
            crate::store::check_name("setting name", &s.name)?;
            anyhow::ensure!(
                names.insert(&s.name),
                "two settings are named {}",
                crate::store::shown(&s.name)
            );
        }
        self.shared_settings_have_a_workload()?;
        let total: usize = self
            .settings
            .iter()
            .map(|s| s.faults.as_ref().unwrap_or(&self.faults).len())
            .sum::<usize>()
            .saturating_mul(self.repeats);
        anyhow::ensure!(
            total <= MAX_RUNS,
            "the campaign has {total} runs (settings x faults x repeats); at most {MAX_RUNS} are allowed"
        );
        // Two runs in one directory would overwrite each other's files.
        for s in &self.settings {
            // An unfenced lock is a client's design, not the node's: it may
            // be expected to be caught on the correct node too.
            let unfenced_lock = s.workload.unwrap_or(self.run.workload)
                == faultline_rundir::spec::Workload::Lock
                && !s.fenced.unwrap_or(self.run.fenced);
            s.check_expectations(
                s.faults.as_ref().unwrap_or(&self.faults),
                s.target.unwrap_or(self.run.target),
                unfenced_lock,
            )?;
        }
        let mut dirs: std::collections::HashMap<String, (String, String)> = Default::default();
        for s in &self.settings {
            for f in s.faults.as_ref().unwrap_or(&self.faults) {
                let dir = run_dir_name(&s.name, f, 1);
                if let Some((s0, f0)) = dirs.insert(dir.clone(), (s.name.clone(), f.clone())) {
                    let dir = dir.trim_end_matches("__1");
                    if s0 == s.name && f0 == *f {
                        anyhow::bail!(
                            "setting {} lists fault {} twice",
                            crate::store::shown(&s.name),
                            crate::store::shown(f)
                        );
                    }
                    anyhow::bail!(
                        "setting {} with fault {} and setting {} with fault {} would share the run directory '{dir}__N': rename one",
                        crate::store::shown(&s0),
                        crate::store::shown(&f0),
                        crate::store::shown(&s.name),
                        crate::store::shown(f)
                    );
                }
            }
        }
        let mut out = Vec::with_capacity(total);
        let mut i = 0u64;
        // Runs that differ only by disk model share a seed: the same
        // schedule of faults, so their verdicts can be set side by side.
        let mut seeds: std::collections::HashMap<(String, String, usize), u64> =
            std::collections::HashMap::new();
        for s in &self.settings {
            let target = s.target.unwrap_or(self.run.target);
            for f in s.faults.as_ref().unwrap_or(&self.faults) {
                // The lock workload's client pause is a fault column of its
                // own: no fault in the cluster, the holders' clients freeze.
                let client_pause = f == CLIENT_PAUSE;
                // The [run] table's workload settings go to the settings
                // of that workload only (a campaign may mix workloads).
                let workload = s.workload.unwrap_or(self.run.workload);
                let (append, lock) = (workload == Workload::Append, workload == Workload::Lock);
                let pauses = s
                    .lock_pauses
                    .unwrap_or(if lock { self.run.lock_pauses } else { 0.0 });
                for r in 1..=self.repeats {
                    let spec = RunSpec {
                        setting: s.name.clone(),
                        nodes: s.nodes.unwrap_or(self.run.nodes),
                        nemesis: if client_pause {
                            String::new()
                        } else {
                            f.clone()
                        },
                        fault_interval_s: s.fault_interval.unwrap_or(self.run.fault_interval),
                        random_schedule: self.run.random_schedule,
                        workload,
                        txn_len: self.run.txn_len.filter(|_| append),
                        txn_keys: self.run.txn_keys.filter(|_| append),
                        consistency: self.run.consistency.unwrap_or_default(),
                        lock_ttl_ms: s.lock_ttl.or(self.run.lock_ttl.filter(|_| lock)),
                        lock_fenced: s.fenced.unwrap_or(lock && self.run.fenced),
                        lock_pauses: if client_pause && pauses == 0.0 {
                            DEFAULT_CLIENT_PAUSES
                        } else {
                            pauses
                        },
                        keys: s.keys.unwrap_or(self.run.keys),
                        concurrency: s.concurrency.unwrap_or(self.run.concurrency),
                        rate: s.rate.unwrap_or(self.run.rate),
                        time_limit_s: s.time_limit.unwrap_or(self.run.time_limit),
                        election_timeout: s.timeouts(target).0,
                        heartbeat_ms: s.timeouts(target).1,
                        pre_vote: s.pre_vote,
                        check_quorum: s.check_quorum,
                        seed: *seeds
                            .entry((
                                s.model_of.clone().unwrap_or_else(|| s.name.clone()),
                                f.clone(),
                                r,
                            ))
                            .or_insert(self.run.seed + i),
                        op_timeout_ms: s.op_timeout.unwrap_or(self.run.op_timeout),
                        unsafe_bug: s.unsafe_bug.iter().cloned().collect(),
                        mix: s.mix.unwrap_or(self.run.mix),
                        key_dist: self.run.key_dist,
                        random_node: self.run.random_node,
                        max_append_entries: s.max_append_entries,
                        tick_ms: s.tick,
                        snapshot_entries: s.snapshot_entries,
                        // An inventory puts the runs on its hosts' network,
                        // unless a backend is named (then refused: they do
                        // not go together).
                        net: match s.net.unwrap_or(self.run.net) {
                            faultline_nemesis::net::NetBackend::Proxy
                                if s.hosts.is_some() || self.run.hosts.is_some() =>
                            {
                                faultline_nemesis::net::NetBackend::Hosts
                            }
                            net => net,
                        },
                        hosts: s.hosts.clone().or_else(|| self.run.hosts.clone()),
                        target,
                        read_mode: s.read_mode.unwrap_or(self.run.read_mode),
                        expect: s.expectation(f, s.read_mode.unwrap_or(self.run.read_mode)),
                        bin: s.bin.clone().or_else(|| self.run.bin.clone()),
                        args: s.args.clone().unwrap_or_else(|| self.run.args.clone()),
                        allow_amnesia: self.run.allow_amnesia,
                        disk_model: s
                            .disk_model
                            .as_ref()
                            .unwrap_or(&self.run.disk_model)
                            .first(),
                        target_version: None,
                        effective: None,
                    };
                    // A setting's own error names the setting already and
                    // has nothing to do with the fault: said once, alone.
                    let plan = RunPlan::new(&spec).map_err(|e| {
                        if format!("{e:#}").starts_with("setting ") {
                            e
                        } else {
                            e.context(format!(
                                "setting {}, fault {}",
                                crate::store::shown(&s.name),
                                crate::store::shown(f)
                            ))
                        }
                    })?;
                    out.push(PlannedRun {
                        plan,
                        dir: run_dir_name(&s.name, f, r),
                        fault: f.clone(),
                        repeat: r,
                    });
                    i += 1;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
