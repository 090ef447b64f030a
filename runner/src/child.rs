//! One run in a process of its own: `faultline run-spec --dir DIR` reads
//! the run's spec as one JSON line on its stdin, runs it into `DIR`, and
//! reports on its stdout as JSON lines ([`Report`]); it stops (killing
//! everything it started, as on SIGTERM) when its stdin reaches its end, so
//! a controller that goes away, or an SSH connection that drops, stops it.
//! Its exit status is the run's: 0 as expected, 1 not, 3 undecided, 2 an
//! error. Local jobs (`--jobs`) and worker hosts (`--workers`) run runs
//! this way; [`run_local`] is the local side.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use faultline_nemesis::process::NodeCommand;
use faultline_rundir::placement::RunPlacement;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};

use crate::run::{run_one, Progress};
use crate::spec::RunPlan;

/// The longest spec line a child reads.
pub const MAX_SPEC_BYTES: usize = 1 << 20;

/// What a run in a child process says on its stdout, one JSON line each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "lowercase")]
pub enum Report {
    /// About every 200 ms: seconds elapsed and operations so far.
    Tick {
        /// Seconds since the workload started.
        t: f64,
        /// Operations that succeeded.
        ok: u64,
        /// Operations that failed.
        fail: u64,
        /// Operations whose outcome is unknown.
        info: u64,
    },
    /// The run ended with a report (its line, as `faultline run` prints it).
    Finished {
        /// The run's line.
        line: String,
    },
}

/// What a child is given on its stdin's first line: the run's plan, as the
/// controller validated it, and where the campaign placed it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// The run's plan ([`RunPlan::new`], once, in the controller).
    pub plan: RunPlan,
    /// Where it runs, stored as its `placement.json`.
    #[serde(default)]
    pub placement: Option<RunPlacement>,
}

/// Whether a child's exit status is a verdict (0, 1, 3) rather than an
/// error of its own (2, a signal, ssh's 255).
pub fn is_verdict(code: Option<i32>) -> bool {
    matches!(code, Some(0 | 1 | 3))
}

/// The child's side: read the job's line from stdin (before any thread
/// starts; the caller may then move into a network namespace).
pub fn read_job() -> anyhow::Result<Job> {
    use std::io::BufRead;
    let mut line = Vec::new();
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let n = std::io::Read::take(&mut lock, MAX_SPEC_BYTES as u64 + 1)
        .read_until(b'\n', &mut line)
        .context("reading the run's spec from stdin")?;
    anyhow::ensure!(n > 0, "no run on stdin (one JSON line: plan and placement)");
    anyhow::ensure!(
        n <= MAX_SPEC_BYTES,
        "the run on stdin is longer than {MAX_SPEC_BYTES} bytes"
    );
    serde_json::from_slice(&line)
        .context("stdin's first line is not a run (a JSON object with its plan and placement)")
}

/// The child's side: when stdin ends, stop as on SIGTERM (the controller
/// or the connection to it is gone).
pub fn stop_at_end_of_stdin() {
    std::thread::spawn(|| {
        use std::io::Read;
        let mut sink = [0u8; 256];
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        while matches!(lock.read(&mut sink), Ok(n) if n > 0) {}
        // SAFETY: kill(2) on our own pid; the runtime's signal handler
        // takes it from there.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGTERM);
        }
    });
}

