//! A cgroup of its own for each member, where the machine has a cgroup v2
//! hierarchy this process may write to: every descendant of the member —
//! one that left its process group and session, and one that also cleared
//! its environment — stays in the member's cgroup, and `cgroup.kill` ends
//! them all at once. The member's tag ([`crate::process::MEMBER_ENV`]) and
//! the subreaper remain the fallback where there is no such hierarchy.
//!
//! The hierarchy is found in `/proc/self/mountinfo` (type `cgroup2`; on a
//! hybrid machine it is `/sys/fs/cgroup/unified`, without controllers,
//! which is all this needs); the member's cgroup is made below this
//! process's own (`/proc/self/cgroup`, line `0::PATH`).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// This process's cgroup in the v2 hierarchy, if there is one.
fn own_cgroup() -> Option<PathBuf> {
    static OWN: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = info.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next() == Some("cgroup2"))
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })?;
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let dir = mount.join(path.trim_start_matches('/'));
        dir.is_dir().then_some(dir)
    })
    .clone()
}

/// Remove the member cgroups of controllers that are gone (a SIGKILLed
/// `faultline` cannot remove its own): whatever still runs in one is
/// killed first — it outlived its run.
fn sweep_stale(own: &Path) {
    let Ok(entries) = std::fs::read_dir(own) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("faultline-")
            .and_then(|t| t.split('.').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let stale = MemberCgroup {
            dir: e.path(),
            procs: None,
        };
        stale.kill_and_remove(&[]);
    }
}

/// A member's cgroup: made before the member starts, which joins it
/// between fork and exec ([`MemberCgroup::join_on_spawn`]).
#[derive(Debug)]
pub struct MemberCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, open for the child to write "0" to (itself).
    procs: Option<File>,
}

impl MemberCgroup {
    /// A new cgroup named after `tag`, or none where there is no v2
    /// hierarchy this process may write to (then the tag and the
    /// subreaper are what find the member's descendants).
    pub fn make(tag: &str) -> Option<MemberCgroup> {
        let own = own_cgroup()?;
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| sweep_stale(&own));
        let dir = own.join(format!("faultline-{tag}"));
        std::fs::create_dir(&dir).ok()?;
        match std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
        {
            Ok(procs) => Some(MemberCgroup {
                dir,
                procs: Some(procs),
            }),
            Err(_) => {
                let _ = std::fs::remove_dir(&dir);
                None
            }
        }
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Make the process `cmd` starts join the cgroup before it runs
    /// anything (a failure leaves it where it was: the tag still finds it).
    pub fn join_on_spawn(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let Some(fd) = self.procs.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        // SAFETY: write(2) on a descriptor the parent holds open until
        // the child has exec'd; async-signal-safe, touches no memory but a
        // static byte.
        unsafe {
            cmd.pre_exec(move || {
                libc::write(fd, b"0".as_ptr().cast(), 1);
                Ok(())
            });
        }
    }

    /// The descriptor is not needed once the member runs.
    pub fn started(&mut self) {
        self.procs = None;
    }

    /// Kill every process in the cgroup (`cgroup.kill`), reap the ones
    /// that were reparented to this process, and remove the cgroup;
    /// bounded by 2 s.
    pub fn kill_and_remove(&self, not_ours_to_reap: &[u32]) {
        let pids: Vec<u32> = std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.kill"))
            .and_then(|mut f| f.write_all(b"1"));
        let me = std::process::id();
        let deadline = Instant::now() + Duration::from_secs(2);
        for pid in pids {
            if not_ours_to_reap.contains(&pid) || parent_of(pid) != Some(me) {
                continue;
            }
            // SAFETY: waitpid on our own child; no status is read.
            while unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) }
                == 0
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The parent of process `pid` (field 4 of `/proc/PID/stat`).
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}
