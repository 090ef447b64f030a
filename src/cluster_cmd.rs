//! `faultline cluster`: a local cluster in the foreground, for exploring the
//! node by hand with `faultline kv`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use faultline_nemesis::cluster::{ClusterSpec, LocalCluster};
use faultline_node::settings::NodeSettings;
use faultline_rundir::spec::{defaults, MillisRange};

/// `faultline cluster` flags.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = defaults::NODES)]
    nodes: usize,
    /// Directory for data and logs (default: a new directory under store/cluster/).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Randomized election timeout range, milliseconds.
    #[arg(long, default_value_t = defaults::ELECTION_TIMEOUT)]
    election_timeout: MillisRange,
    /// Leader heartbeat interval, milliseconds.
    #[arg(long, default_value_t = defaults::HEARTBEAT_MS)]
    heartbeat: u64,
    /// Enable pre-vote on every node.
    #[arg(long)]
    pre_vote: bool,
    /// Enable check-quorum on every node.
    #[arg(long)]
    check_quorum: bool,
}

/// Run `faultline cluster`.
pub async fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=9).contains(&args.nodes),
        "--nodes must be between 1 and 9"
    );
    let dir = match args.dir {
        Some(d) => d,
        None => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            PathBuf::from("store")
                .join("cluster")
                .join(stamp.to_string())
        }
    };
    let settings = NodeSettings {
        election_timeout: args.election_timeout,
        heartbeat_ms: args.heartbeat,
        pre_vote: args.pre_vote,
        check_quorum: args.check_quorum,
        cluster_id: Some(faultline_node::settings::fresh_cluster_id()),
        ..NodeSettings::default()
    };
    settings.raft_config().map_err(|e| anyhow::anyhow!("{e}"))?;
    let node_args = settings.to_args();
    let spec = ClusterSpec {
        nodes: args.nodes,
        dir: dir.clone(),
        target: faultline_sut::faultline(crate::node_binary()?),
        node_args,
        namespaces: Default::default(),
        hosts: Default::default(),
    };
    // Listen for Ctrl-C before anything starts: a signal that arrives while
    // nodes start (or right after the prompt) is then queued, not fatal, and
    // the nodes are still stopped below.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut cluster = LocalCluster::start(&spec)?;
    cluster.wait_ready(Duration::from_secs(20)).await?;
    println!(
        "cluster of {} nodes; data and logs in {}",
        args.nodes,
        dir.display()
    );
    for (id, addr) in cluster.client_addrs() {
        println!("  {id}  client {addr}   try: faultline kv --node {addr} status");
    }
    match cluster.wait_leader(Duration::from_secs(20)).await {
        Ok(l) => println!("leader: {l}"),
        Err(e) => println!("no leader yet: {e}"),
    }
    println!("Ctrl-C stops every node.");
    interrupt.recv().await;
    cluster.shutdown();
    println!("stopped.");
    Ok(ExitCode::SUCCESS)
}
