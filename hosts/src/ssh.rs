//! One multiplexed OpenSSH connection per host (the `openssh` crate drives
//! the system's `ssh` with a control master, so the user's own config,
//! agent and known hosts apply), and what faultline does over it: shell
//! commands bounded in time, uploads that skip an identical file, and
//! directories copied back with `tar`.
//!
//! A host that stops answering is noticed by ssh's keep-alive
//! ([`ALIVE_INTERVAL`] × ssh's `ServerAliveCountMax`, 3 by default) and by
//! the time limit of every command; nothing waits on it for ever.
//!
//! Over 600 lines: one connection's commands, copies, streams and time
//! limits share its multiplexed session and its error wording; splitting
//! them would spread one contract over files.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use tokio::io::AsyncWriteExt;

use crate::inventory::Host;

/// How long connecting to a host may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often ssh asks a silent host whether it is still there.
pub const ALIVE_INTERVAL: Duration = Duration::from_secs(3);
/// How long a control master outlives its last command: a controller
/// killed with SIGKILL leaves its masters for at most this long.
const MASTER_IDLE_S: usize = 120;

/// A remote command started with [`Connection::spawn`].
pub type RemoteChild = openssh::Child<Arc<Session>>;

/// An open connection to one host of the inventory.
pub struct Connection {
    /// The host it reaches.
    pub host: Host,
    session: Arc<Session>,
}

/// What a finished remote command left.
pub struct Output {
    /// Its exit code (None: killed by a signal, or ssh lost the host).
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Output {
    /// The first non-empty line of standard error, or "".
    pub fn first_error_line(&self) -> &str {
        self.stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
    }
}

impl Connection {
    /// Connect to `host` (its host key must already be known: ssh runs in
    /// batch mode with strict host-key checking).
    pub async fn open(host: &Host) -> anyhow::Result<Connection> {
        let mut b = SessionBuilder::default();
        b.known_hosts_check(KnownHosts::Strict)
            .connect_timeout(CONNECT_TIMEOUT)
            .server_alive_interval(ALIVE_INTERVAL)
            .control_directory(control_dir()?)
            .control_persist(ControlPersist::IdleFor(
                std::num::NonZeroUsize::new(MASTER_IDLE_S).expect("not zero"),
            ));
        if let Some(p) = host.port {
            b.port(p);
        }
        if let Some(k) = &host.identity {
            b.keyfile(k);
        }
        if let Some(c) = &host.ssh_config {
            b.config_file(c);
        }
        if let Some(k) = &host.known_hosts {
            b.user_known_hosts_file(k);
        }
        let connect = b.connect(&host.ssh);
        let session = tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(5), connect)
            .await
            .map_err(|_| anyhow::anyhow!("{}: no answer within {CONNECT_TIMEOUT:?}", who(host)))
            .and_then(|r| {
                r.map_err(|e| anyhow::anyhow!("{}: cannot connect: {}", who(host), one_line(&e)))
            });
        let session = match session {
            Ok(s) => s,
            Err(e) => {
                // A failed connect leaves no socket: the directory goes too
                // when no other connection uses it.
                remove_control_dir();
                return Err(e);
            }
        };
        Ok(Connection {
            host: host.clone(),
            session: Arc::new(session),
        })
    }

