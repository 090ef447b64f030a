//! The server's tests: binding, origins, limits, and real connections.

use super::*;

#[test]
fn only_loopback_may_be_bound() {
    assert!(check_bind("127.0.0.1".parse().unwrap()).is_ok());
    assert!(check_bind("127.0.0.2".parse().unwrap()).is_ok());
    assert!(check_bind("::1".parse().unwrap()).is_ok());
    for bad in ["0.0.0.0", "192.168.1.2", "::", "10.0.0.1"] {
        let e = check_bind(bad.parse().unwrap()).unwrap_err().to_string();
        assert!(e.contains("only to loopback") && e.contains(bad), "{e}");
    }
}

#[test]
fn a_comparison_is_made_only_from_the_servers_own_pages() {
    let mut h = HeaderMap::new();
    assert!(same_origin(&h), "no origin: not a browser's page");
    h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
    h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
    assert!(same_origin(&h));
    h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    assert!(!same_origin(&h));
    h.insert(header::ORIGIN, "null".parse().unwrap());
    assert!(!same_origin(&h));
}

use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn start(root: &Path, limits: Limits) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Store {
        root: std::fs::canonicalize(root).unwrap(),
        shown: root.display().to_string(),
        addr,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let done = tokio::spawn(serve_until(listener, router(state), limits, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        done,
    }
}

fn quick() -> Limits {
    Limits {
        header_read: Duration::from_millis(300),
        idle: Duration::from_millis(600),
        grace: Duration::from_millis(300),
        connections: 4,
    }
}

/// Send `request` and read the answer until the server closes (bounded).
async fn ask(addr: SocketAddr, request: &str) -> String {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the server closes `c` within `within` (EOF or reset).
async fn closed_within(c: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_host_that_is_not_this_servers_loopback_name_is_refused() {
    let store = tempfile::tempdir().unwrap();
    let s = start(store.path(), quick()).await;
    let port = s.addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
    ] {
        let a = ask(
            s.addr,
            &format!("GET /api/store HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(a.starts_with("HTTP/1.1 200"), "{host}: {a}");
    }
    // DNS rebinding: the attacker's own name, on this port.
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_string(),
    ] {
        let a = ask(
            s.addr,
            &format!("GET /api/store HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(a.starts_with("HTTP/1.1 421"), "{host}: {a}");
    }
    // A POST with a matching Origin from the rebound name writes nothing.
    let body = "a=x&b=y";
    let a = ask(
        s.addr,
        &format!(
            "POST /compare HTTP/1.1\r\nHost: evil.example:{port}\r\nOrigin: http://evil.example:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(a.starts_with("HTTP/1.1 421"), "{a}");
    // No Host at all (HTTP/1.0): refused too.
    let a = ask(s.addr, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(
        a.starts_with("HTTP/1.0 421") || a.starts_with("HTTP/1.1 421"),
        "{a}"
    );
}

#[tokio::test]
async fn half_sent_and_idle_connections_are_closed_and_the_cap_holds() {
    let store = tempfile::tempdir().unwrap();
    let s = start(store.path(), quick()).await;
    // Headers never finished: closed after the header timeout.
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127")
        .await
        .unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(10)).await);
    // Connected and silent: closed when idle.
    let mut idle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(10)).await);
    // The cap: four held, a fifth closed at once.
    let limits = Limits {
        header_read: Duration::from_secs(30),
        idle: Duration::from_secs(30),
        ..quick()
    };
    let s2 = start(store.path(), limits).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = tokio::net::TcpStream::connect(s2.addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(c);
    }
    // Accepted in order: the fifth is refused once the four are served.
    let mut fifth = tokio::net::TcpStream::connect(s2.addr).await.unwrap();
    assert!(closed_within(&mut fifth, Duration::from_secs(10)).await);
    assert!(!closed_within(&mut held[0], Duration::from_millis(200)).await);
    // One ends: a new client is served again.
    held.pop();
    let mut answered = false;
    for _ in 0..50 {
        let port = s2.addr.port();
        let a = ask(
            s2.addr,
            &format!(
                "GET /api/store HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        if a.starts_with("HTTP/1.1 200") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered);
}

#[tokio::test]
async fn stopping_does_not_wait_for_a_half_sent_request() {
    let store = tempfile::tempdir().unwrap();
    let limits = Limits {
        header_read: Duration::from_secs(3600),
        idle: Duration::from_secs(3600),
        ..quick()
    };
    let mut s = start(store.path(), limits).await;
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = s.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(10), &mut s.done)
        .await
        .expect("the server returned within its grace")
        .unwrap();
}

#[tokio::test]
async fn a_fifo_or_a_device_in_the_store_never_hangs_a_request() {
    let store = tempfile::tempdir().unwrap();
    let camp = store.path().join("c1");
    std::fs::create_dir(&camp).unwrap();
    let fifo = camp.join("results.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let c2 = std::ffi::CString::new(camp.join("campaign.json").to_str().unwrap()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c2.as_ptr(), 0o600) }, 0);
    let s = start(store.path(), quick()).await;
    let port = s.addr.port();
    let get = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
    };
    let a = tokio::time::timeout(
        Duration::from_secs(20),
        ask(s.addr, &get("/c1/results.json")),
    )
    .await
    .expect("answered");
    assert!(a.starts_with("HTTP/1.1 403"), "{a}");
    let a = tokio::time::timeout(Duration::from_secs(20), ask(s.addr, &get("/api/store")))
        .await
        .expect("answered");
    assert!(a.starts_with("HTTP/1.1 200") && a.contains("FIFO"), "{a}");
    let a = tokio::time::timeout(Duration::from_secs(20), ask(s.addr, &get("/")))
        .await
        .expect("answered");
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
}

#[test]
fn the_connection_cap_stays_below_the_open_file_limit() {
    assert_eq!(connection_cap(1024), 256);
    assert_eq!(connection_cap(100), 50);
    assert_eq!(connection_cap(1 << 20), 256);
    assert_eq!(connection_cap(0), 8);
}

#[test]
fn paths_are_decoded_and_names_encoded() {
    assert_eq!(unpercent("a%20b/c").as_deref(), Some("a b/c"));
    assert_eq!(unpercent("bad%zz"), None);
    assert_eq!(percent("compare-a-vs-b"), "compare-a-vs-b");
    assert_eq!(percent("a b/c"), "a%20b%2Fc");
}
