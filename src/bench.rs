//! `faultline bench`: performance figures, printed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use faultline_nemesis::cluster::{ClusterSpec, LocalCluster};
use faultline_node::client::Client;
use faultline_node::protocol::{ClientRequest, ClientResponse};
use faultline_node::sim::Cluster as SimCluster;
use hdrhistogram::Histogram;

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
    },
    /// The checker on generated histories: 10k/100k/1M operations x 1/100/1000
    /// keys x 5/20/50 processes, 1 % info, plus the hard single-key cases;
    /// each case in its own process so peak memory is its own.
    Check {
        /// Only the 10k and 100k rows and the hard cases.
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
    },
    /// Proposals committed per second through a 3-node in-memory cluster of
    /// the pure Raft core (no I/O).
    Core {
        /// Proposals to commit.
        #[arg(long, default_value_t = 200_000)]
        proposals: u64,
    },
}

/// Run `faultline bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::Node {
            duration,
            clients,
            conns,
            nodes,
        } => bench_node(duration, clients, conns as usize, nodes).await?,
        BenchWhat::Core { proposals } => bench_core(proposals),
        BenchWhat::Check { quick } => bench_check(quick)?,
        BenchWhat::Proxy { pings, messages } => bench_proxy(pings, messages).await?,
        BenchWhat::Workload {
            duration,
            concurrency,
        } => bench_workload(duration, concurrency).await?,
        BenchWhat::Report { ops } => bench_report(ops)?,
        BenchWhat::CheckOne {
            ops,
            keys,
            processes,
            info,
            stale,
        } => check_one(ops, keys, processes, info, stale)?,
    }
    Ok(ExitCode::SUCCESS)
}

struct NodeFigures {
    writes: u64,
    errors: u64,
    secs: f64,
    hist: Histogram<u64>,
}

async fn bench_node(
    duration: u64,
    clients: usize,
    conns: usize,
    nodes: usize,
) -> anyhow::Result<()> {
    let base = tempdir_under_store("bench-node")?;
    let conns = conns.min(clients.max(1));
    println!("faultline bench node: {nodes} nodes, {clients} clients on {conns} connections, {duration} s per mode, fsync on (data in {})", base.display());
    let group = node_mode(
        &base.join("group-commit"),
        nodes,
        (clients, conns),
        duration,
        false,
    )
    .await?;
    print_node("group commit", &group);
    let single = node_mode(
        &base.join("fsync-per-entry"),
        nodes,
        (clients, conns),
        duration,
        true,
    )
    .await?;
    print_node("fsync per entry", &single);
    let ratio = (group.writes as f64 / group.secs) / (single.writes as f64 / single.secs).max(1e-9);
    println!("group commit / fsync per entry: {ratio:.1}x writes/s");
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}

fn print_node(mode: &str, f: &NodeFigures) {
    println!(
        "{mode:>16}: {:>9.0} writes/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} writes, {} errors)",
        f.writes as f64 / f.secs,
        f.hist.value_at_quantile(0.5) as f64 / 1000.0,
        f.hist.value_at_quantile(0.99) as f64 / 1000.0,
        f.hist.max() as f64 / 1000.0,
        f.writes,
        f.errors
    );
}