    /// Run `script` with `sh -c` on the host, within `limit`.
    pub async fn run(&self, script: &str, limit: Duration) -> anyhow::Result<Output> {
        let mut cmd = self.session.command("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(openssh::Stdio::null())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped());
        let out = tokio::time::timeout(limit, cmd.output())
            .await
            .map_err(|_| anyhow::anyhow!("{}: no answer within {limit:?}", who(&self.host)))?
            .map_err(|e| anyhow::anyhow!("{}: {}", who(&self.host), one_line(&e)))?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Run `script` and return its standard output; a non-zero exit is an
    /// error naming the host, `what` and the first line of its stderr.
    pub async fn sh(&self, what: &str, script: &str, limit: Duration) -> anyhow::Result<String> {
        let out = self.run(script, limit).await?;
        match out.code {
            Some(0) => Ok(out.stdout),
            code => anyhow::bail!(
                "{}: {what} failed ({}): {}",
                who(&self.host),
                code.map_or("no exit code".into(), |c| format!("exit {c}")),
                out.first_error_line()
            ),
        }
    }

    /// Start `script` with `sh -c` on the host, its three streams piped.
    /// The remote program sees end-of-file on its stdin when the returned
    /// child (or its stdin) is dropped.
    pub async fn spawn(&self, script: &str) -> anyhow::Result<RemoteChild> {
        let mut cmd = Session::to_command(self.session.clone(), "sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped());
        cmd.spawn()
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", who(&self.host), one_line(&e)))
    }

    /// Whether the host still answers (within `limit`).
    pub async fn alive(&self, limit: Duration) -> bool {
        matches!(
            tokio::time::timeout(limit, self.run("true", limit)).await,
            Ok(Ok(Output { code: Some(0), .. }))
        )
    }

    /// Copy `local` to the host's `remote` (made executable) unless a file
    /// with the same SHA-256 is there already; true when it was copied.
    pub async fn upload_if_changed(
        &self,
        local: &Path,
        remote: &str,
        limit: Duration,
    ) -> anyhow::Result<bool> {
        let local_sum = sha256_file(local)
            .with_context(|| format!("reading {} to upload it", local.display()))?;
        let out = self
            .run(&format!("sha256sum {} 2>/dev/null", quote(remote)), limit)
            .await?;
        if out.stdout.split_whitespace().next() == Some(local_sum.as_str()) {
            return Ok(false);
        }
        let part = format!("{remote}.part");
        let script = format!(
            "mkdir -p \"$(dirname {r})\" && cat > {p} && chmod 755 {p} && mv -f {p} {r}",
            r = quote(remote),
            p = quote(&part)
        );
        let mut child = self.spawn(&script).await?;
        let mut stdin = child.stdin().take().context("the upload's stdin")?;
        let mut file = tokio::fs::File::open(local)
            .await
            .with_context(|| format!("opening {}", local.display()))?;
        let copy = async {
            tokio::io::copy(&mut file, &mut stdin).await?;
            stdin.shutdown().await?;
            drop(stdin);
            child
                .wait_with_output()
                .await
                .map_err(std::io::Error::other)
        };
        let out = tokio::time::timeout(limit, copy)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{}: uploading {} took longer than {limit:?}",
                    who(&self.host),
                    local.display()
                )
            })?
            .map_err(|e| {
                anyhow::anyhow!("{}: uploading {}: {e}", who(&self.host), local.display())
            })?;
        anyhow::ensure!(
            out.status.success(),
            "{}: uploading {} to {remote} failed: {}",
            who(&self.host),
            local.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(true)
    }

    /// Copy the host's directory `remote_parent/name` into `local_parent`
    /// (as `local_parent/name`), with `tar` on both ends, within `limit`.
    pub async fn download_dir(
        &self,
        remote_parent: &str,
        name: &str,
        local_parent: &Path,
        limit: Duration,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(local_parent)
            .with_context(|| format!("creating {}", local_parent.display()))?;
        let script = format!("tar -C {} -cf - {}", quote(remote_parent), quote(name));
        let mut remote = self.spawn(&script).await?;
        drop(remote.stdin().take());
        let mut out = remote.stdout().take().context("the download's stdout")?;
        let mut local = tokio::process::Command::new("tar")
            .arg("-C")
            .arg(local_parent)
            .arg("-xf")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting tar here (is it installed?)")?;
        let mut sink = local.stdin.take().context("tar's stdin")?;
        let copy = async {
            tokio::io::copy(&mut out, &mut sink).await?;
            drop(sink);
            let theirs = remote
                .wait_with_output()
                .await
                .map_err(std::io::Error::other)?;
            let ours = local.wait_with_output().await?;
            Ok::<_, std::io::Error>((theirs, ours))
        };
        let (theirs, ours) = tokio::time::timeout(limit, copy)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{}: copying {remote_parent}/{name} back took longer than {limit:?}",
                    who(&self.host)
                )
            })?
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: copying {remote_parent}/{name} back: {e}",
                    who(&self.host)
                )
            })?;
        anyhow::ensure!(
            theirs.status.success(),
            "{}: tar of {remote_parent}/{name} failed: {}",
            who(&self.host),
            String::from_utf8_lossy(&theirs.stderr).trim()
        );
        anyhow::ensure!(
            ours.status.success(),
            "unpacking {name} from {} into {} failed: {}",
            self.host.name,
            local_parent.display(),
            String::from_utf8_lossy(&ours.stderr).trim()
        );
        Ok(())
    }

    /// A command of this machine that runs `script` with `sh -c` on the
    /// host over this connection's control master (never a connection of
    /// its own: as the `openssh` crate does, port 9 is given, so ssh fails
    /// rather than dial anew when the master is gone). For callers that
    /// are not async: the nodes of a `--hosts` run.
    pub fn blocking_command(&self, script: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new("ssh");
        cmd.arg("-S")
            .arg(self.session.control_socket())
            .args(["-o", "BatchMode=yes", "-T", "-p", "9", "none", "--"])
            .arg(format!("sh -c {}", quote(script)))
            .stdin(Stdio::null());
        cmd
    }

    /// Start a [`Shell`] on the host, over this connection.
    pub fn shell(&self) -> anyhow::Result<Shell> {
        use std::io::BufRead;
        let mut child = self
            .blocking_command("exec sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("{}: starting ssh: {e}", who(&self.host)))?;
        let stdin = child.stdin.take().context("the shell's stdin")?;
        let stdout = child.stdout.take().context("the shell's stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Shell {
            child,
            stdin,
            lines,
            count: 0,
        })
    }

    /// [`Connection::run`] for callers that are not async: `script` with
    /// `stdin` as its input, within `limit` (the local ssh is killed then).
    pub fn run_blocking(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
        limit: Duration,
    ) -> anyhow::Result<Output> {
        let mut cmd = self.blocking_command(script);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("{}: starting ssh: {e}", who(&self.host)))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            let data = data.to_vec();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let read = |r: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut text);
                }
                String::from_utf8_lossy(&text).into_owned()
            })
        };
        let out = read(child.stdout.take().map(|p| Box::new(p) as _));
        let err = read(child.stderr.take().map(|p| Box::new(p) as _));
        let status = wait_bounded(&mut child, limit)
            .ok_or_else(|| anyhow::anyhow!("{}: no answer within {limit:?}", who(&self.host)))?;
        Ok(Output {
            code: status.code(),
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }

    /// [`Connection::sh`] for callers that are not async.
    pub fn sh_blocking(&self, what: &str, script: &str, limit: Duration) -> anyhow::Result<String> {
        let out = self.run_blocking(script, None, limit)?;
        match out.code {
            Some(0) => Ok(out.stdout),
            Some(255) => anyhow::bail!(
                "{}: {what} failed: the connection is lost ({})",
                who(&self.host),
                out.first_error_line()
            ),
            code => anyhow::bail!(
                "{}: {what} failed ({}): {}",
                who(&self.host),
                code.map_or("no exit code".into(), |c| format!("exit {c}")),
                out.first_error_line()
            ),
        }
    }

    /// [`Connection::download_dir`] for callers that are not async.
    pub fn download_dir_blocking(
        &self,
        remote_parent: &str,
        name: &str,
        local_parent: &Path,
        limit: Duration,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(local_parent)
            .with_context(|| format!("creating {}", local_parent.display()))?;
        let mut remote = self
            .blocking_command(&format!(
                "tar -C {} -cf - {}",
                quote(remote_parent),
                quote(name)
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("{}: starting ssh: {e}", who(&self.host)))?;
        let pipe = remote.stdout.take().context("ssh's stdout")?;
        let mut local = std::process::Command::new("tar")
            .arg("-C")
            .arg(local_parent)
            .args(["-xf", "-"])
            .stdin(Stdio::from(pipe))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tar here (is it installed?)")?;
        let deadline = std::time::Instant::now() + limit;
        let theirs = wait_bounded(&mut remote, limit);
        let ours = wait_bounded(
            &mut local,
            deadline.saturating_duration_since(std::time::Instant::now()),
        );
        let stderr = |c: &mut std::process::Child| {
            let mut s = String::new();
            if let Some(mut e) = c.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut s);
            }
            s.trim().to_string()
        };
        match (theirs, ours) {
            (Some(t), Some(o)) if t.success() && o.success() => Ok(()),
            (None, _) | (_, None) => anyhow::bail!(
                "{}: copying {remote_parent}/{name} back took longer than {limit:?}",
                who(&self.host)
            ),
            (Some(t), _) if !t.success() => anyhow::bail!(
                "{}: tar of {remote_parent}/{name} failed: {}",
                who(&self.host),
                stderr(&mut remote)
            ),
            _ => anyhow::bail!(
                "unpacking {name} from {} into {} failed: {}",
                self.host.name,
                local_parent.display(),
                stderr(&mut local)
            ),
        }
    }

    /// Whether this connection's control master is still there (`ssh -O
    /// check`, bounded; no command runs on the host). The master itself
    /// notices a silent host by ssh's keep-alive ([`ALIVE_INTERVAL`] ×
    /// `ServerAliveCountMax`) and exits.
    pub fn master_alive(&self) -> bool {
        let mut cmd = std::process::Command::new("ssh");
        cmd.arg("-S")
            .arg(self.session.control_socket())
            .args(["-o", "BatchMode=yes", "-O", "check", "none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match cmd.spawn() {
            Ok(mut c) => wait_bounded(&mut c, Duration::from_secs(5)).is_some_and(|s| s.success()),
            Err(_) => false,
        }
    }

    /// Close the connection (its control master exits).
    pub async fn close(self) {
        if let Ok(session) = Arc::try_unwrap(self.session) {
            let _ = tokio::time::timeout(Duration::from_secs(10), session.close()).await;
        }
        // Empty once every connection of this process is closed.
        if let Ok(dir) = control_dir() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A shell kept running on a host ([`Connection::shell`]): a command
/// written to it runs at once, where a command of its own would cost the
/// host a new ssh session (a fork of sshd and a login shell: tens of
/// milliseconds on an idle host, more on a busy one). A run's faults go
/// through it, so that they start on every host at about the same time.
pub struct Shell {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    count: u64,
}

/// Why a [`Shell`] command did not come back: the shell should not be
/// used again.
#[derive(Debug)]
pub enum ShellError {
    /// The shell is gone (its ssh ended, or writing to it failed).
    Gone(String),
    /// No answer within the time limit.
    Silent(Duration),
}

impl std::fmt::Display for ShellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShellError::Gone(why) => write!(f, "its shell is gone ({why})"),
            ShellError::Silent(limit) => write!(f, "no answer within {limit:?}"),
        }
    }
}

