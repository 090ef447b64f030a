//! `faultline bench`: flags and dispatch. Each benchmark lives in the crate
//! it measures (`bench` modules of node, checker, nemesis, workloads and
//! results); `docs/benchmarks.md` has the figures.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use faultline_checker::bench::Case;

/// `faultline bench` flags.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// Writes/s and latency of a real 3-node cluster with fsync, with group
    /// commit and with one fsync per entry, side by side.
    Node {
        /// Seconds of writing per mode.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Connections the clients share, as in etcd's benchmark: client `c`
        /// sends on connection `c % conns` (each keeps one request in flight).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
        conns: u64,
        /// Nodes in the cluster.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// `faultline`: group commit beside one fsync per entry; `etcd`:
        /// faultline's node beside etcd under the same load; `nats`:
        /// faultline's node, etcd (when installed) and NATS JetStream.
        #[arg(long, default_value = "faultline")]
        target: faultline_sut::TargetKind,
        /// `direct`: the data directories on the disk as they are; `fuse`:
        /// also a run through faultline's disk layer (the FUSE filesystem
        /// of the disk faults), side by side with the direct one (needs
        /// root and fuse3).
        #[arg(long, default_value = "direct", value_parser = ["direct", "fuse"])]
        disk: String,
    },
    /// A long soak at full rate, with snapshots and without, side by side:
    /// each node's peak resident memory and data directory size next to the
    /// writes/s, and the time a node restarted at the end takes to serve.
    Soak {
        /// Seconds of writing with snapshots (600 for the 10-minute soak).
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Seconds of writing without snapshots, for the comparison (at most
        /// `--duration`; the nodes' memory grows without bound meanwhile, and
        /// a node past 4 GiB resident ends it early).
        #[arg(long, default_value_t = 60)]
        baseline_duration: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Connections the clients share.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
        conns: u64,
        /// Nodes in the cluster.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Applied entries between snapshots.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        snapshot_entries: u64,
    },
    /// The checker on generated histories: 10k/100k/1M operations x 1/100/1000
    /// keys x 5/20/50 processes, 1 % info, plus the hard single-key cases
    /// and the hard class (values 1-5, up to 1M operations of 50
    /// processes); each case in its own process so peak memory is its own.
    Check {
        /// Only the 10k and 100k rows, the hard cases, and the hard class up to 10k.
        #[arg(long)]
        quick: bool,
    },
    /// The latency a healthy link proxy adds per message, and the messages/s
    /// one proxy carries, side by side with a direct connection.
    Proxy {
        /// Messages for the latency measurement (one in flight at a time).
        #[arg(long, default_value_t = 20_000)]
        pings: u32,
        /// Messages for the throughput measurement (as fast as possible).
        #[arg(long, default_value_t = 500_000)]
        messages: u32,
    },
    /// What each network path costs a message, side by side: loopback
    /// direct, loopback through a link proxy, and the kernel backend's
    /// bridge between two nodes' namespaces (needs root, `ip`, `nft`).
    Net {
        /// Round trips for the latency (one frame in flight).
        #[arg(long, default_value_t = 20_000)]
        pings: u32,
        /// Frames for the throughput (back to back).
        #[arg(long, default_value_t = 200_000)]
        messages: u32,
        /// Bytes per frame for the throughput.
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(4..=1_048_576))]
        size: u64,
    },
    /// What faultline's routing adds to a Maelstrom node, side by side with
    /// the node's own pipes: round trips (p50/p99) and messages/s routed,
    /// on a trivial built-in node.
    Maelstrom {
        /// Round trips for the latency (one message in flight).
        #[arg(long, default_value_t = 20_000)]
        pings: u32,
        /// Messages for the throughput (as fast as possible).
        #[arg(long, default_value_t = 200_000)]
        messages: u32,
    },
    /// The workload generator and history recorder against an in-process
    /// stand-in node that answers at once: operations per second recorded.
    Workload {
        /// Seconds.
        #[arg(long, default_value_t = 5)]
        duration: u64,
        /// Concurrent client processes.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Analysis and report of a generated 1 M-operation history (results.json,
    /// four plots, index.html).
    Report {
        /// Operations in the history.
        #[arg(long, default_value_t = 1_000_000)]
        ops: usize,
    },
    /// (internal) one case of `bench check`.
    #[command(hide = true)]
    CheckOne {
        ops: usize,
        keys: usize,
        processes: usize,
        info: f64,
        #[arg(action = clap::ArgAction::Set)]
        stale: bool,
        /// Values drawn from 1..=V (the hard class).
        #[arg(long)]
        values: Option<i64>,
    },
    /// One row of the list-append checker's benchmark (run by `bench
    /// check` in a process of its own).
    #[command(hide = true)]
    CheckAppend {
        txns: usize,
        keys: usize,
        max_mops: usize,
        appends: f64,
        /// Write the history as JSON Lines and time `faultline check` of
        /// the file (a process of its own) instead of the check alone.
        #[arg(long)]
        file: bool,
        /// Only write the history to this file (`--file` runs this in a
        /// process of its own, so that the check's process starts small).
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Proposals committed per second through a 3-node in-memory cluster of
    /// the pure Raft core (no I/O).
    Core {
        /// Proposals to commit.
        #[arg(long, default_value_t = 200_000)]
        proposals: u64,
    },
}

impl BenchArgs {
    /// Whether this benchmark needs the kernel network backend.
    pub fn needs_kernel_net(&self) -> bool {
        matches!(self.what, BenchWhat::Net { .. })
    }
}

/// Run `faultline bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::Node {
            duration,
            clients,
            conns,
            nodes,
            target,
            disk,
        } => {
            // faultline's node beside another target, when one is named,
            // and the systems that target is benched beside (NATS: etcd).
            use faultline_sut::TargetKindExt;
            anyhow::ensure!(
                !target.capabilities().program,
                "bench node compares faultline's node with etcd and NATS; for a Maelstrom node's routing costs, run faultline bench maelstrom"
            );
            let build = |t: faultline_sut::TargetKind| -> anyhow::Result<std::sync::Arc<dyn faultline_sut::Target>> {
                t.build(&faultline_sut::Build {
                    node: crate::node_binary()?,
                    read_mode: Default::default(),
                    bin: None,
                    args: &[],
                    cluster: None,
                })
                .map_err(anyhow::Error::msg)
            };
            let mut others = Vec::new();
            if disk != "fuse" {
                for &beside in target.benched_beside() {
                    match build(beside) {
                        Ok(t) => others.push(t),
                        Err(e) => println!("faultline bench node: {beside} left out: {e}"),
                    }
                }
            }
            if target != faultline_sut::TargetKind::Faultline {
                others.push(build(target)?);
            }
            let base = scratch_dir("bench-node")?;
            faultline_nemesis::bench::node(
                &crate::node_binary()?,
                others,
                &base,
                duration,
                clients,
                conns as usize,
                nodes,
                disk == "fuse",
            )
            .await?
        }
        BenchWhat::Soak {
            duration,
            baseline_duration,
            clients,
            conns,
            nodes,
            snapshot_entries,
        } => {
            let base = scratch_dir("bench-soak")?;
            let plan = faultline_nemesis::bench::soak::SoakPlan {
                duration,
                baseline_duration: baseline_duration.min(duration),
                clients,
                conns: conns as usize,
                nodes,
                snapshot_entries,
            };
            faultline_nemesis::bench::soak::soak(&crate::node_binary()?, &base, &plan).await?
        }
        BenchWhat::Core { proposals } => println!("{}", faultline_node::bench::core(proposals)),
        BenchWhat::Check { quick } => bench_check(quick)?,
        BenchWhat::Proxy { pings, messages } => {
            faultline_nemesis::bench::proxy(pings, messages).await?
        }
        BenchWhat::Net {
            pings,
            messages,
            size,
        } => {
            // A plain thread: the benchmark runs runtimes of its own.
            let t = std::thread::spawn(move || {
                faultline_nemesis::bench::net::net(pings, messages, size as usize)
            });
            tokio::task::spawn_blocking(move || t.join())
                .await?
                .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))??;
        }
        BenchWhat::Maelstrom { pings, messages } => {
            let dir = scratch_dir("bench-maelstrom")?;
            faultline_nemesis::bench::maelstrom::maelstrom(
                &std::env::current_exe()?,
                &dir,
                pings,
                messages,
            )
            .await?;
        }
        BenchWhat::Workload {
            duration,
            concurrency,
        } => {
            let dir = scratch_dir("bench-workload")?;
            let line = faultline_workloads::bench::workload(&dir, duration, concurrency).await?;
            println!("{line}");
        }
        BenchWhat::Report { ops } => {
            let dir = scratch_dir("bench-report")?;
            println!("{}", faultline_results::bench::report(&dir, ops)?);
        }
        BenchWhat::CheckAppend {
            txns,
            keys,
            max_mops,
            appends,
            file,
            write,
        } => {
            let shape = faultline_checker::elle::gen::Shape {
                txns,
                keys,
                max_mops,
                processes: 50,
                appends,
                max_writes_per_key: 32,
            };
            if let Some(path) = write {
                println!("{}", write_append_history(shape, &path)?);
            } else if file {
                println!("{}", check_append_file(shape)?);
            } else {
                println!("{}", faultline_checker::elle::gen::bench_row(shape));
            }
        }
        BenchWhat::CheckOne {
            ops,
            keys,
            processes,
            info,
            stale,
            values,
        } => {
            let dir = scratch_dir("bench-check")?;
            let case = Case {
                ops,
                keys,
                processes,
                info,
                stale,
                values,
            };
            let row = faultline_checker::bench::run_case(case, &dir)
                .map_err(|e| anyhow::anyhow!("bench case: {e}"));
            let _ = std::fs::remove_dir_all(&dir);
            println!("{}", row?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh scratch directory under `store/NAME/` for a benchmark's files.
fn scratch_dir(name: &str) -> anyhow::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let dir = PathBuf::from("store").join(name).join(stamp.to_string());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `bench check-append --file`: the generated history written as JSON
/// Lines (by a process of its own), then `faultline check` of that file in
/// a process of its own — reading, pairing and checking, as a user's check
/// of a file costs. The file is removed after.
fn check_append_file(shape: faultline_checker::elle::gen::Shape) -> anyhow::Result<String> {
    let dir = scratch_dir("bench-check-append")?;
    // Removed whatever happened in it.
    let row = check_append_file_in(&dir, shape);
    let removed =
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()));
    let row = row?;
    removed?;
    Ok(row)
}

