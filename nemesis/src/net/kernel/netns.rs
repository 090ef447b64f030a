//! Network namespaces without names: one is made by a short-lived thread
//! that unshares its own network namespace and opens it, and lives as long
//! as its file descriptor or a process inside it, so that it disappears
//! with the controller even after SIGKILL. Commands (`ip`, `nft`, `tc`)
//! and node processes enter one by `setns` in the child before exec.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// One network namespace, held open by a file descriptor.
#[derive(Debug)]
pub struct Namespace {
    file: File,
}

fn unshare_net() -> io::Result<()> {
    // SAFETY: unshare(2) only changes the calling thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn setns_net(fd: RawFd) -> io::Result<()> {
    // SAFETY: setns(2) only changes the calling thread's namespace; fd is open.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Namespace {
    /// A new, empty network namespace (only `lo`, down). The calling
    /// thread stays where it is.
    pub fn new() -> io::Result<Namespace> {
        std::thread::spawn(|| -> io::Result<Namespace> {
            unshare_net()?;
            let file = File::open("/proc/thread-self/ns/net")?;
            Ok(Namespace { file })
        })
        .join()
        .map_err(|_| io::Error::other("the namespace thread panicked"))?
    }

    /// The namespace's descriptor (valid while `self` lives).
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// A path that names the namespace to other programs (`ip … netns PATH`).
    pub fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.fd())
    }

    /// Make `cmd` start inside this namespace.
    pub fn enter_on_spawn(&self, cmd: &mut Command) {
        let fd = self.fd();
        // SAFETY: setns is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(move || setns_net(fd));
        }
    }

    /// Move the calling thread into this namespace (for a thread of its
    /// own, such as a benchmark's endpoint; never a runtime's worker).
    pub fn enter_this_thread(&self) -> io::Result<()> {
        setns_net(self.fd())
    }

    /// Run `program args…` inside this namespace, `input` on its stdin;
    /// returns its stdout, or an error with its stderr.
    pub fn run(&self, program: &str, args: &[&str], input: Option<&str>) -> Result<String, String> {
        let mut cmd = Command::new(which(program).unwrap_or_else(|| program.into()));
        cmd.args(args);
        self.enter_on_spawn(&mut cmd);
        run_command(cmd, program, args, input)
    }
}

/// Run `program args…` where the controller is, `input` on its stdin.
pub fn run_here(program: &str, args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new(which(program).unwrap_or_else(|| program.into()));
    cmd.args(args);
    run_command(cmd, program, args, input)
}

fn run_command(
    mut cmd: Command,
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, String> {
    let shown = || {
        let mut s = format!("{program} {}", args.join(" "));
        if let Some(i) = input {
            let first = i.lines().next().unwrap_or("");
            s.push_str(&format!(" <<< '{first}'…"));
        }
        s
    };
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", shown()))?;
    if let (Some(i), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(i.as_bytes())
            .map_err(|e| format!("{}: writing its input: {e}", shown()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", shown()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        Err(format!(
            "{} failed ({}): {}",
            shown(),
            out.status,
            err.trim()
        ))
    }
}

/// Move the whole controller into a fresh network namespace with only
/// `lo` (up), and allow the run's private range from then on. Call it on
/// the main thread before any other thread starts (the async runtime
/// among them): a namespace belongs to a thread, and only threads started
/// afterwards inherit it.
pub fn enter_private_network() -> Result<(), String> {
    check_prerequisites()?;
    unshare_net().map_err(|e| format!("cannot create a network namespace: {e}"))?;
    run_here("ip", &["link", "set", "lo", "up"], None)?;
    faultline_node::netpolicy::declare_sealed()
}

/// Move the whole process into a fresh network namespace with only `lo`
/// (up): its loopback ports are then its own. Like
/// [`enter_private_network`], before any other thread starts.
pub fn enter_own_loopback() -> Result<(), String> {
    unshare_net().map_err(|e| format!("cannot create a network namespace: {e}"))?;
    run_here("ip", &["link", "set", "lo", "up"], None).map(|_| ())
}

/// Check what the kernel backend needs: `ip` (iproute2), `nft` (nftables)
/// and permission to create network namespaces. The error names what is
/// missing and how to get it.
pub fn check_prerequisites() -> Result<(), String> {
    for (program, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if which(program).is_none() {
            return Err(format!(
                "--net kernel needs '{program}', which is not on PATH: install the Debian package {package} (apt-get install {package}), or use --net proxy"
            ));
        }
    }
    let ns = Namespace::new().map_err(|e| {
        format!("--net kernel needs permission to create network namespaces (run as root, or with CAP_SYS_ADMIN and CAP_NET_ADMIN): {e}; or use --net proxy")
    })?;
    ns.run("nft", &["list", "tables"], None).map_err(|e| {
        format!("--net kernel: nftables does not work here: {e}; or use --net proxy")
    })?;
    Ok(())
}

/// Whether the kernel has `tc netem` (tried in a throw-away namespace).
pub fn netem_available() -> Result<bool, String> {
    let ns = Namespace::new().map_err(|e| format!("creating a network namespace: {e}"))?;
    ns.run("ip", &["link", "set", "lo", "up"], None)?;
    match ns.run(
        "tc",
        &["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
        None,
    ) {
        Ok(_) => Ok(true),
        // "Specified qdisc kind is unknown." (no sch_netem), or no `tc`.
        Err(e) if e.contains("unknown") || e.contains("No such file") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Where `program` is on PATH.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
