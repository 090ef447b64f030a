//! The storage thread: writes each Ready's log changes and hard state in
//! order, and folds everything that queued up during one fsync into the
//! next (group commit), then tells the Raft loop which write is durable.

use tokio::sync::mpsc;

use crate::storage::Storage;

use super::{Event, Write};

/// The storage thread: writes in order, and everything that queued up while
/// one fsync ran shares the next (group commit).
pub(super) fn storage_thread(
    mut storage: Storage,
    writes: std::sync::mpsc::Receiver<Write>,
    events: mpsc::Sender<Event>,
) {
    while let Ok(first) = writes.recv() {
        let (mut seq, mut hard, mut log) = (first.seq, first.hard, first.log);
        while let Ok(w) = writes.try_recv() {
            seq = w.seq;
            hard = w.hard.or(hard);
            log.merge(w.log);
        }
        let result = storage
            .persist(hard.as_ref(), &log)
            .map_err(|e| e.to_string());
        let failed = result.is_err();
        // Blocks while the loop's queue is full: the loop never waits on
        // this thread, so it drains the queue meanwhile.
        if events
            .blocking_send(Event::Persisted { seq, result })
            .is_err()
            || failed
        {
            return;
        }
    }
}
