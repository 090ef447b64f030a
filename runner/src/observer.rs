//! The observer: polls every node's status through a run and writes each
//! round to `status.jsonl`, where the analysis reads who led when. Who counts
//! as the working leader is decided from these rounds by
//! [`faultline_node::leadership`], the one definition the nemesis and the
//! analysis share.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_node::client::AddressBook;
use faultline_node::leadership::{NodeSample, StatusRound};
use faultline_sut::Target;

/// How often the observer polls.
pub const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long one node may take to answer a poll.
const ANSWER_WITHIN: Duration = Duration::from_millis(80);

/// A running observer; [`Observer::stop`] ends it and flushes its file.
pub struct Observer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    /// Start polling the nodes at the addresses `book` has at each round
    /// (a node moved to new ports is followed), timed from `start`.
    pub fn start(
        target: Arc<dyn Target>,
        book: AddressBook,
        path: PathBuf,
        start: Instant,
    ) -> Observer {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(poll(target, book, path, start, stop.clone()));
        Observer { stop, task }
    }

    /// Stop polling and wait until the file is written.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

async fn poll(
    target: Arc<dyn Target>,
    book: AddressBook,
    path: PathBuf,
    start: Instant,
    stop: Arc<AtomicBool>,
) {
    let Ok(file) = std::fs::File::create(&path) else {
        return;
    };
    let mut out = std::io::BufWriter::new(file);
    while !stop.load(Ordering::Relaxed) {
        let t_ms = start.elapsed().as_millis() as u64;
        let addrs = book.entries();
        let target = &target;
        let polls = addrs.iter().map(|(id, addr)| async move {
            let s = target.status(*addr, ANSWER_WITHIN).await.ok();
            (id.clone(), s.as_ref().map(NodeSample::from))
        });
        let nodes: BTreeMap<String, Option<NodeSample>> =
            futures::future::join_all(polls).await.into_iter().collect();
        if let Ok(line) = serde_json::to_string(&StatusRound { t_ms, nodes }) {
            let _ = writeln!(out, "{line}");
        }
        let spent = Duration::from_millis(start.elapsed().as_millis() as u64 - t_ms);
        tokio::time::sleep(POLL_EVERY.saturating_sub(spent)).await;
    }
    let _ = out.flush();
}
