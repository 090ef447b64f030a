//! What a target can do ([`Capabilities`]) and what a fault, backend or
//! setting needs of it ([`Capability`]).

/// What a target can do, for the faults, backends and settings that need
/// it. A fault or a setting asks for a capability ([`Capability`]); the
/// refusal is built in one place ([`TargetKindExt::refuse`]) from the one
/// that is missing, so a new target is a module here, a name in
/// [`TargetKind`]'s list, and its arms in [`TargetKindExt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Its members can be told where each peer is, so a link proxy can sit
    /// on every directed link (etcd's members advertise one address each).
    pub behind_link_proxy: bool,
    /// It runs inside a sealed network namespace per member (the kernel
    /// backend).
    pub sealed_namespace: bool,
    /// Its status names the leader as the members themselves see it (not
    /// inferred from traffic): a run waits for one before it starts.
    pub reports_leader: bool,
    /// It keeps its state across a restart (a crash is not amnesia).
    pub durable: bool,
    /// It changes membership through faultline's node protocol.
    pub membership_changes: bool,
    /// Its messages can be read by the link proxies' filters (the scripted
    /// Figure 8).
    pub scripted_scenarios: bool,
    /// It reports its snapshot and first log index (what `lag` waits for).
    pub reports_snapshots: bool,
    /// It takes an election timeout and a heartbeat interval from faultline.
    pub timeouts: bool,
    /// Pre-vote can be switched on.
    pub pre_vote: bool,
    /// Check-quorum can be switched on (etcd has it always on).
    pub check_quorum: bool,
    /// It takes a snapshot interval in applied entries.
    pub snapshot_interval: bool,
    /// Faultline's node's own knobs: tick, max_append_entries, known-bug variants.
    pub node_knobs: bool,
    /// Reads can be served from a member's local state (etcd's serializable reads).
    pub read_modes: bool,
    /// It is a program given by the user, with arguments (`bin`, `args`).
    pub program: bool,
    /// Its program can be named (`bin`): a production system's, when not
    /// the one on PATH, or a Maelstrom node's.
    pub named_program: bool,
    /// It is the project's own node: without a known-bug variant it is
    /// meant to be correct, so its settings may not expect to be caught.
    pub meant_correct: bool,
    /// Flags its members get when they run in sealed namespaces.
    pub sealed_net_args: &'static [&'static str],
    /// Its members can run on the hosts of an inventory (`--hosts`).
    pub on_hosts: bool,
    /// The flag, given once per host address of a `--hosts` run, that lets
    /// a member bind and reach those addresses (faultline's node keeps to
    /// loopback otherwise).
    pub host_addr_flag: Option<&'static str>,
    /// faultline copies its program to each host (its own node); else
    /// each host must have it on the login's PATH (etcd).
    pub copied_to_hosts: bool,
    /// It runs list-append transactions on one key (`--workload append`).
    pub list_append: bool,
    /// Its list-append transactions may name several keys at once.
    pub transactions: bool,
    /// Its clients can take locks with leases (`--workload lock`).
    pub locks: bool,
}

/// One thing a fault, backend or setting needs of a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// [`Capabilities::behind_link_proxy`].
    BehindLinkProxy,
    /// [`Capabilities::sealed_namespace`].
    SealedNamespace,
    /// [`Capabilities::durable`].
    Durable,
    /// [`Capabilities::membership_changes`].
    MembershipChanges,
    /// [`Capabilities::scripted_scenarios`].
    ScriptedScenarios,
    /// [`Capabilities::reports_snapshots`].
    ReportsSnapshots,
    /// [`Capabilities::timeouts`].
    Timeouts,
    /// [`Capabilities::pre_vote`].
    PreVote,
    /// [`Capabilities::check_quorum`].
    CheckQuorum,
    /// [`Capabilities::snapshot_interval`].
    SnapshotInterval,
    /// [`Capabilities::node_knobs`].
    NodeKnobs,
    /// [`Capabilities::read_modes`].
    ReadModes,
    /// [`Capabilities::program`].
    Program,
    /// [`Capabilities::named_program`].
    NamedProgram,
    /// [`Capabilities::on_hosts`].
    OnHosts,
    /// [`Capabilities::list_append`].
    ListAppend,
    /// [`Capabilities::transactions`].
    Transactions,
    /// [`Capabilities::locks`].
    Locks,
}

impl Capabilities {
    /// Whether it has `c`.
    pub fn has(&self, c: Capability) -> bool {
        match c {
            Capability::BehindLinkProxy => self.behind_link_proxy,
            Capability::SealedNamespace => self.sealed_namespace,
            Capability::Durable => self.durable,
            Capability::MembershipChanges => self.membership_changes,
            Capability::ScriptedScenarios => self.scripted_scenarios,
            Capability::ReportsSnapshots => self.reports_snapshots,
            Capability::Timeouts => self.timeouts,
            Capability::PreVote => self.pre_vote,
            Capability::CheckQuorum => self.check_quorum,
            Capability::SnapshotInterval => self.snapshot_interval,
            Capability::NodeKnobs => self.node_knobs,
            Capability::ReadModes => self.read_modes,
            Capability::Program => self.program,
            Capability::NamedProgram => self.named_program,
            Capability::OnHosts => self.on_hosts,
            Capability::ListAppend => self.list_append,
            Capability::Transactions => self.transactions,
            Capability::Locks => self.locks,
        }
    }
}
