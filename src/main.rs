//! The `faultline` command line. It parses flags and wires the crates
//! together; the logic lives in the crates.

mod bench;
mod campaign;
mod check_cmd;
mod cluster_cmd;
mod compare_cmd;
mod hosts_cmd;
mod kv;
mod serve;
mod workload_args;

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
    Run(Box<campaign::RunArgs>),
    /// A matrix of timeout settings x faults x repeats from a TOML file.
    Campaign(campaign::CampaignArgs),
    /// Rebuild a run's or a campaign's HTML from its stored files.
    Report(campaign::ReportArgs),
    /// Compare two campaigns cell by cell: each figure A vs B, the
    /// difference and whether it is clear; writes a page.
    Compare(compare_cmd::CompareArgs),
    /// The store in a browser, on loopback: every campaign and run, newest
    /// first, running ones with their progress, and comparisons.
    Serve(serve::ServeArgs),
    /// Hosts of an inventory: `check` what each offers.
    #[command(subcommand)]
    Hosts(hosts_cmd::HostsCmd),
    /// Check a history for linearizability (exit 0 yes, 1 no, 3 unknown, 2 bad input).
    Check(check_cmd::CheckArgs),
    /// Talk to one node: status, get, put, cas, append, list and membership.
    Kv(kv::KvArgs),
    /// Start a local cluster in the foreground; Ctrl-C tears it down.
    Cluster(cluster_cmd::ClusterArgs),
    /// Measure performance: node, soak, core, check, proxy, net, workload, report.
    Bench(bench::BenchArgs),
    /// Host one Maelstrom node: start the program, speak Maelstrom's
    /// protocol on its stdin and stdout, and route its messages (what a
    /// `--target maelstrom` run starts per member; docs/maelstrom.md).
    #[command(hide = true)]
    MaelstromHost {
        /// The node's id (n1).
        #[arg(long)]
        id: String,
        /// Where peers' messages arrive.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Where clients connect.
        #[arg(long)]
        client: std::net::SocketAddr,
        /// Another node: ID=ADDRESS (where this one reaches it).
        #[arg(long)]
        peer: Vec<String>,
        /// How long the node may take to answer init, ms.
        #[arg(long, default_value_t = 10_000)]
        init_timeout_ms: u64,
        /// The program and its arguments.
        #[arg(last = true, required = true)]
        program: Vec<String>,
    },
    /// A trivial Maelstrom node (echo, relay) for `bench maelstrom`.
    #[command(hide = true)]
    MaelstromEcho,
    /// Run one run of a campaign in this process: its spec and placement
    /// as one JSON line on stdin, reports as JSON lines on stdout; stops
    /// when stdin ends (what `--jobs` and `--workers` start per run).
    #[command(hide = true)]
    RunSpec {
        /// The run's directory (new).
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Run in a network namespace of its own with only loopback (the
        /// run's ports are then its own).
        #[arg(long)]
        own_loopback: bool,
    },
    /// Run one Raft node (the same as the `faultline-node` binary; flags as there).
    #[command(hide = true, disable_help_flag = true)]
    Node {
        /// The node's flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `faultline maelstrom-host`: runs until the node exits or the host is killed.
fn maelstrom_host(
    id: &str,
    listen: std::net::SocketAddr,
    client: std::net::SocketAddr,
    peers: &[String],
    init_timeout_ms: u64,
    program: &[String],
) -> ExitCode {
    let run = || -> anyhow::Result<()> {
        let peers = peers
            .iter()
            .map(|p| faultline_sut::maelstrom::parse_peer(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let cfg = faultline_sut::maelstrom::host::HostConfig {
            id: id.to_string(),
            listen,
            client,
            peers,
            program: program.to_vec(),
            init_timeout: std::time::Duration::from_millis(init_timeout_ms),
        };
        // One thread: a message crosses several tasks, and hand-offs
        // between threads cost more than they save here.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(faultline_sut::maelstrom::host::run(cfg))
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "faultline maelstrom-host: {}",
                one_line_safe(&format!("{e:#}"))
            );
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap echoes a bad value whole: cut what is too long to read.
            let text = one_line_safe(&e.render().to_string());
            if e.use_stderr() {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Cmd::Node { args } = &cli.command {
        // The node runs its own runtime; hand it the flags as its own argv.
        let argv = std::iter::once("faultline-node".to_string()).chain(args.iter().cloned());
        return faultline_node::cli::main_from(argv);
    }
    if let Cmd::MaelstromHost {
        id,
        listen,
        client,
        peer,
        init_timeout_ms,
        program,
    } = &cli.command
    {
        return maelstrom_host(id, *listen, *client, peer, *init_timeout_ms, program);
    }
    if let Cmd::MaelstromEcho = &cli.command {
        return match faultline_sut::maelstrom::echo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("faultline maelstrom-echo: {e}");
                ExitCode::from(1)
            }
        };
    }
    // A run in a process of its own reads its job before any thread
    // starts: a kernel-network run, or one with a loopback of its own,
    // moves into a network namespace first.
    let job = match &cli.command {
        Cmd::RunSpec { own_loopback, .. } => match start_job(*own_loopback) {
            Ok(job) => Some(job),
            Err(e) => {
                eprintln!("faultline: error: {}", one_line_safe(&format!("{e:#}")));
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    if let Some(bin) = &cli.etcd_bin {
        // Read where a run finds etcd; set before any thread starts.
        std::env::set_var("FAULTLINE_ETCD_BIN", bin);
    }
    // A kernel-network run moves the whole controller into a network
    // namespace of its own; that must happen before any thread starts.
    match needs_kernel_net(&cli.command) {
        Ok(false) => {}
        Ok(true) => {
            if let Err(e) = faultline_nemesis::net::kernel::netns::enter_private_network() {
                eprintln!("faultline: error: {e}");
                return ExitCode::from(2);
            }
        }
        Err(e) => {
            eprintln!("faultline: error: {e:#}");
            return ExitCode::from(2);
        }
    }
    // A member's descendant that leaves its process group and whose parent
    // exits becomes this process's child, not init's: it is found and
    // killed with its member (nemesis::process::MEMBER_ENV).
    if let Err(e) = faultline_nemesis::process::become_subreaper() {
        eprintln!("faultline: warning: cannot become a subreaper ({e}): a member's escaped descendants are still killed by their tag");
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
    // Whatever happens to this process, the process groups it started die
    // with it: on a panic here, on SIGINT and SIGTERM below.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        faultline_nemesis::process::kill_every_group();
        default_hook(info);
    }));
    let handles_signals = !matches!(
        cli.command,
        Cmd::Cluster(_)
            | Cmd::Check(_)
            | Cmd::Kv(_)
            | Cmd::Compare(_)
            | Cmd::Serve(_)
            | Cmd::Hosts(_)
    );
    let result = rt.block_on(async {
        let work = async {
            match cli.command {
            Cmd::Check(a) => check_cmd::run(a),
            Cmd::Demo(a) => campaign::demo_cmd(a).await,
            Cmd::Run(a) => campaign::run_cmd(*a).await,
            Cmd::Campaign(a) => campaign::campaign_cmd(a).await,
            Cmd::Report(a) => campaign::report_cmd(a),
            Cmd::Compare(a) => compare_cmd::run(a),
            Cmd::Serve(a) => serve::run(a).await,
            Cmd::Hosts(c) => hosts_cmd::run(c).await,
            Cmd::Kv(a) => kv::run(a).await,
            Cmd::Cluster(a) => cluster_cmd::run(a).await,
            Cmd::Bench(a) => bench::run(a).await,
            Cmd::RunSpec { dir, .. } => {
                let job = job.expect("read before the runtime started");
                let code = faultline_runner::child::run_job(&job, &dir, &node_binary()?).await?;
                Ok(ExitCode::from(code))
            }
            Cmd::Node { .. } | Cmd::MaelstromHost { .. } | Cmd::MaelstromEcho => {
                unreachable!("handled before the runtime starts")
            }
            }
        };
        if !handles_signals {
            return work.await;
        }
        let signal = match interrupt() {
            Ok(s) => s,
            Err(e) => return Err(e),
        };
        tokio::select! {
            r = work => r,
            (name, number) = signal => {
                // Dropping the work above stopped the run (its processes,
                // proxies and namespaces); kill any group left besides.
                faultline_nemesis::process::kill_every_group();
                faultline_runner::execute::after_interrupt();
                eprintln!("faultline: interrupted by {name}: every process it started was killed; a run cut short is marked interrupted in its report");
                Ok(ExitCode::from(128 + number))
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faultline: error: {}", one_line_safe(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// A message with every word longer than 200 characters cut to its first
/// 60 (and its length said), and control and text-direction characters
/// escaped: a value from outside is never echoed whole.
fn one_line_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().count() > 200 {
            out.extend(word.chars().take(60));
            out.push_str(&format!("… ({} bytes)", word.len()));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else if faultline_rundir::quote::hidden_char(c) {
            word.extend(c.escape_unicode());
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// SIGINT and SIGTERM, registered now; the future ends with the first
/// that arrives (its name and number).
fn interrupt() -> anyhow::Result<impl std::future::Future<Output = (&'static str, u8)>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => ("SIGINT", 2),
            _ = term.recv() => ("SIGTERM", 15),
        }
    })
}

/// `faultline run-spec`: read the job, enter its network, and stop when
/// stdin ends.
fn start_job(own_loopback: bool) -> anyhow::Result<faultline_runner::child::Job> {
    let job = faultline_runner::child::read_job()?;
    use faultline_nemesis::net::{kernel::netns, NetBackend};
    match job.plan.net {
        NetBackend::Kernel => netns::enter_private_network().map_err(anyhow::Error::msg)?,
        NetBackend::Proxy if own_loopback => {
            netns::enter_own_loopback().map_err(anyhow::Error::msg)?
        }
        NetBackend::Proxy | NetBackend::Hosts => {}
    }
    faultline_runner::child::stop_at_end_of_stdin();
    Ok(job)
}

/// Whether the command uses the kernel network backend in this process.
fn needs_kernel_net(cmd: &Cmd) -> anyhow::Result<bool> {
    use faultline_nemesis::net::NetBackend;
    Ok(match cmd {
        Cmd::Run(a) => a.net == NetBackend::Kernel,
        Cmd::Campaign(a) => a.runs_here() && campaign::load_campaign(a)?.0.uses_kernel_net(),
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    fn help(path: &[&str]) -> String {
        let mut cmd = super::Cli::command();
        for sub in path {
            cmd = cmd
                .find_subcommand(sub)
                .unwrap_or_else(|| panic!("no subcommand {sub}"))
                .clone();
        }
        cmd.render_long_help().to_string()
    }

    /// The help is built from the presets' and variants' tables: a new
    /// preset or variant cannot be missing from it.
    #[test]
    fn the_help_names_every_preset_and_every_known_bug_variant() {
        let campaign = help(&["campaign"]);
        for p in faultline_runner::presets::PRESETS {
            assert!(
                campaign.contains(p.name),
                "campaign --help lacks preset {}",
                p.name
            );
        }
        let run = help(&["run"]);
        for b in faultline_node::bugs::ALL {
            assert!(
                run.contains(b.name()),
                "run --help lacks variant {}",
                b.name()
            );
        }
        // The README, which a new user reads first, names every preset.
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        for p in faultline_runner::presets::PRESETS {
            assert!(readme.contains(p.name), "README.md lacks preset {}", p.name);
        }
    }
}
