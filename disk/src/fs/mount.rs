//! Mounting the layer over a member's data directory and taking it away
//! again: [`Mounted`] (the FUSE session, a watchdog that unmounts when this
//! process dies, and the link-back of the member's files at unmount), and
//! the checks made before anything is mounted.

use super::*;

/// What a member's layer has counted, as the run records it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes written, fsyncs and injected errors.
    pub counters: Counters,
    /// Bytes written and not durable now.
    pub not_durable: u64,
}

/// A member's data directory with the layer mounted over it. Dropping it
/// unmounts (see [`Mounted::unmount`]).
pub struct Mounted {
    shared: Arc<Mutex<Shared>>,
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
    backing: PathBuf,
    watchdog: Option<Watchdog>,
    /// What the unmount could not leave in place, in one line.
    left_behind: Option<String>,
}

/// A forked process that lazily unmounts the layer once this process is
/// gone (SIGKILL included): it waits for the end of a pipe only this
/// process writes to. fusermount3's own `auto_unmount` does not do it
/// whenever the mount still answers an open (a member that inherited the
/// FUSE device can keep it answering), so this one does, unconditionally.
struct Watchdog {
    pid: libc::pid_t,
    /// The write end; closing it tells the watchdog to unmount and exit.
    pipe: Option<std::os::fd::OwnedFd>,
}

impl Watchdog {
    fn start(mountpoint: &Path) -> std::io::Result<Watchdog> {
        use std::os::fd::{FromRawFd, OwnedFd};
        let path = std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes())
            .map_err(std::io::Error::other)?;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills the two-element array it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (read, write) = (fds[0], fds[1]);
        // SAFETY: the child calls only async-signal-safe functions (setsid,
        // sigprocmask, close_range, read, umount2, _exit) on memory made
        // before the fork, so forking a threaded process is sound.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above; every pointer is to this process's memory.
            unsafe {
                libc::setsid();
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut all);
                libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
                // Keep nothing of the parent's open: not its FUSE device,
                // not its sockets, only the pipe's read end.
                libc::close_range(0, (read - 1) as libc::c_uint, 0);
                libc::close_range((read + 1) as libc::c_uint, libc::c_uint::MAX, 0);
                let mut b = 0u8;
                loop {
                    let n = libc::read(read, (&mut b as *mut u8).cast(), 1);
                    if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                        break;
                    }
                }
                libc::umount2(path.as_ptr(), libc::MNT_DETACH);
                libc::_exit(0);
            }
        }
        // SAFETY: both descriptors came from pipe2 above and are ours.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(read), OwnedFd::from_raw_fd(write)) };
        drop(read);
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Watchdog {
            pid,
            pipe: Some(write),
        })
    }

    /// Tell it to go (it unmounts, if anything is still mounted) and reap
    /// it, waiting at most 5 s.
    fn stop(&mut self) {
        self.pipe = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut status = 0;
            // SAFETY: reaping our own child; status is a valid int.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r != 0 || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Mark every descriptor of this process on `/dev/fuse` close-on-exec, so
/// that the members started later do not hold the layer's connection open.
fn fuse_fds_cloexec() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for e in dir.flatten() {
        let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(e.path()).is_ok_and(|t| t == Path::new("/dev/fuse")) {
            // SAFETY: F_GETFD/F_SETFD on a descriptor of this process.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
}

/// Whether this machine can mount the layer: `/dev/fuse` and
/// `fusermount3` (the unmount-on-exit helper), else one line saying what
/// is missing.
pub fn check_prerequisites() -> Result<(), String> {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(format!(
            "disk faults need FUSE, and /dev/fuse cannot be opened ({e}): load the fuse module (modprobe fuse) and install the fuse3 package"
        ));
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("fusermount3").is_file()));
    if !on_path {
        return Err(
            "disk faults need fusermount3 (it unmounts the layer even when faultline is killed): install the fuse3 package".into(),
        );
    }
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let allowed = std::fs::read_to_string("/etc/fuse.conf")
        .is_ok_and(|c| c.lines().any(|l| l.trim() == "user_allow_other"));
    if !root && !allowed {
        return Err(
            "disk faults mount the layer for the members (allow_other): run as root, or add user_allow_other to /etc/fuse.conf".into(),
        );
    }
    Ok(())
}

/// Whether `path` is a mount point now (from `/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape(m) == want)
}

