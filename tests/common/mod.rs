//! Helpers the black-box tests share: running the `faultline` binary (with
//! a time limit where a command could hang), one generous deadline, and
//! bounded polling. Each test file includes this with `mod common;` and uses
//! only some of it.
#![allow(dead_code)] // every test binary compiles this file; few use all of it

pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for a real cluster to reach a state (a leader, a
/// recovery, a membership change) before it fails: generous, because CI runs
/// on a loaded 2-core machine; every wait polls and returns as soon as the
/// condition holds.
pub const DEADLINE: Duration = Duration::from_secs(40);

/// How often the polling helpers look.
pub const POLL: Duration = Duration::from_millis(50);

/// The `faultline` binary under test.
pub fn faultline_bin() -> &'static str {
    env!("CARGO_BIN_EXE_faultline")
}

/// The `faultline-node` binary under test.
pub fn node_bin() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_faultline-node").into()
}

/// Run `faultline ARGS` to its end: (exit code, stdout, stderr).
pub fn faultline(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(faultline_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `faultline ARGS` in `dir`, killed (and the test failed) if it is not
/// done within `limit`.
pub fn faultline_in(dir: &Path, args: &[&str], limit: Duration) -> (i32, String, String) {
    let mut child = Command::new(faultline_bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("faultline {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `faultline run FIXED… --store STORE ARGS…` from the project's folder,
/// within `limit` (see [`faultline_in`]).
pub fn run_in_store(
    store: &Path,
    fixed: &[&str],
    args: &[&str],
    limit: Duration,
) -> (i32, String, String) {
    let store_s = store.display().to_string();
    let mut all = vec!["run"];
    all.extend_from_slice(fixed);
    all.extend_from_slice(&["--store", &store_s]);
    all.extend_from_slice(args);
    faultline_in(Path::new(env!("CARGO_MANIFEST_DIR")), &all, limit)
}

/// Poll `f` until it holds, failing the test with `what` after [`DEADLINE`].
pub async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Whether the kernel network backend can run here (root, `ip`, `nft`).
/// Without it a test says so on one line and is skipped, except under
/// `CI=true`, where a missing prerequisite fails the test.
pub fn kernel_backend_available(test: &str) -> bool {
    match faultline_nemesis::net::kernel::netns::check_prerequisites() {
        Ok(()) => true,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: the kernel network backend is needed under CI=true: {why}")
        }
        Err(why) => {
            println!("{test}: skipped: {why}");
            false
        }
    }
}

/// Whether etcd can be tested here (an `etcd` on PATH that faultline
/// supports). Without it a test says so on one line and is skipped, except
/// under `CI=true`, where a missing etcd fails the test.
pub fn etcd_available(test: &str) -> bool {
    program_available(
        test,
        "etcd",
        faultline_sut::etcd::locate(None)
            .and_then(|bin| faultline_sut::etcd::version_of(&bin).map(|_| ())),
    )
}

/// Whether nats-server is installed (under `CI=true` it must be).
pub fn nats_available(test: &str) -> bool {
    program_available(
        test,
        "nats-server",
        faultline_sut::nats::locate(None)
            .and_then(|bin| faultline_sut::nats::version_of(&bin).map(|_| ())),
    )
}

/// A production system's program found (`found`), or the test skipped in
/// one line — except under `CI=true`, which must have it.
fn program_available(test: &str, what: &str, found: Result<(), String>) -> bool {
    match found {
        Ok(()) => true,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: {what} is needed under CI=true: {why}")
        }
        Err(why) => {
            println!("{test}: skipped: {why}");
            false
        }
    }
}

/// Send `req` to node `id` of `cluster`, retrying (bounded by [`DEADLINE`])
/// while the cluster has no leader or the outcome is unknown; returns the
/// first definite answer.
pub async fn call(
    cluster: &faultline_nemesis::cluster::LocalCluster,
    id: &str,
    req: faultline_node::protocol::ClientRequest,
) -> faultline_node::protocol::ClientResponse {
    use faultline_node::protocol::ClientResponse;
    let addr = cluster.client_addr(id).expect("a node of the cluster");
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(c) = faultline_node::client::Client::connect(addr, Duration::from_secs(5)).await {
            match c.call(req.clone()).await {
                Ok(ClientResponse::Error(_)) | Err(_) => {}
                Ok(r) => return r,
            }
        }
        assert!(
            Instant::now() < deadline,
            "no answer from {id} for {req:?} within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Start `cmd` with its output in files of `dir` (`TAG.out`, `TAG.err`:
/// no pipe can fill up).
pub fn start(mut cmd: Command, dir: &Path, tag: &str) -> std::process::Child {
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{tag}.out"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("{tag}.err"))).unwrap());
    cmd.spawn().unwrap()
}

/// Wait (bounded by `limit`) for a child of [`start`]; its exit code,
/// stdout and stderr.
pub fn finish(
    mut child: std::process::Child,
    dir: &Path,
    tag: &str,
    limit: Duration,
) -> (i32, String, String) {
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{tag} still running after {limit:?}: {}",
                std::fs::read_to_string(dir.join(format!("{tag}.err"))).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{tag}.{ext}"))).unwrap();
    (status.code().unwrap_or(-1), read("out"), read("err"))
}

/// A JSON file, read and parsed (a panic names the file).
pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The one run directory under `store` (the one with a spec.json).
pub fn run_dir(store: &Path) -> PathBuf {
    let mut found = Vec::new();
    for c in std::fs::read_dir(store).unwrap().flatten() {
        if !c.path().is_dir() || c.file_name() == "latest" {
            continue;
        }
        for r in std::fs::read_dir(c.path()).unwrap().flatten() {
            if r.path().join("spec.json").exists() {
                found.push(r.path());
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

/// The mounts (faultline's disk layer's, or any) under `dir` now.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = std::fs::canonicalize(dir).unwrap_or(dir.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(dir.to_string_lossy().as_ref()))
        .map(str::to_string)
        .collect()
}
