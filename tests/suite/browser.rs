//! The pages in a real browser: headless Chromium (Debian's `chromium`),
//! driven over the DevTools protocol, on pages a short real campaign wrote
//! and `faultline serve` serves. Every page loads with no console error, no
//! exception and no failed request; every image on it loads; a click on a
//! column header sorts the table; at a phone's width the page itself does
//! not scroll sideways; a running campaign's page and the front page fill
//! in as runs finish, without a reload; the compare action of the front
//! page writes a comparison and opens it.
//!
//! Without Chromium these tests say so and pass, except under `CI=true`
//! (`.ci/run` installs it). Chromium is told to resolve no host name but
//! loopback and to make none of its background connections.
//!
//! Over 600 lines: one real browser session drives every page, and its small
//! DevTools client lives here with the tests that use it.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::EventEntryAdded;
use chromiumoxide::cdp::browser_protocol::network::{EventLoadingFailed, EventResponseReceived};
use chromiumoxide::cdp::js_protocol::runtime::{EventConsoleApiCalled, EventExceptionThrown};
use chromiumoxide::Page;
use futures::StreamExt;

const CHROMIUM: &str = "/usr/bin/chromium";

/// How long a page may take to reach a state it is waiting for.
const PAGE_DEADLINE: Duration = Duration::from_secs(60);

/// Whether Chromium is here; without it the test says so and passes,
/// except under `CI=true`.
fn chromium_available(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: Chromium ({CHROMIUM}, Debian package chromium) is needed under CI=true");
    }
    println!("{test}: skipped: no {CHROMIUM} (Debian package chromium)");
    false
}

/// A process started in a process group of its own, killed with its group
/// when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.0.id());
        // SIGTERM first: faultline stops its runs' processes on it.
        let _ = Command::new("kill").args(["-TERM", "--", &pgid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).status();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], cwd: &Path, stdout: Stdio) -> Group {
    use std::os::unix::process::CommandExt;
    Group(
        Command::new(common::faultline_bin())
            .args(args)
            .current_dir(cwd)
            .env("FAULTLINE_NODE_BIN", common::node_bin())
            .stdout(stdout)
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("faultline starts"),
    )
}

/// `faultline serve --port 0` on `store`; returns it and its base URL.
fn serve(store: &Path) -> (Group, String) {
    let mut g = spawn(
        &["serve", "--store", store.to_str().unwrap(), "--port", "0"],
        store,
        Stdio::piped(),
    );
    let out = g.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("serve printed no address: {line:?}"))
        .to_string();
    (g, url)
}

/// A short campaign file: `settings` (TOML of `[[setting]]` tables) under
/// `faults`, runs of `time_limit` seconds.
fn campaign_file(dir: &Path, name: &str, faults: &str, time_limit: u32, settings: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nrepeats = 1\nfaults = [{faults}]\n[run]\ntime_limit = {time_limit}\nfault_interval = 1.5\nkeys = 10\nconcurrency = 10\nrate = 150\nseed = 7\n{settings}"
        ),
    )
    .unwrap();
    path
}

