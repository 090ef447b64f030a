//! `faultline serve`: the store in a browser, on loopback only. `/` lists
//! every campaign, lone run and comparison (newest first, running ones
//! with their progress); `/api/store` is the same list as JSON and
//! `/api/front` the list's HTML (what the page polls); `POST /compare`
//! writes a comparison of two campaigns into the store and redirects to
//! it; every other path is a file of the store, served as it is.

use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Args;
use faultline_results::store_index::{scan, StoreEntry};

/// `faultline serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store to serve.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// The port (0: any free port, printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to bind: loopback only (127.0.0.0/8 or ::1).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
}

/// What every handler shares: the store's root, made absolute.
struct Store {
    root: PathBuf,
    shown: String,
}

/// Refuse any address that is not loopback, before anything binds.
pub fn check_bind(ip: IpAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        ip.is_loopback(),
        "faultline serve binds only to loopback (127.0.0.0/8 or ::1), not {ip}: the store is not for the network"
    );
    Ok(())
}

/// Serve the store until Ctrl-C.
pub async fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    check_bind(a.bind)?;
    anyhow::ensure!(
        a.store.is_dir(),
        "{} is not a directory (run `faultline demo` first, or give --store DIR)",
        a.store.display()
    );
    let root = std::fs::canonicalize(&a.store)
        .with_context(|| format!("resolving {}", a.store.display()))?;
    let state = Arc::new(Store {
        root,
        shown: a.store.display().to_string(),
    });
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(a.bind, a.port))
        .await
        .with_context(|| format!("binding {}", SocketAddr::new(a.bind, a.port)))?;
    let addr = listener.local_addr()?;
    println!(
        "serving {} at http://{addr}/ (Ctrl-C stops)",
        a.store.display()
    );
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(ExitCode::SUCCESS)
}

fn router(state: Arc<Store>) -> Router {
    Router::new()
        .route("/", get(front))
        .route("/api/store", get(api_store))
        .route("/api/front", get(api_front))
        .route("/compare", post(compare))
        .fallback(get(file))
        .with_state(state)
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
        faultline_results::compare::write_comparison(&a, &b, &pairs, &out)
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
    if path.is_dir() {
        path = path.join("index.html");
    }
    let real = tokio::fs::canonicalize(&path)
        .await
        .map_err(|_| not_found())?;
    if !real.starts_with(&state.root) {
        return Err(not_found());
    }
    let body = tokio::fs::read(&real).await.map_err(|_| not_found())?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type(&real)),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn paths_are_decoded_and_names_encoded() {
        assert_eq!(unpercent("a%20b/c").as_deref(), Some("a b/c"));
        assert_eq!(unpercent("bad%zz"), None);
        assert_eq!(percent("compare-a-vs-b"), "compare-a-vs-b");
        assert_eq!(percent("a b/c"), "a%20b%2Fc");
    }
}