/// mountinfo escapes spaces, tabs, newlines and backslashes as octal.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(b) => out.push(b as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Mounted {
    /// Mount the layer over `mountpoint` (created if missing, and empty),
    /// keeping the files in `backing` (created; must be on a real disk).
    /// The mount is removed when this is dropped, and by `fusermount3`
    /// when this process dies, however it dies. The strict POSIX model.
    pub fn mount(mountpoint: &Path, backing: &Path) -> anyhow::Result<Mounted> {
        Mounted::mount_with(mountpoint, backing, crate::DiskModel::Posix)
    }

    /// [`Mounted::mount`], the layer following `model`.
    pub fn mount_with(
        mountpoint: &Path,
        backing: &Path,
        model: crate::DiskModel,
    ) -> anyhow::Result<Mounted> {
        use anyhow::Context;
        std::fs::create_dir_all(mountpoint)
            .with_context(|| format!("creating {}", mountpoint.display()))?;
        let mountpoint = std::fs::canonicalize(mountpoint)
            .with_context(|| format!("resolving {}", mountpoint.display()))?;
        let store =
            FileStore::new(backing).with_context(|| format!("creating {}", backing.display()))?;
        let shared = Arc::new(Mutex::new(Shared {
            disk: Disk::with_model(store, model),
            slow: Duration::ZERO,
            dirs: HashMap::new(),
            dir_ids: HashMap::new(),
            next_dir: 0,
            modes: HashMap::new(),
            // SAFETY: getuid and getgid cannot fail and touch no memory.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            started: SystemTime::now(),
        }));
        let options = [
            MountOption::FSName("faultline-disk".into()),
            MountOption::Subtype("faultline".into()),
            MountOption::AutoUnmount,
            MountOption::AllowOther,
            MountOption::NoDev,
            MountOption::NoSuid,
        ];
        let session = fuser::Session::new(Layer(shared.clone()), &mountpoint, &options)
            .with_context(|| format!("mounting the disk layer over {}", mountpoint.display()))?
            .spawn()
            .with_context(|| format!("serving the disk layer over {}", mountpoint.display()))?;
        fuse_fds_cloexec();
        let mut mounted = Mounted {
            shared,
            session: Some(session),
            mountpoint,
            backing: backing.to_path_buf(),
            watchdog: None,
            left_behind: None,
        };
        // Dropping `mounted` on failure unmounts it again.
        mounted.watchdog = Some(Watchdog::start(&mounted.mountpoint).with_context(|| {
            format!(
                "starting the unmount watchdog of {}",
                mounted.mountpoint.display()
            )
        })?);
        Ok(mounted)
    }

    /// The directory the layer is mounted over.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    /// A power loss: every write and name change not durable is undone.
    pub fn power_loss(&self) -> Loss {
        let mut s = self.shared();
        let loss = s.disk.power_loss();
        s.prune_dirs();
        loss
    }

    /// A power loss in the middle of writing one file back.
    pub fn torn(&self, seed: u64, tear: Tear) -> Loss {
        let mut s = self.shared();
        let loss = s.disk.torn(seed, tear);
        s.prune_dirs();
        loss
    }

    /// Damage one file (the member should be stopped).
    pub fn corrupt(&self, seed: u64, how: Damage) -> Option<Corruption> {
        self.shared().disk.corrupt(seed, how)
    }

    /// Switch injected errors on or off.
    pub fn set_switches(&self, switches: Switches) {
        self.shared().disk.switches = switches;
    }

    /// Make every fsync take `extra` longer.
    pub fn set_slow(&self, extra: Duration) {
        self.shared().slow = extra;
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let s = self.shared();
        Stats {
            counters: s.disk.counters.clone(),
            not_durable: s.disk.bytes_not_durable(),
        }
    }

    /// Unmount (waiting, at most 10 s, until the kernel has let go; a
    /// lazy unmount after that) and leave the files as the member last
    /// saw them in the data directory, as if the layer had never been
    /// there: every name a hard link to its backing file. The backing
    /// directory is removed.
    pub fn unmount(&mut self) -> anyhow::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        // Unmount first (lazily if something still has a file open):
        // the kernel ends the connection, the FUSE thread sees it and
        // stops, and fusermount3, watching for this process to let go,
        // finds nothing left to do.
        let c = std::ffi::CString::new(self.mountpoint.as_os_str().as_encoded_bytes())?;
        // SAFETY: a valid C string; umount2 only reads it.
        let busy = unsafe { libc::umount2(c.as_ptr(), 0) } != 0;
        // SAFETY: as above.
        if busy
            && is_mounted(&self.mountpoint)
            && unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0
        {
            let e = std::io::Error::last_os_error();
            drop(session);
            anyhow::bail!(
                "unmounting the disk layer at {}: {e}",
                self.mountpoint.display()
            );
        }
        drop(session);
        if let Some(mut w) = self.watchdog.take() {
            w.stop();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_mounted(&self.mountpoint) {
            if Instant::now() > deadline {
                anyhow::bail!(
                    "the disk layer at {} is still mounted 10 s after unmounting it",
                    self.mountpoint.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.materialize()
    }

    /// Leave every name as a hard link to its backing file. A name that
    /// cannot be linked does not stop the others; the backing directory
    /// is removed only when every name is in place (otherwise it keeps
    /// their data), and [`Mounted::left_behind`] says what was not done.
    fn materialize(&mut self) -> anyhow::Result<()> {
        use anyhow::Context;
        let mut failed: Vec<String> = Vec::new();
        let mut total = 0;
        {
            let s = self.shared();
            for dir in s.disk.dirs() {
                let at = self.mountpoint.join(&dir);
                if let Err(e) = std::fs::create_dir_all(&at) {
                    failed.push(format!("{}: {e}", faultline_rundir::quote::quoted(&dir)));
                }
            }
            for name in s.disk.names() {
                total += 1;
                let ino = s.disk.lookup(&name).expect("listed");
                let to = self.mountpoint.join(&name);
                if let Err(e) = std::fs::hard_link(s.disk.store().path(ino), &to) {
                    failed.push(format!(
                        "{} (its data is {}): {e}",
                        faultline_rundir::quote::quoted(&name),
                        s.disk.store().path(ino).display()
                    ));
                }
            }
        }
        if failed.is_empty() {
            return std::fs::remove_dir_all(&self.backing)
                .with_context(|| format!("removing {}", self.backing.display()));
        }
        self.left_behind = Some(format!(
            "{} of {total} name(s) could not be left in {} and stay in {}: {}{}",
            failed.len(),
            self.mountpoint.display(),
            self.backing.display(),
            failed[0],
            if failed.len() > 1 {
                format!(" (and {} more)", failed.len() - 1)
            } else {
                String::new()
            }
        ));
        Ok(())
    }

    /// What the unmount could not leave in place (names it could not
    /// link back), in one line; none when everything is where the member
    /// left it.
    pub fn left_behind(&self) -> Option<&str> {
        self.left_behind.as_deref()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            tracing::error!("{e:#}");
        }
    }
}
