//! A run on the hosts of an inventory (`faultline run --hosts`): one
//! member per host, started, signalled and stopped over one multiplexed
//! OpenSSH connection per host ([`faultline_hosts::ssh`]).
//!
//! On each host the run lives in `DIR/runs/RUN` (DIR: the inventory's
//! working directory) with its members' data and logs in `nodes/`, and a
//! marker `DIR/faultline-run.marker` names it while it is live. Members
//! start in a session of their own (`setsid`) with `FAULTLINE_RUN=RUN@HOST`
//! in their environment: that is how the end of a run, or `faultline hosts
//! clean` after a killed controller, finds exactly the processes the run
//! started and nothing else. The network faults' nftables table is
//! `inet faultline_RUN` ([`crate::net::kernel`] builds its rules).
//!
//! Over 600 lines: preparing, watching and cleaning a run's hosts share the
//! run's marker, tag and directory rules, which must agree; the tests are in
//! `hosts/tests.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use faultline_hosts::inventory::Host;
use faultline_hosts::ssh::{quote, who, Connection};
use faultline_rundir::records::{HostEntry, HostsRecord};

use crate::addrs::NodeAddrs;

/// The marker of a live run, in a host's working directory.
pub const MARKER: &str = "faultline-run.marker";
/// How long one command on a host may take.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(15);
/// How often each host's connection is checked.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How long copying a member's files back may take.
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(300);

/// The environment variable that tags a run's processes on a host.
pub const RUN_ENV: &str = "FAULTLINE_RUN";

/// One host of a run.
pub struct RunHost {
    /// Its inventory entry.
    pub host: Host,
    /// The address its member listens on.
    pub addr: IpAddr,
    conn: Connection,
    /// The working directory, absolute.
    pub dir: String,
    /// The run's directory on the host: `DIR/runs/RUN`.
    pub run_dir: String,
    /// `RUN@HOST`, the value of [`RUN_ENV`] of the run's processes there.
    pub tag: String,
    /// Its clock minus this machine's, ms, and the uncertainty.
    pub clock_offset_ms: Option<(f64, f64)>,
    /// Local program → its path on the host.
    programs: BTreeMap<PathBuf, String>,
    lost: Mutex<Option<String>>,
    /// The shell kept running there for the run's commands (started at
    /// the first one; dropped when it fails, to be started again).
    shell: Mutex<Option<faultline_hosts::ssh::Shell>>,
}

impl std::fmt::Debug for RunHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", who(&self.host), self.run_dir)
    }
}

