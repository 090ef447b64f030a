//! One `faultline-node` OS process: start, stop, crash, restart, pause, resume.
//!
//! Each node runs in its own process group, so a signal reaches the node and
//! anything it might start. The child also gets `PR_SET_PDEATHSIG = SIGKILL`,
//! so it dies with the controller even if the controller is killed before it
//! can clean up. Dropping a [`NodeProcess`] kills and reaps it (a paused one
//! too: SIGKILL ends a stopped process).
//!
//! Over 600 lines: a member's life — start (here or on a host), signal,
//! pause, kill, reap and the sweep of what it left — is one state machine
//! whose local and remote halves must agree, so they stay side by side.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;

use faultline_sut::{Member, Target};
use std::time::{Duration, Instant};

/// The program that runs a node: `faultline-node`, or any program followed
/// by fixed leading arguments (`faultline node`).
pub use faultline_sut::Program as NodeCommand;

/// How to start one node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node's id.
    pub id: String,
    /// Its peer address.
    pub listen: SocketAddr,
    /// Its client address.
    pub client: SocketAddr,
    /// Where it reaches each peer (in a faultline run: the proxy of that link).
    pub peers: Vec<(String, SocketAddr)>,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its log file (stdout and stderr, appended across restarts).
    pub log_file: PathBuf,
    /// Further flags (timeouts and such).
    pub extra_args: Vec<String>,
    /// The initial voters (`--voters`); empty to let the node use itself and its peers.
    pub voters: Vec<String>,
    /// The network namespace to start in (the kernel backend); `None`:
    /// where the controller is.
    pub netns: Option<std::sync::Arc<crate::net::kernel::netns::Namespace>>,
    /// The host to start on (`--hosts`): its data directory and log are
    /// then in the run's directory there, and `data_dir` and `log_file`
    /// are where they are copied back to at the end.
    pub host: Option<Arc<crate::hosts::RunHost>>,
}

/// The state of a node process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    /// Running.
    Running,
    /// Stopped with SIGSTOP.
    Paused,
    /// Not running (killed, stopped, or exited).
    Down,
}

/// A node process under the controller's hand.
pub struct NodeProcess {
    spec: NodeSpec,
    target: Arc<dyn Target>,
    child: Option<Child>,
    paused: bool,
    /// Start with `--join` (outside the configuration) instead of `--voters`.
    join: bool,
    /// On a host: the member's pid there (its session and process group);
    /// `child` is then this machine's ssh that waits for it.
    remote_pid: Option<u32>,
}

/// Process groups started by this controller and not yet killed, each
/// with its member's tag: what [`kill_every_group`] ends. A group outlives
/// its leader when the member started children of its own (an `etcd`
/// wrapper script, say).
static GROUPS: std::sync::Mutex<std::collections::BTreeMap<u32, Tracked>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// What finds a member's processes: its tag, and its cgroup where the
/// machine gives it one.
struct Tracked {
    tag: String,
    cgroup: Option<crate::cgroup::MemberCgroup>,
}