/// [`check_append_file`] in the scratch directory `dir`.
fn check_append_file_in(
    dir: &std::path::Path,
    shape: faultline_checker::elle::gen::Shape,
) -> anyhow::Result<String> {
    let path = dir.join("history.jsonl");
    let exe = std::env::current_exe()?;
    let t0 = std::time::Instant::now();
    let written = std::process::Command::new(&exe)
        .args(["bench", "check-append"])
        .args([shape.txns, shape.keys, shape.max_mops].map(|n| n.to_string()))
        .arg(shape.appends.to_string())
        .arg("--write")
        .arg(&path)
        .output()?;
    if !written.status.success() {
        anyhow::bail!(
            "writing the benchmark's history failed: {}",
            String::from_utf8_lossy(&written.stderr).trim()
        );
    }
    let written_s = t0.elapsed().as_secs_f64();
    let txns = String::from_utf8_lossy(&written.stdout).trim().to_string();
    let bytes = std::fs::metadata(&path)?.len();
    let t1 = std::time::Instant::now();
    let child = std::process::Command::new(&exe)
        .arg("check")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let (code, peak, err) = wait_with_peak_rss(child)?;
    let secs = t1.elapsed().as_secs_f64();
    let verdict = match code {
        Some(0) => "valid",
        Some(1) => "ANOMALIES",
        other => anyhow::bail!(
            "faultline check of the benchmark's file ended {other:?}: {}",
            err.trim()
        ),
    };
    let n: f64 = txns.parse().unwrap_or(f64::NAN);
    Ok(format!(
        "append file: {txns} txns of 1-{} micro-ops over {} keys, {:.0} MB of JSON Lines (generated and written in {written_s:.1} s): faultline check {verdict} in {secs:.2} s ({:.0} txns/s), its peak RSS {peak:.0} MiB",
        shape.max_mops,
        shape.keys,
        bytes as f64 / 1e6,
        n / secs.max(1e-9),
    ))
}