impl RunHost {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.host.name
    }

    /// Why it is lost, once it stopped answering.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn mark_lost(&self, why: String) {
        let mut l = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        if l.is_none() {
            *l = Some(why);
        }
    }

    /// Run `script` there (bounded); a host found not answering is marked
    /// lost, and later commands fail at once.
    pub fn sh(&self, what: &str, script: &str) -> anyhow::Result<String> {
        self.sh_with(what, script, None)
    }

    /// [`RunHost::sh`] with `input` on the script's stdin.
    pub fn sh_with(&self, what: &str, script: &str, input: Option<&str>) -> anyhow::Result<String> {
        if let Some(why) = self.lost() {
            bail!("{what} skipped: {why}");
        }
        // The kept shell first; a fresh ssh session when it cannot answer
        // (which also tells a lost host from a broken shell).
        {
            let mut shell = self.shell.lock().unwrap_or_else(|e| e.into_inner());
            if shell.is_none() {
                *shell = self.conn.shell().ok();
            }
            if let Some(sh) = shell.as_mut() {
                match sh.run(script, input, COMMAND_LIMIT) {
                    Ok((0, out)) => return Ok(out),
                    Ok((code, out)) => bail!(
                        "{}: {what} failed (exit {code}): {}",
                        who(&self.host),
                        nonempty(
                            out.lines()
                                .map(str::trim)
                                .find(|l| !l.is_empty())
                                .unwrap_or("")
                        )
                    ),
                    Err(faultline_hosts::ssh::ShellError::Silent(limit)) => {
                        *shell = None;
                        let why = format!(
                            "{} stopped answering (no answer within {limit:?})",
                            who(&self.host)
                        );
                        self.mark_lost(why.clone());
                        bail!("{what}: {why}")
                    }
                    Err(faultline_hosts::ssh::ShellError::Gone(_)) => *shell = None,
                }
            }
        }
        let out = self
            .conn
            .run_blocking(script, input.map(str::as_bytes), COMMAND_LIMIT);
        match out {
            Ok(o) if o.code == Some(0) => Ok(o.stdout),
            Ok(o) if o.code == Some(255) || o.code.is_none() => {
                let why = format!(
                    "{} stopped answering (ssh: {})",
                    who(&self.host),
                    nonempty(o.first_error_line())
                );
                self.mark_lost(why.clone());
                bail!("{what}: {why}")
            }
            Ok(o) => bail!(
                "{}: {what} failed (exit {}): {}",
                who(&self.host),
                o.code.unwrap_or(-1),
                nonempty(o.first_error_line())
            ),
            Err(e) => {
                let why = format!("{e:#}");
                self.mark_lost(why.clone());
                bail!("{what}: {why}")
            }
        }
    }

    /// The shell line that starts a member (its command as a target built
    /// it) in a session of its own, tagged, with its output appended to
    /// `log`; it prints the member's pid, waits for it and prints its exit.
    pub fn start_script(&self, cmd: &std::process::Command, log: &str) -> anyhow::Result<String> {
        let local = PathBuf::from(cmd.get_program());
        let program = self
            .programs
            .get(&local)
            .cloned()
            .with_context(|| format!("{} has no copy of {}", self.name(), local.display()))?;
        // `cd … || exit` on a line of its own: `cd … && prog &` would put
        // the cd and the program in a background subshell, whose pid is
        // not the member's.
        let mut line = format!("cd {} || exit 1; ", quote(&self.run_dir));
        line.push_str(&format!("{RUN_ENV}={} ", quote(&self.tag)));
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                line.push_str(&format!(
                    "{}={} ",
                    k.to_string_lossy(),
                    quote(&v.to_string_lossy())
                ));
            }
        }
        line.push_str(&format!("setsid {}", quote(&program)));
        for a in cmd.get_args() {
            line.push(' ');
            line.push_str(&quote(&a.to_string_lossy()));
        }
        line.push_str(&format!(
            " >>{} 2>&1 </dev/null & echo $!; wait $!; echo \"exit $?\"",
            quote(log)
        ));
        Ok(line)
    }

    /// A command of this machine that runs `script` there (for a member's
    /// long-lived start line).
    pub fn command(&self, script: &str) -> std::process::Command {
        self.conn.blocking_command(script)
    }

    /// Send `signal` to the process group `pgid` (a member's session).
    /// (`kill -SIG -PGID`: dash's kill takes no `--`.)
    pub fn signal(&self, pgid: u32, signal: &str) -> anyhow::Result<()> {
        self.sh(
            &format!("sending SIG{signal} to member process group {pgid}"),
            &format!("kill -{signal} -{pgid} 2>/dev/null || true"),
        )
        .map(|_| ())
    }

    /// The last `n` non-empty lines of a file of the run's directory there.
    pub fn tail(&self, rel: &str, n: usize) -> String {
        self.sh(
            "reading a member log",
            &format!(
                "cd {} && grep -v '^[[:space:]]*$' {} | tail -n {n}",
                quote(&self.run_dir),
                quote(rel)
            ),
        )
        .map(|t| {
            let lines: Vec<String> = t.lines().map(|l| l.chars().take(300).collect()).collect();
            if lines.is_empty() {
                "(empty)".into()
            } else {
                lines.join(" | ")
            }
        })
        .unwrap_or_else(|e| format!("(cannot read it: {e:#})"))
    }

    fn run_on(&self, script: &str) -> anyhow::Result<String> {
        self.sh("a command of the run", script)
    }
}

