//! Why a power loss took what it took: a bounded log of the calls a member
//! made through its disk ([`CallLog`]), and from it, for every name a power
//! loss brought back or took away, the chain of calls that would have made
//! it durable and the one that was missing; for every file whose data was
//! undone, the range, its last write and its last fsync.

use std::collections::VecDeque;
use std::time::Instant;

use crate::{parent, DiskModel, Ino};

/// The most calls one member's log keeps; older ones are cut (and the
/// explanation says so).
pub const CALL_LOG_LIMIT: usize = 20_000;

/// The most explanations one power loss gives per member; the rest are
/// counted.
pub const EXPLANATIONS_LIMIT: usize = 20;

/// At most [`EXPLANATIONS_LIMIT`] of `all`, then one line counting the rest.
pub fn capped(mut all: Vec<String>) -> Vec<String> {
    if all.len() > EXPLANATIONS_LIMIT {
        let more = all.len() - EXPLANATIONS_LIMIT;
        all.truncate(EXPLANATIONS_LIMIT);
        all.push(format!("… and {more} more not explained here"));
    }
    all
}

/// One call, as the log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// A file created.
    Create(String),
    /// A directory made.
    Mkdir(String),
    /// A file or directory renamed (from, to).
    Rename(String, String),
    /// A name removed.
    Unlink(String),
    /// A directory removed.
    Rmdir(String),
    /// Bytes written to a file: (file, offset, length).
    Write(Ino, u64, u64),
    /// A file fsynced.
    Fsync(Ino),
    /// A directory fsynced.
    FsyncDir(String),
}

/// The calls of one member, each with its time since the log began (the
/// layer's mount), at most [`CALL_LOG_LIMIT`] of them.
#[derive(Debug)]
pub struct CallLog {
    start: Instant,
    calls: VecDeque<(f64, Call)>,
    cut: u64,
}

impl Default for CallLog {
    fn default() -> Self {
        CallLog {
            start: Instant::now(),
            calls: VecDeque::new(),
            cut: 0,
        }
    }
}

fn path(p: &str) -> String {
    if p.is_empty() {
        "the top directory".into()
    } else {
        format!("`{p}/`")
    }
}

impl CallLog {
    /// Record `call`, now.
    pub fn push(&mut self, call: Call) {
        if self.calls.len() == CALL_LOG_LIMIT {
            self.calls.pop_front();
            self.cut += 1;
        }
        self.calls
            .push_back((self.start.elapsed().as_secs_f64(), call));
    }

    /// Forget everything (after a power loss, what came before is
    /// explained already).
    pub fn clear(&mut self) {
        self.calls.clear();
        self.cut = 0;
    }

    fn cut_words(&self) -> String {
        if self.cut > 0 {
            format!(
                " (the log keeps the last {CALL_LOG_LIMIT} calls; {} older ones were cut)",
                self.cut
            )
        } else {
            String::new()
        }
    }

    /// Whether directory `dir` was fsynced after `t` (under `model`, any
    /// fsync counts for a journaled disk).
    fn synced_after(&self, dir: &str, t: f64, model: DiskModel) -> Option<f64> {
        self.calls.iter().find_map(|(at, c)| {
            let counts = match c {
                Call::FsyncDir(d) => d == dir || model == DiskModel::Journaled,
                Call::Fsync(_) => model == DiskModel::Journaled,
                _ => false,
            };
            (counts && *at >= t).then_some(*at)
        })
    }

    /// Why the name `name` (which a power loss brought back or took away)
    /// was not durable: its history of creates and renames, each step with
    /// the directory fsync that made it durable or the words that none did.
    pub fn explain_name(&self, name: &str, model: DiskModel) -> String {
        // Walk back from the newest call to the one that made the entry,
        // following renames (of the file, and of directories above it).
        let mut p = name.to_string();
        let mut steps: Vec<(f64, String, String)> = Vec::new(); // (t, words, directory it made an entry in)
        let mut removed: Option<(f64, String)> = None;
        for (t, c) in self.calls.iter().rev() {
            match c {
                Call::Unlink(n) | Call::Rmdir(n) if *n == p && steps.is_empty() => {
                    removed.get_or_insert((*t, parent(n).to_string()));
                }
                Call::Rename(from, to) if *to == p => {
                    steps.push((
                        *t,
                        format!("`{from}` renamed to `{to}` at {t:.3} s"),
                        parent(to).to_string(),
                    ));
                    p = from.clone();
                }
                Call::Rename(from, to) if p.starts_with(&format!("{to}/")) => {
                    steps.push((
                        *t,
                        format!("`{from}` renamed to `{to}` at {t:.3} s"),
                        parent(to).to_string(),
                    ));
                    p = format!("{from}{}", &p[to.len()..]);
                }
                Call::Create(n) | Call::Mkdir(n) if *n == p => {
                    steps.push((
                        *t,
                        format!("created at {t:.3} s in {}", path(parent(n))),
                        parent(n).to_string(),
                    ));
                    break;
                }
                _ => {}
            }
        }
        if let Some((t, dir)) = removed {
            return match self.synced_after(&dir, t, model) {
                Some(s) => format!("`{name}`: removed at {t:.3} s; made durable at {s:.3} s, yet back"),
                None => format!(
                    "`{name}`: removed at {t:.3} s, and {} was never fsynced after it{}: the removal was not durable, so the name came back",
                    path(&dir),
                    self.cut_words()
                ),
            };
        }
        if steps.is_empty() {
            return format!(
                "`{name}`: no create or rename of it in the call log{}",
                self.cut_words()
            );
        }
        steps.reverse();
        let mut words = Vec::new();
        let mut missing = None;
        for (i, (t, step, dir)) in steps.iter().enumerate() {
            // The directory as it was named until the next step moved it.
            let until = steps.get(i + 1).map_or(f64::INFINITY, |s| s.0);
            match self.synced_after(dir, *t, model) {
                Some(s) if s <= until => {
                    words.push(format!("{step}; {} fsynced at {s:.3} s", path(dir)))
                }
                _ => {
                    words.push(format!("{step}; {} never fsynced after it", path(dir)));
                    missing.get_or_insert((step.clone(), dir.clone()));
                }
            }
        }
        let end = match missing {
            Some((step, dir)) => format!(
                " — the entry made in {} ({step}) was not durable",
                path(&dir)
            ),
            None => String::new(),
        };
        format!("`{name}`: {}{end}{}", words.join("; "), self.cut_words())
    }

    /// Why the data of file `ino` (named `name`) was undone: the bytes and
    /// range, its last write and its last fsync.
    pub fn explain_data(&self, name: &str, ino: Ino, bytes: u64, range: (u64, u64)) -> String {
        let last = |want: &dyn Fn(&Call) -> bool| {
            self.calls
                .iter()
                .rev()
                .find(|(_, c)| want(c))
                .map(|(t, _)| *t)
        };
        let write = last(&|c| matches!(c, Call::Write(i, _, _) if *i == ino));
        let fsync = last(&|c| matches!(c, Call::Fsync(i) if *i == ino));
        format!(
            "`{name}`: {bytes} bytes in [{}, {}) were not durable; its last write at {}, its last fsync {}{}",
            range.0,
            range.1,
            write.map_or("?".into(), |t| format!("{t:.3} s")),
            fsync.map_or("never".into(), |t| format!("at {t:.3} s, before that write")),
            self.cut_words()
        )
    }
}
