//! `faultline hosts check INVENTORY`: what each host of an inventory offers
//! (for `--hosts` and `--workers`), one problem per line; `faultline hosts
//! clean INVENTORY`: remove what a killed `--hosts` run left on each host.

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
    /// The system the hosts will run.
    #[arg(long, value_enum, default_value = "faultline")]
    target: CheckTarget,
    /// The network the runs use: `hosts` or `kernel` (network faults by
    /// nftables on the hosts: a missing or unusable nft is a problem) or
    /// `proxy` (nft is only reported).
    #[arg(long, default_value = "hosts")]
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
    let a = match cmd {
        HostsCmd::Check(a) => a,
        HostsCmd::Clean(a) => return clean(a).await,
    };
    let hosts = faultline_hosts::inventory::load(&a.inventory)?;
    let target = match a.target {
        CheckTarget::Faultline => Target::Faultline,
        CheckTarget::Etcd => Target::Etcd,
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

/// `faultline hosts clean`: on each host, every run named by its marker or
/// by a directory in `DIR/runs`: kill the processes tagged with that run
/// (and this host), unmount what is mounted in its directory, delete its
/// nftables table, remove its directory and its marker.
async fn clean(a: CleanArgs) -> anyhow::Result<ExitCode> {
    let hosts = faultline_hosts::inventory::load(&a.inventory)?;
    let done = futures::future::join_all(hosts.iter().map(clean_host)).await;
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

async fn clean_host(h: &faultline_hosts::inventory::Host) -> anyhow::Result<String> {
    use faultline_hosts::ssh::{quote, Connection};
    use faultline_nemesis::hosts::{remove_script, sweep_script, MARKER};
    let limit = std::time::Duration::from_secs(60);
    let conn = Connection::open(h).await?;
    let dir = quote(&h.dir);
    let listing = conn
        .sh(
            "reading the run marker",
            &format!(
                "cd {dir} 2>/dev/null || exit 0; sed -n 's/^run=//p' {MARKER} 2>/dev/null; ls runs 2>/dev/null; true"
            ),
            limit,
        )
        .await;
    let listing = match listing {
        Ok(l) => l,
        Err(e) => {
            conn.close().await;
            return Err(e);
        }
    };
    let mut runs: Vec<String> = listing
        .split_whitespace()
        .filter(|r| {
            r.starts_with('r') && r.len() > 1 && r.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .map(str::to_string)
        .collect();
    runs.sort();
    runs.dedup();
    if runs.is_empty() {
        conn.close().await;
        return Ok(format!("nothing to clean in {}", h.dir));
    }
    let mut said = Vec::new();
    for run in &runs {
        let tag = format!("{run}@{}", h.name);
        let table = faultline_nemesis::net::kernel::nft::host_table(run);
        let script = format!(
            "killed=$({sweep}); \
             t=kept; if command -v nft >/dev/null 2>&1 && nft list table inet {table} >/dev/null 2>&1; then nft delete table inet {table} && t=removed; else t=none; fi; \
             r=$({remove}); \
             echo \"$killed $t $r\"",
            sweep = sweep_script(&tag),
            remove = remove_script(&h.dir, run),
        );
        let out = conn.sh("cleaning", &script, limit).await;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                conn.close().await;
                return Err(e);
            }
        };
        let f: Vec<&str> = out.split_whitespace().collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("?");
        let (killed, table_state, mounts, left, dir_state) =
            (field(0), field(1), field(2), field(3), field(4));
        said.push(format!(
            "run {run}: {killed} process(es) killed, {mounts} mount(s) removed, nft table {table} {}, directory {}",
            match table_state {
                "removed" => "removed",
                "none" => "absent",
                other => other,
            },
            match (dir_state, left) {
                ("removed", _) => "removed".to_string(),
                ("none", _) => "absent".to_string(),
                (_, "0") => "kept: it could not be removed".to_string(),
                (_, n) => format!(
                    "kept: {n} mount(s) below it could not be unmounted, so nothing was removed through them"
                ),
            }
        ));
    }
    conn.close().await;
    Ok(said.join("; "))
}