/// The child's side: run `job` into `dir`, reporting on stdout; returns
/// the exit status.
pub async fn run_job(job: &Job, dir: &Path, node_bin: &NodeCommand) -> anyhow::Result<u8> {
    let say = |r: &Report| {
        use std::io::Write;
        if let Ok(text) = serde_json::to_string(r) {
            // A reader that went away is not our error: stdin's end stops us.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    };
    let ticks = Progress {
        tick: Box::new(move |t, ok, fail, info| say(&Report::Tick { t, ok, fail, info })),
    };
    let results = run_one(
        &job.plan,
        dir,
        node_bin,
        Some(&ticks),
        job.placement.as_ref(),
    )
    .await?;
    say(&Report::Finished {
        line: results.line(),
    });
    Ok(results.judgement().exit_code())
}

/// How a run in a child process ended.
#[derive(Debug)]
pub struct ChildEnd {
    /// Its exit code (None: a signal).
    pub code: Option<i32>,
    /// Its last line on stderr (why it failed, when it did).
    pub last_error: String,
}

/// The local side: run `job` into `dir` in a child `faultline run-spec`
/// (`exe`), on `cpus` when given, in a loopback of its own when
/// `own_loopback`; ticks go to `progress`.
pub async fn run_local(
    exe: &Path,
    job: &Job,
    dir: &Path,
    node_bin: &NodeCommand,
    cpus: Option<&[usize]>,
    own_loopback: bool,
    progress: Option<&Progress>,
) -> anyhow::Result<ChildEnd> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("run-spec").arg("--dir").arg(dir);
    if own_loopback {
        cmd.arg("--own-loopback");
    }
    if node_bin.args.is_empty() {
        cmd.env("FAULTLINE_NODE_BIN", &node_bin.program);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cpus) = cpus {
        pin_on_spawn(&mut cmd, cpus);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {} run-spec", exe.display()))?;
    let pid = child.id().unwrap_or(0);
    register(pid);
    let mut stdin = child.stdin.take().context("the child's stdin")?;
    let mut line = serde_json::to_vec(job)?;
    line.push(b'\n');
    stdin.write_all(&line).await.context("sending the spec")?;
    let stdout = child.stdout.take().context("the child's stdout")?;
    let stderr = child.stderr.take().context("the child's stderr")?;
    let (_, last_error) = tokio::join!(follow(stdout, progress), last_line(stderr));
    let status = child.wait().await;
    drop(stdin);
    unregister(pid);
    let status = status.context("waiting for the run's process")?;
    Ok(ChildEnd {
        code: status.code(),
        last_error,
    })
}

/// Read a child's reports, ticking `progress`; returns the finished line.
pub async fn follow(out: impl AsyncRead + Unpin, progress: Option<&Progress>) -> Option<String> {
    let mut lines = BufReader::new(out).lines();
    let mut finished = None;
    while let Ok(Some(l)) = lines.next_line().await {
        match serde_json::from_str::<Report>(&l) {
            Ok(Report::Tick { t, ok, fail, info }) => {
                if let Some(p) = progress {
                    (p.tick)(t, ok, fail, info);
                }
            }
            Ok(Report::Finished { line }) => finished = Some(line),
            Err(_) => {}
        }
    }
    finished
}

/// The last non-empty line of a stream (kept whole lines only, at most
/// 2000 bytes of it); everything before it is passed on to our stderr, as
/// the child's warnings are the user's to see.
pub async fn last_line(err: impl AsyncRead + Unpin) -> String {
    let mut lines = BufReader::new(err).lines();
    let mut last = String::new();
    while let Ok(Some(l)) = lines.next_line().await {
        if !l.trim().is_empty() {
            if !last.is_empty() {
                eprintln!("{last}");
            }
            last = l.chars().take(2000).collect();
        }
    }
    last
}

/// Make `cmd` start on `cpus` only (its children inherit the set).
fn pin_on_spawn(cmd: &mut tokio::process::Command, cpus: &[usize]) {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: CPU_SET writes one bit inside `set`.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: sched_setaffinity is async-signal-safe and reads only `set`,
    // which the closure owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The CPUs this process may run on.
pub fn available_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is valid; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ok != 0 {
        return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads one bit of `set`.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// The cores each run needs to itself (a run is a controller and its
/// members; with fewer, its timing is disturbed by its own processes).
pub const CORES_PER_JOB: usize = 2;

/// One CPU set per job when `cpus` give every job [`CORES_PER_JOB`] or
/// more of its own; none when runs must share.
pub fn cpu_sets(cpus: &[usize], jobs: usize) -> Option<Vec<Vec<usize>>> {
    if jobs == 0 || cpus.len() < CORES_PER_JOB * jobs {
        return None;
    }
    let each = cpus.len() / jobs;
    Some(
        cpus.chunks(each)
            .take(jobs)
            .map(<[usize]>::to_vec)
            .collect(),
    )
}

/// The run processes under way, for [`stop_children`].
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn register(pid: u32) {
    if pid != 0 {
        CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    }
}

fn unregister(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pid);
}

/// Stop every run process under way (SIGTERM: each kills what it started)
/// and wait, at most `limit`, until they are gone.
pub fn stop_children(limit: Duration) {
    let pids: Vec<u32> = std::mem::take(&mut *CHILDREN.lock().unwrap_or_else(|e| e.into_inner()));
    for &p in &pids {
        // SAFETY: a signal to a child of ours that we registered.
        unsafe {
            libc::kill(p as libc::pid_t, libc::SIGTERM);
        }
    }
    let deadline = std::time::Instant::now() + limit;
    for &p in &pids {
        while std::time::Instant::now() < deadline && alive(p) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether `pid` still runs (a zombie, which the runtime has not reaped
/// yet, counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_get_cpu_sets_of_their_own_only_with_two_cores_each() {
        let cpus: Vec<usize> = (0..8).collect();
        assert_eq!(
            cpu_sets(&cpus, 2),
            Some(vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]])
        );
        assert_eq!(
            cpu_sets(&cpus, 4),
            Some(vec![vec![0, 1], vec![2, 3], vec![4, 5], vec![6, 7]])
        );
        assert_eq!(cpu_sets(&cpus, 5), None);
        assert_eq!(cpu_sets(&[0, 1], 2), None);
        assert_eq!(cpu_sets(&[0, 1], 1), Some(vec![vec![0, 1]]));
        assert_eq!(cpu_sets(&[0, 1, 2], 1), Some(vec![vec![0, 1, 2]]));
    }

    #[test]
    fn a_pinned_child_runs_on_its_set_only() {
        let cpus = available_cpus();
        assert!(!cpus.is_empty());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let allowed = rt.block_on(async {
            let mut cmd = tokio::process::Command::new("grep");
            cmd.args(["Cpus_allowed_list", "/proc/self/status"])
                .stdout(Stdio::piped());
            pin_on_spawn(&mut cmd, &cpus[..1]);
            cmd.output().await.unwrap()
        });
        let text = String::from_utf8_lossy(&allowed.stdout);
        assert_eq!(
            text.split_whitespace().last(),
            Some(cpus[0].to_string().as_str()),
            "{text}"
        );
    }

    #[test]
    fn reports_are_one_json_line_each_and_only_verdicts_count_as_verdicts() {
        let t = serde_json::to_string(&Report::Tick {
            t: 1.5,
            ok: 3,
            fail: 0,
            info: 1,
        })
        .unwrap();
        assert_eq!(t, r#"{"report":"tick","t":1.5,"ok":3,"fail":0,"info":1}"#);
        assert!(is_verdict(Some(0)) && is_verdict(Some(1)) && is_verdict(Some(3)));
        assert!(!is_verdict(Some(2)) && !is_verdict(Some(255)) && !is_verdict(None));
    }
}
