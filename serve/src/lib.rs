//! The store in a browser (`faultline serve`), on loopback only. `/` lists
//! every campaign, lone run and comparison (newest first, running ones
//! with their progress); `/api/store` is the same list as JSON and
//! `/api/front` the list's HTML (what the page polls); `POST /compare`
//! writes a comparison of two campaigns into the store and redirects to
//! it; every other path is a file of the store, served as it is.
#![deny(missing_docs)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use faultline_results::store_index::{scan, StoreEntry};

/// What every handler shares: the store's root, made absolute.
struct Store {
    root: PathBuf,
    shown: String,
    /// The address it listens on: the only `Host` it answers to.
    addr: SocketAddr,
}

/// Refuse any address that is not loopback, before anything binds.
pub fn check_bind(ip: IpAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        ip.is_loopback(),
        "faultline serve binds only to loopback (127.0.0.0/8 or ::1), not {ip}: the store is not for the network"
    );
    Ok(())
}

/// The server's bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long a client may take to send a request's headers (10 s).
    pub header_read: Duration,
    /// How long a connection may go without a byte read or written (30 s).
    pub idle: Duration,
    /// How long Ctrl-C waits for responses under way before the server
    /// returns anyway (2 s).
    pub grace: Duration,
    /// The most connections served at once ([`connection_cap`]).
    pub connections: usize,
}

impl Limits {
    /// The defaults, with the connection cap for this process's open-file
    /// limit.
    pub fn for_this_process() -> Limits {
        Limits {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            grace: Duration::from_secs(2),
            connections: connection_cap(open_file_limit()),
        }
    }
}

/// The most connections served at once, whatever the open-file limit: a
/// browser opens six per host, so this is generous for a loopback page.
const MAX_CONNECTIONS: usize = 256;

/// The connection cap for an open-file limit of `nofile`: at most
/// [`MAX_CONNECTIONS`], and at most half the limit, so the store's files
/// can still be opened when every connection is taken.
pub fn connection_cap(nofile: u64) -> usize {
    (nofile / 2).clamp(8, MAX_CONNECTIONS as u64) as usize
}

fn open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    }
}

/// Serve the store `store` at `bind`:`port` (0: any free port, printed)
/// until Ctrl-C.
pub async fn run(store: &Path, bind: IpAddr, port: u16) -> anyhow::Result<()> {
    check_bind(bind)?;
    anyhow::ensure!(
        store.is_dir(),
        "{} is not a directory (run `faultline demo` first, or give --store DIR)",
        store.display()
    );
    let root =
        std::fs::canonicalize(store).with_context(|| format!("resolving {}", store.display()))?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(bind, port))
        .await
        .with_context(|| format!("binding {}", SocketAddr::new(bind, port)))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(Store {
        root,
        shown: store.display().to_string(),
        addr,
    });
    let app = router(state);
    println!(
        "serving {} at http://{addr}/ (Ctrl-C stops)",
        store.display()
    );
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    serve_until(listener, app, Limits::for_this_process(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}

/// Accept and serve connections until `stop` completes: at most
/// `limits.connections` at once (a connection beyond that is closed at
/// once, and the first of every such burst logged), each closed when its
/// headers take longer than `limits.header_read` or it is idle for
/// `limits.idle`; at `stop`, connections finish what they are sending for
/// at most `limits.grace`, then the server returns whatever the clients do.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) {
    let cap = limits.connections;
    let permits = Arc::new(tokio::sync::Semaphore::new(cap));
    let (shutdown, _) = tokio::sync::watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    let mut refused_since_log: Option<(std::time::Instant, u64)> = None;
    let mut accept_backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                accept_backoff = Duration::from_millis(5);
                stream
            }
            Err(e) => {
                // Out of file descriptors, most likely: say so, back off.
                eprintln!("faultline serve: accepting a connection: {e}");
                tokio::time::sleep(accept_backoff).await;
                accept_backoff = (accept_backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            let now = std::time::Instant::now();
            match &mut refused_since_log {
                Some((at, n)) if now.duration_since(*at) < Duration::from_secs(10) => *n += 1,
                _ => {
                    eprintln!(
                        "faultline serve: {cap} connections open (the cap); new connections are closed until one ends"
                    );
                    refused_since_log = Some((now, 0));
                }
            }
            continue;
        };
        let app = app.clone();
        let mut down = shutdown.subscribe();
        tokio::spawn(async move {
            let _permit = permit;
            serve_connection(stream, app, limits, &mut down).await;
        });
    }
    drop(listener);
    let _ = shutdown.send(true);
    // Every connection holds a permit: all of them back means all ended.
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.grace, permits.acquire_many(all)).await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: Limits,
    down: &mut tokio::sync::watch::Receiver<bool>,
) {
    let io = Watched::new(stream);
    let last = io.last.clone();
    let born = io.born;
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval((limits.idle / 4).min(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = down.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + limits.grace);
            }
            _ = tick.tick() => {
                let idle = born.elapsed().saturating_sub(Duration::from_millis(
                    last.load(std::sync::atomic::Ordering::Relaxed),
                ));
                match closing {
                    Some(at) if tokio::time::Instant::now() >= at => return,
                    Some(_) => {}
                    None if idle >= limits.idle => {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(tokio::time::Instant::now() + limits.grace);
                    }
                    None => {}
                }
            }
        }
    }
}