fn nonempty(s: &str) -> &str {
    if s.is_empty() {
        "no answer"
    } else {
        s
    }
}

/// The hosts of one run, from setup to teardown.
pub struct HostsRun {
    /// The run's id.
    pub run: String,
    /// The inventory it came from.
    pub inventory: PathBuf,
    hosts: Vec<Arc<RunHost>>,
    local_dir: PathBuf,
    record: HostsRecord,
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

/// The run's id: the time and this process (letters and digits: it is in
/// an nft table's name).
pub fn new_run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("r{ms:x}{:x}", std::process::id())
}

/// The first `n` hosts of `inventory` and their member addresses, or the
/// reason the inventory cannot carry an `n`-member run: checked before
/// anything is made or contacted (too few hosts, a host without an
/// address, two hosts with one address).
pub fn members(inventory: &Path, n: usize) -> anyhow::Result<(Vec<Host>, Vec<std::net::IpAddr>)> {
    let all = faultline_hosts::inventory::load(inventory)?;
    if all.len() < n {
        bail!(
            "{}: {} hosts for {n} members: a --hosts run puts one member on each host",
            inventory.display(),
            all.len()
        );
    }
    let chosen: Vec<Host> = all.into_iter().take(n).collect();
    let mut addrs = Vec::new();
    for h in &chosen {
        let a = h.address.with_context(|| {
                format!(
                    "{}: host {:?} has no address (give the address its peers and the clients reach it at: address = \"…\")",
                    inventory.display(),
                    h.name
                )
            })?;
        if addrs.contains(&a) {
            bail!(
                "{}: host {:?} has the address {a} of another host",
                inventory.display(),
                h.name
            );
        }
        addrs.push(a);
    }
    Ok((chosen, addrs))
}

impl HostsRun {
    /// Connect to the first `n` hosts of `inventory` (all at once), refuse
    /// a host where another run's marker is live, mark each host, and put
    /// the member's `program` there: copied when its checksum differs
    /// (`upload`), else found on the login's PATH by its file name (etcd).
    /// `local_dir` is the run directory here. If any host fails, the
    /// others are unmarked and the first error is returned.
    pub async fn start(
        inventory: &Path,
        n: usize,
        local_dir: &Path,
        program: &Path,
        upload: bool,
    ) -> anyhow::Result<HostsRun> {
        let started = Instant::now();
        let (chosen, addrs) = members(inventory, n)?;
        faultline_node::netpolicy::allow_inventory(&addrs);
        let run = new_run_id();
        let opened = futures::future::join_all(chosen.iter().map(Connection::open)).await;
        let mut conns = Vec::new();
        for c in opened {
            conns.push(c?);
        }
        // Every host at once: the copy of the node is most of it.
        let set_up = futures::future::join_all(conns.iter().map(|conn| async {
            let t0 = Instant::now();
            let placed = set_up_host(conn, &run, program, upload, inventory).await;
            let clock = faultline_hosts::check::clock_offset(conn).await;
            placed.map(|p| (p, clock, t0.elapsed().as_secs_f64()))
        }))
        .await;
        let mut hosts: Vec<Arc<RunHost>> = Vec::new();
        let mut entries = Vec::new();
        let mut first_err = None;
        for ((conn, addr), r) in conns.into_iter().zip(addrs).zip(set_up) {
            let ((dir, placed, copied), clock, took) = match r {
                Ok(r) => r,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let h = conn.host.clone();
            entries.push(HostEntry {
                node: format!("n{}", entries.len() + 1),
                host: h.name.clone(),
                ssh: h.ssh.clone(),
                address: addr.to_string(),
                clock_offset_ms: clock.map(|c| c.0),
                clock_uncertainty_ms: clock.map(|c| c.1),
                copied,
                setup_s: took,
                teardown_s: None,
            });
            hosts.push(Arc::new(RunHost {
                addr,
                tag: format!("{run}@{}", h.name),
                run_dir: format!("{dir}/runs/{run}"),
                dir,
                clock_offset_ms: clock,
                programs: BTreeMap::from([(program.to_path_buf(), placed)]),
                lost: Mutex::new(None),
                shell: Mutex::new(None),
                host: h,
                conn,
            }));
        }
        if let Some(e) = first_err {
            // The hosts that were set up give their markers back.
            unmark(&hosts);
            return Err(e);
        }
        let record = HostsRecord {
            run: run.clone(),
            inventory: inventory.display().to_string(),
            hosts: entries,
            setup_s: started.elapsed().as_secs_f64(),
            teardown_s: None,
        };
        std::fs::write(
            faultline_rundir::RunDir::new(local_dir).hosts(),
            serde_json::to_vec_pretty(&record)?,
        )
        .context("writing hosts.json")?;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let hosts = hosts.clone();
            let stop = stop.clone();
            std::thread::spawn(move || watch(&hosts, &stop))
        };
        Ok(HostsRun {
            run,
            inventory: inventory.to_path_buf(),
            hosts,
            local_dir: local_dir.to_path_buf(),
            record,
            stop,
            watcher: Some(watcher),
        })
    }

