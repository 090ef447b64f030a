//! `faultline bench maelstrom`: what faultline's routing costs a Maelstrom
//! node, side by side with talking to the node's pipes directly. The node
//! is `faultline maelstrom-echo` (trivial, so the router is what is
//! measured); two of them run behind their hosts and a link proxy, as in a
//! run.
//!
//! - Round trips, one in flight: a client's `echo` through the host, and
//!   the same on the node's own stdin and stdout; the difference is what
//!   the router adds.
//! - Throughput, as fast as possible: a client's `relay` to n1, which n1
//!   passes to n2 through the link proxy and n2 answers to the client: three
//!   messages routed per relay; and echoes on the pipes directly.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::net::NetBackend;
use crate::testbed::{Testbed, TestbedSpec};
use faultline_sut::maelstrom::{host::codec, Maelstrom};

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Echo round trips and throughput on the node's own pipes.
async fn direct(exe: &Path, pings: u32, messages: u32) -> anyhow::Result<(Vec<Duration>, f64)> {
    let mut child = tokio::process::Command::new(exe)
        .arg("maelstrom-echo")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let init = json!({"src": "c0", "dest": "n1", "body": {"type": "init", "msg_id": 0, "node_id": "n1", "node_ids": ["n1"]}});
    stdin.write_all(format!("{init}\n").as_bytes()).await?;
    lines.next_line().await?.context("init_ok")?;
    let mut rtts = Vec::with_capacity(pings as usize);
    for i in 0..pings {
        let m =
            json!({"src": "c1", "dest": "n1", "body": {"type": "echo", "msg_id": i, "echo": i}});
        let t = Instant::now();
        stdin.write_all(format!("{m}\n").as_bytes()).await?;
        lines.next_line().await?.context("echo_ok")?;
        rtts.push(t.elapsed());
    }
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(1 << 16);
        for i in 0..messages {
            let m = json!({"src": "c1", "dest": "n1", "body": {"type": "echo", "msg_id": i, "echo": i}});
            buf.extend_from_slice(format!("{m}\n").as_bytes());
            if buf.len() > 60_000 {
                stdin.write_all(&buf).await?;
                buf.clear();
            }
        }
        stdin.write_all(&buf).await?;
        anyhow::Ok(stdin)
    });
    for _ in 0..messages {
        lines.next_line().await?.context("echo_ok")?;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(writer.await??);
    Ok((rtts, 2.0 * f64::from(messages) / secs))
}

async fn hello(
    addr: std::net::SocketAddr,
) -> anyhow::Result<Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut f = Framed::new(s, codec());
    f.send(Bytes::from(json!({"hello": "c1"}).to_string()))
        .await?;
    Ok(f)
}

/// Round trips of a frame to a plain TCP echo server on loopback: what the
/// one hop between a client and a host costs on this machine, routing aside.
async fn tcp_baseline(pings: u32) -> anyhow::Result<Vec<Duration>> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await?;
        s.set_nodelay(true)?;
        let mut f = Framed::new(s, codec());
        while let Some(Ok(m)) = f.next().await {
            f.send(m.freeze()).await?;
        }
        anyhow::Ok(())
    });
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut c = Framed::new(s, codec());
    let mut rtts = Vec::with_capacity(pings as usize);
    for i in 0..pings {
        let m = Bytes::from(json!({"body": {"type": "echo", "msg_id": i, "echo": i}}).to_string());
        let t = Instant::now();
        c.send(m).await?;
        c.next().await.context("the echo server closed")??;
        rtts.push(t.elapsed());
    }
    drop(c);
    let _ = server.await;
    rtts.sort();
    Ok(rtts)
}