/// A connection that notes when a byte last went either way (ms since it
/// was accepted), for the idle timeout.
struct Watched {
    inner: tokio::net::TcpStream,
    born: std::time::Instant,
    last: Arc<std::sync::atomic::AtomicU64>,
}

impl Watched {
    fn new(inner: tokio::net::TcpStream) -> Watched {
        Watched {
            inner,
            born: std::time::Instant::now(),
            last: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }
    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last.store(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn router(state: Arc<Store>) -> Router {
    Router::new()
        .route("/", get(front))
        .route("/api/store", get(api_store))
        .route("/api/front", get(api_front))
        .route("/compare", post(compare))
        .fallback(get(file))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            only_loopback_hosts,
        ))
        .with_state(state)
}

/// Whether a request's `Host` names this server on loopback: a page of
/// another site that rebinds its own name to 127.0.0.1 (DNS rebinding)
/// sends its own name, and is refused.
fn loopback_host(host: Option<&str>, addr: SocketAddr) -> bool {
    let Some(host) = host else {
        return false;
    };
    let port = addr.port();
    let names = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        match addr.ip() {
            IpAddr::V4(ip) => format!("{ip}:{port}"),
            IpAddr::V6(ip) => format!("[{ip}]:{port}"),
        },
    ];
    let host = host.to_ascii_lowercase();
    names.contains(&host)
        || (port == 80 && ["127.0.0.1", "localhost", "[::1]"].contains(&host.as_str()))
}