    /// The hosts, one per member slot, in order.
    pub fn hosts(&self) -> &[Arc<RunHost>] {
        &self.hosts
    }

    /// Each slot's addresses: `n1` on the first host, and so on.
    pub fn addrs(&self) -> Vec<NodeAddrs> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| NodeAddrs {
                id: format!("n{}", i + 1),
                listen: SocketAddr::new(h.addr, h.host.peer_port),
                client: SocketAddr::new(h.addr, h.host.client_port),
            })
            .collect()
    }

    /// End the run on every host: kill what is left of its processes, copy
    /// each member's `nodes/` files back into the run directory here, and
    /// remove the run's directory and marker there. A host that stopped
    /// answering keeps what the run left: the returned lines say so.
    pub fn finish(&mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        let started = Instant::now();
        let mut problems = Vec::new();
        let local_nodes = faultline_rundir::RunDir::new(&self.local_dir).nodes();
        let local_parent = local_nodes
            .parent()
            .unwrap_or(&self.local_dir)
            .to_path_buf();
        for (i, h) in self.hosts.iter().enumerate() {
            let t0 = Instant::now();
            if let Some(why) = h.lost() {
                problems.push(format!(
                    "{why}: run {} may have left processes, an nft table and {} there; `faultline hosts clean {}` removes them once it answers",
                    self.run,
                    h.run_dir,
                    self.inventory.display()
                ));
                continue;
            }
            let _ = h.run_on(&sweep_script(&h.tag));
            if let Err(e) =
                h.conn
                    .download_dir_blocking(&h.run_dir, "nodes", &local_parent, DOWNLOAD_LIMIT)
            {
                problems.push(format!("copying {}'s member files back: {e:#}", h.name()));
                // Keep them there rather than lose them.
                continue;
            }
            if let Err(e) = h.run_on(&remove_script(&h.dir, &self.run)) {
                problems.push(format!("{e:#}"));
            }
            self.record.hosts[i].teardown_s = Some(t0.elapsed().as_secs_f64());
        }
        self.record.teardown_s = Some(started.elapsed().as_secs_f64());
        let rd = faultline_rundir::RunDir::new(&self.local_dir);
        if let Ok(json) = serde_json::to_vec_pretty(&self.record) {
            if let Err(e) = std::fs::write(rd.hosts(), json) {
                problems.push(format!("writing {}: {e}", rd.hosts().display()));
            }
        }
        problems
    }
}

