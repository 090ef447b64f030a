//! The `faultline-node` command line: flags in milliseconds, turned into a
//! [`NodeConfig`] in ticks and validated before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::raft;
use crate::server::{self, NodeConfig};
use crate::storage::SyncMode;

use faultline_rundir::spec::defaults;
pub use faultline_rundir::spec::{MillisRange, MAX_TIMEOUT_MS};

/// The longest clock tick accepted, ms.
pub const MAX_TICK_MS: u64 = 1_000;
/// The most entries between snapshots, or kept behind one.
pub const MAX_SNAPSHOT_ENTRIES: u64 = 1_000_000_000;
/// The largest snapshot chunk, bytes.
pub const MAX_SNAPSHOT_CHUNK_BYTES: u64 = 8 << 20;

fn parse_peer(s: &str) -> Result<(String, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not ID=ADDR"))?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("'{addr}' is not an IP:PORT address"))?;
    Ok((id.to_string(), addr))
}

/// The flags of `faultline-node`.
#[derive(Debug, Parser)]
#[command(
    name = "faultline-node",
    version,
    about = "A Raft key-value node (the system faultline tests)"
)]
pub struct NodeArgs {
    /// This node's id, e.g. n1.
    #[arg(long)]
    pub id: String,
    /// Address for peer (Raft) traffic.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Address for client traffic.
    #[arg(long)]
    pub client: SocketAddr,
    /// Another server and where to reach it, as ID=IP:PORT; repeat per peer.
    /// A peer listed here is reached at this address even when the cluster's
    /// configuration records another one for it.
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(String, SocketAddr)>,
    /// The initial voters, comma-separated (default: this node and every
    /// --peer). Used until the log holds a configuration.
    #[arg(long, value_delimiter = ',', conflicts_with = "join")]
    pub voters: Vec<String>,
    /// Start outside the cluster, with no configuration: the node waits to
    /// be added (`faultline kv add-member`) and votes for nobody meanwhile.
    #[arg(long)]
    pub join: bool,
    /// Directory for the log and the term/vote record (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Randomized election timeout range, milliseconds.
    #[arg(long, default_value_t = defaults::ELECTION_TIMEOUT)]
    pub election_timeout: MillisRange,
    /// Leader heartbeat interval, milliseconds.
    #[arg(long, default_value_t = defaults::HEARTBEAT_MS)]
    pub heartbeat: u64,
    /// Campaign with a pre-vote round first.
    #[arg(long)]
    pub pre_vote: bool,
    /// Leaders step down without a majority's contact; followers ignore
    /// vote requests while they hear from a leader.
    #[arg(long)]
    pub check_quorum: bool,
    /// Length of one Raft tick, milliseconds (timeouts are rounded to ticks).
    #[arg(long, default_value_t = defaults::TICK_MS)]
    pub tick: u64,
    /// How long a client request may wait for its entry to commit, milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub request_timeout: u64,
    /// Most log entries one AppendEntries carries (a longer lag travels in
    /// several messages).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_append_entries: u64,
    /// Take a snapshot of the state machine and compact the log once this
    /// many applied entries follow the last snapshot (0: never). At the
    /// bench's full rate (~50,000 writes/s) the default means a snapshot
    /// every ~0.2 s per node, each a few KiB to a few MiB of registers and
    /// request ids, while the log in memory and on disk stays around
    /// 10,000 entries (~1 MiB); a follower further behind than the log
    /// holds gets the snapshot (InstallSnapshot).
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_entries: u64,
    /// Entries kept in the log behind each snapshot, so that a follower a
    /// little behind catches up by entries instead of by a snapshot.
    #[arg(long, default_value_t = 1_000)]
    pub snapshot_trailing: u64,
    /// Most snapshot bytes per InstallSnapshot message.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=8 << 20))]
    pub snapshot_chunk_bytes: u64,
    /// One fsync per log entry instead of one per batch (for benchmarks).
    #[arg(long)]
    pub no_group_commit: bool,
    /// Seed for the election-timeout RNG (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// UNSAFE: switch on a known bug, for testing the bench (stale-read,
    /// forget-vote, commit-old-term, volatile-log, skip-prev-check,
    /// ack-before-commit, one-step-membership, install-keeps-state; see
    /// docs/bug-hunt.md). Repeatable.
    #[arg(long = "unsafe-bug", value_name = "NAME")]
    pub unsafe_bugs: Vec<crate::bugs::UnsafeBug>,
    /// The cluster's name: peers greet each other with it and a connection
    /// from another cluster is closed. Recorded in the data directory at
    /// the first start; a later start with another name is refused.
    #[arg(long, default_value = "default")]
    pub cluster_id: String,
    /// UNSAFE: start even though the data directory's term/vote record is
    /// missing or older than its log (the node may then vote twice in a
    /// term, which is how two leaders of one term come about).
    #[arg(long)]
    pub unsafe_accept_lost_vote: bool,
    /// The node runs in a sealed network namespace of a `--net kernel` run:
    /// allow the run's private range (10.99.0.0/24) besides loopback.
    /// Refused in the machine's own network namespace.
    #[arg(long)]
    pub sealed_net: bool,
    /// The node runs on a host of a `faultline run --hosts` inventory:
    /// allow this address (its own, a peer's) besides loopback. Given once
    /// per host of the run; only what the inventory lists.
    #[arg(long = "allow-addr", value_name = "IP")]
    pub allow_addr: Vec<std::net::IpAddr>,
}