fn tempdir_under_store(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let dir = std::path::PathBuf::from("store")
        .join(name)
        .join(stamp.to_string());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `clients` closed-loop writers against `addr` for `secs` seconds, sharing
/// `conns` connections (client `c` uses connection `c % conns`): the latency
/// histogram (µs), writes acknowledged, errors, seconds taken.
async fn write_load(
    addr: std::net::SocketAddr,
    clients: usize,
    conns: usize,
    secs: u64,
) -> anyhow::Result<(Histogram<u64>, u64, u64, f64)> {
    let mut connections = Vec::new();
    for _ in 0..conns.max(1) {
        let client = Client::connect(addr, Duration::from_secs(10))
            .await
            .with_context(|| format!("connecting to the leader at {addr}"))?;
        connections.push(std::sync::Arc::new(client));
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = connections[c % connections.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let (mut ok, mut err) = (0u64, 0u64);
            let key = format!("k{c}");
            let mut i = 0i64;
            while Instant::now() < deadline {
                i += 1;
                let t = Instant::now();
                match client
                    .call(ClientRequest::Put {
                        key: key.clone(),
                        value: i,
                    })
                    .await
                {
                    Ok(ClientResponse::Ok(_)) => {
                        ok += 1;
                        let _ = hist.record(t.elapsed().as_micros() as u64);
                    }
                    _ => err += 1,
                }
            }
            (hist, ok, err)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let (mut writes, mut errors) = (0, 0);
    for t in tasks {
        let (h, ok, err) = t.await?;
        hist.add(h).ok();
        writes += ok;
        errors += err;
    }
    Ok((hist, writes, errors, start.elapsed().as_secs_f64()))
}

async fn node_mode(
    dir: &std::path::Path,
    nodes: usize,
    (clients, conns): (usize, usize),
    secs: u64,
    per_entry: bool,
) -> anyhow::Result<NodeFigures> {
    let mut node_args = vec!["--request-timeout".to_string(), "10000".to_string()];
    if per_entry {
        node_args.push("--no-group-commit".into());
    }
    let spec = ClusterSpec {
        nodes,
        dir: dir.to_path_buf(),
        node_bin: crate::node_binary()?,
        node_args,
    };
    let mut cluster = LocalCluster::start(&spec)?;
    cluster.wait_ready(Duration::from_secs(30)).await?;
    let leader = cluster.wait_leader(Duration::from_secs(30)).await?;
    let addr = cluster.client_addr(&leader).context("leader address")?;
    // The load runs on a runtime of its own with one thread: on a machine
    // whose cores the nodes share, a lean load generator leaves them the CPU
    // (both modes get the same load generator).
    let load = std::thread::spawn(move || -> anyhow::Result<(Histogram<u64>, u64, u64, f64)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the load runtime")?;
        rt.block_on(write_load(addr, clients, conns, secs))
    });
    let (hist, writes, errors, secs) =
        tokio::task::spawn_blocking(move || load.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the load thread panicked"))??;

    cluster.shutdown();
    Ok(NodeFigures {
        writes,
        errors,
        secs,
        hist,
    })
}

fn bench_core(proposals: u64) {
    let mut c = SimCluster::new(3, SimCluster::fast_config(), 1);
    let leader = c
        .run_until_leader(10_000)
        .expect("the simulated cluster elects a leader");
    let start = Instant::now();
    let batch = 64;
    let mut proposed = 0u64;
    let mut last_index = 0;
    while proposed < proposals {
        for _ in 0..batch {
            proposed += 1;
            last_index = c
                .propose(&leader, proposed.to_le_bytes().to_vec())
                .expect("leader")
                .0;
        }
        c.tick();
    }
    c.run_until(100_000, |c| c.committed_everywhere(last_index));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "faultline bench core: {proposals} proposals committed on 3 in-memory nodes in {secs:.2} s = {:.0} proposals/s (with every safety check on)",
        proposals as f64 / secs
    );
}

fn bench_check(quick: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut cases: Vec<(usize, usize, usize, f64, bool)> = Vec::new();
    let sizes: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    for &ops in sizes {
        for keys in [1, 100, 1000] {
            for procs in [5, 20, 50] {
                cases.push((ops, keys, procs, 0.01, false));
            }
        }
    }
    // The hard cases: one key, few percent info, both verdicts.
    for ops in [1_200, 5_000, 20_000] {
        for stale in [false, true] {
            cases.push((ops, 1, 10, 0.03, stale));
        }
    }
    cases.push((100_000, 1, 10, 0.01, false));
    cases.push((100_000, 1, 10, 0.01, true));
    println!("faultline bench check: generated register histories (read/write/cas, unique values), checked from a file");
    println!(
        "{:>9} {:>5} {:>5} {:>5} {:>6} {:>10} {:>12} {:>10} {:>9}",
        "ops", "keys", "procs", "info", "stale", "verdict", "ops/s", "seconds", "peak MiB"
    );
    for (ops, keys, procs, info, stale) in cases {
        let out = std::process::Command::new(&exe)
            .args([
                "bench",
                "check-one",
                &ops.to_string(),
                &keys.to_string(),
                &procs.to_string(),
                &info.to_string(),
            ])
            .arg(if stale { "true" } else { "false" })
            .output()?;
        let line = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            anyhow::bail!(
                "bench case failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        print!("{line}");
    }
    Ok(())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn check_one(
    ops: usize,
    keys: usize,
    processes: usize,
    info: f64,
    stale: bool,
) -> anyhow::Result<()> {
    use faultline_checker::gen::{generate, GenConfig};
    let dir = tempdir_under_store("bench-check")?;
    let path = dir.join("history.jsonl");
    {
        let f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let cfg = GenConfig {
            ops,
            keys,
            processes,
            info_rate: info,
            stale_read: stale,
            seed: 7,
            ..GenConfig::default()
        };
        generate(&cfg, f)?;
    }
    let start = Instant::now();
    let history = crate::check_cmd::load(&path, crate::check_cmd::Format::Jsonl)?;
    let report = faultline_checker::check_history(&history, &faultline_checker::Options::default());
    let secs = start.elapsed().as_secs_f64();
    drop(history);
    let verdict = match report.valid {
        faultline_checker::Verdict::Linearizable => "valid",
        faultline_checker::Verdict::NotLinearizable => "INVALID",
        faultline_checker::Verdict::Unknown => "unknown",
    };
    println!(
        "{:>9} {:>5} {:>5} {:>4.0}% {:>6} {:>10} {:>12.0} {:>10.3} {:>9.0}",
        ops,
        keys,
        processes,
        info * 100.0,
        stale,
        verdict,
        ops as f64 / secs,
        secs,
        peak_rss_mib()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A receiver that reports each frame's arrival on a channel.
async fn frame_sink() -> anyhow::Result<(
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(Instant, u32)>,
)> {
    use futures::StreamExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut f =
                    tokio_util::codec::FramedRead::new(s, faultline_node::protocol::codec());
                while let Some(Ok(frame)) = f.next().await {
                    let n = u32::from_be_bytes(frame[..4].try_into().unwrap_or([0; 4]));
                    if tx.send((Instant::now(), n)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((addr, rx))
}

struct PathFigures {
    hist: Histogram<u64>,
    per_sec: f64,
}

async fn measure_path(via_proxy: bool, pings: u32, messages: u32) -> anyhow::Result<PathFigures> {
    use futures::SinkExt;
    let (sink, mut rx) = frame_sink().await?;
    let target = if via_proxy {
        let link = faultline_nemesis::proxy::start_link("a", "b", sink, 1).await?;
        let addr = link.addr();
        std::mem::forget(link); // its tasks live for the rest of the bench
        addr
    } else {
        sink
    };
    let stream = tokio::net::TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let mut out = tokio_util::codec::FramedWrite::new(stream, faultline_node::protocol::codec());
    // A realistic message: a heartbeat-sized frame.
    let frame = |i: u32| {
        let mut v = i.to_be_bytes().to_vec();
        v.resize(64, 0);
        bytes::Bytes::from(v)
    };
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("valid bounds");
    for i in 0..pings {
        let t = Instant::now();
        out.send(frame(i)).await?;
        let (at, _) = rx.recv().await.context("sink closed")?;
        let _ = hist.record(at.duration_since(t).as_micros().max(1) as u64);
    }
    let t = Instant::now();
    for i in 0..messages {
        out.feed(frame(i)).await?;
    }
    SinkExt::<bytes::Bytes>::flush(&mut out).await?;
    let mut got = 0;
    while got < messages {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .context("messages lost")?
            .context("sink closed")?;
        got += 1;
    }
    Ok(PathFigures {
        hist,
        per_sec: messages as f64 / t.elapsed().as_secs_f64(),
    })
}

async fn bench_proxy(pings: u32, messages: u32) -> anyhow::Result<()> {
    println!("faultline bench proxy: {pings} one-at-a-time messages for latency, {messages} back-to-back for throughput (64-byte frames)");
    let direct = measure_path(false, pings, messages).await?;
    let proxied = measure_path(true, pings, messages).await?;
    for (name, f) in [("direct", &direct), ("via proxy", &proxied)] {
        println!(
            "{name:>10}: one-way p50 {:>5} us  p99 {:>5} us  max {:>6} us   {:>9.0} messages/s",
            f.hist.value_at_quantile(0.5),
            f.hist.value_at_quantile(0.99),
            f.hist.max(),
            f.per_sec
        );
    }
    println!(
        "added by the proxy: p50 {} us, p99 {} us",
        proxied.hist.value_at_quantile(0.5) as i64 - direct.hist.value_at_quantile(0.5) as i64,
        proxied.hist.value_at_quantile(0.99) as i64 - direct.hist.value_at_quantile(0.99) as i64
    );
    Ok(())
}

async fn bench_workload(secs: u64, concurrency: usize) -> anyhow::Result<()> {
    use faultline_workloads::fake::{serve, Behavior};
    use faultline_workloads::recorder::Recorder;
    use faultline_workloads::register::{RegisterConfig, RegisterWorkload};
    let addr = serve(Behavior::Immediate).await?;
    let dir = tempdir_under_store("bench-workload")?;
    let path = dir.join("history.jsonl");
    let rec = Recorder::create(&path, Instant::now())?;
    let config = RegisterConfig {
        keys: 100,
        concurrency,
        rate: 0.0,
        ..RegisterConfig::default()
    };
    let w = RegisterWorkload::new(config, vec![("n1".into(), addr)], rec.clone());
    let t = Instant::now();
    w.run(Instant::now() + Duration::from_secs(secs)).await;
    let elapsed = t.elapsed().as_secs_f64();
    rec.finish()?;
    let ops = w.counts.ok.load(std::sync::atomic::Ordering::Relaxed)
        + w.counts.fail.load(std::sync::atomic::Ordering::Relaxed)
        + w.counts.info.load(std::sync::atomic::Ordering::Relaxed);
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "faultline bench workload: {concurrency} processes against an in-process node that answers at once: {ops} operations in {elapsed:.1} s = {:.0} ops/s recorded ({} events, {:.1} MB of history)",
        ops as f64 / elapsed,
        rec.count(),
        bytes as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn bench_report(ops: usize) -> anyhow::Result<()> {
    use faultline_checker::gen::{generate, GenConfig};
    let dir = tempdir_under_store("bench-report")?;
    {
        let f = std::io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl"))?);
        generate(
            &GenConfig {
                ops,
                keys: 100,
                processes: 20,
                info_rate: 0.01,
                seed: 3,
                ..GenConfig::default()
            },
            f,
        )?;
    }
    let t = Instant::now();
    let r = faultline_results::write_run_report(&dir, &faultline_checker::Options::default())?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "faultline bench report: analysis and report of a {ops}-operation history (100 keys, 20 processes): {secs:.1} s (verdict {:?}, {} KB of HTML and SVG)",
        r.valid,
        ["index.html", "latency.svg", "throughput.svg", "quantiles.svg", "leaders.svg"].iter().filter_map(|f| std::fs::metadata(dir.join(f)).ok()).map(|m| m.len()).sum::<u64>() / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