impl Drop for HostsRun {
    fn drop(&mut self) {
        if self.watcher.is_some() {
            for p in self.finish() {
                eprintln!("faultline: {p}");
            }
        }
        // Each connection's control master exits as it is dropped.
        self.hosts.clear();
        faultline_hosts::ssh::remove_control_dir();
    }
}

/// Set one host up for run `run`: its working directory (absolute), the
/// run's marker (refused where another run's is live) and directory, and
/// the member's program there. Returns the directory, the program's path
/// there and whether it was copied. A failure after marking unmarks.
async fn set_up_host(
    conn: &Connection,
    run: &str,
    program: &Path,
    upload: bool,
    inventory: &Path,
) -> anyhow::Result<(String, String, bool)> {
    let h = &conn.host;
    let w = who(h);
    let dir = conn
        .sh(
            "creating the working directory",
            &format!("mkdir -p {d} && cd {d} && pwd", d = quote(&h.dir)),
            COMMAND_LIMIT,
        )
        .await?
        .trim()
        .to_string();
    let run_dir = format!("{dir}/runs/{run}");
    let mark = format!(
        "cd {d} && if [ -e {MARKER} ]; then printf 'LIVE '; tr '\\n' ' ' < {MARKER}; exit 0; fi; \
         (set -C; printf 'run=%s\\ncontroller=%s\\nstarted=%s\\n' {run} \"${{SSH_CLIENT%% *}}\" \"$(date -u +%FT%TZ)\" > {MARKER}) && \
         mkdir -p {r}/nodes && echo OK",
        d = quote(&dir),
        r = quote(&run_dir),
    );
    let said = conn.sh("marking the run", &mark, COMMAND_LIMIT).await?;
    if let Some(live) = said.trim().strip_prefix("LIVE ") {
        bail!(
            "{w}: another run is marked live in {dir} ({}): if it is over, `faultline hosts clean {}` removes what it left",
            live.trim(),
            inventory.display()
        );
    }
    let name = program
        .file_name()
        .map_or("member".into(), |f| f.to_string_lossy().into_owned());
    let placed = if upload {
        let remote = format!("{dir}/bin/{name}");
        conn.upload_if_changed(program, &remote, Duration::from_secs(600))
            .await
            .map(|copied| (remote, copied))
    } else {
        conn.sh(
            "finding the target",
            &format!("command -v {} || true", quote(&name)),
            COMMAND_LIMIT,
        )
        .await
        .and_then(|p| {
            let p = p.trim().to_string();
            if p.is_empty() {
                bail!("{w}: no {name} on the login's PATH (install it there; for etcd: the package etcd-server)")
            }
            Ok((p, false))
        })
    };
    match placed {
        Ok((p, copied)) => Ok((dir, p, copied)),
        Err(e) => {
            let _ = conn.run(&remove_script(&dir, run), COMMAND_LIMIT).await;
            Err(e)
        }
    }
}

/// Remove the markers that this setup wrote before it failed.
fn unmark(marked: &[Arc<RunHost>]) {
    for h in marked {
        let run = h.tag.split('@').next().unwrap_or("");
        let _ = h.run_on(&remove_script(&h.dir, run));
    }
}

/// Kill every process whose environment carries exactly `RUN_ENV=tag`.
pub fn sweep_script(tag: &str) -> String {
    format!(
        "n=0; for p in /proc/[0-9]*; do \
         if tr '\\0' '\\n' < $p/environ 2>/dev/null | grep -qxF {t}; then kill -KILL ${{p#/proc/}} 2>/dev/null && n=$((n+1)); fi; \
         done; echo $n",
        t = quote(&format!("{RUN_ENV}={tag}"))
    )
}

