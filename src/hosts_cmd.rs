//! `faultline hosts check INVENTORY`: what each host of an inventory offers
//! (for `--workers`), one problem per line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use faultline_hosts::check::{check, Found, Target};

/// `faultline hosts` subcommands.
#[derive(Debug, Subcommand)]
pub enum HostsCmd {
    /// Connect to each host of an inventory and report its OS, nft (and
    /// whether it may be used), free disk in its working directory, the
    /// target's version and its clock offset; exit 2 with one line per problem.
    Check(CheckArgs),
}

/// `faultline hosts check` flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The inventory (docs/campaigns.md: the format).
    inventory: PathBuf,
    /// The system the hosts will run.
    #[arg(long, value_enum, default_value = "faultline")]
    target: CheckTarget,
    /// The network the runs use: `kernel` (network faults by nftables on
    /// the hosts: a missing or unusable nft is a problem) or `proxy` (nft
    /// is only reported).
    #[arg(long, default_value = "kernel")]
    net: faultline_nemesis::net::NetBackend,
    /// Print the findings as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// `--target` of `hosts check`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CheckTarget {
    /// faultline's own node.
    Faultline,
    /// etcd (must be installed on each host).
    Etcd,
}

/// Run `faultline hosts …`.
pub async fn run(cmd: HostsCmd) -> anyhow::Result<ExitCode> {
    let HostsCmd::Check(a) = cmd;
    let hosts = faultline_hosts::inventory::load(&a.inventory)?;
    let target = match a.target {
        CheckTarget::Faultline => Target::Faultline,
        CheckTarget::Etcd => Target::Etcd,
    };
    let found: Vec<Found> = futures::future::join_all(hosts.iter().map(|h| {
        check(
            h,
            target,
            a.net == faultline_nemesis::net::NetBackend::Kernel,
        )
    }))
    .await;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        for f in &found {
            println!("{}", line(f));
        }
    }
    let problems: Vec<&String> = found.iter().flat_map(|f| &f.problems).collect();
    for p in &problems {
        eprintln!("faultline: {p}");
    }
    Ok(ExitCode::from(if problems.is_empty() { 0 } else { 2 }))
}

/// One host's findings on one line.
fn line(f: &Found) -> String {
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    let nft = match (&f.nft, f.nft_usable) {
        (Some(p), true) => format!("{p} (usable)"),
        (Some(p), false) => format!("{p} (not usable by this login)"),
        (None, _) => "none".into(),
    };
    format!(
        "{}: {}; nft {nft}; free {}; target {}; clock {}",
        f.name,
        or(&f.os),
        f.free_mb.map_or("?".into(), |m| format!("{m} MB")),
        or(&f.target),
        f.clock_offset_ms
            .map_or("?".into(), |(o, h)| format!("{o:+.0} ms (± {h:.0})")),
    )
}
