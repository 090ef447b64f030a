//! Benchmarks of what runs a cluster: `faultline bench node` (a real
//! cluster's writes/s with group commit and with one fsync per entry) and
//! `faultline bench proxy` (what a link proxy adds to a message); with
//! [`net`] (`faultline bench net`) and [`soak`] (`faultline bench soak`).

pub mod maelstrom;
pub mod net;
pub mod soak;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use std::sync::Arc;

use faultline_node::settings::NodeSettings;
use faultline_sut::{Answer, KvClient, KvOp, Target};
use hdrhistogram::Histogram;

use crate::cluster::{ClusterSpec, LocalCluster};
use crate::process::NodeCommand;

struct NodeFigures {
    writes: u64,
    errors: u64,
    secs: f64,
    hist: Histogram<u64>,
}

/// Writes/s and latency of a real cluster with fsync, with group commit and
/// with one fsync per entry, side by side; or, given `etcd`, faultline's
/// node (group commit) beside etcd under the same load. Data under `base`
/// (removed at the end). Prints as it goes.
#[allow(clippy::too_many_arguments)]
pub async fn node(
    node_bin: &NodeCommand,
    others: Vec<Arc<dyn Target>>,
    base: &Path,
    duration: u64,
    clients: usize,
    conns: usize,
    nodes: usize,
    disk_layer: bool,
) -> anyhow::Result<()> {
    let conns = conns.min(clients.max(1));
    println!("faultline bench node: {nodes} nodes, {clients} clients on {conns} connections, {duration} s per mode, fsync on (data in {})", base.display());
    anyhow::ensure!(
        !disk_layer || others.len() <= 1,
        "--disk fuse compares one system with and without the disk layer: name one target"
    );
    let faultline = faultline_sut::faultline(node_bin.clone());
    let load = (clients, conns);
    let mode = |t: &Arc<dyn Target>, args: Vec<String>, dir: &str, layer: bool| {
        node_mode(
            t.clone(),
            args,
            base.join(dir),
            nodes,
            load,
            duration,
            layer,
        )
    };
    let group = mode(&faultline, faultline_args(false), "group-commit", false).await?;
    print_node("faultline (group commit)", &group);
    use faultline_sut::TargetKindExt;
    let label = |t: &Arc<dyn Target>| format!("{} {}", t.kind().words(), t.version());
    let mut compared: Vec<(String, NodeFigures)> = Vec::new();
    match others.first() {
        Some(t) if disk_layer => {
            let direct = mode(t, Vec::new(), t.kind().name(), false).await?;
            print_node(&label(t), &direct);
            let dir = format!("{}-layer", t.kind().name());
            let layered = mode(t, Vec::new(), &dir, true).await?;
            compared.push((format!("{} (disk layer)", label(t)), layered));
        }
        Some(_) => {
            for t in &others {
                compared.push((label(t), mode(t, Vec::new(), t.kind().name(), false).await?));
            }
        }
        None if disk_layer => {
            let f = mode(&faultline, faultline_args(false), "disk-layer", true).await?;
            compared.push(("faultline (disk layer)".to_string(), f));
        }
        None => {
            let f = mode(&faultline, faultline_args(true), "fsync-per-entry", false).await?;
            compared.push(("faultline (fsync per entry)".to_string(), f));
        }
    }
    let rate = |f: &NodeFigures| f.writes as f64 / f.secs;
    let p99 = |f: &NodeFigures| f.hist.value_at_quantile(0.99) as f64 / 1000.0;
    for (label, other) in &compared {
        print_node(label, other);
    }
    for t in &others {
        if let Some(note) = t.kind().durability_note() {
            println!("note: {note}");
        }
    }
    for (label, other) in &compared {
        if disk_layer {
            println!(
                "{label} / direct: {:.2}x writes/s, p99 {:.2} ms vs {:.2} ms",
                rate(other) / rate(&group).max(1e-9),
                p99(other),
                p99(&group),
            );
        } else {
            println!(
                "faultline (group commit) / {label}: {:.2}x writes/s, p99 {:.2} ms vs {:.2} ms",
                rate(&group) / rate(other).max(1e-9),
                p99(&group),
                p99(other),
            );
        }
    }
    let _ = std::fs::remove_dir_all(base);
    Ok(())
}

fn faultline_args(per_entry: bool) -> Vec<String> {
    NodeSettings {
        request_timeout_ms: 10_000,
        group_commit: !per_entry,
        ..NodeSettings::default()
    }
    .to_args()
}

