//! `faultline bench net`: what each network path costs a message, side by
//! side in one run — loopback direct, loopback through a link proxy, and
//! the kernel backend's bridge between two nodes' namespaces.
//!
//! Two endpoints talk as two nodes do, each sending on a connection of its
//! own: A sends a frame to B, B sends it back to A on its own connection.
//! The round trip is A's send to A's receipt of the echo (one frame in
//! flight); the throughput is A sending frames back to back while the
//! echoes stream in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::net::kernel::netns::Namespace;
use crate::net::kernel::KernelNet;

/// One path's figures.
pub struct PathFigures {
    /// The path's name.
    pub name: &'static str,
    /// Round trips, µs.
    pub rtt: Histogram<u64>,
    /// Frames echoed per second, back to back.
    pub per_sec: f64,
    /// Megabytes per second each way, back to back.
    pub mb_per_sec: f64,
}

/// Where each endpoint lives and how each reaches the other.
struct Path {
    name: &'static str,
    a_ns: Option<Arc<Namespace>>,
    b_ns: Option<Arc<Namespace>>,
    a_listen: SocketAddr,
    b_listen: SocketAddr,
    proxy: bool,
}

fn frame(i: u32, size: usize) -> Bytes {
    let mut v = i.to_be_bytes().to_vec();
    v.resize(size.max(4), 0);
    Bytes::from(v)
}

async fn connect_retrying(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    faultline_node::netpolicy::allowed(addr).map_err(anyhow::Error::msg)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) if Instant::now() > deadline => {
                return Err(e).with_context(|| format!("connecting to {addr}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")
}

/// B: take A's connection, echo every frame to `reply_to` on its own.
fn echo_side(
    ns: Option<Arc<Namespace>>,
    listen: SocketAddr,
    reply_to: std::sync::mpsc::Receiver<SocketAddr>,
    bound: std::sync::mpsc::Sender<anyhow::Result<SocketAddr>>,
) -> anyhow::Result<()> {
    if let Some(ns) = &ns {
        ns.enter_this_thread().context("entering B's namespace")?;
    }
    runtime()?.block_on(async move {
        let l = match TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                let _ = bound.send(Err(anyhow::anyhow!("binding {listen}: {e}")));
                return Ok(());
            }
        };
        let _ = bound.send(Ok(l.local_addr()?));
        let reply_to = reply_to.recv().context("A went away")?;
        let (s, _) = l.accept().await?;
        s.set_nodelay(true)?;
        let mut inbound = FramedRead::new(s, faultline_node::protocol::codec());
        let mut out = FramedWrite::new(
            connect_retrying(reply_to).await?,
            faultline_node::protocol::codec(),
        );
        while let Some(f) = inbound.next().await {
            out.send(f?.freeze()).await?;
        }
        Ok(())
    })
}

fn measure(path: Path, pings: u32, messages: u32, size: usize) -> anyhow::Result<PathFigures> {
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
    let b_ns = path.b_ns.clone();
    let b_listen = path.b_listen;
    let b = std::thread::spawn(move || echo_side(b_ns, b_listen, reply_rx, bound_tx));
    let b_addr = bound_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("B's thread ended early"))??;
    // A runs on a thread of its own, so that only that thread moves into
    // A's namespace (if it has one).
    let a = std::thread::spawn(move || -> anyhow::Result<PathFigures> {
        if let Some(ns) = &path.a_ns {
            ns.enter_this_thread().context("entering A's namespace")?;
        }
        runtime()?.block_on(a_side(
            path.name,
            path.a_listen,
            b_addr,
            path.proxy,
            reply_tx,
            pings,
            messages,
            size,
        ))
    });
    let r = a.join().map_err(|_| anyhow::anyhow!("A's thread panicked"));
    let _ = b.join();
    r?
}