impl Shell {
    /// Run `script` (with `sh -c`) with `input` on its stdin; its exit code
    /// and its output (stdout and stderr together), within `limit`.
    pub fn run(
        &mut self,
        script: &str,
        input: Option<&str>,
        limit: Duration,
    ) -> Result<(i32, String), ShellError> {
        use std::io::Write;
        self.count += 1;
        let end = format!("__faultline_end_{}_{}", std::process::id(), self.count);
        let mut text = format!("sh -c {} 2>&1", quote(script));
        match input {
            Some(data) => {
                text.push_str(&format!(" <<'{end}'\n{data}"));
                if !data.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("{end}\n"));
            }
            None => text.push_str(" </dev/null\n"),
        }
        text.push_str(&format!("echo \"{end} $?\"\n"));
        self.stdin
            .write_all(text.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| ShellError::Gone(e.to_string()))?;
        let deadline = std::time::Instant::now() + limit;
        let mut out = String::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.find(&end) {
                    Some(at) => {
                        out.push_str(&line[..at]);
                        let code = line[at + end.len()..].trim().parse().unwrap_or(-1);
                        return Ok((code, out));
                    }
                    None => {
                        out.push_str(&line);
                        out.push('\n');
                    }
                },
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(ShellError::Silent(limit))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(ShellError::Gone("its ssh ended".into()))
                }
            }
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait for `child` at most `limit`; past it, kill it and say `None`.
pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Remove this process's control directory if no connection uses it any
/// more (after the last [`Connection`] was dropped or closed).
pub fn remove_control_dir() {
    let dir = std::env::temp_dir().join(format!("faultline-ssh-{}", std::process::id()));
    let _ = std::fs::remove_dir(dir);
}

/// This process's directory for its control sockets (each connection's
/// in a temporary directory inside it): its own, because another
/// program's sockets there are not ours to touch.
fn control_dir() -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("faultline-ssh-{}", std::process::id()));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
        Err(e) => Err(e).with_context(|| format!("creating {}", dir.display())),
    }
}

/// How a host is named in messages: `w1 (root@192.0.2.1)`.
pub fn who(host: &Host) -> String {
    format!("host {} ({})", host.name, host.ssh)
}

/// An error of the ssh layer on one line, with its causes (ssh's own
/// words, such as "Permission denied (publickey)").
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    let mut words: Vec<&str> = text.split_whitespace().collect();
    words.dedup();
    words.join(" ")
}

/// `s` quoted for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The SHA-256 of a file, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_any_text() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote("x'; echo $HOME `id` \"y")))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "x'; echo $HOME `id` \"y"
        );
    }

    #[test]
    fn a_file_hashes_as_sha256sum_says() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