/// The core's settings from timeouts in milliseconds, validated: the
/// election timeout range must be non-empty and longer than the heartbeat,
/// in whole ticks of `tick_ms`.
pub fn raft_config(
    election: MillisRange,
    heartbeat_ms: u64,
    tick_ms: u64,
    pre_vote: bool,
    check_quorum: bool,
) -> Result<raft::Config, String> {
    if !(1..=MAX_TICK_MS).contains(&tick_ms) {
        return Err(format!(
            "--tick must be between 1 and {MAX_TICK_MS} ms (got {tick_ms})"
        ));
    }
    if !(1..=MAX_TIMEOUT_MS).contains(&heartbeat_ms) {
        return Err(format!(
            "--heartbeat must be between 1 and {MAX_TIMEOUT_MS} ms (got {heartbeat_ms})"
        ));
    }
    let ticks = |ms: u64| ms.div_ceil(tick_ms).max(1);
    let raft = raft::Config {
        election_timeout_min_ticks: ticks(election.min),
        election_timeout_max_ticks: ticks(election.max),
        heartbeat_ticks: ticks(heartbeat_ms),
        pre_vote,
        check_quorum,
        ..raft::Config::default()
    };
    raft.validate()
        .map_err(|e| format!("{e} (in ticks of {tick_ms} ms: election timeout {election} ms, heartbeat {heartbeat_ms} ms)"))?;
    Ok(raft)
}

/// A node or cluster name: 1 to 64 characters, letters, digits, `-`, `_`, `.`.
fn valid_name(name: &str, what: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} '{}' is not a name: use 1 to 64 letters, digits, '-', '_' or '.'",
            name.chars().take(80).collect::<String>()
        ))
    }
}

fn loopback(addr: &SocketAddr, what: &str) -> Result<(), String> {
    crate::netpolicy::allowed(*addr).map_err(|e| format!("{what} {e}"))
}