fn groups() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<u32, Tracked>> {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kill everything of `m`: its cgroup at once, then whatever still
/// carries its tag.
fn end_member(m: &Tracked, leaders: &[u32]) {
    if let Some(cg) = &m.cgroup {
        cg.kill_and_remove(leaders);
    }
    kill_tagged(&m.tag, leaders);
}

/// The environment variable every member starts with: a tag of its own
/// (`<controller pid>.<n>`). Its descendants inherit it wherever they go —
/// a new session, a double fork, another program — so when the member is
/// killed, every process that still carries its tag is killed too.
pub const MEMBER_ENV: &str = "FAULTLINE_MEMBER";

fn next_tag() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!(
        "{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Make this process the subreaper of everything it starts
/// (`PR_SET_CHILD_SUBREAPER`): a member's descendant whose parent exits
/// (the setsid-and-fork-again of a daemon) becomes this process's child
/// instead of init's, so it is reaped here and never outlives the
/// controller unseen. For the commands that start members, before any
/// thread starts.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments; touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// SIGKILL every process that carries member tag `tag` (the member and
/// all its descendants, in whatever session or group they are now), and
/// reap the ones that were reparented to this process. Bounded: at most
/// five passes over /proc (a descendant forking while it is killed is
/// caught by the next).
fn kill_tagged(tag: &str, leaders: &[u32]) {
    let needle = format!("{MEMBER_ENV}={tag}\0");
    let me = std::process::id();
    for _ in 0..5 {
        let mut found = 0;
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in procs.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if !env.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                continue;
            }
            found += 1;
            // SAFETY: kill(2) with a pid; no memory is touched.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            // A reparented orphan is ours to reap (a member itself is
            // reaped by its Child handle, not here).
            let ours = crate::cgroup::parent_of(pid) == Some(me);
            if ours && !leaders.contains(&pid) && !groups().contains_key(&pid) {
                let deadline = Instant::now() + Duration::from_secs(2);
                // SAFETY: waitpid on our own child; status is ours.
                while unsafe {
                    libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG)
                } == 0
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        if found == 0 {
            return;
        }
    }
}

/// SIGKILL every process group this controller started and has not killed
/// yet, children of its members included. For a signal handler or a panic
/// hook: a paused group is killed too (SIGKILL ends stopped processes).
pub fn kill_every_group() {
    let all: Vec<(u32, Tracked)> = std::mem::take(&mut *groups()).into_iter().collect();
    for (pgid, _) in &all {
        let _ = signal_group(*pgid, libc::SIGKILL);
    }
    let leaders: Vec<u32> = all.iter().map(|(p, _)| *p).collect();
    for (_, m) in &all {
        end_member(m, &leaders);
    }
}

/// Kill one group (its leader may be gone; its children are not), and
/// every descendant that left it, and forget it.
fn end_group(pgid: u32) {
    let _ = signal_group(pgid, libc::SIGKILL);
    let member = groups().remove(&pgid);
    if let Some(m) = member {
        end_member(&m, &[pgid]);
    }
}

fn signal_group(pid: u32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
    let r = unsafe { libc::kill(-(pid as libc::pid_t), sig) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl NodeProcess {
    /// Start the node described by `spec` with the binary `bin`.
    pub fn start(target: &Arc<dyn Target>, spec: NodeSpec) -> io::Result<Self> {
        let mut p = Self::not_started(target, spec);
        p.spawn()?;
        Ok(p)
    }

    /// A node that is not running yet (a spare that may join later).
    pub fn not_started(target: &Arc<dyn Target>, spec: NodeSpec) -> Self {
        NodeProcess {
            spec,
            target: target.clone(),
            child: None,
            paused: false,
            join: false,
            remote_pid: None,
        }
    }

    /// Start a new server in this slot: kill whatever runs, wipe the data
    /// directory, and start with `--join`, outside the configuration, to be
    /// added by a membership change.
    pub fn start_fresh(&mut self) -> io::Result<()> {
        self.kill();
        if let Some(h) = self.spec.host.clone() {
            h.sh(
                "wiping a member's data directory",
                &format!(
                    "rm -rf {}",
                    faultline_hosts::ssh::quote(&remote_data(&h, &self.spec.id))
                ),
            )
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
            self.join = true;
            return self.spawn();
        }
        match std::fs::remove_dir_all(&self.spec.data_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("wiping {}: {e}", self.spec.data_dir.display()),
                ))
            }
        }
        self.join = true;
        self.spawn()
    }

    fn spawn(&mut self) -> io::Result<()> {
        if let Some(h) = self.spec.host.clone() {
            return self.spawn_remote(&h);
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log_file)?;
        let log2: File = log.try_clone()?;
        let s = &self.spec;
        let mut cmd = self.target.command(&Member {
            id: &s.id,
            listen: s.listen,
            client: s.client,
            peers: &s.peers,
            data_dir: &s.data_dir,
            settings: &s.extra_args,
            voters: &s.voters,
            join: self.join,
        });
        let program = cmd.get_program().to_string_lossy().into_owned();
        let tag = next_tag();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .env(MEMBER_ENV, &tag)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if let Some(ns) = &s.netns {
            ns.enter_on_spawn(&mut cmd);
        }
        let mut cgroup = crate::cgroup::MemberCgroup::make(&tag);
        if let Some(cg) = &cgroup {
            cg.join_on_spawn(&mut cmd);
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                if let Some(cg) = &cgroup {
                    cg.kill_and_remove(&[]);
                }
                return Err(io::Error::new(e.kind(), format!("starting {program}: {e}")));
            }
        };
        if let Some(cg) = &mut cgroup {
            cg.started();
        }
        groups().insert(child.id(), Tracked { tag, cgroup });
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// Start the member on its host, over ssh: this machine keeps an ssh
    /// process that prints the member's pid and waits for it to end.
    fn spawn_remote(&mut self, h: &Arc<crate::hosts::RunHost>) -> io::Result<()> {
        use std::io::BufRead;
        let s = &self.spec;
        let data = remote_data(h, &s.id);
        let cmd = self.target.command(&Member {
            id: &s.id,
            listen: s.listen,
            client: s.client,
            peers: &s.peers,
            data_dir: std::path::Path::new(&data),
            settings: &s.extra_args,
            voters: &s.voters,
            join: self.join,
        });
        let script = h
            .start_script(&cmd, &format!("nodes/{}.log", s.id))
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
        let mut child = h
            .command(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting ssh: {e}")))?;
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let line = rx
            .recv_timeout(crate::hosts::COMMAND_LIMIT)
            .unwrap_or_default();
        match line.trim().parse::<u32>() {
            Ok(pid) => {
                self.remote_pid = Some(pid);
                self.child = Some(child);
                self.paused = false;
                Ok(())
            }
            Err(_) => {
                let _ = faultline_hosts::ssh::wait_bounded(&mut child, Duration::ZERO);
                Err(io::Error::other(format!(
                    "starting {} on host {}: no pid came back ({})",
                    s.id,
                    h.name(),
                    h.lost().unwrap_or_else(|| "ssh ended".into())
                )))
            }
        }
    }

    /// The last `n` non-empty lines of the member's log (read over ssh
    /// for a member on a host).
    pub fn log_tail(&self, n: usize) -> String {
        match &self.spec.host {
            Some(h) => h.tail(&format!("nodes/{}.log", self.spec.id), n),
            None => file_tail(&self.spec.log_file, n),
        }
    }

    /// Signal the member on its host; a host that does not answer is
    /// an error (and marked lost).
    fn signal_remote(&self, sig: &str) -> io::Result<()> {
        match (&self.spec.host, self.remote_pid) {
            (Some(h), Some(pid)) => h
                .signal(pid, sig)
                .map_err(|e| io::Error::other(format!("{e:#}"))),
            _ => Ok(()),
        }
    }

    /// Reap this machine's ssh of a member on a host, bounded.
    fn reap_remote(&mut self, limit: Duration) {
        if let Some(mut c) = self.child.take() {
            let _ = faultline_hosts::ssh::wait_bounded(&mut c, limit);
        }
        self.remote_pid = None;
        self.paused = false;
    }

    /// The node's spec.
    pub fn spec(&self) -> &NodeSpec {
        &self.spec
    }

    /// Move the node to other ports (takes effect at the next start).
    pub fn set_addrs(&mut self, listen: SocketAddr, client: SocketAddr) {
        self.spec.listen = listen;
        self.spec.client = client;
    }

    /// The node's id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The OS process id, while running or paused.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is running, paused or down (an exit is noticed here).
    pub fn state(&mut self) -> ProcState {
        let remote = self.spec.host.is_some();
        match self.child.as_mut() {
            None => ProcState::Down,
            Some(c) => match c.try_wait() {
                Ok(Some(_)) if remote => {
                    self.child = None;
                    self.remote_pid = None;
                    ProcState::Down
                }
                Ok(Some(_)) => {
                    // Whatever it started dies with it.
                    end_group(c.id());
                    self.child = None;
                    ProcState::Down
                }
                _ if self.paused => ProcState::Paused,
                _ => ProcState::Running,
            },
        }
    }

    /// Crash: SIGKILL the process group and reap it.
    pub fn kill(&mut self) {
        if self.spec.host.is_some() {
            if self.child.is_some() {
                let _ = self.signal_remote("KILL");
                self.reap_remote(Duration::from_secs(10));
            }
            return;
        }
        if let Some(mut c) = self.child.take() {
            end_group(c.id());
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }

    /// Stop politely: SIGTERM, wait up to `grace`, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        if self.spec.host.is_some() && self.child.is_some() {
            if self.paused {
                let _ = self.signal_remote("CONT");
            }
            let _ = self.signal_remote("TERM");
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                    self.reap_remote(Duration::ZERO);
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        } else if let Some(c) = self.child.as_mut() {
            let pid = c.id();
            if self.paused {
                let _ = signal_group(pid, libc::SIGCONT);
            }
            let _ = signal_group(pid, libc::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    end_group(pid);
                    self.child = None;
                    self.paused = false;
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill();
    }

    /// Start again on the same data directory (kills first if still running).
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Pause with SIGSTOP.
    pub fn pause(&mut self) -> io::Result<()> {
        if self.spec.host.is_some() {
            self.signal_remote("STOP")?;
            self.paused = self.child.is_some();
            return Ok(());
        }
        if let Some(c) = &self.child {
            signal_group(c.id(), libc::SIGSTOP)?;
            self.paused = true;
        }
        Ok(())
    }

    /// Resume with SIGCONT.
    pub fn resume(&mut self) -> io::Result<()> {
        if self.spec.host.is_some() {
            self.signal_remote("CONT")?;
            self.paused = false;
            return Ok(());
        }
        if let Some(c) = &self.child {
            signal_group(c.id(), libc::SIGCONT)?;
        }
        self.paused = false;
        Ok(())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A member's data directory on its host (absolute).
fn remote_data(h: &crate::hosts::RunHost, id: &str) -> String {
    format!("{}/nodes/{id}", h.run_dir)
}

/// Whether a process with this pid exists (and is not a zombie of ours).
pub fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

pub use crate::addrs::free_port;

/// The last `n` non-empty lines of a log file, joined with " | " (each cut
/// to 300 characters), for an error message.
fn file_tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(n)
        .map(|l| l.chars().take(300).collect())
        .collect();
    if lines.is_empty() {
        return "(empty)".into();
    }
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}
