//! The `faultline` command line. It parses flags and wires the crates
//! together; the logic lives in the crates.

mod bench;
mod campaign;
mod check_cmd;
mod cluster_cmd;
mod kv;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// faultline: a Jepsen-style fault-injection test bench for Raft clusters.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// The etcd binary for `--target etcd` (default: `etcd` on PATH; Debian
    /// package etcd-server).
    #[arg(long, global = true, value_name = "PATH")]
    etcd_bin: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The built-in demo campaign (a few minutes); prints where its report is.
    Demo(campaign::DemoArgs),
    /// One test run: a cluster, a workload, faults on a schedule, a verdict and a report.
    Run(campaign::RunArgs),
    /// A matrix of timeout settings x faults x repeats from a TOML file.
    Campaign(campaign::CampaignArgs),
    /// Rebuild a run's or a campaign's HTML from its stored files.
    Report(campaign::ReportArgs),
    /// Check a history for linearizability (exit 0 yes, 1 no, 3 unknown, 2 bad input).
    Check(check_cmd::CheckArgs),
    /// Talk to one node: status, get, put, cas.
    Kv(kv::KvArgs),
    /// Start a local cluster in the foreground; Ctrl-C tears it down.
    Cluster(cluster_cmd::ClusterArgs),
    /// Measure performance: node, core, check, proxy, net, workload, report.
    Bench(bench::BenchArgs),
    /// Run one Raft node (the same as the `faultline-node` binary; flags as there).
    #[command(hide = true, disable_help_flag = true)]
    Node {
        /// The node's flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Node { args } = &cli.command {
        // The node runs its own runtime; hand it the flags as its own argv.
        let argv = std::iter::once("faultline-node".to_string()).chain(args.iter().cloned());
        return faultline_node::cli::main_from(argv);
    }
    if let Some(bin) = &cli.etcd_bin {
        // Read where a run finds etcd; set before any thread starts.
        std::env::set_var("FAULTLINE_ETCD_BIN", bin);
    }
    // A kernel-network run moves the whole controller into a network
    // namespace of its own; that must happen before any thread starts.
    match needs_kernel_net(&cli.command) {
        Ok(false) => {}
        Ok(true) => {
            if let Err(e) = faultline_nemesis::kernel::netns::enter_private_network() {
                eprintln!("faultline: error: {e}");
                return ExitCode::from(2);
            }
        }
        Err(e) => {
            eprintln!("faultline: error: {e:#}");
            return ExitCode::from(2);
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faultline: error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Cmd::Check(a) => check_cmd::run(a),
            Cmd::Demo(a) => campaign::demo_cmd(a).await,
            Cmd::Run(a) => campaign::run_cmd(a).await,
            Cmd::Campaign(a) => campaign::campaign_cmd(a).await,
            Cmd::Report(a) => campaign::report_cmd(a),
            Cmd::Kv(a) => kv::run(a).await,
            Cmd::Cluster(a) => cluster_cmd::run(a).await,
            Cmd::Bench(a) => bench::run(a).await,
            Cmd::Node { .. } => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faultline: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether the command uses the kernel network backend.
fn needs_kernel_net(cmd: &Cmd) -> anyhow::Result<bool> {
    use faultline_nemesis::net::NetBackend;
    Ok(match cmd {
        Cmd::Run(a) => a.net == NetBackend::Kernel,
        Cmd::Campaign(a) => campaign::load_campaign(a)?.0.uses_kernel_net(),
        Cmd::Bench(a) => a.needs_kernel_net(),
        _ => false,
    })
}

/// How to run a node: `$FAULTLINE_NODE_BIN` if set, else the
/// `faultline-node` binary next to this executable, else this executable's
/// own `node` subcommand (so `cargo run -- demo` works without building the
/// node binary separately).
pub fn node_binary() -> anyhow::Result<faultline_nemesis::process::NodeCommand> {
    if let Some(p) = std::env::var_os("FAULTLINE_NODE_BIN") {
        return Ok(std::path::PathBuf::from(p).into());
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("faultline-node");
    if bin.exists() {
        return Ok(bin.into());
    }
    Ok(faultline_nemesis::process::NodeCommand {
        program: exe,
        args: vec!["node".into()],
    })
}
