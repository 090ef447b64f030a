//! What a host of the inventory offers (`faultline hosts check`): its OS,
//! `nft` and whether faultline may use it, the free disk in its working
//! directory, the target's binary and version, and its clock's offset from
//! this machine's. Each problem is one line naming the host.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::inventory::Host;
use crate::ssh::{quote, who, Connection};

/// How long one probe may take on a host.
const PROBE: Duration = Duration::from_secs(20);
/// Less free disk than this in the working directory is a problem: a run
/// directory with its members' data needs some room.
pub const MIN_FREE_MB: u64 = 1024;
/// A clock further off than this is a problem: election times measured
/// from member logs across hosts would be off by as much.
pub const MAX_OFFSET_MS: f64 = 500.0;

/// How to ask a host for the tested system's version (the `sut` crate
/// says, per target): a shell command given the host's working directory,
/// shell-quoted, that prints the version as its first line, and what to
/// say when it prints nothing.
#[derive(Clone, Copy)]
pub struct Probe<'a> {
    /// The command, from the quoted working directory.
    pub command: &'a dyn Fn(&str) -> String,
    /// What a host lacks when the command printed nothing (one line).
    pub missing: &'a str,
}

/// What one host offers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Found {
    /// The host's name.
    pub name: String,
    /// `uname -sm`.
    pub os: Option<String>,
    /// Where `nft` is, if anywhere on the PATH of a login.
    pub nft: Option<String>,
    /// Whether `nft list tables` works for the login (root or CAP_NET_ADMIN).
    pub nft_usable: bool,
    /// Free space in the working directory, MB.
    pub free_mb: Option<u64>,
    /// The target's version (its first line), or what stands in its place.
    pub target: Option<String>,
    /// The host's clock minus this machine's, ms, with half the round trip
    /// as its uncertainty.
    pub clock_offset_ms: Option<(f64, f64)>,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
}

impl Found {
    /// The host's findings on one line.
    pub fn line(&self) -> String {
        let f = self;
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
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The host's clock minus this machine's, ms, and half the round trip
/// as its uncertainty: the host's time against the middle of the round
/// trip, the best of five. The five are asked of one remote shell that is
/// already running (a line in, its time out), so that starting a remote
/// command — slower than its answer — does not skew the middle.
pub async fn clock_offset(conn: &Connection) -> Option<(f64, f64)> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut child = conn
        .spawn("while read -r _; do date +%s.%N; done")
        .await
        .ok()?;
    let mut stdin = child.stdin().take()?;
    let mut lines = BufReader::new(child.stdout().take()?).lines();
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..5 {
        let t0 = now_s();
        let round = async {
            stdin.write_all(b"\n").await.ok()?;
            stdin.flush().await.ok()?;
            lines.next_line().await.ok()?
        };
        let Ok(Some(line)) = tokio::time::timeout(PROBE, round).await else {
            break;
        };
        let t1 = now_s();
        if let Ok(remote) = line.trim().parse::<f64>() {
            let offset = (remote - (t0 + t1) / 2.0) * 1e3;
            let half = (t1 - t0) / 2.0 * 1e3;
            if best.is_none_or(|(_, h)| half < h) {
                best = Some((offset, half));
            }
        }
    }
    drop(stdin);
    let _ = tokio::time::timeout(PROBE, child.wait()).await;
    best
}

/// Check `host` for `target`; `nft_needed` when the runs will put network
/// faults on it (a missing or unusable nft is then a problem).
pub async fn check(host: &Host, target: Probe<'_>, nft_needed: bool) -> Found {
    let mut f = Found {
        name: host.name.clone(),
        ..Found::default()
    };
    let conn = match Connection::open(host).await {
        Ok(c) => c,
        Err(e) => {
            f.problems.push(format!("{e:#}"));
            return f;
        }
    };
    let w = who(host);
    match conn.sh("uname", "uname -sm", PROBE).await {
        Ok(os) => {
            let os = os.trim().to_string();
            let mut words = os.split_whitespace();
            let (name, arch) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            if !name.eq_ignore_ascii_case(std::env::consts::OS) || arch != std::env::consts::ARCH {
                f.problems.push(format!(
                    "{w}: runs {os}; this faultline is built for {} {}",
                    std::env::consts::OS,
                    std::env::consts::ARCH
                ));
            }
            f.os = Some(os);
        }
        Err(e) => f.problems.push(format!("{e:#}")),
    }
    // Found as faultline's commands will find it: on the login's PATH.
    // `|| true`: a shell's "not found" is 127, which ssh reports as a
    // command that could not be run at all.
    let nft = conn.run("command -v nft || true", PROBE).await;
    match nft {
        Ok(o) if o.code == Some(0) && !o.stdout.trim().is_empty() => {
            let path = o.stdout.trim().to_string();
            let usable = conn
                .run(&format!("{} list tables", quote(&path)), PROBE)
                .await;
            match usable {
                Ok(u) if u.code == Some(0) => f.nft_usable = true,
                Ok(u) if nft_needed => f.problems.push(format!(
                    "{w}: nft may not be used by this login (network faults need root or CAP_NET_ADMIN): {}",
                    u.first_error_line()
                )),
                Ok(_) => {}
                Err(e) => f.problems.push(format!("{e:#}")),
            }
            f.nft = Some(path);
        }
        Ok(_) if nft_needed => f.problems.push(format!(
            "{w}: no nft on the login's PATH (network faults need it: install the package nftables)"
        )),
        Ok(_) => {}
        Err(e) => f.problems.push(format!("{e:#}")),
    }
    let dir = quote(&host.dir);
    match conn
        .sh(
            "checking the working directory",
            &format!("mkdir -p {dir} && df -Pk {dir} | tail -n 1"),
            PROBE,
        )
        .await
    {
        Ok(df) => {
            let kb = df
                .split_whitespace()
                .nth(3)
                .and_then(|v| v.parse::<u64>().ok());
            match kb {
                Some(kb) => {
                    let mb = kb / 1024;
                    if mb < MIN_FREE_MB {
                        f.problems.push(format!(
                            "{w}: only {mb} MB free in {} (at least {MIN_FREE_MB} MB wanted)",
                            host.dir
                        ));
                    }
                    f.free_mb = Some(mb);
                }
                None => f
                    .problems
                    .push(format!("{w}: cannot read df's answer: {}", df.trim())),
            }
        }
        Err(e) => f.problems.push(format!("{e:#}")),
    }
    match conn.run(&(target.command)(&dir), PROBE).await {
        Ok(o) => {
            let v = o.stdout.lines().next().unwrap_or("").trim().to_string();
            if v.is_empty() {
                f.problems.push(format!("{w}: {}", target.missing));
            } else {
                f.target = Some(v);
            }
        }
        Err(e) => f.problems.push(format!("{e:#}")),
    }
    let best = clock_offset(&conn).await;
    match best {
        Some((offset, half)) => {
            if offset.abs() - half > MAX_OFFSET_MS {
                f.problems.push(format!(
                    "{w}: its clock is {offset:+.0} ms (± {half:.0}) off this machine's (more than {MAX_OFFSET_MS} ms: run NTP)"
                ));
            }
            f.clock_offset_ms = Some((offset, half));
        }
        None => f.problems.push(format!("{w}: cannot read its clock")),
    }
    conn.close().await;
    f
}