/// Generate the benchmark's history and write it to `path` as JSON Lines;
/// the number of transactions.
fn write_append_history(
    shape: faultline_checker::elle::gen::Shape,
    path: &std::path::Path,
) -> anyhow::Result<usize> {
    use std::io::Write;
    let h = faultline_checker::elle::gen::correct_columns(shape, 1);
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    faultline_checker::elle::history::write_jsonl_columns(&h, &mut w)
        .and_then(|()| w.flush())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(h.len())
}

/// Wait for `child` (its stderr piped): its exit code, its own peak
/// resident memory, MiB (from `wait4`, so other children do not count),
/// and what it wrote to stderr.
fn wait_with_peak_rss(
    mut child: std::process::Child,
) -> anyhow::Result<(Option<i32>, f64, String)> {
    use std::io::Read;
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut err)?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes only into the status and the struct given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        anyhow::bail!(
            "waiting for faultline check: {}",
            std::io::Error::last_os_error()
        );
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok((code, usage.ru_maxrss as f64 / 1024.0, err))
}

/// Every case of `bench check`, each in a process of its own (this binary's
/// hidden `bench check-one`), so that each row's peak memory is its own.
fn bench_check(quick: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    println!("{}", faultline_checker::bench::header());
    for c in faultline_checker::bench::cases(quick) {
        let out = std::process::Command::new(&exe)
            .args(["bench", "check-one"])
            .args([c.ops, c.keys, c.processes].map(|n| n.to_string()))
            .arg(c.info.to_string())
            .arg(c.stale.to_string())
            .args(c.values.map(|v| format!("--values={v}")))
            .output()?;
        if !out.status.success() {
            anyhow::bail!(
                "bench case failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    // The list-append checker: transactions of 1-4 micro-ops over 1,000
    // keys, and single-key ones, 80 % appends (each row its own process).
    let rows: &[(usize, usize, usize, f64)] = if quick {
        &[(100_000, 1_000, 4, 0.5), (100_000, 1_000, 1, 0.8)]
    } else {
        &[
            (100_000, 1_000, 4, 0.5),
            (1_000_000, 1_000, 4, 0.5),
            (1_250_000, 1_000, 1, 0.8),
            (2_500_000, 1_000, 1, 0.8),
            (5_000_000, 1_000, 1, 0.8),
            // 10 M appends (and 2.5 M reads).
            (12_520_000, 1_000, 1, 0.8),
        ]
    };
    // The same from a file, as `faultline check` of it costs.
    let files: &[(usize, usize, usize, f64)] = if quick {
        &[]
    } else {
        &[(1_250_000, 1_000, 1, 0.8)]
    };
    let runs = rows
        .iter()
        .map(|r| (r, false))
        .chain(files.iter().map(|r| (r, true)));
    for ((txns, keys, mops, appends), file) in runs {
        let out = std::process::Command::new(&exe)
            .args(["bench", "check-append"])
            .args([txns, keys, mops].map(|n| n.to_string()))
            .arg(appends.to_string())
            .args(file.then_some("--file"))
            .output()?;
        if !out.status.success() {
            anyhow::bail!(
                "bench append case failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}