fn print_node(mode: &str, f: &NodeFigures) {
    println!(
        "{mode:>28}: {:>9.0} writes/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} writes, {} errors)",
        f.writes as f64 / f.secs,
        f.hist.value_at_quantile(0.5) as f64 / 1000.0,
        f.hist.value_at_quantile(0.99) as f64 / 1000.0,
        f.hist.max() as f64 / 1000.0,
        f.writes,
        f.errors
    );
}

/// The result of [`write_load`].
pub(crate) type LoadFigures = (Histogram<u64>, u64, u64, f64);

/// Run [`write_load`] on a thread with a one-thread runtime of its own: on
/// a machine whose cores the nodes share, a lean load generator leaves them
/// the CPU (every mode of every benchmark gets the same generator).
pub(crate) fn spawn_load(
    target: Arc<dyn Target>,
    addr: std::net::SocketAddr,
    clients: usize,
    conns: usize,
    secs: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<anyhow::Result<LoadFigures>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the load runtime")?;
        rt.block_on(write_load(target, addr, clients, conns, secs, stop))
    })
}

/// `clients` closed-loop writers against `addr` for `secs` seconds, sharing
/// `conns` connections (client `c` uses connection `c % conns`): the latency
/// histogram (µs), writes acknowledged, errors, seconds taken.
async fn write_load(
    target: Arc<dyn Target>,
    addr: std::net::SocketAddr,
    clients: usize,
    conns: usize,
    secs: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<LoadFigures> {
    let mut connections = Vec::new();
    for _ in 0..conns.max(1) {
        let client = target
            .connect(addr, Duration::from_secs(10))
            .await
            .map_err(|e| anyhow::anyhow!("connecting to the leader at {addr}: {e}"))?;
        connections.push(Arc::<dyn KvClient>::from(client));
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = connections[c % connections.len()].clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let (mut ok, mut err) = (0u64, 0u64);
            let key = format!("k{c}");
            let mut i = 0i64;
            while Instant::now() < deadline && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let t = Instant::now();
                match client.call(&KvOp::Write(key.clone(), i)).await {
                    Answer::Ok(_) => {
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

/// One mode of `bench node`: a cluster of `target` under the write load;
/// with `disk_layer`, each member's data directory behind the disk layer
/// (FUSE), whose counters are printed after.
async fn node_mode(
    target: Arc<dyn Target>,
    node_args: Vec<String>,
    dir: std::path::PathBuf,
    nodes: usize,
    (clients, conns): (usize, usize),
    secs: u64,
    disk_layer: bool,
) -> anyhow::Result<NodeFigures> {
    let mut disks = if disk_layer {
        let ids: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
        Some(crate::disk::Disks::mount(
            &dir,
            &ids,
            faultline_rundir::spec::DiskModel::Posix,
        )?)
    } else {
        None
    };
    let spec = ClusterSpec {
        nodes,
        dir: dir.clone(),
        target: target.clone(),
        node_args,
        namespaces: Default::default(),
        hosts: Default::default(),
    };
    let mut cluster = LocalCluster::start(&spec)?;
    cluster.wait_ready(Duration::from_secs(30)).await?;
    let clients_at: Vec<std::net::SocketAddr> =
        cluster.client_addrs().into_iter().map(|(_, a)| a).collect();
    target
        .prepare(&clients_at, Duration::from_secs(30))
        .await
        .map_err(anyhow::Error::msg)?;
    let leader = cluster.wait_leader(Duration::from_secs(30)).await?;
    let addr = cluster.client_addr(&leader).context("leader address")?;
    let load = spawn_load(
        target.clone(),
        addr,
        clients,
        conns,
        secs,
        Arc::new(Default::default()),
    );
    let (hist, writes, errors, secs) =
        tokio::task::spawn_blocking(move || load.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the load thread panicked"))??;

    cluster.shutdown();
    if let Some(d) = &mut disks {
        for (id, m) in d.all() {
            let s = m.stats();
            println!(
                "{:>28}  {id}'s disk layer: {} bytes written, {} fsyncs",
                "", s.counters.bytes_written, s.counters.fsyncs
            );
        }
        d.finish()?;
    }
    Ok(NodeFigures {
        writes,
        errors,
        secs,
        hist,
    })
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
        let link = crate::net::proxy::start_link("a", "b", sink, 1).await?;
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

/// The latency a healthy link proxy adds per message, and the messages/s one
/// proxy carries, side by side with a direct connection. Prints as it goes.
pub async fn proxy(pings: u32, messages: u32) -> anyhow::Result<()> {
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
