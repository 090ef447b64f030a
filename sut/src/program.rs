//! A production system's program: where it is (given by a flag, or on
//! PATH) and what its `--version` prints, asked in a process group of its
//! own, bounded in time and in output.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// An HTTP client for a member's API or monitoring port: no proxy from
/// the environment, every call bounded by `timeout`.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("building an HTTP client: {e}"))
}

/// How long `<program> --version` may take.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Where program `name` is: `explicit` (named by `flag`, checked to be a
/// file), or `name` on PATH; `missing` says how to install it.
pub fn locate(
    name: &str,
    explicit: Option<&Path>,
    flag: &str,
    missing: &str,
) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        let shown = crate::shown_path(p);
        return match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Ok(p.to_path_buf()),
            Ok(m) if m.is_dir() => Err(format!(
                "{flag} {shown}: is a directory; give the {name} program itself"
            )),
            Ok(_) => Err(format!("{flag} {shown}: is not a regular file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("{flag} {shown}: no such file"))
            }
            Err(e) => Err(format!("{flag} {shown}: {e}")),
        };
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| format!("{name} not found on PATH: {missing}"))
}

/// The version `bin --version` prints on its line starting with `prefix`
/// (`etcd Version:`, `nats-server: v`), checked to be at least `oldest`
/// (major, minor); `what` names the program in messages.
pub fn checked_version(
    bin: &Path,
    what: &str,
    prefix: &str,
    oldest: (u32, u32),
) -> Result<String, String> {
    let shown = crate::shown_path(bin);
    let text = version_text(bin, what)?;
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| {
            format!("{shown} --version did not print its version ({prefix} …); is it {what}?")
        })?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < oldest {
        return Err(format!(
            "{what} {version} at {} is not supported: faultline needs {what} {}.{} or newer",
            bin.display(),
            oldest.0,
            oldest.1
        ));
    }
    Ok(version)
}

/// What `bin --version` prints on standard output (at most 64 KiB). The
/// call runs in a process group of its own, bounded by
/// [`VERSION_TIMEOUT`]: a program that hangs is killed, with its children.
pub fn version_text(bin: &Path, what: &str) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let shown = crate::shown_path(bin);
    let mut child = std::process::Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("running {shown} --version: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stdout).take(64 << 10).read_to_end(&mut buf);
        buf
    });
    let deadline = std::time::Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                // SAFETY: kill(2) on the child's own process group.
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown} --version did not finish within {} s (is it {what}?)",
                    VERSION_TIMEOUT.as_secs()
                ));
            }
        }
    }
    // Children of the program that kept the pipe open end here.
    // SAFETY: kill(2) on the child's own process group.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let out = reader.join().unwrap_or_default();
    Ok(String::from_utf8_lossy(&out).into_owned())
}