async fn only_loopback_hosts(
    State(state): State<Arc<Store>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        // HTTP/2 and absolute-form requests carry it in the URI.
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if !loopback_host(host.as_deref(), state.addr) {
        return Failure(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server answers only to its loopback names (127.0.0.1:{0}, localhost:{0}, [::1]:{0}), not {1:?}",
                state.addr.port(),
                host.unwrap_or_default()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// A handler's error: a status and one line.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>faultline: {code}</title></head><body><p>{}</p><p><a href=\"/\">the store</a></p></body></html>",
            escape(&self.1),
            code = self.0.as_u16(),
        );
        (self.0, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn entries(state: &Arc<Store>) -> Result<Vec<StoreEntry>, Failure> {
    let root = state.root.clone();
    tokio::task::spawn_blocking(move || scan(&root))
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))
}

fn no_store<T: IntoResponse>(body: T) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

async fn front(State(state): State<Arc<Store>>) -> Result<Response, Failure> {
    let list = entries(&state).await?;
    Ok(no_store(Html(faultline_results::html::store_page(
        &state.shown,
        &list,
    ))))
}

async fn api_front(State(state): State<Arc<Store>>) -> Result<Response, Failure> {
    let list = entries(&state).await?;
    Ok(no_store(Html(faultline_results::html::store_entries(
        &list,
    ))))
}

async fn api_store(State(state): State<Arc<Store>>) -> Result<Response, Failure> {
    let list = entries(&state).await?;
    Ok(no_store(axum::Json(list)))
}

/// The compare form.
#[derive(serde::Deserialize)]
struct CompareForm {
    a: String,
    b: String,
    #[serde(default)]
    pairs: String,
}

/// One entry of the store by its directory name: a plain name, no path.
fn entry_dir(root: &Path, name: &str) -> Result<PathBuf, Failure> {
    let bad = || {
        Failure(
            StatusCode::BAD_REQUEST,
            format!("{name:?} is not a campaign of this store"),
        )
    };
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => {}
        _ => return Err(bad()),
    }
    let dir = root.join(name);
    if !faultline_rundir::CampaignDir::new(&dir).campaign().exists() {
        return Err(bad());
    }
    Ok(dir)
}

/// Whether a request comes from this server's own pages: a browser names
/// the page's origin on a form's POST, and a page of another site (which
/// could post to loopback) is refused.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not from a browser's page (curl, a script): allowed.
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().ok().and_then(|o| o.strip_prefix("http://"));
    matches!((origin, host), (Some(o), Some(h)) if o == h)
}

async fn compare(
    State(state): State<Arc<Store>>,
    headers: HeaderMap,
    Form(form): Form<CompareForm>,
) -> Result<Response, Failure> {
    if !same_origin(&headers) {
        return Err(Failure(
            StatusCode::FORBIDDEN,
            "a comparison is made from this server's own front page only".into(),
        ));
    }
    let a = entry_dir(&state.root, &form.a)?;
    let b = entry_dir(&state.root, &form.b)?;
    let pairs = form
        .pairs
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(faultline_results::compare::parse_pair)
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    let out = faultline_results::compare::default_out(&a, &b);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tokio::task::spawn_blocking(move || {
        faultline_results::compare_report::write_comparison(&a, &b, &pairs, &out)
    })
    .await
    .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    Ok(Redirect::to(&format!("/{}/index.html", percent(&name))).into_response())
}

/// Percent-encode a path segment.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Decode a percent-encoded path.
fn unpercent(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        _ => "text/plain; charset=utf-8",
    }
}

/// A file of the store. Only plain path segments are accepted, and the
/// resolved file must lie inside the store (a link pointing out of it is
/// refused); a directory serves its `index.html`.
async fn file(State(state): State<Arc<Store>>, uri: Uri) -> Result<Response, Failure> {
    let not_found = || {
        Failure(
            StatusCode::NOT_FOUND,
            format!("no such file: {}", uri.path()),
        )
    };
    let rel = unpercent(uri.path().trim_start_matches('/')).ok_or_else(not_found)?;
    let rel = Path::new(&rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(not_found());
    }
    let mut path = state.root.join(rel);
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path = path.join("index.html");
    }
    let real = tokio::fs::canonicalize(&path)
        .await
        .map_err(|_| not_found())?;
    if !real.starts_with(&state.root) {
        return Err(not_found());
    }
    // A regular file only (a FIFO would hang the server, a device never
    // end), streamed: a large file costs a buffer, not its size.
    let opened = {
        let real = real.clone();
        tokio::task::spawn_blocking(move || faultline_rundir::read::open_regular(&real))
            .await
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    };
    let (f, len) = match opened {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(Failure(
                StatusCode::FORBIDDEN,
                format!("{} is not a regular file", uri.path()),
            ))
        }
        Err(_) => return Err(not_found()),
    };
    let stream = tokio_util::io::ReaderStream::with_capacity(
        tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(f), len),
        64 << 10,
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type(&real)),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        [(header::CONTENT_LENGTH, len.to_string())],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests;