impl NodeArgs {
    /// Turn the flags into a validated configuration.
    pub fn to_config(&self) -> Result<NodeConfig, String> {
        valid_name(&self.id, "--id")?;
        valid_name(&self.cluster_id, "--cluster-id")?;
        let mut seen = std::collections::BTreeSet::new();
        for (id, _) in &self.peers {
            valid_name(id, "--peer")?;
            if *id == self.id {
                return Err(format!("--peer {id}=... names this node itself"));
            }
            if !seen.insert(id) {
                return Err(format!("--peer {id} is given twice"));
            }
        }
        if self.request_timeout == 0 {
            return Err("--request-timeout must be at least 1 ms".into());
        }
        if self.sealed_net {
            crate::netpolicy::declare_sealed().map_err(|e| format!("--sealed-net: {e}"))?;
        }
        crate::netpolicy::allow_inventory(&self.allow_addr);
        loopback(&self.listen, "--listen")?;
        loopback(&self.client, "--client")?;
        for (id, addr) in &self.peers {
            loopback(addr, &format!("--peer {id}"))?;
            if *id == self.id {
                return Err(format!("--peer {id} names this node itself"));
            }
        }
        let mut raft = raft_config(
            self.election_timeout,
            self.heartbeat,
            self.tick,
            self.pre_vote,
            self.check_quorum,
        )?;
        if self.snapshot_entries > MAX_SNAPSHOT_ENTRIES
            || self.snapshot_trailing > MAX_SNAPSHOT_ENTRIES
        {
            return Err(format!(
                "--snapshot-entries and --snapshot-trailing must be at most {MAX_SNAPSHOT_ENTRIES}"
            ));
        }
        if !(1..=MAX_SNAPSHOT_CHUNK_BYTES).contains(&self.snapshot_chunk_bytes) {
            return Err(format!(
                "--snapshot-chunk-bytes must be between 1 and {MAX_SNAPSHOT_CHUNK_BYTES} (a chunk travels in one frame of at most 16 MiB)"
            ));
        }
        raft.max_entries_per_message = self.max_append_entries as usize;
        raft.snapshot_entries = self.snapshot_entries;
        raft.snapshot_trailing = self.snapshot_trailing;
        raft.snapshot_chunk_bytes = self.snapshot_chunk_bytes as usize;
        raft.unsafe_commit_old_term = self
            .unsafe_bugs
            .contains(&crate::bugs::UnsafeBug::CommitOldTerm);
        raft.unsafe_skip_prev_check = self
            .unsafe_bugs
            .contains(&crate::bugs::UnsafeBug::SkipPrevCheck);
        raft.unsafe_one_step_membership = self
            .unsafe_bugs
            .contains(&crate::bugs::UnsafeBug::OneStepMembership);
        let voters: Vec<String> = if self.join {
            Vec::new()
        } else if self.voters.is_empty() {
            std::iter::once(self.id.clone())
                .chain(self.peers.iter().map(|(p, _)| p.clone()))
                .collect()
        } else {
            for v in &self.voters {
                if *v != self.id && !self.peers.iter().any(|(p, _)| p == v) {
                    return Err(format!(
                        "--voters names {v}, which is neither this node nor a --peer"
                    ));
                }
            }
            self.voters.clone()
        };
        Ok(NodeConfig {
            id: self.id.clone(),
            listen: self.listen,
            client: self.client,
            peers: self.peers.clone(),
            voters,
            data_dir: self.data_dir.clone(),
            raft,
            tick: Duration::from_millis(self.tick),
            request_timeout: Duration::from_millis(self.request_timeout.max(1)),
            sync: if self.no_group_commit {
                SyncMode::PerEntry
            } else {
                SyncMode::GroupCommit
            },
            seed: self.seed,
            bugs: self.unsafe_bugs.clone(),
            cluster_id: self.cluster_id.clone(),
            accept_lost_vote: self.unsafe_accept_lost_vote,
        })
    }
}

/// Log role changes and warnings as JSON lines on stderr.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAULTLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // A node that stops on its own (a broken safety assertion, say) says so
    // in its log, with a time, where `faultline` looks for it after a run.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(target: faultline_rundir::records::PANIC, %location, "panicked: {message}");
        default_hook(info);
    }));
}

/// The whole `faultline-node` program: exit 0 after a clean shutdown
/// (SIGTERM, SIGINT), 2 for bad flags, 1 for anything that stops the node.
pub fn main() -> ExitCode {
    main_from(std::env::args())
}

/// [`main`] with the given argv (the first item is the program name).
pub fn main_from(argv: impl IntoIterator<Item = String>) -> ExitCode {
    let args = match NodeArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let config = match args.to_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("faultline-node: error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    // One thread: the Raft loop, the listeners and the peer links share it,
    // which on a loaded machine costs less than hopping between workers.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faultline-node: error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async {
        // Both handlers are in place before the node opens anything, so a
        // SIGTERM or SIGINT at any point after this is a clean shutdown.
        let shutdown = shutdown_signal()?;
        server::run(config, shutdown).await
    });
    // Do not wait for a blocking task (a stuck disk read) to finish.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline-node: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Register SIGTERM and SIGINT now; the future ends when either arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use anyhow::Context;
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_validated_before_anything_starts() {
        let parse = |extra: &[&str]| {
            let mut argv = vec![
                "faultline-node",
                "--id",
                "n1",
                "--listen",
                "127.0.0.1:1",
                "--client",
                "127.0.0.1:2",
                "--data-dir",
                "/tmp/x",
            ];
            argv.extend_from_slice(extra);
            NodeArgs::try_parse_from(argv)
                .map_err(|e| e.to_string())
                .and_then(|a| a.to_config().map(|_| ()))
        };
        assert!(parse(&[]).is_ok());
        assert!(parse(&["--heartbeat", "200"])
            .unwrap_err()
            .contains("heartbeat"));
        assert!(parse(&["--peer", "n2=10.0.0.1:5"])
            .unwrap_err()
            .contains("loopback"));
        assert!(parse(&["--peer", "n2"]).is_err());
        assert!(parse(&["--peer", "n1=127.0.0.1:9"])
            .unwrap_err()
            .contains("itself"));
        assert!(parse(&["--peer", "n2=127.0.0.1:9", "--voters", "n1,n3"])
            .unwrap_err()
            .contains("neither this node nor a --peer"));
        assert!(parse(&["--peer", "n2=127.0.0.1:9", "--voters", "n1,n2"]).is_ok());
        assert!(parse(&["--join", "--voters", "n1"]).is_err());
    }
}
