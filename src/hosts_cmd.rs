//! `faultline hosts check INVENTORY`: what each host of an inventory offers
//! (for `--hosts` and `--workers`), one problem per line; `faultline hosts
//! clean INVENTORY`: remove what a killed `--hosts` run left on each host.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use faultline_hosts::check::{check, Found, Probe};

/// `faultline hosts` subcommands.
#[derive(Debug, Subcommand)]
pub enum HostsCmd {
    /// Connect to each host of an inventory and report its OS, nft (and
    /// whether it may be used), free disk in its working directory, the
    /// target's version and its clock offset; exit 2 with one line per problem.
    Check(CheckArgs),
    /// Remove what `--hosts` runs that did not end left on each host of an
    /// inventory: the processes they started, their nftables tables, their
    /// directories and markers (nothing else); exit 2 if a host cannot be
    /// reached.
    Clean(CleanArgs),
}

/// `faultline hosts clean` flags.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// The inventory (docs/hosts.md: the format).
    inventory: PathBuf,
}

/// `faultline hosts check` flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The inventory (docs/campaigns.md: the format).
    inventory: PathBuf,
    /// The system the hosts will run (one that runs on hosts: faultline or
    /// etcd).
    #[arg(long, default_value = "faultline")]
    target: faultline_sut::TargetKind,
    /// The network the runs use: `hosts` or `kernel` (network faults by
    /// nftables on the hosts: a missing or unusable nft is a problem) or
    /// `proxy` (nft is only reported).
    #[arg(long, default_value = "hosts")]
    net: faultline_nemesis::net::NetBackend,
    /// Print the findings as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// Run `faultline hosts …`.
pub async fn run(cmd: HostsCmd) -> anyhow::Result<ExitCode> {
    let a = match cmd {
        HostsCmd::Check(a) => a,
        HostsCmd::Clean(a) => return clean(a).await,
    };
    use faultline_sut::{Capability, TargetKindExt};
    let Some(probe) = a.target.version_probe("DIR") else {
        anyhow::bail!(
            "{}",
            a.target.refuse("hosts check --target", Capability::OnHosts)
        );
    };
    let hosts = faultline_hosts::inventory::load(&a.inventory)?;
    let command = |dir: &str| {
        a.target
            .version_probe(dir)
            .map_or(String::new(), |p| p.command)
    };
    let target = Probe {
        command: &command,
        missing: probe.missing,
    };
    let found: Vec<Found> = futures::future::join_all(hosts.iter().map(|h| {
        check(
            h,
            target,
            a.net != faultline_nemesis::net::NetBackend::Proxy,
        )
    }))
    .await;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        for f in &found {
            println!("{}", f.line());
        }
    }
    let problems: Vec<&String> = found.iter().flat_map(|f| &f.problems).collect();
    for p in &problems {
        eprintln!("faultline: {p}");
    }
    Ok(ExitCode::from(if problems.is_empty() { 0 } else { 2 }))
}

/// `faultline hosts clean`: on each host, every run named by its marker or
/// by a directory in `DIR/runs`: kill the processes tagged with that run
/// (and this host), unmount what is mounted in its directory, delete its
/// nftables table, remove its directory and its marker.
async fn clean(a: CleanArgs) -> anyhow::Result<ExitCode> {
    let hosts = faultline_hosts::inventory::load(&a.inventory)?;
    let done =
        futures::future::join_all(hosts.iter().map(faultline_nemesis::hosts::clean_host)).await;
    let mut failed = false;
    for (h, r) in hosts.iter().zip(done) {
        match r {
            Ok(line) => println!("{}: {line}", h.name),
            Err(e) => {
                failed = true;
                eprintln!("faultline: {e:#}");
            }
        }
    }
    Ok(ExitCode::from(if failed { 2 } else { 0 }))
}