/// Run the benchmark and print the table; `exe` is faultline's own binary
/// (its `maelstrom-echo` is the node, its `maelstrom-host` the host).
pub async fn maelstrom(exe: &Path, base: &Path, pings: u32, messages: u32) -> anyhow::Result<()> {
    let exe = exe.to_path_buf();
    let (mut direct_rtts, direct_rate) = direct(&exe, pings, messages).await?;
    let tcp = tcp_baseline(pings).await?;
    let target = Arc::new(Maelstrom::new(
        faultline_sut::Program {
            program: exe.clone(),
            args: vec!["maelstrom-host".into()],
        },
        exe.clone(),
        vec!["maelstrom-echo".into()],
    ));
    let tb = Testbed::start(&TestbedSpec {
        nodes: 2,
        spares: 0,
        dir: base.to_path_buf(),
        target,
        node_args: Vec::new(),
        seed: 1,
        net: NetBackend::Proxy,
        hosts: None,
        disk: None,
    })
    .await?;
    let addrs = tb.cluster.client_addrs();
    let (n1, n2) = (addrs[0].1, addrs[1].1);
    let mut c1 = hello(n1).await?;
    let mut c2 = hello(n2).await?;
    // Both hellos are in before the first message (each host has the client).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut rtts = Vec::with_capacity(pings as usize);
    for i in 0..pings {
        let m = Bytes::from(json!({"body": {"type": "echo", "msg_id": i, "echo": i}}).to_string());
        let t = Instant::now();
        c1.send(m).await?;
        c1.next().await.context("the host closed")??;
        rtts.push(t.elapsed());
    }
    let t = Instant::now();
    let (mut sink, _) = c1.split();
    let writer = tokio::spawn(async move {
        for i in 0..messages {
            let m =
                Bytes::from(json!({"body": {"type": "relay", "msg_id": i, "echo": i}}).to_string());
            sink.feed(m).await?;
        }
        sink.flush().await?;
        anyhow::Ok(sink)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut got = 0u32;
    while got < messages {
        match tokio::time::timeout_at(deadline.into(), c2.next()).await {
            Ok(Some(Ok(_))) => got += 1,
            Ok(_) => bail!("the host of n2 closed the connection after {got} answers"),
            Err(_) => bail!("only {got} of {messages} relays answered within 120 s"),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = writer.await?;
    let links = tb.net.stats();
    drop(tb);
    rtts.sort();
    direct_rtts.sort();
    let relays = f64::from(messages) / secs;
    println!("faultline bench maelstrom: a trivial Maelstrom node (faultline maelstrom-echo), {pings} round trips one at a time, {messages} messages as fast as possible");
    println!(
        "{:>44}: round trip p50 {:>6.0} us  p99 {:>6.0} us   {:>9.0} messages/s",
        "the node's pipes, directly",
        us(quantile(&direct_rtts, 0.5)),
        us(quantile(&direct_rtts, 0.99)),
        direct_rate
    );
    println!(
        "{:>44}: round trip p50 {:>6.0} us  p99 {:>6.0} us   {:>9.0} messages/s routed ({relays:.0} relays/s: client -> n1 -> proxy -> n2 -> client)",
        "through faultline (host, link proxy)",
        us(quantile(&rtts, 0.5)),
        us(quantile(&rtts, 0.99)),
        3.0 * relays
    );
    println!(
        "{:>44}: round trip p50 {:>6.0} us  p99 {:>6.0} us",
        "a plain TCP echo on loopback (one hop)",
        us(quantile(&tcp, 0.5)),
        us(quantile(&tcp, 0.99))
    );
    let added = |q: f64| us(quantile(&rtts, q)) - us(quantile(&direct_rtts, q));
    println!(
        "{:>44}: p50 {:.0} us, p99 {:.0} us per round trip ({:.0} us at p50 beyond the loopback hop a client over TCP pays anyway)",
        "added by the router",
        added(0.5),
        added(0.99),
        added(0.5) - us(quantile(&tcp, 0.5))
    );
    let proxied: u64 = links.iter().map(|l| l.passed).sum();
    println!(
        "{:>44}: {proxied} messages passed the link proxies",
        "check"
    );
    Ok(())
}