#[allow(clippy::too_many_arguments)]
async fn a_side(
    name: &'static str,
    listen: SocketAddr,
    b_addr: SocketAddr,
    proxy: bool,
    reply_tx: std::sync::mpsc::Sender<SocketAddr>,
    pings: u32,
    messages: u32,
    size: usize,
) -> anyhow::Result<PathFigures> {
    let l = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let a_addr = l.local_addr()?;
    let mut links = Vec::new();
    let (to_b, to_a) = if proxy {
        let ab = crate::net::proxy::start_link("a", "b", b_addr, 1).await?;
        let ba = crate::net::proxy::start_link("b", "a", a_addr, 2).await?;
        let r = (ab.addr(), ba.addr());
        links.push(ab);
        links.push(ba);
        r
    } else {
        (b_addr, a_addr)
    };
    let _ = reply_tx.send(to_a);
    let accept = tokio::spawn(async move { l.accept().await });
    let mut out = FramedWrite::new(
        connect_retrying(to_b).await?,
        faultline_node::protocol::codec(),
    );
    // A proxy connects onwards at the first frame: send one before waiting
    // for B's connection back.
    out.send(frame(u32::MAX, 64)).await?;
    let (s, _) = tokio::time::timeout(Duration::from_secs(10), accept)
        .await
        .context("B did not connect back within 10 s")???;
    let mut echoes = FramedRead::new(s, faultline_node::protocol::codec());
    tokio::time::timeout(Duration::from_secs(10), echoes.next())
        .await
        .context("the first echo did not come back within 10 s")?
        .context("B closed its connection")??;
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("valid bounds");
    let small = 64;
    for i in 0..pings {
        let t = Instant::now();
        out.send(frame(i, small)).await?;
        tokio::time::timeout(Duration::from_secs(10), echoes.next())
            .await
            .context("an echo did not come back within 10 s")?
            .context("B closed its connection")??;
        let _ = rtt.record(t.elapsed().as_micros().max(1) as u64);
    }
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        for i in 0..messages {
            out.feed(frame(i, size)).await?;
        }
        SinkExt::<Bytes>::flush(&mut out).await?;
        anyhow::Ok(out)
    });
    for _ in 0..messages {
        tokio::time::timeout(Duration::from_secs(30), echoes.next())
            .await
            .context("echoes stopped for 30 s")?
            .context("B closed its connection")??;
    }
    let secs = t.elapsed().as_secs_f64();
    let out = writer.await??;
    drop(out); // B's inbound ends, and so does B
    for l in &links {
        l.stop();
    }
    Ok(PathFigures {
        name,
        rtt,
        per_sec: messages as f64 / secs,
        mb_per_sec: messages as f64 * size as f64 / secs / 1e6,
    })
}

/// Measure the three paths; the kernel one needs the controller in its own
/// namespace (`faultline bench net` enters one). Prints as it goes.
pub fn net(pings: u32, messages: u32, size: usize) -> anyhow::Result<Vec<PathFigures>> {
    println!("faultline bench net: {pings} round trips of 64-byte frames (one in flight), then {messages} frames of {size} bytes back to back, echoed on a connection of the receiver's own");
    let lo = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let mut out = Vec::new();
    for path in [
        Path {
            name: "loopback, direct",
            a_ns: None,
            b_ns: None,
            a_listen: lo(0),
            b_listen: lo(0),
            proxy: false,
        },
        Path {
            name: "loopback, via proxy",
            a_ns: None,
            b_ns: None,
            a_listen: lo(0),
            b_listen: lo(0),
            proxy: true,
        },
    ] {
        let f = measure(path, pings, messages, size)?;
        print_row(&f);
        out.push(f);
    }
    let kernel = KernelNet::start(&["n1".to_string(), "n2".to_string()])
        .context("building two namespaces and a bridge")?;
    let addrs = kernel.addrs();
    let f = measure(
        Path {
            name: "kernel: namespace → bridge → namespace",
            a_ns: kernel.namespace("n1"),
            b_ns: kernel.namespace("n2"),
            a_listen: addrs[0].listen,
            b_listen: addrs[1].listen,
            proxy: false,
        },
        pings,
        messages,
        size,
    )?;
    print_row(&f);
    out.push(f);
    Ok(out)
}

fn print_row(f: &PathFigures) {
    println!(
        "{:>40}: round trip p50 {:>5} us  p99 {:>5} us  max {:>6} us   {:>8.0} frames/s  {:>7.1} MB/s",
        f.name,
        f.rtt.value_at_quantile(0.5),
        f.rtt.value_at_quantile(0.99),
        f.rtt.max(),
        f.per_sec,
        f.mb_per_sec
    );
}