/// Remove run `run`'s directory under `dir` and its marker (only if the
/// marker is that run's), never through a mount: every mount below the
/// run's directory is unmounted first, deepest first (mountinfo's octal
/// escapes undone, so a path with a space is named as it is), then the
/// directory is removed only if nothing is mounted below it any more, and
/// `rm` does not cross into another filesystem even so. Prints one line:
/// mounts unmounted, mounts still in place, and `removed`, `kept` (a
/// mount stayed, or rm failed) or `none` (no directory).
pub fn remove_script(dir: &str, run: &str) -> String {
    // Undo mountinfo's \ooo escapes (space, tab, newline, backslash).
    const MOUNTS: &str = r#"awk -v d="$d" 'function un(s,  o, i, c) { o = ""; for (i = 1; i <= length(s); i++) { c = substr(s, i, 1); if (c == "\\" && substr(s, i + 1, 3) ~ /^[0-7][0-7][0-7]$/) { o = o sprintf("%c", substr(s, i + 1, 1) * 64 + substr(s, i + 2, 1) * 8 + substr(s, i + 3, 1)); i += 3 } else { o = o c } } return o } { p = un($5); if (p == d || index(p, d "/") == 1) print p }' /proc/self/mountinfo | sort -r"#;
    format!(
        "cd {d} || {{ echo '0 0 none'; exit 0; }}; d=\"$(pwd -P)/runs/{r}\"; \
         set -f; m=0; list=$({MOUNTS}); old_ifs=$IFS; IFS='\n'; \
         for p in $list; do if umount \"$p\" 2>/dev/null || umount -l \"$p\" 2>/dev/null; then m=$((m+1)); fi; done; \
         IFS=$old_ifs; left=$({MOUNTS} | wc -l); \
         if [ ! -d \"$d\" ]; then st=none; \
         elif [ \"$left\" -ne 0 ]; then st=kept; \
         elif rm -rf --one-file-system \"$d\" 2>/dev/null && [ ! -d \"$d\" ]; then st=removed; \
         else st=kept; fi; \
         rmdir runs 2>/dev/null; \
         if [ \"$st\" != kept ] && grep -qx 'run={r}' {MARKER} 2>/dev/null; then rm -f {MARKER}; fi; \
         echo \"$m $left $st\"",
        d = quote(dir),
        r = run
    )
}

/// Check every [`WATCH_EVERY`] that each host's control master is still
/// there (its keep-alive gives up on a silent host), and that the run's
/// marker is still the host's (someone ran `hosts clean` against this live
/// run: its members are gone, and its clients could reach the next run's
/// cluster on the same ports), until `stop`. The marker is read through
/// the kept shell, one `grep` per check.
fn watch(hosts: &[Arc<RunHost>], stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        for h in hosts {
            if h.lost().is_none() && !stop.load(Ordering::SeqCst) && !h.conn.master_alive() {
                h.mark_lost(format!(
                    "{} stopped answering (ssh's keep-alive gave up on it)",
                    who(&h.host)
                ));
            }
            if h.lost().is_none() && !stop.load(Ordering::SeqCst) {
                let run = h.tag.split('@').next().unwrap_or("");
                let check = format!(
                    "cd {} && if grep -qx 'run={run}' {MARKER} 2>/dev/null; then echo ours; else echo gone; fi",
                    quote(&h.dir)
                );
                if h.run_on(&check).is_ok_and(|o| o.trim() == "gone") {
                    h.mark_lost(format!(
                        "{}: the run's marker {}/{MARKER} is gone (was `faultline hosts clean` run against this live run?)",
                        who(&h.host),
                        h.dir
                    ));
                }
            }
        }
        let until = Instant::now() + WATCH_EVERY;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `faultline hosts clean` on one host: every run named by its marker or
/// by a directory in `DIR/runs`: kill the processes tagged with that run
/// (and this host), unmount what is mounted in its directory, delete its
/// nftables table, remove its directory and its marker. Returns what was
/// done, in one line.
pub async fn clean_host(h: &faultline_hosts::inventory::Host) -> anyhow::Result<String> {
    use faultline_hosts::ssh::{quote, Connection};
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
        let table = crate::net::kernel::nft::host_table(run);
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

#[cfg(test)]
mod tests;