/// Run a campaign to its end; returns its directory.
fn run_campaign(work: &Path, store: &Path, file: &Path) -> PathBuf {
    let (code, out, err) = common::faultline_in(
        work,
        &[
            "campaign",
            file.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ],
        Duration::from_secs(300),
    );
    assert!(code == 0, "campaign {file:?} exited {code}: {out}\n{err}");
    let page = out
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .expect("the campaign prints its report");
    PathBuf::from(page).parent().unwrap().to_path_buf()
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// What went wrong on a page: console errors, exceptions, failed requests.
#[derive(Default)]
struct Problems(Vec<String>);

/// A page with listeners for everything that counts as a problem.
struct Watched {
    page: Page,
    problems: std::sync::Arc<std::sync::Mutex<Problems>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watched {
    async fn open(browser: &Browser) -> Watched {
        let page = browser.new_page("about:blank").await.unwrap();
        page.execute(chromiumoxide::cdp::browser_protocol::network::EnableParams::default())
            .await
            .unwrap();
        page.execute(chromiumoxide::cdp::browser_protocol::log::EnableParams::default())
            .await
            .unwrap();
        page.enable_runtime().await.unwrap();
        let problems = std::sync::Arc::new(std::sync::Mutex::new(Problems::default()));
        let mut tasks = Vec::new();
        let p = problems.clone();
        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            while let Some(e) = console.next().await {
                let kind = format!("{:?}", e.r#type);
                if kind == "Error" || kind == "Assert" {
                    let args: Vec<String> =
                        e.args.iter().map(|a| format!("{:?}", a.value)).collect();
                    p.lock()
                        .unwrap()
                        .0
                        .push(format!("console {kind}: {}", args.join(" ")));
                }
            }
        }));
        let p = problems.clone();
        let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
        tasks.push(tokio::spawn(async move {
            while let Some(e) = exceptions.next().await {
                p.lock().unwrap().0.push(format!(
                    "exception: {} {:?}",
                    e.exception_details.text,
                    e.exception_details
                        .exception
                        .as_ref()
                        .and_then(|x| x.description.clone())
                ));
            }
        }));
        let p = problems.clone();
        let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
        tasks.push(tokio::spawn(async move {
            while let Some(e) = log.next().await {
                if format!("{:?}", e.entry.level) == "Error" {
                    p.lock().unwrap().0.push(format!(
                        "log error: {} {}",
                        e.entry.text,
                        e.entry.url.clone().unwrap_or_default()
                    ));
                }
            }
        }));
        let p = problems.clone();
        let mut failed = page.event_listener::<EventLoadingFailed>().await.unwrap();
        tasks.push(tokio::spawn(async move {
            while let Some(e) = failed.next().await {
                p.lock()
                    .unwrap()
                    .0
                    .push(format!("request failed: {}", e.error_text));
            }
        }));
        let p = problems.clone();
        let mut responses = page
            .event_listener::<EventResponseReceived>()
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            while let Some(e) = responses.next().await {
                if e.response.status >= 400 {
                    p.lock()
                        .unwrap()
                        .0
                        .push(format!("HTTP {} for {}", e.response.status, e.response.url));
                }
            }
        }));
        Watched {
            page,
            problems,
            tasks,
        }
    }

    async fn goto(&self, url: &str) {
        self.page
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    async fn eval<T: serde::de::DeserializeOwned>(&self, js: &str) -> T {
        self.page
            .evaluate(js)
            .await
            .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
            .into_value()
            .unwrap_or_else(|e| panic!("the value of {js}: {e}"))
    }

    /// Poll `js` (a boolean expression) until it holds.
    async fn until(&self, what: &str, js: &str) {
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            // While the page navigates, its context may be gone: not yet.
            let now = match self.page.evaluate(js).await {
                Ok(v) => v.into_value::<bool>().unwrap_or(false),
                Err(_) => false,
            };
            if now {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn problems(&self) -> Vec<String> {
        std::mem::take(&mut self.problems.lock().unwrap().0)
    }

    /// The checks every page passes: it loaded without a problem, and
    /// every image on it (at least `images`) loaded.
    async fn check_page(&self, what: &str, images: usize) {
        self.until(
            &format!("{what}: loaded"),
            "document.readyState === 'complete'",
        )
        .await;
        let n: usize = self.eval("document.images.length").await;
        assert!(
            n >= images,
            "{what}: {n} images, expected at least {images}"
        );
        self.until(
            &format!("{what}: every image loaded"),
            "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)",
        )
        .await;
        // Let late console messages and requests arrive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let problems = self.problems();
        assert!(problems.is_empty(), "{what}: {problems:#?}");
    }

    /// At a phone's width (390 px), the page does not scroll sideways.
    async fn check_phone_width(&self, what: &str) {
        self.page
            .execute(SetDeviceMetricsOverrideParams::new(390, 844, 2.0, true))
            .await
            .unwrap();
        self.eval::<bool>("(window.__beforeReload = true, true)")
            .await;
        self.page.reload().await.unwrap();
        self.until(
            &format!("{what}: reloaded at a phone's width"),
            "window.__beforeReload === undefined && document.readyState === 'complete'",
        )
        .await;
        let (scroll, inner): (f64, f64) = self
            .eval("[document.documentElement.scrollWidth, window.innerWidth]")
            .await;
        // A page wider than the phone either scrolls sideways or makes the
        // browser zoom out (a wider window): both are what must not happen.
        assert!(
            scroll <= 391.0 && inner <= 391.0,
            "{what}: at a phone's width (390 px) the page is {scroll} px wide in a {inner} px window"
        );
        self.page
            .execute(
                chromiumoxide::cdp::browser_protocol::emulation::ClearDeviceMetricsOverrideParams::default(),
            )
            .await
            .unwrap();
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "{what} at a phone's width: {problems:#?}"
        );
    }

    /// A click on column `col`'s header of the table `table` sorts its rows
    /// by that column (numbers by value, text as the browser orders it); a
    /// second click sorts them the other way; no row is lost.
    async fn check_sorting(&self, what: &str, table: &str, col: usize) {
        let state = format!(
            "(function(){{ const t = document.querySelector('{table}'); \
               const v = Array.from(t.tBodies[0].rows).map(r => r.cells[{col}].dataset.v || r.cells[{col}].textContent); \
               const cmp = (x, y) => {{ const a = parseFloat(x), b = parseFloat(y); return (!isNaN(a) && !isNaN(b)) ? a - b : x.localeCompare(y); }}; \
               let asc = true, desc = true; \
               for (let i = 1; i < v.length; i++) {{ const c = cmp(v[i-1], v[i]); if (c > 0) asc = false; if (c < 0) desc = false; }} \
               return [v, asc, desc]; }})()"
        );
        let (before, _, _): (Vec<String>, bool, bool) = self.eval(&state).await;
        assert!(
            before.len() >= 2,
            "{what}: too few rows to sort: {before:?}"
        );
        let header = format!("{table} thead th:nth-child({})", col + 1);
        let click = || async {
            self.page
                .find_element(header.as_str())
                .await
                .unwrap_or_else(|e| panic!("{what}: no header {header}: {e}"))
                .click()
                .await
                .unwrap();
        };
        click().await;
        let (first, asc, _): (Vec<String>, bool, bool) = self.eval(&state).await;
        assert!(asc, "{what}: one click did not sort ascending: {first:?}");
        click().await;
        let (second, _, desc): (Vec<String>, bool, bool) = self.eval(&state).await;
        assert!(
            desc,
            "{what}: a second click did not sort descending: {second:?}"
        );
        let (mut x, mut y) = (before.clone(), second.clone());
        x.sort();
        y.sort();
        assert_eq!(x, y, "{what}: sorting lost or made rows");
        if before.iter().any(|v| v != &before[0]) {
            assert_ne!(first, second, "{what}: a second click changed nothing");
        }
    }

    async fn close(self) {
        for t in self.tasks {
            t.abort();
        }
        let _ = self.page.close().await;
    }
}

async fn launch(profile: &Path) -> (Browser, tokio::task::JoinHandle<()>) {
    let config = BrowserConfig::builder()
        .chrome_executable(CHROMIUM)
        .no_sandbox()
        .user_data_dir(profile)
        .launch_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(60))
        .args([
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            // Resolve nothing but loopback: no connection leaves this machine.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .build()
        .expect("a browser configuration");
    let (browser, mut handler) = Browser::launch(config).await.expect("Chromium starts");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    (browser, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_in_a_real_browser() {
    if !chromium_available("the_pages_work_in_a_real_browser") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let store = work.join("store");
    // A: a correct setting and a positive control that is caught (its
    // run page has a counterexample); B: the same correct setting and a
    // slower one. They share one cell; each has one of its own.
    let fast = "[[setting]]\nname = \"fast\"\nelection_timeout = \"60..120\"\nheartbeat = 20\n";
    let a = campaign_file(
        work,
        "browser-a",
        "\"partition-leader\"",
        6,
        &format!("{fast}[[setting]]\nname = \"stale-read\"\nunsafe_bug = \"stale-read\"\nexpect = \"not-linearizable\"\n"),
    );
    let b = campaign_file(
        work,
        "browser-b",
        "\"partition-leader\"",
        4,
        &format!("{fast}[[setting]]\nname = \"slow\"\nelection_timeout = \"400..800\"\nheartbeat = 100\n"),
    );
    let a = run_campaign(work, &store, &a);
    let b = run_campaign(work, &store, &b);
    let (_server, base) = serve(&store);
    let profile = work.join("chromium-profile");
    let (mut browser, events) = launch(&profile).await;
    let w = Watched::open(&browser).await;

    // The campaign page: its three plots, its tables sort.
    let campaign = format!("{base}{}/index.html", name_of(&a));
    w.goto(&campaign).await;
    w.check_page("the campaign page", 3).await;
    let runs_table = "h2:last-of-type + table";
    w.check_sorting("the campaign's runs table", runs_table, 0)
        .await;
    w.check_phone_width("the campaign page").await;

    // A run page, and the caught control's page with its counterexample.
    let fast_run = format!("{base}{}/fast__partition-leader__1/index.html", name_of(&a));
    w.goto(&fast_run).await;
    w.check_page("a run page", 4).await;
    w.check_phone_width("a run page").await;
    let caught = format!(
        "{base}{}/stale-read__partition-leader__1/index.html",
        name_of(&a)
    );
    w.goto(&caught).await;
    w.check_page("the counterexample page", 4).await;
    let drawn: bool = w
        .eval("document.querySelector('.scroll svg rect') !== null && document.body.textContent.includes('Counterexample on key')")
        .await;
    assert!(drawn, "the caught run's page draws its counterexample");
    w.check_phone_width("the counterexample page").await;

    // The front page: both campaigns, sortable; then its compare action.
    w.goto(&base).await;
    w.check_page("the front page", 0).await;
    for c in [&a, &b] {
        let listed: bool = w
            .eval(&format!(
                "document.querySelector('tr[data-dir=\"{}\"]') !== null",
                name_of(c)
            ))
            .await;
        assert!(listed, "the front page lists {}", name_of(c));
    }
    w.check_sorting("the front page's list", "#entries-table", 0)
        .await;
    w.check_phone_width("the front page").await;
    w.eval::<bool>(&format!(
        "(document.querySelector('select[name=a]').value = '{}', document.querySelector('select[name=b]').value = '{}', true)",
        name_of(&a),
        name_of(&b)
    ))
    .await;
    w.page
        .find_element("form button")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    w.until(
        "the compare action opens the comparison",
        "location.pathname.startsWith('/compare-') && document.readyState === 'complete'",
    )
    .await;
    w.check_page("the comparison page", 2).await;
    let text: String = w.eval("document.body.textContent").await;
    assert!(text.contains("Cells both campaigns ran"), "{text}");
    assert!(
        text.contains("Only in A") && text.contains("stale-read") && text.contains("slow"),
        "the cells only one campaign ran are listed: {text}"
    );
    w.check_sorting("the comparison's table", "table.sortable", 2)
        .await;
    w.check_phone_width("the comparison page").await;
    w.close().await;

    // A campaign under way: its page, opened while it runs, fills in as a
    // run finishes, and so does the front page — without a reload.
    let live = campaign_file(
        work,
        "browser-live",
        "\"partition-leader\"",
        4,
        "[[setting]]\nname = \"live\"\n",
    );
    let text = std::fs::read_to_string(&live).unwrap();
    std::fs::write(&live, text.replace("repeats = 1", "repeats = 3")).unwrap();
    let _campaign = spawn(
        &[
            "campaign",
            live.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ],
        work,
        Stdio::null(),
    );
    let deadline = Instant::now() + PAGE_DEADLINE;
    let live_dir = loop {
        let found = std::fs::read_dir(&store).unwrap().flatten().find(|e| {
            e.file_name().to_string_lossy().starts_with("browser-live-")
                && e.path().join("progress.json").exists()
                && e.path().join("index.html").exists()
        });
        if let Some(e) = found {
            break e.path();
        }
        assert!(
            Instant::now() < deadline,
            "the live campaign never wrote its page"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let row = format!("tr[data-dir=\"{}\"]", name_of(&live_dir));
    let front = Watched::open(&browser).await;
    front.goto(&base).await;
    front
        .until(
            "the front page loaded",
            "document.readyState === 'complete'",
        )
        .await;
    let running: bool = front
        .eval(&format!(
            "(document.querySelector('{row} td.verdict') || {{textContent: ''}}).textContent.includes('running')"
        ))
        .await;
    assert!(running, "the front page shows the live campaign running");
    front
        .eval::<bool>("(window.__notReloaded = true, true)")
        .await;

    let w = Watched::open(&browser).await;
    w.goto(&format!("{base}{}/index.html", name_of(&live_dir)))
        .await;
    w.until("the live page loaded", "document.readyState === 'complete'")
        .await;
    let done: String = w
        .eval("(document.getElementById('live') || {dataset: {done: 'finished'}}).dataset.done")
        .await;
    assert_ne!(
        done, "finished",
        "the campaign ended before its page could be watched"
    );
    // A mark that a reload would wipe.
    w.eval::<bool>("(window.__notReloaded = true, true)").await;
    w.until(
        "the running campaign's page fills in when a run finishes",
        &format!(
            "window.__notReloaded === true && (document.getElementById('live') === null || document.getElementById('live').dataset.done !== '{done}')"
        ),
    )
    .await;
    let problems = w.problems();
    assert!(problems.is_empty(), "the live campaign page: {problems:#?}");
    w.close().await;

    front
        .until(
            "the front page shows the campaign finished, without a reload",
            &format!(
                "window.__notReloaded === true && document.querySelector('{row} td.verdict.ok') !== null"
            ),
        )
        .await;
    let problems = front.problems();
    assert!(
        problems.is_empty(),
        "the front page while a campaign ran: {problems:#?}"
    );
    front.close().await;

    browser.close().await.unwrap();
    browser.wait().await.unwrap();
    events.abort();
}
